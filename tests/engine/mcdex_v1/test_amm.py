"""Unit tests of the AMM pool and funding (seed 004), with numbers worked by hand."""

from __future__ import annotations

import math

import pytest

from perpsim.engine import AMMGovernance, MCDEXVenue, PerpetualGovernance, Status
from perpsim.engine.venues.mcdex_v1.funding import funding_curve
from perpsim.engine.venues.mcdex_v1.governance import FUNDING_PERIOD_SECONDS
from perpsim.errors import (
    BadAmountError,
    DeadlineError,
    GovernanceError,
    InsufficientBalanceError,
    InvalidOperationError,
    PriceLimitError,
    UnsafeError,
    WrongStatusError,
)

approx = lambda v: pytest.approx(v, rel=1e-9, abs=1e-9)  # noqa: E731


def make(
    pool_fee: float = 0.0, dev_fee: float = 0.0, prize: float = 0.0, **amm: float
) -> MCDEXVenue:
    v = MCDEXVenue.build(
        PerpetualGovernance(
            initial_margin_rate=0.1,
            maintenance_margin_rate=0.05,
            liquidation_penalty_rate=0.01,
            penalty_fund_rate=0.01,
            taker_dev_fee_rate=0.0,
            maker_dev_fee_rate=0.0,
        ),
        AMMGovernance(
            pool_fee_rate=pool_fee, pool_dev_fee_rate=dev_fee, update_index_prize=prize, **amm
        ),
    )
    v.pool.oracle.set(1000.0, 0)  # type: ignore[attr-defined]
    v.perpetual.set_time(100)
    v.perpetual.deposit("lp", 100_000.0)
    v.perpetual.deposit("t", 10_000.0)
    v.pool.create_pool("lp", 3.0)
    return v


def test_create_pool() -> None:
    v = make()
    perp, pool = v.perpetual, v.pool
    p = perp.view("pool")
    assert (p.position_side, p.position_size, p.entry_value) == ("long", 3.0, 3000.0)
    assert p.cash_balance == 6000.0
    lp = perp.view("lp")
    assert (lp.position_side, lp.position_size, lp.cash_balance) == ("short", 3.0, 94_000.0)
    assert pool.total_supply == 3.0 and pool.share_balance("lp") == 3.0
    assert pool.available_margin() == 3000.0 and pool.fair_price() == 1000.0
    assert perp.mark_price == 1000.0
    fs = pool.funding_state
    assert fs.last_funding_time == 100 and fs.last_premium == 0.0 and fs.last_index_price == 1000
    with pytest.raises(InvalidOperationError, match="already"):
        pool.create_pool("t", 1.0)


def test_buy_and_sell_prices_and_constant_product() -> None:
    v = make()
    perp, pool = v.perpetual, v.pool
    assert pool.buy("t", 1.0) == 1500.0  # 3000 / (3 − 1)
    # The pool closed 1 long at 1500: RPNL +500 into its cash.
    p = perp.view("pool")
    assert p.cash_balance == 6500.0 and p.entry_value == 2000.0 and p.position_size == 2.0
    assert pool.available_margin() * pool.position_size() == approx(9000.0)
    assert pool.sell("t", 1.0) == approx(1500.0)  # 4500 / (2 + 1)
    assert pool.available_margin() * pool.position_size() == approx(9000.0)
    assert pool.sell("t", 1.0) == approx(750.0)  # pam back to 3000 at size 3: 3000 / 4
    assert perp.check_invariants() == []


def test_sell_from_fresh_pool_and_fees() -> None:
    v = make(pool_fee=0.001, dev_fee=0.0005)
    perp, pool = v.perpetual, v.pool
    price = pool.sell("t", 1.0)
    assert price == 750.0  # 3000 / (3 + 1)
    t = perp.view("t")
    assert t.cash_balance == approx(10_000.0 - 0.75 - 0.375)
    assert perp.view("dev").cash_balance == approx(0.375)
    p = perp.view("pool")
    assert p.cash_balance == approx(6000.0 + 0.75)
    assert p.position_size == 4.0 and p.entry_value == 3750.0
    assert perp.check_invariants() == []


