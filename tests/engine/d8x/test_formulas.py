"""The D8X formulas against the deployed contracts' test numbers and the spec's definitions.

Reference numbers are those of the first deployment's contract tests (``AMMPerp.tests.ts``,
``PerpetualTradeLogic.ts``) and of D8X's reference simulator; where a test derives its expected
value from a formula, the formula is written out here independently of the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from perpsim.engine.venues.d8x import formulas as f
from perpsim.engine.venues.d8x.formulas import Collateral

# The contracts' default-probability setting: K2 = 0.4, L1 = 0.4 × 36000, S2 = 38000, ...
K2, L1, S2, S3 = 0.4, 0.4 * 36000, 38000.0, 2000.0
SIG2, SIG3, RHO = 0.05, 0.07, 0.5
M1, M2, M3 = 10.0, 0.06, 0.04
#: The AMM-fund-target setting: target dd = Φ⁻¹(15 bp).
TARGET_DD = -2.9677379253417833


def test_normal_cdf_is_exact_and_the_array_path_agrees() -> None:
    xs = np.linspace(-9.0, 9.0, 181)
    exact = norm.cdf(xs)
    assert [f.normal_cdf(float(x)) for x in xs] == pytest.approx(exact, rel=1e-13, abs=1e-300)
    assert f.normal_cdf_array(xs) == pytest.approx(exact, rel=1e-13, abs=1e-300)
    assert f.normal_cdf(-38.0) > 0.0  # the lower tail keeps its precision (erfc, not 1 − erf)


def test_distance_to_default_without_quanto_pd3() -> None:
    """PD3: dd(params) non-quanto between −2.20791823314 and −2.20791823312."""
    q, dd = f.prob_default(K2, L1, S2, SIG2, M1, M2)
    assert -2.20791823314 < dd < -2.20791823312
    assert q == pytest.approx(norm.cdf(dd), rel=1e-12)


def test_distance_to_default_with_quanto_pd4_and_its_standard_deviation_pd2() -> None:
    """PD4: dd quanto between −2.43932153163 and −2.43932153161; PD2: σZ = 8.04526986113535."""
    q, dd = f.prob_default_quanto(K2, L1, S2, S3, SIG2, SIG3, RHO, M3, M1, M2)
    assert -2.43932153163 < dd < -2.43932153161
    c3 = S2 * (M2 - K2) / (M3 * S3)
    assert c3 == pytest.approx(-161.5)
    sigma_z = ((-L1 - M1) / (M3 * S3) - (1.0 + c3)) / dd
    assert 8.0452698611352 < sigma_z < 8.0452698611355
    assert q == pytest.approx(norm.cdf(dd), rel=1e-12)


def _simulator_quanto_dd(
    k2: float, l1: float, s2: float, s3: float, m1: float, m2: float, m3: float
) -> float:
    """The reference simulator's moment-matched quanto dd (r = 0), written out independently."""
    a, b = s2 * (m2 - k2), s3 * m3
    mu = 1.0 + a / b
    sig = math.sqrt(
        math.exp(0.08**2)
        - 1.0
        + (a / b) ** 2 * (math.exp(0.05**2) - 1.0)
        + 2.0 * a / b * (math.exp(0.4 * 0.05 * 0.08) - 1.0)
    )
    return -((l1 + m1) / b + mu) / sig


@pytest.mark.parametrize("l1, s2", [(-47000.0, 50000.0), (10000.0, 20000.0)])
@pytest.mark.parametrize("k2", [-1.0, 1.0, -1.0 + 1e-5, 1.0 + 1e-5])
def test_quanto_distance_to_default_matches_the_simulator(k2: float, l1: float, s2: float) -> None:
    """The contracts' 'distance to default / Quanto' grid (S3 = 4000, M3 = 20, σ3 = 8%, ρ 0.4)."""
    _, dd = f.prob_default_quanto(k2, l1, s2, 4000.0, 0.05, 0.08, 0.4, 20.0)
    assert dd == pytest.approx(_simulator_quanto_dd(k2, l1, s2, 4000.0, 0.0, 0.0, 20.0), rel=1e-12)


