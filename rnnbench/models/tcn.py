"""A temporal convolutional network (Bai et al. 2018), the convolutional alternative to recurrence, for every head.

Backbone: the token embedding or the raw features, optional frame stacking, then `blocks` residual blocks; block i
holds `convs_per_block` causal Conv1D layers with dilation 2**i (ReLU, dropout) and adds its input back (through a
1x1 convolution where the widths differ). Causal convolutions make step t depend on steps <= t only, within the
receptive field 1 + (kernel_size - 1) * (2**blocks - 1) * convs_per_block steps, so right padding never reaches a
real step. Heads:
  classification, forecast  the last real step (or a masked mean over the real steps) -> Dense
  causal_steps, ctc         every step -> Dense (ctc: padded frames forced to the blank)
"""
from __future__ import annotations

from typing import Optional

import keras

from rnnbench.models import budget
from rnnbench.models.layers import PaddingMask, StackFrames
from rnnbench.models.recurrent import (IncompatibleModelError, _head, _inputs, check_subsample,
                                       require_single_input_head)
from rnnbench.models.sequence_layers import LastRealStep, MaskedMeanPooling
from rnnbench.registry import register_model
from rnnbench.spec import TaskSpec

READOUTS = ("last", "mean")


def receptive_field(kernel_size: int, blocks: int, convs_per_block: int) -> int:
    """Steps one output sees: 1 + (kernel_size - 1) * sum of the dilations 1, 2, ..., 2**(blocks-1), per conv."""
    return 1 + (kernel_size - 1) * (2 ** blocks - 1) * convs_per_block


@register_model("tcn", family="convolutional")
def tcn(
    spec: TaskSpec,
    *,
    filters: int = 64,
    kernel_size: int = 3,
    blocks: int = 4,
    convs_per_block: int = 2,
    dropout: float = 0.0,
    readout: str = "last",
    embedding_dim: int = 64,
    subsample: int = 1,
    param_budget: Optional[int] = None,
    name: Optional[str] = None,
) -> keras.Model:
    """Builds a temporal convolutional network for `spec`'s inputs and head.

    Args:
      spec: the task's `TaskSpec` (only `inputs` and `outputs` are read).
      filters: channels of every convolution. Ignored when `param_budget` is set.
      kernel_size: taps of each causal convolution.
      blocks: residual blocks, dilated 1, 2, 4, ...; with convs_per_block and kernel_size they fix the receptive
        field (`model.rnnbench_info["receptive_field"]`, in input steps).
      convs_per_block: causal convolutions per block.
      dropout: after each convolution.
      readout: classification and forecast heads: "last" (the last real step, which sees the receptive field
        before it) or "mean" (masked mean over every real step's features).
      embedding_dim: embedding width for token inputs.
      subsample: stack this many consecutive frames into one first (ctc and classification); the receptive field
        in input steps grows by the same factor.
      param_budget: trainable parameters to aim for (within 5%). It scales `filters` at fixed blocks and kernel;
        the inner convolutions (all but each block's last) then take the few spare channels, spread over the
        blocks, that bring the count nearest the budget (`rnnbench_info["spare_inner_filters"]`).
      name: model name; default "tcn".
    """
    require_single_input_head(spec, name or "tcn")
    _check(spec, filters, kernel_size, blocks, convs_per_block, dropout, readout, subsample)
    options = dict(kernel_size=kernel_size, blocks=blocks, convs_per_block=convs_per_block, dropout=dropout,
                   readout=readout, embedding_dim=embedding_dim, subsample=subsample, name=name)
    if param_budget is not None:
        filters, spare = _fit_budget(spec, param_budget, options)
        return budget.checked(_build(spec, filters, spare, **options), param_budget)
    return _build(spec, filters, 0, **options)


def _inner_width(filters: int, spare: int, blocks: int, block: int) -> int:
    """The width of block `block`'s (0-based) inner convolutions: `spare` extra channels spread over the blocks."""
    return filters + spare // blocks + (1 if block < spare % blocks else 0)


