"""Text generation with a char_lm model: temperature sampling, and sampling a run logged with MLflow.

`generate_from_run` is the task's `generate` hook (`rnnbench generate RUN_ID`); `generate` also writes the
`sample.txt` artifact of every run.
"""
from __future__ import annotations

import math

import keras
import numpy as np

from rnnbench.errors import DataError, UserError
from rnnbench.tasks.char_lm.vocab import OOV_ID, VOCAB_ARTIFACT, CharVocab


def _context_length(model: keras.Model, vocab: CharVocab) -> int:
    fixed = model.inputs[0].shape[1] if model.inputs else None
    return int(fixed or vocab.seq_len)


def generate(model: keras.Model, vocab: CharVocab, prompt: str, length: int, temperature: float = 0.8,
             seed: int = 0) -> str:
    """`prompt` followed by `length` sampled characters.

    Each step feeds the last `seq_len` characters (the window the model was trained on) and samples the next one
    from softmax(logits / temperature); temperature 0 picks the most likely character. The OOV class is never
    sampled, because it stands for no particular character. Shorter contexts are right-padded: the model is causal,
    so the padding after the last real character cannot change its prediction.
    """
    if not prompt:
        raise UserError("the prompt is empty; give at least one character for the model to continue (e.g. '\\n')")
    if length < 0:
        raise UserError(f"length must be >= 0, got {length}")
    if not math.isfinite(temperature) or temperature < 0:
        raise UserError(f"temperature must be a finite number >= 0, got {temperature}")
    classes = model.outputs[0].shape[-1]
    if classes != vocab.size:
        raise DataError(f"the vocabulary has {vocab.size} ids but the model predicts {classes} classes; use the "
                        "vocab.json logged with this same model")
    window = _context_length(model, vocab)
    ids = list(vocab.encode(prompt))
    rng = np.random.default_rng(seed)
    batch = np.zeros((1, window), dtype=np.int32)
    generated = []
    for _ in range(length):
        context = ids[-window:]
        batch[0, :] = 0
        batch[0, :len(context)] = context
        logits = np.asarray(model.predict_on_batch(batch), dtype=np.float64)[0, len(context) - 1]
        logits[OOV_ID] = -np.inf
        if temperature == 0:
            next_id = int(np.argmax(logits))
        else:
            scaled = logits / temperature
            probabilities = np.exp(scaled - np.max(scaled))
            next_id = int(rng.choice(len(probabilities), p=probabilities / probabilities.sum()))
        ids.append(next_id)
        generated.append(next_id)
    return prompt + vocab.decode(generated)


def generate_from_run(run_id: str, prompt: str, length: int, temperature: float, seed: int = 0) -> str:
    """Samples the char_lm model logged with MLflow run `run_id` (its model and its `task/vocab.json`)."""
    from rnnbench import tracking

    vocab = CharVocab.load(tracking.download_artifact(run_id, VOCAB_ARTIFACT))
    model = tracking.load_model(run_id)
    return generate(model, vocab, prompt, length, temperature, seed)


def default_prompt(text: str) -> str:
    """The first complete non-empty line of `text` with its newline (the first line may be cut by the split), or
    its first 40 characters when no line is complete."""
    lines = text.split("\n")
    complete = [line for line in lines[1:-1] if line.strip()]
    return complete[0] + "\n" if complete else text[:40]
