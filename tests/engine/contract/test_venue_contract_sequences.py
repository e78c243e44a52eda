"""The venue contract under hypothesis-generated operation sequences, on every kind.

A :class:`~hypothesis.stateful.RuleBasedStateMachine` drives a venue through any mix of the
contract's operations (deposits, withdrawals, trades, time, index moves and updates,
liquidations, liquidity in and out, a global settlement with every pay-out). After every step
the books balance (``check_invariants()`` is empty and deposits − withdrawals is what the venue
holds) and a venue's position reads (:class:`~perpsim.engine.venue.PositionReader`) are its
account views' positions; every refused operation must have left the state bit-identical, and
every accepted one must have reported an event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from venue_harness import Harness

from perpsim.engine.core.status import Status
from perpsim.engine.venue import PositionReader, supports
from perpsim.errors import EngineError

NAMES = ("alice", "bob", "carol", "dave")
TRADERS = st.sampled_from([*NAMES, "nobody"])
LPS = st.sampled_from(["lp-0", "lp-1"])

#: Bounded so that the two kinds together run in a few seconds.
SEQUENCES = settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class VenueMachine(RuleBasedStateMachine):
    """Random contract operations on a fresh venue of :attr:`kind`."""

    kind: ClassVar[str]

    def __init__(self) -> None:
        super().__init__()
        self.h = Harness(self.kind)
        self.h.deposit("liquidator", 5_000_000.0)
        self.h.deposit("keeper", 1.0)
        for name in NAMES:
            self.h.deposit(name, 20_000.0)
        for name in ("lp-0", "lp-1"):
            self.h.deposit(name, 500_000.0)
        self.steps = 0

    def attempt(self, op: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
        """Run ``op``: accepted, it reported an event; refused, it changed nothing."""
        before = self.h.snapshot()
        n = len(self.h.events)
        try:
            result = op(*args)
        except EngineError:
            assert self.h.snapshot() == before, f"refused {op.__name__}{args!r} changed state"
            return False, None
        assert len(self.h.events) > n, f"{op.__name__}{args!r} reported no event"
        return True, result

    def withdrawable(self, account: str) -> float:
        try:
            return float(self.h.venue.account(account).withdrawable_balance)
        except EngineError:  # no such account yet: the operation will be refused
            return 1.0

    @rule(trader=TRADERS | LPS, amount=st.floats(1.0, 100_000.0))
    def deposit(self, trader: str, amount: float) -> None:
        if self.attempt(self.h.venue.deposit, trader, amount)[0]:
            self.h.deposited += amount

    @rule(trader=TRADERS | LPS, fraction=st.floats(0.01, 1.5))
    def withdraw(self, trader: str, fraction: float) -> None:
        amount = fraction * self.withdrawable(trader)
        if self.attempt(self.h.venue.withdraw, trader, amount)[0]:
            self.h.withdrawn += amount

    @rule(trader=TRADERS, contracts=st.floats(-25.0, 25.0), limit=st.none() | st.floats(0.9, 1.1))
    def trade(self, trader: str, contracts: float, limit: float | None) -> None:
        v = self.h.venue
        price = None if limit is None else limit * v.index_price()
        self.attempt(v.trade, trader, self.h.lots(contracts), price)

    @rule(trader=TRADERS, leverage=st.floats(2.0, 12.0), long=st.booleans())
    def lever_up(self, trader: str, leverage: float, long: bool) -> None:
        """Spend the spare margin on a position near the limit (liquidations need these)."""
        v = self.h.venue
        try:
            spare = max(v.account(trader).available_margin, 0.0)
        except EngineError:  # no such account yet
            spare = 1_000.0
        size = self.h.lots(leverage * spare / v.index_price())
        self.attempt(v.trade, trader, size if long else -size, None)

    @rule(seconds=st.integers(1, 12 * 3600))
    def advance(self, seconds: int) -> None:
        self.h.advance(seconds)

    @rule(factor=st.floats(0.9, 1.1))
    def move_index(self, factor: float) -> None:
        # Within a range the pools' own capital can stand (a bankrupt pool is another test).
        price = self.h.oracle.index(self.h.venue.now)[0] * factor
        self.h.set_index(min(max(price, 500.0), 2000.0))

    @rule(pick=st.integers(0, 3), overshoot=st.floats(0.0, 0.05))
    def squeeze(self, pick: int, overshoot: float) -> None:
        """Move the index just past a position's estimated liquidation price, then liquidate."""
        v = self.h.venue
        held = [r.account for r in v.account_records() if r.account in NAMES]
        views = [v.account(name) for name in held]
        open_ = [x for x in views if x.position_size > 0.0 and x.estimated_liquidation_price > 0]
        if open_:
            view = open_[pick % len(open_)]
            side = 1.0 if view.position_side == "long" else -1.0
            price = view.estimated_liquidation_price * (1.0 - side * overshoot)
            self.h.set_index(min(max(price, 500.0), 2000.0))
            self.liquidate_all()

    @rule()
    def update_index(self) -> None:
        self.attempt(self.h.venue.update_index, "keeper")

    @rule()
    def liquidate(self) -> None:
        self.liquidate_all()

    def liquidate_all(self) -> None:
        """The liquidator takes what is due from every liquidatable account."""
        v = self.h.venue
        for row in v.liquidatable_accounts().tolist():
            view = v.account(row)
            amount = view.liquidation_amount or view.position_size
            ok, _ = self.attempt(v.liquidate, "liquidator", row, amount)
            if ok:
                after = v.account(row)
                assert after.position_size == 0.0 or after.is_safe

    @rule(lp=LPS, fraction=st.floats(0.01, 1.2))
    def add_liquidity(self, lp: str, fraction: float) -> None:
        self.attempt(self.h.venue.add_liquidity, lp, fraction * self.withdrawable(lp))

    @rule(lp=LPS, fraction=st.floats(0.01, 1.0))
    def remove_liquidity(self, lp: str, fraction: float) -> None:
        held = self.h.venue.share_balance(lp)
        self.attempt(self.h.venue.remove_liquidity, lp, fraction * held if held else 1.0)

    @precondition(lambda self: self.steps >= 20)
    @rule(at_mark=st.booleans())
    def settle_everything(self, at_mark: bool) -> None:
        v = self.h.venue
        price = v.mark_price() if at_mark else v.index_price()
        if not self.attempt(v.begin_global_settlement, price)[0]:
            return
        self.attempt(v.global_settled)
        assert v.status is Status.SETTLED
        for holder, shares in dict(v.share_holders()).items():
            assert self.attempt(v.settle_shares, holder, shares)[0]
        for row in v.accounts_to_settle().tolist():
            assert self.attempt(self.h.settle, row)[0]
        assert v.accounts_to_settle().size == 0

    @invariant()
    def positions_read_as_the_views_say(self) -> None:
        """``signed_position`` is the view's position with its side's sign, on every product,
        by name and by row, or refuses what the view refuses (an unknown account)."""
        venue = self.h.venue
        for product in venue.products:
            v = venue.product(product)
            if not supports(v, PositionReader):
                continue
            reader: Any = v
            names = [r.account for r in v.account_records()]
            rows = list(range(len(names) + 1))  # and one past the last
            for account in [*NAMES, "nobody", "lp-0", *names, *rows]:
                try:
                    view = v.account(account)
                except EngineError as exc:
                    try:
                        reader.signed_position(account)
                    except EngineError as again:
                        assert type(again) is type(exc)
                    else:
                        raise AssertionError(f"{account!r}: the view refused, the read did not")
                    continue
                size = view.position_size
                expected = size if view.position_side == "long" else -size
                assert reader.signed_position(account) == expected, account

    @invariant()
    def books_balance(self) -> None:
        self.steps += 1
        self.h.assert_books_balance()


def test_invariants_hold_after_any_operation_sequence(kind: str) -> None:
    machine = type(f"VenueMachine_{kind}", (VenueMachine,), {"kind": kind})
    run_state_machine_as_test(machine, settings=SEQUENCES)
