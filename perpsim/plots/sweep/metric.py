"""A metric against one varied parameter, with seed bands, one line per second parameter."""

from __future__ import annotations

from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from perpsim.plots.format import fmt_param
from perpsim.plots.style import COLORS, legend_beside, new_figure, no_data, subtitle_title
from perpsim.plots.sweep.data import (
    SweepData,
    is_numeric,
    per_run_metric,
    positions,
    run_values,
    sorted_values,
    sweep_subtitle,
)
from perpsim.plots.sweep.metrics import metric_formatter, metric_label, metric_values

__all__ = ["fig_sweep_metric"]


def fig_sweep_metric(sweep: SweepData, metric: str, x: str, y: str | None) -> Figure:
    """The metric against one parameter with p5–p95 seed bands, one line per y value."""
    fig, (ax,) = new_figure(1, height=5.0, sharex=False)
    xs = sorted_values(sweep.aggregate[x])
    groups: list[tuple[str, Any]] = [("all", None)]
    if y is not None:
        yv = sorted_values(sweep.aggregate[y])
        if len(yv) <= 8:
            groups = [(f"{sweep.short(y)} = {fmt_param(v)}", v) for v in yv]
    cmap = matplotlib.colormaps["viridis"]
    per_run = per_run_metric(sweep, metric)
    for g, (label, yval) in enumerate(groups):
        color = cmap(g / max(len(groups) - 1, 1) * 0.85) if len(groups) > 1 else COLORS["index"]
        med, p5, p95, present = [], [], [], []
        for xv in xs:
            frame = sweep.ok if per_run else sweep.aggregate
            sel = frame[frame[x] == xv]
            if yval is not None:
                sel = sel[sel[y] == yval]
            vals = run_values(sweep, sel, metric) if per_run else metric_values(metric, sel[metric])
            vals = vals[np.isfinite(vals)]
            if not vals.size:
                continue
            present.append(xv)
            med.append(float(np.median(vals)) if per_run else float(np.mean(vals)))
            p5.append(float(np.percentile(vals, 5)))
            p95.append(float(np.percentile(vals, 95)))
        if not present:
            continue
        pos = positions(present, xs)
        ax.plot(pos, med, color=color, marker="o", ms=5, label=label)
        if per_run:
            ax.fill_between(pos, p5, p95, color=color, alpha=0.18, lw=0)
    if per_run:
        ax.fill_between([], [], [], color="#888888", alpha=0.25, label="5th–95th pct over seeds")
    if not ax.lines:
        no_data(ax, f"no finished runs with {metric}")
    elif all(np.nanmax(np.abs(np.asarray(ln.get_ydata(), dtype=float))) == 0 for ln in ax.lines):
        ax.set_ylim(-0.05, 1.0)
        ax.set_yticks([0])
        no_data(ax, "zero at every point and seed")
    if not is_numeric(xs):
        ax.set_xticks(range(len(xs)), [fmt_param(v) for v in xs])
    elif len(xs) <= 12:
        ax.set_xticks([float(v) for v in xs], [fmt_param(v) for v in xs])
    ax.set_xlabel(x)
    ax.yaxis.set_major_formatter(metric_formatter(metric))
    ax.set_ylabel(metric_label(metric))
    stat = "median over seeds" if per_run else "value per point"
    ax.set_title(f"{metric.replace('_', ' ')} against {sweep.short(x)} ({stat})")
    legend_beside(ax)
    subtitle_title(fig, f"{metric_label(metric)} — sweep {sweep.name}", sweep_subtitle(sweep))
    return fig
