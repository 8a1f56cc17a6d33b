"""Reading char_lm's text: tfds tiny_shakespeare's three splits, or one UTF-8 file split 90/5/5 by position.

Each source is a reader returning `SplitTexts` (the three texts, the data's identity, and how to name each part in
an error message); `make_windows` cuts encoded text into the (input, next character) windows the models see, and
`make_streams` lays those windows out as parallel streams for carried state.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from rnnbench.errors import DataError
from rnnbench.tfds_data import prepared_builder

TFDS_NAME = "tiny_shakespeare"
SPLIT_FRACTIONS = (0.90, 0.05, 0.05)


def _missing_tfds_remedy() -> str:
    return (
        f"either set TFDS_DATA_DIR to a folder that holds {TFDS_NAME}/1.0.0 (a tensorflow-datasets data dir), "
        "or give any UTF-8 text file with --set task.data_file=path/to/text.txt"
    )


def read_tfds_splits(download: bool) -> tuple[dict[str, str], dict]:
    """({"train", "val", "test"} -> text, identity) of tfds tiny_shakespeare, from TFDS_DATA_DIR read at call time."""
    builder = prepared_builder(TFDS_NAME, download, _missing_tfds_remedy())
    texts = {}
    for ours, theirs in (("train", "train"), ("val", "validation"), ("test", "test")):
        try:
            examples = [example["text"] for example in builder.as_dataset(split=theirs).as_numpy_iterator()]
            # The builder stores each split as one example; joining keeps any other layout working too.
            texts[ours] = b"".join(examples).decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataError(f"tfds dataset {TFDS_NAME} in {builder.data_dir}: the {theirs} split is not valid UTF-8 "
                            f"({error.reason} at byte {error.start}); delete that folder and prepare it again, or "
                            + _missing_tfds_remedy()) from None
        except (tf.errors.DataLossError, tf.errors.NotFoundError, KeyError) as error:
            raise DataError(f"tfds dataset {TFDS_NAME} in {builder.data_dir}: the {theirs} split cannot be read "
                            f"({type(error).__name__}: {str(error)[:300]}); delete that folder and prepare it "
                            "again, or " + _missing_tfds_remedy()) from None
    identity = {"name": TFDS_NAME, "source": "tfds", "version": str(builder.info.version)}
    return texts, identity


def read_text_file(path: str | Path) -> str:
    """The whole file as text, with DataError (file, problem, fix) for anything that is not usable UTF-8 text."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file; check task.data_file (relative paths start at the current folder)")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file; task.data_file must name one UTF-8 text file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror or error}); check the file's permissions") from None
    if not raw:
        raise DataError(f"{path}: the file is empty; give a text file with enough characters for three splits")
    # Before decoding: a binary file usually fails UTF-8 too, and being told to convert it from Latin-1 misleads.
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{path}: UTF-16 text (it starts with a UTF-16 byte-order mark), not UTF-8; convert it "
                        f"first, e.g. iconv -f UTF-16 -t UTF-8 {path.name} > {path.stem}.utf8.txt")
    if b"\x00" in raw:
        raise DataError(f"{path}: contains NUL characters (zero bytes, the first at byte {raw.index(0)}), so it "
                        "looks binary, not text; task.data_file must name a plain UTF-8 text file (UTF-16 text has "
                        "zero bytes too: convert it with iconv -f UTF-16 -t UTF-8)")
    try:
        # utf-8-sig drops a leading byte-order mark, which would otherwise become a character of the vocabulary.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not valid UTF-8 ({error.reason} at byte {error.start}); convert it first, e.g. "
                        f"iconv -f LATIN1 -t UTF-8 {path.name} > {path.stem}.utf8.txt") from None
    return text


def split_by_position(text: str, fractions: Sequence[float] = SPLIT_FRACTIONS) -> dict[str, str]:
    """Consecutive train/val/test parts of `text` in order; together they are exactly `text`."""
    bounds = np.round(np.cumsum((0.0,) + tuple(fractions)) * len(text)).astype(int)
    return {name: text[bounds[i]:bounds[i + 1]] for i, name in enumerate(("train", "val", "test"))}


