"""Building blocks for text-classification tasks: reading labelled tables, cleaning, length-bucketed batches,
binary metrics that read two-class logits, and a TF-IDF logistic-regression reference model.

Everything here is task-agnostic; `rnnbench/tasks/imdb.py` puts it together for IMDB reviews.
"""
from __future__ import annotations

import csv
import gzip
import re
import zlib
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import scipy.optimize
import scipy.sparse
import scipy.special
import scipy.stats
import tensorflow as tf

from rnnbench.errors import DataError
from rnnbench.pipeline import shuffled_rows

TABLE_SUFFIXES = {".csv": ",", ".csv.gz": ",", ".tsv": "\t", ".tsv.gz": "\t"}
NEGATIVE_LABELS = {"0", "neg", "negative"}
POSITIVE_LABELS = {"1", "pos", "positive"}

_HTML_LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def remove_html_line_breaks(text: str) -> str:
    """IMDB reviews keep the site's `<br />` tags; left in, they become the token "br" in almost every review."""
    return _HTML_LINE_BREAK.sub(" ", text)


def parse_binary_label(value: str) -> int | None:
    """0/1, neg/pos or negative/positive (any case) as 0 or 1; None for anything else."""
    key = value.strip().lower()
    if key in NEGATIVE_LABELS:
        return 0
    if key in POSITIVE_LABELS:
        return 1
    return None


def table_delimiter(path: Path) -> str:
    name = path.name.lower()
    for suffix, delimiter in TABLE_SUFFIXES.items():
        if name.endswith(suffix):
            return delimiter
    raise DataError(
        f"{path}: unsupported file type; give a table ending in {', '.join(TABLE_SUFFIXES)} "
        "(comma- or tab-separated, optionally gzip-compressed)"
    )


def read_labelled_table(path: str | Path, text_column: str, label_column: str) -> tuple[list[str], np.ndarray]:
    """Texts and 0/1 labels from a CSV/TSV file (gzip allowed), checked row by row.

    Raises DataError naming the file, the line and the fix for: a missing or unreadable file, an unsupported suffix,
    a corrupt gzip stream, text that is not UTF-8, an empty file, missing columns, rows with the wrong number of
    fields, empty texts and labels other than 0/1, neg/pos, negative/positive.
    """
    path = Path(path)
    delimiter = table_delimiter(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; check the path (it is read relative to the current directory)")
    # Reviews are long; the csv module's default field limit (128 KiB) is too small for some real corpora.
    csv.field_size_limit(2**31 - 1)
    texts: list[str] = []
    labels: list[int] = []
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    reader = None
    try:
        # utf-8-sig drops the byte-order mark that spreadsheet programs put in front of the header.
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path}: the file is empty; expected a header row naming the columns "
                                f"{text_column!r} and {label_column!r}, then one row per example")
            header = [name.strip() for name in header]
            missing = [name for name in (text_column, label_column) if name not in header]
            if missing:
                raise DataError(
                    f"{path}: no column named {', '.join(map(repr, missing))}; the header has {header}. "
                    "Name the right ones with --set task.text_column=NAME task.label_column=NAME"
                )
            text_index, label_index = header.index(text_column), header.index(label_column)
            for row in reader:
                if not row:  # a blank line
                    continue
                if len(row) != len(header):
                    raise DataError(
                        f"{path}, line {reader.line_num}: {len(row)} fields where the header has {len(header)}; "
                        f"quote fields that contain the delimiter {delimiter!r} or a newline"
                    )
                label = parse_binary_label(row[label_index])
                if label is None:
                    raise DataError(
                        f"{path}, line {reader.line_num}: label {row[label_index]!r} in column {label_column!r} is "
                        "not one of 0/1, neg/pos, negative/positive; fix the value or pick the label column with "
                        "--set task.label_column=NAME"
                    )
                text = row[text_index]
                if not text.strip():
                    raise DataError(f"{path}, line {reader.line_num}: empty text in column {text_column!r}; "
                                    "remove the row or fill in the text")
                texts.append(text)
                labels.append(label)
    except UnicodeDecodeError as error:
        # The decoder reads ahead of the csv parser, so the line is where parsing stopped, not the exact line.
        near = f" near line {reader.line_num + 1}" if reader is not None else ""
        raise DataError(f"{path}: not valid UTF-8 (byte 0x{error.object[error.start]:02x}{near}); "
                        "re-save the file as UTF-8") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise DataError(f"{path}: corrupt or truncated gzip data ({error}); re-create or re-download the file"
                        ) from None
    except csv.Error as error:
        line = reader.line_num if reader is not None else 0
        raise DataError(f"{path}, line {line}: malformed CSV ({error}); check the quoting of that line") from None
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error}); check the file and its permissions") from None
    if not texts:
        raise DataError(f"{path}: the header is there but no rows follow; the file holds no examples")
    return texts, np.asarray(labels, dtype=np.int32)


