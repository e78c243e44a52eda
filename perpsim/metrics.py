"""Scalar risk metrics of one run (``summary.json``) and tail statistics across runs.

Every metric is named for what a risk reviewer asks: how low did the insurance fund go, how much
loss was socialised, how much debt could not be covered, how much was liquidated, who paid
funding, how did LPs and traders fare.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from perpsim.model import PerpModel

#: Agent types whose account PnL enters the trader PnL quantiles.
TRADER_TYPES = ("noise_trader", "momentum_trader", "whale", "arbitrageur")

#: The size of the buy whose price impact a run records when its scenario gives none
#: (``output.price_impact_size``, contracts).
DEFAULT_PRICE_IMPACT_SIZE = 10.0

Unit = Literal["USD", "price", "%", "contracts", "shares", "count", "duration", "yes/no"]


@dataclass(frozen=True)
class Metric:
    """How a summary metric is shown: its label and its unit (see :func:`format_metric`).

    Attributes:
        label: Words for a table row (``liquidation loss``).
        unit: ``USD`` (money), ``price`` (USD per contract), ``%`` (the value is a fraction),
            ``contracts``, ``shares``, ``count``, ``duration`` (seconds) or ``yes/no``.
    """

    label: str
    unit: Unit


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
    "lp_share_supply_max",
    "lp_share_supply_final",
    "price_impact_min",
    "price_impact_max",
    "price_impact_final",
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
    "rejections_total",
)

#: Every summary metric's label and unit: the terminal summary, the report and a scenario's
#: ``output.headline`` read them here.
METRICS: Final[dict[str, Metric]] = {
    "insurance_fund_initial": Metric("insurance fund at the start", "USD"),
    "insurance_fund_min": Metric("insurance fund minimum", "USD"),
    "insurance_fund_final": Metric("insurance fund at the end", "USD"),
    "insurance_fund_drawdown": Metric("insurance fund max drawdown", "USD"),
    "insurance_fund_exhausted": Metric("insurance fund exhausted", "yes/no"),
    "social_loss_total": Metric("socialised loss", "USD"),
    "bad_debt": Metric("bad debt", "USD"),
    "liquidation_count": Metric("liquidations", "count"),
    "liquidation_volume": Metric("liquidated size", "contracts"),
    "liquidated_value": Metric("liquidated value", "USD"),
    "liquidation_loss_total": Metric("liquidation loss", "USD"),
    "insurance_fund_paid_total": Metric("liquidation loss paid by the insurance fund", "USD"),
    "funding_paid_by_longs": Metric("funding paid by longs", "USD"),
    "funding_paid_by_shorts": Metric("funding paid by shorts", "USD"),
    "lp_return": Metric("LP share value change", "%"),
    "lp_share_supply_max": Metric("LP share supply, largest", "shares"),
    "lp_share_supply_final": Metric("LP share supply at the end", "shares"),
    "price_impact_min": Metric("price impact of a {size}-contract buy, smallest", "%"),
    "price_impact_max": Metric("price impact of a {size}-contract buy, largest", "%"),
    "price_impact_final": Metric("price impact of a {size}-contract buy at the end", "%"),
    "trader_pnl_p5": Metric("trader PnL, 5th percentile", "USD"),
    "trader_pnl_p50": Metric("trader PnL, median", "USD"),
    "trader_pnl_p95": Metric("trader PnL, 95th percentile", "USD"),
    "trader_pnl_mean": Metric("trader PnL, mean", "USD"),
    "trades": Metric("trades", "count"),
    "volume": Metric("traded size", "contracts"),
    "max_unsafe_accounts_before_liquidation": Metric(
        "most accounts unsafe at once (before liquidators act)", "count"
    ),
    "max_bankrupt_accounts_before_liquidation": Metric(
        "most accounts bankrupt at once (before liquidators act)", "count"
    ),
    "max_unsafe_accounts_end_of_tick": Metric("most accounts unsafe at the end of a tick", "count"),
    "max_bankrupt_accounts_end_of_tick": Metric(
        "most accounts bankrupt at the end of a tick", "count"
    ),
    "time_with_unsafe_accounts_s": Metric("time with unsafe accounts", "duration"),
    "time_in_emergency_s": Metric("time in EMERGENCY", "duration"),
    "settled": Metric("settled", "yes/no"),
    "final_mark_price": Metric("mark price at the end", "price"),
    "min_market_price": Metric("market price minimum", "price"),
    "max_market_price": Metric("market price maximum", "price"),
    "ticks": Metric("ticks run", "count"),
    "rejections_total": Metric("agent actions the engine refused", "count"),
}


def _grouped(v: float, decimals: int) -> str:
    return f"{v:,.{decimals}f}".replace("-", "−")


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    parts = []
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "min")):
        if s >= size:
            parts.append(f"{s // size} {unit}")
            s %= size
    return " ".join(parts[:2])


def format_value(unit: Unit, value: Any) -> str:
    """``value`` in ``unit`` as text: ``30,484 USD``, ``−17.80%``, ``6,613 contracts``."""
    if value is None or isinstance(value, str):
        return "—" if value is None else value
    if unit == "yes/no" or isinstance(value, bool | np.bool_):
        return "yes" if bool(value) else "no"
    v = float(value)
    if math.isnan(v):
        return "—"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if unit == "%":
        a = abs(v) * 100
        # Two decimals, or two significant digits below 0.1%.
        decimals = 2 if a >= 0.1 or a == 0 else 1 - math.floor(math.log10(a))
        return f"{v * 100:+.{min(decimals, 8)}f}%".replace("-", "−").replace("+", "")
    if unit == "duration":
        return _duration(v)
    if unit == "count":
        return _grouped(v, 0)
    decimals = 2 if (unit == "price" or abs(v) < 100) and v != int(v) else 0
    text = _grouped(v, decimals if abs(v) < 1e15 else 0)
    return {
        "USD": f"{text} USD",
        "price": f"{text} USD",
        "contracts": f"{text} contracts",
        "shares": f"{text} shares",
    }[unit]


def metric_label(name: str, price_impact_size: float = DEFAULT_PRICE_IMPACT_SIZE) -> str:
    """A summary metric's label (:data:`METRICS`), or its name when it has none.

    Args:
        name: The metric.
        price_impact_size: The run's ``output.price_impact_size``, named by the price-impact
            labels.
    """
    info = METRICS.get(name)
    if info is None:
        return name
    return info.label.replace("{size}", f"{price_impact_size:g}")


def format_metric(name: str, value: Any) -> str:
    """A summary metric's value with its unit (:data:`METRICS`; a plain number otherwise)."""
    info = METRICS.get(name)
    if info is None:
        return f"{value:,.6g}" if isinstance(value, float) else str(value)
    return format_value(info.unit, value)


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
    log = model.event_log
    # Columns of the event log, not its records: the same values in event order, so the sums
    # below are those of the records' loop, without building a dict per event.
    liq_amount = log.values("amount", "liquidate")
    liq_price = log.values("price", "liquidate")
    pnl = np.asarray(
        [a["pnl"] for a in accounts if a["agent_type"] in TRADER_TYPES], dtype=np.float64
    )
    venue = model.venue
    funds = venue.funds()
    bad_debt = venue.bad_debt()
    # math.fsum, not sum(): Python 3.12's sum() of floats is compensated and 3.11's is not, so
    # the last digits would differ between the interpreters of one cluster.
    social = math.fsum(log.values("social_loss", "liquidate", default=0.0))

    def q(p: float) -> float:
        return float(np.percentile(pnl, p)) if pnl.size else math.nan

    lp_return = math.nan
    if share.size and share[0] > 0:
        lp_return = float(share[-1] / share[0] - 1.0)
    supply = np.asarray([r["lp_share_supply"] for r in rows], dtype=np.float64)
    # Row 0 is the set-up state, before any agent acted (the LPs have not joined the pool).
    run_rows = rows[1:] or rows
    impact = np.asarray([r.get("price_impact", math.nan) for r in run_rows], dtype=np.float64)
    quoted = impact[np.isfinite(impact)]
    trades = log.count("buy", "sell", "trade")
    volume = math.fsum(log.values("amount", "buy", "sell", "trade"))
    summary: dict[str, Any] = {
        "insurance_fund_initial": float(fund[0]) if fund.size else 0.0,
        "insurance_fund_min": float(fund.min()) if fund.size else 0.0,
        "insurance_fund_final": funds["insurance_fund"],
        "insurance_fund_drawdown": max_drawdown(fund),
        # The fund ran out when a loss exceeded it: something was socialised or written off.
        "insurance_fund_exhausted": bool(social > 0.0 or bad_debt > 0.0),
        "social_loss_total": social,
        "bad_debt": bad_debt,
        "liquidation_count": len(liq_amount),
        "liquidation_volume": math.fsum(liq_amount),
        "liquidated_value": math.fsum(a * p for a, p in zip(liq_amount, liq_price, strict=True)),
        "liquidation_loss_total": math.fsum(log.values("loss", "liquidate", default=0.0)),
        "insurance_fund_paid_total": math.fsum(
            log.values("insurance_fund_paid", "liquidate", default=0.0)
        ),
        "funding_paid_by_longs": model.funding_paid_by_longs,
        "funding_paid_by_shorts": model.funding_paid_by_shorts,
        "lp_return": lp_return,
        "lp_share_supply_max": float(np.max(supply)) if supply.size else math.nan,
        "lp_share_supply_final": float(supply[-1]) if supply.size else math.nan,
        # The probe buy's price impact at the recorded rows where the venue could quote it.
        "price_impact_min": float(np.min(quoted)) if quoted.size else math.nan,
        "price_impact_max": float(np.max(quoted)) if quoted.size else math.nan,
        "price_impact_final": float(impact[-1]) if impact.size else math.nan,
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
        "rejections_total": sum(model.rejections.values()),
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
