"""Predy's pool and vaults: trades, LP tokens, funding, variance, hedging and liquidation.

Numbers are worked by hand from ``spec/predy.md`` (the arithmetic is in the comments).
"""

from __future__ import annotations

import pytest

from perpsim.engine.core.index import SettableOracle
from perpsim.engine.core.status import Status
from perpsim.engine.venues.predy import formulas as fx
from perpsim.engine.venues.predy.config import PredyParams
from perpsim.engine.venues.predy.formulas import FUTURE, SQUARED
from perpsim.engine.venues.predy.pool import PredyMarket
from perpsim.errors import (
    BadAmountError,
    EngineError,
    InsufficientBalanceError,
    InvalidOperationError,
    LotSizeError,
    PriceLimitError,
    UnsafeError,
)

T0 = 1_700_000_000
approx = pytest.approx


def market(
    formula: str = "seed", liquidity: float = 1_000_000.0, **params: float
) -> tuple[PredyMarket, SettableOracle]:
    """A market initialised by ``lp`` at S = 1,000 with a daily variance of 0.0016."""
    oracle = SettableOracle(1000.0, T0)
    m = PredyMarket(PredyParams(**params), oracle, funding_formula=formula)
    m.set_time(T0)
    m.initialize("lp", liquidity, 0.0016, from_vault=False)
    return m, oracle


def snapshot(m: PredyMarket) -> str:
    return repr(
        (m.state, [a.tobytes() for a in m.vaults.view()], m.shares, m.flows, m.now, m.status)
    )


def rejected(m: PredyMarket, error: type[EngineError], op: object, *args: object) -> None:
    before = snapshot(m)
    with pytest.raises(error):
        op(*args)  # type: ignore[operator]
    assert snapshot(m) == before


def test_initialize() -> None:
    m, _ = market()
    st = m.state
    assert st.amount_liquidity == st.supply == 1_000_000.0
    assert st.variance == 0.0016 and st.snapshot_price == 1000.0
    assert m.lp_token_price() == 1.0
    # No margin locked: the squared pays the variance, the future the base rate (0).
    assert m.current_rate(SQUARED) == 0.0016 and m.current_rate(FUTURE) == 0.0
    before = snapshot(m)
    with pytest.raises(InvalidOperationError):
        m.initialize("x", 1.0, 0.001, from_vault=False)
    assert snapshot(m) == before
    assert m.check_invariants() == []


def test_first_squared_trade_seed() -> None:
    """Buy 10 squared at S = 1,000 (index 100) from a 1M pool, seed formula.

    Pool −10: d1 = 0.2 × −10 = −2, gamma1 = −0.002; RM = 1.4 × 1000 × (2 + 0.4 × 1000 × 0.002)
    = 3,920, all locked (hedge value 0). F = (0 + 3920/2) / 1e6 = 0.00196; FundingRate =
    0.0016 × (1 + 3 × 0.00196) = 0.001609408; price = 100 × 1.001609408 + 0.1 (fee 100 × 0.05%
    × 2) = 100.2609408. Protocol fee 100 × 0.01% × 2 × 10 = 0.2 leaves L.
    """
    m, _ = market(spread_window=0.0)
    m.deposit_margin("alice", 10_000.0)
    (fill,) = m.trade("alice", (0.0, 10.0))
    assert fill.funding_rate == approx(0.001609408)
    assert fill.trade_price == approx(100.2609408)
    assert fill.protocol_fee == approx(0.2)
    st = m.state
    assert st.locked == approx((0.0, 3920.0))
    assert st.amount_liquidity == approx(1_000_000.0 - 0.2)
    assert st.position == (0.0, -10.0) and st.entry[SQUARED] == approx(100.2609408)
    assert st.amounts_usdc == approx((0.0, 3920.0))
    # After the trade: F = 3920 / 999,999.8.
    assert m.current_rate(SQUARED) == approx(0.0016 * (1.0 + 3.0 * 3920.0 / 999_999.8))
    v = m.vaults.read(m.vaults.row("alice"))
    assert v.position == (0.0, 10.0) and v.entry[SQUARED] == approx(100.2609408)
    # The fee and the funding premium are the vault's loss at the mark.
    mark = 100.0 * (1.0 + m.current_rate(SQUARED))
    assert m.vault_value(v, m.marks(), m.funding_now()) == approx(
        10_000.0 + 10.0 * (mark - 100.2609408)
    )
    assert m.check_invariants() == []


