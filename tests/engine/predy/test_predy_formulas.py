"""Every formula of ``spec/predy.md`` with numbers worked by hand from the spec.

Each case states its arithmetic so a reviewer can redo it on paper.
"""

from __future__ import annotations

import math

import pytest

from perpsim.engine.venues.predy import formulas as fx
from perpsim.engine.venues.predy.formulas import FUTURE, SQUARED, MarginChange, SpreadInfo

approx = pytest.approx


def test_index_delta_gamma() -> None:
    # At S = 1,000 the squared index is 1,000² / 10,000 = 100.
    assert fx.index_price(FUTURE, 1000.0) == 1000.0
    assert fx.index_price(SQUARED, 1000.0) == 100.0
    assert fx.delta(FUTURE, 1000.0) == 1.0
    assert fx.delta(SQUARED, 1000.0) == approx(0.2)  # 2 × 1000 / 10,000
    assert fx.gamma(FUTURE) == 0.0
    assert fx.gamma(SQUARED) == approx(2e-4)
    assert fx.pool_deltas(1000.0, -10.0, 20.0) == approx((-10.0, 4.0))


def test_margin_div_liquidity() -> None:
    # (M + ΔM/2) / L = (100 + 25) / 1000 when ΔL = 0.
    assert fx.margin_div_liquidity(100.0, 50.0, 1000.0, 0.0) == approx(0.125)
    # ((M + ΔM/2) / ΔL) × ln((L + ΔL) / L) = 125 / 1000 × ln 2.
    assert fx.margin_div_liquidity(100.0, 50.0, 1000.0, 1000.0) == approx(0.125 * math.log(2.0))
    # A small ΔL tends to the ΔL = 0 value.
    assert fx.margin_div_liquidity(100.0, 50.0, 1000.0, 1e-6) == approx(0.125, rel=1e-8)
    with pytest.raises(ValueError, match="positive"):
        fx.margin_div_liquidity(1.0, 0.0, 0.0, 0.0)


def test_margin_div_liquidity3_is_the_mean_cube() -> None:
    # m³ + 1.5 m² dm + m dm² + dm³/4 = 1e6 + 750,000 + 250,000 + 31,250 = 2,031,250;
    # / L² × (L + 0) / L² = 2,031,250 / 1e9. It is the mean of ((m + x dm) / L)³ over x in
    # [0, 1]: (150⁴ − 100⁴) / (4 × 50) / 1000³.
    got = fx.margin_div_liquidity3(100.0, 50.0, 1000.0, 0.0)
    assert got == approx(0.00203125)
    assert got == approx((150.0**4 - 100.0**4) / 200.0 / 1e9)
    # With ΔL: × (L + ΔL/2) / (L + ΔL)² instead of 1 / L: 1500 / 2000² = 3.75e-4.
    assert fx.margin_div_liquidity3(100.0, 50.0, 1000.0, 1000.0) == approx(2.03125 * 3.75e-4)
    # Signed: a pool long (m < 0) gives a negative cube.
    assert fx.margin_div_liquidity3(-100.0, 0.0, 1000.0, 0.0) == approx(-0.001)


def test_funding_formula_seed_and_mainnet() -> None:
    assert fx.funding_formula(100.0, 50.0, 1000.0, 0.0, "seed") == approx(0.125)
    # (3 × 0.125 + 7 × 0.00203125) / 10 = 0.038921875.
    assert fx.funding_formula(100.0, 50.0, 1000.0, 0.0, "mainnet") == approx(0.038921875)


