"""Tests of the forecasting helpers added for the stock task: naive baselines, metrics, the Diebold-Mariano test and
consecutive folds, each against an answer worked out by hand or by an independent implementation (scipy)."""
import math

import numpy as np
import pytest
from scipy import stats

from rnnbench import forecasting


def windows_of(series, input_len, horizon=1):
    return forecasting.make_windows(np.asarray(series, dtype=np.float64), input_len, horizon)


def test_drift_continues_a_linear_series_exactly():
    x, y = windows_of(3.0 + 0.5 * np.arange(40), input_len=6, horizon=3)
    np.testing.assert_allclose(forecasting.drift_forecast(x, 3), y, atol=1e-5)


def test_drift_with_a_fixed_slope_adds_it_per_step():
    x = np.array([[[1.0], [5.0], [2.0]]])  # the window's own drift would be 0.5 per step
    np.testing.assert_allclose(forecasting.drift_forecast(x, 3, slope=0.1)[0, :, 0], [2.1, 2.2, 2.3], rtol=1e-6)


def test_drift_of_a_random_walk_window_uses_its_endpoints():
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=50))
    x, _ = windows_of(walk, input_len=10)
    slope = (x[:, -1, 0] - x[:, 0, 0]) / 9
    np.testing.assert_allclose(forecasting.drift_forecast(x, 1)[:, 0, 0], x[:, -1, 0] + slope, rtol=1e-5, atol=1e-5)


def test_moving_average_is_the_mean_of_the_last_values():
    x = np.array([[[1.0], [2.0], [3.0], [10.0]]])
    forecast = forecasting.moving_average_forecast(x, horizon=2, window=3)
    np.testing.assert_allclose(forecast[0, :, 0], [5.0, 5.0])


def test_moving_average_window_must_fit_the_input():
    with pytest.raises(ValueError, match="between 1 and input_len=4"):
        forecasting.moving_average_forecast(np.ones((2, 4, 1)), horizon=1, window=5)


def test_mape_in_percent_and_undefined_at_zero():
    assert forecasting.mape([100.0, 200.0], [110.0, 190.0]) == pytest.approx(7.5)
    with pytest.raises(ValueError, match="undefined"):
        forecasting.mape([0.0, 1.0], [1.0, 1.0])


def test_directional_accuracy_scores_no_change_as_a_coin_flip():
    last = np.array([[10.0], [10.0], [10.0], [10.0]])
    actual = np.array([[11.0], [9.0], [11.0], [10.0]])
    predicted = np.array([[12.0], [8.0], [9.0], [11.0]])  # right, right, wrong, no actual change
    assert forecasting.directional_accuracy(last, actual, predicted) == pytest.approx((1 + 1 + 0 + 0.5) / 4)
    assert forecasting.directional_accuracy(last, actual, np.full_like(actual, 10.0)) == 0.5


def test_skill_against_a_reference():
    assert forecasting.skill(0.5, 2.0) == pytest.approx(0.75)
    assert forecasting.skill(3.0, 2.0) == pytest.approx(-0.5)
    with pytest.raises(ValueError):
        forecasting.skill(1.0, 0.0)


@pytest.mark.parametrize("n", [25, 400])
def test_diebold_mariano_at_horizon_one_is_the_paired_t_test(n):
    # With h = 1 there are no autocovariance terms and the HLN factor sqrt((n - 1) / n) turns the biased variance into
    # the unbiased one: the statistic is exactly the one-sample t statistic of the loss difference on n - 1 df.
    rng = np.random.default_rng(n)
    errors_a, errors_b = rng.normal(0, 0.9, n), rng.normal(0, 1.0, n)
    result = forecasting.diebold_mariano(errors_a, errors_b, horizon=1, alternative="less")
    reference = stats.ttest_1samp(errors_a**2 - errors_b**2, 0.0, alternative="less")
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    two_sided = forecasting.diebold_mariano(errors_a, errors_b, alternative="two-sided")
    assert two_sided.p_value == pytest.approx(stats.ttest_1samp(errors_a**2 - errors_b**2, 0.0).pvalue, rel=1e-10)


def test_diebold_mariano_at_horizon_two_against_a_hand_computation():
    # d = e_a^2 - e_b^2 = [1, 1, 4, 4, 0, 0, 9, 9], n = 8, mean 3.5,
    # deviations [-2.5, -2.5, .5, .5, -3.5, -3.5, 5.5, 5.5]
    # gamma0 = 98 / 8 = 12.25; gamma1 = (6.25 - 1.25 + .25 - 1.75 + 12.25 - 19.25 + 30.25) / 8 = 26.75 / 8
    # V = gamma0 + 2 gamma1 = 18.9375; DM = 3.5 / sqrt(V / 8); HLN factor sqrt((8 + 1 - 4 + 2 / 8) / 8) = sqrt(.65625)
    errors_a = np.array([1, 1, 2, 2, 0, 0, 3, 3], dtype=float)
    errors_b = np.zeros(8)
    expected = 3.5 / math.sqrt(18.9375 / 8) * math.sqrt(0.65625)
    result = forecasting.diebold_mariano(errors_a, errors_b, horizon=2, alternative="greater")
    assert result.statistic == pytest.approx(expected, rel=1e-12)
    assert result.statistic == pytest.approx(1.8428, abs=1e-4)
    assert result.p_value == pytest.approx(stats.t(df=7).sf(expected), rel=1e-12)
    assert result.mean_loss_difference == pytest.approx(3.5)
    assert result.n == 8


def test_diebold_mariano_averages_multi_step_errors_per_origin():
    rng = np.random.default_rng(3)
    errors_a, errors_b = rng.normal(size=(60, 3)), rng.normal(size=(60, 3))
    per_origin_a = np.sqrt((errors_a**2).mean(axis=1))
    per_origin_b = np.sqrt((errors_b**2).mean(axis=1))
    assert forecasting.diebold_mariano(errors_a, errors_b, horizon=3) == pytest.approx(
        tuple(forecasting.diebold_mariano(per_origin_a, per_origin_b, horizon=3))
    )


def test_diebold_mariano_direction_and_degenerate_cases():
    rng = np.random.default_rng(1)
    actual = rng.normal(size=500)
    good, bad = actual - rng.normal(0, 0.1, 500), np.zeros(500)
    errors_good, errors_bad = actual - good, actual - bad
    assert forecasting.diebold_mariano(errors_good, errors_bad).p_value < 1e-6
    assert forecasting.diebold_mariano(errors_bad, errors_good).p_value > 1 - 1e-6
    identical = forecasting.diebold_mariano(errors_bad, errors_bad)
    assert math.isnan(identical.p_value) and identical.mean_loss_difference == 0
    with pytest.raises(ValueError, match="same shape"):
        forecasting.diebold_mariano(np.ones(5), np.ones(6))
    with pytest.raises(ValueError, match="alternative"):
        forecasting.diebold_mariano(errors_good, errors_bad, alternative="better")


def test_consecutive_folds_cover_everything_in_order():
    folds = forecasting.consecutive_folds(10, 3)
    assert [(f.start, f.stop) for f in folds] == [(0, 4), (4, 7), (7, 10)]
    with pytest.raises(ValueError):
        forecasting.consecutive_folds(2, 3)
