"""Every formula of the D8X pool (seed 000 with ``spec/d8x.md``) as a pure function.

Names follow the spec (and, in brackets in the docstrings, the deployed contracts' functions),
so a reference case from the contracts' tests or from D8X's simulator can be run against one
function. Nothing here holds state; :mod:`.pool` composes these around every action.

Notation (the spec's): ``K2`` the traders' aggregate position (the AMM holds −K2), ``L1`` the
traders' aggregate locked-in value (quote currency), ``S2`` the index (base in quote), ``S3``
the price of the quanto collateral in quote, ``M1``/``M2``/``M3`` the AMM fund in quote, base or
quanto collateral, ``σ2``/``σ3`` the volatilities and ``ρ`` their correlation. The risk-free
rate is 0 everywhere, as in the contracts.

The normal CDF is on the pricing hot path: :func:`normal_cdf` uses ``math.erfc`` (exact to
double precision, and about 50 times faster than a scalar ``scipy.stats.norm.cdf`` call);
:func:`normal_cdf_array` is the vectorised path (``scipy.special.ndtr``). The contracts use a
polynomial approximation (about 1e-6 relative in price); compare with a tolerance.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

__all__ = [
    "CEIL_AMT_FUND_WITHDRAWAL",
    "CEIL_PNL_SHARE",
    "DD_BOUND",
    "FUNDING_BASE_RATE",
    "FUNDING_CAP_SCALE",
    "FUNDING_INTERVAL_S",
    "MAX_DRAW_FROM_POOLS",
    "MIN_COVER_N",
    "Collateral",
    "DefaultProbability",
    "amm_fund_target",
    "base_to_collateral",
    "collateral_to_quote",
    "cover_n",
    "default_fund_target",
    "deposit_for_leverage",
    "ema",
    "exposure_ema",
    "fee_contributions",
    "funding_rate",
    "grow_to_lot",
    "initial_margin_rate",
    "k_star",
    "liquidation_amount",
    "maintenance_margin_rate",
    "mark_price",
    "normal_cdf",
    "normal_cdf_array",
    "perp_price",
    "prob_default",
    "prob_default_any",
    "prob_default_array",
    "prob_default_quanto",
    "round_to_lot",
    "shares_to_mint",
    "split_amount",
    "target_collateral_m1",
    "target_collateral_m2",
    "target_collateral_m3",
    "tokens_to_return",
    "trade_fees",
]

#: Seconds of the funding period: rates are per 8 hours (``FUNDING_INTERVAL_SEC``).
FUNDING_INTERVAL_S = 8 * 3600
#: The funding rate's base term, paid by the side the AMM is short of (``BASE_RATE``, 1 bp).
FUNDING_BASE_RATE = 0.0001
#: The funding cap is this share of (initial − maintenance margin rate) (``0xe666…``).
FUNDING_CAP_SCALE = 0.9
#: The LPs' share of a margin transfer is at most this (``CEIL_PNL_SHARE``).
CEIL_PNL_SHARE = 0.75
#: The AMM fund top-up takes at most this share of the DF, then of LP cash
#: (``CEIL_AMT_FUND_WITHDRAWAL``).
CEIL_AMT_FUND_WITHDRAWAL = 0.75
#: A margin shortfall takes at most this share of LP cash + AMM fund before the DF pays.
MAX_DRAW_FROM_POOLS = 0.95
#: The cover-n rule covers at least this many traders.
MIN_COVER_N = 5.0
#: The distance to default the contracts return when the default probability is 0 or 1.
DD_BOUND = 20.0
_SQRT2 = math.sqrt(2.0)


class Collateral(StrEnum):
    """The currency of the pool's collateral (``CollateralCurrency``)."""

    #: Linear: collateral in the quote currency (M1; S3 ≡ 1).
    QUOTE = "quote"
    #: Inverse: collateral in the base currency (M2; S3 ≡ S2).
    BASE = "base"
    #: A third currency with its own price S3 (M3).
    QUANTO = "quanto"


