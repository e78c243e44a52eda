"""Where perpsim used to differ from the deployed MCDEX v1 contracts, the contract's behaviour.

Each test states what the contract does (``Perpetual.sol``, ``MarginAccount.sol``, ``AMM.sol``,
``PerpetualGovernance.sol``, ``AMMGovernance.sol``) and checks perpsim does the same; where
perpsim keeps its earlier behaviour as an option, the option is tested too.
"""

from __future__ import annotations

import math

import pytest

from perpsim.engine import AMMGovernance, MCDEXVenue, PerpetualGovernance
from perpsim.engine.venues.mcdex_v1.perpetual import ExternalPriceSource, Perpetual
from perpsim.engine.venues.mcdex_v1.replay import Replay
from perpsim.errors import (
    BadAmountError,
    InsufficientBalanceError,
    LotSizeError,
    WrongStatusError,
)

approx = lambda v: pytest.approx(v, rel=1e-9, abs=1e-9)  # noqa: E731


def perpetual(**gov: object) -> tuple[Perpetual, ExternalPriceSource]:
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
    return Perpetual(PerpetualGovernance(**base), src), src  # type: ignore[arg-type]


def venue(prize: float = 0.0, **gov: object) -> MCDEXVenue:
    base: dict[str, object] = {
        "initial_margin_rate": 0.1,
        "maintenance_margin_rate": 0.05,
        "liquidation_penalty_rate": 0.01,
        "penalty_fund_rate": 0.01,
        "taker_dev_fee_rate": 0.0,
        "maker_dev_fee_rate": 0.0,
        "lot_size": 0.1,
        "trading_lot_size": 1.0,
    }
    base.update(gov)
    v = MCDEXVenue.build(
        PerpetualGovernance(**base),  # type: ignore[arg-type]
        AMMGovernance(pool_fee_rate=0.0, pool_dev_fee_rate=0.0, update_index_prize=prize),
    )
    v.pool.oracle.set(1000.0, 1000)  # type: ignore[attr-defined]
    v.perpetual.set_time(1000)
    return v


# -- 1. every address has an account --------------------------------------------------------------


def test_a_keeper_with_no_deposit_is_paid_the_prize_through_the_venue() -> None:
    v = venue(prize=2.0)
    v.perpetual.deposit("lp", 100_000.0)
    v.perpetual.deposit("dev", 10.0)
    v.pool.create_pool("lp", 10.0)
    assert v.account("keeper").cash_balance == 0.0  # an untouched address reads as empty
    v.set_time(1060)
    v.pool.oracle.set(1010.0, 1060)  # type: ignore[attr-defined]
    assert v.update_index("keeper") == 2.0
    assert v.account("keeper").cash_balance == 2.0
    assert v.perpetual.view("dev").cash_balance == 8.0
    assert v.check_invariants() == []


# -- 2. negative cash -----------------------------------------------------------------------------


def _partly_closed_at_a_loss(**gov: object) -> tuple[Perpetual, ExternalPriceSource]:
    """a: long 10 at 100 with 100 cash (exactly initial-margin safe); the mark rises to 130."""
    perp, src = perpetual(**gov)
    perp.deposit("a", 100.0)
    perp.deposit("b", 1_000.0)
    perp.trade("a", "b", "buy", 100.0, 10.0)
    src.set_mark_price(130.0)
    return perp, src


def test_a_trade_may_leave_cash_negative_while_the_margin_holds() -> None:
    """The contract checks margin, not cash: selling 5 at 70 realises −150 and leaves cash −50;
    the remaining long 5 (entry 500) is worth 650 at the mark 130, so the margin balance is
    −50 + 150 = 100 ≥ maintenance 130 × 5 × 5% = 32.5."""
    perp, _ = _partly_closed_at_a_loss()
    perp.trade("a", "b", "sell", 70.0, 5.0)
    a = perp.view("a")
    assert a.cash_balance == approx(-50.0)
    assert (a.position_side, a.position_size, a.entry_value) == ("long", 5.0, approx(500.0))
    assert a.margin_balance == approx(100.0)
    assert a.maintenance_margin == approx(32.5) and a.is_safe
    assert perp.check_invariants() == []


