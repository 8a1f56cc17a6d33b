"""`rnnbench predict` on a tiny trained run of every task: sane output on new raw input, and bad input refused in one
line (exit status 2). Each task's run is trained once per module, 1 epoch of a 4-unit GRU on tests/tiny_data.py data."""
import ast
import dataclasses
import hashlib
import io
import json
import re

import numpy as np
import pytest

from rnnbench import config, registry, runner, tracking
from rnnbench.cli import main
from rnnbench.tasks.speech import AN4_SYMBOLS
from test_speech import synthetic_rows, write_csv_corpus
from tiny_data import TINY_OPTIONS, WORDS, random_walk, write_mfc, write_prices

TINY_MODEL = {"units": 4}
MODEL_OPTIONS = {"speech": {"subsample": 2}}  # frame stacking inside the model: predict feeds unstacked frames
SHORTER = {"char_lm": {"sample_length": 10}}  # the run's sample.txt: one model call per character


@pytest.fixture(scope="module")
def train(tmp_path_factory):
    """train(task, folder_name, options) -> the run id of a finished tiny run, trained on first request only."""
    root = tmp_path_factory.mktemp("predict")
    runs = {}

    def trained(task: str, name: str | None = None, options: dict | None = None) -> str:
        name = name or task
        if name not in runs:
            folder = root / name
            folder.mkdir()
            # The task's defaults, not its experiment's settings (sized for the real data), plus the tiny data's.
            resolved = config.validate({"task": task, "models": ["gru"], "seeds": [0],
                                        "task_options": {**(options or TINY_OPTIONS[task](folder)),
                                                         **SHORTER.get(task, {})},
                                        "model_options": {**TINY_MODEL, **MODEL_OPTIONS.get(task, {})},
                                        "train": {"epochs": 1}})
            outcome = runner.bench(resolved, tracking_uri=uri, results_dir=root / "results", echo=lambda line: None)
            assert outcome["finished"] == 1, outcome
            [run] = [r for r in tracking.Tracker(task, uri).child_runs() if r["tags"]["kind"] == "model"
                     and r["tags"]["config_hash"] == config.config_hash(resolved)]
            runs[name] = run["run_id"]
        return runs[name]

    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("RNNBENCH_CHECKPOINT_DIR", str(root / "checkpoints"))
        patch.setenv("RNNBENCH_CACHE_DIR", str(root / "cache"))
        yield trained


def predict(capsys, run_id, *inputs):
    """(exit status, printed lines, error lines) of `rnnbench predict --run-id RUN_ID INPUT...`."""
    status = main(["predict", "--run-id", run_id, *map(str, inputs)])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err.splitlines()


def refused(capsys, run_id, *inputs, says: str):
    status, _, err = predict(capsys, run_id, *inputs)
    err = [line for line in err if line.strip() and not line.startswith("Downloading artifacts")]  # MLflow's bar
    assert status == 2 and len(err) == 1 and err[0].startswith("rnnbench: error: ") and says in err[0], err


def numbers(line: str) -> list[float]:
    return [float(v) for v in re.findall(r"[-+]?\d+\.\d+(?:e[-+]?\d+)?", line)]


def test_every_task_can_predict():
    assert all(registry.get_task_entry(name).predict for name in registry.list_tasks())


def test_sine_forecasts_the_next_horizon_values(train, capsys, tmp_path):
    run_id = train("sine")  # input_len 16, horizon 2
    status, out, _ = predict(capsys, run_id, ",".join(f"{np.sin(t / 3):.4f}" for t in range(16)))
    assert status == 0 and out[0].startswith("the next 2 values after the last 16") and len(out) == 3
    assert all(np.isfinite(numbers(line)).all() and len(numbers(line)) == 1 for line in out[1:])
    values = tmp_path / "values.txt"
    values.write_text("\n".join(str(np.sin(t / 3)) for t in range(20)))
    status, file_out, _ = predict(capsys, run_id, values)
    assert status == 0 and "the first 4 given are not read" in file_out[0] and len(file_out) == 3
    refused(capsys, run_id, "0.1,0.2,0.3", says="3 values given, but run")
    refused(capsys, run_id, "0.1,zero", says="'zero' is neither a number nor a file")


def test_stock_forecasts_log_returns_and_prices_from_a_new_csv(train, capsys, tmp_path):
    run_id = train("stock")  # input_len 10, horizon 1
    scaling = json.loads(tracking.download_artifact(run_id, "task/scaling.json").read_text())
    assert scaling["input_len"] == 10 and len(scaling["scale_std"]) == 1 and scaling["scale_std"][0] > 0
    new = write_prices(tmp_path, random_walk(40, seed=9), start="2002-01-01")
    status, out, _ = predict(capsys, run_id, new)
    assert status == 0 and len(out) == 2 and "last day" in out[0] and "the next 1 trading days" in out[0]
    log_return, price = numbers(out[1])
    last = random_walk(40, seed=9)[-1]
    assert np.isfinite(log_return) and price > 0 and price == pytest.approx(last * np.exp(log_return), rel=1e-3)
    renamed = tmp_path / "renamed.csv"
    renamed.write_text(new.read_text().replace("Close", "Price"))
    refused(capsys, run_id, renamed, says="has no column 'Close'")
    refused(capsys, run_id, write_prices(tmp_path, random_walk(6), name="short.csv"), says="6 trading days")
    refused(capsys, run_id, tmp_path / "absent.csv", says="absent.csv: no such file")


