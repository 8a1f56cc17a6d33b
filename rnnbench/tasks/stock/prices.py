"""Reading and cleaning the price CSV: the only code of the stock task that touches the file.

Any CSV with a date column and a price column (defaults `Date` and `Close`), optionally more numeric columns (e.g.
`Volume`). Cleaning is explicit and counted in the run's params:
  * rows out of date order are sorted (stable) with a warning;
  * duplicate dates are refused (`duplicates="error"`, the default) or resolved by keeping the first or the last row of
    each date in file order (`duplicates="first"` / `"last"`, e.g. when a later row is a correction);
  * `start_date` / `end_date` (inclusive, ISO dates) keep a date range; only the kept rows are validated;
  * unparseable dates, missing or non-numeric prices and prices <= 0 are refused, naming the offending lines.
Problems in the rows (dates, duplicates, values) are collected and reported together, each kind with its first few
line numbers, so one pass over the file fixes them all.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from rnnbench.errors import DataError, UserError

DUPLICATE_RULES = ("error", "first", "last")
# Lines quoted in an error message; more would bury the fix.
MAX_QUOTED = 5


@dataclasses.dataclass(frozen=True)
class PriceHistory:
    """A cleaned daily price series: dates increasing strictly, prices positive and finite."""

    path: Path
    sha256: str
    dates: np.ndarray  # datetime64[ns], (n,)
    prices: np.ndarray  # float64, (n,)
    features: np.ndarray  # float64, (n, len(feature_names)), all >= 0
    feature_names: tuple
    cleaning: dict  # counts of what cleaning did, logged with every run


def read_price_history(
    path,
    *,
    date_column: str = "Date",
    price_column: str = "Close",
    feature_columns=(),
    duplicates: str = "error",
    start_date: Optional[str] = None,
    end_date: Optional[str] = None,
    date_format: Optional[str] = None,
) -> PriceHistory:
    """Reads and cleans a price CSV by the rules in the module docstring; DataError names the file, problem and fix.

    The option checks come first, so a wrong option is reported before anything is read."""
    path, first, last, feature_columns = _check_arguments(
        path, date_column, price_column, tuple(feature_columns), duplicates, start_date, end_date
    )
    raw = _read_bytes(path, date_column, price_column)
    frame = _parse_csv(path, raw, (date_column, price_column) + feature_columns)
    rows_read = len(frame)
    problems = Problems(path)
    frame = _parse_dates(frame, date_column, date_format, problems)
    frame, out_of_order = _sort_by_date(path, frame)
    frame, rows_before, rows_after = _keep_date_range(frame, first, last, start_date, end_date, problems)
    frame, duplicates_dropped = _drop_duplicate_dates(frame, date_column, duplicates, problems)

    prices = _numeric_column(frame, price_column, True, problems)
    features = np.stack([_numeric_column(frame, c, False, problems) for c in feature_columns], axis=1) \
        if feature_columns else np.zeros((len(frame), 0))
    problems.report()
    return PriceHistory(
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        dates=frame["_date"].to_numpy(dtype="datetime64[ns]"),
        prices=prices,
        features=features,
        feature_names=feature_columns,
        cleaning={
            "rows_read": rows_read,
            "rows_out_of_order": out_of_order,
            "duplicate_rows_dropped": duplicates_dropped,
            "rows_before_start_date": rows_before,
            "rows_after_end_date": rows_after,
            "rows_used": len(frame),
        },
    )


class Problems:
    """What is wrong with the rows of one file, gathered so that a single DataError lists all of it: one problem
    reads as it always did ("PATH: problem; fix"), several as "PATH: N problems: (1) ...; fix; (2) ...; fix"."""

    def __init__(self, path: Path):
        self.path = path
        self.found: list[str] = []

    def add(self, problem: str) -> None:
        self.found.append(problem)

    def report(self) -> None:
        """Raises the DataError listing every problem found, if any."""
        if len(self.found) == 1:
            raise DataError(f"{self.path}: {self.found[0]}")
        if self.found:
            listed = "; ".join(f"({number}) {problem}" for number, problem in enumerate(self.found, 1))
            raise DataError(f"{self.path}: {len(self.found)} problems: {listed}")


def _check_arguments(path, date_column: str, price_column: str, feature_columns: tuple, duplicates: str,
                     start_date: Optional[str], end_date: Optional[str]):
    """(path, first day, last day, feature columns), or the error of the first option that cannot work."""
    if duplicates not in DUPLICATE_RULES:
        raise UserError(f"task.duplicates={duplicates!r} is not a rule; choose one of {', '.join(DUPLICATE_RULES)}")
    if path is None or str(path) == "":
        raise DataError(
            "task 'stock' needs a CSV of daily prices and has no download: pass --set task.data_file=PATH "
            f"(a file with a {date_column!r} column and a {price_column!r} column), or set RNNBENCH_DATA_DIR to the "
            "datasets folder holding stocks/sp500_GSPC_daily_1927_2023.csv for the reference experiment"
        )
    first, last = _parse_day(start_date, "start_date"), _parse_day(end_date, "end_date")
    if first is not None and last is not None and first > last:
        raise UserError(f"task.start_date={start_date} is after task.end_date={end_date}; swap them")
    for column in feature_columns:
        if column in (date_column, price_column):
            raise UserError(f"task.feature_columns lists {column!r}, which is already the date or price column")
    return Path(path), first, last, feature_columns


def _parse_day(value: Optional[str], option: str) -> Optional[pd.Timestamp]:
    if value is None or value == "":
        return None
    try:
        return pd.Timestamp(value)
    except (ValueError, TypeError):
        raise UserError(f"task.{option}={value!r} is not a date; use ISO format, e.g. 1990-01-31") from None


def _read_bytes(path: Path, date_column: str, price_column: str) -> bytes:
    if not path.exists():
        raise DataError(f"{path}: no such file; pass an existing CSV with --set task.data_file=PATH")
    if path.is_dir():
        raise DataError(f"{path} is a folder; task.data_file must be a CSV file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror}); check its permissions") from None
    if not raw.strip():
        raise DataError(f"{path} is empty; it needs a header line with {date_column!r} and {price_column!r} and rows")
    return raw


def _parse_csv(path: Path, raw: bytes, columns: tuple) -> pd.DataFrame:
    """The rows as text, every one of `columns` present and at least one row."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path} is not UTF-8 text (byte 0x{raw[error.start]:02x} at offset {error.start}); "
            "re-save it as UTF-8 CSV"
        ) from None
    try:
        # Everything as text so that conversion, and its failures, are explicit; blank lines are kept so that row
        # numbers map onto line numbers for the error messages.
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataError(f"{path} is not a readable CSV ({str(error).strip()}); fix the file's format") from None

    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path} has no column {', '.join(map(repr, missing))} "
            f"(its columns: {', '.join(map(repr, frame.columns))}); "
            "name the right ones with --set task.date_column=..., task.price_column=... or task.feature_columns=..."
        )
    if frame.empty:
        raise DataError(f"{path} has a header but no data rows")
    return frame