def test_funding_rates() -> None:
    # variance × (1 + 3 × F) = 0.0016 × 1.375.
    assert fx.funding_rate_squared(0.0016, 3.0, 0.125) == approx(0.0022)
    # 0 + 0.004 × 0.125.
    assert fx.funding_rate_future(0.0, 0.004, 0.125) == approx(0.0005)
    kw = {
        "variance": 0.0016,
        "squared_perp_funding_multiplier": 3.0,
        "perp_future_max_funding_rate": 0.004,
    }
    assert fx.funding_rate(SQUARED, 100.0, 50.0, 1000.0, 0.0, **kw) == approx(0.0022)
    assert fx.funding_rate(FUTURE, 100.0, 50.0, 1000.0, 0.0, **kw) == approx(0.0005)
    # No liquidity: the variance, the base rate.
    assert fx.funding_rate(SQUARED, 1.0, 0.0, 0.0, 0.0, **kw) == 0.0016
    assert fx.funding_rate(FUTURE, 1.0, 0.0, 0.0, 0.0, **kw) == 0.0
    # With zero margin locked the squared pays exactly the variance.
    assert fx.funding_rate(SQUARED, 0.0, 0.0, 1000.0, 0.0, **kw) == 0.0016


def test_fees_and_trade_price() -> None:
    # The squared pays double: 100 × 0.0005 × 2 = 0.1 per contract.
    assert fx.trade_fee(SQUARED, 100.0, 0.0005, True) == approx(0.1)
    assert fx.trade_fee(SQUARED, 100.0, 0.0005, False) == approx(-0.1)
    assert fx.trade_fee(FUTURE, 1000.0, 0.0005, True) == approx(0.5)
    # 100 × 0.0001 × 2 × |−2| = 0.04.
    assert fx.protocol_fee(SQUARED, 100.0, 0.0001, -2.0) == approx(0.04)
    # 100 × (1 + 0.0022) + 0.1.
    assert fx.trade_price(100.0, 0.0022, 0.1) == approx(100.32)


def test_weights_and_required_margin() -> None:
    # S = 1,000; pool future −10, squared +20: d0 = −10, d1 = 4, net −6; w0 = 10/14, w1 = 4/14.
    d0, d1 = fx.pool_deltas(1000.0, -10.0, 20.0)
    assert fx.calculate_weight(FUTURE, d0, d1) == approx(10.0 / 14.0)
    assert fx.calculate_weight(SQUARED, d0, d1) == approx(4.0 / 14.0)
    assert fx.calculate_weight(FUTURE, 0.0, 0.0) == 0.0
    g1 = fx.gamma(SQUARED) * 20.0
    # RM0 = 1.4 × 1000 × |−6 × 10/14| = 6,000.
    assert fx.required_margin(FUTURE, d0, d1, g1, 1000.0, 0.4) == approx(6000.0)
    # RM1 = 1.4 × 1000 × (|−6 × 4/14| + |0.4 × 1000 × 2e-4 × 20|) = 1400 × (12/7 + 1.6) = 4,640.
    assert fx.required_margin(SQUARED, d0, d1, g1, 1000.0, 0.4) == approx(4640.0)


def test_hedge_amounts_hold_the_underlying_long_only() -> None:
    # Net delta −6: buy 6 for 6 × 1000 × (1 + 0.34%) = 6,020.4.
    h = fx.hedge_amounts(0.0, -10.0, 4.0, 1000.0, 0.0034)
    assert h.is_long and h.amount_underlying == approx(6.0)
    assert h.amount_usdc == approx(6020.4)
    assert h.future_weight == approx(10.0 / 14.0)
    # Holding 8 against a target of 6: sell 2 for 2,000 × (1 − 0.34%) = 1,993.2.
    h = fx.hedge_amounts(8.0, -10.0, 4.0, 1000.0, 0.0034)
    assert not h.is_long and h.amount_underlying == approx(2.0)
    assert h.amount_usdc == approx(1993.2)
    # A positive net delta: the target is 0, never a short.
    h = fx.hedge_amounts(3.0, 10.0, 0.0, 1000.0)
    assert not h.is_long and h.amount_underlying == approx(3.0)


def test_slippage_tolerance_grows_with_the_move() -> None:
    # 0.34% + 0.18% × 2.5% / 5% = 0.43%.
    assert fx.slippage_tolerance(1025.0, 1000.0, 0.0034, 0.0052, 0.05) == approx(0.0043)
    assert fx.slippage_tolerance(1000.0, 1000.0, 0.0034, 0.0052, 0.05) == approx(0.0034)
    assert fx.slippage_tolerance(900.0, 1000.0, 0.0034, 0.0052, 0.05) == approx(0.0052)
    # Whole basis points, as the contracts count: a 2.04% move (1000 after a hedge at 980)
    # with the contracts' 0.4%–0.8% over 2.5% adds floor(40 × 2.04 / 2.5) = 32 bp, not 32.65.
    assert fx.slippage_tolerance(1000.0, 980.0, 0.004, 0.008, 0.025) == approx(0.0072)


