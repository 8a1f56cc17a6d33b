"""The report of a sweep: how an experiment's results change along its SWEEP setting, and for the memory probes
(adding, copy) the longest delay T each model solves.

`write_sweep_report(task, configs, out_dir)` takes the configurations of a sweep (`rnnbench.config.resolve_sweep`),
writes each value's ordinary report (`rnnbench.report.write_report`) into `out_dir/<option>_<value>/`, and into
`out_dir` itself: `README.md` (per model and value the mean test metric over seeds, whether it counts as solved, the
longest value solved), `sweep.csv` (every value's summary rows) and `loss_vs_<option>.png` (test loss against the
value per model, log scale, baselines dashed). `rnnbench bench --sweep` writes it at the end and `rnnbench report`
writes it for an experiment with a SWEEP. A value with no finished run in the store is read from its own report in
`out_dir` when that report is of the same configuration, so a sweep run a few values per session (`--values`), on
machines whose store does not outlive the session, still reports every value committed so far. What counts as
solved is each memory task's own criterion (`CRITERIA`), with the threshold read from the task's options; other tasks
get the table and the plot without it.
"""
from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd

from rnnbench import config as configuration
from rnnbench import options, registry, tracking
from rnnbench.errors import UserError
from rnnbench.report import _atomic_write, collect_runs, summarize, write_report


@dataclasses.dataclass(frozen=True)
class Criterion:
    """Solved when the mean over seeds of test `metric` is below (`below`) or at least the task option `option`."""

    metric: str
    option: str
    below: bool

    def holds(self, value: float, threshold: float) -> bool:
        return not math.isnan(value) and (value < threshold if self.below else value >= threshold)

    def describe(self, threshold: float) -> str:
        return (f"mean test {self.metric} over seeds {'below' if self.below else 'at least'} task.{self.option} "
                f"({threshold:g})")


# adding: task.threshold, MSE 0.01 by default (6% of always predicting 1; why, in rnnbench/tasks/adding.py). copy:
# task.solved_recall, 99% of the ten recalled symbols right (chance: 1 in 8), so a model that meets it plays the
# sequence back nearly without error; a loss criterion (say 10% of the memoryless loss) would not guarantee that.
CRITERIA = {"adding": Criterion("mse", "threshold", below=True),
            "copy": Criterion("recall_accuracy", "solved_recall", below=False)}


def point_folder(point: dict) -> str:
    """The subfolder of one value's report: `length_50` for {"task.length": 50}."""
    (key, value), = point.items()
    return f"{key.partition('.')[2]}_{value}"


def _threshold(task: str, config: dict, criterion: Criterion) -> float:
    declared = registry.get_task_entry(task).options
    return float(getattr(options.resolve(declared, config["task_options"]), criterion.option))


@dataclasses.dataclass
class _Point:
    value: object
    config: dict
    config_hash: str
    summary: Optional[pd.DataFrame] = None  # None: no finished run of this configuration
    per_run: Optional[pd.DataFrame] = None
    failed: int = 0
    diverged: int = 0  # finished runs flagged as diverged, and runs stopped by a non-finite loss
    threshold: float = math.nan
    from_report: bool = False  # read from the value's committed report, not from the store


def write_sweep_report(task: str, configs: list[dict], out_dir: Path | str, *,
                       tracker: Optional[tracking.Tracker] = None, echo: Callable[[str], None] = print) -> Path:
    """Writes the sweep's report and each value's report (see the module docstring); returns `out_dir`."""
    experiment = configs[0]["experiment"] or task
    (key,) = configs[0]["sweep"]
    tracker = tracker or tracking.Tracker(experiment)
    out_dir = Path(out_dir)
    criterion = CRITERIA.get(task)
    points, primary, higher = [], "loss", False
    for config in configs:
        point = _Point(config["sweep"][key], config, configuration.config_hash(config))
        runs = tracker.child_runs(point.config_hash)
        per_run, failed = collect_runs(runs)
        point.failed = len(failed)
        point.diverged = _diverged(per_run, failed)
        if not per_run.empty:
            primary = runs[0]["tags"].get("primary_metric", primary)
            higher = runs[0]["tags"].get("higher_is_better", "False") == "True"
            point.per_run, point.summary = per_run, summarize(per_run, primary, higher)
            write_report(task, tracker=tracker, config_hash=point.config_hash,
                         out_dir=out_dir / point_folder(config["sweep"]), echo=lambda line: None)
        else:
            ranked = _from_committed_report(out_dir / point_folder(config["sweep"]), point)
            if ranked:
                primary, higher = ranked
        if criterion:
            point.threshold = _threshold(task, config, criterion)
        points.append(point)
    done = [p for p in points if p.summary is not None]
    if not done:
        raise UserError(f"no finished runs of the sweep of experiment {experiment!r} ({key} = "
                        f"{', '.join(str(p.value) for p in points)}) in {tracker.uri}; run `rnnbench bench --task "
                        f"{experiment} --sweep` first")
    option = key.partition(".")[2]
    table = pd.concat([p.summary.assign(**{key: p.value, "config_hash": p.config_hash}) for p in done])
    table = table[[key, "config_hash"] + [c for c in table.columns if c not in (key, "config_hash")]]
    _atomic_write(out_dir / "sweep.csv", lambda path: table.to_csv(path, index=False, float_format="%.6g"))
    plot = f"loss_vs_{option}.png"
    _plot(points, key, out_dir / plot)
    readme = _readme(task, experiment, key, points, criterion, primary, configs, plot)
    _atomic_write(out_dir / "README.md", lambda path: path.write_text(readme))
    echo(f"rnnbench: sweep report written to {out_dir}/ (README.md, sweep.csv, {plot}; one report per {key} "
         f"in {len(done)} subfolders)")
    return out_dir


