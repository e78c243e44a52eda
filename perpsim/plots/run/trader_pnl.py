"""The distribution of the trader accounts' final PnL and return on deposits."""

from __future__ import annotations

import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from perpsim.metrics import TRADER_TYPES
from perpsim.plots.format import fmt_usd
from perpsim.plots.rundata import RunData
from perpsim.plots.style import CompactFormatter, legend_beside, new_figure, no_data, subtitle_title

__all__ = ["fig_trader_pnl"]


def fig_trader_pnl(run: RunData) -> Figure:
    """Histogram of trader PnL (USD) and return on deposits, stacked by agent type."""
    acc = run.accounts
    traders = (
        acc[acc["agent_type"].astype(str).isin(TRADER_TYPES)]
        if acc is not None and "agent_type" in acc.columns
        else pd.DataFrame()
    )
    if traders.empty:
        fig, (ax,) = new_figure(1, height=3.6, sharex=False)
        if acc is None:
            why = "no accounts table in this run folder\n(the run kept only its time series)"
        else:
            why = (
                "no trader accounts in this run\n(noise or momentum traders, whales, arbitrageurs)"
            )
        no_data(ax, why)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        ax.set_title("Trader PnL")
        subtitle_title(fig, f"Trader PnL — {run.name} (seed {run.seed})", "")
        return fig
    fig, (ax, ar) = new_figure(1, 2, height=4.8, sharex=False)
    pnl = np.asarray(traders["pnl"], dtype=np.float64)
    dep = np.asarray(traders["deposits"], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = np.where(dep > 0, pnl / dep, np.nan)
    kinds = [k for k in TRADER_TYPES if (traders["agent_type"] == k).any()]
    palette = dict(zip(TRADER_TYPES, ("#56B4E9", "#E69F00", "#CC79A7", "#009E73"), strict=True))
    kind_arr = traders["agent_type"].astype(str).to_numpy()
    for axis, values, xlabel, pct in (
        (ax, pnl, "PnL (USD)", False),
        (ar, ret, "return on deposits (%)", True),
    ):
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            no_data(axis, "no deposits recorded")
            continue
        lo, hi = (
            np.percentile(finite, [1, 99]) if finite.size > 20 else (np.min(finite), np.max(finite))
        )
        if hi <= lo:
            lo, hi = lo - 1.0, hi + 1.0
        bins = [float(b) for b in np.linspace(lo, hi, 41)]
        data = [np.clip(values[(kind_arr == k) & np.isfinite(values)], lo, hi) for k in kinds]
        axis.hist(
            data,
            bins=bins,
            stacked=True,
            color=[palette[k] for k in kinds],
            label=[k.replace("_", " ") for k in kinds],
            edgecolor="white",
            linewidth=0.3,
        )
        for q, ls in ((5, ":"), (50, "--"), (95, "-.")):
            v = float(np.percentile(finite, q))
            text = f"{v:.0%}".replace("-", "−") if pct else fmt_usd(v)
            axis.axvline(v, color="#333333", ls=ls, lw=1.1, label=f"p{q}: {text}")
        axis.axvline(0, color="#999999", lw=0.8)
        axis.xaxis.set_major_formatter(CompactFormatter(percent=pct))
        axis.set_xlabel(xlabel + (" — edge bins include the 1% tails" if finite.size > 20 else ""))
        axis.set_ylabel("traders")
        axis.yaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    ax.set_title("PnL")
    ar.set_title("Return on deposits")
    legend_beside(ax)
    legend_beside(ar)
    lost = float(np.mean(pnl < 0))
    subtitle_title(
        fig,
        f"Trader PnL — {run.name} (seed {run.seed})",
        f"{len(pnl)} trader accounts; {lost:.0%} lost money; median {fmt_usd(np.median(pnl))}",
    )
    return fig
