"""Audio features for the speech task: reading audio files, MFCCs with librosa, deltas, per-utterance
normalisation, and a disk cache so features are computed once per (feature settings, data identity).

The cache lives in `$RNNBENCH_CACHE_DIR` (default `~/.cache/rnnbench`); archives that have to be unpacked (an
AN4 feature tarball, an FSDD recordings tarball) are unpacked there too, never next to the user's data.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from rnnbench.errors import DataError, UserError

NORMALIZATIONS = ("utterance", "none")
# Smallest standard deviation used when normalising: a coefficient that is constant over an utterance (digital
# silence, a pure tone's higher cepstra) would otherwise be divided by ~0 and blow up.
_MIN_STD = 1e-3
# Offset for a feature frame that would otherwise equal the padding value in every coefficient, which the model's
# mask would take for padding.
_PAD_NUDGE = 1e-4


def cache_dir() -> Path:
    """The folder for cached features and unpacked archives: $RNNBENCH_CACHE_DIR or ~/.cache/rnnbench."""
    return Path(os.environ.get("RNNBENCH_CACHE_DIR") or Path.home() / ".cache" / "rnnbench").expanduser()


@dataclasses.dataclass(frozen=True)
class MfccSettings:
    """How a waveform becomes a (frames, features) matrix.

    sample_rate: audio at any other rate is resampled to this one first.
    n_mfcc, n_mels: cepstral coefficients kept, mel bands they are computed from.
    win_ms, hop_ms: analysis window and frame step in milliseconds (25/10 is the usual speech front end).
    deltas: 0 = MFCCs only, 1 = append first differences, 2 = also second differences.
    normalize: "utterance" = zero mean and unit variance per coefficient within each utterance, "none" = raw.
    """

    sample_rate: int = 16000
    n_mfcc: int = 13
    n_mels: int = 40
    win_ms: float = 25.0
    hop_ms: float = 10.0
    deltas: int = 0
    normalize: str = "utterance"

    def __post_init__(self):
        if self.sample_rate < 1000:
            raise UserError(f"task.sample_rate must be at least 1000 Hz, got {self.sample_rate}")
        if not 1 <= self.n_mfcc <= self.n_mels:
            raise UserError(f"task.n_mfcc must be between 1 and task.n_mels={self.n_mels}, got {self.n_mfcc}")
        if not 0 < self.hop_ms <= self.win_ms:
            raise UserError(f"task.hop_ms must be > 0 and <= task.win_ms={self.win_ms}, got {self.hop_ms}")
        if self.win_length < 16:
            raise UserError(f"task.win_ms={self.win_ms} is under 16 samples at {self.sample_rate} Hz; use a longer window")
        if self.deltas not in (0, 1, 2):
            raise UserError(f"task.deltas must be 0, 1 or 2, got {self.deltas}")
        if self.normalize not in NORMALIZATIONS:
            raise UserError(f"task.normalize must be one of {NORMALIZATIONS}, got {self.normalize!r}")

    @property
    def win_length(self) -> int:
        return int(round(self.sample_rate * self.win_ms / 1000))

    @property
    def hop_length(self) -> int:
        return max(1, int(round(self.sample_rate * self.hop_ms / 1000)))

    @property
    def n_fft(self) -> int:
        return 1 << (self.win_length - 1).bit_length()

    @property
    def feature_dim(self) -> int:
        return self.n_mfcc * (1 + self.deltas)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_audio(path: Path) -> tuple[np.ndarray, int]:
    """(mono float32 waveform in [-1, 1], sample rate) of an audio file soundfile can read (wav, flac, ogg, ...)."""
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: audio file not found; check the path (relative paths count from the list's folder)")
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile reports corrupt and unsupported files alike as RuntimeError subclasses
        raise DataError(
            f"{path}: not a readable audio file ({error}); convert it to 16-bit PCM wav or remove it from the list"
        ) from None
    if samples.shape[0] == 0:
        raise DataError(f"{path}: the audio file holds no samples; remove it from the list or re-record it")
    if not np.all(np.isfinite(samples)):
        raise DataError(f"{path}: the audio holds NaN or infinite samples; re-export it as PCM wav")
    return samples.mean(axis=1), int(rate)


def resample(waveform: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    if rate == target_rate:
        return waveform
    import librosa

    return librosa.resample(waveform, orig_sr=rate, target_sr=target_rate).astype(np.float32)


def mfcc(waveform: np.ndarray, rate: int, settings: MfccSettings) -> np.ndarray:
    """Raw MFCCs (frames, n_mfcc) of a waveform at `rate`, resampled to `settings.sample_rate` first."""
    import librosa

    waveform = resample(np.asarray(waveform, dtype=np.float32), rate, settings.sample_rate)
    coefficients = librosa.feature.mfcc(
        y=waveform,
        sr=settings.sample_rate,
        n_mfcc=settings.n_mfcc,
        n_fft=settings.n_fft,
        win_length=settings.win_length,
        hop_length=settings.hop_length,
        n_mels=settings.n_mels,
    )
    return coefficients.T.astype(np.float32)


def postprocess(coefficients: np.ndarray, deltas: int = 0, normalize: str = "utterance") -> np.ndarray:
    """Appends deltas, normalises, and makes sure no frame can be mistaken for padding (all exactly 0.0).

    Used for MFCCs computed here and for precomputed cepstra alike.
    """
    import librosa

    features = np.asarray(coefficients, dtype=np.float32)
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(f"expected a non-empty (frames, coefficients) matrix, got shape {features.shape}")
    parts = [features]
    for order in range(1, deltas + 1):
        # "nearest" edges work for any number of frames; the default "interp" needs at least `width` frames.
        parts.append(librosa.feature.delta(features, order=order, axis=0, mode="nearest").astype(np.float32))
    features = np.concatenate(parts, axis=1)
    if normalize == "utterance":
        mean = features.mean(axis=0, keepdims=True)
        std = np.maximum(features.std(axis=0, keepdims=True), _MIN_STD)
        features = (features - mean) / std
    elif normalize != "none":
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    return avoid_padding_frames(features)


def avoid_padding_frames(features: np.ndarray, pad_value: float = 0.0) -> np.ndarray:
    """Shifts frames that equal `pad_value` in every coefficient, so the padding mask keeps them."""
    features = np.array(features, dtype=np.float32, copy=True)
    padding_like = np.all(features == pad_value, axis=1)
    features[padding_like] += _PAD_NUDGE
    return features


def features_from_waveform(waveform: np.ndarray, rate: int, settings: MfccSettings) -> np.ndarray:
    """The model's input for one utterance: MFCCs, deltas and normalisation as `settings` say."""
    return postprocess(mfcc(waveform, rate, settings), settings.deltas, settings.normalize)


