"""Predy's own figures, as data (drawn by ``perpsim.plots.venues``).

The funding figure shows each product's daily funding rate beside the EWMA variance it is built
on; the pool figure the positions the pool holds, the margin it locks and the liquidity left;
the LP figure the LP token price and the hedge (the underlying held against its target).
"""

from __future__ import annotations

from typing import Final

from perpsim.engine.core.figures import FigureSpec, PanelSpec, SeriesSpec

__all__ = ["FIGURES"]

FUNDING: Final = FigureSpec(
    name="predy_funding",
    title="Predy funding and variance",
    panels=(
        PanelSpec(
            title="Squared funding rate and the EWMA variance (per day)",
            ylabel="rate per day",
            series=(
                SeriesSpec("predy_funding_rate_squared", "squared funding rate", color="short"),
                SeriesSpec("predy_variance", "EWMA variance", color="muted", dashed=True),
            ),
            axis_format="percent",
        ),
        PanelSpec(
            title="Future funding rate (per day)",
            ylabel="rate per day",
            series=(SeriesSpec("predy_funding_rate_future", "future funding rate", color="long"),),
            axis_format="percent",
        ),
    ),
    caption=(
        "The squared perpetual's funding rate is the EWMA variance raised by the margin the pool"
        " locks (× (1 + multiplier × F)); the future's is max rate × F. F grows with the locked"
        " margin over the liquidity, so funding climbs as traders take one side."
    ),
)

POOL: Final = FigureSpec(
    name="predy_pool",
    title="Predy pool positions and margin",
    panels=(
        PanelSpec(
            title="The pool's positions (pool short < 0)",
            ylabel="contracts",
            series=(
                SeriesSpec("predy_position_future", "future", color="long"),
                SeriesSpec("predy_position_squared", "squared", color="short"),
            ),
        ),
        PanelSpec(
            title="Locked margin and liquidity",
            ylabel="USD",
            series=(
                SeriesSpec("predy_amount_liquidity", "liquidity L", color="pool"),
                SeriesSpec("predy_available_liquidity", "available", color="lp", dashed=True),
                SeriesSpec("predy_locked_margin_future", "locked (future)", color="long"),
                SeriesSpec("predy_locked_margin_squared", "locked (squared)", color="short"),
            ),
            from_zero=True,
        ),
        PanelSpec(
            title="Utilisation (Σ locked margin / L)",
            ylabel="fraction",
            series=(SeriesSpec("predy_utilization_ratio", "utilisation", color="pool"),),
            axis_format="percent",
            from_zero=True,
        ),
    ),
    caption=(
        "Margin is locked out of the liquidity in proportion to the pool's net delta (split by"
        " product) and the squared's gamma; trades needing more than the available liquidity"
        " are refused."
    ),
)

LP: Final = FigureSpec(
    name="predy_lp",
    title="Predy LP token and hedge",
    panels=(
        PanelSpec(
            title="LP token price",
            ylabel="USD per token",
            series=(
                SeriesSpec(
                    "predy_lp_token_price",
                    "LP token price",
                    color="lp",
                    width=1.5,
                    only_where="lp_share_supply",
                ),
            ),
            reference="start",
            change_label="LP token",
        ),
        PanelSpec(
            title="Hedge: underlying held and its target",
            ylabel="underlying",
            series=(
                SeriesSpec("predy_hedge_underlying", "held", color="pool"),
                SeriesSpec("predy_hedge_target", "target (−net delta)", color="muted", dashed=True),
            ),
            from_zero=True,
        ),
    ),
    caption=(
        "The LP token is worth L plus the close-out PnL of the pool's positions plus the hedge,"
        " less the locked margin, per token. The hedge holds the underlying long only, up to the"
        " pool's negative net delta; the gap shows when the hedger lags."
    ),
)

FIGURES: Final[tuple[FigureSpec, ...]] = (FUNDING, POOL, LP)
