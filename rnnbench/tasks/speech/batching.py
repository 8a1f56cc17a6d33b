"""Batching speech utterances: length buckets, padding with 0.0 frames and 0 labels, and the tf.data pipelines
(seeded whole-split shuffle for training, fixed order for evaluation)."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import tensorflow as tf

from rnnbench import ctc
from rnnbench.pipeline import shuffled_rows
from rnnbench.tasks.speech.data import Utterance

BUCKETS = 6


def bucket_boundaries(lengths: Sequence[int], longest: int, buckets: int = BUCKETS) -> list[int]:
    """Upper bounds (exclusive) of length buckets: quantiles of the training lengths, then one past the longest
    utterance of any split. Batches are padded to their bucket's bound, so a model sees at most `buckets` shapes."""
    quantiles = np.quantile(np.asarray(lengths), np.linspace(0, 1, buckets + 1)[1:-1]) if len(lengths) else []
    bounds = sorted({int(math.ceil(q)) + 1 for q in quantiles} | {int(longest) + 1})
    return [b for b in bounds if b > 1]


def _pad_batch(utterances: Sequence[Utterance], length: int, vocabulary: ctc.Vocabulary):
    x = np.zeros((len(utterances), length, utterances[0].features.shape[1]), dtype=np.float32)
    for row, u in zip(x, utterances):
        row[: len(u.features)] = u.features
    return x, ctc.pad_labels([vocabulary.encode(u.transcript) for u in utterances])


def sorted_batches(utterances: Sequence[Utterance], batch_size: int, bounds: Sequence[int],
                   vocabulary: ctc.Vocabulary):
    """[(utterances, x, y)]: utterances sorted by length, padded to their bucket bound (for decoding hooks)."""
    ordered = sorted(utterances, key=lambda u: (len(u.features), u.id))
    batches = []
    for start in range(0, len(ordered), batch_size):
        chunk = ordered[start: start + batch_size]
        longest = len(chunk[-1].features)
        length = next(b - 1 for b in bounds if longest < b)
        batches.append((chunk, *_pad_batch(chunk, length, vocabulary)))
    return batches


def make_dataset(utterances: Sequence[Utterance], vocabulary: ctc.Vocabulary, batch_size: int, bounds: Sequence[int],
                 label_length: int, shuffle_seed: int | None = None) -> tf.data.Dataset:
    """Batches (x (B, T, F) float32 padded with 0.0, y (B, label_length) int32 padded with 0), bucketed by length.

    T is the bucket's bound minus one, so a model sees one input shape per bucket, and the labels have one fixed
    width; both keep retracing (and XLA recompiling) to a handful of shapes.
    """
    feature_dim = utterances[0].features.shape[1]
    features = [u.features for u in utterances]
    labels = [vocabulary.encode(u.transcript) for u in utterances]

    if shuffle_seed is None:
        def generate():
            yield from zip(features, labels)

        ds = tf.data.Dataset.from_generator(
            generate,
            output_signature=(tf.TensorSpec((None, feature_dim), tf.float32), tf.TensorSpec((None,), tf.int32)),
        )
        ds = ds.apply(tf.data.experimental.assert_cardinality(len(features)))
    else:  # the order of a whole-split shuffle of the utterances, without refilling its buffer each pass
        ds = shuffled_rows([features, labels], [np.float32, np.int32], shuffle_seed)
    ds = ds.bucket_by_sequence_length(
        element_length_func=lambda x, y: tf.shape(x)[0],
        bucket_boundaries=list(bounds),
        bucket_batch_sizes=[batch_size] * (len(bounds) + 1),
        padded_shapes=([None, feature_dim], [label_length]),
        padding_values=(0.0, 0),
        pad_to_bucket_boundary=True,
    )
    # Bucket membership depends on lengths only, so the number of batches is known whatever the shuffle order;
    # stating it lets Keras show progress and skip its end-of-data guessing.
    buckets = np.searchsorted(np.asarray(bounds), [len(f) for f in features], side="right")
    batches = int(sum(math.ceil(n / batch_size) for n in np.bincount(buckets) if n))
    return ds.apply(tf.data.experimental.assert_cardinality(batches)).prefetch(tf.data.AUTOTUNE)
