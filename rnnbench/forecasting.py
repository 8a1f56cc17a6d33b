"""Shared pieces of the forecasting tasks: chronological splits, windows, baselines and error metrics.

All NumPy, so they are easy to test against hand-computed answers and cannot leak future data through a framework.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


def chronological_split(n: int, fractions=(0.7, 0.15, 0.15)) -> list[slice]:
    """Slices of [0, n) in time order with the given fractions (they must sum to 1)."""
    if abs(sum(fractions) - 1.0) > 1e-9 or any(f <= 0 for f in fractions):
        raise ValueError(f"split fractions must be positive and sum to 1, got {fractions}")
    bounds = np.round(np.cumsum((0.0,) + tuple(fractions)) * n).astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def make_windows(series: np.ndarray, input_len: int, horizon: int, target_columns=(0,)):
    """Sliding windows over one contiguous segment.

    series: (T, F) or (T,). Returns x: (N, input_len, F) and y: (N, horizon, len(target_columns)) where window i sees
    steps [i, i + input_len) and predicts steps [i + input_len, i + input_len + horizon). Windows never reach past the
    segment, so cutting the series into segments first keeps every window inside one split.
    """
    series = np.asarray(series, dtype=np.float32)
    if series.ndim == 1:
        series = series[:, None]
    n = len(series) - input_len - horizon + 1
    if n <= 0:
        raise ValueError(
            f"a segment of {len(series)} steps is too short for input_len={input_len} + horizon={horizon}; "
            "use a longer series or smaller windows"
        )
    starts = np.arange(n)
    x = series[starts[:, None] + np.arange(input_len)]
    y = series[starts[:, None] + input_len + np.arange(horizon)][:, :, list(target_columns)]
    return x, y


def persistence_forecast(x: np.ndarray, horizon: int, target_columns=(0,)) -> np.ndarray:
    """Random-walk forecast: every future step equals the last observed value."""
    last = x[:, -1, list(target_columns)]
    return np.repeat(last[:, None, :], horizon, axis=1)


class LinearAutoregressive:
    """Least-squares linear map from the flattened input window (plus a bias) to every future step."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> "LinearAutoregressive":
        design = self._design(x)
        self.coef_, *_ = np.linalg.lstsq(design, y.reshape(len(y), -1).astype(np.float64), rcond=None)
        self.out_shape_ = y.shape[1:]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (self._design(x) @ self.coef_).reshape((len(x),) + self.out_shape_).astype(np.float32)

    @staticmethod
    def _design(x: np.ndarray) -> np.ndarray:
        flat = x.reshape(len(x), -1).astype(np.float64)
        return np.concatenate([flat, np.ones((len(x), 1))], axis=1)


def rmse(y_true, y_pred) -> float:
    return float(np.sqrt(np.mean((np.asarray(y_true, np.float64) - np.asarray(y_pred, np.float64)) ** 2)))


def mae(y_true, y_pred) -> float:
    return float(np.mean(np.abs(np.asarray(y_true, np.float64) - np.asarray(y_pred, np.float64))))


# ---------------------------------------------------------------------------------------------------------------------
# Naive baselines beyond persistence. Like `persistence_forecast` they read only the input window, so they can be scored
# on exactly the windows a model sees.


def drift_forecast(x: np.ndarray, horizon: int, slope=None, target_columns=(0,)) -> np.ndarray:
    """Drift forecast: the last observed value plus `slope` per step ahead.

    With `slope=None` each window's own average change, (last - first) / (input_len - 1), is used (Hyndman's drift
    method applied to the window). Pass a fixed `slope` (scalar or one per target column), e.g. the mean change over the
    training period, for a less noisy estimate.
    """
    x = np.asarray(x, dtype=np.float64)
    columns = list(target_columns)
    last = x[:, -1, columns]
    if slope is None:
        if x.shape[1] < 2:
            raise ValueError("the drift of a window needs input_len >= 2, or pass a fixed slope")
        slope = (x[:, -1, columns] - x[:, 0, columns]) / (x.shape[1] - 1)
    steps = np.arange(1, horizon + 1, dtype=np.float64)[None, :, None]
    slope = np.broadcast_to(np.asarray(slope, dtype=np.float64), last.shape)
    return (last[:, None, :] + steps * slope[:, None, :]).astype(np.float32)


def moving_average_forecast(x: np.ndarray, horizon: int, window: int, target_columns=(0,)) -> np.ndarray:
    """Every future step equals the mean of the last `window` observed values."""
    x = np.asarray(x, dtype=np.float64)
    if not 1 <= window <= x.shape[1]:
        raise ValueError(f"moving-average window must be between 1 and input_len={x.shape[1]}, got {window}")
    mean = x[:, -window:, list(target_columns)].mean(axis=1)
    return np.repeat(mean[:, None, :], horizon, axis=1).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------------
# Metrics beyond RMSE and MAE.


