"""The top-level README's table of results: per committed report, the best recurrent model against the best
alternative to recurrence and the best baseline (`python -m rnnbench.results_index`, `make results-table`).

It reads only what the reports wrote (`results/<experiment>/summary.csv` and the ranking line of its README.md) and
rewrites the block between the README's two markers; `--check` says whether the block is current instead (a test
runs it, so a report regenerated without its table fails there).
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

START, END = "<!-- results-table:start -->", "<!-- results-table:end -->"
RANKING = re.compile(r"Ranked by test (?P<metric>\S+) \((?P<direction>higher|lower) is better\); configuration "
                     r"`(?P<hash>[0-9a-f]+)`")


def _cell(row: Optional[pd.Series], metric: str) -> str:
    if row is None:
        return "—"
    mean, ci = row.get(f"test_{metric}_mean"), row.get(f"test_{metric}_ci95")
    value = f"{mean:.4g}" + (f" ± {ci:.2g}" if ci is not None and not math.isnan(ci) and ci > 0 else "")
    runs = int(row["runs"])
    return f"{row['model']} {value}" + (f" ({runs} seed{'s' if runs != 1 else ''})" if row["kind"] == "model" else "")


def leaderboard_row(folder: Path) -> Optional[str]:
    """One markdown row for the report in `folder`, or None when it is not a leaderboard (perf, memory)."""
    from rnnbench.report import model_family  # the registry, with the models, only when there is a report to read

    summary_path, readme_path = folder / "summary.csv", folder / "README.md"
    if not summary_path.is_file() or not readme_path.is_file():
        return None
    ranking = RANKING.search(readme_path.read_text(encoding="utf-8"))
    if ranking is None:
        return None
    metric = ranking["metric"]
    summary = pd.read_csv(summary_path).copy()  # de-fragmented: wide summaries are read column by column
    # Reports written before families were recorded: the same lookup the report makes now.
    summary["family"] = [model_family(m, k) for m, k in zip(summary["model"], summary["kind"])]
    models = summary[summary["kind"] == "model"]

    def best(rows: pd.DataFrame) -> Optional[pd.Series]:
        return rows.iloc[0] if len(rows) else None  # summary.csv is ranked best first

    recurrent = best(models[models["family"] == "recurrent"])
    alternative = best(models[~models["family"].isin(["recurrent", "unregistered"])])
    baseline = best(summary[summary["kind"] == "baseline"])
    direction = "↑" if ranking["direction"] == "higher" else "↓"
    link = f"[results/{folder.name}](results/{folder.name}/README.md)"
    return (f"| {folder.name} | test {metric} {direction} | {_cell(recurrent, metric)} | {_cell(alternative, metric)} "
            f"| {_cell(baseline, metric)} | {link} |")


def table(results: Path) -> str:
    lines = ["| experiment | metric | best recurrent | best alternative (transformer, ESN, TCN) | best baseline | report |",
             "| --- | --- | --- | --- | --- | --- |"]
    rows = [leaderboard_row(folder) for folder in sorted(p for p in results.iterdir() if p.is_dir())]
    lines += [row for row in rows if row]
    return "\n".join(lines)


def updated(readme: str, block: str) -> str:
    if START not in readme or END not in readme:
        raise ValueError(f"the README has no {START} ... {END} block to write the results table into")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}\n{END}{tail}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rnnbench.results_index", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="results", help="the reports' folder (default results)")
    parser.add_argument("--readme", default="README.md", help="the README holding the table (default README.md)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when the table is not current")
    args = parser.parse_args(argv)
    readme_path = Path(args.readme)
    readme = readme_path.read_text(encoding="utf-8")
    new = updated(readme, table(Path(args.results)))
    if args.check:
        if new != readme:
            print(f"{readme_path}: the results table is not current; run `make results-table`", file=sys.stderr)
            return 1
        return 0
    if new != readme:
        readme_path.write_text(new, encoding="utf-8")
    print(f"{readme_path}: results table written from {args.results}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
