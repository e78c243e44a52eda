"""Reading the tables and JSON files of run and sweep folders; recognising those folders."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from perpsim.errors import ConfigError

__all__ = [
    "FloatArray",
    "TimeArray",
    "dt64",
    "is_run_dir",
    "is_sweep_dir",
    "read_json",
    "read_table",
    "unix_dt64",
]

FloatArray = npt.NDArray[np.float64]
TimeArray = npt.NDArray[np.datetime64]


def read_table(
    folder: Path, name: str, columns: Sequence[str] | None = None
) -> pd.DataFrame | None:
    """``<name>.parquet`` or ``<name>.csv`` of a folder, ``time`` parsed as UTC; None if absent."""
    pq, csv = folder / f"{name}.parquet", folder / f"{name}.csv"
    try:
        if pq.is_file():
            df = pd.read_parquet(pq, columns=list(columns) if columns else None)
        elif csv.is_file():
            df = pd.read_csv(csv, usecols=list(columns) if columns else None)
        else:
            return None
    except Exception as exc:  # a damaged file is bad input, not a bug
        raise ConfigError(f"{folder}: cannot read {name}: {exc}") from None
    if "time" in df.columns:
        df["time"] = pd.to_datetime(df["time"], utc=True)
    return df


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file as a dict (empty if the file is absent)."""
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read JSON: {exc}") from None
    return doc if isinstance(doc, dict) else {}


def is_run_dir(path: Path) -> bool:
    """Whether ``path`` looks like a run folder (``perpsim run`` outputs)."""
    p = Path(path)
    if not p.is_dir() or is_sweep_dir(p):
        return False
    return any((p / f).is_file() for f in ("timeseries.parquet", "timeseries.csv")) or (
        (p / "manifest.json").is_file() and (p / "summary.json").is_file()
    )


def is_sweep_dir(path: Path) -> bool:
    """Whether ``path`` looks like a sweep folder (has ``results.parquet`` or ``results.csv``)."""
    p = Path(path)
    return p.is_dir() and any((p / f).is_file() for f in ("results.parquet", "results.csv"))


def dt64(values: Any) -> TimeArray:
    """Times (UTC-aware or naive, a Series or an array) as naive UTC ``datetime64[ns]``."""
    s = pd.to_datetime(pd.Series(values), utc=True)
    return np.asarray(s.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]"))


def unix_dt64(seconds: float) -> np.datetime64:
    """Unix seconds as a naive UTC ``datetime64[ns]``."""
    return np.datetime64(round(float(seconds)) * 1_000_000_000, "ns")
