"""How fast rnnbench trains and infers, and where the time goes: the evidence behind its speed-related defaults.

    python -m rnnbench.perf [--out results/perf] [--quick] [--tasks sine,imdb] [--baseline PATH]
                            [--set TASK.OPTION=VALUE ...] [--render]

writes, each file atomically, into `--out` (with --quick, results/perf_quick by default):
  perf.csv     one row per figure: section, item, variant, metric, value, unit
  perf.json    the rest of the record: environment, setups, skipped tasks, the previous figures compared with;
               `--render` redraws README.md and the plots from perf.csv and perf.json without measuring
  README.md    the environment (load average included), one table per section, what the figures mean, findings, and
               the comparison with the previous perf.csv (also printed)
  kernels.png  steady training-step time per recurrent cell and kernel choice
  tasks.png    training throughput per task and input variant; achieved FLOP/s against the measured matmul peak

Sections (the `section` column):
  task      each task's reference model, the `lstm` builder with the model options of `experiments/<task>.py`, trained
            on a slice of the task (the experiment's SMOKE task options, at most `steps_per_epoch` batches per epoch)
            exactly as the runner builds and compiles it: samples/s and timesteps/s, median step time, time until the
            first step has finished (tracing, compilation), inference latency (`runner.measure_latency`), achieved
            FLOP/s of its recurrent layers.
  overhead  the runner's own callbacks (NaN guard, best weights, epoch timer, per-epoch checkpoint, progress line;
            MLflow logging left out) against a plain `model.fit` on the same compiled model, data and batches.
  pipeline  the task's tf.data pipeline against the same batches cached in memory, the share of training time the
            model waits for its next batch, and the pipeline alone.
  padding   the share of computed timesteps that are padding, with the task's length bucketing and without it (each
            batch padded to its longest example), and the training speed on both.
  kernel    SimpleRNN, LSTM and GRU with jit_compile (XLA) on and off, masked and unmasked input, and the runner's
            deterministic ops, on one synthetic batch shape.
  flops     achieved FLOP/s of LSTM training steps against the float32 matmul peak measured in the same run.
  matmul    that peak (start and end of the run, so a change in load shows).

Tasks other than sine need their data (TFDS_DATA_DIR for the tensorflow-datasets tasks, RNNBENCH_DATA_DIR for files
the experiments name, or `--set TASK.OPTION=VALUE`, e.g. speech.data_dir) and an experiment file; a task without them
is listed as skipped, with the loader's reason.
Timings on a shared machine move with its load: the README records the load average at the start and the end.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

from rnnbench import config as configuration
from rnnbench import models as zoo
from rnnbench import registry, runner
from rnnbench.environment import describe as describe_environment
from rnnbench.errors import UserError
from rnnbench.report import _atomic_write
from rnnbench.spec import InputSpec, OutputSpec, TaskSpec

CSV_COLUMNS = ("section", "item", "variant", "metric", "value", "unit")
RUNNER_TARGET = 0.97  # the target for the runner's throughput relative to plain Keras
# "The pipeline is never the bottleneck", measured directly: the share of training time the model spends waiting in
# `next()` for its next batch. At most 5% waiting means at least 0.95 of the throughput of a model never kept waiting.
PIPELINE_WAIT_TARGET = 0.05
RANGE_METRICS = {"ratio_min", "ratio_max"}  # the spread of a paired ratio's rounds: no direction is better
CHANGE_WORTH_FLAGGING = 0.10  # relative change against the previous run that the comparison marks
HIGHER_IS_BETTER_UNITS = {"samples/s", "timesteps/s", "batches/s", "FLOP/s", "x"}
LOWER_IS_BETTER_UNITS = {"ms", "s", "fraction"}
# Kernel variants: name -> (jit_compile, deterministic ops). XLA with deterministic ops does not exist: Keras refuses
# jit_compile=True while TensorFlow's op determinism is on, so the runner switches determinism off when it uses XLA.
KERNEL_VARIANTS = {"no_xla": (False, False), "xla": (True, False), "no_xla_deterministic": (False, True)}


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


# The LSTM FLOP/s probe: name -> (jit_compile, deterministic ops).
RUNNER_SETTINGS = "runner settings (deterministic, no XLA)"
PROBE_VARIANTS = {RUNNER_SETTINGS: (False, True), "xla": (True, False)}

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


# -- results -------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Row:
    section: str
    item: str
    variant: str
    metric: str
    value: float
    unit: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.section, self.item, self.variant, self.metric


class Measurements:
    """Rows of figures, plus the facts and skip reasons the README states in words."""

    def __init__(self):
        self.rows: list[Row] = []
        self.skipped: dict[str, str] = {}
        self.facts: dict[str, str] = {}

    def add(self, section: str, item: str, variant: str, metric: str, value: float, unit: str = "") -> None:
        # Kept at the precision perf.csv stores, so a README redrawn from the CSV (--render) is the same text.
        self.rows.append(Row(section, item, variant, metric, float(f"{float(value):.6g}"), unit))

    def get(self, section: str, item: str, variant: str, metric: str) -> Optional[float]:
        for row in self.rows:
            if row.key == (section, item, variant, metric):
                return row.value
        return None

    def items(self, section: str) -> list[str]:
        return list(dict.fromkeys(r.item for r in self.rows if r.section == section))

    def variants(self, section: str, item: str) -> list[str]:
        return list(dict.fromkeys(r.variant for r in self.rows if r.section == section and r.item == item))


def write_csv(rows: Sequence[Row], path: Path) -> None:
    def write(target: Path) -> None:
        with target.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            for r in rows:
                writer.writerow([r.section, r.item, r.variant, r.metric, f"{r.value:.6g}", r.unit])

    _atomic_write(path, write)


def read_csv(path: Path) -> list[Row]:
    """Rows of an earlier perf.csv; an unreadable one is reported and treated as absent (it is about to be replaced)."""
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
                raise ValueError(f"columns {reader.fieldnames}, expected {list(CSV_COLUMNS)}")
            return [Row(r["section"], r["item"], r["variant"], r["metric"], float(r["value"]), r["unit"])
                    for r in reader]
    except (OSError, ValueError, KeyError, UnicodeDecodeError) as error:
        print(f"perf: previous results {path} not compared ({error})", file=sys.stderr)
        return []


@dataclasses.dataclass
class Change:
    row: Row
    previous: float

    @property
    def ratio(self) -> float:
        return self.row.value / self.previous if self.previous else math.nan

    @property
    def verdict(self) -> str:
        """'better' or 'worse' when the figure moved by more than CHANGE_WORTH_FLAGGING in a known direction."""
        if not math.isfinite(self.ratio) or abs(self.ratio - 1.0) <= CHANGE_WORTH_FLAGGING:
            return ""
        if self.row.metric in RANGE_METRICS:  # a wider or narrower spread of rounds is neither
            return ""
        if self.row.unit in HIGHER_IS_BETTER_UNITS:
            return "better" if self.ratio > 1 else "worse"
        if self.row.unit in LOWER_IS_BETTER_UNITS:
            return "better" if self.ratio < 1 else "worse"
        return ""


SIZES_KEY = ("run", "sizes", "", "quick")  # 1.0 for a --quick run, 0.0 for a full one


def compare(previous: Sequence[Row], current: Sequence[Row]) -> list[Change]:
    """The current rows that the previous run also measured, with their previous values; nothing when one run was
    --quick and the other was not (their sizes differ, so their figures do not compare)."""
    earlier = {r.key: r.value for r in previous}
    now = {r.key: r.value for r in current}
    if earlier.get(SIZES_KEY) != now.get(SIZES_KEY):
        return []
    return [Change(r, earlier[r.key]) for r in current if r.key in earlier and r.key != SIZES_KEY]


# -- timing --------------------------------------------------------------------------------------------------------

class StepClock(keras.callbacks.Callback):
    """Wall-clock marks of one `fit`: when each epoch began and ended, and when each training batch ended.

    TensorFlow runs eager calls synchronously on the CPU, so a batch has finished when its `on_train_batch_end` runs.
    """

    def __init__(self):
        super().__init__()
        self.epoch_starts: list[float] = []
        self.epoch_seconds: list[float] = []
        self.batch_ends: list[list[float]] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_starts.append(time.perf_counter())
        self.batch_ends.append([])

    def on_train_batch_end(self, batch, logs=None):
        self.batch_ends[-1].append(time.perf_counter())

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(time.perf_counter() - self.epoch_starts[-1])

    @property
    def first_batch_end(self) -> float:
        return self.batch_ends[0][0]

    def step_seconds(self, first_epoch: int = 0) -> list[float]:
        """Intervals between consecutive batch ends within each epoch from `first_epoch` on (an epoch's first batch
        also pays for starting the epoch's iterator, so it is left out)."""
        return [b - a for ends in self.batch_ends[first_epoch:] for a, b in zip(ends, ends[1:])]


def timed_fit(model: keras.Model, data, epochs: int = 1, callbacks: Sequence = (),
              **fit_options) -> tuple[float, StepClock]:
    """(seconds from calling fit to the end of its first batch, the clock) for one `model.fit` call."""
    clock = StepClock()
    start = time.perf_counter()
    fit_options.setdefault("shuffle", False)  # tf.data datasets shuffle themselves; Keras warns otherwise
    model.fit(data, epochs=epochs, verbose=0, callbacks=[*callbacks, clock], **fit_options)
    return clock.first_batch_end - start, clock


def data_wait(model: keras.Model, dataset, batches_per_pass: int, min_seconds: float) -> tuple[float, float, int]:
    """(share of training time spent waiting for the next batch, 99th percentile of one wait in seconds, batches).

    Trains batch by batch on one endless iterator of `dataset`, timing each `next()` apart from the training step,
    so the wait is measured directly instead of inferred from a throughput difference that a shared machine's noise
    swamps. The first pass is not timed (opening the iterator, filling buffers, tracing each batch shape: once per
    run in the runner); then whole passes until `min_seconds` have gone by, so pass boundaries are included.
    """
    iterator = iter(dataset)
    for _ in range(batches_per_pass):
        model.train_on_batch(*next(iterator))
    waits: list[float] = []
    start = time.perf_counter()
    while not waits or time.perf_counter() - start < min_seconds:
        for _ in range(batches_per_pass):
            before = time.perf_counter()
            batch = next(iterator)
            waits.append(time.perf_counter() - before)
            model.train_on_batch(*batch)
    total = time.perf_counter() - start
    return sum(waits) / total, float(np.percentile(waits, 99)), len(waits)


@dataclasses.dataclass
class Pass:
    """One pass over a batched dataset: what it holds and how long reading it took."""

    batches: int = 0
    samples: int = 0
    computed_steps: int = 0  # batch x padded length, summed: the timesteps a model computes
    real_steps: int = 0  # timesteps that are not padding
    seconds: float = 0.0
    examples: list = dataclasses.field(default_factory=list)  # (unpadded x, y) pairs, when asked for

    @property
    def padded_fraction(self) -> float:
        return 1.0 - self.real_steps / self.computed_steps if self.computed_steps else 0.0


def real_lengths(x: np.ndarray, inputs: InputSpec) -> np.ndarray:
    """Real timesteps per example of a right-padded batch (every step when the input is not masked)."""
    if not inputs.masked:
        return np.full(x.shape[0], x.shape[1], dtype=np.int64)
    real = x != 0 if inputs.kind == "tokens" else np.any(x != inputs.pad_value, axis=-1)
    # Right padding: the length is one past the last real step.
    last = x.shape[1] - 1 - np.argmax(real[:, ::-1], axis=1)
    return np.where(real.any(axis=1), last + 1, 0)


def read_pass(dataset, inputs: InputSpec, keep_examples: bool = False) -> Pass:
    result = Pass()
    start = time.perf_counter()
    for x, y in dataset.as_numpy_iterator():
        lengths = real_lengths(x, inputs)
        result.batches += 1
        result.samples += x.shape[0]
        result.computed_steps += x.shape[0] * x.shape[1]
        result.real_steps += int(lengths.sum())
        if keep_examples:
            result.examples.extend((row[:n], label) for row, n, label in zip(x, lengths, y))
    result.seconds = time.perf_counter() - start
    return result


def unbucketed_batches(examples: list, inputs: InputSpec, batch_size: int, seed: int):
    """The same examples shuffled and padded per batch to the batch's longest example (no length bucketing),
    cached in memory after the first pass, so against the cached bucketed batches only the padding differs."""
    x0, y0 = examples[0]
    x_spec = tf.TensorSpec((None, *x0.shape[1:]), tf.as_dtype(x0.dtype))
    y_spec = tf.TensorSpec(np.shape(y0), tf.as_dtype(np.asarray(y0).dtype))
    ds = tf.data.Dataset.from_generator(lambda: iter(examples), output_signature=(x_spec, y_spec))
    padding = (tf.constant(inputs.pad_value if inputs.kind == "features" else 0, x_spec.dtype),
               tf.constant(0, y_spec.dtype))
    ds = ds.shuffle(len(examples), seed=seed, reshuffle_each_iteration=False).padded_batch(
        batch_size, padding_values=padding)
    return ds.cache()


def recurrent_forward_flops(model: keras.Model) -> tuple[float, int]:
    """(forward matmul FLOPs per example and per input timestep of the recurrent layers, time stride).

    A recurrent layer multiplies its input (I) and its state (H) by its kernels at every step: 2 x (I + H) x gates x H
    FLOPs, i.e. 2 x (kernel size + recurrent kernel size). Frame stacking divides the steps by its stride.
    """
    flops, stride = 0.0, 1
    for layer in model.layers:
        bidirectional = isinstance(layer, keras.layers.Bidirectional)
        parts = [layer.forward_layer, layer.backward_layer] if bidirectional else [layer]
        for part in parts:
            cell = getattr(part, "cell", None)
            if cell is not None and hasattr(cell, "recurrent_kernel"):
                flops += 2.0 * (int(np.prod(cell.kernel.shape)) + int(np.prod(cell.recurrent_kernel.shape)))
        stride *= int(getattr(layer, "stride", 1) or 1)
    return flops, stride


def training_flops(forward_flops_per_step: float, timesteps: float) -> float:
    """Forward plus backward (about twice the forward: gradients for the inputs and for the weights)."""
    return 3.0 * forward_flops_per_step * timesteps


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


# -- sections ------------------------------------------------------------------------------------------------------

def reference_config(task: str, sizes: Sizes, task_options: Optional[dict] = None) -> dict:
    """The runner configuration perf trains a task's reference model with: the experiment's model and training
    settings, its SMOKE slice of the data, no downloads, then `task_options` (strings from --set, validated)."""
    if not (configuration.experiments_dir() / f"{task}.py").is_file():
        raise UserError(f"no experiments/{task}.py: perf takes the reference model and the data slice of a task "
                        "from its experiment file")
    smoke = configuration.resolve(task=task, smoke=True)
    config = smoke if sizes.quick else {**configuration.resolve(task=task), "task_options": smoke["task_options"]}
    if sizes.quick:
        config = {**config, "model_options": dict(QUICK_MODEL_OPTIONS)}
    accepted = configuration.option_types(registry.get_task(task))
    if "download" in accepted:
        config["task_options"] = {**config["task_options"], "download": False}
    config["task_options"].update(checked_task_options(task, task_options or {}))
    return config


def checked_task_options(task: str, options: dict) -> dict:
    """`options` (strings from --set) as the types the task's loader declares; unknown names are refused."""
    accepted = configuration.option_types(registry.get_task(task))
    accepted.pop("batch_size", None)  # the experiment's train.batch_size sets it
    checked = {}
    for option, value in options.items():
        if option not in accepted:
            raise UserError(f"--set {task}.{option}: task {task} has no option {option!r}; its options: "
                            + ", ".join(sorted(accepted)))
        checked[option] = configuration.coerce(f"--set {task}.{option}", value, accepted[option])
    return checked


def portable_paths(text: str) -> str:
    """`text` with the data folders of this machine written as the variables that name them."""
    for variable in ("RNNBENCH_DATA_DIR", "TFDS_DATA_DIR"):
        folder = os.environ.get(variable)
        if folder:
            text = text.replace(str(Path(folder)), f"${variable}")
    return text


_loaded_specs: dict[str, TaskSpec] = {}  # by configuration hash; emptied at the start of each run


def load_spec(config: dict) -> TaskSpec:
    """`runner.load_task`, once per configuration in a run (the quick run's sections share one sine slice)."""
    key = configuration.config_hash(config)
    if key not in _loaded_specs:
        _loaded_specs[key] = runner.load_task(config)
    runner.set_seed(0)
    return _loaded_specs[key]


def add_paired_ratio(section: str, task: str, item: str, metric: str, numerators: Sequence[float],
                     denominators: Sequence[float], out: Measurements) -> None:
    """Round timings of two variants as ratios: `metric` is the median of per-round ratios with their range, and
    `best_round_ratio` the ratio of each variant's fastest round.

    Each round times both variants back to back. This machine's speed drifts by up to 2x within minutes, and a stall
    of several seconds can hit any single epoch: a drift hits both sides of a round nearly alike, and the median of
    the rounds shrugs off one stalled round, where a ratio of medians taken across rounds does neither (imdb's
    pipeline/cached read 0.53 that way while the same code paired gave 0.93-1.01). When stalls hit several rounds,
    the fastest rounds are the least disturbed (interference only ever adds time, the reasoning behind `timeit`
    reporting the minimum), so targets are judged on `best_round_ratio`.
    """
    ratios = [a / b for a, b in zip(numerators, denominators)]
    out.add(section, task, item, metric, statistics.median(ratios), "x")
    out.add(section, task, item, "ratio_min", min(ratios), "x")
    out.add(section, task, item, "ratio_max", max(ratios), "x")
    out.add(section, task, item, "best_round_ratio", min(numerators) / min(denominators), "x")


def measure_task(task: str, sizes: Sizes, out: Measurements, echo: Callable[[str], None],
                 task_options: Optional[dict] = None) -> None:
    """Sections task, pipeline and padding for one task.

    A timed epoch is the whole training split of the slice when it has at most `steps_per_epoch` batches, otherwise
    its first `steps_per_epoch` batches. Whole epochs matter for bucketed pipelines: their first batches come from
    whichever bucket fills first, usually the longest, so a partial epoch would misstate padding and throughput.
    """
    config = reference_config(task, sizes, task_options)
    start = time.perf_counter()
    spec = load_spec(config)
    out.add("task", task, "lstm", "load_s", time.perf_counter() - start, "s")
    start = time.perf_counter()
    model = runner.build_model(spec, "lstm", config)
    out.add("task", task, "lstm", "build_s", time.perf_counter() - start, "s")
    out.add("task", task, "lstm", "params", zoo.count_trainable(model), "")

    whole = read_pass(spec.train, spec.inputs, keep_examples=spec.inputs.masked)
    sliced = spec.train if whole.batches <= sizes.steps_per_epoch else spec.train.take(sizes.steps_per_epoch)
    counts = whole if sliced is spec.train else read_pass(sliced, spec.inputs)
    start = time.perf_counter()
    for _ in sliced:  # the pipeline alone, without the conversions to NumPy that counting needs
        pass
    alone_seconds = time.perf_counter() - start
    cached = sliced.cache()
    read_pass(cached, spec.inputs)  # fills the cache
    first_step, _ = timed_fit(model, sliced)
    out.add("task", task, "lstm", "first_step_s", first_step, "s")
    out.facts[f"{task} reference"] = portable_paths(
        f"lstm, {zoo.count_trainable(model):,} parameters, batch {config['train']['batch_size']}, "
        f"{counts.batches} batches per timed epoch ({'the whole' if sliced is spec.train else 'the start of the'} "
        f"training split of {whole.samples} samples), jit_compile {model.jit_compile}; model options "
        f"{config['model_options']}; task options {spec.options or config['task_options']}")

    # (dataset, its pass): the pipeline as the runner streams it (runner.endless), against the cached batches.
    variants = {"pipeline": (runner.endless(sliced), counts), "cached": (cached.repeat(), counts)}
    if spec.inputs.masked:
        seed = config["task_options"].get("seed", 0)
        batch_size = config["train"]["batch_size"]
        examples = whole.examples if sliced is spec.train else read_pass(sliced, spec.inputs, True).examples
        unbucketed = unbucketed_batches(examples, spec.inputs, batch_size, seed)
        variants["unbucketed"] = (unbucketed.repeat(), read_pass(unbucketed, spec.inputs))
    # Short epochs (a fraction of a second) would leave a round at the mercy of a moment's load on a shared machine.
    _, clock = timed_fit(model, cached)
    epochs_per_round = max(1, math.ceil(sizes.min_round_seconds / clock.epoch_seconds[0]))
    epochs: dict[str, list[float]] = {v: [] for v in variants}
    rounds: dict[str, list[float]] = {v: [] for v in variants}  # mean epoch seconds of each round
    steps: dict[str, list[float]] = {v: [] for v in variants}
    for round_number in range(sizes.rounds):
        order = list(variants) if round_number % 2 == 0 else list(reversed(variants))  # cancels drift in load
        for variant in order:
            # One fit per round on an endless stream, as a run trains; its first epoch (opening the iterator,
            # filling buffers: once per run in the runner; tracing unbucketed batch shapes) is not timed.
            data, passed = variants[variant]
            _, clock = timed_fit(model, data, epochs=epochs_per_round + 1, steps_per_epoch=passed.batches)
            epochs[variant] += clock.epoch_seconds[1:]
            rounds[variant].append(statistics.fmean(clock.epoch_seconds[1:]))
            steps[variant] += clock.step_seconds(first_epoch=1)
    seconds = {variant: statistics.median(values) for variant, values in epochs.items()}
    out.facts[f"{task} reference"] += (f"; timed: {sizes.rounds} rounds of {epochs_per_round} epoch(s) per variant "
                                       "after an untimed one, median epoch; ratios are medians of per-round ratios")
    echo(f"perf: {task}: first step after {first_step:.1f} s; {sizes.rounds} rounds of {epochs_per_round} "
         f"epoch(s) of {counts.batches} batches per variant")

    def throughput(section: str, item_variant: str, variant: str) -> None:
        passed = variants[variant][1]
        out.add(section, task, item_variant, "train_samples_per_s", passed.samples / seconds[variant], "samples/s")
        if section == "task":
            out.add(section, task, item_variant, "computed_timesteps_per_s",
                    passed.computed_steps / seconds[variant], "timesteps/s")
        out.add(section, task, item_variant, "real_timesteps_per_s", passed.real_steps / seconds[variant],
                "timesteps/s")
        if steps[variant]:
            out.add(section, task, item_variant, "median_step_ms", 1000 * statistics.median(steps[variant]), "ms")

    throughput("task", "lstm", "pipeline")
    forward_flops, stride = recurrent_forward_flops(model)
    epoch_flops = training_flops(forward_flops, counts.computed_steps / stride)
    out.add("flops", task, "lstm (reference)", "achieved_flops", epoch_flops / seconds["pipeline"], "FLOP/s")
    out.add("flops", task, "lstm (reference)", "step_flops", epoch_flops / counts.batches, "FLOP")
    for key, value in runner.measure_latency(model, spec, repeats=sizes.latency_repeats).items():
        out.add("task", task, "lstm", key, value, "ms" if key.startswith("latency_ms") else "")

    throughput("pipeline", "pipeline", "pipeline")
    throughput("pipeline", "cached", "cached")
    out.add("pipeline", task, "pipeline_alone", "batches_per_s", counts.batches / alone_seconds, "batches/s")
    out.add("pipeline", task, "pipeline_alone", "headroom", seconds["cached"] / alone_seconds, "x")
    add_paired_ratio("pipeline", task, "pipeline/cached", "throughput_ratio", rounds["cached"], rounds["pipeline"], out)
    for variant in ("pipeline", "cached"):  # cached: what next() costs when the batch is already in memory
        share, p99, batches = data_wait(model, variants[variant][0], counts.batches, sizes.wait_seconds)
        out.add("pipeline", task, variant, "wait_fraction", share, "fraction")
        out.add("pipeline", task, variant, "wait_p99_ms", 1000 * p99, "ms")
        out.add("pipeline", task, variant, "wait_batches", batches, "")

    if spec.inputs.masked:
        flat = read_pass(unbucketed_batches(whole.examples, spec.inputs, config["train"]["batch_size"],
                                            config["task_options"].get("seed", 0)), spec.inputs)
        out.add("padding", task, "bucketed (task pipeline)", "padded_fraction", whole.padded_fraction, "fraction")
        out.add("padding", task, "unbucketed", "padded_fraction", flat.padded_fraction, "fraction")
        throughput("padding", "bucketed (task pipeline)", "cached")
        throughput("padding", "unbucketed", "unbucketed")
        # Real timesteps per second, bucketed over unbucketed: (real_b / t_b) / (real_u / t_u).
        scale = counts.real_steps / variants["unbucketed"][1].real_steps
        add_paired_ratio("padding", task, "bucketed/unbucketed", "real_timesteps_ratio",
                         [scale * t for t in rounds["unbucketed"]], rounds["cached"], out)
        for key, value in spec.notes.items():
            if key.startswith("padded_fraction") and isinstance(value, (int, float)):
                out.add("padding", task, f"loader notes: {key}", "padded_fraction", value, "fraction")


def runner_callbacks(spec: TaskSpec, train: dict, folder: Path) -> list[keras.callbacks.Callback]:
    """The callbacks `runner.train_one` passes to fit, minus MLflow logging and the task's own callbacks."""
    best = runner.BestWeights(spec.monitor, patience=train["patience"], max_minutes=train["max_minutes"])
    timer = runner.EpochTimer()
    checkpoint = runner.EpochCheckpoint(folder)
    progress = runner.Progress(1, train["epochs"], lambda line: None).callback(1, "lstm", 0)
    return [runner.NaNGuard(), best, timer, checkpoint.callback(best, timer), progress]


def measure_runner_overhead(sizes: Sizes, out: Measurements, echo: Callable[[str], None]) -> None:
    """The sine experiment's full training set, one compiled model, plain fit and runner callbacks alternated."""
    if sizes.quick:
        config = {**configuration.resolve(task="sine", smoke=True), "model_options": dict(QUICK_MODEL_OPTIONS)}
    else:
        config = configuration.resolve(task="sine")
    spec = load_spec(config)
    model = runner.build_model(spec, "lstm", config)
    fit_options = dict(validation_data=spec.val, shuffle=False)
    samples = runner.count_samples(spec.train)
    epochs = sizes.overhead_epochs
    echo(f"perf: runner overhead: {sizes.overhead_rounds} x (plain fit, runner callbacks), {epochs} epoch(s) of "
         f"{samples} samples per fit")
    seconds: dict[str, list[float]] = {"plain": [], "runner": []}
    cpu_seconds: dict[str, list[float]] = {"plain": [], "runner": []}  # CPU time of this process, all its threads
    with tempfile.TemporaryDirectory(prefix="rnnbench-perf-") as tmp:
        # Untimed: the first fit traces training and validation, the first checkpoint sets up saving.
        timed_fit(model, spec.train, callbacks=runner_callbacks(spec, config["train"], Path(tmp) / "warm-up"),
                  **fit_options)
        for round_number in range(sizes.overhead_rounds):
            order = ["plain", "runner"] if round_number % 2 == 0 else ["runner", "plain"]
            for variant in order:
                if variant == "runner":  # the runner's endless per-run stream and its callbacks
                    data, steps, _ = runner.training_stream(spec, 0)
                    options = dict(callbacks=runner_callbacks(spec, config["train"], Path(tmp) / f"run{round_number}"),
                                   steps_per_epoch=steps)
                else:
                    data, options = spec.train, {}
                # Several epochs per fit, as in a run: the runner opens its stream once per run, not per epoch.
                start, cpu_start = time.perf_counter(), time.process_time()
                model.fit(data, epochs=epochs, verbose=0, **options, **fit_options)
                seconds[variant].append((time.perf_counter() - start) / epochs)
                cpu_seconds[variant].append((time.process_time() - cpu_start) / epochs)
        checkpoint = runner.EpochCheckpoint(Path(tmp) / "save")
        best, timer = runner.BestWeights(), runner.EpochTimer()
        timer.on_train_begin()
        saves = []
        for _ in range(3):
            start = time.perf_counter()
            checkpoint.save(model, 0, best, timer, {})
            saves.append(time.perf_counter() - start)
    for variant, values in seconds.items():
        out.add("overhead", "sine", variant, "epoch_s", statistics.median(values), "s")
        out.add("overhead", "sine", variant, "cpu_epoch_s", statistics.median(cpu_seconds[variant]), "s")
        out.add("overhead", "sine", variant, "train_samples_per_s", samples / statistics.median(values), "samples/s")
    # Two runs of this section gave 0.75 and 1.24 from medians taken across rounds; see add_paired_ratio.
    add_paired_ratio("overhead", "sine", "runner/plain", "throughput_ratio", seconds["plain"], seconds["runner"], out)
    # The runner's overhead is work this process does (callbacks, checkpoints, the stream's extra prefetch), so CPU
    # time measures it, and CPU time does not grow while the VM is stalled or another process holds the cores:
    # the wall-clock ratio's fastest rounds read 0.954 and 1.153 in two runs ten minutes apart.
    add_paired_ratio("overhead", "sine", "runner/plain (CPU time)", "throughput_ratio", cpu_seconds["plain"],
                     cpu_seconds["runner"], out)
    out.add("overhead", "sine", "checkpoint save", "per_epoch_ms", 1000 * statistics.median(saves), "ms")
    out.facts["overhead setup"] = (f"sine, lstm with {zoo.count_trainable(model):,} parameters, {epochs} epoch(s) "
                                   f"per fit, batch "
                                   f"{config['train']['batch_size']}, {samples} training samples per epoch, "
                                   "validation after each epoch in both variants")


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
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    else:
        tf_config.disable_op_determinism()
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


def measure_kernels(sizes: Sizes, out: Measurements, echo: Callable[[str], None]) -> None:
    was_deterministic = tf_config.is_op_determinism_enabled()
    data = probe_data(sizes.kernel_batch, sizes.kernel_steps, sizes.kernel_timesteps, sizes.kernel_features, True)
    try:
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
    finally:
        (tf.config.experimental.enable_op_determinism if was_deterministic else tf_config.disable_op_determinism)()
    out.facts["kernel setup"] = (f"batch {sizes.kernel_batch}, {sizes.kernel_timesteps} timesteps of "
                                 f"{sizes.kernel_features} features, {sizes.kernel_units} units, classification "
                                 "head; the masked input marks zero frames after a random length of T/2..T as "
                                 "padding, the unmasked one feeds the same frames without a mask")


def measure_flops(sizes: Sizes, out: Measurements, echo: Callable[[str], None]) -> None:
    """An LSTM big enough for its matrix products to dominate, as the runner compiles it and with XLA."""
    b, t, i, h = sizes.probe_batch, sizes.probe_timesteps, sizes.probe_inputs, sizes.probe_units
    spec = kernel_probe_spec(i, t, masked=False)
    data = probe_data(b, sizes.probe_steps, t, i, padded=False)
    step_flops = training_flops(2.0 * (i + h) * 4 * h * b, t)
    was_deterministic = tf_config.is_op_determinism_enabled()
    try:
        for variant in sizes.probe_variants:
            jit, deterministic = PROBE_VARIANTS[variant]
            step, _, _ = time_probe("lstm", spec, data, h, jit, deterministic)
            out.add("flops", "lstm probe", variant, "achieved_flops", step_flops / step, "FLOP/s")
            out.add("flops", "lstm probe", variant, "median_step_ms", 1000 * step, "ms")
            echo(f"perf: lstm probe {variant}: {step_flops / step / 1e9:.2f} GFLOP/s")
    finally:
        (tf.config.experimental.enable_op_determinism if was_deterministic else tf_config.disable_op_determinism)()
    out.add("flops", "lstm probe", "", "step_flops", step_flops, "FLOP")
    out.facts["flops setup"] = (f"LSTM probe: batch {b}, {t} timesteps, {i} inputs, {h} units; per timestep the "
                                f"forward pass multiplies 2 x B x (I + H) x 4H = {2 * b * (i + h) * 4 * h:,} FLOPs, "
                                "the backward pass about twice that, so a training step counts 3 x T x that "
                                "(recurrent layers only; the head and the elementwise gate math are left out)")


def measure_matmul(sizes: Sizes, out: Measurements, when: str) -> float:
    best, median = matmul_peak(sizes.matmul_size, sizes.matmul_repeats)
    out.add("matmul", f"{sizes.matmul_size}x{sizes.matmul_size} float32", when, "peak_flops", best, "FLOP/s")
    out.add("matmul", f"{sizes.matmul_size}x{sizes.matmul_size} float32", when, "median_flops", median, "FLOP/s")
    return best


# -- report --------------------------------------------------------------------------------------------------------

def _number(value: Optional[float], unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if unit == "FLOP/s":
        return f"{value / 1e9:.2f} G"
    if unit == "FLOP":
        return f"{value / 1e9:.3f} G"
    if unit == "fraction":
        return f"{100 * value:.1f}%"
    if unit == "x":
        return f"{value:.3g}"
    if abs(value) >= 1e4:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |",
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows)]