def test_default_probability_edge_cases() -> None:
    # Threshold ≤ 0 with the numerator ≤ 0: the AMM cannot default.
    assert f.prob_default(0.0, 0.0, 1000.0, 0.05, 100.0) == (0.0, -f.DD_BOUND)
    # The AMM is long 1 bought at 500 with the index at 1000: far from default ...
    assert f.prob_default(-1.0, -500.0, 1000.0, 0.05, 0.0).q < 1e-40
    # ... and bought at 5000: its loss exceeds its capital, default is near certain.
    assert f.prob_default(-1.0, -5000.0, 1000.0, 0.05, 0.0).q == pytest.approx(1.0)
    # Numerator > 0 and no exposure left (denominator 0): certain default.
    assert f.prob_default(0.0, -10.0, 1000.0, 0.05, 0.0) == (1.0, f.DD_BOUND)
    # The last trader exits: K2 + k = 0 with a small positive locked-in value left.
    k2 = 1.0 / 2**10
    q, _ = f.prob_default(k2 - k2, 10.0 - k2 * (10.0 / k2 - 0.01), 10.0 / k2 - 0.01, 0.1, 0.0, 1.0)
    assert q == 0.0
    with pytest.raises(ValueError, match="M3 > 0"):
        f.prob_default_quanto(K2, L1, S2, S3, SIG2, SIG3, RHO, 0.0)


def test_prob_default_any_and_the_array_path() -> None:
    assert f.prob_default_any(K2, L1, S2, SIG2, M1, M2) == f.prob_default(K2, L1, S2, SIG2, M1, M2)
    assert f.prob_default_any(K2, L1, S2, SIG2, M1, M2, M3, S3, SIG3, RHO) == (
        f.prob_default_quanto(K2, L1, S2, S3, SIG2, SIG3, RHO, M3, M1, M2)
    )
    ks = np.linspace(-2.0, 2.0, 41)
    for m3 in (0.0, M3):
        scalar = [
            f.prob_default_any(K2 + k, L1 + k * S2, S2, SIG2, M1, M2, m3, S3, SIG3, RHO).q
            for k in ks
        ]
        vec = f.prob_default_array(ks, K2, L1, S2, SIG2, M1, M2, m3, S3, SIG3, RHO)
        assert vec == pytest.approx(scalar, rel=1e-12, abs=1e-300)


def test_k_star() -> None:
    assert f.k_star(3.0) == -3.0  # quote collateral
    assert f.k_star(3.0, m2=5.0) == 2.0  # base collateral
    h = (S3 / S2) * math.expm1(RHO * SIG2 * SIG3) / math.expm1(SIG2**2) * M3
    assert f.k_star(K2, M2, M3, S2, S3, SIG2, SIG3, RHO) == pytest.approx(M2 - K2 + h, rel=1e-14)


def test_perp_price_signs_spread_and_mid() -> None:
    # k ≥ k* takes +Q; the spread has the trade's sign; the mid price has no spread.
    assert f.perp_price(1.0, 0.02, 1000.0, 0.5, 0.001) == pytest.approx(1000.0 * 1.021)
    assert f.perp_price(0.5, 0.02, 1000.0, 0.5, 0.001) == pytest.approx(1000.0 * 1.021)
    assert f.perp_price(-1.0, 0.02, 1000.0, 0.5, 0.001) == pytest.approx(1000.0 * (1 - 0.021))
    assert f.perp_price(0.0, 0.02, 1000.0, 0.5, 0.001) == pytest.approx(1000.0 * 0.98)
    assert f.perp_price(0.0, 0.02, 1000.0, -0.5, 0.001) == pytest.approx(1000.0 * 1.02)


