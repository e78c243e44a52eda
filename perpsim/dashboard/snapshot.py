"""What the dashboard shows at one moment: the series so far, the latest events, the markers.

A :class:`Snapshot` is built from a live run (:mod:`perpsim.dashboard.session`) or from a
finished run folder (:mod:`perpsim.dashboard.recorded`); the panels
(:mod:`perpsim.dashboard.panels`) and the page draw only snapshots, so both modes look the same.
Nothing here computes a model quantity: the numbers are the recorded time series and the event
log, as ``perpsim run`` writes them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

from perpsim.plots.format import fmt_number, fmt_usd
from perpsim.plots.markers import Marker

__all__ = [
    "NOTABLE_KINDS",
    "EventRow",
    "MarkerSpan",
    "Snapshot",
    "event_row",
    "marker_spans",
]

#: Event-log kinds the events table lists (scheduled outages and shocks come from the scenario).
NOTABLE_KINDS: Final = frozenset(
    {"liquidate", "set_governance", "begin_global_settlement", "global_settled"}
)

#: How many events the table shows (the latest first).
TABLE_ROWS: Final = 12


@dataclass(frozen=True)
class EventRow:
    """One line of the events table.

    Attributes:
        time: Unix seconds.
        kind: ``liquidation``, ``governance``, ``outage``, ... (what a reader scans for).
        text: What happened, with its numbers.
    """

    time: int
    kind: str
    text: str


@dataclass(frozen=True)
class MarkerSpan:
    """A scheduled scenario event or a status period, drawn on every time axis.

    Attributes:
        kind: The scenario event's kind (``price_shock``, ``oracle_outage``, ...) or a status.
        start: Unix seconds.
        end: Unix seconds, or None for an instant.
        label: The same text ``perpsim plot`` writes in its legends.
    """

    kind: str
    start: int
    end: int | None
    label: str


@dataclass(frozen=True)
class Snapshot:
    """The run as far as it went.

    Attributes:
        key: Changes whenever the content changes (what the page memoises drawings on).
        name: The scenario's name.
        kind: The venue kind.
        title: The venue design's human name.
        seed: The run's seed.
        timeseries: The recorded rows so far (``time`` in unix seconds).
        start: Unix time of the run's first tick.
        end: Unix time of the run's last tick (the x axes span the whole run).
        now: Unix time of the latest row shown.
        tick: The latest tick shown.
        n_ticks: The run's ticks.
        events: The latest notable events, newest first (at most :data:`TABLE_ROWS`).
        markers: Scheduled events and status periods that began by ``now``.
        liquidation_times: Unix times of the liquidations so far.
        liquidation_count: Liquidations so far.
        columns: The venue's own columns (for its panels).
    """

    key: tuple[Any, ...]
    name: str
    kind: str
    title: str
    seed: int
    timeseries: pd.DataFrame
    start: int
    end: int
    now: int
    tick: int
    n_ticks: int
    events: tuple[EventRow, ...] = ()
    markers: tuple[MarkerSpan, ...] = ()
    liquidation_times: tuple[int, ...] = ()
    liquidation_count: int = 0
    columns: tuple[str, ...] = field(default=())

    def last(self, column: str) -> Any:
        """The latest recorded value of a column (None if there is none)."""
        ts = self.timeseries
        if column not in ts.columns or ts.empty:
            return None
        value = ts[column].iloc[-1]
        if isinstance(value, np.generic):
            return value.item()
        return value

    def headline(self) -> list[tuple[str, str]]:
        """The numbers beside the progress: fund, losses, liquidations, open interest."""
        first_fund = (
            self.timeseries["insurance_fund"].iloc[0]
            if "insurance_fund" in self.timeseries.columns and not self.timeseries.empty
            else None
        )
        rows = [
            ("status", str(self.last("status") or "—")),
            ("insurance fund", f"{fmt_usd(self.last('insurance_fund'))}"),
            ("  at the start", fmt_usd(first_fund)),
            ("social loss", fmt_usd(self.last("social_loss_total"))),
            ("bad debt", fmt_usd(self.last("bad_debt"))),
            ("liquidations", f"{self.liquidation_count:,}"),
            ("open interest", f"{fmt_number(self.last('open_interest'))} contracts"),
            ("unsafe accounts", fmt_number(self.last("unsafe_accounts"))),
        ]
        return rows


def _num(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v


def event_row(record: Mapping[str, Any]) -> EventRow | None:
    """The table line of one event-log record, or None if the table does not list its kind."""
    kind = str(record.get("kind"))
    if kind not in NOTABLE_KINDS:
        return None
    time = int(_num(record.get("time")))
    if kind == "liquidate":
        side = record.get("side")
        side_text = f"{side} " if isinstance(side, str) and side else ""
        text = (
            f"{record.get('account')}: {side_text}{fmt_number(_num(record.get('amount')))}"
            f" @ {_num(record.get('price')):,.2f}"
        )
        loss = _num(record.get("loss"))
        if loss > 0:
            paid = _num(record.get("insurance_fund_paid"))
            social = _num(record.get("social_loss"))
            text += f"; loss {fmt_number(loss)}"
            if paid > 0:
                text += f", fund {fmt_number(paid)}"
            if social > 0:
                text += f", socialised {fmt_number(social)}"
        return EventRow(time, "liquidation", text)
    if kind == "set_governance":
        return EventRow(time, "governance", f"{record.get('key')} → {record.get('value')}")
    if kind == "begin_global_settlement":
        price = _num(record.get("price"))
        at = f" at {price:,.2f} USD" if price == price else ""
        return EventRow(time, "settlement", f"global settlement begins{at}")
    return EventRow(time, "settlement", "global settlement complete")


_MARKER_KIND_NAMES: Final = {
    "price_shock": "price shock",
    "oracle_outage": "outage",
    "oracle_manipulation": "oracle",
    "keeper_outage": "outage",
    "liquidator_outage": "outage",
    "liquidity_withdrawal": "LP withdrawal",
    "set_governance": "governance",
    "begin_global_settlement": "settlement",
    "global_settled": "settlement",
}


def _unix(value: np.datetime64) -> int:
    return int((value - np.datetime64(0, "s")) // np.timedelta64(1, "s"))


def marker_spans(markers: Iterable[Marker]) -> tuple[MarkerSpan, ...]:
    """``perpsim plot``'s markers in unix seconds (the dashboard's time unit)."""
    return tuple(
        MarkerSpan(m.kind, _unix(m.start), None if m.end is None else _unix(m.end), m.label)
        for m in markers
    )


def scheduled_rows(spans: Sequence[MarkerSpan], now: int) -> list[EventRow]:
    """Table lines for the scheduled scenario events (outages, shocks) that began by ``now``.

    Governance changes and settlement are listed from the event log instead (as they happened).
    """
    return [
        EventRow(s.start, _MARKER_KIND_NAMES[s.kind], s.label)
        for s in spans
        if s.kind in _MARKER_KIND_NAMES
        and s.kind not in ("set_governance", "begin_global_settlement", "global_settled")
        and s.start <= now
    ]


def latest(rows: Iterable[EventRow], n: int = TABLE_ROWS, others: int = 3) -> tuple[EventRow, ...]:
    """The ``n`` latest rows, newest first, keeping the ``others`` latest that are not
    liquidations (a cascade of liquidations would otherwise push an outage or a governance
    change out of the table at once)."""
    ordered = [r for _, r in sorted(enumerate(rows), key=lambda p: (p[1].time, p[0]), reverse=True)]
    picked = ordered[:n]
    kept = [r for r in ordered if r.kind != "liquidation"][:others]
    missing = [r for r in kept if all(r is not p for p in picked)]
    if missing:
        picked = picked[: n - len(missing)] + missing
        picked.sort(key=lambda r: r.time, reverse=True)
    return tuple(picked)
