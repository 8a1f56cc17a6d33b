"""Long benchmarks survive interruption, diverging runs, concurrent writers and crashes while writing results."""
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pandas as pd
import pytest

from rnnbench import registry, report, tracking
from rnnbench.cli import main

TINY = ["--set", "task.steps=600", "--set", "task.input_len=16", "--set", "task.horizon=2", "--set", "model.units=4"]


def _bench_command(results, *extra):
    return [sys.executable, "-m", "rnnbench.cli", "bench", "--task", "sine", "--models", "gru", "--seeds", "0,1",
            "--epochs", "2", "--results-dir", str(results), *TINY, *extra]


@pytest.mark.multiprocess
def test_sigterm_marks_killed_reports_and_resume_continues(tmp_path, mlflow_store, monkeypatch):
    monkeypatch.setenv("RNNBENCH_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    results = tmp_path / "results"
    process = subprocess.Popen(_bench_command(results), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 300
    for line in process.stdout:  # stop it once the second run has finished one epoch
        if line.startswith("[2/2] gru seed=1 epoch 1/2") or time.monotonic() > deadline:
            process.send_signal(signal.SIGTERM)
            break
    process.stdout.read()
    assert process.wait(timeout=120) == 130

    tracker = tracking.Tracker("sine", mlflow_store)
    statuses = {(r["tags"]["model"], r["tags"]["seed"]): r["status"] for r in tracker.child_runs()}
    assert statuses[("gru", "0")] == "FINISHED"
    assert statuses[("gru", "1")] == "KILLED"  # never left RUNNING
    assert tracker.latest_parent().info.status == "KILLED"
    summary = pd.read_csv(results / "sine" / "summary.csv").set_index("model")
    assert summary.loc["gru", "runs"] == 1  # the report covers what finished
    assert "KILLED" in (results / "sine" / "README.md").read_text()

    resumed = subprocess.run(_bench_command(results, "--resume"), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "1 skipped" in resumed.stdout
    runs = tracker.child_runs()
    finished = [r for r in runs if r["status"] == "FINISHED" and r["tags"]["kind"] == "model"]
    assert sorted(r["tags"]["seed"] for r in finished) == ["0", "1"]
    seed1 = next(r for r in finished if r["tags"]["seed"] == "1")
    assert seed1["tags"]["resumed_from_epoch"] == "1"
    assert len(tracker.metric_history(seed1["run_id"], "val_loss")) == 2  # the earlier epoch is carried over
    summary = pd.read_csv(results / "sine" / "summary.csv").set_index("model")
    assert summary.loc["gru", "runs"] == 2  # the killed attempt is not counted
    assert not any((tmp_path / "checkpoints").iterdir())  # checkpoints of finished runs are removed

    # The resumed run ends where an uninterrupted one does: same weights, optimizer state and shuffle orders, and
    # XLA (which the runner picks for a GRU on CPU, without op determinism) gives the same numbers in two processes.
    assert seed1["tags"]["xla"] == "True"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'uninterrupted.db'}")
    command = _bench_command(tmp_path / "uninterrupted", "--seeds", "1")[3:]  # the CLI's arguments; last --seeds wins
    assert main(command) == 0
    uninterrupted = next(r for r in tracking.Tracker("sine").child_runs() if r["tags"]["kind"] == "model")
    for metric in ("train_loss", "val_loss", "test_rmse"):
        assert seed1["metrics"][metric] == uninterrupted["metrics"][metric], metric


@registry.register_model("always_nan", family="recurrent")
def always_nan(spec, units: int = 4):
    """A model whose loss is NaN from the first step, to exercise the divergence guard."""
    inputs = keras.Input(shape=(spec.inputs.length, spec.inputs.feature_dim))
    flat = keras.layers.Flatten()(inputs)
    out = keras.layers.Dense(spec.outputs.horizon * spec.outputs.targets)(flat) * np.float32("nan")
    return keras.Model(inputs, keras.layers.Reshape((spec.outputs.horizon, spec.outputs.targets))(out))


def test_nan_loss_fails_the_run_and_the_grid_goes_on(tmp_path, mlflow_store, capsys):
    argv = ["bench", "--task", "sine", "--models", "always_nan,lstm", "--seeds", "0", "--epochs", "1",
            "--results-dir", str(tmp_path), *TINY[:6]]  # always_nan takes no model.units
    assert main(argv) == 1  # a failed run makes the command fail, after the rest of the grid ran
    runs = {r["tags"]["model"]: r for r in tracking.Tracker("sine", mlflow_store).child_runs()}
    assert runs["always_nan"]["status"] == "FAILED"
    assert "loss became nan" in runs["always_nan"]["tags"]["failure_reason"]
    assert runs["lstm"]["status"] == "FINISHED"
    readme = (tmp_path / "sine" / "README.md").read_text()
    assert "Failed or interrupted runs" in readme and "always_nan" in readme


@pytest.mark.multiprocess
def test_two_bench_processes_share_one_sqlite_store(tmp_path, mlflow_store):
    command = lambda seed: [sys.executable, "-m", "rnnbench.cli", "bench", "--task", "sine", "--models", "gru",
                            "--seeds", seed, "--epochs", "1", "--results-dir", str(tmp_path / seed), *TINY]
    first, second = (subprocess.Popen(command(s), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                     for s in ("0", "1"))
    outputs = [p.communicate(timeout=600)[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    runs = tracking.Tracker("sine", mlflow_store).child_runs()
    models = sorted(r["tags"]["seed"] for r in runs if r["tags"]["kind"] == "model" and r["status"] == "FINISHED")
    assert models == ["0", "1"]


def test_results_are_written_atomically(tmp_path, monkeypatch):
    target = tmp_path / "summary.csv"
    target.write_text("old,complete\n")

    def crash(path):
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        report._atomic_write(target, crash)
    assert target.read_text() == "old,complete\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]