def sha256_of_files(paths: Iterable[Path], root: Path | None = None) -> str:
    """One digest over the names (relative to `root`) and contents of `paths`, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        name = str(path.relative_to(root)) if root is not None else path.name
        digest.update(name.encode("utf-8") + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def cache_key(fields: Mapping) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def cached_feature_list(
    kind: str, fields: Mapping, compute: Callable[[], Sequence[np.ndarray]]
) -> list[np.ndarray]:
    """`compute()` (a list of (frames, features) float32 matrices), stored on disk under a key made of `fields`.

    `fields` must hold everything the result depends on: feature settings, the data's identity (a content hash or a
    dataset version) and any recipe that builds utterances from it. A cache file that cannot be read is recomputed.
    """
    key = cache_key(fields)
    folder = cache_dir() / "features"
    target = folder / f"{kind}-{key[:24]}.npz"
    if target.is_file():
        try:
            with np.load(target) as stored:
                frames, lengths = stored["frames"], stored["lengths"]
            return [m for m in np.split(frames, np.cumsum(lengths)[:-1])] if len(lengths) else []
        except Exception:  # a partial or foreign file: computing again is always safe
            pass
    features = [np.asarray(m, dtype=np.float32) for m in compute()]
    folder.mkdir(parents=True, exist_ok=True)
    lengths = np.asarray([len(m) for m in features], dtype=np.int64)
    frames = np.concatenate(features, axis=0) if features else np.zeros((0, 0), np.float32)
    # Write then rename, so a concurrent reader or an interrupted run never sees half a file.
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".npz.tmp", delete=False) as handle:
        np.savez(handle, frames=frames, lengths=lengths)
    os.replace(handle.name, target)
    target.with_suffix(".json").write_text(json.dumps(fields, sort_keys=True, default=str, indent=1))
    return features


def unpack_archive(archive: Path) -> Path:
    """Unpacks a .tar/.tar.gz into the cache (once per archive content) and returns the folder it was unpacked to."""
    archive = Path(archive)
    digest = sha256_of_files([archive])
    target = cache_dir() / "unpacked" / f"{archive.name.split('.')[0]}-{digest[:16]}"
    if (target / ".complete").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".unpacking-"))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
    except (tarfile.TarError, OSError, EOFError) as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise DataError(
            f"{archive}: cannot unpack the archive ({error}); download it again or pass the unpacked folder instead"
        ) from None
    (staging / ".complete").write_text(digest)
    if target.exists():  # a stale, incomplete earlier attempt
        shutil.rmtree(target, ignore_errors=True)
    try:
        os.replace(staging, target)
    except OSError:  # another process finished first; its copy is identical
        shutil.rmtree(staging, ignore_errors=True)
    return target