def _from_committed_report(folder: Path, point: _Point) -> Optional[tuple[str, bool]]:
    """Loads `point`'s runs and summary from the report in `folder` when it is of the point's configuration (its
    README names the hash); returns (primary metric, higher is better), or None when there is no such report."""
    readme, runs, summary = (folder / name for name in ("README.md", "runs.csv", "summary.csv"))
    if not all(path.is_file() for path in (readme, runs, summary)):
        return None
    ranked = re.search(r"Ranked by test (\S+) \((higher|lower) is better\); configuration `([0-9a-f]+)`",
                       readme.read_text())
    if ranked is None or ranked.group(3) != point.config_hash:
        return None  # another configuration's report: the sweep's settings changed since
    point.per_run, point.summary, point.from_report = pd.read_csv(runs), pd.read_csv(summary), True
    if "diverged_reason" in point.per_run:  # blank in the file for runs that did not diverge
        point.per_run["diverged_reason"] = point.per_run["diverged_reason"].fillna("")
    point.diverged = _diverged(point.per_run, pd.DataFrame())
    return ranked.group(1), ranked.group(2) == "higher"


def _diverged(per_run: pd.DataFrame, failed: pd.DataFrame) -> int:
    flagged = int(per_run["diverged_reason"].astype(bool).sum()) if "diverged_reason" in per_run else 0
    stopped = int(failed["reason"].str.startswith("TrainingDiverged").sum()) if "reason" in failed else 0
    return flagged + stopped


def _model_order(points: list[_Point], configs: list[dict]) -> list[tuple[str, str]]:
    """(model, kind) pairs: the experiment's models in its order, then any others, then the baselines."""
    seen = {(row.model, row.kind) for p in points if p.summary is not None for row in p.summary.itertuples()}
    ordered = [(m, "model") for m in configs[0]["models"] if (m, "model") in seen]
    ordered += sorted(pair for pair in seen if pair[1] == "model" and pair not in ordered)
    return ordered + sorted(pair for pair in seen if pair[1] != "model")


def _row(point: _Point, model: str, kind: str) -> Optional[pd.Series]:
    if point.summary is None:
        return None
    found = point.summary[(point.summary["model"] == model) & (point.summary["kind"] == kind)]
    return found.iloc[0] if len(found) else None


def _cell(point: _Point, model: str, kind: str, metric: str, criterion: Optional[Criterion]) -> tuple[str, bool]:
    """(the table cell, whether it counts as solved)."""
    row = _row(point, model, kind)
    if row is None:
        return "", False
    mean = float(row.get(f"test_{metric}_mean", math.nan))
    text = "" if math.isnan(mean) else f"{mean:.3g}"
    if criterion is None or kind != "model":
        return text, False
    solved = criterion.holds(mean, point.threshold)
    runs = point.per_run[(point.per_run["model"] == model) & (point.per_run["kind"] == kind)]
    per_seed = sum(criterion.holds(float(v), point.threshold) for v in runs.get(f"test_{metric}", []))
    return f"{text}{' ✓' if solved else ''} ({per_seed}/{len(runs)})", solved


