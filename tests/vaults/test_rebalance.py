"""The rebalance steps and the GLP basket as pure functions, on worked cases."""

from __future__ import annotations

import math

import pytest
from perpsim.agents.vaults.glp import (
    glp_amounts,
    glp_exposures,
    glp_price,
    gmx_v1_fee_rate,
    pool_amounts,
    value_weights,
)
from perpsim.agents.vaults.rebalance import (
    InternalSettlementError,
    buffer_topup,
    delta_fractions,
    fit_targets,
    funding_pro_rata,
    internal_hedges,
    mark_to_market,
    net_glp,
    net_hedges,
    net_side_shares,
    settle_internal_hedges,
    split_fee_pro_rata,
)


def test_seed_worked_example_net_mint_and_fee_split() -> None:
    # The seed: USDC sells 50 GLP, BTC buys 25, ETH buys 100 -> one mint of 75; ETH pays
    # 100/125 of its fee, BTC 25/125, USDC nothing.
    changes = {"USDC": -50.0, "BTC": 25.0, "ETH": 100.0}
    assert net_glp(changes) == 75.0
    split = split_fee_pro_rata(changes, fee=1.0)
    assert split == pytest.approx({"USDC": 0.0, "BTC": 0.2, "ETH": 0.8})
    assert math.fsum(split.values()) == pytest.approx(1.0)


def test_fee_split_of_a_net_burn_goes_to_the_burners() -> None:
    split = split_fee_pro_rata({"USDC": -60.0, "BTC": 20.0, "ETH": -20.0}, fee=8.0)
    assert split == pytest.approx({"USDC": 6.0, "BTC": 0.0, "ETH": 2.0})
    assert split_fee_pro_rata({"A": 10.0, "B": -10.0}, fee=5.0) == {"A": 0.0, "B": 0.0}


def test_mark_to_market_of_a_short_and_a_long() -> None:
    # A short of 1,000 USD earns 1,000 x (1 - P_t/P_t-1): ETH 2,000 -> 1,800 earns 100.
    assert mark_to_market(-1000.0, 2000.0, 1800.0) == pytest.approx(100.0)
    assert mark_to_market(1000.0, 2000.0, 1800.0) == pytest.approx(-100.0)
    assert mark_to_market(-1000.0, 2000.0, 2000.0) == 0.0


def test_funding_pro_rata_charges_the_net_side() -> None:
    # Net short 150 (USDC -100, BTC -100, ETH +50): the shorts pay, pro rata 1:1.
    cost = funding_pro_rata(30.0, {"USDC": -100.0, "BTC": -100.0, "ETH": 50.0})
    assert cost == pytest.approx({"USDC": 15.0, "BTC": 15.0, "ETH": 0.0})
    # Received funding (negative) is shared the same way.
    assert funding_pro_rata(-9.0, {"A": 30.0, "B": 60.0}) == pytest.approx({"A": -3.0, "B": -6.0})


def test_netting_matrix_and_internal_parts() -> None:
    hedges = {
        "USDC": {"ETH": -250.0, "BTC": -250.0},
        "ETH": {"ETH": 875.0, "BTC": -125.0},
        "BTC": {"ETH": -125.0, "BTC": 875.0},
    }
    assert net_hedges(hedges) == pytest.approx({"ETH": 500.0, "BTC": 500.0})
    eth = {v: h["ETH"] for v, h in hedges.items()}
    inside = internal_hedges(eth)
    # Shorts (375) are wholly matched; the long is matched for 375 of its 875.
    assert inside == pytest.approx({"USDC": -250.0, "ETH": 375.0, "BTC": -125.0})
    assert math.fsum(inside.values()) == pytest.approx(0.0)
    assert net_side_shares(eth) == pytest.approx({"USDC": 0.0, "ETH": 1.0, "BTC": 0.0})


def test_internal_settlement_is_zero_sum_and_marks_the_matched_parts() -> None:
    eth = {"USDC": -250.0, "ETH": 875.0, "BTC": -125.0}
    t = settle_internal_hedges(eth, 2000.0, 1800.0)  # -10%
    assert t == pytest.approx({"USDC": 25.0, "ETH": -37.5, "BTC": 12.5})
    assert math.fsum(t.values()) == pytest.approx(0.0, abs=1e-12)
    # Venue part + internal part = each vault's own mark.
    venue_pnl = mark_to_market(500.0, 2000.0, 1800.0)
    shares = net_side_shares(eth)
    for v, n in eth.items():
        assert t[v] + shares[v] * venue_pnl == pytest.approx(mark_to_market(n, 2000.0, 1800.0))


