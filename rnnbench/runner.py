"""The benchmark runner: load the task once, then for each (model, seed) seed, build, compile, fit, evaluate, log.

`bench(config)` runs a whole grid into MLflow and writes the report; `run_cell(...)` is one cell of it (a model run,
`train_one`, or a baseline), whichever executor runs it (`rnnbench.executors`: here, one after another, or on Ray
workers, which call `run_cell_in_worker`). What they use lives in modules named for it: compute policy (`compute`),
callbacks, checkpoints, the training stream (`streaming`), measurements (`measure`), and what a run records besides
metrics (`run_log`).
"""
from __future__ import annotations

import dataclasses
import os
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

import keras

from rnnbench import compute, executors, registry, tracking
from rnnbench import config as configuration
from rnnbench import models as zoo
from rnnbench.callbacks import (BestWeights, EpochLogger, EpochTimer, GradientNorms, NaNGuard, Progress,
                                TrainingDiverged, gradient_totals)
from rnnbench.checkpoint import EpochCheckpoint, checkpoint_dir, history_rows
from rnnbench.environment import describe as describe_environment
from rnnbench.errors import UserError
from rnnbench.gradient_flow import RunGradientFlow
from rnnbench.measure import PeakMemory, count_samples, measure_latency, warn_when_memory_maps_run_low
from rnnbench.run_log import (divergence, experiment_description, log_baseline, log_run_artifacts, ranking_tags,
                               run_params)
from rnnbench.spec import SINGLE_INPUT_HEADS
from rnnbench.state import reset_states
from rnnbench.streaming import training_stream


def load_task(config: dict):
    compute.set_seed(0)  # data pipelines draw from their own `seed` option; this keeps anything else fixed too
    return registry.get_task(config["task"])(batch_size=config["train"]["batch_size"], **config["task_options"])


def model_options(model_name: str, config: dict) -> dict:
    """The configured model options this builder accepts (options are validated against all builders of the grid)."""
    accepted = configuration.option_types(registry.get_model(model_name))
    return {k: v for k, v in config["model_options"].items() if k in accepted}


def check_head(spec, model_name: str) -> None:
    """Refuses a builder on a head it does not build, before building: a builder declares its heads as the attribute
    `heads`, and one that declares none builds the single-input heads (`spec.SINGLE_INPUT_HEADS`)."""
    head = spec.outputs.head
    if head not in getattr(registry.get_model(model_name), "heads", SINGLE_INPUT_HEADS):
        serving = [m for m in registry.list_models()
                   if head in getattr(registry.get_model(m), "heads", SINGLE_INPUT_HEADS)]
        raise zoo.IncompatibleModelError(
            f"model {model_name!r} does not build head {head!r} (task {spec.name!r}); models that do: "
            f"{', '.join(serving) or 'none'}")


