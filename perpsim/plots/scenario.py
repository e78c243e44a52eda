"""The scenario of a run as the figures and the report read it.

Scenarios name their exchange design under ``venue: {kind, governance, pool, insurance_fund,
dev_balance}``; run folders written before that keep the same keys at the top level.
:func:`venue_section` reads either, so old run folders still plot and report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from perpsim.engine.registry import DEFAULT_KIND
from perpsim.plots.files import FloatArray, TimeArray, dt64, unix_dt64
from perpsim.plots.rundata import RunData
from perpsim.plots.venues import governance_defaults

__all__ = [
    "VENUE_KEYS",
    "governance_series",
    "governance_value",
    "venue_kind",
    "venue_section",
]

#: The keys of a scenario's ``venue:`` section that older scenarios had at the top level.
VENUE_KEYS = ("governance", "pool", "insurance_fund", "dev_balance")


def venue_section(scenario: Mapping[str, Any]) -> dict[str, Any]:
    """The scenario's ``venue:`` section, or the old flat keys gathered as one.

    Returns:
        ``{"kind": ..., "governance": {...}, "pool": {...}, "insurance_fund": ..., ...}`` with
        only the keys the scenario has (``kind`` always, the default design if unnamed).
    """
    venue = scenario.get("venue")
    if isinstance(venue, Mapping):
        section = dict(venue)
    else:
        section = {k: scenario[k] for k in VENUE_KEYS if k in scenario}
    section.setdefault("kind", DEFAULT_KIND)
    return section


def venue_kind(scenario: Mapping[str, Any]) -> str:
    """The kind of exchange design a scenario runs (the default design if it names none)."""
    return str(venue_section(scenario)["kind"])


def governance_value(scenario: Mapping[str, Any], key: str) -> Any:
    """A governance key as the scenario set it, else the design's default.

    Raises:
        KeyError: the scenario's design has no such governance key.
    """
    section = venue_section(scenario)
    gov = section.get("governance") or {}
    if key in gov:
        return gov[key]
    return governance_defaults(str(section["kind"]))[key]


def _step_values(
    times: TimeArray, change_times: Sequence[np.datetime64], values: Sequence[float], base: float
) -> FloatArray:
    """A parameter in force at each time, given its base value and dated changes."""
    out = np.full(len(times), float(base))
    for t, v in sorted(zip(change_times, values, strict=True), key=lambda p: p[0]):
        out[times >= t] = v
    return out


def governance_series(run: RunData, key: str) -> FloatArray | None:
    """A governance rate in force at each recorded tick (None if the design has no such key).

    The changes come from the event log when there is one (what happened, including an admin
    agent's decisions), else from the scenario's ``set_governance`` events.
    """
    try:
        base = float(governance_value(run.scenario, key))
    except KeyError:
        return None
    when: list[np.datetime64] = []
    vals: list[float] = []
    ev = run.events
    if ev is not None and not ev.empty:
        rows = ev[(ev["kind"] == "set_governance") & (ev["key"] == key)]
        for _, r in rows.iterrows():
            try:
                vals.append(float(r["value"]))
            except (TypeError, ValueError):
                continue
            when.append(dt64([r["time"]])[0])
    else:
        start = (run.scenario.get("clock") or {}).get("start")
        for e in run.scenario.get("events") or []:
            if e.get("kind") == "set_governance" and e.get("key") == key and start is not None:
                when.append(unix_dt64(start + e["at"]))
                vals.append(float(e["value"]))
    return _step_values(run.times, when, vals, base)
