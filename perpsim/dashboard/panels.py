"""The dashboard's charts: small SVG line charts drawn from a :class:`Snapshot`.

The common panels (prices, funding, insurance fund, losses, open interest, LP share price) are
declared with the engine's figure types (:class:`~perpsim.engine.core.figures.PanelSpec`), the
same types a venue uses for its own figures; :func:`venue_panels` takes a design's panels from
its registry spec, so a new design's series appear without touching this module. Colours and
number formats are those of ``perpsim plot``.

The x axis always spans the whole run, so a live run fills in from the left. The charts are
written as SVG text straight from the arrays (no figure library in the loop): a frame of a dozen
charts takes milliseconds, so playing a run redraws often without slowing it down (matplotlib
took about half a second per chart here, more than the simulation of the frame).
"""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from perpsim.dashboard.snapshot import Snapshot
from perpsim.engine.core.figures import PanelSpec, SeriesSpec
from perpsim.engine.registry import UnknownVenueError, venue_spec
from perpsim.plots.style import COLORS, CompactFormatter

__all__ = ["COMMON_PANELS", "FUND_PANEL", "render_panel", "venue_panels"]

Floats = npt.NDArray[np.float64]

#: Size of one chart in SVG units (it scales to its cell's width).
WIDTH: Final = 540
HEIGHT: Final = 330
#: Plot area margins: left (tick labels), right, top (title and legend), bottom (dates).
MARGINS: Final = (64, 14, 50, 30)

#: Most points drawn per line (longer series are thinned evenly, keeping the last point).
MAX_POINTS: Final = 1500

FUND_PANEL: Final = PanelSpec(
    title="Insurance fund, with liquidations",
    ylabel="USD",
    series=(SeriesSpec("insurance_fund", "insurance fund", kind="step", color="fund"),),
)

#: The panels every venue kind has, in page order.
COMMON_PANELS: Final[tuple[PanelSpec, ...]] = (
    PanelSpec(
        title="Prices",
        ylabel="USD",
        series=(
            SeriesSpec("market_price", "market", color="market", width=1.0),
            SeriesSpec("index_price", "index (oracle)", color="index"),
            SeriesSpec("mark_price", "mark", color="mark"),
            SeriesSpec("fair_price", "pool (fair)", color="fair", dashed=True),
        ),
    ),
    PanelSpec(
        title="Funding rate (per 8 h)",
        ylabel="per 8 h",
        series=(SeriesSpec("funding_rate", "funding rate", color="mark"),),
        axis_format="percent",
    ),
    FUND_PANEL,
    PanelSpec(
        title="Social loss and bad debt (cumulative)",
        ylabel="USD",
        series=(
            SeriesSpec("social_loss_total", "socialised loss", kind="step", color="social"),
            SeriesSpec("bad_debt", "bad debt", kind="step", color="bad_debt", dashed=True),
        ),
        from_zero=True,
        empty_text="no social loss or bad debt so far",
    ),
    PanelSpec(
        title="Open interest",
        ylabel="contracts",
        series=(SeriesSpec("open_interest", "open interest (long = short)", color="oi"),),
        from_zero=True,
    ),
    PanelSpec(
        title="LP share price",
        ylabel="USD per share",
        series=(
            SeriesSpec(
                "lp_share_price",
                "LP share price",
                color="lp",
                only_where="lp_share_supply",
            ),
        ),
    ),
)

_MARKER_COLORS: Final = {
    "price_shock": "#D55E00",
    "oracle_outage": "#CC79A7",
    "oracle_manipulation": "#CC79A7",
    "keeper_outage": "#8B5A2B",
    "liquidator_outage": "#E69F00",
    "liquidity_withdrawal": "#56B4E9",
    "set_governance": "#555555",
    "begin_global_settlement": "#000000",
    "global_settled": "#000000",
    "EMERGENCY": "#F0E442",
    "SETTLED": "#999999",
}


def venue_panels(kind: str) -> tuple[PanelSpec, ...]:
    """The panels of ``kind``'s own figures that show at least one of its own columns."""
    try:
        spec = venue_spec(kind)
    except UnknownVenueError:
        return ()
    own = set(spec.columns)
    return tuple(
        panel
        for figure in spec.figures
        for panel in figure.panels
        if any(s.column in own for s in panel.series)
    )


def _column(snap: Snapshot, name: str) -> Floats | None:
    ts = snap.timeseries
    if name not in ts.columns:
        return None
    return np.asarray(pd.to_numeric(ts[name], errors="coerce"), dtype=np.float64)


def _thin(n: int) -> npt.NDArray[np.int64]:
    if n <= MAX_POINTS:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, MAX_POINTS).round().astype(np.int64))


