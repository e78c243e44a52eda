"""The D8X pool behind the venue contract (:class:`~perpsim.engine.venue.Venue`).

Names the contract shares with the other designs map onto D8X's as follows: the insurance fund
is the default fund; ``lp_share_price`` is LP cash per share; the accumulated funding per
contract is the unit accumulated funding (collateral per contract); the rules' margin rates are
the cap of the initial margin rate and the maintenance rate at that cap (what a position of any
size needs once |pos| × β has reached the cap), the trade fee is the treasury plus the LP fee,
and the funding dampener is the funding clamp Δ.

The per-tick reads (the liquidatable accounts, :meth:`D8XVenue.observe`, open interest and the
accounting check between full ones) look at the pool's live rows only
(:meth:`~perpsim.engine.venues.d8x.pool.D8XPool.live_rows`), with the whole scans' results bit
for bit: a tick costs what the accounts holding something cost, not every account the run has
opened.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np

from perpsim.engine.core.accounts import IntArray
from perpsim.engine.core.events import EventSink
from perpsim.engine.core.numbers import check_finite, check_price
from perpsim.engine.core.status import Status
from perpsim.engine.venue import (
    SINGLE_PRODUCT,
    AccountRecord,
    AccountView,
    Fill,
    LiquidationResult,
    Quote,
    VenueRules,
    check_product,
)
from perpsim.engine.venues.d8x import formulas as f
from perpsim.engine.venues.d8x.governance import D8XGovernance
from perpsim.engine.venues.d8x.pool import AMM, D8XPool
from perpsim.errors import BadAmountError, InvalidOperationError

__all__ = ["D8X_COLUMNS", "D8XVenue"]

KIND = "d8x"

#: The design's own time-series columns (after the common ones), in order.
D8X_COLUMNS: tuple[str, ...] = (
    "d8x_k2",
    "d8x_l1",
    "d8x_amm_margin_balance",
    "d8x_amm_fund_cash",
    "d8x_amm_fund_target",
    "d8x_lp_cash",
    "d8x_default_fund_cash",
    "d8x_default_fund_target",
    "d8x_k_star",
    "d8x_mark_premium_ema",
    "d8x_mid_default_probability",
    "d8x_unit_accumulated_funding",
    "d8x_trader_exposure_ema",
    "d8x_collateral_price",
    "d8x_amm_fund_stress",
    "d8x_default_fund_stress",
    "d8x_emergency_shortfall",
)

#: At most this many ×4 widenings of :meth:`D8XVenue.size_for_price`'s bracket (from 10 lots).
_BRACKET_STEPS = 24


class D8XVenue:
    """The venue of one D8X perpetual and its pool.

    Args:
        pool: the pool engine.
    """

    kind: ClassVar[str] = KIND

    def __init__(self, pool: D8XPool) -> None:
        self.pool = pool
        self._rules_key: D8XGovernance | None = None
        self._rules: VenueRules | None = None
        # The last size_for_price answer: (the pool's prepared working copy it was found on,
        # the target, the size).
        self._sized: tuple[object, float, float] | None = None

    # -- time, status, rules -------------------------------------------------------------------

    @property
    def products(self) -> tuple[str, ...]:
        """One perpetual per pool: ``("perpetual",)``."""
        return SINGLE_PRODUCT

    def product(self, name: str) -> Self:
        """This venue (it trades one product).

        Raises:
            UnknownProductError: ``name`` is not ``"perpetual"``.
        """
        check_product(SINGLE_PRODUCT, name)
        return self

    @property
    def now(self) -> int:
        """The exchange's clock (seconds)."""
        return self.pool.state.now

    def set_time(self, now: int) -> None:
        """Advance the clock (funding accrues lazily to it)."""
        self.pool.set_time(now)

    @property
    def status(self) -> Status:
        """NORMAL, EMERGENCY (the DF could not pay, or the admin stopped the pool) or SETTLED."""
        return self.pool.state.status

    @property
    def rules(self) -> VenueRules:
        """Lots and rates in force (margin rates at the IM cap; see the module docstring)."""
        g = self.pool.state.governance
        if self._rules is None or self._rules_key is not g:
            mm = g.initial_margin_rate_cap - (
                g.initial_margin_rate_alpha - g.maintenance_margin_rate_alpha
            )
            self._rules = VenueRules(
                lot_size=g.lot_size,
                trading_lot_size=g.lot_size,
                initial_margin_rate=g.initial_margin_rate_cap,
                maintenance_margin_rate=mm,
                trade_fee_rate=g.treasury_fee_rate + g.lp_fee_rate,
                funding_dampener=g.funding_rate_clamp,
                keeper_prize=0.0,
            )
            self._rules_key = g
        return self._rules

    def set_governance(self, key: str, value: Any) -> None:
        """Change one parameter (validated by :class:`D8XGovernance`)."""
        self.pool.set_governance(key, value)

    # -- collateral, trading, liquidity --------------------------------------------------------

    def deposit(self, account: str, amount: float) -> None:
        """Deposit collateral (creates the account), inside the seed's trader-deposit hook."""
        self.pool.deposit(account, amount)

    def withdraw(self, account: str, amount: float) -> None:
        """Withdraw collateral, inside the trader-withdraw hook."""
        self.pool.withdraw(account, amount)

    def quote(self, size: float) -> Quote:
        """The price a trade of ``size`` would get now (after the trade's before-hook)."""
        s = check_finite(size, "trade size")
        if s == 0.0:
            raise BadAmountError("trade size must be non-zero")
        pool = self.pool
        if pool.state.status is not Status.NORMAL:
            pool._require("quote", Status.NORMAL)
        price, mid, fee = pool.quote(s)
        return Quote(s, price, mid, price / mid - 1.0, fee)

    def trade(self, account: str | int, size: float, limit_price: float | None = None) -> Fill:
        """Trade signed ``size`` against the AMM, inside the seed's trade hook."""
        price, fee = self.pool.trade(account, size, limit_price)
        # The trade accepted the account: a name is its own (no second look-up).
        name = account if isinstance(account, str) else self.pool.names[self.pool.row(account)]
        return Fill(name, float(size), price, fee)

    def size_for_price(self, target: float) -> float:
        """The signed trade after which the pool's price on its side is ``target`` (0 if none).

        "The pool's price" after a buy is its ask (the price of the next lot bought), after a
        sale its bid: the mid price plus or minus the minimal spread. A D8X trade executes at
        the post-trade price plus the spread, so a trade sized to move the mid to the target
        would always fill one spread beyond it; sized to move the ask (bid) there, it fills at
        or better than the target. The price after a trade depends on the post-trade default
        probability and on the rebalance that follows, so it is found by bisection on the whole
        trade (booked on a working copy, state unchanged), to the lot. The price after a trade
        is not monotone in its size: it jumps up and back down where the rebalance after the
        trade finds the AMM fund on the other side of its baseline target, so the bisection
        lands on one crossing of the target (not always the smallest), and a root finder that
        assumed monotonicity would land on another: the bisection stays, its probes compiled
        (``D8XPool.trade_probe``).
        """
        t = check_price(target, "target price")
        pool = self.pool
        if pool.state.status is not Status.NORMAL:
            return 0.0
        # The probes are a function of the pool's prepared working copy (the state after the
        # before-hook) and of the stored rows, and the copy is the same object only while
        # nothing has been committed and the index and S3 are unchanged (D8XPool._prepared_valid):
        # asked again on that same copy for the same target, the answer is the last one.
        prepared = pool._prepared_trade()
        sized = self._sized
        if sized is not None and sized[0] is prepared and sized[1] == t:
            return sized[2]
        size = self._size_for_price(t)
        self._sized = (prepared, t, size)
        return size

    def _size_for_price(self, t: float) -> float:
        pool = self.pool
        lot = pool.state.governance.lot_size
        mid = pool.trade_probe()(0.0)
        if t == mid:
            return 0.0
        sign = 1.0 if t > mid else -1.0
        side_price = pool.trade_probe(sign * lot)
        if (side_price(0.0) - t) * sign >= 0.0:
            return 0.0  # the target is inside the spread: no trade gets a better price

        def past(k: float) -> bool:
            """Whether the pool's price on this side after trading ``k`` reached the target."""
            try:
                return (side_price(k) - t) * sign >= 0.0
            except (ValueError, ArithmeticError):
                return True

        lo, hi = 0.0, sign * lot * 10.0
        for _ in range(_BRACKET_STEPS):
            if past(hi):
                break
            lo, hi = hi, hi * 4.0
        else:
            return 0.0
        while abs(hi - lo) > lot:
            m = 0.5 * (lo + hi)
            if past(m):
                hi = m
            else:
                lo = m
        return float(f.round_to_lot(hi, lot))

    def add_liquidity(self, account: str, collateral: float) -> float:
        """Move ``collateral`` from the account's margin cash into LP cash; return the shares."""
        return self.pool.add_liquidity(account, collateral)

    def remove_liquidity(self, account: str, shares: float) -> float:
        """Burn shares for their part of LP cash (paid into the margin account)."""
        return self.pool.remove_liquidity(account, shares)

    def share_balance(self, account: str) -> float:
        """LP shares held by ``account``."""
        return self.pool.shares.get(account, 0.0)

    def share_price(self) -> float:
        """LP cash per share (0 when there are no shares)."""
        st = self.pool.state
        return st.lp_cash / st.share_supply if st.share_supply > 0.0 else 0.0

    # -- prices and funding --------------------------------------------------------------------

    def index_price(self) -> float:
        """The index S2 (the settlement index outside NORMAL)."""
        return self.pool._prices(self.pool.view_state())[0]

    def mark_price(self) -> float:
        """S2 (1 + mark premium)."""
        return self.pool._prices(self.pool.view_state())[2]

    def fair_price(self) -> float:
        """The AMM's mid price p(0) now."""
        if self.pool.state.status is not Status.NORMAL:
            raise InvalidOperationError("the pool is not trading: there is no mid price")
        return self.pool.mid_price()

    def funding_rate(self) -> float:
        """The 8-hour funding rate accruing now (0 outside NORMAL)."""
        st = self.pool.state
        return st.funding_rate if st.status is Status.NORMAL else 0.0

    def accumulated_funding_per_contract(self) -> float:
        """The unit accumulated funding (collateral per long contract), accrued to now."""
        return self.pool._uaf_now(self.pool.state)

    def open_interest(self) -> float:
        """Contracts held long by traders and the AMM."""
        # The live rows' positions: the long ones are the whole column's, in the same (row)
        # order, so the same sum at the cost of the live rows only.
        pool = self.pool
        pos = pool._pos[pool.live_rows()]
        return float(pos[pos > 0.0].sum())

    # -- accounts, liquidation, keepers --------------------------------------------------------

    def signed_position(self, account: str | int) -> float:
        """The account's position, negative for a short
        (:class:`~perpsim.engine.venue.PositionReader`)."""
        pool = self.pool
        return pool._pos.item(pool.row(account))

    def account(self, account: str | int) -> AccountView:
        """Every margin quantity of one account at the mark price, as of now."""
        pool = self.pool
        row = pool.row(account)
        st = pool.view_state()
        m = pool.margin(row)
        s2, s3, mark = pool._prices(st)
        g = st.governance
        coll = pool.collateral
        b2c = f.base_to_collateral(coll, mark, s2, s3)
        c2q = f.collateral_to_quote(coll, s2, s3)
        pnl1 = m.position * b2c - m.locked_in / c2q
        funding = m.position * (pool._uaf_now(st) - m.funding_start)
        mb = m.cash + pnl1 - funding
        im = pool._margin_requirement(st, m, initial=True)
        mm = pool._margin_requirement(st, m, initial=False)
        size = abs(m.position)
        mm_rate = (
            f.maintenance_margin_rate(
                m.position,
                g.initial_margin_rate_alpha,
                g.margin_rate_beta,
                g.initial_margin_rate_cap,
                g.maintenance_margin_rate_alpha,
            )
            if size
            else 0.0
        )
        liq_price = self._liquidation_price(m.position, m.locked_in, m.cash - funding, mm_rate, s3)
        amount = abs(pool.liquidation_amount(row, st)) if size and mb < mm and row else 0.0
        side = "long" if m.position > 0.0 else ("short" if m.position < 0.0 else "flat")
        # Positional: keyword construction of a frozen dataclass costs twice as much.
        return AccountView(
            m.cash,  # cash_balance
            side,  # position_side
            size,  # position_size
            abs(m.locked_in),  # entry_value
            0.0,  # entry_social_loss
            m.funding_start * size,  # entry_funding_loss
            mark,  # price
            pnl1,  # pnl1
            0.0,  # social_loss
            funding,  # funding_loss
            pnl1 - funding,  # pnl2
            mb,  # margin_balance
            im,  # position_margin
            mm,  # maintenance_margin
            mb - im,  # available_margin
            pool.withdrawable(row, st, m) if row else 0.0,  # withdrawable_balance
            mb >= mm,  # is_safe
            mb >= im,  # is_im_safe
            mb < 0.0,  # is_bankrupt
            liq_price,  # estimated_liquidation_price
            amount,  # liquidation_amount
            abs(m.locked_in / m.position) if size else 0.0,  # avg_entry_price
        )

    def _liquidation_price(
        self, pos: float, locked: float, cash: float, mm_rate: float, s3: float
    ) -> float:
        """The mark at which the margin balance meets maintenance margin (mark ≈ index; S3
        held where it is not the index)."""
        if pos == 0.0:
            return 0.0
        coll = self.pool.collateral
        denom = pos - abs(pos) * mm_rate
        if coll is f.Collateral.BASE:
            denom += cash
            price = locked / denom if denom != 0.0 else 0.0
        else:
            c2q = 1.0 if coll is f.Collateral.QUOTE else s3
            price = (locked - cash * c2q) / denom if denom != 0.0 else 0.0
        return max(price, 0.0)

    def account_name(self, row: int) -> str:
        """The name of the account in ``row``."""
        return self.pool.names[row]

    def liquidatable_accounts(self) -> IntArray:
        """Rows below maintenance margin holding a position (NORMAL only), one scan of the live
        rows."""
        if self.pool.state.status is not Status.NORMAL:
            return np.empty(0, dtype=np.int64)
        return self.pool.unsafe_rows()

    def liquidate(
        self, liquidator: str | int, account: str | int, max_amount: float
    ) -> LiquidationResult:
        """The AMM takes the pool's liquidation amount at the mark, inside the seed's liquidation
        hook (``max_amount`` is validated only: see :meth:`D8XPool.liquidate`)."""
        out = self.pool.liquidate(liquidator, account, max_amount)
        pool = self.pool
        return LiquidationResult(
            liquidator=pool.names[pool.row(liquidator)],
            trader=pool.names[pool.row(account)],
            side="long" if out["side"] > 0 else "short",
            price=out["price"],
            amount=out["amount"],
            penalty_to_liquidator=out["penalty_to_liquidator"],
            penalty_to_fund=out["penalty_to_fund"],
            liquidation_loss=out["loss"],
            insurance_fund_paid=out["insurance_fund_paid"],
            social_loss=0.0,
            bad_debt=out["bad_debt"],
        )

    def update_index(self, caller: str | int) -> float:
        """A keeper runs the before-hook (funding, oracle, rebalance); no prize in D8X."""
        self.pool.update(self.pool.names[self.pool.row(caller)])
        return 0.0

    # -- settlement ----------------------------------------------------------------------------

    def begin_global_settlement(self, price: float) -> None:
        """The admin stops the pool at ``price``."""
        self.pool.begin_global_settlement(price)

    def global_settled(self) -> None:
        """Close the AMM's position at the settlement price (EMERGENCY → SETTLED)."""
        self.pool.global_settled()

    def share_holders(self) -> Mapping[str, float]:
        """Share balances by holder (a copy)."""
        return dict(self.pool.shares)

    def settle_shares(self, holder: str, shares: float) -> float:
        """After settlement, redeem shares for their part of LP cash."""
        return self.pool.settle_shares(holder, shares)

    def accounts_to_settle(self) -> IntArray:
        """Trader rows that still hold cash or a position (among the live rows: no other row
        holds anything)."""
        pool = self.pool
        live = pool.trader_live_rows()
        holding = (pool._cash[live] != 0.0) | (pool._pos[live] != 0.0)
        rows: IntArray = live[holding]
        return rows

    def settle(self, account: str | int) -> float:
        """After settlement, pay an account its margin balance."""
        return self.pool.settle(account)

    # -- what the outputs read -----------------------------------------------------------------

    @property
    def event_sink(self) -> EventSink | None:
        """Where the pool reports each state change."""
        return self.pool.event_sink

    @event_sink.setter
    def event_sink(self, sink: EventSink | None) -> None:
        self.pool.event_sink = sink

    def funds(self) -> Mapping[str, float]:
        """The default fund (the contract's ``insurance_fund``), the AMM fund and LP cash."""
        st = self.pool.state
        return {
            "insurance_fund": st.default_fund_cash,
            "amm_fund": st.amm_fund_cash,
            "lp_cash": st.lp_cash,
        }

    def bad_debt(self) -> float:
        """What the pool could not pay at settlement."""
        return self.pool.state.bad_debt

    def observe(self) -> dict[str, Any]:
        """The common columns, then ``d8x_*``: the AMM's exposure and margin, the funds and
        their targets, k*, the premium EMA, the mid default probability, stress flags."""
        pool = self.pool
        st = pool.view_state()
        normal = st.status is Status.NORMAL
        # The AMM's row, then the traders' live rows: a trader row that is not live holds
        # nothing, so it is neither unsafe nor bankrupt (the counts are the whole scan's).
        rows = pool.amm_and_trader_live_rows()
        mbs = pool.margin_balances(rows=rows)
        mms = pool.margin_requirements(False, rows=rows)
        has_pos = pool._pos[rows] != 0.0
        k2, l1, _, s2 = pool.pricing()
        if normal:
            fair = pool.mid_price()
            pd = pool._pd(pool.view_txn(), 0.0).q
            premium = fair / s2 - 1.0
        else:
            fair, pd, premium = math.nan, math.nan, 0.0
        trader_mb = mbs[1:]
        return {
            "mark_price": pool._prices(st)[2],
            "fair_price": fair,
            "premium_rate": premium,
            "funding_rate": st.funding_rate if normal else 0.0,
            "accumulated_funding_per_contract": pool._uaf_now(st),
            "open_interest": self.open_interest(),
            "lp_share_price": self.share_price(),
            "lp_share_supply": st.share_supply,
            "insurance_fund": st.default_fund_cash,
            "bad_debt": st.bad_debt,
            "unsafe_accounts": int(np.count_nonzero((mbs < mms)[1:] & has_pos[1:])),
            "bankrupt_accounts": int(np.count_nonzero(trader_mb < 0.0)),
            "status": st.status.value,
            "d8x_k2": k2,
            "d8x_l1": l1,
            "d8x_amm_margin_balance": float(mbs[0]),
            "d8x_amm_fund_cash": st.amm_fund_cash,
            "d8x_amm_fund_target": st.amm_fund_target,
            "d8x_lp_cash": st.lp_cash,
            "d8x_default_fund_cash": st.default_fund_cash,
            "d8x_default_fund_target": st.default_fund_target,
            "d8x_k_star": st.k_star,
            "d8x_mark_premium_ema": st.mark_premium_ema,
            "d8x_mid_default_probability": pd,
            "d8x_unit_accumulated_funding": pool._uaf_now(st),
            "d8x_trader_exposure_ema": st.trader_exposure_ema,
            "d8x_collateral_price": pool._prices(st)[1],
            "d8x_amm_fund_stress": int(st.amm_fund_cash < st.amm_fund_target),
            "d8x_default_fund_stress": int(st.default_fund_cash <= st.default_fund_target),
            "d8x_emergency_shortfall": st.emergency_shortfall,
        }

    def account_records(self) -> list[AccountRecord]:
        """Every account's stored fields and margin balance; the AMM's value is 0."""
        pool = self.pool
        mbs = pool.margin_balances()
        price = self.share_price()
        out = []
        for row, name in enumerate(pool.names):
            m = pool.margin(row)
            shares = pool.shares.get(name, 0.0)
            fields = {
                "cash_balance": m.cash,
                "position": m.position,
                "position_side": "long"
                if m.position > 0
                else ("short" if m.position < 0 else "flat"),
                "position_size": abs(m.position),
                "locked_in_value": m.locked_in,
                "funding_start": m.funding_start,
                "margin_balance": float(mbs[row]),
                "shares": shares,
            }
            value = float(mbs[row]) + shares * price if name != AMM else 0.0
            out.append(AccountRecord(name, fields, value))
        return out

    def check_invariants(self) -> list[str]:
        """Conservation across AMM margin, AMM fund, LP cash, DF and traders; signs; shares."""
        return self.pool.check_invariants()

    def check_changed_invariants(self) -> list[str]:
        """The problems :meth:`check_invariants` would find now, reading only the live rows and
        the rows written since the last check (:class:`~perpsim.engine.venue.IncrementalAccounting`;
        the model checks every row every few ticks and at the end).

        Why it catches every violation the full check catches, at the tick it happens: every
        write of a margin row goes through the pool's commit, which records the row and keeps
        the live rows, so every row left out holds exactly nothing (a row written since the last
        check is looked at on its own, and read if it holds anything) and adds nothing to any
        total; D8X's rules are whole-book rules (conservation, positions netting to zero, the
        funds' signs, the share balances) whose totals are taken the same way from any rows
        (an exact ``math.fsum``, or a sum of the non-zero entries in row order), so the totals,
        tolerances and problems are the full check's bit for bit (see
        :meth:`~perpsim.engine.venues.d8x.pool.D8XPool.check_invariants`).
        """
        return self.pool.check_invariants(full=False)
