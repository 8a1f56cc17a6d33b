"""Tests of the character language model task: vocabulary, splits without leaks, windows, metrics, n-gram baselines,
sampling, bad input, the tfds path (mocked) and the real files (skipped when absent)."""
import hashlib
import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from rnnbench.errors import DataError, UserError
from rnnbench.registry import get_task
from rnnbench.tasks import char_lm
from rnnbench.tasks.char_lm import CharVocab
from tiny_data import tiny_text



def write_text(tmp_path, text: str, name: str = "corpus.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def tiny_model(spec, units: int = 8) -> keras.Model:
    inputs = keras.Input((spec.inputs.length,), dtype="int32")
    x = keras.layers.Embedding(spec.inputs.vocab_size, 8)(inputs)
    x = keras.layers.GRU(units, return_sequences=True)(x)
    model = keras.Model(inputs, keras.layers.Dense(spec.outputs.num_classes)(x))
    model.compile(optimizer="adam", loss=spec.loss, metrics=list(spec.metrics))
    return model


def copy_last_char_model(vocab_size: int, length: int) -> keras.Model:
    """Logits favour the current input character: greedy sampling repeats the last character of the context."""
    inputs = keras.Input((length,), dtype="int32")
    logits = keras.layers.Embedding(vocab_size, vocab_size, embeddings_initializer=keras.initializers.Constant(
        10.0 * np.eye(vocab_size)))(inputs)
    return keras.Model(inputs, logits)


def constant_model(vocab_size: int, length: int, favourite: int) -> keras.Model:
    bias = np.full(vocab_size, -5.0)
    bias[favourite] = 5.0
    inputs = keras.Input((length,), dtype="int32")
    x = keras.layers.Embedding(vocab_size, 2)(inputs)
    logits = keras.layers.Dense(vocab_size, kernel_initializer="zeros",
                                bias_initializer=keras.initializers.Constant(bias))(x)
    return keras.Model(inputs, logits)


# -- vocabulary, splits, windows ------------------------------------------------------------------------------------

def test_vocab_ids_start_at_one_in_code_point_order_and_unknown_characters_are_oov():
    vocab = CharVocab.from_text("banana\n", seq_len=4)
    assert vocab.chars == ("\n", "a", "b", "n")
    assert vocab.size == 5
    assert vocab.encode("ban\nx").tolist() == [3, 2, 4, 1, char_lm.OOV_ID]
    assert vocab.decode([3, 2, 4, 0]) == "ban\ufffd"


def test_vocab_file_round_trip_and_bad_file(tmp_path):
    vocab = CharVocab.from_text("Ünïcödé text\n", seq_len=7)
    vocab.save(tmp_path / "vocab.json")
    assert CharVocab.load(tmp_path / "vocab.json") == vocab
    (tmp_path / "other.json").write_text(json.dumps({"labels": [1, 2]}))
    with pytest.raises(DataError, match="other.json: not a char_lm vocabulary"):
        CharVocab.load(tmp_path / "other.json")


def test_split_by_position_is_ordered_and_complete():
    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    parts = char_lm.split_by_position(text)
    assert [len(p) for p in parts.values()] == [900, 50, 50]
    assert parts["train"] + parts["val"] + parts["test"] == text


def test_windows_targets_are_inputs_shifted_by_one():
    ids = np.arange(1, 12, dtype=np.int32)
    x, y = char_lm.make_windows(ids, seq_len=4, stride=3)
    assert x.tolist() == [[1, 2, 3, 4], [4, 5, 6, 7], [7, 8, 9, 10]]
    assert y.tolist() == [[2, 3, 4, 5], [5, 6, 7, 8], [8, 9, 10, 11]]


def test_local_file_splits_never_leak_into_training_windows(tmp_path):
    # Training text uses lower-case words only; the last 10% (validation and test) is upper case. A validation or
    # test character inside a training window would therefore be OOV there, and the vocabulary would grow.
    body = tiny_text(200)
    cut = round(len(body) * 0.9)
    path = write_text(tmp_path, body[:cut] + body[cut:].upper())
    spec = char_lm.load(batch_size=8, data_file=str(path), seq_len=16)
    train_part = body[:cut]
    vocab = CharVocab.from_text(train_part, 16)
    assert spec.inputs.vocab_size == spec.outputs.num_classes == vocab.size
    assert spec.inputs.length == 16 and spec.inputs.masked is False and spec.outputs.head == "causal_steps"
    train_windows = 0
    for x, y in spec.train.as_numpy_iterator():
        train_windows += len(x)
        assert not np.any(x == char_lm.OOV_ID) and not np.any(y == char_lm.OOV_ID)
        for row_x, row_y in zip(x, y):
            assert vocab.decode(row_x) + vocab.decode(row_y[-1:]) in train_part
    assert train_windows == spec.dataset["train_windows"] == len(range(0, len(train_part) - 16, 16))
    val_x = np.concatenate([x for x, _ in spec.val.as_numpy_iterator()])
    assert np.mean(val_x == char_lm.OOV_ID) > 0.5  # upper-case letters never seen in training
    assert spec.notes["val_oov_rate"] > 0.5
    assert spec.dataset["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_train_stride_overlaps_windows_and_shuffle_follows_the_seed(tmp_path):
    path = write_text(tmp_path, tiny_text(60))
    dense = char_lm.load(batch_size=4, data_file=str(path), seq_len=10, train_stride=5)
    sparse = char_lm.load(batch_size=4, data_file=str(path), seq_len=10)
    assert dense.dataset["train_windows"] in (2 * sparse.dataset["train_windows"] - 1,
                                              2 * sparse.dataset["train_windows"])

    def first_batch(seed):
        spec = char_lm.load(batch_size=4, data_file=str(path), seq_len=10, seed=seed)
        return next(spec.train.as_numpy_iterator())[0]

    np.testing.assert_array_equal(first_batch(3), first_batch(3))
    assert not np.array_equal(first_batch(3), first_batch(4))


def test_registered_under_char_lm_with_annotated_defaults():
    import inspect

    loader = get_task("char_lm")
    assert loader is char_lm.load
    for name, parameter in inspect.signature(loader).parameters.items():
        assert parameter.default is not inspect.Parameter.empty, name
        assert parameter.annotation is not inspect.Parameter.empty, name


# -- metrics and baselines ------------------------------------------------------------------------------------------

def test_bpc_and_perplexity_metrics_match_hand_computed_cross_entropy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 7)).astype(np.float32)
    targets = rng.integers(0, 7, size=(3, 5))
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nats = -np.take_along_axis(log_softmax, targets[..., None], -1).mean()
    bpc, perplexity = char_lm.BitsPerCharacter(), char_lm.Perplexity()
    for metric in (bpc, perplexity):
        metric.update_state(targets[:2], logits[:2])
        metric.update_state(targets[2:], logits[2:])
    assert float(bpc.result()) == pytest.approx(nats / math.log(2), rel=1e-5)
    assert float(perplexity.result()) == pytest.approx(math.exp(nats), rel=1e-5)
    assert char_lm.scores_from_nats(math.log(4)) == pytest.approx({"loss": math.log(4), "bpc": 2.0, "perplexity": 4.0})