def _path(x: Floats, y: Floats, step: bool) -> str:
    """An SVG path through the finite points (a NaN starts a new piece)."""
    if step and len(x) > 1:
        x = np.repeat(x, 2)[1:]
        y = np.repeat(y, 2)[:-1]
    ok = np.isfinite(x) & np.isfinite(y)
    parts: list[str] = []
    pen = False
    for xi, yi, good in zip(x.tolist(), y.tolist(), ok.tolist(), strict=True):
        if not good:
            pen = False
            continue
        parts.append(f"{'L' if pen else 'M'}{xi:.1f},{yi:.1f}")
        pen = True
    return "".join(parts)


_HOUR: Final = 3600
_TIME_STEPS: Final = (
    _HOUR,
    3 * _HOUR,
    6 * _HOUR,
    12 * _HOUR,
    24 * _HOUR,
    2 * 24 * _HOUR,
    7 * 24 * _HOUR,
    14 * 24 * _HOUR,
    30 * 24 * _HOUR,
)


def _time_ticks(start: int, end: int) -> list[tuple[int, str]]:
    """Round UTC times across the span (3 to 8 of them), labelled by day or by hour."""
    span = max(end - start, 1)
    step = next((s for s in _TIME_STEPS if span / s <= 7), _TIME_STEPS[-1])
    first = math.ceil(start / step) * step
    ticks: list[tuple[int, str]] = []
    for t in range(first, end + 1, step):
        d = datetime.fromtimestamp(t, tz=UTC)
        if step >= 24 * _HOUR or (d.hour == 0 and d.minute == 0):
            label = d.strftime("%b %d").replace(" 0", " ")
        else:
            label = d.strftime("%H:%M")
        ticks.append((t, label))
    return ticks


def _value_ticks(lo: float, hi: float, percent: bool) -> list[tuple[float, str]]:
    values = [v for v in MaxNLocator(nbins=5).tick_values(lo, hi) if lo <= v <= hi]
    labels = CompactFormatter(percent=percent).format_ticks(values)
    return list(zip(values, labels, strict=True))


def _color(s: SeriesSpec) -> str:
    return COLORS.get(s.color, s.color) if s.color is not None else "#333333"


def _y_range(panel: PanelSpec, finite: Floats) -> tuple[float, float]:
    if not finite.size:
        return (0.0, 1.0)
    lo, hi = float(np.min(finite)), float(np.max(finite))
    if panel.from_zero:
        lo = min(lo, 0.0)
    # A flat or nearly flat series gets a readable span (0.1% for rates, 2% or 1 otherwise)
    # instead of ticks a billionth apart.
    least = 1e-3 if panel.axis_format == "percent" else max(0.02 * abs(hi), 1.0)
    if hi - lo < least:
        mid = (hi + lo) / 2
        lo, hi = (
            (0.0, max(hi, least))
            if panel.from_zero and lo >= 0
            else (mid - least / 2, mid + least / 2)
        )
        return (lo, hi)
    pad = (hi - lo) * 0.06
    return (lo if panel.from_zero and lo == 0.0 else lo - pad, hi + pad)


