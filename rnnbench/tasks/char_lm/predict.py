"""Scoring prompts with a logged char_lm run (`rnnbench predict`): the task's `predict` hook.

Deterministic, unlike `rnnbench generate`: for each prompt, the most likely next characters with their probabilities
(the model's softmax over every class, out-of-vocabulary included), then the greedy continuation (temperature 0,
never the OOV class). The run's `task/vocab.json` gives the characters and the window length; a stateful run's
model (task.state=carried) reads each whole prompt through its carried state instead (`generation.reader_for`).
"""
from __future__ import annotations

import numpy as np

from rnnbench.errors import UserError
from rnnbench.tasks.char_lm.generation import generate, reader_for
from rnnbench.tasks.char_lm.vocab import OOV_ID, VOCAB_ARTIFACT, CharVocab

TOP = 5
CONTINUATION = 40


def next_char_probabilities(model, vocab: CharVocab, prompt: str) -> np.ndarray:
    """The model's distribution over the next character after `prompt` (its last `seq_len` characters, or all of
    it through a stateful model's carried state)."""
    logits = reader_for(model, vocab).start(vocab.encode(prompt))
    probabilities = np.exp(logits - logits.max())
    return probabilities / probabilities.sum()


def _shown(vocab: CharVocab, token: int) -> str:
    return "(out of vocabulary)" if token == OOV_ID else repr(vocab.decode([token]))


def predict_from_run(run_id: str, inputs: list[str]) -> list[str]:
    """Per prompt: a header, the TOP next characters with probabilities, and a CONTINUATION-character greedy
    continuation."""
    from rnnbench import tracking

    if any(not prompt for prompt in inputs):
        raise UserError("an empty prompt was given; pass each prompt as one argument with at least one character")
    vocab = CharVocab.load(tracking.download_artifact(run_id, VOCAB_ARTIFACT))
    model = tracking.load_model(run_id)
    lines = []
    for prompt in inputs:
        unknown = sorted(set(prompt) - set(vocab.chars))
        lines.append(f"prompt {prompt!r}" + (f" (characters not in the training text, read as out of vocabulary: "
                                               f"{''.join(unknown)!r})" if unknown else ""))
        probabilities = next_char_probabilities(model, vocab, prompt)
        for rank, token in enumerate(np.argsort(-probabilities, kind="stable")[:TOP], start=1):
            lines.append(f"  {rank}. {_shown(vocab, int(token)):<22} p={probabilities[token]:.4f}")
        continuation = generate(model, vocab, prompt, CONTINUATION, temperature=0.0)[len(prompt):]
        lines.append(f"  greedy continuation: {continuation!r}")
    return lines
