"""Stock-price forecasting on a CSV of daily prices (task "stock"), with honest baselines and a significance test.

Data: any CSV with a date column and a price column (defaults `Date` and `Close`), optionally more numeric columns
(e.g. `Volume`) used as extra inputs, each entering as its day-on-day change log(1 + v_t) - log(1 + v_t-1). There is
no download: pass the file with `--set task.data_file=PATH`. Cleaning is explicit and counted in the run's params:
  * rows out of date order are sorted (stable) with a warning;
  * duplicate dates are refused (`duplicates="error"`, the default) or resolved by keeping the first or the last row of
    each date in file order (`duplicates="first"` / `"last"`, e.g. when a later row is a correction);
  * `start_date` / `end_date` (inclusive, ISO dates) keep a date range; only the kept rows are validated;
  * unparseable dates, missing or non-numeric prices and prices <= 0 are refused, naming the offending lines.

Problem: from the last `input_len` trading days predict the next `horizon` days. The target is the daily log return
(default) or the price itself, z-scored (`target="scaled_price"`; it extrapolates badly on a trending series, which is
why returns are the default). The series is cut chronologically into train / validation / test; the scaler and every
fitted baseline see the training period only, and no window crosses a split boundary.

Baselines, scored on exactly the model's test windows: persistence (random walk: every future price equals the last
one), drift (log price grows by the mean training-period log return per day), moving average (the mean of the last
`ma_window` prices) and a least-squares linear autoregressive model on the model's own inputs.

Test metrics (the `evaluate` hook, also computed for every baseline): `rmse`, `mae` on daily log returns (every step
of the horizon); `price_rmse`, `price_mae` and `price_mape` (percent) on the reconstructed prices;
`directional_accuracy` (the sign of the predicted change from the last price, a no-change forecast scoring 1/2);
`skill` = 1 - rmse / rmse(persistence), the leaderboard's key; and a one-sided Diebold-Mariano test (squared
log-return errors, Harvey-Leybourne-Newbold correction) against persistence: `dm_stat` and `dm_pvalue` (small means
the forecaster beats the random walk). With `folds=K > 1` the test period is also cut into K consecutive folds: skill
and DM p-value are logged per fold (`fold<k>_skill`, `fold<k>_dm_pvalue`) beside the pooled values, and every metric
per fold and forecaster goes into the run's `metrics_by_fold.csv` artifact.
The folds share one fitted model (a fixed forecast origin): retraining per fold would multiply the benchmark's cost by
K, and the question a fold answers, whether the skill holds in each market regime, needs no retraining.
"""
import dataclasses
import hashlib
import io
import warnings
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd

from rnnbench import forecasting
from rnnbench.errors import DataError, UserError
from rnnbench.registry import register_task
from rnnbench.tasks._pipeline import array_dataset, run_shuffle_seed
from rnnbench.spec import InputSpec, OutputSpec, TaskSpec

TARGETS = ("log_return", "scaled_price")
DUPLICATE_RULES = ("error", "first", "last")
BASELINES = ("persistence", "drift", "moving_average", "linear_ar")
# Per-fold metrics logged with the run (every metric per fold is in the metrics_by_fold.csv artifact); few, because each
# one becomes K report columns.
FOLD_METRICS = ("skill", "dm_pvalue")
SIGNIFICANCE_LEVEL = 0.05
# Lines quoted in an error message; more would bury the fix.
MAX_QUOTED = 5
# A predicted price at or below zero has no log return; this floor keeps the metrics finite (and very bad).
PRICE_FLOOR = 1e-12


# ---------------------------------------------------------------------------------------------------------------------
# Reading and cleaning the CSV.


@dataclasses.dataclass(frozen=True)
class PriceHistory:
    """A cleaned daily price series: dates increasing strictly, prices positive and finite."""

    path: Path
    sha256: str
    dates: np.ndarray  # datetime64[ns], (n,)
    prices: np.ndarray  # float64, (n,)
    features: np.ndarray  # float64, (n, len(feature_names)), all >= 0
    feature_names: tuple
    cleaning: dict  # counts of what cleaning did, logged with every run


