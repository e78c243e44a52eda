"""The sweep heatmap: colours that can be told apart, a labelled scale, values in the cells.

Its colour scale used to start at 0 for any non-negative metric, on a red map: a liquidated
value between 900k and 1M USD painted every cell nearly the same dark red.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.image import AxesImage

from perpsim.plots.sweep.data import SweepData
from perpsim.plots.sweep.heatmap import HEATMAP_CMAP, fig_sweep_heatmap

X, Y = "venue.governance.maintenance_margin_rate", "venue.governance.liquidation_penalty_rate"
XS, YS = (0.05, 0.075, 0.09), (0.005, 0.01, 0.02)


def sweep(tmp_path: Path) -> SweepData:
    """3 × 3 points of 2 seeds, liquidated value 900k to 1M USD; the last point has no run."""
    rows = []
    for pid, (x, y) in enumerate(itertools.product(XS, YS)):
        for seed in range(2):
            rows.append(
                {
                    "point_id": pid,
                    "seed_index": seed,
                    X: x,
                    Y: y,
                    "status": "failed" if pid == 8 else "ok",
                    "liquidated_value": 900_000.0 + 12_500.0 * pid + 1_000.0 * seed,
                }
            )
    results = pd.DataFrame(rows)
    aggregate = results.groupby("point_id", as_index=False).agg({X: "first", Y: "first"})
    return SweepData(tmp_path, results, aggregate, [X, Y], {"name": "t"})


def luminance(rgba: tuple[float, ...]) -> float:
    r, g, b = rgba[:3]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_the_cells_of_a_narrow_range_are_told_apart(tmp_path: Path) -> None:
    fig = fig_sweep_heatmap(sweep(tmp_path), "liquidated_value", X, Y)
    images = [im for ax in fig.axes for im in ax.get_images() if isinstance(im, AxesImage)]
    assert len(images) == 2  # mean and VaR95 over seeds
    for im in images:
        assert im.get_cmap().name.startswith(HEATMAP_CMAP)
        grid = np.ma.getdata(im.get_array())
        lo, hi = np.nanmin(grid), np.nanmax(grid)
        # The scale spans the data, not 0 to the largest value.
        assert im.norm.vmin == min(i.norm.vmin for i in images) and im.norm.vmin > 800_000
        darkest = luminance(im.cmap(im.norm(lo)))
        lightest = luminance(im.cmap(im.norm(hi)))
        assert lightest - darkest > 0.6
    # One scale for both panels: the same colour is the same value.
    assert images[0].norm.vmin == images[1].norm.vmin
    assert images[0].norm.vmax == images[1].norm.vmax
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "900k" in texts and texts.count("no runs") == 2
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert labels and all("liquidated value (USD)" in label for label in labels)


def test_the_map_is_perceptually_uniform() -> None:
    """Lightness rises steadily along the map (a sequential map, no dark or light bands)."""
    cmap = matplotlib.colormaps[HEATMAP_CMAP]
    light = np.array([luminance(cmap(v)) for v in np.linspace(0, 1, 64)])
    steps = np.diff(light)
    assert (steps > 0).all()
    assert steps.max() < 3 * steps.min()
