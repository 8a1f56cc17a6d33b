"""A Ray worker killed mid-run: its run is marked KILLED, the grid finishes the others and exits 1, and rerunning the
command with --resume finishes it. A module of its own so that pytest-xdist can run it beside tests/test_executors.py.
"""
import os
import signal
import subprocess
import sys
import time

import pytest

from rnnbench import tracking

ray = pytest.importorskip("ray")

from test_executors import ROOT, _argv, _cli, _env  # noqa: E402  (the same tiny grid and environment)


@pytest.mark.multiprocess
def test_a_killed_worker_leaves_its_run_killed_the_grid_goes_on_and_a_rerun_resumes(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = _env(tmp_path, uri, RNNBENCH_LEASE_SECONDS="600")
    argv = _argv(tmp_path / "results", "--executor", "ray", "--workers", "2", models="lstm", seeds="0,1",
                 epochs=20)
    grid = subprocess.Popen([sys.executable, "-m", "rnnbench.cli", *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    victim, deadline = None, time.monotonic() + 240
    tracker = tracking.Tracker("sine", uri)
    while victim is None and time.monotonic() < deadline and grid.poll() is None:
        time.sleep(0.5)
        try:
            running = [r for r in tracker.child_runs() if r["status"] == "RUNNING" and r["tags"]["kind"] == "model"]
        except Exception:  # the store is being created
            continue
        epochs_logged = [r for r in running if "epoch_seconds" in r["metrics"] or "loss" in r["metrics"]]
        if epochs_logged:
            victim = epochs_logged[0]
    assert victim is not None, grid.communicate()[0][-3000:]
    pid = int(victim["tags"][tracking.OWNER_TAG].split(":")[1])
    os.kill(pid, signal.SIGKILL)
    out, _ = grid.communicate(timeout=600)
    assert grid.returncode == 1, out[-3000:]
    assert "its Ray worker died" in out and "1 failed" in out and "1 runs finished" in out, out[-3000:]
    runs = {r["run_id"]: r for r in tracker.child_runs()}
    assert runs[victim["run_id"]]["status"] == "KILLED"
    assert "Ray worker died" in runs[victim["run_id"]]["tags"]["failure_reason"]
    assert not [r for r in runs.values() if r["status"] == "RUNNING"]

    again = _cli(argv + ["--resume"], env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "1 runs finished, 1 skipped" in again.stdout
    finished = [r for r in tracker.child_runs() if r["status"] == "FINISHED" and r["tags"]["kind"] == "model"]
    assert sorted(r["tags"]["seed"] for r in finished) == ["0", "1"]
