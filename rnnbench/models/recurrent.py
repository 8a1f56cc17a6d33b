"""The recurrent model zoo: one generic builder, `recurrent_model`, and the registered names that fix its cell,
direction and attention.

Backbone: embedding (token inputs) or the raw features, optional frame stacking, `layers` stacked recurrent layers.
Head, chosen by `spec.outputs.head`:
  classification  last state (or additive attention pooling) -> Dense(num_classes) logits
  causal_steps    every step (or causal self-attention over the steps) -> Dense(num_classes) logits per step
  ctc             every frame (or self-attention, both ways) -> Dense(num_classes + 1) logits, blank at index 0
  forecast        last state (or additive attention pooling) -> Dense(horizon * targets) reshaped

Carried state: on a task whose batches are parallel streams (`spec.inputs.streams`, e.g. char_lm task.state=carried),
plain unidirectional models build stateful layers with a fixed batch of `streams` examples, so each batch starts
from the state the batch before left (truncated backpropagation through time); `stateful_twin` gives such a model's
batch-1 copy for generation, `reset_states` zeroes what it carries.
"""
from __future__ import annotations

import functools
import inspect
import random
from typing import Callable, Optional

import keras

from rnnbench.attention import ATTENTION_LAYER_NAME
from rnnbench.errors import UserError
from rnnbench.models.layers import (
    AdditiveAttentionPooling,
    ApplyMask,
    CTCBlankFill,
    MaskedPooling,
    PaddingMask,
    SelfAttentionBlock,
    StackFrames,
)
from rnnbench.registry import register_model
from rnnbench.spec import SINGLE_INPUT_HEADS, TaskSpec
from rnnbench.state import is_stateful, reset_states, state_variables, stateful_twin  # noqa: F401  (re-exported)

CELLS = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


class IncompatibleModelError(UserError, ValueError):
    """A model that cannot serve a task's head, e.g. a bidirectional model on a causal task."""


