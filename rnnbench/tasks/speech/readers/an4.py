"""Speech source "an4": CMU AN4 from precomputed 13-dim cepstra (`.mfc`, 100 frames/s). `data_dir` holds
`etc/an4_{train,test}.{transcription,fileids}` and either `an4_feat_mfc.tar.gz` (unpacked into the cache) or the
unpacked `an4/feat/...` tree. Character labels (A-Z and space). Official test split; validation holds out whole
training speakers, since the test speakers are unseen too. Only `deltas` and `normalize` of the front end apply."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from rnnbench import audio, ctc
from rnnbench.errors import DataError, UserError
from rnnbench.tasks.speech.data import Reader, Source, Utterance
from rnnbench.tasks.speech.readers.files import read_text
from rnnbench.tasks.speech.splits import hold_out_speakers, limit_splits

AN4_SYMBOLS = " ABCDEFGHIJKLMNOPQRSTUVWXYZ"
AN4_COEFFICIENTS = 13
AN4_SPLIT_FILES = {"train": "an4_train", "test": "an4_test"}
TRANSCRIPTION_LINE = re.compile(r"^(?P<text>.*?)\s*\((?P<id>[^()\s]+)\)\s*$")
SENTENCE_MARKERS = {"<s>", "</s>", "<sil>"}
# The front end AN4's cepstra were computed with, as option defaults: any other value cannot be honoured.
FIXED_FRONT_END = {"n_mfcc": 13, "n_mels": 40, "win_ms": 25.0, "hop_ms": 10.0, "sample_rate": None}


def read_mfc(path: Path, coefficients: int = AN4_COEFFICIENTS) -> np.ndarray:
    """A CMU Sphinx `.mfc` file: big-endian int32 count N, then N big-endian float32 values -> (frames, coefficients)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read the feature file ({error.strerror or error}); check the data folder") from None
    fix = "re-extract the AN4 feature archive"
    if len(raw) < 4:
        raise DataError(f"{path}: {len(raw)} bytes is too short for a .mfc header; {fix}")
    count = int(np.frombuffer(raw[:4], dtype=">i4")[0])
    stored = (len(raw) - 4) // 4
    if count != stored or (len(raw) - 4) % 4:
        raise DataError(f"{path}: the header announces {count} values but the file holds {stored}; {fix}")
    if count == 0 or count % coefficients:
        raise DataError(f"{path}: {count} values do not form whole frames of {coefficients} coefficients; {fix}")
    values = np.frombuffer(raw[4:], dtype=">f4").astype(np.float32).reshape(-1, coefficients)
    if not np.all(np.isfinite(values)):
        raise DataError(f"{path}: the cepstra contain NaN or infinite values; {fix}")
    return values


def _feature_root(folder: Path) -> Path:
    for candidate in (folder / "an4" / "feat", folder / "feat"):
        if candidate.is_dir():
            return candidate
    archive = folder / "an4_feat_mfc.tar.gz"
    if archive.is_file():
        unpacked = audio.unpack_archive(archive)
        if (unpacked / "an4" / "feat").is_dir():
            return unpacked / "an4" / "feat"
        raise DataError(f"{archive}: the archive holds no an4/feat folder; it is not the AN4 cepstra archive")
    raise DataError(
        f"{folder}: no AN4 features found; the folder needs an4_feat_mfc.tar.gz or the unpacked an4/feat/ tree "
        "(next to etc/an4_train.transcription)"
    )


def read_an4_split(folder: Path, split: str, feature_root: Path) -> list[Utterance]:
    """One AN4 split from its fileids and transcription lists (same order, one utterance per line)."""
    stem = AN4_SPLIT_FILES[split]
    ids_path, text_path = folder / "etc" / f"{stem}.fileids", folder / "etc" / f"{stem}.transcription"
    fileids = [line.strip() for line in read_text(ids_path, "AN4 fileids list").splitlines() if line.strip()]
    lines = [line.strip() for line in read_text(text_path, "AN4 transcription list").splitlines() if line.strip()]
    if not fileids:
        raise DataError(f"{ids_path}: the list is empty; it should name one utterance per line")
    if len(fileids) != len(lines):
        raise DataError(f"{ids_path} lists {len(fileids)} utterances but {text_path} has {len(lines)} lines; "
                        "use the two files of the same AN4 release")
    utterances = []
    for number, (fileid, line) in enumerate(zip(fileids, lines), start=1):
        match = TRANSCRIPTION_LINE.match(line)
        if not match:
            raise DataError(f"{text_path}, line {number}: expected 'WORDS (utterance-id)', got {line!r}")
        utterance_id = Path(fileid).name
        if match["id"] != utterance_id:
            raise DataError(f"{text_path}, line {number}: utterance {match['id']!r} does not match {ids_path}'s "
                            f"{utterance_id!r}; the two lists must be in the same order")
        transcript = " ".join(w for w in match["text"].split() if w.lower() not in SENTENCE_MARKERS).upper()
        unknown = sorted(set(transcript) - set(AN4_SYMBOLS))
        if unknown or not transcript:
            raise DataError(f"{text_path}, line {number}: transcript {transcript!r} "
                            + (f"has characters {unknown} outside A-Z and space" if unknown else "is empty"))
        features = read_mfc(feature_root / f"{fileid}.mfc")
        utterances.append(Utterance(utterance_id, features, transcript, speaker=Path(fileid).parent.name))
    return utterances


def check(options) -> None:
    """Refuses front-end options other than the cepstra's own (all but deltas and normalize)."""
    changed = [f"task.{k}={getattr(options, k)}" for k, default in FIXED_FRONT_END.items()
               if getattr(options, k) != default]
    if changed:
        raise UserError(f"{', '.join(changed)}: AN4 ships fixed 13-coefficient cepstra at 100 frames/s; only "
                        "task.deltas and task.normalize apply to it")


def read(options, settings: audio.MfccSettings, rng) -> Source:
    folder = Path(options.data_dir)
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found; set task.data_dir to the AN4 folder (etc/ and the cepstra)")
    feature_root = _feature_root(folder)
    train_all = read_an4_split(folder, "train", feature_root)
    test = read_an4_split(folder, "test", feature_root)
    for u in train_all + test:
        u.features = audio.postprocess(u.features, options.deltas, options.normalize)
    train, val = hold_out_speakers(train_all, options.val_fraction, rng)
    splits = limit_splits({"train": train, "val": val, "test": test}, options.limit, rng)
    identity = {"name": "an4_mfcc", "sha256": audio.sha256_of_files(
        [folder / "etc" / f"{stem}.{kind}" for stem in AN4_SPLIT_FILES.values()
         for kind in ("fileids", "transcription")], folder)}
    return Source(splits, ctc.Vocabulary(AN4_SYMBOLS, unit="char"), identity)


# The sample rate only fills the options' record: AN4 ships cepstra, no audio.
READER = Reader(read, sample_rate=16000, check=check, needs=(
    "data_dir", "<folder>: the folder holding etc/ and an4_feat_mfc.tar.gz (or the unpacked an4/feat/)"))