def test_amm_prices_of_the_contracts_tests() -> None:
    """AMMPerp.tests.ts "AMM Price 1", "AMM Price 2 (quanto)" and "AMM Price: spread"
    (sovryn-perpetual-futures): mixed M1/M2(/M3) pools, the exact-CDF reference values of
    their comments (the contract's CDF table differs in the 6th digit)."""
    s2, s3, sig2, sig3, rho = 38_000.0, 2_000.0, 0.05, 0.07, 0.5
    k2, l1, m1, m2 = 0.4, 0.4 * 36_000.0, 10.0, 0.06
    q1 = f.prob_default_any(k2 + 0.1, l1 + 0.1 * s2, s2, sig2, m1, m2, 0.0, s3, sig3, rho).q
    assert q1 == pytest.approx(0.04160957189402964, rel=1e-12)
    q2 = f.prob_default_any(k2 + 0.2, l1 + 0.2 * s2, s2, sig2, m1, m2, 0.02, s3, sig3, rho).q
    assert q2 == pytest.approx(0.06780665294752997, rel=1e-12)
    ks = f.k_star(k2, m2, 0.02, s2, s3, sig2, sig3, rho)
    assert f.perp_price(0.2, q2, s2, ks, 0.02) == pytest.approx(41336.652812006134, rel=1e-12)
    # "spread": rho = 0 puts k* at M2 − K2 = −2; the price at k* is at least as good as next
    # to it (a short: a higher price is better).
    k2, l1, s3, m3 = 2.0, 2.0 * 36_000.0, 40_000.0, 10.0
    ks = f.k_star(k2, 0.0, m3, s2, s3, 0.05, 0.05, 0.0)
    assert ks == -2.0

    def price(k: float) -> float:
        q = f.prob_default_any(k2 + k, l1 + k * s2, s2, 0.05, 0.0, 0.0, m3, s3, 0.05, 0.0).q
        return f.perp_price(k, q, s2, ks, 0.0005)

    assert price(ks) >= price(ks + 0.1) and price(ks) >= price(ks - 0.1)


def _price(k: float, k2: float, l1: float, m1: float, s2: float = 1000.0) -> float:
    q = f.prob_default(k2 + k, l1 + k * s2, s2, 0.05, m1).q
    return f.perp_price(k, q, s2, f.k_star(k2), 0.0005)


@settings(max_examples=60, deadline=None)
@given(
    k2=st.floats(-50.0, 50.0),
    m1=st.floats(100.0, 50_000.0),
    a=st.floats(0.0, 200.0),
    b=st.floats(0.0, 200.0),
)
def test_the_pd_price_is_monotone_in_the_trade_size_away_from_k_star(
    k2: float, m1: float, a: float, b: float
) -> None:
    """Buying more than k* never gets cheaper, selling more below k* never gets dearer."""
    l1 = k2 * 1000.0
    ks = f.k_star(k2)
    lo, hi = sorted((a, b))
    # Above k*: the price grows with the size.
    assert _price(ks + hi, k2, l1, m1) >= _price(ks + lo, k2, l1, m1) - 1e-9
    # Below k*: the price falls as the sale grows.
    assert _price(ks - hi, k2, l1, m1) <= _price(ks - lo, k2, l1, m1) + 1e-9


def test_funding_rate_clamp_base_term_and_cap() -> None:
    # Inside the clamp only the base term remains, with the sign of K2 (K2 ≥ 0 → +1 bp).
    assert f.funding_rate(0.0003, 2.0, 0.0005, 0.06, 0.04) == pytest.approx(0.0001)
    assert f.funding_rate(0.0003, 0.0, 0.0005, 0.06, 0.04) == pytest.approx(0.0001)
    assert f.funding_rate(-0.0003, -1.0, 0.0005, 0.06, 0.04) == pytest.approx(-0.0001)
    # Outside it: r̄ − Δ (or r̄ + Δ) plus the base term.
    assert f.funding_rate(0.002, 1.0, 0.0005, 0.06, 0.04) == pytest.approx(0.0016)
    assert f.funding_rate(-0.002, 1.0, 0.0005, 0.06, 0.04) == pytest.approx(-0.0014)
    # Capped at 0.9 × (α_IM − α_MM) = 1.8%.
    assert f.funding_rate(0.5, 1.0, 0.0005, 0.06, 0.04) == pytest.approx(0.018)
    assert f.funding_rate(-0.5, -1.0, 0.0005, 0.06, 0.04) == pytest.approx(-0.018)