def _section_table(out: Measurements, section: str, metrics: Sequence[tuple[str, str]]) -> list[str]:
    """One row per (item, variant), one column per metric that any row of the section has."""
    present = [(m, label) for m, label in metrics if any(r.section == section and r.metric == m for r in out.rows)]
    units = {r.metric: r.unit for r in out.rows if r.section == section}
    rows = []
    for item in out.items(section):
        for variant in out.variants(section, item):
            values = [out.get(section, item, variant, m) for m, _ in present]
            if any(v is not None for v in values):
                rows.append([item, variant, *(_number(v, units.get(m, "")) for v, (m, _) in zip(values, present))])
    return _table(["item", "variant", *(label for _, label in present)], rows) if rows else []


def findings(out: Measurements) -> list[str]:
    """The conclusions the figures support, in words."""
    lines = []
    ratio = out.get("overhead", "sine", "runner/plain", "throughput_ratio")
    if ratio is not None:
        save = out.get("overhead", "sine", "checkpoint save", "per_epoch_ms")
        epoch = out.get("overhead", "sine", "plain", "epoch_s")
        low = out.get("overhead", "sine", "runner/plain", "ratio_min")
        high = out.get("overhead", "sine", "runner/plain", "ratio_max")
        best = out.get("overhead", "sine", "runner/plain", "best_round_ratio")
        best = ratio if best is None else best
        spread = f", rounds {low:.3f}-{high:.3f}" if low is not None and high is not None else ""
        cpu = out.get("overhead", "sine", "runner/plain (CPU time)", "throughput_ratio")
        wall = (f"wall clock: {best:.3f} in each one's fastest round, median of per-round ratios {ratio:.3f}"
                f"{spread}")
        if cpu is None:  # a perf.csv from before CPU time was measured: judged on the fastest rounds
            verdict = (f"the runner trains at {best:.3f} x the throughput of a plain `model.fit` in each one's "
                       f"fastest round ({'meets' if best >= RUNNER_TARGET else 'misses'} the target "
                       f"{RUNNER_TARGET}); median of per-round ratios {ratio:.3f}{spread}")
        else:
            cpu_low = out.get("overhead", "sine", "runner/plain (CPU time)", "ratio_min")
            cpu_high = out.get("overhead", "sine", "runner/plain (CPU time)", "ratio_max")
            verdict = (f"per unit of CPU time the runner trains at {cpu:.3f} x the throughput of a plain "
                       f"`model.fit` (median of per-round ratios, rounds {cpu_low:.3f}-{cpu_high:.3f}; "
                       f"{'meets' if cpu >= RUNNER_TARGET else 'misses'} the target {RUNNER_TARGET}); {wall}")
        lines.append(f"Runner overhead: {verdict}. The per-epoch checkpoint alone takes {save:.0f} ms, "
                     f"{100 * save / 1000 / epoch:.1f}% of a plain epoch of {epoch:.2f} s.")
    builds = {t: out.get("task", t, "lstm", "build_s") for t in out.items("task")}
    builds = {t: b for t, b in builds.items() if b is not None}
    if builds:
        lines.append("Building a reference model takes " + ", ".join(f"{b:.1f} s ({t})" for t, b in builds.items())
                     + "; with `param_budget` the builder searches the width by building about a dozen models, and "
                     "`runner.bench` builds each model once more to check it before the grid starts.")
    for task in out.items("pipeline"):
        ratio = out.get("pipeline", task, "pipeline/cached", "throughput_ratio")
        headroom = out.get("pipeline", task, "pipeline_alone", "headroom")
        if ratio is None or headroom is None:
            continue
        low = out.get("pipeline", task, "pipeline/cached", "ratio_min")
        high = out.get("pipeline", task, "pipeline/cached", "ratio_max")
        best = out.get("pipeline", task, "pipeline/cached", "best_round_ratio")
        if best is None:  # a perf.csv from before fastest rounds were measured
            spread = f" (median of per-round ratios, rounds {low:.2f}-{high:.2f})" if low is not None else ""
        else:
            spread = (f" in each one's fastest round (median of per-round ratios {ratio:.2f}, rounds "
                      f"{low:.2f}-{high:.2f})")
            ratio = best
        throughput = (f"{ratio:.2f} x the throughput of cached batches{spread}; alone the pipeline delivers "
                      f"{headroom:.1f} x the batches the model consumes")
        wait = out.get("pipeline", task, "pipeline", "wait_fraction")
        floor = out.get("pipeline", task, "cached", "wait_fraction")
        p99 = out.get("pipeline", task, "pipeline", "wait_p99_ms")
        if wait is None:  # a perf.csv from before the wait was measured
            lines.append(f"Input pipeline, {task}: {throughput}.")
            continue
        verdict = ("the pipeline is not the bottleneck" if wait <= PIPELINE_WAIT_TARGET else
                   "the model waits for data")
        lines.append(f"Input pipeline, {task}: the model spends {100 * wait:.1f}% of its training time waiting for "
                     f"the next batch (99th percentile of one wait {p99:.2f} ms; {100 * floor:.1f}% with cached "
                     f"batches, the cost of `next()` itself), "
                     f"{'within' if wait <= PIPELINE_WAIT_TARGET else 'over'} the target of "
                     f"{100 * PIPELINE_WAIT_TARGET:.0f}%: {verdict}. Throughput: {throughput}.")
    for task in out.items("padding"):
        bucketed = out.get("padding", task, "bucketed (task pipeline)", "padded_fraction")
        flat = out.get("padding", task, "unbucketed", "padded_fraction")
        speed = out.get("padding", task, "bucketed/unbucketed", "real_timesteps_ratio")
        if bucketed is not None and flat is not None and speed is not None:
            lines.append(f"Padding, {task}: {100 * bucketed:.1f}% of computed timesteps are padding with the task's "
                         f"bucketing, {100 * flat:.1f}% without; bucketing processes real timesteps "
                         f"{speed:.2f} x as fast.")
    xla_fastest = []
    for cell in out.items("kernel"):
        for mask in ("unmasked", "masked"):
            timings = {v: out.get("kernel", cell, f"{v}, {mask}", "median_step_ms") for v in KERNEL_VARIANTS}
            timings = {v: t for v, t in timings.items() if t is not None}
            if len(timings) < 2:
                continue
            fastest = min(timings, key=timings.get)
            xla_fastest.append(fastest == "xla")
            xla = timings.get("no_xla", math.nan) / timings.get("xla", math.nan)
            deterministic = timings.get("no_xla_deterministic", math.nan)
            lines.append(f"Kernel, {cell} {mask}: fastest {fastest} ({timings[fastest]:.1f} ms/step); XLA speedup "
                         f"{xla:.2f} x over no_xla; deterministic ops {deterministic:.1f} ms vs "
                         f"{timings.get('no_xla', math.nan):.1f} ms.")
    for cell in out.items("kernel"):
        masked = out.get("kernel", cell, "no_xla, masked", "median_step_ms")
        plain = out.get("kernel", cell, "no_xla, unmasked", "median_step_ms")
        if masked and plain:
            lines.append(f"Masking costs {cell} {masked / plain:.2f} x the unmasked step time (no_xla).")
    compile_costs = []  # first step with XLA minus first step without, same cell and mask
    for r in out.rows:
        if r.section == "kernel" and r.metric == "first_step_s" and r.variant.startswith("xla,"):
            without = out.get("kernel", r.item, "no_" + r.variant, "first_step_s")
            if without is not None:
                compile_costs.append(r.value - without)
    compile_cost = statistics.median(compile_costs) if compile_costs else None
    disagreements = []  # cells and masks where this run's evidence contradicts the runner's jit policy
    for cell in out.items("kernel"):
        for masked in (False, True):
            mask = "masked" if masked else "unmasked"
            with_xla = out.get("kernel", cell, f"xla, {mask}", "median_step_ms")
            without = out.get("kernel", cell, f"no_xla, {mask}", "median_step_ms")
            policy = runner.CPU_XLA_SPEEDUP.get((cell, masked))
            if with_xla and without and policy is not None and (without / with_xla > 1.0) != (policy > 1.0):
                disagreements.append(f"{cell} {mask} (measured {without / with_xla:.2f} x, table {policy:.2f} x)")
    if xla_fastest:
        lines.append("The runner's `train.jit_compile=auto` uses XLA on CPU for fixed-length inputs and the cells "
                     "and masks where `runner.CPU_XLA_SPEEDUP` says it is faster, switching op determinism off for "
                     "those runs (variable-length tasks get no XLA: see `runner.use_xla`). "
                     + ("This run agrees with that table everywhere." if not disagreements else
                        "This run disagrees for " + "; ".join(disagreements) + ": update the table if it repeats.")
                     + (f" XLA's compilation adds a median {compile_cost:.1f} s to the first step, once per distinct "
                        "batch shape (bucketed tasks compile once per bucket)." if compile_cost is not None else ""))
    peak = max((r.value for r in out.rows if r.section == "matmul" and r.metric == "peak_flops"), default=None)
    if peak:
        for r in out.rows:
            if r.section == "flops" and r.metric == "achieved_flops":
                lines.append(f"Physical limit, {r.item} ({r.variant}): {r.value / 1e9:.2f} GFLOP/s, "
                             f"{100 * r.value / peak:.1f}% of the measured matmul peak {peak / 1e9:.1f} GFLOP/s.")
    return lines


