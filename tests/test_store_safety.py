"""A kill at any moment never breaks the store, never strands a run, never trains a run twice (issue 17's defects)."""
import os
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from rnnbench import config, owner, run_log, runner, tracking
from rnnbench.cli import main
from rnnbench.errors import UserError

TINY = ["task.steps=600", "task.input_len=16", "task.horizon=2", "model.units=4"]


def _python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


# A process killed inside one of MLflow's schema migrations of a new store (the 1.5-6 s window): migration 20
# (it creates the `datasets` table) has run but its version stamp was not written, as SQLite DDL is not rolled back.
KILLED_DURING_CREATION = """
    import os
    import sqlite3
    from alembic import command
    from alembic.script import ScriptDirectory
    upgrade = command.upgrade

    def killed_inside_a_migration(config, revision, **options):
        revisions = list(ScriptDirectory.from_config(config).walk_revisions())[::-1]
        upgrade(config, revisions[20].revision)
        database = config.get_main_option("sqlalchemy.url")[len("sqlite:///"):]
        with sqlite3.connect(database) as connection:
            connection.execute("update alembic_version set version_num = ?", (revisions[19].revision,))
        os._exit(9)

    command.upgrade = killed_inside_a_migration
    {body}
"""


def test_a_kill_while_creating_the_store_leaves_no_store_and_the_next_command_works(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    killed = _python(KILLED_DURING_CREATION.format(body=f"from rnnbench import tracking; tracking.Tracker('sine', {uri!r})"))
    assert killed.returncode == 9, killed.stderr
    assert not (tmp_path / "mlflow.db").exists()  # only the staging file of the killed creation is left
    tracker = tracking.Tracker("sine", uri)
    run_id = tracker.start_run("r", {"rnnbench_role": "child"})
    tracker.end_run(run_id)
    assert not list(tmp_path.glob(".mlflow.db.creating-*"))


def test_a_store_damaged_by_an_earlier_version_is_named_with_the_fix(tmp_path, capsys):
    path = tmp_path / "mlflow.db"
    damaged = _python(KILLED_DURING_CREATION.format(
        body=f"from mlflow.tracking import MlflowClient; MlflowClient('sqlite:///{path}').search_experiments()"))
    assert damaged.returncode == 9 and path.exists()
    with pytest.raises(UserError, match="is damaged") as caught:
        tracking.Tracker("sine", f"sqlite:///{path}")
    assert f"mv {path} {path}.damaged" in str(caught.value)


def test_an_unwritable_store_is_one_error_line_naming_the_path(tmp_path, monkeypatch, capsys):
    def read_only(uri):
        raise OSError(30, "Read-only file system", uri[len("sqlite:///"):] + ".lock")

    monkeypatch.setattr(tracking, "_store_lock", read_only)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert main(["report", "--task", "sine"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("rnnbench: error: MLflow store ")
    assert str(tmp_path / "mlflow.db") in error[0] and "MLFLOW_TRACKING_URI" in error[0]


def test_runs_of_a_killed_process_are_marked_killed_by_the_next_command(tmp_path, mlflow_store):
    stranded = _python(f"""
        import os
        from rnnbench import tracking
        tracker = tracking.Tracker("sine", {mlflow_store!r})
        parent = tracker.start_run("grid", {{"rnnbench_role": "parent"}})
        tracker.start_run("lstm-seed0", {{"rnnbench_role": "child", "kind": "model", "model": "lstm", "seed": 0,
                                          "run_key": "k", "config_hash": "h"}}, parent_id=parent)
        os._exit(9)  # as SIGKILL would: nothing marks the runs
    """)
    assert stranded.returncode == 9, stranded.stderr
    tracker = tracking.Tracker("sine", mlflow_store)
    statuses = {r.info.run_name: r.info.status for r in tracker.client.search_runs([tracker.experiment_id])}
    assert statuses == {"grid": "KILLED", "lstm-seed0": "KILLED"}
    child = next(r for r in tracker.child_runs() if r["tags"]["run_key"] == "k")
    assert "stranded" in child["tags"]["failure_reason"]


def test_a_live_owner_keeps_its_runs_and_a_lease_covers_other_hosts(monkeypatch):
    assert owner.alive(owner.this_process()) is True
    assert owner.alive("elsewhere:1:0.0") is None
    now = time.time()
    assert not owner.stranded("elsewhere:1:0.0", now - 60, now - 600, now)
    assert owner.stranded("elsewhere:1:0.0", now - owner.LEASE_SECONDS - 1, now - 10 ** 6, now)
    dead = subprocess.run([sys.executable, "-c", "from rnnbench import owner; print(owner.this_process())"],
                          capture_output=True, text=True).stdout.strip()
    assert owner.alive(dead) is False and owner.stranded(dead, now, now, now)
    host, pid, started = owner.this_process().split(":")
    assert started.startswith("t")  # clock ticks since boot from /proc: no drift however long a grid runs
    assert owner.alive(f"{host}:{pid}:t{int(started[1:]) + 1}") is False  # same pid, another start: reused
    parent = os.getppid()
    assert owner.alive(f"{host}:{parent}:{owner._start_of(parent)}") is True


def test_one_claim_per_run_key(tmp_path, mlflow_store):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from rnnbench import tracking
        tracker = tracking.Tracker("sine", {mlflow_store!r})
        print(tracker.start_claimed_run("lstm-seed0", {{"rnnbench_role": "child"}}, "key")[0], flush=True)
        time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        holder_run = holder.stdout.readline().strip()
        assert holder_run and holder_run != "None"
        tracker = tracking.Tracker("sine", mlflow_store)
        run_id, held_by = tracker.start_claimed_run("lstm-seed0", {"rnnbench_role": "child"}, "key")
        assert run_id is None and held_by.split(":")[1] == str(holder.pid)
        assert [r["run_id"] for r in tracker.child_runs()] == [holder_run]  # the losing attempt was deleted
    finally:
        holder.kill()
        holder.wait()
    tracker = tracking.Tracker("sine", mlflow_store)  # the holder died: its claim is reaped, a new one can be taken
    run_id, held_by = tracker.start_claimed_run("lstm-seed0", {"rnnbench_role": "child"}, "key")
    assert run_id and held_by is None
    tracker.end_run(run_id)
    assert tracker.start_claimed_run("lstm-seed0", {"rnnbench_role": "child"}, "key") == (None, "a finished run")


@pytest.mark.multiprocess
def test_two_identical_grids_at_once_train_each_run_once(tmp_path, mlflow_store):
    command = [sys.executable, "-m", "rnnbench.cli", "bench", "--task", "sine", "--models", "gru", "--seeds", "0,1",
               "--epochs", "1", "--results-dir", str(tmp_path / "results")] + [a for s in TINY for a in ("--set", s)]
    grids = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "RNNBENCH_CHECKPOINT_DIR": str(tmp_path / f"ck{i}")})
             for i in range(2)]
    outputs = [g.communicate(timeout=600)[0] for g in grids]
    assert [g.returncode for g in grids] == [0, 0], outputs
    finished = [r for r in tracking.Tracker("sine", mlflow_store).child_runs() if r["status"] == "FINISHED"]
    keys = [r["tags"]["run_key"] for r in finished]
    assert len(keys) == len(set(keys)) == 2 + 3  # two model runs and three baselines, once each


