"""Free Spoken Digit Dataset clips, for the connected-digits source: from a folder of `{digit}_{speaker}_{index}.wav`
files (or its `recordings/`, or the recordings tarball), or from tensorflow-datasets `spoken_digit`."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from rnnbench import audio
from rnnbench.errors import DataError
from rnnbench.tasks.speech.readers.files import wav_files
from rnnbench.tfds_data import prepared_builder

FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


@dataclasses.dataclass
class DigitClips:
    """FSDD clips: waveforms at `rate`, their digits, speakers and clip indexes (0-4 is FSDD's test split)."""

    waveforms: list
    digits: np.ndarray
    speakers: np.ndarray
    indexes: np.ndarray
    rate: int
    identity: dict


def read_fsdd_folder(folder: Path) -> DigitClips:
    """FSDD clips from a folder of `{digit}_{speaker}_{index}.wav` (or its `recordings/`, or the recordings tarball)."""
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found; set task.data_dir to FSDD's recordings folder, or leave it "
                        "unset to read tfds spoken_digit from TFDS_DATA_DIR")
    archive = folder / "fsdd_recordings.tar.gz"
    if not any(FSDD_NAME.match(p.name) for p in folder.glob("*.wav")) and (folder / "recordings").is_dir():
        folder = folder / "recordings"
    elif not any(FSDD_NAME.match(p.name) for p in folder.glob("*.wav")) and archive.is_file():
        folder = audio.unpack_archive(archive) / "recordings"
    files = [p for p in wav_files(folder, "FSDD recordings") if FSDD_NAME.match(p.name)]
    if not files:
        raise DataError(f"{folder}: no FSDD clips named like 3_jackson_12.wav; point task.data_dir at FSDD's "
                        "recordings folder")
    waveforms, digits, speakers, indexes, rates = [], [], [], [], set()
    for path in files:
        digit, speaker, index = FSDD_NAME.match(path.name).groups()
        waveform, rate = audio.load_audio(path)
        rates.add(rate)
        waveforms.append(waveform)
        digits.append(int(digit)), speakers.append(speaker), indexes.append(int(index))
    if len(rates) != 1:
        raise DataError(f"{folder}: clips have different sample rates {sorted(rates)}; resample them to one rate")
    identity = {"name": "fsdd", "source": "folder", "sha256": audio.sha256_of_files(files, folder)}
    return DigitClips(waveforms, np.array(digits), np.array(speakers), np.array(indexes), rates.pop(), identity)


def read_tfds_spoken_digit(download: bool) -> DigitClips:
    """FSDD clips from tensorflow-datasets `spoken_digit` in TFDS_DATA_DIR (downloaded there only if `download`)."""
    builder = prepared_builder("spoken_digit", download,
                               "either set TFDS_DATA_DIR to a tensorflow-datasets folder that holds spoken_digit, or "
                               "pass task.data_dir=<folder of FSDD's {digit}_{speaker}_{index}.wav recordings>")
    rate = int(builder.info.features["audio"].sample_rate)
    waveforms, digits, speakers, indexes = [], [], [], []
    for example in builder.as_dataset(split="train", shuffle_files=False).as_numpy_iterator():
        name = example["audio/filename"].decode("utf-8")
        match = FSDD_NAME.match(name)
        if not match:
            raise DataError(f"tfds spoken_digit example {name!r} is not named {{digit}}_{{speaker}}_{{index}}.wav; "
                            "the clip index decides the split, so this copy cannot be used")
        digit, speaker, index = match.groups()
        waveforms.append(example["audio"].astype(np.float32) / 32768.0)
        digits.append(int(digit)), speakers.append(speaker), indexes.append(int(index))
    identity = {"name": "spoken_digit", "source": "tfds", "version": str(builder.info.version),
                "examples": len(waveforms)}
    return DigitClips(waveforms, np.array(digits), np.array(speakers), np.array(indexes), rate, identity)