def readme(out: Measurements, environment: dict, changes: list[Change], baseline: Optional[str]) -> str:
    lines = [
        "# rnnbench performance",
        "",
        f"Generated by `{environment.get('command', 'python -m rnnbench.perf')}`; do not edit by hand. Every figure "
        "is in [perf.csv](perf.csv). Timings are wall clock on the machine below; on a shared machine they move with "
        "its load (see the load average).",
        "",
        "## Findings",
        "",
        *(f"- {line}" for line in findings(out)),
        "",
        "## Per task: the reference model",
        "",
        "Each task's `lstm` with the model options of `experiments/<task>.py`, built and compiled as the runner does "
        "(`runner.load_task`, `runner.build_model`, whose jit policy decides XLA), trained on a slice of the task "
        "(the experiment's SMOKE data options; an epoch is the slice's whole training split, or its first "
        "batches when it is longer). `first step` is the time from calling `fit` until the first batch has finished: "
        "iterator start, tracing, compilation. Throughput is the median epoch of the timed rounds after that; "
        "`timesteps/s` counts every computed timestep (padding included) and the real ones (padding excluded). "
        "Latency is `runner.measure_latency`: the median of repeated `predict_on_batch` on one test batch.",
        "",
        *_section_table(out, "task", [("load_s", "load s"), ("build_s", "build s"), ("params", "params"),
                                      ("first_step_s", "first step s"), ("train_samples_per_s", "samples/s"),
                                      ("computed_timesteps_per_s", "timesteps/s"),
                                      ("real_timesteps_per_s", "real timesteps/s"),
                                      ("median_step_ms", "median step ms"),
                                      ("latency_ms_per_batch", "latency ms/batch"),
                                      ("latency_batch_size", "latency batch"),
                                      ("latency_ms_per_sample", "latency ms/sample")]),
        "",
        *(f"- {key}: {value}" for key, value in out.facts.items() if key.endswith(" reference")),
        *(f"- skipped {task}: {reason}" for task, reason in out.skipped.items()),
        "",
        "## Runner overhead",
        "",
        "One compiled model, the same data and batches, one `fit` call of a few epochs per variant (a run is one "
        "`fit` of many epochs, so per-call start-up is shared as in a run), alternated (plain, runner, runner, "
        "plain, ...) so a change in load hits both: a plain `model.fit(train, validation_data=val)` against the "
        "runner's way: its endless per-run training stream (`runner.training_stream`, `steps_per_epoch`) and the "
        "callbacks `runner.train_one` passes (NaN guard, best weights with early stopping, epoch timer, per-epoch "
        "checkpoint of model and optimizer, progress line) minus MLflow logging. Each round's ratio is plain "
        "epoch time / runner epoch time of its two back-to-back fits; the table gives their median and range, and "
        "`fastest rounds`, the ratio of each variant's fastest round (1.0: no overhead). Row `runner/plain (CPU "
        "time)` takes the same ratios of the process's CPU time (`time.process_time`, all threads), which the "
        f"target (>= {RUNNER_TARGET}) is judged on: the runner's overhead is work this process does, and CPU time, "
        "unlike wall-clock time, does not grow while the virtual machine is stalled or another process holds the "
        "cores (the wall-clock fastest rounds read 0.954 and 1.153 in two runs ten minutes apart on one commit). "
        "It leaves out time spent blocked on the disk; the checkpoint row times the save itself in wall clock.",
        "",
        *_section_table(out, "overhead", [("epoch_s", "epoch s"), ("cpu_epoch_s", "CPU s per epoch"),
                                          ("train_samples_per_s", "samples/s"),
                                          ("best_round_ratio", "fastest rounds"), ("throughput_ratio", "ratio"),
                                          ("ratio_min", "lowest round"),
                                          ("ratio_max", "highest round"), ("per_epoch_ms", "ms per epoch")]),
        "",
        *(f"- {value}" for key, value in out.facts.items() if key == "overhead setup"),
        "",
        "## Input pipeline",
        "",
        "The same number of batches from the task's tf.data pipeline (shuffling, bucketing, padding, prefetch), "
        "streamed endlessly as the runner streams it (`runner.endless`), and from those batches cached in memory, "
        "alternated; each round is one `fit` per variant whose first epoch is not timed. "
        "`throughput_ratio` is pipeline / cached throughput, the median of the ratios of the rounds' "
        "back-to-back epochs; `fastest rounds` compares each variant's fastest round. It falls below 1.0 both when "
        "the model waits for data and when the pipeline's threads take CPU time from the model, and this machine's "
        "noise moves it by 10-20% between runs. So whether the model waits is measured directly: `waiting` is the "
        "share of training time spent in `next()` on the endless stream, training batch by batch "
        "(`train_on_batch`) over whole passes after an untimed first one, pass boundaries included "
        f"(target <= {100 * PIPELINE_WAIT_TARGET:.0f}%); the cached row is the floor, what `next()` costs when the "
        "batch is already in memory. `pipeline_alone` reads the pipeline without a model: `headroom` is how many "
        "times faster it delivers batches than the model consumes them.",
        "",
        *_section_table(out, "pipeline", [("wait_fraction", "waiting"), ("wait_p99_ms", "wait p99 ms"),
                                          ("wait_batches", "batches timed"),
                                          ("train_samples_per_s", "samples/s"), ("median_step_ms", "median step ms"),
                                          ("batches_per_s", "batches/s"), ("headroom", "headroom"),
                                          ("best_round_ratio", "fastest rounds"), ("throughput_ratio", "ratio"),
                                          ("ratio_min", "lowest round"), ("ratio_max", "highest round")]),
        "",
        "## Padding and length bucketing",
        "",
        "For tasks with padded (masked) input: the share of computed timesteps that are padding in the task's "
        "bucketed batches, and when the same examples are shuffled and padded per batch to the batch's longest "
        "example instead; both cached in memory, so only the padding differs in the speed comparison "
        "(`real_timesteps_ratio`: real timesteps per second, bucketed / unbucketed). Rows `loader notes` are the "
        "fractions the task's loader reports over its whole training split.",
        "",
        *_section_table(out, "padding", [("padded_fraction", "padded"), ("train_samples_per_s", "samples/s"),
                                         ("real_timesteps_per_s", "real timesteps/s"),
                                         ("best_round_ratio", "fastest rounds"), ("real_timesteps_ratio", "ratio"),
                                         ("ratio_min", "lowest round"), ("ratio_max", "highest round")]),
        "",
        "## Kernel choices on this device",
        "",
        "Steady training-step time (median over the second epoch) per cell: `xla` is `jit_compile=True`, `no_xla` "
        "`jit_compile=False`, `no_xla_deterministic` adds TensorFlow's op determinism as `runner.set_seed` enables "
        "it. XLA with deterministic ops does not exist: Keras turns `jit_compile=True` off while op determinism is "
        "on, so the runner switches determinism off where its policy picks XLA. `xla_used` is what the "
        "compiled model really used; `first step` includes the XLA compilation.",
        "",
        *(f"- {value}" for key, value in out.facts.items() if key == "kernel setup"),
        "",
        *_section_table(out, "kernel", [("median_step_ms", "median step ms"), ("first_step_s", "first step s"),
                                        ("xla_used", "xla used")]),
        "",
        "![kernel choices](kernels.png)" if "kernel" in {r.section for r in out.rows} else "",
        "",
        "## Physical limit",
        "",
        "Achieved FLOP/s of LSTM training steps: the matrix products of the recurrent layers (per timestep forward "
        "2 x B x (I + H) x 4H FLOPs, backward about twice the forward) divided by the measured step time, against the "
        "float32 matmul peak (the best of repeated square products with `tf.linalg.matmul`) measured in the same "
        "run, at its start and at its end. Reference rows count every computed timestep of the task's batches.",
        "",
        *(f"- {value}" for key, value in out.facts.items() if key == "flops setup"),
        "",
        *_section_table(out, "flops", [("achieved_flops", "achieved FLOP/s"), ("step_flops", "FLOP per step"),
                                       ("median_step_ms", "median step ms")]),
        "",
        *_section_table(out, "matmul", [("peak_flops", "peak FLOP/s"), ("median_flops", "median FLOP/s")]),
        "",
        "![throughput and FLOP/s](tasks.png)",
        "",
        "## GPU: mixed precision and XLA",
        "",
        "Both are runner options: `--set train.mixed_precision=true` (Keras's `mixed_float16`: float16 compute, "
        "float32 weights, and float32 model outputs so losses stay in float32) and `--set train.jit_compile=true` "
        "(XLA; `auto` keeps it off on a GPU so the fused cuDNN LSTM/GRU kernels run). Mixed precision helps where "
        "the device has float16 matrix units (NVIDIA tensor cores, Volta or newer) and the layers are wide enough "
        "to keep them busy; a CPU has no such units, so it stays off by default.",
        "",
        (f"Not measured: this run had no GPU ({environment.get('device')}), so mixed precision (`mixed_float16`) "
         "and XLA on a GPU have no figures here."
         if str(environment.get("cuda", "none")) == "none" else
         f"This run had a GPU ({environment.get('device')}); perf keeps float32 throughout, so mixed precision "
         "(`mixed_float16`) has no figures here; the kernel section's `xla` rows are XLA on this device."),
        "",
        "## Compared with the previous run",
        "",
    ]
    if changes:
        lines += [f"Against {baseline}: new / previous per figure; `worse` / `better` mark changes over "
                  f"{100 * CHANGE_WORTH_FLAGGING:.0f}% in a direction that matters.", ""]
        lines += _table(["section", "item", "variant", "metric", "previous", "now", "ratio", ""],
                        ([c.row.section, c.row.item, c.row.variant, c.row.metric, _number(c.previous, c.row.unit),
                          _number(c.row.value, c.row.unit), _number(c.ratio), c.verdict] for c in changes))
    else:
        lines.append("No previous perf.csv to compare with." if baseline is None else
                     f"{baseline} has no figure in common with this run (or one of the two runs was --quick).")
    lines += ["", "## Environment", ""]
    lines += _table(["", ""], ([k, v] for k, v in environment.items()))
    lines += ["", "## Reproduce", "", "```", "make perf        # python -m rnnbench.perf", "```", "",
              "Set TFDS_DATA_DIR and RNNBENCH_DATA_DIR to include the tasks that need downloaded data; "
              "`--quick` runs a tiny version of every measurement (sine only) in well under a minute."]
    return "\n".join(lines) + "\n"


