"""The parameter tables: governance in force, market / oracle / pool / funds, agent populations.

The scenario's design section is read through :func:`perpsim.plots.venue_section`, so run
folders written before scenarios had a ``venue:`` section report the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from perpsim.plots import (
    RunData,
    fmt_duration,
    fmt_number,
    fmt_time,
    fmt_usd,
    governance_defaults,
    governance_value,
    venue_section,
)
from perpsim.report.model import Table
from perpsim.report.text import dist, rate, short

__all__ = ["GOVERNANCE_MEANING", "agents_table", "governance_table", "market_table", "varied_text"]


#: What each governance key means (shown in the parameters table).
GOVERNANCE_MEANING: Final[dict[str, str]] = {
    "initial_margin_rate": "margin to open a position, share of its value",
    "maintenance_margin_rate": "below this margin an account can be liquidated",
    "liquidation_penalty_rate": "share of the liquidated value paid to the liquidator",
    "penalty_fund_rate": "share of the liquidated value paid to the insurance fund",
    "taker_dev_fee_rate": "dev fee on two-party trades, taker",
    "maker_dev_fee_rate": "dev fee on two-party trades, maker (negative = rebate)",
    "lot_size": "position sizes are multiples of this (contracts)",
    "trading_lot_size": "trade sizes are multiples of this (contracts)",
    "social_loss_side": "who pays a loss the fund cannot cover",
    "cash_balance_rule": "whether cash may go negative while the margin holds",
    "settlement_funding": "where global settlement freezes funding",
    "pool_fee_rate": "AMM fee on traded value, paid to LPs",
    "pool_dev_fee_rate": "AMM fee on traded value, paid to the dev account",
    "ema_alpha": "per-second weight of the premium EMA",
    "update_index_prize": "USD paid to the keeper of an index update",
    "mark_premium_limit": "mark price stays within index × (1 ± this)",
    "funding_dampener": "premiums within ± this pay no funding",
}


def varied_text(key: str, values: Sequence[Any]) -> str:
    """``varied: 5 %, 10 %`` for the values a sweep gives a key."""
    return "varied: " + ", ".join(rate(key, v) for v in values)


def _varied_key(varied: dict[str, list[Any]], key: str) -> str | None:
    """The sweep's name of a venue key: ``venue.<key>`` (current layout) or ``<key>`` (old)."""
    for name in (f"venue.{key}", key):
        if name in varied:
            return name
    return None


def governance_table(scenario: dict[str, Any], varied: dict[str, list[Any]] | None = None) -> Table:
    """Every governance rate of the scenario's design in force at the start, and who set it."""
    rows = []
    section = venue_section(scenario)
    set_keys = section.get("governance") or {}
    varied = varied or {}
    keys = dict.fromkeys([*governance_defaults(str(section["kind"])), *set_keys])
    for key in keys:
        meaning = GOVERNANCE_MEANING.get(key, "")
        name = _varied_key(varied, f"governance.{key}")
        if name is not None:
            rows.append([key, varied_text(key, varied[name]), "the sweep", meaning])
            continue
        value = governance_value(scenario, key)
        source = "scenario" if key in set_keys else "engine default"
        rows.append([key, rate(key, value), source, meaning])
    return Table(
        "Governance in force at the start",
        ["key", "value", "set by", "meaning"],
        rows,
        note="Changes during the run are listed under Notable events.",
        numeric={1},
    )


def market_table(run: RunData, varied: dict[str, list[Any]] | None = None) -> Table:
    """The clock, price path, oracle, pool and funds of a run (or of a sweep's base scenario)."""
    sc = run.scenario
    venue = venue_section(sc)
    varied = varied or {}
    clock = sc.get("clock") or {}
    rows: list[list[str]] = []
    start, tick = clock.get("start"), clock.get("tick")
    if isinstance(start, int | float) and isinstance(tick, int | float):
        n = clock.get("ticks") or (clock.get("duration") or 0) // max(int(tick), 1)
        rows.append(["period", f"{fmt_time(start)} to {fmt_time(start + n * tick)}"])
        rows.append(["tick", f"{fmt_duration(tick)} ({n:,} ticks)"])
    pp = dict(sc.get("price_path") or {})
    if pp:
        kind = pp.pop("kind", "?")
        shocks = pp.pop("shocks", None)
        detail = ", ".join(
            f"{k} {short(v)}" for k, v in pp.items() if v is not None and k not in ("filter",)
        )
        if isinstance(pp.get("filter"), dict):
            detail += ", filter " + short(pp["filter"])
        rows.append(["market price path", f"{kind}: {detail}" if detail else str(kind)])
        if shocks:
            rows.append(["price-path shocks", short(shocks)])
    oracle = sc.get("oracle") or {}
    if oracle:
        hb, dev, lat = (
            oracle.get("heartbeat"),
            oracle.get("deviation_threshold"),
            oracle.get("latency"),
        )
        parts = []
        if isinstance(hb, int | float):
            parts.append(f"heartbeat {fmt_duration(hb)}")
        if isinstance(dev, int | float):
            parts.append(f"deviation threshold {dev:.3%}")
        if isinstance(lat, int | float):
            parts.append(f"latency {fmt_duration(lat)}")
        rows.append(["oracle", ", ".join(parts)])
    pool = venue.get("pool") or {}
    if pool:
        liq = pool.get("initial_liquidity")
        cash = pool.get("creator_cash")
        rows.append(
            [
                "AMM pool at the start",
                f"{fmt_number(liq)} contracts"
                + (f"; creator cash {fmt_usd(cash)}" if cash is not None else ""),
            ]
        )
    handled: set[str] = set()
    for key, label in (
        ("insurance_fund", "insurance fund at the start"),
        ("dev_balance", "dev account (pays index-update prizes)"),
    ):
        name = _varied_key(varied, key)
        if name is not None:
            handled.add(name)
            rows.append([label, "varied: " + ", ".join(fmt_usd(v) for v in varied[name])])
        elif key in venue:
            rows.append([label, fmt_usd(venue.get(key))])
    for key in varied:
        if key in handled or key.startswith(("governance.", "venue.governance.")):
            continue
        rows.append([key, "varied: " + ", ".join(short(v) for v in varied[key])])
    out = sc.get("output") or {}
    if out.get("record_every"):
        rows.append(["time series recorded every", f"{out['record_every']} ticks"])
    return Table("Market, oracle, pool and funds", ["item", "value"], rows)


def agents_table(run: RunData) -> Table:
    """The agent populations of a run with their parameters in words."""
    rows = []
    for pop in run.scenario.get("agents") or []:
        params = pop.get("params") or {}
        text = "; ".join(f"{k} {dist(v, k)}" for k, v in params.items() if v is not None)
        rows.append([str(pop.get("name")), str(pop.get("type")), str(pop.get("count")), text])
    note = "" if rows else "This scenario has no agents."
    return Table(
        "Agent populations",
        ["population", "type", "count", "parameters"],
        rows,
        note=note,
        numeric={2},
    )
