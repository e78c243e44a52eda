"""Scenario events and status periods drawn on every time axis, and the title of run figures.

Shocks and outages come from the resolved scenario (as scheduled); governance changes and
settlement from the event log when there is one (as they happened); EMERGENCY / SETTLED periods
from the time series.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from perpsim.plots.files import dt64, unix_dt64
from perpsim.plots.format import fmt_duration, fmt_time
from perpsim.plots.rundata import RunData
from perpsim.plots.style import date_ticks, dnum, subtitle_title

__all__ = ["Marker", "event_markers", "run_title", "time_axes"]


_EVENT_STYLE: Final[dict[str, tuple[str, str]]] = {
    "price_shock": ("#D55E00", "--"),
    "oracle_outage": ("#CC79A7", "-"),
    "oracle_manipulation": ("#CC79A7", ":"),
    "keeper_outage": ("#8B5A2B", "-"),
    "liquidator_outage": ("#E69F00", "-"),
    "hedger_outage": ("#009E73", "-"),
    "liquidity_withdrawal": ("#56B4E9", "-."),
    "set_governance": ("#555555", ":"),
    "governance_rule": ("#0072B2", "--"),
    "halt": ("#B22222", "-"),
    "begin_global_settlement": ("#000000", "-"),
    "global_settled": ("#000000", "-."),
    "EMERGENCY": ("#F0E442", "-"),
    "SETTLED": ("#999999", "-"),
}


_EVENT_NAMES: Final[dict[str, str]] = {
    "price_shock": "price shocks",
    "oracle_outage": "oracle outages",
    "oracle_manipulation": "oracle manipulations",
    "keeper_outage": "keeper outages",
    "liquidator_outage": "liquidator outages",
    "hedger_outage": "hedger outages",
    "liquidity_withdrawal": "LP withdrawals",
    "set_governance": "governance changes",
    "governance_rule": "governance rule firings",
    "halt": "halts (oracle guard, rules)",
    "begin_global_settlement": "global settlement begins",
    "global_settled": "settlement complete",
}


@dataclass(frozen=True)
class Marker:
    """A scenario event or a status period drawn on every time axis.

    Attributes:
        kind: Event kind (``price_shock``, ``oracle_outage``, ...) or status (``EMERGENCY``).
        start: Start (naive UTC).
        end: End of a window, None for an instant.
        label: Text for the legend and the report.
    """

    kind: str
    start: np.datetime64
    end: np.datetime64 | None
    label: str


def _event_label(kind: str, e: Mapping[str, Any]) -> str:
    def num(key: str) -> float:
        v = e.get(key)
        return float(v) if isinstance(v, int | float) else math.nan

    pop = f" ({e['population']})" if e.get("population") else ""
    if kind == "price_shock":
        over = num("over")
        how = f" over {fmt_duration(over)}" if over > 0 else " (jump)"
        return f"price shock {num('change'):+.0%}{how}"
    if kind == "oracle_outage":
        return f"oracle outage, {fmt_duration(num('duration'))}"
    if kind == "oracle_manipulation":
        return f"oracle manipulation {num('spike'):+.0%}, {fmt_duration(num('duration'))}"
    if kind == "keeper_outage":
        return f"keeper outage{pop}, {fmt_duration(num('duration'))}"
    if kind == "liquidator_outage":
        return f"liquidator outage{pop}, {fmt_duration(num('duration'))}"
    if kind == "hedger_outage":
        return f"hedger outage{pop}, {fmt_duration(num('duration'))}"
    if kind == "liquidity_withdrawal":
        return f"LPs{pop} withdraw {num('fraction'):.0%}"
    if kind == "set_governance":
        return f"governance: {e.get('key')} → {e.get('value')}"
    if kind == "governance_rule":
        value = f" → {e.get('value')}" if e.get("value") is not None else ""
        return f"rule {e.get('rule')} {e.get('stage')}: {e.get('key')}{value}"
    if kind == "halt":
        return f"{e.get('key')} halted ({e.get('rule')})"
    if kind == "begin_global_settlement":
        price = num("price")
        return "global settlement begins" + (f" at {price:,.2f} USD" if price == price else "")
    if kind == "global_settled":
        return "settlement complete"
    return kind.replace("_", " ")


def event_markers(run: RunData) -> list[Marker]:
    """The scenario's events and the EMERGENCY / SETTLED periods of a run, in time order.

    Timed windows (shocks, outages, manipulations) come from the resolved scenario; governance
    changes and settlement come from the event log when there is one (they are what actually
    happened, including an admin agent's decision), else from the scenario.
    """
    out: list[Marker] = []
    logged: set[str] = set()
    ev = run.events
    if ev is not None and not ev.empty:
        for kind in ("set_governance", "begin_global_settlement", "global_settled"):
            logged.add(kind)
            for _, r in ev[ev["kind"] == kind].iterrows():
                row = {str(k): (None if pd.isna(v) else v) for k, v in r.items()}
                t = dt64([r["time"]])[0]
                out.append(Marker(kind, t, None, _event_label(kind, row)))
        out.extend(_rule_markers(ev))
    sc = run.scenario
    start = (sc.get("clock") or {}).get("start")
    if isinstance(start, int | float):
        for e in sc.get("events") or []:
            kind = str(e.get("kind"))
            if kind in logged or not isinstance(e.get("at"), int | float):
                continue
            t0 = unix_dt64(start + e["at"])
            span = e.get("duration") if kind != "price_shock" else e.get("over")
            t1 = (
                unix_dt64(start + e["at"] + span)
                if isinstance(span, int | float) and span
                else None
            )
            out.append(Marker(kind, t0, t1, _event_label(kind, e)))
    out.extend(_status_spans(run))
    out.sort(key=lambda m: m.start)
    return out


def _rule_markers(ev: pd.DataFrame) -> list[Marker]:
    """Governance-rule changes (applied, expired) as instants; halts as windows."""
    if "stage" not in ev.columns:
        return []
    out: list[Marker] = []
    # A halting rule's firings are drawn as its halt's window, not one line each.
    rules = ev[
        (ev["kind"] == "governance_rule")
        & ev["stage"].isin(["applied", "expired"])
        & ~ev["key"].isin(["pause_opening", "halt_trading", "halt_liquidation", "halt_withdrawal"])
    ]
    for _, r in rules.iterrows():
        row = {str(k): (None if pd.isna(v) else v) for k, v in r.items()}
        out.append(
            Marker(
                "governance_rule", dt64([r["time"]])[0], None, _event_label("governance_rule", row)
            )
        )
    halts = ev[ev["kind"] == "halt"]
    open_at: dict[tuple[str, str], Any] = {}
    end_of_run = ev["time"].max() if not ev.empty else None
    for _, r in halts.iterrows():
        key = (str(r["key"]), str(r["rule"]))
        if r["stage"] == "started":
            open_at[key] = r["time"]
        elif key in open_at:
            t0 = open_at.pop(key)
            label = _event_label("halt", {"key": key[0], "rule": key[1]})
            out.append(Marker("halt", dt64([t0])[0], dt64([r["time"]])[0], label))
    for key, t0 in open_at.items():
        label = _event_label("halt", {"key": key[0], "rule": key[1]})
        out.append(Marker("halt", dt64([t0])[0], dt64([end_of_run])[0], label))
    return out


def _status_spans(run: RunData) -> list[Marker]:
    status = run.timeseries["status"].astype(str).to_numpy()
    t = run.times
    out: list[Marker] = []
    labels = {"EMERGENCY": "EMERGENCY: trading halted", "SETTLED": "SETTLED: market closed"}
    for st, label in labels.items():
        mask = status == st
        if not mask.any():
            continue
        idx = np.flatnonzero(mask)
        breaks = np.flatnonzero(np.diff(idx) > 1)
        starts = np.r_[idx[0], idx[breaks + 1]]
        ends = np.r_[idx[breaks], idx[-1]]
        for a, b in zip(starts, ends, strict=True):
            end = t[b + 1] if b + 1 < len(t) else t[b]
            out.append(Marker(st, t[a], end, label))
    return out


def _draw_markers(axes: Iterable[Axes], markers: Sequence[Marker]) -> list[tuple[Artist, str]]:
    """Draw markers on every axis; return one legend entry per kind."""
    for ax in axes:
        for m in markers:
            color, ls = _EVENT_STYLE.get(m.kind, ("#555555", ":"))
            if m.end is not None and m.end > m.start:
                alpha = 0.3 if m.kind in ("EMERGENCY", "SETTLED") else 0.13
                ax.axvspan(
                    float(dnum(m.start)[0]),
                    float(dnum(m.end)[0]),
                    color=color,
                    alpha=alpha,
                    lw=0,
                    zorder=0,
                )
                if m.kind == "price_shock":
                    ax.axvline(float(dnum(m.start)[0]), color=color, ls=ls, lw=1.1, zorder=1)
            else:
                ax.axvline(float(dnum(m.start)[0]), color=color, ls=ls, lw=1.2, zorder=1, alpha=0.9)
    entries: list[tuple[Artist, str]] = []
    by_kind: dict[str, list[Marker]] = {}
    for m in markers:
        by_kind.setdefault(m.kind, []).append(m)
    for kind, ms in by_kind.items():
        color, ls = _EVENT_STYLE.get(kind, ("#555555", ":"))
        if kind in ("EMERGENCY", "SETTLED"):
            label = ms[0].label
        elif len({m.label for m in ms}) == 1:
            label = ms[0].label + (f" (×{len(ms)})" if len(ms) > 1 else "")
        else:
            label = f"{_EVENT_NAMES.get(kind, kind)} (×{len(ms)})"
        handle: Artist
        if ms[0].end is not None and kind != "price_shock":
            alpha = 0.3 if kind in ("EMERGENCY", "SETTLED") else 0.2
            handle = Patch(facecolor=color, alpha=alpha, edgecolor="none")
        else:
            handle = Line2D([], [], color=color, ls=ls, lw=1.4)
        entries.append((handle, label))
    return entries


def run_title(fig: Figure, run: RunData, what: str) -> None:
    """The title of a run figure (scenario, seed) with the run's period above it."""
    t = run.times
    when = f"{fmt_time(t[0])} – {fmt_time(t[-1])}" if len(t) else ""
    subtitle_title(fig, f"{what} — {run.name} (seed {run.seed})", when)


def time_axes(axes: Sequence[Axes], run: RunData, markers: Sequence[Marker]) -> None:
    """Dates on the bottom axis, x limits, markers and the events legend."""
    t = run.times
    bottom = axes[-1]
    date_ticks(bottom)
    bottom.set_xlabel("time (UTC)")
    if len(t) > 1:
        bottom.set_xlim(float(dnum(t[0])[0]), float(dnum(t[-1])[0]))
    entries = _draw_markers(axes, markers)
    if entries:
        fig = bottom.get_figure()
        assert isinstance(fig, Figure)
        fig.legend(
            [h for h, _ in entries],
            [lbl for _, lbl in entries],
            loc="outside lower center",
            ncols=min(3, len(entries)),
            frameon=False,
            title="scenario events and status",
            title_fontsize=9,
        )
