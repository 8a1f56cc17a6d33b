"""Tiny data for every task, written into a test's folder in milliseconds, and the options that load each task from
it (`TINY_OPTIONS`, used by the task contract test; a new task adds its entry here)."""
from __future__ import annotations

import csv
import gzip
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd

# -- prices (stock) -----------------------------------------------------------------------------------------------


def write_prices(tmp_path, prices, name="prices.csv", start="2001-01-01", **columns):
    """A CSV with Date (business days), Close = prices and any extra columns; returns its path."""
    frame = pd.DataFrame({"Date": pd.bdate_range(start, periods=len(prices)).strftime("%Y-%m-%d"), "Close": prices,
                          **columns})
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def random_walk(days, seed=0, sigma=0.01):
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, sigma, days)))


# -- text (char_lm) ------------------------------------------------------------------------------------------------

WORDS = "to be or not that is the question whether tis nobler in mind suffer slings arrows".split()


def tiny_text(lines: int = 120, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    return "".join(" ".join(rng.choice(WORDS, size=6)) + "\n" for _ in range(lines))


# -- reviews (imdb) ------------------------------------------------------------------------------------------------

POSITIVE_WORDS = ["great", "wonderful", "superb", "moving"]
NEGATIVE_WORDS = ["awful", "boring", "dull", "terrible"]
SHARED_WORDS = POSITIVE_WORDS + NEGATIVE_WORDS + ["film"]


def make_reviews(count: int, marker: str, seed: int) -> tuple[list[str], list[int]]:
    """Reviews of 2..30 words: sentiment words, the word "film", and one word unique to the review (`marker` + i),
    with `<br />` tags that must disappear. Labels alternate, so every slice has both classes."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(count):
        label = i % 2
        words = list(rng.choice(POSITIVE_WORDS if label else NEGATIVE_WORDS, size=int(rng.integers(1, 30))))
        words.insert(int(rng.integers(0, len(words) + 1)), f"{marker}{i}")
        texts.append("The film<br /><br />" + " ".join(words) + "!")
        labels.append(label)
    return texts, labels


def write_table(path, texts, labels, header=("id", "label", "text"), delimiter=","):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        for i, (text, label) in enumerate(zip(texts, labels)):
            writer.writerow([i, label, text])


# -- cepstra (speech, AN4 layout) ----------------------------------------------------------------------------------


def write_mfc(path: Path, frames: np.ndarray, header: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    values = np.asarray(frames, dtype=">f4").ravel()
    path.write_bytes(np.array([values.size if header is None else header], dtype=">i4").tobytes() + values.tobytes())
    return path


def make_an4(folder: Path, speakers=("spka", "spkb", "spkc"), per_speaker=3, packed=False) -> Path:
    """A miniature AN4 tree: etc/ lists plus .mfc cepstra, or the cepstra packed as an4_feat_mfc.tar.gz."""
    rng = np.random.default_rng(0)
    texts = ["YES", "NO", "GO", "A B C", "ERASE TWO"]
    feat = (folder / "staging" if packed else folder) / "an4" / "feat"
    for split, prefix, spks in (("train", "an4_clstk", speakers), ("test", "an4test_clstk", ("spkt",))):
        ids, lines = [], []
        for s in spks:
            for k in range(per_speaker):
                utt = f"an{k}-{s}-b"
                ids.append(f"{prefix}/{s}/{utt}")
                text = texts[(len(ids) + k) % len(texts)]
                lines.append(f"<s> {text} </s> ({utt})" if k == 0 else f"{text} ({utt})")
                write_mfc(feat / prefix / s / f"{utt}.mfc", rng.normal(size=(40 + 10 * k, 13)))
        (folder / "etc").mkdir(parents=True, exist_ok=True)
        (folder / "etc" / f"an4_{split}.fileids").write_text("\n".join(ids) + "\n")
        (folder / "etc" / f"an4_{split}.transcription").write_text("\n".join(lines) + "\n")
    if packed:
        with tarfile.open(folder / "an4_feat_mfc.tar.gz", "w:gz") as tar:
            tar.add(folder / "staging" / "an4", arcname="an4")
        shutil.rmtree(folder / "staging")
    return folder


# -- options that load each task from its tiny data ----------------------------------------------------------------


def _stock(folder: Path) -> dict:
    return {"data_file": str(write_prices(folder, random_walk(260, seed=4))), "input_len": 10}


def _char_lm(folder: Path) -> dict:
    path = folder / "corpus.txt"
    path.write_text(tiny_text(), encoding="utf-8")
    return {"data_file": str(path), "seq_len": 16}


def _imdb(folder: Path) -> dict:
    write_table(folder / "train.csv", *make_reviews(40, "trainmarker", seed=1))
    write_table(folder / "test.csv", *make_reviews(16, "testmarker", seed=2))
    return {"data_file": str(folder / "train.csv"), "test_file": str(folder / "test.csv"), "vocab_size": 1000,
            "max_length": 64, "val_fraction": 0.25}


def _speech(folder: Path) -> dict:
    return {"dataset": "an4", "data_dir": str(make_an4(folder / "an4")), "val_fraction": 0.3}


TINY_OPTIONS = {
    "sine": lambda folder: {"steps": 600, "input_len": 16, "horizon": 2},
    "adding": lambda folder: {"length": 6, "train_size": 24, "val_size": 8, "test_size": 8},
    "copy": lambda folder: {"length": 4, "train_size": 24, "val_size": 8, "test_size": 8},
    "stock": _stock,
    "char_lm": _char_lm,
    "imdb": _imdb,
    "speech": _speech,
    "g2p": lambda folder: _g2p(folder),
}


# -- pronunciations (g2p) ------------------------------------------------------------------------------------------

LETTER_SOUNDS = {"a": "AE1", "b": "B", "d": "D", "e": "EH0", "k": "K", "m": "M", "o": "OW2", "s": "S", "t": "T"}


def write_lexicon(path: Path, count: int = 60, seed: int = 0) -> Path:
    """A CMUdict-format file of `count` made-up words of 2-6 letters, each pronounced letter by letter
    (`LETTER_SOUNDS`, with stress digits), plus a comment line, an inline comment and one second pronunciation."""
    rng = np.random.default_rng(seed)
    letters, words = sorted(LETTER_SOUNDS), set()
    while len(words) < count:
        words.add("".join(rng.choice(letters, size=int(rng.integers(2, 7)))))
    lines = [";;; a tiny pronouncing dictionary"]
    for word in sorted(words):
        lines.append(f"{word} {' '.join(LETTER_SOUNDS[c] for c in word)}")
    first = sorted(words)[0]
    lines += [f"{first}(2) {' '.join(LETTER_SOUNDS[c] for c in reversed(first))}  # a made-up variant"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _g2p(folder: Path) -> dict:
    return {"data_file": str(write_lexicon(folder / "lexicon.dict")), "val_fraction": 0.2, "test_fraction": 0.2,
            "beam_width": 2, "plot_words": 1}