def test_first_squared_trade_mainnet() -> None:
    """The same trade with (3·I1 + 7·I3) / 10: m = 0 (flat before), dm = +3,920 (pool short)."""
    m, _ = market("mainnet", spread_window=0.0)
    m.deposit_margin("alice", 10_000.0)
    (fill,) = m.trade("alice", (0.0, 10.0))
    f = (3.0 * 1960.0 / 1e6 + 7.0 * (3920.0**3 / 4.0) / 1e18) / 10.0
    assert fill.funding_rate == approx(0.0016 * (1.0 + 3.0 * f))
    assert fill.trade_price == approx(100.0 * (1.0 + 0.0016 * (1.0 + 3.0 * f)) + 0.1)
    # Selling back more than bought crosses the pool to long: funding turns below the variance.
    m.trade("alice", (0.0, -30.0))
    assert m.state.position[SQUARED] == 20.0
    assert m.current_rate(SQUARED) < 0.0016
    assert m.check_invariants() == []


def test_future_trade_and_funding_sign() -> None:
    m, _ = market("mainnet", spread_window=0.0)
    m.deposit_margin("bob", 50_000.0)
    (fill,) = m.trade("bob", (20.0, 0.0))
    # RM0 = 1.4 × 1000 × 20 = 28,000; F = 0.3 × 14,000 / 1e6 + 0.7 × (28,000³/4) / 1e18.
    f = (3.0 * 14_000.0 / 1e6 + 7.0 * 28_000.0**3 / 4.0 / 1e18) / 10.0
    assert fill.funding_rate == approx(0.004 * f)
    assert fill.trade_price == approx(1000.0 * (1.0 + 0.004 * f) + 0.5)
    assert m.current_rate(FUTURE) > 0.0  # pool short: longs pay
    m.trade("bob", (-40.0, 0.0))
    assert m.current_rate(FUTURE) < 0.0  # pool long: shorts pay (mainnet's signed margin)


def test_round_trip_unlocks_everything_and_funding_returns_to_the_variance() -> None:
    m, _ = market(spread_window=0.0)
    m.deposit_margin("alice", 10_000.0)
    m.trade("alice", (0.0, 10.0))
    m.trade("alice", (0.0, -10.0))
    assert m.state.locked == approx((0.0, 0.0), abs=1e-9)
    assert m.current_rate(SQUARED) == approx(0.0016, rel=1e-12)
    v = m.vaults.read(m.vaults.row("alice"))
    assert v.position == (0.0, 0.0)
    # The funding premium is the mean of F over the state change, the same on the way in
    # (0 → M) as on the way out (M → 0): the round trip costs the trade fees, 2 × 10 × 0.1,
    # and what alice lost, L and the protocol (0.2 + 0.2) gained.
    lost = 10_000.0 - v.usdc
    assert lost == approx(2.0, rel=1e-6)
    assert m.state.amount_liquidity + m.state.protocol_fees == approx(1_000_000.0 + lost)
    assert m.check_invariants() == []


def test_rejections_leave_everything_unchanged() -> None:
    m, _ = market(spread_window=0.0)
    m.deposit_margin("alice", 5_000.0)
    m.trade("alice", (1.0, 0.0))
    rejected(m, BadAmountError, m.trade, "alice", (0.0, 0.0))
    rejected(m, LotSizeError, m.trade, "alice", (1e-9, 0.0))
    rejected(m, UnsafeError, m.trade, "alice", (151.0, 0.0))  # over the 150 vault limit
    # 100 contracts: MinCollateral 0.05 × 1000 × 101 = 5,050 > 5,000 − fees.
    rejected(m, UnsafeError, m.trade, "alice", (100.0, 0.0))
    rejected(m, PriceLimitError, m.trade, "alice", (1.0, 0.0), (999.0, None))
    rejected(m, InsufficientBalanceError, m.withdraw_margin, "alice", 10_000.0)
    rejected(m, EngineError, m.trade, "nobody", (1.0, 0.0))
    assert m.check_invariants() == []
    # Liquidity: a whale whose margin a small pool cannot lock, a withdrawal beyond it.
    m, _ = market(liquidity=100_000.0, spread_window=0.0)
    m.deposit_margin("alice", 5_000.0)
    m.trade("alice", (1.0, 0.0))
    m.deposit_margin("whale", 10_000_000.0)
    rejected(m, InsufficientBalanceError, m.trade, "whale", (-150.0, 0.0))
    m.trade("whale", (-60.0, 0.0))
    avail = fx.available_liquidity(m.state.amount_liquidity, m.state.locked, m.state.amounts_usdc)
    before = snapshot(m)
    with pytest.raises(InsufficientBalanceError):
        m.remove_liquidity("lp", avail + 1.0, to_vault=False)
    assert snapshot(m) == before
    rejected(m, InvalidOperationError, m.liquidate, "whale", "alice")
    assert m.check_invariants() == []


