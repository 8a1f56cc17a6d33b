"""The stock task's baselines, scored on exactly the model's test windows and in price terms, like the models.

Persistence (random walk: every future price equals the last one), drift (log price grows by the mean training-period
log return per day), moving average (the mean of the last `ma_window` prices) and a least-squares linear
autoregressive model on the model's own inputs, fitted on the training windows only.
"""
from __future__ import annotations

import numpy as np

from rnnbench import forecasting
from rnnbench.tasks.stock.problem import StockProblem, Windows

BASELINES = ("persistence", "drift", "moving_average", "linear_ar")


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
