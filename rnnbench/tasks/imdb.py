"""IMDB movie-review sentiment (many-to-one): is a review positive or negative?

Data, from one of: an aclImdb-style folder (`data_dir`: `{train,test}/{pos,neg}/*.txt`), a CSV/TSV file
(`data_file`, optionally `test_file`), or, when neither is given, tensorflow-datasets' `imdb_reviews` (read from
`TFDS_DATA_DIR`, downloaded when absent and allowed). Validation reviews are a seeded, label-stratified share of
the training split; the test split is only touched by the final evaluation and by the baseline's single test score.

Preprocessing: `<br />` tags removed, `TextVectorization` (lower case, punctuation stripped, whitespace split)
adapted on the training part only, reviews cut to `max_length` tokens, right-padded with id 0 and masked. Training
batches group reviews of similar length; `spec.notes` logs the share of padded timesteps with and without that.

Metrics: accuracy, ROC AUC and F1 of the positive class (compiled into the model), precision and recall (test only,
from the evaluate hook). Reference row: TF-IDF logistic regression on the same token ids. Artifacts: confusion
matrix, the most confidently misclassified reviews, per-review test predictions and, for attention models,
attention over the words of a few short reviews.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from rnnbench import text as textlib
from rnnbench.errors import DataError, UserError
from rnnbench.registry import register_task
from rnnbench.tfds_data import prepared_builder
from rnnbench.spec import InputSpec, OutputSpec, TaskSpec
from rnnbench.tasks._pipeline import run_shuffle_seed

TFDS_NAME = "imdb_reviews"
TRUNCATIONS = ("keep_end", "keep_start")
CLASS_NAMES = ("negative", "positive")
_PAD_ID, _OOV_ID = 0, 1


@dataclasses.dataclass
class RawReviews:
    """Review texts and 0/1 labels of the train and test splits as read, plus where they came from."""

    train_texts: list[str]
    train_labels: np.ndarray
    test_texts: list[str]
    test_labels: np.ndarray
    identity: dict


# ---------------------------------------------------------------------------------------------------------------------
# Sources


def _missing_tfds_remedy() -> str:
    return (
        "either set TFDS_DATA_DIR to a folder that holds imdb_reviews/plain_text/1.0.0 (a tensorflow-datasets data "
        "dir), or give local data with --set task.data_file=reviews.csv [task.test_file=test.csv] "
        "or task.data_dir=path/to/aclImdb"
    )


def read_tfds(download: bool) -> RawReviews:
    """imdb_reviews through tensorflow-datasets, from TFDS_DATA_DIR (read now, not at import) or tfds's default."""
    builder = prepared_builder(TFDS_NAME, download, _missing_tfds_remedy())
    splits = {}
    for split in ("train", "test"):
        texts: list[str] = []
        labels: list[np.ndarray] = []
        try:
            ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
            for text_batch, label_batch in ds.batch(4096).as_numpy_iterator():
                texts.extend(t.decode("utf-8") for t in text_batch)
                labels.append(label_batch)
        except (tf.errors.DataLossError, tf.errors.NotFoundError, UnicodeDecodeError) as error:
            raise DataError(
                f"tfds dataset {TFDS_NAME} in {builder.data_dir}: the {split} split cannot be read "
                f"({type(error).__name__}: {str(error)[:300]}); delete that folder and prepare it again, or "
                + _missing_tfds_remedy()
            ) from None
        splits[split] = (texts, np.concatenate(labels).astype(np.int32) if labels else np.zeros(0, np.int32))
    identity = {"name": TFDS_NAME, "source": "tfds", "version": str(builder.info.version),
                "config": builder.builder_config.name if builder.builder_config else ""}
    return RawReviews(*splits["train"], *splits["test"], identity=identity)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_tables(data_file: str, test_file: str | None, text_column: str, label_column: str,
                test_fraction: float, seed: int) -> RawReviews:
    """Reviews from CSV/TSV files; without `test_file`, a seeded stratified `test_fraction` of `data_file`."""
    train_path = Path(data_file)
    texts, labels = textlib.read_labelled_table(train_path, text_column, label_column)
    identity = {"name": train_path.name, "source": "file", "sha256": _file_sha256(train_path)}
    if test_file:
        test_path = Path(test_file)
        test_texts, test_labels = textlib.read_labelled_table(test_path, text_column, label_column)
        identity.update(test_name=test_path.name, test_sha256=_file_sha256(test_path))
        return RawReviews(texts, labels, test_texts, test_labels, identity)
    keep, held_out = stratified_holdout(labels, test_fraction, np.random.default_rng([seed, 2]))
    identity["test"] = f"{test_fraction:g} of {train_path.name}, held out with seed {seed}"
    return RawReviews([texts[i] for i in keep], labels[keep], [texts[i] for i in held_out], labels[held_out],
                      identity)