@pytest.mark.parametrize("formula", ["seed", "mainnet"])
def test_lp_token_price_is_unchanged_by_deposits_and_withdrawals(formula: str) -> None:
    """Deposits mint at LPTokenPrice(ΔL = +d), withdrawals burn at LPTokenPrice(ΔL = −w): the
    price after is the price before, up to the funding integral's dependence on ΔL (the pool
    position's close-out price moves by far less than a basis point for these sizes)."""
    m, oracle = market(formula, spread_window=0.0)
    m.deposit_margin("alice", 100_000.0)
    m.deposit_margin("bob", 100_000.0)
    m.trade("alice", (0.0, 120.0))
    m.trade("bob", (-30.0, 0.0))
    oracle.set(1030.0, T0 + 60)
    m.set_time(T0 + 60)
    before = m.lp_token_price()
    minted = m.add_liquidity("new", 250_000.0, from_vault=False)
    assert minted == approx(250_000.0 / before, rel=1e-4)
    assert m.lp_token_price() == approx(before, rel=1e-5)
    mid = m.lp_token_price()
    burnt = m.remove_liquidity("new", 100_000.0, to_vault=False)
    assert burnt == approx(100_000.0 / mid, rel=1e-4)
    assert m.lp_token_price() == approx(mid, rel=1e-5)
    assert m.check_invariants() == []


def test_spread_guard_on_lp_tokens() -> None:
    """Within the window a withdrawal cannot burn at a price above the last deposit's."""
    m, oracle = market(spread_window=5.0)
    m.deposit_margin("alice", 100_000.0)
    m.trade("alice", (0.0, 100.0))
    m.add_liquidity("a", 100_000.0, from_vault=False)
    deposit_price = m.state.lp_spread.min_long_price
    oracle.set(950.0, T0)  # the pool (short squared) gains: the token is worth more
    assert m.lp_token_price() > deposit_price
    burnt = m.remove_liquidity("a", 10_000.0, to_vault=False)
    assert burnt == approx(10_000.0 / deposit_price)


def test_funding_received_by_the_pool_is_funding_paid_by_positions() -> None:
    m, oracle = market(spread_window=0.0)
    for name, amounts in (("a", (10.0, 40.0)), ("b", (-4.0, -15.0)), ("c", (3.0, 60.0))):
        m.deposit_margin(name, 100_000.0)
        m.trade(name, amounts)
    paid0 = m.state.funding_paid
    received0 = m.state.funding_received
    liquidity0 = m.state.amount_liquidity
    rate = m.current_rate(SQUARED)
    oracle.set(1010.0, T0)
    m.set_time(T0 + 86_400)
    per = m.accrue_funding()
    assert per == approx((m.state.funding_paid[0] - paid0[0], m.state.funding_paid[1] - paid0[1]))
    # One day at the rate of the state: index × rate × 1 day / 1 day.
    assert per[SQUARED] == approx(1010.0**2 / 1e4 * rate)
    _, pos, _, _ = m.vaults.view()
    by_positions = [float(pos[:, i].sum()) * per[i] for i in (FUTURE, SQUARED)]
    received = [m.state.funding_received[i] - received0[i] for i in (FUTURE, SQUARED)]
    assert received == approx(by_positions)
    assert m.state.amount_liquidity - liquidity0 == approx(sum(by_positions))
    assert m.check_invariants() == []


