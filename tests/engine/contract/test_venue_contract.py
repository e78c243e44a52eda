"""The venue contract: what every exchange design must do, checked on each registered kind.

Each test runs once per kind of :data:`venue_harness.KINDS` (the registered designs and the
test-only constant-product venue) on a venue built through its registry spec.
"""

from __future__ import annotations

import math

import cpmm_venue
import pytest
from venue_harness import KINDS, PROFILES, Harness

from perpsim.engine.core.status import Status
from perpsim.engine.registry import venue_kinds
from perpsim.engine.venue import COMMON_COLUMNS, PositionReader, Venue, VenueRules, supports
from perpsim.errors import (
    BadAmountError,
    InsufficientBalanceError,
    LotSizeError,
    PriceLimitError,
    UnknownProductError,
    UnsafeError,
    WrongStatusError,
)


def make_unsafe(h: Harness, account: str, *, bankrupt: bool = False) -> None:
    """Open a leveraged long on ``account`` and lower the index until it is unsafe (or bankrupt)."""
    h.open_position(account, 5_000.0, 8.0, 1.0)
    price = h.venue.index_price()
    for _ in range(200):
        view = h.venue.account(account)
        if (
            view.is_bankrupt if bankrupt else not view.is_safe
        ) and h.venue.liquidatable_accounts().size:
            return
        price *= 0.995
        h.advance(1)
        h.set_index(price)
    raise AssertionError(f"{h.kind}: {account} never became unsafe")


def liquidate_fully(h: Harness, liquidator: str, account: str) -> None:
    """Liquidate ``account`` by the amount the venue says is due."""
    v = h.venue
    view = v.account(account)
    amount = view.liquidation_amount or view.position_size
    result = h.do(v.liquidate, liquidator, account, amount)
    assert result.trader == account and result.liquidator == liquidator
    assert 0.0 < result.amount <= view.position_size


# -- the registry and the shape of a venue --------------------------------------------------------


def test_every_kind_has_a_profile(cpmm_registered: str) -> None:
    """A registered design without a contract profile would escape the suite."""
    assert set(venue_kinds()) <= set(PROFILES)
    assert cpmm_registered in KINDS


def test_build_gives_a_venue_of_the_kind(harness: Harness) -> None:
    v = harness.venue
    assert isinstance(v, Venue)
    assert v.kind == harness.spec.kind == harness.kind
    assert v.status is Status.NORMAL
    assert v.now == harness.venue.now
    assert harness.events, "the set-up reported no event"
    assert all(c.startswith(f"{harness.kind}_") for c in harness.spec.columns)
    harness.assert_books_balance()


def test_products_are_the_specs_and_each_is_a_venue(harness: Harness) -> None:
    """A venue trades the products its spec declares; each product view is a venue that shares
    the accounts; an unknown product is refused."""
    h, v = harness, harness.venue
    assert v.products == h.spec.products
    assert v.products and all(isinstance(p, str) and p for p in v.products)
    assert len(set(v.products)) == len(v.products)
    h.deposit("trader", 5_000.0)
    for name in v.products:
        view = v.product(name)
        assert isinstance(view, Venue)
        assert view.products == v.products
        assert view.account("trader").cash_balance == v.account("trader").cash_balance
        assert view.index_price() > 0.0 and view.rules.trading_lot_size > 0.0
    if len(v.products) == 1:
        assert v.product(v.products[0]) is v
    error = h.assert_rejected(v.product, "no_such_product")
    assert isinstance(error, UnknownProductError)
    assert "no_such_product" in str(error)


def test_observe_has_the_common_columns_then_the_kinds(harness: Harness) -> None:
    h, v = harness, harness.venue
    expected = [*COMMON_COLUMNS, *h.spec.columns]
    assert list(v.observe()) == expected
    h.open_position("trader", 10_000.0, 3.0, 1.0)
    h.advance(3600)
    assert list(v.observe()) == expected
    h.do(v.begin_global_settlement, v.index_price())
    assert list(v.observe()) == expected
    assert v.observe()["status"] == Status.EMERGENCY.value


def test_rules_follow_governance(harness: Harness) -> None:
    h, v = harness, harness.venue
    rules = v.rules
    assert isinstance(rules, VenueRules)
    assert 0.0 < rules.maintenance_margin_rate < rules.initial_margin_rate < 1.0
    assert 0.0 < rules.lot_size <= rules.trading_lot_size
    key, value, field, expected = h.profile.governance_change
    assert getattr(rules, field) != expected
    h.do(v.set_governance, key, value)
    assert isinstance(v.rules, VenueRules)
    assert getattr(v.rules, field) == expected
    bad_key, bad_value = h.profile.bad_governance
    h.assert_rejected(v.set_governance, bad_key, bad_value)
    h.assert_rejected(v.set_governance, "no_such_key", 1.0)
    assert getattr(v.rules, field) == expected


