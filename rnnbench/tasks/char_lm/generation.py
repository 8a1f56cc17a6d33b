"""Text generation with a char_lm model: temperature sampling, and sampling a run logged with MLflow.

`generate_from_run` is the task's `generate` hook (`rnnbench generate RUN_ID`); `generate` also writes the
`sample.txt` artifact of every run. A model that reads each window from a zero state re-reads the last `seq_len`
characters for every new one (`WindowReader`); a stateful model (task.state=carried), trained on batches of fixed
size, is read through a batch-1 twin with the same weights that carries its state over the whole prompt and then
one character at a time (`StateReader`), as it was trained to.
"""
from __future__ import annotations

import math

import keras
import numpy as np

from rnnbench.errors import DataError, UserError
from rnnbench.state import is_stateful, reset_states, stateful_twin
from rnnbench.tasks.char_lm.vocab import OOV_ID, VOCAB_ARTIFACT, CharVocab


def _context_length(model: keras.Model, vocab: CharVocab) -> int:
    fixed = model.inputs[0].shape[1] if model.inputs else None
    return int(fixed or vocab.seq_len)


class WindowReader:
    """Next-character logits from the last `seq_len` characters, read afresh from a zero state each time.

    Shorter contexts are right-padded: the model is causal, so the padding after the last real character cannot
    change its prediction."""

    def __init__(self, model: keras.Model, vocab: CharVocab):
        self.model, self.window = model, _context_length(model, vocab)
        self.ids: list[int] = []

    def start(self, ids) -> np.ndarray:
        self.ids = list(ids)
        return self._logits()

    def step(self, next_id: int) -> np.ndarray:
        self.ids.append(next_id)
        return self._logits()

    def _logits(self) -> np.ndarray:
        context = self.ids[-self.window:]
        batch = np.zeros((1, self.window), dtype=np.int32)
        batch[0, :len(context)] = context
        return np.asarray(self.model.predict_on_batch(batch), dtype=np.float64)[0, len(context) - 1]


class StateReader:
    """Next-character logits of a stateful model: the whole prompt read once from a zero state, then each new
    character on top of the carried state, by a batch-1 twin (the model itself keeps its own state untouched)."""

    def __init__(self, model: keras.Model):
        self.model = stateful_twin(model, batch_size=1)

    def start(self, ids) -> np.ndarray:
        reset_states(self.model)
        return self._read(list(ids))

    def step(self, next_id: int) -> np.ndarray:
        return self._read([next_id])

    def _read(self, ids: list[int]) -> np.ndarray:
        batch = np.asarray([ids], dtype=np.int32)
        return np.asarray(self.model.predict_on_batch(batch), dtype=np.float64)[0, -1]


def reader_for(model: keras.Model, vocab: CharVocab):
    """The reader that feeds `model` its context the way it was trained."""
    return StateReader(model) if is_stateful(model) else WindowReader(model, vocab)


def generate(model: keras.Model, vocab: CharVocab, prompt: str, length: int, temperature: float = 0.8,
             seed: int = 0) -> str:
    """`prompt` followed by `length` sampled characters.

    Each step feeds the context as the model was trained on it (`reader_for`: the last `seq_len` characters, or
    for a stateful model everything so far through its carried state) and samples the next character from
    softmax(logits / temperature); temperature 0 picks the most likely character. The OOV class is never sampled,
    because it stands for no particular character.
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
    reader = reader_for(model, vocab)
    rng = np.random.default_rng(seed)
    generated = []
    logits = reader.start(vocab.encode(prompt)) if length else None
    for step in range(length):
        if step:
            logits = reader.step(generated[-1])
        logits[OOV_ID] = -np.inf
        if temperature == 0:
            next_id = int(np.argmax(logits))
        else:
            scaled = logits / temperature
            probabilities = np.exp(scaled - np.max(scaled))
            next_id = int(rng.choice(len(probabilities), p=probabilities / probabilities.sum()))
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
