"""The forecasting problem made from a price history: chronological splits, scaling, windows and the way back to prices.

From the last `input_len` trading days predict the next `horizon` days. The target is the daily log return (default)
or the price itself, z-scored (`target="scaled_price"`; it extrapolates badly on a trending series, which is why
returns are the default). Each extra column enters as its day-on-day change log(1 + v_t) - log(1 + v_t-1). The series
is cut chronologically into train / validation / test; the scaler and every fitted baseline see the training period
only, and no window crosses a split boundary.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from rnnbench import forecasting
from rnnbench.errors import DataError, UserError
from rnnbench.tasks.stock.prices import PriceHistory

TARGETS = ("log_return", "scaled_price")


@dataclasses.dataclass(frozen=True)
class Windows:
    """The windows of one split with what is needed to score them in price terms."""

    x: np.ndarray  # (N, input_len, features) scaled inputs
    y: np.ndarray  # (N, horizon, 1) scaled targets
    window_prices: np.ndarray  # (N, input_len + 1) the prices the inputs were made from, last one = last observed
    future_prices: np.ndarray  # (N, horizon) the prices to forecast
    target_dates: np.ndarray  # (N, horizon) their dates

    @property
    def last_price(self) -> np.ndarray:
        return self.window_prices[:, -1]

    def __len__(self) -> int:
        return len(self.x)

    def take(self, part: slice) -> "Windows":
        """The windows in `part` (a fold)."""
        return Windows(*(getattr(self, f.name)[part] for f in dataclasses.fields(Windows)))


@dataclasses.dataclass(frozen=True)
class StockProblem:
    """Scaled, windowed train / val / test splits of a price history plus everything fitted on the training period."""

    train: Windows
    val: Windows
    test: Windows
    target: str
    scale_mean: np.ndarray  # per input column, fitted on the training period
    scale_std: np.ndarray
    train_mean_log_return: float
    periods: dict  # split -> (first date, last date) of the days its windows cover, inputs and targets

    def predicted_prices(self, scaled_prediction, windows: Windows) -> np.ndarray:
        """(N, horizon) prices from a model's (N, horizon, 1) scaled output on `windows`."""
        return prices_from_scaled(scaled_prediction, windows.last_price, self.scale_mean, self.scale_std, self.target)


def prices_from_scaled(scaled_prediction, last_price: np.ndarray, scale_mean, scale_std, target: str) -> np.ndarray:
    """(N, horizon) prices from a model's (N, horizon, 1) scaled output and the last observed price of each window."""
    values = np.asarray(scaled_prediction, np.float64).reshape(len(last_price), -1)
    values = values * scale_std[0] + scale_mean[0]
    if target == "log_return":
        return last_price[:, None] * np.exp(np.cumsum(values, axis=1))
    return values


def model_steps(history: PriceHistory, target: str) -> np.ndarray:
    """(days - 1, 1 + features) unscaled model inputs: step k is day k + 1's target value (the log return from day k,
    or the price), then each feature's change log(1 + v) from day k."""
    prices = history.prices
    target_series = np.diff(np.log(prices)) if target == "log_return" else prices[1:]
    feature_changes = np.diff(np.log1p(history.features), axis=0)
    return np.concatenate([target_series[:, None], feature_changes], axis=1)


def prepare_problem(
    history: PriceHistory,
    *,
    target: str = "log_return",
    input_len: int = 30,
    horizon: int = 1,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> StockProblem:
    """Cuts the series into chronological splits, fits the scaler on the training steps only and makes windows.

    Step k of the model's series is day k + 1 of the history: the log return from day k to day k + 1 (or the price on
    day k + 1), then each feature's change. Both targets share these steps, so their test windows are identical.
    """
    if target not in TARGETS:
        raise UserError(f"task.target={target!r} is not a target; choose one of {', '.join(TARGETS)}")
    log_returns = np.diff(np.log(history.prices))
    steps = model_steps(history, target)
    column_names = (target,) + tuple(history.feature_names)

    segments = forecasting.chronological_split(
        len(steps), (1.0 - val_fraction - test_fraction, val_fraction, test_fraction)
    )
    mean, std = _fit_scaler(history, steps[segments[0]], column_names)
    scaled = (steps - mean) / std

    split_windows, periods = [], {}
    for split_name, segment in zip(("train", "val", "test"), segments):
        step_dates = history.dates[1:][segment]
        if len(step_dates):
            periods[split_name] = (str(step_dates[0])[:10], str(step_dates[-1])[:10])
        split_windows.append(_split_windows(history, scaled, segment, split_name, input_len, horizon))
    return StockProblem(
        *split_windows,
        target=target,
        scale_mean=mean,
        scale_std=std,
        train_mean_log_return=float(log_returns[segments[0]].mean()),
        periods=periods,
    )


def _fit_scaler(history: PriceHistory, train_steps: np.ndarray, column_names: tuple):
    """(mean, std) per column of the training steps; a column that does not change cannot be scaled."""
    mean, std = train_steps.mean(axis=0), train_steps.std(axis=0)
    for name, centre, spread in zip(column_names, mean, std):
        # Rounding alone gives a constant series a spread of ~1e-17; scaling by that would blow up the inputs.
        if not spread > 1e-12 * max(1.0, abs(centre)):
            raise DataError(
                f"{history.path}: {name!r} does not change over the training period, so it cannot be scaled; "
                "use a longer date range or drop that column"
            )
    return mean, std


def _split_windows(history: PriceHistory, scaled: np.ndarray, segment: slice, split_name: str, input_len: int,
                   horizon: int) -> Windows:
    prices = history.prices
    try:
        x, y = forecasting.make_windows(scaled[segment], input_len, horizon)
    except ValueError:
        raise DataError(
            f"{history.path}: the {split_name} split has {segment.stop - segment.start} trading days, too few "
            f"for input_len={input_len} + horizon={horizon}; use a longer date range, shorter windows or a "
            "larger fraction for that split"
        ) from None
    # Window i of this segment reads steps start + i .. start + i + input_len - 1, i.e. days start + i ..
    # start + i + input_len of the history (the first one is the base of the first return).
    origin = segment.start + np.arange(len(x))
    window_prices = prices[origin[:, None] + np.arange(input_len + 1)]
    future_days = origin[:, None] + input_len + 1 + np.arange(horizon)
    return Windows(x, y, window_prices, prices[future_days], history.dates[future_days])