def test_variance_snapshot_every_12_hours() -> None:
    m, oracle = market()
    oracle.set(1050.0, T0)
    m.set_time(T0 + 6 * 3600)
    assert m.update_variance() is False and m.state.variance == 0.0016
    m.set_time(T0 + 12 * 3600)
    assert m.update_variance() is True
    # 0.94 × 0.0016 + 0.06 × 0.05² × 86,400 / 43,200.
    assert m.state.variance == approx(0.001804)
    assert m.state.snapshot_price == 1050.0 and m.state.snapshot_time == T0 + 12 * 3600
    m.set_time(T0 + 24 * 3600)
    m.update_variance()
    # No move in the next 12 h: the variance decays by λ.
    assert m.state.variance == approx(0.94 * 0.001804)


def test_hedge_holds_minus_the_net_delta() -> None:
    m, oracle = market(spread_window=0.0)
    m.deposit_margin("alice", 200_000.0)
    m.trade("alice", (30.0, 50.0))  # pool short 30 future and 50 squared: net delta −40
    plan = m.hedge_plan()
    assert plan.is_long and plan.amount_underlying == approx(40.0)
    result = m.hedge("hedger")
    assert result.amount_usdc == approx(40.0 * 1000.0 * 1.0034)
    assert m.state.amount_underlying == approx(40.0)
    with pytest.raises(InvalidOperationError):
        m.hedge("hedger")
    assert m.check_invariants() == []
    # A 2.5% rally since the last hedge: the slippage is 0.43%.
    oracle.set(1025.0, T0)
    m.trade("alice", (5.0, 0.0))
    r2 = m.hedge("hedger")
    assert r2.slippage == approx(0.0043)
    d0, d1 = fx.pool_deltas(1025.0, *m.state.position)
    assert m.state.amount_underlying == approx(-(d0 + d1))
    assert m.check_invariants() == []


def test_liquidation_closes_the_vault_and_splits_the_reward() -> None:
    m, oracle = market(spread_window=0.0)
    m.deposit_margin("victim", 1_500.0)
    m.deposit_margin("keeper", 1.0)
    m.trade("victim", (10.0, 0.0))  # MinCollateral 0.05 × 1000 × 10 = 500
    # At 880: worth about 1,500 − 10 × 120.5 = 295, below 0.05 × 880 × 10 = 440.
    oracle.set(880.0, T0)
    v = m.vaults.read(m.vaults.row("victim"))
    assert m.is_liquidatable(v)
    mc = m.vault_min_collateral(v)
    liquidity = m.state.amount_liquidity
    result = m.liquidate("keeper", "victim")
    after = m.vaults.read(m.vaults.row("victim"))
    assert after.position == (0.0, 0.0)
    assert result["reward"] == approx(min(0.1 * mc, after.usdc + result["reward"]))
    assert m.vaults.read(m.vaults.row("keeper")).usdc == approx(1.0 + result["reward"] / 2.0)
    assert m.state.amount_liquidity > liquidity  # the pool's profit and half the reward
    assert m.check_invariants() == []


def test_insolvent_vault_is_charged_to_the_liquidity() -> None:
    m, oracle = market(spread_window=0.0)
    m.deposit_margin("victim", 1_500.0)
    m.deposit_margin("keeper", 1.0)
    m.trade("victim", (10.0, 0.0))
    oracle.set(700.0, T0)  # a 3,000 loss on 1,500 of margin
    result = m.liquidate("keeper", "victim")
    assert result["shortfall"] > 1_000.0
    assert m.vaults.read(m.vaults.row("victim")).usdc == 0.0
    assert m.state.insolvent_loss == result["shortfall"]
    assert m.check_invariants() == []


def test_settlement_pays_vaults_and_lp_tokens() -> None:
    m, oracle = market(spread_window=0.0)
    m.deposit_margin("alice", 50_000.0)
    m.trade("alice", (5.0, 20.0))
    m.hedge("hedger")
    oracle.set(1100.0, T0)
    m.begin_global_settlement(1100.0)
    assert m.status is Status.EMERGENCY
    m.global_settled()
    equity = m.pool_equity()
    assert m.settle_shares("lp", 1_000_000.0) == approx(equity)
    m.settle("alice")
    m.settle("lp")
    assert m.check_invariants() == []
    # Everything was paid out but the protocol's fees.
    assert m.total_value() == approx(m.state.protocol_fees)
    assert m.flows.usdc_in - m.flows.usdc_out == approx(m.state.protocol_fees)
