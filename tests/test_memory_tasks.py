"""The long-range memory probes (adding, copy), the experiment sweep over their delay T, and the sweep's report.

Data: shapes, determinism, splits that share no sequence, the layout and targets of both problems, baselines whose
numbers are known in closed form. Sweep: the grids it expands into (no training). Report: written from a tiny store
of logged runs, through `rnnbench report`.
"""
import hashlib
import math

import keras
import numpy as np
import pandas as pd
import pytest

from rnnbench import config, tracking
from rnnbench.cli import main
from rnnbench.errors import UserError
from rnnbench.tasks import adding, copy as copy_task

SMALL = {"train_size": 120, "val_size": 40, "test_size": 40}


def _rows(dataset) -> list[bytes]:
    return [hashlib.sha256(row.tobytes()).digest() for x, _ in dataset.as_numpy_iterator() for row in x]


class _Predictor:
    """A stand-in for a Keras model: `predict` applies `fn` to the inputs."""

    def __init__(self, fn):
        self.fn, self.name = fn, "stand_in"

    def predict(self, x, **kwargs):
        return self.fn(np.asarray(x))


# -- adding --------------------------------------------------------------------------------------------------------


def test_adding_shapes_markers_and_targets():
    x, y = adding.make_sequences(np.random.default_rng(3), 500, 15)
    assert x.shape == (500, 15, 2) and x.dtype == np.float32 and y.shape == (500, 1, 1) and y.dtype == np.float32
    values, markers = x[..., 0], x[..., 1]
    assert values.min() >= 0 and values.max() < 1 and set(np.unique(markers)) == {0.0, 1.0}
    assert np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, :7].sum(axis=1) == 1) and np.all(markers[:, 7:].sum(axis=1) == 1)  # T // 2 = 7
    np.testing.assert_array_equal(y[:, 0, 0], (values * markers).sum(axis=1, dtype=np.float32))


def test_adding_spec_matches_its_batches_and_is_deterministic():
    spec = adding.load(batch_size=16, length=12, **SMALL)
    x, y = spec.example_batch()
    assert x.shape == (16, 12, 2) and y.shape == (16, 1, 1) and x.dtype == np.float32
    assert spec.inputs.feature_dim == 2 and spec.outputs.head == "forecast" and spec.primary_metric == "mse"
    assert spec.dataset["train_sequences"] == 120 and spec.dataset["test_sequences"] == 40
    again = adding.load(batch_size=16, length=12, **SMALL)
    other = adding.load(batch_size=16, length=12, seed=1, **SMALL)
    assert spec.dataset["sha256"] == again.dataset["sha256"] != other.dataset["sha256"]
    np.testing.assert_array_equal(x, again.example_batch()[0])
    assert not np.array_equal(x, other.example_batch()[0])


def test_adding_baselines_and_evaluate():
    spec = adding.load(batch_size=500, length=20, train_size=200, val_size=20, test_size=3000)
    one = spec.baselines["predict_one"]
    assert abs(one["mse"] - 1 / 6) < 0.01 and one["mse_over_baseline"] == 1.0 and one["solved"] == 0.0
    assert set(spec.baselines["mean"]) == {"loss", "mse", "mse_over_baseline", "solved"}
    exact = spec.evaluate(_Predictor(lambda x: (x[..., 0] * x[..., 1]).sum(axis=1).reshape(-1, 1, 1)))
    assert exact["mse"] < 1e-10 and exact["solved"] == 1.0
    constant = spec.evaluate(_Predictor(lambda x: np.ones((len(x), 1, 1), np.float32)))
    assert constant["mse"] == pytest.approx(one["mse"]) and constant["mse_over_baseline"] == pytest.approx(1.0)
    # Many more sequences than any one test split: the expectation itself, 1/6.
    _, y = adding.make_sequences(np.random.default_rng(0), 4000, 30)
    assert abs(float(np.mean((y - 1.0) ** 2)) - 1 / 6) < 0.01


