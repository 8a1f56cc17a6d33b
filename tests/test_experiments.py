"""Contract over every experiment file: it resolves (full and smoke), states what the guide asks, and its smoke runs.

An experiment whose data is not on this machine skips with the task's own message naming what is missing.
"""
import pytest

from rnnbench import config, options, registry, runner, tracking
from rnnbench.errors import DataError

EXPERIMENTS = sorted(config.list_experiments())
# Experiments whose smoke would run the very code path of another's, differing only in option values that unit tests
# cover (pooling: tests/test_pooling.py; task.state=zero is char_lm's default): their smoke is not run again, which
# keeps `make test` within its time. Every other experiment's smoke runs.
SMOKE_SAME_PATH_AS = {"imdb_top": "imdb", "char_lm_tbptt_zero": "char_lm"}


def test_there_are_experiments():
    assert {"sine", "stock", "char_lm", "imdb", "speech"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_resolves_and_states_command_expectation_and_hardware(name):
    full, smoke, doc = config.load_experiment(name)
    for heading in ("Command:", "Expected:", "Hardware:"):
        assert heading in doc, f"experiments/{name}.py's docstring has no {heading!r} line"
    resolved = config.resolve(experiment=name)
    assert resolved["task"] == full["task"] and resolved["models"]
    small = config.resolve(experiment=name, smoke=True)
    assert small["smoke"] and small["models"]
    assert config.config_hash(small) != config.config_hash(resolved)


@pytest.mark.parametrize("name", sorted(SMOKE_SAME_PATH_AS))
def test_an_experiment_whose_smoke_is_not_run_shares_its_task_with_one_whose_smoke_is(name):
    covering = SMOKE_SAME_PATH_AS[name]
    assert covering not in SMOKE_SAME_PATH_AS
    assert config.resolve(experiment=name, smoke=True)["task"] == config.resolve(experiment=covering, smoke=True)["task"]


@pytest.mark.parametrize("name", [name for name in EXPERIMENTS if name not in SMOKE_SAME_PATH_AS])
def test_experiment_smoke_configuration_runs(name, tmp_path, monkeypatch):
    """The smoke grid of the experiment, for its first model and seed, through the runner into a scratch store."""
    monkeypatch.setenv("RNNBENCH_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    resolved = config.resolve(experiment=name, smoke=True)
    resolved = {**resolved, "models": resolved["models"][:1], "seeds": resolved["seeds"][:1]}
    declared = registry.get_task_entry(resolved["task"]).options
    unset = [key for key in options.path_options(declared) if key in resolved["task_options"]
             and resolved["task_options"][key] is None]
    if unset:  # the experiment finds its files under RNNBENCH_DATA_DIR (config.data_path)
        pytest.skip(f"experiment {name}: task.{unset[0]} comes from RNNBENCH_DATA_DIR, which is not set")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    try:
        outcome = runner.bench(resolved, results_dir=tmp_path / "results", tracking_uri=uri, echo=lambda line: None)
    except DataError as missing:  # raised by the task's loader before any run starts
        pytest.skip(f"experiment {name}: its data is not on this machine: {missing}")
    assert outcome["finished"] == 1 and outcome["failed"] == 0, outcome
    runs = [r for r in tracking.Tracker(resolved["experiment"], uri).child_runs() if r["tags"]["kind"] == "model"]
    assert len(runs) == 1 and runs[0]["status"] == "FINISHED"
    primary = runs[0]["tags"]["primary_metric"]
    assert f"test_{primary}" in runs[0]["metrics"], sorted(runs[0]["metrics"])