def test_ngram_probabilities_match_hand_counts():
    ids = np.array([1, 2, 1, 2, 1, 3])
    unigram = char_lm.NgramModel(1, vocab_size=4, alpha=1.0).fit(ids)
    # counts: id1 3, id2 2, id3 1, id0 0; total 6; add-one over 4 classes
    assert np.exp(unigram.log_probs(np.zeros((2, 0), np.int64), np.array([1, 0]))) == pytest.approx([4 / 10, 1 / 10])
    bigram = char_lm.NgramModel(2, vocab_size=4, alpha=0.5).fit(ids)
    # after id1: id2 twice, id3 once
    assert np.exp(bigram.log_probs(np.array([[1], [1], [3]]), np.array([2, 1, 1]))) == pytest.approx(
        [2.5 / 5.0, 0.5 / 5.0, 0.5 / 2.0])


def test_ngram_baselines_order_and_window_context():
    text = "abcabcabcabc" * 40
    vocab = CharVocab.from_text(text, 6)
    ids = vocab.encode(text)
    windows = {name: char_lm.make_windows(ids, 6, 6) for name in ("val", "test")}
    baselines, alphas = char_lm.ngram_baselines(ids, windows, vocab.size)
    assert baselines["bigram"]["loss"] < 0.05  # each character determines the next
    assert baselines["unigram"]["loss"] == pytest.approx(math.log(3), abs=0.01)
    assert set(alphas) == {"unigram_alpha", "bigram_alpha", "trigram_alpha"}
    for scores in baselines.values():
        assert scores["bpc"] == pytest.approx(scores["loss"] / math.log(2))


