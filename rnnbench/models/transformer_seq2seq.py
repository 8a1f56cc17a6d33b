"""A transformer encoder-decoder for the seq2seq head: the attention-only alternative to the recurrent ones.

Encoder: embedding of the source tokens (d_model wide), sinusoidal positions, `layers` pre-norm blocks
x + MHA(LN(x)) then x + FF(LN(x)) with padded letters masked out, and a final layer norm (as
`rnnbench.models.transformer`). Decoder: embedding of the decoder input (the start token, then the target shifted
right: teacher forcing), sinusoidal positions, `layers` pre-norm blocks of causal self-attention (each step sees
itself and earlier steps only), cross-attention over the encoder's outputs (padded letters masked) and the
feed-forward layer, a final layer norm, then the logits (Vaswani et al. 2017; Yolchuyeva et al. 2019 for G2P).

The last block's cross-attention, averaged over its heads, is exposed as the layer `SEQ2SEQ_ALIGNMENT_LAYER`, so the
g2p task plots letters against phonemes for this model as for the attention RNNs. Decoding (greedy, beam search)
calls this same model on the prefix written so far, exactly as for the recurrent encoder-decoders.
"""
from __future__ import annotations

import random
from typing import Optional

import keras
from keras import ops

from rnnbench.models import budget
from rnnbench.models.layers import PaddingMask
from rnnbench.models.recurrent import IncompatibleModelError, count_trainable
from rnnbench.models.sequence_layers import AttentionMask, SinusoidalPositions
from rnnbench.registry import register_model
from rnnbench.spec import SEQ2SEQ_ALIGNMENT_LAYER, SEQ2SEQ_INPUTS, TaskSpec

HEADS = ("seq2seq",)


@keras.saving.register_keras_serializable(package="rnnbench")
class CrossAttentionMask(keras.layers.Layer):
    """Called on `[queries (batch, T_out, d), key mask (batch, T_in)]`: (batch, T_out, T_in), True where a decoder
    step may attend (every real source step)."""

    def call(self, inputs):
        queries, mask = inputs
        return ops.repeat(ops.expand_dims(mask, 1), ops.shape(queries)[1], axis=1)

    def compute_output_spec(self, inputs):
        queries, mask = inputs
        return keras.KerasTensor((queries.shape[0], queries.shape[1], mask.shape[1]), dtype="bool")

    def compute_mask(self, inputs, mask=None):
        return None


@keras.saving.register_keras_serializable(package="rnnbench")
class HeadAveragedAlignment(keras.layers.Layer):
    """Called on `[context, scores (batch, heads, T_out, T_in)]`: `[context, scores averaged over the heads]`, the
    two outputs the g2p task reads from an alignment layer."""

    def call(self, inputs):
        context, scores = inputs
        return [context, ops.mean(scores, axis=1)]

    def compute_output_spec(self, inputs):
        context, scores = inputs
        return [keras.KerasTensor(context.shape, dtype=context.dtype),
                keras.KerasTensor((scores.shape[0], scores.shape[2], scores.shape[3]), dtype=scores.dtype)]

    def compute_mask(self, inputs, mask=None):
        return [None, None]