def test_the_stricter_cash_rule_is_an_opt_in_and_refuses_the_same_trade() -> None:
    perp, _ = _partly_closed_at_a_loss(cash_balance_rule="non_negative")
    snap = perp.accounts.snapshot()
    with pytest.raises(InsufficientBalanceError, match="negative cash balance -50"):
        perp.trade("a", "b", "sell", 70.0, 5.0)
    assert all((snap[k] == v).all() for k, v in perp.accounts.snapshot().items())


def test_the_invariant_is_on_margin_not_cash() -> None:
    """Negative cash with a position is legal; a flat account's margin balance is its cash."""
    perp, _ = _partly_closed_at_a_loss()
    perp.trade("a", "b", "sell", 70.0, 5.0)
    assert perp.check_invariants(raise_on_violation=False) == []
    # Corrupt a flat account's cash behind the engine's back: the invariant sees it.
    perp.deposit("c", 1.0)
    c = perp.row("c")
    perp.accounts.write(c, perp.accounts.read(c)._replace(cash_balance=-5.0))
    problems = perp.check_invariants(raise_on_violation=False)
    assert any("flat account" in p and "c=-5" in p for p in problems), problems


def test_the_admin_may_decrease_cash_below_zero_unless_strict() -> None:
    """decreaseCashBalance adds a negative amount with no check in the contract."""
    perp, _ = _partly_closed_at_a_loss()
    perp.begin_global_settlement(130.0)
    perp.decrease_cash_balance("a", 150.0)
    assert perp.view("a").cash_balance == approx(-50.0)
    assert perp.check_invariants() == []
    strict, _ = _partly_closed_at_a_loss(cash_balance_rule="non_negative")
    strict.begin_global_settlement(130.0)
    with pytest.raises(InsufficientBalanceError, match="cannot decrease"):
        strict.decrease_cash_balance("a", 150.0)


# -- 3. create_pool checks lot_size ---------------------------------------------------------------


def test_create_pool_checks_the_lot_size_not_the_trading_lot() -> None:
    v = venue()  # lot 0.1, trading lot 1
    v.perpetual.deposit("lp", 10_000.0)
    with pytest.raises(LotSizeError, match="pool amount"):
        v.pool.create_pool("lp", 0.05)
    assert v.pool.create_pool("lp", 0.5) == 0.5
    assert v.pool.position_size() == 0.5 and v.pool.total_supply == 0.5


# -- 4. liquidation capped at the lot-floored position ---------------------------------------------


def test_the_liquidation_amount_is_capped_at_the_position_floored_to_the_new_lot() -> None:
    """Perpetual.sol: min(ceil(X, lot), max amount, size − size mod lot)."""
    perp, src = perpetual(lot_size=0.05, trading_lot_size=0.05)
    perp.deposit("a", 11.0)
    perp.deposit("b", 10_000.0)
    perp.deposit("liq", 10_000.0)
    perp.trade("a", "b", "buy", 100.0, 1.05)
    perp.set_governance("trading_lot_size", 0.1)
    perp.set_governance("lot_size", 0.1)
    src.set_mark_price(92.0)  # deeply unsafe: X is above the whole position
    assert perp.view("a").liquidation_amount == approx(1.0)
    result = perp.liquidate("liq", "a", 2.0)
    assert result.amount == approx(1.0)
    a = perp.view("a")
    assert (a.position_side, a.position_size) == ("long", approx(0.05))
    assert perp.check_invariants() == []


# -- 5. settlement freezes funding at the last funding update ------------------------------------


def _premium_then_silence(**gov: object) -> MCDEXVenue:
    """A pool created at t=1000 and bought from at once (a premium), then nothing until 1600."""
    v = venue(**gov)
    v.perpetual.deposit("lp", 100_000.0)
    v.perpetual.deposit("t", 100_000.0)
    v.pool.create_pool("lp", 10.0)
    v.pool.buy("t", 2.0)
    v.set_time(1600)
    return v


