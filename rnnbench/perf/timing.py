"""Timing tools of perf: wall-clock marks of a `fit` (epochs, batches), and paired ratios of alternated rounds."""
from __future__ import annotations

import statistics
import time
from typing import Sequence

import keras

from rnnbench.perf.record import Measurements


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
