"""The insurance fund with every liquidation marked; the losses beyond the fund."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from perpsim.plots.files import dt64
from perpsim.plots.format import fmt_number, fmt_time
from perpsim.plots.markers import Marker, run_title, time_axes
from perpsim.plots.rundata import RunData
from perpsim.plots.style import (
    COLORS,
    NO_DATA_COLOR,
    dnum,
    legend_beside,
    new_figure,
    no_data,
    usd_axis,
)

__all__ = ["fig_insurance_fund"]


def fig_insurance_fund(run: RunData, markers: Sequence[Marker]) -> Figure:
    """Insurance fund with liquidation markers; socialised loss and bad debt."""
    fig, (ax, bd) = new_figure(2, height=6.6, height_ratios=(2.2, 1.4))
    t = run.times
    fund = run.column("insurance_fund")
    ax.plot(t, fund, color=COLORS["fund"], lw=1.5, drawstyle="steps-post", label="insurance fund")
    ax.axhline(
        fund[0],
        color=COLORS["muted"],
        ls="--",
        lw=0.9,
        label=f"initial ({fmt_number(fund[0])} USD)",
    )
    liq = run.liquidations()
    if not liq.empty:
        lt = dt64(liq["time"])
        y = np.interp(dnum(lt), dnum(t), fund)
        paid = (
            np.asarray(
                liq.get("insurance_fund_paid", pd.Series(0.0, index=liq.index)), dtype=np.float64
            )
            > 0
        )
        if (~paid).any():
            ax.plot(
                lt[~paid],
                y[~paid],
                ls="none",
                marker="|",
                ms=9,
                color=COLORS["muted"],
                alpha=0.6,
                label=f"liquidation ({int((~paid).sum())})",
            )
        if paid.any():
            ax.plot(
                lt[paid],
                y[paid],
                ls="none",
                marker="v",
                ms=6,
                color="#C00000",
                label=f"liquidation the fund paid for ({int(paid.sum())})",
            )
    elif int(np.nansum(run.column("liquidations"))) == 0:
        ax.text(
            0.01,
            0.05,
            "no liquidations in this run",
            transform=ax.transAxes,
            fontsize=9,
            color=NO_DATA_COLOR,
        )
    i_min = int(np.nanargmin(fund))
    if fund[i_min] < fund[0]:
        ax.annotate(
            f"min {fmt_number(fund[i_min])} USD\n{fmt_time(t[i_min])}",
            xy=(float(dnum(t[i_min])[0]), fund[i_min]),
            xytext=(12, 14),
            textcoords="offset points",
            fontsize=8.5,
            arrowprops={"arrowstyle": "-", "color": "#888888"},
        )
    if fund[i_min] < fund[0]:  # it drew down: show how far it is from exhaustion
        ax.set_ylim(bottom=min(0.0, float(fund[i_min])))
    ax.set_title(
        "Insurance fund" + ("" if fund[i_min] < fund[0] else " (never below its starting level)")
    )
    usd_axis(ax, "insurance fund (USD)")
    legend_beside(ax)

    social, bad = run.column("social_loss_total"), run.column("bad_debt")
    bd.plot(
        t,
        social,
        color=COLORS["social"],
        drawstyle="steps-post",
        label="socialised loss (cumulative)",
    )
    bd.plot(
        t,
        bad,
        color=COLORS["bad_debt"],
        drawstyle="steps-post",
        ls="--",
        label="bad debt (unrecoverable)",
    )
    if np.nanmax(np.abs(np.r_[social, bad])) == 0:
        no_data(bd, "no socialised loss and no bad debt in this run")
        bd.set_ylim(-1, 1)
    bd.set_title("Losses beyond the insurance fund")
    usd_axis(bd, "USD")
    legend_beside(bd)
    run_title(fig, run, "Insurance fund and losses")
    time_axes([ax, bd], run, markers)
    return fig
