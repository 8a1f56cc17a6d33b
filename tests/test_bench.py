"""End to end: a tiny grid into a temporary MLflow store, its runs, metrics, artifacts and report; resume; determinism."""
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from rnnbench import compute, config, measure, registry, runner, streaming, tracking
from rnnbench.cli import main

TINY = ["task.steps=600", "task.input_len=16", "task.horizon=2", "model.units=4", "train.batch_size=32"]


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    """One tiny grid (2 models x 2 seeds x 1 epoch) into a fresh store, shared by the tests of this module."""
    folder = tmp_path_factory.mktemp("bench")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    results = folder / "results"
    argv = ["bench", "--task", "sine", "--models", "lstm,gru", "--seeds", "0,1", "--epochs", "1",
            "--results-dir", str(results)] + [a for s in TINY for a in ("--set", s)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("RNNBENCH_CHECKPOINT_DIR", str(folder / "checkpoints"))
        assert main(argv) == 0
        yield argv, results, uri


def test_bench_logs_runs_metrics_artifacts_and_report(tiny_bench):
    argv, results, uri = tiny_bench
    tracker = tracking.Tracker("sine", uri)
    runs = tracker.child_runs()
    models = [r for r in runs if r["tags"]["kind"] == "model"]
    baselines = [r for r in runs if r["tags"]["kind"] == "baseline"]
    assert sorted((r["tags"]["model"], r["tags"]["seed"]) for r in models) == [
        ("gru", "0"), ("gru", "1"), ("lstm", "0"), ("lstm", "1")]
    assert sorted(r["tags"]["model"] for r in baselines) == ["drift", "linear_ar", "persistence"]
    assert all(r["status"] == "FINISHED" for r in runs)
    parent = tracker.latest_parent()
    assert all(r["tags"]["task"] == "sine" for r in runs)

    run = models[0]
    for metric in ("test_rmse", "test_mae", "test_rmse_over_noise", "params", "sec_per_epoch",
                   "train_samples_per_sec", "latency_ms_per_batch", "peak_rss_mb", "val_loss", "train_loss"):
        assert np.isfinite(run["metrics"][metric]), metric
    assert tracker.metric_history(run["run_id"], "val_rmse")  # per-epoch validation metric
    params = run["params"]
    for key in ("train.epochs", "task_options.noise", "model_options.units", "env.tensorflow", "env.keras",
                "env.python", "env.device", "env.cpu_count", "env.git_commit", "env.git_dirty", "env.cuda",
                "dataset.sha256", "dataset.train_windows"):
        assert key in params, key
    artifacts = {a.path for a in tracker.client.list_artifacts(run["run_id"])}
    assert {"config.json", "environment.json", "learning_curve.png", "cudnn_report.json", "task"} <= artifacts
    logged = json.loads(tracking.download_artifact(run["run_id"], "config.json", uri).read_text())
    assert logged["models"] == [run["tags"]["model"]] and logged["train"]["epochs"] == 1
    model = tracking.load_model(run["run_id"], uri)  # MLflow 3 keeps logged models beside the run artifacts
    assert model.output_shape == (None, 2, 1)
    assert parent.data.tags["config_hash"] == run["tags"]["config_hash"]

    summary = pd.read_csv(results / "sine" / "summary.csv")
    assert list(summary.columns[:2]) == ["model", "kind"]
    assert {"test_rmse_mean", "test_rmse_std", "test_rmse_ci95", "params", "sec_per_epoch_mean", "runs"} <= set(summary)
    assert set(summary["model"]) == {"lstm", "gru", "persistence", "linear_ar", "drift"}
    assert summary.set_index("model").loc["lstm", "runs"] == 2
    assert set(summary.set_index("model")["kind"]) == {"model", "baseline"}
    readme = (results / "sine" / "README.md").read_text()
    assert "| lstm |" in readme and "## Environment" in readme
    assert "rnnbench bench --task sine --models lstm,gru --seeds 0,1 --epochs 1 --set task.steps=600" in readme
    for plot in ("quality_vs_params.png", "quality_vs_time.png", "learning_curves.png"):
        assert (results / "sine" / plot).stat().st_size > 1000


def test_each_model_is_logged_under_its_task_and_model_name(tiny_bench):
    argv, results, uri = tiny_bench
    tracker = tracking.Tracker("sine", uri)
    runs = [r for r in tracker.child_runs() if r["tags"]["kind"] == "model"]
    assert {(r["tags"]["model"], r["tags"][tracking.MODEL_NAME_TAG]) for r in runs} == {
        ("lstm", "sine-lstm"), ("gru", "sine-gru")}
    logged = tracker.client.search_logged_models(experiment_ids=[tracker.experiment_id])
    assert sorted(m.name for m in logged) == ["sine-gru", "sine-gru", "sine-lstm", "sine-lstm"]
    assert {m.source_run_id for m in logged} == {r["run_id"] for r in runs}


def test_rerun_resumes_without_counting_twice(tiny_bench, capsys):
    argv, results, uri = tiny_bench
    capsys.readouterr()
    assert main(argv) == 0
    assert "4 skipped" in capsys.readouterr().out
    summary = pd.read_csv(results / "sine" / "summary.csv").set_index("model")
    assert summary.loc["lstm", "runs"] == 2 and summary.loc["persistence", "runs"] == 1
    assert main(["report", "--task", "sine", "--results-dir", str(results)]) == 0


def test_a_run_does_not_depend_on_the_runs_before_it(tiny_bench, tmp_path, monkeypatch):
    argv, results, uri = tiny_bench
    alone_uri = f"sqlite:///{tmp_path / 'alone.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", alone_uri)
    alone_argv = [a for a in argv] + ["--results-dir", str(tmp_path / "results")]
    alone_argv[alone_argv.index("--models") + 1] = "gru"  # gru seed 1 was the grid's last run; here it is the only one
    alone_argv[alone_argv.index("--seeds") + 1] = "1"
    assert main(alone_argv) == 0

    def gru_seed1(store):
        run = next(r for r in tracking.Tracker("sine", store).child_runs()
                   if r["tags"].get("model") == "gru" and r["tags"]["seed"] == "1")
        return run["metrics"]

    in_grid, alone = gru_seed1(uri), gru_seed1(alone_uri)
    for metric in ("train_loss", "val_loss", "test_rmse", "test_mae"):
        assert in_grid[metric] == alone[metric], metric


