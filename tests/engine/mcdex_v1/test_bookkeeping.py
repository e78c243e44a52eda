"""The MCDEX v1 perpetual's incremental bookkeeping agrees with whole-array passes.

- The unsafe scan skips its pass when the liquidation bounds rule every account out; the rows it
  returns must be exactly those a full pass finds (``MarginBalance < MaintenanceMargin``), at
  prices on both sides of the nearest liquidation price, for random books, funding and social
  loss.
- The accounting check between full checks looks only at the accounts written since the last
  one and at incrementally kept sums; it must find each kind of violation a full check finds,
  at the check right after the write that causes it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpsim.engine import (
    AccountState,
    ExternalPriceSource,
    Perpetual,
    PerpetualGovernance,
    Side,
)


def exact_unsafe(perp: Perpetual, price: float) -> list[int]:
    """``MarginBalance < MaintenanceMargin`` by a whole-array pass (no bounds)."""
    acc = perp.accumulated_funding_per_contract
    mb = perp._compute_margin_balances(price, acc)
    mm = perp.accounts.position_size * price * perp.governance.maintenance_margin_rate
    return np.flatnonzero(mb < mm).tolist()


def exact_bankrupt(perp: Perpetual, price: float) -> list[int]:
    acc = perp.accumulated_funding_per_contract
    return np.flatnonzero(perp._compute_margin_balances(price, acc) < 0.0).tolist()


account = st.tuples(
    st.sampled_from([Side.FLAT, Side.LONG, Side.SHORT]),
    st.floats(0.001, 50.0),  # size
    st.floats(500.0, 1500.0),  # entry price
    st.floats(-200.0, 3000.0),  # cash
    st.floats(-5.0, 5.0),  # entry social loss per contract
    st.floats(-5.0, 5.0),  # entry funding per contract
)


def book(accounts: list[tuple[Side, float, float, float, float, float]]) -> Perpetual:
    perp = Perpetual(PerpetualGovernance(), ExternalPriceSource(1000.0), capacity=4)
    for i, (side, size, entry, cash, esl, efl) in enumerate(accounts):
        row = perp.accounts.add(f"a{i}")
        if side is Side.FLAT:
            perp.accounts.write(row, AccountState(abs(cash), Side.FLAT, 0.0, 0.0, 0.0, 0.0))
        else:
            perp.accounts.write(
                row, AccountState(cash, side, size, size * entry, size * esl, size * efl)
            )
    return perp


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    accounts=st.lists(account, min_size=1, max_size=30),
    acc=st.floats(-20.0, 20.0),
    slpc=st.tuples(st.floats(0.0, 10.0), st.floats(0.0, 10.0)),
    moves=st.lists(st.floats(-0.9, 3.0), min_size=1, max_size=6),
    rewrite=st.lists(st.tuples(st.integers(0, 29), account), max_size=5),
)
def test_the_unsafe_scan_finds_exactly_what_a_full_pass_finds(
    accounts: list[tuple[Side, float, float, float, float, float]],
    acc: float,
    slpc: tuple[float, float],
    moves: list[float],
    rewrite: list[tuple[int, tuple[Side, float, float, float, float, float]]],
) -> None:
    perp = book(accounts)
    src = perp.price_source
    assert isinstance(src, ExternalPriceSource)
    src.set_accumulated_funding(acc)
    perp.social_loss_per_contract_long, perp.social_loss_per_contract_short = slpc
    prices = [1000.0 * (1.0 + m) for m in moves]
    # Also every account's own liquidation price, and a hair either side of it.
    rate = perp.governance.maintenance_margin_rate
    for side, size, entry, cash, esl, efl in accounts:
        if side is Side.LONG:
            u = (size * entry - cash - size * esl - size * efl) / size
            p_liq = (u + slpc[0] + acc) / (1.0 - rate)
        elif side is Side.SHORT:
            v = (cash + size * entry + size * esl - size * efl) / size
            p_liq = (v - slpc[1] + acc) / (1.0 + rate)
        else:
            continue
        if p_liq > 0:
            prices += [p_liq, p_liq * (1 + 1e-12), p_liq * (1 - 1e-12), p_liq * 1.001]
    for k, (i, (side, size, entry, cash, esl, efl)) in enumerate(rewrite):
        prices.append(prices[k % len(prices)])
        if i < len(perp.accounts):
            state = (
                AccountState(abs(cash), Side.FLAT, 0.0, 0.0, 0.0, 0.0)
                if side is Side.FLAT
                else AccountState(cash, side, size, size * entry, size * esl, size * efl)
            )
            perp.accounts.write(i, state)
        for p in prices:
            assert perp.unsafe_accounts(p).tolist() == exact_unsafe(perp, p), p
            assert perp.bankrupt_accounts(p).tolist() == exact_bankrupt(perp, p), p
    for p in prices:
        assert perp.unsafe_accounts(p).tolist() == exact_unsafe(perp, p), p
        assert perp.bankrupt_accounts(p).tolist() == exact_bankrupt(perp, p), p


def test_a_flat_account_with_negative_cash_is_always_found() -> None:
    perp = book([(Side.LONG, 1.0, 1000.0, 500.0, 0.0, 0.0)])
    assert perp.unsafe_accounts(1000.0).size == 0
    perp.accounts.write(0, AccountState(-1.0, Side.FLAT, 0.0, 0.0, 0.0, 0.0))  # the dev row
    assert perp.unsafe_accounts(1000.0).tolist() == [0]
    assert perp.bankrupt_accounts(1000.0).tolist() == [0]
    perp.accounts.write(0, AccountState(0.0, Side.FLAT, 0.0, 0.0, 0.0, 0.0))
    assert perp.unsafe_accounts(1000.0).size == 0


# ---------------------------------------------------------------------------------------------
# The accounting check between full checks


def balanced() -> Perpetual:
    """Two traders facing each other, deposits booked, the books balanced and fully checked."""
    perp = Perpetual(PerpetualGovernance(), ExternalPriceSource(1000.0), capacity=4)
    for name in ("a", "b", "c"):
        perp.deposit(name, 1000.0)
    perp.trade("a", "b", Side.LONG, 1000.0, 1.0)
    assert perp.check_invariants(raise_on_violation=False, full=True) == []
    return perp


def both(perp: Perpetual) -> tuple[list[str], list[str]]:
    incremental = perp.check_invariants(raise_on_violation=False, full=False)
    return incremental, perp.check_invariants(raise_on_violation=False, full=True)


def kinds(problems: list[str]) -> list[str]:
    return [p.split(":")[0].split(" ")[0] + " " + p.split(" ")[1] for p in problems]


def test_the_incremental_check_passes_on_balanced_books_and_after_operations() -> None:
    perp = balanced()
    perp.deposit("d", 250.0)
    perp.withdraw("a", 10.0)
    src = perp.price_source
    assert isinstance(src, ExternalPriceSource)
    src.set_mark_price(1010.0)
    src.set_accumulated_funding(0.3)
    assert both(perp) == ([], [])


@pytest.mark.parametrize(
    "corrupt",
    [
        # a flat account with negative cash
        lambda p: p.accounts.write(p.accounts.row("c"), AccountState(-5.0, Side.FLAT, 0, 0, 0, 0)),
        # side and size disagree
        lambda p: p.accounts.write(
            p.accounts.row("c"), AccountState(1000.0, Side.FLAT, 1, 0, 0, 0)
        ),
        # a negative size
        lambda p: p.accounts.write(
            p.accounts.row("c"), AccountState(1000.0, Side.LONG, -1.0, -1000.0, 0, 0)
        ),
        # a position written without its counterparty (open interest no longer matches)
        lambda p: p.accounts.write(
            p.accounts.row("c"), AccountState(1000.0, Side.LONG, 1.0, 1000.0, 0, 0)
        ),
        # collateral out of thin air
        lambda p: p.accounts.write(
            p.accounts.row("c"), AccountState(1500.0, Side.FLAT, 0, 0, 0, 0)
        ),
        # a negative insurance fund
        lambda p: setattr(p, "insurance_fund", -50.0),
        # social loss per contract decreased
        lambda p: setattr(p, "_slpc_floor", (1.0, 0.0)),
    ],
)
def test_the_incremental_check_finds_what_the_full_check_finds(corrupt: object) -> None:
    perp = balanced()
    assert callable(corrupt)
    corrupt(perp)
    incremental, full = both(perp)
    assert full, "the corruption must be a violation"
    assert kinds(incremental) == kinds(full)


def test_a_governance_change_makes_the_next_check_full() -> None:
    perp = balanced()
    # "a" is long 1 at 1000: a loss that leaves its cash negative while it holds the position is
    # allowed under the contract's "margin" rule...
    row = perp.accounts.row("a")
    st_ = perp.accounts.read(row)
    perp.accounts.write(row, st_._replace(cash_balance=-1.0))
    perp.insurance_fund += st_.cash_balance + 1.0  # keep collateral conserved
    assert perp.check_invariants(raise_on_violation=False, full=True) == []
    # ... but not under "non_negative": the row was not written since, the rule changed.
    perp.set_governance("cash_balance_rule", "non_negative")
    incremental = perp.check_invariants(raise_on_violation=False, full=False)
    assert any("negative cash balance" in p for p in incremental), incremental


def test_sums_follow_many_writes_within_rounding() -> None:
    rng = np.random.default_rng(3)
    perp = Perpetual(PerpetualGovernance(), ExternalPriceSource(1000.0), capacity=4)
    for i in range(50):
        perp.deposit(f"t{i}", 1e4)
    perp.check_invariants(full=True)
    for _ in range(2000):
        i = int(rng.integers(50))
        st_ = perp.accounts.read(perp.accounts.row(f"t{i}"))
        perp.accounts.write(
            perp.accounts.row(f"t{i}"), st_._replace(cash_balance=float(rng.uniform(0, 2e4)))
        )
        perp.check_invariants(raise_on_violation=False, full=False)
    sums = perp._sums
    assert math.isclose(sums.cash, float(perp.accounts.cash_balance.sum()), rel_tol=1e-12)
    assert math.isclose(
        sums.abs_cash, float(np.abs(perp.accounts.cash_balance).sum()), rel_tol=1e-12
    )
