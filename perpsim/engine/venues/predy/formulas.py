"""Every formula of Predy's power-perpetual pool as a pure function, under the spec's names.

Seed ``003_98496a04032570c6.txt`` ("Power Perpetuals AMM") with the decisions of
``spec/predy.md``. Products are numbered as in the contracts: 0 = ``future`` (index S),
1 = ``squared`` (index S² / 10,000). Amounts are floats (the contracts used 1e8 fixed point).
Signs: a trade amount is the trader's side (+ = trader long = pool short); pool positions are
the pool's own (pool short < 0). ``docs/venues/predy.md`` lists each function beside the
spec's formula.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

__all__ = [
    "FUNDING_PERIOD",
    "FUTURE",
    "LAMBDA",
    "PRODUCTS",
    "SCALING_FACTOR",
    "SQUARED",
    "VARIANCE_INTERVAL",
    "HedgeAmounts",
    "MarginChange",
    "PreTrade",
    "SpreadInfo",
    "available_liquidity",
    "calculate_weight",
    "current_funding_rates",
    "delta",
    "entry_price_update",
    "funding_fee_per_position",
    "funding_formula",
    "funding_rate",
    "funding_rate_future",
    "funding_rate_squared",
    "gamma",
    "hedge_amounts",
    "hedge_position_value",
    "index_price",
    "liquidation_reward",
    "lp_token_price",
    "margin_change",
    "margin_div_liquidity",
    "margin_div_liquidity3",
    "min_collateral",
    "pair_fsum",
    "pool_deltas",
    "pre_trade",
    "protocol_fee",
    "required_margin",
    "signed_delta_margin",
    "signed_margin",
    "slippage_tolerance",
    "spread_guard",
    "trade_fee",
    "trade_price",
    "unlocked_liquidity",
    "update_variance",
    "utilization_ratio",
]

#: Product ids (the contracts' order) and names.
FUTURE: int = 0
SQUARED: int = 1
PRODUCTS: tuple[str, str] = ("future", "squared")

#: The squared index is S² / SCALING_FACTOR (100 at S = 1,000).
SCALING_FACTOR = 10_000.0
#: Funding rates are per this period (seconds): one day.
FUNDING_PERIOD = 86_400
#: EWMA weight of the previous variance.
LAMBDA = 0.94
#: Least time between two variance snapshots (seconds).
VARIANCE_INTERVAL = 12 * 3600

FundingFormula = Literal["seed", "mainnet"]


# -- index, delta, gamma --------------------------------------------------------------------


def index_price(product: int, spot: float) -> float:
    """IndexPrice_future = S; IndexPrice_squared = S² / 10,000."""
    return spot if product == FUTURE else spot * spot / SCALING_FACTOR


def delta(product: int, spot: float) -> float:
    """∂IndexPrice/∂S of one contract: 1 for the future, 2S / 10,000 for the squared."""
    return 1.0 if product == FUTURE else 2.0 * spot / SCALING_FACTOR


def gamma(product: int) -> float:
    """∂²IndexPrice/∂S² of one contract: 0 for the future, 2 / 10,000 for the squared."""
    return 0.0 if product == FUTURE else 2.0 / SCALING_FACTOR


def pool_deltas(
    spot: float, position_future: float, position_squared: float
) -> tuple[float, float]:
    """The pool's deltas: d0 = position_future, d1 = (2S / 10,000) × position_squared."""
    return position_future * delta(FUTURE, spot), position_squared * delta(SQUARED, spot)


# -- funding -----------------------------------------------------------------------------------


def margin_div_liquidity(m: float, dm: float, liq: float, dl: float) -> float:
    """MarginDivLiquidity = ((M + ΔM/2) / ΔL) × (ln(L + ΔL) − ln L); (M + ΔM/2) / L if ΔL = 0.

    The mean of (M + x ΔM) / (L + x ΔL) over the trade (x from 0 to 1, M and L moving together
    linearly), in closed form.
    """
    if liq <= 0.0:
        raise ValueError(f"the liquidity L must be positive, got {liq!r}")
    if dl == 0.0:
        return (m + dm / 2.0) / liq
    # ln(L + ΔL) − ln L as log1p(ΔL / L): exact for a ΔL far smaller than L.
    return (m + dm / 2.0) * math.log1p(dl / liq) / dl


def margin_div_liquidity3(m: float, dm: float, liq: float, dl: float) -> float:
    """I3 = (m³ + 1.5 m² dm + m dm² + dm³/4) (L + dL/2) / (L² (L + dL)²) (mainnet)."""
    if liq <= 0.0:
        raise ValueError(f"the liquidity L must be positive, got {liq!r}")
    poly = m**3 + 1.5 * m * m * dm + m * dm * dm + dm**3 / 4.0
    return poly / (liq * liq) * (liq + dl / 2.0) / ((liq + dl) * (liq + dl))


