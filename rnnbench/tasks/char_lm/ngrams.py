"""char_lm's reference rows: unigram, bigram and trigram character models with additive smoothing.

Scored on exactly the test targets the networks are scored on, each seeing at most the context a network sees in
its window; the smoothing of each is picked on validation from `SMOOTHING_GRID`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from rnnbench.tasks.char_lm.metrics import scores_from_nats

SMOOTHING_GRID = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003)
NGRAM_BASELINES = {"unigram": 1, "bigram": 2, "trigram": 3}


class NgramModel:
    """Character n-gram model with additive smoothing, counted sparsely (works for any vocabulary size)."""

    def __init__(self, order: int, vocab_size: int, alpha: float = 1.0):
        self.order, self.vocab_size, self.alpha = order, vocab_size, alpha

    def _keys(self, contexts: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        context_key = np.zeros(len(targets), dtype=np.int64)
        for column in range(contexts.shape[1]):
            context_key = context_key * self.vocab_size + contexts[:, column]
        return context_key, context_key * self.vocab_size + targets

    def fit(self, ids: np.ndarray) -> "NgramModel":
        """Counts every (previous order-1 characters, character) pair of the training sequence."""
        ids = ids.astype(np.int64)
        context_length = self.order - 1
        contexts = np.stack([ids[j:len(ids) - context_length + j] for j in range(context_length)], axis=1) \
            if context_length else np.zeros((len(ids), 0), dtype=np.int64)
        context_key, joint_key = self._keys(contexts, ids[context_length:])
        self.context_keys_, self.context_counts_ = np.unique(context_key, return_counts=True)
        self.joint_keys_, self.joint_counts_ = np.unique(joint_key, return_counts=True)
        return self

    @staticmethod
    def _lookup(keys: np.ndarray, counts: np.ndarray, queries: np.ndarray) -> np.ndarray:
        position = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
        return np.where(keys[position] == queries, counts[position], 0).astype(np.float64)

    def log_probs(self, contexts: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Natural-log probability of each target given its row of order-1 previous ids."""
        context_key, joint_key = self._keys(contexts.astype(np.int64), targets.astype(np.int64))
        joint = self._lookup(self.joint_keys_, self.joint_counts_, joint_key)
        context = self._lookup(self.context_keys_, self.context_counts_, context_key)
        return np.log(joint + self.alpha) - np.log(context + self.alpha * self.vocab_size)


def ngram_window_nats(models: Sequence[NgramModel], x: np.ndarray, y: np.ndarray) -> float:
    """Mean nats per target of windows (x, y) under n-gram models of orders 1..len(models).

    A target at step t may use the inputs x[: t + 1] of its own window only, like a network; where the window holds
    fewer than order-1 previous characters the highest order that fits is used.
    """
    total = 0.0
    for t in range(x.shape[1]):
        model = models[min(len(models), t + 2) - 1]
        context_length = model.order - 1
        contexts = x[:, t + 1 - context_length:t + 1] if context_length else np.zeros((len(x), 0), np.int64)
        total += float(np.sum(model.log_probs(contexts, y[:, t])))
    return -total / y.size


def ngram_baselines(train_ids, windows: dict, vocab_size: int) -> tuple[dict, dict]:
    """Test scores of the unigram/bigram/trigram baselines, and the smoothing each picked on validation."""
    baselines, chosen_alpha, models = {}, {}, []
    for name, order in NGRAM_BASELINES.items():
        model = NgramModel(order, vocab_size).fit(train_ids)
        best = None
        for alpha in SMOOTHING_GRID:
            model.alpha = alpha
            val_nats = ngram_window_nats(models + [model], *windows["val"])
            if best is None or val_nats < best[0]:
                best = (val_nats, alpha)
        model.alpha = best[1]
        models.append(model)
        chosen_alpha[f"{name}_alpha"] = best[1]
        baselines[name] = scores_from_nats(ngram_window_nats(models, *windows["test"]))
    return baselines, chosen_alpha