def test_resume_of_a_run_killed_after_its_last_epoch_goes_straight_to_evaluation(tmp_path, mlflow_store, monkeypatch):
    monkeypatch.setenv("RNNBENCH_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    resolved = config.resolve(task="sine", models="gru", seeds="0", epochs=2, sets=TINY)

    def killed_while_logging(*args, **kwargs):
        raise KeyboardInterrupt  # every epoch is checkpointed; the kill comes before the run is logged

    with monkeypatch.context() as patch:
        patch.setattr(runner, "log_run_artifacts", killed_while_logging)
        with pytest.raises(KeyboardInterrupt):
            runner.bench(resolved, results_dir=tmp_path / "results", tracking_uri=mlflow_store, echo=lambda _: None)
    outcome = runner.bench(resolved, results_dir=tmp_path / "results", tracking_uri=mlflow_store, resume=True,
                           echo=lambda _: None)
    assert (outcome["finished"], outcome["failed"]) == (1, 0)
    run = next(r for r in tracking.Tracker("sine", mlflow_store).child_runs()
               if r["status"] == "FINISHED" and r["tags"]["kind"] == "model")
    assert run["tags"]["resumed_from_epoch"] == "2" and run["metrics"]["epochs_run"] == 2.0


def test_a_grid_whose_runs_all_fail_has_a_failed_parent(tmp_path, mlflow_store, monkeypatch):
    monkeypatch.setenv("RNNBENCH_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))

    def broken(*args, **kwargs):
        raise RuntimeError("no kernel for this")

    monkeypatch.setattr(runner, "build_model", broken)
    resolved = config.resolve(task="sine", models="gru", seeds="0", epochs=1, sets=TINY)
    outcome = runner.bench(resolved, results_dir=tmp_path / "results", tracking_uri=mlflow_store, echo=lambda _: None)
    assert outcome["failed"] == 1
    assert tracking.Tracker("sine", mlflow_store).latest_parent().info.status == "FAILED"


def test_a_run_far_above_its_naive_baseline_is_flagged_diverged(tmp_path, mlflow_store, monkeypatch):
    class Spec:
        primary_metric, higher_is_better = "rmse", False
        baselines = {"persistence": {"loss": 0.2, "rmse": 0.45}, "linear_ar": {"loss": 0.01, "rmse": 0.1}}

    assert run_log.divergence(Spec, {"test_loss": 0.15, "test_rmse": 0.4}) == ""
    assert "x the worst baseline" in run_log.divergence(Spec, {"test_loss": 30.0, "test_rmse": 5.4})
    assert "nan" in run_log.divergence(Spec, {"test_loss": float("nan")})

    monkeypatch.setenv("RNNBENCH_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    resolved = config.resolve(task="sine", models="simple_rnn", seeds="0", epochs=1,
                              sets=TINY + ["train.learning_rate=1000", "train.clipnorm=0"])
    runner.bench(resolved, results_dir=tmp_path / "results", tracking_uri=mlflow_store, echo=lambda _: None)
    run = next(r for r in tracking.Tracker("sine", mlflow_store).child_runs() if r["tags"]["kind"] == "model")
    if run["status"] == "FINISHED":  # a loss that overflows to NaN fails the run instead, which is also flagged
        assert run["tags"]["diverged"] == "True" and run["metrics"]["diverged"] == 1.0
        assert "Diverged runs" in (tmp_path / "results" / "sine" / "README.md").read_text()
    else:
        assert run["status"] == "FAILED" and "loss became" in run["tags"]["failure_reason"]
    summary = pd.read_csv(tmp_path / "results" / "sine" / "summary.csv")
    assert "linear_ar" in set(summary["model"])
