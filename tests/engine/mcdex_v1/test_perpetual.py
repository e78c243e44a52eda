"""Unit tests of the perpetual (seed 002), with numbers worked by hand from the seed's formulas."""

from __future__ import annotations

import math

import pytest

from perpsim.engine import ExternalPriceSource, Perpetual, PerpetualGovernance, Status
from perpsim.errors import (
    BadAmountError,
    GovernanceError,
    InsufficientBalanceError,
    InvalidOperationError,
    LotSizeError,
    UnsafeError,
    WrongStatusError,
)

approx = lambda v: pytest.approx(v, rel=1e-9, abs=1e-9)  # noqa: E731


def make(**gov: object) -> tuple[Perpetual, ExternalPriceSource]:
    base: dict[str, object] = {
        "initial_margin_rate": 0.1,
        "maintenance_margin_rate": 0.05,
        "liquidation_penalty_rate": 0.01,
        "penalty_fund_rate": 0.01,
        "taker_dev_fee_rate": 0.0,
        "maker_dev_fee_rate": 0.0,
    }
    base.update(gov)
    src = ExternalPriceSource(mark_price=100.0)
    perp = Perpetual(PerpetualGovernance(**base), src)  # type: ignore[arg-type]
    return perp, src


# ---------------------------------------------------------------------------------------------
# Governance


def test_governance_rules() -> None:
    with pytest.raises(GovernanceError, match="maintenance_margin_rate < initial_margin_rate"):
        PerpetualGovernance(initial_margin_rate=0.05, maintenance_margin_rate=0.05)
    with pytest.raises(GovernanceError, match="liquidation_penalty_rate"):
        PerpetualGovernance(maintenance_margin_rate=0.05, liquidation_penalty_rate=0.05)
    with pytest.raises(GovernanceError, match="penalty_fund_rate"):
        PerpetualGovernance(maintenance_margin_rate=0.05, penalty_fund_rate=0.06)
    with pytest.raises(GovernanceError, match="multiple of lot_size"):
        PerpetualGovernance(lot_size=0.2, trading_lot_size=0.3)
    with pytest.raises(GovernanceError, match="finite"):
        PerpetualGovernance(initial_margin_rate=math.nan)
    with pytest.raises(GovernanceError, match="social_loss_side"):
        PerpetualGovernance(social_loss_side="both")  # type: ignore[arg-type]
    PerpetualGovernance(lot_size=0.1, trading_lot_size=0.3)


def test_governance_change_at_run_time_is_validated() -> None:
    perp, _ = make()
    perp.set_governance("maintenance_margin_rate", 0.08)
    assert perp.governance.maintenance_margin_rate == 0.08
    before = perp.governance
    with pytest.raises(GovernanceError):
        perp.set_governance("maintenance_margin_rate", 0.2)  # would exceed im
    with pytest.raises(GovernanceError, match="unknown governance key"):
        perp.set_governance("margin", 0.2)
    assert perp.governance is before


# ---------------------------------------------------------------------------------------------
# Trades: open, partial close, reverse, fees


def test_open_close_reverse_with_fees() -> None:
    perp, src = make(taker_dev_fee_rate=0.001)
    for name in ("a", "b", "c"):
        perp.deposit(name, 100.0)
    fill = perp.trade("a", "b", "buy", 100.0, 5.0)
    assert fill.taker_fee == approx(0.5)  # 100 × 5 × 0.001, all on the opened part
    a = perp.view("a")
    assert (a.position_side, a.position_size, a.entry_value) == ("long", 5.0, 500.0)
    assert a.cash_balance == approx(99.5)
    assert a.available_margin == approx(99.5 - 50.0)
    assert perp.view("dev").cash_balance == approx(0.5)
    assert perp.total_size_long == perp.total_size_short == 5.0

    src.set_mark_price(110.0)
    b = perp.view("b")
    assert b.pnl1 == approx(-50.0)
    assert b.margin_balance == approx(50.0)
    assert b.maintenance_margin == approx(27.5)
    assert b.is_safe and not b.is_im_safe

    # a sells 2 to b: both close 2 at 110.
    fill = perp.trade("a", "b", "sell", 110.0, 2.0)
    assert fill.taker_fee == approx(0.22)  # soft fee on the closed part
    a = perp.view("a")
    assert a.cash_balance == approx(99.5 + 20.0 - 0.22)
    assert (a.position_size, a.entry_value) == (approx(3.0), approx(300.0))
    b = perp.view("b")
    assert b.cash_balance == approx(80.0)  # RPNL = 200 − 220
    assert b.entry_value == approx(300.0)
    assert perp.total_size_long == approx(3.0)

    # a sells 5 to c: closes 3 (RPNL +30), opens 2 short at 110.
    fill = perp.trade("a", "c", "sell", 110.0, 5.0)
    assert fill.taker_fee == approx(0.55)
    a = perp.view("a")
    assert a.position_side == "short"
    assert (a.position_size, a.entry_value) == (approx(2.0), approx(220.0))
    assert a.cash_balance == approx(99.5 + 20.0 - 0.22 + 30.0 - 0.55)
    assert perp.total_size_long == approx(5.0) and perp.total_size_short == approx(5.0)
    assert perp.check_invariants() == []


