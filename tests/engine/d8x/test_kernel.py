"""The compiled trade probe gives the Python probe's floats, and its errors.

``D8XPool.trade_probe`` prices a trade after a whole trade of ``k`` booked on a working copy.
The compiled probe (``perpsim.engine.venues.d8x.kernel``) does the same float operations in
the same order, and hands over to the Python probe wherever that one raises. These tests make
pools of every collateral, with the governance's switches (pricing capital, incentive spread,
default fund target updates) and random trades, time and index moves, then ask both probes the
same questions: every answer must be the same float (``repr``) or the same exception type.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpsim.engine.core.index import SettableOracle
from perpsim.engine.venues.d8x import kernel
from perpsim.engine.venues.d8x.formulas import Collateral
from perpsim.engine.venues.d8x.governance import D8XGovernance
from perpsim.engine.venues.d8x.pool import CollateralPrice, D8XPool
from perpsim.errors import EngineError

T0 = 1_700_000_000
TRADERS = ("alice", "bob", "carol")


def make_pool(collateral: Collateral, governance: D8XGovernance, fund: float) -> D8XPool:
    oracle = SettableOracle(1000.0, T0)
    pool = D8XPool(governance, collateral, oracle, CollateralPrice(collateral, 2000.0, 0.5), T0)
    u = 1.0 if collateral is Collateral.QUOTE else 1e-3
    pool.fund_amm(fund * u)
    pool.fund_default_fund(20_000.0 * u)
    for name in (*TRADERS, "lp"):
        pool.deposit(name, 50_000.0 * u)
    pool.add_liquidity("lp", 40_000.0 * u)
    return pool


def answer(probe: Any, k: float) -> tuple[str, str]:
    try:
        return "value", repr(probe(k))
    except (ValueError, ArithmeticError) as err:
        return "raises", type(err).__name__


def both_probes(pool: D8XPool, next_trade: float) -> tuple[Any, Any]:
    """The Python probe and the compiled one, on the same prepared working copy."""
    try:
        D8XPool.compiled_kernels = False
        python = pool.trade_probe(next_trade)
    finally:
        D8XPool.compiled_kernels = True
    return python, pool.trade_probe(next_trade)


governances = st.builds(
    dict,
    pricing_capital=st.sampled_from(["amm_fund", "pool"]),
    pricing_lp_share=st.sampled_from([0.0, 0.3, 1.0]),
    incentive_spread=st.sampled_from([0.0, 0.002]),
    minimal_spread=st.sampled_from([0.0, 0.0005]),
    default_fund_target_interval=st.sampled_from([0.0, 28_800.0]),
    sigma2=st.sampled_from([0.05, 0.3]),
    rho23=st.sampled_from([-0.5, 0.1]),
)
#: A step before the questions: a trade (lots or contracts, signed), time, an index move.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("trade"), st.integers(-400, 400).filter(lambda n: abs(n) >= 10)),
        # Contracts, not lots: enough exposure for the AMM fund target to matter.
        st.tuples(st.just("contracts"), st.sampled_from([-40.0, -4.0, -0.4, 0.4, 4.0, 40.0])),
        st.tuples(st.just("time"), st.integers(1, 40_000)),
        st.tuples(st.just("index"), st.floats(0.9, 1.1)),
    ),
    max_size=12,
)
#: The trades asked about, in lots (0: the mid price after a trade of nothing).
sizes = st.lists(
    st.one_of(
        st.just(0.0),
        st.floats(-1e6, 1e6, allow_nan=False),
        st.sampled_from([1e-12, -1e-12, 1e9, -1e9, 1e15]),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(
    collateral=st.sampled_from(list(Collateral)),
    g=governances,
    fund=st.sampled_from([1.0, 5_000.0, 200_000.0]),
    before=steps,
    asked=sizes,
)
def test_the_compiled_probe_answers_as_the_python_probe(
    collateral: Collateral,
    g: dict[str, Any],
    fund: float,
    before: list[tuple[str, Any]],
    asked: list[float],
) -> None:
    pool = make_pool(collateral, D8XGovernance(**g), fund)
    lot = pool.state.governance.lot_size
    oracle = pool.oracle
    assert isinstance(oracle, SettableOracle)
    for i, (kind, value) in enumerate(before):
        try:
            if kind == "trade":
                pool.trade(TRADERS[i % 3], value * lot)
            elif kind == "contracts":
                pool.trade(TRADERS[i % 3], value)
            elif kind == "time":
                pool.set_time(pool.state.now + value)
            else:
                oracle.set(oracle.index(pool.state.now)[0] * value, pool.state.now)
        except EngineError:
            pass  # a refused trade changes nothing
    for next_trade in (0.0, lot, -lot):
        python, compiled = both_probes(pool, next_trade)
        for k in asked:
            assert answer(compiled, k * lot) == answer(python, k * lot), (k, next_trade)


def test_where_the_python_probe_raises_the_compiled_one_raises_the_same() -> None:
    """A quanto pool whose AMM fund went negative: the default probability divides by it."""
    pool = make_pool(Collateral.QUANTO, D8XGovernance(), 5_000.0)
    pool.trade("alice", 50 * pool.state.governance.lot_size)
    pool.state.amm_fund_cash = -1.0  # written in place: no action does this
    python, compiled = both_probes(pool, 0.0)
    assert answer(python, 0.01) == ("raises", "ValueError")
    assert answer(compiled, 0.01) == answer(python, 0.01)


def test_the_compiled_probe_is_the_one_answering(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test above has teeth only if the compiled probe answers: count its answers."""
    pool = make_pool(Collateral.QUOTE, D8XGovernance(), 5_000.0)
    calls: list[int] = []
    inner = kernel.probe_price

    def counting(k: float, next_trade: float, x: Any) -> tuple[int, float]:
        code, price = inner(k, next_trade, x)
        calls.append(code)
        return code, price

    monkeypatch.setattr(kernel, "probe_price", counting)
    probe = pool.trade_probe(pool.state.governance.lot_size)
    for n in range(1, 20):
        probe(n * 10.0 * pool.state.governance.lot_size)
    assert calls == [kernel.OK] * 19