def _parse_dates(frame: pd.DataFrame, date_column: str, date_format: Optional[str], problems: Problems) -> pd.DataFrame:
    """The rows of `frame` with a readable date, that date in `_date`; the others are a problem (reported at once
    when no row is left)."""
    path = problems.path
    column = frame[date_column]
    try:
        dates = pd.to_datetime(column.str.strip(), errors="coerce", format=date_format)
    except (ValueError, TypeError) as error:
        raise DataError(
            f"{path}: cannot read the dates ({error}); fix the date column or set --set task.date_format=..."
        ) from None
    if getattr(dates.dt, "tz", None) is not None:
        # Daily bars are calendar days; a time zone on them only gets in the way of comparing with start_date.
        dates = dates.dt.tz_localize(None)
    frame = frame.assign(_date=dates)
    bad = dates.isna()
    if bad.any():
        problems.add(
            f"{int(bad.sum())} rows have no readable date in {date_column!r}: "
            f"{_quote_lines(frame.index[bad], column[bad])}; fix or delete those rows"
            + ("" if date_format else ", or give the format with --set task.date_format=%Y-%m-%d")
        )
        if bad.all():
            problems.report()
        frame = frame[~bad]
    return frame


def _sort_by_date(path: Path, frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """(frame in date order, how many rows were out of it); the row index keeps the file's line numbers."""
    out_of_order = int((frame["_date"].diff() < pd.Timedelta(0)).sum())
    if out_of_order:
        # stacklevel 3: the warning names read_price_history's caller, the line a user can act on.
        warnings.warn(f"{path}: {out_of_order} rows were out of date order; sorted them by date", stacklevel=3)
        frame = frame.sort_values("_date", kind="stable")
    return frame, out_of_order


def _keep_date_range(frame: pd.DataFrame, first, last, start_date, end_date, problems: Problems):
    """(rows from `first` to `last` inclusive, rows dropped before, rows dropped after); an empty range is a problem
    reported at once, with those found before it."""
    in_range = pd.Series(True, index=frame.index)
    if first is not None:
        in_range &= frame["_date"] >= first
    if last is not None:
        in_range &= frame["_date"] <= last
    rows_before = int((frame["_date"] < first).sum()) if first is not None else 0
    rows_after = int((frame["_date"] > last).sum()) if last is not None else 0
    kept = frame[in_range]
    if kept.empty:
        problems.add(
            f"no rows between start_date={start_date} and end_date={end_date}; the file covers "
            f"{frame['_date'].min().date()} to {frame['_date'].max().date()}"
        )
        problems.report()
    return kept, rows_before, rows_after


def _drop_duplicate_dates(frame: pd.DataFrame, date_column: str, rule: str,
                          problems: Problems) -> tuple[pd.DataFrame, int]:
    """(one row per date by `rule`, rows dropped); with `rule="error"` any repeated date is a problem (and the rows
    stay, so that their values are checked too)."""
    repeated = frame["_date"].duplicated(keep=False)
    if not repeated.any():
        return frame, 0
    if rule == "error":
        problems.add(
            f"{int(frame['_date'].duplicated().sum())} duplicate dates: "
            f"{_quote_lines(frame.index[repeated], frame[date_column][repeated])}; delete the extra rows, or pass "
            "--set task.duplicates=first (or last) to keep the first (last) row of each date in file order"
        )
        return frame, 0
    extra = frame["_date"].duplicated(keep="first" if rule == "first" else "last")
    return frame[~extra], int(extra.sum())


def _numeric_column(frame: pd.DataFrame, column: str, positive: bool, problems: Problems) -> np.ndarray:
    """The column as numbers; missing, non-numeric and (`positive`: not above zero, else: negative) values are
    problems."""
    values = pd.to_numeric(frame[column].str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    missing = ~np.isfinite(values)
    if missing.any():
        problems.add(
            f"{int(missing.sum())} rows have a missing or non-numeric {column!r}: "
            f"{_quote_lines(frame.index[missing], frame[column][missing])}; fill or delete those rows, or pick a date "
            "range without them (task.start_date / task.end_date)"
        )
    invalid = values <= 0 if positive else values < 0
    if invalid.any():
        rule = "must be positive (log returns need it)" if positive else "must not be negative"
        problems.add(
            f"{int(invalid.sum())} rows where {column!r} {rule}: "
            f"{_quote_lines(frame.index[invalid], frame[column][invalid])}; fix or delete those rows, or pick a date "
            "range without them (task.start_date / task.end_date)"
        )
    return values


def _quote_lines(frame_index, values) -> str:
    """'line 3 ('x'), line 7 ('y') and 4 more': row i of the frame is line i + 2 of the file (after the header)."""
    quoted = [f"line {int(i) + 2} ({v!r})" for i, v in list(zip(frame_index, values))[:MAX_QUOTED]]
    more = len(frame_index) - MAX_QUOTED
    return ", ".join(quoted) + (f" and {more} more" if more > 0 else "")