def test_margin_change_and_signed_margins() -> None:
    assert fx.margin_change(5.0, -1.0) == MarginChange.LONG_TO_SHORT
    assert fx.margin_change(-5.0, 1.0) == MarginChange.SHORT_TO_LONG
    assert fx.margin_change(0.0, 1.0) == MarginChange.LONG_TO_LONG
    assert fx.margin_change(0.0, -1.0) == MarginChange.SHORT_TO_SHORT
    assert fx.signed_margin(-1.0, 100.0) == 100.0  # pool short → +M
    assert fx.signed_margin(1.0, 100.0) == -100.0  # pool long → −M
    assert fx.signed_margin(0.0, 100.0) == 0.0
    # Crossing long → short with M = 100 and ΔM = −30: dm = 2 × 100 − 30 = 170.
    assert fx.signed_delta_margin(MarginChange.LONG_TO_SHORT, -30.0, 100.0) == 170.0
    assert fx.signed_delta_margin(MarginChange.SHORT_TO_LONG, -30.0, 100.0) == -170.0
    assert fx.signed_delta_margin(MarginChange.LONG_TO_LONG, 20.0, 100.0) == -20.0
    assert fx.signed_delta_margin(MarginChange.SHORT_TO_SHORT, 20.0, 100.0) == 20.0


def test_unlocking_in_proportion_to_the_hedge_value() -> None:
    # 50 of margin no longer required, M = 100, hedge value 125 (a 25 profit): M falls by
    # 50 × 100 / 125 = 40 and L gains 50 − 40 = 10, the profit on the part unlocked.
    dl, dm = fx.unlocked_liquidity(100.0, -50.0, 125.0)
    assert dm == approx(-40.0) and dl == approx(10.0)
    pre = fx.pre_trade(-50.0, 125.0, 100.0, MarginChange.SHORT_TO_SHORT)
    assert pre == approx(fx.PreTrade(-40.0, -40.0, 10.0))
    # Lock more: δ = 30 with a positive hedge value.
    assert fx.pre_trade(30.0, 10.0, 100.0, MarginChange.SHORT_TO_SHORT) == approx(
        fx.PreTrade(30.0, 30.0, 0.0)
    )
    # A hedge worth −20 (all of M = 100 lost and 20 more): L takes −120, M becomes δ + HV = 10.
    pre = fx.pre_trade(30.0, -20.0, 100.0, MarginChange.SHORT_TO_SHORT)
    assert pre == approx(fx.PreTrade(-90.0, -90.0, -120.0))
    # The seed's ΔM is the change of the locked margin, not signed.
    assert fx.pre_trade(20.0, 0.0, 100.0, MarginChange.LONG_TO_LONG, signed=False) == approx(
        fx.PreTrade(20.0, 20.0, 0.0)
    )


def test_available_liquidity_and_utilisation() -> None:
    # 1000 − (100 + 50) − max(0, −(−30)) = 820.
    assert fx.available_liquidity(1000.0, (100.0, 50.0), (20.0, -30.0)) == approx(820.0)
    assert fx.utilization_ratio(1000.0, (100.0, 50.0)) == approx(0.15)
    assert fx.utilization_ratio(0.0, (0.0, 0.0)) == 0.0


def test_update_variance_normalises_u_squared_to_a_day() -> None:
    # u = 5%; 0.94 × 0.0016 + 0.06 × 0.0025 × 86,400 / 43,200 = 0.001504 + 0.0003.
    assert fx.update_variance(0.0016, 1050.0, 1000.0, 43_200) == approx(0.001804)
    # A full day: u² counts once.
    assert fx.update_variance(0.0016, 1050.0, 1000.0, 86_400) == approx(0.001654)
    with pytest.raises(ValueError, match="time"):
        fx.update_variance(0.0016, 1050.0, 1000.0, 0)