# -- conservation ---------------------------------------------------------------------------------


def test_collateral_is_conserved_through_a_whole_life(harness: Harness) -> None:
    """Deposits, trades, funding, an index update, liquidations, liquidity, withdrawals and a
    global settlement: after each, the books balance and deposits − withdrawals is what the
    venue holds (plus any bad debt written off)."""
    h, v = harness, harness.venue
    h.assert_books_balance()
    h.open_position("long", 20_000.0, 2.0, 1.0)
    h.open_position("short", 20_000.0, 1.0, -1.0)
    h.deposit("liquidator", 1_000_000.0)
    h.deposit("keeper", 1.0)
    h.deposit("lp", 100_000.0)
    h.assert_books_balance()
    # Funding: time passes with the premium the trades left.
    acc = v.accumulated_funding_per_contract()
    h.advance(4 * 3600)
    assert v.accumulated_funding_per_contract() != acc
    h.assert_books_balance()
    h.set_index(v.index_price() * 1.002)
    h.advance(60)
    h.do(v.update_index, "keeper")
    shares = h.do(v.add_liquidity, "lp", 50_000.0)
    assert shares > 0.0 and v.share_balance("lp") == pytest.approx(shares)
    h.do(v.trade, "short", h.lots(0.5))
    h.withdraw("short", 1_000.0)
    h.assert_books_balance()
    # A crash: an unsafe account and a bankrupt one are liquidated.
    make_unsafe(h, "victim")
    liquidate_fully(h, "liquidator", "victim")
    make_unsafe(h, "bankrupt", bankrupt=True)
    liquidate_fully(h, "liquidator", "bankrupt")
    h.do(v.remove_liquidity, "lp", v.share_balance("lp") / 2.0)
    h.advance(3600)
    h.assert_books_balance()
    # Global settlement at the index (nobody left bankrupt): every account is paid out.
    for row in v.liquidatable_accounts().tolist():
        liquidate_fully(h, "liquidator", v.account_name(row))
    h.do(v.begin_global_settlement, v.index_price())
    h.do(v.global_settled)
    for holder, held in dict(v.share_holders()).items():
        h.do(v.settle_shares, holder, held)
    assert not dict(v.share_holders())
    for row in v.accounts_to_settle().tolist():
        name = v.account_name(row)
        owed = v.account(name).margin_balance
        assert owed >= 0.0
        assert h.do(h.settle, name) == pytest.approx(owed, rel=1e-12, abs=1e-9)
    assert v.accounts_to_settle().size == 0
    assert v.open_interest() == pytest.approx(0.0, abs=1e-9)
    h.assert_books_balance()


def test_funding_is_zero_sum(harness: Harness) -> None:
    """What longs pay, shorts receive, the pool's own account included."""
    h, v = harness, harness.venue
    h.open_position("long", 100_000.0, 4.0, 1.0)
    h.advance(600)

    def paid() -> dict[str, float]:
        return {r.account: v.account(r.account).funding_loss for r in v.account_records()}

    before = paid()
    h.advance(8 * 3600)
    after = paid()
    delta = {name: after[name] - before.get(name, 0.0) for name in after}
    gross = sum(abs(x) for x in delta.values())
    assert v.funding_rate() > 0.0, "buying should leave a premium, so longs pay"
    assert delta["long"] > 0.0
    assert gross > 0.0
    assert abs(sum(delta.values())) <= 1e-9 * gross
    h.assert_books_balance()


# -- trading --------------------------------------------------------------------------------------


def test_a_quote_is_the_price_of_the_trade_that_follows(harness: Harness) -> None:
    h, v = harness, harness.venue
    h.deposit("trader", 200_000.0)
    for size, wait in ((2.0, 0), (-3.5, 600), (1.25, 1), (-0.75, 3600), (4.0, 0)):
        h.advance(wait)
        q = v.quote(h.lots(size))
        fill = h.do(v.trade, "trader", h.lots(size))
        assert fill.size == q.size == h.lots(size)
        assert fill.price == q.price
        assert fill.fee == q.fee
        assert q.price_impact == pytest.approx(q.price / q.fair_price - 1.0)
        assert (q.price_impact > 0.0) == (size > 0.0)


