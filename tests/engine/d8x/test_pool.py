"""The D8X pool engine: the seed's hook order, rebalance, EMERGENCY, liquidation, funding."""

from __future__ import annotations

import math
from typing import Any

import pytest

from perpsim.engine.core.index import SettableOracle
from perpsim.engine.core.status import Status
from perpsim.engine.venues.d8x import formulas as f
from perpsim.engine.venues.d8x.formulas import Collateral
from perpsim.engine.venues.d8x.governance import D8XGovernance
from perpsim.engine.venues.d8x.hook import HOOKS, Action
from perpsim.engine.venues.d8x.pool import CollateralPrice, D8XPool
from perpsim.engine.venues.d8x.venue import D8XVenue
from perpsim.errors import BadAmountError, GovernanceError, LotSizeError, UnsafeError

T0 = 1_700_000_000


def make_pool(
    collateral: Collateral = Collateral.QUOTE,
    *,
    index: float = 1000.0,
    s3: float = 2000.0,
    amm_fund: float = 5_000.0,
    lp_cash: float = 100_000.0,
    default_fund: float = 20_000.0,
    **gov: Any,
) -> tuple[D8XPool, SettableOracle]:
    oracle = SettableOracle(index, T0)
    pool = D8XPool(
        D8XGovernance(**gov), collateral, oracle, CollateralPrice(collateral, s3, 0.0), T0
    )
    pool.fund_amm(amm_fund)
    if default_fund:
        pool.fund_default_fund(default_fund)
    if lp_cash:
        pool.deposit("lp", lp_cash)
        pool.add_liquidity("lp", lp_cash)
    return pool, oracle


def traced(pool: D8XPool) -> list[tuple[Action, list[str]]]:
    seen: list[tuple[Action, list[str]]] = []
    pool.hook_listener = lambda action, trace: seen.append(
        (action, [f"{phase}:{step.value}" for phase, step in trace])
    )
    return seen


BEFORE = ["before:accrue_funding", "before:update_oracle", "before:rebalance_on_price_move"]


def test_the_hook_runs_in_the_seeds_order_for_every_action_kind() -> None:
    """Seed 000: step 1 before every action; book, target, fees, rebalance after a trade or a
    liquidation; rebalance after an LP deposit or withdrawal; nothing after a trader's."""
    pool, oracle = make_pool(Collateral.QUANTO, amm_fund=20.0, lp_cash=100.0, default_fund=10.0)
    seen = traced(pool)
    pool.deposit("alice", 0.5)
    pool.deposit("liq", 50.0)
    pool.set_time(T0 + 60)
    pool.trade("alice", 8.0)
    pool.withdraw("alice", 0.01)
    pool.add_liquidity("liq", 10.0)
    pool.remove_liquidity("liq", pool.shares["liq"] / 2)
    pool.update("keeper")
    oracle.set(920.0, T0 + 120)
    pool.set_time(T0 + 120)
    row = pool.row("alice")
    assert pool.liquidation_amount(row) != 0.0
    pool.liquidate("liq", "alice", abs(pool.liquidation_amount(row)))
    kinds = [a for a, _ in seen]
    assert kinds == [
        Action.TRADER_DEPOSIT,
        Action.TRADER_DEPOSIT,
        Action.TRADE,
        Action.TRADER_WITHDRAW,
        Action.LP_DEPOSIT,
        Action.LP_WITHDRAW,
        Action.UPDATE,
        Action.LIQUIDATE,
    ]
    trades = ["after:update_amm_fund_target", "after:distribute_fees", "after:rebalance"]
    funding = ["after:update_funding_rate"]
    expected_after = {
        Action.TRADER_DEPOSIT: funding,
        Action.TRADER_WITHDRAW: funding,
        Action.TRADE: [*trades, *funding, "after:update_default_fund_target"],
        Action.LIQUIDATE: [*trades, *funding, "after:update_default_fund_target"],
        Action.LP_DEPOSIT: ["after:rebalance", *funding],
        Action.LP_WITHDRAW: ["after:rebalance", *funding],
        Action.UPDATE: funding,
    }
    for action, trace in seen:
        cut = trace.index("action:action")
        before = [s for s in trace[:cut] if s != "before:rebalance"]
        assert before == BEFORE, action
        assert trace[cut + 1 :] == expected_after[action], action
        assert [s.value for s in HOOKS[action].after] == [s.split(":")[1] for s in trace[cut + 1 :]]
    # The quanto pool rebalances before an action only when S2 or S3 moved past 1 bp: the
    # liquidation after the crash did, the trades at an unchanged index did not.
    moved = {a: "before:rebalance" in t[: t.index("action:action")] for a, t in seen}
    assert moved[Action.LIQUIDATE] and not moved[Action.TRADE]