def test_ema_and_the_exposure_ema() -> None:
    # The contracts' test: 2 λ + 4 (1 − λ) with λ = 0.25 is 3.5.
    assert f.ema(2.0, 4.0, 0.25) == pytest.approx(3.5)
    for bad in (0.0, 1.0, -3.0):
        with pytest.raises(ValueError):
            f.ema(1.0, 2.0, bad)
    # Fast up (λ 0.25), slow down (λ 0.999), floored observations.
    assert f.exposure_ema(1.0, 5.0, 0.999, 0.25, 0.01) == pytest.approx(0.25 + 0.75 * 5.0)
    assert f.exposure_ema(5.0, 1.0, 0.999, 0.25, 0.01) == pytest.approx(0.999 * 5 + 0.001)
    assert f.exposure_ema(1.0, 0.001, 0.999, 0.25, 0.01) == pytest.approx(0.999 + 0.001 * 0.01)
    assert f.exposure_ema(-1.0, -0.5, 0.999, 0.25, 1.0) == pytest.approx(-0.999 - 0.001)


def test_amm_fund_targets_m1_m2_m3_of_the_contracts_tests() -> None:
    """M1* = 77706.45, M2* = 2.16141245, M3* = 44.1905 (K2 = 1, S2 = 36000, L1 = −36000)."""
    m1 = f.target_collateral_m1(1.0, -36000.0, 36000.0, 0.05, TARGET_DD)
    assert m1 == pytest.approx(77706.45173584708, abs=0.01)
    m2 = f.target_collateral_m2(1.0, -36000.0, 36000.0, 0.05, TARGET_DD)
    assert m2 == pytest.approx(2.161412452959079, abs=1e-6)
    m3 = f.target_collateral_m3(1.0, -36000.0, 36000.0, 2000.0, 0.05, 0.07, 0.5, TARGET_DD)
    assert m3 == pytest.approx(44.1905, abs=1e-4)


@pytest.mark.parametrize("k2, l1", [(1.0, 36000.0), (-1.0, -36000.0), (2.0, 70000.0)])
def test_each_target_has_its_distance_to_default(k2: float, l1: float) -> None:
    """The fund the target formula gives puts the AMM exactly at the target dd."""
    m1 = f.target_collateral_m1(k2, l1, 36000.0, 0.05, TARGET_DD)
    assert f.prob_default(k2, l1, 36000.0, 0.05, m1=m1).dd == pytest.approx(TARGET_DD)
    m2 = f.target_collateral_m2(k2, l1, 36000.0, 0.05, TARGET_DD)
    assert f.prob_default(k2, l1, 36000.0, 0.05, m2=m2).dd == pytest.approx(TARGET_DD)
    m3 = f.target_collateral_m3(k2, l1, 36000.0, 2000.0, 0.05, 0.07, 0.5, TARGET_DD)
    dd = f.prob_default_quanto(k2, l1, 36000.0, 2000.0, 0.05, 0.07, 0.5, m3).dd
    assert dd == pytest.approx(TARGET_DD, rel=1e-9)


