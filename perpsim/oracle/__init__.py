"""Price paths (the market price) and the oracle feed (the index the exchange sees).

* :mod:`perpsim.oracle.config`: pydantic models of paths, shocks and the feed, and the shared
  :func:`parse_duration`.
* :mod:`perpsim.oracle.paths`: :func:`build_path`, which generates a path up front at the
  run's ticks.
* :mod:`perpsim.oracle.data`: loading and validation of real price CSV files.
* :mod:`perpsim.oracle.feed`: :class:`OracleFeed`, which turns a market path into
  :class:`FeedUpdates` (the engine's index lookup).
"""

from __future__ import annotations

from perpsim.oracle.config import (
    SECONDS_PER_YEAR,
    BootstrapPath,
    ConstantPath,
    GBMPath,
    HistoricalPath,
    JumpDiffusionPath,
    Manipulation,
    OracleFeedConfig,
    Outage,
    PricePathConfig,
    Regime,
    RegimeSwitchingPath,
    Shock,
    parse_duration,
    parse_timestamp,
)
from perpsim.oracle.data import PriceSeries, load_price_series
from perpsim.oracle.feed import REASONS, FeedUpdates, OracleFeed
from perpsim.oracle.paths import (
    RegimeSwitchingResult,
    apply_shocks,
    bridge_interpolate,
    build_path,
    load_path_data,
    path_start_time,
    regime_switching_path,
    resample,
)

__all__ = [
    "REASONS",
    "SECONDS_PER_YEAR",
    "BootstrapPath",
    "ConstantPath",
    "FeedUpdates",
    "GBMPath",
    "HistoricalPath",
    "JumpDiffusionPath",
    "Manipulation",
    "OracleFeed",
    "OracleFeedConfig",
    "Outage",
    "PricePathConfig",
    "PriceSeries",
    "Regime",
    "RegimeSwitchingPath",
    "RegimeSwitchingResult",
    "Shock",
    "apply_shocks",
    "bridge_interpolate",
    "build_path",
    "load_path_data",
    "load_price_series",
    "parse_duration",
    "parse_timestamp",
    "path_start_time",
    "regime_switching_path",
    "resample",
]
