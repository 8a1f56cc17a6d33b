"""Stock-price forecasting on a CSV of daily prices (task "stock"), with honest baselines and a significance test.

There is no download: pass the file with `--set task.data_file=PATH`. From the last `input_len` trading days the model
predicts the next `horizon` days; its skill against the random walk is tested with Diebold-Mariano, per fold of the
test period. This package:

  prices.py      reading and cleaning the CSV (sorting, duplicate dates, date range, refused rows)
  problem.py     chronological splits, the scaler fitted on the training period, windows, predictions back to prices
  baselines.py   persistence, drift, moving average and linear AR
  evaluation.py  the test metrics, pooled and per walk-forward fold, and the per-epoch validation skill
  artifacts.py   the files each run leaves (predictions, metrics by fold, plots)
  report.py      the report's verdict: does any recurrent model beat persistence?
  predict.py     forecasts from a new price CSV with a logged run (`rnnbench predict`), and its scaling.json
  (here)         the options and the loader
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

from rnnbench.errors import UserError
from rnnbench.options import as_dict, option
from rnnbench.pipeline import array_dataset, run_shuffle_seed
from rnnbench.registry import register_task
from rnnbench.spec import InputSpec, OutputSpec, TaskSpec
from rnnbench.tasks.stock.artifacts import artifacts_writer
from rnnbench.tasks.stock.baselines import BASELINES, baseline_prices
from rnnbench.tasks.stock.evaluation import (FOLD_METRICS, PRICE_FLOOR, fold_parts, predict_prices, score,
                                             score_with_folds, validation_skill_callback)
from rnnbench.tasks.stock.predict import predict_from_run, save_scaling
from rnnbench.tasks.stock.prices import DUPLICATE_RULES, PriceHistory, read_price_history
from rnnbench.tasks.stock.problem import TARGETS, StockProblem, Windows, prepare_problem
from rnnbench.tasks.stock.report import SIGNIFICANCE_LEVEL, report_notes

__all__ = [
    "BASELINES", "DUPLICATE_RULES", "FOLD_METRICS", "PRICE_FLOOR", "SIGNIFICANCE_LEVEL", "TARGETS", "PriceHistory",
    "StockOptions", "StockProblem", "Windows", "baseline_prices", "load", "prepare_problem", "read_price_history",
    "report_notes", "score", "score_with_folds",
]


@dataclasses.dataclass(frozen=True)
class StockOptions:
    """The stock task's options, as `rnnbench list --task stock` prints them."""

    seed: int = option(0, "shuffles the training windows (the data seed, not the model seed)")
    data_file: Optional[str] = option(None, "the CSV of daily prices; required (there is no download)", path=True)
    date_column: str = option("Date", "the date column's name")
    price_column: str = option("Close", "the price column's name")
    feature_columns: str = option("", "comma-separated extra numeric input columns (e.g. Volume), each entering as "
                                      "its day-on-day change log(1 + v_t) - log(1 + v_t-1)")
    start_date: Optional[str] = option(None, "first day to keep, inclusive (ISO date); only kept rows are validated")
    end_date: Optional[str] = option(None, "last day to keep, inclusive (ISO date)")
    date_format: Optional[str] = option(None, "strptime format when dates are not ISO, e.g. %d/%m/%Y")
    duplicates: str = option("error", "what to do with repeated dates: refuse them, or keep the first or the last "
                                      "row of each date in file order", choices=DUPLICATE_RULES)
    target: str = option("log_return", "what the model predicts, z-scored: the daily log return or the price",
                         choices=TARGETS)
    input_len: int = option(30, "trading days read", minimum=1)
    horizon: int = option(1, "trading days predicted", minimum=1)
    val_fraction: float = option(0.15, "the validation part of the chronological split, after the training part; "
                                       "in (0, 1)")
    test_fraction: float = option(0.15, "the test part, the end of the series; in (0, 1), its sum with val_fraction "
                                        "below 1; no window crosses a boundary")
    folds: int = option(1, "consecutive test folds reported separately (1: pooled only)", minimum=1)
    ma_window: int = option(5, "days averaged by the moving-average baseline (at most input_len + 1)", minimum=1)

    def __post_init__(self):
        val_fraction, test_fraction = self.val_fraction, self.test_fraction
        if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
            raise UserError(
                f"task.val_fraction={val_fraction} and task.test_fraction={test_fraction} must be in (0, 1) and leave "
                "room for training data (their sum below 1)"
            )
        if self.ma_window > self.input_len + 1:
            raise UserError(
                f"task.ma_window={self.ma_window} reaches past the input window (input_len + 1 = "
                f"{self.input_len + 1} prices); shorten it or lengthen input_len"
            )

    @property
    def feature_names(self) -> tuple:
        return tuple(c.strip() for c in self.feature_columns.split(",") if c.strip())