def funding_formula(
    m: float, dm: float, liq: float, dl: float, formula: FundingFormula = "seed"
) -> float:
    """F: the seed's MarginDivLiquidity, or mainnet's (3·I1 + 7·I3) / 10 (L is ``liq``)."""
    i1 = margin_div_liquidity(m, dm, liq, dl)
    if formula == "seed":
        return i1
    return (3.0 * i1 + 7.0 * margin_div_liquidity3(m, dm, liq, dl)) / 10.0


def funding_rate_squared(
    variance: float, squared_perp_funding_multiplier: float, f: float
) -> float:
    """FundingRate_squared = variance × (1 + squared_perp_funding_multiplier × F)."""
    return variance * (1.0 + squared_perp_funding_multiplier * f)


def funding_rate_future(
    base_funding_rate: float, perp_future_max_funding_rate: float, f: float
) -> float:
    """FundingRate_future = base_funding_rate + perp_future_max_funding_rate × F."""
    return base_funding_rate + perp_future_max_funding_rate * f


def funding_rate(
    product: int,
    m: float,
    dm: float,
    liq: float,
    dl: float,
    *,
    variance: float,
    squared_perp_funding_multiplier: float,
    perp_future_max_funding_rate: float,
    base_funding_rate: float = 0.0,
    formula: FundingFormula = "seed",
) -> float:
    """The funding rate of ``product`` over a state change (ΔM, ΔL) from (m, L = ``liq``); per
    funding period.

    With no liquidity (L = 0) the squared rate is the variance and the future's the base rate,
    as in the contracts.
    """
    if liq <= 0.0:
        return variance if product == SQUARED else base_funding_rate
    f = funding_formula(m, dm, liq, dl, formula)
    if product == SQUARED:
        return funding_rate_squared(variance, squared_perp_funding_multiplier, f)
    return funding_rate_future(base_funding_rate, perp_future_max_funding_rate, f)


def current_funding_rates(
    m_future: float,
    m_squared: float,
    liq: float,
    *,
    variance: float,
    squared_perp_funding_multiplier: float,
    perp_future_max_funding_rate: float,
    base_funding_rate: float = 0.0,
    formula: FundingFormula = "seed",
) -> tuple[float, float]:
    """Both products' funding rates of the pool as it stands (no trade: ΔM = ΔL = 0).

    Bit for bit ``funding_rate(FUTURE, m_future, 0, liq, 0, ...)`` and
    ``funding_rate(SQUARED, m_squared, 0, liq, 0, ...)``, in one call: every mark, accrual and
    MinCollateral reads this pair, several times per trade.
    """
    if liq <= 0.0:
        return base_funding_rate, variance
    if formula == "seed":
        # margin_div_liquidity with ΔM = ΔL = 0: (m + 0 / 2) / L (the + 0.0 kept: it turns a
        # −0.0 margin into +0.0, as the general formula does).
        f0 = (m_future + 0.0) / liq
        f1 = (m_squared + 0.0) / liq
    else:
        f0 = funding_formula(m_future, 0.0, liq, 0.0, formula)
        f1 = funding_formula(m_squared, 0.0, liq, 0.0, formula)
    return (
        funding_rate_future(base_funding_rate, perp_future_max_funding_rate, f0),
        funding_rate_squared(variance, squared_perp_funding_multiplier, f1),
    )


def funding_fee_per_position(
    index: float, rate: float, dt: float, period: float = FUNDING_PERIOD
) -> float:
    """Funding paid per long position over ``dt`` seconds: IndexPrice × FundingRate × dt / 1 day
    (``period``)."""
    return index * rate * dt / period


# -- trade price and fees ----------------------------------------------------------------------


def trade_fee(product: int, index: float, trade_fee_rate: float, is_long: bool) -> float:
    """±TradeFee = IndexPrice × trade_fee_rate × (i + 1): + when the trader buys."""
    fee = index * trade_fee_rate * (product + 1)
    return fee if is_long else -fee


def protocol_fee(product: int, index: float, protocol_fee_rate: float, amount: float) -> float:
    """IndexPrice × protocol_fee_rate × (i + 1) × |amount|: what leaves the pool."""
    return index * protocol_fee_rate * (product + 1) * abs(amount)


def trade_price(index: float, rate: float, signed_fee: float) -> float:
    """TradePrice = IndexPrice × (1 + FundingRate) ± TradeFee."""
    return index * (1.0 + rate) + signed_fee


