"""tf.data helpers shared by the tasks: arrays to batches, and per-run shuffle seeds."""
import numpy as np
import tensorflow as tf


def run_shuffle_seed(data_seed: int, run_seed: int) -> int:
    """The shuffle seed of one run: a function of the task's data seed and the run's seed only."""
    return int(np.random.SeedSequence([int(data_seed), int(run_seed)]).generate_state(1, np.uint32)[0])


def array_dataset(x, y, batch_size: int, shuffle_seed: int | None = None) -> tf.data.Dataset:
    """Batched, prefetched `(x, y)`; reshuffled every epoch from `shuffle_seed` when one is given (training)."""
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