@pytest.mark.parametrize("users_setting", ["sqlite:///elsewhere.db", None])
def test_loading_a_logged_model_leaves_the_users_store_setting_alone(tiny_bench, monkeypatch, users_setting):
    """mlflow.set_tracking_uri writes MLFLOW_TRACKING_URI into os.environ; once it did, every later run in the same
    process (a notebook, a second bench) was logged to the store of the last model loaded."""
    import mlflow

    argv, results, uri = tiny_bench
    run_id = next(r["run_id"] for r in tracking.Tracker("sine", uri).child_runs() if r["tags"]["kind"] == "model")
    if users_setting:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", users_setting)
    else:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.load_model(run_id, uri).output_shape == (None, 2, 1)
    assert os.environ.get("MLFLOW_TRACKING_URI") == users_setting
    assert tracking.tracking_uri() == (users_setting or f"sqlite:///{Path.cwd() / tracking.DEFAULT_DB}")
    if users_setting:
        assert mlflow.get_tracking_uri() == users_setting


def _train_once(seed):
    resolved = config.resolve(task="sine", models="lstm", seeds=str(seed), epochs=2, sets=TINY)
    spec = runner.load_task(resolved)
    compute.set_seed(seed)
    model = runner.build_model(spec, "lstm", resolved)
    model.fit(spec.train, validation_data=spec.val, epochs=2, verbose=0)
    return model.evaluate(spec.test, verbose=0, return_dict=True), [np.array(w) for w in model.weights]


def test_same_seed_same_numbers_other_seed_other_weights():
    metrics_a, weights_a = _train_once(0)
    metrics_b, weights_b = _train_once(0)
    _, weights_c = _train_once(1)
    assert metrics_a == metrics_b
    assert all(np.array_equal(a, b) for a, b in zip(weights_a, weights_b))
    assert not all(np.array_equal(a, c) for a, c in zip(weights_a, weights_c))


@pytest.mark.parametrize("model_name,sets,expected", [
    ("lstm", [], False),  # unmasked LSTM: XLA measured slower on CPU
    ("gru", [], True),
    ("bi_simple_rnn", [], True),
    ("lstm", ["train.jit_compile=true"], True),
    ("gru", ["train.jit_compile=false"], False),
])
def test_jit_policy_per_cell_and_determinism_follow_each_other(model_name, sets, expected):
    from tensorflow.python.framework import config as tf_config

    resolved = config.resolve(task="sine", models=model_name, seeds="0", epochs=1, sets=TINY + sets)
    spec = runner.load_task(resolved)
    model = runner.build_model(spec, model_name, resolved)
    assert bool(model.jit_compile) is expected
    assert tf_config.is_op_determinism_enabled() is (not expected)