# -- training hooks, sampling ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_spec(tmp_path_factory):
    path = write_text(tmp_path_factory.mktemp("corpus"), tiny_text(150))
    return char_lm.load(batch_size=16, data_file=str(path), seq_len=12, sample_length=30)


def test_one_epoch_logs_val_bpc_and_perplexity_and_evaluate_matches_keras(tiny_spec, tmp_path):
    keras.utils.set_random_seed(0)
    model = tiny_model(tiny_spec)
    history = model.fit(tiny_spec.train, validation_data=tiny_spec.val, epochs=1, verbose=0).history
    assert {"val_loss", "val_bpc", "val_perplexity"} <= set(history)
    assert history["val_bpc"][0] == pytest.approx(history["val_loss"][0] / math.log(2), rel=1e-4)
    keras_scores = model.evaluate(tiny_spec.test, verbose=0, return_dict=True)
    scores = tiny_spec.evaluate(model)
    assert scores["loss"] == pytest.approx(keras_scores["loss"], rel=1e-4)
    assert scores["bpc"] == pytest.approx(keras_scores["bpc"], rel=1e-4)
    assert scores["perplexity"] == pytest.approx(keras_scores["perplexity"], rel=1e-4)
    assert set(tiny_spec.baselines["trigram"]) == set(scores)

    tiny_spec.artifacts(model, tmp_path)
    vocab = CharVocab.load(tmp_path / "vocab.json")
    assert vocab.size == tiny_spec.inputs.vocab_size and vocab.seq_len == 12
    sample = (tmp_path / "sample.txt").read_text(encoding="utf-8")
    prompt = char_lm.default_prompt(tiny_text(150)[round(len(tiny_text(150)) * 0.95):])
    assert prompt.endswith("\n") and prompt in sample
    assert len(sample.split("\n\n", 1)[1]) == len(prompt) + 30


def test_model_with_task_metrics_survives_save_and_load(tiny_spec, tmp_path):
    model = tiny_model(tiny_spec)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    x, _ = tiny_spec.example_batch()
    np.testing.assert_allclose(loaded.predict_on_batch(x), model.predict_on_batch(x), rtol=1e-5, atol=1e-6)


def test_greedy_generation_reads_the_last_real_context_position():
    vocab = CharVocab.from_text("abc", seq_len=8)
    model = copy_last_char_model(vocab.size, 8)
    assert char_lm.generate(model, vocab, "ab", 5, temperature=0.0) == "abbbbbb"
    # A prompt longer than the window keeps its last characters; the output still starts with the whole prompt.
    assert char_lm.generate(model, vocab, "abcabcabcab", 2, temperature=0.0) == "abcabcabcabbb"


def test_sampling_is_seeded_and_never_emits_oov():
    vocab = CharVocab.from_text("abcd", seq_len=6)
    model = constant_model(vocab.size, 6, favourite=char_lm.OOV_ID)
    text = char_lm.generate(model, vocab, "a", 40, temperature=1.0, seed=1)
    assert len(text) == 41 and set(text) <= set("abcd")
    assert text == char_lm.generate(model, vocab, "a", 40, temperature=1.0, seed=1)
    assert text != char_lm.generate(model, vocab, "a", 40, temperature=1.0, seed=2)
    favours_c = constant_model(vocab.size, 6, favourite=int(vocab.encode("c")[0]))
    assert char_lm.generate(favours_c, vocab, "a", 5, temperature=0.0) == "accccc"


def test_generate_refuses_bad_requests():
    vocab = CharVocab.from_text("abc", seq_len=4)
    model = copy_last_char_model(vocab.size, 4)
    with pytest.raises(UserError, match="prompt is empty"):
        char_lm.generate(model, vocab, "", 5)
    with pytest.raises(UserError, match="temperature"):
        char_lm.generate(model, vocab, "a", 5, temperature=-1.0)
    with pytest.raises(UserError, match="length"):
        char_lm.generate(model, vocab, "a", -1)
    with pytest.raises(DataError, match="vocabulary has 4 ids but the model predicts 6"):
        char_lm.generate(copy_last_char_model(6, 4), vocab, "a", 5)


