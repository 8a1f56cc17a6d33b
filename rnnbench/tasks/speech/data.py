"""What a data source hands the speech loader: utterances, grouped into splits, with their vocabulary and identity;
and the `Reader` record each source module fills in for the `READERS` table."""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from rnnbench import audio, ctc
from rnnbench.errors import UserError


@dataclasses.dataclass
class Utterance:
    id: str
    features: np.ndarray  # (frames, feature_dim) float32
    transcript: str
    speaker: str = ""


@dataclasses.dataclass
class Source:
    """One source's data, ready for batching.

    splits: {"train", "val", "test": [Utterance]}, in the order the source put them.
    identity: what the data is (name plus a content hash or dataset version); the spec's `dataset` starts with it
      and its `name` labels the source in error messages.
    """

    splits: dict
    vocabulary: ctc.Vocabulary
    identity: dict


def _no_check(options) -> None:
    return None


@dataclasses.dataclass(frozen=True)
class Reader:
    """One data source. `options` below is a `SpeechOptions` (not imported here: the options import the readers).

    read(options, settings, rng) -> Source: `rng` is the task's seeded generator, shared with the loader, which draws
      the validation decoding sample from it afterwards; a reader draws from it in a fixed order.
    sample_rate: the rate audio is resampled to unless task.sample_rate says otherwise (and what the spec records).
    needs: (option, what to set it to) for the one option this source cannot do without, if any.
    check(options): refuses other options this source cannot honour (UserError).
    """

    read: Callable[[object, audio.MfccSettings, np.random.Generator], Source]
    sample_rate: int = 16000
    needs: tuple = ()
    check: Callable[[object], None] = _no_check

    def validate(self, options) -> None:
        """Refuses, before anything is read, options this source needs or cannot honour."""
        if self.needs and not getattr(options, self.needs[0]):
            raise UserError(f"task.dataset={options.dataset} needs task.{self.needs[0]}={self.needs[1]}")
        self.check(options)
