"""Speech source "yesno": OpenSLR yesno, a folder of wavs named by their labels (`0_1_1_0_1_0_0_1.wav`, 1 = yes,
0 = no); one label per word. There is no official split: `test_fraction` of the files is drawn with the seed, then
`val_fraction` of the rest."""
from __future__ import annotations

import re
from pathlib import Path

from rnnbench import audio, ctc
from rnnbench.errors import DataError
from rnnbench.tasks.speech.cache import audio_file_source
from rnnbench.tasks.speech.data import Reader, Source
from rnnbench.tasks.speech.readers.files import wav_files
from rnnbench.tasks.speech.splits import limit_splits, split_indices

YESNO_WORDS = {"0": "no", "1": "yes"}
YESNO_NAME = re.compile(r"^[01](_[01])*\.wav$")


def read_yesno_files(folder: Path) -> list[tuple[Path, str]]:
    """(wav path, "yes no ...") for every wav in `folder`, whose name is its label sequence."""
    files = wav_files(folder, "the yesno wavs")
    if not files:
        raise DataError(f"{folder}: no .wav files; set task.data_dir to the folder of the yesno wavs (waves_yesno)")
    badly_named = [p.name for p in files if not YESNO_NAME.match(p.name)]
    if badly_named:
        raise DataError(f"{folder}: {len(badly_named)} wav names are not label sequences like 0_1_1_0_1_0_0_1.wav "
                        f"(e.g. {badly_named[0]!r}); rename or remove them")
    return [(p, " ".join(YESNO_WORDS[bit] for bit in p.stem.split("_"))) for p in files]


def read(options, settings: audio.MfccSettings, rng) -> Source:
    folder = Path(options.data_dir)
    files = read_yesno_files(folder)
    identity = {"name": "yesno", "sha256": audio.sha256_of_files([p for p, _ in files], folder)}
    skeleton = [(p.stem, text, "") for p, text in files]
    rest, test_idx = split_indices(len(files), options.test_fraction, rng)
    kept, held = split_indices(len(rest), options.val_fraction, rng)
    chosen = limit_splits({"train": rest[kept], "val": rest[held], "test": test_idx}, options.limit, rng)
    return audio_file_source("yesno", identity, settings, [p for p, _ in files], skeleton, chosen,
                             ctc.Vocabulary(sorted(YESNO_WORDS.values()), unit="word"))


READER = Reader(read, sample_rate=8000,  # yesno's native rate
                needs=("data_dir", "<folder>: the folder of yesno wavs"))
