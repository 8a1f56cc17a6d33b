"""Custom layers the non-recurrent builders (transformer, tcn, esn) share: positions, attention masks, read-outs.

Like `layers.py`: `keras.ops` only, registered for `.keras` save/load, and masks are explicit boolean tensors
`(batch, time)`, True at real steps.
"""
from __future__ import annotations

import math

import keras
from keras import ops

_PACKAGE = "rnnbench"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SinusoidalPositions(keras.layers.Layer):
    """Adds the fixed sinusoidal position code of Vaswani et al. (2017): sines in the first half of the features,
    cosines in the second, wavelengths from 2*pi to 10000*2*pi. Computed per call, so it fits any length."""

    def call(self, x):
        steps, features = ops.shape(x)[1], x.shape[-1]
        half = (features + 1) // 2
        positions = ops.expand_dims(ops.cast(ops.arange(steps), "float32"), 1)
        frequencies = ops.exp(ops.arange(half, dtype="float32") * (-math.log(10000.0) / max(half, 1)))
        angles = positions * ops.expand_dims(frequencies, 0)
        code = ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)[:, :features]
        return x + ops.cast(ops.expand_dims(code, 0), x.dtype)

    def compute_mask(self, inputs, mask=None):
        return None


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LearnedPositions(keras.layers.Layer):
    """Adds a trained vector per position, for up to `max_length` positions (the builder refuses longer inputs it
    knows of; a longer batch fails with a shape mismatch)."""

    def __init__(self, max_length: int, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length

    def build(self, input_shape):
        self.positions = self.add_weight(name="positions", shape=(self.max_length, input_shape[-1]),
                                         initializer=keras.initializers.RandomNormal(stddev=0.02))

    def call(self, x):
        steps = x.shape[1]
        if steps is not None and steps > self.max_length:
            raise ValueError(f"{steps} steps exceed the {self.max_length} learned positions: raise max_length "
                             "or use positions='sinusoidal'")
        table = ops.slice(self.positions, (0, 0), (ops.shape(x)[1], self.positions.shape[1]))
        return x + ops.cast(ops.expand_dims(table, 0), x.dtype)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "max_length": self.max_length}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class AttentionMask(keras.layers.Layer):
    """(batch, time) padding mask -> (batch, time, time) attention mask: a query may attend to real keys (and with
    `causal`, to keys at or before its own step). Every query may attend to itself, so a padded query's softmax
    has something to normalise; what padded steps compute never reaches a real one."""

    def __init__(self, causal: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.causal = causal

    def call(self, mask):
        steps = ops.shape(mask)[1]
        allowed = ops.repeat(ops.expand_dims(mask, 1), steps, axis=1)
        if self.causal:
            allowed = ops.logical_and(allowed, ops.expand_dims(ops.tril(ops.ones((steps, steps), "int32")) > 0, 0))
        return ops.logical_or(allowed, ops.expand_dims(ops.eye(steps, dtype="int32") > 0, 0))

    def compute_output_spec(self, mask):
        return keras.KerasTensor((mask.shape[0], mask.shape[1], mask.shape[1]), dtype="bool")

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "causal": self.causal}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaskedMeanPooling(keras.layers.Layer):
    """Called on `[x, mask]`: the mean of x over the real steps (batch, features)."""

    def call(self, inputs):
        x, mask = inputs
        weights = ops.expand_dims(ops.cast(mask, x.dtype), -1)
        return ops.sum(x * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), ops.cast(1.0, x.dtype))

    def compute_output_spec(self, inputs):
        x, _ = inputs
        return keras.KerasTensor((x.shape[0], x.shape[2]), dtype=x.dtype)

    def compute_mask(self, inputs, mask=None):
        return None


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LastRealStep(keras.layers.Layer):
    """Called on `[x, mask]`: x at each sequence's last real step (batch, features), wherever its padding lies."""

    def call(self, inputs):
        x, mask = inputs
        steps = ops.shape(x)[1]
        from_end = ops.argmax(ops.cast(ops.flip(mask, axis=1), "int32"), axis=1)  # 0 when the last step is real
        index = ops.cast(steps - 1 - from_end, "int32")
        return ops.take_along_axis(x, ops.reshape(index, (-1, 1, 1)), axis=1)[:, 0]

    def compute_output_spec(self, inputs):
        x, _ = inputs
        return keras.KerasTensor((x.shape[0], x.shape[2]), dtype=x.dtype)

    def compute_mask(self, inputs, mask=None):
        return None
