"""Section `kernel`: SimpleRNN, LSTM and GRU with jit_compile (XLA) on and off, masked and unmasked input, and the
runner's deterministic ops, on one synthetic batch shape; also the probe models the FLOP/s section times."""
from __future__ import annotations

import contextlib
import statistics
import warnings
from typing import Callable

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework import config as tf_config  # the public API cannot tell whether it is on

from rnnbench import compute, registry
from rnnbench import models as zoo
from rnnbench.perf.record import Measurements
from rnnbench.perf.sizes import KERNEL_VARIANTS, Sizes
from rnnbench.perf.timing import timed_fit
from rnnbench.spec import InputSpec, OutputSpec, TaskSpec


def kernel_probe_spec(features: int, timesteps: int, masked: bool) -> TaskSpec:
    return TaskSpec(name="kernel_probe", inputs=InputSpec("features", feature_dim=features, length=timesteps,
                                                          masked=masked),
                    outputs=OutputSpec("classification", num_classes=2), train=None, val=None, test=None,
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def probe_data(batch: int, steps: int, timesteps: int, features: int, padded: bool, seed: int = 0):
    """`steps` batches of random frames, right-padded with zero frames to lengths of T/2..T when `padded`."""
    rng = np.random.default_rng(seed)
    count = batch * steps
    x = rng.normal(size=(count, timesteps, features)).astype(np.float32)
    if padded:
        lengths = rng.integers(timesteps // 2, timesteps + 1, size=count)
        x[np.arange(timesteps)[None, :] >= lengths[:, None]] = 0.0
    y = rng.integers(0, 2, size=count).astype(np.int32)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).cache()


def compile_probe(cell: str, spec: TaskSpec, units: int, jit_compile: bool, deterministic: bool) -> keras.Model:
    """A compiled `cell` model with TensorFlow's op determinism switched as asked (it stays so afterwards).

    `model.jit_compile` tells whether XLA will really be used: Keras refuses it while op determinism is on.
    """
    compute.set_op_determinism(deterministic)
    keras.utils.set_random_seed(0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*jit_compile.*")  # the refusal is recorded as xla_used instead
        return zoo.compile_model(registry.get_model(cell)(spec, units=units), spec, jit_compile=jit_compile)


def time_probe(cell: str, spec: TaskSpec, data, units: int, jit_compile: bool,
               deterministic: bool) -> tuple[float, float, bool]:
    """(median steady step seconds, seconds until the first step finished, whether XLA was really used)."""
    model = compile_probe(cell, spec, units, jit_compile, deterministic)
    first_step, clock = timed_fit(model, data, epochs=2)
    return statistics.median(clock.step_seconds(first_epoch=1)), first_step, bool(model.jit_compile)


@contextlib.contextmanager
def op_determinism_restored():
    """TensorFlow's op determinism as it was before the block, which switches it for its probes."""
    was_deterministic = tf_config.is_op_determinism_enabled()
    try:
        yield
    finally:
        compute.set_op_determinism(was_deterministic)


def measure_kernels(sizes: Sizes, out: Measurements, echo: Callable[[str], None]) -> None:
    data = probe_data(sizes.kernel_batch, sizes.kernel_steps, sizes.kernel_timesteps, sizes.kernel_features, True)
    with op_determinism_restored():
        for cell in sizes.kernel_cells:
            for masked in sizes.kernel_masks:
                spec = kernel_probe_spec(sizes.kernel_features, sizes.kernel_timesteps, masked)
                for variant in sizes.kernel_variants:
                    jit, deterministic = KERNEL_VARIANTS[variant]
                    name = f"{variant}, {'masked' if masked else 'unmasked'}"
                    step, first, used_xla = time_probe(cell, spec, data, sizes.kernel_units, jit, deterministic)
                    out.add("kernel", cell, name, "median_step_ms", 1000 * step, "ms")
                    out.add("kernel", cell, name, "first_step_s", first, "s")
                    out.add("kernel", cell, name, "xla_used", float(used_xla), "")
                    echo(f"perf: kernel {cell} {name}: {1000 * step:.1f} ms/step")
    out.facts["kernel setup"] = (f"batch {sizes.kernel_batch}, {sizes.kernel_timesteps} timesteps of "
                                 f"{sizes.kernel_features} features, {sizes.kernel_units} units, classification "
                                 "head; the masked input marks zero frames after a random length of T/2..T as "
                                 "padding, the unmasked one feeds the same frames without a mask")
