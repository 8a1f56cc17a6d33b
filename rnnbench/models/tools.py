"""Helpers around built models: compile, the CTC loss, reading attention weights back, and a cuDNN eligibility report."""
from __future__ import annotations

from typing import Optional

import keras
import numpy as np
from keras import ops

from rnnbench.models.layers import AdditiveAttentionPooling, SelfAttentionBlock
from rnnbench.models.recurrent import ATTENTION_LAYER_NAME


@keras.saving.register_keras_serializable(package="rnnbench")
def ctc_loss(y_true, y_pred):
    """CTC loss per example for logits `(batch, T, classes + 1)` with the blank at index 0.

    `y_true` holds label ids 1..classes padded with 0 after each label sequence; its non-zero count is the label
    length. Every output frame counts: the ctc head forces padded frames to blank, which leaves the loss exact.
    """
    labels = ops.cast(y_true, "int32")
    label_length = ops.sum(ops.cast(ops.greater(labels, 0), "int32"), axis=-1)
    frames = ops.shape(y_pred)[1]
    output_length = ops.full((ops.shape(y_pred)[0],), frames, dtype="int32")
    return ops.ctc_loss(labels, y_pred, label_length, output_length, mask_index=0)


def compile_model(model: keras.Model, spec, *, learning_rate: float = 1e-3, clipnorm: Optional[float] = 1.0,
                  jit_compile="auto") -> keras.Model:
    """Compiles with Adam (gradient clipping by global norm when `clipnorm` is set), the task's loss and metrics."""
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, global_clipnorm=clipnorm or None)
    # Fresh metric objects per model: a metric instance keeps state, and the spec's are shared by every model.
    metrics = [m.__class__.from_config(m.get_config()) if isinstance(m, keras.metrics.Metric) else m
               for m in spec.metrics]
    model.compile(optimizer=optimizer, loss=spec.loss, metrics=metrics, jit_compile=jit_compile)
    return model


def attention_weights(model: keras.Model, x) -> Optional[np.ndarray]:
    """Attention weights of an attention model for inputs `x`, or None for a model without attention.

    Pooling attention gives `(batch, time)`; self-attention gives `(batch, heads, time, time)`.
    """
    try:
        layer = model.get_layer(ATTENTION_LAYER_NAME)
    except ValueError:
        return None
    if not isinstance(layer, (AdditiveAttentionPooling, SelfAttentionBlock)):
        return None
    probe = keras.Model(model.input, layer.output[1])
    return np.asarray(probe(x, training=False))


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
