"""The speech task's scores: character and word error rates of transcripts, and the two baselines (an empty output,
and the most frequent training transcript for every test utterance)."""
from __future__ import annotations

from collections import Counter
from typing import Sequence

from rnnbench import ctc
from rnnbench.tasks.speech.data import Utterance


def error_rates(references: Sequence[str], hypotheses: Sequence[str], prefix: str = "") -> dict:
    """{prefix + "cer", prefix + "wer"}: corpus-level error rates of `hypotheses` against `references`."""
    return {f"{prefix}cer": ctc.cer(references, hypotheses), f"{prefix}wer": ctc.wer(references, hypotheses)}


def baselines(train: list[Utterance], test: list[Utterance]) -> dict:
    references = [u.transcript for u in test]
    most_frequent = Counter(u.transcript for u in train).most_common(1)[0][0]
    guesses = {"empty_output": [""] * len(references), "most_frequent_transcript": [most_frequent] * len(references)}
    return {name: error_rates(references, hyps) for name, hyps in guesses.items()}