# -- copy ----------------------------------------------------------------------------------------------------------


def test_copy_layout_and_targets():
    length = 7
    x, y = copy_task.make_sequences(np.random.default_rng(5), 300, length)
    assert x.shape == y.shape == (300, length + 20) and x.dtype == y.dtype == np.int32
    assert x[:, :10].min() >= 1 and x[:, :10].max() <= 8
    assert np.all(x[:, 10:length + 9] == 0) and np.all(x[:, length + 9] == 9) and np.all(x[:, length + 10:] == 0)
    assert np.all(y[:, :length + 10] == 0)
    np.testing.assert_array_equal(y[:, length + 10:], x[:, :10])


def test_copy_spec_matches_its_batches_and_is_deterministic():
    spec = copy_task.load(batch_size=16, length=5, **SMALL)
    x, y = spec.example_batch()
    assert x.shape == y.shape == (16, 25) and np.issubdtype(x.dtype, np.integer)
    assert spec.inputs.kind == "tokens" and spec.inputs.vocab_size == 10 and not spec.inputs.masked
    assert spec.outputs.head == "causal_steps" and spec.outputs.num_classes == 9 and y.max() < 9
    again, other = copy_task.load(batch_size=16, length=5, **SMALL), copy_task.load(batch_size=16, length=5, seed=2,
                                                                                   **SMALL)
    assert spec.dataset["sha256"] == again.dataset["sha256"] != other.dataset["sha256"]


def _memoryless_logits(x: np.ndarray) -> np.ndarray:
    """Certain of blank up to and including the delimiter (what a model sees by then), uniform over the 8 after."""
    seen = np.cumsum(x == copy_task.DELIMITER, axis=1) > 0
    after = seen & (x != copy_task.DELIMITER)
    logits = np.full(x.shape + (9,), -1e4, np.float32)
    logits[..., 0] = np.where(after, -1e4, 0.0)
    logits[..., 1:] = np.where(after, 0.0, -1e4)[..., None]
    return logits


def test_copy_memoryless_baseline_is_the_cross_entropy_of_that_predictor():
    length = 16
    spec = copy_task.load(batch_size=500, length=length, train_size=100, val_size=20, test_size=2000)
    baseline = spec.baselines["memoryless"]
    assert baseline["loss"] == pytest.approx(10 * math.log(8) / (length + 20)) and baseline["recall_accuracy"] == 1 / 8
    x, y = copy_task.make_sequences(np.random.default_rng(1), 1000, length)
    computed = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, _memoryless_logits(x)))
    assert computed == pytest.approx(baseline["loss"], rel=1e-5)
    metrics = spec.evaluate(_Predictor(_memoryless_logits))
    assert metrics["loss_over_memoryless"] == pytest.approx(1.0, rel=1e-5) and metrics["solved"] == 0.0
    assert abs(metrics["recall_accuracy"] - 1 / 8) < 0.01  # ties go to symbol 1: right one time in eight
    assert metrics["accuracy"] == pytest.approx(baseline["accuracy"], abs=0.01)

    def perfect(x):
        target = np.zeros_like(x)
        target[:, length + 10:] = x[:, :10]
        return keras.ops.convert_to_numpy(keras.ops.one_hot(target, 9)) * 20.0

    exact = spec.evaluate(_Predictor(perfect))
    assert exact["recall_accuracy"] == exact["accuracy"] == exact["solved"] == 1.0 and exact["loss"] < 1e-6


# -- both ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [adding, copy_task], ids=["adding", "copy"])
def test_no_sequence_is_shared_between_splits(module):
    spec = module.load(batch_size=64, length=6, train_size=300, val_size=100, test_size=100)
    rows = {name: _rows(getattr(spec, name)) for name in ("train", "val", "test")}
    assert [len(rows[n]) for n in rows] == [300, 100, 100]
    assert len(set().union(*map(set, rows.values()))) == 500


