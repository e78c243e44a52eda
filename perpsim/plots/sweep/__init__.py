"""The figures of a sweep (``<sweep>/plots/``): one module per figure.

The heatmap needs two varied parameters, the fan chart the runs' kept time series.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from matplotlib.figure import Figure

from perpsim.plots.info import FigureInfo
from perpsim.plots.style import save_png, style_context
from perpsim.plots.sweep.data import SweepData, axes_params, check_metric, read_sweep_dir
from perpsim.plots.sweep.fan import fig_sweep_fan
from perpsim.plots.sweep.frontier import fig_sweep_frontier
from perpsim.plots.sweep.heatmap import fig_sweep_heatmap
from perpsim.plots.sweep.losses import fig_sweep_losses
from perpsim.plots.sweep.metric import fig_sweep_metric

__all__ = ["SWEEP_FIGURES", "plot_sweep", "sweep_figures"]


#: The figures of a sweep, in reading order (the heatmap needs two varied parameters, the fan
#: chart needs the runs' time series).
SWEEP_FIGURES: Final[tuple[FigureInfo, ...]] = (
    FigureInfo(
        "sweep_heatmap.png",
        "Heatmap over two parameters",
        "The chosen statistic for each combination of two varied parameters: the mean over"
        " seeds and the 95th percentile over seeds (VaR95). Darker is larger.",
    ),
    FigureInfo(
        "sweep_metric.png",
        "Metric against one parameter",
        "The chosen metric against one varied parameter: median over seeds (line) and the"
        " 5th–95th percentile band across seeds; one line per value of a second parameter.",
    ),
    FigureInfo(
        "sweep_losses.png",
        "Loss distribution per point",
        "For every parameter point, the distribution across seeds of the insurance-fund"
        " drawdown and of the loss beyond the fund (socialised loss + bad debt), USD. Boxes span"
        " the 25th–75th percentiles, whiskers the 5th–95th, dots are single runs, diamonds the"
        " VaR95.",
    ),
    FigureInfo(
        "sweep_fan.png",
        "Insurance fund across seeds",
        "Fan chart of the insurance fund (USD) over time across seeds for a few parameter points"
        " (the best, the worst and some in between by mean drawdown): median line, 25th–75th"
        " and 5th–95th percentile bands.",
    ),
    FigureInfo(
        "sweep_frontier.png",
        "Capital efficiency against tail risk",
        "For every parameter point, the VaR95 (filled) and CVaR95 (hollow) across seeds of the"
        " insurance-fund drawdown and of the loss beyond the fund, against the capital-efficiency"
        " parameter. The line joins the lowest tail risk reached at each value.",
    ),
)


def sweep_figures(
    sweep: SweepData, metric: str | None = None, x: str | None = None, y: str | None = None
) -> list[tuple[FigureInfo, Figure]]:
    """Every figure a sweep supports, in :data:`SWEEP_FIGURES` order (not yet saved).

    Args:
        sweep: the sweep.
        metric: the statistic of the heatmap and the metric plot (a summary metric, or a tail
            statistic such as ``p_insurance_fund_exhausted``); default the sweep's own metric.
        x: the parameter on the x axis (default: the initial margin rate if varied, else the
            first parameter).
        y: the second parameter (default: the next varied parameter).

    Raises:
        ConfigError: an unknown metric or parameter.
    """
    metric = metric or sweep.metric
    check_metric(sweep, metric)
    xk, yk = axes_params(sweep, x, y)
    info = {f.file: f for f in SWEEP_FIGURES}
    out: list[tuple[FigureInfo, Figure]] = []
    with style_context():
        if xk is not None and yk is not None:
            out.append((info["sweep_heatmap.png"], fig_sweep_heatmap(sweep, metric, xk, yk)))
        if xk is not None:
            out.append((info["sweep_metric.png"], fig_sweep_metric(sweep, metric, xk, yk)))
        out.append((info["sweep_losses.png"], fig_sweep_losses(sweep)))
        fan = fig_sweep_fan(sweep)
        if fan is not None:
            out.append((info["sweep_fan.png"], fan))
        if xk is not None:
            out.append((info["sweep_frontier.png"], fig_sweep_frontier(sweep, xk, yk)))
    return out


def plot_sweep(
    sweep_dir: Path, metric: str | None = None, x: str | None = None, y: str | None = None
) -> list[Path]:
    """Draw the figures of a sweep into ``<sweep_dir>/plots/``; return the PNG paths.

    Raises:
        ConfigError: not a sweep folder, or an unknown metric or parameter.
    """
    sweep = read_sweep_dir(Path(sweep_dir))
    written = []
    with style_context():
        for info, fig in sweep_figures(sweep, metric, x, y):
            written.append(save_png(fig, sweep.path / "plots" / info.file))
    return written
