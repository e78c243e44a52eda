"""Predy's market under hypothesis-generated sequences: trades on both products, LP flows,
spot moves, time, funding, variance snapshots, hedges and liquidations.

After every step the books balance (``check_invariants()``: what the vaults and the pool are
worth at the marks, less the underlying held, is the USDC that crossed the boundary); a refused
operation changed nothing; a deposit or withdrawal of liquidity leaves the LP token price as it
was (the spread guard off; the tolerance covers the funding integral's dependence on ΔL); the
funding the pool receives is what the positions pay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from perpsim.engine.core.index import SettableOracle
from perpsim.engine.venues.predy.config import PredyParams
from perpsim.engine.venues.predy.formulas import FUTURE, SQUARED
from perpsim.engine.venues.predy.pool import PredyMarket
from perpsim.errors import EngineError

TRADERS = ("alice", "bob", "carol")
SEQUENCES = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class PredyMachine(RuleBasedStateMachine):
    """Random operations on a fresh market (of :attr:`formula`)."""

    formula = "seed"

    def __init__(self) -> None:
        super().__init__()
        self.oracle = SettableOracle(1000.0, 0)
        self.m = PredyMarket(
            PredyParams(spread_window=0.0), self.oracle, funding_formula=self.formula
        )
        self.m.initialize("lp", 2_000_000.0, 0.002, from_vault=False)
        for name in TRADERS:
            self.m.deposit_margin(name, 50_000.0)
        self.m.deposit_margin("keeper", 1.0)

    def snapshot(self) -> str:
        m = self.m
        return repr((m.state, [a.tobytes() for a in m.vaults.view()], m.shares, m.flows, m.now))

    def attempt(self, op: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, Any]:
        before = self.snapshot()
        try:
            return True, op(*args, **kwargs)
        except EngineError:
            assert self.snapshot() == before, f"refused {op.__name__}{args!r} changed state"
            return False, None

    @rule(
        who=st.sampled_from(TRADERS),
        product=st.sampled_from([FUTURE, SQUARED]),
        amount=st.floats(-60.0, 60.0).filter(lambda x: abs(x) > 1e-3),
    )
    def trade(self, who: str, product: int, amount: float) -> None:
        a = round(amount, 6)
        self.attempt(self.m.trade, who, (a, 0.0) if product == FUTURE else (0.0, a))

    @rule(factor=st.floats(0.85, 1.15))
    def move_spot(self, factor: float) -> None:
        price = self.oracle.index(self.m.now)[0] * factor
        self.oracle.set(min(max(price, 400.0), 2500.0), self.m.now)

    @rule(seconds=st.integers(1, 18 * 3600))
    def advance(self, seconds: int) -> None:
        self.m.set_time(self.m.now + seconds)

    @rule()
    def accrue_funding(self) -> None:
        st_ = self.m.state
        received = sum(st_.funding_received)
        liquidity = st_.amount_liquidity
        _, pos, _, _ = self.m.vaults.view()
        positions = (float(pos[:, 0].sum()), float(pos[:, 1].sum()))
        ok, per = self.attempt(self.m.accrue_funding)
        if ok:
            paid = per[0] * positions[0] + per[1] * positions[1]
            got = sum(self.m.state.funding_received) - received
            assert got == pytest.approx(paid, rel=1e-9, abs=1e-9)
            assert self.m.state.amount_liquidity - liquidity == pytest.approx(got, abs=1e-6)

    @rule()
    def update_variance(self) -> None:
        self.attempt(self.m.update_variance)

    @rule()
    def hedge(self) -> None:
        self.attempt(self.m.hedge, "hedger")

    @rule(amount=st.floats(1_000.0, 500_000.0))
    def add_liquidity(self, amount: float) -> None:
        self.lp_flow(self.m.add_liquidity, "new_lp", amount, from_vault=False)

    @rule(fraction=st.floats(0.01, 1.0))
    def remove_liquidity(self, fraction: float) -> None:
        held = self.m.shares.get("new_lp", 0.0)
        if held > 0.0:
            amount = fraction * held * self.m.lp_token_price()
            self.lp_flow(self.m.remove_liquidity, "new_lp", amount, to_vault=False)

    def lp_flow(self, op: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        # Funding is paid first by the operation: compare with the price after that payment.
        self.m.accrue_funding()
        before = self.m.lp_token_price()
        ok, _ = self.attempt(op, *args, **kwargs)
        if ok and self.m.state.supply > 0.0:
            assert self.m.lp_token_price() == pytest.approx(before, rel=1e-4)

    @rule()
    def liquidate(self) -> None:
        m = self.m
        for name in TRADERS:
            v = m.vaults.read(m.vaults.row(name))
            if m.is_liquidatable(v):
                ok, _ = self.attempt(m.liquidate, "keeper", name)
                if ok:
                    assert m.vaults.read(m.vaults.row(name)).position == (0.0, 0.0)

    @invariant()
    def books_balance(self) -> None:
        assert self.m.check_invariants() == []


class MainnetMachine(PredyMachine):
    formula = "mainnet"


@pytest.mark.slow
@pytest.mark.parametrize("machine", [PredyMachine, MainnetMachine], ids=["seed", "mainnet"])
def test_predy_invariants_under_random_sequences(machine: type[PredyMachine]) -> None:
    run_state_machine_as_test(machine, settings=SEQUENCES)