def _readme(task, experiment, key, points, criterion, primary, configs, plot) -> str:
    metric = criterion.metric if criterion else primary
    header = ["model", "kind"] + ([f"longest {key} solved"] if criterion else []) + [f"{key} = {p.value}"
                                                                                     for p in points]
    lines = [f"# rnnbench sweep: {experiment} over {key}", "",
             f"Generated by `rnnbench report --task {experiment}` (and at the end of `rnnbench bench --task "
             f"{experiment} --sweep`) from the MLflow store, a value it lacks from that value's committed report; "
             f"do not edit by hand. One ordinary grid per value of `{key}`, each its own configuration; its full "
             "report is linked under Values.", ""]
    if criterion:
        thresholds = sorted({p.threshold for p in points})
        lines += [f"Solved: {criterion.describe(thresholds[0])}." if len(thresholds) == 1 else
                  f"Solved: {criterion.describe(math.nan)}; thresholds per value: {thresholds}.",
                  f"Cells: mean test {metric} over seeds, ✓ when solved, (seeds that meet the criterion on their "
                  "own / seeds). Baselines for comparison; a blank cell: no finished run.", ""]
    else:
        lines += [f"Cells: mean test {metric} over seeds ({task} has no solved criterion).", ""]
    lines += [f"## {'Longest ' + key + ' solved' if criterion else 'Test ' + metric + ' by ' + key}", "",
              "| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for model, kind in _model_order(points, configs):
        cells = [_cell(p, model, kind, metric, criterion) for p in points]
        longest = [] if not criterion else [
            "" if kind != "model" else str(max((p.value for p, (_, ok) in zip(points, cells) if ok), default="none"))]
        lines.append("| " + " | ".join([model, kind] + longest + [text for text, _ in cells]) + " |")
    lines += ["", f"## Test loss against {key}", "", f"![{plot}]({plot})", "",
              "Mean over seeds per model (bars: lowest to highest seed); baselines dashed.", "",
              "## Values", "",
              f"| {key} | configuration | finished model runs | failed or interrupted | diverged | report |",
              "| --- | --- | --- | --- | --- | --- |"]
    for p in points:
        folder = point_folder(p.config["sweep"])
        finished = 0 if p.per_run is None else int((p.per_run["kind"] == "model").sum())
        link = f"[{folder}/README.md]({folder}/README.md)" if p.summary is not None else "not run yet"
        failed = "see its report" if p.from_report else p.failed
        link += " (committed; not in this store)" if p.from_report else ""
        lines.append(f"| {p.value} | `{p.config_hash}` | {finished} | {failed} | {p.diverged} | {link} |")
    lines += ["", "Diverged: finished runs whose test loss ended far above the baselines' (flagged in the value's report), "
              "plus runs stopped by a non-finite loss (counted among the failed too).", "",
              "## Reproduce", "", "```", configs[0].get("command") or f"make bench TASK={experiment} SWEEP=1",
              "```", "", f"Settings, expected results and hardware: `experiments/{experiment}.py`."]
    return "\n".join(lines) + "\n"


def _plot(points: list[_Point], key: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    done = [p for p in points if p.per_run is not None]
    numeric = all(isinstance(p.value, (int, float)) and p.value > 0 for p in done)
    position = {p.value: (p.value if numeric else i) for i, p in enumerate(done)}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    runs = pd.concat([p.per_run.assign(_x=position[p.value]) for p in done])
    if "test_loss" not in runs:
        runs["test_loss"] = np.nan
    dashes: list = []
    for (model, kind), group in runs.groupby(["model", "kind"], sort=True):
        stats = group.groupby("_x")["test_loss"].agg(["mean", "min", "max"]).dropna()
        if stats.empty:
            continue
        if kind == "model":
            ax.errorbar(stats.index, stats["mean"], yerr=[stats["mean"] - stats["min"], stats["max"] - stats["mean"]],
                        marker="o", capsize=3, label=model)
        else:
            dashes.append(ax.plot(stats.index, stats["mean"], linestyle="--", linewidth=1,
                                  color=str(0.3 + 0.15 * (len(dashes) % 4)), label=f"baseline: {model}"))
    if numeric:
        ax.set_xscale("log", base=2)
        ax.set_xticks([p.value for p in done], [str(p.value) for p in done])
        ax.xaxis.set_minor_locator(NullLocator())  # the values themselves are the ticks
    else:
        ax.set_xticks(list(position.values()), [str(p.value) for p in done])
    ax.set_yscale("log")
    ax.set_xlabel(key)
    ax.set_ylabel("test loss (mean over seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _atomic_write(path, lambda target: fig.savefig(target, dpi=100, format="png"))
    plt.close(fig)
