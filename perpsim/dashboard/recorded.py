"""A finished run folder for the dashboard: its series and events up to a chosen row.

``perpsim viz outputs/<scenario>/<run>/`` reads the folder with the plots' reader
(:func:`perpsim.plots.rundata.load_run`) and shows it without running anything; the page's time
slider picks the row shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perpsim.dashboard.snapshot import (
    NOTABLE_KINDS,
    EventRow,
    Snapshot,
    event_row,
    latest,
    marker_spans,
    scheduled_rows,
)
from perpsim.engine.registry import UnknownVenueError, venue_spec
from perpsim.plots.markers import event_markers
from perpsim.plots.rundata import RunData, load_run
from perpsim.plots.scenario import venue_kind

__all__ = ["RecordedRun"]


def _unix_seconds(values: Any) -> np.ndarray[Any, np.dtype[np.int64]]:
    # Whatever unit the table stores (s, us, ns), count whole seconds since the epoch.
    times = pd.to_datetime(pd.Series(values), utc=True)
    since = (times - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return np.asarray(since, dtype=np.int64)


class RecordedRun:
    """A run folder's time series and events, shown up to any recorded row.

    Args:
        path: The run folder.

    Raises:
        ConfigError: The folder is not a run folder (the plots' reader says why).
    """

    def __init__(self, path: Path) -> None:
        self.data: RunData = load_run(path)
        self.path = Path(path)
        ts = self.data.timeseries.copy()
        ts["time"] = _unix_seconds(ts["time"])
        self.timeseries = ts.reset_index(drop=True)
        self.kind = venue_kind(self.data.scenario)
        try:
            spec = venue_spec(self.kind)
            self.title, self.columns = spec.title, tuple(spec.columns)
        except UnknownVenueError:
            self.title, self.columns = self.kind, ()
        self.spans = marker_spans(event_markers(self.data))
        rows: list[tuple[int, EventRow]] = []
        events = self.data.events
        if events is not None and not events.empty:
            notable = events[events["kind"].isin(sorted(NOTABLE_KINDS))]
            times = _unix_seconds(notable["time"])
            for t, (_, record) in zip(times, notable.iterrows(), strict=True):
                row = event_row({**{str(k): v for k, v in record.items()}, "time": int(t)})
                if row is not None:
                    rows.append((int(t), row))
        self._rows = rows
        self._times = np.asarray([t for t, r in rows if r.kind == "liquidation"], dtype=np.int64)

    @property
    def n_rows(self) -> int:
        """Recorded rows (the slider's range is 0 to ``n_rows - 1``)."""
        return len(self.timeseries)

    def time_of(self, row: int) -> int:
        """Unix time of a recorded row."""
        return int(self.timeseries["time"].iloc[row])

    def snapshot(self, row: int) -> Snapshot:
        """The run as it stood at recorded row ``row`` (clamped to the recorded range)."""
        row = min(max(int(row), 0), self.n_rows - 1)
        ts = self.timeseries.iloc[: row + 1]
        now = self.time_of(row)
        rows = [r for t, r in self._rows if t <= now]
        liquidations = self._times[self._times <= now]
        tick = int(ts["tick"].iloc[-1]) if "tick" in ts.columns else row
        last_tick = (
            int(self.timeseries["tick"].iloc[-1]) if "tick" in ts.columns else self.n_rows - 1
        )
        return Snapshot(
            key=(str(self.path), row),
            name=self.data.name,
            kind=self.kind,
            title=self.title,
            seed=int(self.data.seed) if isinstance(self.data.seed, int) else 0,
            timeseries=ts,
            start=self.time_of(0),
            end=self.time_of(self.n_rows - 1),
            now=now,
            tick=tick,
            n_ticks=last_tick,
            events=latest(rows[-200:] + scheduled_rows(self.spans, now)),
            markers=tuple(s for s in self.spans if s.start <= now),
            liquidation_times=tuple(int(t) for t in liquidations),
            liquidation_count=len(liquidations),
            columns=self.columns,
        )
