"""The benchmark runner: load the task once, then for each (model, seed) seed, build, compile, fit, evaluate, log.

`bench(config)` runs a whole grid into MLflow and writes the report; `train_one(...)` is one cell of it. The helpers
below them (callbacks, timing, memory, plots) exist so that these two functions read top to bottom.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from rnnbench import config as configuration
from rnnbench import models as zoo
from rnnbench import registry, tracking
from rnnbench.environment import describe as describe_environment
from rnnbench.errors import UserError


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def set_seed(seed: int) -> None:
    """One seed for Python, NumPy, TensorFlow and Keras, with deterministic TensorFlow ops."""
    keras.utils.set_random_seed(seed)
    set_op_determinism(True)


def set_op_determinism(enabled: bool) -> None:
    """TensorFlow's deterministic-ops mode, which Keras treats as incompatible with XLA (it then drops jit_compile).

    Without XLA it is what makes a seeded run repeat exactly. With XLA it is not needed on CPU: XLA compiles one
    fixed program whose results repeat bit for bit (tests/test_reliability.py checks it across processes).
    """
    from tensorflow.python.framework import config as tf_config  # the public API can only switch it on

    (tf.config.experimental.enable_op_determinism if enabled else tf_config.disable_op_determinism)()


# Speed-up of one training step from XLA on CPU per (cell, masked input): step time with jit_compile=False divided
# by step time with it, measured by `make perf` (results/perf/perf.csv, kernel rows) on the 2-core x86-64 CPU with
# TensorFlow 2.21. Masks turn Keras's fused while-loop into per-step selects, which XLA fuses; an unmasked LSTM is
# the one case where XLA's code is slower than TensorFlow's own kernel.
CPU_XLA_SPEEDUP = {("simple_rnn", False): 1.03, ("simple_rnn", True): 2.20, ("lstm", False): 0.92,
                   ("lstm", True): 1.97, ("gru", False): 2.80, ("gru", True): 2.30}
_CELL_NAMES = {keras.layers.SimpleRNN: "simple_rnn", keras.layers.LSTM: "lstm", keras.layers.GRU: "gru"}


def recurrent_cells(model: keras.Model) -> set:
    """The recurrent layer kinds ("simple_rnn", "lstm", "gru") in `model`, bidirectional wrappers included."""
    return {_CELL_NAMES[type(layer)] for layer in model._flatten_layers() if type(layer) in _CELL_NAMES}


def use_xla(model: keras.Model, spec, setting: str = "auto") -> bool:
    """`train.jit_compile`: "true" / "false" as given; "auto" picks per cell and device from measured evidence.

    CPU: XLA when every batch has the same length and XLA speeds up every recurrent cell of the model for this
    input (masked or not), see `CPU_XLA_SPEEDUP`. Variable lengths get no XLA: XLA compiles a program per batch
    shape, and TensorFlow's XLA CPU JIT never unmaps the code it compiled (about 170 memory maps per program,
    measured), so a grid compiling a program per bucket shape in every run exhausts Linux's vm.max_map_count
    (65,530 by default): the speech_digits grid died that way in its ninth run ("LLVM compilation error: Cannot
    allocate memory"). GPU: no XLA, so Keras keeps its fused cuDNN LSTM/GRU kernels (not measured here: no GPU with
    TensorFlow was available). Models without recurrent layers: no XLA.
    """
    setting = str(setting).lower()
    if setting != "auto":
        return setting == "true"
    if tf.config.list_physical_devices("GPU"):
        return False
    if spec.inputs.length is None:
        return False
    cells = recurrent_cells(model)
    return bool(cells) and all(CPU_XLA_SPEEDUP.get((cell, spec.inputs.masked), 0.0) > 1.0 for cell in cells)


def load_task(config: dict):
    set_seed(0)  # data pipelines draw from their own `seed` option; this keeps anything else fixed too
    return registry.get_task(config["task"])(batch_size=config["train"]["batch_size"], **config["task_options"])


def model_options(model_name: str, config: dict) -> dict:
    """The configured model options this builder accepts (options are validated against all builders of the grid)."""
    accepted = configuration.option_types(registry.get_model(model_name))
    return {k: v for k, v in config["model_options"].items() if k in accepted}


def build_model(spec, model_name: str, config: dict) -> keras.Model:
    """The compiled model of one run. Switches TensorFlow's op determinism off exactly when XLA is used."""
    train = config["train"]
    # Mixed precision pays off on GPUs with float16 matrix units; a CPU has none, so it is off by default.
    keras.mixed_precision.set_global_policy("mixed_float16" if train["mixed_precision"] else "float32")
    model = registry.get_model(model_name)(spec, **model_options(model_name, config))
    xla = use_xla(model, spec, train["jit_compile"])
    set_op_determinism(not xla)
    return zoo.compile_model(model, spec, learning_rate=train["learning_rate"], clipnorm=train["clipnorm"] or None,
                             jit_compile=xla)


