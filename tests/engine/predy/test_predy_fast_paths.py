"""The trade path's shortcuts give the very floats of the general code they stand for.

Each shortcut of the pool (one call for both funding rates, a two-term fsum, a positional state
copy, vault rows read with ``item``) is checked bit for bit (``repr`` or the float's bytes)
against the general formula it replaces, over random inputs with signed zeros, infinities and
NaNs among them.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpsim.engine.core.index import SettableOracle
from perpsim.engine.core.status import Status
from perpsim.engine.venues.predy import formulas as fx
from perpsim.engine.venues.predy.config import PredyParams
from perpsim.engine.venues.predy.formulas import FUTURE, SQUARED, SpreadInfo
from perpsim.engine.venues.predy.pool import PoolState, PredyMarket, VaultRow, Vaults
from perpsim.engine.venues.predy.venue import PredyVenue
from perpsim.errors import BadAmountError, LotSizeError, UnknownAccountError

T0 = 1_700_000_000

any_float = st.floats(allow_nan=True, allow_infinity=True)
finite = st.floats(allow_nan=False, allow_infinity=False)
signed_zeros = st.sampled_from([0.0, -0.0])
small = st.one_of(signed_zeros, st.floats(-1e9, 1e9, allow_nan=False))
positive = st.floats(1e-6, 1e12, allow_nan=False)


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def outcome(f: object, *args: object) -> tuple[str, object]:
    """What ``f(*args)`` returns (as bytes of each float) or the error type it raises."""
    try:
        got = f(*args)  # type: ignore[operator]
    except (ValueError, OverflowError, ZeroDivisionError) as e:
        return "raises", type(e)
    if isinstance(got, tuple):
        return "value", tuple(bits(x) for x in got)
    return "value", bits(got)


@settings(max_examples=400, deadline=None)
@given(a=st.one_of(any_float, signed_zeros), b=st.one_of(any_float, signed_zeros))
def test_pair_fsum_is_fsum(a: float, b: float) -> None:
    assert outcome(fx.pair_fsum, a, b) == outcome(lambda x, y: math.fsum((x, y)), a, b)


def test_pair_fsum_edge_cases() -> None:
    for a, b in [(-0.0, -0.0), (0.0, -0.0), (1e308, 1e308), (math.inf, -math.inf), (math.nan, 1)]:
        assert outcome(fx.pair_fsum, a, b) == outcome(lambda x, y: math.fsum((x, y)), a, b)


def reference_available(
    liq: float, locked: tuple[float, float], usdc: tuple[float, float]
) -> float:
    """The formula as it was written: two fsums over sequences."""
    return liq - math.fsum(locked) - math.fsum(max(0.0, -u) for u in usdc)


@settings(max_examples=300, deadline=None)
@given(liq=small, m0=small, m1=small, u0=small, u1=small)
def test_available_liquidity_is_the_fsum_formula(
    liq: float, m0: float, m1: float, u0: float, u1: float
) -> None:
    got = outcome(fx.available_liquidity, liq, (m0, m1), (u0, u1))
    assert got == outcome(reference_available, liq, (m0, m1), (u0, u1))


@settings(max_examples=400, deadline=None)
@given(
    m0=small,
    m1=small,
    liq=st.one_of(signed_zeros, st.floats(-1.0, 1e9, allow_nan=False)),
    variance=st.one_of(signed_zeros, st.floats(0.0, 1.0)),
    mult=st.floats(0.0, 20.0),
    max_rate=st.floats(0.0, 0.01),
    base=st.one_of(signed_zeros, st.floats(-0.01, 0.01)),
    formula=st.sampled_from(["seed", "mainnet"]),
)
def test_current_funding_rates_are_funding_rate_at_no_trade(
    m0: float,
    m1: float,
    liq: float,
    variance: float,
    mult: float,
    max_rate: float,
    base: float,
    formula: fx.FundingFormula,
) -> None:
    kw = {
        "variance": variance,
        "squared_perp_funding_multiplier": mult,
        "perp_future_max_funding_rate": max_rate,
        "base_funding_rate": base,
        "formula": formula,
    }

    def one_by_one() -> tuple[float, float]:
        return (
            fx.funding_rate(FUTURE, m0, 0.0, liq, 0.0, **kw),  # type: ignore[arg-type]
            fx.funding_rate(SQUARED, m1, 0.0, liq, 0.0, **kw),  # type: ignore[arg-type]
        )

    both = outcome(lambda: fx.current_funding_rates(m0, m1, liq, **kw))  # type: ignore[arg-type]
    assert both == outcome(one_by_one)


def test_pool_state_copy_is_a_full_copy() -> None:
    """Every field is copied (a field added to PoolState must be added to ``copy`` too)."""
    values: dict[str, object] = {}
    for k, f in enumerate(dataclasses.fields(PoolState)):
        default = f.default
        if isinstance(default, tuple) and default and isinstance(default[0], SpreadInfo):
            values[f.name] = (SpreadInfo(k, 1.0, k, 2.0), SpreadInfo(k, 3.0, k, 4.0))
        elif isinstance(default, SpreadInfo):
            values[f.name] = SpreadInfo(k, 5.0, None, 6.0)
        elif isinstance(default, tuple):
            values[f.name] = (k + 0.25, k + 0.5)
        elif isinstance(default, int):
            values[f.name] = 1000 + k
        else:
            values[f.name] = k + 0.125
    s = PoolState(**values)  # type: ignore[arg-type]
    c = s.copy()
    assert c is not s
    assert repr(c) == repr(dataclasses.replace(s)) == repr(s)


def test_vault_rows_read_back_what_was_written() -> None:
    v = Vaults(2)
    for name in ("a", "b", "c"):  # the third grows the arrays
        v.add(name)
    row = VaultRow(-0.0, (1.5, -0.0), (2000.25, 0.0), (1e-300, -7.0))
    v.write(2, row)
    got = v.read(2)
    assert repr(got) == repr(row)
    assert all(type(x) is float for x in (got.usdc, *got.position, *got.entry))
    usdc, pos, entry, efund = v.view()
    assert repr(float(usdc[2])) == "-0.0" and pos[2].tolist() == [1.5, -0.0]
    assert efund[2].tolist() == [1e-300, -7.0] and entry[2].tolist() == [2000.25, 0.0]


def traded_market() -> PredyMarket:
    oracle = SettableOracle(1000.0, T0)
    m = PredyMarket(PredyParams(), oracle)
    m.set_time(T0)
    m.initialize("lp", 1_000_000.0, 0.0016, from_vault=False)
    m.deposit_margin("alice", 100_000.0)
    return m


def test_trade_amount_checks_keep_their_errors() -> None:
    m = traded_market()
    with pytest.raises(BadAmountError, match="future trade amount must be finite"):
        m.trade("alice", (math.inf, 0.0))
    with pytest.raises(BadAmountError, match="squared trade amount must be a number"):
        m.trade("alice", (0.0, "1"))  # type: ignore[arg-type]
    with pytest.raises(LotSizeError, match="squared trade amount"):
        m.trade("alice", (0.0, 1e-9))
    with pytest.raises(UnknownAccountError):
        m.trade("bob", (1.0, 0.0))
    with pytest.raises(UnknownAccountError):
        m.trade(True, (1.0, 0.0))
    # NumPy amounts and a row number trade as their float and name do.
    fills = m.trade(m.vaults.row("alice"), (np.float64(1.0), 0.0))
    assert fills[0].amount == 1.0 and m.vaults.read(0).position == (1.0, 0.0)


def test_rates_marks_and_funding_agree_with_the_general_formulas() -> None:
    m = traded_market()
    m.trade("alice", (3.0, 2.0))
    m.set_time(T0 + 3600)
    st_ = m.state
    p = m.params
    for i in (FUTURE, SQUARED):
        general = fx.funding_rate(
            i,
            st_.locked[i],
            0.0,
            st_.amount_liquidity,
            0.0,
            variance=st_.variance,
            squared_perp_funding_multiplier=p.squared_perp_funding_multiplier,
            perp_future_max_funding_rate=p.perp_future_max_funding_rate,
            base_funding_rate=p.base_funding_rate,
        )
        assert bits(m.current_rate(i)) == bits(general)
        mark = fx.index_price(i, 1000.0) * (1.0 + general)
        assert bits(m.marks()[i]) == bits(mark) == bits(m.mark(i))
        pend = fx.index_price(i, 1000.0) * general * 3600 / p.funding_period
        assert bits(m.pending_funding()[i]) == bits(pend)


def reference_gap(venue: PredyVenue, v: VaultRow) -> Callable[[float], float]:
    """The vault's value less its MinCollateral at index s, as it was written: the market's own
    vault value and ``fx.min_collateral``."""
    m = venue.market
    rates = (m.current_rate(FUTURE), m.current_rate(SQUARED))
    funding = m.funding_now()
    p = m.params

    def gap(s: float) -> float:
        marks = (
            fx.index_price(FUTURE, s) * (1.0 + rates[0]),
            fx.index_price(SQUARED, s) * (1.0 + rates[1]),
        )
        value = m.vault_value(v, marks, funding)
        mc = fx.min_collateral(
            s,
            v.position[0],
            v.position[1],
            rates[0],
            rates[1],
            risk_param=p.vault_risk_param,
            min_margin=p.min_margin,
        )
        return value - mc

    return gap


def reference_liquidation_price(venue: PredyVenue, v: VaultRow) -> float:
    """``PredyVenue._liquidation_price`` as it was written: sixty bisection steps."""
    m = venue.market
    if v.position == (0.0, 0.0) or m.status is not Status.NORMAL:
        return 0.0
    spot = m.spot()
    gap = reference_gap(venue, v)
    if gap(spot) < 0.0:
        return fx.index_price(venue.i, spot)
    for lo_f, hi_f in ((0.01, 1.0), (1.0, 100.0)):
        lo, hi = spot * lo_f, spot * hi_f
        glo, ghi = gap(lo), gap(hi)
        if (glo < 0.0) == (ghi < 0.0):
            continue
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if (gap(mid) < 0.0) == (glo < 0.0):
                lo = mid
            else:
                hi = mid
        near = hi if lo_f < 1.0 else lo
        return fx.index_price(venue.i, near)
    return 0.0


@pytest.fixture(scope="module")
def rated_market() -> PredyMarket:
    """A market with open interest in both products, an hour on: non-zero funding rates."""
    m = traded_market()
    m.trade("alice", (3.0, 2.0))
    m.set_time(T0 + 3600)
    return m


position = st.one_of(signed_zeros, st.floats(-500.0, 500.0, allow_nan=False))
#: Vaults safe, unsafe, long, short, in one product or both, with any entry and funding.
vaults = st.builds(
    VaultRow,
    st.floats(-1e6, 1e7, allow_nan=False),
    st.tuples(position, position),
    st.tuples(st.floats(0.0, 5000.0), st.floats(0.0, 3000.0)),
    st.tuples(st.floats(-50.0, 50.0), st.floats(-50.0, 50.0)),
)


@settings(max_examples=400, deadline=None)
@given(v=vaults, product=st.sampled_from(["future", "squared"]))
def test_liquidation_price_is_the_bisection_as_written(
    rated_market: PredyMarket, v: VaultRow, product: str
) -> None:
    """The view's liquidation price (gap written out, the bisection stopped at the end of the
    floats) is the original code's, bit for bit."""
    venue = PredyVenue(rated_market, product)
    assert bits(venue._liquidation_price(v)) == bits(reference_liquidation_price(venue, v))