def test_the_inputs_are_named_in_order() -> None:
    pool = make_pool(Collateral.BASE, D8XGovernance(), 5_000.0)
    x = pool._kernel_inputs(pool._prepared_trade(), pool._prepared_trade().st)
    assert len(x) == len(kernel.INPUTS)
    named = dict(zip(kernel.INPUTS, x.tolist(), strict=True))
    st_ = pool._prepared_trade().st
    assert named["collateral"] == 1.0 and named["s2"] == st_.s2
    assert named["lot_size"] == st_.governance.lot_size
    assert named["mark_price_ema_lambda"] == st_.governance.mark_price_ema_lambda


def rebalanced(pool: D8XPool, compiled: bool) -> tuple[str, str]:
    """The pool's working copy after one rebalance, compiled or in Python (state unchanged)."""
    txn = pool._begin()
    try:
        D8XPool.compiled_kernels = compiled
        try:
            pool._rebalance(txn)
        except (ValueError, ArithmeticError) as err:
            return "raises", type(err).__name__
    finally:
        D8XPool.compiled_kernels = True
    return repr(txn.st), repr(sorted(txn.rows.items()))


@settings(max_examples=150, deadline=None)
@given(
    collateral=st.sampled_from(list(Collateral)),
    g=governances,
    fund=st.sampled_from([1.0, 5_000.0, 200_000.0]),
    before=steps,
    cash=st.sampled_from([None, 0.0, -1e4, 1e4, 1e7]),
    extra=st.sampled_from([0.0, 1e-3, 1.0, 50.0, -1.0, -50.0]),
)
def test_the_compiled_rebalance_leaves_the_python_rebalances_state(
    collateral: Collateral,
    g: dict[str, Any],
    fund: float,
    before: list[tuple[str, Any]],
    cash: float | None,
    extra: float,
) -> None:
    pool = make_pool(collateral, D8XGovernance(**g), fund)
    lot = pool.state.governance.lot_size
    oracle = pool.oracle
    assert isinstance(oracle, SettableOracle)
    for i, (kind, value) in enumerate(before):
        try:
            if kind == "trade":
                pool.trade(TRADERS[i % 3], value * lot)
            elif kind == "contracts":
                pool.trade(TRADERS[i % 3], value)
            elif kind == "time":
                pool.set_time(pool.state.now + value)
            else:
                oracle.set(oracle.index(pool.state.now)[0] * value, pool.state.now)
        except EngineError:
            pass
    if cash is not None:
        pool._cash[0] = cash  # the AMM's margin far above or below what it needs
    pool._cash[0] += extra  # or a little off: a small excess, a small need
    assert rebalanced(pool, True) == rebalanced(pool, False)


def test_a_rebalance_the_default_fund_cannot_cover_falls_back_to_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The EMERGENCY path is the Python rebalance's (it records the event): the compiled one
    hands over, and the two working copies agree."""
    pool = make_pool(Collateral.QUOTE, D8XGovernance(), 1.0)
    pool.trade("alice", 300 * pool.state.governance.lot_size)
    pool._cash[0] = -1e9
    codes: list[int] = []
    inner = kernel.rebalance

    def counting(*args: Any) -> Any:
        out = inner(*args)
        codes.append(out[0])
        return out

    monkeypatch.setattr(kernel, "rebalance", counting)
    assert rebalanced(pool, True) == rebalanced(pool, False)
    assert codes == [kernel.FALL_BACK]
    txn = pool._begin()
    pool._rebalance(txn)
    assert txn.events and txn.events[-1][0] == "emergency"