def test_jit_policy_uses_xla_for_masked_lstm():
    from rnnbench.spec import InputSpec, OutputSpec, TaskSpec

    def spec(**inputs):
        return TaskSpec(name="t", inputs=InputSpec("features", feature_dim=3, masked=True, **inputs),
                        outputs=OutputSpec("classification", num_classes=2), train=None, val=None, test=None,
                        loss=None)

    fixed, variable = spec(length=20), spec()
    assert compute.recurrent_cells(registry.get_model("bi_lstm")(fixed, units=4)) == {"lstm"}
    assert compute.use_xla(registry.get_model("bi_lstm")(fixed, units=4), fixed)
    assert compute.use_xla(registry.get_model("lstm_attention")(fixed, units=4), fixed)
    # a program per batch shape, never unmapped by TensorFlow's XLA CPU JIT: long grids would run out of maps
    assert not compute.use_xla(registry.get_model("gru")(variable, units=4), variable)


def test_mixed_precision_option_trains_in_float16_with_float32_outputs():
    resolved = config.resolve(task="sine", models="gru", seeds="0", epochs=1, sets=TINY + ["train.mixed_precision=true"])
    spec = runner.load_task(resolved)
    try:
        model = runner.build_model(spec, "gru", resolved)
        assert model.dtype_policy.name == "mixed_float16"
        history = model.fit(spec.train.take(3), epochs=1, verbose=0).history
        assert np.isfinite(history["loss"][0])
        x, _ = spec.example_batch()
        assert model.predict_on_batch(x).dtype == np.float32
    finally:
        import keras

        keras.mixed_precision.set_global_policy("float32")
    plain = runner.build_model(spec, "gru", config.resolve(task="sine", models="gru", seeds="0", sets=TINY))
    assert plain.dtype_policy.name == "float32"  # the next run is not left in mixed precision


def test_a_warning_names_the_fixes_when_memory_maps_run_low(monkeypatch):
    held, limit = measure.memory_maps()
    assert 0 < held < limit or (held, limit) == (0, 0)  # (0, 0) off Linux
    lines = []
    monkeypatch.setattr(measure, "memory_maps", lambda: (50_000, 65_530))
    measure.warn_when_memory_maps_run_low(lines.append)
    assert len(lines) == 1 and "jit_compile=false" in lines[0] and "same command again" in lines[0]
    monkeypatch.setattr(measure, "memory_maps", lambda: (2_000, 65_530))
    measure.warn_when_memory_maps_run_low(lines.append)
    assert len(lines) == 1


def test_the_endless_stream_keeps_the_order_of_a_reshuffled_repetition():
    def data():  # a fresh pipeline each time: a second iterator over one dataset draws the next reshuffling seed
        return tf.data.Dataset.range(10).shuffle(10, seed=3, reshuffle_each_iteration=True).batch(4).prefetch(2)

    expected = [b.numpy().tolist() for b in data().repeat().take(9)]
    assert [b.numpy().tolist() for b in streaming.endless(data()).take(9)] == expected
    assert expected[:3] != expected[3:6]  # each pass has its own order


def test_validating_twice_per_epoch_keeps_epochs_as_passes(tmp_path, monkeypatch, capsys):
    resolved = config.resolve(task="sine", models="gru", seeds="0", epochs=2, sets=TINY)
    spec = runner.load_task(resolved)
    whole, steps, per_pass = streaming.training_stream(spec, 0)
    halves, half_steps, same_pass = streaming.training_stream(spec, 0, validations_per_epoch=2)
    assert (steps, per_pass, same_pass) == (per_pass, same_pass, per_pass) and half_steps == -(-per_pass // 2)
    for (a, _), (b, _) in zip(whole.take(per_pass), halves.take(per_pass)):  # the same batches, only cut differently
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert config.config_hash(resolved) == config.config_hash(
        config.resolve(task="sine", models="gru", seeds="0", epochs=2, sets=TINY + ["train.validations_per_epoch=1"]))

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("RNNBENCH_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    argv = ["bench", "--task", "sine", "--models", "gru", "--seeds", "0", "--epochs", "2", "--results-dir",
            str(tmp_path / "results")] + [a for s in TINY + ["train.validations_per_epoch=2"] for a in ("--set", s)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "epoch 0.5/2" in printed and "epoch 2/2" in printed and "s/1/2 epoch" in printed
    run = next(r for r in tracking.Tracker("sine", uri).child_runs() if r["tags"]["kind"] == "model")
    validations = [v for _, v in tracking.Tracker("sine", uri).metric_history(run["run_id"], "val_loss")]
    assert len(validations) == 4  # 2 epochs x 2 validations
    assert run["metrics"]["epochs_run"] == 2.0 and run["metrics"]["validations_per_epoch"] == 2
    assert run["metrics"]["best_epoch"] == (1 + int(np.argmin(validations))) / 2
    assert run["metrics"]["best_val_loss"] == pytest.approx(min(validations))
    assert run["params"]["train.validations_per_epoch"] == "2"
