"""Seeded, label-stratified splitting of IMDB reviews: subsamples, the validation hold-out, the cleaned texts.

Every draw has its own seeded generator (`[seed, k]`), so changing one subsample leaves the others as they were.
"""
from __future__ import annotations

import numpy as np

from rnnbench import text as textlib


def stratified_holdout(labels: np.ndarray, fraction: float, rng: np.random.Generator):
    """(kept, held out) index arrays, each sorted; the held-out part has `fraction` of every label."""
    held_out = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        held_out.append(members[: int(round(len(members) * fraction))])
    held_out = np.sort(np.concatenate(held_out)) if held_out else np.zeros(0, int)
    return np.setdiff1d(np.arange(len(labels)), held_out), held_out


def subsample(texts: list[str], labels: np.ndarray, limit: int, rng: np.random.Generator):
    """At most `limit` examples (0: all), label-stratified, in their original order."""
    if limit <= 0 or limit >= len(labels):
        return texts, labels
    _, picked = stratified_holdout(labels, limit / len(labels), rng)
    return [texts[i] for i in picked], labels[picked]


def split_reviews(raw, seed: int, val_fraction: float, max_train_examples: int,
                  max_test_examples: int) -> dict[str, tuple[list[str], np.ndarray]]:
    """{"train", "val", "test"} -> (texts without `<br />` tags, labels) of `raw` (a `RawReviews`).

    Validation is a stratified `val_fraction` of the (subsampled) training split; each part must hold both labels.
    """
    train_texts, train_labels = subsample(raw.train_texts, raw.train_labels, max_train_examples,
                                          np.random.default_rng([seed, 1]))
    test_texts, test_labels = subsample(raw.test_texts, raw.test_labels, max_test_examples,
                                        np.random.default_rng([seed, 3]))
    keep, held_out = stratified_holdout(train_labels, val_fraction, np.random.default_rng([seed, 4]))
    parts = {"train": ([train_texts[i] for i in keep], train_labels[keep]),
             "val": ([train_texts[i] for i in held_out], train_labels[held_out]),
             "test": (test_texts, test_labels)}
    for name, split in (("train", "training part"), ("val", "validation part"), ("test", "test split")):
        textlib.require_both_classes(parts[name][1], f"{raw.identity['name']}: the {split}")
    return {name: ([textlib.remove_html_line_breaks(t) for t in texts], labels)
            for name, (texts, labels) in parts.items()}