def test_amm_fund_target_shifts_the_exposure_and_floors() -> None:
    # k* ≤ 0: K2 ← K2 + Π̄, L1 ← L1 + Π̄ S2 (sgn(k*) = −1).
    got = f.amm_fund_target(Collateral.QUOTE, 2.0, 2000.0, 0.5, -2.0, 1000.0, 0.05, -2.0, 0.25)
    assert got == pytest.approx(f.target_collateral_m1(2.5, 2500.0, 1000.0, 0.05, -2.0))
    # k* > 0: K2 ← K2 − Π̄.
    got = f.amm_fund_target(Collateral.QUOTE, -2.0, -2000.0, 0.5, 2.0, 1000.0, 0.05, -2.0, 0.25)
    assert got == pytest.approx(f.target_collateral_m1(-2.5, -2500.0, 1000.0, 0.05, -2.0))
    # No shifted exposure: the minimum; never below it.
    assert f.amm_fund_target(Collateral.QUOTE, 0.5, 500.0, 0.5, 1.0, 1e3, 0.05, -2.0, 7.0) == 7.0
    assert f.amm_fund_target(Collateral.QUOTE, 0.1, 100.0, 0.0, -1.0, 1e3, 0.05, -2.0, 90.0) == 90.0
    base = f.amm_fund_target(Collateral.BASE, 1.0, 1000.0, 0.5, -1.0, 1000.0, 0.05, -2.0, 1e-9)
    assert base == pytest.approx(f.target_collateral_m2(1.5, 1500.0, 1000.0, 0.05, -2.0))
    args = (1.0, 36000.0, 0.5, -1.0, 36000.0, 0.05, TARGET_DD, 0.25, 2000.0, 0.07, 0.5)
    quanto = f.amm_fund_target(Collateral.QUANTO, *args)
    expected = f.target_collateral_m3(1.5, 54000.0, 36000.0, 2000.0, 0.05, 0.07, 0.5, TARGET_DD)
    assert quanto == pytest.approx(expected)


def test_default_fund_target_in_all_three_currencies() -> None:
    """The contracts' 'target Default fund size DF1, DF2, DF3' setting, by the spec's formula."""
    k2_amm, trader, n = (-0.7, 0.8), 0.11, 100 * 0.05
    r2, r3, s2, s3 = (-0.3, -0.2), (-0.32, 0.18), 2000.0, 31000.0
    down = (0.7 + n * trader) * (1.0 - math.exp(r2[0]))
    up = (0.8 + n * trader) * (math.exp(r2[1]) - 1.0)
    expect = {
        Collateral.QUOTE: s2 * max(down, up),
        Collateral.BASE: max(down / math.exp(r2[0]), up / math.exp(r2[1])),
        Collateral.QUANTO: s2 / s3 * max(down / math.exp(r3[0]), up / math.exp(r3[1])),
    }
    for ccy, want in expect.items():
        got = f.default_fund_target(ccy, *k2_amm, trader, n, r2, r3, s2, s3)
        assert got == pytest.approx(want, rel=1e-12)
    assert expect[Collateral.QUOTE] == pytest.approx(647.9544482957053)


def test_cover_n() -> None:
    assert f.cover_n(10, 0.04) == 5.0
    assert f.cover_n(1000, 0.04) == 40.0


def test_split_amount() -> None:
    # Into the pots: the LPs' share is LP / (LP + AMM fund), at most 75%.
    assert f.split_amount(100.0, 300.0, 40.0, False) == pytest.approx((10.0, 30.0))
    assert f.split_amount(900.0, 100.0, 40.0, False) == pytest.approx((30.0, 10.0))
    # Out of them, what one pot cannot pay the other pays.
    assert f.split_amount(900.0, 5.0, 40.0, True) == pytest.approx((35.0, 5.0))
    assert f.split_amount(30.0, 5.0, 34.0, True) == pytest.approx((29.0, 5.0))
    assert f.split_amount(2.0, 300.0, 40.0, True) == pytest.approx((80 / 302, 12000 / 302))
    assert f.split_amount(1.0, 1.0, 0.0, True) == (0.0, 0.0)
    with pytest.raises(ValueError):
        f.split_amount(1.0, 1.0, 5.0, True)
    with pytest.raises(ValueError):
        f.split_amount(1.0, 1.0, -5.0, False)


def test_fee_contributions_of_the_contracts_tests() -> None:
    """AMM fund 10, DF 10, treasury fee 2 under three pairs of targets."""
    assert f.fee_contributions(10.0, 10.0, 10.0, 7.0, 2.0) == (2.0, 0.0)
    assert f.fee_contributions(10.0, 14.0, 10.0, 11.0, 2.0) == (2.0, 0.0)
    assert f.fee_contributions(10.0, 14.0, 10.0, 9.0, 2.0) == (3.0, -1.0)
    assert f.trade_fees(-2000.0, 0.0003, 0.0003) == pytest.approx((0.6, 0.6))