def test_maker_rebate_paid_by_dev_and_rejected_when_dev_is_empty() -> None:
    perp, _ = make(taker_dev_fee_rate=0.001, maker_dev_fee_rate=-0.0005)
    perp.deposit("a", 100.0)
    perp.deposit("b", 100.0)
    fill = perp.trade("a", "b", "buy", 100.0, 1.0)
    # dev receives 0.1 from the taker first, then pays the 0.05 rebate.
    assert fill.maker_fee == approx(-0.05)
    assert perp.view("b").cash_balance == approx(100.05)
    assert perp.view("dev").cash_balance == approx(0.05)
    perp2, _ = make(maker_dev_fee_rate=-0.0005)
    perp2.deposit("a", 100.0)
    perp2.deposit("b", 100.0)
    with pytest.raises(InsufficientBalanceError, match="rebate"):
        perp2.trade("a", "b", "buy", 100.0, 1.0)


def test_open_requires_initial_margin_and_fee_cover() -> None:
    perp, _ = make(taker_dev_fee_rate=0.01)
    perp.deposit("a", 100.0)
    perp.deposit("b", 1000.0)
    snap = perp.accounts.snapshot()
    # 10 contracts at 100 need 100 of initial margin; the 10 fee leaves 90.
    with pytest.raises(UnsafeError, match="does not cover the dev fee"):
        perp.trade("a", "b", "buy", 100.0, 10.0)
    assert all((snap[k] == v).all() for k, v in perp.accounts.snapshot().items())
    perp.trade("a", "b", "buy", 100.0, 9.0)


def test_close_fee_is_capped_at_what_is_left() -> None:
    perp, src = make(taker_dev_fee_rate=0.01)
    perp.deposit("a", 11.0)
    perp.deposit("b", 1000.0)
    perp.trade("a", "b", "buy", 100.0, 1.0)  # fee 1, cash 10
    src.set_mark_price(91.0)
    # Closing at 91 realises −9: cash 1; the 0.91 fee is below it, fully charged.
    fill = perp.trade("a", "b", "sell", 91.0, 1.0)
    assert fill.taker_fee == approx(0.91)
    perp.deposit("c", 11.0)
    perp.trade("c", "b", "buy", 91.0, 1.0)  # fee 0.91, cash 10.09
    src.set_mark_price(81.0)
    with pytest.raises(UnsafeError):
        perp.trade("c", "b", "sell", 81.0, 0.5)  # partial close leaves c unsafe
    src.set_mark_price(81.5)
    fill = perp.trade("c", "b", "sell", 81.5, 1.0)  # RPNL −9.5 leaves 0.59; fee 0.815 capped
    assert fill.taker_fee == approx(0.59)
    assert perp.view("c").cash_balance == approx(0.0)


def test_trade_rejections_leave_state_unchanged() -> None:
    perp, _ = make(lot_size=0.1, trading_lot_size=0.2)
    perp.deposit("a", 100.0)
    perp.deposit("b", 100.0)
    snap = perp.accounts.snapshot()
    cases: list[tuple[type[Exception], tuple[object, ...]]] = [
        (LotSizeError, ("a", "b", "buy", 100.0, 0.3)),
        (BadAmountError, ("a", "b", "buy", 100.0, -1.0)),
        (BadAmountError, ("a", "b", "buy", math.nan, 0.2)),
        (BadAmountError, ("a", "b", "buy", math.inf, 0.2)),
        (BadAmountError, ("a", "b", "hold", 100.0, 0.2)),
        # zz was never touched: an empty account, which cannot open without margin.
        (UnsafeError, ("a", "zz", "buy", 100.0, 0.2)),
        (InvalidOperationError, ("a", "a", "buy", 100.0, 0.2)),
    ]
    for exc, args in cases:
        with pytest.raises(exc):
            perp.trade(*args)  # type: ignore[arg-type]
    assert all((snap[k] == v).all() for k, v in perp.accounts.snapshot().items())
    assert "zz" not in perp.accounts
    perp.trade("a", "b", "buy", 100.0, 0.4)


