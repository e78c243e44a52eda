"""Hypothesis state machines on D8X pools of every collateral currency.

Any mix of deposits, withdrawals, trades, time, index (and S3) moves, keeper updates,
liquidations and liquidity in and out: after each step collateral is conserved across the AMM's
margin account, the AMM fund, LP cash, the default fund and the traders (the treasury fee is
paid into the AMM fund or the DF, so it is inside these), counted against what the machine
itself deposited and withdrew; a refused step changes nothing; and the pool is in EMERGENCY
exactly when a rebalance met a shortfall the DF could not pay.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from perpsim.engine.core.index import SettableOracle
from perpsim.engine.core.status import Status
from perpsim.engine.venues.d8x.formulas import Collateral
from perpsim.engine.venues.d8x.governance import D8XGovernance
from perpsim.engine.venues.d8x.pool import CollateralPrice, D8XPool
from perpsim.errors import EngineError

T0 = 1_700_000_000
TRADERS = ("alice", "bob", "carol")
#: One quote unit in each collateral (index about 1000, S3 about 2000).
UNIT = {Collateral.QUOTE: 1.0, Collateral.BASE: 1e-3, Collateral.QUANTO: 5e-4}

MACHINE = settings(
    max_examples=12,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class PoolMachine(RuleBasedStateMachine):
    """Random operations on a small pool of :attr:`collateral`."""

    collateral: ClassVar[Collateral]

    def __init__(self) -> None:
        super().__init__()
        u = UNIT[self.collateral]
        self.u = u
        self.oracle = SettableOracle(1000.0, T0)
        self.pool = D8XPool(
            D8XGovernance(),
            self.collateral,
            self.oracle,
            CollateralPrice(self.collateral, 2000.0, 0.0),
            T0,
        )
        self.deposited = 0.0
        self.withdrawn = 0.0
        self.do(self.pool.fund_amm, 3_000 * u)
        self.deposited += 3_000 * u
        self.do(self.pool.fund_default_fund, 5_000 * u)
        self.deposited += 5_000 * u
        for name in (*TRADERS, "lp", "liq"):
            self.do(self.pool.deposit, name, 20_000 * u)
            self.deposited += 20_000 * u
        self.do(self.pool.add_liquidity, "lp", 15_000 * u)

    def snapshot(self) -> tuple[Any, ...]:
        p = self.pool
        n = len(p.names)
        return (
            repr(p.state),
            p._pos[:n].tobytes(),
            p._cash[:n].tobytes(),
            p._locked[:n].tobytes(),
            p._fstart[:n].tobytes(),
            tuple(sorted(p.shares.items())),
            tuple(p.names),
        )

    def do(self, op: Any, *args: Any) -> bool:
        before = self.snapshot()
        try:
            op(*args)
        except EngineError:
            assert self.snapshot() == before, f"refused {op.__name__}{args!r} changed state"
            return False
        return True

    @rule(name=st.sampled_from(TRADERS), amount=st.floats(1.0, 20_000.0))
    def deposit(self, name: str, amount: float) -> None:
        if self.do(self.pool.deposit, name, amount * self.u):
            self.deposited += amount * self.u

    @rule(name=st.sampled_from(TRADERS), fraction=st.floats(0.01, 1.2))
    def withdraw(self, name: str, fraction: float) -> None:
        amount = fraction * self.pool.withdrawable(self.pool.row(name))
        if amount > 0.0 and self.do(self.pool.withdraw, name, amount):
            self.withdrawn += amount

    @rule(name=st.sampled_from(TRADERS), size=st.floats(-30.0, 30.0))
    def trade(self, name: str, size: float) -> None:
        k = round(size, 3)
        if k != 0.0:
            self.do(self.pool.trade, name, k)

    @rule(seconds=st.integers(0, 6 * 3600))
    def advance(self, seconds: int) -> None:
        self.pool.set_time(self.pool.state.now + seconds)

    @rule(factor=st.floats(0.85, 1.15))
    def move_index(self, factor: float) -> None:
        price = self.oracle.index(self.pool.state.now)[0] * factor
        self.oracle.set(min(max(price, 300.0), 3000.0), self.pool.state.now)

    @rule(factor=st.floats(0.9, 1.1))
    def move_collateral(self, factor: float) -> None:
        if self.collateral is Collateral.QUANTO:
            self.pool.collateral_price.set(self.pool.collateral_price.price(0.0) * factor)

    @rule()
    def update(self) -> None:
        self.do(self.pool.update, "liq")

    @rule()
    def liquidate(self) -> None:
        for row in self.pool.unsafe_rows().tolist():
            amount = abs(self.pool.liquidation_amount(row))
            if amount:
                self.do(self.pool.liquidate, "liq", row, amount)

    @rule(fraction=st.floats(0.01, 1.0))
    def lp_in(self, fraction: float) -> None:
        amount = fraction * self.pool.withdrawable(self.pool.row("lp"))
        if amount > 0.0:
            self.do(self.pool.add_liquidity, "lp", amount)

    @rule(fraction=st.floats(0.01, 1.0))
    def lp_out(self, fraction: float) -> None:
        held = self.pool.shares.get("lp", 0.0)
        if held:
            self.do(self.pool.remove_liquidity, "lp", fraction * held)

    @invariant()
    def collateral_is_conserved(self) -> None:
        p = self.pool
        st_ = p.state
        assert p.check_invariants() == []
        held = math.fsum(p.margin_balances().tolist()) + (
            st_.amm_fund_cash + st_.lp_cash + st_.default_fund_cash
        )
        expected = self.deposited - self.withdrawn
        assert held == pytest.approx(expected, rel=1e-9, abs=1e-9 * self.u)

    @invariant()
    def emergency_exactly_when_the_df_could_not_pay(self) -> None:
        st_ = self.pool.state
        assert (st_.status is Status.EMERGENCY) == (st_.emergency_shortfall > 0.0)
        if st_.status is Status.EMERGENCY:
            assert st_.default_fund_cash == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("collateral", list(Collateral), ids=lambda c: c.value)
def test_collateral_is_conserved_in_every_collateral_currency(collateral: Collateral) -> None:
    machine = type(f"PoolMachine_{collateral.value}", (PoolMachine,), {"collateral": collateral})
    run_state_machine_as_test(machine, settings=MACHINE)