def _quote_lines(frame_index, values) -> str:
    quoted = [f"line {int(i) + 2} ({v!r})" for i, v in list(zip(frame_index, values))[:MAX_QUOTED]]
    more = len(frame_index) - MAX_QUOTED
    return ", ".join(quoted) + (f" and {more} more" if more > 0 else "")


def _parse_day(value: Optional[str], option: str) -> Optional[pd.Timestamp]:
    if value is None or value == "":
        return None
    try:
        return pd.Timestamp(value)
    except (ValueError, TypeError):
        raise UserError(f"task.{option}={value!r} is not a date; use ISO format, e.g. 1990-01-31") from None


def read_price_history(
    path,
    *,
    date_column: str = "Date",
    price_column: str = "Close",
    feature_columns=(),
    duplicates: str = "error",
    start_date: Optional[str] = None,
    end_date: Optional[str] = None,
    date_format: Optional[str] = None,
) -> PriceHistory:
    """Reads and cleans a price CSV by the rules in the module docstring; DataError names the file, problem and fix."""
    if duplicates not in DUPLICATE_RULES:
        raise UserError(f"task.duplicates={duplicates!r} is not a rule; choose one of {', '.join(DUPLICATE_RULES)}")
    if path is None or str(path) == "":
        raise DataError(
            "task 'stock' needs a CSV of daily prices and has no download: pass --set task.data_file=PATH "
            f"(a file with a {date_column!r} column and a {price_column!r} column), or set RNNBENCH_DATA_DIR to the "
            "datasets folder holding stocks/sp500_GSPC_daily_1927_2023.csv for the reference experiment"
        )
    path = Path(path)
    first, last = _parse_day(start_date, "start_date"), _parse_day(end_date, "end_date")
    if first is not None and last is not None and first > last:
        raise UserError(f"task.start_date={start_date} is after task.end_date={end_date}; swap them")
    feature_columns = tuple(feature_columns)
    for column in feature_columns:
        if column in (date_column, price_column):
            raise UserError(f"task.feature_columns lists {column!r}, which is already the date or price column")

    if not path.exists():
        raise DataError(f"{path}: no such file; pass an existing CSV with --set task.data_file=PATH")
    if path.is_dir():
        raise DataError(f"{path} is a folder; task.data_file must be a CSV file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror}); check its permissions") from None
    if not raw.strip():
        raise DataError(f"{path} is empty; it needs a header line with {date_column!r} and {price_column!r} and rows")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path} is not UTF-8 text (byte 0x{raw[error.start]:02x} at offset {error.start}); "
            "re-save it as UTF-8 CSV"
        ) from None
    try:
        # Everything as text so that conversion, and its failures, are explicit; blank lines are kept so that row
        # numbers map onto line numbers for the error messages.
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataError(f"{path} is not a readable CSV ({str(error).strip()}); fix the file's format") from None

    missing = [c for c in (date_column, price_column) + feature_columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path} has no column {', '.join(map(repr, missing))} "
            f"(its columns: {', '.join(map(repr, frame.columns))}); "
            "name the right ones with --set task.date_column=..., task.price_column=... or task.feature_columns=..."
        )
    if frame.empty:
        raise DataError(f"{path} has a header but no data rows")
    rows_read = len(frame)

    dates = _parse_dates(path, frame[date_column], date_format)
    bad = dates.isna()
    if bad.any():
        raise DataError(
            f"{path}: {int(bad.sum())} rows have no readable date in {date_column!r}: "
            f"{_quote_lines(frame.index[bad], frame[date_column][bad])}; fix or delete those rows"
            + ("" if date_format else ", or give the format with --set task.date_format=%Y-%m-%d")
        )
    frame = frame.assign(_date=dates)

    out_of_order = int((frame["_date"].diff() < pd.Timedelta(0)).sum())
    if out_of_order:
        warnings.warn(f"{path}: {out_of_order} rows were out of date order; sorted them by date", stacklevel=2)
        frame = frame.sort_values("_date", kind="stable")

    in_range = pd.Series(True, index=frame.index)
    if first is not None:
        in_range &= frame["_date"] >= first
    if last is not None:
        in_range &= frame["_date"] <= last
    rows_before = int((frame["_date"] < first).sum()) if first is not None else 0
    rows_after = int((frame["_date"] > last).sum()) if last is not None else 0
    frame = frame[in_range]
    if frame.empty:
        raise DataError(
            f"{path}: no rows between start_date={start_date} and end_date={end_date}; the file covers "
            f"{dates.min().date()} to {dates.max().date()}"
        )

    repeated = frame["_date"].duplicated(keep=False)
    duplicates_dropped = 0
    if repeated.any():
        if duplicates == "error":
            raise DataError(
                f"{path}: {int(frame['_date'].duplicated().sum())} duplicate dates: "
                f"{_quote_lines(frame.index[repeated], frame[date_column][repeated])}; delete the extra rows, or pass "
                "--set task.duplicates=first (or last) to keep the first (last) row of each date in file order"
            )
        keep = frame["_date"].duplicated(keep="first" if duplicates == "first" else "last")
        duplicates_dropped = int(keep.sum())
        frame = frame[~keep]

    prices = _numeric_column(path, frame, price_column, positive=True)
    features = np.stack([_numeric_column(path, frame, c, positive=False) for c in feature_columns], axis=1) \
        if feature_columns else np.zeros((len(frame), 0))
    return PriceHistory(
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        dates=frame["_date"].to_numpy(dtype="datetime64[ns]"),
        prices=prices,
        features=features,
        feature_names=feature_columns,
        cleaning={
            "rows_read": rows_read,
            "rows_out_of_order": out_of_order,
            "duplicate_rows_dropped": duplicates_dropped,
            "rows_before_start_date": rows_before,
            "rows_after_end_date": rows_after,
            "rows_used": len(frame),
        },
    )