# ---------------------------------------------------------------------------------------------
# Computed quantities


def test_account_quantities_long_and_short() -> None:
    perp, src = make()
    perp.deposit("a", 100.0)
    perp.deposit("b", 100.0)
    perp.trade("a", "b", "buy", 100.0, 10.0)
    src.set_accumulated_funding(0.5)
    a, b = perp.view("a"), perp.view("b")
    assert a.funding_loss == approx(5.0)  # 0.5 × 10 − 0
    assert b.funding_loss == approx(-5.0)
    assert a.estimated_liquidation_price == approx((100 - 1000 - 0 - 5) / (10 * 0.05 - 10))
    assert b.estimated_liquidation_price == approx((100 + 1000 - 0 + 5) / (10 * 0.05 + 10))
    at95 = perp.view("a", 95.0)
    assert at95.pnl1 == approx(-50.0)
    assert at95.margin_balance == approx(100 - 50 - 5)
    assert at95.maintenance_margin == approx(47.5)
    assert at95.position_margin == approx(95.0)
    assert not at95.is_safe and not at95.is_bankrupt
    # At the estimated liquidation price the margin balance equals the maintenance margin.
    p = a.estimated_liquidation_price
    v = perp.view("a", p)
    assert v.margin_balance == approx(v.maintenance_margin)


def test_vectorised_scan_matches_views() -> None:
    perp, src = make()
    for i in range(20):
        perp.deposit(f"t{i}", 20.0 + 5 * i)
    perp.deposit("mm", 10_000.0)
    for i in range(20):
        perp.trade(f"t{i}", "mm", "buy" if i % 2 else "sell", 100.0, 1.0 + (i % 3))
    src.set_mark_price(88.0)
    mbs = perp.margin_balances()
    for row in range(len(perp.accounts)):
        assert mbs[row] == approx(perp.view(row).margin_balance)
    unsafe = {perp.name(r) for r in perp.unsafe_accounts()}
    expected = {perp.name(r) for r in range(len(perp.accounts)) if not perp.view(r).is_safe}
    assert unsafe == expected and unsafe
    bankrupt = {perp.name(r) for r in perp.bankrupt_accounts()}
    assert bankrupt == {n for n in expected if perp.view(n).is_bankrupt}


# ---------------------------------------------------------------------------------------------
# Withdraw and remargin


def test_withdraw_remargins_then_checks() -> None:
    perp, src = make()
    perp.deposit("a", 200.0)
    perp.deposit("b", 1000.0)
    perp.trade("a", "b", "buy", 100.0, 10.0)
    src.set_mark_price(110.0)
    a = perp.view("a")
    assert a.withdrawable_balance == approx(300.0 - 110.0)
    with pytest.raises(InsufficientBalanceError):
        perp.withdraw("a", 190.000001)
    perp.withdraw("a", 190.0)
    a = perp.view("a")
    assert a.cash_balance == approx(110.0)  # realised 100, minus 190
    assert a.entry_value == approx(1100.0)
    assert a.is_im_safe
    assert perp.total_withdrawals == 190.0
    assert perp.check_invariants() == []


def test_withdraw_refused_when_unsafe_or_in_emergency() -> None:
    perp, src = make()
    perp.deposit("a", 100.0)
    perp.deposit("b", 1000.0)
    perp.trade("a", "b", "buy", 100.0, 10.0)
    src.set_mark_price(94.0)
    with pytest.raises(UnsafeError):
        perp.withdraw("a", 1.0)
    perp.begin_global_settlement(100.0)
    with pytest.raises(WrongStatusError):
        perp.withdraw("b", 1.0)


# ---------------------------------------------------------------------------------------------
# Liquidation


def _long_victim(**gov: object) -> tuple[Perpetual, ExternalPriceSource]:
    perp, src = make(**gov)
    perp.deposit("a", 100.0)
    perp.deposit("b", 10_000.0)
    perp.deposit("liq", 10_000.0)
    perp.trade("a", "b", "buy", 100.0, 10.0)
    return perp, src