def render_panel(panel: PanelSpec, snap: Snapshot) -> str:
    """One panel of a snapshot as an SVG document (text)."""
    left, right, top, bottom = MARGINS
    pw, ph = WIDTH - left - right, HEIGHT - top - bottom
    ts = snap.timeseries
    t_all = np.asarray(ts["time"].to_numpy(dtype=np.float64)) if len(ts) else np.empty(0)
    keep = _thin(len(t_all))
    t = t_all[keep]
    span = max(snap.end - snap.start, 1)

    def px(times: Any) -> Floats:
        return left + (np.asarray(times, dtype=np.float64) - snap.start) / span * pw

    series: list[tuple[SeriesSpec, Floats]] = []
    for s in panel.series:
        y = _column(snap, s.column)
        if y is None:
            continue
        if s.only_where is not None:
            gate = _column(snap, s.only_where)
            if gate is not None:
                y = np.where(gate > 0, y, np.nan)
        series.append((s, y[keep]))
    values = np.concatenate([y for _, y in series]) if series else np.empty(0)
    finite = values[np.isfinite(values)]
    empty = panel.empty_text is not None and not (finite != 0).any()
    lo, hi = _y_range(panel, finite)

    def py(values: Any) -> Floats:
        return top + (hi - np.asarray(values, dtype=np.float64)) / (hi - lo) * ph

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' class="perpsim-svg" role="img" aria-label="{html.escape(panel.title)}"'
        ' font-family="DejaVu Sans, Roboto, Arial, sans-serif" font-size="11">',
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{left - 52}" y="16" font-size="13" font-weight="bold">'
        f"{html.escape(panel.title)}</text>",
    ]
    # Scheduled events and status periods under the data.
    for m in snap.markers:
        color = _MARKER_COLORS.get(m.kind, "#777777")
        x0 = float(px([m.start])[0])
        if m.end is not None and m.end > m.start:
            x1 = float(px([min(m.end, snap.now)])[0])
            out.append(
                f'<rect x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 1.0):.1f}" height="{ph}"'
                f' fill="{color}" fill-opacity="0.14"><title>{html.escape(m.label)}</title></rect>'
            )
        else:
            out.append(
                f'<line x1="{x0:.1f}" x2="{x0:.1f}" y1="{top}" y2="{top + ph}" stroke="{color}"'
                f' stroke-dasharray="2,3"><title>{html.escape(m.label)}</title></line>'
            )
    # Axes: horizontal grid with value labels, time ticks below.
    if not empty:
        for v, label in _value_ticks(lo, hi, panel.axis_format == "percent"):
            gy = float(py([v])[0])
            out.append(
                f'<line x1="{left}" x2="{left + pw}" y1="{gy:.1f}" y2="{gy:.1f}" stroke="#e6e6e6"/>'
                f'<text x="{left - 6}" y="{gy + 4:.1f}" text-anchor="end" fill="#444">'
                f"{html.escape(label)}</text>"
            )
    for tt, label in _time_ticks(snap.start, snap.end):
        tx = float(px([tt])[0])
        # The last label ends at the edge instead of running off it.
        anchor = "end" if tx > left + pw - 20 else "middle"
        out.append(
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#777"/>'
            f'<text x="{tx:.1f}" y="{top + ph + 17}" text-anchor="{anchor}" fill="#444">'
            f"{html.escape(label)}</text>"
        )
    out.append(
        f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="#777"/>'
        f'<text x="12" y="{top + ph / 2:.0f}" text-anchor="middle" fill="#444"'
        f' transform="rotate(-90 12 {top + ph / 2:.0f})">{html.escape(panel.ylabel)}</text>'
    )
    if empty:
        out.append(
            f'<text x="{left + pw / 2:.0f}" y="{top + ph / 2:.0f}" text-anchor="middle"'
            f' fill="#666" font-size="12">{html.escape(panel.empty_text or "")}</text>'
        )
    else:
        x = px(t)
        for s, y in series:
            dash = ' stroke-dasharray="5,3"' if s.dashed else ""
            width = s.width if s.width is not None else 1.5
            out.append(
                f'<path class="perpsim-series" data-column="{html.escape(s.column)}"'
                f' d="{_path(x, py(y), s.kind == "step")}" fill="none" stroke="{_color(s)}"'
                f' stroke-width="{width}"{dash} stroke-linejoin="round"/>'
            )
        if panel is FUND_PANEL and snap.liquidation_times and len(t_all):
            fund = _column(snap, "insurance_fund")
            if fund is not None:
                lt = np.asarray(snap.liquidation_times, dtype=np.float64)
                lx, ly = px(lt), py(np.interp(lt, t_all, fund))
                ticks = "".join(
                    f"M{a:.1f},{b - 6:.1f}L{a:.1f},{b + 6:.1f}"
                    for a, b in zip(lx.tolist(), ly.tolist(), strict=True)
                )
                out.append(
                    f'<path class="perpsim-liquidations" d="{ticks}" stroke="#D55E00"'
                    ' stroke-opacity="0.55" stroke-width="1.2"/>'
                )
    if snap.tick < snap.n_ticks:
        xn = float(px([snap.now])[0])
        out.append(f'<line x1="{xn:.1f}" x2="{xn:.1f}" y1="{top}" y2="{top + ph}" stroke="#999"/>')
    # The legend: one row between the title and the plot.
    entries: list[tuple[str, str, bool]] = [(s.label, _color(s), s.dashed) for s, _ in series]
    if panel is FUND_PANEL and snap.liquidation_times:
        entries.append((f"liquidations ({snap.liquidation_count:,})", "#D55E00", False))
    lx0 = float(left - 52)
    for label, color, dashed in entries:
        dash = ' stroke-dasharray="5,3"' if dashed else ""
        out.append(
            f'<line x1="{lx0:.0f}" x2="{lx0 + 18:.0f}" y1="33" y2="33" stroke="{color}"'
            f' stroke-width="2"{dash}/><text x="{lx0 + 22:.0f}" y="37" fill="#333">'
            f"{html.escape(label)}</text>"
        )
        lx0 += 30 + 6.3 * len(label)
    out.append("</svg>")
    return "".join(out)