def build_model(spec, model_name: str, config: dict) -> keras.Model:
    """The compiled model of one run, built and compiled on `train.devices` devices (`compute.devices`). Switches
    TensorFlow's op determinism off exactly when XLA is used."""
    train = config["train"]
    compute.set_precision(train["mixed_precision"])
    check_head(spec, model_name)
    with compute.devices(train.get("devices", 1)):
        model = registry.get_model(model_name)(spec, **model_options(model_name, config))
        xla = compute.use_xla(model, spec, train["jit_compile"])
        compute.set_op_determinism(not xla)
        return zoo.compile_model(model, spec, learning_rate=train["learning_rate"],
                                 clipnorm=train["clipnorm"] or None, jit_compile=xla)


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of a grid: a (model, seed), number `index` of the grid's model runs, or a naive baseline (`baseline`,
    seed -1, index 0); `key` identifies it in the store."""

    model: str
    seed: int
    key: str
    index: int = 0
    baseline: bool = False

    @property
    def label(self) -> str:
        return f"baseline-{self.model}" if self.baseline else f"{self.model}-seed{self.seed}"


@dataclasses.dataclass
class Grid:
    """A bench's cells and what running one needs, handed to an executor: `run_here` runs a cell in this process,
    `worker` called with `worker_args` runs it in another process (which loads the task itself); `report` takes each
    cell's result, `finished` says whether the store holds a cell's run already."""

    config: dict
    spec: Any
    tracker: tracking.Tracker
    parent_id: str
    environment: dict
    progress: Progress
    resume: bool
    cells: list
    report: Callable[[Cell, dict], None]
    echo: Callable[[str], None]

    def finished(self, cell: Cell) -> bool:
        return self.tracker.finished_run(cell.key) is not None

    def run_here(self, cell: Cell) -> dict:
        return run_cell(self.spec, self.config, cell, self.tracker, self.parent_id, self.environment, self.progress,
                        self.resume)

    @property
    def worker(self) -> Callable[..., dict]:
        return run_cell_in_worker

    def worker_args(self, cell: Cell, progress: Progress, threads: int) -> tuple:
        return (self.config, cell, self.tracker.uri, self.parent_id, self.environment, progress, self.resume,
                str(checkpoint_dir().resolve()), threads)

    def mark_killed(self, cell: Cell, reason: str) -> list[str]:
        return self.tracker.mark_killed(cell.key, self.parent_id, reason)


def run_cell(spec, config: dict, cell: Cell, tracker: tracking.Tracker, parent_id: str, environment: dict,
             progress: Progress, resume: bool = False) -> dict:
    """One cell, as every executor runs it: {"status": "finished" (with "run_id" and "metrics" for a model run),
    "claimed" (another process holds it, or has logged it) or "failed" (with "error"), "seconds"}. A failed model run
    is marked FAILED with its reason and the grid goes on; a UserError propagates, as the same mistake would fail every
    run."""
    started = time.monotonic()
    try:
        if cell.baseline:
            logged = log_baseline(tracker, spec, config, parent_id, environment, cell.model)
            return {"status": "finished" if logged else "claimed", "seconds": time.monotonic() - started}
        run_id = train_one(spec, config, cell.model, cell.seed, tracker, parent_id, environment,
                           progress.callback(cell.index, cell.model, cell.seed), resume=resume)
    except UserError:
        raise
    except Exception as error:
        return {"status": "failed", "error": f"{type(error).__name__}: {error}", "seconds": time.monotonic() - started}
    if run_id is None:
        return {"status": "claimed", "seconds": time.monotonic() - started}
    return {"status": "finished", "run_id": run_id, "metrics": dict(tracker.get_run(run_id).data.metrics),
            "seconds": time.monotonic() - started}


_worker_task: dict[str, Any] = {}  # in a worker process: the task of the grid it works for, by configuration hash


def run_cell_in_worker(config: dict, cell: Cell, uri: str, parent_id: str, environment: dict, progress: Progress,
                       resume: bool, checkpoints: str, threads: int) -> dict:
    """`run_cell` in a worker process (a Ray task): with `threads` TensorFlow threads, the store at `uri`, checkpoints
    in `checkpoints`, the task loaded by the worker's first cell of the grid. A UserError comes back as status
    "user_error" with its message; the result also names the worker ("worker", "worker_pid") and what loading the task
    and opening the store took ("startup_seconds")."""
    compute.set_threads(threads)
    os.environ["RNNBENCH_CHECKPOINT_DIR"] = checkpoints
    started, key = time.monotonic(), configuration.config_hash(config)
    worker = {"worker_pid": os.getpid(), "threads": threads}
    try:
        if key not in _worker_task:
            _worker_task.clear()  # the task of an earlier grid is not needed again
            _worker_task[key] = load_task(config)
        tracker = tracking.Tracker(config["experiment"] or config["task"], uri)
        worker.update(worker=tracker.owner, startup_seconds=time.monotonic() - started)
        result = run_cell(_worker_task[key], config, cell, tracker, parent_id, environment, progress, resume)
    except UserError as error:
        return {"status": "user_error", "error": str(error), **worker}
    return {**result, **worker}


def bench(config: dict, *, results_dir: Path | str = "reports", tracking_uri: Optional[str] = None,
          echo: Callable[[str], None] = print, resume: bool = False, incomplete_dir: Optional[str] = None,
          executor=None) -> dict:
    """Runs every (model, seed) of `config` not already finished in the store, and its baselines, with `executor`
    (default `executors.SerialExecutor()`: one after another in this process), then writes the report into
    `results_dir/<experiment>` (into `incomplete_dir` instead, when given, if a run failed or the grid was stopped).

    Returns {"parent_run_id", "finished", "skipped", "failed", "failed_runs" (what failed and why), "report_dir"}.
    Ctrl-C or SIGTERM marks the current runs KILLED, writes the report for what finished, and re-raises
    KeyboardInterrupt.
    """
    executor = executor or executors.SerialExecutor()
    tracker = tracking.Tracker(config["experiment"] or config["task"], tracking_uri)  # one MLflow experiment each
    spec = load_task(config)
    for model_name in config["models"]:  # a refused or mis-sized model fails now, not an hour into the grid
        check_head(spec, model_name)
        registry.get_model(model_name)(spec, **model_options(model_name, config))
    environment = describe_environment()
    config_hash = configuration.config_hash(config)
    grid = [(m, s) for m in config["models"] for s in config["seeds"]]
    cells = [Cell(name, -1, configuration.run_key(config, f"baseline:{name}", -1), baseline=True)
             for name in spec.baselines] + [Cell(m, s, configuration.run_key(config, m, s), index)
                                            for index, (m, s) in enumerate(grid, start=1)]
    outcome = {"parent_run_id": None, "finished": 0, "skipped": 0, "failed": 0, "failed_runs": [], "report_dir": None}
    if all(tracker.finished_run(cell.key) for cell in cells):  # nothing to do: no empty parent run, only the report
        echo(f"rnnbench: all {len(grid)} runs of this grid are already finished in {tracker.uri}")
        outcome["skipped"] = len(grid)
        return _report(config, tracker, config_hash, results_dir, outcome, echo)
    parent_id = tracker.start_run(
        f"{config['experiment'] or config['task']}{'-smoke' if config['smoke'] else ''}",
        {"rnnbench_role": "parent", "task": config["task"], "config_hash": config_hash,
         "experiment": config["experiment"], "smoke": config["smoke"], "command": config.get("command", "")},
    )
    tracker.describe(experiment_description(spec, config))  # only where the experiment has no description yet
    tracker.log_params(parent_id, {"config": config, "env": environment})
    tracker.log_json(parent_id, "config.json", config)
    progress = Progress(len(grid), config["train"]["epochs"], echo, config["train"]["validations_per_epoch"])
    outcome["parent_run_id"], status = parent_id, "FINISHED"
    echo(f"rnnbench: task {config['task']}, {len(grid)} runs ({', '.join(config['models'])} x seeds "
         f"{config['seeds']}), store {tracker.uri}")

    def record(cell: Cell, result: dict) -> None:
        """One line per model run, as it ends; baselines are silent unless they fail."""
        if result["status"] == "failed":
            outcome["failed"] += 1
            outcome["failed_runs"].append(f"{cell.label}: {result['error']}")
            if cell.baseline:
                echo(f"rnnbench: baseline {cell.model} FAILED: {result['error']}")
            else:
                progress.skip(cell.index, cell.model, cell.seed, f"FAILED: {result['error']}")
        elif cell.baseline:
            return
        elif result["status"] == "skipped":
            outcome["skipped"] += 1
            progress.skip(cell.index, cell.model, cell.seed)
        elif result["status"] == "claimed":
            outcome["skipped"] += 1
            progress.skip(cell.index, cell.model, cell.seed, "claimed by another process, skipped")
        else:
            outcome["finished"] += 1
            elsewhere = "worker" in result  # a worker's run took what it measured, not the time since submitting
            progress.finished(cell.index, cell.model, cell.seed, result["metrics"], spec.primary_metric,
                              seconds=result["seconds"] if elsewhere else None)
            tracker.heartbeat(parent_id)
            if not elsewhere:
                warn_when_memory_maps_run_low(echo)

    try:
        executor.run(Grid(config, spec, tracker, parent_id, environment, progress, resume, cells, record, echo))
    except KeyboardInterrupt:
        status = "KILLED"
        echo("rnnbench: interrupted; the current run is marked KILLED, finished runs are kept. "
             "Run the same command again to resume.")
        raise
    finally:
        if status == "FINISHED" and outcome["failed"] and not outcome["finished"]:
            status = "FAILED"  # every run this call trained failed
        tracker.end_run(parent_id, status)
        complete = status == "FINISHED" and not outcome["failed"]
        _report(config, tracker, config_hash, results_dir if complete or not incomplete_dir else incomplete_dir,
                outcome, echo)
    return outcome


def _report(config, tracker, config_hash, results_dir, outcome, echo) -> dict:
    from rnnbench.report import write_report

    # One folder per experiment (the task's own experiment shares its name), so variants never overwrite.
    report_dir = Path(results_dir) / ((config["experiment"] or config["task"]) + ("_smoke" if config["smoke"] else ""))
    try:
        write_report(config["task"], tracker=tracker, config_hash=config_hash, out_dir=report_dir, echo=echo)
        outcome["report_dir"] = str(report_dir)
    except Exception as error:  # a broken report must not hide the training outcome
        echo(f"rnnbench: the report could not be written: {error}")
    return outcome


def train_one(spec, config: dict, model_name: str, seed: int, tracker: tracking.Tracker, parent_id: str,
              environment: dict, progress: keras.callbacks.Callback, resume: bool = False) -> Optional[str]:
    """Trains and evaluates one (model, seed) into a child run; returns its run id, or None when another process
    holds the claim on this run (it is training it, or has finished it).

    Every epoch is checkpointed; with `resume`, a run killed earlier continues from its last finished epoch (weights,
    optimizer state, best epoch so far) in a new MLflow run that repeats the earlier epochs' metrics.
    """
    train = config["train"]
    run_id, _ = tracker.start_claimed_run(
        f"{model_name}-seed{seed}",
        {"rnnbench_role": "child", "kind": "model", "task": config["task"], "model": model_name, "seed": seed,
         "config_hash": configuration.config_hash(config), "experiment": config["experiment"],
         "smoke": config["smoke"], **ranking_tags(spec)},
        configuration.run_key(config, model_name, seed), parent_id=parent_id,
    )
    if run_id is None:
        return None
    memory = PeakMemory()
    checkpoint = EpochCheckpoint(checkpoint_dir() / configuration.run_key(config, model_name, seed))
    try:
        compute.set_seed(seed)
        model = build_model(spec, model_name, config)
        flow = RunGradientFlow(spec, train.get("gradient_flow", True))
        flow.measure("init", model)  # before any checkpoint replaces the model: a resumed run measures its start too
        params, xla = zoo.count_trainable(model), bool(model.jit_compile)
        tracker.log_params(run_id, {**run_params(config, model_name, seed, spec), "env": environment,
                                    "xla": xla, "op_determinism": not xla})
        tracker.set_tags(run_id, {"params": params, "xla": xla})

        best = BestWeights(spec.monitor, patience=train["patience"], max_minutes=train["max_minutes"])
        timer, guard = EpochTimer(), NaNGuard()
        logger = EpochLogger(tracker, run_id)
        initial_epoch, earlier = 0, {}
        if resume and checkpoint.exists():
            with compute.devices(train.get("devices", 1)):  # a model trained on several devices resumes on them
                model, initial_epoch, earlier = checkpoint.restore(best, timer)
            model.jit_compile = xla  # as chosen for this run now, whatever the checkpoint's compile config says
            tracker.set_tags(run_id, {"resumed_from_epoch": initial_epoch})
            for step, logs in enumerate(history_rows(earlier)):
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
            fitted = {}  # a resumed run whose checkpoint holds its last epoch goes straight to evaluation
            if initial_epoch < train["epochs"] * per_epoch and not best.stopped:
                fitted = model.fit(train_data, validation_data=spec.val, epochs=train["epochs"] * per_epoch,
                                   verbose=0, shuffle=False, initial_epoch=initial_epoch,
                                   steps_per_epoch=steps_per_epoch,
                                   callbacks=[*extra, guard, best, timer, GradientNorms(), logger,
                                              checkpoint.callback(best, timer), progress]).history
            if guard.reason:
                raise TrainingDiverged(guard.reason)
            best.restore(model)
            flow.measure("best", model)
            reset_states(model)  # a carried-state model reads the test split as fresh streams, from a zero state
            test = {f"test_{k}": float(v) for k, v in model.evaluate(spec.test, verbose=0, return_dict=True).items()}
            if spec.evaluate:
                test.update({f"test_{k}": float(v) for k, v in spec.evaluate(model).items()})
            reset_states(model)
            latency = measure_latency(model, spec)
        history = {k: list(earlier.get(k, [])) + list(fitted.get(k, [])) for k in dict.fromkeys([*earlier, *fitted])}
        samples = count_samples(spec.training_data(seed))
        # Epochs here are passes over the training data, whatever validations_per_epoch is: fractions when it is > 1.
        seconds = timer.seconds_per_epoch() * steps_per_pass / steps_per_epoch
        summary = {
            **test,
            "params": params,
            "total_params": model.count_params(),  # the ESN's fixed reservoir counts here, not in params
            # What the builder knows about its model (receptive field, reservoir size): metrics, so that baseline
            # runs, which have none, still carry the same parameter keys as model runs.
            **{f"model_{k}": float(v) for k, v in getattr(model, "rnnbench_info", {}).items()
               if k not in ("total_params", "trainable_params")},
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
            **flow.metrics(),
            **gradient_totals(history),
        }
        reason = divergence(spec, test)
        tracker.log_metrics(run_id, {**summary, "diverged": float(bool(reason))})
        if reason:
            tracker.set_tags(run_id, {"diverged": "True", "diverged_reason": reason})
        log_run_artifacts(tracker, run_id, model, spec, config, model_name, seed, history, environment, flow)
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
