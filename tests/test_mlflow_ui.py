"""What a user browsing the MLflow UI finds in the store, on a tiny store: logged models named per task and model (and
older runs' "model" still loading), the experiment's description, baselines with the parameter keys of model runs,
and an experiment file of a task (here a tiny `sine_short` beside `sine`) in an MLflow experiment of its own, which
`rnnbench report --task <experiment>` finds (also where older rnnbench logged it into its task's)."""
import shutil

import numpy as np
import pytest

from rnnbench import config, tracking
from rnnbench.cli import main
from rnnbench.run_log import NOT_APPLICABLE

TINY = ["task.steps=600", "task.input_len=16", "task.horizon=2", "model.units=4"]
SINE_SHORT = '''"""A short sine series: an experiment file of task sine beside its own (for the tests).

Command:  rnnbench bench --task sine_short
Expected: nothing in particular; the test checks where its runs go.
Hardware: any.
"""

CONFIG = {"task": "sine", "models": ["gru"], "seeds": [0], "model_options": {"units": 4}, "train": {"epochs": 1},
          "task_options": {"steps": 600, "input_len": 16, "horizon": 2, "noise": 0.2}}
'''


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store holding one tiny bench of sine (gru, seed 0) and one of sine_short logged the way rnnbench did before
    experiment files had MLflow experiments of their own (into rnnbench-sine)."""
    folder = tmp_path_factory.mktemp("ui")
    experiments = folder / "experiments"
    experiments.mkdir()
    shutil.copy(config.experiments_dir() / "sine.py", experiments)
    (experiments / "sine_short.py").write_text(SINE_SHORT)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("RNNBENCH_CHECKPOINT_DIR", str(folder / "checkpoints"))
        patch.setenv("RNNBENCH_EXPERIMENTS", str(experiments))
        patch.chdir(folder)
        assert main(["bench", "--task", "sine", "--models", "gru", "--seeds", "0", "--epochs", "1",
                     "--set", *TINY]) == 0
        with pytest.MonkeyPatch.context() as earlier:  # second: the description stays the one sine's bench wrote
            task_tracker = tracking.Tracker
            earlier.setattr(tracking, "Tracker", lambda name, uri=None: task_tracker("sine", uri))
            assert main(["bench", "--task", "sine_short"]) == 0
        yield folder, uri


def _runs(uri, experiment="sine", kind=None):
    runs = tracking.Tracker(experiment, uri).child_runs()
    return [r for r in runs if kind is None or r["tags"]["kind"] == kind]


def _of(runs, experiment):
    return [r for r in runs if r["tags"]["experiment"] == experiment]


def test_logged_models_are_named_per_task_and_model_and_load(store):
    folder, uri = store
    [run] = _of(_runs(uri, kind="model"), "sine")
    assert run["tags"][tracking.MODEL_NAME_TAG] == "sine-gru" == tracking.logged_model_name("sine", "gru")
    tracker = tracking.Tracker("sine", uri)
    logged = tracker.client.search_logged_models(experiment_ids=[tracker.experiment_id])
    assert {m.name for m in logged} == {"sine-gru"} and {m.source_run_id for m in logged} >= {run["run_id"]}
    assert tracking.load_model(run["run_id"], uri).output_shape == (None, 2, 1)


def test_a_run_logged_before_models_had_names_still_loads(store):
    folder, uri = store
    [run] = _of(_runs(uri, kind="model"), "sine")
    model = tracking.load_model(run["run_id"], uri)
    tracker = tracking.Tracker("sine", uri)
    old = tracker.start_run("old-gru-seed0", {"rnnbench_role": "other"})
    x = np.zeros((2, *model.input_shape[1:]), dtype=np.float32)
    tracker.log_keras_model(old, model, x, model.predict_on_batch(x), requirements=[])  # MLflow's name: "model"
    tracker.client.delete_tag(old, tracking.MODEL_NAME_TAG)  # as logged before the tag existed
    tracker.end_run(old)
    np.testing.assert_allclose(tracking.load_model(old, uri).predict_on_batch(x), model.predict_on_batch(x))


def test_the_experiment_describes_task_runs_and_headline_metric(store):
    folder, uri = store
    tracker = tracking.Tracker("sine", uri)
    text = tracker.client.get_experiment(tracker.experiment_id).tags[tracking.DESCRIPTION_TAG]
    assert text.startswith("rnnbench experiment sine (task sine): Noisy sine forecasting")
    for part in ("Headline metric: `test_rmse`** (lower is better)", "parent run", "`<model>-seed<N>`",
                 "`baseline-persistence`", "`sine-<model>`", "*Columns* → *Metrics* → `test_rmse`",
                 "rnnbench report --task sine"):
        assert part in text, part
    tracker.client.set_experiment_tag(tracker.experiment_id, tracking.DESCRIPTION_TAG, "my own notes")
    tracker.describe("rnnbench's text")
    assert tracker.client.get_experiment(tracker.experiment_id).tags[tracking.DESCRIPTION_TAG] == "my own notes"


def test_a_deleted_description_comes_back(tmp_path):
    tracker = tracking.Tracker("sine", f"sqlite:///{tmp_path / 'mlflow.db'}")
    tracker.describe("first")
    tracker.client.delete_experiment_tag(tracker.experiment_id, tracking.DESCRIPTION_TAG)
    tracker.describe("second")
    assert tracker.client.get_experiment(tracker.experiment_id).tags[tracking.DESCRIPTION_TAG] == "second"


def test_baselines_carry_the_parameter_keys_of_model_runs(store):
    folder, uri = store
    runs = _of(_runs(uri), "sine")
    [model] = [r for r in runs if r["tags"]["kind"] == "model"]
    baselines = [r for r in runs if r["tags"]["kind"] == "baseline"]
    assert sorted(r["tags"]["model"] for r in baselines) == ["drift", "linear_ar", "persistence"]
    for baseline in baselines:
        params = baseline["params"]
        assert set(params) == set(model["params"])
        assert params["model"] == baseline["tags"]["model"] and params["seed"] == NOT_APPLICABLE
        not_applicable = [k for k in params if k.startswith(("model_options.", "train.")) or k in ("xla", "op_determinism")]
        assert not_applicable and all(params[k] == NOT_APPLICABLE for k in not_applicable)
        shared = [k for k in params if k.startswith(("task_options.", "dataset.", "env.")) or k in ("task", "protocol")]
        assert shared and all(params[k] == model["params"][k] for k in shared)


def test_report_finds_an_experiment_file_by_name_and_keeps_the_tasks_own(store, capsys):
    folder, uri = store
    reports = folder / "reports"
    assert main(["report", "--task", "sine_short", "--results-dir", str(reports)]) == 0
    readme = (reports / "sine_short" / "README.md").read_text()
    [short] = _of(_runs(uri, kind="model"), "sine_short")
    assert f"configuration `{short['tags']['config_hash']}`" in readme
    assert "Generated by `rnnbench report --task sine_short`" in readme
    assert main(["report", "--experiment", "sine_short", "--results-dir", str(folder / "again")]) == 0
    assert (folder / "again" / "sine_short" / "summary.csv").is_file()
    # Its task's own report is still the task's bench, although the later sine_short bench shares rnnbench-sine.
    assert main(["report", "--task", "sine", "--results-dir", str(reports)]) == 0
    [own] = _of(_runs(uri, kind="model"), "sine")
    assert f"configuration `{own['tags']['config_hash']}`" in (reports / "sine" / "README.md").read_text()
    capsys.readouterr()
    assert main(["report", "--task", "stock", "--experiment", "sine_short"]) == 2
    assert "experiment 'sine_short' is for task 'sine', not 'stock'" in capsys.readouterr().err


def test_speech_digits_has_an_mlflow_experiment_of_its_own(tmp_path, monkeypatch):
    monkeypatch.delenv("RNNBENCH_EXPERIMENTS", raising=False)  # the project's experiments, not the fixture's
    resolved = config.resolve(experiment="speech_digits")
    assert resolved["task"] == "speech" and resolved["experiment"] == "speech_digits"
    tracker = tracking.Tracker(resolved["experiment"], f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert tracker.client.get_experiment(tracker.experiment_id).name == "rnnbench-speech_digits"
    assert tracking.experiment_name(config.resolve(task="speech")["experiment"]) == "rnnbench-speech"


def test_an_experiment_file_benches_into_its_own_mlflow_experiment(store):
    folder, uri = store
    assert main(["bench", "--task", "sine_short"]) == 0  # the store's environment and folder are the fixture's
    runs = _runs(uri, "sine_short", kind="model")
    assert len(runs) == 1 and runs[0]["tags"]["experiment"] == "sine_short"
    assert (folder / "reports" / "sine_short" / "README.md").is_file()
