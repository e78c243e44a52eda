"""Loading and validating real price series from CSV files.

A price file has one row per observation with a time column (Unix seconds, or ISO 8601 strings
taken as UTC when they carry no zone) and a price column. Multi-series files (such as
``scenarios/data/events_1h.csv``) are narrowed with a ``filter`` of column values. The loader
rejects, with a :class:`~perpsim.errors.ConfigError` naming the file, the line and the problem:
a missing file or column, a filter that matches nothing, unreadable or missing times,
unsorted or duplicated times, missing, non-numeric or non-positive prices, and gaps larger than
``gap_tolerance`` times the median spacing.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from perpsim.errors import ConfigError
from perpsim.oracle.config import MAX_PRICE, MIN_PRICE

__all__ = ["PriceSeries", "format_time", "load_price_series", "resolve_data_file"]

#: Numeric times above this are taken to be milliseconds (or finer) by mistake.
_MAX_UNIX_SECONDS = 100_000_000_000


@dataclass(frozen=True)
class PriceSeries:
    """A validated, strictly increasing price series.

    Attributes:
        times: Unix seconds (int64), strictly increasing, read-only.
        prices: Prices (float64), finite and positive, read-only.
        source: The file the series came from.
    """

    times: npt.NDArray[np.int64]
    prices: npt.NDArray[np.float64]
    source: Path

    @property
    def spacing(self) -> int:
        """Median spacing between consecutive observations, in seconds."""
        return int(np.median(np.diff(self.times)))

    @property
    def log_returns(self) -> npt.NDArray[np.float64]:
        """Log-returns between consecutive observations."""
        return np.diff(np.log(self.prices))


def format_time(unix_seconds: int) -> str:
    """Formats Unix seconds as ``2020-03-12T10:00:00Z (1584007200)`` for error messages."""
    stamp = pd.Timestamp(int(unix_seconds), unit="s", tz="UTC")
    return f"{stamp.strftime('%Y-%m-%dT%H:%M:%SZ')} ({int(unix_seconds)})"


def resolve_data_file(file: str | Path, base_dir: Path | None) -> Path:
    """Resolves a data file name against the scenario folder.

    Args:
        file: Absolute path, or a path relative to ``base_dir``.
        base_dir: The scenario file's folder; ``None`` means the current directory.

    Returns:
        The resolved path.

    Raises:
        ConfigError: If the file does not exist.
    """
    path = Path(file).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if not path.is_file():
        where = f" (relative to {base_dir})" if base_dir is not None else ""
        raise ConfigError(f"price file {str(file)!r}{where} not found: {path}")
    return path


def load_price_series(
    path: Path,
    *,
    time_column: str,
    price_column: str,
    filter: Mapping[str, str | int | float] | None = None,
    start: int | None = None,
    end: int | None = None,
    gap_tolerance: float = 1.5,
) -> PriceSeries:
    """Loads and validates a price series from a CSV file.

    Results are cached on the file's path, size and modification time and on the arguments, so
    a sweep that builds the same path many times reads the file once.

    Args:
        path: The CSV file.
        time_column: Column of times (Unix seconds or ISO 8601 strings).
        price_column: Column of prices.
        filter: Keep only rows where each column equals the value (compared as text).
        start: Keep rows at or after this Unix time.
        end: Keep rows at or before this Unix time.
        gap_tolerance: Largest allowed spacing as a multiple of the median spacing.

    Returns:
        The validated series.

    Raises:
        ConfigError: If the file or its data is invalid (see the module docstring).
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise ConfigError(f"price file {path} cannot be read: {exc}") from exc
    filter_items = tuple(sorted((str(k), str(v)) for k, v in (filter or {}).items()))
    return _load_cached(
        str(path.resolve()),
        stat.st_mtime_ns,
        stat.st_size,
        time_column,
        price_column,
        filter_items,
        start,
        end,
        float(gap_tolerance),
    )


