"""Premium and funding rate, with the design's dampener band and mark-premium limit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from perpsim.plots.markers import Marker, run_title, time_axes
from perpsim.plots.rundata import RunData
from perpsim.plots.scenario import governance_series
from perpsim.plots.style import (
    COLORS,
    NO_DATA_COLOR,
    CompactFormatter,
    legend_beside,
    new_figure,
    pct_axis,
)

__all__ = ["fig_funding"]


def _annualise(y: Any) -> Any:
    return np.asarray(y, dtype=np.float64) * 1095.0


def _de_annualise(y: Any) -> Any:
    return np.asarray(y, dtype=np.float64) / 1095.0


def fig_funding(run: RunData, markers: Sequence[Marker]) -> Figure:
    """Premium rate with the dampener band; funding rate in % per 8 h."""
    fig, (ax, fr) = new_figure(2, height=6.4)
    t = run.times
    premium, funding = run.column("premium_rate"), run.column("funding_rate")
    damp = governance_series(run, "funding_dampener")
    limit = governance_series(run, "mark_premium_limit")
    if damp is not None:  # a design's rates are drawn only where it has them
        ax.fill_between(
            t,
            -damp,
            damp,
            step="post",
            color=COLORS["band"],
            alpha=0.18,
            lw=0,
            label=f"dampener band (± {damp[0]:.3%}): no funding",
        )
    if limit is not None:
        ax.plot(
            t,
            limit,
            color=COLORS["muted"],
            ls="--",
            lw=0.9,
            drawstyle="steps-post",
            label=f"mark-premium limit (± {limit[0]:.2%})",
        )
        ax.plot(t, -limit, color=COLORS["muted"], ls="--", lw=0.9, drawstyle="steps-post")
    ax.plot(t, premium, color=COLORS["mark"], lw=1.1, label="premium rate (mark vs index)")
    ax.axhline(0, color="#999999", lw=0.8)
    ax.set_title("AMM premium")
    pct_axis(ax, "premium (% of index)")
    legend_beside(ax)

    fr.fill_between(
        t,
        funding,
        0,
        where=funding > 0,
        interpolate=True,
        color=COLORS["long"],
        alpha=0.25,
        lw=0,
        label="longs pay shorts",
    )
    fr.fill_between(
        t,
        funding,
        0,
        where=funding < 0,
        interpolate=True,
        color=COLORS["short"],
        alpha=0.25,
        lw=0,
        label="shorts pay longs",
    )
    fr.plot(t, funding, color="#333333", lw=1.0, label="funding rate")
    fr.axhline(0, color="#999999", lw=0.8)
    fr.set_title("Funding rate")
    pct_axis(fr, "funding (% per 8 h)")
    sec = fr.secondary_yaxis("right", functions=(_annualise, _de_annualise))
    sec.yaxis.set_major_formatter(CompactFormatter(percent=True))
    sec.set_ylabel("annualised (% per year)")
    fr.legend(loc="upper left", bbox_to_anchor=(1.12, 1.0), borderaxespad=0.0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.12, 1.0), borderaxespad=0.0)
    if np.nanmax(np.abs(funding)) == 0:
        fr.text(
            0.01,
            0.92,
            "no funding paid: the premium stayed inside the dampener band",
            transform=fr.transAxes,
            fontsize=9,
            color=NO_DATA_COLOR,
            va="top",
        )
    run_title(fig, run, "Premium and funding")
    time_axes([ax, fr], run, markers)
    return fig