def require_both_classes(labels: np.ndarray, where: str) -> None:
    """Accuracy, AUC and F1 need both classes; a split with one class is a data problem, not a result."""
    if len(labels) == 0:
        raise DataError(f"{where} is empty; give more examples or lower the held-out fractions")
    present = set(np.unique(labels).tolist())
    if present != {0, 1}:
        raise DataError(f"{where} has only label {sorted(present)} among {len(labels)} examples; "
                        "both classes (0 and 1) are needed, so give more or better-mixed examples")


# ---------------------------------------------------------------------------------------------------------------------
# Length-bucketed batches of token ids.


def length_bucket_boundaries(lengths: np.ndarray, buckets: int) -> list[int]:
    """Boundaries at quantiles of `lengths`, so each of the `buckets` buckets gets a similar share of examples."""
    if buckets <= 1 or len(lengths) == 0:
        return []
    quantiles = np.quantile(lengths, np.linspace(0.0, 1.0, buckets + 1)[1:-1])
    # A bucket holds lengths in [lower, upper); +1 puts the quantile length itself in the lower bucket.
    boundaries = np.unique(np.floor(quantiles).astype(int) + 1)
    return [int(b) for b in boundaries if b <= int(np.max(lengths))]


def token_dataset(sequences: Sequence[np.ndarray], labels: np.ndarray) -> tf.data.Dataset:
    """Unbatched `(token_ids, label)` pairs of varying length."""
    lengths = np.asarray([len(s) for s in sequences], dtype=np.int64)
    values = np.concatenate(list(sequences)).astype(np.int32) if len(sequences) else np.zeros(0, np.int32)
    ragged = tf.RaggedTensor.from_row_lengths(values, lengths)
    # Slicing a ragged tensor gives ragged-typed elements that padded_batch refuses; the identity map makes them
    # plain tensors.
    return tf.data.Dataset.from_tensor_slices((ragged, labels.astype(np.int32))).map(lambda x, y: (tf.identity(x), y))


def bucketed_batches(
    sequences: Sequence[np.ndarray],
    labels: np.ndarray,
    batch_size: int,
    boundaries: Sequence[int],
    shuffle_seed: int | None,
) -> tf.data.Dataset:
    """Right-padded (id 0) batches that group examples of similar length, so few timesteps are padding.

    With `shuffle_seed`, examples are shuffled (a new, seeded order each epoch) before they are grouped; without it
    the order is fixed. With no boundaries every batch is padded to its own longest example.
    """
    if shuffle_seed is None:
        ds = token_dataset(sequences, labels)
    else:
        # token_dataset's pairs in the order of shuffling them, without refilling a whole-split buffer of
        # reviews at every pass (see shuffled_indices)
        ds = shuffled_rows([sequences, np.asarray(labels)], [np.int32, np.int32], shuffle_seed)
    if boundaries:
        ds = ds.bucket_by_sequence_length(
            element_length_func=lambda x, y: tf.shape(x)[0],
            bucket_boundaries=list(boundaries),
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        )
    else:
        ds = ds.padded_batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)


