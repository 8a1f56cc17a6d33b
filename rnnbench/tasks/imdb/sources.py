"""The three places IMDB reviews can come from, each a reader returning the same `RawReviews`.

tensorflow-datasets' `imdb_reviews`, CSV/TSV tables, and an aclImdb-style review folder. The loader picks one
through its `READERS` table; each reader says in its `identity` what it read (name, source, version or sha256).
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import tensorflow as tf

from rnnbench import text as textlib
from rnnbench.errors import DataError
from rnnbench.tasks.imdb.splits import stratified_holdout
from rnnbench.tfds_data import prepared_builder

TFDS_NAME = "imdb_reviews"


@dataclasses.dataclass
class RawReviews:
    """Review texts and 0/1 labels of the train and test splits as read, plus where they came from."""

    train_texts: list[str]
    train_labels: np.ndarray
    test_texts: list[str]
    test_labels: np.ndarray
    identity: dict


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
