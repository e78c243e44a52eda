"""The hot paths of a Predy run give the general code's floats, bit for bit.

The 10,000-trader benchmark spends most of Predy's time in a few reads: account views (the
noise traders' and the arbitrageurs'), the LP token price (the LP agents read it every tick),
the funding rates under every mark, and the live vaults' rows. Each is computed once per
operation or kept under an exact key of what it reads; these tests drive random operation
sequences (trades in both products, deposits, withdrawals, liquidations, hedges, LP deposits
and withdrawals, time and index moves, new parameters, settlement) and compare every fast
answer with the general code's after each operation, as the float's bytes.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpsim.engine.core.index import SettableOracle
from perpsim.engine.core.status import Status
from perpsim.engine.venue import AccountView
from perpsim.engine.venues.predy.config import PredyParams
from perpsim.engine.venues.predy.formulas import SpreadInfo
from perpsim.engine.venues.predy.pool import (
    FLAT_VAULT,
    POOL,
    PoolState,
    PredyMarket,
    VaultRow,
    Vaults,
)
from perpsim.engine.venues.predy.venue import PredyVenue
from perpsim.errors import EngineError

T0 = 1_700_000_000
NAMES = [f"v{k}" for k in range(5)]
FORMULAS = ["seed", "mainnet"]


def bits(x: object) -> object:
    """A float as its bytes (0.0 and −0.0 differ), anything else as itself."""
    return struct.pack("<d", x) if isinstance(x, float) else x


def view_bits(view: AccountView) -> tuple[object, ...]:
    return tuple(bits(x) for x in dataclasses.astuple(view))


def new_market(formula: str = "seed") -> tuple[PredyMarket, SettableOracle]:
    """An initialised pool, two LPs (one with a vault) and vaults in both products."""
    oracle = SettableOracle(1000.0, T0)
    m = PredyMarket(PredyParams(), oracle, funding_formula=formula, capacity=2)
    m.set_time(T0)
    m.initialize("lp", 5_000_000.0, 0.0016, from_vault=False)
    m.deposit_margin("lp2", 200_000.0)
    m.add_liquidity("lp2", 100_000.0, from_vault=True)
    for k, name in enumerate(NAMES):
        m.deposit_margin(name, 4_000.0)
        m.trade(name, (float(k % 3) + 1.0, 0.0) if k % 2 else (0.0, -float(k) - 1.0))
    return m, oracle


operation = st.one_of(
    st.tuples(st.just("deposit"), st.integers(0, 4), st.floats(10.0, 5_000.0)),
    st.tuples(
        st.just("trade"),
        st.integers(0, 4),
        st.sampled_from([0.0, 1.0, -2.0, 5.0]),
        st.sampled_from([0.0, 1.0, -3.0]),
    ),
    st.tuples(st.just("close"), st.integers(0, 4)),
    st.tuples(st.just("withdraw"), st.integers(0, 4), st.floats(0.1, 1.0)),
    st.tuples(st.just("time"), st.sampled_from([0, 1, 3, 60, 7_200, 50_000])),
    st.tuples(st.just("index"), st.floats(0.7, 1.3)),
    st.tuples(
        st.just("params"),
        st.sampled_from(
            [
                "vault_risk_param",
                "min_margin",
                "squared_perp_funding_multiplier",
                "perp_future_max_funding_rate",
                "base_funding_rate",
                "pool_margin_risk_param",
                "trade_fee_rate",
                "spread_window",
            ]
        ),
        st.floats(0.0, 1.0),
    ),
    st.tuples(st.just("liquidate"), st.integers(0, 4)),
    st.tuples(st.just("variance")),
    st.tuples(st.just("hedge")),
    st.tuples(st.just("add_liquidity"), st.floats(1_000.0, 50_000.0)),
    st.tuples(st.just("remove_liquidity"), st.floats(0.05, 1.0)),
    st.tuples(st.just("settle")),
)


def param_value(key: str, x: float) -> float:
    """A valid value of parameter ``key`` from ``x`` in [0, 1]."""
    scale = {
        "vault_risk_param": (0.01, 0.3),
        "min_margin": (0.0, 600.0),
        "squared_perp_funding_multiplier": (0.0, 10.0),
        "perp_future_max_funding_rate": (0.0, 0.01),
        "base_funding_rate": (-0.005, 0.005),
        "pool_margin_risk_param": (0.1, 2.0),
        "trade_fee_rate": (0.0002, 0.002),
        "spread_window": (0.0, 60.0),
    }[key]
    return scale[0] + x * (scale[1] - scale[0])


def apply(m: PredyMarket, oracle: SettableOracle, op: tuple[Any, ...]) -> None:
    """One operation; a rejected one changes nothing and is passed over."""
    kind = op[0]
    venue = PredyVenue(m)
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
        elif kind == "index":
            oracle.set(oracle.index(m.now)[0] * float(op[1]), m.now)
        elif kind == "params":
            key = str(op[1])
            m.set_params(key, param_value(key, float(op[2])))
        elif kind == "liquidate":
            m.liquidate("lp2", NAMES[int(op[1])])
        elif kind == "variance":
            m.update_variance()
        elif kind == "hedge":
            m.hedge("lp2")
        elif kind == "add_liquidity":
            m.add_liquidity("lp2", float(op[1]), from_vault=True)
        elif kind == "remove_liquidity":
            venue.remove_liquidity("lp2", venue.share_balance("lp2") * float(op[1]))
        elif m.status is Status.NORMAL:
            venue.begin_global_settlement(venue.index_price() * 0.9)
        elif m.status is Status.EMERGENCY:
            m.global_settled()
        else:
            m.settle(NAMES[0])
    except EngineError:
        pass


# -- account views: the spot, the rates and the funding read once per view ---------------------


def reference_view(venue: PredyVenue, account: str) -> AccountView:
    """``PredyVenue.account`` as it was written: every part read through its own call."""
    m = venue.market
    v = m.vaults.read(m.vaults.row(account))
    i = venue.i
    marks = m.marks()
    value = m.vault_value(v, marks, m.funding_now())
    mc = m.vault_min_collateral(v)
    q = v.position[i]
    side = "long" if q > 0.0 else ("short" if q < 0.0 else "flat")
    funding = q * (m.funding_now()[i] - v.entry_funding[i])
    pnl = q * (marks[i] - v.entry[i])
    im = 2.0 * mc
    unsafe = value < mc and v.position != (0.0, 0.0)
    return AccountView(
        cash_balance=v.usdc,
        position_side=side,
        position_size=abs(q),
        entry_value=abs(q) * v.entry[i],
        entry_social_loss=0.0,
        entry_funding_loss=abs(q) * v.entry_funding[i],
        price=marks[i],
        pnl1=pnl,
        social_loss=0.0,
        funding_loss=funding,
        pnl2=pnl - funding,
        margin_balance=value,
        position_margin=im,
        maintenance_margin=mc,
        available_margin=value - im,
        withdrawable_balance=m.withdrawable(v),
        is_safe=not unsafe,
        is_im_safe=value >= im,
        is_bankrupt=value < 0.0,
        # The general path: the bisection reads the spot, the rates and the funding itself
        # (tests/engine/predy/test_predy_fast_paths.py checks it against the code as written).
        estimated_liquidation_price=venue._liquidation_price(v),
        liquidation_amount=abs(q) if unsafe else 0.0,
        avg_entry_price=v.entry[i] if q != 0.0 else 0.0,
    )


def check_views(m: PredyMarket) -> None:
    for product in ("future", "squared"):
        venue = PredyVenue(m, product)
        for name in [*NAMES, "lp2"]:
            got, want = venue.account(name), reference_view(venue, name)
            assert view_bits(got) == view_bits(want), (product, name)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(FORMULAS), st.lists(operation, min_size=1, max_size=25))
def test_account_views_are_the_views_read_part_by_part(
    formula: str, ops: list[tuple[Any, ...]]
) -> None:
    m, oracle = new_market(formula)
    check_views(m)
    for op in ops:
        apply(m, oracle, op)
        check_views(m)


def test_account_views_before_initialisation_and_after_settlement() -> None:
    """No liquidity yet (the base rates), then the emergency and settled statuses."""
    oracle = SettableOracle(1000.0, T0)
    m = PredyMarket(PredyParams(), oracle)
    m.set_time(T0)
    m.deposit_margin(NAMES[0], 1_000.0)
    venue = PredyVenue(m)
    assert view_bits(venue.account(NAMES[0])) == view_bits(reference_view(venue, NAMES[0]))
    m, oracle = new_market()
    m.set_time(T0 + 3_600)
    seen = set()
    for _ in range(3):
        check_views(m)
        seen.add(m.status)
        apply(m, oracle, ("settle",))
    assert seen == {Status.NORMAL, Status.EMERGENCY, Status.SETTLED}
    # The pool's own view is unchanged by the fast path (it has its own).
    assert PredyVenue(m).account(POOL).position_side in ("long", "short", "flat")


# -- the LP token price, kept under the pool state, the time, the spot and the parameters ------


def fresh_share_price(m: PredyMarket) -> float:
    """``PredyVenue.share_price`` as it was written: nothing kept."""
    if m.state.supply <= 0.0:
        return 0.0
    return m.lp_token_price(0.0)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(FORMULAS), st.lists(operation, min_size=1, max_size=25))
def test_the_kept_share_price_is_the_price_computed_afresh(
    formula: str, ops: list[tuple[Any, ...]]
) -> None:
    m, oracle = new_market(formula)
    venue = PredyVenue(m)
    for op in ops:
        assert bits(venue.share_price()) == bits(fresh_share_price(m))
        apply(m, oracle, op)
        assert bits(venue.share_price()) == bits(fresh_share_price(m)), op
        assert bits(venue.share_price()) == bits(fresh_share_price(m))  # kept, still right


def counting_lp_prices(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Count the LP token prices computed (the kept answer computes none)."""
    calls: list[float] = []
    inner = PredyMarket.lp_token_price

    def counting(self: PredyMarket, delta: float = 0.0, st_: PoolState | None = None) -> float:
        calls.append(delta)
        return inner(self, delta, st_)

    monkeypatch.setattr(PredyMarket, "lp_token_price", counting)
    return calls


