"""Everything that talks to MLflow. No other module imports mlflow.

Store: `MLFLOW_TRACKING_URI` when set (a tracking server or any store), else an SQLite file `mlflow.db` in the current
folder, with artifacts in `mlartifacts/` beside it, so nothing has to be started. One MLflow experiment per task
(`rnnbench-<task>`); one parent run per `bench` invocation; one child run per (model, seed) and per baseline.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional
from urllib.parse import urlparse

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from rnnbench.errors import UserError

DEFAULT_DB = "mlflow.db"
_PARAM_VALUE_LIMIT = 6000


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / DEFAULT_DB}"


@contextlib.contextmanager
def fluent_store(uri: str):
    """MLflow's fluent API (`mlflow.start_run`, `mlflow.keras.*`) pointed at `uri` for the block only.

    `mlflow.set_tracking_uri` also writes `MLFLOW_TRACKING_URI` into `os.environ`. Left there, a later `Tracker()`
    in the same process (a notebook, a second bench) would read another store than the user set, so both the
    global and the environment variable are put back exactly as they were.
    """
    from mlflow.tracking._tracking_service import utils as service

    saved_global = getattr(service, "_tracking_uri", None)
    saved_env = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved_global)
        if saved_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved_env


def experiment_name(task: str) -> str:
    return f"rnnbench-{task}"


def check_reachable(uri: Optional[str] = None, timeout: float = 3.0) -> None:
    """Fails fast, before any training, when the tracking store cannot be reached."""
    uri = uri or tracking_uri()
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            socket.create_connection((parsed.hostname, port), timeout=timeout).close()
        except OSError as error:
            raise UserError(
                f"MLflow tracking server {uri} is unreachable ({error.strerror or error}); start it, or unset "
                "MLFLOW_TRACKING_URI to use the local SQLite store mlflow.db"
            ) from None
    elif parsed.scheme == "sqlite":
        folder = Path(uri[len("sqlite:///"):]).parent
        if not folder.is_dir():
            raise UserError(f"MLflow store {uri}: folder {folder} does not exist; create it or fix MLFLOW_TRACKING_URI")


@contextlib.contextmanager
def _store_lock(uri: str):
    """An exclusive file lock beside a local SQLite store (no-op for other stores)."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    with open(uri[len("sqlite:///"):] + ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _flatten(prefix: str, value: Any, out: dict) -> dict:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        text = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
        out[prefix] = text[:_PARAM_VALUE_LIMIT]
    return out


class Tracker:
    """Runs of one task in one store."""

    def __init__(self, task: str, uri: Optional[str] = None):
        self.uri = uri or tracking_uri()
        check_reachable(self.uri)
        name = experiment_name(task)
        with _store_lock(self.uri):  # two processes creating one SQLite store race in its schema migration
            self.client = MlflowClient(tracking_uri=self.uri)
            experiment = self.client.get_experiment_by_name(name)
            if experiment is None:
                self.experiment_id = self.client.create_experiment(name, artifact_location=self._artifact_location(name))
            else:
                self.experiment_id = experiment.experiment_id

    def _artifact_location(self, name: str) -> Optional[str]:
        if self.uri.startswith("sqlite:///"):
            return (Path(self.uri[len("sqlite:///"):]).parent / "mlartifacts" / name).resolve().as_uri()
        return None  # a server decides

    # -- runs ------------------------------------------------------------------------------------------------------
    def start_run(self, name: str, tags: Mapping[str, str], parent_id: Optional[str] = None) -> str:
        all_tags = {"mlflow.runName": name, **{k: str(v) for k, v in tags.items()}}
        if parent_id:
            all_tags["mlflow.parentRunId"] = parent_id
        return self.client.create_run(self.experiment_id, tags=all_tags, run_name=name).info.run_id

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        flat = _flatten("", params, {})
        items = [Param(k, v) for k, v in flat.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start:start + 100])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
        for start in range(0, len(items), 500):
            self.client.log_batch(run_id, metrics=items[start:start + 500])

    def log_artifact(self, run_id: str, path: Path, artifact_path: Optional[str] = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path)

    def log_artifacts(self, run_id: str, folder: Path, artifact_path: Optional[str] = None) -> None:
        if any(Path(folder).iterdir()):
            self.client.log_artifacts(run_id, str(folder), artifact_path)

    def log_json(self, run_id: str, name: str, payload: Any) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
            self.client.log_artifact(run_id, str(path))

    def log_keras_model(self, run_id: str, model, example_input, example_output, requirements: Iterable[str]) -> None:
        """The model in MLflow's Keras flavour, with a signature inferred from an example batch."""
        import mlflow.keras
        from mlflow.models import infer_signature

        signature = infer_signature(example_input, example_output)
        with fluent_store(self.uri), mlflow.start_run(run_id=run_id):
            mlflow.keras.log_model(model, name="model", signature=signature, pip_requirements=list(requirements))
        # start_run's exit marked the run FINISHED; the caller decides the final status.
        self.client.update_run(run_id, status="RUNNING")

    # -- queries ---------------------------------------------------------------------------------------------------
    def finished_run(self, run_key: str) -> Optional[str]:
        """The id of a FINISHED run with this key, if one exists (for resuming a grid)."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.run_key = '{run_key}' and attributes.status = 'FINISHED'",
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def child_runs(self, config_hash: Optional[str] = None) -> list[dict]:
        """Child runs of this task (optionally of one configuration), newest first, as plain dicts."""
        filters = ["tags.rnnbench_role = 'child'"]
        if config_hash:
            filters.append(f"tags.config_hash = '{config_hash}'")
        runs, token = [], None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], filter_string=" and ".join(filters), max_results=1000,
                order_by=["attributes.start_time DESC"], page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token:
                break
        return [
            {"run_id": r.info.run_id, "status": r.info.status, "start_time": r.info.start_time,
             "tags": dict(r.data.tags), "params": dict(r.data.params), "metrics": dict(r.data.metrics)}
            for r in runs
        ]

    def latest_parent(self):
        runs = self.client.search_runs(
            [self.experiment_id], filter_string="tags.rnnbench_role = 'parent'", max_results=1,
            order_by=["attributes.start_time DESC"],
        )
        return runs[0] if runs else None

    def get_run(self, run_id: str):
        return self.client.get_run(run_id)

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.client.get_metric_history(run_id, key)]


def load_model(run_id: str, uri: Optional[str] = None):
    """The Keras model logged with run `run_id`."""
    import mlflow.keras

    import rnnbench.models  # noqa: F401  (registers the custom layers the saved model refers to)

    try:
        with fluent_store(uri or tracking_uri()):
            return mlflow.keras.load_model(f"runs:/{run_id}/model")
    except Exception as error:  # MlflowException for unknown runs, OSError for missing artifacts
        raise UserError(f"cannot load the model of run {run_id} from {uri or tracking_uri()}: {error}") from None


def download_artifact(run_id: str, artifact_path: str, uri: Optional[str] = None) -> Path:
    """A local copy of one artifact of run `run_id`."""
    client = MlflowClient(tracking_uri=uri or tracking_uri())
    try:
        return Path(client.download_artifacts(run_id, artifact_path, tempfile.mkdtemp(prefix="rnnbench-")))
    except Exception as error:
        raise UserError(f"run {run_id} has no artifact {artifact_path!r} in {uri or tracking_uri()}: {error}") from None
