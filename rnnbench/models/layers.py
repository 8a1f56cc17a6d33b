"""Custom layers the builders need beyond `keras.layers`: padding masks, frame stacking, attention, CTC blank fill.

Written with `keras.ops` only, so they run on every Keras 3 backend, and registered for `.keras` save/load.
Masks travel as explicit boolean tensors `(batch, time)` where a layer needs them, because an explicit input survives
slicing, stacking and multi-output layers on every backend, where Keras's implicit mask does not.
"""
from __future__ import annotations

import keras
from keras import ops

_PACKAGE = "rnnbench"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PaddingMask(keras.layers.Layer):
    """True at real timesteps: token id != 0, or a feature frame not entirely equal to `pad_value`.

    kind "none" marks every step real (for layers that always take a mask).
    """

    def __init__(self, kind: str, pad_value: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.kind = kind
        self.pad_value = pad_value

    def call(self, x):
        if self.kind == "tokens":
            return ops.not_equal(x, 0)
        if self.kind == "none":
            return ops.ones(ops.shape(x)[:2], dtype="bool")
        return ops.any(ops.not_equal(x, self.pad_value), axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "pad_value": self.pad_value}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class StackFrames(keras.layers.Layer):
    """Time subsampling without dropping frames: every `stride` consecutive frames become one wider frame.

    Called on `[x, mask]`, returns `[stacked_x, stacked_mask]`; a stacked frame is real if any of its frames is.
    The time axis is zero-padded up to a multiple of `stride` first.
    """

    def __init__(self, stride: int, **kwargs):
        super().__init__(**kwargs)
        self.stride = stride

    def call(self, inputs):
        x, mask = inputs
        pad = (-ops.shape(x)[1]) % self.stride
        x = ops.pad(x, [[0, 0], [0, pad], [0, 0]])
        mask = ops.pad(ops.cast(mask, "int32"), [[0, 0], [0, pad]])
        batch = ops.shape(x)[0]
        x = ops.reshape(x, (batch, -1, x.shape[-1] * self.stride))
        mask = ops.any(ops.reshape(mask, (batch, -1, self.stride)) > 0, axis=-1)
        return [x, mask]

    def compute_output_spec(self, inputs):
        x, _ = inputs
        steps = None if x.shape[1] is None else -(-x.shape[1] // self.stride)
        return [
            keras.KerasTensor((x.shape[0], steps, x.shape[2] * self.stride), dtype=x.dtype),
            keras.KerasTensor((x.shape[0], steps), dtype="bool"),
        ]

    def compute_mask(self, inputs, mask=None):
        return [None, None]

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ApplyMask(keras.layers.Layer):
    """Attaches an explicit boolean mask tensor as the Keras mask of `x`, so recurrent layers skip padding."""

    def call(self, inputs):
        return inputs[0]

    def compute_mask(self, inputs, mask=None):
        return inputs[1]

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs[0].shape, dtype=inputs[0].dtype)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class AdditiveAttentionPooling(keras.layers.Layer):
    """Bahdanau-style attention pooling: score_t = v . tanh(W h_t); weights = softmax over real steps.

    Called on `[h, mask]` (mask may be all True), returns `[context (batch, features), weights (batch, time)]`.
    """

    returns_attention_weights = True  # (output, weights): rnnbench.attention reads the weights back

    def __init__(self, units: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        features = input_shape[0][-1]
        self.w = self.add_weight(name="w", shape=(features, self.units), initializer="glorot_uniform")
        self.b = self.add_weight(name="b", shape=(self.units,), initializer="zeros")
        self.v = self.add_weight(name="v", shape=(self.units,), initializer="glorot_uniform")

    def call(self, inputs):
        h, mask = inputs
        scores = ops.tensordot(ops.tanh(ops.tensordot(h, self.w, axes=1) + self.b), self.v, axes=1)
        scores = ops.where(mask, scores, ops.full_like(scores, -1e9))
        weights = ops.softmax(scores, axis=-1)
        context = ops.sum(h * ops.expand_dims(weights, -1), axis=1)
        return [context, weights]

    def compute_output_spec(self, inputs):
        h, _ = inputs
        return [
            keras.KerasTensor((h.shape[0], h.shape[2]), dtype=h.dtype),
            keras.KerasTensor((h.shape[0], h.shape[1]), dtype=h.dtype),
        ]

    def compute_mask(self, inputs, mask=None):
        return [None, None]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaskedPooling(keras.layers.Layer):
    """Max or mean over the real steps: called on `[h (batch, time, features), mask (batch, time)]`, returns
    (batch, features). Padded steps never win the max nor enter the mean."""

    def __init__(self, mode: str, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("max", "mean"):
            raise ValueError(f"MaskedPooling mode must be 'max' or 'mean', got {mode!r}")
        self.mode = mode

    def call(self, inputs):
        h, mask = inputs
        keep = ops.expand_dims(ops.cast(mask, h.dtype), -1)
        if self.mode == "max":
            lowest = ops.full_like(h, -1e9)
            return ops.max(ops.where(ops.cast(keep, "bool"), h, lowest), axis=1)
        return ops.sum(h * keep, axis=1) / ops.maximum(ops.sum(keep, axis=1), 1.0)

    def compute_output_spec(self, inputs):
        h, _ = inputs
        return keras.KerasTensor((h.shape[0], h.shape[2]), dtype=h.dtype)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SelfAttentionBlock(keras.layers.Layer):
    """Multi-head self-attention over RNN outputs with a residual connection and layer normalisation.

    Called on `[h, mask]`, returns `[h + attention, weights (batch, heads, time, time)]`. With `causal=True`, step t
    attends to steps <= t only, which keeps a language model causal.
    """

    returns_attention_weights = True  # (output, weights): rnnbench.attention reads the weights back

    def __init__(self, num_heads: int = 4, causal: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.causal = causal

    def build(self, input_shape):
        features = input_shape[0][-1]
        key_dim = max(1, features // self.num_heads)
        self.attention = keras.layers.MultiHeadAttention(self.num_heads, key_dim, name="mha")
        self.attention.build(input_shape[0], input_shape[0])
        self.norm = keras.layers.LayerNormalization(name="norm")
        self.norm.build(input_shape[0])

    def call(self, inputs):
        h, mask = inputs
        steps = ops.shape(h)[1]
        allowed = ops.logical_and(ops.expand_dims(mask, 1), ops.expand_dims(mask, 2))
        if self.causal:
            lower = ops.tril(ops.ones((steps, steps), dtype="int32")) > 0
            allowed = ops.logical_and(allowed, ops.expand_dims(lower, 0))
        # A padded query row with nothing allowed would softmax over -inf; let it see itself instead.
        allowed = ops.logical_or(allowed, ops.expand_dims(ops.eye(steps, dtype="int32") > 0, 0))
        attended, weights = self.attention(h, h, attention_mask=allowed, return_attention_scores=True)
        return [self.norm(h + attended), weights]

    def compute_output_spec(self, inputs):
        h, _ = inputs
        return [
            keras.KerasTensor(h.shape, dtype=h.dtype),
            keras.KerasTensor((h.shape[0], self.num_heads, h.shape[1], h.shape[1]), dtype=h.dtype),
        ]

    def compute_mask(self, inputs, mask=None):
        return [None, None]

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "causal": self.causal}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CTCBlankFill(keras.layers.Layer):
    """Forces padded frames to predict the CTC blank (index 0) with probability 1.

    Then the CTC loss and decoding over the full padded length equal those over each utterance's true length: every
    alignment with a label on a padded frame has probability 0, and trailing blanks collapse away. So the model needs
    no per-example output lengths, and its output carries no Keras mask (which Keras would apply to the loss).
    """

    def call(self, inputs):
        logits, mask = inputs
        blank_only = ops.concatenate(
            [ops.zeros_like(logits[..., :1]), ops.full_like(logits[..., 1:], -1e4)], axis=-1
        )
        return ops.where(ops.expand_dims(mask, -1), logits, blank_only)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs[0].shape, dtype=inputs[0].dtype)

    def compute_mask(self, inputs, mask=None):
        return None