# -- margin, hedge -----------------------------------------------------------------------------


def calculate_weight(product: int, d0: float, d1: float) -> float:
    """w_i = |d_i| / (|d0| + |d1|) (0 when both are 0)."""
    total = abs(d0) + abs(d1)
    if total == 0.0:
        return 0.0
    return abs(d0 if product == FUTURE else d1) / total


def required_margin(
    product: int, d0: float, d1: float, gamma1: float, spot: float, pool_margin_risk_param: float
) -> float:
    """RM_i = (1 + α) S (|w_i (d0 + d1)| + [i = squared] |α S gamma1|).

    Args:
        product: 0 future, 1 squared.
        d0: the pool's future delta.
        d1: the pool's squared delta.
        gamma1: the pool's squared gamma, (2 / 10,000) × position_squared.
        spot: S.
        pool_margin_risk_param: α.
    """
    alpha = pool_margin_risk_param
    weighted = (d0 + d1) * calculate_weight(product, d0, d1)
    from_gamma = alpha * spot * gamma1 if product == SQUARED else 0.0
    return (1.0 + alpha) * spot * (abs(weighted) + abs(from_gamma))


def hedge_position_value(
    product: int,
    amount_usdc: float,
    amount_underlying: float,
    spot: float,
    d0: float,
    d1: float,
) -> float:
    """HedgePositionValue_i = amountsUsdc_i + w0-weighted share of S × amountUnderlying.

    The future's share of the underlying is w0 = |d0| / (|d0| + |d1|); the squared has the rest.
    """
    notional = spot * amount_underlying
    w0 = calculate_weight(FUTURE, d0, d1)
    share = notional * w0 if product == FUTURE else notional - notional * w0
    return amount_usdc + share


class HedgeAmounts(NamedTuple):
    """What a hedge must do: buy (is_long) or sell ``amount_underlying`` for ``amount_usdc``."""

    is_long: bool
    amount_underlying: float
    amount_usdc: float
    future_weight: float


def hedge_amounts(
    amount_underlying: float, d0: float, d1: float, spot: float, slippage: float = 0.0
) -> HedgeAmounts:
    """The trade that brings the pool's underlying holding to its target.

    Target holding = −(d0 + d1) when the pool's net delta is negative, else 0 (the pool only
    ever holds the underlying long). The USDC side is |amount| × S, raised by ``slippage`` when
    the pool buys and lowered when it sells.
    """
    net = d0 + d1
    required = -net - amount_underlying if net <= 0.0 else -amount_underlying
    usdc = abs(required) * spot
    usdc = usdc * (1.0 + slippage) if required > 0.0 else usdc * (1.0 - slippage)
    return HedgeAmounts(required > 0.0, abs(required), usdc, calculate_weight(FUTURE, d0, d1))


def slippage_tolerance(
    spot: float,
    last_hedge_spot: float,
    min_slippage: float,
    max_slippage: float,
    rate_of_return_threshold: float,
) -> float:
    """min + (max − min) × |S / S_last_hedge − 1| / threshold, clamped to [min, max].

    The growth is counted in whole basis points (floored), as the contracts count it: 0.34% +
    0.18% × 2.04% / 5% is 0.34% + 0.07%, not 0.34% + 0.0734%.
    """
    move = abs((spot - last_hedge_spot) / last_hedge_spot)
    # 1e-9 absorbs the binary error of a growth that is a whole number of basis points.
    growth_bp = math.floor(
        (max_slippage - min_slippage) * 1e4 * move / rate_of_return_threshold + 1e-9
    )
    s = min_slippage + growth_bp * 1e-4
    return min(max(s, min_slippage), max_slippage)


class MarginChange:
    """How a trade moves the pool's position in one product (names of the contracts)."""

    SHORT_TO_SHORT = "short_to_short"
    SHORT_TO_LONG = "short_to_long"
    LONG_TO_LONG = "long_to_long"
    LONG_TO_SHORT = "long_to_short"


def margin_change(old_position: float, new_position: float) -> str:
    """The crossing case of a pool position change (flat counts as long)."""
    if old_position > 0.0 and new_position < 0.0:
        return MarginChange.LONG_TO_SHORT
    if old_position < 0.0 and new_position > 0.0:
        return MarginChange.SHORT_TO_LONG
    if old_position >= 0.0 and new_position >= 0.0:
        return MarginChange.LONG_TO_LONG
    return MarginChange.SHORT_TO_SHORT


