"""The alternatives to recurrence (transformer, tcn, esn) on every head: shapes, causality, padding, training,
parameter budgets (counted as built), the ESN's fixed reservoir, the TCN's receptive field, refusals, save/load.

tests/test_models.py runs them through the contract every registered model meets; this adds what is particular to
them, on heads with masked inputs everywhere padding can occur (forecast included, for the read-outs)."""
import importlib

import numpy as np
import pytest

import keras

from rnnbench import models, tracking
from rnnbench.spec import InputSpec, OutputSpec, TaskSpec

HEADS = {
    "classification": TaskSpec("tiny", InputSpec("tokens", vocab_size=30, masked=True),
                               OutputSpec("classification", num_classes=3),
                               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
    "causal_steps": TaskSpec("tiny", InputSpec("tokens", vocab_size=12, length=12),
                             OutputSpec("causal_steps", num_classes=12),
                             loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
    "ctc": TaskSpec("tiny", InputSpec("features", feature_dim=5, masked=True), OutputSpec("ctc", num_classes=4),
                    loss=models.ctc_loss),
    "forecast": TaskSpec("tiny", InputSpec("features", feature_dim=2, masked=True),
                         OutputSpec("forecast", horizon=3, targets=2), loss=keras.losses.MeanSquaredError()),
}
TINY = {"transformer": {"d_model": 8, "heads": 2, "layers": 1}, "tcn": {"filters": 8, "blocks": 2},
        "esn": {"reservoir_units": 24}}
STEPS = 12
# `rnnbench.models.<name>` is the builder (the package exports each builder by its name), so fetch the modules.
transformer_module, tcn_module = (importlib.import_module(f"rnnbench.models.{name}") for name in ("transformer", "tcn"))


def _batch(spec, seed=0, batch=6):
    """A batch whose last examples are right-padded where the inputs are masked, and targets for it."""
    rng = np.random.default_rng(seed)
    if spec.inputs.kind == "tokens":
        x = rng.integers(1, spec.inputs.vocab_size, size=(batch, STEPS)).astype("int32")
    else:
        x = rng.normal(size=(batch, STEPS, spec.inputs.feature_dim)).astype("float32")
    if spec.inputs.masked:
        x[batch // 2:, STEPS - 4:] = 0
    out = spec.outputs
    if out.head == "classification":
        y = rng.integers(0, out.num_classes, size=(batch,))
    elif out.head == "causal_steps":
        y = rng.integers(0, out.num_classes, size=x.shape[:2])
    elif out.head == "ctc":
        y = np.zeros((batch, 3), dtype="int32")
        y[:, :2] = rng.integers(1, out.num_classes + 1, size=(batch, 2))
    else:
        y = rng.normal(size=(batch, out.horizon, out.targets)).astype("float32")
    return x, y


def _build(name, head, **options):
    keras.utils.set_random_seed(0)
    return getattr(models, name)(HEADS[head], **{**TINY[name], **options})


def _predict(model, x):
    return np.asarray(model(x, training=False))


@pytest.mark.parametrize("head", list(HEADS))
@pytest.mark.parametrize("name", list(TINY))
def test_every_head_shapes_causality_padding_and_a_loss_that_falls(name, head):
    spec = HEADS[head]
    model = _build(name, head)
    x, y = _batch(spec)
    out = _predict(model, x)
    expected = {"classification": (6, 3), "causal_steps": (6, STEPS, 12), "ctc": (6, STEPS, 5),
                "forecast": (6, 3, 2)}[head]
    assert out.shape == expected and np.isfinite(out).all()
    assert model.rnnbench_info["total_params"] == model.count_params()
    assert model.rnnbench_info["trainable_params"] == models.count_trainable(model)

    if spec.inputs.masked:  # more padding, or other values where a padded sequence has its padding, change nothing
        longer = np.concatenate([x, np.zeros_like(x[:, :5])], axis=1)
        real = slice(None, STEPS) if head == "ctc" else slice(None)
        np.testing.assert_allclose(_predict(model, longer)[:, real], out, atol=1e-5)
        if head == "ctc":
            assert (_predict(model, longer)[:, STEPS:].argmax(-1) == 0).all()  # padded frames predict the blank
    if head == "causal_steps":  # step t never sees a later step
        for t in (0, 5, STEPS - 2):
            changed = x.copy()
            changed[:, t + 1:] = changed[:, t + 1:] % (spec.inputs.vocab_size - 1) + 1
            after = _predict(model, changed)
            np.testing.assert_allclose(after[:, :t + 1], out[:, :t + 1], atol=1e-5)
            assert not np.allclose(after[:, t + 1:], out[:, t + 1:], atol=1e-5)

    models.compile_model(model, spec, learning_rate=0.02)
    model.run_eagerly = True  # a few steps: eager is faster than tracing a training function
    losses = [float(np.ravel(model.train_on_batch(x, y))[0]) for _ in range(6)]
    assert np.isfinite(losses).all() and losses[-1] < 0.95 * losses[0], losses


@pytest.mark.parametrize("name", list(TINY))
def test_param_budget_hits_every_head_within_five_percent(name):
    small = {"max_reservoir_units": 128} if name == "esn" else {}  # NumPy's eigenvalues of a 512-unit W take ~1 s
    for head, spec in HEADS.items():
        for budget in (4_000, 30_000):
            model = getattr(models, name)(spec, param_budget=budget, **small)
            assert abs(models.count_trainable(model) - budget) <= 0.05 * budget, (head, budget)


def test_the_budget_searches_count_what_the_builders_build():
    """The searches count parameters instead of building models; the counts must be exact for every option that
    changes them."""
    tokens, features = HEADS["classification"], HEADS["ctc"]
    causal = HEADS["causal_steps"]
    for spec, options in ((tokens, {}), (tokens, {"embedding_dim": 8}), (features, {"subsample": 3}),
                          (causal, {"positions": "learned", "heads": 3}), (features, {"layers": 3})):
        full = {"layers": 2, "heads": 2, "ff_multiplier": 2.0, "positions": "sinusoidal", "max_length": None,
                "embedding_dim": 8, "subsample": 1, **options}
        built = models.transformer(spec, d_model=10, ff_units=7, **full)
        assert models.count_trainable(built) == transformer_module._trainable(spec, 10, 7, **full), options
    for spec, options in ((tokens, {}), (features, {"subsample": 2, "convs_per_block": 3}), (causal, {"blocks": 1})):
        full = {"kernel_size": 3, "blocks": 3, "convs_per_block": 2, "embedding_dim": 8, "subsample": 1, **options}
        built = tcn_module._build(spec, 6, 5, dropout=0.0, readout="last", name=None, **full)
        assert models.count_trainable(built) == tcn_module._trainable(spec, 6, 5, **full), options
    wide = models.esn(HEADS["causal_steps"], param_budget=100_000, max_reservoir_units=64)
    assert wide.rnnbench_info["reservoir_units"] <= 64 and wide.rnnbench_info["readout_units"] > 0
    assert abs(models.count_trainable(wide) - 100_000) <= 5_000


def test_the_esn_trains_its_read_out_only_and_its_reservoir_has_the_asked_spectrum():
    spec = HEADS["classification"]
    model = _build("esn", "classification", reservoir_units=40, readout_units=5, sparsity=0.8, spectral_radius=0.7)
    cell = model.get_layer("reservoir").cell
    assert {w.path.split("/")[0] for w in model.trainable_weights} == {"readout_hidden", "logits"}
    recurrent = np.array(cell.recurrent_kernel)
    np.testing.assert_allclose(np.abs(np.linalg.eigvals(recurrent)).max(), 0.7, rtol=1e-4)
    assert 0.7 < np.mean(recurrent == 0) < 0.9  # sparsity 0.8 of 1600 draws
    fixed = {w.path: np.array(w) for w in model.non_trainable_weights}
    assert len(fixed) == 4  # the embedding, W_in, W, b
    trained = {w.path: np.array(w) for w in model.trainable_weights}

    x, y = _batch(spec)
    models.compile_model(model, spec, learning_rate=0.05)
    model.run_eagerly = True
    model.fit(x, y, epochs=2, batch_size=3, verbose=0)
    for weight in model.non_trainable_weights:
        np.testing.assert_array_equal(np.array(weight), fixed[weight.path])
    assert all(not np.array_equal(np.array(w), trained[w.path]) for w in model.trainable_weights)
    assert model.rnnbench_info["reservoir_units"] == 40 and model.rnnbench_info["spectral_radius"] == 0.7
    assert model.rnnbench_info["total_params"] == models.count_trainable(model) + sum(v.size for v in fixed.values())


def test_the_esn_reservoir_follows_its_seed_and_the_default_seed_follows_keras():
    spec = HEADS["ctc"]

    def reservoir(model):
        return np.array(model.get_layer("reservoir").cell.recurrent_kernel)

    same = [models.esn(spec, reservoir_units=16, seed=5) for _ in range(2)]
    np.testing.assert_array_equal(reservoir(same[0]), reservoir(same[1]))
    assert not np.array_equal(reservoir(same[0]), reservoir(models.esn(spec, reservoir_units=16, seed=6)))
    drawn = []
    for _ in range(2):
        keras.utils.set_random_seed(3)
        drawn.append(models.esn(spec, reservoir_units=16))
    assert drawn[0].rnnbench_info["seed"] == drawn[1].rnnbench_info["seed"]
    np.testing.assert_array_equal(reservoir(drawn[0]), reservoir(drawn[1]))


@pytest.mark.parametrize("kernel_size,blocks,convs_per_block", [(2, 3, 2), (3, 2, 1)])
def test_the_tcn_receptive_field_is_the_steps_an_input_reaches(kernel_size, blocks, convs_per_block):
    spec = TaskSpec("tiny", InputSpec("features", feature_dim=3, length=40), OutputSpec("causal_steps", num_classes=4))
    keras.utils.set_random_seed(1)
    model = models.tcn(spec, filters=16, kernel_size=kernel_size, blocks=blocks, convs_per_block=convs_per_block)
    field = model.rnnbench_info["receptive_field"]
    assert field == 1 + (kernel_size - 1) * sum(2 ** i for i in range(blocks)) * convs_per_block
    x = np.random.default_rng(0).normal(size=(4, 40, 3)).astype("float32")
    moved = x.copy()
    moved[:, 0] += 3.0
    changed = np.abs(_predict(model, moved) - _predict(model, x)).max(axis=(0, 2)) > 1e-6
    assert changed.tolist() == [True] * field + [False] * (40 - field)


def test_readouts_and_options_that_change_the_graph_ignore_padding_and_survive_save_and_load(tmp_path):
    spec = HEADS["forecast"]
    x, _ = _batch(spec, seed=2)
    longer = np.concatenate([x, np.zeros_like(x[:, :3])], axis=1)
    variants = [("transformer", {"readout": "last", "dropout": 0.1}), ("tcn", {"readout": "mean", "dropout": 0.1}),
                ("esn", {"readout_units": 4, "dropout": 0.1})]
    for name, options in variants:
        model = _build(name, "forecast", **options)
        np.testing.assert_allclose(_predict(model, longer), _predict(model, x), atol=1e-5)
        model.save(tmp_path / f"{name}.keras")
        np.testing.assert_allclose(_predict(keras.saving.load_model(tmp_path / f"{name}.keras"), x),
                                   _predict(model, x), atol=1e-6)
    causal = HEADS["causal_steps"]
    learned = models.transformer(causal, d_model=8, heads=2, layers=1, positions="learned")
    tokens, _ = _batch(causal)
    learned.save(tmp_path / "learned.keras")
    np.testing.assert_allclose(_predict(keras.saving.load_model(tmp_path / "learned.keras"), tokens),
                               _predict(learned, tokens), atol=1e-6)


@pytest.mark.parametrize("name", list(TINY))
def test_outputs_stay_float32_under_mixed_precision(name):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _build(name, "ctc")
        out = model(_batch(HEADS["ctc"])[0])
        assert model.compute_dtype == "float16" and np.asarray(out).dtype == np.float32
        assert np.isfinite(np.asarray(out)).all()
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("build,message", [
    (lambda: models.transformer(HEADS["ctc"], positions="learned"), "max_length"),
    (lambda: models.transformer(HEADS["causal_steps"], positions="learned", max_length=8), "raise max_length"),
    (lambda: models.transformer(HEADS["ctc"], positions="rotary"), "positions must be one of"),
    (lambda: models.transformer(HEADS["forecast"], subsample=2), "subsample=2 only applies"),
    (lambda: models.tcn(HEADS["ctc"], readout="max"), "readout must be one of"),
    (lambda: models.tcn(HEADS["ctc"], kernel_size=0), "kernel_size must be >= 1"),
    (lambda: models.esn(HEADS["ctc"], leak_rate=0.0), r"leak_rate must be in \(0, 1\]"),
    (lambda: models.esn(HEADS["ctc"], sparsity=1.0), r"sparsity must be in \[0, 1\)"),
    (lambda: models.esn(HEADS["causal_steps"], param_budget=50), "too small for esn"),
    (lambda: models.tcn(HEADS["classification"], param_budget=500), "too small for tcn"),
    (lambda: models.transformer(HEADS["classification"], param_budget=500), "too small for transformer"),
])
def test_impossible_settings_are_refused_with_the_option_to_change(build, message):
    with pytest.raises(models.IncompatibleModelError, match=message):
        build()


def test_each_model_round_trips_through_mlflow(mlflow_store):
    tracker = tracking.Tracker("alternatives", mlflow_store)
    for name, head in (("transformer", "causal_steps"), ("tcn", "ctc"), ("esn", "classification")):
        model = _build(name, head)
        x, _ = _batch(HEADS[head])
        expected = model.predict_on_batch(x)
        run_id = tracker.start_run(f"{name}-round-trip", {"rnnbench_role": "other"})
        tracker.log_keras_model(run_id, model, x, expected, requirements=[], name=f"tiny-{name}")
        tracker.end_run(run_id)
        np.testing.assert_allclose(tracking.load_model(run_id, mlflow_store).predict_on_batch(x), expected,
                                   atol=1e-6)
