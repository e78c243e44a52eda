"""The exchange engine: plain Python + numpy, no Mesa.

- :mod:`perpsim.engine.venue` — the venue contract every design implements (agents, the model and
  the outputs use nothing else);
- :mod:`perpsim.engine.registry` — venue kind → spec (config model, build, columns, replay,
  figures);
- :mod:`perpsim.engine.core` — what every design shares (account arrays, number and lot checks,
  statuses, the event sink, the accounting check);
- :mod:`perpsim.engine.venues` — one folder per design (``mcdex_v1``: the MCDEX v1 perpetual of
  seed 002 and AMM of seed 004).

For the Python API of MCDEX v1 (reference cases, audits), the names of
:mod:`perpsim.engine.venues.mcdex_v1` (``Perpetual``, ``AMMPool``, ``MCDEXVenue``, the governance
classes, ...) are also importable from here; they are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from perpsim.engine.core.accounts import AccountState, AccountStore, Side
from perpsim.engine.core.index import IndexOracle, SettableOracle
from perpsim.engine.core.status import Status
from perpsim.engine.registry import VenueSpec, venue_kinds, venue_spec
from perpsim.engine.venue import (
    AccountRecord,
    AccountView,
    Fill,
    LiquidationResult,
    Quote,
    Venue,
    VenueRules,
)

#: Names of the MCDEX v1 design served from :mod:`perpsim.engine.venues.mcdex_v1` on demand.
_MCDEX_V1_NAMES = frozenset(
    {
        "AMM_GOVERNANCE_KEYS",
        "GOVERNANCE_KEYS",
        "PERPETUAL_GOVERNANCE_KEYS",
        "AMMGovernance",
        "AMMPool",
        "ExternalPriceSource",
        "FundingState",
        "MCDEXVenue",
        "Perpetual",
        "PerpetualGovernance",
        "PriceSource",
        "TradeFill",
    }
)


def __getattr__(name: str) -> Any:
    if name in _MCDEX_V1_NAMES:
        return getattr(importlib.import_module("perpsim.engine.venues.mcdex_v1"), name)
    raise AttributeError(f"module 'perpsim.engine' has no attribute {name!r}")


__all__ = [
    "AccountRecord",
    "AccountState",
    "AccountStore",
    "AccountView",
    "Fill",
    "IndexOracle",
    "LiquidationResult",
    "Quote",
    "SettableOracle",
    "Side",
    "Status",
    "Venue",
    "VenueRules",
    "VenueSpec",
    "venue_kinds",
    "venue_spec",
]
