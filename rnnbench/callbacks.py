"""The callbacks of a run: NaN guard, best weights with early stopping, epoch timing, gradient norms, MLflow logging,
progress lines."""
from __future__ import annotations

import builtins
import math
import time
from typing import Callable, Optional

import keras
import numpy as np

from rnnbench.errors import UserError
from rnnbench.optimizers import gradient_norm_optimizer


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers why."""

    reason: Optional[str] = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.reason = f"loss became {float(loss)} at epoch {self._epoch + 1}, batch {batch + 1}"
            self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch


class BestWeights(keras.callbacks.Callback):
    """Keeps the weights of the best epoch by `monitor` (lower is better) and restores them after training.

    Also stops early after `patience` epochs without improvement (0: never) or after `max_minutes` (0: no limit).
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 0, max_minutes: float = 0.0):
        super().__init__()
        self.monitor, self.patience, self.max_minutes = monitor, patience, max_minutes
        self.best, self.best_epoch, self.best_logs, self.best_weights = math.inf, -1, {}, None
        self.time_capped = False
        self.stopped = False  # it ended training (patience or time cap): a resumed run has nothing left to train

    def on_train_begin(self, logs=None):
        self._start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise UserError(f"monitor {self.monitor!r} is not among the epoch metrics {sorted(logs)}")
        value = float(logs[self.monitor])
        if math.isfinite(value) and value < self.best:
            self.best, self.best_epoch, self.best_logs = value, epoch, dict(logs)
            self.best_weights = self.model.get_weights()
        elif self.patience and epoch - self.best_epoch >= self.patience:
            self.model.stop_training = self.stopped = True
        if self.max_minutes and time.monotonic() - self._start > self.max_minutes * 60:
            self.model.stop_training = self.stopped = True
            self.time_capped = True  # logged: a capped run's epoch count depends on the machine's speed

    def restore(self, model: keras.Model) -> None:
        if self.best_weights is not None:
            model.set_weights(self.best_weights)


class EpochTimer(keras.callbacks.Callback):
    restored: list[float] = []  # durations of epochs finished before a resume
    durations: list[float] = []

    def on_train_begin(self, logs=None):
        self.durations: list[float] = list(self.restored)

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.durations.append(time.perf_counter() - self._start)
        if logs is not None:
            logs["epoch_seconds"] = self.durations[-1]

    def seconds_per_epoch(self) -> float:
        """Mean epoch time without the first epoch, which also pays for tracing and compilation."""
        steady = self.durations[1:] or self.durations
        return float(np.mean(steady))


# Per-epoch figures of the training steps themselves, logged under their own names rather than as `train_<name>`.
GRADIENT_LOGS = ("grad_norm_mean", "grad_norm_max", "clipped_steps")


class GradientNorms(keras.callbacks.Callback):
    """Adds the epoch's global gradient norm before clipping (`grad_norm_mean`, `grad_norm_max` over its steps) and
    `clipped_steps` (steps whose norm exceeded global_clipnorm) to the epoch logs, from the model's
    `GradientNormAdam`; adds nothing for a model with another optimizer. Place it before the loggers."""

    def _optimizer(self):
        return gradient_norm_optimizer(self.model)

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self._optimizer()
        if optimizer is not None:
            optimizer.reset_gradient_stats()

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self._optimizer()
        if optimizer is not None and logs is not None:
            stats = optimizer.gradient_stats()
            logs.update({name: stats[name] for name in GRADIENT_LOGS if stats[name] is not None})


def gradient_totals(history: dict) -> dict:
    """A run's largest per-epoch gradient norm (`grad_norm_peak`) and its clipped steps over all epochs
    (`clipped_steps_total`), from its fit history: a report's table shows a run's last-epoch metrics, which miss a
    spike or the clipping of an earlier epoch."""
    totals = {}
    if history.get("grad_norm_max"):
        totals["grad_norm_peak"] = float(max(history["grad_norm_max"]))
    if history.get("clipped_steps"):
        totals["clipped_steps_total"] = float(sum(history["clipped_steps"]))
    return totals


