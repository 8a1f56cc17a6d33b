"""Helpers around built models: compile (with an Adam that keeps per-epoch gradient-norm statistics) and a cuDNN
eligibility report (the CTC loss and attention read-back live in the shared `rnnbench.ctc` and `rnnbench.attention`,
re-exported here)."""
from __future__ import annotations

from typing import Optional

import keras

from rnnbench.attention import attention_weights  # noqa: F401  (re-exported for notebooks)
from rnnbench.ctc import ctc_loss  # noqa: F401  (re-exported for notebooks)
from rnnbench.optimizers import GradientNormAdam, gradient_norm_optimizer  # noqa: F401  (re-exported)


def compile_model(model: keras.Model, spec, *, learning_rate: float = 1e-3, clipnorm: Optional[float] = 1.0,
                  jit_compile="auto") -> keras.Model:
    """Compiles with Adam (gradient clipping by global norm when `clipnorm` is set; `GradientNormAdam`, which also
    counts gradient norms), the task's loss and metrics."""
    optimizer = GradientNormAdam(learning_rate=learning_rate, global_clipnorm=clipnorm or None)
    # Fresh metric objects per model: a metric instance keeps state, and the spec's are shared by every model.
    metrics = [m.__class__.from_config(m.get_config()) if isinstance(m, keras.metrics.Metric) else m
               for m in spec.metrics]
    model.compile(optimizer=optimizer, loss=spec.loss, metrics=metrics, jit_compile=jit_compile)
    return model


def _recurrent_layers(model: keras.Model):
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            yield layer.name, layer.forward_layer
            yield layer.name, layer.backward_layer
        elif isinstance(layer, keras.layers.RNN) or isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
            yield layer.name, layer


def cudnn_report(model: keras.Model) -> list[dict]:
    """One row per recurrent layer: whether the fused cuDNN kernel can run it on a GPU, and if not, why not.

    The conditions are Keras 3's: standard activations, no recurrent dropout, no unroll, a bias, and for GRU
    reset_after=True. SimpleRNN has no cuDNN kernel. Masks must be right-padded (checked at run time by Keras).
    """
    rows = []
    for outer_name, layer in _recurrent_layers(model):
        reasons = []
        kind = type(layer).__name__
        if kind not in ("LSTM", "GRU"):
            reasons.append(f"{kind} has no cuDNN kernel")
        else:
            cell = layer.cell
            if getattr(cell.activation, "__name__", "") != "tanh":
                reasons.append("activation is not tanh")
            if getattr(cell.recurrent_activation, "__name__", "") != "sigmoid":
                reasons.append("recurrent_activation is not sigmoid")
            if cell.recurrent_dropout:
                reasons.append(f"recurrent_dropout={cell.recurrent_dropout}")
            if layer.unroll:
                reasons.append("unroll=True")
            if not cell.use_bias:
                reasons.append("use_bias=False")
            if kind == "GRU" and not cell.reset_after:
                reasons.append("reset_after=False")
        rows.append({
            "layer": outer_name if outer_name == layer.name else f"{outer_name}/{layer.name}",
            "type": kind,
            "cudnn_eligible": not reasons,
            "why_not": "; ".join(reasons),
        })
    return rows
