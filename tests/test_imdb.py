"""Tests of the IMDB sentiment task: the three data sources, leak-free splits, padding and bucketing, bad input,
metrics, the TF-IDF baseline, and one tiny training run through the artifacts hook. Tiny data made here; the
real files are only read by the tests that take the `shared_data` or `tfds_data` fixture."""
from __future__ import annotations

import csv
import gzip

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from rnnbench import text as textlib
from rnnbench.errors import DataError, UserError
from rnnbench.tasks import imdb
from tiny_data import SHARED_WORDS, make_reviews, write_table



@pytest.fixture(scope="module")
def review_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reviews")
    train = folder / "train.csv.gz"
    test = folder / "test.tsv"
    write_table(train, *make_reviews(40, "trainmarker", seed=1))
    write_table(test, *make_reviews(16, "testmarker", seed=2), delimiter="\t")
    return train, test


def load_files(review_files, **options):
    train, test = review_files
    settings = dict(batch_size=4, data_file=str(train), test_file=str(test), vocab_size=1000, max_length=64,
                    val_fraction=0.25)
    settings.update(options)
    return imdb.load(**settings)


@pytest.fixture(scope="module")
def file_spec(review_files):
    """The spec with the default options of `load_files`, shared by the tests that only read it."""
    return load_files(review_files)


def batches(ds):
    return list(ds.as_numpy_iterator())


def token_count(ds, token_id):
    return sum(int(np.count_nonzero(x == token_id)) for x, _ in batches(ds))


# -- text helpers --------------------------------------------------------------------------------------------------

def test_html_line_breaks_are_removed():
    assert textlib.remove_html_line_breaks("a<br />b<BR>c<br/>d< br >e") == "a b c d< br >e"


@pytest.mark.parametrize("value, expected", [("0", 0), ("1", 1), (" Pos ", 1), ("neg", 0), ("POSITIVE", 1),
                                             ("negative", 0), ("2", None), ("nan", None), ("", None)])
def test_labels_are_parsed(value, expected):
    assert textlib.parse_binary_label(value) == expected


def test_bucket_boundaries_follow_the_length_quantiles():
    assert textlib.length_bucket_boundaries(np.arange(1, 101), 4) == [26, 51, 76]
    assert textlib.length_bucket_boundaries(np.arange(1, 101), 1) == []
    assert textlib.length_bucket_boundaries(np.full(50, 7), 4) == []  # one length: nothing to separate



def test_shuffled_batches_hold_every_review_once_per_pass_in_a_new_seeded_order():
    rng = np.random.default_rng(0)
    # Review i starts with token i + 2, so a batch row names its review; ids 0 and 1 are padding and [UNK].
    sequences = [np.concatenate([[i + 2], rng.integers(2, 60, size=n)]).astype(np.int32)
                 for i, n in enumerate(rng.integers(0, 30, size=40))]
    labels = np.arange(40) % 2

    def one_pass(dataset):
        rows = []
        for x, y in dataset.as_numpy_iterator():
            rows += [(row[row != 0].tolist(), int(label)) for row, label in zip(x, y)]
        return rows

    batches = textlib.bucketed_batches(sequences, labels, 4, [10, 20], shuffle_seed=7)
    first, second = one_pass(batches), one_pass(batches)
    expected = sorted((s.tolist(), int(label)) for s, label in zip(sequences, labels))
    assert sorted(first) == expected and sorted(second) == expected
    assert first != second  # a new order every pass
    assert one_pass(textlib.bucketed_batches(sequences, labels, 4, [10, 20], shuffle_seed=7)) == first
    assert one_pass(textlib.bucketed_batches(sequences, labels, 4, [10, 20], shuffle_seed=8)) != first
    # The batches of a whole-split shuffle of the reviews themselves, which results before indices were shuffled
    # were trained on.
    reference = textlib.token_dataset(sequences, labels).shuffle(40, seed=7, reshuffle_each_iteration=True)
    reference = reference.bucket_by_sequence_length(lambda x, y: tf.shape(x)[0], [10, 20], [4, 4, 4])
    assert [one_pass(reference), one_pass(reference)] == [first, second]

