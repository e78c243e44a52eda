"""The figures of one run (``<run>/plots/``): one module per concern.

Every run gets the common figures (:data:`RUN_FIGURES`: prices, premium and funding,
accumulated funding, insurance fund and losses, liquidations, trader PnL), drawn from the
common time-series columns, then the figures its exchange design declares
(``VenueSpec.figures``, drawn by :mod:`perpsim.plots.venues`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

from matplotlib.figure import Figure

from perpsim.plots.info import FigureInfo
from perpsim.plots.markers import event_markers
from perpsim.plots.run.accumulated_funding import fig_accumulated_funding
from perpsim.plots.run.funding import fig_funding
from perpsim.plots.run.insurance_fund import fig_insurance_fund
from perpsim.plots.run.liquidations import fig_liquidations
from perpsim.plots.run.prices import fig_prices
from perpsim.plots.run.trader_pnl import fig_trader_pnl
from perpsim.plots.run.vaults import VAULTS_FIGURE, fig_vaults, read_vaults
from perpsim.plots.rundata import RunData, load_run
from perpsim.plots.scenario import venue_kind
from perpsim.plots.style import save_png, style_context
from perpsim.plots.venues import draw_figure, figure_info, venue_figures

__all__ = ["RUN_FIGURES", "plot_run", "run_figure_infos", "run_figures"]


#: The figures of every run, whatever its exchange design, in reading order (the design's own
#: figures follow, see :func:`run_figure_infos`).
RUN_FIGURES: Final[tuple[FigureInfo, ...]] = (
    FigureInfo(
        "prices.png",
        "Prices",
        "Market price (simulated spot), oracle index, perpetual mark price and AMM fair price"
        " (USD); below, each price's gap to the index (%) with the mark-premium limit, and the"
        " age of the index (minutes) — it grows during oracle outages and when keepers lag.",
    ),
    FigureInfo(
        "funding.png",
        "Premium and funding rate",
        "The AMM premium (mark vs index, %) with the funding dampener band (premiums inside it"
        " pay no funding) and the mark-premium limit; below, the funding rate in % per 8 hours"
        " (right axis: annualised). Above zero longs pay shorts.",
    ),
    FigureInfo(
        "accumulated_funding.png",
        "Accumulated funding",
        "Funding accumulated per contract (USD per contract): rising while longs pay shorts,"
        " falling while shorts pay longs. The box gives the total funding each side paid.",
    ),
    FigureInfo(
        "insurance_fund.png",
        "Insurance fund and losses beyond it",
        "Insurance fund (USD) with every liquidation marked (red triangles: the fund paid part"
        " of a liquidation loss); below, the cumulative socialised loss and bad debt (USD).",
    ),
    FigureInfo(
        "liquidations.png",
        "Liquidations",
        "Liquidations per time bin by side of the liquidated position, the contracts"
        " liquidated, and who absorbed the liquidation losses (insurance fund, socialised,"
        " bad debt); below, the number of accounts under maintenance margin and bankrupt.",
    ),
    FigureInfo(
        "trader_pnl.png",
        "Trader PnL",
        "Distribution of the final PnL of trader accounts (noise and momentum traders, whales,"
        " arbitrageurs) in USD and as a return on their deposits, with the 5th, 50th and 95th"
        " percentiles.",
    ),
)


def run_figure_infos(run: RunData) -> tuple[FigureInfo, ...]:
    """The figures of a run: the common ones, then those its exchange design declares.

    Raises:
        ConfigError: the run's design is not registered.
    """
    own = venue_figures(venue_kind(run.scenario))
    vaults = (VAULTS_FIGURE,) if read_vaults(run) is not None else ()
    return RUN_FIGURES + tuple(figure_info(spec) for spec in own) + vaults


def run_figures(run: RunData) -> list[tuple[FigureInfo, Figure]]:
    """Every figure of a run, in :func:`run_figure_infos` order (not yet saved).

    Raises:
        ConfigError: the run's design is not registered.
    """
    markers = event_markers(run)
    makers: dict[str, Callable[[], Figure]] = {
        "prices.png": lambda: fig_prices(run, markers),
        "funding.png": lambda: fig_funding(run, markers),
        "accumulated_funding.png": lambda: fig_accumulated_funding(run, markers),
        "insurance_fund.png": lambda: fig_insurance_fund(run, markers),
        "liquidations.png": lambda: fig_liquidations(run, markers),
        "trader_pnl.png": lambda: fig_trader_pnl(run),
    }
    own = venue_figures(venue_kind(run.scenario))
    out = []
    with style_context():
        for info in RUN_FIGURES:
            out.append((info, makers[info.file]()))
        for spec in own:
            out.append((figure_info(spec), draw_figure(spec, run, markers)))
        # A run with a GLP vault family (agents/vaults/) also has its vaults.parquet.
        vaults = read_vaults(run)
        if vaults is not None:
            out.append((VAULTS_FIGURE, fig_vaults(run, markers, vaults)))
    return out


def plot_run(run_dir: Path) -> list[Path]:
    """Draw every figure of a run into ``<run_dir>/plots/``; return the PNG paths.

    Raises:
        ConfigError: ``run_dir`` is not a readable run folder.
    """
    run = load_run(Path(run_dir))
    out_dir = run.path / "plots"
    written = []
    with style_context():
        for info, fig in run_figures(run):
            written.append(save_png(fig, out_dir / info.file))
    return written
