"""MCDEX v1's own figures, as data (drawn by ``perpsim.plots.venues``).

The pool figure shows the AMM pool that is every trader's counterparty; the social-loss figure
shows the loss per contract charged to each side once the insurance fund is empty (MCDEX keeps
one per side). The common figures (prices, funding, insurance fund, liquidations, trader PnL)
are drawn for every design from the common columns.
"""

from __future__ import annotations

from typing import Final

from perpsim.engine.core.figures import FigureSpec, PanelSpec, SeriesSpec

__all__ = ["FIGURES"]

POOL: Final = FigureSpec(
    name="pool",
    title="Open interest and the AMM pool",
    panels=(
        PanelSpec(
            title="Open interest and the pool's position",
            ylabel="contracts",
            series=(
                SeriesSpec("open_interest", "open interest (long = short)", color="oi"),
                SeriesSpec(
                    "mcdex_v1_pool_position_size",
                    "pool's long position",
                    color="pool",
                    dashed=True,
                ),
            ),
            from_zero=True,
        ),
        PanelSpec(
            title="Pool margin",
            ylabel="USD",
            series=(
                SeriesSpec("mcdex_v1_pool_available_margin", "pool available margin", color="pool"),
                SeriesSpec(
                    "mcdex_v1_pool_cash_balance",
                    "pool cash balance",
                    color="muted",
                    dashed=True,
                    width=1.0,
                ),
            ),
        ),
        PanelSpec(
            title="LP share price",
            ylabel="USD per share",
            series=(
                SeriesSpec(
                    "lp_share_price",
                    "LP share price",
                    color="lp",
                    width=1.5,
                    only_where="lp_share_supply",
                    gap_note="(to the last price before\nall shares were redeemed)",
                ),
            ),
            reference="at the start",
            change_label="share price change",
        ),
    ),
    caption="Open interest and the pool's long position (contracts); the pool's available margin"
    " and cash (USD); the LP share price (USD per share) against its starting value.",
    height=8.0,
)

SOCIAL_LOSS: Final = FigureSpec(
    name="social_loss",
    title="Social loss per contract",
    panels=(
        PanelSpec(
            title="Social loss per contract",
            ylabel="USD per contract",
            series=(
                SeriesSpec(
                    "mcdex_v1_social_loss_per_contract_long",
                    "charged to longs",
                    kind="step",
                    color="long",
                ),
                SeriesSpec(
                    "mcdex_v1_social_loss_per_contract_short",
                    "charged to shorts",
                    kind="step",
                    color="short",
                    dashed=True,
                ),
            ),
            empty_text="no social loss in this run",
        ),
    ),
    caption="The social loss charged per contract to longs and to shorts (USD per contract):"
    " once the insurance fund is empty, a liquidation loss is charged to the positions of one"
    " side (the opposite side by default), and this steps up for the side that pays.",
    height=3.6,
)

#: MCDEX v1's figures, in reading order (after the common figures of every run).
FIGURES: Final[tuple[FigureSpec, ...]] = (POOL, SOCIAL_LOSS)
