"""The baseline that needs no training beyond looking up: each test word is pronounced like its nearest spelling
neighbour among the training words (the smallest letter edit distance; ties to the first in alphabetical order; the
neighbour's first pronunciation). It scores how far spelling similarity alone carries, with no letter-to-sound
model at all."""
from __future__ import annotations

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from rnnbench.tasks.g2p.metrics import error_rates

CHUNK = 256  # test words per distance matrix: 256 x 113k int32 is 116 MB


def nearest_neighbours(words: list[str], candidates: list[str]) -> list[int]:
    """Index into `candidates` of each word's nearest spelling (rapidfuzz's C++ Levenshtein over all pairs)."""
    found = []
    for start in range(0, len(words), CHUNK):
        distances = process.cdist(words[start:start + CHUNK], candidates, scorer=Levenshtein.distance,
                                  dtype=np.int32, workers=-1)
        found.extend(int(i) for i in distances.argmin(axis=1))  # argmin keeps the first of equal distances
    return found


def nearest_spelling(train: dict, test: dict) -> tuple[dict, list]:
    """(metrics, hypotheses) of the nearest-spelling baseline; `train` and `test` map word -> pronunciations."""
    words, candidates = list(test), sorted(train)
    hypotheses = [train[candidates[i]][0] for i in nearest_neighbours(words, candidates)]
    return error_rates([test[w] for w in words], hypotheses), hypotheses