def _build(spec, filters, spare, *, kernel_size, blocks, convs_per_block, dropout, readout, embedding_dim,
           subsample, name) -> keras.Model:
    head = spec.outputs.head
    inputs, x, mask = _inputs(spec, embedding_dim)
    if subsample > 1:
        if mask is None:
            mask = PaddingMask("none", name="no_padding")(x)
        x, mask = StackFrames(subsample, name="stack_frames")([x, mask])
    for block in range(1, blocks + 1):
        branch = x
        for conv in range(1, convs_per_block + 1):
            width = filters if conv == convs_per_block else _inner_width(filters, spare, blocks, block - 1)
            branch = keras.layers.Conv1D(width, kernel_size, padding="causal", dilation_rate=2 ** (block - 1),
                                         activation="relu", name=f"block{block}_conv{conv}")(branch)
            if dropout:
                branch = keras.layers.Dropout(dropout, name=f"block{block}_dropout{conv}")(branch)
        skip = x if x.shape[-1] == filters else keras.layers.Conv1D(filters, 1, name=f"block{block}_skip")(x)
        x = keras.layers.Activation("relu", name=f"block{block}_out")(
            keras.layers.Add(name=f"block{block}_residual")([branch, skip]))

    if head in ("classification", "forecast"):
        if mask is None:
            mask = PaddingMask("none", name="no_padding")(x)
        x = (LastRealStep(name="last_step") if readout == "last" else MaskedMeanPooling(name="mean_pool"))([x, mask])
    model = keras.Model(inputs, _head(spec, x, mask if spec.inputs.masked else None), name=name or "tcn")
    return budget.record_facts(model, filters=filters, spare_inner_filters=spare,
                               receptive_field=receptive_field(kernel_size, blocks, convs_per_block) * subsample)


def _check(spec, filters, kernel_size, blocks, convs_per_block, dropout, readout, subsample):
    for label, value in (("filters", filters), ("kernel_size", kernel_size), ("blocks", blocks),
                         ("convs_per_block", convs_per_block), ("subsample", subsample)):
        if value < 1:
            raise IncompatibleModelError(f"tcn: {label} must be >= 1, got {value}")
    if not 0.0 <= dropout < 1.0:
        raise IncompatibleModelError(f"tcn: dropout must be in [0, 1), got {dropout}")
    if readout not in READOUTS:
        raise IncompatibleModelError(f"tcn: readout must be one of {READOUTS}, got {readout!r}")
    check_subsample(spec, subsample)


def _fit_budget(spec: TaskSpec, param_budget: int, options: dict) -> tuple[int, int]:
    """(filters, spare inner channels): the largest `filters` within the budget, then the spare channels of the
    inner convolutions nearest it. A step of `filters` moves a 4-block TCN by ~2/filters of its size, too coarse
    for small budgets; a spare channel moves it by ~1/(4 * filters)."""
    def size(filters, spare=0):
        return _trainable(spec, filters, spare, **options)

    hint = "change blocks, kernel_size or embedding_dim"
    filters = budget.largest_within(size, param_budget)
    if options["convs_per_block"] == 1 or size(filters) > param_budget:  # no inner convolution, or over at 1
        return budget.nearest(size, param_budget, what="tcn", option="filters", hint=hint), 0
    return filters, budget.nearest(lambda spare: size(filters, spare), param_budget, what="tcn",
                                   option="spare_inner_filters", hint=hint, start=0)


def _trainable(spec, filters, spare, *, kernel_size, blocks, convs_per_block, embedding_dim, subsample, **_) -> int:
    """The trainable parameters `_build` builds with these options (a test checks it against the built model)."""
    given = spec.inputs
    count = given.vocab_size * embedding_dim if given.kind == "tokens" else 0
    channels = (embedding_dim if given.kind == "tokens" else given.feature_dim) * subsample
    for block in range(blocks):
        inner = _inner_width(filters, spare, blocks, block)
        widths = [inner] * (convs_per_block - 1) + [filters]
        previous = channels
        for width in widths:
            count += (kernel_size * previous + 1) * width
            previous = width
        if channels != filters:
            count += (channels + 1) * filters
        channels = filters
    return count + (filters + 1) * budget.head_width(spec.outputs)