def mape(y_true, y_pred) -> float:
    """Mean absolute percentage error, in percent. Undefined when an actual value is zero, so that raises."""
    y_true = np.asarray(y_true, np.float64)
    y_pred = np.asarray(y_pred, np.float64)
    if np.any(y_true == 0):
        raise ValueError("MAPE is undefined when an actual value is 0; use MAE or RMSE for this series")
    return float(100.0 * np.mean(np.abs((y_true - y_pred) / y_true)))


def directional_accuracy(last_observed, y_true, y_pred) -> float:
    """Share of forecasts that call the direction of change from the last observed value correctly.

    `last_observed` broadcasts against `y_true` (e.g. (N, 1, T) against (N, horizon, T)). A forecast of no change makes
    no call and scores one half (a coin flip), so persistence scores exactly 0.5 and a forecaster cannot look good by
    abstaining. An actual change of exactly zero has no direction and scores one half too.
    """
    last_observed = np.asarray(last_observed, np.float64)
    actual = np.sign(np.asarray(y_true, np.float64) - last_observed)
    predicted = np.sign(np.asarray(y_pred, np.float64) - last_observed)
    actual, predicted = np.broadcast_arrays(actual, predicted)
    score = np.where((actual == 0) | (predicted == 0), 0.5, (actual == predicted).astype(np.float64))
    return float(np.mean(score))


def skill(error_model: float, error_reference: float) -> float:
    """Skill score 1 - error_model / error_reference: 0 matches the reference, 1 is perfect, negative is worse."""
    if error_reference <= 0:
        raise ValueError(f"the reference error must be positive to compute a skill score, got {error_reference}")
    return float(1.0 - error_model / error_reference)


class DieboldMarianoResult(NamedTuple):
    """Outcome of `diebold_mariano`; a negative statistic means the first forecaster had the smaller mean loss."""

    statistic: float
    p_value: float
    mean_loss_difference: float
    n: int


def diebold_mariano(errors_a, errors_b, horizon: int = 1, power: int = 2, alternative: str = "less"):
    """Diebold-Mariano test of equal predictive accuracy, with the Harvey-Leybourne-Newbold small-sample correction.

    errors_a, errors_b: forecast errors of two forecasters on the same origins, shape (N,) or (N, ...). The loss at each
    origin is |error|**power averaged over the trailing axes, so an (N, horizon) array of multi-step errors gives one
    loss per forecast origin. The loss difference d = loss_a - loss_b has its long-run variance estimated from the
    autocovariances up to lag horizon - 1 (h-step forecast errors overlap), as in R's `forecast::dm.test`; the statistic
    is multiplied by sqrt((N + 1 - 2h + h(h - 1) / N) / N) and referred to Student's t with N - 1 degrees of freedom.

    alternative: "less" (default) tests H1 "a has the smaller expected loss", i.e. forecaster a beats b; "greater" the
    reverse; "two-sided" any difference. A negative statistic means a has the smaller average loss.
    """
    from scipy import stats

    if alternative not in ("less", "greater", "two-sided"):
        raise ValueError(f"alternative must be 'less', 'greater' or 'two-sided', got {alternative!r}")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    a = np.abs(np.asarray(errors_a, np.float64))
    b = np.abs(np.asarray(errors_b, np.float64))
    if a.shape != b.shape:
        raise ValueError(f"the two error arrays must have the same shape, got {a.shape} and {b.shape}")
    loss_difference = (a**power).reshape(len(a), -1).mean(axis=1) - (b**power).reshape(len(b), -1).mean(axis=1)
    n = len(loss_difference)
    if n < 2 or n <= 2 * (horizon - 1):
        raise ValueError(f"the Diebold-Mariano test needs more than max(1, 2 * (horizon - 1)) origins, got {n}")
    mean = float(loss_difference.mean())
    centred = loss_difference - mean
    autocovariances = [float(centred[lag:] @ centred[: n - lag]) / n for lag in range(horizon)]
    long_run_variance = autocovariances[0] + 2.0 * sum(autocovariances[1:])
    if long_run_variance <= 0:
        # A constant loss difference (identical forecasts, say) or the truncated estimator gone negative: the test is
        # undefined, and NaN says so instead of a p-value that would look like evidence.
        return DieboldMarianoResult(float("nan"), float("nan"), mean, n)
    correction = np.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    statistic = float(mean / np.sqrt(long_run_variance / n) * correction)
    t = stats.t(df=n - 1)
    if alternative == "less":
        p_value = t.cdf(statistic)
    elif alternative == "greater":
        p_value = t.sf(statistic)
    else:
        p_value = 2.0 * t.sf(abs(statistic))
    return DieboldMarianoResult(statistic, float(p_value), mean, n)


def consecutive_folds(n: int, folds: int) -> list[slice]:
    """Cuts [0, n) into `folds` consecutive slices of near-equal length (the first ones one longer when uneven)."""
    if not 1 <= folds <= n:
        raise ValueError(f"cannot cut {n} items into {folds} folds; use between 1 and {n} folds")
    bounds = np.cumsum([0] + [len(part) for part in np.array_split(np.arange(n), folds)])
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