@register_model("seq2seq_transformer", family="transformer")
def seq2seq_transformer(
    spec: TaskSpec,
    *,
    d_model: int = 64,
    layers: int = 2,
    heads: int = 4,
    ff_multiplier: float = 4.0,
    dropout: float = 0.0,
    param_budget: Optional[int] = None,
    name: Optional[str] = None,
) -> keras.Model:
    """Builds a transformer encoder-decoder for `spec`'s seq2seq head: inputs [source tokens, decoder input],
    per-step logits.

    Args:
      spec: the task's `TaskSpec` (only `inputs` and `outputs` are read); its head must be "seq2seq".
      d_model: width of the embeddings and of every block. Ignored when `param_budget` is set.
      layers: blocks in the encoder and, as many, in the decoder.
      heads: attention heads per attention layer; each head is d_model // heads wide (at least 1).
      ff_multiplier: the feed-forward layers are round(ff_multiplier * d_model) wide.
      dropout: on the embedded inputs, the attention weights and each residual branch.
      param_budget: choose d_model (at fixed layers, heads and ff_multiplier) so the trainable parameter count is
        within 5% of this number.
      name: model name; default "seq2seq_transformer".
    """
    if param_budget is not None:
        options = dict(layers=layers, heads=heads, ff_multiplier=ff_multiplier, dropout=dropout, name=name)
        return budget.checked(seq2seq_transformer(spec, d_model=_budget_width(spec, param_budget, options),
                                                  **options), param_budget)
    _check(spec, d_model, layers, heads, ff_multiplier, dropout)
    width, key = max(1, round(ff_multiplier * d_model)), max(1, d_model // heads)
    source = keras.Input((spec.inputs.length,), dtype="int32", name=SEQ2SEQ_INPUTS[0])
    decoder_in = keras.Input((None,), dtype="int32", name=SEQ2SEQ_INPUTS[1])

    mask = PaddingMask("tokens", name="padding_mask")(source)
    x = keras.layers.Embedding(spec.inputs.vocab_size, d_model, name="encoder_embedding")(source)
    x = _dropout(SinusoidalPositions(name="encoder_positions")(x), dropout, "encoder_input")
    allowed = AttentionMask(name="encoder_attention_mask")(mask)
    for i in range(1, layers + 1):
        normed = keras.layers.LayerNormalization(epsilon=1e-6, name=f"encoder{i}_attention_norm")(x)
        attended = keras.layers.MultiHeadAttention(heads, key, dropout=dropout, name=f"encoder{i}_attention")(
            normed, normed, attention_mask=allowed)
        x = keras.layers.Add(name=f"encoder{i}_attention_residual")([x, _dropout(attended, dropout, f"encoder{i}_a")])
        x = _feed_forward(x, width, d_model, dropout, f"encoder{i}")
    encoded = keras.layers.LayerNormalization(epsilon=1e-6, name="encoder_norm")(x)

    # No padding mask on the decoder: targets are right-padded and self-attention is causal, so a real step never
    # sees a padded one; the loss ignores the padded targets.
    y = keras.layers.Embedding(spec.outputs.num_classes, d_model, name="decoder_embedding")(decoder_in)
    y = _dropout(SinusoidalPositions(name="decoder_positions")(y), dropout, "decoder_input")
    for i in range(1, layers + 1):
        normed = keras.layers.LayerNormalization(epsilon=1e-6, name=f"decoder{i}_self_attention_norm")(y)
        attended = keras.layers.MultiHeadAttention(heads, key, dropout=dropout, name=f"decoder{i}_self_attention")(
            normed, normed, use_causal_mask=True)
        y = keras.layers.Add(name=f"decoder{i}_self_residual")([y, _dropout(attended, dropout, f"decoder{i}_s")])
        normed = keras.layers.LayerNormalization(epsilon=1e-6, name=f"decoder{i}_cross_attention_norm")(y)
        context, scores = keras.layers.MultiHeadAttention(heads, key, dropout=dropout,
                                                          name=f"decoder{i}_cross_attention")(
            normed, encoded, attention_mask=CrossAttentionMask(name=f"decoder{i}_cross_mask")([normed, mask]),
            return_attention_scores=True)
        if i == layers:
            context, _ = HeadAveragedAlignment(name=SEQ2SEQ_ALIGNMENT_LAYER)([context, scores])
        y = keras.layers.Add(name=f"decoder{i}_cross_residual")([y, _dropout(context, dropout, f"decoder{i}_c")])
        y = _feed_forward(y, width, d_model, dropout, f"decoder{i}")
    y = keras.layers.LayerNormalization(epsilon=1e-6, name="decoder_norm")(y)
    # float32 logits whatever the dtype policy: the loss stays float32 under mixed precision
    logits = keras.layers.Dense(spec.outputs.num_classes, name="logits", dtype="float32")(y)
    model = keras.Model([source, decoder_in], logits, name=name or "seq2seq_transformer")
    return budget.record_facts(model, d_model=d_model, layers=layers, heads=heads, ff_units=width)


seq2seq_transformer.heads = HEADS  # the runner refuses other heads before building (rnnbench.spec)


def _feed_forward(x, width: int, d_model: int, dropout: float, prefix: str):
    normed = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{prefix}_ff_norm")(x)
    hidden = keras.layers.Dense(width, activation="gelu", name=f"{prefix}_ff_hidden")(normed)
    out = keras.layers.Dense(d_model, name=f"{prefix}_ff_out")(hidden)
    return keras.layers.Add(name=f"{prefix}_ff_residual")([x, _dropout(out, dropout, f"{prefix}_ff")])


def _dropout(x, rate: float, prefix: str):
    return keras.layers.Dropout(rate, name=f"{prefix}_dropout")(x) if rate else x


def _check(spec, d_model, layers, heads, ff_multiplier, dropout) -> None:
    if spec.outputs.head != "seq2seq":
        raise IncompatibleModelError(
            f"seq2seq_transformer builds the seq2seq head only; task {spec.name!r} has head {spec.outputs.head!r}: "
            "use transformer there")
    if spec.inputs.kind != "tokens":
        raise IncompatibleModelError(f"seq2seq_transformer reads token ids; task {spec.name!r} gives "
                                     f"{spec.inputs.kind!r} inputs")
    for label, value in (("d_model", d_model), ("layers", layers), ("heads", heads)):
        if value < 1:
            raise IncompatibleModelError(f"seq2seq_transformer: {label} must be >= 1, got {value}")
    if ff_multiplier <= 0:
        raise IncompatibleModelError(f"seq2seq_transformer: ff_multiplier must be positive, got {ff_multiplier}")
    if not 0.0 <= dropout < 1.0:
        raise IncompatibleModelError(f"seq2seq_transformer: dropout must be in [0, 1), got {dropout}")


# (inputs, outputs, budget, options) -> d_model, searched once per process (the search builds throwaway models).
_BUDGET_WIDTHS: dict = {}


def _budget_width(spec: TaskSpec, param_budget: int, options: dict) -> int:
    """The d_model nearest `param_budget` trainable parameters, within 5%, counted on built models; Python's random
    state (Keras draws unseeded initialisers' seeds from it) is put back, so the model built afterwards depends on
    the caller's seed alone."""
    key = (spec.inputs, spec.outputs, param_budget, tuple(sorted(options.items())))
    if key in _BUDGET_WIDTHS:
        return _BUDGET_WIDTHS[key]
    state, sizes = random.getstate(), {}

    def size(d_model: int) -> int:
        if d_model not in sizes:
            sizes[d_model] = count_trainable(seq2seq_transformer(spec, d_model=d_model, **options))
        return sizes[d_model]

    try:
        best = budget.nearest(size, param_budget, what="seq2seq_transformer", option="d_model",
                              hint="change layers, heads or ff_multiplier")
    finally:
        random.setstate(state)
    _BUDGET_WIDTHS[key] = best
    return best