@functools.lru_cache(maxsize=32)
def _load_cached(
    path_str: str,
    _mtime_ns: int,
    _size: int,
    time_column: str,
    price_column: str,
    filter_items: tuple[tuple[str, str], ...],
    start: int | None,
    end: int | None,
    gap_tolerance: float,
) -> PriceSeries:
    path = Path(path_str)
    frame = _read_columns(path, time_column, price_column, [k for k, _ in filter_items])
    for column, value in filter_items:
        values = frame[column].astype("string").str.strip()
        kept = values == value
        if not kept.any():
            seen = sorted(str(v) for v in values.dropna().unique())
            shown = ", ".join(seen[:12]) + (", ..." if len(seen) > 12 else "")
            raise ConfigError(
                f"{path}: filter {column}={value!r} matches no row (values in column "
                f"{column!r} after the other filters: {shown or 'none'})"
            )
        frame = frame[kept.to_numpy(dtype=bool)]
    if len(frame) < 2:
        raise ConfigError(
            f"{path}: has {len(frame)} data row(s) after the header"
            f"{' and the filter' if filter_items else ''}; at least 2 are needed"
        )
    lines = frame.index.to_numpy(dtype=np.int64) + 2  # line 1 is the header
    times = _parse_times(path, frame[time_column], lines, time_column)
    _check_order(path, times, lines, time_column)

    lo = np.searchsorted(times, start, side="left") if start is not None else 0
    hi = np.searchsorted(times, end, side="right") if end is not None else len(times)
    if hi - lo < 2:
        raise ConfigError(
            f"{path}: the window start={_opt_time(start)} end={_opt_time(end)} keeps "
            f"{max(hi - lo, 0)} row(s); at least 2 are needed (the data runs from "
            f"{format_time(int(times[0]))} to {format_time(int(times[-1]))})"
        )
    times = times[lo:hi]
    lines = lines[lo:hi]
    prices = _parse_prices(path, frame[price_column].iloc[lo:hi], lines, times, price_column)
    _check_gaps(path, times, gap_tolerance)
    times.flags.writeable = False
    prices.flags.writeable = False
    return PriceSeries(times=times, prices=prices, source=path)


def _opt_time(value: int | None) -> str:
    return "none" if value is None else format_time(value)


def _read_columns(
    path: Path, time_column: str, price_column: str, filter_columns: list[str]
) -> pd.DataFrame:
    try:
        header = pd.read_csv(path, nrows=0)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read as CSV: {exc}") from exc
    available = [str(c) for c in header.columns]
    wanted = [("time_column", time_column), ("price_column", price_column)]
    wanted += [("filter column", c) for c in filter_columns]
    for role, column in wanted:
        if column not in available:
            raise ConfigError(
                f"{path}: {role} {column!r} is not in the file (columns: {', '.join(available)})"
            )
    columns = list(dict.fromkeys([time_column, price_column, *filter_columns]))
    try:
        # Blank lines are kept (as empty rows) so that reported line numbers match the file.
        frame = pd.read_csv(
            path, usecols=columns, dtype=dict.fromkeys(columns, str), skip_blank_lines=False
        )
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read as CSV: {exc}") from exc
    filled = np.flatnonzero(frame.notna().any(axis=1).to_numpy(dtype=bool))
    return frame.iloc[: int(filled[-1]) + 1] if filled.size else frame.iloc[:0]


