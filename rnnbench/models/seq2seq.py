"""Encoder-decoder networks for the seq2seq head (grapheme-to-phoneme and any other sequence-to-sequence task).

One generic builder, `seq2seq_model`, and registered names that fix its cell and attention:
`seq2seq_<cell>` (no attention), `seq2seq_<cell>_bahdanau`, `seq2seq_<cell>_luong`, for cell simple_rnn, lstm, gru.

Encoder: embedding of the source tokens, one recurrent layer (both ways with `bidirectional_encoder`), padding masked.
Decoder: embedding of the decoder input (the start token, then the target shifted right: teacher forcing in
training), one recurrent layer of the same cell whose initial state is the encoder's final state (a bidirectional
encoder's two final states pass through a tanh `bridge_<i>` Dense, so the decoder keeps `units` units).
Without attention the decoder's outputs go straight to the logits, so the final state is all the decoder knows of
the source (Sutskever et al. 2014). With attention, each decoder output h_t queries the encoder outputs s_j:
  bahdanau  additive score v . tanh(W_q h_t + W_k s_j + b) (Bahdanau et al. 2015)
  luong     multiplicative ("general") score h_t . W s_j (Luong et al. 2015)
and the context c_t = sum_j a_tj s_j joins h_t in Luong's attentional state tanh(W_c [h_t; c_t]) before the logits.
Both attend from the decoder's output (Luong's placement), not from its previous state into the recurrence (as in
Bahdanau's original): the scores differ, the placement is shared, so the decoder stays one Keras recurrent layer
over the whole teacher-forced sequence and trains as fast as the model without attention.

Inference needs no second model: decoding (greedy or beam search, `rnnbench.tasks.g2p.decoding`) calls this same
model on the tokens written so far and reads the logits of the last step, so nothing can drift out of sync with the
trained layers. Every builder here refuses the other heads, and declares `heads = ("seq2seq",)` for the runner.
"""
from __future__ import annotations

import random
from typing import Optional

import keras
from keras import ops

from rnnbench.models import budget as budget_search
from rnnbench.models.layers import ApplyMask, PaddingMask
from rnnbench.models.recurrent import CELLS, IncompatibleModelError, count_trainable, variant_builder
from rnnbench.registry import register_model
from rnnbench.spec import SEQ2SEQ_ALIGNMENT_LAYER, SEQ2SEQ_INPUTS, TaskSpec

ATTENTIONS = ("none", "bahdanau", "luong")
HEADS = ("seq2seq",)


