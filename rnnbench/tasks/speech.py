"""Speech recognition with CTC (task "speech"): MFCC frames in, a label sequence out, scored by CER and WER.

The suite's sequence-to-sequence task. Four data sources, chosen with `dataset`:
  digits  connected spoken digits: utterances of 1..`max_digits` FSDD clips of one speaker joined by short seeded
          silences, labelled with the digit sequence ("3 0 7"; one label per digit, so `wer` is the digit error rate).
          Clips come from tfds `spoken_digit` (TFDS_DATA_DIR), or from `data_dir` holding FSDD's
          `{digit}_{speaker}_{index}.wav` files or its recordings tarball. Test utterances use only clips with index
          0-4 (FSDD's own test split) and validation utterances only a seeded held-out part of the other clips, so no
          evaluation clip is ever heard in training.
  yesno   OpenSLR yesno: `data_dir` holds wavs named by their labels (`0_1_1_0_1_0_0_1.wav`, 1 = yes, 0 = no); one
          label per word. There is no official split: `test_fraction` of the files is drawn with the seed.
  an4     CMU AN4 from precomputed 13-dim cepstra (`.mfc`, 100 frames/s): `data_dir` holds `etc/an4_{train,test}
          .{transcription,fileids}` and either `an4_feat_mfc.tar.gz` (unpacked into the cache) or the unpacked
          `an4/feat/...` tree. Character labels (A-Z and space). Official test split; validation holds out whole
          training speakers, since the test speakers are unseen too.
  csv     your own: `data_file` is a CSV with columns `path` (audio, relative to the CSV's folder) and `transcript`,
          and optionally `split` (train / val / test; otherwise drawn with the seed). Character labels.

Features: MFCCs with librosa (audio at another rate is resampled to `sample_rate`), optional deltas, per-utterance
mean/variance normalisation, cached on disk by `rnnbench.audio`. AN4 ships cepstra, so only `deltas` and `normalize`
apply to it. Batches are padded per batch with 0.0 frames (no real frame is ever all 0.0) and bucketed by length.

Metrics: the model's CTC loss; `cer` and `wer` after greedy decoding on validation every epoch (a callback; by
default also what picks the best epoch, see `monitor`) and on test at the end, with `beam_cer` / `beam_wer` after beam search on test. The
leaderboard key is `wer` for word-label datasets (digits, yesno) and `cer` for character-label ones (an4, csv).
Baselines: an empty output, and the most frequent training transcript for every test utterance.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from rnnbench import audio, ctc
from rnnbench.errors import DataError, UserError
from rnnbench.registry import register_task
from rnnbench.spec import InputSpec, OutputSpec, TaskSpec
from rnnbench.tasks._pipeline import run_shuffle_seed, shuffled_rows

DATASETS = ("digits", "yesno", "an4", "csv")
DIGIT_WORDS = tuple(str(d) for d in range(10))
YESNO_WORDS = {"0": "no", "1": "yes"}
AN4_SYMBOLS = " ABCDEFGHIJKLMNOPQRSTUVWXYZ"
AN4_COEFFICIENTS = 13
AN4_SPLIT_FILES = {"train": "an4_train", "test": "an4_test"}
# Native rates of the bundled datasets; a CSV's audio is resampled to the usual 16 kHz speech rate.
DEFAULT_SAMPLE_RATES = {"digits": 8000, "yesno": 8000, "csv": 16000}
FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")
YESNO_NAME = re.compile(r"^[01](_[01])*\.wav$")
TRANSCRIPTION_LINE = re.compile(r"^(?P<text>.*?)\s*\((?P<id>[^()\s]+)\)\s*$")
SENTENCE_MARKERS = {"<s>", "</s>", "<sil>"}
MONITORS = ("error_rate", "loss")
DIGIT_GAP_MS = (80, 300)  # silence between the clips of a connected-digits utterance, drawn uniformly
DIGIT_EDGE_MS = (0, 150)  # silence before the first and after the last clip
DITHER = 1e-4  # amplitude of the noise in those silences, far below the recordings' own noise floor
BUCKETS = 6
EXAMPLES_PLOTTED = 1


@dataclasses.dataclass
class Utterance:
    id: str
    features: np.ndarray  # (frames, feature_dim) float32
    transcript: str
    speaker: str = ""


# ---------------------------------------------------------------------------------------------------------------------
# Reading each data source into utterances.


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


def _read_text(path: Path, what: str, option: str = "task.data_dir") -> str:
    if not path.is_file():
        raise DataError(f"{path}: {what} not found; check {option}")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (byte {error.start}); re-save it as UTF-8") from None


def _an4_feature_root(folder: Path) -> Path:
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
    fileids = [line.strip() for line in _read_text(ids_path, "AN4 fileids list").splitlines() if line.strip()]
    lines = [line.strip() for line in _read_text(text_path, "AN4 transcription list").splitlines() if line.strip()]
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


def _wav_files(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found; set task.data_dir to the folder of {what}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".wav" and p.is_file())


def read_yesno_files(folder: Path) -> list[tuple[Path, str]]:
    """(wav path, "yes no ...") for every wav in `folder`, whose name is its label sequence."""
    files = _wav_files(folder, "the yesno wavs")
    if not files:
        raise DataError(f"{folder}: no .wav files; set task.data_dir to the folder of the yesno wavs (waves_yesno)")
    badly_named = [p.name for p in files if not YESNO_NAME.match(p.name)]
    if badly_named:
        raise DataError(f"{folder}: {len(badly_named)} wav names are not label sequences like 0_1_1_0_1_0_0_1.wav "
                        f"(e.g. {badly_named[0]!r}); rename or remove them")
    return [(p, " ".join(YESNO_WORDS[bit] for bit in p.stem.split("_"))) for p in files]


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
    files = [p for p in _wav_files(folder, "FSDD recordings") if FSDD_NAME.match(p.name)]
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
    """FSDD clips from tensorflow-datasets `spoken_digit` in TFDS_DATA_DIR (downloaded there if allowed)."""
    import os

    import tensorflow_datasets as tfds

    data_dir = os.environ.get("TFDS_DATA_DIR") or None
    remedies = ("set TFDS_DATA_DIR to a tensorflow-datasets folder that holds spoken_digit, or pass "
                "task.data_dir=<folder of FSDD's {digit}_{speaker}_{index}.wav recordings>")
    builder = tfds.builder("spoken_digit", data_dir=data_dir)
    if not builder.is_prepared():
        if not download:
            raise DataError(f"tfds spoken_digit is not in {builder.data_dir_root} and task.download is false; "
                            f"{remedies}, or allow task.download=true with internet access")
        try:
            builder.download_and_prepare()
        except Exception as error:  # network, disk and checksum failures all leave the same remedies
            raise DataError(f"tfds spoken_digit is not in {builder.data_dir_root} and could not be downloaded "
                            f"({type(error).__name__}: {str(error)[:200]}); {remedies}") from None
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


def read_csv_list(data_file: Path) -> list[tuple[Path, str, str]]:
    """(audio path, transcript, split or "") per row of a `path,transcript[,split]` CSV."""
    text = _read_text(data_file, "transcript CSV", "task.data_file")
    if not text.strip():
        raise DataError(f"{data_file}: the file is empty; it needs a header 'path,transcript' and one row per clip")
    rows = list(csv.DictReader(io.StringIO(text)))
    columns = set(rows[0]) if rows else set(next(csv.reader(io.StringIO(text))))
    missing = {"path", "transcript"} - columns
    if missing:
        raise DataError(f"{data_file}: missing column(s) {sorted(missing)}; the header must name path and transcript "
                        f"(found {sorted(c for c in columns if c)})")
    if not rows:
        raise DataError(f"{data_file}: the header has no rows under it; add one row per audio clip")
    entries = []
    for line, row in enumerate(rows, start=2):
        transcript = " ".join((row.get("transcript") or "").split())
        relative = (row.get("path") or "").strip()
        if not relative or not transcript:
            raise DataError(f"{data_file}, line {line}: empty {'path' if not relative else 'transcript'}; "
                            "every row needs an audio path and a non-empty transcript")
        split = (row.get("split") or "").strip().lower()
        split = {"validation": "val", "valid": "val", "dev": "val"}.get(split, split)
        if split not in ("", "train", "val", "test"):
            raise DataError(f"{data_file}, line {line}: split {row['split']!r} is not train, val or test")
        path = data_file.parent / relative
        if not path.is_file():
            raise DataError(f"{data_file}, line {line}: audio file {path} not found; paths count from the CSV's folder")
        entries.append((path, transcript, split))
    return entries


# ---------------------------------------------------------------------------------------------------------------------
# Splits and utterance construction.


def _split_indices(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out): a random `fraction` of range(n), at least one item when n > 1."""
    order = rng.permutation(n)
    held = min(n - 1, max(1, int(round(n * fraction)))) if n > 1 else 0
    return np.sort(order[held:]), np.sort(order[:held])


