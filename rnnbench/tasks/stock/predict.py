"""Forecasting from a new price CSV with a logged stock run (`rnnbench predict`): the task's `predict` hook, and the
artifact that makes it possible, `task/scaling.json` (the columns read, the target, the window and the scaler fitted
on the run's training period).

The CSV is read and cleaned by the run's rules (columns, date format, duplicates; no date range: new data lies after
the run's), its last `input_len` steps are scaled with the run's scaler, and the model's next `horizon` steps are
turned back into log returns and prices from the CSV's last price.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rnnbench.errors import DataError, UserError
from rnnbench.tasks.stock.prices import read_price_history
from rnnbench.tasks.stock.problem import TARGETS, model_steps, prices_from_scaled

# The runner stores the files of the `artifacts` hook under "task/" in the run's artifacts.
SCALING_ARTIFACT = "task/scaling.json"
SCALING_FORMAT = "rnnbench.stock.scaling/1"


def save_scaling(path: Path, options, problem) -> None:
    """What turns a price CSV into the run's model input (`options`: StockOptions, `problem`: its StockProblem)."""
    payload = {"format": SCALING_FORMAT, "date_column": options.date_column, "price_column": options.price_column,
               "feature_columns": list(options.feature_names), "date_format": options.date_format,
               "duplicates": options.duplicates, "target": problem.target, "input_len": options.input_len,
               "horizon": options.horizon, "scale_mean": [float(v) for v in problem.scale_mean],
               "scale_std": [float(v) for v in problem.scale_std], "train_period": list(problem.periods["train"])}
    Path(path).write_text(json.dumps(payload, indent=1), encoding="utf-8")


def load_scaling(path: Path) -> dict:
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        if payload.get("format") != SCALING_FORMAT:
            raise ValueError(f"format is {payload.get('format')!r}, expected {SCALING_FORMAT!r}")
        columns = 1 + len(payload["feature_columns"])
        if payload["target"] not in TARGETS or len(payload["scale_mean"]) != columns \
                or len(payload["scale_std"]) != columns or int(payload["input_len"]) < 1:
            raise ValueError("target, window or scaler do not fit together")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise DataError(f"{path}: not a stock scaling file ({error}); use the scaling.json that the stock task "
                        "logged with the run") from None
    return payload


def _check_columns(path: Path, settings: dict, run_id: str) -> None:
    """The run's columns must all be in the CSV's header; the file's other problems are read_price_history's."""
    import pandas as pd

    try:
        header = list(pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError):
        return  # not a readable CSV: read_price_history says why
    wanted = [settings["date_column"], settings["price_column"], *settings["feature_columns"]]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise UserError(f"{path} has no column {', '.join(map(repr, missing))} (its columns: "
                        f"{', '.join(map(repr, header))}); run {run_id} reads {', '.join(map(repr, wanted))}: rename "
                        "the file's columns to those")


def forecast(model, settings: dict, path: Path, run_id: str) -> list[str]:
    """Lines: the CSV's last day, then per step ahead the forecast log return and price."""
    history = read_price_history(path, date_column=settings["date_column"], price_column=settings["price_column"],
                                 feature_columns=settings["feature_columns"], duplicates=settings["duplicates"],
                                 date_format=settings["date_format"])
    input_len, horizon = int(settings["input_len"]), int(settings["horizon"])
    if len(history.prices) < input_len + 1:
        raise UserError(f"{path}: {len(history.prices)} trading days, but run {run_id} reads the last input_len + 1 "
                        f"= {input_len + 1} (input_len returns need one day more); give a longer price history")
    mean, std = np.asarray(settings["scale_mean"]), np.asarray(settings["scale_std"])
    x = ((model_steps(history, settings["target"])[-input_len:] - mean) / std)[None].astype(np.float32)
    last_price = history.prices[-1:]
    prices = prices_from_scaled(model.predict_on_batch(x), last_price, mean, std, settings["target"])[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.diff(np.log(np.concatenate([last_price, prices])))
    lines = [f"{path}: last day {str(history.dates[-1])[:10]}, price {last_price[0]:.4f}; the next {horizon} "
             f"trading days, from its last {input_len + 1} days:"]
    lines += [f"  day +{k}: log return {r:+.6f}, price {p:.4f}" for k, (r, p) in enumerate(zip(returns, prices), 1)]
    return lines


def predict_from_run(run_id: str, inputs: list[str]) -> list[str]:
    """Per price CSV: its last day and the run's `horizon` forecasts."""
    from rnnbench import tracking

    absent = [item for item in inputs if not Path(item).is_file()]
    if absent:
        raise UserError(f"{absent[0]}: no such file; give the path of a price CSV")
    scaling_path = tracking.download_artifact(
        run_id, SCALING_ARTIFACT,
        added_later="runs logged before the stock task kept its scaler cannot forecast new prices")
    settings = load_scaling(scaling_path)
    for item in inputs:
        _check_columns(Path(item), settings, run_id)  # a bad file is reported before the model is loaded
    model = tracking.load_model(run_id)
    return [line for item in inputs for line in forecast(model, settings, Path(item), run_id)]
