"""Speech source "csv", your own recordings: `data_file` is a CSV with columns `path` (audio, relative to the CSV's
folder) and `transcript`, and optionally `split` (train / val / test; otherwise drawn with the seed). Character
labels, the vocabulary being every character of the transcripts."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from rnnbench import audio, ctc
from rnnbench.errors import DataError
from rnnbench.tasks.speech.cache import audio_file_source
from rnnbench.tasks.speech.data import Reader, Source
from rnnbench.tasks.speech.readers.files import read_text
from rnnbench.tasks.speech.splits import limit_splits, split_indices

SPLIT_SYNONYMS = {"validation": "val", "valid": "val", "dev": "val"}


def read_csv_list(data_file: Path) -> list[tuple[Path, str, str]]:
    """(audio path, transcript, split or "") per row of a `path,transcript[,split]` CSV."""
    text = read_text(data_file, "transcript CSV", "task.data_file")
    if not text.strip():
        raise DataError(f"{data_file}: the file is empty; it needs a header 'path,transcript' and one row per clip")
    rows = list(csv.DictReader(io.StringIO(text)))
    columns = set(rows[0]) if rows else set(next(csv.reader(io.StringIO(text))))
    missing = {"path", "transcript"} - columns
    if missing:
        raise DataError(f"{data_file}: missing column(s) {sorted(missing)}; the header must name path and transcript "
                        f"(found {sorted(c for c in columns if c)})")
    if not rows:
        raise DataError(f"{data_file}: the header has no rows under it; add one row per audio clip")
    entries = []
    for line, row in enumerate(rows, start=2):
        transcript = " ".join((row.get("transcript") or "").split())
        relative = (row.get("path") or "").strip()
        if not relative or not transcript:
            raise DataError(f"{data_file}, line {line}: empty {'path' if not relative else 'transcript'}; "
                            "every row needs an audio path and a non-empty transcript")
        split = (row.get("split") or "").strip().lower()
        split = SPLIT_SYNONYMS.get(split, split)
        if split not in ("", "train", "val", "test"):
            raise DataError(f"{data_file}, line {line}: split {row['split']!r} is not train, val or test")
        path = data_file.parent / relative
        if not path.is_file():
            raise DataError(f"{data_file}, line {line}: audio file {path} not found; paths count from the CSV's folder")
        entries.append((path, transcript, split))
    return entries


def _splits(given: list[str], val_fraction: float, test_fraction: float, rng: np.random.Generator,
            data_file: Path) -> dict:
    """Row numbers per split: the CSV's own `split` column when every row has one (validation drawn from train if
    it names none), else a seeded draw of test_fraction and val_fraction."""
    named = [s for s in given if s]
    if named and len(named) != len(given):
        line = given.index("") + 2
        raise DataError(f"{data_file}, line {line}: empty split while other rows name one; fill in train, val or "
                        "test on every row, or drop the split column to draw the splits with the seed")
    if named:
        splits = {k: np.array([i for i, s in enumerate(given) if s == k], dtype=int) for k in ("train", "val", "test")}
        if not len(splits["val"]) and len(splits["train"]) > 1:
            kept, held = split_indices(len(splits["train"]), val_fraction, rng)
            splits["train"], splits["val"] = splits["train"][kept], splits["train"][held]
        return splits
    rest, test_idx = split_indices(len(given), test_fraction, rng)
    kept, held = split_indices(len(rest), val_fraction, rng)
    return {"train": rest[kept], "val": rest[held], "test": test_idx}


def read(options, settings: audio.MfccSettings, rng) -> Source:
    data_path = Path(options.data_file)
    entries = read_csv_list(data_path)
    identity = {"name": data_path.name,
                "sha256": audio.sha256_of_files([data_path] + sorted({p for p, _, _ in entries}))}
    skeleton = [(f"{i:06d}-{p.stem}", text, "") for i, (p, text, _) in enumerate(entries)]
    chosen = limit_splits(_splits([s for _, _, s in entries], options.val_fraction, options.test_fraction, rng,
                                  data_path), options.limit, rng)
    vocabulary = ctc.Vocabulary.from_transcripts([text for _, text, _ in entries], unit="char")
    return audio_file_source("csv", identity, settings, [p for p, _, _ in entries], skeleton, chosen, vocabulary)


READER = Reader(read, sample_rate=16000,  # the usual speech rate; any other audio is resampled to it
                needs=("data_file", "<CSV with columns path,transcript[,split]>"))