def spread_market() -> tuple[PredyMarket, SettableOracle]:
    """A pool whose close price is held by its spread guard (a fill a second ago): the price
    moves with the time alone."""
    m, oracle = new_market()
    m.set_params("spread_window", 60.0)
    m.set_time(m.now + 1)
    m.trade(NAMES[0], (-20.0, 0.0))
    m.trade(NAMES[1], (0.0, 5.0))
    return m, oracle


def perturbed(value: Any) -> Any:
    """Another value of a pool state's field (each bound of a spread guard moved apart)."""
    if isinstance(value, SpreadInfo):
        return value._replace(
            min_long_price=value.min_long_price * 0.99, max_short_price=value.max_short_price * 1.01
        )
    if isinstance(value, tuple) and isinstance(value[0], SpreadInfo):
        return tuple(perturbed(x) for x in value)
    if isinstance(value, tuple):
        return (value[0] * 1.01 + 1.0, value[1] * 1.01 - 1.0)
    if isinstance(value, int):
        return value - 7
    return value * 1.01 + 1.0


def test_share_price_is_kept_until_something_it_reads_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m, oracle = spread_market()
    venue = PredyVenue(m)
    calls = counting_lp_prices(monkeypatch)
    first = venue.share_price()
    assert venue.share_price() == first and venue.observe()["lp_share_price"] == first
    assert len(calls) == 1  # asked three times, computed once

    def step(change: Callable[[], object], *, moves: bool, recomputes: bool | None = None) -> None:
        before = venue.share_price()
        calls.clear()
        change()
        got = venue.share_price()
        assert bits(got) == bits(fresh_share_price(m))
        if moves:  # the change moved the price: the kept answer would have failed here
            assert bits(got) != bits(before)
        venue.share_price()
        # A change of what the price reads computes it once more (then keeps it); a field it
        # does not read leaves the kept answer in use (the fresh one is the only call).
        assert calls.count(0.0) == (2 if (moves if recomputes is None else recomputes) else 1)

    # Every field of the pool state, on its own: those the price reads move it.
    reads = {
        "amount_liquidity",
        "supply",
        "locked",
        "position",
        "entry",
        "variance",
        "amounts_usdc",
        "amount_underlying",
        "spread",
    }
    for f in dataclasses.fields(PoolState):
        value = getattr(m.state, f.name)
        step(lambda n=f.name, x=value: setattr(m.state, n, perturbed(x)), moves=f.name in reads)
    step(lambda: m.set_time(m.now + 4), moves=True)  # the spread guard relaxes
    step(lambda: oracle.set(990.0, m.now), moves=True)
    step(lambda: m.set_params("pool_margin_risk_param", 0.7), moves=True)
    step(lambda: setattr(m, "funding_formula", "mainnet"), moves=True)
    step(lambda: m.trade(NAMES[2], (3.0, 0.0)), moves=True)
    # Settlement at the spot itself: the status is part of the key (nothing but the settled
    # price reads it today, so the price stays); then at another spot.
    step(lambda: venue.begin_global_settlement(venue.index_price()), moves=False, recomputes=True)
    step(lambda: m.set_time(m.now + 4), moves=False, recomputes=True)
    m.settlement_spot = 950.0
    assert bits(venue.share_price()) == bits(fresh_share_price(m)) != bits(first)
    m.global_settled()
    assert bits(venue.share_price()) == bits(m.settled_equity / m.state.supply)