def _parse_times(
    path: Path, raw: pd.Series, lines: npt.NDArray[np.int64], column: str
) -> npt.NDArray[np.int64]:
    text = raw.astype("string").str.strip()
    missing = text.isna().to_numpy(dtype=bool) | (text == "").fillna(True).to_numpy(dtype=bool)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise ConfigError(f"{path}: line {lines[i]}: the time ({column!r}) is missing")
    numeric = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    is_number = np.isfinite(numeric)
    if is_number.any() and not is_number.all():
        i = int(np.flatnonzero(~is_number)[0])
        raise ConfigError(
            f"{path}: line {lines[i]}: cannot read time {text.iloc[i]!r} ({column!r}): the "
            "column holds Unix seconds, so every time must be a number"
        )
    if is_number.all():
        frac = numeric != np.floor(numeric)
        if frac.any():
            i = int(np.flatnonzero(frac)[0])
            raise ConfigError(
                f"{path}: line {lines[i]}: time {text.iloc[i]!r} ({column!r}) is not a whole "
                "number of Unix seconds"
            )
        if np.abs(numeric).max() >= _MAX_UNIX_SECONDS:
            i = int(np.argmax(np.abs(numeric)))
            raise ConfigError(
                f"{path}: line {lines[i]}: time {text.iloc[i]!r} ({column!r}) is too large for "
                "Unix seconds (milliseconds?); convert the column to seconds"
            )
        return numeric.astype(np.int64)
    stamps = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    bad = stamps.isna().to_numpy(dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(
            f"{path}: line {lines[i]}: cannot read time {text.iloc[i]!r} ({column!r}): use Unix "
            "seconds or ISO 8601 such as 2020-03-12T10:00:00Z"
        )
    nanos = stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    rest = nanos % 1_000_000_000 != 0
    if rest.any():
        i = int(np.flatnonzero(rest)[0])
        raise ConfigError(
            f"{path}: line {lines[i]}: time {text.iloc[i]!r} ({column!r}) is not a whole second"
        )
    return np.asarray(nanos // 1_000_000_000, dtype=np.int64)


def _check_order(
    path: Path, times: npt.NDArray[np.int64], lines: npt.NDArray[np.int64], column: str
) -> None:
    steps = np.diff(times)
    bad = np.flatnonzero(steps <= 0)
    if bad.size == 0:
        return
    i = int(bad[0]) + 1
    if steps[i - 1] == 0:
        problem = "is duplicated"
    else:
        problem = f"is earlier than the previous row's {format_time(int(times[i - 1]))}"
    raise ConfigError(
        f"{path}: line {lines[i]}: time {format_time(int(times[i]))} ({column!r}) {problem}; "
        f"times must be strictly increasing (line {lines[i - 1]} is the previous row)"
    )


def _parse_prices(
    path: Path,
    raw: pd.Series,
    lines: npt.NDArray[np.int64],
    times: npt.NDArray[np.int64],
    column: str,
) -> npt.NDArray[np.float64]:
    text = raw.astype("string").str.strip()
    prices = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(prices)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raw_text = text.iloc[i]
        if pd.isna(raw_text) or raw_text == "":
            shown = "missing or NaN"
        else:
            shown = f"{raw_text!r}, not a finite number"
        raise ConfigError(
            f"{path}: line {lines[i]} at {format_time(int(times[i]))}: price ({column!r}) is "
            f"{shown} ({int(bad.sum())} such row(s) in the window)"
        )
    nonpos = prices <= 0
    if nonpos.any():
        i = int(np.flatnonzero(nonpos)[0])
        raise ConfigError(
            f"{path}: line {lines[i]} at {format_time(int(times[i]))}: price ({column!r}) is "
            f"{float(prices[i])!r}; prices must be positive ({int(nonpos.sum())} such row(s))"
        )
    outside = (prices < MIN_PRICE) | (prices > MAX_PRICE)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise ConfigError(
            f"{path}: line {lines[i]} at {format_time(int(times[i]))}: price ({column!r}) is "
            f"{float(prices[i])!r}, outside the prices a run can carry [{MIN_PRICE:g},"
            f" {MAX_PRICE:g}] ({int(outside.sum())} such row(s))"
        )
    return np.ascontiguousarray(prices)


def _check_gaps(path: Path, times: npt.NDArray[np.int64], tolerance: float) -> None:
    steps = np.diff(times)
    median = float(np.median(steps))
    gaps = np.flatnonzero(steps > tolerance * median)
    if gaps.size == 0:
        return
    shown = "; ".join(
        f"{int(steps[i])} s from {format_time(int(times[i]))} to {format_time(int(times[i + 1]))}"
        for i in gaps[:5]
    )
    more = f" and {gaps.size - 5} more" if gaps.size > 5 else ""
    raise ConfigError(
        f"{path}: {gaps.size} gap(s) longer than {tolerance:g} × the median spacing of "
        f"{median:g} s: {shown}{more}; choose a window without gaps (start/end) or raise "
        "gap_tolerance"
    )