# -- the CSV/TSV path ------------------------------------------------------------------------------------------------

def test_file_loader_builds_a_masked_classification_spec(file_spec):
    spec = file_spec
    assert spec.name == "imdb"
    assert (spec.inputs.kind, spec.inputs.masked, spec.outputs.head, spec.outputs.num_classes) == (
        "tokens", True, "classification", 2)
    assert spec.dataset["train_examples"] == 30 and spec.dataset["val_examples"] == 10
    assert spec.dataset["test_examples"] == 16
    assert spec.dataset["source"] == "file" and len(spec.dataset["sha256"]) == 64
    assert spec.options["data_file"].endswith("train.csv.gz") and spec.options["max_length"] == 64
    assert set(spec.baselines["tfidf_logreg"]) == {"accuracy", "auc", "f1", "precision", "recall"}
    assert spec.primary_metric == "accuracy" and spec.higher_is_better
    seen = {"train": 0, "val": 0, "test": 0}
    for split in seen:
        for x, y in batches(getattr(spec, split)):
            assert x.dtype == np.int32 and x.shape[1] <= 64 and set(np.unique(y)) <= {0, 1}
            # right padding: once a row reaches id 0 it stays 0
            after_first_pad = np.maximum.accumulate(x == 0, axis=1)
            assert not np.any(after_first_pad & (x != 0))
            seen[split] += len(y)
    assert seen == {"train": 30, "val": 10, "test": 16}


def test_vocabulary_is_fit_on_the_training_part_only(file_spec):
    spec = file_spec
    # Every review has one word of its own. Fit on the 30 training reviews only, the vocabulary holds padding,
    # [UNK], the shared words, "the" and the 30 training markers (and no "br": the <br /> tags are gone);
    # validation and test markers map to [UNK].
    assert spec.notes["vocabulary_size"] == 2 + len(SHARED_WORDS) + 1 + 30
    assert token_count(spec.train, 1) == 0
    assert token_count(spec.val, 1) == 10
    assert token_count(spec.test, 1) == 16


def test_validation_split_is_seeded_and_stratified(review_files):
    def validation_rows(seed):
        return sorted(tuple(row[row > 0]) + (int(y),) for x, ys in batches(load_files(review_files, seed=seed).val)
                      for row, y in zip(x, ys))

    first, again, other = validation_rows(0), validation_rows(0), validation_rows(1)
    assert first == again and first != other
    assert sum(row[-1] for row in first) == 5  # 10 held out from 20 + 20: five of each label


def test_truncation_keeps_the_chosen_end():
    texts = ["one two three four five six"]
    vectorizer = imdb.fit_vectorizer(texts, 100)
    end, lengths = imdb.to_token_ids(vectorizer, texts, 2, "keep_end", "test")
    start, _ = imdb.to_token_ids(vectorizer, texts, 2, "keep_start", "test")
    vocabulary = vectorizer.get_vocabulary()
    assert [vocabulary[i] for i in end[0]] == ["five", "six"]
    assert [vocabulary[i] for i in start[0]] == ["one", "two"]
    assert lengths.tolist() == [6]


def test_bucketing_cuts_padding_and_is_logged(review_files):
    spec = load_files(review_files, buckets=4)
    assert spec.notes["padded_fraction_train"] < spec.notes["padded_fraction_train_without_buckets"]
    unbucketed = load_files(review_files, buckets=0)
    assert unbucketed.notes["bucket_boundaries"] == "none"
    assert unbucketed.notes["padded_fraction_train"] == unbucketed.notes["padded_fraction_train_without_buckets"]


