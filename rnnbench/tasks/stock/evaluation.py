"""Scoring a forecaster's predicted prices, pooled and per walk-forward fold, and the per-epoch validation skill.

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
from __future__ import annotations

import numpy as np

from rnnbench import forecasting
from rnnbench.tasks.stock.problem import StockProblem, Windows

# Per-fold metrics logged with the run (every metric per fold is in the metrics_by_fold.csv artifact); few, because each
# one becomes K report columns.
FOLD_METRICS = ("skill", "dm_pvalue")
# A predicted price at or below zero has no log return; this floor keeps the metrics finite (and very bad).
PRICE_FLOOR = 1e-12


def step_log_returns(last_price: np.ndarray, path: np.ndarray) -> np.ndarray:
    """(N, horizon) log return of each step of `path`, the first one from `last_price`."""
    previous = np.concatenate([last_price[:, None], path[:, :-1]], axis=1)
    return np.log(np.maximum(path, PRICE_FLOOR) / np.maximum(previous, PRICE_FLOOR))


def score(windows: Windows, predicted: np.ndarray, *, compare_with_persistence: bool = True) -> dict:
    """Test metrics of one forecaster's (N, horizon) predicted prices on `windows` (see the module docstring)."""
    predicted = np.asarray(predicted, np.float64)
    last = windows.last_price
    actual_returns = step_log_returns(last, windows.future_prices)
    predicted_returns = step_log_returns(last, predicted)
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


def fold_parts(windows: Windows, folds: int) -> list[tuple[int, slice]]:
    """(k, slice) of each consecutive fold, k from 1; none with folds = 1 (pooled only)."""
    if folds <= 1:
        return []
    return list(enumerate(forecasting.consecutive_folds(len(windows), folds), start=1))


def score_with_folds(windows: Windows, predicted: np.ndarray, folds: int, **kwargs) -> dict:
    """Pooled metrics plus, with folds > 1, `fold<k>_<metric>` for each consecutive fold of the windows."""
    metrics = score(windows, predicted, **kwargs)
    for k, part in fold_parts(windows, folds):
        fold_metrics = score(windows.take(part), predicted[part], **kwargs)
        metrics.update({f"fold{k}_{m}": fold_metrics[m] for m in FOLD_METRICS if m in fold_metrics})
    return metrics


def predict_prices(model, problem: StockProblem, windows: Windows) -> np.ndarray:
    """(N, horizon) prices a Keras model forecasts on `windows`."""
    return problem.predicted_prices(model.predict(windows.x, batch_size=1024, verbose=0), windows)


def validation_skill_callback(problem: StockProblem):
    """A Keras callback adding `skill` on the validation split to each epoch's logs (the runner logs `val_skill`)."""
    import keras

    class ValidationSkill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                predicted = predict_prices(self.model, problem, problem.val)
                logs["val_skill"] = score(problem.val, predicted, compare_with_persistence=False)["skill"]

    return ValidationSkill()
