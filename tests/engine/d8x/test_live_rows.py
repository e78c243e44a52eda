"""The per-tick scans of a D8X pool read its live rows only, with the whole scans' results.

Every account an agent ever opened keeps its row; most of a long run's rows are flat and empty
(a noise trader withdraws everything after each close). The unsafe scan, the time-series row,
open interest and the accounting check between full ones used to read every row each tick, so
a tick cost more the longer the run had gone on. These tests compare the live-row scans with
whole passes bit for bit and count rows, not seconds.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perpsim.engine.core.index import SettableOracle
from perpsim.engine.core.status import Status
from perpsim.engine.venue import IncrementalAccounting, supports
from perpsim.engine.venues.d8x.formulas import Collateral
from perpsim.engine.venues.d8x.governance import D8XGovernance
from perpsim.engine.venues.d8x.hook import Action
from perpsim.engine.venues.d8x.pool import CollateralPrice, D8XPool, _Txn
from perpsim.engine.venues.d8x.venue import D8XVenue
from perpsim.errors import EngineError
from perpsim.model import PerpModel
from perpsim.model.model import FULL_CHECK_EVERY
from perpsim.scenario import load_scenario

T0 = 1_700_000_000
TRADERS = tuple(f"t{k}" for k in range(6))


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def make_pool(collateral: Collateral = Collateral.QUOTE) -> tuple[D8XPool, SettableOracle]:
    oracle = SettableOracle(1000.0, T0)
    pool = D8XPool(
        D8XGovernance(), collateral, oracle, CollateralPrice(collateral, 2000.0, 0.0), T0
    )
    u = unit(collateral)
    pool.fund_amm(5_000.0 * u)
    pool.fund_default_fund(20_000.0 * u)
    pool.deposit("lp", 100_000.0 * u)
    pool.add_liquidity("lp", 100_000.0 * u)
    pool.deposit("liq", 1_000.0 * u)
    return pool, oracle


def unit(collateral: Collateral) -> float:
    """One quote unit in the collateral (index about 1000, S3 about 2000)."""
    return {Collateral.QUOTE: 1.0, Collateral.BASE: 1e-3, Collateral.QUANTO: 5e-4}[collateral]


# -- whole passes (what the scans computed before they read the live rows) ----------------------


def whole_live_rows(pool: D8XPool) -> list[int]:
    n = len(pool.names)
    holding = (pool._cash[:n] != 0.0) | (pool._pos[:n] != 0.0) | (pool._locked[:n] != 0.0)
    return np.flatnonzero(holding).tolist()


def whole_unsafe_rows(pool: D8XPool) -> list[int]:
    n = len(pool.names)
    unsafe = (pool.margin_balances() < pool.margin_requirements(False)) & (pool._pos[:n] != 0.0)
    unsafe[0] = False
    return np.flatnonzero(unsafe).tolist()


def whole_open_interest(pool: D8XPool) -> float:
    pos = pool.positions
    return float(pos[pos > 0.0].sum())


def whole_observed(pool: D8XPool) -> dict[str, Any]:
    mbs = pool.margin_balances()
    mms = pool.margin_requirements(False)
    has_pos = pool.positions != 0.0
    return {
        "open_interest": whole_open_interest(pool),
        "unsafe_accounts": int(np.count_nonzero((mbs < mms)[1:] & has_pos[1:])),
        "bankrupt_accounts": int(np.count_nonzero(mbs[1:] < 0.0)),
        "d8x_amm_margin_balance": float(mbs[0]),
    }


def whole_to_settle(pool: D8XPool) -> list[int]:
    n = len(pool.names)
    holding = (pool._cash[:n] != 0.0) | (pool._pos[:n] != 0.0)
    holding[0] = False
    return np.flatnonzero(holding).tolist()


def whole_active_accounts(pool: D8XPool, txn: _Txn) -> int:
    pos = pool.positions.copy()
    for row, m in txn.rows.items():
        if row < len(pos):
            pos[row] = m.position
    n_new = sum(1 for r, m in txn.rows.items() if r >= len(pos) and m.position != 0.0)
    return int(np.count_nonzero(pos[1:])) + n_new


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return bits(a) == bits(b) or (math.isnan(a) and math.isnan(b))
    return a == b


def assert_live_scans_are_whole(pool: D8XPool) -> None:
    venue = D8XVenue(pool)
    assert pool.live_rows().dtype == np.int64
    assert pool.live_rows().tolist() == whole_live_rows(pool)
    assert pool.unsafe_rows().tolist() == whole_unsafe_rows(pool)
    if pool.state.status is Status.NORMAL:
        assert venue.liquidatable_accounts().tolist() == whole_unsafe_rows(pool)
    assert bits(venue.open_interest()) == bits(whole_open_interest(pool))
    seen = venue.observe()
    for key, value in whole_observed(pool).items():
        assert same(seen[key], value), key
    assert bits(pool.amm_margin_balance()) == bits(float(pool.margin_balances()[0]))
    assert venue.accounts_to_settle().tolist() == whole_to_settle(pool)
    rows = pool.live_rows()
    dead = np.setdiff1d(np.arange(len(pool.names)), rows)
    assert (pool.margin_balances()[dead] == 0.0).all()
    assert (pool.margin_requirements(False)[dead] == 0.0).all()
    assert (pool.margin_balances()[rows].tobytes()) == pool.margin_balances(rows=rows).tobytes()
    # The default fund target's count of traders holding a position, with an action's rows.
    txn = pool._begin()
    for row in (1, len(pool.names) - 1, len(pool.names)):
        m = pool._row_of(txn, row)
        m.position = 0.0 if row % 2 else 5.0
    assert pool._active_accounts(txn) == whole_active_accounts(pool, txn)
    assert pool._active_accounts(pool._begin()) == whole_active_accounts(pool, pool._begin())
    # Both checks find the same problems (none here), the between-checks one from the live
    # rows and the rows written since.
    assert venue.check_changed_invariants() == pool.check_invariants() == []


# -- (1) random sequences of every kind of write --------------------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "deposit",
                "trade",
                "trade",
                "trade",
                "close",
                "exit",
                "withdraw_all",
                "withdraw_some",
                "index",
                "index",
                "time",
                "liquidate",
                "lp_in",
                "lp_out",
                "update",
            ]
        ),
        st.integers(0, len(TRADERS) - 1),
        st.floats(-1.0, 1.0),
    ),
    min_size=5,
    max_size=60,
)


def apply(pool: D8XPool, oracle: SettableOracle, op: str, who: int, x: float) -> None:
    """One operation (refused ones change nothing); a trader without an account, or about to
    trade without spare margin, deposits first."""
    name = TRADERS[who]
    u = unit(pool.collateral)
    try:
        broke = op == "trade" and (
            name not in pool.index or pool.withdrawable(pool.row(name)) < 200.0 * u
        )
        if op == "deposit" or name not in pool.index or broke:
            pool.deposit(name, (500.0 + 5_000.0 * abs(x)) * u)
            if op == "deposit":
                return
        row = pool.row(name)
        if op == "trade":
            # Up to about 9× the account's spare margin, on the 0.01 grid.
            spare = pool.withdrawable(row) / u
            k = round(9.0 * x * spare / oracle.index(pool.state.now)[0], 2)
            if k:
                pool.trade(name, k)
        elif op in ("close", "exit"):
            pos = pool.margin(row).position
            if pos:
                pool.trade(name, -pos)
            if op == "exit":  # and take everything out: the row is empty
                pool.withdraw(name, pool.withdrawable(row))
        elif op == "withdraw_all":
            pool.withdraw(name, pool.withdrawable(row))
        elif op == "withdraw_some":
            pool.withdraw(name, abs(x) * pool.withdrawable(row))
        elif op == "index":
            price = oracle.index(pool.state.now)[0] * (1.0 + 0.15 * x)
            oracle.set(min(max(price, 300.0), 3000.0), pool.state.now)
        elif op == "time":
            pool.set_time(pool.state.now + int(abs(x) * 8 * 3600))
        elif op == "liquidate":
            for r in pool.unsafe_rows().tolist():
                amount = abs(pool.liquidation_amount(r))
                if amount and pool.state.status is Status.NORMAL:
                    pool.liquidate("liq", r, amount)
        elif op == "lp_in":
            pool.add_liquidity(name, abs(x) * pool.withdrawable(row))
        elif op == "lp_out" and pool.shares.get(name, 0.0):
            pool.remove_liquidity(name, max(abs(x), 0.01) * pool.shares[name])
        elif op == "update":
            pool.update("liq")
    except EngineError:
        pass  # a rejected operation leaves the pool as it was: the checks that follow see it


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, collateral=st.sampled_from(list(Collateral)), settle=st.booleans())
def test_live_rows_are_the_rows_holding_something_and_scans_equal_whole_passes(
    ops: list[tuple[str, int, float]], collateral: Collateral, settle: bool
) -> None:
    pool, oracle = make_pool(collateral)
    assert_live_scans_are_whole(pool)
    for op, who, x in ops:
        apply(pool, oracle, op, who, x)
        assert_live_scans_are_whole(pool)
    if not settle:
        return
    # Settlement writes rows too: the AMM's at global_settled, each trader's when paid out.
    if pool.state.status is Status.NORMAL:
        pool.begin_global_settlement(pool._prices(pool.view_state())[0])
        assert_live_scans_are_whole(pool)
    pool.global_settled()
    assert_live_scans_are_whole(pool)
    for holder, shares in sorted(pool.shares.items()):
        pool.settle_shares(holder, shares)
        assert_live_scans_are_whole(pool)
    for row in D8XVenue(pool).accounts_to_settle().tolist():
        pool.settle(row)
        assert_live_scans_are_whole(pool)
    assert pool.trader_live_rows().size == 0


KINDS = [
    "deposit",
    "trade",
    "trade",
    "trade",
    "trade",
    "close",
    "exit",
    "exit",
    "withdraw_all",
    "withdraw_some",
    "index",
    "index",
    "time",
    "liquidate",
    "liquidate",
    "lp_in",
    "lp_out",
    "update",
]


@pytest.mark.parametrize("collateral", list(Collateral), ids=lambda c: c.value)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_long_random_sequences_keep_the_live_rows_and_scans_whole(
    collateral: Collateral, seed: int
) -> None:
    """Long runs of every write (hypothesis keeps its examples short): rows open, go flat and
    empty, turn unsafe and are liquidated, and come back."""
    rng = np.random.default_rng(seed)
    pool, oracle = make_pool(collateral)
    seen = {"unsafe": 0, "liquidated": 0, "emptied": 0}

    def listener(action: Action, trace: object) -> None:
        seen["liquidated"] += action is Action.LIQUIDATE

    pool.hook_listener = listener
    for _ in range(300):
        op = KINDS[int(rng.integers(len(KINDS)))]
        before_live = set(pool.live_rows().tolist())
        apply(pool, oracle, op, int(rng.integers(len(TRADERS))), float(rng.uniform(-1.0, 1.0)))
        seen["unsafe"] += int(pool.unsafe_rows().size > 0)
        assert_live_scans_are_whole(pool)
        if op == "index" and rng.random() < 0.5:  # a liquidator on the watch
            apply(pool, oracle, "liquidate", 0, 0.0)
            assert_live_scans_are_whole(pool)
        seen["emptied"] += len(before_live - set(pool.live_rows().tolist()))
    # The sequences have teeth: unsafe accounts, liquidations, rows that went empty.
    assert seen["unsafe"] and seen["liquidated"] and seen["emptied"] >= 5, seen


def test_an_account_that_closes_and_withdraws_everything_leaves_the_live_rows() -> None:
    pool, _ = make_pool()
    pool.deposit("a", 2_000.0)
    row = pool.row("a")
    assert row in pool.live_rows().tolist()
    pool.trade("a", 1.0)
    pool.trade("a", -1.0)
    assert pool.margin(row).position == 0.0 and pool.margin(row).locked_in == 0.0
    pool.withdraw("a", pool.withdrawable(row))
    assert pool.margin(row).cash == 0.0
    assert row not in pool.live_rows().tolist()
    assert pool.live_rows().tolist() == whole_live_rows(pool)
    pool.deposit("a", 10.0)
    assert row in pool.live_rows().tolist()


# -- (2) the check between full checks finds what the full check finds ---------------------------


def balanced() -> D8XPool:
    """Three traders, two holding positions, one ("c") flat with cash; fully checked."""
    pool, _ = make_pool()
    for name in ("a", "b", "c"):
        pool.deposit(name, 5_000.0)
    pool.trade("a", 2.0)
    pool.trade("b", -1.0)
    for k in range(20):  # accounts that went flat and empty: left out of the live rows
        pool.deposit(f"gone{k}", 1_000.0)
        pool.trade(f"gone{k}", 1.0)
        pool.trade(f"gone{k}", -1.0)
        pool.withdraw(f"gone{k}", pool.withdrawable(pool.row(f"gone{k}")))
    assert pool.check_invariants() == []
    return pool


def both(pool: D8XPool) -> tuple[list[str], list[str]]:
    """The between-checks check, then the full one, of the same state."""
    incremental = D8XVenue(pool).check_changed_invariants()
    return incremental, pool.check_invariants()


def touch(pool: D8XPool, name: str) -> int:
    """An ordinary operation writing ``name``'s row (it stays balanced)."""
    pool.deposit(name, 1.0)
    return pool.row(name)


