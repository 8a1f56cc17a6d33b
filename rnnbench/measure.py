"""Measurements of a run: training samples, inference latency, peak resident memory, and memory maps held."""
from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path
from typing import Callable

import keras
import tensorflow as tf


def count_samples(dataset) -> int:
    # x may be a tuple of inputs (the seq2seq head's source and decoder input): its first part counts the examples
    return int(sum(int(tf.shape(tf.nest.flatten(x)[0])[0]) for x, _ in dataset))


def measure_latency(model: keras.Model, spec, repeats: int = 20) -> dict:
    """Median wall time of one inference batch, after two warm-up calls that absorb tracing."""
    x, _ = spec.example_batch()
    for _ in range(2):
        model.predict_on_batch(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_on_batch(x)
        times.append(time.perf_counter() - start)
    median, batch = statistics.median(times), int(tf.nest.flatten(x)[0].shape[0])  # x may be a tuple of inputs
    return {"latency_ms_per_batch": median * 1000, "latency_batch_size": batch,
            "latency_ms_per_sample": median * 1000 / batch}


class PeakMemory:
    """Peak resident memory of this process while the block runs (sampled every 50 ms), plus GPU peak if any."""

    def __enter__(self):
        import psutil

        self._process = psutil.Process()
        self.peak_bytes = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.05):
            self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss)

    @property
    def peak_mb(self) -> float:
        return getattr(self, "peak_bytes", 0) / 2**20


def memory_maps() -> tuple[int, int]:
    """(memory maps this process holds, the kernel's limit per process); (0, 0) where /proc cannot tell."""
    try:
        with open("/proc/self/maps") as maps:
            held = sum(1 for _ in maps)
        return held, int(Path("/proc/sys/vm/max_map_count").read_text())
    except (OSError, ValueError):
        return 0, 0


def warn_when_memory_maps_run_low(echo: Callable[[str], None], share: float = 0.6) -> None:
    held, limit = memory_maps()
    if limit and held > share * limit:
        echo(f"rnnbench: warning: this process holds {held:,} of at most {limit:,} memory maps (TensorFlow's XLA "
             "JIT keeps the code of every program it compiled). If the grid stops with 'Cannot allocate memory', "
             "run the same command again (finished runs are skipped), set train.jit_compile=false, or raise "
             "vm.max_map_count.")
