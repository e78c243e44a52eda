"""Scalar risk metrics of one run (``summary.json``) and tail statistics across runs.

Every metric is named for what a risk reviewer asks: how low did the insurance fund go, how much
loss was socialised, how much debt could not be covered, how much was liquidated, who paid
funding, how did LPs and traders fare.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from perpsim.model import PerpModel

#: Agent types whose account PnL enters the trader PnL quantiles.
TRADER_TYPES = ("noise_trader", "momentum_trader", "whale", "arbitrageur")

#: Numeric summary metrics, in the order written (sweeps aggregate these).
SUMMARY_METRICS: tuple[str, ...] = (
    "insurance_fund_initial",
    "insurance_fund_min",
    "insurance_fund_final",
    "insurance_fund_drawdown",
    "insurance_fund_exhausted",
    "social_loss_total",
    "bad_debt",
    "liquidation_count",
    "liquidation_volume",
    "liquidated_value",
    "liquidation_loss_total",
    "insurance_fund_paid_total",
    "funding_paid_by_longs",
    "funding_paid_by_shorts",
    "lp_return",
    "trader_pnl_p5",
    "trader_pnl_p50",
    "trader_pnl_p95",
    "trader_pnl_mean",
    "trades",
    "volume",
    "max_unsafe_accounts_before_liquidation",
    "max_bankrupt_accounts_before_liquidation",
    "max_unsafe_accounts_end_of_tick",
    "max_bankrupt_accounts_end_of_tick",
    "time_with_unsafe_accounts_s",
    "time_in_emergency_s",
    "settled",
    "final_mark_price",
    "min_market_price",
    "max_market_price",
    "ticks",
)


def max_drawdown(values: npt.ArrayLike) -> float:
    """Largest fall from a running peak to a later value (≥ 0, in the values' units)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return 0.0
    return float(np.max(np.maximum.accumulate(v) - v))


def run_summary(model: PerpModel, accounts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The scalar metrics of a finished (or stopped) run.

    Args:
        model: the model after its last tick.
        accounts: its :meth:`~perpsim.model.PerpModel.account_table`.
    """
    rows = model.rows
    fund = np.asarray([r["insurance_fund"] for r in rows], dtype=np.float64)
    # Share prices while shares exist (after settlement every share may be redeemed).
    share = np.asarray(
        [r["lp_share_price"] for r in rows if r["lp_share_supply"] > 0], dtype=np.float64
    )
    liq = [e for e in model.event_log if e["kind"] == "liquidate"]
    pnl = np.asarray(
        [a["pnl"] for a in accounts if a["agent_type"] in TRADER_TYPES], dtype=np.float64
    )
    venue = model.venue
    funds = venue.funds()
    bad_debt = venue.bad_debt()
    # math.fsum, not sum(): Python 3.12's sum() of floats is compensated and 3.11's is not, so
    # the last digits would differ between the interpreters of one cluster.
    social = math.fsum(e.get("social_loss", 0.0) for e in liq)

    def q(p: float) -> float:
        return float(np.percentile(pnl, p)) if pnl.size else math.nan

    lp_return = math.nan
    if share.size and share[0] > 0:
        lp_return = float(share[-1] / share[0] - 1.0)
    trades = sum(1 for e in model.event_log if e["kind"] in ("buy", "sell", "trade"))
    volume = math.fsum(
        e["amount"] for e in model.event_log if e["kind"] in ("buy", "sell", "trade")
    )
    summary: dict[str, Any] = {
        "insurance_fund_initial": float(fund[0]) if fund.size else 0.0,
        "insurance_fund_min": float(fund.min()) if fund.size else 0.0,
        "insurance_fund_final": funds["insurance_fund"],
        "insurance_fund_drawdown": max_drawdown(fund),
        # The fund ran out when a loss exceeded it: something was socialised or written off.
        "insurance_fund_exhausted": bool(social > 0.0 or bad_debt > 0.0),
        "social_loss_total": social,
        "bad_debt": bad_debt,
        "liquidation_count": len(liq),
        "liquidation_volume": math.fsum(e["amount"] for e in liq),
        "liquidated_value": math.fsum(e["amount"] * e["price"] for e in liq),
        "liquidation_loss_total": math.fsum(e.get("loss", 0.0) for e in liq),
        "insurance_fund_paid_total": math.fsum(e.get("insurance_fund_paid", 0.0) for e in liq),
        "funding_paid_by_longs": model.funding_paid_by_longs,
        "funding_paid_by_shorts": model.funding_paid_by_shorts,
        "lp_return": lp_return,
        "trader_pnl_p5": q(5),
        "trader_pnl_p50": q(50),
        "trader_pnl_p95": q(95),
        "trader_pnl_mean": float(pnl.mean()) if pnl.size else math.nan,
        "trades": trades,
        "volume": volume,
        # Before liquidators act (every tick) and at the end of the tick (the recorded rows,
        # as the time series shows them): a crash's accounts are unsafe and bankrupt in the
        # first, and mostly liquidated by the second.
        "max_unsafe_accounts_before_liquidation": model.max_unsafe_accounts_before_liquidation,
        "max_bankrupt_accounts_before_liquidation": (
            model.max_bankrupt_accounts_before_liquidation
        ),
        "max_unsafe_accounts_end_of_tick": max(
            (int(r["unsafe_accounts"]) for r in rows), default=0
        ),
        "max_bankrupt_accounts_end_of_tick": max(
            (int(r["bankrupt_accounts"]) for r in rows), default=0
        ),
        "time_with_unsafe_accounts_s": model.time_with_unsafe_accounts_s,
        "time_in_emergency_s": model.time_in_emergency_s,
        "settled": venue.status.value == "SETTLED",
        "final_mark_price": rows[-1]["mark_price"] if rows else math.nan,
        "min_market_price": float(np.min(model.market_prices[: model.tick + 1])),
        "max_market_price": float(np.max(model.market_prices[: model.tick + 1])),
        "ticks": model.tick,
    }
    summary["rejections"] = dict(sorted(model.rejections.items()))
    summary["invariants"] = "ok" if not model.invariant_problems else model.invariant_problems
    summary["status"] = venue.status.value
    return summary


def var(losses: npt.ArrayLike, level: float = 0.95) -> float:
    """Value at risk: the ``level`` quantile of losses (losses positive)."""
    x = np.asarray(losses, dtype=np.float64)
    x = x[~np.isnan(x)]
    return float(np.quantile(x, level)) if x.size else math.nan


def cvar(losses: npt.ArrayLike, level: float = 0.95) -> float:
    """Conditional value at risk: the mean of the losses at or beyond the VaR."""
    x = np.asarray(losses, dtype=np.float64)
    x = x[~np.isnan(x)]
    if not x.size:
        return math.nan
    threshold = np.quantile(x, level)
    return float(x[x >= threshold].mean())