@pytest.mark.parametrize("direction", [1.0, -1.0], ids=["up", "down"])
def test_size_for_price_moves_the_pool_toward_the_target(
    harness: Harness, direction: float
) -> None:
    h, v = harness, harness.venue
    h.deposit("arb", 1_000_000.0)
    fair = v.fair_price()
    move = 1.0 + direction * h.profile.price_move
    target = fair * move
    size = v.size_for_price(target)
    assert (size > 0.0) == (move > 1.0)
    h.do(v.trade, "arb", h.lots(size))
    assert abs(v.fair_price() - target) < abs(fair - target)
    assert abs(v.fair_price() - target) < 0.1 * abs(fair - target)


# -- liquidation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bankrupt", [False, True], ids=["unsafe", "bankrupt"])
def test_a_liquidation_leaves_the_account_safe_or_closed(harness: Harness, bankrupt: bool) -> None:
    h, v = harness, harness.venue
    h.deposit("liquidator", 1_000_000.0)
    make_unsafe(h, "victim", bankrupt=bankrupt)
    assert v.account("victim").is_bankrupt == bankrupt or not bankrupt
    rows = v.liquidatable_accounts().tolist()
    assert v.account_name(rows[0]) in {v.account_name(r) for r in rows}
    assert "victim" in {v.account_name(r) for r in rows}
    liquidate_fully(h, "liquidator", "victim")
    after = v.account("victim")
    assert after.position_size == 0.0 or after.is_safe
    assert "victim" not in {v.account_name(r) for r in v.liquidatable_accounts().tolist()}


# -- rejections -----------------------------------------------------------------------------------


def test_rejected_operations_change_nothing(harness: Harness) -> None:
    """Each refusal raises the typed error and leaves every observable bit as it was."""
    h, v = harness, harness.venue
    h.open_position("trader", 5_000.0, 2.0, 1.0)
    h.deposit("liquidator", 100_000.0)
    h.advance(600)
    lot = v.rules.trading_lot_size
    for bad in (-1.0, 0.0, math.nan, math.inf):
        assert isinstance(h.assert_rejected(v.deposit, "trader", bad), BadAmountError)
        assert isinstance(h.assert_rejected(v.withdraw, "trader", bad), BadAmountError)
    assert isinstance(h.assert_rejected(v.withdraw, "trader", 1e9), InsufficientBalanceError)
    h.assert_rejected(v.withdraw, "nobody", 1.0)
    assert isinstance(h.assert_rejected(v.trade, "trader", 0.0), BadAmountError)
    assert isinstance(h.assert_rejected(v.trade, "trader", lot / 3.0), LotSizeError)
    unsafe = h.lots(20.0 * 5_000.0 / v.index_price())
    assert isinstance(h.assert_rejected(v.trade, "trader", unsafe), UnsafeError)
    q = v.quote(lot)
    assert isinstance(h.assert_rejected(v.trade, "trader", lot, q.price * 0.99), PriceLimitError)
    h.assert_rejected(v.trade, "nobody", lot)
    h.assert_rejected(v.liquidate, "liquidator", "trader", lot)
    h.assert_rejected(v.remove_liquidity, "trader", 1.0)
    h.assert_rejected(v.add_liquidity, "trader", 1e9)
    h.assert_rejected(v.set_time, v.now - 1)
    for op, args in (
        (v.settle, ("trader",)),
        (v.settle_shares, ("trader", 1.0)),
        (v.global_settled, ()),
    ):
        assert isinstance(h.assert_rejected(op, *args), WrongStatusError)
    h.do(v.begin_global_settlement, v.index_price())
    for op, args in (
        (v.trade, ("trader", lot)),
        (v.withdraw, ("trader", 1.0)),
        (v.add_liquidity, ("trader", 100.0)),
        (v.settle, ("trader",)),
    ):
        assert isinstance(h.assert_rejected(op, *args), WrongStatusError)
    h.do(v.global_settled)
    for op, args in (
        (v.deposit, ("trader", 1.0)),
        (v.begin_global_settlement, (v.index_price(),)),
        (v.global_settled, ()),
    ):
        assert isinstance(h.assert_rejected(op, *args), WrongStatusError)
    holder = next(iter(v.share_holders()))
    h.assert_rejected(v.settle_shares, holder, 2.0 * v.share_holders()[holder])
    h.assert_books_balance()


def test_the_test_venue_is_registered_only_by_its_fixture() -> None:
    """Outside a test that asks for it, the registry is as shipped."""
    assert cpmm_venue.KIND not in venue_kinds()


def test_the_shipped_designs_read_positions(cpmm_registered: str) -> None:
    """Every shipped design offers the position read agents use on every look (the sequence
    test compares it with the views); the test venue shows the capability is optional."""
    for kind in venue_kinds():
        venue = Harness(kind).venue
        for product in venue.products:
            assert supports(venue.product(product), PositionReader) is (kind != cpmm_venue.KIND)
