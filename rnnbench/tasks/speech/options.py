"""The speech task's options, declared once: type, default, help and checks of each (see `rnnbench.options`).

Checks that relate options to each other live in `SpeechOptions.__post_init__`. What one data source needs or cannot
honour (a folder, a file, a fixed front end) is that source's `Reader.validate`, run by the loader before reading;
not here, so an experiment whose data folder is absent on this machine still resolves.
"""
from __future__ import annotations

import dataclasses

from rnnbench import audio
from rnnbench.errors import UserError
from rnnbench.options import option
from rnnbench.tasks.speech.readers import READERS

MONITORS = ("error_rate", "loss")
FRONT_END = "MFCC front end (not for an4, whose cepstra are fixed)"


@dataclasses.dataclass(frozen=True)
class SpeechOptions:
    seed: int = option(0, "draws splits, held-out validation parts, connected-digit utterances and the shuffling order")
    dataset: str = option("digits", "the data source: digits (connected FSDD digits), yesno, an4 (CMU AN4 "
                         "cepstra) or csv (your own list); see rnnbench.tasks.speech", choices=tuple(READERS))
    data_dir: str | None = option(None, "yesno: the folder of wavs; an4: the folder with etc/ and the cepstra; digits: "
                                  "FSDD recordings instead of tfds", path=True)
    data_file: str | None = option(None, "csv: the transcript list (columns path, transcript[, split])", path=True)
    download: bool = option(False, "digits from tfds: download spoken_digit (about 10 MB) into TFDS_DATA_DIR when it "
                            "is not there; off, a missing copy is an error at once")
    sample_rate: int | None = option(None, "audio is resampled to this rate; default 8000 for digits and yesno (their "
                                     "native rate), 16000 for csv")
    n_mfcc: int = option(13, f"{FRONT_END}: cepstral coefficients kept")
    n_mels: int = option(40, f"{FRONT_END}: mel bands they are computed from")
    win_ms: float = option(25.0, f"{FRONT_END}: analysis window, in milliseconds")
    hop_ms: float = option(10.0, f"{FRONT_END}: frame step, in milliseconds")
    deltas: int = option(0, "append first (1) or first and second (2) differences (0, 1 or 2)")
    normalize: str = option("utterance", "utterance (mean/variance per coefficient within each utterance) or none",
                            choices=audio.NORMALIZATIONS)
    val_fraction: float = option(0.1, "held out of the training data for validation (an4: whole speakers; digits: "
                                 "clips); between 0 and 1")
    test_fraction: float = option(0.2, "yesno and csv without a split column: the test part; between 0 and 1")
    max_digits: int = option(5, "digits: the longest utterance, in digits", minimum=1)
    train_utterances: int = option(3000, "digits: how many utterances the training split gets", minimum=1)
    eval_utterances: int = option(300, "digits: how many utterances each evaluation split gets", minimum=1)
    limit: int | None = option(None, "at most this many utterances per split (seeded), for quick runs; 0 or none: all")
    beam_width: int = option(16, "beam search width for the beam_* test metrics", minimum=1)
    val_decode_limit: int = option(256, "validation utterances decoded each epoch for val_cer / val_wer (seeded "
                                   "sample)", minimum=1)
    monitor: str = option("error_rate", "what picks the best epoch: error_rate (val_wer or val_cer, as the "
                          "leaderboard key) or loss (val_loss; smoother when the validation set is so small that "
                          "many epochs tie at the same error rate)", choices=MONITORS)

    def __post_init__(self):
        for name, value in (("val_fraction", self.val_fraction), ("test_fraction", self.test_fraction)):
            if not 0.0 < value < 1.0:
                raise UserError(f"task.{name} must be between 0 and 1, got {value}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise UserError("task.val_fraction + task.test_fraction must stay below 1, got "
                            f"{self.val_fraction + self.test_fraction}")
        if (self.limit or 1) < 1:  # 0 means no limit, as None does
            raise UserError(f"task.limit must be >= 1, got {self.limit}")