def read_review_folder(data_dir: str) -> RawReviews:
    """The layout of Stanford's aclImdb archive: `{train,test}/{pos,neg}/*.txt`, one UTF-8 review per file."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; task.data_dir must hold train/pos, train/neg, test/pos and "
                        "test/neg with one .txt review per file (the layout of aclImdb_v1.tar.gz)")
    digest = hashlib.sha256()
    splits = {}
    for split in ("train", "test"):
        texts: list[str] = []
        labels: list[int] = []
        for label, folder_name in ((0, "neg"), (1, "pos")):
            folder = root / split / folder_name
            files = sorted(folder.glob("*.txt")) if folder.is_dir() else []
            if not files:
                raise DataError(f"{folder}: {'no .txt files' if folder.is_dir() else 'missing folder'}; "
                                f"task.data_dir needs {split}/{folder_name}/*.txt with one review per file")
            for path in files:
                try:
                    raw = path.read_bytes()
                    review = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise DataError(f"{path}: not valid UTF-8 (byte {error.start}); re-save it as UTF-8") from None
                except OSError as error:
                    raise DataError(f"{path}: cannot be read ({error}); check the file and its permissions") from None
                if not review.strip():
                    raise DataError(f"{path}: the review is empty; delete the file or fill it in")
                digest.update(f"{split}/{folder_name}/{path.name}\0".encode() + raw + b"\0")
                texts.append(review)
                labels.append(label)
        splits[split] = (texts, np.asarray(labels, dtype=np.int32))
    identity = {"name": root.name, "source": "folder", "sha256": digest.hexdigest()}
    return RawReviews(*splits["train"], *splits["test"], identity=identity)


# ---------------------------------------------------------------------------------------------------------------------
# Splitting and token ids


def stratified_holdout(labels: np.ndarray, fraction: float, rng: np.random.Generator):
    """(kept, held out) index arrays, each sorted; the held-out part has `fraction` of every label."""
    held_out = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        held_out.append(members[: int(round(len(members) * fraction))])
    held_out = np.sort(np.concatenate(held_out)) if held_out else np.zeros(0, int)
    return np.setdiff1d(np.arange(len(labels)), held_out), held_out


def subsample(texts: list[str], labels: np.ndarray, limit: int, rng: np.random.Generator):
    """At most `limit` examples (0: all), label-stratified, in their original order."""
    if limit <= 0 or limit >= len(labels):
        return texts, labels
    _, picked = stratified_holdout(labels, limit / len(labels), rng)
    return [texts[i] for i in picked], labels[picked]


def fit_vectorizer(train_texts: list[str], vocab_size: int) -> keras.layers.TextVectorization:
    """Vocabulary of the `vocab_size - 2` most frequent training words (ids 0 and 1 are padding and [UNK])."""
    vectorizer = keras.layers.TextVectorization(
        max_tokens=vocab_size, standardize="lower_and_strip_punctuation", split="whitespace", output_mode="int",
        ragged=True,
    )
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(train_texts).batch(2048))
    return vectorizer


def to_token_ids(vectorizer: keras.layers.TextVectorization, texts: list[str], max_length: int, truncation: str,
                 split: str) -> tuple[list[np.ndarray], np.ndarray]:
    """Token-id arrays cut to `max_length`, and each review's full length before the cut."""
    sequences: list[np.ndarray] = []
    for start in range(0, len(texts), 2048):
        ragged = vectorizer(tf.constant(texts[start:start + 2048]))
        values, lengths = ragged.flat_values.numpy().astype(np.int32), ragged.row_lengths().numpy()
        sequences.extend(np.split(values, np.cumsum(lengths)[:-1]))
    full_lengths = np.asarray([len(s) for s in sequences])
    empty = np.flatnonzero(full_lengths == 0)
    if len(empty):
        raise DataError(
            f"{len(empty)} {split} reviews have no words left after lower-casing and removing punctuation "
            f"(the first: {texts[empty[0]][:80]!r}); remove them from the data"
        )
    if truncation == "keep_end":
        sequences = [s[-max_length:] for s in sequences]
    else:
        sequences = [s[:max_length] for s in sequences]
    return sequences, full_lengths


