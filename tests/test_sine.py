"""The sine task and the forecasting helpers: shapes, splits without leakage, baselines with known answers."""
import numpy as np
import pytest

from rnnbench import forecasting
from rnnbench.errors import UserError
from rnnbench.tasks import sine


def test_windows_are_consecutive_slices():
    series = np.arange(10, dtype="float32")
    x, y = forecasting.make_windows(series, input_len=3, horizon=2)
    assert x.shape == (6, 3, 1) and y.shape == (6, 2, 1)
    np.testing.assert_array_equal(x[1, :, 0], [1, 2, 3])
    np.testing.assert_array_equal(y[1, :, 0], [4, 5])
    with pytest.raises(ValueError, match="too short"):
        forecasting.make_windows(series[:4], input_len=3, horizon=2)


def test_chronological_split_covers_the_series_in_order():
    parts = forecasting.chronological_split(100, (0.7, 0.15, 0.15))
    assert [(p.start, p.stop) for p in parts] == [(0, 70), (70, 85), (85, 100)]


def test_baselines_on_series_with_known_answers():
    # Persistence is exact on a constant series.
    constant = np.full((5, 4, 1), 2.0, dtype="float32")
    np.testing.assert_array_equal(forecasting.persistence_forecast(constant, 3), np.full((5, 3, 1), 2.0))
    # A linear AR model recovers an exact linear recurrence: x_t = 2 x_{t-1} - x_{t-2} (a straight line).
    line = np.arange(200, dtype="float32") * 0.5 + 3
    x, y = forecasting.make_windows(line, 4, 2)
    model = forecasting.LinearAutoregressive().fit(x[:150], y[:150])
    np.testing.assert_allclose(model.predict(x[150:]), y[150:], atol=1e-3)
    assert forecasting.rmse([1, 2], [1, 4]) == pytest.approx(np.sqrt(2))
    assert forecasting.mae([1, 2], [1, 4]) == pytest.approx(1.0)


def test_sine_spec_shapes_and_baselines():
    spec = sine.load(batch_size=16, steps=1200, input_len=20, horizon=4, noise=0.1)
    x, y = spec.example_batch()
    assert x.shape == (16, 20, 1) and y.shape == (16, 4, 1)
    assert spec.outputs.head == "forecast" and spec.dataset["train_windows"] > 0
    # A sum of sines is a linear recurrence: the AR baseline sits near the noise floor, persistence far above it.
    ar, persistence = (spec.baselines[b]["rmse_over_noise"] for b in ("linear_ar", "persistence"))
    assert 1.0 <= ar < 0.5 * persistence
    # Drift adds the training period's mean change, about zero for a stationary sum of sines: close to persistence.
    assert abs(spec.baselines["drift"]["rmse_over_noise"] / persistence - 1) < 0.05
    # Diebold-Mariano: AR beats persistence overwhelmingly; persistence is not shown to beat AR.
    assert spec.baselines["linear_ar"]["dm_pvalue"] < 1e-6 and spec.baselines["persistence"]["dm_linear_ar_pvalue"] > 0.5
    assert "dm_pvalue" not in spec.baselines["persistence"]  # no test of a forecaster against itself


def test_sine_model_is_tested_against_persistence_and_linear_ar():
    spec = sine.load(batch_size=16, steps=1200, input_len=20, horizon=4, noise=0.1)

    class Persistence:  # a "model" that repeats the last value gives persistence's numbers exactly
        @staticmethod
        def predict(x, **kwargs):
            return np.repeat(x[:, -1:, :], 4, axis=1)

    metrics = spec.evaluate(Persistence())
    assert np.isclose(metrics["rmse"], spec.baselines["persistence"]["rmse"])
    assert np.isnan(metrics["dm_pvalue"])  # identical errors: the test is undefined, and says so
    assert np.isclose(metrics["dm_linear_ar_pvalue"], spec.baselines["persistence"]["dm_linear_ar_pvalue"])


def test_sine_splits_do_not_leak():
    steps, input_len, horizon = 1000, 20, 5
    series, _ = sine.make_series(steps, (40.0,), (1.0,), 0.1, seed=0)
    spec = sine.load(batch_size=1000, steps=steps, periods=(40.0,), amplitudes=(1.0,), input_len=input_len,
                     horizon=horizon, val_fraction=0.2, test_fraction=0.2)

    def positions(ds):
        found = set()
        for x, y in ds.as_numpy_iterator():
            for window in np.concatenate([x[:, :, 0], y[:, :, 0]], axis=1):
                start = int(np.flatnonzero(np.all(np.lib.stride_tricks.sliding_window_view(
                    series, len(window)) == window, axis=1))[0])
                found.update(range(start, start + len(window)))
        return found

    train, val, test = positions(spec.train), positions(spec.val), positions(spec.test)
    assert max(train) < 600 <= min(val) and max(val) < 800 <= min(test)


def test_sine_data_is_deterministic_per_seed():
    a = sine.make_series(100, (10.0,), (1.0,), 0.1, seed=1)[0]
    b = sine.make_series(100, (10.0,), (1.0,), 0.1, seed=1)[0]
    c = sine.make_series(100, (10.0,), (1.0,), 0.1, seed=2)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_bad_sine_options_are_user_errors():
    with pytest.raises(UserError, match="same non-zero length"):
        sine.load(periods=(10.0, 5.0), amplitudes=(1.0,))
    with pytest.raises(UserError, match="noise must be > 0"):
        sine.load(noise=0.0)


def test_shuffled_batches_are_those_of_a_whole_split_shuffle_pass_after_pass():
    """Shuffling indices instead of examples (no buffer refill at each pass) must not change a single batch, or
    every committed result trained on shuffled windows would no longer reproduce."""
    import tensorflow as tf

    from rnnbench.pipeline import array_dataset

    x = np.random.default_rng(0).normal(size=(103, 5, 2)).astype(np.float32)
    y = np.arange(103, dtype=np.int32)
    shuffled = array_dataset(x, y, 8, shuffle_seed=11)
    reference = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(103, seed=11, reshuffle_each_iteration=True)
    reference = reference.batch(8)
    passes = [[(xb.tolist(), yb.tolist()) for xb, yb in shuffled.as_numpy_iterator()] for _ in range(3)]
    assert passes == [[(xb.tolist(), yb.tolist()) for xb, yb in reference.as_numpy_iterator()] for _ in range(3)]
    assert passes[0] != passes[1]
    assert int(shuffled.cardinality()) == 13
