"""The GLP vault family of a run (``vaults.parquet``): TVL, deltas, costs, the net position."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from perpsim.plots.files import read_table
from perpsim.plots.info import FigureInfo
from perpsim.plots.markers import Marker, run_title, time_axes
from perpsim.plots.rundata import RunData
from perpsim.plots.style import legend_beside, new_figure, pct_axis, usd_axis

__all__ = ["VAULTS_FIGURE", "fig_vaults", "read_vaults"]

#: The figure of a run with a ``glp_vault_family`` (drawn only when ``vaults.parquet`` exists).
VAULTS_FIGURE = FigureInfo(
    "vaults.png",
    "GLP vaults",
    "Each vault's TVL (USD); its delta off target per asset (% of its TVL); its cumulative"
    " costs (mint/burn fees, venue fees and price impact, off-venue carry, funding; USD); and"
    " the family's net perpetual position (contracts) with its share of open interest.",
)

_COSTS = (
    ("fees_mint_burn", "mint/burn"),
    ("venue", "venue fees + impact"),
    ("fees_off_venue", "off-venue"),
    ("funding_paid", "funding"),
)


def read_vaults(run: RunData) -> pd.DataFrame | None:
    """The run's vault table, or None when the run has no vault family."""
    return read_table(run.path, "vaults")


def fig_vaults(run: RunData, markers: Sequence[Marker], vaults: pd.DataFrame) -> Figure:
    """TVL, deltas and costs per vault; the family's net position and open-interest share."""
    fig, axes = new_figure(4, height=11.0, height_ratios=(1.0, 1.0, 1.0, 0.9))
    ax_tvl, ax_delta, ax_cost, ax_pos = axes
    members = vaults[vaults["vault"] != "family"]
    family = vaults[vaults["vault"] == "family"]
    assets = [c.removeprefix("delta_") for c in vaults.columns if c.startswith("delta_")]
    styles = ("-", "--", ":", "-.")
    for name, rows in members.groupby("vault", sort=False):
        t = rows["time"]
        line = ax_tvl.plot(t, rows["tvl"], lw=1.3, label=str(name))[0]
        for i, asset in enumerate(assets):
            ax_delta.plot(
                t,
                rows[f"delta_{asset}"],
                lw=1.0,
                color=line.get_color(),
                ls=styles[i % len(styles)],
                label=f"{name}: {asset}",
            )
        venue = rows["fees_trading"] + rows["trading_impact"]
        for j, (column, label) in enumerate(_COSTS):
            values = venue if column == "venue" else rows[column]
            ax_cost.plot(
                t,
                values,
                lw=1.0,
                color=line.get_color(),
                ls=styles[j % len(styles)],
                label=f"{name}: {label}",
            )
    ax_tvl.set_title("TVL per vault")
    usd_axis(ax_tvl, "USD")
    legend_beside(ax_tvl)
    ax_delta.axhline(0, color="#999999", lw=0.8)
    ax_delta.set_title("Delta off target (a fraction of the vault's TVL)")
    pct_axis(ax_delta, "% of TVL")
    legend_beside(ax_delta)
    ax_cost.set_title("Cumulative costs per vault (funding < 0: received)")
    usd_axis(ax_cost, "USD")
    legend_beside(ax_cost)
    t = family["time"]
    ax_pos.plot(t, family["net_perp_position"], color="#333333", lw=1.3, label="net position")
    ax_pos.axhline(0, color="#999999", lw=0.8)
    ax_pos.set_title("The family's net perpetual position and its share of open interest")
    ax_pos.set_ylabel("contracts")
    share = ax_pos.twinx()
    share.plot(
        t,
        np.asarray(family["oi_share"], dtype=np.float64),
        color="#c44e52",
        lw=1.0,
        label="share of open interest",
    )
    pct_axis(share, "% of open interest")
    handles = ax_pos.get_legend_handles_labels()[0] + share.get_legend_handles_labels()[0]
    ax_pos.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.08, 1.0))
    run_title(fig, run, "GLP vaults")
    time_axes(axes, run, markers)
    return fig