def _hold_out_speakers(utterances: list[Utterance], fraction: float, rng: np.random.Generator):
    """(kept, held out): whole speakers, drawn in seeded order until they hold `fraction` of the utterances."""
    by_speaker = defaultdict(list)
    for u in utterances:
        by_speaker[u.speaker].append(u)
    speakers = sorted(by_speaker)
    if len(speakers) < 2:
        kept, held = _split_indices(len(utterances), fraction, rng)
        return [utterances[i] for i in kept], [utterances[i] for i in held]
    held_speakers, held_count = set(), 0
    for i in rng.permutation(len(speakers)):
        if held_count >= fraction * len(utterances) or len(held_speakers) == len(speakers) - 1:
            break
        held_speakers.add(speakers[i])
        held_count += len(by_speaker[speakers[i]])
    return ([u for u in utterances if u.speaker not in held_speakers],
            [u for u in utterances if u.speaker in held_speakers])


@dataclasses.dataclass(frozen=True)
class DigitUtterancePlan:
    """How one connected-digits utterance is put together: clip numbers, silences (samples) around and between them
    (len(clips) + 1 of them: lead, gaps, tail) and the seed of the silences' dither noise."""

    id: str
    speaker: str
    clips: tuple
    silences: tuple
    noise_seed: int


def plan_connected_digits(clips: DigitClips, pool: np.ndarray, count: int, max_digits: int,
                          rng: np.random.Generator, split: str) -> list[DigitUtterancePlan]:
    """`count` utterances of 1..max_digits clips of one speaker drawn from `pool` (clip numbers).

    Each speaker's clips are dealt from a shuffled deck that is reshuffled when it runs out, so every clip of the
    pool is used before any is used twice.
    """
    by_speaker = defaultdict(list)
    for clip in pool:
        by_speaker[str(clips.speakers[clip])].append(int(clip))
    speakers = sorted(by_speaker)
    decks = {s: [] for s in speakers}
    plans = []
    for number in range(count):
        speaker = speakers[int(rng.integers(len(speakers)))]
        chosen = []
        for _ in range(int(rng.integers(1, max_digits + 1))):
            if not decks[speaker]:
                decks[speaker] = [int(c) for c in rng.permutation(by_speaker[speaker])]
            chosen.append(decks[speaker].pop())
        ranges = [DIGIT_EDGE_MS] + [DIGIT_GAP_MS] * (len(chosen) - 1) + [DIGIT_EDGE_MS]
        silences = tuple(int(rng.uniform(*r) * clips.rate / 1000) for r in ranges)
        plans.append(DigitUtterancePlan(f"{split}-{number:05d}", speaker, tuple(chosen), silences,
                                        int(rng.integers(2**31))))
    return plans