def test_no_lp_tokens_no_price() -> None:
    oracle = SettableOracle(1000.0, T0)
    m = PredyMarket(PredyParams(), oracle)
    assert PredyVenue(m).share_price() == 0.0
    m, _ = new_market()
    venue = PredyVenue(m)
    assert venue.share_price() > 0.0
    m.state.supply = 0.0
    assert venue.share_price() == 0.0


def test_spot_zero_is_never_kept() -> None:
    """0.0 equals −0.0: a zero spot (or any key float that is 0) is recomputed, not kept."""
    from perpsim.engine.venues.predy import pool

    assert pool._same_float(1.5, 1.5) and not pool._same_float(0.0, 0.0)
    assert not pool._same_float(0.0, -0.0) and not pool._same_float(np.nan, np.nan)


# -- the live rows, brought up to date at each read --------------------------------------------


def whole_live_rows(v: Vaults) -> list[int]:
    usdc, pos, _, _ = v.view()
    return np.flatnonzero((usdc != 0.0) | (pos != 0.0).any(axis=1)).tolist()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 11),
            st.sampled_from([0.0, -0.0, 1.5]),
            st.sampled_from([0.0, -0.0, 3.0]),
            st.sampled_from([0.0, -1.0]),
            st.booleans(),
        ),
        max_size=60,
    )
)
def test_live_rows_read_after_any_batch_of_writes_are_the_live_vaults(
    writes: list[tuple[int, float, float, float, bool]],
) -> None:
    """Rows turn live and empty (and back) between reads, several per read or none; each read
    lists exactly the live rows, ascending, and an answer read earlier stays as it was."""
    v = Vaults(2)
    for k in range(6):
        v.add(f"v{k}")
    earlier: list[tuple[np.ndarray, list[int]]] = []
    for row, cash, q0, q1, read in writes:
        if row >= len(v):
            row = v.add(f"v{row}.{len(v)}")  # a vault added between reads
        v.write(row, VaultRow(cash, (q0, q1), (1000.0, 0.0), (0.5, 0.0)))
        if read:
            rows = v.live_rows()
            assert rows.dtype == np.int64
            assert rows.tolist() == whole_live_rows(v)
            assert not v._toggled  # each change is applied once
            assert v.live_rows() is rows  # nothing written since: the same array
            earlier.append((rows, rows.tolist()))
    v.write(0, VaultRow(1.0, (0.0, 0.0), (0.0, 0.0), (0.0, 0.0)))
    v.write(1, FLAT_VAULT)
    rows, usdc, *_ = v.live_view()  # brings the rows up to date as live_rows does
    assert rows.tolist() == whole_live_rows(v) and usdc.tolist() == v.usdc[rows].tolist()
    assert not v._toggled  # each change is applied once
    for rows, listed in earlier:
        assert rows.tolist() == listed