def test_lots_margin_rates_and_shares() -> None:
    assert f.round_to_lot(0.00014, 0.0001) == pytest.approx(0.0001)
    assert f.round_to_lot(0.00016, 0.0001) == pytest.approx(0.0002)
    assert f.grow_to_lot(0.00012, 0.0001) == pytest.approx(0.0002)
    assert f.grow_to_lot(-0.00012, 0.0001) == pytest.approx(-0.0002)
    assert f.initial_margin_rate(0.1, 0.06, 0.1, 0.1) == pytest.approx(0.07)
    assert f.initial_margin_rate(-3.0, 0.06, 0.1, 0.1) == pytest.approx(0.1)
    assert f.maintenance_margin_rate(0.1, 0.06, 0.1, 0.1, 0.04) == pytest.approx(0.05)
    assert f.shares_to_mint(50.0, 0.0, 0.0) == 50.0
    assert f.shares_to_mint(50.0, 100.0, 200.0) == 25.0
    assert f.tokens_to_return(25.0, 100.0, 200.0) == 50.0
    assert f.tokens_to_return(25.0, 100.0, 0.0) == 0.0


@pytest.mark.parametrize("pos0", [-1.1, -0.5, 0.0, 0.5, 1.1])
@pytest.mark.parametrize("lvg", [2.0, 10.0, 8.0])
@pytest.mark.parametrize("s3", [46000.0, 1.0, 4000.0])
@pytest.mark.parametrize("trade", [-1.0, 1.0])
def test_deposit_for_leverage_reaches_the_leverage(
    pos0: float, lvg: float, s3: float, trade: float
) -> None:
    """The contracts' 'getDepositAmountForLvgPosition - existing pos' grid."""
    price, mark, s2, cash0 = 46500.0, 47000.0, 46000.0, 0.15
    locked0 = pos0 * s2 * 0.99
    b0 = (pos0 * mark - locked0) / s3 + cash0
    dep = f.deposit_for_leverage(pos0, b0, trade, lvg, price, mark, s3)
    new_pos, new_locked = pos0 + trade, locked0 + trade * price
    balance = (new_pos * mark - new_locked) / s3 + cash0 + dep
    if new_pos:
        assert abs(new_pos) * mark / s3 / balance == pytest.approx(lvg, rel=1e-12)


def test_liquidation_amount_restores_the_initial_margin() -> None:
    lot, cap, fee = 0.0001, 0.1, 0.0026
    pos, s2 = 10.0, 1000.0
    # Margin balance 700 on a 10 000 position: below 8% maintenance.
    delta = f.liquidation_amount(700.0, pos, s2, s2, 1.0, cap, fee, lot)
    assert 0 < delta < pos
    left = pos - delta
    # After closing delta at the mark and paying the fee rate on it, IM at the cap holds.
    assert 700.0 - fee * delta * s2 >= cap * left * s2 - 1e-9
    assert f.liquidation_amount(2000.0, pos, s2, s2, 1.0, cap, fee, lot) == 0.0
    assert f.liquidation_amount(10.0, pos, s2, s2, 1.0, cap, fee, lot) == pos
    assert f.liquidation_amount(700.0, -pos, s2, s2, 1.0, cap, fee, lot) == -delta


def test_conversions() -> None:
    assert f.base_to_collateral(Collateral.QUOTE, 1010.0, 1000.0, 1.0) == 1010.0
    assert f.base_to_collateral(Collateral.BASE, 1010.0, 1000.0, 1000.0) == pytest.approx(1.01)
    assert f.base_to_collateral(Collateral.QUANTO, 1010.0, 1000.0, 2.0) == 505.0
    assert f.collateral_to_quote(Collateral.QUOTE, 1000.0, 2.0) == 1.0
    assert f.collateral_to_quote(Collateral.BASE, 1000.0, 2.0) == 1000.0
    assert f.collateral_to_quote(Collateral.QUANTO, 1000.0, 2.0) == 2.0
    assert f.mark_price(1000.0, 0.001) == pytest.approx(1001.0)