def render_digits(clips: DigitClips, plan: DigitUtterancePlan) -> np.ndarray:
    """The waveform of a planned utterance: dithered silence, clip, silence, clip, ..., silence."""
    noise = np.random.default_rng(plan.noise_seed)
    pieces = []
    for i, samples in enumerate(plan.silences):
        pieces.append((noise.standard_normal(samples) * DITHER).astype(np.float32))
        if i < len(plan.clips):
            pieces.append(clips.waveforms[plan.clips[i]])
    return np.concatenate(pieces)


def digits_transcript(clips: DigitClips, plan: DigitUtterancePlan) -> str:
    return " ".join(str(clips.digits[c]) for c in plan.clips)


def _cached(kind: str, fields: dict, skeleton: Sequence[tuple[str, str, str]],
            compute: Callable[[int], np.ndarray]) -> list[Utterance]:
    """Utterances (id, transcript, speaker from `skeleton`) whose features `compute(i)` are read from the disk cache
    when `fields` (feature settings + data identity + recipe) were seen before."""
    features = audio.cached_feature_list(kind, fields, lambda: [compute(i) for i in range(len(skeleton))])
    return [Utterance(i, f, t, s) for (i, t, s), f in zip(skeleton, features)]


def _cached_splits(kind: str, fields: dict, skeleton: Sequence[tuple[str, str, str]], chosen: dict,
                   compute: Callable[[int], np.ndarray]) -> dict:
    """{split: utterances} for the item numbers in `chosen`, computing (or reading cached) features only for those."""
    wanted = sorted({int(i) for items in chosen.values() for i in items})
    if len(wanted) < len(skeleton):  # a subset (task.limit) gets its own cache entry; the full set is seed-independent
        fields = {**fields, "subset": wanted}
    utterances = dict(zip(wanted, _cached(kind, fields, [skeleton[i] for i in wanted],
                                          lambda j: compute(wanted[j]))))
    return {k: [utterances[int(i)] for i in items] for k, items in chosen.items()}