def test_global_settlement_freezes_funding_where_the_last_update_left_it() -> None:
    v = _premium_then_silence()
    accrued = v.pool.accumulated_funding_per_contract()
    assert accrued > 0.05  # the views see 600 s of funding at a large premium
    v.begin_global_settlement(1000.0)
    assert v.perpetual.accumulated_funding_per_contract == 0.0
    assert v.pool.accumulated_funding_per_contract() == 0.0
    v.set_time(5000)
    assert v.accumulated_funding_per_contract() == 0.0
    assert v.check_invariants() == []


def test_accruing_funding_before_settlement_is_an_option() -> None:
    v = _premium_then_silence(settlement_funding="accrue")
    accrued = v.pool.accumulated_funding_per_contract()
    v.begin_global_settlement(1000.0)
    assert v.perpetual.accumulated_funding_per_contract == approx(accrued)
    assert v.pool.accumulated_funding_per_contract() == approx(accrued)


def test_the_admin_sets_accumulated_funding_only_in_emergency() -> None:
    v = _premium_then_silence()
    with pytest.raises(WrongStatusError, match="EMERGENCY"):
        v.perpetual.set_accumulated_funding_per_contract(0.25)
    v.begin_global_settlement(1000.0)
    v.perpetual.set_accumulated_funding_per_contract(0.25)
    assert v.perpetual.accumulated_funding_per_contract == 0.25
    assert v.pool.funding_state.accumulated_funding_per_contract == 0.25
    with pytest.raises(BadAmountError):
        v.perpetual.set_accumulated_funding_per_contract(math.nan)
    assert v.perpetual.view("t").funding_loss == approx(0.25 * 2.0)
    assert v.check_invariants() == []


# -- 6. penalties equal to the initial margin rate -------------------------------------------------


def _unsafe_long(lpr: float, pfr: float) -> tuple[Perpetual, ExternalPriceSource]:
    perp, src = perpetual(
        initial_margin_rate=0.1,
        maintenance_margin_rate=0.075,
        liquidation_penalty_rate=lpr,
        penalty_fund_rate=pfr,
        lot_size=0.1,
        trading_lot_size=0.1,
    )
    perp.deposit("a", 100.0)
    perp.deposit("b", 10_000.0)
    perp.deposit("liq", 10_000.0)
    perp.trade("a", "b", "buy", 100.0, 10.0)
    src.set_mark_price(97.0)  # margin 70 < maintenance 72.75: unsafe, not bankrupt
    return perp, src


def test_penalties_equal_to_the_initial_margin_rate_are_legal_governance() -> None:
    """The contract only asks lpr < mm and pfr < mm: 0.05 + 0.05 = im 0.1 is accepted."""
    g = PerpetualGovernance(
        initial_margin_rate=0.1,
        maintenance_margin_rate=0.075,
        liquidation_penalty_rate=0.05,
        penalty_fund_rate=0.05,
    )
    assert g.liquidation_penalty_rate + g.penalty_fund_rate == g.initial_margin_rate


def test_at_the_boundary_reading_margin_works_and_the_whole_position_is_due() -> None:
    """Closing any part leaves the available margin unchanged, so only the whole position
    restores the initial margin: the limit of X from below, where the contract reverts."""
    perp, _ = _unsafe_long(0.05, 0.05)
    a = perp.view("a")
    assert a.margin_balance == approx(70.0) and not a.is_safe
    assert a.liquidation_amount == approx(10.0)
    assert perp.margin_balances()[perp.row("a")] == approx(70.0)
    result = perp.liquidate("liq", "a", 10.0)
    assert result.amount == approx(10.0)
    assert perp.view("a").position_side == "flat"
    assert perp.check_invariants() == []