def test_trade_limits_deadline_and_bounds() -> None:
    v = make()
    perp, pool = v.perpetual, v.pool
    snap = perp.accounts.snapshot()
    fs = pool.funding_state
    with pytest.raises(PriceLimitError):
        pool.buy("t", 1.0, limit_price=1499.0)
    with pytest.raises(PriceLimitError):
        pool.sell("t", 1.0, limit_price=751.0)
    with pytest.raises(DeadlineError):
        pool.buy("t", 1.0, limit_price=2000.0, deadline=100)  # the seed: now < deadline
    with pytest.raises(BadAmountError, match="below the pool's position"):
        pool.buy("t", 3.0)
    with pytest.raises(BadAmountError):
        pool.buy("t", math.nan)
    with pytest.raises(InvalidOperationError):
        pool.buy("pool", 1.0)
    assert pool.funding_state == fs
    assert all((snap[k] == s).all() for k, s in perp.accounts.snapshot().items())
    assert pool.buy("t", 1.0, limit_price=1500.0, deadline=101) == 1500.0


def test_trader_must_be_margin_safe() -> None:
    v = make()
    perp, pool = v.perpetual, v.pool
    perp.deposit("small", 200.0)
    # Selling 1 at 750 loses 250 at the mark price 1000: margin balance −50 < 100 needed.
    with pytest.raises(UnsafeError, match="initial-margin"):
        pool.sell("small", 1.0)
    pool.sell("small", 0.1)  # at 3000/3.1: margin balance 196.8 ≥ 10


def test_add_and_remove_liquidity() -> None:
    v = make()
    perp, pool = v.perpetual, v.pool
    shares = pool.add_liquidity("t", 1.5)
    assert shares == approx(1.5)  # 3 × 1.5 / 3
    t = perp.view("t")
    assert t.cash_balance == approx(10_000 - 3000.0)  # 2 × 1000 × 1.5
    assert (t.position_side, t.position_size, t.entry_value) == ("short", 1.5, 1500.0)
    assert pool.available_margin() == approx(4500.0) and pool.fair_price() == approx(1000.0)
    price_before = pool.share_price()
    amount = pool.remove_liquidity("t", 1.5)
    assert amount == approx(1.5)
    assert pool.share_price() == approx(price_before)
    t = perp.view("t")
    assert t.position_side == "flat" and t.cash_balance == approx(10_000.0)
    assert pool.share_balance("t") == 0.0 and pool.total_supply == approx(3.0)
    with pytest.raises(InsufficientBalanceError):
        pool.remove_liquidity("t", 0.1)
    assert perp.check_invariants() == []


def test_remove_floors_to_lot_and_burns_all_shares() -> None:
    v = MCDEXVenue.build(PerpetualGovernance(lot_size=0.1, trading_lot_size=0.1), AMMGovernance())
    perp, pool = v.perpetual, v.pool
    pool.oracle.set(100.0, 0)  # type: ignore[attr-defined]
    perp.deposit("lp", 10_000.0)
    pool.create_pool("lp", 3.0)
    amount = pool.remove_liquidity("lp", 0.25)  # 0.25 × 3 / 3 floored to 0.2
    assert amount == approx(0.2)
    assert pool.total_supply == approx(2.75)
    with pytest.raises(BadAmountError, match="less than one lot"):
        pool.remove_liquidity("lp", 0.05)


def test_drained_pool_is_dead() -> None:
    v = make()
    perp, pool = v.perpetual, v.pool
    pool.remove_liquidity("lp", 3.0)
    assert pool.dead and pool.position_size() == 0.0
    assert perp.view("pool").cash_balance == approx(0.0)
    for call in (lambda: pool.buy("t", 1.0), lambda: pool.add_liquidity("t", 1.0)):
        with pytest.raises(InvalidOperationError, match="dead"):
            call()
    assert perp.check_invariants() == []


def test_transfer_shares() -> None:
    v = make()
    pool = v.pool
    pool.transfer_shares("lp", "friend", 1.0)
    assert pool.share_balance("lp") == 2.0 and pool.share_balance("friend") == 1.0
    with pytest.raises(InsufficientBalanceError):
        pool.transfer_shares("friend", "lp", 2.0)


