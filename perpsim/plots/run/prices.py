"""Prices: market, index, mark and fair; their gap to the index; the age of the index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from perpsim.plots.files import FloatArray
from perpsim.plots.format import fmt_duration
from perpsim.plots.markers import Marker, run_title, time_axes
from perpsim.plots.rundata import RunData
from perpsim.plots.scenario import governance_series
from perpsim.plots.style import COLORS, legend_beside, new_figure, pct_axis, usd_axis

__all__ = ["CLIP_SPAN_FACTOR", "fig_prices", "gap_limits"]

#: The gap panel is clipped when its full range is more than this many times the range of
#: its central 99% (one −45% spike of the pool's price would flatten every other gap to a
#: line at 0).
CLIP_SPAN_FACTOR = 3.0


def gap_limits(
    series: Sequence[FloatArray], band: float | None = None
) -> tuple[float, float] | None:
    """The y-limits of the gap panel when outliers must be clipped, else None.

    The limits are the 0.5% and 99.5% quantiles of every series' values (with 0 and the
    mark-premium band, when there is one), padded by a quarter of their span.
    """
    values = np.concatenate([np.asarray(v, dtype=np.float64) for v in series])
    values = values[np.isfinite(values)]
    if values.size < 20:
        return None
    lo, hi = (float(q) for q in np.quantile(values, [0.005, 0.995]))
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if band is not None and np.isfinite(band):
        lo, hi = min(lo, -1.3 * band), max(hi, 1.3 * band)
    span = max(hi - lo, 1e-6)
    full = float(values.max() - values.min())
    if full <= CLIP_SPAN_FACTOR * span:
        return None
    return lo - 0.25 * span, hi + 0.25 * span


def _mark_clipped(
    ax: Axes, t: Any, values: FloatArray, lim: tuple[float, float], colour: str
) -> bool:
    """Triangles at the panel's edge where ``values`` lie beyond it; whether there were any."""
    lo, hi = lim
    clipped = False
    for beyond, edge, marker in ((values > hi, hi, "^"), (values < lo, lo, "v")):
        if not beyond.any():
            continue
        clipped = True
        ax.plot(
            t[beyond],
            np.full(int(beyond.sum()), edge),
            ls="none",
            marker=marker,
            ms=6,
            color=colour,
            clip_on=False,
            zorder=5,
        )
        worst = float(np.max(values[beyond]) if edge == hi else np.min(values[beyond]))
        i = int(np.flatnonzero(beyond)[np.argmax(np.abs(values[beyond]))])
        ax.annotate(
            f"{worst:+.1%}".replace("-", "−"),
            (t[i], edge),
            xytext=(4, -10 if edge == hi else 4),
            textcoords="offset points",
            fontsize=8,
            color=colour,
        )
    return clipped


def fig_prices(run: RunData, markers: Sequence[Marker]) -> Figure:
    """Market, index, mark and fair prices; their gap to the index; the index age."""
    fig, (ax, dev, age) = new_figure(3, height=8.2, height_ratios=(3.0, 1.6, 1.1))
    t = run.times
    market, index = run.column("market_price"), run.column("index_price")
    mark, fair = run.column("mark_price"), run.column("fair_price")
    ax.plot(t, market, color=COLORS["market"], lw=1.0, label="market (simulated spot)")
    ax.plot(t, index, color=COLORS["index"], lw=1.5, drawstyle="steps-post", label="index (oracle)")
    ax.plot(t, mark, color=COLORS["mark"], lw=1.2, label="mark (perpetual)")
    ax.plot(t, fair, color=COLORS["fair"], lw=1.0, ls="--", label="fair (AMM pool)")
    ax.set_title("Prices")
    usd_axis(ax, "price (USD)")
    legend_beside(ax)

    with np.errstate(divide="ignore", invalid="ignore"):
        rel = {n: v / index - 1.0 for n, v in (("market", market), ("mark", mark), ("fair", fair))}
    limit = governance_series(run, "mark_premium_limit")
    if limit is not None:  # designs without a mark-premium limit have no band
        dev.fill_between(
            t,
            -limit,
            limit,
            step="post",
            color=COLORS["mark"],
            alpha=0.08,
            lw=0,
            label="mark-premium limit (± limit)",
        )
    dev.plot(t, rel["market"], color=COLORS["market"], lw=0.9, label="market vs index")
    dev.plot(t, rel["fair"], color=COLORS["fair"], lw=0.9, ls="--", label="fair vs index")
    dev.plot(t, rel["mark"], color=COLORS["mark"], lw=1.2, label="mark vs index")
    dev.axhline(0, color="#999999", lw=0.8)
    band = float(np.nanmax(limit)) if limit is not None and np.isfinite(limit).any() else None
    lim = gap_limits(list(rel.values()), band)
    title = "Gap to the index"
    if lim is not None:
        dev.set_ylim(*lim)
        clipped = [
            _mark_clipped(dev, t, rel[name], lim, COLORS[name])
            for name in ("market", "fair", "mark")
        ]
        if any(clipped):
            dev.plot(
                [],
                [],
                ls="none",
                marker="^",
                color=COLORS["muted"],
                label="beyond the axis (clipped; the extreme is written)",
            )
            title += " (axis clipped to the central 99%: ▲▼ mark points beyond it)"
    dev.set_title(title)
    pct_axis(dev, "vs index (%)")
    legend_beside(dev)

    age.plot(
        t,
        run.column("index_age_s") / 60.0 if "index_age_s" in run.timeseries else np.zeros(len(t)),
        color=COLORS["index"],
        lw=1.0,
        drawstyle="steps-post",
        label="age of the index",
    )
    hb = (run.scenario.get("oracle") or {}).get("heartbeat")
    if isinstance(hb, int | float) and hb > 0:
        age.axhline(
            hb / 60.0,
            color=COLORS["muted"],
            ls="--",
            lw=0.9,
            label=f"oracle heartbeat ({fmt_duration(hb)})",
        )
    age.set_ylim(bottom=0)
    age.set_title("Oracle staleness")
    age.set_ylabel("index age (min)")
    legend_beside(age)
    run_title(fig, run, "Prices")
    time_axes([ax, dev, age], run, markers)
    return fig
