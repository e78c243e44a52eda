"""The outputs of one run, read from its folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from perpsim.errors import ConfigError
from perpsim.plots.files import FloatArray, TimeArray, dt64, read_json, read_table

__all__ = ["REQUIRED_TS", "RunData", "load_run"]


#: The common columns every figure needs (a design's own columns are optional).
REQUIRED_TS: Final = (
    "time",
    "market_price",
    "index_price",
    "mark_price",
    "fair_price",
    "premium_rate",
    "funding_rate",
    "accumulated_funding_per_contract",
    "open_interest",
    "lp_share_price",
    "insurance_fund",
    "social_loss_total",
    "bad_debt",
    "liquidations",
    "liquidation_volume",
    "unsafe_accounts",
    "bankrupt_accounts",
    "status",
)


@dataclass
class RunData:
    """The outputs of one run, read from its folder.

    Attributes:
        path: The run folder.
        timeseries: One row per recorded tick (``time`` is a UTC timestamp).
        events: The event log, or None if it was not written.
        accounts: The final ledger, or None if it was not written.
        summary: ``summary.json``.
        manifest: ``manifest.json``.
    """

    path: Path
    timeseries: pd.DataFrame
    events: pd.DataFrame | None
    accounts: pd.DataFrame | None
    summary: dict[str, Any]
    manifest: dict[str, Any]

    @property
    def scenario(self) -> dict[str, Any]:
        """The resolved scenario of the manifest (empty if unknown)."""
        sc = self.manifest.get("resolved_scenario")
        return sc if isinstance(sc, dict) else {}

    @property
    def name(self) -> str:
        """The scenario's name."""
        return str(self.manifest.get("scenario") or self.scenario.get("name") or self.path.name)

    @property
    def seed(self) -> Any:
        """The run's seed."""
        return self.manifest.get("seed", self.scenario.get("seed"))

    @property
    def times(self) -> TimeArray:
        """The time column as naive UTC ``datetime64[ns]``."""
        return dt64(self.timeseries["time"])

    def column(self, name: str) -> FloatArray:
        """A numeric time-series column as floats (NaN where missing)."""
        return np.asarray(pd.to_numeric(self.timeseries[name], errors="coerce"), dtype=np.float64)

    def liquidations(self) -> pd.DataFrame:
        """The ``liquidate`` events (empty if none or no event log)."""
        if self.events is None or self.events.empty:
            return pd.DataFrame(columns=["time", "account", "side", "amount", "price", "loss"])
        return self.events[self.events["kind"] == "liquidate"].reset_index(drop=True)


def load_run(path: Path) -> RunData:
    """Read a run folder.

    Raises:
        ConfigError: the folder does not exist or holds no (readable) time series.
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: no such folder")
    if not p.is_dir():
        raise ConfigError(f"{p}: not a folder (give a run folder or a sweep folder)")
    ts = read_table(p, "timeseries")
    if ts is None:
        raise ConfigError(
            f"{p}: no timeseries.parquet or timeseries.csv — not a run folder, or the run was"
            " written without its time series"
        )
    missing = [c for c in REQUIRED_TS if c not in ts.columns]
    if missing:
        raise ConfigError(f"{p}: the time series lacks column(s) {', '.join(missing)}")
    if ts.empty:
        raise ConfigError(f"{p}: the time series has no rows")
    ts = ts.sort_values("time", kind="stable").reset_index(drop=True)
    return RunData(
        path=p,
        timeseries=ts,
        events=read_table(p, "events"),
        accounts=read_table(p, "accounts"),
        summary=read_json(p / "summary.json"),
        manifest=read_json(p / "manifest.json"),
    )