def test_update_index_prize_from_dev() -> None:
    v = make(prize=2.0)
    perp, pool = v.perpetual, v.pool
    perp.deposit("keeper", 1.0)
    perp.set_time(200)
    # Same index: no prize.
    assert pool.update_index("keeper") == 0.0
    pool.oracle.set(1010.0, 150)  # type: ignore[attr-defined]
    fs = pool.funding_state
    with pytest.raises(InsufficientBalanceError, match="prize"):
        pool.update_index("keeper")
    assert pool.funding_state == fs
    perp.deposit("dev", 5.0)
    assert pool.update_index("keeper") == 2.0
    assert perp.view("keeper").cash_balance == 3.0
    assert perp.view("dev").cash_balance == 3.0
    assert pool.funding_state.last_index_price == 1010.0
    assert pool.update_index("keeper") == 0.0


def brute_force_acc(
    v0: float, p: float, n: int, index: float, alpha: float, limit: float, damp: float
) -> tuple[float, float]:
    vals = [(v0 - p) * (1 - alpha) ** i + p for i in range(n)]
    acc = math.fsum(funding_curve(x, limit * index, damp * index) for x in vals)
    return (v0 - p) * (1 - alpha) ** n + p, acc


def test_funding_end_to_end_matches_per_second_sum() -> None:
    v = make()
    perp, pool = v.perpetual, v.pool
    g = pool.governance
    pool.buy("t", 0.003)  # fair price 9000 / 2.997² ≈ 1002: a premium inside the band
    fs = pool.funding_state
    assert fs.last_premium == approx(pool.fair_price() - 1000.0)
    assert fs.last_ema_premium == 0.0  # a trade does not move the EMA in the same second
    perp.set_time(100 + 700)
    ema, acc = brute_force_acc(
        0.0, fs.last_premium, 700, 1000.0, g.ema_alpha, g.mark_premium_limit, g.funding_dampener
    )
    assert pool.accumulated_funding_per_contract() == approx(acc / FUNDING_PERIOD_SECONDS)
    cur = pool.current_funding_state()
    assert cur.last_ema_premium == approx(ema)
    # The mark price is clamped at index × (1 + limit).
    assert perp.mark_price == approx(1000.0 + min(ema, 5.0))
    # A view stores nothing; an operation does.
    assert pool.funding_state == fs
    pool.update_index("t")
    assert pool.funding_state.accumulated_funding_per_contract == approx(
        acc / FUNDING_PERIOD_SECONDS
    )
    assert perp.check_invariants() == []


def test_funding_splits_at_the_index_timestamp() -> None:
    v = make()
    perp, pool = v.perpetual, v.pool
    g = pool.governance
    pool.buy("t", 0.001)  # premium ≈ +0.67, between the dampener (0.5) and the limit (5)
    p_old = pool.funding_state.last_premium
    fair = pool.fair_price()
    pool.oracle.set(1002.0, 400)  # type: ignore[attr-defined]
    perp.set_time(1000)
    e1, a1 = brute_force_acc(
        0.0, p_old, 300, 1000.0, g.ema_alpha, g.mark_premium_limit, g.funding_dampener
    )
    # The pool is long: funding paid in the first segment lowers its fair price.
    p_new = fair - a1 / FUNDING_PERIOD_SECONDS - 1002.0
    e2, a2 = brute_force_acc(
        e1, p_new, 600, 1002.0, g.ema_alpha, g.mark_premium_limit, g.funding_dampener
    )
    pool.update_index("t")
    fs = pool.funding_state
    assert fs.last_index_price == 1002.0 and fs.last_funding_time == 1000
    assert p_old > 0.5 and p_new < -0.5  # the EMA crosses the whole dampener band
    assert fs.accumulated_funding_per_contract == approx((a1 + a2) / FUNDING_PERIOD_SECONDS)
    assert fs.last_ema_premium == approx(e2)


