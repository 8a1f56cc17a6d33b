"""Splitting a pronouncing dictionary by word: deterministic from the data seed, no word in two splits.

A word and all its pronunciations go to one split, so a model is never tested on a spelling it trained on. The words
are sorted, then shuffled with the data seed, so the split depends on the dictionary's content and the seed only
(not on the file's line order); test takes the first `test_fraction`, validation the next `val_fraction`.
"""
from __future__ import annotations

import numpy as np

from rnnbench.errors import UserError

SPLITS = ("train", "val", "test")


def split_words(words, seed: int, val_fraction: float, test_fraction: float) -> dict:
    """{"train", "val", "test"}: disjoint sorted lists of words (each split's words sorted, for stable batches)."""
    ordered = sorted(set(words))
    order = np.random.default_rng(seed).permutation(len(ordered))
    test_count, val_count = round(test_fraction * len(ordered)), round(val_fraction * len(ordered))
    if min(test_count, val_count) < 1 or test_count + val_count >= len(ordered):
        raise UserError(f"{len(ordered)} words cannot be split into non-empty train, validation "
                        f"({val_fraction}) and test ({test_fraction}) parts; give more words or other fractions")
    picked = [ordered[i] for i in order]
    return {"test": sorted(picked[:test_count]), "val": sorted(picked[test_count:test_count + val_count]),
            "train": sorted(picked[test_count + val_count:])}


def subsample(words: list, limit: int, seed: int) -> list:
    """At most `limit` of `words` (0: all), a seeded choice, kept sorted (for quick runs)."""
    if not limit or limit >= len(words):
        return words
    keep = np.random.default_rng([seed, limit]).choice(len(words), size=limit, replace=False)
    return [words[i] for i in sorted(keep)]