def _parse_dates(path: Path, column: pd.Series, date_format: Optional[str]) -> pd.Series:
    try:
        dates = pd.to_datetime(column.str.strip(), errors="coerce", format=date_format)
    except (ValueError, TypeError) as error:
        raise DataError(
            f"{path}: cannot read the dates ({error}); fix the date column or set --set task.date_format=..."
        ) from None
    if getattr(dates.dt, "tz", None) is not None:
        # Daily bars are calendar days; a time zone on them only gets in the way of comparing with start_date.
        dates = dates.dt.tz_localize(None)
    return dates


def _numeric_column(path: Path, frame: pd.DataFrame, column: str, positive: bool) -> np.ndarray:
    values = pd.to_numeric(frame[column].str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    missing = ~np.isfinite(values)
    if missing.any():
        raise DataError(
            f"{path}: {int(missing.sum())} rows have a missing or non-numeric {column!r}: "
            f"{_quote_lines(frame.index[missing], frame[column][missing])}; fill or delete those rows, or pick a date "
            "range without them (task.start_date / task.end_date)"
        )
    invalid = values <= 0 if positive else values < 0
    if invalid.any():
        rule = "must be positive (log returns need it)" if positive else "must not be negative"
        raise DataError(
            f"{path}: {int(invalid.sum())} rows where {column!r} {rule}: "
            f"{_quote_lines(frame.index[invalid], frame[column][invalid])}; fix or delete those rows, or pick a date "
            "range without them (task.start_date / task.end_date)"
        )
    return values


# ---------------------------------------------------------------------------------------------------------------------
# Windows, scaling and the conversion of predictions back to prices.


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
        values = np.asarray(scaled_prediction, np.float64).reshape(len(windows), -1)
        values = values * self.scale_std[0] + self.scale_mean[0]
        if self.target == "log_return":
            return windows.last_price[:, None] * np.exp(np.cumsum(values, axis=1))
        return values


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
    prices = history.prices
    log_returns = np.diff(np.log(prices))
    target_series = log_returns if target == "log_return" else prices[1:]
    feature_changes = np.diff(np.log1p(history.features), axis=0)
    steps = np.concatenate([target_series[:, None], feature_changes], axis=1)
    column_names = (target,) + tuple(history.feature_names)

    segments = forecasting.chronological_split(
        len(steps), (1.0 - val_fraction - test_fraction, val_fraction, test_fraction)
    )
    train_steps = steps[segments[0]]
    mean, std = train_steps.mean(axis=0), train_steps.std(axis=0)
    for name, centre, spread in zip(column_names, mean, std):
        # Rounding alone gives a constant series a spread of ~1e-17; scaling by that would blow up the inputs.
        if not spread > 1e-12 * max(1.0, abs(centre)):
            raise DataError(
                f"{history.path}: {name!r} does not change over the training period, so it cannot be scaled; "
                "use a longer date range or drop that column"
            )
    scaled = (steps - mean) / std

    split_windows, periods = [], {}
    for split_name, segment in zip(("train", "val", "test"), segments):
        step_dates = history.dates[1:][segment]
        if len(step_dates):
            periods[split_name] = (str(step_dates[0])[:10], str(step_dates[-1])[:10])
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
        split_windows.append(Windows(x, y, window_prices, prices[future_days], history.dates[future_days]))
    return StockProblem(
        *split_windows,
        target=target,
        scale_mean=mean,
        scale_std=std,
        train_mean_log_return=float(log_returns[segments[0]].mean()),
        periods=periods,
    )


# ---------------------------------------------------------------------------------------------------------------------
# Baselines and scoring, all in price terms so that every forecaster is judged the same way whatever its target.


def baseline_prices(problem: StockProblem, windows: Windows, ma_window: int) -> dict:
    """Baseline name -> (N, horizon) predicted prices on `windows`; the linear model is fitted on training windows."""
    horizon = windows.future_prices.shape[1]
    prices = windows.window_prices[:, :, None]
    log_prices = np.log(prices)
    linear = forecasting.LinearAutoregressive().fit(problem.train.x, problem.train.y)
    return {
        "persistence": forecasting.persistence_forecast(prices, horizon)[:, :, 0].astype(np.float64),
        "drift": np.exp(
            forecasting.drift_forecast(log_prices, horizon, slope=problem.train_mean_log_return)[:, :, 0]
            .astype(np.float64)
        ),
        "moving_average": forecasting.moving_average_forecast(prices, horizon, ma_window)[:, :, 0].astype(np.float64),
        "linear_ar": problem.predicted_prices(linear.predict(windows.x), windows),
    }


def _step_log_returns(last_price: np.ndarray, path: np.ndarray) -> np.ndarray:
    previous = np.concatenate([last_price[:, None], path[:, :-1]], axis=1)
    return np.log(np.maximum(path, PRICE_FLOOR) / np.maximum(previous, PRICE_FLOOR))


def score(windows: Windows, predicted: np.ndarray, *, compare_with_persistence: bool = True) -> dict:
    """Test metrics of one forecaster's (N, horizon) predicted prices on `windows` (see the module docstring)."""
    predicted = np.asarray(predicted, np.float64)
    last = windows.last_price
    actual_returns = _step_log_returns(last, windows.future_prices)
    predicted_returns = _step_log_returns(last, predicted)
    errors = actual_returns - predicted_returns
    # Persistence predicts a zero return, so its return errors are the actual returns.
    persistence_rmse = forecasting.rmse(actual_returns, 0.0)
    metrics = {
        "rmse": forecasting.rmse(actual_returns, predicted_returns),
        "mae": forecasting.mae(actual_returns, predicted_returns),
        "price_rmse": forecasting.rmse(windows.future_prices, predicted),
        "price_mae": forecasting.mae(windows.future_prices, predicted),
        "price_mape": forecasting.mape(windows.future_prices, predicted),
        "directional_accuracy": forecasting.directional_accuracy(last[:, None], windows.future_prices, predicted),
    }
    metrics["skill"] = forecasting.skill(metrics["rmse"], persistence_rmse) if persistence_rmse > 0 else float("nan")
    if compare_with_persistence:
        test = forecasting.diebold_mariano(errors, actual_returns, horizon=errors.shape[1], alternative="less")
        metrics["dm_stat"], metrics["dm_pvalue"] = test.statistic, test.p_value
    return metrics


def score_with_folds(windows: Windows, predicted: np.ndarray, folds: int, **kwargs) -> dict:
    """Pooled metrics plus, with folds > 1, `fold<k>_<metric>` for each consecutive fold of the windows."""
    metrics = score(windows, predicted, **kwargs)
    if folds > 1:
        for k, part in enumerate(forecasting.consecutive_folds(len(windows), folds), start=1):
            fold_metrics = score(_take(windows, part), predicted[part], **kwargs)
            metrics.update({f"fold{k}_{m}": fold_metrics[m] for m in FOLD_METRICS if m in fold_metrics})
    return metrics


def _take(windows: Windows, part: slice) -> Windows:
    return Windows(*(getattr(windows, f.name)[part] for f in dataclasses.fields(Windows)))


def _predict_prices(model, problem: StockProblem, windows: Windows) -> np.ndarray:
    return problem.predicted_prices(model.predict(windows.x, batch_size=1024, verbose=0), windows)


# ---------------------------------------------------------------------------------------------------------------------
# Hooks for the runner.


def _validation_skill_callback(problem: StockProblem):
    import keras

    class ValidationSkill(keras.callbacks.Callback):
        """Adds `skill` on the validation split to each epoch's logs, so the runner logs `val_skill` per epoch."""

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                predicted = _predict_prices(self.model, problem, problem.val)
                logs["val_skill"] = score(problem.val, predicted, compare_with_persistence=False)["skill"]

    return ValidationSkill()


def _write_artifacts(problem: StockProblem, ma_window: int, folds: int) -> Callable:
    def artifacts(model, out_dir: Path) -> None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        test = problem.test
        predicted = _predict_prices(model, problem, test)
        baselines = baseline_prices(problem, test, ma_window)
        horizon = predicted.shape[1]

        table = {"target_date": pd.to_datetime(test.target_dates[:, 0]), "last_price": test.last_price}
        for j in range(horizon):
            table[f"actual_price_step{j + 1}"] = test.future_prices[:, j]
            table[f"predicted_price_step{j + 1}"] = predicted[:, j]
        pd.DataFrame(table).to_csv(out_dir / "test_predictions.csv", index=False)

        parts = [("pooled", slice(0, len(test)))]
        if folds > 1:
            parts += [(str(k), part) for k, part in enumerate(forecasting.consecutive_folds(len(test), folds), 1)]
        rows = []
        for name, prices in {model.name: predicted, **baselines}.items():
            for fold, part in parts:
                sub = _take(test, part)
                metrics = score(sub, prices[part], compare_with_persistence=name != "persistence")
                rows.append({"forecaster": name, "fold": fold, "first_target_date": str(sub.target_dates[0, 0])[:10],
                             "last_target_date": str(sub.target_dates[-1, 0])[:10], **metrics})
        pd.DataFrame(rows).to_csv(out_dir / "metrics_by_fold.csv", index=False)

        _plot_forecast(out_dir / "forecast_vs_actual.png", test, predicted, baselines["persistence"], model.name)
        _plot_residuals(out_dir / "residuals.png", test, predicted, model.name)

    return artifacts


def _plot_forecast(path: Path, test: Windows, predicted, persistence, model_name: str) -> None:
    from matplotlib.figure import Figure  # the object API needs no backend or global pyplot state

    dates = pd.to_datetime(test.target_dates[:, 0])
    actual_returns = _step_log_returns(test.last_price, test.future_prices)[:, 0]
    predicted_returns = _step_log_returns(test.last_price, predicted)[:, 0]
    recent = slice(max(0, len(dates) - 120), len(dates))

    figure = Figure(figsize=(11, 10), layout="constrained")
    top, middle, bottom = figure.subplots(3, 1)
    top.plot(dates, test.future_prices[:, 0], label="actual", linewidth=1.0, color="black")
    top.plot(dates, predicted[:, 0], label=f"{model_name} (1 day ahead)", linewidth=0.8, color="tab:red", alpha=0.8)
    top.set_title("Test period: price, actual against 1-day-ahead forecast")
    top.set_ylabel("price")
    top.legend()
    middle.plot(dates[recent], test.future_prices[recent, 0], label="actual", color="black", marker=".")
    middle.plot(dates[recent], predicted[recent, 0], label=model_name, color="tab:red", marker=".")
    middle.plot(dates[recent], persistence[recent, 0], label="persistence", color="tab:gray", linestyle="--")
    middle.set_title("Last 120 trading days")
    middle.set_ylabel("price")
    middle.legend()
    bottom.plot(dates[recent], actual_returns[recent], label="actual", color="black", marker=".")
    bottom.plot(dates[recent], predicted_returns[recent], label=model_name, color="tab:red", marker=".")
    bottom.axhline(0.0, color="tab:gray", linestyle="--", linewidth=0.8, label="persistence (0)")
    bottom.set_title("Last 120 trading days: daily log return, where any skill would have to show")
    bottom.set_ylabel("log return")
    bottom.legend()
    figure.savefig(path, dpi=110)


def _plot_residuals(path: Path, test: Windows, predicted, model_name: str) -> None:
    from matplotlib.figure import Figure

    dates = pd.to_datetime(test.target_dates[:, 0])
    actual_returns = _step_log_returns(test.last_price, test.future_prices)[:, 0]
    residuals = actual_returns - _step_log_returns(test.last_price, predicted)[:, 0]
    window = min(250, max(2, len(residuals) // 4))
    rolling_skill = 1.0 - np.sqrt(
        pd.Series(residuals**2).rolling(window).mean() / pd.Series(actual_returns**2).rolling(window).mean()
    )

    figure = Figure(figsize=(11, 10), layout="constrained")
    top, middle, bottom = figure.subplots(3, 1)
    top.plot(dates, residuals, linewidth=0.6, color="tab:red")
    top.axhline(0.0, color="black", linewidth=0.8)
    top.set_title(f"{model_name}: residual of the 1-day-ahead log return over the test period")
    top.set_ylabel("actual - predicted")
    bins = np.linspace(*np.percentile(np.concatenate([residuals, actual_returns]), [0.5, 99.5]), 80)
    middle.hist(actual_returns, bins=bins, alpha=0.5, color="tab:gray", label="persistence (= actual return)")
    middle.hist(residuals, bins=bins, alpha=0.5, color="tab:red", label=model_name)
    middle.set_title("Residual distribution")
    middle.legend()
    bottom.plot(dates, rolling_skill, color="tab:blue")
    bottom.axhline(0.0, color="black", linewidth=0.8)
    bottom.set_title(f"Rolling {window}-day skill against persistence (above 0: better than the random walk)")
    bottom.set_ylabel("skill")
    figure.savefig(path, dpi=110)


def _summary_column(summary: pd.DataFrame, metric: str, statistic: str) -> Optional[str]:
    """The report names test metrics `test_<metric>_<statistic>`; a bare `<metric>_<statistic>` is accepted too."""
    for column in (f"test_{metric}_{statistic}", f"{metric}_{statistic}"):
        if column in summary.columns:
            return column
    return None


def report_notes(summary: pd.DataFrame) -> str:
    """Markdown stating plainly whether any recurrent model beats persistence with statistical significance.

    `summary` has one row per model or baseline: model, kind ('model' / 'baseline'), test_<metric>_mean / _std / _ci95,
    params, runs. A model counts as beating persistence when its mean skill is positive and its one-sided
    Diebold-Mariano p-value, averaged over seeds, is below 0.05 / (number of models): a Bonferroni correction, because
    among many models one clears 0.05 by luck alone.
    """
    skill_column = _summary_column(summary, "skill", "mean")
    pvalue_column = _summary_column(summary, "dm_pvalue", "mean")
    models = summary[summary["kind"] == "model"] if "kind" in summary.columns else summary.iloc[0:0]
    if models.empty or skill_column is None or pvalue_column is None:
        return ("### Does any recurrent model beat persistence?\n\nCannot say: the summary has no recurrent model "
                "with `skill` and `dm_pvalue` results.")
    threshold = SIGNIFICANCE_LEVEL / len(models)

    def cell(row, metric, digits):
        mean_column, ci_column = _summary_column(summary, metric, "mean"), _summary_column(summary, metric, "ci95")
        mean = row[mean_column] if mean_column else float("nan")
        if pd.isna(mean):
            return "n/a"
        ci = row[ci_column] if ci_column else float("nan")
        return f"{mean:.{digits}f}" + ("" if pd.isna(ci) or ci == 0 else f" ± {ci:.{digits}f}")

    winners, lines = [], []
    for _, row in models.sort_values(skill_column, ascending=False).iterrows():
        p, s = row[pvalue_column], row[skill_column]
        if pd.notna(p) and pd.notna(s) and p < threshold and s > 0:
            winners.append(row["model"])
            verdict = "**beats persistence**"
        elif pd.notna(s) and s <= 0:
            verdict = "no better than persistence"
        else:
            verdict = "better on average, not significant"
        runs = int(row["runs"]) if "runs" in row.index and pd.notna(row["runs"]) else "?"
        lines.append(f"| {row['model']} | {cell(row, 'skill', 4)} | {cell(row, 'dm_pvalue', 3)} | {runs} | {verdict} |")

    if winners:
        answer = (f"**Yes: {', '.join(winners)} beat{'s' if len(winners) == 1 else ''} persistence with statistical "
                  "significance.** Before believing it, check that the skill holds in every test fold and across "
                  "seeds (the ± columns): daily returns are close to unpredictable, and published evaluations mostly "
                  "find that machine-learning forecasters do not beat simple benchmarks (Makridakis, Spiliotis and "
                  "Assimakopoulos 2018).")
    else:
        answer = ("**No: no recurrent model beats persistence (the random walk) with statistical significance.** "
                  "This is the usual finding: published evaluations mostly find that machine-learning forecasters do "
                  "not beat simple statistical benchmarks (Makridakis, Spiliotis and Assimakopoulos 2018), and daily "
                  "returns are close to unpredictable.")
    text = [
        "### Does any recurrent model beat persistence?",
        "",
        answer,
        "",
        "Test: one-sided Diebold-Mariano test of squared daily log-return errors against persistence (Harvey-Leybourne-"
        f"Newbold correction), p-value averaged over seeds, significance level {SIGNIFICANCE_LEVEL} / {len(models)} "
        f"models = {threshold:.4f} (Bonferroni). Skill = 1 - RMSE / RMSE(persistence) on daily log returns.",
        "",
        "| model | skill | DM p-value | runs | verdict |",
        "| --- | --- | --- | --- | --- |",
        *lines,
    ]
    baselines = summary[summary["kind"] == "baseline"]
    if not baselines.empty:
        described = []
        for _, row in baselines.iterrows():
            p = row[pvalue_column]
            described.append(f"{row['model']} {cell(row, 'skill', 4)}" + ("" if pd.isna(p) else f" (p = {p:.3f})"))
        text += ["", "Baselines' skill (deterministic, one run each): " + "; ".join(described) + "."]
    return "\n".join(text)


# ---------------------------------------------------------------------------------------------------------------------
# The loader.


@register_task("stock")
def load(
    *,
    batch_size: int = 32,
    seed: int = 0,
    data_file: Optional[str] = None,
    date_column: str = "Date",
    price_column: str = "Close",
    feature_columns: str = "",
    start_date: Optional[str] = None,
    end_date: Optional[str] = None,
    date_format: Optional[str] = None,
    duplicates: str = "error",
    target: str = "log_return",
    input_len: int = 30,
    horizon: int = 1,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    folds: int = 1,
    ma_window: int = 5,
) -> TaskSpec:
    """Daily price forecasting from a CSV (see the module docstring).

    Args:
      data_file: the CSV; required (there is no download).
      date_column, price_column: column names; feature_columns: comma-separated extra numeric input columns.
      start_date, end_date: inclusive ISO dates to keep; date_format: strptime format when dates are not ISO.
      duplicates: "error", "first" or "last": what to do with repeated dates.
      target: "log_return" or "scaled_price".
      input_len, horizon: days read, days predicted.
      val_fraction, test_fraction: chronological split (train gets the rest).
      folds: consecutive test folds reported separately (1: pooled only).
      ma_window: days averaged by the moving-average baseline (at most input_len + 1).
    """
    import keras

    for option, value, low in (("batch_size", batch_size, 1), ("input_len", input_len, 1), ("horizon", horizon, 1),
                               ("folds", folds, 1), ("ma_window", ma_window, 1)):
        if value < low:
            raise UserError(f"task.{option} must be >= {low}, got {value}")
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise UserError(
            f"task.val_fraction={val_fraction} and task.test_fraction={test_fraction} must be in (0, 1) and leave "
            "room for training data (their sum below 1)"
        )
    if ma_window > input_len + 1:
        raise UserError(
            f"task.ma_window={ma_window} reaches past the input window (input_len + 1 = {input_len + 1} prices); "
            "shorten it or lengthen input_len"
        )
    features = tuple(c.strip() for c in feature_columns.split(",") if c.strip())
    history = read_price_history(
        data_file, date_column=date_column, price_column=price_column, feature_columns=features,
        duplicates=duplicates, start_date=start_date, end_date=end_date, date_format=date_format,
    )
    problem = prepare_problem(
        history, target=target, input_len=input_len, horizon=horizon, val_fraction=val_fraction,
        test_fraction=test_fraction,
    )
    if len(problem.test) // folds < 2 * horizon:
        # The Diebold-Mariano variance needs more origins per fold than the horizon's overlapping lags.
        raise UserError(
            f"task.folds={folds} leaves {len(problem.test) // folds} test windows per fold, fewer than 2 * horizon = "
            f"{2 * horizon}; use fewer folds, a shorter horizon or a larger test_fraction"
        )

    def dataset(windows: Windows, shuffle: bool):
        return array_dataset(windows.x, windows.y, batch_size, shuffle_seed=seed if shuffle else None)

    test_baselines = baseline_prices(problem, problem.test, ma_window)
    baselines = {
        name: score_with_folds(problem.test, prices, folds, compare_with_persistence=name != "persistence")
        for name, prices in test_baselines.items()
    }

    def evaluate(model) -> dict:
        return score_with_folds(problem.test, _predict_prices(model, problem, problem.test), folds)

    options = dict(
        batch_size=batch_size, seed=seed, data_file=data_file, date_column=date_column, price_column=price_column,
        feature_columns=feature_columns, start_date=start_date, end_date=end_date, date_format=date_format,
        duplicates=duplicates, target=target, input_len=input_len, horizon=horizon, val_fraction=val_fraction,
        test_fraction=test_fraction, folds=folds, ma_window=ma_window,
    )
    dataset_identity = {
        "name": history.path.name,
        "sha256": history.sha256,
        "first_date": str(history.dates[0])[:10],
        "last_date": str(history.dates[-1])[:10],
        "days": len(history.prices),
        "train_windows": len(problem.train),
        "val_windows": len(problem.val),
        "test_windows": len(problem.test),
    }
    notes = {f"cleaning_{k}": v for k, v in history.cleaning.items()}
    for split_name, (first, last) in problem.periods.items():
        notes[f"{split_name}_period"] = f"{first}..{last}"
    if folds > 1:
        for k, part in enumerate(forecasting.consecutive_folds(len(problem.test), folds), start=1):
            dates = problem.test.target_dates[part, 0]
            notes[f"fold{k}_target_period"] = f"{str(dates[0])[:10]}..{str(dates[-1])[:10]}"
    return TaskSpec(
        name="stock",
        inputs=InputSpec(kind="features", feature_dim=1 + len(features), length=input_len),
        outputs=OutputSpec(head="forecast", horizon=horizon, targets=1),
        train=dataset(problem.train, shuffle=True),
        train_for=lambda run_seed: array_dataset(problem.train.x, problem.train.y, batch_size,
                                                 shuffle_seed=run_shuffle_seed(seed, run_seed)),
        val=dataset(problem.val, shuffle=False),
        test=dataset(problem.test, shuffle=False),
        loss=keras.losses.MeanSquaredError(),
        metrics=[keras.metrics.MeanAbsoluteError(name="scaled_mae")],
        primary_metric="skill",
        higher_is_better=True,
        monitor="val_loss",
        baselines=baselines,
        dataset=dataset_identity,
        options=options,
        evaluate=evaluate,
        callbacks=lambda: [_validation_skill_callback(problem)],
        artifacts=_write_artifacts(problem, ma_window, folds),
        notes=notes,
    )
