"""Everything that talks to MLflow. No other module imports mlflow.

Store: `MLFLOW_TRACKING_URI` when set (a tracking server or any store), else an SQLite file `mlflow.db` in the current
folder, with artifacts in `mlartifacts/` beside it, so nothing has to be started. One MLflow experiment per rnnbench
experiment (`rnnbench-<experiment>`: a task's own experiment has the task's name, so `rnnbench-sine`; an experiment
file of a task, such as speech_digits, has its own); one parent run per `bench` invocation; one child run per (model,
seed) and per baseline. A run's Keras model is logged as MLflow 3 logged model `<task>-<model>`. The store's safety
(reachability, the SQLite lock, one-line errors) lives in `rnnbench.store`, which imports no mlflow.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from rnnbench import owner as owners
from rnnbench.errors import UserError
from rnnbench.store import check_reachable, sqlite_path as _sqlite_path, store_error
from rnnbench.store import store_lock as _store_lock  # a module global, so tests can replace it

# Progress bars for every artifact download are noise in a command's output (`rnnbench predict`, `generate`).
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
DEFAULT_DB = "mlflow.db"
_PARAM_VALUE_LIMIT = 6000
OWNER_TAG, HEARTBEAT_TAG = "rnnbench_owner", "rnnbench_heartbeat"
# The name a run's model was logged under; runs logged before names were per task and model have none: "model".
MODEL_NAME_TAG, UNNAMED_MODEL = "rnnbench_model_name", "model"
# MLflow's experiment description: shown in the experiment list and above the experiment's runs table.
DESCRIPTION_TAG = "mlflow.note.content"


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


def experiment_name(experiment: str) -> str:
    """The MLflow experiment of an rnnbench experiment (a task's own experiment has the task's name)."""
    return f"rnnbench-{experiment}"


def logged_model_name(task: str, model: str) -> str:
    """What a run's model is called among MLflow's logged models: one name per task and model."""
    return f"{task}-{model}"


def _flatten(prefix: str, value: Any, out: dict) -> dict:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        text = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
        out[prefix] = text[:_PARAM_VALUE_LIMIT]
    return out


def create_store_atomically(uri: str) -> None:
    """A new SQLite store is built under a temporary name and renamed into place once its schema is complete, so a
    kill during MLflow's schema creation (seconds of migrations) leaves no store rather than a broken one.
    Call with the store lock held: any temporary file still there then belongs to a creation that was killed."""
    path = _sqlite_path(uri)
    if path is None or path.exists():
        return
    for stale in path.parent.glob(f".{path.name}.creating-*"):
        stale.unlink(missing_ok=True)
    staging = path.parent / f".{path.name}.creating-{os.getpid()}"
    MlflowClient(tracking_uri=f"sqlite:///{staging}").search_experiments(max_results=1)  # runs the migrations
    os.replace(staging, path)


class Tracker:
    """Runs of one rnnbench experiment in one store: `Tracker("sine")` for a task's own experiment,
    `Tracker("speech_digits")` for an experiment file. Opening one marks its stranded runs KILLED (`reap_stranded`)."""

    def __init__(self, experiment: str, uri: Optional[str] = None):
        self.uri = uri or tracking_uri()
        check_reachable(self.uri)
        name = experiment_name(experiment)
        try:
            with _store_lock(self.uri):  # two processes creating one SQLite store race in its schema migration
                create_store_atomically(self.uri)
                self.client = MlflowClient(tracking_uri=self.uri)
                experiment = self.client.get_experiment_by_name(name)
                if experiment is None:
                    self.experiment_id = self.client.create_experiment(
                        name, artifact_location=self._artifact_location(name))
                else:
                    self.experiment_id = experiment.experiment_id
        except UserError:
            raise
        except Exception as error:
            raise store_error(self.uri, error) from None
        self.owner = owners.this_process()
        self.reap_stranded()

    def _artifact_location(self, name: str) -> Optional[str]:
        if self.uri.startswith("sqlite:///"):
            return (Path(self.uri[len("sqlite:///"):]).parent / "mlartifacts" / name).resolve().as_uri()
        return None  # a server decides

    # -- runs ------------------------------------------------------------------------------------------------------
    def start_run(self, name: str, tags: Mapping[str, str], parent_id: Optional[str] = None) -> str:
        all_tags = {"mlflow.runName": name, **{k: str(v) for k, v in tags.items()}, OWNER_TAG: self.owner,
                    HEARTBEAT_TAG: f"{time.time():.0f}"}
        if parent_id:
            all_tags["mlflow.parentRunId"] = parent_id
        return self.client.create_run(self.experiment_id, tags=all_tags, run_name=name).info.run_id

    def start_claimed_run(self, name: str, tags: Mapping[str, str], run_key: str,
                          parent_id: Optional[str] = None) -> tuple[Optional[str], Optional[str]]:
        """(run id, None) when this process now holds the one claim on `run_key`; (None, holder) when a finished run
        or another live process's run holds it. The claim is the earliest live RUNNING run of the key: created,
        then checked, under the store lock for a local SQLite store; create-then-check alone elsewhere."""
        with _store_lock(self.uri):
            run_id = self.start_run(name, {**tags, "run_key": run_key}, parent_id)
            holders = []
            for run in self._runs(f"tags.run_key = '{run_key}'"):
                if run.info.status == "FINISHED":
                    holders.append((0, 0, run.info.run_id, "a finished run"))
                elif run.info.status == "RUNNING" and not self._stranded(run):
                    holders.append((1, run.info.start_time, run.info.run_id,
                                    run.data.tags.get(OWNER_TAG, "another process")))
            winner = min(holders) if holders else (0, 0, run_id, "")  # a store that hides our own new run
            if winner[2] == run_id:
                return run_id, None
            self.client.delete_run(run_id)
            return None, winner[3]

    def heartbeat(self, run_id: str) -> None:
        """Renews the lease of a run (what tells runs of live processes on other hosts from stranded ones)."""
        self.client.set_tag(run_id, HEARTBEAT_TAG, f"{time.time():.0f}")

    def _runs(self, filter_string: str, order_by: Optional[list] = None) -> list:
        """Every run of this experiment that matches, page after page."""
        found, token = [], None
        while True:
            page = self.client.search_runs([self.experiment_id], filter_string=filter_string, max_results=1000,
                                           order_by=order_by, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                return found

    @staticmethod
    def _stranded(run) -> bool:
        beat = run.data.tags.get(HEARTBEAT_TAG)
        return owners.stranded(run.data.tags.get(OWNER_TAG), float(beat) if beat else None,
                               run.info.start_time / 1000)

    def reap_stranded(self) -> list[str]:
        """Marks KILLED every RUNNING run of this task that no live process owns (killed by SIGKILL, a crash or a
        lost machine), with the reason; returns their ids."""
        reaped = []
        for run in self._runs("attributes.status = 'RUNNING'"):
            if self._stranded(run):
                holder = run.data.tags.get(OWNER_TAG, "an unknown process")
                self.client.set_tag(run.info.run_id, "failure_reason",
                                    f"stranded: its process ({holder}) ended without finishing it; marked KILLED "
                                    "by a later command")
                self.client.set_terminated(run.info.run_id, status="KILLED")
                reaped.append(run.info.run_id)
        return reaped

    def mark_killed(self, run_key: str, parent_id: str, reason: str) -> list[str]:
        """Marks KILLED the RUNNING runs of `run_key` under parent run `parent_id`, with `reason`: for a run whose
        process the caller knows is gone (a Ray worker that crashed), on any host, without waiting for its lease."""
        killed = []
        for run in self._runs(f"tags.run_key = '{run_key}' and attributes.status = 'RUNNING'"):
            if run.data.tags.get("mlflow.parentRunId") == parent_id:
                self.client.set_tag(run.info.run_id, "failure_reason", reason[:5000])
                self.client.set_terminated(run.info.run_id, status="KILLED")
                killed.append(run.info.run_id)
        return killed

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        flat = _flatten("", params, {})
        items = [Param(k, v) for k, v in flat.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start:start + 100])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def describe(self, text: str) -> None:
        """Gives the experiment the description `text` (MLflow's `mlflow.note.content` experiment tag) when it has
        none: one a user wrote or edited in the UI stays (deleting it there brings rnnbench's back)."""
        if not self.client.get_experiment(self.experiment_id).tags.get(DESCRIPTION_TAG):
            self.client.set_experiment_tag(self.experiment_id, DESCRIPTION_TAG, text)

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

    def log_keras_model(self, run_id: str, model, example_input, example_output, requirements: Iterable[str],
                        name: str = UNNAMED_MODEL) -> None:
        """The model in MLflow's Keras flavour as logged model `name` (see `logged_model_name`), with a signature
        inferred from an example batch; the run's `rnnbench_model_name` tag says which name `load_model` loads."""
        import mlflow.keras
        from mlflow.models import infer_signature

        signature = infer_signature(example_input, example_output)
        with fluent_store(self.uri), mlflow.start_run(run_id=run_id):
            mlflow.keras.log_model(model, name=name, signature=signature, pip_requirements=list(requirements))
        # start_run's exit marked the run FINISHED; the caller decides the final status.
        self.client.update_run(run_id, status="RUNNING")
        self.client.set_tag(run_id, MODEL_NAME_TAG, name)

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
        filters = ["tags.rnnbench_role = 'child'"] + ([f"tags.config_hash = '{config_hash}'"] if config_hash else [])
        return [
            {"run_id": r.info.run_id, "status": r.info.status, "start_time": r.info.start_time,
             "end_time": r.info.end_time, "tags": dict(r.data.tags), "params": dict(r.data.params),
             "metrics": dict(r.data.metrics)}
            for r in self._runs(" and ".join(filters), order_by=["attributes.start_time DESC"])
        ]

    def latest_parent(self, config_hash: Optional[str] = None, experiment: Optional[str] = None):
        """The newest parent run (of `config_hash`); with `experiment`, the newest of that rnnbench experiment, for
        stores whose task experiments also hold the benches of the task's experiment files (logged before those had
        MLflow experiments of their own)."""
        filters = "tags.rnnbench_role = 'parent'" + (f" and tags.config_hash = '{config_hash}'" if config_hash else "")
        runs = self.client.search_runs([self.experiment_id], filter_string=filters, max_results=1 if not experiment
                                       else 1000, order_by=["attributes.start_time DESC"])
        if experiment:  # a parent logged without an experiment name (a config built in code) is its task's
            runs = [r for r in runs if (r.data.tags.get("experiment") or r.data.tags.get("task")) == experiment]
        return runs[0] if runs else None

    def get_run(self, run_id: str):
        return self.client.get_run(run_id)

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.client.get_metric_history(run_id, key)]


def load_model(run_id: str, uri: Optional[str] = None):
    """The Keras model logged with run `run_id`: `runs:/<run id>/<name>`, the name its `rnnbench_model_name` tag
    records ("model" for runs logged before models were named per task and model)."""
    import mlflow.keras

    from rnnbench import registry

    registry.list_models()  # discovers the model modules, which register the custom layers a saved model refers to

    try:
        name = MlflowClient(tracking_uri=uri or tracking_uri()).get_run(run_id).data.tags.get(MODEL_NAME_TAG,
                                                                                               UNNAMED_MODEL)
        with fluent_store(uri or tracking_uri()):
            return mlflow.keras.load_model(f"runs:/{run_id}/{name}")
    except Exception as error:  # MlflowException for unknown runs, OSError for missing artifacts
        raise UserError(f"cannot load the model of run {run_id} from {uri or tracking_uri()}: {error}") from None


def run_tag(run_id: str, key: str, uri: Optional[str] = None) -> str:
    """One tag of run `run_id` (e.g. its task); a clear error when the run or the tag is not in the store."""
    client = MlflowClient(tracking_uri=uri or tracking_uri())
    try:
        tags = client.get_run(run_id).data.tags
    except Exception as error:
        raise UserError(f"no run {run_id} in {uri or tracking_uri()}: {error}") from None
    if key not in tags:
        raise UserError(f"run {run_id} has no tag {key!r}; is it an rnnbench run?")
    return tags[key]


def download_artifact(run_id: str, artifact_path: str, uri: Optional[str] = None, *,
                      added_later: Optional[str] = None) -> Path:
    """A local copy of one artifact of run `run_id`. `added_later` says why runs logged before the artifact existed
    lack it; their error then tells the user to train the model again rather than showing MLflow's."""
    client = MlflowClient(tracking_uri=uri or tracking_uri())
    try:
        return Path(client.download_artifacts(run_id, artifact_path, tempfile.mkdtemp(prefix="rnnbench-")))
    except Exception as error:
        if added_later:
            raise UserError(f"run {run_id} has no {artifact_path} ({added_later}); train the model again with this "
                            "version of rnnbench") from None
        raise UserError(f"run {run_id} has no artifact {artifact_path!r} in {uri or tracking_uri()}: {error}") from None
