"""D8X's own figures, as data (drawn by ``perpsim.plots.venues``).

The funds figure shows the pool's three pots against their targets (what risk teams size); the
pricing figure shows what the AMM's price is made of (its exposure, k*, the mid default
probability and the premium EMA behind the mark price and funding). Amounts are in the pool's
collateral currency (USD for the shipped quote pools).
"""

from __future__ import annotations

from typing import Final

from perpsim.engine.core.figures import FigureSpec, PanelSpec, SeriesSpec

__all__ = ["FIGURES"]

FUNDS: Final = FigureSpec(
    name="d8x_funds",
    title="D8X funds and their targets",
    panels=(
        PanelSpec(
            title="AMM fund",
            ylabel="collateral",
            series=(
                SeriesSpec("d8x_amm_fund_cash", "AMM fund cash", color="pool"),
                SeriesSpec("d8x_amm_fund_target", "AMM fund target", color="muted", dashed=True),
            ),
            from_zero=True,
        ),
        PanelSpec(
            title="Default fund",
            ylabel="collateral",
            series=(
                SeriesSpec("d8x_default_fund_cash", "default fund cash", color="fund"),
                SeriesSpec(
                    "d8x_default_fund_target",
                    "default fund target (cover n)",
                    kind="step",
                    color="muted",
                    dashed=True,
                ),
            ),
            from_zero=True,
        ),
        PanelSpec(
            title="LP cash and the AMM's margin",
            ylabel="collateral",
            series=(
                SeriesSpec("d8x_lp_cash", "LP cash", color="lp"),
                SeriesSpec(
                    "d8x_amm_margin_balance", "AMM margin balance", color="short", width=1.0
                ),
            ),
        ),
        PanelSpec(
            title="Stress flags",
            ylabel="flag",
            series=(
                SeriesSpec(
                    "d8x_default_fund_stress", "DF at or below target", kind="step", color="social"
                ),
                SeriesSpec(
                    "d8x_amm_fund_stress",
                    "AMM fund below target",
                    kind="step",
                    color="bad_debt",
                    dashed=True,
                ),
            ),
            from_zero=True,
            empty_text="no fund below its target in this run",
        ),
    ),
    caption="The AMM fund and the default fund against their targets, LP cash and the AMM's"
    " margin balance (collateral), and the stress flags: the DF at or below its target widens"
    " the minimal spread; a shortfall the DF cannot pay puts the pool into EMERGENCY.",
    height=9.0,
)

PRICING: Final = FigureSpec(
    name="d8x_pricing",
    title="D8X pricing: exposure, k*, default probability and premium",
    panels=(
        PanelSpec(
            title="Traders' exposure K2 and the risk-minimising trade k*",
            ylabel="contracts",
            series=(
                SeriesSpec("d8x_k2", "K2 (the AMM holds −K2)", color="oi"),
                SeriesSpec("d8x_k_star", "k*", color="muted", dashed=True),
            ),
        ),
        PanelSpec(
            title="The AMM's default probability at the mid price",
            ylabel="probability",
            series=(SeriesSpec("d8x_mid_default_probability", "Q(0)", color="bad_debt"),),
            axis_format="percent",
            from_zero=True,
        ),
        PanelSpec(
            title="Mark premium EMA and funding rate",
            ylabel="rate",
            series=(
                SeriesSpec("d8x_mark_premium_ema", "premium EMA r̄", color="pool"),
                SeriesSpec("funding_rate", "8-hour funding rate", color="long", dashed=True),
            ),
            axis_format="percent",
        ),
    ),
    caption="The traders' net position K2 and k*, the trade that would minimise the AMM's risk"
    " (contracts); the AMM's default probability Q(0), which is the mid price's premium"
    " (p(0) = S2 (1 ± Q)); the premium EMA behind the mark price and the 8-hour funding rate.",
    height=8.0,
)

#: D8X's figures, in reading order (after the common figures of every run).
FIGURES: Final[tuple[FigureSpec, ...]] = (FUNDS, PRICING)
