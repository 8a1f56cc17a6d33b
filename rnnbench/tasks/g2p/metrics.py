"""Phoneme and word error rates against the closest of a word's reference pronunciations.

PER: the edit distance (substitutions, insertions, deletions; rapidfuzz's Levenshtein, the library jiwer computes
with) between the hypothesis and the closest reference, summed over words and divided by the summed lengths of
those references (corpus level, as jiwer's WER over phoneme "words"). WER: the share of words whose hypothesis is
none of their references exactly. Words with several pronunciations are scored against the closest one, as the G2P
literature does (e.g. Yao & Zweig 2015); a tie goes to the first in dictionary order.
"""
from __future__ import annotations

from typing import Sequence

from rapidfuzz.distance import Levenshtein


def closest(references: Sequence[Sequence[str]], hypothesis: Sequence[str]) -> tuple[int, int]:
    """(edit distance, reference length) of the closest reference."""
    distances = [Levenshtein.distance(list(reference), list(hypothesis)) for reference in references]
    best = min(range(len(references)), key=distances.__getitem__)
    return distances[best], len(references[best])


def error_rates(references: Sequence[Sequence[Sequence[str]]], hypotheses: Sequence[Sequence[str]],
                prefix: str = "") -> dict:
    """{prefix + "per", prefix + "wer"} of `hypotheses` (one phoneme sequence per word) against `references` (each
    word's list of pronunciations)."""
    if len(references) != len(hypotheses) or not references:
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} words")
    errors = length = wrong = 0
    for refs, hyp in zip(references, hypotheses):
        distance, size = closest(refs, hyp)
        errors, length, wrong = errors + distance, length + size, wrong + (distance > 0)
    return {f"{prefix}per": errors / max(length, 1), f"{prefix}wer": wrong / len(references)}
