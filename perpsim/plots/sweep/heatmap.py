"""A metric over two varied parameters: mean and 95th percentile over seeds."""

from __future__ import annotations

from collections.abc import Callable

import matplotlib
import matplotlib.colors
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

__all__ = ["HEATMAP_CMAP", "MAX_ANNOTATED_CELLS", "fig_sweep_heatmap"]

#: The heatmap's colour map: perceptually uniform (equal steps of value look like equal steps of
#: colour, lightness rising with the value) and designed to read the same with red-green colour
#: blindness. A low-to-high map, with the colour scale set to the data's range: anchored at 0,
#: a metric that varies between 900k and 1M painted every cell the same dark red.
HEATMAP_CMAP = "cividis"

#: Grids up to this many cells get their values written in the cells.
MAX_ANNOTATED_CELLS = 144

#: The colour of a cell with no finished run.
_EMPTY = "#e6e6e6"


def _text_colour(rgba: tuple[float, float, float, float]) -> str:
    """Dark text on a light cell, white on a dark one (relative luminance, sRGB weights)."""
    r, g, b = rgba[:3]
    return "#111111" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


def _grid(
    sweep: SweepData,
    metric: str,
    x: str,
    y: str,
    stat: Callable[[FloatArray], float],
    per_run: bool,
) -> FloatArray:
    xs = sorted_values(sweep.aggregate[x])
    ys = sorted_values(sweep.aggregate[y])
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
    return grid


def fig_sweep_heatmap(sweep: SweepData, metric: str, x: str, y: str) -> Figure:
    """The metric over two parameters: mean and 95th percentile over seeds.

    Both panels share one colour scale (the same colour is the same value), spanning the data
    (a probability: 0 to 100%); small grids have their values written in the cells, and a cell
    without a finished run is grey and says so.
    """
    xs = sorted_values(sweep.aggregate[x])
    ys = sorted_values(sweep.aggregate[y])
    per_run = per_run_metric(sweep, metric)
    unit = metric_unit(metric)
    bool_metric = unit == "share of runs"
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
    grids = [_grid(sweep, metric, x, y, stat, per_run) for _, stat in panels]
    cell_w = max(0.9, min(1.6, 8.0 / max(len(xs), 1)))
    width = min(18.0, max(6.0, len(panels) * (len(xs) * cell_w + 2.5)))
    height = max(3.6, min(12.0, len(ys) * 0.6 + 2.2))
    fig, axes = new_figure(1, len(panels), height=height, width=width, sharex=False)
    others = [p for p in sweep.params if p not in (x, y)]
    pct = unit in ("%", "probability", "share of runs")
    finite = np.concatenate([g[np.isfinite(g)] for g in grids])
    lo, hi = 0.0, 1.0
    if finite.size:
        lo, hi = float(finite.min()), float(finite.max())
        if unit in ("probability", "share of runs"):
            lo, hi = 0.0, 1.0
    same = finite.size > 0 and hi <= lo
    if same:
        hi = lo + (abs(lo) if lo else 1.0)
    cmap = matplotlib.colormaps[HEATMAP_CMAP].with_extremes(bad=_EMPTY)
    norm = matplotlib.colors.Normalize(vmin=lo, vmax=hi) if finite.size else None
    annotate = len(xs) * len(ys) <= MAX_ANNOTATED_CELLS
    for ax, (title, _), grid in zip(axes, panels, grids, strict=True):
        if not np.isfinite(grid).any():
            no_data(ax, f"no finished runs with {metric}")
            continue
        if same:
            title += " — the same at every point"
        im = ax.imshow(grid, cmap=cmap, norm=norm, aspect="auto", origin="lower")
        for k, value in enumerate(grid.ravel()):
            i, j = divmod(k, len(xs))
            if not np.isfinite(value):
                ax.text(j, i, "no runs", ha="center", va="center", fontsize=8, color="#555555")
                continue
            if not annotate:
                continue
            text = f"{value:.0%}" if pct else fmt_number(value)
            colour = _text_colour(cmap(norm(value)) if norm is not None else (1, 1, 1, 1))
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color=colour)
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
