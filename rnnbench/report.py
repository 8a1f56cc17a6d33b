"""Reports from the MLflow store: `results/<experiment>/summary.csv`, `README.md` and plots, one row per model.

Runs are grouped by model over seeds (mean, standard deviation, 95% confidence interval from Student's t). A run is
counted once: for each run key (configuration, model, seed) only the newest FINISHED run is used. Failed or killed
runs without a finished twin are listed separately. Every file is written atomically (temporary file, then rename).
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd

from rnnbench import registry, tracking
from rnnbench.errors import UserError

# Columns that describe cost rather than quality; reported beside the test metrics.
COST_COLUMNS = ("params", "sec_per_epoch", "train_samples_per_sec", "latency_ms_per_batch", "latency_ms_per_sample",
                "peak_rss_mb", "epochs_run", "best_epoch")


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def collect_runs(runs: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per counted finished run, one row per failed/killed run with no finished twin)."""
    finished, failed, seen = [], [], set()
    for run in runs:  # newest first
        key = run["tags"].get("run_key")
        if run["status"] == "FINISHED" and key not in seen:
            seen.add(key)
            finished.append({"run_id": run["run_id"], "model": run["tags"].get("model"),
                             "kind": run["tags"].get("kind", "model"), "seed": run["tags"].get("seed", ""),
                             **run["metrics"], "diverged_reason": run["tags"].get("diverged_reason", "")})
    for run in runs:
        key = run["tags"].get("run_key")
        if run["status"] in ("FAILED", "KILLED") and key not in seen:
            seen.add(key)
            failed.append({"run_id": run["run_id"], "model": run["tags"].get("model"), "seed": run["tags"].get("seed"),
                           "status": run["status"], "reason": run["tags"].get("failure_reason", "")})
    return pd.DataFrame(finished), pd.DataFrame(failed)


# One marker and colour per model family in the comparison plots (`registry.MODEL_FAMILIES`).
FAMILY_STYLE = {"recurrent": ("o", "C0"), "transformer": ("s", "C1"), "reservoir": ("^", "C2"),
                "convolutional": ("D", "C3"), "unregistered": ("x", "0.4")}


def model_family(model: str, kind: str) -> str:
    """The registered family of a model run ("baseline" for baselines; "unregistered" for a model the store holds
    but no builder registers any more)."""
    if kind == "baseline":
        return "baseline"
    try:
        return registry.model_family(model)
    except UserError:
        return "unregistered"


def summarize(per_run: pd.DataFrame, primary: str = "loss", higher_is_better: bool = False) -> pd.DataFrame:
    """model, kind, family, <metric>_mean/_std/_ci95 per metric, params, sec_per_epoch_mean, runs; best first."""
    from scipy import stats

    metric_columns = [c for c in per_run.columns if c not in ("run_id", "model", "kind", "seed", "diverged_reason")]
    rows = []
    for (model, kind), group in per_run.groupby(["model", "kind"], sort=False):
        row = {"model": model, "kind": kind, "family": model_family(model, kind)}
        for column in metric_columns:
            values = group[column].dropna().to_numpy(dtype=float)
            n = len(values)
            mean = float(values.mean()) if n else math.nan
            std = float(values.std(ddof=1)) if n > 1 else (0.0 if n == 1 else math.nan)
            ci95 = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else (0.0 if n == 1 else math.nan)
            row.update({f"{column}_mean": mean, f"{column}_std": std, f"{column}_ci95": ci95})
        row["params"] = row.get("params_mean", math.nan)
        row["runs"] = len(group)
        rows.append(row)
    summary = pd.DataFrame(rows)
    key = f"test_{primary}_mean"
    if key in summary:
        summary = summary.sort_values(key, ascending=not higher_is_better, na_position="last")
    ordered = ["model", "kind", "family"] + [c for c in summary.columns
                                             if c not in ("model", "kind", "family", "params", "runs")]
    return summary[ordered + ["params", "runs"]].reset_index(drop=True)


