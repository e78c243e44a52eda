"""The price-gap panel keeps its scale when the pool's price spikes (clipped and marked).

One −45% spike of the AMM's fair price used to set the panel's range, so every other gap (a
few tenths of a percent) was drawn as a flat line at 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from perpsim.plots.run.prices import fig_prices, gap_limits
from perpsim.plots.rundata import RunData

N = 300


def run_with(fair_gap: np.ndarray) -> RunData:
    rng = np.random.default_rng(5)
    index = 2_000.0 * np.exp(np.cumsum(rng.normal(0, 0.001, N)))
    ts = pd.DataFrame(
        {
            "time": pd.date_range("2024-01-01", periods=N, freq="5min", tz="UTC"),
            "market_price": index * (1 + rng.normal(0, 0.002, N)),
            "index_price": index,
            "mark_price": index * (1 + rng.normal(0, 0.001, N)),
            "fair_price": index * (1 + fair_gap),
            "index_age_s": np.zeros(N),
        }
    )
    scenario = {"name": "t", "venue": {"kind": "mcdex_v1"}, "oracle": {"heartbeat": 3600}}
    return RunData(Path("t"), ts, None, None, {}, {"resolved_scenario": scenario})


def gap_axes(run: RunData) -> Axes:
    fig = fig_prices(run, [])
    return next(ax for ax in fig.axes if ax.get_title().startswith("Gap to the index"))


def test_a_spike_is_clipped_and_marked_not_flattening_the_panel() -> None:
    gap = np.random.default_rng(1).normal(0, 0.003, N)
    gap[150] = -0.45
    ax = gap_axes(run_with(gap))
    lo, hi = ax.get_ylim()
    assert -0.05 < lo < 0 < hi < 0.05  # the ordinary gaps keep their scale
    assert "clipped" in ax.get_title()
    edge = [
        line
        for line in ax.get_lines()
        if isinstance(line, Line2D) and line.get_marker() == "v" and len(line.get_xdata())
    ]
    assert edge and np.allclose(edge[0].get_ydata(), lo)
    assert "−45.0%" in [t.get_text() for t in ax.texts]


def test_ordinary_gaps_are_not_clipped() -> None:
    gap = np.random.default_rng(2).normal(0, 0.003, N)
    ax = gap_axes(run_with(gap))
    assert "clipped" not in ax.get_title()
    assert gap_limits([gap]) is None
    lo, hi = ax.get_ylim()
    assert lo <= gap.min() and hi >= gap.max()
