"""The files each stock run leaves: test predictions, metrics per fold and forecaster, and two plots of the test period.

  test_predictions.csv    target date, last price, actual and predicted price per step of the horizon
  metrics_by_fold.csv     every metric of the model and each baseline, pooled and per fold
  forecast_vs_actual.png  the 1-day-ahead forecast against the price, the last 120 days and their log returns
  residuals.png           residuals over time, their distribution, and the rolling skill against persistence
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from rnnbench.tasks.stock.baselines import baseline_prices
from rnnbench.tasks.stock.evaluation import fold_parts, predict_prices, score, step_log_returns
from rnnbench.tasks.stock.problem import StockProblem, Windows


def artifacts_writer(problem: StockProblem, ma_window: int, folds: int) -> Callable:
    """The spec's `artifacts(model, out_dir)` hook."""
    def artifacts(model, out_dir: Path) -> None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        test = problem.test
        predicted = predict_prices(model, problem, test)
        baselines = baseline_prices(problem, test, ma_window)
        _write_predictions(out_dir / "test_predictions.csv", test, predicted)
        _write_metrics_by_fold(out_dir / "metrics_by_fold.csv", test, {model.name: predicted, **baselines}, folds)
        _plot_forecast(out_dir / "forecast_vs_actual.png", test, predicted, baselines["persistence"], model.name)
        _plot_residuals(out_dir / "residuals.png", test, predicted, model.name)

    return artifacts


def _write_predictions(path: Path, test: Windows, predicted: np.ndarray) -> None:
    table = {"target_date": pd.to_datetime(test.target_dates[:, 0]), "last_price": test.last_price}
    for j in range(predicted.shape[1]):
        table[f"actual_price_step{j + 1}"] = test.future_prices[:, j]
        table[f"predicted_price_step{j + 1}"] = predicted[:, j]
    pd.DataFrame(table).to_csv(path, index=False)


def _write_metrics_by_fold(path: Path, test: Windows, forecasts: dict, folds: int) -> None:
    parts = [("pooled", slice(0, len(test)))] + [(str(k), part) for k, part in fold_parts(test, folds)]
    rows = []
    for name, prices in forecasts.items():
        for fold, part in parts:
            sub = test.take(part)
            metrics = score(sub, prices[part], compare_with_persistence=name != "persistence")
            rows.append({"forecaster": name, "fold": fold, "first_target_date": str(sub.target_dates[0, 0])[:10],
                         "last_target_date": str(sub.target_dates[-1, 0])[:10], **metrics})
    pd.DataFrame(rows).to_csv(path, index=False)


def _plot_forecast(path: Path, test: Windows, predicted, persistence, model_name: str) -> None:
    from matplotlib.figure import Figure  # the object API needs no backend or global pyplot state

    dates = pd.to_datetime(test.target_dates[:, 0])
    actual_returns = step_log_returns(test.last_price, test.future_prices)[:, 0]
    predicted_returns = step_log_returns(test.last_price, predicted)[:, 0]
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
    actual_returns = step_log_returns(test.last_price, test.future_prices)[:, 0]
    residuals = actual_returns - step_log_returns(test.last_price, predicted)[:, 0]
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
