"""What perf counts in the batches and models it times: samples, computed and real (unpadded) timesteps of a pass,
the same examples batched without length bucketing, and the FLOPs of recurrent layers."""
from __future__ import annotations

import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf

from rnnbench.spec import InputSpec


@dataclasses.dataclass
class Pass:
    """One pass over a batched dataset: what it holds and how long reading it took."""

    batches: int = 0
    samples: int = 0
    computed_steps: int = 0  # batch x padded length, summed: the timesteps a model computes
    real_steps: int = 0  # timesteps that are not padding
    seconds: float = 0.0
    examples: list = dataclasses.field(default_factory=list)  # (unpadded x, y) pairs, when asked for

    @property
    def padded_fraction(self) -> float:
        return 1.0 - self.real_steps / self.computed_steps if self.computed_steps else 0.0


def real_lengths(x: np.ndarray, inputs: InputSpec) -> np.ndarray:
    """Real timesteps per example of a right-padded batch (every step when the input is not masked)."""
    if not inputs.masked:
        return np.full(x.shape[0], x.shape[1], dtype=np.int64)
    real = x != 0 if inputs.kind == "tokens" else np.any(x != inputs.pad_value, axis=-1)
    # Right padding: the length is one past the last real step.
    last = x.shape[1] - 1 - np.argmax(real[:, ::-1], axis=1)
    return np.where(real.any(axis=1), last + 1, 0)


def read_pass(dataset, inputs: InputSpec, keep_examples: bool = False) -> Pass:
    result = Pass()
    start = time.perf_counter()
    for x, y in dataset.as_numpy_iterator():
        lengths = real_lengths(x, inputs)
        result.batches += 1
        result.samples += x.shape[0]
        result.computed_steps += x.shape[0] * x.shape[1]
        result.real_steps += int(lengths.sum())
        if keep_examples:
            result.examples.extend((row[:n], label) for row, n, label in zip(x, lengths, y))
    result.seconds = time.perf_counter() - start
    return result


def unbucketed_batches(examples: list, inputs: InputSpec, batch_size: int, seed: int):
    """The same examples shuffled and padded per batch to the batch's longest example (no length bucketing),
    cached in memory after the first pass, so against the cached bucketed batches only the padding differs."""
    x0, y0 = examples[0]
    x_spec = tf.TensorSpec((None, *x0.shape[1:]), tf.as_dtype(x0.dtype))
    y_spec = tf.TensorSpec(np.shape(y0), tf.as_dtype(np.asarray(y0).dtype))
    ds = tf.data.Dataset.from_generator(lambda: iter(examples), output_signature=(x_spec, y_spec))
    padding = (tf.constant(inputs.pad_value if inputs.kind == "features" else 0, x_spec.dtype),
               tf.constant(0, y_spec.dtype))
    ds = ds.shuffle(len(examples), seed=seed, reshuffle_each_iteration=False).padded_batch(
        batch_size, padding_values=padding)
    return ds.cache()


def recurrent_forward_flops(model: keras.Model) -> tuple[float, int]:
    """(forward matmul FLOPs per example and per input timestep of the recurrent layers, time stride).

    A recurrent layer multiplies its input (I) and its state (H) by its kernels at every step: 2 x (I + H) x gates x H
    FLOPs, i.e. 2 x (kernel size + recurrent kernel size). Frame stacking divides the steps by its stride.
    """
    flops, stride = 0.0, 1
    for layer in model.layers:
        bidirectional = isinstance(layer, keras.layers.Bidirectional)
        parts = [layer.forward_layer, layer.backward_layer] if bidirectional else [layer]
        for part in parts:
            cell = getattr(part, "cell", None)
            if cell is not None and hasattr(cell, "recurrent_kernel"):
                flops += 2.0 * (int(np.prod(cell.kernel.shape)) + int(np.prod(cell.recurrent_kernel.shape)))
        stride *= int(getattr(layer, "stride", 1) or 1)
    return flops, stride


def training_flops(forward_flops_per_step: float, timesteps: float) -> float:
    """Forward plus backward (about twice the forward: gradients for the inputs and for the weights)."""
    return 3.0 * forward_flops_per_step * timesteps
