"""Every registered model on every head kind: shapes, masks, causality, training, save/load, parameter budgets."""
import numpy as np
import pytest

import keras

from rnnbench import models
from rnnbench.config import option_types
from rnnbench.registry import get_model, list_models
from rnnbench.spec import InputSpec, OutputSpec, TaskSpec


def _spec(inputs, outputs, loss):
    return TaskSpec(name="tiny", inputs=inputs, outputs=outputs, train=None, val=None, test=None, loss=loss)


HEADS = {
    "classification": _spec(InputSpec("tokens", vocab_size=40, masked=True), OutputSpec("classification", num_classes=3),
                            keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
    "causal_steps": _spec(InputSpec("tokens", vocab_size=20, length=10), OutputSpec("causal_steps", num_classes=20),
                          keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
    "ctc": _spec(InputSpec("features", feature_dim=6, masked=True), OutputSpec("ctc", num_classes=4), models.ctc_loss),
    "forecast": _spec(InputSpec("features", feature_dim=2, length=16), OutputSpec("forecast", horizon=3, targets=2),
                      keras.losses.MeanSquaredError()),
}


def _batch(spec, rng, batch=4, steps=10):
    """Inputs with the last examples right-padded where the task is masked, and matching targets."""
    if spec.inputs.kind == "tokens":
        x = rng.integers(1, spec.inputs.vocab_size, size=(batch, spec.inputs.length or steps)).astype("int32")
    else:
        x = rng.normal(size=(batch, spec.inputs.length or steps, spec.inputs.feature_dim)).astype("float32")
    if spec.inputs.masked:
        x[2:, steps - 3:] = 0
    head = spec.outputs
    if head.head == "classification":
        y = rng.integers(0, head.num_classes, size=(batch,))
    elif head.head == "causal_steps":
        y = rng.integers(0, head.num_classes, size=x.shape[:2])
    elif head.head == "ctc":
        y = np.zeros((batch, 3), dtype="int32")
        y[:, :2] = rng.integers(1, head.num_classes + 1, size=(batch, 2))
    else:
        y = rng.normal(size=(batch, head.horizon, head.targets)).astype("float32")
    return x, y


CASES = [(m, h) for m in list_models() for h in HEADS]
# A tiny size for every builder, from the options it has (recurrent: units, and layers=1 as by default;
# transformer: d_model, heads, layers; tcn: filters, blocks; esn: reservoir_units).
TINY = {"units": 6, "attention_units": 8, "attention_heads": 2, "layers": 1, "d_model": 8, "heads": 2,
        "filters": 6, "blocks": 2, "reservoir_units": 16}


def _tiny_options(builder) -> dict:
    accepted = option_types(builder)
    return {key: value for key, value in TINY.items() if key in accepted}



@pytest.mark.parametrize("model_name,head", CASES)
def test_builder_on_head(model_name, head, tmp_path):
    spec = HEADS[head]
    builder = get_model(model_name)
    if model_name.startswith("seq2seq_"):  # encoder-decoders build the seq2seq head only (tests/test_g2p.py)
        with pytest.raises(models.IncompatibleModelError, match="seq2seq head only"):
            builder(spec, **_tiny_options(builder))
        return
    if head == "causal_steps" and model_name.startswith("bi_"):
        with pytest.raises(models.IncompatibleModelError, match="causal"):
            builder(spec, units=6)
        return
    keras.utils.set_random_seed(0)
    model = models.compile_model(builder(spec, **_tiny_options(builder)), spec, learning_rate=0.01)
    rng = np.random.default_rng(0)
    x, y = _batch(spec, rng)
    out = np.asarray(model(x, training=False))

    # Output shape per head kind.
    expected = {"classification": (4, 3), "causal_steps": (4, 10, 20), "ctc": (4, 10, 5), "forecast": (4, 3, 2)}
    assert out.shape == expected[head]
    assert np.isfinite(out).all()

    if spec.inputs.masked:
        # Padding never changes the output: the same sequences with extra padding give the same real outputs.
        longer = np.concatenate([x, np.zeros_like(x[:, :5])], axis=1)
        out_longer = np.asarray(model(longer, training=False))
        if head == "ctc":
            np.testing.assert_allclose(out_longer[:, :10], out, atol=1e-5)
            blank = out_longer[:, 10:]
            assert (blank.argmax(-1) == 0).all()  # padded frames predict the blank
        else:
            np.testing.assert_allclose(out_longer, out, atol=1e-5)
        # Changing what lies under the padding changes nothing either.
        noisy = x.copy()
        if spec.inputs.kind == "tokens":
            noisy[2:, 7:] = 0
        np.testing.assert_allclose(np.asarray(model(noisy, training=False)), out, atol=1e-5)
    if head == "causal_steps":
        # Causality: changing step 6 onwards leaves the outputs of steps 0-5 unchanged.
        changed = x.copy()
        changed[:, 6:] = (changed[:, 6:] % (spec.inputs.vocab_size - 1)) + 1
        np.testing.assert_allclose(np.asarray(model(changed, training=False))[:, :6], out[:, :6], atol=1e-5)

    # One training step changes every trainable weight.
    before = [np.array(w) for w in model.trainable_weights]
    loss = model.train_on_batch(x, y)
    loss = loss[0] if isinstance(loss, (list, tuple)) else loss
    assert np.isfinite(loss)
    unchanged = [w.path for w, b in zip(model.trainable_weights, before) if np.array_equal(np.array(w), b)]
    assert not unchanged, f"weights not updated by a training step: {unchanged}"

    # .keras save/load gives identical predictions.
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(restored(x, training=False)), np.asarray(model(x, training=False)), atol=1e-6)


@pytest.mark.parametrize("model_name", list_models())
def test_param_budget_within_five_percent(model_name):
    if model_name.startswith("seq2seq_"):
        pytest.skip("encoder-decoders build the seq2seq head only; tests/test_g2p.py checks their budgets")
    spec = HEADS["forecast"]
    for budget in (5_000, 40_000):
        model = get_model(model_name)(spec, param_budget=budget)
        assert abs(models.count_trainable(model) - budget) <= 0.05 * budget


def test_param_budget_weights_depend_on_the_seed_only_not_on_the_remembered_width():
    from rnnbench.models import recurrent

    recurrent._BUDGET_WIDTHS.clear()
    keras.utils.set_random_seed(3)
    searched = models.gru(HEADS["forecast"], param_budget=6_000)  # searches the width, building throwaway models
    keras.utils.set_random_seed(3)
    remembered = models.gru(HEADS["forecast"], param_budget=6_000)  # width from the cache, one model built
    assert len(recurrent._BUDGET_WIDTHS) == 1
    assert all(np.array_equal(a, b) for a, b in zip(searched.get_weights(), remembered.get_weights()))


def test_param_budget_too_small_is_refused():
    with pytest.raises(models.IncompatibleModelError, match="too small"):
        models.lstm(HEADS["classification"], param_budget=100)


def test_attention_weights_read_back():
    spec = HEADS["classification"]
    x, _ = _batch(spec, np.random.default_rng(1))
    weights = models.attention_weights(models.lstm_attention(spec, units=6), x)
    assert weights.shape == (4, 10)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(weights[2:, 7:] < 1e-6)  # no attention on padding
    assert models.attention_weights(models.lstm(spec, units=6), x) is None



@pytest.mark.parametrize("model_name", ["lstm_attention", "gru_attention", "bi_lstm_attention"])
@pytest.mark.parametrize("head", ["classification", "forecast"])
def test_attention_with_last_state_feeds_the_head_both_and_ignores_padding(model_name, head, tmp_path):
    spec = HEADS[head]
    builder = get_model(model_name)
    keras.utils.set_random_seed(0)
    model = builder(spec, units=6, attention_units=8, attention_with_last_state=True, dropout=0.2)
    directions = 2 if model_name.startswith("bi_") else 1
    assert model.get_layer("context_and_last_state").output.shape[-1] == 2 * 6 * directions
    x, _ = _batch(spec, np.random.default_rng(2))
    if spec.inputs.masked:  # more padding after the real steps must not change the output
        longer = np.pad(x, ((0, 0), (0, 4)) + ((0, 0),) * (x.ndim - 2))
        np.testing.assert_allclose(model.predict(x, verbose=0), model.predict(longer, verbose=0), atol=1e-5)
    without = builder(spec, units=6, attention_units=8)
    assert models.count_trainable(model) > models.count_trainable(without)
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "m.keras").predict(x, verbose=0),
                               model.predict(x, verbose=0), atol=1e-5)

