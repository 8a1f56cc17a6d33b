"""Section `pipeline`: the task's tf.data pipeline against the same batches cached in memory, the share of training
time the model waits for its next batch, and the pipeline alone."""
from __future__ import annotations

import time

import keras
import numpy as np

from rnnbench.perf.record import Measurements
from rnnbench.perf.rounds import TimedTask
from rnnbench.perf.sizes import Sizes
from rnnbench.perf.timing import add_paired_ratio


def seconds_alone(batches) -> float:
    """One pass over `batches` without a model, and without the conversions to NumPy that counting needs."""
    start = time.perf_counter()
    for _ in batches:
        pass
    return time.perf_counter() - start


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


def add_figures(timed: TimedTask, sizes: Sizes, out: Measurements) -> None:
    """Throughput of the pipeline and of the cached batches from the rounds, then the data wait of each."""
    task, counts = timed.task, timed.counts
    timed.add_throughput(out, "pipeline", "pipeline", "pipeline")
    timed.add_throughput(out, "pipeline", "cached", "cached")
    out.add("pipeline", task, "pipeline_alone", "batches_per_s", counts.batches / timed.alone_seconds, "batches/s")
    out.add("pipeline", task, "pipeline_alone", "headroom", timed.seconds["cached"] / timed.alone_seconds, "x")
    add_paired_ratio("pipeline", task, "pipeline/cached", "throughput_ratio", timed.rounds["cached"],
                     timed.rounds["pipeline"], out)
    for variant in ("pipeline", "cached"):  # cached: what next() costs when the batch is already in memory
        share, p99, batches = data_wait(timed.model, timed.variants[variant][0], counts.batches, sizes.wait_seconds)
        out.add("pipeline", task, variant, "wait_fraction", share, "fraction")
        out.add("pipeline", task, variant, "wait_p99_ms", 1000 * p99, "ms")
        out.add("pipeline", task, variant, "wait_batches", batches, "")