def test_generate_from_run_uses_the_logged_model_and_vocabulary(tmp_path, monkeypatch):
    from rnnbench import tracking

    vocab = CharVocab.from_text("abc", seq_len=5)
    vocab.save(tmp_path / "vocab.json")
    requested = []
    monkeypatch.setattr(tracking, "download_artifact",
                        lambda run_id, path: requested.append((run_id, path)) or tmp_path / "vocab.json")
    monkeypatch.setattr(tracking, "load_model", lambda run_id: copy_last_char_model(vocab.size, 5))
    assert char_lm.generate_from_run("run123", "ca", 3, temperature=0.0) == "caaaa"
    assert requested == [("run123", char_lm.VOCAB_ARTIFACT)]


def test_zoo_models_fit_the_task_and_bidirectional_ones_are_refused(tiny_spec):
    from rnnbench import models as zoo

    with pytest.raises(ValueError, match="causal"):
        zoo.bi_lstm(tiny_spec, units=4)
    # Right-padding in `generate` relies on causality: later inputs must not change earlier logits.
    model = zoo.gru_attention(tiny_spec, units=8)
    x, _ = tiny_spec.example_batch()
    changed = x.copy()
    changed[:, 6:] = (changed[:, 6:] % (tiny_spec.inputs.vocab_size - 1)) + 1
    np.testing.assert_allclose(model.predict_on_batch(x)[:, :6], model.predict_on_batch(changed)[:, :6],
                               rtol=1e-5, atol=1e-5)


# -- bad input ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "the file is empty"),
        ("caf\xe9 au lait\n".encode("latin-1") * 50, "not valid UTF-8"),
        (b"abc\x00def\n" * 50, "NUL characters"),
        (b"only a few characters\n", "fewer than seq_len"),
    ],
    ids=["empty", "latin-1", "binary", "too-short"],
)
def test_unusable_text_files_raise_data_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as caught:
        char_lm.load(data_file=str(path), seq_len=20)
    assert "bad.txt" in str(caught.value)


@pytest.mark.parametrize("content", [bytes(range(256)) * 40, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 300],
                         ids=["not-utf8", "png"])
def test_binary_file_is_called_binary_not_latin1(tmp_path, content):
    path = tmp_path / "weights.bin"
    path.write_bytes(content)
    with pytest.raises(DataError) as caught:
        char_lm.load(data_file=str(path), seq_len=20)
    message = str(caught.value)
    assert message.startswith(f"{path}: contains NUL characters") and "looks binary" in message
    assert "LATIN1" not in message


def test_utf16_text_is_told_to_convert_from_utf16(tmp_path):
    path = tmp_path / "play.txt"
    path.write_bytes("To be, or not to be\n".encode("utf-16") * 20)
    with pytest.raises(DataError, match=r"play.txt: UTF-16 text .*iconv -f UTF-16 -t UTF-8 play.txt"):
        char_lm.load(data_file=str(path), seq_len=20)


def test_missing_file_and_folder_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        char_lm.load(data_file=str(tmp_path / "absent.txt"))
    with pytest.raises(DataError, match="not a regular file"):
        char_lm.load(data_file=str(tmp_path))


def test_splits_emptied_by_limits_raise_data_error(tmp_path):
    path = write_text(tmp_path, tiny_text(100))
    with pytest.raises(DataError, match="val part.*fewer than seq_len"):
        char_lm.load(data_file=str(path), seq_len=20, max_eval_chars=10)


@pytest.mark.parametrize("options", [{"seq_len": 0}, {"train_stride": 0}, {"sample_temperature": -0.5},
                                     {"max_train_chars": 0}, {"sample_length": -1}])
def test_bad_options_raise_user_error(tmp_path, options):
    path = write_text(tmp_path, tiny_text(50))
    with pytest.raises(UserError, match="task\\."):
        char_lm.load(data_file=str(path), **options)


# -- tfds -----------------------------------------------------------------------------------------------------------

