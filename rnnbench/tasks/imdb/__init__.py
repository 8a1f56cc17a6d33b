"""IMDB movie-review sentiment (many-to-one): is a review positive or negative?

Data, from one of: an aclImdb-style folder (`data_dir`: `{train,test}/{pos,neg}/*.txt`), a CSV/TSV file
(`data_file`, optionally `test_file`), or, when neither is given, tensorflow-datasets' `imdb_reviews` (read from
`TFDS_DATA_DIR`, downloaded only with `download=True`). Validation reviews are a seeded, label-stratified share of
the training split; the test split is only touched by the final evaluation and by the baseline's single test score.

Preprocessing: `<br />` tags removed, `TextVectorization` (lower case, punctuation stripped, whitespace split)
adapted on the training part only, reviews cut to `max_length` tokens, right-padded with id 0 and masked. Training
batches group reviews of similar length; `spec.notes` logs the share of padded timesteps with and without that.

Metrics: accuracy, ROC AUC and F1 of the positive class (compiled into the model), precision and recall (test only,
from the evaluate hook). Reference row: TF-IDF logistic regression on the same token ids. Artifacts: confusion
matrix, the most confidently misclassified reviews, per-review test predictions, for attention models attention
over the words of a few short reviews, and `vocabulary.json` (vocabulary, tokenisation, max_length, truncation),
with which `predict` (the task's hook, `rnnbench predict`) scores new reviews.

Layout: `sources` (the three readers), `splits` (seeded stratified splits), `tokens` (vocabulary, token ids,
evaluation batches), `artifacts` (the evaluate and artifacts hooks), `predict` (scoring new reviews); this module
declares the options, picks the reader through `READERS` and assembles the `TaskSpec`.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import keras
import numpy as np

from rnnbench import text as textlib
from rnnbench.errors import UserError
from rnnbench.options import as_dict, option
from rnnbench.pipeline import run_shuffle_seed
from rnnbench.registry import register_task
from rnnbench.spec import InputSpec, OutputSpec, TaskSpec
from rnnbench.tasks.imdb.artifacts import CLASS_NAMES, ScoredTestSplit
from rnnbench.tasks.imdb.predict import predict_from_run, save_vocabulary
from rnnbench.tasks.imdb.sources import TFDS_NAME, RawReviews, read_review_folder, read_tables, read_tfds
from rnnbench.tasks.imdb.splits import split_reviews, stratified_holdout, subsample
from rnnbench.tasks.imdb.tokens import evaluation_batches, fit_vectorizer, to_token_ids

__all__ = ["CLASS_NAMES", "READERS", "TFDS_NAME", "TRUNCATIONS", "ImdbOptions", "RawReviews", "evaluation_batches",
           "fit_vectorizer", "load", "read_review_folder", "read_tables", "read_tfds", "split_reviews",
           "stratified_holdout", "subsample", "to_token_ids"]

TRUNCATIONS = ("keep_end", "keep_start")


@dataclasses.dataclass(frozen=True)
class ImdbOptions:
    seed: int = option(0, "data seed: subsamples, the validation (and file test) hold-out, the training shuffle")
    vocab_size: int = option(20000, "vocabulary size including padding (id 0) and [UNK] (id 1), fit on the "
                                    "training part only; at least 3")
    max_length: int = option(200, "tokens kept per review", minimum=1)
    truncation: str = option("keep_end", "keep_end keeps the last max_length tokens (where reviews tend to give "
                                         "their verdict, and what Keras' pad_sequences does by default); keep_start "
                                         "keeps the first", choices=TRUNCATIONS)
    val_fraction: float = option(0.1, "share of the training split held out for validation (stratified by label), "
                                      "between 0 and 1 (exclusive)")
    buckets: int = option(8, "number of length buckets for training batches (quantiles of training lengths); 0 or "
                             "1 pads every batch to its own longest review")
    max_train_examples: int = option(0, "stratified subsample of the train split (0: all), for quick runs")
    max_test_examples: int = option(0, "stratified subsample of the test split (0: all), for quick runs")
    data_file: str | None = option(None, "CSV/TSV (.csv, .tsv, optionally .gz) of training reviews with a header "
                                         "row; replaces tfds", path=True)
    test_file: str | None = option(None, "the matching test file; without it, test_fraction of data_file is held "
                                         "out as test", path=True)
    test_fraction: float = option(0.2, "share of data_file held out as test when no test_file is given (stratified "
                                       "by label), between 0 and 1 (exclusive)")
    data_dir: str | None = option(None, "an aclImdb-style folder {train,test}/{pos,neg}/*.txt; replaces tfds",
                                  path=True)
    text_column: str = option("text", "column of the review text in data_file and test_file")
    label_column: str = option("label", "column of the label in data_file and test_file; labels 0/1, neg/pos or "
                                        "negative/positive")
    download: bool = option(False, "download imdb_reviews (about 80 MB) into TFDS_DATA_DIR when it is not there; "
                                   "off, a missing copy is an error at once")

    def __post_init__(self):
        if self.vocab_size < 3:
            raise UserError(f"task.vocab_size must be >= 3 (ids 0 and 1 are padding and [UNK]), got {self.vocab_size}")
        for key, value in (("val_fraction", self.val_fraction), ("test_fraction", self.test_fraction)):
            if not 0.0 < value < 1.0:
                raise UserError(f"task.{key} must be between 0 and 1 (exclusive), got {value}")
        if self.buckets < 0 or self.max_train_examples < 0 or self.max_test_examples < 0:
            raise UserError("task.buckets, task.max_train_examples and task.max_test_examples must be >= 0")
        if self.data_file and self.data_dir:
            raise UserError("give task.data_file (a CSV/TSV) or task.data_dir (an aclImdb-style folder), not both")
        if self.test_file and not self.data_file:
            raise UserError("task.test_file needs task.data_file for the training reviews")

    @property
    def source(self) -> str:
        """The key in `READERS` of the reader these options ask for: a review folder, a table, or else tfds."""
        return "folder" if self.data_dir else "table" if self.data_file else "tfds"


READERS = {
    "tfds": lambda options: read_tfds(options.download),
    "table": lambda options: read_tables(options.data_file, options.test_file, options.text_column,
                                         options.label_column, options.test_fraction, options.seed),
    "folder": lambda options: read_review_folder(options.data_dir),
}


@register_task("imdb", options=ImdbOptions, predict=predict_from_run)
def load(options: ImdbOptions, *, batch_size: int = 32) -> TaskSpec:
    """IMDB sentiment: reviews as masked token ids, two classes, against TF-IDF logistic regression."""
    seed, max_length, truncation = options.seed, options.max_length, options.truncation
    raw = READERS[options.source](options)
    parts = split_reviews(raw, seed, options.val_fraction, options.max_train_examples, options.max_test_examples)
    (train_texts, train_labels), (val_texts, val_labels) = parts["train"], parts["val"]
    test_texts, test_labels = parts["test"]

    vectorizer = fit_vectorizer(train_texts, options.vocab_size)
    vocabulary = [str(word) for word in vectorizer.get_vocabulary()]
    train_ids, train_full_lengths = to_token_ids(vectorizer, train_texts, max_length, truncation, "training")
    val_ids, _ = to_token_ids(vectorizer, val_texts, max_length, truncation, "validation")
    test_ids, _ = to_token_ids(vectorizer, test_texts, max_length, truncation, "test")

    boundaries = textlib.length_bucket_boundaries(np.asarray([len(s) for s in train_ids]), options.buckets)

    def training_batches(bucket_boundaries, shuffle_seed=seed):
        return textlib.bucketed_batches(train_ids, train_labels, batch_size, bucket_boundaries, shuffle_seed)

    train_ds = training_batches(boundaries)
    val_ds, _ = evaluation_batches(val_ids, val_labels, batch_size)
    test_ds, test_order = evaluation_batches(test_ids, test_labels, batch_size)

    baseline, baseline_l2 = textlib.tfidf_logistic_regression(
        (train_ids, train_labels), (val_ids, val_labels), (test_ids, test_labels), len(vocabulary)
    )
    train_set = set(train_texts)
    notes = {
        # Measured on fresh copies of the pipelines, so the datasets handed to the runner start at their first epoch.
        "padded_fraction_train": round(textlib.padded_fraction(training_batches(boundaries)), 4),
        "padded_fraction_train_without_buckets": round(textlib.padded_fraction(training_batches([])), 4),
        "padded_fraction_test": round(textlib.padded_fraction(test_ds), 4),
        "bucket_boundaries": ",".join(map(str, boundaries)) or "none",
        "truncated_fraction_train": round(float(np.mean(train_full_lengths > max_length)), 4),
        "mean_tokens_train_before_truncation": round(float(np.mean(train_full_lengths)), 1),
        "vocabulary_size": len(vocabulary),
        "vocabulary_sha256": hashlib.sha256("\n".join(vocabulary).encode("utf-8")).hexdigest(),
        "val_reviews_also_in_train": sum(t in train_set for t in val_texts),
        "test_reviews_also_in_train": sum(t in train_set for t in test_texts),
        "baseline_tfidf_logreg_l2": baseline_l2,
        "example_batch_length": int(max(len(test_ids[i]) for i in test_order[:batch_size])),
    }
    scored = ScoredTestSplit(test_ds, test_order, test_texts, test_labels, test_ids, vocabulary, seed)

    def artifacts(model, out_dir) -> None:
        scored.artifacts(model, out_dir)
        save_vocabulary(Path(out_dir) / "vocabulary.json", vocabulary, max_length, truncation)

    return TaskSpec(
        name="imdb",
        inputs=InputSpec("tokens", vocab_size=len(vocabulary), masked=True),
        outputs=OutputSpec("classification", num_classes=2),
        train=train_ds,
        train_for=lambda run_seed: training_batches(boundaries, run_shuffle_seed(seed, run_seed)),
        val=val_ds,
        test=test_ds,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=(
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            # 1000 thresholds keep this within about 1e-3 of the exact AUC that the baseline reports
            textlib.PositiveClassAUC(name="auc", num_thresholds=1000),
            textlib.PositiveClassF1(name="f1"),
        ),
        primary_metric="accuracy",
        higher_is_better=True,
        baselines={"tfidf_logreg": baseline},
        dataset={**raw.identity, "train_examples": len(train_labels), "val_examples": len(val_labels),
                 "test_examples": len(test_labels)},
        options=as_dict(options),
        evaluate=scored.evaluate,
        artifacts=artifacts,
        notes=notes,
    )
