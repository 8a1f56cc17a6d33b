"""Pooling over time in the recurrent builders (model.pooling): max and mean over the real steps of the last layer's
outputs, for classification and forecast heads; padding never enters, and the option is refused where it cannot
apply."""
import keras
import numpy as np
import pytest

from rnnbench.errors import UserError
from rnnbench.models import bi_gru, gru, lstm, lstm_attention
from rnnbench.models.recurrent import IncompatibleModelError
from rnnbench.spec import InputSpec, OutputSpec, TaskSpec

REVIEWS = TaskSpec("reviews", InputSpec("tokens", vocab_size=30, masked=True),
                   OutputSpec("classification", num_classes=2), loss="sparse_categorical_crossentropy")


def _sequence_outputs(model, x):
    """The last recurrent layer's outputs at every step, read from the built model."""
    pooled = next(layer for layer in model.layers if layer.name.endswith("_pooling"))
    return keras.Model(model.inputs, pooled.input[0])(x)


@pytest.mark.parametrize("mode", ["max", "mean"])
def test_pooling_reads_only_the_real_steps_of_the_sequence(mode):
    keras.utils.set_random_seed(0)
    model = lstm(REVIEWS, units=6, embedding_dim=4, pooling=mode)
    x = np.array([[5, 6, 7, 8, 0, 0], [9, 4, 0, 0, 0, 0]], dtype="int32")
    steps = keras.ops.convert_to_numpy(_sequence_outputs(model, x))
    pooled_layer = model.get_layer(f"{mode}_pooling")
    pooled = keras.ops.convert_to_numpy(keras.Model(model.inputs, pooled_layer.output)(x))
    for row, length in enumerate([4, 2]):
        real = steps[row, :length]
        expected = real.max(axis=0) if mode == "max" else real.mean(axis=0)
        np.testing.assert_allclose(pooled[row], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("builder", [lstm, bi_gru])
@pytest.mark.parametrize("mode", ["max", "mean"])
def test_more_padding_leaves_the_prediction_unchanged(builder, mode):
    keras.utils.set_random_seed(1)
    model = builder(REVIEWS, units=5, embedding_dim=4, pooling=mode)
    short = np.array([[3, 4, 5, 0]], dtype="int32")
    long = np.array([[3, 4, 5, 0, 0, 0, 0, 0, 0]], dtype="int32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(short)), keras.ops.convert_to_numpy(model(long)),
                               rtol=1e-5, atol=1e-6)


def test_pooling_changes_the_readout_but_not_the_parameter_count():
    keras.utils.set_random_seed(2)
    models = {mode: gru(REVIEWS, units=6, embedding_dim=4, pooling=mode) for mode in ("last", "max", "mean")}
    assert len({m.count_params() for m in models.values()}) == 1
    assert "max_pooling" in [layer.name for layer in models["max"].layers]
    assert not any(layer.name.endswith("_pooling") for layer in models["last"].layers)


def test_a_budget_is_met_with_pooling_too():
    model = bi_gru(REVIEWS, param_budget=5_000, embedding_dim=8, pooling="max")
    assert abs(model.count_params() - 5_000) <= 0.05 * 5_000


def test_a_pooled_model_saves_and_loads_with_the_same_outputs(tmp_path):
    keras.utils.set_random_seed(3)
    model = lstm(REVIEWS, units=4, embedding_dim=3, pooling="max")
    x = np.array([[3, 4, 5, 0], [7, 0, 0, 0]], dtype="int32")
    model.save(tmp_path / "pooled.keras")
    loaded = keras.models.load_model(tmp_path / "pooled.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)), rtol=1e-6)


def test_pooling_is_refused_where_it_cannot_apply():
    with pytest.raises(UserError, match="model.pooling must be one of last, max, mean"):
        lstm(REVIEWS, units=4, pooling="median")
    with pytest.raises(IncompatibleModelError, match="attention pooling"):
        lstm_attention(REVIEWS, units=4, pooling="max")
    language = TaskSpec("lm", InputSpec("tokens", vocab_size=30, length=8), OutputSpec("causal_steps", num_classes=30),
                        loss="sparse_categorical_crossentropy")
    with pytest.raises(IncompatibleModelError, match="only classification and forecast heads"):
        gru(language, units=4, pooling="mean")
