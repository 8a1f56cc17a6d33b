"""Where a grid's cells run: one after another in this process (`SerialExecutor`, the default), or as Ray tasks on
worker processes of this machine or of an existing Ray cluster (`RayExecutor`, `rnnbench bench --executor ray
--workers N`).

Ray Core tasks rather than Ray Tune: a grid is a fixed list of independent runs whose bookkeeping (claims, resume,
stranded runs, the report) already lives in the MLflow store, so a task per cell is all the scheduling it needs.
Tune would add a second record of every run (trial directories, its own checkpoints and result logging), its
search-space and scheduler machinery that a fixed grid does not use, and the `ray[tune]` extra's dependencies.

Each cell runs `runner.run_cell_in_worker`, handed over by the grid (this module imports no runner, which imports
it), so a cell's code is the same here and on a worker. The driver keeps the parent run, the progress lines and the
report; the workers create their child runs in the same store (see `rnnbench.tracking`).
"""
from __future__ import annotations

import functools
import math
import os
import socket
import time
from typing import Optional

import numpy as np

from rnnbench.callbacks import Progress
from rnnbench.errors import UserError

EXECUTORS = ("serial", "ray")
# How long in-flight cells of an interrupted grid get to mark their own runs KILLED before their workers are killed.
CANCEL_GRACE_SECONDS = 10.0


class SerialExecutor:
    """Each cell in turn, in this process."""

    name = "serial"

    def run(self, grid) -> None:
        for cell in grid.cells:
            grid.report(cell, {"status": "skipped"} if grid.finished(cell) else grid.run_here(cell))


