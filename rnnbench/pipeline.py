"""tf.data helpers shared by the tasks: arrays to batches, and per-run shuffle seeds."""
from typing import Sequence

import numpy as np
import tensorflow as tf


def run_shuffle_seed(data_seed: int, run_seed: int) -> int:
    """The shuffle seed of one run: a function of the task's data seed and the run's seed only."""
    return int(np.random.SeedSequence([int(data_seed), int(run_seed)]).generate_state(1, np.uint32)[0])


def shuffled_indices(count: int, seed: int) -> tf.data.Dataset:
    """0..count-1 in a new seeded order every pass: the order a whole-split `shuffle(count, seed)` gives any dataset
    of `count` elements, since tf.data's shuffle draws its positions from the seed alone, never from the elements.

    A whole-split shuffle buffer fills completely before it yields anything, at the start of every pass. Filled
    with indices it takes milliseconds; filled with the examples themselves it held training up for 3.7-3.9 s at
    each IMDB pass (22,500 reviews through a map) and 9 ms at each sine pass (8,329 windows). Shuffling indices and
    gathering the examples as they are drawn gives the same batches without the wait.
    """
    return tf.data.Dataset.range(count).shuffle(count, seed=seed, reshuffle_each_iteration=True)


def shuffled_rows(columns: Sequence, dtypes: Sequence, seed: int) -> tf.data.Dataset:
    """Example i as (column_0 row i, column_1 row i, ...), in the order of `shuffled_indices(count, seed)`.

    A column is an array (row i is its i-th entry) or a list of variable-length arrays, packed once into one array
    from which row i is sliced as its index is drawn.
    """
    def reader(column, dtype):
        if isinstance(column, np.ndarray) and column.dtype != object:
            rows = tf.constant(column.astype(dtype))
            return lambda i: tf.gather(rows, i)
        lengths = np.asarray([len(a) for a in column], dtype=np.int64)
        values = tf.constant(np.concatenate([np.asarray(a, dtype) for a in column]) if len(column)
                             else np.zeros(0, dtype))
        ends = np.cumsum(lengths)
        starts, ends = tf.constant(ends - lengths), tf.constant(ends)
        return lambda i: values[starts[i]:ends[i]]

    readers = [reader(column, dtype) for column, dtype in zip(columns, dtypes)]
    return shuffled_indices(len(columns[0]), seed).map(lambda i: tuple(read(i) for read in readers))


def array_dataset(x, y, batch_size: int, shuffle_seed: int | None = None) -> tf.data.Dataset:
    """Batched, prefetched `(x, y)`; reshuffled every epoch from `shuffle_seed` when one is given (training)."""
    if shuffle_seed is None:
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    inputs, targets = tf.constant(x), tf.constant(y)
    return (shuffled_indices(len(x), shuffle_seed).batch(batch_size)
            .map(lambda i: (tf.gather(inputs, i), tf.gather(targets, i))).prefetch(tf.data.AUTOTUNE))