def recurrent_model(
    spec: TaskSpec,
    *,
    cell: str = "lstm",
    bidirectional: bool = False,
    attention: bool = False,
    units: int = 64,
    layers: int = 1,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    embedding_dim: int = 64,
    attention_units: int = 64,
    attention_heads: int = 4,
    attention_with_last_state: bool = False,
    subsample: int = 1,
    param_budget: Optional[int] = None,
    stateful: Optional[bool] = None,
    pooling: str = "last",
    name: Optional[str] = None,
) -> keras.Model:
    """Builds a recurrent network for `spec`'s inputs and head.

    Args:
      spec: the task's `TaskSpec` (only `inputs` and `outputs` are read).
      cell: "simple_rnn", "lstm" or "gru".
      bidirectional: run each recurrent layer both ways and concatenate (refused on causal heads).
      attention: additive attention pooling (classification, forecast) or self-attention over the RNN outputs
        (causal for causal_steps, both ways for ctc).
      units: width of each recurrent layer (per direction). Ignored when `param_budget` is set.
      layers: number of stacked recurrent layers.
      dropout: dropout on each recurrent layer's inputs and after the last one.
      recurrent_dropout: dropout on the recurrent state; > 0 makes LSTM/GRU ineligible for the fused cuDNN kernel.
      embedding_dim: embedding width for token inputs.
      attention_units: width of the additive attention scorer.
      attention_heads: heads of the self-attention block.
      attention_with_last_state: classification and forecast heads: give the head the last recurrent state beside
        the attention context ([context, last state], as in Luong et al. 2015), so attention adds to what the plain
        model sees instead of replacing it.
      subsample: stack this many consecutive frames into one before the recurrent layers (ctc and classification).
      param_budget: choose `units` so the trainable parameter count is within 5% of this number.
      stateful: carry each recurrent layer's state from one batch to the next (a fixed batch of
        `spec.inputs.streams` examples). None follows the task: stateful exactly when its batches are parallel
        streams; False trains every window from a zero state even then. Causal_steps head, unidirectional, no
        attention.
      pooling: what a classification or forecast head reads from the last recurrent layer: "last" its state after
        the last real step, "max" or "mean" over the real steps of its outputs (max pooling over time as in Johnson
        and Zhang 2016). Attention models pool with attention instead, so only "last" applies to them.
      name: model name; defaults to the cell and its variants.
    """
    require_single_input_head(spec, name or cell)
    if param_budget is not None:
        return _fit_param_budget(
            spec, param_budget, cell=cell, bidirectional=bidirectional, attention=attention, layers=layers,
            dropout=dropout, recurrent_dropout=recurrent_dropout, embedding_dim=embedding_dim,
            attention_units=attention_units, attention_heads=attention_heads,
            attention_with_last_state=attention_with_last_state, subsample=subsample, stateful=stateful,
            pooling=pooling, name=name,
        )
    stateful = _check_stateful(spec, stateful, bidirectional, attention)
    _check_options(spec, cell, bidirectional, units, layers, dropout, recurrent_dropout, subsample)
    _check_pooling(spec, pooling, attention)
    head = spec.outputs.head
    name = name or "_".join(filter(None, ["bi" if bidirectional else "", cell, "attention" if attention else ""]))

    inputs, x, mask = _inputs(spec, embedding_dim, spec.inputs.streams if stateful else None)
    if subsample > 1:
        x, mask = StackFrames(subsample, name="stack_frames")([x, mask])
    needs_sequence = head in ("causal_steps", "ctc") or attention or pooling != "last"
    pooled = attention and head in ("classification", "forecast")
    last_state = None
    for i in range(layers):
        keep_state = pooled and attention_with_last_state and i == layers - 1
        rnn = CELLS[cell](
            units,
            return_sequences=needs_sequence or i < layers - 1,
            return_state=keep_state,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            stateful=stateful,
            name=f"{cell}_{i + 1}",
        )
        if bidirectional:
            rnn = keras.layers.Bidirectional(rnn, name=f"bidirectional_{i + 1}")
        x = rnn(ApplyMask(name=f"mask_{i + 1}")([x, mask]) if mask is not None else x)
        if keep_state:
            # The state after each direction's last real step ([h, c] per direction for an LSTM, [h] otherwise).
            x, *states = x
            hidden = states[0::2] if cell == "lstm" else states
            last_state = hidden[0] if len(hidden) == 1 else keras.layers.Concatenate(name="last_state")(hidden)
    if dropout:
        x = keras.layers.Dropout(dropout, name="output_dropout")(x)
        if last_state is not None:
            last_state = keras.layers.Dropout(dropout, name="last_state_dropout")(last_state)

    if attention:
        attention_mask = mask if mask is not None else _all_true(x)
        if pooled:
            x, _ = AdditiveAttentionPooling(attention_units, name=ATTENTION_LAYER_NAME)([x, attention_mask])
            if last_state is not None:
                x = keras.layers.Concatenate(name="context_and_last_state")([x, last_state])
        else:
            x, _ = SelfAttentionBlock(attention_heads, causal=head == "causal_steps", name=ATTENTION_LAYER_NAME)(
                [x, attention_mask]
            )
    elif pooling != "last":
        x = MaskedPooling(pooling, name=f"{pooling}_pooling")([x, mask if mask is not None else _all_true(x)])
    outputs = _head(spec, x, mask)
    return keras.Model(inputs, outputs, name=name)


def _inputs(spec: TaskSpec, embedding_dim: int, batch: Optional[int] = None):
    """Returns (input tensor, backbone input, explicit mask or None); `batch` fixes the batch size (stateful)."""
    given = spec.inputs
    if given.kind == "tokens":
        inputs = keras.Input(batch_shape=(batch, given.length), dtype="int32", name="tokens")
        x = keras.layers.Embedding(given.vocab_size, embedding_dim, name="embedding")(inputs)
    else:
        inputs = keras.Input(batch_shape=(batch, given.length, given.feature_dim), dtype="float32", name="features")
        x = inputs
    mask = PaddingMask(given.kind, given.pad_value, name="padding_mask")(inputs) if given.masked else None
    return inputs, x, mask


def _all_true(x):
    return PaddingMask("none", name="no_padding")(x)


def _head(spec: TaskSpec, x, mask):
    # float32 outputs whatever the dtype policy: under mixed precision the loss (softmax, CTC, MSE) stays float32
    out = spec.outputs
    if out.head == "classification":
        return keras.layers.Dense(out.num_classes, name="logits", dtype="float32")(x)
    if out.head == "causal_steps":
        return keras.layers.Dense(out.num_classes, name="logits", dtype="float32")(x)
    if out.head == "ctc":
        logits = keras.layers.Dense(out.num_classes + 1, name="frame_logits", dtype="float32")(x)
        if mask is None:
            return logits
        return CTCBlankFill(name="logits", dtype="float32")([logits, mask])
    flat = keras.layers.Dense(out.horizon * out.targets, name="forecast", dtype="float32")(x)
    return keras.layers.Reshape((out.horizon, out.targets), name="prediction", dtype="float32")(flat)


