"""How much each perf run measures: the full sizes of `make perf`, the tiny ones of `--quick`, and the variants
(jit_compile, op determinism) the kernel and FLOP/s sections compare."""
from __future__ import annotations

import dataclasses

# Kernel variants: name -> (jit_compile, deterministic ops). XLA with deterministic ops does not exist: Keras refuses
# jit_compile=True while TensorFlow's op determinism is on, so the runner switches determinism off when it uses XLA.
KERNEL_VARIANTS = {"no_xla": (False, False), "xla": (True, False), "no_xla_deterministic": (False, True)}

# The LSTM FLOP/s probe: name -> (jit_compile, deterministic ops).
RUNNER_SETTINGS = "runner settings (deterministic, no XLA)"
PROBE_VARIANTS = {RUNNER_SETTINGS: (False, True), "xla": (True, False)}


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much of each measurement to run."""

    quick: bool
    steps_per_epoch: int  # task section: batches per timed epoch
    rounds: int  # alternations of the variants compared in one section
    min_round_seconds: float  # task section: epochs per round are repeated until a round lasts about this long
    latency_repeats: int
    kernel_cells: tuple[str, ...]
    kernel_variants: tuple[str, ...]  # keys of KERNEL_VARIANTS
    kernel_masks: tuple[bool, ...]
    kernel_batch: int
    kernel_timesteps: int
    kernel_features: int
    kernel_units: int
    kernel_steps: int
    probe_batch: int
    probe_timesteps: int
    probe_inputs: int
    probe_units: int
    probe_steps: int
    probe_variants: tuple[str, ...]  # keys of PROBE_VARIANTS
    matmul_size: int
    matmul_repeats: int
    overhead_rounds: int
    overhead_epochs: int = 1  # epochs per fit call in the runner-overhead section (a run is one fit of many epochs)
    wait_seconds: float = 0.0  # pipeline section: time the data wait over at least this many seconds per variant


FULL = Sizes(quick=False, steps_per_epoch=30, rounds=6, min_round_seconds=1.5, latency_repeats=20,
             kernel_cells=("simple_rnn", "lstm", "gru"),
             kernel_variants=tuple(KERNEL_VARIANTS), kernel_masks=(False, True),
             kernel_batch=64, kernel_timesteps=64, kernel_features=16, kernel_units=64, kernel_steps=12,
             probe_batch=128, probe_timesteps=32, probe_inputs=128, probe_units=256, probe_steps=6,
             probe_variants=tuple(PROBE_VARIANTS), matmul_size=2048, matmul_repeats=5, overhead_rounds=6,
             overhead_epochs=2, wait_seconds=15.0)
# Every section once on tiny sizes, where tracing is most of the time; XLA is left out, its compilation alone would
# take longer than the rest of the quick run.
QUICK = Sizes(quick=True, steps_per_epoch=3, rounds=1, min_round_seconds=0.0, latency_repeats=3, kernel_cells=("lstm",),
              kernel_variants=("no_xla",), kernel_masks=(True,),
              kernel_batch=8, kernel_timesteps=8, kernel_features=4, kernel_units=8, kernel_steps=3,
              probe_batch=8, probe_timesteps=8, probe_inputs=16, probe_units=16, probe_steps=3,
              probe_variants=(RUNNER_SETTINGS,), matmul_size=256, matmul_repeats=3, overhead_rounds=1)
QUICK_MODEL_OPTIONS = {"units": 8, "embedding_dim": 8}
