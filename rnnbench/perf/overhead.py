"""Section `overhead`: the runner's own callbacks and training stream (NaN guard, best weights, epoch timer,
per-epoch checkpoint, progress line; MLflow logging left out) against a plain `model.fit` on the same compiled
model, data and batches, in wall-clock and in CPU time, and the time of one checkpoint save."""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import keras

from rnnbench import models as zoo
from rnnbench import runner
from rnnbench.callbacks import BestWeights, EpochTimer, NaNGuard, Progress
from rnnbench.checkpoint import EpochCheckpoint
from rnnbench.measure import count_samples
from rnnbench.perf.record import Measurements
from rnnbench.perf.reference import load_spec, overhead_config
from rnnbench.perf.sizes import Sizes
from rnnbench.perf.timing import add_paired_ratio, timed_fit
from rnnbench.spec import TaskSpec
from rnnbench.streaming import training_stream


def runner_callbacks(spec: TaskSpec, train: dict, folder: Path) -> list[keras.callbacks.Callback]:
    """The callbacks `runner.train_one` passes to fit, minus MLflow logging and the task's own callbacks."""
    best = BestWeights(spec.monitor, patience=train["patience"], max_minutes=train["max_minutes"])
    timer = EpochTimer()
    checkpoint = EpochCheckpoint(folder)
    progress = Progress(1, train["epochs"], lambda line: None).callback(1, "lstm", 0)
    return [NaNGuard(), best, timer, checkpoint.callback(best, timer), progress]


def measure_runner_overhead(sizes: Sizes, out: Measurements, echo: Callable[[str], None]) -> None:
    """The sine experiment's full training set, one compiled model, plain fit and runner callbacks alternated."""
    config = overhead_config(sizes)
    spec = load_spec(config)
    model = runner.build_model(spec, "lstm", config)
    fit_options = dict(validation_data=spec.val, shuffle=False)
    samples = count_samples(spec.train)
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
                    data, steps, _ = training_stream(spec, 0)
                    options = dict(callbacks=runner_callbacks(spec, config["train"], Path(tmp) / f"run{round_number}"),
                                   steps_per_epoch=steps)
                else:
                    data, options = spec.train, {}
                # Several epochs per fit, as in a run: the runner opens its stream once per run, not per epoch.
                start, cpu_start = time.perf_counter(), time.process_time()
                model.fit(data, epochs=epochs, verbose=0, **options, **fit_options)
                seconds[variant].append((time.perf_counter() - start) / epochs)
                cpu_seconds[variant].append((time.process_time() - cpu_start) / epochs)
        checkpoint = EpochCheckpoint(Path(tmp) / "save")
        best, timer = BestWeights(), EpochTimer()
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
