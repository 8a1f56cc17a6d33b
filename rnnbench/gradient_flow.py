"""Gradient flow through time: how strongly a model's loss reaches back to each input step.

For one fixed batch (the task's first validation batch, else its first test batch, at most `MAX_SEQUENCES`
sequences), `measure` takes the gradient of the loss with respect to the input at every step t: the input tensor for
"features" inputs, the output of the model's first `keras.layers.Embedding` for "tokens" inputs. The norm of a step
is the L2 norm over the feature axis, averaged over the sequences that are real (not padding) at that step.

The loss is each sequence's own loss summed over the batch (not the batch mean), so the norms do not depend on how
many sequences the batch holds. It sits where the task puts it, except for causal_steps (language model) heads: there
the diagnostic scores the last real step only, so that "distance back from the end" means what it means for a
many-to-one head. A ctc head keeps its CTC loss as compiled, over all frames, so its curve says where the loss is
sensitive rather than how far a signal travels.

Summaries:
  grad_log10_ratio  log10(norm at each sequence's first step / norm at its last real step), norms averaged over the
                    batch: a vanishing gradient under a many-to-one loss gives a large negative value. None when
                    either norm is exactly zero (a TCN whose receptive field is shorter than the sequence).
  grad_log10_slope  the fitted slope of log10 norm against the distance back from each sequence's last real step
                    (per step; for h_t = rho Q h_{t-1} + U x_t with Q, U orthogonal it is log10(rho)).

TensorFlow only (the runner is TensorFlow): on another Keras backend `measure` raises a UserError.
`RunGradientFlow` is what a run of the runner does with it: curves at initialisation and at the best weights, logged
as `gradient_flow.json`, `gradient_flow.png` and the `grad_flow_<stage>_log10_ratio` / `_slope` metrics.
"""
from __future__ import annotations

import json
import math
import weakref
from pathlib import Path
from typing import Optional

import keras
import numpy as np

from rnnbench.errors import UserError

MAX_SEQUENCES = 32  # one cheap batch: the curve is a mean over sequences, not an estimate that needs many


class Unavailable(Exception):
    """The diagnostic does not apply to this model or task; the message says why (logged instead of the curves)."""


def _require_tensorflow() -> None:
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise UserError(f"the gradient-flow diagnostic needs the TensorFlow backend of Keras, but KERAS_BACKEND is "
                        f"{backend!r}; set KERAS_BACKEND=tensorflow, or train.gradient_flow=false to skip it")


# id(spec) -> (weak reference to spec, x, y): every run of a grid probes the very same sequences, and a task object
# that is gone takes its batch with it.
_BATCHES: dict[int, tuple] = {}


def probe_batch(spec, max_sequences: int = MAX_SEQUENCES) -> tuple[np.ndarray, np.ndarray]:
    """The task's first validation batch (first test batch when it has no validation split), cut to
    `max_sequences`, as NumPy arrays; read once per task object, so later runs never advance its pipeline again."""
    key = id(spec)
    cached = _BATCHES.get(key)
    if cached is None or cached[0]() is not spec:
        data = spec.val if spec.val is not None else spec.test
        if data is None:
            raise Unavailable("the task has neither a validation nor a test split to take a batch from")
        batch = next(iter(data.take(1).as_numpy_iterator()), None)
        if batch is None:
            raise Unavailable("the task's validation (or test) split is empty")
        _BATCHES[key] = cached = (weakref.ref(spec, lambda _: _BATCHES.pop(key, None)), *batch)
    _, x, y = cached
    return x[:max_sequences], y[:max_sequences]


def real_steps(spec, x: np.ndarray) -> np.ndarray:
    """(batch, T) True at real steps: all of them unless the task pads (token 0, or a frame all `pad_value`)."""
    if not spec.inputs.masked:
        return np.ones(x.shape[:2], dtype=bool)
    if spec.inputs.kind == "tokens":
        return np.asarray(x) != 0
    return np.any(np.asarray(x) != spec.inputs.pad_value, axis=-1)


def _last_real(mask: np.ndarray) -> np.ndarray:
    return mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)


def _loss_fn(spec, model):
    loss = spec.loss if spec.loss is not None else getattr(model, "loss", None)
    if loss is None:
        raise Unavailable("neither the task nor the compiled model names a loss")
    return keras.losses.get(loss) if isinstance(loss, str) else loss


