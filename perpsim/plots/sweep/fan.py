"""Fan chart of the insurance fund over time across seeds, for a few parameter points."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from perpsim.plots.files import FloatArray, TimeArray, dt64, read_table
from perpsim.plots.style import COLORS, CompactFormatter, date_ticks, new_figure, subtitle_title
from perpsim.plots.sweep.data import SweepData, sweep_subtitle

__all__ = ["fig_sweep_fan"]


def _fan_series(sweep: SweepData, point_id: Any) -> tuple[TimeArray, FloatArray] | None:
    runs = sweep.ok[sweep.ok["point_id"] == point_id]
    series: list[pd.Series] = []
    for si in runs.get("seed_index", []):
        d = sweep.run_dir(point_id, si)
        if d is None:
            continue
        ts = read_table(d, "timeseries", columns=("time", "insurance_fund"))
        if ts is None or ts.empty:
            continue
        series.append(
            pd.Series(np.asarray(ts["insurance_fund"], dtype=np.float64), index=dt64(ts["time"]))
        )
    if not series:
        return None
    frame = pd.concat(series, axis=1).sort_index().ffill()
    return np.asarray(frame.index.to_numpy(dtype="datetime64[ns]")), frame.to_numpy(
        dtype=np.float64
    )


def fig_sweep_fan(sweep: SweepData) -> Figure | None:
    """Fan chart of the insurance fund across seeds for up to six points (None without runs)."""
    agg = sweep.aggregate
    col = "insurance_fund_drawdown_mean"
    order = (
        list(agg.sort_values(col, kind="stable")["point_id"])
        if col in agg
        else list(agg["point_id"])
    )
    if len(order) > 6:
        picks = np.unique(np.linspace(0, len(order) - 1, 6).round().astype(int))
        order = [order[i] for i in picks]
    fans = [(pid, _fan_series(sweep, pid)) for pid in order]
    fans_ok = [(pid, s) for pid, s in fans if s is not None]
    if not fans_ok:
        return None
    n = len(fans_ok)
    ncols = 1 if n == 1 else 2 if n <= 4 else 3
    nrows = math.ceil(n / ncols)
    fig, axes = new_figure(nrows, ncols, height=3.0 * nrows + 1.4, sharex=True, sharey=True)
    for ax, (pid, (t, values)) in zip(axes, fans_ok, strict=False):
        q = np.nanpercentile(values, [5, 25, 50, 75, 95], axis=1)
        ax.fill_between(t, q[0], q[4], color=COLORS["fund"], alpha=0.15, lw=0, label="p5–p95")
        ax.fill_between(t, q[1], q[3], color=COLORS["fund"], alpha=0.3, lw=0, label="p25–p75")
        ax.plot(t, q[2], color=COLORS["fund"], lw=1.5, label="median")
        label = sweep.point_label(pid, sep="\n")
        ax.set_title(f"{label}\n({values.shape[1]} seeds)", fontsize=9.5)
        ax.yaxis.set_major_formatter(CompactFormatter())
        date_ticks(ax, 3, 6)
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax in axes[::ncols]:
        ax.set_ylabel("insurance fund (USD)")
    for ax in axes[max(0, n - ncols) : n]:
        ax.set_xlabel("time (UTC)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, frameon=False)
    chosen = "" if len(agg) <= 6 else " (6 points from best to worst mean drawdown)"
    subtitle_title(
        fig, f"Insurance fund across seeds — sweep {sweep.name}", sweep_subtitle(sweep) + chosen
    )
    return fig