def test_just_below_the_boundary_the_amount_is_the_same_and_just_above_it_is_zero() -> None:
    below, _ = _unsafe_long(0.05, 0.0499)
    # X = −available / (price × (im − penalties)) = 27 / (97 × 0.0001) ≫ 10: the position.
    assert below.view("a").liquidation_amount == approx(10.0)
    above, _ = _unsafe_long(0.05, 0.0501)
    # X < 0 is clipped to 0: the contract's "nothing to liquidate".
    assert above.view("a").liquidation_amount == 0.0
    with pytest.raises(BadAmountError, match="nothing to liquidate"):
        above.liquidate("liq", "a", 10.0)
    away, _ = _unsafe_long(0.01, 0.01)
    x = 27.0 / (97.0 * 0.08)  # available margin −27 at 97; penalties − im = −0.08
    assert away.view("a").liquidation_amount == approx(math.ceil(x * 10 - 1e-9) / 10)


# -- 8. replay observations --------------------------------------------------------------------


def test_replay_observes_stored_fields_before_any_mark_price_and_the_premium() -> None:
    doc = {
        "venue": "amm",
        "governance": {"lot_size": 0.1, "trading_lot_size": 0.1, "pool_fee_rate": 0.0},
        "ops": [
            {"op": "set_time", "time": 1000},
            {"op": "deposit", "account": "lp", "amount": 10_000},
            {
                "op": "observe",
                "names": [
                    "lp.cash_balance",
                    "lp.position_side",
                    "lp.position_size",
                    "lp.entry_value",
                    "lp.entry_social_loss",
                    "lp.entry_funding_loss",
                    "nobody.cash_balance",
                ],
                "expect": {"lp.cash_balance": 10_000, "lp.position_side": "flat"},
            },
            {"op": "set_index", "price": 100, "timestamp": 1000},
            {"op": "create_pool", "account": "lp", "amount": 10},
            {"op": "deposit", "account": "t", "amount": 1_000},
            {"op": "buy", "account": "t", "amount": 5},
            # The buy is priced 1000 / (10 − 5) = 200; the pool closes 5 of its long at 200,
            # realising +500: cash 2500, long 5 at entry 500 → available 2000, fair 400, and
            # the premium 400 − 100 = 300.
            {
                "op": "observe",
                "names": ["amm.premium", "amm.last_premium", "amm.fair_price"],
                "expect": {"amm.premium": 300, "amm.last_premium": 300, "amm.fair_price": 400},
            },
        ],
    }
    report = Replay(doc).run()
    assert report.failures == [], report.failures
    first = report.observations[0]["values"]
    assert first["nobody.cash_balance"] == 0.0 and first["lp.entry_value"] == 0.0


def test_replay_admin_setters_check_emergency() -> None:
    ops = [
        {"op": "set_time", "time": 1000},
        {"op": "set_index", "price": 100, "timestamp": 1000},
        {"op": "deposit", "account": "lp", "amount": 10_000},
        {"op": "create_pool", "account": "lp", "amount": 10},
        {"op": "set_social_loss_per_contract", "side": "long", "value": 1.0, "expect_error": True},
        {"op": "set_accumulated_funding", "value": 0.5, "expect_error": True},
        {
            "op": "set_governance",
            "key": "accumulated_funding_per_contract",
            "value": 0.5,
            "expect_error": True,
        },
        {"op": "set_social_loss_per_contract", "side": "long", "value": 1.0, "setup": True},
        {"op": "begin_global_settlement", "price": 100},
        {"op": "set_social_loss_per_contract", "side": "short", "value": 2.0},
        {"op": "set_governance", "key": "accumulated_funding_per_contract", "value": 0.75},
        {
            "op": "observe",
            "names": [
                "perp.accumulated_funding_per_contract",
                "amm.accumulated_funding_per_contract",
                "perp.social_loss_per_contract_long",
                "perp.social_loss_per_contract_short",
            ],
            "expect": {
                "perp.accumulated_funding_per_contract": 0.75,
                "amm.accumulated_funding_per_contract": 0.75,
                "perp.social_loss_per_contract_long": 1.0,
                "perp.social_loss_per_contract_short": 2.0,
            },
        },
    ]
    report = Replay({"venue": "amm", "governance": {"pool_fee_rate": 0.0}, "ops": ops}).run()
    assert report.failures == [], report.failures
    kinds = {e["index"]: e["error_type"] for e in report.errors}
    assert kinds == {4: "WrongStatusError", 5: "WrongStatusError", 6: "WrongStatusError"}
