"""An echo-state network (Jaeger 2001), the untrained-recurrence alternative: a fixed random reservoir and a trained
read-out, for every head kind.

The reservoir is a leaky-integrator ESN, h_t = (1 - a) h_{t-1} + a tanh(W_in x_t + W h_{t-1} + b), drawn once from
`seed` with NumPy: W_in and b uniform in +-input_scaling, W uniform in +-1 with a `sparsity` fraction of its entries
zeroed and then rescaled so its largest |eigenvalue| is `spectral_radius`. None of it is trained (token inputs go
through a fixed random embedding too); only the read-out is. Heads:
  classification, forecast  the state after the last real step -> [Dense(readout_units, tanh)] -> Dense
  causal_steps, ctc         the state at every step -> [Dense(readout_units, tanh)] -> Dense (ctc: padded frames
                            forced to the blank)
The reservoir runs forward only, so the model is causal, and Keras's mask makes it skip right padding.
"""
from __future__ import annotations

import math
import random
from typing import Optional

import keras
import numpy as np
from keras import ops

from rnnbench.models import budget
from rnnbench.models.layers import ApplyMask, PaddingMask, StackFrames
from rnnbench.models.recurrent import IncompatibleModelError, _head, check_subsample, require_single_input_head
from rnnbench.registry import register_model
from rnnbench.spec import TaskSpec

MIN_RESERVOIR = 8  # the smallest reservoir a parameter budget may imply


@keras.saving.register_keras_serializable(package="rnnbench")
class ReservoirCell(keras.layers.Layer):
    """One step of the leaky-integrator reservoir, for `keras.layers.RNN`. Its weights are drawn in `build` from
    `seed` (so a reloaded model redraws the same ones before its saved values are loaded) and never trained."""

    def __init__(self, units: int, spectral_radius: float = 0.9, input_scaling: float = 1.0, leak_rate: float = 0.5,
                 sparsity: float = 0.9, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.spectral_radius, self.input_scaling = units, spectral_radius, input_scaling
        self.leak_rate, self.sparsity, self.seed = leak_rate, sparsity, seed
        self.state_size = self.output_size = units

    def build(self, input_shape):
        rng = np.random.default_rng(self.seed)
        units, scale = self.units, self.input_scaling
        w_in = rng.uniform(-scale, scale, (input_shape[-1], units))
        bias = rng.uniform(-scale, scale, units)
        w = rng.uniform(-1.0, 1.0, (units, units))
        w[rng.random((units, units)) < self.sparsity] = 0.0
        radius = float(np.max(np.abs(np.linalg.eigvals(w))))
        if radius < 1e-12:
            raise IncompatibleModelError(
                f"esn: the drawn {units}-unit reservoir with sparsity={self.sparsity} has no nonzero eigenvalue to "
                "scale to spectral_radius; lower sparsity or raise reservoir_units")
        w *= self.spectral_radius / radius
        self.input_kernel = self._fixed("input_kernel", w_in)
        self.recurrent_kernel = self._fixed("recurrent_kernel", w)
        self.bias = self._fixed("bias", bias)

    def _fixed(self, name, value):
        weight = self.add_weight(name=name, shape=value.shape, initializer="zeros", trainable=False)
        weight.assign(value.astype(weight.dtype))
        return weight

    def call(self, inputs, states, training=False):
        previous = states[0] if isinstance(states, (list, tuple)) else states
        dtype = inputs.dtype  # the weights stay float32 under mixed precision; the step runs in the input's dtype
        drive = (ops.matmul(inputs, ops.cast(self.input_kernel, dtype))
                 + ops.matmul(previous, ops.cast(self.recurrent_kernel, dtype)) + ops.cast(self.bias, dtype))
        state = (1.0 - self.leak_rate) * previous + self.leak_rate * ops.tanh(drive)
        return state, [state]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "spectral_radius": self.spectral_radius,
                "input_scaling": self.input_scaling, "leak_rate": self.leak_rate, "sparsity": self.sparsity,
                "seed": self.seed}