def _check_options(spec, cell, bidirectional, units, layers, dropout, recurrent_dropout, subsample):
    if cell not in CELLS:
        raise IncompatibleModelError(f"unknown cell {cell!r}; choose one of {sorted(CELLS)}")
    if bidirectional and spec.outputs.causal:
        raise IncompatibleModelError(
            f"task {spec.name!r} is causal (head {spec.outputs.head!r}): a bidirectional model would read the "
            "characters it has to predict. Use a unidirectional model (simple_rnn, lstm, gru, lstm_attention, "
            "gru_attention)."
        )
    check_subsample(spec, subsample)
    for label, value, low in (("units", units, 1), ("layers", layers, 1), ("subsample", subsample, 1)):
        if value < low:
            raise IncompatibleModelError(f"{label} must be >= {low}, got {value}")
    for label, value in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
        if not 0.0 <= value < 1.0:
            raise IncompatibleModelError(f"{label} must be in [0, 1), got {value}")


POOLINGS = ("last", "max", "mean")


def require_single_input_head(spec: TaskSpec, model: str) -> None:
    """Refuses the heads of several inputs (seq2seq), which the builders of rnnbench.models.seq2seq build."""
    if spec.outputs.head not in SINGLE_INPUT_HEADS:
        raise IncompatibleModelError(
            f"{model} reads one input sequence and cannot build head {spec.outputs.head!r} (task {spec.name!r}); "
            "use an encoder-decoder of rnnbench.models.seq2seq (seq2seq_lstm, seq2seq_gru_bahdanau, ...)")


