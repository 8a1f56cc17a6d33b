"""One task's reference model timed in alternated rounds over variants of the same batches (the task's pipeline,
the batches cached, the examples without length bucketing): the timings the task, pipeline and padding sections read.
"""
from __future__ import annotations

import dataclasses
import math
import statistics

import keras

from rnnbench.perf.counting import Pass
from rnnbench.perf.record import Measurements
from rnnbench.perf.sizes import Sizes
from rnnbench.perf.timing import timed_fit
from rnnbench.spec import TaskSpec


@dataclasses.dataclass
class TimedTask:
    task: str
    config: dict
    spec: TaskSpec
    model: keras.Model
    whole: Pass  # one pass over the training split of the slice
    sliced: object  # the batches of a timed epoch (a tf.data.Dataset)
    counts: Pass  # one pass over `sliced`
    cached: object  # `sliced` cached in memory
    alone_seconds: float  # one pass over `sliced` without a model
    variants: dict  # name -> (endless batches, the Pass of one epoch of them)
    epochs_per_round: int = 0
    seconds: dict = dataclasses.field(default_factory=dict)  # variant -> median epoch seconds
    rounds: dict = dataclasses.field(default_factory=dict)  # variant -> mean epoch seconds of each round
    steps: dict = dataclasses.field(default_factory=dict)  # variant -> seconds of every timed step

    def add_throughput(self, out: Measurements, section: str, item_variant: str, variant: str) -> None:
        """Samples and timesteps per second of `variant`'s median epoch, as row (section, task, item_variant)."""
        passed, seconds, task = self.variants[variant][1], self.seconds[variant], self.task
        out.add(section, task, item_variant, "train_samples_per_s", passed.samples / seconds, "samples/s")
        if section == "task":
            out.add(section, task, item_variant, "computed_timesteps_per_s", passed.computed_steps / seconds,
                    "timesteps/s")
        out.add(section, task, item_variant, "real_timesteps_per_s", passed.real_steps / seconds, "timesteps/s")
        if self.steps[variant]:
            out.add(section, task, item_variant, "median_step_ms", 1000 * statistics.median(self.steps[variant]), "ms")


def time_rounds(timed: TimedTask, sizes: Sizes) -> None:
    """Fills `timed.epochs_per_round`, `seconds`, `rounds` and `steps`: `sizes.rounds` rounds, each one `fit` per
    variant, alternating the order of the variants from round to round."""
    model, variants = timed.model, timed.variants
    # Short epochs (a fraction of a second) would leave a round at the mercy of a moment's load on a shared machine.
    _, clock = timed_fit(model, timed.cached)
    timed.epochs_per_round = max(1, math.ceil(sizes.min_round_seconds / clock.epoch_seconds[0]))
    epochs: dict[str, list[float]] = {v: [] for v in variants}
    timed.rounds = {v: [] for v in variants}
    timed.steps = {v: [] for v in variants}
    for round_number in range(sizes.rounds):
        order = list(variants) if round_number % 2 == 0 else list(reversed(variants))  # cancels drift in load
        for variant in order:
            # One fit per round on an endless stream, as a run trains; its first epoch (opening the iterator,
            # filling buffers: once per run in the runner; tracing unbucketed batch shapes) is not timed.
            data, passed = variants[variant]
            _, clock = timed_fit(model, data, epochs=timed.epochs_per_round + 1, steps_per_epoch=passed.batches)
            epochs[variant] += clock.epoch_seconds[1:]
            timed.rounds[variant].append(statistics.fmean(clock.epoch_seconds[1:]))
            timed.steps[variant] += clock.step_seconds(first_epoch=1)
    timed.seconds = {variant: statistics.median(values) for variant, values in epochs.items()}
