"""Scoring new reviews with a logged IMDB run (`rnnbench predict`): the task's `predict` hook, and the artifact that
makes it possible, `task/vocabulary.json` (the vocabulary and the tokenisation and truncation settings).

A review is cleaned and tokenised exactly as in training (`<br />` tags removed, lower case, punctuation stripped,
whitespace split, words outside the vocabulary as [UNK]) and cut to `max_length` tokens the way the run cut them.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from rnnbench import text as textlib
from rnnbench.errors import DataError, UserError
from rnnbench.tasks.imdb.artifacts import CLASS_NAMES, positive_probabilities

# The runner stores the files of the `artifacts` hook under "task/" in the run's artifacts.
VOCABULARY_ARTIFACT = "task/vocabulary.json"
VOCABULARY_FORMAT = "rnnbench.imdb.vocabulary/1"
# What `tokens.fit_vectorizer` builds; recorded so that a later change there cannot silently mis-read old runs.
STANDARDIZE, SPLIT = "lower_and_strip_punctuation", "whitespace"
PREVIEW = 60


def save_vocabulary(path: Path, vocabulary: list[str], max_length: int, truncation: str) -> None:
    """Everything that turns a raw review into the run's token ids."""
    payload = {"format": VOCABULARY_FORMAT, "standardize": STANDARDIZE, "split": SPLIT,
               "remove_html_line_breaks": True, "max_length": max_length, "truncation": truncation,
               "class_names": list(CLASS_NAMES), "vocabulary": list(vocabulary),
               "vocabulary_sha256": hashlib.sha256("\n".join(vocabulary).encode("utf-8")).hexdigest()}
    Path(path).write_text(json.dumps(payload, ensure_ascii=False, indent=0), encoding="utf-8")


def load_vocabulary(path: Path) -> dict:
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        if payload.get("format") != VOCABULARY_FORMAT:
            raise ValueError(f"format is {payload.get('format')!r}, expected {VOCABULARY_FORMAT!r}")
        if (payload["standardize"], payload["split"]) != (STANDARDIZE, SPLIT):
            raise ValueError(f"tokenisation {payload['standardize']}/{payload['split']} is not {STANDARDIZE}/{SPLIT}")
        if int(payload["max_length"]) < 1 or payload["truncation"] not in ("keep_end", "keep_start"):
            raise ValueError(f"max_length {payload['max_length']} or truncation {payload['truncation']!r} is invalid")
        if not all(isinstance(word, str) for word in payload["vocabulary"]):
            raise ValueError("'vocabulary' must be a list of words")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise DataError(f"{path}: not an IMDB vocabulary file ({error}); use the vocabulary.json that the imdb "
                        "task logged with the run") from None
    return payload


def _reviews(inputs: list[str]) -> list[str]:
    """The review texts: each INPUT is one review, and `-` stands for the reviews on stdin, one per line."""
    reviews = []
    for item in inputs:
        reviews += [line for line in sys.stdin.read().splitlines() if line.strip()] if item == "-" else [item]
    if not reviews or not all(r.strip() for r in reviews):
        raise UserError("an empty review was given; pass each review's text as one argument (quoted), or - to read "
                        "one review per line from stdin")
    return reviews


def token_ids(settings: dict, reviews: list[str]) -> list[np.ndarray]:
    """Each review's token ids as the run made them (see `save_vocabulary`)."""
    import keras

    from rnnbench.tasks.imdb.tokens import to_token_ids

    vectorizer = keras.layers.TextVectorization(standardize=STANDARDIZE, split=SPLIT, output_mode="int",
                                                ragged=True, vocabulary=settings["vocabulary"])
    texts = [textlib.remove_html_line_breaks(r) for r in reviews]
    return to_token_ids(vectorizer, texts, int(settings["max_length"]), settings["truncation"], "given")[0]


def padded(sequences: list[np.ndarray]) -> np.ndarray:
    """One batch of token-id sequences, right-padded with id 0 (masked, as in training)."""
    batch = np.zeros((len(sequences), max(len(s) for s in sequences)), dtype=np.int32)
    for row, ids in zip(batch, sequences):
        row[: len(ids)] = ids
    return batch


def predict_from_run(run_id: str, inputs: list[str]) -> list[str]:
    """One line per review: p(positive), the label (positive above 0.5) and the review's start."""
    from rnnbench import tracking

    reviews = _reviews(inputs)
    path = tracking.download_artifact(
        run_id, VOCABULARY_ARTIFACT, added_later="runs logged before IMDB kept its vocabulary cannot tokenise new text")
    sequences = token_ids(load_vocabulary(path), reviews)
    probabilities = positive_probabilities(tracking.load_model(run_id), padded(sequences))
    lines = ["p_positive  label     review"]
    for review, p in zip(reviews, probabilities):
        preview = " ".join(review.split())
        preview = preview if len(preview) <= PREVIEW else preview[:PREVIEW - 3] + "..."
        lines.append(f"{p:10.4f}  {CLASS_NAMES[int(p > 0.5)]:<8}  {preview}")
    return lines