def test_repeated_draws_are_redrawn_deterministically():
    def draw(rng, count):  # only 30 distinct sequences: repeats are certain
        x = rng.integers(0, 30, size=(count, 1)).astype(np.int32)
        return x, x

    splits, repeats = adding.distinct_splits(draw, {"train": 15, "val": 5, "test": 5}, seed=4)
    seen = np.concatenate([splits[n][0][:, 0] for n in adding.SPLITS])
    assert repeats > 0 and len(seen) == len(set(seen)) == 25
    again, _ = adding.distinct_splits(draw, {"train": 15, "val": 5, "test": 5}, seed=4)
    assert all(np.array_equal(splits[n][0], again[n][0]) for n in adding.SPLITS)


@pytest.mark.parametrize("load, given, message", [
    (adding.load, {"length": 1}, "task.length must be >= 2"),
    (adding.load, {"train_size": 0}, "task.train_size must be >= 1"),
    (adding.load, {"threshold": 0.2}, "task.threshold=0.2 is not below"),
    (adding.load, {"threshold": 0.0}, "task.threshold must be > 0"),
    (adding.load, {"seed": -1}, "task.seed must be >= 0"),
    (copy_task.load, {"length": 0}, "task.length must be >= 1"),
    (copy_task.load, {"test_size": 0}, "task.test_size must be >= 1"),
    (copy_task.load, {"solved_recall": 0.1}, "task.solved_recall=0.1 is not above chance"),
    (copy_task.load, {"train_size": 8 ** 10}, "ask for at most"),
], ids=lambda value: str(value) if isinstance(value, dict) else None)
def test_bad_options_are_user_errors_naming_the_option(load, given, message):
    with pytest.raises(UserError, match=message):
        load(**given)


# -- the sweep -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, lengths", [("adding", [50, 100, 200, 400, 800]), ("copy", [50, 100, 200, 400])])
def test_sweep_expands_into_one_grid_per_length(name, lengths):
    grids = config.resolve_sweep(experiment=name)
    assert [g["task_options"]["length"] for g in grids] == lengths == [g["sweep"]["task.length"] for g in grids]
    hashes = [config.config_hash(g) for g in grids]
    assert len(set(hashes)) == len(lengths)
    assert all(not g["overridden"] and g["command"] == f"make bench TASK={name} SWEEP=1" for g in grids)
    assert config.config_hash(config.resolve(experiment=name)) == hashes[lengths.index(100)]  # the plain grid is T=100
    smoke = config.resolve_sweep(experiment=name, smoke=True, epochs=1)
    assert [g["task_options"]["length"] for g in smoke] == [10, 20] and all(g["smoke"] for g in smoke)
    assert smoke[0]["command"] == f"rnnbench bench --experiment {name} --smoke --sweep --epochs 1"


def test_sweep_refusals(tmp_path, monkeypatch, capsys):
    with pytest.raises(UserError, match="task.length is what --sweep varies"):
        config.resolve_sweep(experiment="adding", sets=["task.length=30"])
    assert main(["bench", "--task", "sine", "--sweep"]) == 2
    assert "defines no SWEEP" in capsys.readouterr().err
    assert main(["bench", "--task", "adding", "--sweep", "--smoke", "--reference"]) == 2
    assert "--reference regenerates the committed reports" in capsys.readouterr().err
    (tmp_path / "two.py").write_text('"""Two settings."""\nCONFIG = {"task": "adding"}\n'
                                     'SWEEP = {"task.length": [5], "task.seed": [1]}\n')
    (tmp_path / "bad.py").write_text('"""A bad key."""\nCONFIG = {"task": "adding"}\nSWEEP = {"length": [5, 6]}\n')
    monkeypatch.setenv("RNNBENCH_EXPERIMENTS", str(tmp_path))
    with pytest.raises(UserError, match="one setting"):
        config.load_sweep("two")
    with pytest.raises(UserError, match="must be task.<option>"):
        config.load_sweep("bad")