def test_liquidation_amount_is_the_seeds_x() -> None:
    perp, src = _long_victim()
    src.set_mark_price(92.0)
    # X = (100 − 1000 + 920 − 92·0.1·10) / (92 (0.02 − 0.1)) = −72 / −7.36
    x = -72.0 / -7.36
    assert perp.liquidation_amount("a") == approx(x)
    r = perp.liquidate("liq", "a", 10.0)
    assert r.amount == approx(x)
    assert r.penalty_to_liquidator == approx(0.01 * 92 * x)
    assert r.penalty_to_fund == approx(0.01 * 92 * x)
    a = perp.view("a")
    # Afterwards the account sits exactly at its initial margin.
    assert a.margin_balance == approx(a.position_margin)
    liq = perp.view("liq")
    assert liq.position_side == "long" and liq.position_size == approx(x)
    assert liq.entry_value == approx(92.0 * x)
    assert perp.insurance_fund == approx(0.92 * x)
    assert perp.check_invariants() == []


def test_liquidation_amount_rounds_up_to_lot_and_respects_max() -> None:
    perp, src = _long_victim(lot_size=1.0, trading_lot_size=1.0)
    src.set_mark_price(92.0)
    assert perp.liquidation_amount("a") == 10.0  # 9.78 rounded up to 10
    with pytest.raises(LotSizeError):
        perp.liquidate("liq", "a", 2.5)
    r = perp.liquidate("liq", "a", 3.0)
    assert r.amount == 3.0


def test_liquidation_loss_paid_by_insurance_fund() -> None:
    perp, src = _long_victim()
    perp.deposit_insurance_fund(100.0)
    src.set_mark_price(85.0)
    r = perp.liquidate("liq", "a", 10.0)
    assert r.amount == 10.0  # X = 19.85 clipped to the position
    # cash 100 + RPNL −150 − penalties 17 = −67
    assert r.liquidation_loss == approx(67.0)
    assert r.insurance_fund_paid == approx(67.0)
    assert r.social_loss == 0.0
    assert perp.insurance_fund == approx(100.0 + 8.5 - 67.0)
    assert perp.view("a").cash_balance == 0.0
    assert perp.view("a").position_side == "flat"
    assert perp.view("liq").cash_balance == approx(10_008.5)
    assert perp.check_invariants() == []


def test_social_loss_goes_to_the_opposite_side_by_default() -> None:
    perp, src = _long_victim()
    src.set_mark_price(85.0)
    r = perp.liquidate("liq", "a", 10.0)
    # The fund held only the 8.5 penalty: 67 − 8.5 = 58.5 is socialised on the 10 shorts.
    assert r.insurance_fund_paid == approx(8.5)
    assert r.social_loss == approx(58.5)
    assert perp.social_loss_per_contract_short == approx(5.85)
    assert perp.social_loss_per_contract_long == 0.0
    b = perp.view("b")
    assert b.social_loss == approx(58.5)
    assert b.margin_balance == approx(10_000 + 1000 - 850 - 58.5)
    assert perp.insurance_fund == 0.0
    assert perp.check_invariants() == []


def test_social_loss_same_side_option_charges_the_liquidator() -> None:
    perp, src = _long_victim(social_loss_side="same")
    src.set_mark_price(85.0)
    perp.liquidate("liq", "a", 10.0)
    assert perp.social_loss_per_contract_long == approx(5.85)
    liq = perp.view("liq")
    assert liq.social_loss == approx(58.5)
    assert liq.margin_balance == approx(10_000 + 8.5 - 58.5)
    assert perp.check_invariants() == []


def test_spec_worked_social_loss_example() -> None:
    # spec/mcdex-v1.md: two longs of 1 at 7000, one with cash 1000; price falls to 5000;
    # penalties 1% in total; fund empty; 1000 longs in the market. Same-side rule, as written.
    perp, src = make(liquidation_penalty_rate=0.01, penalty_fund_rate=0.0, social_loss_side="same")
    src.set_mark_price(7000.0)
    perp.deposit("victim", 1000.0)
    perp.deposit("survivor", 7000.0)
    perp.deposit("others", 10_000_000.0)
    perp.deposit("shorts", 10_000_000.0)
    perp.deposit("liq", 10_000_000.0)
    perp.trade("victim", "shorts", "buy", 7000.0, 1.0)
    perp.trade("survivor", "shorts", "buy", 7000.0, 1.0)
    perp.trade("others", "shorts", "buy", 7000.0, 998.0)
    src.set_mark_price(5000.0)
    r = perp.liquidate("liq", "victim", 1.0)
    assert r.liquidation_loss == approx(1050.0)
    assert perp.social_loss_per_contract_long == approx(1.05)
    s = perp.view("survivor")
    assert s.pnl2 == approx(-2001.05)
    assert s.margin_balance == approx(4998.95)
    assert s.cash_balance == 7000.0
    assert perp.check_invariants() == []


