"""CTC targets and outputs: label encoding, greedy and beam-search decoding, and character/word error rates.

Label id 0 is both the CTC blank (in the model's logits) and the padding of label sequences (in `y`), so real
labels are 1..len(vocabulary). Decoding goes through `keras.ops.ctc_decode`; error rates through jiwer, a maintained
implementation of the standard Levenshtein-based definitions.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import jiwer
import keras
import numpy as np
from keras import ops

BLANK = 0


@keras.saving.register_keras_serializable(package="rnnbench")
def ctc_loss(y_true, y_pred):
    """CTC loss per example for logits `(batch, T, classes + 1)` with the blank at index 0.

    `y_true` holds label ids 1..classes padded with 0 after each label sequence; its non-zero count is the label
    length. Every output frame counts: the ctc head forces padded frames to blank, which leaves the loss exact.
    """
    labels = ops.cast(y_true, "int32")
    label_length = ops.sum(ops.cast(ops.greater(labels, 0), "int32"), axis=-1)
    frames = ops.shape(y_pred)[1]
    output_length = ops.full((ops.shape(y_pred)[0],), frames, dtype="int32")
    return ops.ctc_loss(labels, y_pred, label_length, output_length, mask_index=0)


class Vocabulary:
    """Maps transcripts to label ids 1..n and back.

    `unit="char"`: every character of the transcript is a label (spaces included, so words can be recovered).
    `unit="word"`: every whitespace-separated word is a label; decoding joins words with single spaces.
    """

    def __init__(self, symbols: Iterable[str], unit: str = "char"):
        if unit not in ("char", "word"):
            raise ValueError(f"unit must be 'char' or 'word', got {unit!r}")
        self.symbols: tuple[str, ...] = tuple(symbols)
        if not self.symbols:
            raise ValueError("a vocabulary needs at least one symbol")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"duplicate symbols in vocabulary {self.symbols}")
        if unit == "char" and any(len(s) != 1 for s in self.symbols):
            raise ValueError(f"character vocabularies hold single characters, got {self.symbols}")
        self.unit = unit
        self._ids = {symbol: i + 1 for i, symbol in enumerate(self.symbols)}

    @classmethod
    def from_transcripts(cls, transcripts: Iterable[str], unit: str = "char") -> "Vocabulary":
        """The sorted set of symbols that occur in `transcripts`."""
        symbols = set()
        for text in transcripts:
            symbols.update(text if unit == "char" else text.split())
        return cls(sorted(symbols), unit)

    def __len__(self) -> int:
        return len(self.symbols)

    def __repr__(self) -> str:
        return f"Vocabulary({''.join(self.symbols) if self.unit == 'char' else list(self.symbols)!r}, unit={self.unit!r})"

    def units(self, text: str) -> list[str]:
        return list(text) if self.unit == "char" else text.split()

    def unknown(self, text: str) -> list[str]:
        """Symbols of `text` that have no label id."""
        return sorted({u for u in self.units(text) if u not in self._ids})

    def encode(self, text: str) -> np.ndarray:
        """Label ids (int32, all >= 1) of `text`; raises KeyError on a symbol outside the vocabulary."""
        missing = self.unknown(text)
        if missing:
            raise KeyError(f"symbols {missing} of {text!r} are not in the vocabulary {self!r}")
        return np.asarray([self._ids[u] for u in self.units(text)], dtype=np.int32)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of label ids; ids <= 0 (blank, padding, and ctc_decode's -1 filler) are skipped."""
        units = [self.symbols[i - 1] for i in (int(i) for i in ids) if i > 0]
        return "".join(units) if self.unit == "char" else " ".join(units)

    def to_config(self) -> dict:
        return {"unit": self.unit, "symbols": list(self.symbols)}


def pad_labels(sequences: Sequence[np.ndarray], length: int | None = None) -> np.ndarray:
    """(batch, length) int32 with each label sequence followed by 0s, the padding `ctc_loss` expects."""
    length = max((len(s) for s in sequences), default=0) if length is None else length
    out = np.zeros((len(sequences), max(length, 1)), dtype=np.int32)
    for row, seq in zip(out, sequences):
        row[: len(seq)] = seq
    return out


def decode_logits(logits, strategy: str = "greedy", beam_width: int = 16, lengths=None) -> list[list[int]]:
    """Best label sequence per example from logits `(batch, T, classes + 1)`, blank at index 0.

    `lengths` defaults to the full T: the model's ctc head forces padded frames to blank, and trailing blanks
    decode to nothing, so the padded length gives the same answer as the true one.
    """
    logits = np.asarray(logits, dtype=np.float32)
    batch, steps = logits.shape[:2]
    if lengths is None:
        lengths = np.full((batch,), steps, dtype=np.int32)
    if strategy == "greedy":
        decoded, _ = ops.ctc_decode(logits, lengths, strategy="greedy", mask_index=BLANK)
    elif strategy == "beam_search":
        decoded, _ = ops.ctc_decode(
            logits, lengths, strategy="beam_search", beam_width=beam_width, top_paths=1, mask_index=BLANK
        )
    else:
        raise ValueError(f"strategy must be 'greedy' or 'beam_search', got {strategy!r}")
    best = np.asarray(decoded)[0]
    return [[int(i) for i in row if i > 0] for row in best]


def cer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Character error rate over the whole corpus: (substitutions + deletions + insertions) / reference characters."""
    _check_pairs(references, hypotheses)
    return float(jiwer.cer(list(references), list(hypotheses)))


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Word error rate over the whole corpus: edit operations on words / reference words."""
    _check_pairs(references, hypotheses)
    return float(jiwer.wer(list(references), list(hypotheses)))


def utterance_cer(reference: str, hypothesis: str) -> float:
    """CER of one utterance (for example tables); an empty reference counts each hypothesis character as an error."""
    if not reference:
        return float(len(hypothesis))
    return float(jiwer.cer(reference, hypothesis))


def _check_pairs(references, hypotheses) -> None:
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        raise ValueError("no references to score")
    if not any(references):
        raise ValueError("every reference is empty; error rates are undefined")
