"""Sections `flops` and `matmul`: achieved FLOP/s of LSTM training steps (a probe model big enough for its matrix
products to dominate, and each task's reference model) against the float32 matmul peak measured in the same run."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import tensorflow as tf

from rnnbench.perf.counting import recurrent_forward_flops, training_flops
from rnnbench.perf.kernels import kernel_probe_spec, op_determinism_restored, probe_data, time_probe
from rnnbench.perf.record import Measurements
from rnnbench.perf.rounds import TimedTask
from rnnbench.perf.sizes import PROBE_VARIANTS, Sizes


def add_reference(timed: TimedTask, out: Measurements) -> None:
    """The task's reference model: every computed timestep of the timed epoch over its median epoch time."""
    forward_flops, stride = recurrent_forward_flops(timed.model)
    epoch_flops = training_flops(forward_flops, timed.counts.computed_steps / stride)
    out.add("flops", timed.task, "lstm (reference)", "achieved_flops", epoch_flops / timed.seconds["pipeline"],
            "FLOP/s")
    out.add("flops", timed.task, "lstm (reference)", "step_flops", epoch_flops / timed.counts.batches, "FLOP")


def measure_flops(sizes: Sizes, out: Measurements, echo: Callable[[str], None]) -> None:
    """An LSTM big enough for its matrix products to dominate, as the runner compiles it and with XLA."""
    b, t, i, h = sizes.probe_batch, sizes.probe_timesteps, sizes.probe_inputs, sizes.probe_units
    spec = kernel_probe_spec(i, t, masked=False)
    data = probe_data(b, sizes.probe_steps, t, i, padded=False)
    step_flops = training_flops(2.0 * (i + h) * 4 * h * b, t)
    with op_determinism_restored():
        for variant in sizes.probe_variants:
            jit, deterministic = PROBE_VARIANTS[variant]
            step, _, _ = time_probe("lstm", spec, data, h, jit, deterministic)
            out.add("flops", "lstm probe", variant, "achieved_flops", step_flops / step, "FLOP/s")
            out.add("flops", "lstm probe", variant, "median_step_ms", 1000 * step, "ms")
            echo(f"perf: lstm probe {variant}: {step_flops / step / 1e9:.2f} GFLOP/s")
    out.add("flops", "lstm probe", "", "step_flops", step_flops, "FLOP")
    out.facts["flops setup"] = (f"LSTM probe: batch {b}, {t} timesteps, {i} inputs, {h} units; per timestep the "
                                f"forward pass multiplies 2 x B x (I + H) x 4H = {2 * b * (i + h) * 4 * h:,} FLOPs, "
                                "the backward pass about twice that, so a training step counts 3 x T x that "
                                "(recurrent layers only; the head and the elementwise gate math are left out)")


def matmul_peak(size: int, repeats: int) -> tuple[float, float]:
    """(best, median) float32 FLOP/s of `size` x `size` matrix products."""
    generator = tf.random.Generator.from_seed(0)
    a = generator.normal((size, size), dtype=tf.float32)
    b = generator.normal((size, size), dtype=tf.float32)
    tf.linalg.matmul(a, b).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.linalg.matmul(a, b).numpy()
        times.append(time.perf_counter() - start)
    flops = 2.0 * size ** 3
    return flops / min(times), flops / statistics.median(times)


def measure_matmul(sizes: Sizes, out: Measurements, when: str) -> float:
    best, median = matmul_peak(sizes.matmul_size, sizes.matmul_repeats)
    out.add("matmul", f"{sizes.matmul_size}x{sizes.matmul_size} float32", when, "peak_flops", best, "FLOP/s")
    out.add("matmul", f"{sizes.matmul_size}x{sizes.matmul_size} float32", when, "median_flops", median, "FLOP/s")
    return best