# -- the liquidation price of a vault holding the future only ----------------------------------

signed_zero = st.sampled_from([0.0, -0.0])
#: Funding rates: mostly those of a pool, some that make a term huge, infinite or NaN.
rate = st.one_of(
    st.floats(-0.02, 0.02),
    st.floats(-0.02, 0.02),
    signed_zero,
    st.sampled_from([-1.0, -3.0, 1e300, -1e300, 1e306, math.inf, -math.inf, math.nan]),
    st.floats(allow_nan=True, allow_infinity=True),
)


@st.composite
def future_only(draw: st.DrawFn) -> tuple[VaultRow, float]:
    """A vault holding the future only (the squared ±0.0) and a spot, mostly near enough to
    its liquidation for the bisection to run (its USDC a fraction of the position's value)."""
    spot = draw(st.one_of(st.floats(1.0, 1e5), st.sampled_from([1e-3, 1e306, math.inf])))
    q0 = draw(st.one_of(st.floats(-500.0, 500.0), signed_zero))
    entry = spot * draw(st.floats(0.3, 3.0))
    usdc = draw(
        st.one_of(
            st.floats(0.0, 1.0).map(lambda f: f * abs(q0) * min(spot, 1e300)),
            st.floats(-1e5, 1e7),
            signed_zero,
        )
    )
    v = VaultRow(
        usdc,
        # Now and then a squared position: the shorter gap must leave it to the general one.
        (q0, draw(st.one_of(signed_zero, signed_zero, signed_zero, st.floats(-50.0, 50.0)))),
        (entry, draw(st.floats(0.0, 3000.0))),
        (draw(st.floats(-50.0, 50.0)), draw(st.floats(-50.0, 50.0))),
    )
    return v, spot


