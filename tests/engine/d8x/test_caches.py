"""The pool's caches change no number: a trade after a quote books exactly what it books alone.

A quote keeps its working copy after the trade's before-hook for the trade that follows, and
the pool remembers the last prices and AMM fund targets under keys of their inputs. Each test
runs the same actions on two pools, one that quotes before every trade (cache hits) and one
that never quotes (every value computed afresh), with something changed between the quote and
the trade, and requires the two to be bit-identical.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from perpsim.engine.core.index import SettableOracle
from perpsim.engine.venues.d8x.formulas import Collateral
from perpsim.engine.venues.d8x.governance import D8XGovernance
from perpsim.engine.venues.d8x.hook import Action
from perpsim.engine.venues.d8x.pool import CollateralPrice, D8XPool
from perpsim.engine.venues.d8x.venue import D8XVenue
from perpsim.errors import EngineError

T0 = 1_700_000_000
TRADERS = ("alice", "bob", "carol")


def make_pool(collateral: Collateral) -> tuple[D8XPool, SettableOracle, list[Any]]:
    oracle = SettableOracle(1000.0, T0)
    pool = D8XPool(
        D8XGovernance(), collateral, oracle, CollateralPrice(collateral, 2000.0, 0.5), T0
    )
    u = 1.0 if collateral is Collateral.QUOTE else 1e-3
    log: list[Any] = []
    pool.event_sink = log.append
    pool.hook_listener = lambda action, trace: log.append((action, tuple(trace)))
    pool.fund_amm(5_000.0 * u)
    pool.fund_default_fund(20_000.0 * u)
    for name in (*TRADERS, "lp"):
        pool.deposit(name, 50_000.0 * u)
    pool.add_liquidity("lp", 40_000.0 * u)
    return pool, oracle, log


def state(pool: D8XPool) -> tuple[Any, ...]:
    n = len(pool.names)
    return (
        repr(pool.state),
        pool._pos[:n].tobytes(),
        pool._cash[:n].tobytes(),
        pool._locked[:n].tobytes(),
        pool._fstart[:n].tobytes(),
        tuple(sorted(pool.shares.items())),
    )


Between = Callable[[D8XPool, SettableOracle, int], None]


def nothing(pool: D8XPool, oracle: SettableOracle, i: int) -> None:
    """The quote and the trade see the same state (the cached before-hook is used)."""


def clock(pool: D8XPool, oracle: SettableOracle, i: int) -> None:
    pool.set_time(pool.state.now + 7)


def index(pool: D8XPool, oracle: SettableOracle, i: int) -> None:
    oracle.set(1000.0 * (1.0 + 0.003 * ((i % 5) - 2)), pool.state.now)


def collateral_price(pool: D8XPool, oracle: SettableOracle, i: int) -> None:
    if pool.collateral is Collateral.QUANTO:
        pool.collateral_price.set(2000.0 * (1.0 + 0.01 * (i % 3)))


def governance(pool: D8XPool, oracle: SettableOracle, i: int) -> None:
    pool.set_governance("minimal_spread", 0.0005 + 0.0001 * (i % 3))


def deposit(pool: D8XPool, oracle: SettableOracle, i: int) -> None:
    pool.deposit(TRADERS[(i + 1) % len(TRADERS)], 1.0)


def keeper(pool: D8XPool, oracle: SettableOracle, i: int) -> None:
    pool.update("keeper")


def in_place(pool: D8XPool, oracle: SettableOracle, i: int) -> None:
    """A field of the stored state written in place (what no action does; a set-up could)."""
    pool.state.default_fund_target = pool.state.default_fund_cash * (1.5 if i % 2 else 0.5)


@pytest.mark.parametrize("collateral", [Collateral.QUOTE, Collateral.QUANTO])
@pytest.mark.parametrize(
    "between",
    [nothing, clock, index, collateral_price, governance, deposit, keeper, in_place],
)
def test_a_trade_after_a_quote_books_what_it_books_alone(
    collateral: Collateral, between: Between
) -> None:
    quoted, quoted_oracle, quoted_log = make_pool(collateral)
    alone, alone_oracle, alone_log = make_pool(collateral)
    lot = quoted.state.governance.lot_size
    for i in range(40):
        name = TRADERS[i % len(TRADERS)]
        k = (12 + 3 * (i % 7)) * lot * (1.0 if i % 3 else -1.0)
        quoted.quote(k)
        for pool, oracle in ((quoted, quoted_oracle), (alone, alone_oracle)):
            if i % 4 == 0:
                pool.set_time(pool.state.now + 1)
            between(pool, oracle, i)
        results: list[object] = []
        for pool in (quoted, alone):
            try:
                results.append(pool.trade(name, k))
            except EngineError as err:
                results.append(repr(err))
        assert repr(results[0]) == repr(results[1])
        assert state(quoted) == state(alone)
        assert quoted_log == alone_log
        assert quoted.quote(lot * 10) == alone.quote(lot * 10)
        alone._prepared = None  # the pool that never quotes keeps no working copy


def test_a_refused_trade_after_a_quote_leaves_the_state_and_later_trades_alone() -> None:
    quoted, _, quoted_log = make_pool(Collateral.QUOTE)
    alone, _, alone_log = make_pool(Collateral.QUOTE)
    lot = quoted.state.governance.lot_size
    price, _, _ = quoted.quote(20 * lot)
    before = state(quoted)
    with pytest.raises(EngineError):
        quoted.trade("alice", 20 * lot, limit_price=price * 0.9)  # the price is above the limit
    assert state(quoted) == before
    for pool in (quoted, alone):
        pool.trade("alice", 20 * lot)
        pool.trade("bob", -30 * lot)
    assert state(quoted) == state(alone)
    assert quoted_log == alone_log


def test_a_probe_and_a_quote_leave_the_kept_copy_for_the_trade() -> None:
    """Probes (``size_for_price``) and quotes read the kept working copy; none writes to it."""
    quoted, _, quoted_log = make_pool(Collateral.QUOTE)
    alone, _, alone_log = make_pool(Collateral.QUOTE)
    lot = quoted.state.governance.lot_size
    quoted.quote(15 * lot)
    quoted.trade_probe(lot)(40 * lot)
    quoted.mid_after_trade(-25 * lot)
    quoted.quote(-15 * lot)
    for pool in (quoted, alone):
        pool.trade("carol", 15 * lot)
    assert state(quoted) == state(alone)
    assert [e for e in quoted_log if isinstance(e, tuple) and e[0] is Action.TRADE] == [
        e for e in alone_log if isinstance(e, tuple) and e[0] is Action.TRADE
    ]


def test_a_probe_made_before_a_trade_keeps_pricing_the_state_it_was_made_in() -> None:
    """A probe holds its own copy of the before-hook's result: a trade that then books on the
    kept copy does not move the probe's answers."""
    pool, _, _ = make_pool(Collateral.QUOTE)
    lot = pool.state.governance.lot_size
    probe = pool.trade_probe(lot)
    first = probe(30 * lot)
    pool.quote(20 * lot)
    pool.trade("alice", 20 * lot)
    assert probe(30 * lot) == first