def signed_margin(position: float, locked: float) -> float:
    """m: the locked margin signed by the pool's side (short → +M, long → −M, flat → 0)."""
    if position == 0.0:
        return 0.0
    return -locked if position > 0.0 else locked


def signed_delta_margin(change: str, delta_margin: float, locked: float) -> float:
    """dm: ΔM signed; when the pool's position crosses zero, ±(2M + ΔM)."""
    if change == MarginChange.LONG_TO_SHORT:
        return 2.0 * locked + delta_margin
    if change == MarginChange.SHORT_TO_LONG:
        return -(2.0 * locked + delta_margin)
    if change == MarginChange.LONG_TO_LONG:
        return -delta_margin
    return delta_margin


def unlocked_liquidity(
    locked: float, delta_margin: float, hedge_value: float
) -> tuple[float, float]:
    """Unlock in proportion to the hedge value: (ΔL, ΔM) with ΔM = δ × M / HV, ΔL = ΔM − δ.

    ``delta_margin`` (δ < 0) is the margin no longer required; the locked margin falls by the
    same fraction of itself as δ is of the hedge value, and the hedge's profit or loss on that
    fraction goes to L.
    """
    unlock = delta_margin * locked / hedge_value
    return unlock - delta_margin, unlock


class PreTrade(NamedTuple):
    """The margin side of a trade: ΔM (signed, for funding), ΔM (of the locked margin), ΔL."""

    signed_delta_margin: float
    delta_locked: float
    delta_liquidity: float


def pre_trade(
    delta_margin: float, hedge_value: float, locked: float, change: str, *, signed: bool = True
) -> PreTrade:
    """Lock or unlock margin for a change δ = RM − HV of the required margin.

    - δ > 0 and HV ≥ 0: lock δ more;
    - δ > 0 and HV < 0: the hedge lost all its margin: L takes the loss (HV − M) and the
      locked margin becomes δ + HV (= RM);
    - δ < 0: unlock in proportion to the hedge value (:func:`unlocked_liquidity`).

    Args:
        delta_margin: δ = RM − HV.
        hedge_value: HV of the product before the change.
        locked: M of the product before the change.
        change: the crossing case (:func:`margin_change`).
        signed: mainnet's signed ΔM (True) or the seed's change of the locked margin.
    """
    dl = 0.0
    dm = 0.0
    if delta_margin > 0.0:
        if hedge_value >= 0.0:
            dm = delta_margin
        else:
            dl = hedge_value - locked
            dm = -locked + delta_margin + hedge_value
    elif delta_margin < 0.0:
        dl, dm = unlocked_liquidity(locked, delta_margin, hedge_value)
    sdm = signed_delta_margin(change, dm, locked) if signed else dm
    return PreTrade(sdm, dm, dl)


def pair_fsum(a: float, b: float) -> float:
    """``math.fsum((a, b))`` bit for bit, without building a sequence.

    For two floats with a finite sum, IEEE addition is already the correctly rounded sum that
    fsum returns; fsum's only differences are its +0.0 for −0.0 + −0.0 and its errors on
    infinities and overflow, which the fallback keeps.
    """
    s = a + b
    if type(s) is float and s - s == 0.0:
        return s + 0.0
    return math.fsum((a, b))


def available_liquidity(
    amount_liquidity: float, locked: tuple[float, float], amounts_usdc: tuple[float, float]
) -> float:
    """L − Σ M_i − Σ max(0, −amountsUsdc_i)."""
    # The fsums of the formula, pair by pair (the trade path reads this every time it locks
    # margin; fsum would build and walk a sequence each time).
    u0, u1 = amounts_usdc
    short = pair_fsum(max(0.0, -u0), max(0.0, -u1))
    return amount_liquidity - pair_fsum(locked[0], locked[1]) - short


def utilization_ratio(amount_liquidity: float, locked: tuple[float, float]) -> float:
    """Σ M_i / L (0 without liquidity)."""
    return math.fsum(locked) / amount_liquidity if amount_liquidity > 0.0 else 0.0


# -- variance, LP token, entry prices ----------------------------------------------------------


def update_variance(
    variance: float, spot: float, previous_spot: float, dt: float, period: float = FUNDING_PERIOD
) -> float:
    """var ← λ var + (1 − λ) u² × 1 day / dt, u = (S − S_prev) / S_prev, λ = 0.94.

    u² (not u) is normalised to the funding period (``period``, one day).
    """
    if dt <= 0.0:
        raise ValueError(f"a variance update needs time to pass, got dt = {dt!r}")
    u = (spot - previous_spot) / previous_spot
    return LAMBDA * variance + (1.0 - LAMBDA) * u * u * period / dt


