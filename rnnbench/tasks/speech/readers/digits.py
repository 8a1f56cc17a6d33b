"""Speech source "digits", connected spoken digits: utterances of 1..`max_digits` FSDD clips of one speaker joined
by short seeded silences, labelled with the digit sequence ("3 0 7"; one label per digit, so `wer` is the digit
error rate). Test utterances use only clips with index 0-4 (FSDD's own test split) and validation utterances only a
seeded held-out part of the other clips, so no evaluation clip is ever heard in training."""
from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path

import numpy as np

from rnnbench import audio, ctc
from rnnbench.errors import DataError
from rnnbench.tasks.speech.cache import cached_utterances
from rnnbench.tasks.speech.data import Reader, Source
from rnnbench.tasks.speech.readers.fsdd import DigitClips, read_fsdd_folder, read_tfds_spoken_digit
from rnnbench.tasks.speech.splits import split_indices

DIGIT_WORDS = tuple(str(d) for d in range(10))
DIGIT_GAP_MS = (80, 300)  # silence between the clips of a connected-digits utterance, drawn uniformly
DIGIT_EDGE_MS = (0, 150)  # silence before the first and after the last clip
DITHER = 1e-4  # amplitude of the noise in those silences, far below the recordings' own noise floor


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


def read(options, settings: audio.MfccSettings, rng: np.random.Generator) -> Source:
    clips = read_fsdd_folder(Path(options.data_dir)) if options.data_dir else read_tfds_spoken_digit(options.download)
    test_pool = np.flatnonzero(clips.indexes <= 4)
    train_pool = np.flatnonzero(clips.indexes > 4)
    if not len(test_pool) or len(train_pool) < 2:
        raise DataError(f"{clips.identity['name']}: needs clips with index 0-4 (test) and above 4 (train); "
                        f"found {len(test_pool)} and {len(train_pool)}")
    kept, held = split_indices(len(train_pool), options.val_fraction, rng)
    counts = {"train": options.train_utterances, "val": options.eval_utterances, "test": options.eval_utterances}
    counts = {k: min(n, options.limit or n) for k, n in counts.items()}
    pools = {"train": train_pool[kept], "val": train_pool[held], "test": test_pool}
    splits = {}
    for number, (split, pool) in enumerate(pools.items()):
        # Each split plans from its own generator, so changing one split's count leaves the others' utterances.
        plans = plan_connected_digits(clips, pool, counts[split], options.max_digits,
                                      np.random.default_rng([options.seed, number]), split)
        fields = {"data": clips.identity, "settings": settings.to_dict(), "split": split,
                  "plans": audio.cache_key({"plans": [dataclasses.astuple(p) for p in plans], "dither": DITHER})}
        skeleton = [(p.id, digits_transcript(clips, p), p.speaker) for p in plans]

        def compute(i, plans=plans):
            return audio.features_from_waveform(render_digits(clips, plans[i]), clips.rate, settings)

        splits[split] = cached_utterances("digits", fields, skeleton, compute)
    return Source(splits, ctc.Vocabulary(DIGIT_WORDS, unit="word"), dict(clips.identity))


READER = Reader(read, sample_rate=8000)  # FSDD's native rate
