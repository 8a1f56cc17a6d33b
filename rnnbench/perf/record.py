"""The record of a perf run: rows of figures (perf.csv), the facts and skips stated in words, and the comparison of
one run's figures with a previous run's."""
from __future__ import annotations

import csv
import dataclasses
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional, Sequence

CSV_COLUMNS = ("section", "item", "variant", "metric", "value", "unit")
SIZES_KEY = ("run", "sizes", "", "quick")  # 1.0 for a --quick run, 0.0 for a full one
RANGE_METRICS = {"ratio_min", "ratio_max"}  # the spread of a paired ratio's rounds: no direction is better
CHANGE_WORTH_FLAGGING = 0.10  # relative change against the previous run that the comparison marks
HIGHER_IS_BETTER_UNITS = {"samples/s", "timesteps/s", "batches/s", "FLOP/s", "x"}
LOWER_IS_BETTER_UNITS = {"ms", "s", "fraction"}


@dataclasses.dataclass
class Row:
    section: str
    item: str
    variant: str
    metric: str
    value: float
    unit: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.section, self.item, self.variant, self.metric


class Measurements:
    """Rows of figures, plus the facts and skip reasons the README states in words."""

    def __init__(self):
        self.rows: list[Row] = []
        self.skipped: dict[str, str] = {}
        self.facts: dict[str, str] = {}

    def add(self, section: str, item: str, variant: str, metric: str, value: float, unit: str = "") -> None:
        # Kept at the precision perf.csv stores, so a README redrawn from the CSV (--render) is the same text.
        self.rows.append(Row(section, item, variant, metric, float(f"{float(value):.6g}"), unit))

    def get(self, section: str, item: str, variant: str, metric: str) -> Optional[float]:
        for row in self.rows:
            if row.key == (section, item, variant, metric):
                return row.value
        return None

    def items(self, section: str) -> list[str]:
        return list(dict.fromkeys(r.item for r in self.rows if r.section == section))

    def variants(self, section: str, item: str) -> list[str]:
        return list(dict.fromkeys(r.variant for r in self.rows if r.section == section and r.item == item))


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """`write(target)` on a file in a temporary folder beside `path`, then a rename over `path`: a reader never sees
    half a file, and a failed write leaves the previous file and nothing else."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as folder:
        target = Path(folder) / path.name
        write(target)
        os.replace(target, path)


def write_csv(rows: Sequence[Row], path: Path) -> None:
    def write(target: Path) -> None:
        with target.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            for r in rows:
                writer.writerow([r.section, r.item, r.variant, r.metric, f"{r.value:.6g}", r.unit])

    atomic_write(path, write)


def read_csv(path: Path) -> list[Row]:
    """Rows of an earlier perf.csv; an unreadable one is reported and treated as absent (it is about to be replaced)."""
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
                raise ValueError(f"columns {reader.fieldnames}, expected {list(CSV_COLUMNS)}")
            return [Row(r["section"], r["item"], r["variant"], r["metric"], float(r["value"]), r["unit"])
                    for r in reader]
    except (OSError, ValueError, KeyError, UnicodeDecodeError) as error:
        print(f"perf: previous results {path} not compared ({error})", file=sys.stderr)
        return []


@dataclasses.dataclass
class Change:
    row: Row
    previous: float

    @property
    def ratio(self) -> float:
        return self.row.value / self.previous if self.previous else math.nan

    @property
    def verdict(self) -> str:
        """'better' or 'worse' when the figure moved by more than CHANGE_WORTH_FLAGGING in a known direction."""
        if not math.isfinite(self.ratio) or abs(self.ratio - 1.0) <= CHANGE_WORTH_FLAGGING:
            return ""
        if self.row.metric in RANGE_METRICS:  # a wider or narrower spread of rounds is neither
            return ""
        if self.row.unit in HIGHER_IS_BETTER_UNITS:
            return "better" if self.ratio > 1 else "worse"
        if self.row.unit in LOWER_IS_BETTER_UNITS:
            return "better" if self.ratio < 1 else "worse"
        return ""


def compare(previous: Sequence[Row], current: Sequence[Row]) -> list[Change]:
    """The current rows that the previous run also measured, with their previous values; nothing when one run was
    --quick and the other was not (their sizes differ, so their figures do not compare)."""
    earlier = {r.key: r.value for r in previous}
    now = {r.key: r.value for r in current}
    if earlier.get(SIZES_KEY) != now.get(SIZES_KEY):
        return []
    return [Change(r, earlier[r.key]) for r in current if r.key in earlier and r.key != SIZES_KEY]


def recorded_changes(rows: Sequence[Row], previous: Sequence[list]) -> list[Change]:
    """The changes a perf.json recorded (its "previous": [section, item, variant, metric, previous value] each)."""
    earlier = {tuple(entry[:4]): entry[4] for entry in previous}
    return [Change(row, earlier[row.key]) for row in rows if row.key in earlier]


def number(value: Optional[float], unit: str = "") -> str:
    """A figure as the README and the printed comparison write it."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if unit == "FLOP/s":
        return f"{value / 1e9:.2f} G"
    if unit == "FLOP":
        return f"{value / 1e9:.3f} G"
    if unit == "fraction":
        return f"{100 * value:.1f}%"
    if unit == "x":
        return f"{value:.3g}"
    if abs(value) >= 1e4:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def print_comparison(changes: list[Change], baseline: Path, echo: Callable[[str], None]) -> None:
    if not changes:
        echo(f"perf: {baseline} not compared: no figure in common with this run (or one of the two was --quick)")
        return
    echo(f"perf: compared with {baseline} (ratio = now / previous):")
    for c in changes:
        echo(f"  {c.row.section:9s} {c.row.item:22s} {c.row.variant:34s} {c.row.metric:26s} "
             f"{number(c.previous, c.row.unit):>10s} -> {number(c.row.value, c.row.unit):>10s}  "
             f"x{number(c.ratio)} {c.verdict}")