def test_quote_and_base_pools_rebalance_before_every_action() -> None:
    """Without an S3 oracle the 'insignificant move' flag never sets (the contracts)."""
    for ccy in (Collateral.QUOTE, Collateral.BASE):
        pool, _ = make_pool(ccy, amm_fund=10.0, lp_cash=100.0, default_fund=10.0)
        seen = traced(pool)
        pool.deposit("a", 5.0)
        pool.deposit("a", 5.0)
        assert all(t[3] == "before:rebalance" for _, t in seen)


def test_a_refused_action_runs_no_hook_and_changes_nothing() -> None:
    pool, oracle = make_pool()
    seen = traced(pool)
    pool.deposit("alice", 1_000.0)
    oracle.set(1010.0, T0 + 5)
    pool.set_time(T0 + 5)
    before = (repr(pool.state), pool._cash.tobytes(), pool._pos.tobytes(), dict(pool.shares))
    for op, args in (
        (pool.trade, ("alice", 1000.0)),
        (pool.withdraw, ("alice", 5_000.0)),
        (pool.trade, ("alice", 0.00005)),
    ):
        with pytest.raises((UnsafeError, BadAmountError, Exception)):
            op(*args)
    assert (repr(pool.state), pool._cash.tobytes(), pool._pos.tobytes(), dict(pool.shares)) == (
        before
    )
    assert len(seen) == 1


def whitepaper_pool() -> tuple[D8XPool, SettableOracle]:
    """A small quote pool where the AMM's default probability matters (see the replay
    example ``scenarios/replay/d8x_trader_opens_and_closes.yaml``)."""
    return make_pool(amm_fund=100.0, lp_cash=10_000.0, default_fund=1_000.0)


def test_a_trader_opens_and_closes_against_the_amm() -> None:
    """The price of the first trade is the spec's p(k) of the pool as the before-hook leaves
    it; the AMM's P&L on the round trip is what the trader lost, less the fees."""
    pool, oracle = whitepaper_pool()
    v = D8XVenue(pool)
    pool.deposit("trader", 1_000.0)
    quote = v.quote(1.0)
    # The pricing state after the before-hook: K2 = 0, L1 = 0, M1 = the AMM fund.
    k2, l1, m1, s2 = pool.pricing()
    q = f.prob_default(k2 + 1.0, l1 + 1.0 * s2, s2, 0.05, m1).q
    assert quote.price == pytest.approx(f.perp_price(1.0, q, s2, -k2, 0.0005), rel=1e-12)
    price_open, fee_open = pool.trade("trader", 1.0)
    assert price_open == quote.price
    assert fee_open == pytest.approx(2 * 0.0003 * 1000.0)
    assert pool.margin(0).position == -1.0 and pool.margin(0).locked_in == -1000.0
    # The trader paid the premium over the index at once: that is the AMM's P&L so far.
    amm_pnl_open = (price_open - 1000.0) * 1.0
    total_before = sum(pool.check_invariants() == [] for _ in range(1))
    assert total_before == 1
    oracle.set(1020.0, T0 + 60)
    pool.set_time(T0 + 60)
    price_close, fee_close = pool.trade("trader", -1.0)
    trader = pool.margin(pool.row("trader"))
    assert trader.position == 0.0 and trader.locked_in == 0.0
    paid_funding = pool.state.unit_accumulated_funding  # per contract held for 60 s
    trader_pnl = (price_close - price_open) - fee_open - fee_close - paid_funding
    assert trader.cash == pytest.approx(1_000.0 + trader_pnl, rel=1e-12)
    # The AMM's P&L on the round trip: what the trader lost, plus its funding, less fees.
    amm_pnl = -(price_close - price_open) + paid_funding
    assert amm_pnl == pytest.approx(amm_pnl_open + (1020.0 - price_close) - 20.0 + paid_funding)
    assert pool.check_invariants() == []


@pytest.mark.parametrize("collateral", list(Collateral))
def test_emergency_is_reached_exactly_when_the_df_cannot_cover_the_shortfall(
    collateral: Collateral,
) -> None:
    """A rally leaves the AMM (short) below its initial margin; the shortfall beyond 95% of
    LP cash + AMM fund is the DF's. A DF just large enough keeps the pool NORMAL, one just too
    small puts it into EMERGENCY."""
    # One quote unit of each collateral (index 1000, S3 2000).
    amounts = {Collateral.QUOTE: 1.0, Collateral.BASE: 1e-3, Collateral.QUANTO: 0.0005}
    unit = amounts[collateral]

    def run(df_scale: float) -> tuple[D8XPool, float]:
        pool, oracle = make_pool(
            collateral, amm_fund=5_000 * unit, lp_cash=5_000 * unit, default_fund=0.0, s3=2000.0
        )
        pool.deposit("whale", 10_000 * unit)
        pool.trade("whale", 30.0)
        oracle.set(1300.0, T0)
        # The shortfall the next rebalance will meet, from the state as it stands.
        st = pool.view_state()
        amm = pool.margin(0)
        need = pool._margin_requirement(st, amm, True, False) - pool._margin_balance(st, amm, False)
        cap = 0.95 * (st.lp_cash + st.amm_fund_cash)
        assert need > cap > 0.0
        df = (need - cap) * df_scale
        pool.fund_default_fund(df)
        pool.update("keeper")
        return pool, need - cap

    normal, gap = run(1.0 + 1e-9)
    assert normal.state.status is Status.NORMAL
    assert normal.state.emergency_shortfall == 0.0
    emergency, gap2 = run(1.0 - 1e-6)
    assert gap2 == pytest.approx(gap)
    assert emergency.state.status is Status.EMERGENCY
    assert emergency.state.default_fund_cash == 0.0
    assert emergency.state.emergency_shortfall == pytest.approx(gap * 1e-6, rel=1e-3)
    for pool in (normal, emergency):
        assert pool.check_invariants() == []