def bench(config: dict, *, results_dir: Path | str = "results", tracking_uri: Optional[str] = None,
          echo: Callable[[str], None] = print, resume: bool = False) -> dict:
    """Runs every (model, seed) of `config` not already finished in the store, then writes the report.

    Returns {"parent_run_id", "finished", "skipped", "failed", "report_dir"}. Ctrl-C or SIGTERM marks the current run
    KILLED, writes the report for what finished, and re-raises KeyboardInterrupt.
    """
    tracker = tracking.Tracker(config["task"], tracking_uri)
    spec = load_task(config)
    for model_name in config["models"]:  # a refused or mis-sized model fails now, not an hour into the grid
        registry.get_model(model_name)(spec, **model_options(model_name, config))
    environment = describe_environment()
    config_hash = configuration.config_hash(config)
    parent_id = tracker.start_run(
        f"{config['experiment'] or config['task']}{'-smoke' if config['smoke'] else ''}",
        {"rnnbench_role": "parent", "task": config["task"], "config_hash": config_hash,
         "experiment": config["experiment"], "smoke": config["smoke"]},
    )
    tracker.log_params(parent_id, {"config": config, "env": environment})
    tracker.log_json(parent_id, "config.json", config)
    grid = [(m, s) for m in config["models"] for s in config["seeds"]]
    progress = Progress(len(grid), config["train"]["epochs"], echo, config["train"]["validations_per_epoch"])
    outcome = {"parent_run_id": parent_id, "finished": 0, "skipped": 0, "failed": 0, "report_dir": None}
    status = "FINISHED"
    echo(f"rnnbench: task {config['task']}, {len(grid)} runs ({', '.join(config['models'])} x seeds "
         f"{config['seeds']}), store {tracker.uri}")
    try:
        _log_baselines(tracker, spec, config, parent_id, environment)
        for index, (model_name, seed) in enumerate(grid, start=1):
            key = configuration.run_key(config, model_name, seed)
            if tracker.finished_run(key):
                outcome["skipped"] += 1
                progress.skip(index, model_name, seed)
                continue
            try:
                train_one(spec, config, model_name, seed, tracker, parent_id, environment,
                          progress.callback(index, model_name, seed), resume=resume)
                outcome["finished"] += 1
                _warn_when_memory_maps_run_low(echo)
            except UserError:
                raise  # the same mistake would fail every run: stop the grid and say what to fix
            except Exception as error:  # the run is marked FAILED with its reason; the grid goes on
                outcome["failed"] += 1
                echo(f"[{index}/{len(grid)}] {model_name} seed={seed} FAILED: {type(error).__name__}: {error}")
    except KeyboardInterrupt:
        status = "KILLED"
        echo("rnnbench: interrupted; the current run is marked KILLED, finished runs are kept. "
             "Run the same command again to resume.")
        raise
    finally:
        tracker.end_run(parent_id, status)
        from rnnbench.report import write_report

        # One folder per experiment (the task's own experiment shares its name), so variants never overwrite.
        report_dir = Path(results_dir) / ((config["experiment"] or config["task"]) + ("_smoke" if config["smoke"] else ""))
        try:
            write_report(config["task"], tracker=tracker, config_hash=config_hash, out_dir=report_dir, echo=echo)
            outcome["report_dir"] = str(report_dir)
        except Exception as error:  # a broken report must not hide the training outcome
            echo(f"rnnbench: the report could not be written: {error}")
    return outcome