def test_without_a_test_file_a_stratified_share_of_the_data_file_is_the_test_split(review_files):
    train, _ = review_files
    spec = imdb.load(batch_size=4, data_file=str(train), test_fraction=0.25, val_fraction=0.2, vocab_size=1000)
    assert (spec.dataset["train_examples"], spec.dataset["val_examples"], spec.dataset["test_examples"]) == (24, 6, 10)
    assert token_count(spec.test, 1) == 10  # held-out reviews' own words are not in the vocabulary


# -- the aclImdb folder path -----------------------------------------------------------------------------------------

def write_folder(root, per_folder=8):
    for split in ("train", "test"):
        texts, labels = make_reviews(2 * per_folder, f"{split}marker", seed=3)
        for i, (review, label) in enumerate(zip(texts, labels)):
            folder = root / split / ("pos" if label else "neg")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i}_{7 if label else 2}.txt").write_text(review, encoding="utf-8")
    return root


def test_review_folder_is_read(tmp_path):
    spec = imdb.load(batch_size=4, data_dir=str(write_folder(tmp_path / "aclImdb")), val_fraction=0.25)
    assert spec.dataset["source"] == "folder" and spec.dataset["name"] == "aclImdb"
    assert (spec.dataset["train_examples"], spec.dataset["val_examples"], spec.dataset["test_examples"]) == (12, 4, 16)
    assert token_count(spec.test, 1) == 16


def test_review_folder_problems_name_the_path(tmp_path):
    root = write_folder(tmp_path / "aclImdb")
    (root / "train" / "pos" / "0_9.txt").write_bytes(b"caf\xe9 is not utf-8")
    with pytest.raises(DataError, match=r"0_9\.txt: not valid UTF-8"):
        imdb.load(data_dir=str(root))
    (root / "train" / "pos" / "0_9.txt").write_text("a superb film", encoding="utf-8")
    for path in (root / "test" / "neg").iterdir():
        path.unlink()
    (root / "test" / "neg").rmdir()
    with pytest.raises(DataError, match=r"test/neg: missing folder"):
        imdb.load(data_dir=str(root))
    with pytest.raises(DataError, match="no such folder"):
        imdb.load(data_dir=str(tmp_path / "nowhere"))


# -- the tfds path ---------------------------------------------------------------------------------------------------