class EpochLogger(keras.callbacks.Callback):
    """Per-epoch metrics to MLflow: `train_<name>` for training, `val_<name>` for validation; epoch time, learning
    rate and the gradient figures under their own names."""

    def __init__(self, tracker, run_id):
        super().__init__()
        self.tracker, self.run_id = tracker, run_id

    def on_epoch_end(self, epoch, logs=None):
        own_names = ("epoch_seconds", "learning_rate", *GRADIENT_LOGS)
        named = {(k if k.startswith("val_") or k in own_names else f"train_{k}"): float(v)
                 for k, v in (logs or {}).items() if isinstance(v, (int, float, np.floating)) or np.ndim(v) == 0}
        self.tracker.log_metrics(self.run_id, named, step=epoch)
        self.tracker.heartbeat(self.run_id)


class Progress:
    """Progress of a grid: one line per epoch, 'run i/N, model, seed, epoch, metrics, ETA', and one per finished run
    with its test figures, readable in a log file.

    The ETA adds the epochs left in this run (at this run's own epoch time) to the runs still to come, each costing
    what a whole finished run cost on average (building, tracing, evaluation and logging included), or until one has
    finished, what this run is heading for.
    """

    def __init__(self, runs: int, epochs: int, echo: Callable[[str], None], validations_per_epoch: int = 1):
        # Counted in Keras epochs, each 1/validations_per_epoch of a pass; shown in passes.
        self.runs, self.epochs, self.echo = runs, epochs * validations_per_epoch, echo
        self.per_epoch = validations_per_epoch
        self.run_times: list[float] = []
        self._run_started = time.monotonic()

    _PRINT = builtins.print  # the interpreter's own print, before any library replaces it

    def __getstate__(self):
        # Ray pickles the progress sent to each worker, and pickles a function by its name: once a library has
        # replaced builtins.print (Ray's tqdm_ray does, in the driver), the real print no longer pickles. Sent by
        # name instead, and each process prints with its own print.
        state = dict(self.__dict__)
        if state["echo"] is Progress._PRINT or state["echo"] is builtins.print:
            state["echo"] = "print"
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.echo == "print":
            self.echo = builtins.print

    def skip(self, index: int, model: str, seed: int, why: str = "already finished in the store, skipped") -> None:
        self.echo(f"[{index}/{self.runs}] {model} seed={seed}: {why}")

    def finished(self, index: int, model: str, seed: int, metrics: dict, primary: str,
                 seconds: Optional[float] = None) -> None:
        """`seconds`: how long the run took, when it ran elsewhere (a worker process), not since `callback`."""
        self.run_times.append(time.monotonic() - self._run_started if seconds is None else seconds)
        shown = [f"test_{primary}", "test_loss", "params", "sec_per_epoch"]
        figures = " ".join(f"{name}={metrics[name]:.4g}" for name in dict.fromkeys(shown) if name in metrics)
        self.echo(f"[{index}/{self.runs}] {model} seed={seed} finished in {_clock(self.run_times[-1])}: {figures}")

    def eta(self, index: int, epoch: int, total: int, epoch_times: list[float]) -> float:
        this_run = (total - epoch - 1) * float(np.mean(epoch_times))
        per_run = float(np.mean(self.run_times)) if self.run_times else \
            time.monotonic() - self._run_started + this_run
        return this_run + (self.runs - index) * per_run

    def callback(self, index: int, model: str, seed: int) -> keras.callbacks.Callback:
        progress, epoch_times = self, []
        self._run_started = time.monotonic()

        class _Line(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.monotonic()

            def on_epoch_end(self, epoch, logs=None):
                epoch_times.append(time.monotonic() - self._start)
                total = self.params.get("epochs", progress.epochs)
                shown = " ".join(f"{k}={float(v):.4g}" for k, v in (logs or {}).items()
                                 if k not in ("epoch_seconds",) and np.ndim(v) == 0)
                unit = "epoch" if progress.per_epoch == 1 else f"1/{progress.per_epoch} epoch"
                progress.echo(f"[{index}/{progress.runs}] {model} seed={seed} epoch "
                              f"{(epoch + 1) / progress.per_epoch:g}/{total / progress.per_epoch:g} {shown} | "
                              f"{epoch_times[-1]:.1f}s/{unit} | ETA "
                              f"{_clock(progress.eta(index, epoch, total, epoch_times))}")

        return _Line()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
