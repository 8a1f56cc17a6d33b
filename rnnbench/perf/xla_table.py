"""The XLA speed-up table the runner's `train.jit_compile=auto` reads (`compute.XLA_TABLE`, rnnbench/xla_speedup.json),
written from kernel rows: per cell and input kind, the median step time without XLA (`no_xla`) over that with it
(`xla`), to 2 decimals. A full perf run on a CPU writes it; `--xla-table-from CSV` rewrites it from a perf.csv."""
from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Optional, Sequence

from rnnbench import compute
from rnnbench.errors import UserError
from rnnbench.perf.record import Row, atomic_write, read_csv

ABOUT = ("Speed-up of one training step from XLA on CPU per recurrent cell and input kind: step time with "
         "jit_compile=False divided by step time with it. Written by `make perf` (rnnbench.perf, kernel section) from "
         "its kernel rows; read by rnnbench.compute.use_xla for train.jit_compile=auto. Above 1.0 means XLA is faster.")
INPUT_KINDS = ("unmasked", "masked")


def speedups(rows: Sequence[Row]) -> dict[str, dict[str, float]]:
    """cell -> input kind -> speed-up, for every cell and kind with both a `no_xla` and an `xla` step time (and, where
    the rows say, XLA really used)."""
    figures = {(r.item, r.variant, r.metric): r.value for r in rows if r.section == "kernel"}
    table: dict[str, dict[str, float]] = {}
    for cell in dict.fromkeys(r.item for r in rows if r.section == "kernel"):
        for kind in INPUT_KINDS:
            without = figures.get((cell, f"no_xla, {kind}", "median_step_ms"))
            with_xla = figures.get((cell, f"xla, {kind}", "median_step_ms"))
            if without and with_xla and figures.get((cell, f"xla, {kind}", "xla_used"), 1.0):
                table.setdefault(cell, {})[kind] = round(without / with_xla, 2)
    return table


def source_of(csv_path: Path, environment: Optional[dict], dated: str) -> str:
    """Where the figures come from: the perf.csv, from its run's environment the commit, machine and TensorFlow, and
    `dated` (when it was measured, or the file's date)."""
    if not environment:
        return f"{csv_path} (its run's environment unknown: no perf.json beside it), {dated}"
    commit = str(environment.get("git_commit", "unknown"))[:7]
    dirty = " with uncommitted changes" if environment.get("git_dirty") is True else ""
    return (f"{csv_path} ({environment.get('command', 'python -m rnnbench.perf')} at commit {commit}{dirty}, "
            f"{environment.get('device')}, {environment.get('cpu_count')} cores, TensorFlow "
            f"{environment.get('tensorflow')}), {dated}")


def write(rows: Sequence[Row], source: str, path: Optional[Path] = None) -> dict:
    """The table from `rows` into `path` (default `compute.XLA_TABLE`); returns what it wrote."""
    table = speedups(rows)
    if not table:
        raise UserError("no kernel rows with both a no_xla and an xla step time: nothing to write the XLA table from")
    content = {"about": ABOUT, "source": source, "speedup": table}
    atomic_write(Path(path or compute.XLA_TABLE), lambda p: p.write_text(json.dumps(content, indent=2) + "\n"))
    compute.cpu_xla_speedup.cache_clear()  # this process reads the new table from now on
    return content


def write_from_run(rows: Sequence[Row], environment: dict, csv_path: Path) -> Optional[dict]:
    """The table from a full run's kernel rows; None (nothing written) when the run had a GPU: the table is CPU's."""
    if str(environment.get("cuda", "none")) != "none":
        return None
    return write(rows, source_of(csv_path, environment, f"measured on {datetime.date.today().isoformat()}"))


def write_from_csv(csv_path: Path, path: Optional[Path] = None) -> dict:
    """`--xla-table-from`: the table from an existing perf.csv's kernel rows, measuring nothing. The perf.json beside
    it, when there is one, names the commit and machine; a run on a GPU is refused."""
    if not csv_path.is_file():
        raise UserError(f"--xla-table-from {csv_path}: no such file")
    rows = read_csv(csv_path)
    if not rows:
        raise UserError(f"--xla-table-from {csv_path}: not a perf.csv")
    environment = None
    try:
        environment = json.loads(csv_path.with_name("perf.json").read_text())["environment"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if environment and str(environment.get("cuda", "none")) != "none":
        raise UserError(f"--xla-table-from {csv_path}: measured on a GPU ({environment.get('device')}); the XLA "
                        "table holds CPU speed-ups")
    dated = f"file dated {datetime.date.fromtimestamp(csv_path.stat().st_mtime).isoformat()}"
    return write(rows, source_of(csv_path, environment, dated), path)