def test_tfds_path_reads_imdb_reviews(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    corpus = {"train": make_reviews(24, "trainmarker", seed=4), "test": make_reviews(12, "testmarker", seed=5)}

    def as_dataset(self, split, *args, **kwargs):
        texts, labels = corpus[str(split)]
        return tf.data.Dataset.from_tensor_slices({"text": texts, "label": np.asarray(labels, np.int64)})

    # mock_data's download_and_prepare stands in for the download
    with tfds.testing.mock_data(as_dataset_fn=as_dataset, data_dir=str(tmp_path)):
        spec = imdb.load(batch_size=4, val_fraction=0.25, vocab_size=500, download=True)
    assert spec.dataset["source"] == "tfds" and spec.dataset["name"] == "imdb_reviews"
    assert spec.dataset["version"] == "1.0.0"
    assert (spec.dataset["train_examples"], spec.dataset["val_examples"], spec.dataset["test_examples"]) == (18, 6, 12)
    assert token_count(spec.test, 1) == 12


def test_tfds_absent_and_not_downloadable_names_both_remedies(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(DataError) as refused:
        imdb.load(download=False)
    assert "TFDS_DATA_DIR" in str(refused.value) and "task.data_file" in str(refused.value)

    def offline(self, *args, **kwargs):
        raise ConnectionError("Failed to resolve 'ai.stanford.edu'")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    with pytest.raises(DataError) as failed:
        imdb.load(download=True)
    message = str(failed.value)
    assert "could not be downloaded" in message and "ConnectionError" in message
    assert "TFDS_DATA_DIR" in message and "task.data_file" in message and "task.data_dir" in message


# -- bad input -------------------------------------------------------------------------------------------------------

def _write_bytes(name, content):
    def make(tmp_path):
        path = tmp_path / name
        path.write_bytes(content)
        return path
    return make


def _write_gzip_rows(name, rows):
    def make(tmp_path):
        path = tmp_path / name
        with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerows(rows)
        return path
    return make


@pytest.mark.parametrize("make_file, problem", [
    (_write_bytes("empty.csv", b""), "the file is empty"),
    (_write_bytes("header.csv", b"label,text\n"), "no rows follow"),
    (_write_bytes("columns.csv", b"sentiment,review\n1,good\n"), "no column named 'text', 'label'"),
    (_write_bytes("latin1.csv", b"label,text\n1,caf\xe9 cr\xe8me\n"), "not valid UTF-8"),
    (_write_bytes("broken.csv.gz", b"\x1f\x8b\x08\x00garbage"), "corrupt or truncated gzip"),
    (_write_gzip_rows("labels.csv.gz", [["label", "text"], ["1", "good"], ["maybe", "hmm"]]), "line 3: label 'maybe'"),
    (_write_bytes("nan.csv", b"label,text\n1,good\nNaN,bad\n"), "label 'NaN'"),
    (_write_bytes("ragged.csv", b"label,text\n1,good,extra\n"), "line 2: 3 fields where the header has 2"),
    (_write_bytes("blank.csv", b"label,text\n1,  \n"), "line 2: empty text"),
    (_write_bytes("reviews.json", b"{}"), "unsupported file type"),
])
def test_bad_tables_raise_data_errors_naming_the_file(tmp_path, make_file, problem):
    path = make_file(tmp_path)
    with pytest.raises(DataError) as error:
        imdb.load(data_file=str(path))
    assert str(path) in str(error.value) and problem in str(error.value)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        imdb.load(data_file=str(tmp_path / "missing.csv"))


def test_a_split_with_one_class_is_refused(tmp_path):
    path = tmp_path / "positive.csv"
    write_table(path, ["good film"] * 10, [1] * 10)
    with pytest.raises(DataError, match="has only label"):
        imdb.load(data_file=str(path))


def test_reviews_without_words_are_refused(tmp_path):
    path = tmp_path / "punctuation.csv"
    texts, labels = make_reviews(10, "m", seed=6)
    write_table(path, texts + ["!!! ???"], labels + [1])
    with pytest.raises(DataError, match="no words left"):
        imdb.load(data_file=str(path), test_fraction=0.5, val_fraction=0.5, seed=0)


@pytest.mark.parametrize("options, problem", [
    ({"data_file": "a.csv", "data_dir": "b"}, "not both"),
    ({"test_file": "t.csv"}, "needs task.data_file"),
    ({"truncation": "middle"}, "task.truncation"),
    ({"val_fraction": 1.0}, "task.val_fraction"),
    ({"vocab_size": 2}, "task.vocab_size"),
])
def test_bad_options_are_user_errors(options, problem):
    with pytest.raises(UserError, match=problem):
        imdb.load(**options)


# -- metrics and the baseline ----------------------------------------------------------------------------------------

def test_binary_metrics_match_hand_computed_values():
    labels = np.array([0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.6, 0.6, 0.8, 0.3])
    metrics = textlib.binary_metrics(labels, scores, threshold=0.5)
    # predicted positive: items 1, 2, 3 -> tp=2, fp=1, fn=1
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert (metrics["precision"], metrics["recall"]) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    # positive/negative pairs won: (0.6 vs 0.1) 1, (0.6 vs 0.6) 0.5, (0.8: 2), (0.3 vs 0.1) 1 -> 4.5 of 6
    assert metrics["auc"] == pytest.approx(4.5 / 6)


def test_keras_metrics_agree_with_the_numpy_ones():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=500)
    logits = rng.normal(size=(500, 2)) + np.stack([np.zeros(500), 1.5 * labels], axis=1)
    probabilities = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
    expected = textlib.binary_metrics(labels, probabilities, threshold=0.5)
    auc, f1 = textlib.PositiveClassAUC(num_thresholds=1000), textlib.PositiveClassF1()
    for metric in (auc, f1):
        metric.update_state(labels[:200], logits[:200])
        metric.update_state(labels[200:], logits[200:])
    assert float(f1.result()) == pytest.approx(expected["f1"], abs=1e-6)
    assert float(auc.result()) == pytest.approx(expected["auc"], abs=2e-3)


def test_tfidf_logistic_regression_separates_sentiment_words(file_spec):
    spec = file_spec
    assert spec.baselines["tfidf_logreg"]["accuracy"] == 1.0
    assert spec.baselines["tfidf_logreg"]["auc"] == 1.0


# -- training end to end ---------------------------------------------------------------------------------------------

def test_an_attention_model_trains_and_writes_the_artifacts(file_spec, tmp_path, monkeypatch):
    from rnnbench import models

    spec = file_spec
    keras.utils.set_random_seed(0)
    model = models.lstm_attention(spec, units=8, embedding_dim=8, attention_units=8)
    # XLA would compile once per bucket length; eager-graph mode is faster for one tiny epoch
    model = models.compile_model(model, spec, jit_compile=False)
    model.fit(spec.train, epochs=1, verbose=0)
    results = model.evaluate(spec.test, verbose=0, return_dict=True)
    assert {"loss", "accuracy", "auc", "f1"} <= set(results)
    extra = spec.evaluate(model)
    assert set(extra) == {"precision", "recall"} and 0.0 <= extra["recall"] <= 1.0

    def predict_again(*args, **kwargs):
        raise AssertionError("artifacts scored the test split again although the weights did not change")

    monkeypatch.setattr(model, "predict", predict_again)
    out = tmp_path / "artifacts"
    out.mkdir()
    spec.artifacts(model, out)
    names = {path.name for path in out.iterdir()}
    assert {"confusion_matrix.csv", "confusion_matrix.png", "misclassified.txt", "test_predictions.csv",
            "attention_words.png", "attention_words.csv"} <= names
    rows = (out / "confusion_matrix.csv").read_text().splitlines()
    assert sum(int(c) for row in rows[1:] for c in row.split(",")[1:]) == 16
    predictions = (out / "test_predictions.csv").read_text().splitlines()[1:]
    accuracy = np.mean([(float(p) > 0.5) == bool(int(y)) for _, y, p in (line.split(",") for line in predictions)])
    assert accuracy == pytest.approx(results["accuracy"], abs=1e-6)  # the rows were mapped back to the right reviews


# -- the real data ---------------------------------------------------------------------------------------------------

def test_real_csv_files_load(shared_data):
    folder = shared_data / "imdb"
    spec = imdb.load(data_file=str(folder / "train.csv.gz"), test_file=str(folder / "test.csv.gz"),
                     max_train_examples=1000, max_test_examples=400, vocab_size=2000, batch_size=64)
    assert spec.dataset["sha256"] == "c0ce2c24e52d99d90350123ccf5599e2c2dd73284bcaa08648538f9a0b76117e"
    assert spec.dataset["test_sha256"] == "5465b6d5e6582bd8e80b879b3651671c63d3f0cf6fcd1bdd62dff6b2bd3f79d7"
    assert (spec.dataset["train_examples"], spec.dataset["val_examples"], spec.dataset["test_examples"]) == (
        900, 100, 400)
    assert spec.baselines["tfidf_logreg"]["accuracy"] > 0.7


def test_real_tfds_copy_loads(tfds_data, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_data))
    spec = imdb.load(download=False, max_train_examples=1000, max_test_examples=400, vocab_size=2000, batch_size=64)
    assert (spec.dataset["name"], spec.dataset["version"]) == ("imdb_reviews", "1.0.0")
    assert (spec.dataset["train_examples"], spec.dataset["test_examples"]) == (900, 400)
    assert spec.baselines["tfidf_logreg"]["accuracy"] > 0.7
