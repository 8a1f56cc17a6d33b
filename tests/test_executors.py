"""Grids on Ray workers (`--executor ray`): the same numbers as the serial executor, one MLflow experiment with the
same parent/child structure, a killed worker's run marked KILLED and resumed by the next command, a shared
`mlflow server` store; and one run trained data-parallel on two logical CPU devices.

Ray starts a local instance here (loopback only); each test that needs one starts its own, so they stay independent.
The grids are as small as what they show allows: process and Ray start-up, not training, is most of their time.
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rnnbench import executors, tracking
from rnnbench.cli import main
from rnnbench.errors import UserError

ray = pytest.importorskip("ray")

TINY = ["task.steps=600", "task.input_len=16", "task.horizon=2", "model.units=4", "train.batch_size=32"]
ROOT = Path(__file__).resolve().parents[1]


def _argv(results, *extra, models="lstm,gru", seeds="0,1", epochs=1):
    return (["bench", "--task", "sine", "--models", models, "--seeds", seeds, "--epochs", str(epochs),
             "--results-dir", str(results)] + [a for s in TINY for a in ("--set", s)] + list(extra))


def _cli(argv, env, timeout=600):
    return subprocess.run([sys.executable, "-m", "rnnbench.cli", *argv], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def _env(tmp_path, uri, **extra):
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "RNNBENCH_CHECKPOINT_DIR": str(tmp_path / "checkpoints"), **extra}
    env.pop("RAY_ADDRESS", None)  # a local Ray, whatever the caller's shell points at
    return env


def _model_metrics(uri):
    runs = [r for r in tracking.Tracker("sine", uri).child_runs() if r["tags"]["kind"] == "model"]
    return {(r["tags"]["model"], r["tags"]["seed"]): r for r in runs}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_mlflow_server(folder: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{folder / 'server.db'}", "--artifacts-destination",
         str(folder / "artifacts")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder)
    return server, f"http://127.0.0.1:{port}"


def _wait_until_serving(server: subprocess.Popen, uri: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2).read()
            return
        except OSError:
            assert time.monotonic() < deadline and server.poll() is None, "mlflow server did not start"
            time.sleep(1.0)


@pytest.mark.multiprocess
def test_ray_workers_log_into_a_shared_mlflow_server_the_numbers_the_serial_grid_logs(tmp_path, monkeypatch):
    """One grid serially into SQLite (in this process), the same grid on two Ray workers into an `mlflow server` on
    127.0.0.1, the cluster setup of the README: the same runs, metrics, parent/child structure, and artifacts."""
    server, ray_uri = _start_mlflow_server(tmp_path)  # it starts while the serial grid trains
    try:
        serial_uri = f"sqlite:///{tmp_path / 'serial.db'}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", serial_uri)
        monkeypatch.setenv("RNNBENCH_CHECKPOINT_DIR", str(tmp_path / "serial-checkpoints"))
        assert main(_argv(tmp_path / "serial", seeds="0")) == 0
        _wait_until_serving(server, ray_uri)
        parallel = _cli(_argv(tmp_path / "ray", "--executor", "ray", "--workers", "2", seeds="0"),
                        _env(tmp_path / "r", ray_uri))
        assert parallel.returncode == 0, parallel.stderr[-3000:] + parallel.stdout[-3000:]
        out = parallel.stdout
        assert "executor ray: 2 workers on a local Ray" in out and "1 thread(s) per run" in out
        assert sum(" finished in " in line for line in out.splitlines()) == 2  # one progress line per finished run
        assert "2 runs finished, 0 skipped" in out

        expected, got = _model_metrics(serial_uri), _model_metrics(ray_uri)
        assert sorted(got) == sorted(expected) == [("gru", "0"), ("lstm", "0")]
        for key, run in got.items():
            assert run["status"] == "FINISHED"
            for metric in ("test_rmse", "test_loss", "val_loss", "params"):
                assert run["metrics"][metric] == pytest.approx(expected[key]["metrics"][metric], rel=1e-5,
                                                               abs=1e-7), (key, metric)
            artifacts = {a.path for a in tracking.Tracker("sine", ray_uri).client.list_artifacts(run["run_id"])}
            assert "config.json" in artifacts, "the worker's artifacts did not reach the server"
        tracker = tracking.Tracker("sine", ray_uri)
        parent = tracker.latest_parent()
        children = tracker.child_runs()
        assert {r["tags"]["kind"] for r in children} == {"model", "baseline"}
        assert all(r["tags"]["mlflow.parentRunId"] == parent.info.run_id for r in children)
        assert len({r["tags"][tracking.OWNER_TAG] for r in children if r["tags"]["kind"] == "model"}) >= 2
        assert (tmp_path / "ray" / "sine" / "README.md").read_text().count("| lstm |") == 1
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_bad_executor_options_are_refused_before_anything_runs():
    with pytest.raises(UserError, match="--workers 3 needs --executor ray"):
        executors.make_executor("serial", 3)
    with pytest.raises(UserError, match="--workers must be >= 1"):
        executors.make_executor("ray", 0)
    with pytest.raises(UserError, match="unknown executor 'dask'"):
        executors.make_executor("dask")


def test_joining_a_cluster_that_is_not_there_says_how_to_fix_it(tmp_path, mlflow_store, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{_free_port()}")
    done = _cli(_argv(tmp_path / "results", "--executor", "ray", models="gru", seeds="0"),
                {**os.environ}, timeout=300)
    assert done.returncode != 0
    assert "cannot join the Ray cluster at RAY_ADDRESS=127.0.0.1:" in done.stderr
    assert "ray start --head" in done.stderr


TWO_DEVICES = r"""
import json, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from rnnbench import config as configuration, runner

