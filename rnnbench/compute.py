"""Compute policy of a run: seeding, TensorFlow's op determinism, XLA per recurrent cell, mixed precision, the threads
of a worker process and the devices one run trains on.

The XLA choice comes from measured evidence, `xla_speedup.json` beside this file, which `make perf` writes from its
kernel measurements; nothing here hard-codes a speed-up.
"""
from __future__ import annotations

import contextlib
import functools
import json
from pathlib import Path

import keras
import tensorflow as tf

from rnnbench.errors import UserError

XLA_TABLE = Path(__file__).with_name("xla_speedup.json")
_CELL_NAMES = {keras.layers.SimpleRNN: "simple_rnn", keras.layers.LSTM: "lstm", keras.layers.GRU: "gru"}


def set_seed(seed: int) -> None:
    """One seed for Python, NumPy, TensorFlow and Keras, with deterministic TensorFlow ops."""
    keras.utils.set_random_seed(seed)
    set_op_determinism(True)


def set_op_determinism(enabled: bool) -> None:
    """TensorFlow's deterministic-ops mode, which Keras treats as incompatible with XLA (it then drops jit_compile).

    Without XLA it is what makes a seeded run repeat exactly. With XLA it is not needed on CPU: XLA compiles one
    fixed program whose results repeat bit for bit (tests/test_reliability.py checks it across processes).
    """
    from tensorflow.python.framework import config as tf_config  # the public API can only switch it on

    (tf.config.experimental.enable_op_determinism if enabled else tf_config.disable_op_determinism)()


def set_precision(mixed: bool) -> None:
    """Keras's global dtype policy. Mixed precision pays off on GPUs with float16 matrix units; a CPU has none."""
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")


@functools.lru_cache(maxsize=None)
def cpu_xla_speedup() -> dict[tuple[str, bool], float]:
    """(cell, masked input) -> XLA speed-up on CPU, from `xla_speedup.json`. Masks turn Keras's fused while-loop into
    per-step selects, which XLA fuses; an unmasked LSTM is where XLA's code was slower than TensorFlow's kernel."""
    table = json.loads(XLA_TABLE.read_text())["speedup"]
    return {(cell, kind == "masked"): float(value) for cell, kinds in table.items() for kind, value in kinds.items()}


def recurrent_cells(model: keras.Model) -> set:
    """The recurrent layer kinds ("simple_rnn", "lstm", "gru") in `model`, bidirectional wrappers included."""
    return {_CELL_NAMES[type(layer)] for layer in model._flatten_layers() if type(layer) in _CELL_NAMES}


def use_xla(model: keras.Model, spec, setting: str = "auto") -> bool:
    """`train.jit_compile`: "true" / "false" as given; "auto" picks per cell and device from measured evidence.

    CPU: XLA when every batch has the same length and XLA speeds up every recurrent cell of the model for this
    input (masked or not), see `cpu_xla_speedup`. Variable lengths get no XLA: XLA compiles a program per batch
    shape, and TensorFlow's XLA CPU JIT never unmaps the code it compiled (about 170 memory maps per program,
    measured), so a grid compiling a program per bucket shape in every run exhausts Linux's vm.max_map_count
    (65,530 by default): the speech_digits grid died that way in its ninth run ("LLVM compilation error: Cannot
    allocate memory"). GPU: no XLA, so Keras keeps its fused cuDNN LSTM/GRU kernels (not measured here: no GPU with
    TensorFlow was available). Models without recurrent layers: no XLA.
    """
    setting = str(setting).lower()
    if setting != "auto":
        return setting == "true"
    if tf.config.list_physical_devices("GPU"):
        return False
    if spec.inputs.length is None:
        return False
    cells, speedup = recurrent_cells(model), cpu_xla_speedup()
    return bool(cells) and all(speedup.get((cell, spec.inputs.masked), 0.0) > 1.0 for cell in cells)


def set_threads(threads: int) -> None:
    """TensorFlow's intra- and inter-op thread pools of this process, so that N worker processes on one machine use
    N x `threads` cores rather than N x all of them. TensorFlow fixes its pools when it first runs an op, so a worker
    calls this before; a process that already runs with these pools keeps them."""
    threading = tf.config.threading
    if (threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads()) == (threads,) * 2:
        return
    try:
        threading.set_intra_op_parallelism_threads(threads)
        threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow is already initialised: its pools cannot change any more
        pass


def devices(count: int):
    """The scope a run's model is built and compiled in: nothing for one device; for `count` > 1, a
    `tf.distribute.MirroredStrategy` over the first `count` GPUs (else logical CPU devices), which splits each global
    batch among them and sums their gradients. More devices than are visible is a UserError."""
    if count <= 1:
        return contextlib.nullcontext()
    visible = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    if count > len(visible):
        kind = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
        raise UserError(f"train.devices={count}, but only {len(visible)} {kind} device(s) are visible "
                        f"({', '.join(d.name for d in visible)}); set train.devices to at most {len(visible)}, or run "
                        "on a machine with more GPUs")
    return tf.distribute.MirroredStrategy([d.name for d in visible[:count]]).scope()