def local_cores() -> int:
    """The cores this process may run on (its affinity, which a container or `taskset` can narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class WorkerProgress(Progress):
    """The epoch lines of a run on a worker (Ray forwards its output to the driver). The ETA counts the runs still
    queued when it was submitted, shared among the workers, each costing the mean of the runs finished by then."""

    def __init__(self, runs: int, epochs: int, validations_per_epoch: int, queued: int, workers: int,
                 run_times: list[float]):
        super().__init__(runs, epochs, functools.partial(print, flush=True), validations_per_epoch)
        self.queued, self.workers, self.run_times = queued, workers, list(run_times)

    def eta(self, index: int, epoch: int, total: int, epoch_times: list[float]) -> float:
        this_run = (total - epoch - 1) * float(np.mean(epoch_times))
        per_run = float(np.mean(self.run_times)) if self.run_times else \
            time.monotonic() - self._run_started + this_run
        return this_run + math.ceil(self.queued / self.workers) * per_run


class RayExecutor:
    """Each cell as a Ray task, at most `workers` at once, each with the CPUs (and GPUs) it declares.

    Ray: the one this process is already connected to (a notebook's or a test's `ray.init`), else the cluster at
    `RAY_ADDRESS` when set, else a local Ray started here (and shut down at the end) with `workers` worker slots.
    Threads: each task declares `threads` CPUs (the cores, this machine's or the cluster's, shared among the
    workers, at least 1) and its worker runs TensorFlow and OpenMP with that many threads, so N workers never
    oversubscribe a machine. GPUs: a task declares `train.devices` GPUs when the Ray it runs on has GPUs.
    A worker that dies leaves its run marked KILLED (told by Ray, so on any host at once) and the grid goes on.
    """

    name = "ray"

    def __init__(self, workers: int = 2, address: Optional[str] = None):
        if workers < 1:
            raise UserError(f"--workers must be >= 1, got {workers}")
        self.workers = workers
        self.address = address if address is not None else os.environ.get("RAY_ADDRESS")
        self.threads, self.gpus = 1, 0
        self.dashboard_url: Optional[str] = None
        self.timings: list[dict] = []  # per cell: submitted/ended (driver clock), the worker's own figures

    def run(self, grid) -> None:
        ray = _import_ray()
        started_here = self._connect(ray, grid.echo)
        try:
            self._check_store(ray, grid.tracker.uri)
            self._run(ray, grid)
        finally:
            if started_here:
                ray.shutdown()

    # -- connecting ------------------------------------------------------------------------------------------------
    def _connect(self, ray, echo) -> bool:
        """Connects to Ray; True when this call started the local Ray it uses (and so shuts it down)."""
        # Ray's tqdm_ray swaps builtins.print in the driver when a worker draws a progress bar; the grid's own lines
        # go through print, so leave it alone (a user's explicit setting wins).
        os.environ.setdefault("RAY_TQDM_PATCH_PRINT", "0")
        cores = local_cores()
        if ray.is_initialized():
            where = "the Ray this process is connected to"
            started_here = False
        elif self.address:
            _check_reachable(self.address)
            try:
                context = ray.init(address=self.address, include_dashboard=None, log_to_driver=True)
            except Exception as error:  # ConnectionError, or Ray's own errors for a refused or mismatched cluster
                raise UserError(f"cannot join the Ray cluster at RAY_ADDRESS={self.address} ({type(error).__name__}: "
                                f"{str(error).splitlines()[0] if str(error) else ''}); start it (`ray start --head`) "
                                "or unset RAY_ADDRESS to run on a local Ray") from None
            self.dashboard_url = context.dashboard_url or None
            where, started_here = f"the Ray cluster at {self.address}", False
        else:
            if self.workers > cores:
                echo(f"rnnbench: warning: {self.workers} workers on {cores} cores: they share the cores, each run "
                     "is slower and the grid no faster than with fewer")
            context = ray.init(num_cpus=max(cores // self.workers, 1) * self.workers,
                               include_dashboard=_dashboard_installed(), log_to_driver=True)
            self.dashboard_url = context.dashboard_url or None
            where, started_here = "a local Ray", True
        total = int(ray.cluster_resources().get("CPU", cores))
        largest = max((int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")), default=total)
        self.threads = max(1, min(total // self.workers, largest))
        self.gpus = int(ray.cluster_resources().get("GPU", 0))
        echo(f"rnnbench: executor ray: {self.workers} workers on {where} ({total} CPUs"
             f"{f', {self.gpus} GPUs' if self.gpus else ''}), {self.threads} thread(s) per run")
        if self.dashboard_url:
            url = self.dashboard_url if "://" in self.dashboard_url else f"http://{self.dashboard_url}"
            echo(f"rnnbench: Ray dashboard at {url}")
        return started_here

    @staticmethod
    def _check_store(ray, uri: str) -> None:
        """A local SQLite file is one machine's: workers on other nodes would each write a store of their own."""
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        if uri.startswith("sqlite:") and len(nodes) > 1:
            raise UserError(f"the Ray cluster has {len(nodes)} nodes but the MLflow store is a local SQLite file "
                            f"({uri}), which workers on other nodes cannot share; start a tracking server (`mlflow "
                            "server --host 0.0.0.0 --port 5000 --backend-store-uri sqlite:///mlflow.db`) and set "
                            "MLFLOW_TRACKING_URI=http://<its host>:5000")

    # -- running ---------------------------------------------------------------------------------------------------
    def _run(self, ray, grid) -> None:
        train = grid.config["train"]
        gpus = train.get("devices", 1) if self.gpus else 0
        env = {name: str(self.threads) for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                                                    "TF_NUM_INTEROP_THREADS")}
        env.update({k: os.environ[k] for k in ("TFDS_DATA_DIR", "RNNBENCH_DATA_DIR", "RNNBENCH_LEASE_SECONDS",
                                               "TF_CPP_MIN_LOG_LEVEL") if k in os.environ})
        remote = ray.remote(grid.worker)
        # No retries: a run whose worker died is reported (and resumed by the next command), not silently repeated.
        options = dict(num_cpus=self.threads, num_gpus=gpus, max_retries=0, runtime_env={"env_vars": env})
        queue, in_flight, run_times = list(grid.cells), {}, []
        try:
            while queue or in_flight:
                while queue and len(in_flight) < self.workers:
                    cell = queue.pop(0)
                    if grid.finished(cell):
                        grid.report(cell, {"status": "skipped"})
                        continue
                    progress = WorkerProgress(grid.progress.runs, train["epochs"], train["validations_per_epoch"],
                                              sum(not c.baseline for c in queue), self.workers, run_times)
                    ref = remote.options(name=cell.label, **options).remote(*grid.worker_args(cell, progress, self.threads))
                    in_flight[ref] = (cell, time.monotonic())
                if not in_flight:
                    continue
                done, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in done:
                    cell, submitted = in_flight.pop(ref)
                    result = self._result(ray, ref, cell, grid)
                    self.timings.append({"cell": cell.label, "baseline": cell.baseline, "submitted": submitted,
                                         "ended": time.monotonic(), **{k: result.get(k) for k in (
                                             "status", "seconds", "startup_seconds", "worker_pid")}})
                    if result["status"] == "finished" and not cell.baseline:
                        run_times.append(result["seconds"])
                    grid.report(cell, result)
        except BaseException:  # Ctrl-C, SIGTERM, a UserError: no run is left training, none left RUNNING
            self._cancel(ray, in_flight, grid)
            raise

    def _result(self, ray, ref, cell, grid) -> dict:
        try:
            result = ray.get(ref)
        except ray.exceptions.RayTaskError as error:  # raised past run_cell's own handling (e.g. SystemExit)
            cause = error.cause if getattr(error, "cause", None) is not None else error
            reason = f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
            grid.mark_killed(cell, f"its Ray task failed: {reason}")
            return {"status": "failed", "error": reason}
        except ray.exceptions.RayError as error:  # the worker died (killed, out of memory, its node lost)
            reason = (f"its Ray worker died ({type(error).__name__}: "
                      f"{str(error).strip().splitlines()[0] if str(error).strip() else ''})")
            killed = grid.mark_killed(cell, reason)
            if grid.finished(cell):  # it died after logging its run as finished
                run_id = grid.tracker.finished_run(cell.key)
                return {"status": "finished", "run_id": run_id, "worker": "",
                        "metrics": dict(grid.tracker.get_run(run_id).data.metrics), "seconds": 0.0}
            return {"status": "failed", "error": reason + ("; its run is marked KILLED" if killed else "")}
        if result["status"] == "user_error":
            raise UserError(result["error"])
        return result

    def _cancel(self, ray, in_flight: dict, grid) -> None:
        """Interrupts the cells in flight (their runs mark themselves KILLED), kills what has not stopped in
        CANCEL_GRACE_SECONDS, and marks KILLED whatever run is still RUNNING."""
        refs = list(in_flight)
        for ref in refs:
            ray.cancel(ref)  # a KeyboardInterrupt in the task: train_one marks its run KILLED
        _, running = ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_SECONDS) if refs else ([], [])
        for ref in running:
            ray.cancel(ref, force=True)
        for cell, _ in in_flight.values():
            grid.mark_killed(cell, "interrupted: the grid was stopped while this run trained on a Ray worker")


def _check_reachable(address: str) -> None:
    """Fails at once on a host:port nobody listens at; Ray itself retries its GCS connection for minutes first."""
    host, _, port = address.rpartition(":")
    if "://" in address or not port.isdigit():  # "auto", "ray://...": Ray's own resolution and errors
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except OSError as error:
        raise UserError(f"cannot join the Ray cluster at RAY_ADDRESS={address} ({error}); start it (`ray start "
                        "--head`) or unset RAY_ADDRESS to run on a local Ray") from None


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install ray (`make setup` installs it)") from None
    return ray


def _dashboard_installed() -> bool:
    """Whether Ray's dashboard can start: plain `ray` lacks its packages, `ray[default]` has them."""
    try:
        from ray._private.utils import check_dashboard_dependencies_installed
    except ImportError:
        return False
    return bool(check_dashboard_dependencies_installed())


def make_executor(name: str, workers: Optional[int] = None):
    """The executor `bench --executor NAME --workers N` asks for."""
    if name == "serial":
        if workers not in (None, 1):
            raise UserError(f"--workers {workers} needs --executor ray; the serial executor runs one run at a time")
        return SerialExecutor()
    if name == "ray":
        return RayExecutor(2 if workers is None else workers)
    raise UserError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