def lp_token_price(
    amount_liquidity: float,
    unrealized_pnl: float,
    hedge_value: float,
    locked_total: float,
    supply: float,
) -> float:
    """LPTokenPrice = (L + Σ UnrealizedPnL_i + hedge value − Σ M_i) / Supply."""
    if supply <= 0.0:
        raise ValueError("the LP token has no supply")
    return (amount_liquidity + unrealized_pnl + hedge_value - locked_total) / supply


def entry_price_update(
    entry: float, position: float, price: float, trade: float
) -> tuple[float, float]:
    """A position's new entry price and the profit realised by trading ``trade`` at ``price``.

    Adding to a position averages the entry; reducing it keeps the entry and realises
    −trade × (price − entry); closing or flipping realises position × (price − entry) and a
    flipped position enters at ``price``.
    """
    new = position + trade
    if position == 0.0 or (position > 0.0) == (trade > 0.0):
        return (entry * abs(position) + price * abs(trade)) / abs(new), 0.0
    if (position > 0.0 and new > 0.0) or (position < 0.0 and new < 0.0):
        return entry, -trade * (price - entry)
    return (price if new != 0.0 else 0.0), position * (price - entry)


def min_collateral(
    spot: float,
    position_future: float,
    position_squared: float,
    funding_rate_future: float,
    funding_rate_squared: float,
    *,
    risk_param: float = 0.05,
    min_margin: float = 200.0,
) -> float:
    """MinCollateral = α S (|2S(1 + FR_sq) pos_sq / 10,000 + (1 + FR_fut) pos_fut|
    + 2 α S (1 + FR_sq) |pos_sq| / 10,000), α = 0.05; at least ``min_margin`` when a position
    is open."""
    with_funding = spot * (1.0 + funding_rate_squared)
    net = (
        2.0 * with_funding * position_squared / SCALING_FACTOR
        + (1.0 + funding_rate_future) * position_future
    )
    curvature = 2.0 * risk_param * with_funding * abs(position_squared) / SCALING_FACTOR
    mc = risk_param * spot * (abs(net) + curvature)
    if (position_future != 0.0 or position_squared != 0.0) and mc < min_margin:
        return min_margin
    return mc


def liquidation_reward(min_collateral_value: float, usdc: float, fee_rate: float) -> float:
    """fee_rate × MinCollateral, capped by the vault's USDC (0 when it has none)."""
    if usdc <= 0.0:
        return 0.0
    return min(min_collateral_value * fee_rate, usdc)


# -- the spread guard --------------------------------------------------------------------------


class SpreadInfo(NamedTuple):
    """The spread guard's memory of one product (or of the LP token).

    Attributes:
        last_long_time: time of the last fill on the long side (None: never).
        min_long_price: the lowest long fill price of the current window.
        last_short_time: time of the last fill on the short side (None: never).
        max_short_price: the highest short fill price of the current window.
    """

    last_long_time: float | None = None
    min_long_price: float = math.inf
    last_short_time: float | None = None
    max_short_price: float = 0.0


def spread_guard(
    info: SpreadInfo, is_long: bool, price: float, now: float, window: float, decay: float
) -> tuple[float, SpreadInfo]:
    """A fill's price after the spread guard, and the guard's new memory.

    Within ``window`` seconds of a fill on the other side, a long cannot fill below the last
    short fill price and a short cannot fill above the last long fill price; that bound relaxes
    by 1 basis point every ``decay`` seconds since that fill. ``window`` 0 disables the guard.
    (The contracts count Arbitrum blocks; perpsim counts seconds.)
    """
    if window <= 0.0:
        return price, info
    last_long, min_long, last_short, max_short = info
    adjusted = price
    if is_long:
        if last_short is not None and last_short >= now - window and adjusted < max_short:
            closing = math.floor((now - last_short) / decay) if decay > 0.0 else 0.0
            relaxed = max_short * (1.0 - closing * 1e-4)
            if adjusted <= relaxed:
                max_short = relaxed
            adjusted = max_short
        if min_long > adjusted or last_long is None or last_long + window < now:
            min_long = adjusted
        last_long = now
    else:
        if last_long is not None and last_long >= now - window and adjusted > min_long:
            closing = math.floor((now - last_long) / decay) if decay > 0.0 else 0.0
            relaxed = min_long * (1.0 + closing * 1e-4)
            if adjusted >= relaxed:
                min_long = relaxed
            adjusted = min_long
        if max_short < adjusted or last_short is None or last_short + window < now:
            max_short = adjusted
        last_short = now
    return adjusted, SpreadInfo(last_long, min_long, last_short, max_short)
