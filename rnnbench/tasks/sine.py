"""Forecasting a noisy sum of sines: the task that needs no downloaded data.

The series is sum_k a_k sin(2 pi t / p_k + phase_k) plus Gaussian noise of known sigma. Windows of `input_len` steps
predict the next `horizon` steps. Because the noise is unpredictable, the best possible RMSE is about sigma, so
`rmse_over_noise` (RMSE / sigma) reads as "how close to perfect": 1.0 is as good as the noise allows.
`predict_from_run` (the task's `predict` hook, `rnnbench predict`) forecasts from values a user gives; the window
and horizon are the logged model's own input and output lengths, and the values go in unscaled, as in training.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import keras
import numpy as np

from rnnbench import forecasting
from rnnbench.errors import UserError
from rnnbench.options import as_dict, option
from rnnbench.registry import register_task
from rnnbench.pipeline import array_dataset, run_shuffle_seed
from rnnbench.spec import InputSpec, OutputSpec, TaskSpec


def make_series(steps: int, periods, amplitudes, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(noisy series, clean series), each (steps,) float32. Phases are drawn from `seed`."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps, dtype=np.float64)
    phases = rng.uniform(0, 2 * np.pi, size=len(periods))
    clean = sum(a * np.sin(2 * np.pi * t / p + phi) for a, p, phi in zip(amplitudes, periods, phases))
    noisy = clean + rng.normal(0.0, noise, size=steps)
    return noisy.astype(np.float32), clean.astype(np.float32)


def _error_metrics(y_true, y_pred, noise: float, references: dict | None = None) -> dict:
    """Error metrics of one forecaster; with `references` ({name: forecast}) also a one-sided Diebold-Mariano test
    of "this forecaster has the smaller squared error" against each: `dm_stat`/`dm_pvalue` against persistence
    (as in the stock task), `dm_<name>_stat`/`dm_<name>_pvalue` against the others."""
    y_true = np.asarray(y_true, np.float64)
    rmse = forecasting.rmse(y_true, y_pred)
    metrics = {"loss": float(np.mean((y_true - y_pred) ** 2)), "rmse": rmse,
               "mae": forecasting.mae(y_true, y_pred), "rmse_over_noise": rmse / noise}
    for name, reference in (references or {}).items():
        test = forecasting.diebold_mariano(y_true - y_pred, y_true - reference, horizon=y_true.shape[1])
        prefix = "dm" if name == "persistence" else f"dm_{name}"
        metrics[f"{prefix}_stat"], metrics[f"{prefix}_pvalue"] = test.statistic, test.p_value
    return metrics


@dataclasses.dataclass(frozen=True)
class SineOptions:
    seed: int = option(0, "draws the phases and the noise (the data seed, not the model seed)")
    steps: int = option(12000, "length of the whole series before splitting", minimum=1)
    periods: tuple[float, ...] = option((40.0, 23.0, 11.0), "period of each sine component, in steps", minimum=0,
                                        exclusive=True)
    amplitudes: tuple[float, ...] = option((1.0, 0.5, 0.25), "amplitude of each sine component")
    noise: float = option(0.1, "standard deviation of the Gaussian noise, the floor of any forecaster's RMSE",
                          minimum=0, exclusive=True)
    input_len: int = option(64, "steps each window sees", minimum=1)
    horizon: int = option(8, "steps each window predicts", minimum=1)
    val_fraction: float = option(0.15, "the validation part: after the training part, in time order", minimum=0)
    test_fraction: float = option(0.15, "the test part: the end of the series; no window crosses a boundary",
                                  minimum=0)

    def __post_init__(self):
        if len(self.periods) != len(self.amplitudes) or not self.periods:
            raise UserError(f"task.periods and task.amplitudes need the same non-zero length, got {self.periods} "
                            f"and {self.amplitudes}")


def _given_values(inputs: list[str]) -> np.ndarray:
    """The numbers of the INPUTs, in order: each is a file of numbers or a list of them (commas or spaces between)."""
    values = []
    for item in inputs:
        text = Path(item).read_text(encoding="utf-8") if Path(item).is_file() else item
        for token in (t for t in re.split(r"[\s,;]+", text) if t):
            try:
                values.append(float(token))
            except ValueError:
                raise UserError(f"{token!r} is neither a number nor a file; give the last input_len values of the "
                                "series as a comma list (0.1,0.5,...) or a file of numbers") from None
    if not values or not np.all(np.isfinite(values)):
        raise UserError("the values must be finite numbers, at least one; give the last input_len values of the series")
    return np.asarray(values, dtype=np.float32)


def predict_from_run(run_id: str, inputs: list[str]) -> list[str]:
    """The next `horizon` values after the last `input_len` given ones, one line per step."""
    from rnnbench import tracking

    values = _given_values(inputs)
    model = tracking.load_model(run_id)
    input_len, horizon = int(model.inputs[0].shape[1]), int(model.outputs[0].shape[1])
    if len(values) < input_len:
        raise UserError(f"{len(values)} values given, but run {run_id} reads the last input_len = {input_len}; give "
                        "at least that many")
    forecast = np.asarray(model.predict_on_batch(values[-input_len:].reshape(1, input_len, 1)))[0, :, 0]
    skipped = f" (the first {len(values) - input_len} given are not read)" if len(values) > input_len else ""
    return [f"the next {horizon} values after the last {input_len} given{skipped}:"] + [
        f"  step +{k}: {value:.6f}" for k, value in enumerate(forecast, start=1)]


@register_task("sine", options=SineOptions, predict=predict_from_run)
def load(options: SineOptions, *, batch_size: int = 64) -> TaskSpec:
    """Noisy sine forecasting: windows of `input_len` steps predict the next `horizon` steps."""
    seed, steps, noise = options.seed, options.steps, options.noise
    input_len, horizon = options.input_len, options.horizon
    val_fraction, test_fraction = options.val_fraction, options.test_fraction
    series, _ = make_series(steps, options.periods, options.amplitudes, noise, seed)
    train_part, val_part, test_part = forecasting.chronological_split(
        steps, (1.0 - val_fraction - test_fraction, val_fraction, test_fraction)
    )
    splits = {name: forecasting.make_windows(series[part], input_len, horizon)
              for name, part in (("train", train_part), ("val", val_part), ("test", test_part))}
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = splits["train"], splits["val"], splits["test"]

    autoregressive = forecasting.LinearAutoregressive().fit(x_train, y_train)
    # Drift as in the stock task: the last value plus the mean change per step over the training period.
    training_series = series[train_part]
    training_slope = float(training_series[-1] - training_series[0]) / (len(training_series) - 1)
    forecasts = {
        "persistence": forecasting.persistence_forecast(x_test, horizon),
        "drift": forecasting.drift_forecast(x_test, horizon, slope=training_slope),
        "linear_ar": autoregressive.predict(x_test),
    }
    # Every forecaster is tested against persistence (the naive yardstick) and linear AR (the strong one).
    references = {name: forecasts[name] for name in ("persistence", "linear_ar")}
    baselines = {name: _error_metrics(y_test, forecast, noise,
                                      {k: v for k, v in references.items() if k != name})
                 for name, forecast in forecasts.items()}

    def evaluate(model) -> dict:
        prediction = model.predict(x_test, batch_size=batch_size, verbose=0)
        return _error_metrics(y_test, prediction, noise, references)

    def artifacts(model, out_dir: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        picks = np.linspace(0, len(x_test) - 1, 3).astype(int)
        prediction = model.predict(x_test[picks], verbose=0)
        fig, axes = plt.subplots(len(picks), 1, figsize=(8, 2.2 * len(picks)), sharex=True)
        for ax, i, pred in zip(axes, picks, prediction):
            ax.plot(range(input_len), x_test[i, :, 0], color="0.5", label="input")
            ax.plot(range(input_len, input_len + horizon), y_test[i, :, 0], "k.-", label="actual")
            ax.plot(range(input_len, input_len + horizon), pred[:, 0], "r.-", label="forecast")
        axes[0].legend(loc="upper left", fontsize=8)
        axes[-1].set_xlabel("step")
        fig.suptitle(f"{model.name}: test windows")
        fig.tight_layout()
        fig.savefig(out_dir / "forecasts.png", dpi=100)
        plt.close(fig)

    return TaskSpec(
        name="sine",
        inputs=InputSpec("features", feature_dim=1, length=input_len),
        outputs=OutputSpec("forecast", horizon=horizon, targets=1),
        train=array_dataset(x_train, y_train, batch_size, shuffle_seed=seed),
        train_for=lambda run_seed: array_dataset(x_train, y_train, batch_size,
                                                 shuffle_seed=run_shuffle_seed(seed, run_seed)),
        val=array_dataset(x_val, y_val, batch_size),
        test=array_dataset(x_test, y_test, batch_size),
        loss=keras.losses.MeanSquaredError(),
        metrics=(keras.metrics.RootMeanSquaredError(name="rmse"), keras.metrics.MeanAbsoluteError(name="mae")),
        primary_metric="rmse",
        higher_is_better=False,
        baselines=baselines,
        dataset={"name": "synthetic_sine", "sha256": hashlib.sha256(series.tobytes()).hexdigest(),
                 "train_windows": len(x_train), "val_windows": len(x_val), "test_windows": len(x_test)},
        options=as_dict(options),
        evaluate=evaluate,
        artifacts=artifacts,
    )
