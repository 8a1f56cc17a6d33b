"""The character vocabulary of char_lm: ids 1..V for the training text's characters, 0 for everything else.

`vocab.json`, written with every run, holds the characters and the window length: everything needed to sample the
logged model later (`rnnbench generate`).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from rnnbench.errors import DataError

OOV_ID = 0
# The runner stores the files of the `artifacts` hook under "task/" in the run's artifacts.
VOCAB_ARTIFACT = "task/vocab.json"
VOCAB_FORMAT = "rnnbench.char_lm.vocab/1"


@dataclasses.dataclass(frozen=True)
class CharVocab:
    """Characters with ids 1..len(chars) (id 0 is OOV) and the window length the model was trained on."""

    chars: tuple[str, ...]
    seq_len: int

    @classmethod
    def from_text(cls, text: str, seq_len: int) -> "CharVocab":
        return cls(tuple(sorted(set(text))), seq_len)

    @property
    def size(self) -> int:
        """Number of ids, OOV included: the models' vocab_size and num_classes."""
        return len(self.chars) + 1

    def encode(self, text: str) -> np.ndarray:
        """int32 ids of `text`; characters outside the vocabulary become OOV_ID."""
        # Vectorised through code points: a Python loop over a million characters would dominate loading time.
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        known = np.frombuffer("".join(self.chars).encode("utf-32-le"), dtype=np.uint32)
        if len(known) == 0:
            return np.full(len(codes), OOV_ID, dtype=np.int32)
        position = np.minimum(np.searchsorted(known, codes), len(known) - 1)
        return np.where(known[position] == codes, position + 1, OOV_ID).astype(np.int32)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`; OOV ids become U+FFFD (the replacement character)."""
        return "".join(self.chars[i - 1] if 0 < i <= len(self.chars) else "\ufffd" for i in ids)

    def to_json(self) -> dict:
        return {"format": VOCAB_FORMAT, "oov_id": OOV_ID, "seq_len": self.seq_len, "chars": list(self.chars)}

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "CharVocab":
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
            if payload.get("format") != VOCAB_FORMAT:
                raise ValueError(f"format is {payload.get('format')!r}, expected {VOCAB_FORMAT!r}")
            chars = tuple(payload["chars"])
            if any(not isinstance(c, str) or len(c) != 1 for c in chars) or list(chars) != sorted(set(chars)):
                raise ValueError("'chars' must be distinct single characters sorted by code point")
            seq_len = int(payload["seq_len"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise DataError(f"{path}: not a char_lm vocabulary file ({error}); use the vocab.json that the "
                            "char_lm task logged with the run") from None
        return cls(chars, seq_len)