def _csv_splits(given: list[str], val_fraction: float, test_fraction: float, rng: np.random.Generator,
                data_file: Path) -> dict:
    """Row numbers per split: the CSV's own `split` column when every row has one (validation drawn from train if
    it names none), else a seeded draw of test_fraction and val_fraction."""
    named = [s for s in given if s]
    if named and len(named) != len(given):
        line = given.index("") + 2
        raise DataError(f"{data_file}, line {line}: empty split while other rows name one; fill in train, val or "
                        "test on every row, or drop the split column to draw the splits with the seed")
    if named:
        splits = {k: np.array([i for i, s in enumerate(given) if s == k], dtype=int) for k in ("train", "val", "test")}
        if not len(splits["val"]) and len(splits["train"]) > 1:
            kept, held = _split_indices(len(splits["train"]), val_fraction, rng)
            splits["train"], splits["val"] = splits["train"][kept], splits["train"][held]
        return splits
    rest, test_idx = _split_indices(len(given), test_fraction, rng)
    kept, held = _split_indices(len(rest), val_fraction, rng)
    return {"train": rest[kept], "val": rest[held], "test": test_idx}


def _limit(splits: dict, limit: int | None, rng: np.random.Generator) -> dict:
    """At most `limit` items per split, a seeded sample in the original order."""
    if not limit:
        return splits
    return {k: [v[i] for i in sorted(rng.permutation(len(v))[:limit])] for k, v in splits.items()}


def frames_needed(labels: np.ndarray) -> int:
    """The fewest frames a CTC alignment of `labels` needs: one per label plus a blank between repeated labels."""
    return int(len(labels) + np.count_nonzero(labels[1:] == labels[:-1])) if len(labels) else 0


