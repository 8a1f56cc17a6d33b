"""A small transformer encoder, the attention-only alternative to recurrence, for every head kind.

Backbone: the token embedding (projected to `d_model` when its width differs) or a projection of the features,
optional frame stacking, sinusoidal or learned positions, then `layers` pre-norm blocks: x + MHA(LN(x)), then
x + FF(LN(x)), and a final layer norm. Padded keys are masked out of every attention; on causal_steps each step also
attends only to itself and earlier steps, so the model stays a language model. Heads:
  classification, forecast  masked mean over the real steps (or the last real step) -> Dense
  causal_steps, ctc         every step -> Dense (ctc: padded frames forced to the blank)
"""
from __future__ import annotations

from typing import Optional

import keras

from rnnbench.models import budget
from rnnbench.models.layers import PaddingMask, StackFrames
from rnnbench.models.recurrent import (IncompatibleModelError, _head, _inputs, check_subsample,
                                       require_single_input_head)
from rnnbench.models.sequence_layers import (
    AttentionMask,
    LastRealStep,
    LearnedPositions,
    MaskedMeanPooling,
    SinusoidalPositions,
)
from rnnbench.registry import register_model
from rnnbench.spec import TaskSpec

POSITIONS = ("sinusoidal", "learned")
READOUTS = ("mean", "last")


@register_model("transformer", family="transformer")
def transformer(
    spec: TaskSpec,
    *,
    d_model: int = 64,
    layers: int = 2,
    heads: int = 4,
    ff_multiplier: float = 4.0,
    ff_units: Optional[int] = None,
    dropout: float = 0.0,
    positions: str = "sinusoidal",
    max_length: Optional[int] = None,
    embedding_dim: int = 64,
    readout: str = "mean",
    subsample: int = 1,
    param_budget: Optional[int] = None,
    name: Optional[str] = None,
) -> keras.Model:
    """Builds a transformer encoder for `spec`'s inputs and head.

    Args:
      spec: the task's `TaskSpec` (only `inputs` and `outputs` are read).
      d_model: the width of every block. Ignored when `param_budget` is set.
      layers: number of blocks.
      heads: attention heads per block; each head is d_model // heads wide (at least 1).
      ff_multiplier: the feed-forward layer is ff_multiplier * d_model wide.
      ff_units: the feed-forward width itself, overriding ff_multiplier.
      dropout: on the embedded inputs, the attention weights and each block's two residual branches.
      positions: "sinusoidal" (fixed, any length) or "learned" (a trained vector per position, up to max_length).
      max_length: learned positions only: how many; default the task's fixed length (after subsampling).
      embedding_dim: embedding width for token inputs, projected to d_model when different.
      readout: classification and forecast heads: "mean" (masked mean over the real steps) or "last" (the last
        real step).
      subsample: stack this many consecutive frames into one first (ctc and classification).
      param_budget: trainable parameters to aim for (within 5%). It scales d_model at fixed layers, heads and
        embedding_dim; the feed-forward width then starts at ff_multiplier * d_model and takes up the remainder,
        so the ratio ends up a little above ff_multiplier.
      name: model name; default "transformer".
    """
    require_single_input_head(spec, name or "transformer")
    if param_budget is not None:
        options = dict(layers=layers, heads=heads, ff_multiplier=ff_multiplier, dropout=dropout,
                       positions=positions, max_length=max_length, embedding_dim=embedding_dim, readout=readout,
                       subsample=subsample, name=name)
        d_model, ff_units = _fit_budget(spec, param_budget, options)
        return budget.checked(transformer(spec, d_model=d_model, ff_units=ff_units, **options), param_budget)
    max_length = _check(spec, d_model, layers, heads, ff_multiplier, ff_units, dropout, positions, max_length,
                        readout, subsample)
    head = spec.outputs.head
    inputs, x, mask = _inputs(spec, embedding_dim)
    if mask is None:
        mask = PaddingMask("none", name="no_padding")(x)
    if subsample > 1:
        x, mask = StackFrames(subsample, name="stack_frames")([x, mask])
    if spec.inputs.kind == "features" or x.shape[-1] != d_model:
        x = keras.layers.Dense(d_model, name="input_projection")(x)
    if positions == "learned":
        x = LearnedPositions(max_length, name="positions")(x)
    else:
        x = SinusoidalPositions(name="positions")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="input_dropout")(x)

    allowed = AttentionMask(causal=head == "causal_steps", name="attention_mask")(mask)
    width = ff_units or max(1, round(ff_multiplier * d_model))
    for i in range(1, layers + 1):
        normed = keras.layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_attention_norm")(x)
        attended = keras.layers.MultiHeadAttention(heads, max(1, d_model // heads), dropout=dropout,
                                                   name=f"block{i}_attention")(normed, normed, attention_mask=allowed)
        x = keras.layers.Add(name=f"block{i}_attention_residual")([x, _dropout(attended, dropout, f"block{i}_a")])
        normed = keras.layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_ff_norm")(x)
        hidden = keras.layers.Dense(width, activation="gelu", name=f"block{i}_ff_hidden")(normed)
        out = keras.layers.Dense(d_model, name=f"block{i}_ff_out")(hidden)
        x = keras.layers.Add(name=f"block{i}_ff_residual")([x, _dropout(out, dropout, f"block{i}_ff")])
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)

    if head in ("classification", "forecast"):
        x = (MaskedMeanPooling(name="mean_pool") if readout == "mean" else LastRealStep(name="last_step"))([x, mask])
    model = keras.Model(inputs, _head(spec, x, mask if spec.inputs.masked else None), name=name or "transformer")
    return budget.record_facts(model, d_model=d_model, layers=layers, heads=heads, ff_units=width)