class DefaultProbability(NamedTuple):
    """The AMM's default probability ``q`` and distance to default ``dd`` (q = Φ(dd))."""

    q: float
    dd: float


# -- the normal CDF ---------------------------------------------------------------------------


def normal_cdf(x: float) -> float:
    """Φ(x), exact to double precision (``0.5 erfc(−x/√2)`` keeps the lower tail accurate)."""
    return 0.5 * math.erfc(-x / _SQRT2)


def normal_cdf_array(x: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Φ of every element (vectorised; the path for grids of trade sizes)."""
    out: npt.NDArray[np.float64] = np.asarray(ndtr(np.asarray(x, dtype=np.float64)))
    return out


# -- default probability, k*, price -------------------------------------------------------------


def prob_default(
    k2: float, l1: float, s2: float, sigma2: float, m1: float = 0.0, m2: float = 0.0
) -> DefaultProbability:
    """The AMM's default probability without quanto collateral (``calculateRiskNeutralPD``).

    The AMM defaults when ``M1 + M2 S2 e^{r2} + L1 − K2 S2 e^{r2} ≤ 0`` with lognormal
    ``r2 ~ N(−σ2²/2, σ2²)``. Pass the post-trade state (``K2 + k``, ``L1 + k S2``).

    threshold = (−L1 − M1) / (S2 (M2 − K2)). If threshold ≤ 0 the event is certain or
    impossible: q = 0 when the numerator ≤ 0, else 1 (dd = ∓20). Otherwise
    dd = (ln threshold + σ2²/2) / σ2, negated when M2 − K2 < 0, and q = Φ(dd).
    """
    numerator = -l1 - m1
    denominator = (m2 - k2) * s2
    thresh = numerator / denominator if denominator != 0.0 else 0.0
    if thresh <= 0.0:
        if numerator <= 0.0 or (thresh == 0.0 and denominator > 0.0):
            return DefaultProbability(0.0, -DD_BOUND)
        return DefaultProbability(1.0, DD_BOUND)
    dd = (math.log(thresh) + 0.5 * sigma2 * sigma2) / sigma2
    if denominator < 0.0:
        dd = -dd
    return DefaultProbability(normal_cdf(dd), dd)


def prob_default_quanto(
    k2: float,
    l1: float,
    s2: float,
    s3: float,
    sigma2: float,
    sigma3: float,
    rho: float,
    m3: float,
    m1: float = 0.0,
    m2: float = 0.0,
) -> DefaultProbability:
    """The AMM's default probability with quanto collateral M3 > 0, by normal moment matching
    (``_calculateRiskNeutralDDWithQuanto``; the deployed variant, normalised by M3 S3).

    C3 = S2 (M2 − K2) / (M3 S3);
    σZ² = (e^{σ2²} − 1) C3² + 2 (e^{ρσ2σ3} − 1) C3 + (e^{σ3²} − 1);
    dd = ((−L1 − M1) / (M3 S3) − (1 + C3)) / σZ; q = Φ(dd).

    Raises:
        ValueError: ``m3`` is not positive (the formula divides by it).
    """
    if not m3 > 0.0:
        raise ValueError(f"quanto default probability needs M3 > 0, got {m3!r}")
    denom = m3 * s3
    c3 = s2 * (m2 - k2) / denom
    var_z = (
        math.expm1(sigma2 * sigma2) * c3 * c3
        + 2.0 * math.expm1(rho * sigma2 * sigma3) * c3
        + math.expm1(sigma3 * sigma3)
    )
    dd = ((-l1 - m1) / denom - (1.0 + c3)) / math.sqrt(var_z)
    return DefaultProbability(normal_cdf(dd), dd)


def prob_default_any(
    k2: float,
    l1: float,
    s2: float,
    sigma2: float,
    m1: float = 0.0,
    m2: float = 0.0,
    m3: float = 0.0,
    s3: float = 0.0,
    sigma3: float = 0.0,
    rho: float = 0.0,
) -> DefaultProbability:
    """:func:`prob_default_quanto` when M3 ≠ 0, else :func:`prob_default` (as the contracts
    choose)."""
    if m3 != 0.0:
        return prob_default_quanto(k2, l1, s2, s3, sigma2, sigma3, rho, m3, m1, m2)
    return prob_default(k2, l1, s2, sigma2, m1, m2)


def prob_default_array(
    k: npt.ArrayLike,
    k2: float,
    l1: float,
    s2: float,
    sigma2: float,
    m1: float = 0.0,
    m2: float = 0.0,
    m3: float = 0.0,
    s3: float = 0.0,
    sigma3: float = 0.0,
    rho: float = 0.0,
) -> npt.NDArray[np.float64]:
    """The default probability after each trade size of ``k`` (vectorised
    :func:`prob_default_any` of the post-trade states ``K2 + k``, ``L1 + k S2``)."""
    ks = np.asarray(k, dtype=np.float64)
    kk = k2 + ks
    ll = l1 + ks * s2
    if m3 != 0.0:
        denom = m3 * s3
        c3 = s2 * (m2 - kk) / denom
        var_z = (
            math.expm1(sigma2 * sigma2) * c3 * c3
            + 2.0 * math.expm1(rho * sigma2 * sigma3) * c3
            + math.expm1(sigma3 * sigma3)
        )
        return normal_cdf_array(((-ll - m1) / denom - (1.0 + c3)) / np.sqrt(var_z))
    numerator = -ll - m1
    denominator = (m2 - kk) * s2
    with np.errstate(divide="ignore", invalid="ignore"):
        thresh = np.where(denominator != 0.0, numerator / denominator, 0.0)
        dd = (np.log(np.where(thresh > 0.0, thresh, 1.0)) + 0.5 * sigma2 * sigma2) / sigma2
    dd = np.where(denominator < 0.0, -dd, dd)
    q = normal_cdf_array(dd)
    zero = (numerator <= 0.0) | ((thresh == 0.0) & (denominator > 0.0))
    out: npt.NDArray[np.float64] = np.where(thresh > 0.0, q, np.where(zero, 0.0, 1.0))
    return out


def k_star(
    k2: float,
    m2: float = 0.0,
    m3: float = 0.0,
    s2: float = 1.0,
    s3: float = 0.0,
    sigma2: float = 0.0,
    sigma3: float = 0.0,
    rho: float = 0.0,
) -> float:
    """The trade that minimises the AMM's risk (``_updateKStar``).

    k* = M2 − K2 + (S3 / S2) (e^{ρσ2σ3} − 1) / (e^{σ2²} − 1) × M3; quote collateral
    (M2 = M3 = 0): k* = −K2.
    """
    ks = m2 - k2
    if m3 != 0.0:
        ks += (s3 / s2) * math.expm1(rho * sigma2 * sigma3) / math.expm1(sigma2 * sigma2) * m3
    return ks


def incentive_shape(k_ratio: float) -> float:
    """The shape of the incentive spread in k / Π̄ (D8X simulator's ``penalization_function``).

    Odd and bounded: 1 − (1 − x)² on [0, 1], −(1 − (1 − |x|)²) on [−1, 0], ±1 beyond. It is 0 for
    k = 0, so the mid price carries no incentive spread.
    """
    if k_ratio >= 1.0:
        return 1.0
    if k_ratio <= -1.0:
        return -1.0
    bump = 1.0 - (1.0 - abs(k_ratio)) ** 2
    return bump if k_ratio >= 0.0 else -bump


def perp_price(
    k: float,
    q: float,
    s2: float,
    k_star_value: float,
    minimal_spread: float,
    incentive_spread: float = 0.0,
    trader_exposure_ema: float = 1.0,
) -> float:
    """The AMM's price for a signed trade ``k`` (``calculatePerpetualPrice``).

    p(k) = S2 (1 + s Q(k) + sgn(k) δ + ι shape(k / Π̄)), with s = +1 if k ≥ k* else −1, ``q`` =
    Q(k) the default probability of the post-trade state, δ the minimal spread (δ = 0 for k = 0:
    the mid price), ι the incentive spread and Π̄ the trader-exposure EMA (D8X's simulator,
    ``calculate_perp_priceV4``; ι = 0 in the deployed parameters, which leaves the contracts'
    price).
    """
    premium = q if k >= k_star_value else -q
    spread = 0.0 if k == 0.0 else (minimal_spread if k > 0.0 else -minimal_spread)
    incentive = 0.0
    if incentive_spread != 0.0 and k != 0.0:
        incentive = incentive_spread * incentive_shape(k / trader_exposure_ema)
    return s2 * (1.0 + premium + spread + incentive)


# -- mark price and funding ---------------------------------------------------------------------


def ema(previous: float, observation: float, lam: float) -> float:
    """λ × previous + (1 − λ) × observation (``ema``).

    Raises:
        ValueError: λ is not inside (0, 1).
    """
    if not 0.0 < lam < 1.0:
        raise ValueError(f"EMA lambda must be inside (0, 1), got {lam!r}")
    return lam * previous + (1.0 - lam) * observation


def mark_price(s2: float, mark_premium_rate: float) -> float:
    """S2 (1 + r̄): the index plus the premium EMA (``_getPerpetualMarkPrice``)."""
    return s2 * (1.0 + mark_premium_rate)


def funding_rate(
    premium_ema: float,
    k2: float,
    clamp: float,
    initial_margin_alpha: float,
    maintenance_margin_alpha: float,
) -> float:
    """The 8-hour funding rate (``_updateFundingRate``; > 0: longs pay).

    f = max(r̄, Δ) + min(r̄, −Δ) + sgn(K2) × 1 bp (K2 ≥ 0 → +1 bp), capped at
    ±0.9 × (initial − maintenance margin rate).
    """
    rate = max(premium_ema, clamp) + min(premium_ema, -clamp)
    rate += FUNDING_BASE_RATE if k2 >= 0.0 else -FUNDING_BASE_RATE
    cap = FUNDING_CAP_SCALE * (initial_margin_alpha - maintenance_margin_alpha)
    return min(max(rate, -cap), cap)


def base_to_collateral(collateral: Collateral, price: float, s2: float, s3: float) -> float:
    """Collateral worth one unit of base at ``price`` (``_getBaseToCollateralConversion…``):
    ``price`` (quote), ``price / S2`` (base), ``price / S3`` (quanto)."""
    if collateral is Collateral.QUOTE:
        return price
    if collateral is Collateral.BASE:
        return price / s2
    return price / s3


def collateral_to_quote(collateral: Collateral, s2: float, s3: float) -> float:
    """Quote worth one unit of collateral: 1 (quote), S2 (base), S3 (quanto)."""
    if collateral is Collateral.QUOTE:
        return 1.0
    if collateral is Collateral.BASE:
        return s2
    return s3


# -- targets ------------------------------------------------------------------------------------


def target_collateral_m1(k2: float, l1: float, s2: float, sigma2: float, dd: float) -> float:
    """AMM fund (quote) for a distance to default ``dd`` (``getTargetCollateralM1``).

    M1* = K2 S2 exp(−σ2²/2 ∓ σ2 DD) − L1 (the sign is + when K2 < 0).
    """
    scaled = sigma2 * dd if k2 < 0.0 else -sigma2 * dd
    return k2 * s2 * math.exp(-0.5 * sigma2 * sigma2 + scaled) - l1


def target_collateral_m2(k2: float, l1: float, s2: float, sigma2: float, dd: float) -> float:
    """AMM fund (base) for a distance to default ``dd`` (``getTargetCollateralM2``).

    M2* = K2 − L1 / (S2 exp(−σ2²/2 ± σ2 DD)) (+ when L1 < 0).
    """
    scaled = sigma2 * dd if l1 < 0.0 else -sigma2 * dd
    return k2 - l1 / (math.exp(-0.5 * sigma2 * sigma2 + scaled) * s2)


def target_collateral_m3(
    k2: float,
    l1: float,
    s2: float,
    s3: float,
    sigma2: float,
    sigma3: float,
    rho: float,
    dd: float,
) -> float:
    """AMM fund (quanto) for a distance to default ``dd`` (``getTargetCollateralM3``).

    The larger root of A x² + B x + C = 0 that sets the quanto dd to DD (M1 = M2 = 0), with
    v = −S3 / (S2 K2), κ = L1 / (S2 K2): A = ((e^{σ3²} − 1) DD² − 1) v²,
    B = (2 (e^{ρσ2σ3} − 1) DD² − 2 + 2κ) v, C = (e^{σ2²} − 1) DD² − κ² + 2κ − 1.
    """
    dd2 = dd * dd
    v = -s3 / s2 / k2
    kappa = l1 / s2 / k2
    a = (math.expm1(sigma3 * sigma3) * dd2 - 1.0) * v * v
    b = (2.0 * math.expm1(sigma2 * sigma3 * rho) * dd2 - 2.0 + 2.0 * kappa) * v
    c = math.expm1(sigma2 * sigma2) * dd2 - kappa * kappa + 2.0 * kappa - 1.0
    disc = b * b - 4.0 * a * c
    if disc < 0.0:
        raise ValueError(
            f"no quanto AMM fund reaches the distance to default {dd!r} with sigma3 = {sigma3!r}"
            " (the quadratic has no real root; the contracts' getTargetCollateralM3 reverts)"
        )
    root = math.sqrt(disc)
    return max((-b + root) / (2.0 * a), (-b - root) / (2.0 * a))


def quanto_target_reachable(sigma3: float, dd: float) -> bool:
    """Whether a quanto AMM fund can reach distance to default ``dd`` whatever the exposure.

    The quadratic of ``target_collateral_m3`` has real roots for every K2 and L1 when its
    leading factor (e^{σ3²} − 1) DD² − 1 is negative: the collateral's own volatility must not
    swamp the target (σ3 < sqrt(ln(1 + 1/DD²)), 0.374 for DD = −2.58).
    """
    return math.expm1(sigma3 * sigma3) * dd * dd < 1.0


def amm_fund_target(
    collateral: Collateral,
    k2: float,
    l1: float,
    trader_exposure_ema: float,
    k_star_value: float,
    s2: float,
    sigma2: float,
    dd: float,
    minimum: float,
    s3: float = 0.0,
    sigma3: float = 0.0,
    rho: float = 0.0,
) -> float:
    """The AMM fund target for distance to default ``dd`` (``_getUpdatedTargetAMMFundSize``).

    The exposure is first shifted adversely by one typical trade Π̄:
    K2 ← K2 − sgn(k*) Π̄, L1 ← L1 − sgn(k*) Π̄ S2 (sgn(k*) = −1 when k* ≤ 0); then M1*, M2* or
    M3* of that state, the minimum when the shifted K2 is 0 (and, for base collateral, when
    L1 is 0), and never below the minimum.
    """
    side = 1.0 if k_star_value > 0.0 else -1.0
    k = k2 - side * trader_exposure_ema
    lock = l1 - side * trader_exposure_ema * s2
    if collateral is Collateral.BASE:
        target = (
            minimum if k == 0.0 or lock == 0.0 else target_collateral_m2(k, lock, s2, sigma2, dd)
        )
    elif collateral is Collateral.QUANTO:
        target = (
            minimum if k == 0.0 else target_collateral_m3(k, lock, s2, s3, sigma2, sigma3, rho, dd)
        )
    else:
        target = minimum if k == 0.0 else target_collateral_m1(k, lock, s2, sigma2, dd)
    return max(target, minimum)


def cover_n(active_accounts: int, cover_n_rate: float) -> float:
    """n = max(cover_n_rate × active accounts, 5): the traders the default fund covers."""
    return max(cover_n_rate * active_accounts, MIN_COVER_N)


def default_fund_target(
    collateral: Collateral,
    amm_exposure_ema_short: float,
    amm_exposure_ema_long: float,
    trader_exposure_ema: float,
    n: float,
    stress_return_s2: tuple[float, float],
    stress_return_s3: tuple[float, float],
    s2: float,
    s3: float,
) -> float:
    """The default fund target, "cover n" (``calculateDefaultFundSize``).

    ℓ− = (|K̄−| + n Π̄)(1 − e^{r2−}), ℓ+ = (|K̄+| + n Π̄)(e^{r2+} − 1); quote collateral
    S2 max(ℓ−, ℓ+), base max(ℓ−/e^{r2−}, ℓ+/e^{r2+}), quanto (S2/S3) max(ℓ−/e^{r3−}, ℓ+/e^{r3+}).
    """
    down = (abs(amm_exposure_ema_short) + trader_exposure_ema * n) * -math.expm1(
        stress_return_s2[0]
    )
    up = (abs(amm_exposure_ema_long) + trader_exposure_ema * n) * math.expm1(stress_return_s2[1])
    if collateral is Collateral.BASE:
        return max(down / math.exp(stress_return_s2[0]), up / math.exp(stress_return_s2[1]))
    if collateral is Collateral.QUANTO:
        worst = max(down / math.exp(stress_return_s3[0]), up / math.exp(stress_return_s3[1]))
        return worst * (s2 / s3)
    return max(down, up) * s2


def exposure_ema(
    previous: float, observation: float, lam_slow: float, lam_fast: float, floor: float
) -> float:
    """A fast-up/slow-down EMA of an exposure (``_updateAverageTradeExposures``).

    The fast λ applies when |observation| exceeds |previous|, the slow one otherwise; an
    observation smaller than ``floor`` in size counts as ``floor`` (with its sign).
    """
    lam = lam_fast if abs(observation) > abs(previous) else lam_slow
    if abs(observation) < floor:
        observation = -floor if observation < 0.0 else floor
    return ema(previous, observation, lam)


# -- splitting and fees --------------------------------------------------------------------------


def split_amount(
    lp_cash: float, amm_fund_cash: float, amount: float, is_withdrawn: bool
) -> tuple[float, float]:
    """How a margin transfer splits between LP cash and the AMM fund (``_splitAmount``).

    The LPs' share is w = min(0.75, LP / (LP + AMM fund)); when the amount is withdrawn, what one
    pot cannot pay is taken from the other. Returns ``(to or from LP cash, AMM fund)``.

    Raises:
        ValueError: a negative amount, or a withdrawal larger than both pots.
    """
    if amount == 0.0:
        return 0.0, 0.0
    if amount < 0.0:
        raise ValueError(f"split_amount expects a positive amount, got {amount!r}")
    avail = lp_cash + amm_fund_cash
    if is_withdrawn and avail < amount:
        raise ValueError(f"cannot withdraw {amount!r} from pots holding {avail!r}")
    w = min(lp_cash / avail, CEIL_PNL_SHARE) if avail > 0.0 else 0.0
    to_lp = w * amount
    to_amm = amount - to_lp
    if is_withdrawn:
        spill = lp_cash - to_lp
        if spill < 0.0:
            to_lp += spill
            to_amm -= spill
        spill = amm_fund_cash - to_amm
        if spill < 0.0:
            to_amm += spill
            to_lp -= spill
    return to_lp, to_amm


def trade_fees(
    amount_cc: float, treasury_fee_rate: float, lp_fee_rate: float
) -> tuple[float, float]:
    """The treasury and LP fees of a trade of ``|amount_cc|`` collateral (``getTradeFees``)."""
    notional = abs(amount_cc)
    return notional * treasury_fee_rate, notional * lp_fee_rate


def fee_contributions(
    amm_fund_cash: float,
    amm_fund_target_value: float,
    default_fund_cash: float,
    default_fund_target_value: float,
    treasury_fee: float,
) -> tuple[float, float]:
    """Where the treasury fee goes (``_calculateContributions``, the deployed rule).

    Returns ``(AMM fund contribution, DF contribution)``: the whole fee to the AMM fund when the
    fund is then above its target or the DF below its own; when the fund stays below target
    and the DF is above target, the DF also gives up min(AMM gap, DF excess) to the AMM fund
    (a negative DF contribution).
    """
    new_cash = amm_fund_cash + treasury_fee
    if new_cash > amm_fund_target_value:
        return treasury_fee, 0.0
    df_gap = default_fund_target_value - default_fund_cash
    if df_gap > 0.0:
        return treasury_fee, 0.0
    from_df = min(amm_fund_target_value - new_cash, -df_gap)
    return treasury_fee + from_df, -from_df


def shares_to_mint(amount: float, share_supply: float, lp_cash: float) -> float:
    """Shares for an LP deposit: amount × supply / LP cash (the amount itself when none exist)."""
    if share_supply == 0.0:
        return amount
    return amount * share_supply / lp_cash


def tokens_to_return(shares: float, share_supply: float, lp_cash: float) -> float:
    """Collateral for burning ``shares``: shares × LP cash / supply (0 when LP cash is 0)."""
    if lp_cash == 0.0:
        return 0.0
    return shares * lp_cash / share_supply


# -- margin, lots, liquidation -------------------------------------------------------------------


def initial_margin_rate(position: float, alpha: float, beta: float, cap: float) -> float:
    """IM rate = min(α + β |pos|, cap) (``_getInitialMarginRate``)."""
    return min(alpha + beta * abs(position), cap)


def maintenance_margin_rate(
    position: float, alpha: float, beta: float, cap: float, maintenance_alpha: float
) -> float:
    """MM rate = IM rate − (α_IM − α_MM): it grows with the position like the IM rate."""
    return initial_margin_rate(position, alpha, beta, cap) - (alpha - maintenance_alpha)


def round_to_lot(amount: float, lot: float) -> float:
    """A trade amount rounded to the nearest lot (``_roundToLot``; halves round up)."""
    return math.floor(amount / lot + 0.5) * lot


def grow_to_lot(amount: float, lot: float) -> float:
    """A liquidation amount grown to the lot grid (``_growToLot``: int(|x|/lot + 1) lots, the
    sign kept; an exact multiple grows by one lot, as in the contracts)."""
    grown = math.floor(abs(amount) / lot + 1.0) * lot
    return -grown if amount < 0.0 else grown


def deposit_for_leverage(
    position: float,
    balance: float,
    trade_amount: float,
    leverage: float,
    price: float,
    mark: float,
    s3: float,
) -> float:
    """Collateral to add so that position + trade has ``leverage`` (``getDepositAmountForLvg…``;
    negative: the amount that can be removed; fees not included).

    deposit = |pos + k| mark / S3 / leverage − (balance + k (mark − price) / S3).
    """
    pnl = trade_amount * (mark - price) / s3
    needed = abs(position + trade_amount) * mark / s3 / leverage
    return -(balance + pnl - needed)


def liquidation_amount(
    margin_balance: float,
    position: float,
    s2: float,
    mark: float,
    s3: float,
    im_cap: float,
    fee_rate: float,
    lot: float,
    min_lots: float = 10.0,
) -> float:
    """The signed position amount to liquidate (``_getPositionAmountToLiquidate``; the trade
    that closes it has the opposite sign).

    0 when the account already holds the initial margin (at the cap rate ``m``) at the mark;
    the whole position when the balance cannot pay the fees (``fee_rate`` = penalty + treasury
    + LP); else Δ = (|pos| m mark − b S3) / (m mark − fee_rate S2), grown to the lot, and the
    whole position if fewer than ``min_lots`` lots would remain.
    """
    b = margin_balance * s3
    if position == 0.0 or b > abs(position) * im_cap * mark:
        return 0.0
    if b <= abs(position) * fee_rate * s2:
        return position
    delta = (abs(position) * im_cap * mark - b) / (im_cap * mark - fee_rate * s2)
    delta = grow_to_lot(delta, lot)
    if abs(position) - delta < min_lots * lot or delta > abs(position):
        return position
    return delta if position > 0.0 else -delta
