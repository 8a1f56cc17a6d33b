"""Registry, configuration validation and the CLI's answers to user errors (exit 2, one line, no traceback)."""
import pytest

from rnnbench import config, registry, tracking
from rnnbench.cli import main
from rnnbench.errors import UserError


def test_registry_lists_and_refuses_unknown_names():
    assert {"sine"} <= set(registry.list_tasks())
    assert {"simple_rnn", "lstm", "gru", "bi_lstm", "lstm_attention", "gru_attention"} <= set(registry.list_models())
    with pytest.raises(UserError, match="known models: .*lstm"):
        registry.get_model("lstn")
    with pytest.raises(UserError, match="known tasks: .*sine"):
        registry.get_task("sinus")


def test_resolve_applies_experiment_smoke_and_flags():
    resolved = config.resolve(task="sine", smoke=True, models="lstm", seeds="3,4", epochs=2,
                              sets=["task.noise=0.2", "model.units=8", "train.learning_rate=0.01"])
    assert resolved["models"] == ["lstm"] and resolved["seeds"] == [3, 4]
    assert resolved["train"]["epochs"] == 2 and resolved["train"]["learning_rate"] == 0.01
    assert resolved["task_options"]["noise"] == 0.2 and resolved["model_options"]["units"] == 8
    assert resolved["smoke"] is True


@pytest.mark.parametrize("sets,message", [
    (["task.nosie=1"], "unknown option task.nosie; valid task options: .*task.noise"),
    (["model.units=abc"], "model.units='abc' is not a valid int"),
    (["train.epochs=-1"], "train.epochs must be >= 1"),
    (["train.speed=3"], "unknown option train.speed; valid train options: .*train.epochs"),
    (["foo=1"], "unknown setting 'foo'"),
    (["novalue"], "--set expects key=value"),
    (["task.periods=1,x"], "not a valid float"),
])
def test_bad_settings_are_refused_with_the_valid_choices(sets, message):
    with pytest.raises(UserError, match=message):
        config.resolve(task="sine", sets=sets)


def test_empty_model_list_and_bad_seeds_are_refused():
    with pytest.raises(UserError, match="models must not be empty"):
        config.resolve(task="sine", models="")
    with pytest.raises(UserError, match="seeds must be >= 0"):
        config.resolve(task="sine", seeds="-1")


def test_config_hash_ignores_models_and_seeds_but_not_options():
    a = config.resolve(task="sine", models="lstm", seeds="0")
    b = config.resolve(task="sine", models="gru", seeds="1,2")
    c = config.resolve(task="sine", models="lstm", seeds="0", sets=["task.noise=0.3"])
    assert config.config_hash(a) == config.config_hash(b) != config.config_hash(c)
    assert config.run_key(a, "lstm", 0) != config.run_key(a, "lstm", 1)


@pytest.mark.parametrize("argv,message", [
    (["bench", "--task", "nope"], "unknown task 'nope'; known tasks:"),
    (["bench", "--task", "sine", "--models", "lstm,mamba"], "unknown model 'mamba'; known models:"),
    (["bench", "--task", "sine", "--epochs", "-2"], "train.epochs must be >= 1"),
    (["bench", "--task", "sine", "--set", "task.noise=loud"], "not a valid float"),
    (["bench", "--task", "sine", "--models", ","], "models must not be empty"),
])
def test_cli_user_errors_exit_2_without_traceback(argv, message, capsys, mlflow_store):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_cli_list_shows_tasks_models_and_experiments(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "sine" in out and "lstm_attention" in out and "experiments:" in out


def test_unreachable_tracking_server_fails_before_training(monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # the discard port: nothing listens
    assert main(["bench", "--task", "sine", "--smoke"]) == 2
    assert "unreachable" in capsys.readouterr().err


def test_a_new_protocol_gives_new_run_keys(monkeypatch):
    resolved = config.resolve(task="sine")
    before = config.run_key(resolved, "lstm", 0)
    monkeypatch.setattr(config, "PROTOCOL", config.PROTOCOL + 1)
    assert config.run_key(resolved, "lstm", 0) != before


def test_options_added_later_change_the_hash_only_when_set():
    plain = config.resolve(task="sine")
    assert config.config_hash(plain) == config.config_hash(config.resolve(task="sine", sets=["train.mixed_precision=false"]))
    assert config.config_hash(plain) != config.config_hash(config.resolve(task="sine", sets=["train.mixed_precision=true"]))


def test_several_pairs_after_one_set_and_the_command_they_reproduce():
    from rnnbench.cli import _parser

    args = _parser().parse_args(["bench", "--task", "sine", "--set", "task.noise=0.2", "model.units=8",
                                 "--set", "train.epochs=3"])
    pairs = [pair for group in args.sets for pair in group]
    resolved = config.resolve(task="sine", sets=pairs)
    assert resolved["task_options"]["noise"] == 0.2 and resolved["model_options"]["units"] == 8
    assert resolved["train"]["epochs"] == 3 and resolved["overridden"]
    assert resolved["command"] == ("rnnbench bench --task sine --set task.noise=0.2 --set model.units=8 "
                                   "--set train.epochs=3")
    plain = config.resolve(task="sine")
    assert plain["command"] == "make bench TASK=sine" and not plain["overridden"]
    assert config.config_hash(plain) == config.config_hash(config.resolve(experiment="sine"))


def test_reference_reports_only_for_the_experiment_as_stated(capsys, mlflow_store):
    assert main(["bench", "--task", "sine", "--reference", "--set", "task.noise=0.2"]) == 2
    assert "--reference regenerates the committed report" in capsys.readouterr().err
    assert main(["bench", "--task", "sine", "--reference", "--smoke"]) == 2


def test_a_users_grid_writes_its_report_outside_results(tmp_path, monkeypatch, mlflow_store, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["bench", "--task", "sine", "--models", "gru", "--seeds", "0", "--epochs", "1", "--set", "task.steps=600",
            "task.input_len=16", "task.horizon=2", "model.units=4"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "reports" / "sine" / "README.md").is_file() and not (tmp_path / "results").exists()
    assert "[1/1] gru seed=0 finished in" in out and "test_rmse=" in out
    parents = tracking.Tracker("sine", mlflow_store).client.search_runs(
        [tracking.Tracker("sine", mlflow_store).experiment_id], "tags.rnnbench_role = 'parent'")
    assert main(argv) == 0  # everything finished: no new, empty parent run
    assert "already finished" in capsys.readouterr().out
    tracker = tracking.Tracker("sine", mlflow_store)
    assert len(tracker.client.search_runs([tracker.experiment_id], "tags.rnnbench_role = 'parent'")) == len(parents)


def test_data_files_enter_the_hash_by_content_not_location(tmp_path):
    from tiny_data import random_walk, write_prices

    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    here, there = write_prices(first, random_walk(300)), write_prices(second, random_walk(300))
    hash_of = lambda path: config.config_hash(config.resolve(task="stock", sets=[f"task.data_file={path}"]))  # noqa
    assert hash_of(here) == hash_of(there)
    write_prices(second, random_walk(300, seed=1))
    assert hash_of(here) != hash_of(there)
    assert config.content_fingerprint(first) == config.content_fingerprint(first)
    assert config.content_fingerprint(tmp_path / "nowhere").startswith("missing:")
