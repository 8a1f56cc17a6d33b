"""Gradient flow through time (rnnbench.gradient_flow) and the per-epoch gradient norms (GradientNormAdam with the
GradientNorms callback): a linear recurrence whose decay is known exactly, token inputs through an embedding, the
runner's artifacts and metrics, clipping counts, saving, and the configuration hash the new option must not move."""
import inspect
import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from rnnbench import compute, config, gradient_flow, runner, tracking
from rnnbench.callbacks import GradientNorms, Progress
from rnnbench.errors import UserError
from rnnbench.models import compile_model, gru, lstm, simple_rnn
from rnnbench.optimizers import GradientNormAdam, gradient_norm_optimizer
from rnnbench.spec import InputSpec, OutputSpec, TaskSpec

ROOT = Path(__file__).resolve().parents[1]
TINY = ["task.steps=300", "task.input_len=16", "task.horizon=2", "model.units=4", "train.batch_size=32"]
MSE = keras.losses.MeanSquaredError()


def _features_spec(dim, length, **inputs):
    return TaskSpec("probe", InputSpec("features", feature_dim=dim, length=length, **inputs),
                    OutputSpec("forecast", horizon=1), loss=MSE)


def _orthogonal(n, rng):
    return np.linalg.qr(rng.normal(size=(n, n)))[0].astype("float32")


