"""tf.data helpers shared by the tasks that hold their examples as NumPy arrays."""
import tensorflow as tf


def array_dataset(x, y, batch_size: int, shuffle_seed: int | None = None) -> tf.data.Dataset:
    """Batched, prefetched `(x, y)`; reshuffled every epoch from `shuffle_seed` when one is given (training)."""
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
