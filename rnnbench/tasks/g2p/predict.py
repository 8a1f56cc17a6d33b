"""Pronouncing new words with a logged g2p run (`rnnbench predict --run-id ID WORD...`): the task's predict hook,
reading the run's `task/vocabulary.json` (letters, phonemes, maximum output length, beam width)."""
from __future__ import annotations

import json

from rnnbench.errors import DataError, UserError
from rnnbench.tasks.g2p.artifacts import VOCABULARY_ARTIFACT, VOCABULARY_FORMAT
from rnnbench.tasks.g2p.data import Vocabulary
from rnnbench.tasks.g2p.decoding import decode


def load_settings(path) -> dict:
    try:
        payload = json.loads(open(path, encoding="utf-8").read())
        if payload.get("format") != VOCABULARY_FORMAT:
            raise ValueError(f"format is {payload.get('format')!r}, expected {VOCABULARY_FORMAT!r}")
        int(payload["max_output_length"]), int(payload["beam_width"]), list(payload["letters"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(f"{path}: not a g2p vocabulary file ({error}); use the one the g2p task logged") from None
    return payload


def predict_from_run(run_id: str, inputs: list[str]) -> list[str]:
    """One line per word: the word and its pronunciation by beam search (greedy when the run's beam width is 1)."""
    from rnnbench import tracking

    words = [w.lower() for item in inputs for w in item.split()]
    if not words:
        raise UserError("give the words to pronounce, e.g. rnnbench predict --run-id ID hello world")
    settings = load_settings(tracking.download_artifact(run_id, VOCABULARY_ARTIFACT))
    vocabulary = Vocabulary(tuple(settings["letters"]), tuple(settings["phonemes"]))
    unknown = sorted({c for w in words for c in w} - set(vocabulary.letters))
    rows = decode(tracking.load_model(run_id), vocabulary.encode_words(words), int(settings["max_output_length"]),
                  int(settings["beam_width"]))
    lines = [f"{word:<20} {' '.join(vocabulary.decode_phonemes(ids))}" for word, ids in zip(words, rows)]
    if unknown:
        lines.append(f"(letters the run never saw in training, read as unknown: {''.join(unknown)})")
    return lines
