"""The model-level time series: common reporters plus the venue's ``observe()``.

Mesa's ``DataCollector`` calls one Python reporter per column per collection; a venue already
computes its whole row in one pass (one vectorised margin scan for the unsafe and bankrupt
counts), so the :class:`Recorder` asks the venue once per recorded tick and keeps rows in the
column order of :attr:`Recorder.columns`. It answers like a ``DataCollector``
(:meth:`Recorder.get_model_vars_dataframe`), so a dashboard can read it while the model runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from perpsim.engine.venue import COMMON_COLUMNS, Venue
from perpsim.errors import EngineError
from perpsim.metrics import DEFAULT_PRICE_IMPACT_SIZE

#: Columns the model itself reports before the venue's: the clock, the market, the oracle.
CLOCK_COLUMNS: tuple[str, ...] = ("time", "tick", "market_price", "index_price", "index_age_s")

#: Columns counted since the previous recorded row (social loss: cumulative): from the event
#: log, and the most accounts unsafe / bankrupt when liquidators took the unsafe set, before
#: they acted (the venue's ``unsafe_accounts`` / ``bankrupt_accounts`` are at the end of the
#: tick, after them).
EVENT_COUNT_COLUMNS: tuple[str, ...] = (
    "social_loss_total",
    "liquidations",
    "liquidation_volume",
    "trades",
    "volume",
    "unsafe_accounts_before_liquidation",
    "bankrupt_accounts_before_liquidation",
)


#: Columns the model measures by asking the venue a question at each recorded row: the price
#: impact of a buy of ``output.price_impact_size`` contracts (a quote: nothing changes), NaN
#: when the venue cannot quote it (outside NORMAL, or a pool too small to sell that much).
PROBE_COLUMNS: tuple[str, ...] = ("price_impact",)


def timeseries_columns(venue_columns: Sequence[str]) -> tuple[str, ...]:
    """Every column of a run's time series, in order, for a venue with ``venue_columns``."""
    return (
        CLOCK_COLUMNS + COMMON_COLUMNS + PROBE_COLUMNS + EVENT_COUNT_COLUMNS + tuple(venue_columns)
    )


def price_impact(venue: Venue, size: float) -> float:
    """``venue.quote(size).price_impact`` (a fraction), or NaN when the venue refuses to quote."""
    try:
        return float(venue.quote(size).price_impact)
    except EngineError:
        return math.nan


class Recorder:
    """Collects one row per recorded tick.

    Args:
        venue: the venue whose :meth:`~perpsim.engine.venue.Venue.observe` gives its columns.
        venue_columns: the venue's own columns (its registry spec's ``columns``).
        clock: returns the model's clock columns (:data:`CLOCK_COLUMNS`) for the current tick.
        counts: returns the event counts (:data:`EVENT_COUNT_COLUMNS`) since the last row and
            resets them.
        price_impact_size: the buy whose price impact is recorded (contracts).
    """

    def __init__(
        self,
        venue: Venue,
        venue_columns: Sequence[str],
        clock: Callable[[], dict[str, Any]],
        counts: Callable[[], dict[str, Any]],
        price_impact_size: float = DEFAULT_PRICE_IMPACT_SIZE,
    ) -> None:
        self.venue = venue
        self.venue_columns = tuple(venue_columns)
        self.columns = timeseries_columns(self.venue_columns)
        self._clock = clock
        self._counts = counts
        self.price_impact_size = float(price_impact_size)
        self.rows: list[dict[str, Any]] = []

    def record(self) -> dict[str, Any]:
        """Record (and return) the row of the current tick."""
        row = self._clock()
        seen = self.venue.observe()
        for column in COMMON_COLUMNS:
            row[column] = seen[column]
        row["price_impact"] = price_impact(self.venue, self.price_impact_size)
        row.update(self._counts())
        for column in self.venue_columns:
            row[column] = seen[column]
        self.rows.append(row)
        return row

    def get_model_vars_dataframe(self) -> pd.DataFrame:
        """The rows so far as a DataFrame (Mesa ``DataCollector``'s name for it)."""
        return pd.DataFrame(self.rows, columns=list(self.columns))