@pytest.mark.parametrize(
    ("premium_rate", "funding"), [(0.0003, 0.0), (0.003, 0.0025), (0.01, 0.0045)]
)
def test_documented_funding_rates_through_the_pool(premium_rate: float, funding: float) -> None:
    v = make()
    perp, pool = v.perpetual, v.pool
    # Move the index so the pool's fair price (1000) sits premium_rate above it.
    index = 1000.0 / (1.0 + premium_rate)
    pool.oracle.set(index, 100)  # type: ignore[attr-defined]
    pool.update_index("t")
    perp.set_time(100 + 20_000)  # ~66 EMA time constants: the EMA has converged
    assert pool.premium_rate() == pytest.approx(min(premium_rate, 0.005), rel=1e-6)
    assert pool.funding_rate() == pytest.approx(funding, abs=1e-9)
    assert index * (1 - 0.005) <= perp.mark_price <= index * (1 + 0.005) + 1e-9


def test_mark_price_clamped_and_frozen_outside_normal() -> None:
    v = make()
    perp, pool = v.perpetual, v.pool
    pool.buy("t", 2.0)  # fair price 3000 × 3 / 1 … far above the index
    perp.set_time(100_000)
    assert perp.mark_price == approx(1005.0)
    # The contract freezes funding where the last funding update (the buy, at t=100) left it:
    # the funding accrued since, visible in the views, is not booked.
    stored = pool.funding_state.accumulated_funding_per_contract
    assert pool.accumulated_funding_per_contract() > stored + 1.0
    perp.begin_global_settlement(990.0)
    perp.set_time(200_000)
    assert perp.mark_price == 990.0
    assert pool.accumulated_funding_per_contract() == stored
    assert perp.accumulated_funding_per_contract == stored
    with pytest.raises(WrongStatusError):
        pool.buy("t", 0.1)
    with pytest.raises(WrongStatusError):
        pool.update_index("t")


def test_settlement_closes_pool_and_lps_redeem_shares() -> None:
    v = make()
    perp, pool = v.perpetual, v.pool
    pool.buy("t", 1.0)
    perp.begin_global_settlement(1000.0)
    perp.global_settled()
    p = perp.view("pool")
    assert p.position_side == "flat"
    # Pool: cash 6500, long 2 entered at 2000 → margin balance at 1000 = 6500 + 2000 − 2000.
    assert p.cash_balance == approx(6500.0)
    with pytest.raises(InvalidOperationError, match="settle_share"):
        perp.settle("pool")
    paid = pool.settle_share("lp", 3.0)
    assert paid == approx(6500.0)
    total = perp.settle("lp") + perp.settle("t")
    assert total == approx(100_000 + 10_000)
    assert perp.check_invariants() == []
    assert perp.status is Status.SETTLED


def test_amm_governance_validation_and_change() -> None:
    with pytest.raises(GovernanceError):
        AMMGovernance(funding_dampener=0.01, mark_premium_limit=0.005)
    with pytest.raises(GovernanceError):
        AMMGovernance(ema_alpha=1.0)
    v = make()
    v.pool.change_governance("pool_fee_rate", 0.002)
    assert v.pool.governance.pool_fee_rate == 0.002
    with pytest.raises(GovernanceError):
        v.pool.change_governance("pool_fee_rate", -0.1)
    assert v.pool.governance.pool_fee_rate == 0.002


def test_venue_interface() -> None:
    v = make(pool_fee=0.001)
    q = v.quote(1.0)
    assert q.price == 1500.0 and q.fair_price == 1000.0
    assert q.price_impact == approx(0.5) and q.fee == approx(1.5)
    fill = v.trade("t", 1.0, limit_price=1500.0)
    assert fill.price == 1500.0 and fill.size == 1.0 and fill.fee == approx(1.5)
    fill = v.trade("t", -1.0)
    assert fill.size == -1.0
    shares = v.add_liquidity("t", 2000.0)
    assert shares > 0
    got = v.remove_liquidity("t", shares)
    assert got == pytest.approx(2000.0, rel=1e-6)
    assert v.liquidatable_accounts().size == 0
    assert v.account("t").position_side in ("flat", "short", "long")


def test_nobody_withdraws_the_pools_margin() -> None:
    v = make()
    perp, pool = v.perpetual, v.pool
    before = pool.share_price()
    with pytest.raises(InvalidOperationError, match="belongs to its LPs"):
        perp.withdraw("pool", 100.0)
    assert pool.share_price() == before