def test_ctc_loss_matches_hand_computed_value():
    # Two frames, one label "1": paths (1,1), (0,1), (1,0) -> p = p1a*p1b + p0a*p1b + p1a*p0b.
    logits = np.log(np.array([[[0.3, 0.7], [0.6, 0.4]]], dtype="float32"))
    expected = -np.log(0.7 * 0.4 + 0.3 * 0.4 + 0.7 * 0.6)
    loss = np.asarray(models.ctc_loss(np.array([[1, 0]]), logits))
    np.testing.assert_allclose(loss, [expected], rtol=1e-5)


def test_cudnn_report_explains_ineligible_layers():
    spec = HEADS["ctc"]
    eligible = models.cudnn_report(models.bi_lstm(spec, units=4))
    assert eligible and all(row["cudnn_eligible"] for row in eligible)
    report = models.cudnn_report(models.gru(spec, units=4, recurrent_dropout=0.2))
    assert not report[0]["cudnn_eligible"] and "recurrent_dropout" in report[0]["why_not"]
    assert "no cuDNN kernel" in models.cudnn_report(models.simple_rnn(spec, units=4))[0]["why_not"]


@pytest.mark.parametrize("head", list(HEADS))
def test_outputs_stay_float32_under_mixed_precision(head):
    spec = HEADS[head]
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = models.gru(spec, units=6)
        x, _ = _batch(spec, np.random.default_rng(0))
        assert model.compute_dtype == "float16"
        assert np.asarray(model(x)).dtype == np.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_a_model_for_a_notebook_needs_no_datasets_and_a_misspelt_option_names_the_valid_ones():
    from rnnbench.errors import UserError
    from rnnbench.models import gru
    from rnnbench.spec import InputSpec, OutputSpec, TaskSpec

    spec = TaskSpec("mine", InputSpec("tokens", vocab_size=50, masked=True), OutputSpec("classification", num_classes=3))
    assert gru(spec, units=8).output_shape == (None, 3)
    with pytest.raises(UserError, match="gru\\(\\) has no option 'unit'; its options: units, layers"):
        gru(spec, unit=8)