losses = {}
for devices in (1, 2):
    config = configuration.resolve(task="sine", sets=%(sets)r + [f"train.devices={devices}", "train.batch_size=16",
                                                                  "train.jit_compile=false"])
    spec = runner.load_task(config)
    keras.utils.set_random_seed(0)
    model = runner.build_model(spec, "lstm", config)
    x = np.random.default_rng(0).normal(size=(64, 16, 1)).astype("float32")
    y = np.random.default_rng(1).normal(size=(64, 2, 1)).astype("float32")
    history = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    losses[devices] = [float(v) for v in history.history["loss"]]
    losses[f"replicas{devices}"] = model.distribute_strategy.num_replicas_in_sync
print(json.dumps(losses))
"""


def test_one_run_on_two_logical_cpu_devices_trains_like_one_device():
    script = TWO_DEVICES % {"sets": TINY}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    losses = json.loads(done.stdout.strip().splitlines()[-1])
    assert (losses["replicas1"], losses["replicas2"]) == (1, 2)
    assert losses["1"] == pytest.approx(losses["2"], rel=1e-4)
    assert losses["1"][1] < losses["1"][0]


def test_more_devices_than_visible_is_a_user_error():
    from rnnbench import compute
    with pytest.raises(UserError, match="train.devices=64, but only"):
        compute.devices(64)


def test_the_progress_sent_to_ray_workers_pickles_after_a_library_replaced_print(monkeypatch):
    """Ray's tqdm_ray replaces builtins.print in the driver when a worker draws a bar; the next task must still ship."""
    import builtins
    import pickle

    from rnnbench.callbacks import Progress

    real_print = builtins.print
    progress = Progress(runs=2, epochs=3, echo=real_print)
    lines = []
    monkeypatch.setattr(builtins, "print", lambda *args, **kwargs: lines.append(" ".join(map(str, args))))
    with pytest.raises(pickle.PicklingError):
        pickle.dumps(real_print)  # what failed before: the real print, pickled by a name that now means another
    copy = pickle.loads(pickle.dumps(progress))
    copy.skip(1, "lstm", 0)
    assert lines == ["[1/2] lstm seed=0: already finished in the store, skipped"]  # the receiving process's print
    custom = pickle.loads(pickle.dumps(Progress(runs=1, epochs=1, echo=_free_port)))
    assert custom.echo is _free_port  # any other echo travels as itself
