"""Funding accumulated per contract, with the totals each side paid."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from perpsim.plots.format import fmt_usd
from perpsim.plots.markers import Marker, run_title, time_axes
from perpsim.plots.rundata import RunData
from perpsim.plots.style import COLORS, legend_beside, new_figure, usd_axis

__all__ = ["fig_accumulated_funding"]


def fig_accumulated_funding(run: RunData, markers: Sequence[Marker]) -> Figure:
    """Accumulated funding per contract, with the totals each side paid."""
    fig, (ax,) = new_figure(1, height=4.4)
    t = run.times
    acc = run.column("accumulated_funding_per_contract")
    ax.plot(t, acc, color="#333333", lw=1.3, label="accumulated funding per contract")
    ax.fill_between(
        t,
        acc,
        0,
        where=acc >= 0,
        interpolate=True,
        color=COLORS["long"],
        alpha=0.15,
        lw=0,
        label="net paid by longs",
    )
    ax.fill_between(
        t,
        acc,
        0,
        where=acc < 0,
        interpolate=True,
        color=COLORS["short"],
        alpha=0.15,
        lw=0,
        label="net paid by shorts",
    )
    ax.axhline(0, color="#999999", lw=0.8)
    ax.set_title("Accumulated funding (rises while longs pay shorts)")
    usd_axis(ax, "USD per contract")
    legend_beside(ax)
    s = run.summary
    if "funding_paid_by_longs" in s:
        text = (
            f"funding paid by longs: {fmt_usd(s.get('funding_paid_by_longs'))}\n"
            f"funding paid by shorts: {fmt_usd(s.get('funding_paid_by_shorts'))}"
        )
        ax.text(
            1.01,
            0.02,
            text,
            transform=ax.transAxes,
            fontsize=9,
            va="bottom",
            ha="left",
            bbox={"boxstyle": "round,pad=0.4", "fc": "white", "ec": "#cccccc"},
        )
    run_title(fig, run, "Accumulated funding")
    time_axes([ax], run, markers)
    return fig