def plot_kernels(out: Measurements, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = out.items("kernel")
    if not cells:
        return False
    measured = {r.variant for r in out.rows if r.section == "kernel"}
    variants = [(v, m) for m in ("unmasked", "masked") for v in KERNEL_VARIANTS if f"{v}, {m}" in measured]
    fig, ax = plt.subplots(figsize=(8, 4.8))
    width = 0.8 / len(variants)
    colors = {v: f"C{i}" for i, v in enumerate(KERNEL_VARIANTS)}
    for index, (variant, mask) in enumerate(variants):
        values = [out.get("kernel", c, f"{variant}, {mask}", "median_step_ms") or 0.0 for c in cells]
        ax.bar(np.arange(len(cells)) + (index - (len(variants) - 1) / 2) * width, values, width,
               label=f"{variant}, {mask}", color=colors[variant], hatch="//" if mask == "masked" else None)
    ax.set_xticks(np.arange(len(cells)), cells)
    ax.set_ylabel("median training step (ms), lower is better")
    ax.set_title("Kernel choices on this device")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    fig.tight_layout()
    _atomic_write(path, lambda p: fig.savefig(p, dpi=100, format="png"))
    plt.close(fig)
    return True


def plot_tasks(out: Measurements, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    tasks = out.items("task")
    variants = [("pipeline", "pipeline"), ("pipeline", "cached"), ("padding", "unbucketed")]
    width = 0.8 / len(variants)
    for index, (section, variant) in enumerate(variants):
        values = [out.get(section, t, variant, "train_samples_per_s") or 0.0 for t in tasks]
        left.bar(np.arange(len(tasks)) + (index - 1) * width, values, width, label=variant)
    left.set_xticks(np.arange(len(tasks)), tasks)
    left.set_yscale("log")
    left.set_ylabel("training samples/s (log), higher is better")
    left.legend(fontsize=8)
    left.set_title("Reference lstm per task")
    achieved = [r for r in out.rows if r.section == "flops" and r.metric == "achieved_flops"]
    labels = [f"{r.item}\n{r.variant}" for r in achieved]
    right.barh(np.arange(len(achieved)), [r.value / 1e9 for r in achieved])
    right.set_yticks(np.arange(len(achieved)), labels, fontsize=7)
    for r in out.rows:
        if r.section == "matmul" and r.metric == "peak_flops":
            right.axvline(r.value / 1e9, color="r", linestyle="--")
    right.set_xscale("log")
    right.set_xlabel("GFLOP/s (log); dashed: matmul peak")
    right.set_title("Achieved FLOP/s")
    fig.tight_layout()
    _atomic_write(path, lambda p: fig.savefig(p, dpi=100, format="png"))
    plt.close(fig)


def print_comparison(changes: list[Change], baseline: Path, echo: Callable[[str], None]) -> None:
    if not changes:
        echo(f"perf: {baseline} not compared: no figure in common with this run (or one of the two was --quick)")
        return
    echo(f"perf: compared with {baseline} (ratio = now / previous):")
    for c in changes:
        echo(f"  {c.row.section:9s} {c.row.item:22s} {c.row.variant:34s} {c.row.metric:26s} "
             f"{_number(c.previous, c.row.unit):>10s} -> {_number(c.row.value, c.row.unit):>10s}  "
             f"x{_number(c.ratio)} {c.verdict}")


# -- entry point ---------------------------------------------------------------------------------------------------

def run(out_dir: Path, sizes: Sizes, tasks: Sequence[str], baseline: Optional[Path], command: str,
        echo: Callable[[str], None] = print, task_options: Optional[dict] = None) -> Measurements:
    """Measures everything, writes perf.csv, perf.json, README.md and the plots into `out_dir`, prints the comparison.

    `task_options`: {task: {option: value}} on top of each task's reference configuration (from --set).
    """
    previous_path = baseline if baseline is not None else out_dir / "perf.csv"
    previous = read_csv(previous_path) if previous_path.is_file() else []
    out = Measurements()
    out.add(*SIZES_KEY, float(sizes.quick))
    _loaded_specs.clear()
    started = time.perf_counter()
    load_start = os.getloadavg()
    environment = describe_environment()
    environment["command"] = command
    echo(f"perf: {'quick' if sizes.quick else 'full'} run on {environment['device']}, load average "
         f"{load_start[0]:.2f}; writing {out_dir}/")
    measure_matmul(sizes, out, "start")
    for task in tasks:
        section_start = time.perf_counter()
        try:
            measure_task(task, sizes, out, echo, (task_options or {}).get(task))
        except UserError as error:  # absent data or experiment: the README says which and why
            out.skipped[task] = str(error).splitlines()[0][:300]
            echo(f"perf: {task} skipped: {out.skipped[task]}")
        echo(f"perf: {task} took {time.perf_counter() - section_start:.0f} s")
    for name, measure in (("runner overhead", measure_runner_overhead), ("kernels", measure_kernels),
                          ("flops", measure_flops)):
        section_start = time.perf_counter()
        measure(sizes, out, echo)
        echo(f"perf: {name} took {time.perf_counter() - section_start:.0f} s")
    measure_matmul(sizes, out, "end")
    load_end = os.getloadavg()
    environment.update({
        "load average (1/5/15 min) at start": " / ".join(f"{v:.2f}" for v in load_start),
        "load average (1/5/15 min) at end": " / ".join(f"{v:.2f}" for v in load_end),
        "tf intra/inter-op threads (0: one per core)": f"{tf.config.threading.get_intra_op_parallelism_threads()} / "
                                                        f"{tf.config.threading.get_inter_op_parallelism_threads()}",
        "perf duration (s)": f"{time.perf_counter() - started:.0f}",
        "sizes": "quick" if sizes.quick else "full",
    })
    changes = compare(previous, out.rows)
    state = {"environment": environment, "facts": out.facts, "skipped": out.skipped,
             "baseline": str(previous_path) if previous else None,
             "previous": [[*c.row.key, c.previous] for c in changes]}
    write_csv(out.rows, out_dir / "perf.csv")
    _atomic_write(out_dir / "perf.json", lambda p: p.write_text(json.dumps(state, indent=2) + "\n"))
    write_report(out_dir, out, state)
    if previous:
        print_comparison(changes, previous_path, echo)
    for line in findings(out):
        echo(f"perf: {line}")
    echo(f"perf: wrote {out_dir}/perf.csv, perf.json, README.md, kernels.png, tasks.png in "
         f"{time.perf_counter() - started:.0f} s")
    return out


def write_report(out_dir: Path, out: Measurements, state: dict) -> None:
    """README.md and the plots, from the measurements and the rest of the run's record (perf.json)."""
    earlier = {tuple(entry[:4]): entry[4] for entry in state["previous"]}
    changes = [Change(row, earlier[row.key]) for row in out.rows if row.key in earlier]
    plot_kernels(out, out_dir / "kernels.png")
    plot_tasks(out, out_dir / "tasks.png")
    text = readme(out, state["environment"], changes, state["baseline"])
    _atomic_write(out_dir / "README.md", lambda p: p.write_text(text))


def render(out_dir: Path, echo: Callable[[str], None] = print) -> Measurements:
    """Redraws README.md and the plots of the run recorded in `out_dir` (perf.csv, perf.json), measuring nothing."""
    csv_path, state_path = out_dir / "perf.csv", out_dir / "perf.json"
    for path in (csv_path, state_path):
        if not path.is_file():
            raise UserError(f"{path} not found: --render redraws an earlier run's README and plots; run "
                            "`python -m rnnbench.perf` first")
    out = Measurements()
    out.rows = read_csv(csv_path)
    if not out.rows:
        raise UserError(f"{csv_path} holds no figures; run `python -m rnnbench.perf` again")
    try:
        state = json.loads(state_path.read_text())
        out.facts, out.skipped = dict(state["facts"]), dict(state["skipped"])
        write_report(out_dir, out, state)
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise UserError(f"{state_path} is not a perf record ({type(error).__name__}: {error}); run "
                        "`python -m rnnbench.perf` again") from None
    echo(f"perf: redrew {out_dir}/README.md, kernels.png, tasks.png from perf.csv and perf.json")
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rnnbench.perf", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None,
                        help="output folder (default results/perf, with --quick results/perf_quick)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, sine only: checks every measurement runs")
    parser.add_argument("--tasks", default=None,
                        help="comma-separated tasks (default: every registered task; --quick: sine)")
    parser.add_argument("--baseline", default=None,
                        help="perf.csv to compare with (default: the perf.csv already in --out)")
    parser.add_argument("--set", action="append", default=[], metavar="TASK.OPTION=VALUE",
                        help="a task option on top of the experiment's, e.g. --set speech.data_dir=PATH (repeatable)")
    parser.add_argument("--render", action="store_true",
                        help="measure nothing: redraw README.md and the plots from perf.csv and perf.json in --out")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else (
        ["sine"] if args.quick else sorted(registry.list_tasks(), key=lambda t: (t != "sine", t)))
    try:
        for task in tasks:
            registry.get_task(task)
        baseline = Path(args.baseline) if args.baseline else None
        if baseline is not None and not baseline.is_file():
            raise UserError(f"--baseline {baseline}: no such file")
        task_options: dict[str, dict] = {}
        for key, value in configuration.parse_sets(args.set).items():
            task, _, option = key.partition(".")
            if task not in tasks or not option:
                raise UserError(f"--set {key}: expected TASK.OPTION=VALUE for one of the measured tasks {tasks}")
            task_options.setdefault(task, {})[option] = value
        for task, options in task_options.items():
            checked_task_options(task, options)  # a typo fails now, not as a skipped task minutes later
        command = " ".join(["python -m rnnbench.perf", *(argv if argv is not None else sys.argv[1:])])
        out_dir = Path(args.out or ("results/perf_quick" if args.quick else "results/perf"))
        if args.render:
            render(out_dir)
        else:
            run(out_dir, sizes, tasks, baseline, command, task_options=task_options)
    except UserError as error:
        print(f"rnnbench perf: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