@keras.saving.register_keras_serializable(package="rnnbench")
class Alignment(keras.layers.Layer):
    """Attention of each decoder step over the encoder steps. Called on `[queries (batch, T_out, d_q), keys
    (batch, T_in, d_k), key mask (batch, T_in)]`, returns `[context (batch, T_out, d_k), weights (batch, T_out,
    T_in)]`; padded source steps get no weight. `score`: "bahdanau" (additive) or "luong" (multiplicative).

    It is named `SEQ2SEQ_ALIGNMENT_LAYER`, not `rnnbench.attention`'s name, and does not set
    `returns_attention_weights`: the runner's generic attention plot draws pooling and self-attention maps, while
    letters against phonemes are the task's own plot (it reads the weights back by this layer's name)."""

    def __init__(self, score: str = "bahdanau", units: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.score, self.units = score, units

    def build(self, input_shape):
        queries, keys = input_shape[0][-1], input_shape[1][-1]
        if self.score == "bahdanau":
            self.w_query = self.add_weight(name="w_query", shape=(queries, self.units), initializer="glorot_uniform")
            self.w_key = self.add_weight(name="w_key", shape=(keys, self.units), initializer="glorot_uniform")
            self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
            self.v = self.add_weight(name="v", shape=(self.units,), initializer="glorot_uniform")
        else:
            self.w = self.add_weight(name="w", shape=(queries, keys), initializer="glorot_uniform")

    def call(self, inputs):
        queries, keys, mask = inputs
        if self.score == "bahdanau":
            # (batch, T_out, 1, units) + (batch, 1, T_in, units): every pair, then v reduces the units away.
            hidden = ops.tanh(ops.expand_dims(ops.tensordot(queries, self.w_query, axes=1), 2)
                              + ops.expand_dims(ops.tensordot(keys, self.w_key, axes=1), 1) + self.bias)
            scores = ops.tensordot(hidden, self.v, axes=1)
        else:
            scores = ops.matmul(ops.tensordot(queries, self.w, axes=1), ops.transpose(keys, (0, 2, 1)))
        scores = ops.where(ops.expand_dims(mask, 1), scores, ops.full_like(scores, -1e9))
        weights = ops.softmax(scores, axis=-1)
        return [ops.matmul(weights, keys), weights]

    def compute_output_spec(self, inputs):
        queries, keys, _ = inputs
        return [keras.KerasTensor((*queries.shape[:2], keys.shape[-1]), dtype=queries.dtype),
                keras.KerasTensor((*queries.shape[:2], keys.shape[1]), dtype=queries.dtype)]

    def compute_mask(self, inputs, mask=None):
        return [None, None]

    def get_config(self):
        return {**super().get_config(), "score": self.score, "units": self.units}


def seq2seq_model(
    spec: TaskSpec,
    *,
    cell: str = "lstm",
    attention: str = "none",
    bidirectional_encoder: bool = False,
    units: int = 64,
    embedding_dim: int = 64,
    attention_units: int = 64,
    dropout: float = 0.0,
    param_budget: Optional[int] = None,
    name: Optional[str] = None,
) -> keras.Model:
    """Builds an encoder-decoder for `spec`'s seq2seq head: inputs [source tokens, decoder input], per-step logits.

    Args:
      spec: the task's `TaskSpec` (only `inputs` and `outputs` are read); its head must be "seq2seq".
      cell: "simple_rnn", "lstm" or "gru", for the encoder and the decoder.
      attention: "none" (the encoder's final state initialises the decoder, nothing else passes), "bahdanau"
        (additive) or "luong" (multiplicative) attention of every decoder step over the encoder's outputs.
      bidirectional_encoder: read the source both ways (`units` per direction); a tanh Dense bridges the two final
        states to the decoder's `units`.
      units: width of the encoder (per direction) and the decoder. Ignored when `param_budget` is set.
      embedding_dim: width of the source and the target embeddings.
      attention_units: width of the additive scorer (bahdanau only).
      dropout: on the recurrent layers' inputs and before the logits.
      param_budget: choose `units` so the trainable parameter count is within 5% of this number.
      name: model name; defaults to the cell and the attention.
    """
    if param_budget is not None:
        options = dict(cell=cell, attention=attention, bidirectional_encoder=bidirectional_encoder,
                       embedding_dim=embedding_dim, attention_units=attention_units, dropout=dropout, name=name)
        return seq2seq_model(spec, units=_budget_units(spec, param_budget, options), **options)
    _check(spec, cell, attention, units, embedding_dim, attention_units, dropout)
    out = spec.outputs
    name = name or "_".join(filter(None, ["seq2seq", "bi" if bidirectional_encoder else "", cell,
                                          "" if attention == "none" else attention]))
    source = keras.Input((spec.inputs.length,), dtype="int32", name=SEQ2SEQ_INPUTS[0])
    decoder_in = keras.Input((None,), dtype="int32", name=SEQ2SEQ_INPUTS[1])

    mask = PaddingMask("tokens", name="padding_mask")(source)
    x = keras.layers.Embedding(spec.inputs.vocab_size, embedding_dim, name="encoder_embedding")(source)
    encoder = CELLS[cell](units, return_sequences=True, return_state=True, dropout=dropout, name=f"encoder_{cell}")
    if bidirectional_encoder:
        encoder = keras.layers.Bidirectional(encoder, name="encoder")
    encoded, *states = encoder(ApplyMask(name="encoder_mask")([x, mask]))
    if bidirectional_encoder:  # [h, c] per direction for an LSTM, [h] otherwise: join each pair and bridge it
        half = len(states) // 2
        states = [keras.layers.Dense(units, activation="tanh", name=f"bridge_{i + 1}")(
            keras.layers.Concatenate(name=f"final_state_{i + 1}")([forward, backward]))
            for i, (forward, backward) in enumerate(zip(states[:half], states[half:]))]

    # No mask on the decoder: targets are right-padded, so padded steps come after every real one and a
    # left-to-right decoder's real outputs never see them; the loss ignores the padded targets.
    y = keras.layers.Embedding(out.num_classes, embedding_dim, name="decoder_embedding")(decoder_in)
    decoded = CELLS[cell](units, return_sequences=True, dropout=dropout, name=f"decoder_{cell}")(
        y, initial_state=states)
    if attention != "none":
        context, _ = Alignment(attention, attention_units, name=SEQ2SEQ_ALIGNMENT_LAYER)([decoded, encoded, mask])
        decoded = keras.layers.Dense(units, activation="tanh", name="attentional_state")(
            keras.layers.Concatenate(name="output_and_context")([decoded, context]))
    if dropout:
        decoded = keras.layers.Dropout(dropout, name="output_dropout")(decoded)
    # float32 logits whatever the dtype policy: the loss stays float32 under mixed precision
    logits = keras.layers.Dense(out.num_classes, name="logits", dtype="float32")(decoded)
    return keras.Model([source, decoder_in], logits, name=name)


def _check(spec, cell, attention, units, embedding_dim, attention_units, dropout) -> None:
    if spec.outputs.head != "seq2seq":
        raise IncompatibleModelError(
            f"the encoder-decoders (seq2seq_*) build the seq2seq head only; task {spec.name!r} has head "
            f"{spec.outputs.head!r}: use simple_rnn, lstm, gru or their variants there")
    if spec.inputs.kind != "tokens":
        raise IncompatibleModelError(f"the encoder-decoders read token ids; task {spec.name!r} gives "
                                     f"{spec.inputs.kind!r} inputs")
    if cell not in CELLS:
        raise IncompatibleModelError(f"unknown cell {cell!r}; choose one of {sorted(CELLS)}")
    if attention not in ATTENTIONS:
        raise IncompatibleModelError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
    for label, value in (("units", units), ("embedding_dim", embedding_dim), ("attention_units", attention_units)):
        if value < 1:
            raise IncompatibleModelError(f"{label} must be >= 1, got {value}")
    if not 0.0 <= dropout < 1.0:
        raise IncompatibleModelError(f"dropout must be in [0, 1), got {dropout}")


# (inputs, outputs, budget, options) -> units, searched once per process (the search builds throwaway models).
_BUDGET_UNITS: dict = {}


def _budget_units(spec: TaskSpec, budget: int, options: dict) -> int:
    """The width nearest `budget` trainable parameters, within 5% (`budget.nearest`; parameters grow with the
    width). Python's random state (Keras draws unseeded initialisers' seeds from it) is put back,
    so the model built afterwards depends on the caller's seed alone."""
    key = (spec.inputs, spec.outputs, budget, tuple(sorted(options.items())))
    if key in _BUDGET_UNITS:
        return _BUDGET_UNITS[key]
    state, sizes = random.getstate(), {}

    def size(units: int) -> int:
        if units not in sizes:
            sizes[units] = count_trainable(seq2seq_model(spec, units=units, **options))
        return sizes[units]

    try:
        best = budget_search.nearest(size, budget, what=options["name"] or "the encoder-decoder", option="units",
                                     hint="shrink embedding_dim")
    finally:
        random.setstate(state)
    _BUDGET_UNITS[key] = best
    return best


def register_seq2seq(registered_name: str, cell: str, attention: str):
    """Registers the builder of one encoder-decoder under `registered_name` (written literally at each call, so
    `registry.declared_names` finds it without importing this module)."""
    summary = (f"An encoder-decoder of {cell} cells, {'no' if attention == 'none' else attention} attention, for "
               "the seq2seq head")
    builder = variant_builder(seq2seq_model, registered_name, {"cell": cell, "attention": attention}, summary)
    builder.heads = HEADS  # the runner refuses other heads before building (rnnbench.spec.SINGLE_INPUT_HEADS)
    return register_model(registered_name, family="recurrent")(builder)


seq2seq_simple_rnn = register_seq2seq("seq2seq_simple_rnn", "simple_rnn", "none")
seq2seq_lstm = register_seq2seq("seq2seq_lstm", "lstm", "none")
seq2seq_gru = register_seq2seq("seq2seq_gru", "gru", "none")
seq2seq_simple_rnn_bahdanau = register_seq2seq("seq2seq_simple_rnn_bahdanau", "simple_rnn", "bahdanau")
seq2seq_lstm_bahdanau = register_seq2seq("seq2seq_lstm_bahdanau", "lstm", "bahdanau")
seq2seq_gru_bahdanau = register_seq2seq("seq2seq_gru_bahdanau", "gru", "bahdanau")
seq2seq_simple_rnn_luong = register_seq2seq("seq2seq_simple_rnn_luong", "simple_rnn", "luong")
seq2seq_lstm_luong = register_seq2seq("seq2seq_lstm_luong", "lstm", "luong")
seq2seq_gru_luong = register_seq2seq("seq2seq_gru_luong", "gru", "luong")