def test_internal_settlement_error_is_an_assertion() -> None:
    assert issubclass(InternalSettlementError, AssertionError)
    assert settle_internal_hedges({"A": 10.0}, 1.0, 2.0) == {"A": 0.0}


def test_buffer_topup() -> None:
    # The seed: positions fitted for 95 fell to 90; the buffer (10, threshold 2) puts back 5.
    assert buffer_topup(95.0, 90.0, 10.0, 2.0) == 5.0
    # Only down to the threshold.
    assert buffer_topup(95.0, 90.0, 4.0, 2.0) == 2.0
    assert buffer_topup(95.0, 90.0, 1.0, 2.0) == 0.0
    # Nothing to top up after a gain.
    assert buffer_topup(95.0, 99.0, 10.0, 2.0) == 0.0


def test_fit_targets_of_the_three_vaults() -> None:
    exposures = {"ETH": 0.25, "BTC": 0.25}  # per GLP at 1 USD
    usdc = fit_targets(100.0, 0.8, 1.0, exposures, {})
    assert usdc.glp_units == pytest.approx(80.0)
    assert usdc.hedges == pytest.approx({"ETH": -20.0, "BTC": -20.0})
    eth = fit_targets(100.0, 0.5, 1.0, exposures, {"ETH": 1.0})
    assert eth.hedges == pytest.approx({"ETH": 87.5, "BTC": -12.5})
    d = delta_fractions(100.0, eth.glp_units, exposures, eth.hedges, {"ETH": 1.0})
    assert d == pytest.approx({"ETH": 0.0, "BTC": 0.0})
    empty = fit_targets(0.0, 0.5, 1.0, exposures, {"ETH": 1.0})
    assert empty.glp_units == 0.0
    assert empty.hedges == {"ETH": 0.0, "BTC": 0.0}


def test_glp_basket_price_and_weights() -> None:
    prices = {"USDC": 1.0, "ETH": 2000.0, "BTC": 40000.0}
    units = glp_amounts({"USDC": 0.5, "ETH": 0.25, "BTC": 0.25}, prices, 1.0)
    assert units == pytest.approx({"USDC": 0.5, "ETH": 0.000125, "BTC": 0.00000625})
    assert glp_price(units, prices) == pytest.approx(1.0)
    up = {**prices, "ETH": 2400.0}  # ETH +20%: GLP +5%, ETH's share 0.3/1.05
    assert glp_price(units, up) == pytest.approx(1.05)
    assert value_weights(units, up)["ETH"] == pytest.approx(0.3 / 1.05)
    assert glp_exposures(units, up)["ETH"] == pytest.approx(0.3)
    assert pool_amounts(1e6, units, up)["ETH"] == pytest.approx(1e6 * 0.3 / 1.05)


def test_gmx_v1_dynamic_fee() -> None:
    # Toward the target: the base fee less the rebate (a 20% shortfall x 50 bp = 10 bp).
    assert gmx_v1_fee_rate(80.0, 100.0, 10.0, 0.003, 0.005) == pytest.approx(0.002)
    # A large shortfall rebates the whole base fee.
    assert gmx_v1_fee_rate(10.0, 100.0, 10.0, 0.003, 0.005) == 0.0
    # Away from the target: base + tax x mean distance (10 before, 30 after -> 20%).
    assert gmx_v1_fee_rate(110.0, 100.0, 20.0, 0.003, 0.005) == pytest.approx(0.004)
    # The mean distance is capped at the target.
    assert gmx_v1_fee_rate(250.0, 100.0, 100.0, 0.003, 0.005) == pytest.approx(0.008)
    # Stable rates are their own scenario keys (20 bp tax).
    assert gmx_v1_fee_rate(110.0, 100.0, 20.0, 0.003, 0.002) == pytest.approx(0.0034)
    with pytest.raises(ValueError, match="target"):
        gmx_v1_fee_rate(1.0, 0.0, 1.0, 0.003, 0.005)
