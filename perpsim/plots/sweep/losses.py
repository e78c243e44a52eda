"""Per parameter point: the distribution over seeds of the fund drawdown and the loss beyond it."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from perpsim.metrics import var
from perpsim.plots.style import (
    COLORS,
    CompactFormatter,
    legend_beside,
    new_figure,
    no_data,
    subtitle_title,
)
from perpsim.plots.sweep.data import SweepData, run_values, sweep_subtitle

__all__ = ["fig_sweep_losses"]


def fig_sweep_losses(sweep: SweepData) -> Figure:
    """Per point: distribution over seeds of the insurance-fund drawdown and the loss beyond it."""
    agg = sweep.aggregate
    pids = list(agg["point_id"])
    shown = pids[:60]
    height = max(3.8, min(24.0, 0.34 * len(shown) + 2.2))
    fig, (a1, a2) = new_figure(1, 2, height=height, sharex=False, sharey=True)
    labels = [sweep.point_label(p) for p in shown]
    ok = sweep.ok
    for ax, metric, title, color in (
        (a1, "insurance_fund_drawdown", "Insurance-fund drawdown", COLORS["fund"]),
        (a2, "loss_beyond_fund", "Loss beyond the fund (socialised + bad debt)", COLORS["social"]),
    ):
        data = []
        for pid in shown:
            sel = ok[ok["point_id"] == pid]
            v = run_values(sweep, sel, metric) if len(sel) else np.empty(0)
            data.append(v[np.isfinite(v)])
        pos = np.arange(len(shown))
        nonempty = [i for i, d in enumerate(data) if d.size]
        if nonempty:
            ax.boxplot(
                [data[i] for i in nonempty],
                positions=pos[nonempty],
                orientation="horizontal",
                whis=(5, 95),
                widths=0.6,
                showfliers=False,
                patch_artist=True,
                boxprops={"facecolor": (*to_rgb(color), 0.25), "edgecolor": color},
                medianprops={"color": color, "lw": 1.6},
                whiskerprops={"color": color},
                capprops={"color": color},
            )
            rng = np.random.default_rng(0)
            for i in nonempty:
                jitter = rng.uniform(-0.18, 0.18, data[i].size)
                ax.plot(
                    data[i], i + jitter, ls="none", marker="o", ms=2.5, color="#333333", alpha=0.45
                )
                ax.plot(
                    [var(data[i])],
                    [i],
                    ls="none",
                    marker="D",
                    ms=6,
                    color="#C00000",
                    label="VaR95" if i == nonempty[0] else None,
                )
            if all(float(np.max(np.abs(d))) == 0 for d in data if d.size):
                ax.set_xlim(-0.05, 1.0)
                ax.set_xticks([0])
                no_data(ax, "zero in every run")
        else:
            no_data(ax, "no finished runs")
        ax.set_title(title)
        ax.xaxis.set_major_formatter(CompactFormatter())
        ax.set_xlabel("USD per run")
        ax.set_xlim(left=min(0.0, ax.get_xlim()[0]))
    a1.set_yticks(range(len(shown)), labels)
    a1.invert_yaxis()
    a1.set_ylabel("parameter point")
    legend_beside(a2)
    more = f" (first 60 of {len(pids)} points)" if len(pids) > len(shown) else ""
    subtitle_title(
        fig, f"Loss distribution per point — sweep {sweep.name}", sweep_subtitle(sweep) + more
    )
    return fig