def test_bench_sweep_runs_every_grid_then_the_sweep_report(monkeypatch, tmp_path, capsys):
    from rnnbench import memory_report, runner

    benched, reported = [], []
    monkeypatch.setattr(runner, "bench", lambda cfg, **kw: benched.append(cfg) or {
        "finished": 2, "skipped": 0, "failed": 0, "failed_runs": [], "report_dir": None})
    monkeypatch.setattr(memory_report, "write_sweep_report", lambda task, cfgs, out: reported.append((task, out)))
    assert main(["bench", "--task", "copy", "--sweep", "--smoke", "--results-dir", str(tmp_path)]) == 0
    assert [c["task_options"]["length"] for c in benched] == [10, 20]
    assert reported == [("copy", tmp_path / "copy_smoke")]
    assert "sweep of 2 grids: 4 runs finished" in capsys.readouterr().out


# -- the report ----------------------------------------------------------------------------------------------------


def _log(tracker, grid, model, seed, metrics, kind="model", status="FINISHED", tags=None):
    run_id = tracker.start_run(f"{model}-seed{seed}", {
        "rnnbench_role": "child", "kind": kind, "model": model, "seed": seed, "task": "adding",
        "config_hash": config.config_hash(grid), "run_key": config.run_key(grid, model, seed),
        "primary_metric": "mse", "higher_is_better": False, **(tags or {})})
    tracker.log_metrics(run_id, metrics)
    tracker.end_run(run_id, status)