def padded_fraction(ds: tf.data.Dataset) -> float:
    """Share of the timesteps in one pass over `ds` that are padding (id 0 is reserved for padding)."""
    padded = total = 0
    for x, _ in ds.as_numpy_iterator():
        padded += int(np.count_nonzero(x == 0))
        total += x.size
    return padded / total if total else 0.0


# ---------------------------------------------------------------------------------------------------------------------
# Metrics on two-class logits (batch, 2) against integer labels (batch,), the classification head's output.


@keras.saving.register_keras_serializable(package="rnnbench")
class PositiveClassAUC(keras.metrics.AUC):
    """ROC AUC of the positive class (label 1), read from two-class logits."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        positive = keras.ops.softmax(y_pred, axis=-1)[..., 1]
        return super().update_state(keras.ops.reshape(y_true, (-1,)), positive, sample_weight)


@keras.saving.register_keras_serializable(package="rnnbench")
class PositiveClassF1(keras.metrics.Metric):
    """F1 score of the positive class (label 1); a review counts as positive when its logit for 1 is the larger."""

    def __init__(self, name: str = "f1", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.true_positives = self.add_variable(shape=(), initializer="zeros", name="true_positives")
        self.false_positives = self.add_variable(shape=(), initializer="zeros", name="false_positives")
        self.false_negatives = self.add_variable(shape=(), initializer="zeros", name="false_negatives")

    def update_state(self, y_true, y_pred, sample_weight=None):
        ops = keras.ops
        predicted = ops.cast(ops.equal(ops.argmax(y_pred, axis=-1), 1), self.dtype)
        actual = ops.cast(ops.equal(ops.reshape(y_true, (-1,)), 1), self.dtype)
        weight = ops.ones_like(actual) if sample_weight is None else ops.cast(ops.reshape(sample_weight, (-1,)),
                                                                             self.dtype)
        self.true_positives.assign_add(ops.sum(predicted * actual * weight))
        self.false_positives.assign_add(ops.sum(predicted * (1 - actual) * weight))
        self.false_negatives.assign_add(ops.sum((1 - predicted) * actual * weight))

    def result(self):
        return keras.ops.divide_no_nan(
            2 * self.true_positives, 2 * self.true_positives + self.false_positives + self.false_negatives
        )

    def reset_state(self):
        for variable in (self.true_positives, self.false_positives, self.false_negatives):
            variable.assign(0.0)


def binary_metrics(labels: np.ndarray, positive_scores: np.ndarray, threshold: float) -> dict[str, float]:
    """accuracy, auc (exact, ties share ranks), and f1, precision and recall of the positive class; the first three
    are named as the Keras metrics above name themselves."""
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(positive_scores, dtype=np.float64)
    predicted = scores > threshold
    true_positives = int(np.sum(predicted & (labels == 1)))
    false_positives = int(np.sum(predicted & (labels == 0)))
    false_negatives = int(np.sum(~predicted & (labels == 1)))
    positives, negatives = int(np.sum(labels == 1)), int(np.sum(labels == 0))
    ranks = scipy.stats.rankdata(scores)
    # Mann-Whitney U: the probability that a random positive outscores a random negative.
    auc = (ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    f1_denominator = 2 * true_positives + false_positives + false_negatives
    return {
        "accuracy": float(np.mean(predicted == (labels == 1))),
        "auc": float(auc),
        "f1": 2 * true_positives / f1_denominator if f1_denominator else 0.0,
        "precision": true_positives / (true_positives + false_positives) if true_positives + false_positives else 0.0,
        "recall": true_positives / positives if positives else 0.0,
    }


# ---------------------------------------------------------------------------------------------------------------------
# The non-recurrent reference model.


def tfidf_matrix(sequences: Sequence[np.ndarray], vocab_size: int, idf: np.ndarray | None = None):
    """Rows: L2-normalised sublinear TF-IDF of each token-id sequence. Returns (matrix, idf); pass the training idf
    back in to transform other splits with the training statistics only."""
    lengths = np.asarray([len(s) for s in sequences])
    rows = np.repeat(np.arange(len(sequences)), lengths)
    columns = np.concatenate(list(sequences)).astype(np.int64) if len(sequences) else np.zeros(0, np.int64)
    counts = scipy.sparse.csr_matrix((np.ones(len(columns)), (rows, columns)), shape=(len(sequences), vocab_size))
    counts.sum_duplicates()
    if idf is None:
        document_frequency = np.bincount(counts.indices, minlength=vocab_size)
        idf = np.log((1 + len(sequences)) / (1 + document_frequency)) + 1.0
    weights = counts.copy()
    weights.data = (1.0 + np.log(weights.data)) * idf[weights.indices]
    norms = np.sqrt(np.asarray(weights.multiply(weights).sum(axis=1)).ravel())
    weights = scipy.sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ weights
    return weights.tocsr(), idf


class LogisticRegression:
    """L2-regularised logistic regression fit by Newton-CG: deterministic, no random initialisation, and on sparse
    TF-IDF features about five times faster than L-BFGS (a handful of Newton steps instead of a hundred gradients)."""

    def __init__(self, l2: float):
        self.l2 = l2

    def fit(self, features, labels: np.ndarray, initial: np.ndarray | None = None) -> "LogisticRegression":
        """`initial`: (weights, bias) packed as one vector, e.g. the solution for a neighbouring `l2`."""
        n, d = features.shape
        targets = np.asarray(labels, dtype=np.float64)

        def loss_and_gradient(params):
            weights, bias = params[:d], params[d]
            logits = features @ weights + bias
            # log(1 + e^z) - y z, written to stay finite for large |z|
            loss = np.mean(np.logaddexp(0.0, logits) - targets * logits) + 0.5 * self.l2 * weights @ weights
            error = (scipy.special.expit(logits) - targets) / n
            return loss, np.concatenate([features.T @ error + self.l2 * weights, [error.sum()]])

        def hessian_times(params, vector):
            probability = scipy.special.expit(features @ params[:d] + params[d])
            scaled = probability * (1.0 - probability) / n * (features @ vector[:d] + vector[d])
            return np.concatenate([features.T @ scaled + self.l2 * vector[:d], [scaled.sum()]])

        start = np.zeros(d + 1) if initial is None else initial
        result = scipy.optimize.minimize(loss_and_gradient, start, jac=True, hessp=hessian_times, method="Newton-CG",
                                         options={"maxiter": 100})
        self.params_ = result.x
        return self

    def decision_function(self, features) -> np.ndarray:
        return features @ self.params_[:-1] + self.params_[-1]


def tfidf_logistic_regression(
    train: tuple[Sequence[np.ndarray], np.ndarray],
    val: tuple[Sequence[np.ndarray], np.ndarray],
    test: tuple[Sequence[np.ndarray], np.ndarray],
    vocab_size: int,
    l2_grid: Sequence[float] = (1e-4, 1e-5, 1e-6),
) -> tuple[dict[str, float], float]:
    """Bag-of-words reference: fit on `train`, pick the L2 strength on `val`, score `test` once.

    Works on the same token ids the recurrent models see, so the gap between them is what order and recurrence add.
    Returns the test metrics (accuracy, auc, f1) and the chosen L2 strength.
    """
    train_features, idf = tfidf_matrix(train[0], vocab_size)
    val_features, _ = tfidf_matrix(val[0], vocab_size, idf)
    best, previous = None, None
    for l2 in l2_grid:  # strongest regularisation first, each fit starting from the previous solution
        model = LogisticRegression(l2).fit(train_features, train[1], initial=previous)
        previous = model.params_
        val_accuracy = binary_metrics(val[1], model.decision_function(val_features), 0.0)["accuracy"]
        if best is None or val_accuracy > best[0]:
            best = (val_accuracy, l2, model)
    _, l2, model = best
    test_features, _ = tfidf_matrix(test[0], vocab_size, idf)
    return binary_metrics(test[1], model.decision_function(test_features), 0.0), l2