def small_trade(pool: D8XPool, oracle: SettableOracle, i: int) -> None:
    lot = pool.state.governance.lot_size
    pool.trade(TRADERS[i % len(TRADERS)], 11 * lot * (1.0 if i % 2 else -1.0))


#: Every kind of change between two questions, the trade included.
EVERY_CHANGE: list[Between] = [
    nothing,
    clock,
    index,
    collateral_price,
    governance,
    deposit,
    keeper,
    in_place,
    small_trade,
]


@pytest.mark.parametrize("collateral", [Collateral.QUOTE, Collateral.QUANTO])
@pytest.mark.parametrize("between", EVERY_CHANGE)
def test_size_for_price_asked_again_answers_what_it_finds_afresh(
    collateral: Collateral, between: Between
) -> None:
    """The venue keeps its last size_for_price answer for the same target on the same prepared
    working copy: whatever happens between two questions, the answer is the one a venue that
    keeps nothing finds, bit for bit, and the pools stay identical."""
    kept_pool, kept_oracle, kept_log = make_pool(collateral)
    fresh_pool, fresh_oracle, fresh_log = make_pool(collateral)
    kept, fresh = D8XVenue(kept_pool), D8XVenue(fresh_pool)
    found: list[float] = []
    search = kept._size_for_price

    def counted(t: float) -> float:
        found.append(t)
        return search(t)

    kept._size_for_price = counted  # type: ignore[method-assign]
    asked = 0
    for i in range(24):
        mid = kept_pool.quote(0.0)[1]
        target = mid * (1.0 + 0.002 * ((i % 5) - 2))
        for _ in range(2):  # the second question of a round is the one the venue may keep
            fresh._sized = None
            got = kept.size_for_price(target)
            assert repr(got) == repr(fresh.size_for_price(target))
            asked += got != 0.0
            for pool, oracle in ((kept_pool, kept_oracle), (fresh_pool, fresh_oracle)):
                between(pool, oracle, i)
            assert state(kept_pool) == state(fresh_pool)
        if i % 3 == 0:
            for pool in (kept_pool, fresh_pool):
                pool.set_time(pool.state.now + 60)
    assert kept_log == fresh_log
    assert asked > 0  # the bisection ran, not only the early answers
    # Nothing between the two questions of a round: the second is answered from the first.
    if between is nothing:
        assert len(found) == 24
    if between in (deposit, small_trade, in_place):  # each changes what the probes see
        assert len(found) == 48


def forget(pool: D8XPool) -> None:
    """Drop every view and price the pool keeps: its next answer is computed afresh."""
    pool._view = pool._view_key = pool._view_mid = None
    pool._mid_memo = pool._trade_memo = None


@pytest.mark.parametrize("collateral", [Collateral.QUOTE, Collateral.QUANTO])
@pytest.mark.parametrize("between", EVERY_CHANGE)
def test_the_mid_price_asked_again_is_the_one_found_afresh(
    collateral: Collateral, between: Between
) -> None:
    """The pool keeps the mid price of its view state: whatever happens between two asks, the
    mid price (and the venue's fair price and observed columns) is the one a pool that keeps
    nothing computes, bit for bit."""
    kept_pool, kept_oracle, _ = make_pool(collateral)
    fresh_pool, fresh_oracle, _ = make_pool(collateral)
    kept, fresh = D8XVenue(kept_pool), D8XVenue(fresh_pool)
    served = 0
    for i in range(30):
        for pool, oracle in ((kept_pool, kept_oracle), (fresh_pool, fresh_oracle)):
            if i % 3 == 0:
                pool.set_time(pool.state.now + 1)
            between(pool, oracle, i)
        first = kept_pool.mid_price()
        kept_now = kept_pool._view_mid
        forget(fresh_pool)
        assert first == fresh_pool.mid_price()
        again = kept_pool.mid_price()
        served += kept_now is not None and kept_pool._view_mid is kept_now  # not recomputed
        forget(fresh_pool)
        assert again == first and kept.fair_price() == fresh.fair_price()
        forget(fresh_pool)
        assert repr(kept.observe()) == repr(fresh.observe())
    assert served > 0  # the kept price was used, not only recomputed