def evaluation_batches(sequences: list[np.ndarray], labels: np.ndarray, batch_size: int):
    """Length-sorted batches (little padding), with the median-length batch first.

    The runner times inference and draws its attention plot on the first test batch; a batch of the shortest reviews
    would flatter latency. Returns (dataset, order): row k across the batches is example `order[k]`.
    """
    by_length = np.argsort([len(s) for s in sequences], kind="stable")
    batches = [by_length[i:i + batch_size] for i in range(0, len(by_length), batch_size)]
    # Only full batches may move: padded_batch cuts the stream every batch_size rows, so the short one stays last.
    full = len(batches) if len(by_length) % batch_size == 0 else len(batches) - 1
    if full > 1:
        median = full // 2
        batches = [batches[median]] + batches[:median] + batches[median + 1:]
    order = np.concatenate(batches) if batches else np.zeros(0, int)
    ds = textlib.token_dataset([sequences[i] for i in order], labels[order]).padded_batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE), order


# ---------------------------------------------------------------------------------------------------------------------
# Artifacts


def _positive_probabilities(model, ds) -> np.ndarray:
    logits = np.asarray(model.predict(ds, verbose=0), dtype=np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    return probabilities[:, 1] / probabilities.sum(axis=1)


def _write_confusion_matrix(labels: np.ndarray, predicted: np.ndarray, out_dir: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.zeros((2, 2), dtype=int)
    np.add.at(counts, (labels, predicted), 1)
    rows = ["true\\predicted," + ",".join(CLASS_NAMES)]
    rows += [f"{CLASS_NAMES[i]}," + ",".join(str(c) for c in counts[i]) for i in range(2)]
    (out_dir / "confusion_matrix.csv").write_text("\n".join(rows) + "\n")
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.imshow(counts, cmap="Blues")
    for (i, j), count in np.ndenumerate(counts):
        ax.text(j, i, f"{count}\n{count / max(1, counts[i].sum()):.1%}", ha="center", va="center",
                color="white" if count > counts.max() / 2 else "black")
    ax.set_xticks([0, 1], CLASS_NAMES)
    ax.set_yticks([0, 1], CLASS_NAMES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out_dir / "confusion_matrix.png", dpi=100)
    plt.close(fig)


def _write_misclassified(texts, labels, probabilities, out_dir: Path, per_class: int = 5) -> None:
    """The reviews the model was most sure about and got wrong, per true class."""
    lines = [f"The {per_class} most confident mistakes per true class on the test split (text after <br /> removal; "
             "the model saw at most task.max_length of its tokens).", ""]
    for label in (0, 1):
        wrong = np.flatnonzero((labels == label) & ((probabilities > 0.5) != bool(label)))
        confidence = np.abs(probabilities[wrong] - label)  # distance from the right answer
        for index in wrong[np.argsort(-confidence, kind="stable")][:per_class]:
            lines += [f"[test #{index}] true {CLASS_NAMES[label]}, p(positive) = {probabilities[index]:.3f}",
                      texts[index][:2000] + (" [...]" if len(texts[index]) > 2000 else ""), ""]
    (out_dir / "misclassified.txt").write_text("\n".join(lines), encoding="utf-8")


def _write_attention_words(model, sequences, vocabulary, rng, out_dir: Path, count: int = 4) -> None:
    """Attention over the words of a few short test reviews, with the words as tick labels."""
    from rnnbench.models import attention_weights

    lengths = np.asarray([len(s) for s in sequences])
    short = np.flatnonzero((lengths >= 10) & (lengths <= 60))
    if len(short) == 0:
        short = np.argsort(lengths, kind="stable")
    picks = rng.permutation(short)[:count]
    width = int(lengths[picks].max())
    batch = np.zeros((len(picks), width), dtype=np.int32)
    for row, index in enumerate(picks):
        batch[row, : lengths[index]] = sequences[index]
    weights = attention_weights(model, batch)
    if weights is None:
        return
    weights = np.asarray(weights)
    if weights.ndim == 4:  # self-attention (batch, heads, query, key): attention each word receives, averaged
        weights = weights.mean(axis=(1, 2))
    weights = weights.reshape(len(picks), -1)[:, :width]

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(picks), 1, figsize=(max(8, width * 0.22), 1.6 * len(picks)), squeeze=False)
    table = ["review,position,token,weight"]
    for ax, row, index in zip(axes[:, 0], weights, picks):
        n = int(lengths[index])
        words = [vocabulary[t] for t in sequences[index]]
        ax.imshow(row[None, :n], aspect="auto", cmap="magma")
        ax.set_xticks(range(n), words, rotation=90, fontsize=7)
        ax.set_yticks([])
        ax.set_ylabel(f"#{index}", rotation=0, ha="right", va="center", fontsize=8)
        table += [f"{index},{i},{w},{row[i]:.6f}" for i, w in enumerate(words)]
    fig.suptitle(f"{model.name}: attention over words of short test reviews")
    fig.tight_layout()
    fig.savefig(out_dir / "attention_words.png", dpi=100)
    plt.close(fig)
    (out_dir / "attention_words.csv").write_text("\n".join(table) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------------------------------
# The loader


def _check_options(batch_size, vocab_size, max_length, truncation, val_fraction, test_fraction, buckets,
                   max_train_examples, max_test_examples, data_file, test_file, data_dir) -> None:
    if batch_size < 1:
        raise UserError(f"train.batch_size must be >= 1, got {batch_size}")
    if vocab_size < 3:
        raise UserError(f"task.vocab_size must be >= 3 (ids 0 and 1 are padding and [UNK]), got {vocab_size}")
    if max_length < 1:
        raise UserError(f"task.max_length must be >= 1, got {max_length}")
    if truncation not in TRUNCATIONS:
        raise UserError(f"task.truncation must be one of {TRUNCATIONS}, got {truncation!r}")
    for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < value < 1.0:
            raise UserError(f"task.{key} must be between 0 and 1 (exclusive), got {value}")
    if buckets < 0 or max_train_examples < 0 or max_test_examples < 0:
        raise UserError("task.buckets, task.max_train_examples and task.max_test_examples must be >= 0")
    if data_file and data_dir:
        raise UserError("give task.data_file (a CSV/TSV) or task.data_dir (an aclImdb-style folder), not both")
    if test_file and not data_file:
        raise UserError("task.test_file needs task.data_file for the training reviews")


@register_task("imdb")
def load(
    *,
    batch_size: int = 32,
    seed: int = 0,
    vocab_size: int = 20000,
    max_length: int = 200,
    truncation: str = "keep_end",
    val_fraction: float = 0.1,
    buckets: int = 8,
    max_train_examples: int = 0,
    max_test_examples: int = 0,
    data_file: str | None = None,
    test_file: str | None = None,
    test_fraction: float = 0.2,
    data_dir: str | None = None,
    text_column: str = "text",
    label_column: str = "label",
    download: bool = True,
) -> TaskSpec:
    """IMDB sentiment.

    Args:
      seed: data seed: subsamples, the validation (and file test) hold-out, the training shuffle.
      vocab_size: vocabulary size including padding (id 0) and [UNK] (id 1), fit on the training part only.
      max_length: tokens kept per review.
      truncation: "keep_end" keeps the last `max_length` tokens (where reviews tend to give their verdict, and
        what Keras' pad_sequences does by default); "keep_start" keeps the first.
      val_fraction: share of the training split held out for validation (stratified by label).
      buckets: number of length buckets for training batches (quantiles of training lengths); 0 or 1 pads every
        batch to its own longest review.
      max_train_examples, max_test_examples: stratified subsample of the train / test split (0: all), for quick runs.
      data_file: CSV/TSV (.csv, .tsv, optionally .gz) of training reviews with a header row; replaces tfds.
      test_file: the matching test file; without it, `test_fraction` of `data_file` is held out as test.
      data_dir: an aclImdb-style folder `{train,test}/{pos,neg}/*.txt`; replaces tfds.
      text_column, label_column: column names in the files; labels 0/1, neg/pos or negative/positive.
      download: let tensorflow-datasets download imdb_reviews (about 80 MB) when TFDS_DATA_DIR does not hold it.
    """
    _check_options(batch_size, vocab_size, max_length, truncation, val_fraction, test_fraction, buckets,
                   max_train_examples, max_test_examples, data_file, test_file, data_dir)
    if data_dir:
        raw = read_review_folder(data_dir)
    elif data_file:
        raw = read_tables(data_file, test_file, text_column, label_column, test_fraction, seed)
    else:
        raw = read_tfds(download)
    source = raw.identity["name"]

    train_texts, train_labels = subsample(raw.train_texts, raw.train_labels, max_train_examples,
                                          np.random.default_rng([seed, 1]))
    test_texts, test_labels = subsample(raw.test_texts, raw.test_labels, max_test_examples,
                                        np.random.default_rng([seed, 3]))
    keep, held_out = stratified_holdout(train_labels, val_fraction, np.random.default_rng([seed, 4]))
    val_texts, val_labels = [train_texts[i] for i in held_out], train_labels[held_out]
    train_texts, train_labels = [train_texts[i] for i in keep], train_labels[keep]
    for split, labels in (("training part", train_labels), ("validation part", val_labels),
                          ("test split", test_labels)):
        textlib.require_both_classes(labels, f"{source}: the {split}")

    train_texts, val_texts, test_texts = ([textlib.remove_html_line_breaks(t) for t in texts]
                                          for texts in (train_texts, val_texts, test_texts))
    vectorizer = fit_vectorizer(train_texts, vocab_size)
    vocabulary = [str(word) for word in vectorizer.get_vocabulary()]
    train_ids, train_full_lengths = to_token_ids(vectorizer, train_texts, max_length, truncation, "training")
    val_ids, _ = to_token_ids(vectorizer, val_texts, max_length, truncation, "validation")
    test_ids, _ = to_token_ids(vectorizer, test_texts, max_length, truncation, "test")

    boundaries = textlib.length_bucket_boundaries(np.asarray([len(s) for s in train_ids]), buckets)

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

    # The runner calls `evaluate` and then `artifacts` with the same weights; scoring 25,000 reviews once for both
    # saves a pass as long as the test evaluation itself.
    cached_prediction: dict = {}

    def test_probabilities(model) -> np.ndarray:
        """p(positive) of every test review, in the original order of the test split."""
        key = (id(model), hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest())
        if cached_prediction.get("key") != key:
            probabilities = np.empty(len(test_labels))
            probabilities[test_order] = _positive_probabilities(model, test_ds)
            cached_prediction.update(key=key, probabilities=probabilities)
        return cached_prediction["probabilities"]

    def evaluate(model) -> dict:
        metrics = textlib.binary_metrics(test_labels, test_probabilities(model), 0.5)
        return {"precision": metrics["precision"], "recall": metrics["recall"]}

    def artifacts(model, out_dir: Path) -> None:
        probabilities = test_probabilities(model)
        predicted = (probabilities > 0.5).astype(int)
        _write_confusion_matrix(test_labels, predicted, out_dir, f"{model.name}: test")
        _write_misclassified(test_texts, test_labels, probabilities, out_dir)
        rows = ["test_index,label,p_positive"] + [f"{i},{y},{p:.6f}" for i, (y, p) in
                                                  enumerate(zip(test_labels, probabilities))]
        (out_dir / "test_predictions.csv").write_text("\n".join(rows) + "\n")
        _write_attention_words(model, test_ids, vocabulary, np.random.default_rng([seed, 5]), out_dir)

    options = dict(seed=seed, vocab_size=vocab_size, max_length=max_length, truncation=truncation,
                   val_fraction=val_fraction, buckets=buckets, max_train_examples=max_train_examples,
                   max_test_examples=max_test_examples, data_file=data_file, test_file=test_file,
                   test_fraction=test_fraction, data_dir=data_dir, text_column=text_column,
                   label_column=label_column, download=download)
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
        options=options,
        evaluate=evaluate,
        artifacts=artifacts,
        notes=notes,
    )