def _sha256(*texts: str) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
    return digest.hexdigest()


@dataclasses.dataclass
class SplitTexts:
    """The train/val/test texts of one source, its identity (name, source, sha256...) and, per split, how an error
    message names where that text came from."""

    texts: dict[str, str]
    identity: dict
    where: dict[str, str]

    def trimmed(self, max_train_chars: int | None, max_eval_chars: int | None, seq_len: int) -> dict[str, str]:
        """The first `max_train_chars` / `max_eval_chars` characters of each split (None: all), each long enough
        for one window of `seq_len` characters and its targets."""
        texts = {"train": self.texts["train"][:max_train_chars], "val": self.texts["val"][:max_eval_chars],
                 "test": self.texts["test"][:max_eval_chars]}
        for name, text in texts.items():
            if len(text) < seq_len + 1:
                raise DataError(f"{self.where[name]}: {len(text)} characters, fewer than seq_len + 1 = {seq_len + 1} "
                                "needed for one window; use a longer text, a smaller task.seq_len, or larger "
                                "task.max_train_chars / task.max_eval_chars")
        return texts


def read_file_source(data_file: str) -> SplitTexts:
    """One UTF-8 text file, split 90/5/5 by position."""
    whole = read_text_file(data_file)
    texts = split_by_position(whole)
    identity = {"name": Path(data_file).name, "source": "file", "sha256": _sha256(whole)}
    where = {name: f"{data_file} ({name} part, {fraction:.0%} by position)"
             for name, fraction in zip(texts, SPLIT_FRACTIONS)}
    return SplitTexts(texts, identity, where)


def read_tfds_source(download: bool) -> SplitTexts:
    """tiny_shakespeare's own three splits."""
    texts, identity = read_tfds_splits(download)
    identity["sha256"] = _sha256(texts["train"], texts["val"], texts["test"])
    return SplitTexts(texts, identity, {name: f"tfds {TFDS_NAME} {name} split" for name in texts})


def make_windows(ids: np.ndarray, seq_len: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """x = ids[s : s + seq_len], y = ids[s + 1 : s + seq_len + 1] for s = 0, stride, 2 stride, ... while they fit."""
    starts = np.arange(0, len(ids) - seq_len, stride)
    x = ids[starts[:, None] + np.arange(seq_len)]
    return x.astype(np.int32), ids[starts[:, None] + np.arange(1, seq_len + 1)].astype(np.int32)


def make_streams(ids: np.ndarray, seq_len: int, streams: int,
                 where: str = "the text") -> tuple[np.ndarray, np.ndarray]:
    """Windows laid out for carried state: `ids` cut into `streams` contiguous streams of equal length, and row
    k * streams + i holding window k of stream i, so batches of `streams` rows taken in order have example i of
    batch k + 1 continuing example i of batch k. Each stream is a whole number of windows long; the characters
    after the last whole batch (fewer than streams * seq_len + 1) are dropped."""
    per_stream = (len(ids) - 1) // (streams * seq_len)  # windows in each stream, i.e. batches in the split
    if per_stream < 1:
        raise DataError(f"{where}: {len(ids)} characters cannot fill one batch of {streams} streams x {seq_len} "
                        f"characters (+1 target), which task.state=carried needs; use a longer text (or larger "
                        "task.max_train_chars / task.max_eval_chars), a smaller train.batch_size or task.seq_len")
    length = per_stream * seq_len
    # starts[k, i]: where window k of stream i begins; stream i starts where stream i - 1 ends.
    starts = np.arange(per_stream)[:, None] * seq_len + np.arange(streams)[None, :] * length
    starts = starts.reshape(-1)
    x = ids[starts[:, None] + np.arange(seq_len)]
    return x.astype(np.int32), ids[starts[:, None] + np.arange(1, seq_len + 1)].astype(np.int32)