def test_sweep_report_from_a_tiny_store(mlflow_store, tmp_path):
    grids = config.resolve_sweep(experiment="adding")
    tracker = tracking.Tracker("adding")
    mse = {(50, "lstm"): (0.002, 0.004), (100, "lstm"): (0.02, 0.004), (50, "gru"): (0.15, 0.16),
           (100, "gru"): (0.17, 0.16)}
    for grid in grids[:2]:  # T = 50 and 100 ran; 200, 400, 800 did not
        length = grid["task_options"]["length"]
        _log(tracker, grid, "predict_one", -1, {"test_mse": 0.167, "test_loss": 0.167}, kind="baseline")
        for model in ("lstm", "gru"):
            for seed, value in enumerate(mse[length, model]):
                _log(tracker, grid, model, seed, {"test_mse": value, "test_loss": value, "val_loss": value,
                                                  "params": 12000})
    # At T = 100 a third lstm seed stopped at a NaN loss and a finished gru seed was flagged as diverged.
    _log(tracker, grids[1], "lstm", 2, {}, status="FAILED",
         tags={"failure_reason": "TrainingDiverged: loss became nan at epoch 3, batch 7"})
    _log(tracker, grids[1], "gru", 2, {"test_mse": 0.17, "test_loss": 0.17, "val_loss": 0.17, "params": 12000},
         tags={"diverged": "True", "diverged_reason": "test loss far above the baselines'"})
    out = tmp_path / "reports"
    assert main(["report", "--task", "adding", "--results-dir", str(out)]) == 0
    readme = (out / "adding" / "README.md").read_text()
    assert "mean test mse over seeds below task.threshold (0.01)" in readme
    assert "| lstm | model | 50 | 0.003 ✓ (2/2) | 0.012 (1/2) |" in readme
    assert "| gru | model | none | 0.155 (0/2) | 0.167 (0/3) |" in readme
    assert f"| 100 | `{config.config_hash(grids[1])}` | 5 | 1 | 2 |" in readme  # lstm, gru finished; 1 failed
    assert f"| 50 | `{config.config_hash(grids[0])}` | 4 | 0 | 0 |" in readme
    assert "| predict_one | baseline |  | 0.167 | 0.167 |" in readme
    assert readme.count("not run yet") == 3 and "[length_50/README.md](length_50/README.md)" in readme
    assert (out / "adding" / "loss_vs_length.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "adding" / "length_100" / "README.md").is_file()
    table = pd.read_csv(out / "adding" / "sweep.csv")
    assert sorted(set(table["task.length"])) == [50, 100] and len(table) == 6  # 2 models and 1 baseline per length


def test_sweep_values_picks_some_values_and_refuses_unknown_ones(monkeypatch, tmp_path, capsys):
    from rnnbench import memory_report, runner

    grids = config.resolve_sweep(experiment="adding")
    assert [g["task_options"]["length"] for g in config.sweep_values(grids, "400, 50")] == [50, 400]
    with pytest.raises(UserError, match=r"--values '50,60': 60 not among the task.length values .*50, 100, 200"):
        config.sweep_values(grids, "50,60")
    assert main(["bench", "--task", "adding", "--values", "50"]) == 2
    assert "add --sweep" in capsys.readouterr().err
    benched, reported = [], []
    monkeypatch.setattr(runner, "bench", lambda cfg, **kw: benched.append(cfg) or {
        "finished": 1, "skipped": 0, "failed": 0, "failed_runs": [], "report_dir": None})
    monkeypatch.setattr(memory_report, "write_sweep_report", lambda task, cfgs, out: reported.append(cfgs))
    assert main(["bench", "--task", "adding", "--sweep", "--smoke", "--values", "20",
                 "--results-dir", str(tmp_path)]) == 0
    assert [c["task_options"]["length"] for c in benched] == [20]  # only the value asked for trains
    assert [c["task_options"]["length"] for c in reported[0]] == [10, 20]  # the report still covers the sweep
    assert "sweep of 1 grids: 1 runs finished" in capsys.readouterr().out


def test_a_sweep_run_one_value_per_session_reports_every_committed_value(tmp_path, monkeypatch):
    from rnnbench import memory_report

    grids = config.resolve_sweep(experiment="adding")
    out = tmp_path / "results" / "adding"
    for session, (grid, values) in enumerate(zip(grids, ((0.002, 0.004), (0.02, 0.004)))):
        # Each session on a fresh machine: a new, empty store holding only its own value's runs.
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / f'session{session}.db'}")
        tracker = tracking.Tracker("adding")
        _log(tracker, grid, "predict_one", -1, {"test_mse": 0.167, "test_loss": 0.167}, kind="baseline")
        for seed, value in enumerate(values):
            _log(tracker, grid, "lstm", seed, {"test_mse": value, "test_loss": value, "val_loss": value,
                                               "params": 12000})
        if session == 1:
            _log(tracker, grid, "gru", 0, {"test_mse": 0.17, "test_loss": 0.17, "val_loss": 0.17, "params": 12000},
                 tags={"diverged": "True", "diverged_reason": "test loss far above the baselines'"})
        before = (out / "length_50" / "runs.csv").read_bytes() if session else None
        memory_report.write_sweep_report("adding", grids, out, tracker=tracker, echo=lambda line: None)
    readme = (out / "README.md").read_text()
    assert "| lstm | model | 50 | 0.003 ✓ (2/2) | 0.012 (1/2) |" in readme  # T = 50 from its committed report
    assert f"| 50 | `{config.config_hash(grids[0])}` | 2 | see its report | 0 |" in readme
    assert "(committed; not in this store)" in readme and readme.count("not run yet") == 3
    assert f"| 100 | `{config.config_hash(grids[1])}` | 3 | 0 | 1 |" in readme  # the diverged gru counted
    assert (out / "length_50" / "runs.csv").read_bytes() == before  # a committed value's report is left alone
    assert sorted(set(pd.read_csv(out / "sweep.csv")["task.length"])) == [50, 100]
    # Reports of another configuration (the sweep's settings changed since) are not taken for this one's.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    changed = config.resolve_sweep(experiment="adding", sets=["train.learning_rate=0.002"])
    with pytest.raises(UserError, match="no finished runs of the sweep"):
        memory_report.write_sweep_report("adding", changed, out, tracker=tracking.Tracker("adding"))
