"""Seeded splitting of the speech data (item draws, whole held-out speakers, per-split limits) and the checks every
split must pass before batching."""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from rnnbench import ctc
from rnnbench.errors import DataError
from rnnbench.tasks.speech.data import Utterance


def split_indices(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out): a random `fraction` of range(n), at least one item when n > 1."""
    order = rng.permutation(n)
    held = min(n - 1, max(1, int(round(n * fraction)))) if n > 1 else 0
    return np.sort(order[held:]), np.sort(order[:held])


def hold_out_speakers(utterances: list[Utterance], fraction: float, rng: np.random.Generator):
    """(kept, held out): whole speakers, drawn in seeded order until they hold `fraction` of the utterances."""
    by_speaker = defaultdict(list)
    for u in utterances:
        by_speaker[u.speaker].append(u)
    speakers = sorted(by_speaker)
    if len(speakers) < 2:
        kept, held = split_indices(len(utterances), fraction, rng)
        return [utterances[i] for i in kept], [utterances[i] for i in held]
    held_speakers, held_count = set(), 0
    for i in rng.permutation(len(speakers)):
        if held_count >= fraction * len(utterances) or len(held_speakers) == len(speakers) - 1:
            break
        held_speakers.add(speakers[i])
        held_count += len(by_speaker[speakers[i]])
    return ([u for u in utterances if u.speaker not in held_speakers],
            [u for u in utterances if u.speaker in held_speakers])


def limit_splits(splits: dict, limit: int | None, rng: np.random.Generator) -> dict:
    """At most `limit` items per split, a seeded sample in the original order."""
    if not limit:
        return splits
    return {k: [v[i] for i in sorted(rng.permutation(len(v))[:limit])] for k, v in splits.items()}


def frames_needed(labels: np.ndarray) -> int:
    """The fewest frames a CTC alignment of `labels` needs: one per label plus a blank between repeated labels."""
    return int(len(labels) + np.count_nonzero(labels[1:] == labels[:-1])) if len(labels) else 0


def check_splits(splits: dict, vocabulary: ctc.Vocabulary, source: str) -> int:
    """Refuses empty splits and utterances too short for their transcript; returns the largest time subsampling
    every utterance allows."""
    for split, items in splits.items():
        if not items:
            raise DataError(f"{source}: the {split} split is empty; add data or change "
                            "task.val_fraction / task.test_fraction / task.limit")
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
