"""Adam that keeps per-epoch gradient-norm statistics (`GradientNormAdam`), the optimizer every run compiles with;
the `GradientNorms` callback reads and resets them once per epoch. A shared library: models and callbacks use it."""
from __future__ import annotations

from typing import Optional

import keras
from keras import ops


class _Stats:
    """A plain holder: variables kept here stay out of the optimizer's saved state, so a `.keras` file holds exactly
    Adam's variables, and a checkpoint written before these statistics existed still loads."""

    NAMES = ("norm_sum", "norm_max", "steps", "clipped")

    def __init__(self):
        # "only_first_replica": under MirroredStrategy each replica measures its own gradient (see GradientNormAdam)
        # and replica 0's figures are kept; a replica-context assign needs some aggregation to be allowed at all.
        for name in self.NAMES:
            setattr(self, name, keras.Variable(0.0, dtype="float32", trainable=False, name=f"gradient_{name}",
                                               aggregation="only_first_replica"))


@keras.saving.register_keras_serializable(package="rnnbench")
class GradientNormAdam(keras.optimizers.Adam):
    """Adam that also accumulates, per training step, the global gradient norm before clipping: its sum, maximum and
    the number of steps, and how many steps `global_clipnorm` changed (norm > global_clipnorm). Updates are exactly
    Adam's. `gradient_stats()` reads them, `reset_gradient_stats()` starts over (the `GradientNorms` callback does both
    once per epoch). Written with keras.ops and variables, so it runs inside XLA-compiled train steps.

    The norm is the one Keras's global-norm clipping uses (see `apply`). Under tf.distribute.MirroredStrategy, Keras 3
    clips each replica's gradient (its share of the loss, scaled by 1/replicas) before summing them across replicas;
    the figures are replica 0's, i.e. what its clipping saw. Under mixed precision the loss-scale wrapper calls this
    optimizer with unscaled gradients and skips non-finite steps, which are then not counted.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._gradient_stats = _Stats()

    def apply(self, grads, trainable_variables=None):
        present = [g for g in grads if g is not None]
        if present:
            # As Keras's clip_by_global_norm computes it, so that "clipped" is exactly its decision; an embedding's
            # sparse gradient (IndexedSlices) then counts each token occurrence's row on its own, not their sum.
            norm = ops.sqrt(ops.sum(ops.stack([ops.cast(ops.sum(ops.square(g)), "float32") for g in present])))
            if self.loss_scale_factor is not None:
                norm = norm / self.loss_scale_factor
            stats, limit = self._gradient_stats, self.global_clipnorm
            stats.norm_sum.assign_add(norm)
            stats.norm_max.assign(ops.maximum(stats.norm_max, norm))
            stats.steps.assign_add(1.0)
            if limit:
                stats.clipped.assign_add(ops.cast(ops.greater(norm, limit), "float32"))
        return super().apply(grads, trainable_variables)

    def gradient_stats(self) -> dict:
        """{"grad_norm_mean", "grad_norm_max", "clipped_steps", "steps"} since the last reset (norms None before any
        step)."""
        stats = self._gradient_stats
        steps = float(stats.steps.numpy())
        return {"grad_norm_mean": float(stats.norm_sum.numpy()) / steps if steps else None,
                "grad_norm_max": float(stats.norm_max.numpy()) if steps else None,
                "clipped_steps": float(stats.clipped.numpy()), "steps": steps}

    def reset_gradient_stats(self) -> None:
        for name in _Stats.NAMES:
            getattr(self._gradient_stats, name).assign(0.0)


def gradient_norm_optimizer(model: keras.Model) -> Optional[GradientNormAdam]:
    """The model's GradientNormAdam (inside a mixed-precision loss-scale wrapper too), or None when it has another
    optimizer (a model compiled elsewhere, or restored from a checkpoint written before these statistics)."""
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    return optimizer if isinstance(optimizer, GradientNormAdam) else None