@register_task("stock", options=StockOptions, report_notes=report_notes, predict=predict_from_run)
def load(options: StockOptions, *, batch_size: int = 32) -> TaskSpec:
    """Daily price forecasting from a CSV: the last `input_len` days predict the next `horizon` days."""
    import keras

    seed, folds, horizon = options.seed, options.folds, options.horizon
    history = read_price_history(
        options.data_file, date_column=options.date_column, price_column=options.price_column,
        feature_columns=options.feature_names, duplicates=options.duplicates, start_date=options.start_date,
        end_date=options.end_date, date_format=options.date_format,
    )
    problem = prepare_problem(
        history, target=options.target, input_len=options.input_len, horizon=horizon,
        val_fraction=options.val_fraction, test_fraction=options.test_fraction,
    )
    if len(problem.test) // folds < 2 * horizon:
        # The Diebold-Mariano variance needs more origins per fold than the horizon's overlapping lags.
        raise UserError(
            f"task.folds={folds} leaves {len(problem.test) // folds} test windows per fold, fewer than 2 * horizon = "
            f"{2 * horizon}; use fewer folds, a shorter horizon or a larger test_fraction"
        )

    baselines = {
        name: score_with_folds(problem.test, prices, folds, compare_with_persistence=name != "persistence")
        for name, prices in baseline_prices(problem, problem.test, options.ma_window).items()
    }

    def evaluate(model) -> dict:
        return score_with_folds(problem.test, predict_prices(model, problem, problem.test), folds)

    write_files = artifacts_writer(problem, options.ma_window, folds)

    def artifacts(model, out_dir) -> None:
        write_files(model, out_dir)
        save_scaling(Path(out_dir) / "scaling.json", options, problem)

    return TaskSpec(
        name="stock",
        inputs=InputSpec(kind="features", feature_dim=1 + len(options.feature_names), length=options.input_len),
        outputs=OutputSpec(head="forecast", horizon=horizon, targets=1),
        train=array_dataset(problem.train.x, problem.train.y, batch_size, shuffle_seed=seed),
        train_for=lambda run_seed: array_dataset(problem.train.x, problem.train.y, batch_size,
                                                 shuffle_seed=run_shuffle_seed(seed, run_seed)),
        val=array_dataset(problem.val.x, problem.val.y, batch_size),
        test=array_dataset(problem.test.x, problem.test.y, batch_size),
        loss=keras.losses.MeanSquaredError(),
        metrics=[keras.metrics.MeanAbsoluteError(name="scaled_mae")],
        primary_metric="skill",
        higher_is_better=True,
        monitor="val_loss",
        baselines=baselines,
        dataset=_dataset_identity(history, problem),
        # batch_size stays among the recorded options, as the runs logged before the declared options have it.
        options={"batch_size": batch_size, **as_dict(options)},
        evaluate=evaluate,
        callbacks=lambda: [validation_skill_callback(problem)],
        artifacts=artifacts,
        notes=_notes(history, problem, folds),
    )


def _dataset_identity(history: PriceHistory, problem: StockProblem) -> dict:
    return {
        "name": history.path.name,
        "sha256": history.sha256,
        "first_date": str(history.dates[0])[:10],
        "last_date": str(history.dates[-1])[:10],
        "days": len(history.prices),
        "train_windows": len(problem.train),
        "val_windows": len(problem.val),
        "test_windows": len(problem.test),
    }


def _notes(history: PriceHistory, problem: StockProblem, folds: int) -> dict:
    """What cleaning did and the dates each split (and each test fold) covers, logged with every run."""
    notes = {f"cleaning_{k}": v for k, v in history.cleaning.items()}
    for split_name, (first, last) in problem.periods.items():
        notes[f"{split_name}_period"] = f"{first}..{last}"
    for k, part in fold_parts(problem.test, folds):
        dates = problem.test.target_dates[part, 0]
        notes[f"fold{k}_target_period"] = f"{str(dates[0])[:10]}..{str(dates[-1])[:10]}"
    return notes
