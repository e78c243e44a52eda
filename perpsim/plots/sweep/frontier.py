"""Capital efficiency against tail risk: VaR95 / CVaR95 of the losses per point; the frontier."""

from __future__ import annotations

import math
from typing import Any

import matplotlib
import numpy as np
from matplotlib.artist import Artist
from matplotlib.figure import Figure

from perpsim.metrics import cvar, var
from perpsim.plots.format import fmt_param
from perpsim.plots.style import COLORS, CompactFormatter, new_figure, no_data, subtitle_title
from perpsim.plots.sweep.data import (
    SweepData,
    is_numeric,
    positions,
    run_values,
    sorted_values,
    sweep_subtitle,
)

__all__ = ["fig_sweep_frontier"]


def _leverage(x: Any) -> Any:
    """Margin rate <-> max leverage (1 / rate); its own inverse."""
    v = np.asarray(x, dtype=np.float64)
    return 1.0 / np.maximum(v, 1e-9)  # finite even at 0 (matplotlib probes the edges)


def fig_sweep_frontier(sweep: SweepData, x: str, y: str | None) -> Figure:
    """VaR95 / CVaR95 of the losses against the capital-efficiency parameter, with the frontier."""
    fig, (a1, a2) = new_figure(1, 2, height=5.2, sharex=True)
    agg = sweep.aggregate
    xs = sorted_values(agg[x])
    numeric = is_numeric(xs)
    ok = sweep.ok
    groups: list[tuple[str, Any]] = [("points", None)]
    if y is not None and len(sorted_values(agg[y])) <= 8:
        groups = [(f"{sweep.short(y)} = {fmt_param(v)}", v) for v in sorted_values(agg[y])]
    cmap = matplotlib.colormaps["viridis"]
    for ax, metric, title in (
        (a1, "insurance_fund_drawdown", "Insurance-fund drawdown"),
        (a2, "loss_beyond_fund", "Loss beyond the fund (socialised + bad debt)"),
    ):
        best: dict[Any, float] = {}
        for g, (label, yval) in enumerate(groups):
            color = cmap(g / max(len(groups) - 1, 1) * 0.85) if len(groups) > 1 else COLORS["index"]
            px, pv, pc = [], [], []
            for pid in agg["point_id"]:
                row = agg[agg["point_id"] == pid].iloc[0]
                if yval is not None and row[y] != yval:
                    continue
                v = run_values(sweep, ok[ok["point_id"] == pid], metric)
                v = v[np.isfinite(v)]
                if not v.size:
                    continue
                px.append(row[x])
                pv.append(var(v))
                pc.append(cvar(v))
                best[row[x]] = min(best.get(row[x], math.inf), pv[-1])
            if not px:
                continue
            pos = positions(px, xs)
            ax.vlines(pos, pv, pc, color=color, lw=0.8, alpha=0.6)
            ax.plot(pos, pv, ls="none", marker="o", ms=7, color=color, label=label)
            ax.plot(pos, pc, ls="none", marker="o", ms=7, mfc="none", mec=color)
        if best and max(abs(v) for v in best.values()) == 0:
            ax.set_ylim(-0.05, 1.0)
            ax.set_yticks([0])
            no_data(ax, "zero at every point")
        elif best:
            bx = sorted_values(best)
            ax.plot(
                positions(bx, xs),
                [best[b] for b in bx],
                color="#C00000",
                lw=1.4,
                ls="--",
                zorder=0,
                label="frontier (lowest VaR95 at each value)",
            )
        else:
            no_data(ax, "no finished runs")
        ax.plot([], [], ls="none", marker="o", mfc="none", mec="#555555", label="CVaR95 (hollow)")
        ax.set_title(title)
        ax.yaxis.set_major_formatter(CompactFormatter())
        ax.set_ylabel("VaR95 / CVaR95 across seeds (USD)")
    xlabel = x
    if not numeric:
        a1.set_xticks(range(len(xs)), [fmt_param(v) for v in xs])
    elif x.endswith("margin_rate") and all(float(v) > 0 for v in xs):
        a1.invert_xaxis()
        xlabel = f"{x}   (→ lower margin: more capital-efficient)"
        for ax in (a1, a2):
            ax.set_xticks([float(v) for v in xs], [fmt_param(v) for v in xs])
            if x.endswith("initial_margin_rate"):  # the initial margin caps the leverage
                sec = ax.secondary_xaxis("top", functions=(_leverage, _leverage))
                sec.set_xticks([1.0 / float(v) for v in xs], [f"{1.0 / float(v):.3g}×" for v in xs])
                sec.set_xlabel("max leverage")
    elif len(xs) <= 12:
        a1.set_xticks([float(v) for v in xs], [fmt_param(v) for v in xs])
    fig.supxlabel(xlabel, fontsize=10)
    entries: dict[str, Artist] = {}
    for ax in (a1, a2):  # one legend for both panels (a panel may lack the frontier)
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    a2.legend(
        list(entries.values()),
        list(entries),
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
    )
    subtitle_title(
        fig, f"Capital efficiency against tail risk — sweep {sweep.name}", sweep_subtitle(sweep)
    )
    return fig