def test_tfds_path_reads_the_three_splits_through_tensorflow_datasets(monkeypatch):
    import tensorflow_datasets as tfds

    texts = {"train": "first citizen speaks\n" * 20, "validation": "all speak\n" * 5, "test": "zounds!\n" * 5}

    def as_dataset(self, split, **kwargs):
        return tf.data.Dataset.from_tensors({"text": tf.constant(texts[str(split)])})

    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    with tfds.testing.mock_data(as_dataset_fn=as_dataset):  # its download_and_prepare stands in for the download
        spec = char_lm.load(batch_size=4, seq_len=8, download=True)
    assert spec.dataset["name"] == "tiny_shakespeare" and spec.dataset["source"] == "tfds"
    assert (spec.dataset["train_chars"], spec.dataset["val_chars"], spec.dataset["test_chars"]) == (420, 50, 40)
    assert spec.inputs.vocab_size == len(set(texts["train"])) + 1
    assert spec.notes["test_oov_rate"] == pytest.approx(4 / 8)  # "o", "u", "d" and "!" never occur in training
    assert spec.dataset["sha256"] == hashlib.sha256("".join(texts.values()).encode()).hexdigest()


def test_tfds_not_cached_and_download_off_names_both_remedies(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="not in .* and task.download is false") as caught:
        char_lm.load(download=False)
    assert "TFDS_DATA_DIR" in str(caught.value) and "task.data_file" in str(caught.value)


def test_tfds_download_failure_names_both_remedies(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    def offline(self, *args, **kwargs):
        raise ConnectionError("Failed to resolve 'raw.githubusercontent.com'")

    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    with pytest.raises(DataError, match="could not be downloaded .*ConnectionError") as caught:
        char_lm.load(download=True)
    assert "TFDS_DATA_DIR" in str(caught.value) and "task.data_file" in str(caught.value)


# -- the real files -------------------------------------------------------------------------------------------------

def test_real_tiny_shakespeare_file_and_tfds_copy_agree(shared_data, tfds_data, monkeypatch):
    path = shared_data / "tinyshakespeare" / "input.txt"
    text = char_lm.read_text_file(path)
    assert len(text) == 1_115_394 and len(set(text)) == 65
    monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_data))
    splits, identity = char_lm.read_tfds_splits(download=False)
    assert identity == {"name": "tiny_shakespeare", "source": "tfds", "version": "1.0.0"}
    assert splits["train"] + splits["val"] + splits["test"] == text
    assert [len(splits[s]) for s in ("train", "val", "test")] == [1_003_854, 55_770, 55_770]


def test_real_file_loads_as_a_task(shared_data):
    spec = char_lm.load(batch_size=64, data_file=str(shared_data / "tinyshakespeare" / "input.txt"),
                        max_train_chars=100_000)
    assert spec.dataset["sha256"] == "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
    assert (spec.dataset["val_windows"], spec.dataset["test_windows"]) == (557, 557)
    # Character n-grams of real English: more context must help.
    assert spec.baselines["trigram"]["loss"] < spec.baselines["bigram"]["loss"] < spec.baselines["unigram"]["loss"]


def test_report_states_every_model_on_nanogpts_footing():
    import math

    import pandas as pd

    from rnnbench.tasks.char_lm.report import report_notes

    summary = pd.DataFrame([
        {"model": "gru", "kind": "model", "best_val_loss_mean": 1.56, "test_loss_mean": 1.68, "params": 299949,
         "runs": 3},
        {"model": "lstm", "kind": "model", "best_val_loss_mean": 1.60, "test_loss_mean": 1.70, "params": 299598,
         "runs": 3},
        {"model": "trigram", "kind": "baseline", "best_val_loss_mean": math.nan, "test_loss_mean": 2.1,
         "params": math.nan, "runs": 1},
    ])
    notes = report_notes(summary)
    assert "| gru | 1.6200 | 2.337 | 299,949 | 3 |" in notes  # (1.56 + 1.68) / 2 nats; / ln 2 bits
    assert notes.index("| gru |") < notes.index("| lstm | 1.6500 |")
    assert "trigram" not in notes
    assert "| 1.4697 | 2.120 |" in notes and "| 1.8800 |" in notes
    assert "Best here: gru at 1.6200 nats/char, +0.1503 from nanoGPT's GPU figure" in notes
    assert "Cannot say" in report_notes(summary.drop(columns=["best_val_loss_mean"]))