@pytest.fixture(scope="module")
def rated() -> PredyMarket:
    m, _ = new_market()
    m.set_time(T0 + 3_600)
    return m


def with_params(m: PredyMarket, alpha: float, floor: float) -> PredyParams:
    """Set MinCollateral's rate and floor (returns the parameters to put back)."""
    saved = m.params
    m.params = saved.model_copy(update={"vault_risk_param": alpha, "min_margin": floor})
    return saved


@settings(max_examples=1500, deadline=None)
@given(
    vault=future_only(),
    rates=st.tuples(rate, rate),
    funding=st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)),
    at=st.one_of(st.floats(-100.0, 100.0), st.sampled_from([0.01, 1.0, 100.0, -100.0])),
    # Rates beyond the validated ones too (the curvature term's own overflow).
    params=st.tuples(
        st.one_of(st.floats(0.001, 0.49), st.sampled_from([2.0, 1e10])),
        st.sampled_from([0.0, 200.0, 1e4]),
    ),
)
def test_future_only_gap_is_the_general_gap(
    rated: PredyMarket,
    vault: tuple[VaultRow, float],
    rates: tuple[float, float],
    funding: tuple[float, float],
    at: float,
    params: tuple[float, float],
) -> None:
    """Where it answers, the gap without the squared's terms is the general gap, bit for bit,
    at every index up to 100 times the spot in size (huge, infinite or NaN terms fall back)."""
    v, spot = vault
    saved = with_params(rated, *params)
    try:
        venue = PredyVenue(rated)
        fast = venue._future_only_gap(v, spot, rates, funding)
        if fast is None:
            return
        s = spot * at
        assert bits(fast(s)) == bits(venue._liquidation_gap(v, rates, funding)(s))
        assert bits(fast(spot)) == bits(venue._liquidation_gap(v, rates, funding)(spot))
    finally:
        rated.params = saved


@settings(max_examples=600, deadline=None)
@given(
    vault=future_only(),
    rates=st.tuples(rate, rate),
    funding=st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)),
    product=st.sampled_from(["future", "squared"]),
    params=st.tuples(st.floats(0.001, 0.49), st.sampled_from([0.0, 200.0, 1e4])),
)
def test_future_only_liquidation_price_is_the_general_bisection(
    rated: PredyMarket,
    vault: tuple[VaultRow, float],
    rates: tuple[float, float],
    funding: tuple[float, float],
    product: str,
    params: tuple[float, float],
) -> None:
    """The liquidation price on the shorter gap is the general bisection's on the general gap."""
    v, spot = vault
    saved = with_params(rated, *params)
    try:
        venue = PredyVenue(rated, product)
        got = venue._liquidation_price(v, spot, rates, funding)
        gap = venue._liquidation_gap(v, rates, funding)
        general = 0.0 if v.position == (0.0, 0.0) else venue._bisect_liquidation_price(gap, spot)
        assert bits(got) == bits(general)
    finally:
        rated.params = saved


def test_future_only_gap_serves_the_usual_vault(rated: PredyMarket) -> None:
    """The shorter gap serves a future-only vault at a pool's rates (the liquidation price
    below and above the spot), and leaves a flat vault, a squared position or non-finite
    terms to the general gap."""
    venue = PredyVenue(rated)
    spot = rated.spot()
    rates = rated.current_rates()
    funding = rated.funding_now()
    found = {"below": 0, "above": 0, "none": 0}
    for q in (-40.0, -3.0, 3.0, 40.0):
        for usdc in (2_000.0, 20_000.0, 200_000.0):
            v = VaultRow(usdc, (q, 0.0), (spot, 0.0), (0.0, 0.0))
            assert venue._future_only_gap(v, spot, rates, funding) is not None
            got = venue._liquidation_price(v)
            assert bits(got) == bits(
                venue._bisect_liquidation_price(venue._liquidation_gap(v), spot)
            )
            found["below" if 0.0 < got < spot else "above" if got > spot else "none"] += 1
    assert found["below"] > 0 and found["above"] > 0
    v = VaultRow(2_000.0, (3.0, 0.0), (spot, 0.0), (0.0, 0.0))
    for bad in ((math.nan, 0.0), (0.0, math.inf), (0.0, 1e306)):
        assert venue._future_only_gap(v, spot, bad, funding) is None
    for q in ((-0.0, 0.0), (3.0, 1.0), (0.0, -2.0)):
        other = VaultRow(2_000.0, q, (spot, 100.0), (0.0, 0.0))
        assert venue._future_only_gap(other, spot, rates, funding) is None
