"""The training stream of one run: endless, prefetched batches whose epoch e depends on (task seed, run seed, e)."""
from __future__ import annotations

import math

import tensorflow as tf


def training_stream(spec, seed: int, initial_epoch: int = 0, validations_per_epoch: int = 1):
    """(endless batches, batches per Keras epoch, batches per pass) for one run, positioned at `initial_epoch`.

    Keras opens a new iterator on a finite dataset for every epoch, and each opening draws the next reshuffling
    seed, so an epoch's order would depend on how many iterators came before it (in this process, in this Keras
    version). One endless iterator over a fresh pipeline makes epoch e's order depend on (task seed, run seed, e)
    alone; a resumed run skips the batches of the epochs it already has and sees the orders it would have seen.
    With `validations_per_epoch` k > 1 a Keras epoch is 1/k of a pass (rounded up), so Keras validates k times per
    pass over the training data.
    """
    per_pass = int(spec.training_data(seed).cardinality())
    if per_pass < 0:  # unknown (e.g. length bucketing): count one pass of a separate copy
        per_pass = sum(1 for _ in spec.training_data(seed))
    steps = math.ceil(per_pass / validations_per_epoch)
    stream = endless(spec.training_data(seed))
    return (stream.skip(initial_epoch * steps) if initial_epoch else stream), steps, per_pass


def endless(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` repeated forever and prefetched across the passes.

    A task's own prefetch sits inside the repetition, so it drains at the end of every pass and the model would
    wait for the next pass's first batch while the pipeline reopens and refills a whole-split shuffle buffer; tasks
    with short passes (sine: 21 batches) would pay that often. The order of the batches is unchanged.
    """
    return dataset.repeat().prefetch(tf.data.AUTOTUNE)