def _dropout(x, rate, prefix):
    return keras.layers.Dropout(rate, name=f"{prefix}_dropout")(x) if rate else x


def _check(spec, d_model, layers, heads, ff_multiplier, ff_units, dropout, positions, max_length, readout,
           subsample) -> Optional[int]:
    """Raises IncompatibleModelError on a bad option; returns the number of learned positions needed."""
    for label, value in (("d_model", d_model), ("layers", layers), ("heads", heads), ("subsample", subsample)):
        if value < 1:
            raise IncompatibleModelError(f"transformer: {label} must be >= 1, got {value}")
    if ff_multiplier <= 0 or (ff_units is not None and ff_units < 1):
        raise IncompatibleModelError(f"transformer: the feed-forward width must be positive, got ff_multiplier="
                                     f"{ff_multiplier}, ff_units={ff_units}")
    if not 0.0 <= dropout < 1.0:
        raise IncompatibleModelError(f"transformer: dropout must be in [0, 1), got {dropout}")
    if positions not in POSITIONS:
        raise IncompatibleModelError(f"transformer: positions must be one of {POSITIONS}, got {positions!r}")
    if readout not in READOUTS:
        raise IncompatibleModelError(f"transformer: readout must be one of {READOUTS}, got {readout!r}")
    check_subsample(spec, subsample)
    if positions != "learned":
        return None
    steps = None if spec.inputs.length is None else -(-spec.inputs.length // subsample)
    if max_length is None:
        if steps is None:
            raise IncompatibleModelError(
                f"task {spec.name!r} pads each batch to its own length, so learned positions need max_length: set "
                "it to the longest sequence (in steps after subsampling), or use positions='sinusoidal'")
        return steps
    if max_length < 1 or (steps is not None and steps > max_length):
        raise IncompatibleModelError(
            f"learned positions cover max_length={max_length} steps but task {spec.name!r} has {steps}: raise "
            "max_length or use positions='sinusoidal'")
    return max_length


def _fit_budget(spec: TaskSpec, param_budget: int, options: dict) -> tuple[int, int]:
    """(d_model, ff_units): the largest d_model within the budget at ff_multiplier, then the feed-forward width
    nearest the budget (its steps are ~2 * d_model * layers parameters, fine enough for small models). Sizes are
    counted, not built: a build costs ~0.1 s and the search probes ~20 sizes (the builder checks the result)."""
    def size(d_model, ff_units=None):
        return _trainable(spec, d_model, ff_units, **options)

    d_model = budget.largest_within(size, param_budget)
    return d_model, budget.nearest(lambda ff_units: size(d_model, ff_units), param_budget, what="transformer",
                                   option="ff_units", hint="change layers, heads or embedding_dim",
                                   start=max(1, round(options["ff_multiplier"] * d_model)))


def _trainable(spec, d_model, ff_units, *, layers, heads, ff_multiplier, positions, max_length, embedding_dim,
               subsample, **_) -> int:
    """The trainable parameters `transformer` builds with these options (a test checks it against the built model)."""
    given = spec.inputs
    width = ff_units or max(1, round(ff_multiplier * d_model))
    key = max(1, d_model // heads)
    count = given.vocab_size * embedding_dim if given.kind == "tokens" else 0
    stacked = (embedding_dim if given.kind == "tokens" else given.feature_dim) * subsample
    if given.kind == "features" or stacked != d_model:
        count += (stacked + 1) * d_model
    if positions == "learned":
        count += (max_length or -(-given.length // subsample)) * d_model
    per_block = 4 * d_model + 3 * (d_model + 1) * heads * key + heads * key * d_model + d_model
    per_block += (d_model + 1) * width + (width + 1) * d_model
    count += layers * per_block + 2 * d_model
    return count + (d_model + 1) * budget.head_width(spec.outputs)
