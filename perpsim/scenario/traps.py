"""Warnings for valid scenarios that probably do not do what their author meant.

``perpsim validate`` prints them (the file stays valid, exit 0): each names a trap a scenario
written from scratch falls into silently, what it does to the run, and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from perpsim.scenario.schema import Scenario

__all__ = ["LOT_FRACTION", "TRADER_TYPES", "scenario_warnings"]

#: Agent types that open positions (and so need arbitrage and liquidation around them).
TRADER_TYPES: Final = ("noise_trader", "momentum_trader", "whale")

#: A lot smaller than this fraction of the smallest typical trade slices every order and every
#: liquidation into many tiny pieces (1e-18 once split one run's liquidations into 2,155).
LOT_FRACTION: Final = 1e-9

#: The parameter of each trader type that sizes one of its trades, in contracts.
_SIZE_PARAMS: Final = {
    "noise_trader": "size",
    "momentum_trader": "size_per_signal",
    "whale": "size",
}


def _count(scenario: Scenario, agent_type: str) -> int:
    return sum(int(p.count) for p in scenario.agents if p.type == agent_type)


def _typical(value: Any) -> float | None:
    """A number, or a distribution's centre (median, mean, value; the smallest choice)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    for name in ("median", "mean", "value"):
        centre = getattr(value, name, None)
        if isinstance(centre, int | float) and not isinstance(centre, bool):
            return float(centre)
    low, high = getattr(value, "low", None), getattr(value, "high", None)
    if isinstance(low, int | float) and isinstance(high, int | float):
        return (float(low) + float(high)) / 2
    values = getattr(value, "values", None)
    if isinstance(values, tuple | list) and values:
        numbers = [float(v) for v in values if isinstance(v, int | float)]
        return min(numbers) if numbers else None
    return None


def _typical_sizes(scenario: Scenario) -> list[tuple[str, float]]:
    sizes: list[tuple[str, float]] = []
    for pop in scenario.agents:
        key = _SIZE_PARAMS.get(pop.type)
        typical = _typical(getattr(pop.params, key, None)) if key else None
        if pop.count and typical is not None and typical > 0:
            sizes.append((f"agents.{pop.name}.params.{key}", typical))
    return sizes


def _lots(venue: Any) -> list[tuple[str, float]]:
    """The venue's lot sizes, defaults included (a design without lots has none)."""
    found: list[tuple[str, float]] = []
    # The validated governance (engine defaults applied) where the design has one, else the
    # keys the scenario set.
    sources = [getattr(venue, "perpetual_governance", None), getattr(venue, "governance", None)]
    for name in ("lot_size", "trading_lot_size"):
        for source in sources:
            value = source.get(name) if isinstance(source, Mapping) else getattr(source, name, None)
            if isinstance(value, int | float) and not isinstance(value, bool):
                found.append((f"venue.governance.{name}", float(value)))
                break
    return found


def scenario_warnings(scenario: Scenario) -> list[str]:
    """The traps ``scenario`` falls into, one message each (empty when none).

    - traders but no arbitrageur: nothing pulls the pool's price to the index, which drifts
      from it by 5-10% over a day of noise trading;
    - traders but no liquidator: unsafe accounts are never liquidated;
    - a lot size far below the typical trade size.
    """
    out: list[str] = []
    traders = sum(_count(scenario, t) for t in TRADER_TYPES)
    if traders and not _count(scenario, "arbitrageur"):
        out.append(
            "agents: no arbitrageur: nothing trades the pool back to the index, so its price"
            " (and the mark and funding) drifts 5-10% from the index over a day of trading; add"
            " an arbitrageur population unless that drift is the question"
        )
    # A backstop vault is a liquidator without a capacity: either one liquidates.
    if traders and not (_count(scenario, "liquidator") + _count(scenario, "backstop")):
        out.append(
            "agents: no liquidator: accounts under maintenance margin are never liquidated, so"
            " losses grow unchecked; add a liquidator population unless that is the question"
        )
    lots = _lots(scenario.venue)
    sizes = _typical_sizes(scenario)
    if lots and sizes:
        key, lot = max(lots, key=lambda kv: kv[1])
        where, smallest = min(sizes, key=lambda kv: kv[1])
        if lot < LOT_FRACTION * smallest:
            out.append(
                f"{key}: {lot:g} contracts is below {LOT_FRACTION:g} of a typical trade"
                f" ({where} = {smallest:g}): orders and liquidations are cut into tiny pieces;"
                " set lot_size and trading_lot_size to the venue's real lots (e.g. 0.001 and"
                " 0.01 contracts)"
            )
    return out