def _check_pooling(spec: TaskSpec, pooling: str, attention: bool) -> None:
    if pooling not in POOLINGS:
        raise UserError(f"model.pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    if pooling == "last":
        return
    if spec.outputs.head not in ("classification", "forecast"):
        raise IncompatibleModelError(
            f"pooling={pooling!r} pools a sequence into one vector, which only classification and forecast heads "
            f"read; head {spec.outputs.head!r} takes every step: leave model.pooling at 'last'")
    if attention:
        raise IncompatibleModelError(
            f"pooling={pooling!r} would replace the attention pooling of an attention model; leave model.pooling at "
            "'last' for attention models, or use the plain cell")


def _check_stateful(spec: TaskSpec, stateful: Optional[bool], bidirectional: bool, attention: bool) -> bool:
    """Whether to build stateful layers; refuses what cannot carry a state from one batch to the next."""
    streams = spec.inputs.streams
    if stateful is False or (stateful is None and streams is None):
        return False
    if streams is None:
        raise IncompatibleModelError(
            f"stateful=True needs a task whose batches are parallel streams, and task {spec.name!r} has independent "
            "examples; for char_lm set task.state=carried, or leave model.stateful unset")
    if spec.outputs.head != "causal_steps" or spec.inputs.masked:
        raise IncompatibleModelError(
            f"carried state is built for unpadded causal_steps heads, not head {spec.outputs.head!r}"
            f"{' with padding' if spec.inputs.masked else ''}; set model.stateful=false")
    carries = f"task {spec.name!r} carries the recurrent state across batches ({streams} parallel streams)"
    if bidirectional:
        raise IncompatibleModelError(
            f"{carries}, and a bidirectional model's backward pass would have to start from the end of the stream, "
            "which has not been read yet (it would also read the characters it predicts). Use simple_rnn, lstm or "
            "gru")
    if attention:
        raise IncompatibleModelError(
            f"{carries}, and an attention model's self-attention sees only the current window, so it cannot carry "
            "what it computed into the next one. Use simple_rnn, lstm or gru here; compare attention models on the "
            "zero-state task (char_lm: task.state=zero), or set model.stateful=false to train them on these "
            "batches from a zero state per window")
    return True


def check_subsample(spec: TaskSpec, subsample: int) -> None:
    """Frame stacking shortens the output sequence, which only the ctc and classification heads allow."""
    if subsample > 1 and spec.outputs.head not in ("ctc", "classification"):
        raise IncompatibleModelError(
            f"subsample={subsample} only applies to ctc and classification heads, not {spec.outputs.head!r}"
        )


def count_trainable(model: keras.Model) -> int:
    return int(sum(int(keras.ops.size(w)) for w in model.trainable_weights))


# (inputs, outputs, budget, options) -> units; the search builds a dozen models, so do it once per process.
_BUDGET_WIDTHS: dict = {}
_WIDEST = 8192  # param_budget never searches wider than this


def _fit_param_budget(spec: TaskSpec, budget: int, **options) -> keras.Model:
    """The model whose width puts it nearest `budget` parameters; the width is searched once and remembered.

    The search builds throwaway models, and Keras draws each unseeded initializer's seed from Python's `random`.
    Its state is put back afterwards, so the returned model's weights depend on the caller's seed alone, whether
    the width was searched now or remembered from before.
    """
    key = (spec.inputs, spec.outputs, budget, tuple(sorted(options.items())))
    if key not in _BUDGET_WIDTHS:
        state = random.getstate()
        try:
            _BUDGET_WIDTHS[key] = _search_width(spec, budget, options)
        finally:
            random.setstate(state)
    return recurrent_model(spec, units=_BUDGET_WIDTHS[key], **options)


def _search_width(spec: TaskSpec, budget: int, options: dict) -> int:
    """Largest `units` within the budget (parameters grow monotonically with width), then the closer neighbour.

    The width is bracketed by doubling before the binary search: building a throwaway model thousands of units
    wide (orthogonal initialisation of a 4096 x 16384 recurrent kernel) costs seconds, and budgets need far less.
    """
    sizes: dict[int, int] = {}

    def size(units):
        if units not in sizes:
            sizes[units] = count_trainable(recurrent_model(spec, units=units, **options))
        return sizes[units]

    low, high = 1, 2
    if size(low) > budget * 1.05:
        raise IncompatibleModelError(
            f"param_budget={budget} is too small: even units=1 needs {size(low)} parameters "
            "(embeddings and heads count too); raise the budget or shrink embedding_dim"
        )
    while size(high) <= budget and high < _WIDEST:
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        if size(mid) <= budget:
            low = mid
        else:
            high = mid
    best = min((low, high), key=lambda units: abs(size(units) - budget))
    closest = size(best)
    if abs(closest - budget) / budget > 0.05:
        name = options.get("name") or options.get("cell")
        raise IncompatibleModelError(
            f"no width puts {name} within 5% of param_budget={budget} (closest: {closest}); "
            "change the budget or the number of layers"
        )
    return best


def variant_builder(model_fn: Callable, registered_name: str, fixed: dict, summary: str) -> Callable:
    """`model_fn` with the options `fixed` bound, as the builder registered under `registered_name`: its signature
    and docstring are `model_fn`'s without them, and an unknown option names the ones that exist."""

    @functools.wraps(model_fn)
    def builder(spec: TaskSpec, **options) -> keras.Model:
        valid = [name for name in inspect.signature(model_fn).parameters if name not in (*fixed, "spec")]
        unknown = sorted(set(options) - set(valid))
        if unknown:  # a typo names the options that exist, not a TypeError from deep inside
            raise UserError(f"{registered_name}() has no option {unknown[0]!r}; its options: {', '.join(valid)}")
        options.setdefault("name", registered_name)
        return model_fn(spec, **fixed, **options)

    signature = inspect.signature(model_fn)
    builder.__signature__ = signature.replace(
        parameters=[p for p in signature.parameters.values() if p.name not in fixed])
    builder.__name__ = builder.__qualname__ = registered_name
    builder.__doc__ = (f"{summary}; options as in `{model_fn.__name__}`.\n\n"
                       + model_fn.__doc__.split("Args:", 1)[1].join(["Args:", ""]))
    return builder


def register_recurrent(registered_name: str, cell: str, bidirectional: bool, attention: bool):
    """Registers the builder of one recurrent variant under `registered_name` (the name is written literally at each
    call, so `registry.declared_names` finds it without importing this module)."""
    variant = " ".join(filter(None, ["bidirectional" if bidirectional else "", cell,
                                     "with attention" if attention else ""]))
    fixed = {"cell": cell, "bidirectional": bidirectional, "attention": attention}
    builder = variant_builder(recurrent_model, registered_name, fixed, f"A {variant} network for any task head")
    return register_model(registered_name, family="recurrent")(builder)


simple_rnn = register_recurrent("simple_rnn", "simple_rnn", False, False)
lstm = register_recurrent("lstm", "lstm", False, False)
gru = register_recurrent("gru", "gru", False, False)
bi_simple_rnn = register_recurrent("bi_simple_rnn", "simple_rnn", True, False)
bi_lstm = register_recurrent("bi_lstm", "lstm", True, False)
bi_gru = register_recurrent("bi_gru", "gru", True, False)
lstm_attention = register_recurrent("lstm_attention", "lstm", False, True)
gru_attention = register_recurrent("gru_attention", "gru", False, True)
bi_lstm_attention = register_recurrent("bi_lstm_attention", "lstm", True, True)