def set_state(name: str, value: float) -> Callable[[D8XPool], None]:
    return lambda p: setattr(p.state, name, value)


CORRUPTIONS: dict[str, Callable[[D8XPool], None]] = {
    # collateral out of thin air in a touched row's cash
    "cash": lambda p: p._cash.__setitem__(touch(p, "c"), p._cash[p.row("c")] + 500.0),
    # a position written without its counterparty
    "position": lambda p: p._pos.__setitem__(touch(p, "a"), p._pos[p.row("a")] + 1.0),
    # a locked-in value changed (the margin balance with it)
    "locked_in": lambda p: p._locked.__setitem__(touch(p, "b"), p._locked[p.row("b")] + 700.0),
    # a funding start changed under a position (its funding owed with it)
    "funding_start": lambda p: p._fstart.__setitem__(touch(p, "a"), 1e6),
    # a negative fund
    "amm_fund": set_state("amm_fund_cash", -1_000.0),
    "default_fund": set_state("default_fund_cash", -1_000.0),
    # shares out of line with the supply
    "supply": set_state("share_supply", 1.0),
    # deposits booked that came in nowhere
    "deposited": set_state("deposited", 1e9),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_the_check_between_full_checks_finds_what_the_full_check_finds(kind: str) -> None:
    pool = balanced()
    CORRUPTIONS[kind](pool)
    incremental, full = both(pool)
    assert full, "the corruption must be a violation"
    assert incremental == full


def test_a_row_written_then_emptied_then_corrupted_is_still_read() -> None:
    pool = balanced()
    row = pool.row("c")
    pool.withdraw("c", pool.withdrawable(row))  # written, and no longer live
    assert row not in pool.live_rows().tolist()
    pool._cash[row] = 250.0  # behind the commit's back: the live rows do not know
    incremental, full = both(pool)
    assert full and incremental == full


def test_the_check_between_full_checks_reads_only_live_and_written_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pool = balanced()
    venue = D8XVenue(pool)
    assert supports(venue, IncrementalAccounting)
    scanned, whole = count_rows(monkeypatch)
    live = len(pool.live_rows())
    assert 0 in pool.live_rows().tolist()  # the AMM holds the traders' other side
    assert len(pool.names) > 2 * live
    assert venue.check_changed_invariants() == []
    assert scanned == [live]  # nothing written since the full check: the live rows
    touch(pool, "gone3")
    assert venue.check_changed_invariants() == []
    assert scanned[-1] == live + 1  # gone3 turned live (and was written)
    pool.withdraw("gone3", pool.withdrawable(pool.row("gone3")))
    assert venue.check_changed_invariants() == []
    assert scanned[-1] == live  # gone3: written since, empty (looked at, not read)
    row = touch(pool, "gone4")  # live again ...
    pool._cash[row] = 0.0  # ... and emptied behind the commit's back: collateral went missing
    incremental = venue.check_changed_invariants()
    assert scanned[-1] == live + 1
    assert whole == []
    assert incremental and incremental == pool.check_invariants()


def test_a_row_nobody_wrote_is_left_to_the_next_full_check() -> None:
    """The limit of the contract: only the pool's commit writes rows, so a row changed behind
    it and not written since the last check is found by the next full check."""
    pool = balanced()
    row = pool.row("gone5")
    pool._cash[row] = 250.0
    incremental, full = both(pool)
    assert incremental == [] and full


# -- (3) a tick's scans do not grow with the rows that went flat ---------------------------------


def crowded_pool(n: int = 400, seed: int = 5) -> tuple[D8XPool, SettableOracle]:
    """``n`` traders have traded: about a quarter still hold a position, some hold only cash,
    the rest closed and withdrew everything."""
    rng = np.random.default_rng(seed)
    pool, oracle = make_pool()
    for k in range(n):
        name = f"n{k}"
        pool.deposit(name, 1_000.0)
        size = float(rng.integers(3, 9)) * (1.0 if rng.random() < 0.5 else -1.0)
        pool.trade(name, size)
        fate = rng.random()
        if fate < 0.75:
            pool.trade(name, -size)
            if fate < 0.65:
                pool.withdraw(name, pool.withdrawable(pool.row(name)))
        if k % 50 == 0:
            pool.set_time(pool.state.now + 600)
            oracle.set(1000.0 * (1.0 + 0.01 * rng.standard_normal()), pool.state.now)
    pool.set_time(pool.state.now + 600)
    oracle.set(900.0, pool.state.now)  # some holders are now unsafe
    return pool, oracle


def count_rows(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[int]]:
    """Rows read by each margin scan (``scanned``) and each whole-array read (``whole``)."""
    scanned: list[int] = []
    whole: list[int] = []
    mb, mr = D8XPool.margin_balances, D8XPool.margin_requirements

    def balances(self: D8XPool, at_mark: bool = True, rows: Any = None) -> Any:
        (whole if rows is None else scanned).append(len(self.names) if rows is None else len(rows))
        return mb(self, at_mark, rows)

    def requirements(self: D8XPool, initial: bool, rows: Any = None) -> Any:
        (whole if rows is None else scanned).append(len(self.names) if rows is None else len(rows))
        return mr(self, initial, rows)

    def positions(self: D8XPool) -> Any:
        whole.append(len(self.names))
        return self._pos[: len(self.names)]

    monkeypatch.setattr(D8XPool, "margin_balances", balances)
    monkeypatch.setattr(D8XPool, "margin_requirements", requirements)
    monkeypatch.setattr(D8XPool, "positions", property(positions))
    return scanned, whole


def test_the_live_scans_give_the_whole_scans_results_on_a_crowded_pool() -> None:
    pool, _ = crowded_pool()
    live = pool.live_rows()
    assert 0 < len(live) < len(pool.names) // 2  # most rows are flat and empty
    assert pool.unsafe_rows().size > 0
    assert_live_scans_are_whole(pool)


def test_the_per_tick_scans_read_the_live_rows_only(monkeypatch: pytest.MonkeyPatch) -> None:
    pool, oracle = crowded_pool()
    venue = D8XVenue(pool)
    venue.check_invariants()  # the model's first check is full
    scanned, whole = count_rows(monkeypatch)

    def tick() -> list[int]:
        scanned.clear()
        venue.liquidatable_accounts()
        venue.observe()
        venue.open_interest()
        assert venue.check_changed_invariants() == []
        assert whole == []
        return list(scanned)

    first = tick()
    assert first and max(first) <= len(pool.live_rows()) + 1  # the AMM's row, live or not
    # Many more accounts open, trade, close and withdraw everything: the scans read no more.
    live_before = pool.live_rows().tolist()
    for k in range(300):
        name = f"later{k}"
        pool.deposit(name, 3_000.0)
        pool.trade(name, 2.0)
        pool.trade(name, -2.0)
        pool.withdraw(name, pool.withdrawable(pool.row(name)))
    assert pool.live_rows().tolist() == live_before
    venue.check_changed_invariants()  # the rows written since are read once
    assert tick() == first
    oracle.set(870.0, pool.state.now)
    assert max(tick()) <= len(pool.live_rows()) + 1


SCENARIO = """
name: d8x_live_rows
seed: 13
clock: {start: "2024-01-01T00:00:00Z", tick: 5m, duration: 1d}
price_path: {kind: gbm, s0: 2280, mu: 0.0, sigma: 0.6}
venue:
  kind: d8x
  pool: {collateral: quote, amm_fund: 100000, lp_cash: 9000000, default_fund: 250000}
agents:
  - name: noise
    type: noise_trader
    count: 300
    params:
      arrival_rate: 0.5
      size: {dist: lognormal, median: 1, sigma: 0.8, high: 20}
      leverage: {dist: uniform, low: 1, high: 8}
      holding_time: {dist: lognormal, median: 30m, sigma: 0.5}
      initial_cash: {dist: lognormal, median: 5000, sigma: 0.7}
  - {name: arb, type: arbitrageur, count: 2}
  - {name: lp, type: liquidity_provider, count: 2}
  - {name: liquidator, type: liquidator, count: 1}
  - {name: keeper, type: keeper, count: 1}
output: {record_every: 1}
"""


def test_a_tick_costs_the_live_rows_not_every_row_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "d8x_live_rows.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    model = PerpModel(load_scenario(path), base_dir=tmp_path)
    venue = model.venue
    assert isinstance(venue, D8XVenue)
    assert supports(venue, IncrementalAccounting)
    pool = venue.pool
    scanned, whole = count_rows(monkeypatch)
    written: set[int] = set()
    commit = D8XPool._commit

    def recording(self: D8XPool, txn: _Txn, action: Any) -> None:
        written.update(txn.rows)
        commit(self, txn, action)

    monkeypatch.setattr(D8XPool, "_commit", recording)
    most_live = 0
    while model.running:
        scanned.clear()
        whole.clear()
        written.clear()
        written.update(pool._written)  # written since the last check (the set-up, at first)
        model.step()
        live = set(pool.live_rows().tolist())
        most_live = max(most_live, len(live))
        if model.tick % FULL_CHECK_EVERY and model.tick < model.n_ticks:
            assert whole == [], f"tick {model.tick} read every row"
            # The unsafe scan (2 reads), the time-series row (2) and the check (1), each of the
            # rows live at some point of the tick: live now, or written in it (and the AMM's).
            assert len(scanned) <= 5
            assert max(scanned, default=0) <= len(live | written | {0})
    opened = len(pool.names)
    # The test has teeth: most accounts opened in the run are flat and empty at the end.
    assert opened > 250 and len(pool.live_rows()) < opened // 2
    assert most_live < opened * 2 // 3
