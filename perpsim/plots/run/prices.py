"""Prices: market, index, mark and fair; their gap to the index; the age of the index."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from perpsim.plots.format import fmt_duration
from perpsim.plots.markers import Marker, run_title, time_axes
from perpsim.plots.rundata import RunData
from perpsim.plots.scenario import governance_series
from perpsim.plots.style import COLORS, legend_beside, new_figure, pct_axis, usd_axis

__all__ = ["fig_prices"]


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
    dev.set_title("Gap to the index")
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