def test_unsocialisable_loss_is_bad_debt() -> None:
    perp, src = make()
    src.set_mark_price(100.0)
    perp.deposit("a", 100.0)
    perp.deposit("liq", 10_000.0)
    perp.open_position("a", "long", 100.0, 10.0)  # set-up: no shorts exist
    # The liquidator closes its own short while taking the position: no short remains.
    src.set_mark_price(85.0)
    r = perp.liquidate("liq", "a", 10.0)
    assert r.social_loss == 0.0
    assert r.bad_debt == approx(58.5)
    assert perp.bad_debt == approx(58.5)
    assert perp.social_loss_per_contract_short == 0.0


def test_liquidation_rejections() -> None:
    perp, src = _long_victim()
    with pytest.raises(InvalidOperationError, match="safe"):
        perp.liquidate("liq", "a", 1.0)
    src.set_mark_price(85.0)
    with pytest.raises(InvalidOperationError, match="itself"):
        perp.liquidate("a", "a", 1.0)
    # A liquidator that never deposited is an empty account: it cannot take the position over.
    with pytest.raises(UnsafeError, match="liquidator nobody"):
        perp.liquidate("nobody", "a", 1.0)
    assert "nobody" not in perp.accounts
    with pytest.raises(BadAmountError):
        perp.liquidate("liq", "a", 0.0)
    perp.deposit("poor", 1.0)
    snap = perp.accounts.snapshot()
    with pytest.raises(UnsafeError, match="liquidator poor"):
        perp.liquidate("poor", "a", 10.0)
    assert all((snap[k] == v).all() for k, v in perp.accounts.snapshot().items())


# ---------------------------------------------------------------------------------------------
# Settlement and admin powers


def test_global_settlement_flow() -> None:
    perp, _ = _long_victim()
    perp.begin_global_settlement(90.0)
    assert perp.status is Status.EMERGENCY and perp.mark_price == 90.0
    perp.begin_global_settlement(95.0)  # the admin corrects the price
    assert perp.mark_price == 95.0
    with pytest.raises(WrongStatusError):
        perp.trade("b", "liq", "buy", 95.0, 1.0)
    perp.deposit("a", 1.0)  # deposits remain allowed
    perp.begin_global_settlement(85.0)
    perp.liquidate("liq", "a", 10.0)  # liquidation at the settlement price
    with pytest.raises(WrongStatusError):
        perp.settle("b")
    perp.global_settled()
    assert perp.status is Status.SETTLED
    with pytest.raises(WrongStatusError):
        perp.global_settled()
    with pytest.raises(WrongStatusError):
        perp.liquidate("liq", "b", 1.0)
    # b is short 10 at 100: PNL1 +150 at 85, minus the 57.5 social loss of a's liquidation
    # (cash 101 − 150 − 17 penalties = −66, of which the fund's 8.5 penalty pays 8.5).
    assert perp.view("b").margin_balance == approx(10_000 + 150 - 57.5)
    paid = perp.settle("b")
    assert paid == approx(10_092.5)
    assert perp.view("b").position_side == "flat" and perp.view("b").cash_balance == 0.0
    perp.settle("liq")
    assert perp.check_invariants() == []


def test_admin_powers_only_in_emergency() -> None:
    perp, _ = _long_victim()
    with pytest.raises(WrongStatusError):
        perp.increase_cash_balance("a", 10.0)
    with pytest.raises(WrongStatusError):
        perp.set_social_loss_per_contract("long", 1.0)
    perp.begin_global_settlement(100.0)
    perp.increase_cash_balance("a", 10.0)
    perp.decrease_cash_balance("b", 5.0)
    perp.set_social_loss_per_contract("long", 2.0)
    assert perp.view("a").social_loss == approx(20.0)
    assert perp.check_invariants() == []


def test_time_never_goes_back_and_must_be_whole_seconds() -> None:
    perp, _ = make()
    perp.set_time(10)
    with pytest.raises(BadAmountError, match="back"):
        perp.set_time(9)
    with pytest.raises(BadAmountError, match="whole seconds"):
        perp.set_time(10.5)
    assert perp.now == 10