def test_lp_token_price() -> None:
    # (1000 + 50 + 200 − 150) / 1000.
    assert fx.lp_token_price(1000.0, 50.0, 200.0, 150.0, 1000.0) == approx(1.1)
    with pytest.raises(ValueError, match="supply"):
        fx.lp_token_price(1.0, 0.0, 0.0, 0.0, 0.0)


def test_entry_price_update() -> None:
    # Add 1 at 110 to 2 at 100: entry (200 + 110) / 3.
    assert fx.entry_price_update(100.0, 2.0, 110.0, 1.0) == approx((310.0 / 3.0, 0.0))
    # Reduce by 1 at 110: realise 10, keep the entry.
    assert fx.entry_price_update(100.0, 2.0, 110.0, -1.0) == approx((100.0, 10.0))
    # Flip to −1: realise 2 × 10 and enter at 110.
    assert fx.entry_price_update(100.0, 2.0, 110.0, -3.0) == approx((110.0, 20.0))
    # Close: realise 20, no entry left.
    assert fx.entry_price_update(100.0, 2.0, 110.0, -2.0) == approx((0.0, 20.0))
    # A short realises the other way: short 2 at 100 bought back 1 at 90 gains 10.
    assert fx.entry_price_update(100.0, -2.0, 90.0, 1.0) == approx((100.0, 10.0))


def test_min_collateral() -> None:
    # 0.05 × 1000 × |1| = 50, below the 200 floor of an open vault.
    assert fx.min_collateral(1000.0, 1.0, 0.0, 0.0, 0.0) == 200.0
    assert fx.min_collateral(1000.0, 0.0, 0.0, 0.0, 0.0) == 0.0
    assert fx.min_collateral(1000.0, 10.0, 0.0, 0.0, 0.0) == approx(500.0)
    # S(1 + FR_sq) = 1010; |2 × 1010 × 100 / 10,000 + 1.001 × (−10)| = 10.19;
    # 2 × 0.05 × 1010 × 100 / 10,000 = 1.01; 0.05 × 1000 × 11.2 = 560.
    assert fx.min_collateral(1000.0, -10.0, 100.0, 0.001, 0.01) == approx(560.0)


def test_liquidation_reward() -> None:
    assert fx.liquidation_reward(560.0, 1000.0, 0.1) == approx(56.0)
    assert fx.liquidation_reward(560.0, 30.0, 0.1) == approx(30.0)
    assert fx.liquidation_reward(560.0, -5.0, 0.1) == 0.0


def test_funding_fee_per_position() -> None:
    # 100 × 0.0016 × 12 h / 24 h.
    assert fx.funding_fee_per_position(100.0, 0.0016, 43_200) == approx(0.08)


def test_spread_guard() -> None:
    info = SpreadInfo()
    # A long fills at 100 at t = 0.
    price, info = fx.spread_guard(info, True, 100.0, 0.0, 5.0, 3.0)
    assert price == 100.0 and info.min_long_price == 100.0
    # A short 2 s later cannot fill above the last long price.
    price, after = fx.spread_guard(info, False, 101.0, 2.0, 5.0, 3.0)
    assert price == 100.0
    # 4 s later the bound has relaxed by 1 bp (one 3-s step): 100 × 1.0001.
    price, _ = fx.spread_guard(info, False, 101.0, 4.0, 5.0, 3.0)
    assert price == approx(100.01)
    # Past the window the short fills at its own price; a short below the bound is untouched.
    assert fx.spread_guard(info, False, 101.0, 6.0, 5.0, 3.0)[0] == 101.0
    assert fx.spread_guard(info, False, 99.0, 2.0, 5.0, 3.0)[0] == 99.0
    # Window 0 disables the guard.
    assert fx.spread_guard(after, True, 50.0, 3.0, 0.0, 3.0)[0] == 50.0
    # A long just after that short cannot fill below the short's price.
    assert fx.spread_guard(after, True, 99.0, 3.0, 5.0, 3.0)[0] == 100.0
