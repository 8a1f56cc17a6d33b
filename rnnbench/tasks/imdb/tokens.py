"""IMDB reviews as token ids: the vocabulary (fit on the training part only), truncation, and evaluation batches."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from rnnbench import text as textlib
from rnnbench.errors import DataError


def fit_vectorizer(train_texts: list[str], vocab_size: int) -> keras.layers.TextVectorization:
    """Vocabulary of the `vocab_size - 2` most frequent training words (ids 0 and 1 are padding and [UNK])."""
    vectorizer = keras.layers.TextVectorization(
        max_tokens=vocab_size, standardize="lower_and_strip_punctuation", split="whitespace", output_mode="int",
        ragged=True,
    )
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(train_texts).batch(2048))
    return vectorizer


def to_token_ids(vectorizer: keras.layers.TextVectorization, texts: list[str], max_length: int, truncation: str,
                 split: str) -> tuple[list[np.ndarray], np.ndarray]:
    """Token-id arrays cut to `max_length`, and each review's full length before the cut."""
    sequences: list[np.ndarray] = []
    for start in range(0, len(texts), 2048):
        ragged = vectorizer(tf.constant(texts[start:start + 2048]))
        values, lengths = ragged.flat_values.numpy().astype(np.int32), ragged.row_lengths().numpy()
        sequences.extend(np.split(values, np.cumsum(lengths)[:-1]))
    full_lengths = np.asarray([len(s) for s in sequences])
    empty = np.flatnonzero(full_lengths == 0)
    if len(empty):
        raise DataError(
            f"{len(empty)} {split} reviews have no words left after lower-casing and removing punctuation "
            f"(the first: {texts[empty[0]][:80]!r}); remove them from the data"
        )
    if truncation == "keep_end":
        sequences = [s[-max_length:] for s in sequences]
    else:
        sequences = [s[:max_length] for s in sequences]
    return sequences, full_lengths


def evaluation_batches(sequences: list[np.ndarray], labels: np.ndarray, batch_size: int):
    """Length-sorted batches (little padding), with the median-length batch first.

    The runner times inference and draws its attention plot on the first test batch; a batch of the shortest reviews
    would flatter latency. Returns (dataset, order): row k across the batches is example `order[k]`.
    """
    by_length = np.argsort([len(s) for s in sequences], kind="stable")
    batches = [by_length[i:i + batch_size] for i in range(0, len(by_length), batch_size)]
    # Only full batches may move: padded_batch cuts the stream every batch_size rows, so the short one stays last.
    full = len(batches) if len(by_length) % batch_size == 0 else len(batches) - 1
    if full > 1:
        median = full // 2
        batches = [batches[median]] + batches[:median] + batches[median + 1:]
    order = np.concatenate(batches) if batches else np.zeros(0, int)
    ds = textlib.token_dataset([sequences[i] for i in order], labels[order]).padded_batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE), order