def _linear_recurrence(rho, steps, units=4, seed=0):
    """h_t = rho Q h_{t-1} + U x_t, Q and U orthogonal, read out at the last step: ||dL/dx_t|| = rho**(T-1-t) c."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input((steps, units))
    rnn = keras.layers.SimpleRNN(units, activation="linear", use_bias=False)
    model = keras.Model(inputs, keras.layers.Dense(1, use_bias=False)(rnn(inputs)))
    rnn.set_weights([_orthogonal(units, rng), rho * _orthogonal(units, rng)])
    x = rng.normal(size=(8, steps, units)).astype("float32")
    return model, _features_spec(units, steps), x, rng.normal(size=(8, 1)).astype("float32")


@pytest.mark.parametrize("rho", [0.5, 1.0])
def test_a_linear_recurrence_decays_as_rho_to_the_distance(rho):
    steps = 16
    model, spec, x, y = _linear_recurrence(rho, steps)
    flow = gradient_flow.measure(model, spec, x, y)
    assert flow["steps"] == steps and flow["sequences"] == 8 and flow["against"] == "input features"
    assert flow["grad_log10_slope"] == pytest.approx(np.log10(rho), abs=1e-3)
    assert flow["grad_log10_ratio"] == pytest.approx((steps - 1) * np.log10(rho), abs=1e-2)
    by_distance = np.array(flow["norm_by_distance"])
    np.testing.assert_allclose(by_distance / by_distance[0], rho ** np.arange(steps), rtol=1e-3)
    np.testing.assert_allclose(flow["norm_by_step"], by_distance[::-1], rtol=1e-6)  # nothing padded


def test_token_inputs_are_measured_at_the_embedding_output_as_features_would_be():
    """A tokens model and a features model sharing its recurrent and output layers, fed the embedded vectors, give
    the same curves: the embedding path measures dL/d(embedding output). Padded steps do not count."""
    steps, vocab, dim = 12, 9, 3
    tokens = TaskSpec("tok", InputSpec("tokens", vocab_size=vocab, length=steps, masked=True),
                      OutputSpec("forecast", horizon=1), loss=MSE)
    embedding, rnn, head = (keras.layers.Embedding(vocab, dim), keras.layers.SimpleRNN(4),
                            keras.layers.Dense(1))
    token_in, feature_in = keras.Input((steps,), dtype="int32"), keras.Input((steps, dim))
    by_tokens = keras.Model(token_in, head(rnn(embedding(token_in))))
    by_features = keras.Model(feature_in, head(rnn(feature_in)))
    rng = np.random.default_rng(1)
    x = rng.integers(1, vocab, size=(6, steps))
    x[0, 8:] = 0  # right padding: excluded from the mean at those steps
    y = rng.normal(size=(6, 1)).astype("float32")
    flow = gradient_flow.measure(by_tokens, tokens, x, y)
    twin = gradient_flow.measure(by_features, _features_spec(dim, steps), embedding(x).numpy(), y)
    assert flow["against"].startswith("output of embedding")
    np.testing.assert_allclose(flow["norm_by_step"][:8], twin["norm_by_step"][:8], rtol=1e-5)
    gradient, _, _ = gradient_flow.input_gradient(by_tokens, tokens, x, y)
    norms = np.linalg.norm(gradient, axis=-1)
    np.testing.assert_allclose(flow["norm_by_step"][-1], norms[1:, -1].mean(), rtol=1e-6)  # sequence 0 left out
    assert np.isfinite(flow["grad_log10_ratio"]) and np.isfinite(flow["grad_log10_slope"])


def test_a_language_model_is_scored_at_its_last_step_only():
    steps = 10
    spec = TaskSpec("lm", InputSpec("tokens", vocab_size=7, length=steps), OutputSpec("causal_steps", num_classes=7),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    keras.utils.set_random_seed(0)
    model = gru(spec, units=4, embedding_dim=4)
    rng = np.random.default_rng(2)
    x, y = rng.integers(1, 7, size=(4, steps)), rng.integers(0, 7, size=(4, steps))
    other = y.copy()
    other[:, :-1] = (other[:, :-1] + 1) % 7  # earlier targets change; the last one does not
    flow, same = gradient_flow.measure(model, spec, x, y), gradient_flow.measure(model, spec, x, other)
    assert flow["loss_at"] == "last real step only"
    np.testing.assert_allclose(flow["norm_by_step"], same["norm_by_step"], rtol=1e-6)


def test_simple_rnn_and_lstm_at_initialisation_give_finite_ratios_on_an_adding_input():
    steps, rng = 30, np.random.default_rng(3)
    x = np.stack([rng.uniform(size=(16, steps)), np.zeros((16, steps))], axis=-1).astype("float32")
    x[np.arange(16), rng.integers(0, steps // 2, 16), 1] = 1.0  # the two marked values to add
    x[np.arange(16), rng.integers(steps // 2, steps, 16), 1] = 1.0
    y = (x[..., 0] * x[..., 1]).sum(axis=1).reshape(-1, 1, 1)
    spec = _features_spec(2, steps)
    for builder in (simple_rnn, lstm):
        keras.utils.set_random_seed(0)
        flow = gradient_flow.measure(builder(spec, units=8), spec, x, y)
        assert np.isfinite(flow["grad_log10_ratio"]) and np.isfinite(flow["grad_log10_slope"]), builder.__name__


def test_measuring_leaves_carried_state_and_training_untouched():
    steps, rng = 6, np.random.default_rng(4)
    inputs = keras.Input(batch_shape=(4, steps, 2))
    rnn = keras.layers.SimpleRNN(3, stateful=True)
    model = keras.Model(inputs, keras.layers.Dense(1)(rnn(inputs)))
    x, y = rng.normal(size=(5, steps, 2)).astype("float32"), rng.normal(size=(5, 1)).astype("float32")
    model(x[:4])  # the state a previous batch left
    carried = [v.numpy() for v in model.non_trainable_variables]
    assert np.abs(carried[0]).sum() > 0
    flow = gradient_flow.measure(model, _features_spec(2, steps), x, y)
    assert flow["sequences"] == 4  # the model's fixed batch
    for before, after in zip(carried, model.non_trainable_variables):
        np.testing.assert_array_equal(before, after.numpy())


def test_another_backend_is_a_clear_user_error(monkeypatch):
    model, spec, x, y = _linear_recurrence(0.5, 4)
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(UserError, match="needs the TensorFlow backend.*train.gradient_flow=false"):
        gradient_flow.measure(model, spec, x, y)


def test_a_run_without_the_diagnostic_or_where_it_fails_logs_why(tmp_path):
    model, spec, x, y = _linear_recurrence(0.5, 4)
    off = gradient_flow.RunGradientFlow(spec, enabled=False)
    off.measure("init", model)
    off.write(tmp_path)
    assert off.metrics() == {} and not list(tmp_path.iterdir())
    broken = gradient_flow.RunGradientFlow(TaskSpec("nothing", spec.inputs, spec.outputs, loss=MSE))
    broken.measure("init", model)  # neither a validation nor a test split to probe
    broken.write(tmp_path)
    logged = json.loads((tmp_path / "gradient_flow.json").read_text())
    assert "neither a validation nor a test split" in logged["skipped"]
    assert broken.metrics() == {} and not (tmp_path / "gradient_flow.png").exists()


def _fit_one_epoch(clipnorm, jit_compile=False, seed=0, optimizer=None, dropout=0.0, measure_first=False):
    spec = _features_spec(2, 8)
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(48, 8, 2)).astype("float32"), rng.normal(size=(48, 1, 1)).astype("float32")
    keras.utils.set_random_seed(seed)
    # Keras drops jit_compile while TensorFlow's op determinism is on, which an earlier runner test may have left on.
    compute.set_op_determinism(not jit_compile)
    model = compile_model(simple_rnn(spec, units=4, dropout=dropout), spec, clipnorm=clipnorm,
                          jit_compile=jit_compile)
    if optimizer is not None:
        model.compile(optimizer=optimizer, loss=MSE, jit_compile=jit_compile)
    if measure_first:
        gradient_flow.measure(model, spec, x[:16], y[:16])
    logs = []
    keep = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, epoch_logs: logs.append(dict(epoch_logs)))
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0, callbacks=[GradientNorms(), keep])
    return model, logs, (x, y)


def test_epoch_logs_count_the_steps_clipping_changed_with_and_without_xla():
    _, forced, _ = _fit_one_epoch(1e-9)
    _, free, _ = _fit_one_epoch(1e9)
    compiled, forced_xla, _ = _fit_one_epoch(1e-9, jit_compile=True)
    assert compiled.jit_compile
    for logs in (forced, free, forced_xla):
        assert all(0 < epoch["grad_norm_mean"] <= epoch["grad_norm_max"] for epoch in logs)
    assert [epoch["clipped_steps"] for epoch in forced] == [3.0, 3.0]  # 48 examples / 16: reset every epoch
    assert [epoch["clipped_steps"] for epoch in free] == [0.0, 0.0]
    assert [epoch["clipped_steps"] for epoch in forced_xla] == [3.0, 3.0]
    for plain, xla in zip(forced, forced_xla):
        assert xla["grad_norm_max"] == pytest.approx(plain["grad_norm_max"], rel=1e-4)


@pytest.mark.parametrize("kind", ["features", "tokens"])
def test_the_first_step_norm_is_the_global_norm_clipping_sees(kind):
    """Keras's clip_by_global_norm decides; a token model's sparse embedding gradient is measured as it measures it."""
    from keras.src.optimizers.base_optimizer import global_norm  # what Keras clips by

    rng = np.random.default_rng(5)
    if kind == "tokens":
        spec = TaskSpec("tok", InputSpec("tokens", vocab_size=5, length=8), OutputSpec("forecast", horizon=1),
                        loss=MSE)
        x = rng.integers(1, 5, size=(16, 8)).astype("int32")  # few ids: rows repeat in the sparse gradient
    else:
        spec, x = _features_spec(2, 8), rng.normal(size=(16, 8, 2)).astype("float32")
    y = rng.normal(size=(16, 1, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    model = compile_model(simple_rnn(spec, units=4, embedding_dim=3), spec, clipnorm=1e-3, jit_compile=False)
    with tf.GradientTape() as tape:
        loss = MSE(y, model(x, training=True))
    expected = float(global_norm(tape.gradient(loss, model.trainable_variables)))
    logs = []
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False,
              callbacks=[GradientNorms(), keras.callbacks.LambdaCallback(on_epoch_end=lambda e, l: logs.append(l))])
    assert logs[0]["grad_norm_max"] == pytest.approx(expected, rel=1e-5)
    assert logs[0]["clipped_steps"] == 1.0


def test_measuring_and_counting_train_exactly_like_adam_did_and_save_as_adams_state(tmp_path):
    """Runs with the default train.gradient_flow keep the identity of earlier runs: their numbers must not move."""
    counted, _, (x, y) = _fit_one_epoch(1.0, dropout=0.2, measure_first=True)
    plain, _, _ = _fit_one_epoch(1.0, dropout=0.2,
                                 optimizer=keras.optimizers.Adam(learning_rate=1e-3, global_clipnorm=1.0))
    for a, b in zip(counted.weights, plain.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert len(counted.optimizer.variables) == len(plain.optimizer.variables)  # statistics are not optimizer state
    counted.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.optimizer, GradientNormAdam) and loaded.optimizer.global_clipnorm == 1.0
    np.testing.assert_array_equal(loaded.optimizer.iterations.numpy(), counted.optimizer.iterations.numpy())
    loaded.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[GradientNorms()])
    assert gradient_norm_optimizer(loaded).gradient_stats()["steps"] == 3.0
    plain.save(tmp_path / "plain.keras")  # a checkpoint from before: no statistics, and no logs for them
    assert gradient_norm_optimizer(keras.models.load_model(tmp_path / "plain.keras")) is None


MIRRORED = """
import json
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from rnnbench import gradient_flow
from rnnbench.callbacks import GradientNorms
from rnnbench.models import compile_model, gru
from rnnbench.spec import InputSpec, OutputSpec, TaskSpec
MSE = keras.losses.MeanSquaredError()
"""


def _mirrored_run(devices: int) -> dict:
    """One epoch (two steps) of a tiny GRU on `devices` devices, clipping every step."""
    from rnnbench import compute

    spec = _features_spec(2, 8)
    x = np.random.default_rng(0).normal(size=(32, 8, 2)).astype("float32")
    y = np.random.default_rng(1).normal(size=(32, 1, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    with compute.devices(devices):
        model = compile_model(gru(spec, units=4), spec, clipnorm=1e-9, jit_compile=False)
    ratio = gradient_flow.measure(model, spec, x, y)["grad_log10_ratio"]
    logs = []
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False,
              callbacks=[GradientNorms(), keras.callbacks.LambdaCallback(on_epoch_end=lambda e, l: logs.append(l))])
    return {"ratio": ratio, "clipped": logs[0]["clipped_steps"], "max": logs[0]["grad_norm_max"],
            "replicas": model.distribute_strategy.num_replicas_in_sync}


def test_under_mirrored_strategy_the_figures_are_replica_zeros():
    """Keras clips each replica's gradient (its 1/replicas share of the loss) before the all-reduce; the counts are
    of replica 0's clipping, the norms of its share: about half the one-device norm on two devices. (XLA with
    MirroredStrategy over logical CPU devices fails in TensorFlow itself, with plain Adam too, so is not tried.)"""
    script = "\n".join([MIRRORED, inspect.getsource(_features_spec), inspect.getsource(_mirrored_run),
                        "print(json.dumps(_mirrored_run(2)))"])
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    two, one = json.loads(done.stdout.strip().splitlines()[-1]), _mirrored_run(1)
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert one["clipped"] == two["clipped"] == 2.0
    assert one["ratio"] == pytest.approx(two["ratio"], rel=1e-5)
    assert 0.2 * one["max"] < two["max"] < 0.9 * one["max"]


# The hash of the default sine configuration before train.gradient_flow existed: committed results keep their
# identity. Change it only together with config.PROTOCOL or the sine task's options, never for a diagnostic.
DEFAULT_SINE_HASH = "95893ccd9e102363"


def test_the_option_leaves_existing_config_hashes_alone():
    plain = config.validate({"task": "sine", "models": ["lstm"], "seeds": [0]})
    assert plain["train"]["gradient_flow"] is True
    assert config.config_hash(plain) == DEFAULT_SINE_HASH
    without = {**plain, "train": {k: v for k, v in plain["train"].items() if k != "gradient_flow"}}
    assert config.config_hash(without) == config.config_hash(plain)
    assert config.config_hash(config.resolve(task="sine", sets=["train.gradient_flow=true"])) == \
        config.config_hash(config.resolve(task="sine"))
    assert config.config_hash(config.resolve(task="sine", sets=["train.gradient_flow=false"])) != \
        config.config_hash(config.resolve(task="sine"))


def test_a_run_logs_both_curves_the_plot_and_the_summaries(tmp_path, mlflow_store):
    resolved = config.resolve(task="sine", models="gru", seeds="0", epochs=2, sets=TINY + ["train.clipnorm=1e-9"])
    spec, tracker = runner.load_task(resolved), tracking.Tracker("sine", mlflow_store)
    parent = tracker.start_run("sine", {"rnnbench_role": "parent"})
    progress = Progress(1, 1, lambda _: None).callback(1, "gru", 0)
    run_id = runner.train_one(spec, resolved, "gru", 0, tracker, parent, {}, progress)
    run = next(r for r in tracker.child_runs() if r["run_id"] == run_id)
    for name in ("grad_flow_init_log10_ratio", "grad_flow_best_log10_ratio", "grad_flow_init_log10_slope",
                 "grad_norm_mean", "grad_norm_max"):
        assert np.isfinite(run["metrics"][name]), name
    steps = len(list(spec.train))
    assert [v for _, v in tracker.metric_history(run["run_id"], "clipped_steps")] == [steps, steps]
    # The run's totals over its epochs, beside the last epoch's figures that the reports' tables show.
    assert run["metrics"]["clipped_steps_total"] == 2 * steps
    peaks = [v for _, v in tracker.metric_history(run["run_id"], "grad_norm_max")]
    assert run["metrics"]["grad_norm_peak"] == pytest.approx(max(peaks)) and len(peaks) == 2
    artifacts = {a.path for a in tracker.client.list_artifacts(run["run_id"])}
    assert {"gradient_flow.json", "gradient_flow.png"} <= artifacts
    curves = json.loads(tracking.download_artifact(run["run_id"], "gradient_flow.json", mlflow_store).read_text())
    assert set(curves) == {"init", "best"} and len(curves["init"]["norm_by_step"]) == 16
    assert curves["best"]["grad_log10_ratio"] == pytest.approx(run["metrics"]["grad_flow_best_log10_ratio"])
    model = tracking.load_model(run["run_id"], mlflow_store)  # the counting optimizer loads back through MLflow
    assert model.output_shape == (None, 2, 1)
