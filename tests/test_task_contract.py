"""Contract over every registered task: it declares its options, loads from tiny data, yields batches that match its
spec, repeats its training order per seed, and trains one step with a registered model."""
import dataclasses
import math

import numpy as np
import pytest

from rnnbench import options as declared_options
from rnnbench import registry
from rnnbench.cli import main
from rnnbench.errors import UserError
from rnnbench.models import compile_model
from rnnbench.spec import TaskSpec
from tiny_data import TINY_OPTIONS

TASKS = registry.list_tasks()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNBENCH_CACHE_DIR", str(tmp_path / "cache"))


def _load(name, folder):
    assert name in TINY_OPTIONS, f"task {name!r} has no tiny data in tests/tiny_data.py TINY_OPTIONS"
    return registry.get_task(name)(batch_size=4, **TINY_OPTIONS[name](folder))


def _check_batch(spec: TaskSpec, x, y, where: str):
    inputs, outputs = spec.inputs, spec.outputs
    if outputs.head == "seq2seq":  # x is (source, decoder input): the source as any token input, then the decoder's
        x, decoder_in = (np.asarray(part) for part in x)
        assert decoder_in.shape == np.asarray(y).shape and decoder_in.max() < outputs.num_classes, where
        assert decoder_in.shape[1] <= outputs.max_output_length, where
    x, y = np.asarray(x), np.asarray(y)
    if inputs.kind == "tokens":
        assert np.issubdtype(x.dtype, np.integer), f"{where}: token ids must be integers, got {x.dtype}"
        assert x.ndim == 2 and x.min() >= 0 and x.max() < inputs.vocab_size, where
    else:
        assert np.issubdtype(x.dtype, np.floating) and x.ndim == 3 and x.shape[-1] == inputs.feature_dim, where
    if inputs.length is not None:
        assert x.shape[1] == inputs.length, f"{where}: {x.shape[1]} steps, spec says {inputs.length}"
    batch = x.shape[0]
    assert 1 <= batch <= 4 and y.shape[0] == batch, where
    if outputs.head == "classification":
        assert y.size == batch and y.min() >= 0 and y.max() < outputs.num_classes, where
    elif outputs.head == "causal_steps":
        assert y.shape == x.shape[:2] and y.max() < outputs.num_classes, where
    elif outputs.head == "ctc":
        assert y.ndim == 2 and y.min() >= 0 and y.max() <= outputs.num_classes, where  # 0 pads, labels 1..n
    elif outputs.head == "seq2seq":
        assert y.ndim == 2 and y.min() >= 0 and y.max() < outputs.num_classes, where  # 0 pads
    else:
        assert y.shape == (batch, outputs.horizon, outputs.targets), where


def test_every_task_has_tiny_data():
    assert set(TASKS) <= set(TINY_OPTIONS), sorted(set(TASKS) - set(TINY_OPTIONS))


@pytest.mark.parametrize("name", TASKS)
def test_task_declares_its_options_once(name, capsys):
    entry = registry.get_task_entry(name)
    assert dataclasses.is_dataclass(entry.options) and entry.options.__dataclass_params__.frozen
    items = declared_options.declared(entry.options)
    assert items and all(item.help for item in items), "every option needs a one-line help"
    assert main(["list", "--task", name]) == 0
    printed = capsys.readouterr().out
    assert all(f"task.{item.name} " in printed for item in items)
    with pytest.raises(UserError, match="unknown option task.no_such"):
        registry.get_task(name)(no_such=1)


@pytest.mark.parametrize("name", TASKS)
def test_task_loads_tiny_data_into_a_spec_its_batches_match(name, tmp_path):
    spec = _load(name, tmp_path)
    assert isinstance(spec, TaskSpec) and spec.name == name
    declared = {item.name for item in declared_options.declared(registry.get_task_entry(name).options)}
    assert declared <= set(spec.options) <= declared | {"batch_size"}  # stock records its batch size as it always did
    for split in ("val", "test"):
        for x, y in getattr(spec, split).take(2):
            _check_batch(spec, x, y, f"{name} {split}")
    def inputs(run_seed):  # x may be a tuple of inputs (seq2seq: source, decoder input): every part must repeat
        batches = spec.training_data(run_seed).take(2)
        return [np.asarray(p) for x, _ in batches for p in (x if isinstance(x, tuple) else [x])]

    first, again = inputs(7), inputs(7)
    assert all(np.array_equal(a, b) for a, b in zip(first, again)), "a run seed must give one training order"
    for x, y in spec.training_data(7).take(2):
        _check_batch(spec, x, y, f"{name} train")
    for baseline, metrics in spec.baselines.items():
        assert metrics and all(isinstance(v, float) for v in metrics.values()), baseline


@pytest.mark.parametrize("name", TASKS)
def test_task_trains_one_step_with_a_registered_model(name, tmp_path):
    spec = _load(name, tmp_path)
    builder = "seq2seq_gru" if spec.outputs.head == "seq2seq" else "gru"  # an encoder-decoder for the seq2seq head
    model = compile_model(registry.get_model(builder)(spec, units=4), spec, jit_compile=False)
    history = model.fit(spec.training_data(0).take(1), validation_data=spec.val.take(1), epochs=1, verbose=0)
    assert math.isfinite(history.history["loss"][0]) and math.isfinite(history.history["val_loss"][0])
    if spec.evaluate:
        assert all(math.isfinite(float(v)) for v in spec.evaluate(model).values())