def training_stream(spec, seed: int, initial_epoch: int = 0, validations_per_epoch: int = 1):
    """(endless batches, batches per Keras epoch, batches per pass) for one run, positioned at `initial_epoch`.

    Keras opens a new iterator on a finite dataset for every epoch, and each opening draws the next reshuffling
    seed, so an epoch's order would depend on how many iterators came before it (in this process, in this Keras
    version). One endless iterator over a fresh pipeline makes epoch e's order depend on (task seed, run seed, e)
    alone; a resumed run skips the batches of the epochs it already has and sees the orders it would have seen.
    With `validations_per_epoch` k > 1 a Keras epoch is 1/k of a pass (rounded up), so Keras validates k times per
    pass over the training data.
    """
    per_pass = int(spec.training_data(seed).cardinality())
    if per_pass < 0:  # unknown (e.g. length bucketing): count one pass of a separate copy
        per_pass = sum(1 for _ in spec.training_data(seed))
    steps = math.ceil(per_pass / validations_per_epoch)
    stream = endless(spec.training_data(seed))
    return (stream.skip(initial_epoch * steps) if initial_epoch else stream), steps, per_pass


def endless(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` repeated forever and prefetched across the passes.

    A task's own prefetch sits inside the repetition, so it drains at the end of every pass and the model would
    wait for the next pass's first batch while the pipeline reopens and refills a whole-split shuffle buffer; tasks
    with short passes (sine: 21 batches) would pay that often. The order of the batches is unchanged.
    """
    return dataset.repeat().prefetch(tf.data.AUTOTUNE)


def memory_maps() -> tuple[int, int]:
    """(memory maps this process holds, the kernel's limit per process); (0, 0) where /proc cannot tell."""
    try:
        with open("/proc/self/maps") as maps:
            held = sum(1 for _ in maps)
        return held, int(Path("/proc/sys/vm/max_map_count").read_text())
    except (OSError, ValueError):
        return 0, 0


def _warn_when_memory_maps_run_low(echo: Callable[[str], None], share: float = 0.6) -> None:
    held, limit = memory_maps()
    if limit and held > share * limit:
        echo(f"rnnbench: warning: this process holds {held:,} of at most {limit:,} memory maps (TensorFlow's XLA "
             "JIT keeps the code of every program it compiled). If the grid stops with 'Cannot allocate memory', "
             "run the same command again (finished runs are skipped), set train.jit_compile=false, or raise "
             "vm.max_map_count.")


def train_one(spec, config: dict, model_name: str, seed: int, tracker: tracking.Tracker, parent_id: str,
              environment: dict, progress: keras.callbacks.Callback, resume: bool = False) -> str:
    """Trains and evaluates one (model, seed) into a child run; returns its run id.

    Every epoch is checkpointed; with `resume`, a run killed earlier continues from its last finished epoch (weights,
    optimizer state, best epoch so far) in a new MLflow run that repeats the earlier epochs' metrics.
    """
    train = config["train"]
    run_id = tracker.start_run(
        f"{model_name}-seed{seed}",
        {"rnnbench_role": "child", "kind": "model", "task": config["task"], "model": model_name, "seed": seed,
         "config_hash": configuration.config_hash(config), "run_key": configuration.run_key(config, model_name, seed),
         "experiment": config["experiment"], "smoke": config["smoke"], **_ranking_tags(spec)},
        parent_id=parent_id,
    )
    memory = PeakMemory()
    checkpoint = EpochCheckpoint(checkpoint_dir() / configuration.run_key(config, model_name, seed))
    try:
        set_seed(seed)
        model = build_model(spec, model_name, config)
        params, xla = zoo.count_trainable(model), bool(model.jit_compile)
        tracker.log_params(run_id, {**_run_params(config, model_name, seed, spec), "env": environment,
                                    "xla": xla, "op_determinism": not xla})
        tracker.set_tags(run_id, {"params": params, "xla": xla})

        best = BestWeights(spec.monitor, patience=train["patience"], max_minutes=train["max_minutes"])
        timer, guard = EpochTimer(), NaNGuard()
        logger = EpochLogger(tracker, run_id)
        initial_epoch, earlier = 0, {}
        if resume and checkpoint.exists():
            model, initial_epoch, earlier = checkpoint.restore(best, timer)
            model.jit_compile = xla  # as chosen for this run now, whatever the checkpoint's compile config says
            tracker.set_tags(run_id, {"resumed_from_epoch": initial_epoch})
            for step, logs in enumerate(_rows(earlier)):
                logger.on_epoch_end(step, logs)
        else:
            checkpoint.clear()
        per_epoch = train["validations_per_epoch"]  # Keras epochs (validations) per pass over the training data
        train_data, steps_per_epoch, steps_per_pass = training_stream(spec, seed, initial_epoch, per_epoch)
        extra = list(spec.callbacks()) if spec.callbacks else []
        if train["reduce_lr_patience"]:
            extra.append(keras.callbacks.ReduceLROnPlateau(spec.monitor, factor=0.5, min_lr=1e-5,
                                                           patience=train["reduce_lr_patience"]))
        with memory:
            history = model.fit(train_data, validation_data=spec.val, epochs=train["epochs"] * per_epoch, verbose=0,
                                shuffle=False, initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch,
                                callbacks=[*extra, guard, best, timer, logger, checkpoint.callback(best, timer),
                                           progress])
            if guard.reason:
                raise TrainingDiverged(guard.reason)
            best.restore(model)
            test = {f"test_{k}": float(v) for k, v in model.evaluate(spec.test, verbose=0, return_dict=True).items()}
            if spec.evaluate:
                test.update({f"test_{k}": float(v) for k, v in spec.evaluate(model).items()})
            latency = measure_latency(model, spec)
        history = {k: list(earlier.get(k, [])) + list(v) for k, v in history.history.items()}
        samples = count_samples(spec.training_data(seed))
        # Epochs here are passes over the training data, whatever validations_per_epoch is: fractions when it is > 1.
        seconds = timer.seconds_per_epoch() * steps_per_pass / steps_per_epoch
        summary = {
            **test,
            "params": params,
            "best_epoch": (best.best_epoch + 1) / per_epoch,
            "epochs_run": len(timer.durations) / per_epoch,
            "validations_per_epoch": per_epoch,
            "time_capped": float(best.time_capped),
            "sec_per_epoch": seconds,
            "first_epoch_sec": sum(timer.durations[:per_epoch]),
            "train_samples_per_sec": samples / seconds,
            **latency,
            "peak_rss_mb": memory.peak_mb,
            **{f"best_{k}": float(v) for k, v in best.best_logs.items() if k.startswith("val_")},
        }
        tracker.log_metrics(run_id, summary)
        _log_run_artifacts(tracker, run_id, model, spec, config, model_name, seed, history, environment)
        tracker.end_run(run_id, "FINISHED")
        checkpoint.clear()
        return run_id
    except KeyboardInterrupt:
        tracker.set_tags(run_id, {"failure_reason": "interrupted"})
        tracker.end_run(run_id, "KILLED")
        raise
    except BaseException as error:
        tracker.set_tags(run_id, {"failure_reason": f"{type(error).__name__}: {error}"[:5000]})
        tracker.log_json(run_id, "traceback.json", {"traceback": traceback.format_exc()})
        tracker.end_run(run_id, "FAILED")
        raise


def _ranking_tags(spec) -> dict:
    return {"primary_metric": spec.primary_metric, "higher_is_better": spec.higher_is_better}


def _run_params(config: dict, model_name: str, seed: int, spec) -> dict:
    return {
        "task": config["task"], "model": model_name, "seed": seed, "experiment": config["experiment"],
        "protocol": configuration.PROTOCOL,
        "task_options": dict(spec.options) or config["task_options"], "model_options": config["model_options"],
        "train": config["train"], "dataset": dict(spec.dataset), "notes": dict(spec.notes),
    }


def _log_baselines(tracker, spec, config, parent_id, environment) -> None:
    """Each baseline is a child run of kind 'baseline', so reports treat it as a row like any model."""
    for name, metrics in spec.baselines.items():
        key = configuration.run_key(config, f"baseline:{name}", -1)
        if tracker.finished_run(key):
            continue
        run_id = tracker.start_run(
            f"baseline-{name}",
            {"rnnbench_role": "child", "kind": "baseline", "task": config["task"], "model": name, "seed": "",
             "config_hash": configuration.config_hash(config), "run_key": key, "experiment": config["experiment"],
             **_ranking_tags(spec)},
            parent_id=parent_id,
        )
        tracker.log_params(run_id, {"task": config["task"], "model": name, "dataset": dict(spec.dataset),
                                    "task_options": dict(spec.options), "env": environment})
        tracker.log_metrics(run_id, {f"test_{k}": v for k, v in metrics.items()})
        tracker.end_run(run_id, "FINISHED")


def _log_run_artifacts(tracker, run_id, model, spec, config, model_name, seed, history, environment) -> None:
    x, _ = spec.example_batch()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        resolved = {**config, "models": [model_name], "seeds": [seed]}
        (folder / "config.json").write_text(json.dumps(resolved, indent=2, default=str))
        (folder / "environment.json").write_text(json.dumps(environment, indent=2, default=str))
        (folder / "cudnn_report.json").write_text(json.dumps(zoo.cudnn_report(model), indent=2))
        lines: list[str] = []
        model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
        (folder / "model_summary.txt").write_text("\n".join(lines))
        plot_learning_curve(history, spec.primary_metric, folder / "learning_curve.png", title=f"{model_name} seed {seed}")
        weights = zoo.attention_weights(model, x[:4])
        if weights is not None:
            plot_attention(weights, folder / "attention.png", title=model_name)
        if spec.artifacts:
            task_folder = folder / "task"
            task_folder.mkdir()
            spec.artifacts(model, task_folder)
        tracker.log_artifacts(run_id, folder)
    tracker.log_keras_model(run_id, model, x, np.asarray(model.predict_on_batch(x)),
                            requirements=[f"keras=={keras.__version__}", f"tensorflow=={tf.__version__}"])


# -- measurements ------------------------------------------------------------------------------------------------

def count_samples(dataset) -> int:
    return int(sum(int(tf.shape(x)[0]) for x, _ in dataset))


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
    median = statistics.median(times)
    return {"latency_ms_per_batch": median * 1000, "latency_batch_size": int(x.shape[0]),
            "latency_ms_per_sample": median * 1000 / int(x.shape[0])}


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


# -- callbacks ---------------------------------------------------------------------------------------------------

def checkpoint_dir() -> Path:
    return Path(os.environ.get("RNNBENCH_CHECKPOINT_DIR", "checkpoints"))


def _rows(history: dict) -> list[dict]:
    length = max((len(v) for v in history.values()), default=0)
    return [{k: v[i] for k, v in history.items() if i < len(v)} for i in range(length)]


class EpochCheckpoint:
    """The last finished epoch of one run on disk: model with optimizer state, best weights, history so far."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def exists(self) -> bool:
        return (self.folder / "state.json").is_file()

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def callback(self, best: "BestWeights", timer: "EpochTimer") -> keras.callbacks.Callback:
        checkpoint = self

        class _Save(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.history = json.loads((checkpoint.folder / "state.json").read_text())["history"] \
                    if checkpoint.exists() else {}

            def on_epoch_end(self, epoch, logs=None):
                for key, value in (logs or {}).items():
                    self.history.setdefault(key, []).append(float(value))
                checkpoint.save(self.model, epoch, best, timer, self.history)

        return _Save()

    def save(self, model, epoch: int, best: "BestWeights", timer: "EpochTimer", history: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        model.save(self.folder / "last.tmp.keras")
        os.replace(self.folder / "last.tmp.keras", self.folder / "last.keras")
        if best.best_weights is not None and best.best_epoch == epoch:
            np.savez(self.folder / "best.tmp.npz", *best.best_weights)
            os.replace(self.folder / "best.tmp.npz", self.folder / "best.npz")
        state = {"epoch": epoch, "best": best.best, "best_epoch": best.best_epoch, "best_logs": best.best_logs,
                 "durations": timer.durations, "history": history}
        (self.folder / "state.tmp.json").write_text(json.dumps(state, default=float))
        os.replace(self.folder / "state.tmp.json", self.folder / "state.json")

    def restore(self, best: "BestWeights", timer: "EpochTimer"):
        """(model, first epoch still to run, history of the finished epochs); fills `best` and `timer`."""
        state = json.loads((self.folder / "state.json").read_text())
        model = keras.models.load_model(self.folder / "last.keras")
        best.best, best.best_epoch, best.best_logs = state["best"], state["best_epoch"], state["best_logs"]
        if (self.folder / "best.npz").is_file():
            with np.load(self.folder / "best.npz") as saved:
                best.best_weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        timer.restored = list(state["durations"])
        return model, state["epoch"] + 1, state["history"]


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
            self.model.stop_training = True
        if self.max_minutes and time.monotonic() - self._start > self.max_minutes * 60:
            self.model.stop_training = True
            self.time_capped = True  # logged: a capped run's epoch count depends on the machine's speed

    def restore(self, model: keras.Model) -> None:
        if self.best_weights is not None:
            model.set_weights(self.best_weights)


class EpochTimer(keras.callbacks.Callback):
    restored: list[float] = []  # durations of epochs finished before a resume

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


class EpochLogger(keras.callbacks.Callback):
    """Per-epoch metrics to MLflow: `train_<name>` for training, `val_<name>` for validation."""

    def __init__(self, tracker, run_id):
        super().__init__()
        self.tracker, self.run_id = tracker, run_id

    def on_epoch_end(self, epoch, logs=None):
        named = {(k if k.startswith("val_") or k in ("epoch_seconds", "learning_rate") else f"train_{k}"): float(v)
                 for k, v in (logs or {}).items() if isinstance(v, (int, float, np.floating)) or np.ndim(v) == 0}
        self.tracker.log_metrics(self.run_id, named, step=epoch)


class Progress:
    """Progress of a grid: one line per epoch, 'run i/N, model, seed, epoch, metrics, ETA', readable in a log file."""

    def __init__(self, runs: int, epochs: int, echo: Callable[[str], None], validations_per_epoch: int = 1):
        # Counted in Keras epochs, each 1/validations_per_epoch of a pass; shown in passes.
        self.runs, self.epochs, self.echo = runs, epochs * validations_per_epoch, echo
        self.per_epoch = validations_per_epoch
        self.epoch_times: list[float] = []
        self.started = time.monotonic()

    def skip(self, index: int, model: str, seed: int) -> None:
        self.echo(f"[{index}/{self.runs}] {model} seed={seed}: already finished in the store, skipped")

    def callback(self, index: int, model: str, seed: int) -> keras.callbacks.Callback:
        progress = self

        class _Line(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.monotonic()

            def on_epoch_end(self, epoch, logs=None):
                progress.epoch_times.append(time.monotonic() - self._start)
                remaining = (self.params.get("epochs", progress.epochs) - epoch - 1) + (
                    progress.runs - index) * progress.epochs
                eta = remaining * float(np.median(progress.epoch_times))
                shown = " ".join(f"{k}={float(v):.4g}" for k, v in (logs or {}).items()
                                 if k not in ("epoch_seconds",) and np.ndim(v) == 0)
                total = self.params.get("epochs", progress.epochs)
                unit = "epoch" if progress.per_epoch == 1 else f"1/{progress.per_epoch} epoch"
                progress.echo(f"[{index}/{progress.runs}] {model} seed={seed} epoch "
                              f"{(epoch + 1) / progress.per_epoch:g}/{total / progress.per_epoch:g} {shown} | "
                              f"{progress.epoch_times[-1]:.1f}s/{unit} | ETA {_clock(eta)}")

        return _Line()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


# -- plots -------------------------------------------------------------------------------------------------------

def plot_learning_curve(history: dict, metric: str, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in ("loss", metric) if n in history or f"val_{n}" in history]
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        epochs = range(1, len(history.get(name) or history[f"val_{name}"]) + 1)
        if name in history:
            ax.plot(epochs, history[name], label=f"train {name}")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], label=f"val {name}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_attention(weights: np.ndarray, path: Path, title: str = "") -> None:
    """Pooling weights (examples x steps) as rows, or the first head's step-by-step map of the first example."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = weights if weights.ndim == 2 else weights[0, 0]
    fig, ax = plt.subplots(figsize=(8, 3 if weights.ndim == 2 else 6))
    image = ax.imshow(matrix, aspect="auto", cmap="viridis")
    ax.set_xlabel("attended step")
    ax.set_ylabel("example" if weights.ndim == 2 else "query step")
    fig.colorbar(image, ax=ax)
    ax.set_title(f"{title} attention")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