def best_of_families(summary: pd.DataFrame) -> tuple[Optional[pd.Series], Optional[pd.Series]]:
    """(the best recurrent model's row, the best alternative's row) of a summary ranked best first, None where the
    grid has no model of that side."""
    models = summary[summary["kind"] == "model"]
    recurrent = models[models["family"] == "recurrent"]
    others = models[models["family"].isin(registry.ALTERNATIVE_FAMILIES)]
    return (recurrent.iloc[0] if len(recurrent) else None), (others.iloc[0] if len(others) else None)


def recurrence_against_alternatives(summary: pd.DataFrame, primary: str, higher: bool) -> list[str]:
    """README lines setting the best recurrent model against the best non-recurrent one: quality with its 95%
    interval, size, training and inference cost, and whether the intervals separate them."""
    best_recurrent, best_other = best_of_families(summary)
    if best_recurrent is None or best_other is None:
        return []
    key = f"test_{primary}"
    lines = ["", "## Recurrence against the alternatives", "",
             f"| | model | {key} (mean ± 95% CI) | params | sec/epoch | latency ms/sample | runs |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for label, row in (("best recurrent", best_recurrent), ("best alternative", best_other)):
        lines.append(f"| {label} | {row['model']} ({row['family']}) | "
                     f"{_format(row.get(f'{key}_mean'), row.get(f'{key}_ci95'))} | {_format(row.get('params'))} | "
                     f"{_format(row.get('sec_per_epoch_mean'))} | {_format(row.get('latency_ms_per_sample_mean'))} | "
                     f"{row['runs']} |")
    a, b = float(best_recurrent[f"{key}_mean"]), float(best_other[f"{key}_mean"])
    ci_a, ci_b = (float(r.get(f"{key}_ci95", math.nan)) for r in (best_recurrent, best_other))
    winner = best_recurrent if (a > b) == higher else best_other
    if math.isnan(ci_a) or math.isnan(ci_b) or min(best_recurrent["runs"], best_other["runs"]) < 2:
        verdict = "one run each: no interval to judge the difference by"
    elif abs(a - b) > ci_a + ci_b:
        verdict = f"{winner['model']} is better and the 95% intervals do not overlap"
    else:
        verdict = (f"{winner['model']} is ahead on average, but the 95% intervals overlap: no separation at "
                   f"{min(best_recurrent['runs'], best_other['runs'])} seeds")
    lines += ["", f"Difference {abs(a - b):.4g} in test {primary}: {verdict}."]
    return lines


def _format(value: float, ci: Optional[float] = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    return f"{text} ± {ci:.2g}" if ci is not None and not math.isnan(ci) and ci > 0 else text


def open_experiment(task: str, experiment: str, config_hash: Optional[str] = None) -> tracking.Tracker:
    """The tracker of `experiment`'s runs: its own MLflow experiment; for an experiment file of a task (speech_digits)
    whose benches were logged before such files had their own, its task's, when the benches are only there."""
    tracker = tracking.Tracker(experiment)
    if experiment == task or _has_bench(tracker, experiment, config_hash):
        return tracker
    earlier = tracking.Tracker(task)
    return earlier if _has_bench(earlier, experiment, config_hash) else tracker


def _has_bench(tracker: tracking.Tracker, experiment: str, config_hash: Optional[str]) -> bool:
    return bool(tracker.child_runs(config_hash)) if config_hash else bool(tracker.latest_parent(experiment=experiment))


def write_report(task: str, *, tracker: Optional[tracking.Tracker] = None, config_hash: Optional[str] = None,
                 out_dir: Path | str | None = None, echo: Callable[[str], None] = print,
                 experiment: Optional[str] = None) -> Path:
    """Writes summary.csv, README.md and plots for rnnbench experiment `experiment` of `task` (default: the task's
    own), from the runs of `config_hash` (default: the experiment's latest bench)."""
    experiment = experiment or task
    tracker = tracker or open_experiment(task, experiment, config_hash)
    if config_hash is None:
        parent = tracker.latest_parent(experiment=experiment)
        if parent is None:
            raise UserError(f"no benchmark of experiment {experiment!r} in {tracker.uri}; run "
                            f"`rnnbench bench --task {experiment}` first")
        config_hash = parent.data.tags.get("config_hash")
    per_run, failed = collect_runs(tracker.child_runs(config_hash))
    if per_run.empty:
        raise UserError(f"no finished runs of experiment {experiment!r} (configuration {config_hash}) in {tracker.uri}")
    any_run = tracker.get_run(per_run.loc[per_run["kind"] == "model", "run_id"].iloc[0]
                              if (per_run["kind"] == "model").any() else per_run["run_id"].iloc[0])
    primary = any_run.data.tags.get("primary_metric", "loss")
    higher = any_run.data.tags.get("higher_is_better", "False") == "True"
    summary = summarize(per_run, primary, higher)
    out_dir = Path(out_dir or Path("results") / experiment)
    out_dir.mkdir(parents=True, exist_ok=True)

    _atomic_write(out_dir / "summary.csv", lambda p: summary.to_csv(p, index=False, float_format="%.6g"))
    _atomic_write(out_dir / "runs.csv", lambda p: per_run.to_csv(p, index=False, float_format="%.6g"))
    plots = _plots(tracker, per_run, summary, primary, higher, out_dir)
    notes = _task_notes(task, summary)
    bench = tracker.latest_parent(config_hash)
    command = bench.data.tags.get("command", "") if bench is not None else ""
    readme = _readme(task, summary, failed, primary, higher, any_run, config_hash, plots, notes, per_run, command)
    _atomic_write(out_dir / "README.md", lambda p: p.write_text(readme))
    echo(f"rnnbench: report written to {out_dir}/ (summary.csv, README.md, {len(plots)} plots)")
    _refresh_comparisons(experiment, out_dir, echo)
    return out_dir


def _refresh_comparisons(experiment: str, out_dir: Path, echo: Callable[[str], None]) -> None:
    """Rewrites the comparison of an experiment with its declared control whenever either report is rewritten and
    the other one sits beside it, so the two never disagree with their comparison."""
    from rnnbench import compare
    from rnnbench import config as configuration

    if out_dir.name != experiment:  # a smoke's or a scratch folder: no control beside it
        return
    for name, control in configuration.controls().items():
        if experiment in (name, control) and all((out_dir.parent / n / "runs.csv").is_file() for n in (name, control)):
            echo(f"rnnbench: comparison written to {compare.write_comparison(out_dir.parent, name, control)}")


def _task_notes(task: str, summary: pd.DataFrame) -> str:
    """A task may register `report_notes(summary) -> markdown` for conclusions only it can draw."""
    try:
        notes = registry.get_task_entry(task).report_notes
    except UserError:
        return ""
    return notes(summary) if notes else ""


def _readme(task, summary, failed, primary, higher, run, config_hash, plots, notes, per_run, command) -> str:
    params, tags = run.data.params, run.data.tags
    experiment = tags.get("experiment") or task
    smoke = tags.get("smoke") == "True"
    test_metrics = [c[: -len("_mean")] for c in summary.columns
                    if c.startswith("test_") and c.endswith("_mean") and c != f"test_{primary}_mean"]
    header = ["model", "kind", "family", f"test_{primary} (mean ± 95% CI)", *test_metrics, "params", "sec/epoch",
              "runs"]
    lines = [
        f"# rnnbench results: {task}",
        "",
        f"Generated by `rnnbench report --task {experiment}` from the MLflow store; do not edit by hand. "
        f"Ranked by test {primary} ({'higher' if higher else 'lower'} is better); configuration `{config_hash}`.",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ]
    for _, row in summary.iterrows():
        cells = [row["model"], row["kind"], row["family"],
                 _format(row.get(f"test_{primary}_mean"), row.get(f"test_{primary}_ci95"))]
        cells += [_format(row.get(f"{m}_mean")) for m in test_metrics]
        cells += [_format(row.get("params")), _format(row.get("sec_per_epoch_mean")), str(row["runs"])]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += recurrence_against_alternatives(summary, primary, higher)
    if notes:
        lines += ["", notes.strip()]
    diverged = per_run[per_run["diverged_reason"].astype(bool)] if "diverged_reason" in per_run else per_run[:0]
    if not diverged.empty:
        lines += ["", "## Diverged runs (finished and counted above, but training failed)", "",
                  "| model | seed | why |", "| --- | --- | --- |"]
        lines += [f"| {r.model} | {r.seed} | {r.diverged_reason} |" for r in diverged.itertuples()]
    if not failed.empty:
        lines += ["", "## Failed or interrupted runs (not counted above)", "", "| model | seed | status | reason |",
                  "| --- | --- | --- | --- |"]
        lines += [f"| {r.model} | {r.seed} | {r.status} | {str(r.reason)[:200]} |" for r in failed.itertuples()]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in plots]
    env = {k[len("env."):]: v for k, v in params.items() if k.startswith("env.")}
    lines += ["", "## Environment", "", "| | |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in sorted(env.items())]
    # The command the runs came from, with its options (older stores lack it: then the experiment's make line).
    command = command or (f"make bench TASK={experiment}" if not smoke else f"make bench TASK={task} SMOKE=1")
    lines += ["", "## Reproduce", "", "```", command, "```", "",
              f"Data locations, expected results and hardware: `experiments/{experiment}.py`. Per-run numbers: "
              "[runs.csv](runs.csv); the full configuration of each run is in its MLflow artifacts (`config.json`), "
              "which `make ui` shows."]
    return "\n".join(lines) + "\n"


def _plots(tracker, per_run, summary, primary, higher, out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    models = summary[summary["kind"] == "model"]
    key = f"test_{primary}"
    if f"{key}_mean" in models and len(models):
        for x_column, x_label, filename in (
            ("params", "trainable parameters", "quality_vs_params.png"),
            ("sec_per_epoch_mean", "seconds per epoch", "quality_vs_time.png"),
        ):
            if x_column not in models:
                continue
            fig, ax = plt.subplots(figsize=(6, 4))
            for family, group in models.groupby("family", sort=False):
                marker, colour = FAMILY_STYLE.get(family, FAMILY_STYLE["unregistered"])
                ax.errorbar(group[x_column], group[f"{key}_mean"], yerr=group[f"{key}_ci95"].fillna(0),
                            fmt=marker, color=colour, label=family)
            for _, row in models.iterrows():
                ax.annotate(row["model"], (row[x_column], row[f"{key}_mean"]), fontsize=8,
                            xytext=(4, 4), textcoords="offset points")
            for _, row in summary[summary["kind"] == "baseline"].iterrows():
                ax.axhline(row[f"{key}_mean"], linestyle="--", color="0.6")
                ax.annotate(row["model"], (ax.get_xlim()[0], row[f"{key}_mean"]), fontsize=7, color="0.4")
            ax.set_xlabel(x_label)
            ax.set_ylabel(f"{key} ({'higher' if higher else 'lower'} is better)")
            ax.legend(fontsize=8, title="family", title_fontsize=8)
            fig.tight_layout()
            _atomic_write(out_dir / filename, lambda p: fig.savefig(p, dpi=100, format="png"))
            plt.close(fig)
            made.append(filename)
    model_runs = per_run[per_run["kind"] == "model"]
    if len(model_runs):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for model, group in model_runs.groupby("model"):
            curves = [np.array([v for _, v in tracker.metric_history(r, "val_loss")]) for r in group["run_id"]]
            curves = [c for c in curves if len(c)]
            if not curves:
                continue
            length = min(len(c) for c in curves)
            stacked = np.stack([c[:length] for c in curves])
            # Runs validated k times per pass log k points per epoch (runs from before the option logged none).
            per_epoch = group["validations_per_epoch"].fillna(1).iloc[0] if "validations_per_epoch" in group else 1
            epochs = np.arange(1, length + 1) / float(per_epoch)
            ax.plot(epochs, stacked.mean(axis=0), label=model)
            if len(curves) > 1:
                ax.fill_between(epochs, stacked.min(axis=0), stacked.max(axis=0), alpha=0.15)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation loss (mean over seeds, band: min-max)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        _atomic_write(out_dir / "learning_curves.png", lambda p: fig.savefig(p, dpi=100, format="png"))
        plt.close(fig)
        made.append("learning_curves.png")
    return made