@settings(max_examples=400, deadline=None)
@given(v=vaults, index=st.floats(1e-3, 1e6))
def test_liquidation_gap_is_value_less_min_collateral(
    rated_market: PredyMarket, v: VaultRow, index: float
) -> None:
    """The gap written out is the vault value less MinCollateral, bit for bit, at any index."""
    venue = PredyVenue(rated_market, "future")
    assert bits(venue._liquidation_gap(v)(index)) == bits(reference_gap(venue, v)(index))


def test_liquidation_price_cases_where_the_bisection_runs(rated_market: PredyMarket) -> None:
    """Vaults whose liquidation price lies below or above the spot (each bracket's loop runs)."""
    found = {"below": 0, "above": 0}
    spot = rated_market.spot()
    for product in ("future", "squared"):
        venue = PredyVenue(rated_market, product)
        for q in (-40.0, -3.0, 3.0, 40.0):
            for usdc in (2_000.0, 20_000.0, 200_000.0):
                v = VaultRow(usdc, (q, q / 2), (spot, spot * spot / 10_000.0), (0.0, 0.0))
                got = venue._liquidation_price(v)
                assert bits(got) == bits(reference_liquidation_price(venue, v))
                if 0.0 < got < venue.index_price():
                    found["below"] += 1
                elif got > venue.index_price():
                    found["above"] += 1
    assert found["below"] > 0 and found["above"] > 0