@register_model("esn", family="reservoir")
def esn(
    spec: TaskSpec,
    *,
    reservoir_units: int = 256,
    spectral_radius: float = 0.9,
    input_scaling: float = 1.0,
    leak_rate: float = 0.5,
    sparsity: float = 0.9,
    readout_units: int = 0,
    dropout: float = 0.0,
    embedding_dim: int = 64,
    seed: Optional[int] = None,
    max_reservoir_units: int = 512,
    subsample: int = 1,
    param_budget: Optional[int] = None,
    name: Optional[str] = None,
) -> keras.Model:
    """Builds an echo-state network for `spec`'s inputs and head.

    Args:
      spec: the task's `TaskSpec` (only `inputs` and `outputs` are read).
      reservoir_units: size of the reservoir. Ignored when `param_budget` is set.
      spectral_radius: the largest |eigenvalue| W is rescaled to (below 1 keeps the echo state property).
      input_scaling: W_in and b are uniform in +-input_scaling.
      leak_rate: a in (0, 1]: how much of the state each step replaces (1: a plain ESN).
      sparsity: the fraction of W's entries that are zero, in [0, 1).
      readout_units: width of a trained tanh layer between the reservoir and the head; 0 for a linear read-out.
        Ignored when `param_budget` is set.
      dropout: on the reservoir states the read-out sees.
      embedding_dim: width of the fixed random embedding of token inputs.
      seed: draws the reservoir and the embedding; default drawn from Python's `random`, which the runner seeds.
      max_reservoir_units: param_budget only: the largest reservoir it may imply.
      subsample: stack this many consecutive frames into one first (ctc and classification).
      param_budget: trainable parameters to aim for (within 5%); only the read-out trains. A linear read-out of
        (reservoir_units + 1) * head units takes the budget while the reservoir stays within max_reservoir_units
        (a step then costs about what a 256-unit LSTM's does: 512 x 512 multiplies); a larger budget adds the
        fewest readout_units that keep the reservoir within it, and the reservoir takes up the remainder.
      name: model name; default "esn".
    """
    require_single_input_head(spec, name or "esn")
    if param_budget is not None:
        reservoir_units, readout_units = _fit_budget(spec, param_budget, max_reservoir_units)
        return budget.checked(esn(spec, reservoir_units=reservoir_units, spectral_radius=spectral_radius,
                                  input_scaling=input_scaling, leak_rate=leak_rate, sparsity=sparsity,
                                  readout_units=readout_units, dropout=dropout, embedding_dim=embedding_dim,
                                  seed=seed, subsample=subsample, name=name), param_budget)
    _check(spec, reservoir_units, spectral_radius, input_scaling, leak_rate, sparsity, readout_units, dropout,
           subsample)
    seed = random.randrange(2 ** 31) if seed is None else seed
    given, head = spec.inputs, spec.outputs.head
    if given.kind == "tokens":
        inputs = keras.Input(shape=(given.length,), dtype="int32", name="tokens")
        x = keras.layers.Embedding(given.vocab_size, embedding_dim, trainable=False, name="fixed_embedding",
                                   embeddings_initializer=keras.initializers.RandomUniform(-1.0, 1.0, seed=seed))(inputs)
    else:
        inputs = keras.Input(shape=(given.length, given.feature_dim), dtype="float32", name="features")
        x = inputs
    mask = PaddingMask(given.kind, given.pad_value, name="padding_mask")(inputs) if given.masked else None
    if subsample > 1:
        if mask is None:
            mask = PaddingMask("none", name="no_padding")(x)
        x, mask = StackFrames(subsample, name="stack_frames")([x, mask])
    cell = ReservoirCell(reservoir_units, spectral_radius, input_scaling, leak_rate, sparsity, seed, name="cell")
    reservoir = keras.layers.RNN(cell, return_sequences=head in ("causal_steps", "ctc"), trainable=False,
                                 name="reservoir")
    x = reservoir(ApplyMask(name="reservoir_mask")([x, mask]) if mask is not None else x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="readout_dropout")(x)
    if readout_units:
        x = keras.layers.Dense(readout_units, activation="tanh", name="readout_hidden")(x)
    model = keras.Model(inputs, _head(spec, x, mask if given.masked else None), name=name or "esn")
    return budget.record_facts(model, reservoir_units=reservoir_units, readout_units=readout_units,
                               spectral_radius=float(spectral_radius), seed=seed)


def _check(spec, reservoir_units, spectral_radius, input_scaling, leak_rate, sparsity, readout_units, dropout,
           subsample):
    for label, value, low in (("reservoir_units", reservoir_units, 1), ("readout_units", readout_units, 0),
                              ("subsample", subsample, 1)):
        if value < low:
            raise IncompatibleModelError(f"esn: {label} must be >= {low}, got {value}")
    for label, value, ok, allowed in (
            ("spectral_radius", spectral_radius, spectral_radius > 0, "> 0"),
            ("input_scaling", input_scaling, input_scaling > 0, "> 0"),
            ("leak_rate", leak_rate, 0 < leak_rate <= 1, "in (0, 1]"),
            ("sparsity", sparsity, 0 <= sparsity < 1, "in [0, 1)"),
            ("dropout", dropout, 0 <= dropout < 1, "in [0, 1)")):
        if not ok:
            raise IncompatibleModelError(f"esn: {label} must be {allowed}, got {value}")
    check_subsample(spec, subsample)


def _fit_budget(spec: TaskSpec, param_budget: int, max_reservoir_units: int) -> tuple[int, int]:
    """(reservoir_units, readout_units) whose read-out has about `param_budget` parameters (see `esn`)."""
    width = budget.head_width(spec.outputs)
    if max_reservoir_units < MIN_RESERVOIR:
        raise IncompatibleModelError(f"esn: max_reservoir_units must be >= {MIN_RESERVOIR}, got {max_reservoir_units}")
    units = round(param_budget / width) - 1  # a linear read-out: (units + 1) * width
    if units < MIN_RESERVOIR:
        raise IncompatibleModelError(
            f"param_budget={param_budget} is too small for esn: a linear read-out of even a {MIN_RESERVOIR}-unit "
            f"reservoir has {(MIN_RESERVOIR + 1) * width} trainable parameters on this head; raise the budget")
    if units <= max_reservoir_units:
        return units, 0
    # (units + 1) * hidden + (hidden + 1) * width = budget, with the fewest hidden units that keep units <= the cap
    hidden = math.ceil((param_budget - width) / (max_reservoir_units + 1 + width))
    units = min(max_reservoir_units, round((param_budget - (hidden + 1) * width) / hidden) - 1)
    return units, hidden