def test_char_lm_gives_next_characters_and_a_greedy_continuation(train, capsys):
    run_id = train("char_lm")
    status, out, _ = predict(capsys, run_id, "to be or not", "Zebra")
    assert status == 0 and out[0] == "prompt 'to be or not'" and len(out) == 2 * 7
    probabilities = [numbers(line)[-1] for line in out[1:6]]
    assert all(0 <= p <= 1 for p in probabilities) and probabilities == sorted(probabilities, reverse=True)
    continuation = ast.literal_eval(out[6].split(": ", 1)[1])
    assert len(continuation) == 40 and set(continuation) <= set(" \n" + "".join(WORDS))
    assert "not in the training text" in out[7] and "'Z'" in out[7]
    refused(capsys, run_id, "", says="empty prompt")


def test_imdb_scores_new_reviews_with_the_logged_vocabulary(train, capsys, monkeypatch):
    run_id = train("imdb")
    logged = tracking.download_artifact(run_id, "task/vocabulary.json")
    payload = json.loads(logged.read_text(encoding="utf-8"))
    params = tracking.Tracker("imdb").get_run(run_id).data.params
    assert hashlib.sha256("\n".join(payload["vocabulary"]).encode()).hexdigest() == params["notes.vocabulary_sha256"]
    assert payload["max_length"] == 64 and payload["truncation"] == "keep_end"
    reviews = ["A great, wonderful film!", "Awful.<br />Boring and dull film", "unseen words only"]
    status, out, _ = predict(capsys, run_id, *reviews)
    assert status == 0 and len(out) == 4
    for line in out[1:]:
        p, label = float(line.split()[0]), line.split()[1]
        assert 0 <= p <= 1 and label == ("positive" if p > 0.5 else "negative")
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(reviews) + "\n"))
    status, piped, _ = predict(capsys, run_id, "-")
    assert status == 0 and [line.split()[0] for line in piped] == [line.split()[0] for line in out]
    refused(capsys, run_id, "?!", says="no words left")


def test_speech_transcribes_an4_cepstra(train, capsys, tmp_path):
    run_id = train("speech")
    front_end = json.loads(tracking.download_artifact(run_id, "task/front_end.json").read_text())
    assert front_end["input"] == "cepstra" and front_end["settings"]["deltas"] == 0
    utterance = write_mfc(tmp_path / "new.mfc", np.random.default_rng(3).normal(size=(45, 13)))
    status, out, _ = predict(capsys, run_id, utterance)
    assert status == 0 and len(out) == 1 and "(45 frames)" in out[0]
    greedy, beam = re.findall(r"'([^']*)'", out[0])
    assert set(greedy + beam) <= set(AN4_SYMBOLS)
    (tmp_path / "new.wav").write_bytes(b"RIFF")
    refused(capsys, run_id, tmp_path / "new.wav", says="give the utterance's .mfc file")
    refused(capsys, run_id, tmp_path / "absent.mfc", says="no such file")


def test_speech_transcribes_a_wav_with_the_runs_mfcc_front_end(train, capsys, tmp_path):
    listing = write_csv_corpus(tmp_path / "corpus", synthetic_rows(12))
    run_id = train("speech", "speech_csv", {"dataset": "csv", "data_file": str(listing), "deltas": 1, "beam_width": 4})
    front_end = json.loads(tracking.download_artifact(run_id, "task/front_end.json").read_text())
    assert front_end["input"] == "audio" and front_end["settings"]["sample_rate"] == 16000
    status, out, _ = predict(capsys, run_id, tmp_path / "corpus" / "utt03.wav")  # an 8 kHz file: resampled
    assert status == 0 and len(out) == 1
    greedy, beam = re.findall(r"'([^']*)'", out[0])
    assert set(greedy + beam) <= set("abc")
    refused(capsys, run_id, write_mfc(tmp_path / "x.mfc", np.zeros((4, 13)) + 1), says="give a wav file")


def test_unknown_runs_and_tasks_without_the_hook_are_one_line(train, capsys, monkeypatch):
    refused(capsys, "0123456789abcdef", "1", says="no run 0123456789abcdef")
    run_id = train("sine")
    monkeypatch.setitem(registry._TASKS, "sine", dataclasses.replace(registry.get_task_entry("sine"), predict=None))
    refused(capsys, run_id, "1",
            says="which cannot predict; tasks that can: adding, char_lm, copy, g2p, imdb, speech, stock")
    # `generate` finds its hook the same way
    assert main(["generate", "--run-id", run_id]) == 2 and "which cannot generate; tasks that can: char_lm" in \
        capsys.readouterr().err
    assert main(["generate", "--run-id", train("char_lm"), "--prompt", "to", "--length", "3"]) == 0
    assert capsys.readouterr().out.startswith("to")


def test_adding_sums_the_marked_values_of_a_given_sequence(train, capsys):
    run_id = train("adding")  # T = 6
    status, out, _ = predict(capsys, run_id, "0.1,0.2,0.3,0.4,0.5,0.6", "1,4")
    assert status == 0 and out[0].startswith("predicted sum: ") and np.isfinite(numbers(out[0])).all()
    assert out[1] == "true sum of values 1 and 4: 0.7000"
    refused(capsys, run_id, "0.1,0.2", "0,1", says="2 values given, but run")
    refused(capsys, run_id, "0.1,0.2,0.3,0.4,0.5,0.6", "2,2", says="two different marked positions in 0..5")


def test_copy_plays_back_given_symbols(train, capsys):
    run_id = train("copy")  # T = 4
    status, out, _ = predict(capsys, run_id, "1234567812")
    assert status == 0 and out[0] == "given:    1234567812"
    assert re.fullmatch(r"recalled: [1-8_]{10} after a delay of T = 4 \(\d+/10 right\)", out[1]), out
    refused(capsys, run_id, "12349", says="as digits 1-8")
