"""Greedy and beam-search decoding of a seq2seq-head model, by the trained model itself.

At each step the model reads the source and the tokens written so far (the start token first), and its logits at
the last position choose the next token. So decoding calls exactly the model that was trained: there is no second,
step-by-step model whose weights would have to be kept in sync with it. The price is that every step reruns the
encoder and the decoder over the prefix, a cost quadratic in the output length, which is short here (at most
`max_output_length` tokens, 30 for CMUdict); decoding stops as soon as every sequence of the batch has ended.

Beam search keeps the `width` best prefixes per word by summed log-probability (no length normalisation); a prefix
that wrote the end token is finished and carries its score unchanged. With width 1 it is greedy decoding.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from rnnbench.spec import SEQ2SEQ_END, SEQ2SEQ_PAD, SEQ2SEQ_START

DECODE_BATCH = 256  # words per call (times the beam width)


def next_token_scorer(model):
    """(source, prefix) -> logits of the next token (batch, classes) as NumPy, traced once for any shapes."""
    spec = tf.TensorSpec((None, None), tf.int32)

    @tf.function(input_signature=[spec, spec])
    def last_logits(source, prefix):
        return model([source, prefix], training=False)[:, -1]

    return lambda source, prefix: last_logits(source, prefix).numpy().astype(np.float64)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def greedy(score, source: np.ndarray, max_length: int) -> np.ndarray:
    """(words, <= max_length) token ids, the likeliest token at each step; a word that has ended gets padding."""
    prefix = np.full((len(source), 1), SEQ2SEQ_START, dtype=np.int32)
    done = np.zeros(len(source), dtype=bool)
    for _ in range(max_length):
        logits = score(source, prefix)
        logits[:, [SEQ2SEQ_PAD, SEQ2SEQ_START]] = -np.inf  # never written: they are not outputs
        token = np.where(done, SEQ2SEQ_PAD, logits.argmax(axis=-1)).astype(np.int32)
        prefix = np.concatenate([prefix, token[:, None]], axis=1)
        done |= token == SEQ2SEQ_END
        if done.all():
            break
    return prefix[:, 1:]


def beam_search(score, source: np.ndarray, max_length: int, width: int) -> np.ndarray:
    """(words, <= max_length) token ids of each word's best-scoring beam."""
    count, rows = len(source), np.repeat(source, width, axis=0)
    prefix = np.full((count * width, 1), SEQ2SEQ_START, dtype=np.int32)
    scores = np.full((count, width), -np.inf)
    scores[:, 0] = 0.0  # all beams start equal: keep one, or the first step would fill the beam with copies
    done = np.zeros((count, width), dtype=bool)
    for _ in range(max_length):
        log_p = _log_softmax(score(rows, prefix)).reshape(count, width, -1)
        classes = log_p.shape[-1]
        log_p[..., [SEQ2SEQ_PAD, SEQ2SEQ_START]] = -np.inf
        finished = np.full(classes, -np.inf)
        finished[SEQ2SEQ_PAD] = 0.0  # a finished beam only pads on, at no cost
        log_p[done] = finished
        total = (scores[..., None] + log_p).reshape(count, -1)
        top = np.argsort(-total, axis=1, kind="stable")[:, :width]  # stable: ties keep the lower index, as argmax
        beam, token = top // classes, (top % classes).astype(np.int32)
        scores = np.take_along_axis(total, top, axis=1)
        chosen = (np.arange(count)[:, None] * width + beam).ravel()
        prefix = np.concatenate([prefix[chosen], token.reshape(-1, 1)], axis=1)
        done = np.take_along_axis(done, beam, axis=1) | (token == SEQ2SEQ_END)
        if done.all():
            break
    return prefix.reshape(count, width, -1)[:, 0, 1:]  # beams are sorted best first


def decode(model, source: np.ndarray, max_length: int, width: int = 1, batch: int = DECODE_BATCH) -> list:
    """Each source row's output ids (to the end token or `max_length`), by greedy decoding (width 1) or beam
    search; rows go through in batches of similar length, so little padding is read."""
    score = next_token_scorer(model)
    lengths = (source != 0).sum(axis=1)
    order = np.argsort(lengths, kind="stable")
    out: list = [None] * len(source)
    for start in range(0, len(order), batch):
        picked = order[start:start + batch]
        chunk = source[picked][:, :max(1, int(lengths[picked].max()))]
        ids = greedy(score, chunk, max_length) if width == 1 else beam_search(score, chunk, max_length, width)
        for row, i in zip(ids, picked):
            out[i] = row
    return out
