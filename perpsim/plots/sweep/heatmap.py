"""A metric over two varied parameters: mean and 95th percentile over seeds."""

from __future__ import annotations

from collections.abc import Callable

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from perpsim.plots.files import FloatArray
from perpsim.plots.format import fmt_number, fmt_param
from perpsim.plots.style import new_figure, no_data, subtitle_title
from perpsim.plots.sweep.data import (
    SweepData,
    per_run_metric,
    run_values,
    sorted_values,
    sweep_subtitle,
)
from perpsim.plots.sweep.metrics import metric_formatter, metric_label, metric_unit, metric_values

__all__ = ["fig_sweep_heatmap"]


def fig_sweep_heatmap(sweep: SweepData, metric: str, x: str, y: str) -> Figure:
    """The metric over two parameters: mean and 95th percentile over seeds."""
    xs = sorted_values(sweep.aggregate[x])
    ys = sorted_values(sweep.aggregate[y])
    per_run = per_run_metric(sweep, metric)
    bool_metric = metric_unit(metric) == "share of runs"
    panels: list[tuple[str, Callable[[FloatArray], float]]]
    if per_run and not bool_metric:
        panels = [
            ("mean over seeds", lambda v: float(np.mean(v))),
            ("95th percentile over seeds (VaR95)", lambda v: float(np.quantile(v, 0.95))),
        ]
    elif per_run:
        panels = [("share of runs", lambda v: float(np.mean(v)))]
    else:
        panels = [("per point", lambda v: float(np.mean(v)))]
    cell_w = max(0.9, min(1.6, 8.0 / max(len(xs), 1)))
    width = min(18.0, max(6.0, len(panels) * (len(xs) * cell_w + 2.5)))
    height = max(3.6, min(12.0, len(ys) * 0.6 + 2.2))
    fig, axes = new_figure(1, len(panels), height=height, width=width, sharex=False)
    others = [p for p in sweep.params if p not in (x, y)]
    for ax, (title, stat) in zip(axes, panels, strict=True):
        grid = np.full((len(ys), len(xs)), np.nan)
        for i, yv in enumerate(ys):
            for j, xv in enumerate(xs):
                if per_run:
                    f = sweep.ok
                    vals = run_values(sweep, f[(f[x] == xv) & (f[y] == yv)], metric)
                else:
                    a = sweep.aggregate
                    vals = metric_values(metric, a[(a[x] == xv) & (a[y] == yv)][metric])
                vals = vals[np.isfinite(vals)]
                if vals.size:
                    grid[i, j] = stat(vals)
        if not np.isfinite(grid).any():
            no_data(ax, f"no finished runs with {metric}")
            continue
        cmap = matplotlib.colormaps["YlOrRd"]
        lo, hi = float(np.nanmin(grid)), float(np.nanmax(grid))
        if lo >= 0:  # losses, counts, probabilities: 0 is the palest colour
            lo = 0.0
        if hi <= lo:
            hi = lo + (abs(lo) if lo else 1.0)
            title += " — the same at every point"
        im = ax.imshow(grid, cmap=cmap, aspect="auto", origin="lower", vmin=lo, vmax=hi)
        pct = metric_unit(metric) in ("%", "probability", "share of runs")
        for k, value in enumerate(grid.ravel()):
            i, j = divmod(k, len(xs))
            text = f"{value:.0%}" if pct and np.isfinite(value) else fmt_number(value)
            frac = 0.0 if hi == lo else (grid[i, j] - lo) / (hi - lo)
            color = "white" if np.isfinite(frac) and frac > 0.6 else "#222222"
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color=color)
        ax.set_xticks(range(len(xs)), [fmt_param(v) for v in xs])
        ax.set_yticks(range(len(ys)), [fmt_param(v) for v in ys])
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.grid(False)
        ax.set_title(title)
        cb = fig.colorbar(im, ax=ax, shrink=0.9)
        cb.ax.yaxis.set_major_formatter(metric_formatter(metric))
        cb.set_label(metric_label(metric))
    note = f"; pooled over {', '.join(others)}" if others else ""
    subtitle_title(
        fig, f"{metric_label(metric)} — sweep {sweep.name}", sweep_subtitle(sweep) + note
    )
    return fig