def _check_alignable(splits: dict, vocabulary: ctc.Vocabulary, source: str) -> int:
    """Refuses utterances too short for their transcript; returns the largest time subsampling every one allows."""
    worst = math.inf
    for split, items in splits.items():
        for u in items:
            missing = vocabulary.unknown(u.transcript)
            if missing:
                raise DataError(f"{source}: utterance {u.id} ({split}) has symbols {missing} outside the vocabulary")
            needed = frames_needed(vocabulary.encode(u.transcript))
            if len(u.features) < needed:
                raise DataError(f"{source}: utterance {u.id} has {len(u.features)} frames but its transcript "
                                f"{u.transcript!r} needs {needed}; CTC cannot align it. Remove it or use a smaller "
                                "task.hop_ms")
            worst = min(worst, len(u.features) // max(needed, 1))
    return int(worst)


# ---------------------------------------------------------------------------------------------------------------------
# Batching.


def bucket_boundaries(lengths: Sequence[int], longest: int, buckets: int = BUCKETS) -> list[int]:
    """Upper bounds (exclusive) of length buckets: quantiles of the training lengths, then one past the longest
    utterance of any split. Batches are padded to their bucket's bound, so a model sees at most `buckets` shapes."""
    quantiles = np.quantile(np.asarray(lengths), np.linspace(0, 1, buckets + 1)[1:-1]) if len(lengths) else []
    bounds = sorted({int(math.ceil(q)) + 1 for q in quantiles} | {int(longest) + 1})
    return [b for b in bounds if b > 1]


def _pad_batch(utterances: Sequence[Utterance], length: int, vocabulary: ctc.Vocabulary):
    x = np.zeros((len(utterances), length, utterances[0].features.shape[1]), dtype=np.float32)
    for row, u in zip(x, utterances):
        row[: len(u.features)] = u.features
    return x, ctc.pad_labels([vocabulary.encode(u.transcript) for u in utterances])


def sorted_batches(utterances: Sequence[Utterance], batch_size: int, bounds: Sequence[int],
                   vocabulary: ctc.Vocabulary):
    """[(utterances, x, y)]: utterances sorted by length, padded to their bucket bound (for decoding hooks)."""
    ordered = sorted(utterances, key=lambda u: (len(u.features), u.id))
    batches = []
    for start in range(0, len(ordered), batch_size):
        chunk = ordered[start: start + batch_size]
        longest = len(chunk[-1].features)
        length = next(b - 1 for b in bounds if longest < b)
        batches.append((chunk, *_pad_batch(chunk, length, vocabulary)))
    return batches


def make_dataset(utterances: Sequence[Utterance], vocabulary: ctc.Vocabulary, batch_size: int, bounds: Sequence[int],
                 label_length: int, shuffle_seed: int | None = None) -> tf.data.Dataset:
    """Batches (x (B, T, F) float32 padded with 0.0, y (B, label_length) int32 padded with 0), bucketed by length.

    T is the bucket's bound minus one, so a model sees one input shape per bucket, and the labels have one fixed
    width; both keep retracing (and XLA recompiling) to a handful of shapes.
    """
    feature_dim = utterances[0].features.shape[1]
    features = [u.features for u in utterances]
    labels = [vocabulary.encode(u.transcript) for u in utterances]

    if shuffle_seed is None:
        def generate():
            yield from zip(features, labels)

        ds = tf.data.Dataset.from_generator(
            generate,
            output_signature=(tf.TensorSpec((None, feature_dim), tf.float32), tf.TensorSpec((None,), tf.int32)),
        )
        ds = ds.apply(tf.data.experimental.assert_cardinality(len(features)))
    else:  # the order of a whole-split shuffle of the utterances, without refilling its buffer each pass
        ds = shuffled_rows([features, labels], [np.float32, np.int32], shuffle_seed)
    ds = ds.bucket_by_sequence_length(
        element_length_func=lambda x, y: tf.shape(x)[0],
        bucket_boundaries=list(bounds),
        bucket_batch_sizes=[batch_size] * (len(bounds) + 1),
        padded_shapes=([None, feature_dim], [label_length]),
        padding_values=(0.0, 0),
        pad_to_bucket_boundary=True,
    )
    # Bucket membership depends on lengths only, so the number of batches is known whatever the shuffle order;
    # stating it lets Keras show progress and skip its end-of-data guessing.
    buckets = np.searchsorted(np.asarray(bounds), [len(f) for f in features], side="right")
    batches = int(sum(math.ceil(n / batch_size) for n in np.bincount(buckets) if n))
    return ds.apply(tf.data.experimental.assert_cardinality(batches)).prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------------------------------------------------
# Decoding and scoring.


class Decoder:
    """Runs a model over fixed, length-sorted batches and turns its logits into transcripts."""

    def __init__(self, utterances: Sequence[Utterance], vocabulary: ctc.Vocabulary, batch_size: int,
                 bounds: Sequence[int], beam_width: int):
        self.utterances = list(utterances)
        self.vocabulary = vocabulary
        self.batches = sorted_batches(utterances, batch_size, bounds, vocabulary)
        self.beam_width = beam_width

    def transcribe(self, model, beam: bool = False) -> dict:
        """{"ids", "references", "greedy"[, "beam"]}, in the batches' (length-sorted) order."""
        out = {"ids": [], "references": [], "greedy": [], "beam": []}
        for chunk, x, _ in self.batches:
            logits = np.asarray(model.predict_on_batch(x))
            out["ids"] += [u.id for u in chunk]
            out["references"] += [u.transcript for u in chunk]
            out["greedy"] += [self.vocabulary.decode(s) for s in ctc.decode_logits(logits, "greedy")]
            if beam:
                out["beam"] += [self.vocabulary.decode(s)
                                for s in ctc.decode_logits(logits, "beam_search", beam_width=self.beam_width)]
        return out

    def scores(self, model, beam: bool = False) -> dict:
        decoded = self.transcribe(model, beam)
        result = {"cer": ctc.cer(decoded["references"], decoded["greedy"]),
                  "wer": ctc.wer(decoded["references"], decoded["greedy"])}
        if beam:
            result.update(beam_cer=ctc.cer(decoded["references"], decoded["beam"]),
                          beam_wer=ctc.wer(decoded["references"], decoded["beam"]))
        return result


class ValidationErrorRates(keras.callbacks.Callback):
    """Adds `val_cer` and `val_wer` (greedy decoding of the validation utterances) to each epoch's logs."""

    def __init__(self, decoder: Decoder):
        super().__init__()
        self.decoder = decoder

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update({f"val_{k}": v for k, v in self.decoder.scores(self.model).items()})


def _baselines(train: list[Utterance], test: list[Utterance]) -> dict:
    references = [u.transcript for u in test]
    most_frequent = Counter(u.transcript for u in train).most_common(1)[0][0]
    guesses = {"empty_output": [""] * len(references), "most_frequent_transcript": [most_frequent] * len(references)}
    return {name: {"cer": ctc.cer(references, hyps), "wer": ctc.wer(references, hyps)} for name, hyps in guesses.items()}


def _write_examples(out_dir: Path, decoded: dict, vocabulary: ctc.Vocabulary) -> None:
    with open(out_dir / "decoded_test_examples.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "reference", "greedy", "beam_search", "greedy_cer", "beam_cer"])
        for i, ref, greedy, beam in zip(decoded["ids"], decoded["references"], decoded["greedy"], decoded["beam"]):
            writer.writerow([i, ref, greedy, beam, f"{ctc.utterance_cer(ref, greedy):.4f}",
                             f"{ctc.utterance_cer(ref, beam):.4f}"])


def _plot_example(out_dir: Path, model, utterance: Utterance, vocabulary: ctc.Vocabulary) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = utterance.features[None]
    logits = np.asarray(model.predict_on_batch(x))[0]
    probabilities = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probabilities /= probabilities.sum(axis=-1, keepdims=True)
    hypothesis = vocabulary.decode(ctc.decode_logits(logits[None], "greedy")[0])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=False)
    top.imshow(utterance.features.T, aspect="auto", origin="lower", cmap="viridis")
    top.set_ylabel("feature")
    top.set_title(f"{utterance.id}: reference {utterance.transcript!r}", fontsize=9)
    bottom.imshow(probabilities.T, aspect="auto", origin="lower", cmap="Greys", vmin=0, vmax=1)
    labels = ["<blank>"] + list(vocabulary.symbols)
    bottom.set_yticks(range(len(labels)))
    bottom.set_yticklabels([repr(s) if s == " " else s for s in labels], fontsize=6)
    bottom.set_xlabel("output frame")
    bottom.set_title(f"{model.name}: posteriors, greedy {hypothesis!r}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_dir / "test_example_posteriors.png", dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------------------------
# The loader.


@register_task("speech")
def load(
    *,
    batch_size: int = 32,
    seed: int = 0,
    dataset: str = "digits",
    data_dir: str | None = None,
    data_file: str | None = None,
    download: bool = True,
    sample_rate: int | None = None,
    n_mfcc: int = 13,
    n_mels: int = 40,
    win_ms: float = 25.0,
    hop_ms: float = 10.0,
    deltas: int = 0,
    normalize: str = "utterance",
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    max_digits: int = 5,
    train_utterances: int = 3000,
    eval_utterances: int = 300,
    limit: int | None = None,
    beam_width: int = 16,
    val_decode_limit: int = 256,
    monitor: str = "error_rate",
) -> TaskSpec:
    """Speech recognition with CTC.

    Args:
      seed: draws splits, held-out validation parts, connected-digit utterances and the shuffling order.
      dataset: "digits", "yesno", "an4" or "csv" (see the module docstring).
      data_dir: yesno: the folder of wavs; an4: the folder with etc/ and the cepstra; digits: FSDD recordings
        instead of tfds.
      data_file: csv: the transcript list.
      download: digits from tfds: download spoken_digit into TFDS_DATA_DIR when it is not there.
      sample_rate: audio is resampled to this rate; default 8000 for digits and yesno (their native rate), 16000 for
        csv.
      n_mfcc, n_mels, win_ms, hop_ms: MFCC front end (not for an4, whose cepstra are fixed).
      deltas: append first (1) or first and second (2) differences.
      normalize: "utterance" (mean/variance per coefficient within each utterance) or "none".
      val_fraction: held out of the training data for validation (an4: whole speakers; digits: clips).
      test_fraction: yesno and csv without a split column: the test part.
      max_digits, train_utterances, eval_utterances: digits: the longest utterance, and how many utterances the
        training and each evaluation split get.
      limit: at most this many utterances per split (seeded), for quick runs.
      beam_width: beam search width for the `beam_*` test metrics.
      val_decode_limit: validation utterances decoded each epoch for `val_cer` / `val_wer` (seeded sample).
      monitor: what picks the best epoch: "error_rate" (val_wer or val_cer, as the leaderboard key) or "loss"
        (val_loss; smoother when the validation set is so small that many epochs tie at the same error rate).
    """
    if dataset not in DATASETS:
        raise UserError(f"task.dataset must be one of {DATASETS}, got {dataset!r}")
    if monitor not in MONITORS:
        raise UserError(f"task.monitor must be one of {MONITORS}, got {monitor!r}")
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < value < 1.0:
            raise UserError(f"task.{name} must be between 0 and 1, got {value}")
    if val_fraction + test_fraction >= 1.0:
        raise UserError(f"task.val_fraction + task.test_fraction must stay below 1, got {val_fraction + test_fraction}")
    for name, value, low in (("max_digits", max_digits, 1), ("train_utterances", train_utterances, 1),
                             ("eval_utterances", eval_utterances, 1), ("beam_width", beam_width, 1),
                             ("val_decode_limit", val_decode_limit, 1), ("limit", limit or 1, 1)):
        if value < low:
            raise UserError(f"task.{name} must be >= {low}, got {value}")
    if dataset in ("yesno", "an4") and not data_dir:
        raise UserError(f"task.dataset={dataset} needs task.data_dir=<folder>: "
                        + ("the folder of yesno wavs" if dataset == "yesno" else
                           "the folder holding etc/ and an4_feat_mfc.tar.gz (or the unpacked an4/feat/)"))
    if dataset == "csv" and not data_file:
        raise UserError("task.dataset=csv needs task.data_file=<CSV with columns path,transcript[,split]>")
    if dataset == "an4":
        fixed = {"n_mfcc": (n_mfcc, 13), "n_mels": (n_mels, 40), "win_ms": (win_ms, 25.0), "hop_ms": (hop_ms, 10.0),
                 "sample_rate": (sample_rate, None)}
        changed = [f"task.{k}={v}" for k, (v, default) in fixed.items() if v != default]
        if changed:
            raise UserError(f"{', '.join(changed)}: AN4 ships fixed 13-coefficient cepstra at 100 frames/s; only "
                            "task.deltas and task.normalize apply to it")
    settings = audio.MfccSettings(
        sample_rate=sample_rate or DEFAULT_SAMPLE_RATES.get(dataset, 16000), n_mfcc=n_mfcc, n_mels=n_mels,
        win_ms=win_ms, hop_ms=hop_ms, deltas=deltas, normalize=normalize,
    )
    rng = np.random.default_rng(seed)

    if dataset == "digits":
        clips = read_fsdd_folder(Path(data_dir)) if data_dir else read_tfds_spoken_digit(download)
        test_pool = np.flatnonzero(clips.indexes <= 4)
        train_pool = np.flatnonzero(clips.indexes > 4)
        if not len(test_pool) or len(train_pool) < 2:
            raise DataError(f"{clips.identity['name']}: needs clips with index 0-4 (test) and above 4 (train); "
                            f"found {len(test_pool)} and {len(train_pool)}")
        kept, held = _split_indices(len(train_pool), val_fraction, rng)
        counts = {"train": train_utterances, "val": eval_utterances, "test": eval_utterances}
        counts = {k: min(n, limit or n) for k, n in counts.items()}
        pools = {"train": train_pool[kept], "val": train_pool[held], "test": test_pool}
        splits = {}
        for number, (split, pool) in enumerate(pools.items()):
            plans = plan_connected_digits(clips, pool, counts[split], max_digits,
                                          np.random.default_rng([seed, number]), split)
            fields = {"data": clips.identity, "settings": settings.to_dict(), "split": split,
                      "plans": audio.cache_key({"plans": [dataclasses.astuple(p) for p in plans],
                                                "dither": DITHER})}
            skeleton = [(p.id, digits_transcript(clips, p), p.speaker) for p in plans]
            splits[split] = _cached("digits", fields, skeleton, lambda i, plans=plans: audio.features_from_waveform(
                render_digits(clips, plans[i]), clips.rate, settings))
        vocabulary = ctc.Vocabulary(DIGIT_WORDS, unit="word")
        identity = dict(clips.identity)
    elif dataset == "yesno":
        folder = Path(data_dir)
        files = read_yesno_files(folder)
        fields = {"data": {"name": "yesno", "sha256": audio.sha256_of_files([p for p, _ in files], folder)},
                  "settings": settings.to_dict()}
        skeleton = [(p.stem, text, "") for p, text in files]
        rest, test_idx = _split_indices(len(files), test_fraction, rng)
        kept, held = _split_indices(len(rest), val_fraction, rng)
        chosen = _limit({"train": rest[kept], "val": rest[held], "test": test_idx}, limit, rng)
        splits = _cached_splits("yesno", fields, skeleton, chosen,
                                lambda i: audio.features_from_waveform(*audio.load_audio(files[i][0]), settings))
        vocabulary = ctc.Vocabulary(sorted(YESNO_WORDS.values()), unit="word")
        identity = dict(fields["data"])
    elif dataset == "an4":
        folder = Path(data_dir)
        if not folder.is_dir():
            raise DataError(f"{folder}: folder not found; set task.data_dir to the AN4 folder (etc/ and the cepstra)")
        feature_root = _an4_feature_root(folder)
        train_all = read_an4_split(folder, "train", feature_root)
        test = read_an4_split(folder, "test", feature_root)
        for u in train_all + test:
            u.features = audio.postprocess(u.features, deltas, normalize)
        train, val = _hold_out_speakers(train_all, val_fraction, rng)
        splits = _limit({"train": train, "val": val, "test": test}, limit, rng)
        vocabulary = ctc.Vocabulary(AN4_SYMBOLS, unit="char")
        identity = {"name": "an4_mfcc", "sha256": audio.sha256_of_files(
            [folder / "etc" / f"{stem}.{kind}" for stem in AN4_SPLIT_FILES.values()
             for kind in ("fileids", "transcription")], folder)}
    else:
        data_path = Path(data_file)
        entries = read_csv_list(data_path)
        fields = {"data": {"name": data_path.name,
                           "sha256": audio.sha256_of_files([data_path] + sorted({p for p, _, _ in entries}))},
                  "settings": settings.to_dict()}
        skeleton = [(f"{i:06d}-{p.stem}", text, "") for i, (p, text, _) in enumerate(entries)]
        chosen = _limit(_csv_splits([s for _, _, s in entries], val_fraction, test_fraction, rng, data_path), limit, rng)
        splits = _cached_splits("csv", fields, skeleton, chosen,
                                lambda i: audio.features_from_waveform(*audio.load_audio(entries[i][0]), settings))
        vocabulary = ctc.Vocabulary.from_transcripts([text for _, text, _ in entries], unit="char")
        identity = dict(fields["data"])

    for split, items in splits.items():
        if not items:
            raise DataError(f"{identity['name']}: the {split} split is empty; add data or change "
                            "task.val_fraction / task.test_fraction / task.limit")
    max_subsample = _check_alignable(splits, vocabulary, identity["name"])

    train, val, test = splits["train"], splits["val"], splits["test"]
    longest = max(len(u.features) for items in splits.values() for u in items)
    bounds = bucket_boundaries([len(u.features) for u in train], longest)
    label_length = max(len(vocabulary.encode(u.transcript)) for items in splits.values() for u in items)
    val_sample = [val[i] for i in sorted(rng.permutation(len(val))[:val_decode_limit])]
    val_decoder = Decoder(val_sample, vocabulary, batch_size, bounds, beam_width)
    test_decoder = Decoder(test, vocabulary, batch_size, bounds, beam_width)
    primary = "wer" if vocabulary.unit == "word" else "cer"

    def evaluate(model) -> dict:
        return test_decoder.scores(model, beam=True)

    def callbacks() -> list:
        return [ValidationErrorRates(val_decoder)]

    def artifacts(model, out_dir: Path) -> None:
        _write_examples(out_dir, test_decoder.transcribe(model, beam=True), vocabulary)
        for utterance in sorted(test, key=lambda u: len(u.features))[len(test) // 2:][:EXAMPLES_PLOTTED]:
            _plot_example(out_dir, model, utterance, vocabulary)

    options = dict(seed=seed, dataset=dataset, data_dir=data_dir, data_file=data_file, download=download,
                   sample_rate=settings.sample_rate, n_mfcc=n_mfcc, n_mels=n_mels, win_ms=win_ms, hop_ms=hop_ms,
                   deltas=deltas, normalize=normalize, val_fraction=val_fraction, test_fraction=test_fraction,
                   max_digits=max_digits, train_utterances=train_utterances, eval_utterances=eval_utterances,
                   limit=limit, beam_width=beam_width, val_decode_limit=val_decode_limit, monitor=monitor)
    frames = {k: int(sum(len(u.features) for u in v)) for k, v in splits.items()}
    return TaskSpec(
        name="speech",
        inputs=InputSpec("features", feature_dim=train[0].features.shape[1], masked=True, pad_value=0.0),
        outputs=OutputSpec("ctc", num_classes=len(vocabulary)),
        train=make_dataset(train, vocabulary, batch_size, bounds, label_length, shuffle_seed=seed),
        train_for=lambda run_seed: make_dataset(train, vocabulary, batch_size, bounds, label_length,
                                                shuffle_seed=run_shuffle_seed(seed, run_seed)),
        val=make_dataset(val, vocabulary, batch_size, bounds, label_length),
        test=make_dataset(test, vocabulary, batch_size, bounds, label_length),
        loss=_ctc_loss(),
        metrics=(),
        primary_metric=primary,
        higher_is_better=False,
        monitor=f"val_{primary}" if monitor == "error_rate" else "val_loss",
        baselines=_baselines(train, test),
        dataset={**identity, **{f"{k}_utterances": len(v) for k, v in splits.items()},
                 **{f"{k}_frames": n for k, n in frames.items()}},
        options=options,
        evaluate=evaluate,
        callbacks=callbacks,
        artifacts=artifacts,
        notes={"label_unit": vocabulary.unit, "vocabulary": "".join(vocabulary.symbols) if vocabulary.unit == "char"
               else " ".join(vocabulary.symbols), "feature_dim": int(train[0].features.shape[1]),
               "frames_per_second": round(1000.0 / settings.hop_ms, 3), "bucket_bounds": list(bounds),
               "max_subsample": max_subsample},
    )


def _ctc_loss():
    from rnnbench.models import ctc_loss

    return ctc_loss