def alice_long_18_then(index: float) -> D8XPool:
    """A pool where alice holds 18 contracts on 2,000 of margin and the index has moved to
    ``index`` a minute later (a liquidator ``liq`` is funded)."""
    pool, oracle = make_pool(amm_fund=50_000.0)
    pool.deposit("alice", 2_000.0)
    pool.deposit("liq", 10.0)
    pool.trade("alice", 18.0)
    oracle.set(index, T0 + 60)
    pool.set_time(T0 + 60)
    return pool


def test_liquidation_restores_initial_margin_and_splits_the_penalty() -> None:
    pool = alice_long_18_then(905.0)
    row = pool.row("alice")
    amount = pool.liquidation_amount(row)
    assert 0.0 < amount < 18.0  # signed like the position
    df_before = pool.state.default_fund_cash
    out = pool.liquidate("liq", "alice", amount)
    assert out["amount"] == pytest.approx(amount)
    assert pool.margin(row).position == pytest.approx(18.0 - amount)
    mark = out["price"]
    penalty = 0.002 * out["amount"] * pool.state.s2
    assert out["penalty_to_liquidator"] == pytest.approx(penalty / 2)
    assert pool.margin(pool.row("liq")).cash == pytest.approx(10.0 + penalty / 2)
    assert (
        pool.state.default_fund_cash >= df_before + penalty / 2 - 1e-9
        or out["insurance_fund_paid"] > 0.0
    )
    st = pool.view_state()
    m = pool.margin(row)
    assert pool._margin_balance(st, m) >= pool._margin_requirement(st, m, initial=False)
    assert mark == pytest.approx(f.mark_price(905.0, pool.state.mark_premium_rate), rel=1e-3)
    assert pool.check_invariants() == []


def test_the_amount_is_the_pools_so_a_bankrupt_position_is_taken_whole() -> None:
    # liquidateByAMM takes no amount: a liquidator asking for one lot of a bankrupt position
    # still has the AMM take all of it (before, the cut was refused and the account stayed).
    pool = alice_long_18_then(800.0)
    row = pool.row("alice")
    st = pool.view_state()
    assert pool._margin_balance(st, pool.margin(row)) < 0.0
    lot = pool.state.governance.lot_size
    out = pool.liquidate("liq", "alice", lot)
    assert out["amount"] == pytest.approx(18.0)
    assert pool.margin(row).position == 0.0
    assert out["loss"] > 0.0
    assert out["insurance_fund_paid"] == 0.0  # LP cash and the AMM fund cover it
    assert pool.check_invariants() == []


def test_a_partial_liquidation_takes_the_pools_amount_whatever_is_asked() -> None:
    pool = alice_long_18_then(905.0)
    amount = pool.liquidation_amount(pool.row("alice"))
    assert 0.0 < amount < 18.0
    lot = pool.state.governance.lot_size
    assert pool.liquidate("liq", "alice", lot)["amount"] == pytest.approx(amount)
    with pytest.raises(LotSizeError):
        pool.liquidate("liq", "alice", 0.5 * lot)  # not on the lot: refused before anything


def test_funding_accrues_continuously_and_longs_pay() -> None:
    pool, _ = make_pool()
    pool.deposit("alice", 10_000.0)
    pool.trade("alice", 5.0)
    rate = pool.state.funding_rate
    assert rate > 0.0  # K2 > 0: at least the +1 bp base term
    pool.set_time(T0 + 4 * 3600)
    st = pool.view_state()
    assert st.unit_accumulated_funding == pytest.approx(rate * 0.5 * 1000.0)
    v = D8XVenue(pool)
    assert v.account("alice").funding_loss == pytest.approx(5.0 * rate * 0.5 * 1000.0)
    assert v.account("amm").funding_loss == pytest.approx(-5.0 * rate * 0.5 * 1000.0)


def test_governance_changes_are_validated() -> None:
    pool, _ = make_pool()
    pool.set_governance("minimal_spread", 0.001)
    assert pool.state.governance.minimal_spread == 0.001
    for key, value in (
        ("maintenance_margin_rate_alpha", 0.07),
        ("no_such_key", 1.0),
        ("sigma2", math.nan),
        ("lot_size", True),
    ):
        with pytest.raises(GovernanceError):
            pool.set_governance(key, value)
    assert pool.state.governance.minimal_spread == 0.001