def _summed_loss(spec, model, y, pred, last: np.ndarray):
    from keras import ops

    if spec.outputs.head == "causal_steps":  # the last real step only: see the module docstring
        index = ops.convert_to_tensor(last.astype("int32"))
        pred = ops.take_along_axis(pred, ops.reshape(index, (-1, 1, 1)), axis=1)[:, 0]
        y = ops.take_along_axis(ops.convert_to_tensor(y), ops.reshape(index, (-1, 1)), axis=1)[:, 0]
    loss = _loss_fn(spec, model)
    # Loss.call leaves the per-example values unreduced, so each sequence's gradient is that of its own loss.
    values = loss.call(ops.convert_to_tensor(y), pred) if isinstance(loss, keras.losses.Loss) else loss(y, pred)
    values = ops.cast(values, "float32")
    if len(values.shape) > 1:
        values = ops.mean(values, axis=tuple(range(1, len(values.shape))))
    return ops.sum(values)


def _first_embedding(model: keras.Model) -> keras.layers.Embedding:
    for layer in model.layers:
        if isinstance(layer, keras.layers.Embedding):
            return layer
    raise Unavailable(f"model {model.name!r} takes tokens but has no top-level keras.layers.Embedding whose output "
                      "the gradient could be taken against")


def _fixed_batch(model: keras.Model, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A model built for a fixed batch (stateful layers carrying state across batches) gets exactly that many."""
    size = model.inputs[0].shape[0]
    if size is None:
        return x, y
    if len(x) < size:
        raise Unavailable(f"model {model.name!r} takes batches of exactly {size}; the probe batch has {len(x)}")
    return x[:size], y[:size]


def input_gradient(model: keras.Model, spec, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, str]:
    """(dL/d input as (batch, T, features) float64, the loss, what the gradient is taken against).

    Layers that carry state across batches start from a zero state here, and every non-trainable variable is put
    back afterwards, so measuring leaves training exactly where it was."""
    _require_tensorflow()
    if len(model.inputs) != 1:
        raise Unavailable(f"model {model.name!r} has {len(model.inputs)} inputs; the diagnostic handles one")
    saved = [v.numpy() for v in model.non_trainable_variables]
    try:
        for layer in model._flatten_layers():
            if getattr(layer, "stateful", False) and hasattr(layer, "reset_state"):
                layer.reset_state()
        return _input_gradient(model, spec, x, y)
    finally:
        for variable, value in zip(model.non_trainable_variables, saved):
            variable.assign(value)


def _input_gradient(model: keras.Model, spec, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, str]:
    import tensorflow as tf

    last = _last_real(real_steps(spec, x))
    if spec.inputs.kind == "features":
        inputs = tf.convert_to_tensor(x, dtype=tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = _summed_loss(spec, model, y, model(inputs, training=False), last)
        gradient, against = tape.gradient(loss, inputs), "input features"
    else:
        embedding = _first_embedding(model)
        try:
            twin = keras.Model(model.inputs, [embedding.output, model.output])
        except (AttributeError, ValueError) as error:  # a shared embedding has no single output tensor
            raise Unavailable(f"embedding {embedding.name!r} has no single output in the model graph: {error}")
        with tf.GradientTape() as tape:
            tape.watch([w.value for w in embedding.weights])  # a frozen embedding (ESN) is not watched otherwise
            embedded, pred = twin([tf.convert_to_tensor(x)], training=False)
            loss = _summed_loss(spec, model, y, pred, last)
        gradient, against = tape.gradient(loss, embedded), f"output of embedding {embedding.name!r}"
    if gradient is None:
        raise Unavailable(f"the loss does not depend on the {against}")
    return np.asarray(tf.cast(gradient, tf.float64)), float(loss), against


def summarise(norms: np.ndarray, mask: np.ndarray) -> dict:
    """Curves and summaries of per-sequence, per-step norms (batch, T), counting only steps where `mask` is True."""
    norms = np.asarray(norms, dtype=np.float64)
    rows = mask.any(axis=1)
    norms, mask = norms[rows], mask[rows]
    steps = norms.shape[1]
    count = mask.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        by_step = np.where(count > 0, (norms * mask).sum(axis=0) / np.maximum(count, 1), np.nan)
        last, first = _last_real(mask), np.argmax(mask, axis=1)
        back = last[:, None] - np.arange(steps)[None, :]  # the step `d` steps before each sequence's last real one
        valid = back >= 0
        back = np.clip(back, 0, steps - 1)
        valid &= np.take_along_axis(mask, back, axis=1)
        aligned = np.take_along_axis(norms, back, axis=1)
        counted = valid.sum(axis=0)
        by_distance = np.where(counted > 0, (aligned * valid).sum(axis=0) / np.maximum(counted, 1), np.nan)
        start = norms[np.arange(len(norms)), first].mean() if len(norms) else np.nan
        end = norms[np.arange(len(norms)), last].mean() if len(norms) else np.nan
        ratio = math.log10(start / end) if start > 0 and end > 0 and np.isfinite(start / end) else None
    # Steps whose gradient underflowed to exactly zero cannot enter a log-linear fit; they are left out.
    usable = np.isfinite(by_distance) & (by_distance > 0)
    slope = None
    if usable.sum() >= 2:
        distance = np.arange(steps)[usable]
        slope = float(np.polyfit(distance, np.log10(by_distance[usable]), 1, w=np.sqrt(counted[usable]))[0])
    return {"norm_by_step": _finite_list(by_step), "norm_by_distance": _finite_list(by_distance),
            "grad_log10_ratio": ratio, "grad_log10_slope": slope}


def _finite_list(values: np.ndarray) -> list:
    return [float(v) if np.isfinite(v) else None for v in values]  # JSON has no NaN


def measure(model: keras.Model, spec, x: Optional[np.ndarray] = None, y: Optional[np.ndarray] = None) -> dict:
    """The gradient-flow curves of `model` on batch (x, y), by default `probe_batch(spec)`: `norm_by_step` (index t
    from the start), `norm_by_distance` (index d back from each sequence's last real step; equal to `norm_by_step`
    reversed when nothing is padded), `grad_log10_ratio`, `grad_log10_slope`, and what was measured (`against`,
    `loss`, `loss_at`, `sequences`, `steps`). Raises `Unavailable` where the diagnostic does not apply."""
    if x is None:
        x, y = probe_batch(spec, getattr(spec.inputs, "streams", None) or MAX_SEQUENCES)
    x, y = _fixed_batch(model, x, y)
    gradient, loss, against = input_gradient(model, spec, x, y)
    norms = np.linalg.norm(gradient.reshape(*gradient.shape[:2], -1), axis=-1)
    head = spec.outputs.head
    loss_at = {"causal_steps": "last real step only", "ctc": "every frame (CTC)"}.get(head, f"the {head} head")
    return {"against": against, "loss": loss, "loss_at": loss_at, "sequences": int(norms.shape[0]),
            "steps": int(norms.shape[1]), **summarise(norms, real_steps(spec, x))}


class RunGradientFlow:
    """One run's diagnostic: `measure("init", model)` after building, `measure("best", model)` at the best weights;
    `metrics()` and `write(folder)` give what the run logs. Where it does not apply, or fails, the reason is kept and
    logged in `gradient_flow.json` instead of curves: a diagnostic never costs a run its training. A UserError (wrong
    backend) propagates."""

    def __init__(self, spec, enabled: bool = True):
        self.spec, self.enabled = spec, enabled
        self.curves: dict[str, dict] = {}
        self.skipped: Optional[str] = None if enabled else "train.gradient_flow is false"

    def measure(self, stage: str, model: keras.Model) -> None:
        if self.skipped:
            return
        try:
            self.curves[stage] = measure(model, self.spec)
        except UserError:
            raise
        except Unavailable as why:
            self.skipped = str(why)
        except Exception as error:  # a model this module does not foresee: its run still trains and is logged
            self.skipped = f"measuring at {stage} failed: {type(error).__name__}: {error}"[:2000]

    def metrics(self) -> dict:
        return {f"grad_flow_{stage}_{name}": curve[f"grad_{name}"] for stage, curve in self.curves.items()
                for name in ("log10_ratio", "log10_slope") if curve[f"grad_{name}"] is not None}

    def write(self, folder: Path) -> None:
        if not self.enabled:
            return
        payload = {**self.curves, **({"skipped": self.skipped} if self.skipped else {})}
        (Path(folder) / "gradient_flow.json").write_text(json.dumps(payload, indent=2))
        if self.curves:
            plot(self.curves, Path(folder) / "gradient_flow.png", title=self.spec.name)


def plot(curves: dict, path: Path, title: str = "") -> None:
    """Log-scale gradient norm against the step t, one line per stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for stage, curve in curves.items():
        values = np.array([np.nan if v is None else v for v in curve["norm_by_step"]])
        ratio = curve["grad_log10_ratio"]
        label = f"{stage} (log10 first/last = {ratio:.2f})" if ratio is not None else stage
        ax.plot(np.arange(len(values)), np.where(values > 0, values, np.nan), label=label)
    ax.set_yscale("log")
    ax.set_xlabel("input step t")
    ax.set_ylabel("mean ||dL/dx_t||")
    ax.set_title(f"{title} gradient flow".strip())
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
