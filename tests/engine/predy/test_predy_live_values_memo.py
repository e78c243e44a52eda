"""The live vaults' values and MinCollaterals are kept between the scans of a tick, exactly.

``PredyMarket.live_values_and_min_collaterals`` keeps its last answer under the vaults' write
count, the marks, the funding, the spot, the funding rates and the parameters: the unsafe scan,
the accounting check and the time-series row of a tick in which nothing was written in between
compute one pass instead of three. These tests check the kept answer against a pass computed
afresh after every kind of change (bit for bit), that it is used when nothing changed, and that
nobody can write into it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpsim.engine.core.index import SettableOracle
from perpsim.engine.venues.predy.config import PredyParams
from perpsim.engine.venues.predy.pool import PredyMarket
from perpsim.engine.venues.predy.venue import PredyVenue
from perpsim.errors import EngineError

T0 = 1_700_000_000
NAMES = [f"v{k}" for k in range(6)]


def fresh_pass(m: PredyMarket) -> tuple[list[int], bytes, bytes, list[bool]]:
    """The live rows' values, MinCollaterals and positions computed now, nothing kept."""
    rows, usdc, pos, entry, efund = m.vaults.live_view()
    if not len(rows):
        return [], b"", b"", []
    values, mcs, has = m._values_and_mcs(usdc, pos, entry, efund)
    whole_values, whole_mcs = m.values_and_min_collaterals()
    assert values.tobytes() == whole_values[rows].tobytes()
    assert mcs.tobytes() == whole_mcs[rows].tobytes()
    return rows.tolist(), values.tobytes(), mcs.tobytes(), has.tolist()


def kept_pass(m: PredyMarket) -> tuple[list[int], bytes, bytes, list[bool]]:
    rows, values, mcs, has = m.live_values_and_min_collaterals()
    return rows.tolist(), values.tobytes(), mcs.tobytes(), has.tolist()


def new_market() -> tuple[PredyMarket, SettableOracle]:
    oracle = SettableOracle(1000.0, T0)
    m = PredyMarket(PredyParams(), oracle, capacity=2)  # the arrays grow during the test
    m.set_time(T0)
    m.initialize("lp", 5_000_000.0, 0.0016, from_vault=False)
    return m, oracle


def traded_market() -> tuple[PredyMarket, SettableOracle]:
    m, oracle = new_market()
    for k, name in enumerate(NAMES):
        m.deposit_margin(name, 3_000.0)
        m.trade(name, (float(k % 3) + 1.0, 0.0) if k % 2 else (0.0, -float(k) - 1.0))
    return m, oracle


operation = st.one_of(
    st.tuples(st.just("deposit"), st.integers(0, 5), st.floats(10.0, 5_000.0)),
    st.tuples(
        st.just("trade"),
        st.integers(0, 5),
        st.sampled_from([0.0, 1.0, -2.0, 5.0]),
        st.sampled_from([0.0, 1.0, -3.0]),
    ),
    st.tuples(st.just("close"), st.integers(0, 5)),
    st.tuples(st.just("withdraw"), st.integers(0, 5), st.floats(0.1, 1.0)),
    st.tuples(st.just("time"), st.integers(0, 7_200)),
    st.tuples(st.just("index"), st.floats(0.8, 1.25)),
    st.tuples(
        st.just("params"),
        st.sampled_from(["vault_risk_param", "min_margin"]),
        st.floats(0.01, 0.3),
    ),
    st.tuples(st.just("liquidate"), st.integers(0, 5)),
    st.tuples(st.just("variance")),
    st.tuples(st.just("hedge")),
)


def apply(m: PredyMarket, oracle: SettableOracle, op: tuple[Any, ...]) -> None:
    kind = op[0]
    try:
        if kind == "deposit":
            m.deposit_margin(NAMES[int(op[1])], float(op[2]))
        elif kind == "trade":
            m.trade(NAMES[int(op[1])], (float(op[2]), float(op[3])))
        elif kind == "close":
            name = NAMES[int(op[1])]
            q = m.vaults.read(m.vaults.row(name)).position
            if q != (0.0, 0.0):
                m.trade(name, (-q[0], -q[1]))
        elif kind == "withdraw":
            name = NAMES[int(op[1])]
            m.withdraw_margin(name, m.withdrawable(m.vaults.read(m.vaults.row(name))) * op[2])
        elif kind == "time":
            m.set_time(m.now + int(op[1]))
            oracle.set(oracle.index(m.now)[0], m.now)
        elif kind == "index":
            oracle.set(oracle.index(m.now)[0] * float(op[1]), m.now)
        elif kind == "params":
            key, x = str(op[1]), float(op[2])
            m.set_params(key, x if key == "vault_risk_param" else x * 2_000.0)
        elif kind == "liquidate":
            m.liquidate("lp", NAMES[int(op[1])])
        elif kind == "variance":
            m.update_variance()
        else:
            m.hedge("lp")
    except EngineError:
        pass  # a rejected operation changes nothing; the pass is compared all the same


@settings(max_examples=120, deadline=None)
@given(st.lists(operation, min_size=1, max_size=30))
def test_the_kept_pass_is_the_pass_computed_afresh_after_any_change(
    ops: list[tuple[Any, ...]],
) -> None:
    m, oracle = traded_market()  # every vault holds a position to begin with
    for op in ops:
        assert kept_pass(m) == fresh_pass(m)  # keeps an answer from before the operation
        apply(m, oracle, op)
        assert kept_pass(m) == fresh_pass(m), op
        assert kept_pass(m) == fresh_pass(m)  # asked again: the kept answer, still right


def test_nothing_changed_no_second_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asked again on an unchanged market, no pass; after a write, an index move or a new
    parameter, a new one (the test has teeth: it counts the passes)."""
    m, oracle = traded_market()
    passes: list[int] = []
    inner = PredyMarket._values_and_mcs_at

    def counting(self: PredyMarket, usdc: np.ndarray, *rest: Any) -> object:
        passes.append(len(usdc))
        return inner(self, usdc, *rest)

    monkeypatch.setattr(PredyMarket, "_values_and_mcs_at", counting)
    venue = PredyVenue(m)
    first = m.live_values_and_min_collaterals()
    venue.liquidatable_accounts()
    venue.observe()
    assert venue.check_changed_invariants() == []
    assert m.live_values_and_min_collaterals() is first
    assert len(passes) == 1

    def later() -> None:
        m.set_time(m.now + 600)
        oracle.set(990.0, m.now)

    changes: list[Callable[[], object]] = [
        lambda: m.deposit_margin(NAMES[0], 1.0),
        lambda: oracle.set(990.0, m.now),
        lambda: m.set_params("min_margin", 150.0),
        later,
        lambda: m.trade(NAMES[1], (1.0, 0.0)),
    ]
    for change in changes:
        passes.clear()
        change()
        assert m.live_values_and_min_collaterals() is not first
        first = m.live_values_and_min_collaterals()
        assert len(passes) == 1
        assert kept_pass(m) == fresh_pass(m)


def test_the_kept_arrays_cannot_be_written() -> None:
    m, _ = traded_market()
    _, values, mcs, has = m.live_values_and_min_collaterals()
    for array in (values, mcs, has):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = array[0]
