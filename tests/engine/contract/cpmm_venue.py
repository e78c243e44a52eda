"""A test-only exchange design: a constant-product pool (x·y = k) with a simple margin rule.

It exists to prove the plug-in point: it implements the whole venue contract
(:class:`perpsim.engine.venue.Venue`) with nothing but :mod:`perpsim.engine.core`, is registered
at run time with :func:`perpsim.engine.registry.register_venue`, and must pass the same contract
suite as the shipped designs.

The design, kept small on purpose:

- the pool prices trades from virtual reserves: buying ``d`` contracts takes ``d`` out of the
  base reserve ``X`` and puts ``Y·d / (X − d)`` into the quote reserve ``Y``, so the average
  price is ``Y / (X − d)`` (a sale is ``d < 0``) and ``X·Y`` stays constant;
- the pool's margin account is every trader's counterparty and belongs to its LPs (shares);
  adding or removing liquidity scales both reserves, so the price does not move;
- the mark price is the oracle's index (the settlement price once settlement begins); funding
  accrues continuously at ``clamp(fair / index − 1, ±funding_cap)`` per 8 hours, with the index
  and rate refreshed by each operation and by ``update_index`` (which pays its caller a prize
  from the insurance fund);
- an account is safe while its margin balance covers ``maintenance_margin_rate`` × notional; a
  liquidator takes over just enough of an unsafe position at the mark price to bring it back to
  initial margin, paying penalties to the liquidator and to the insurance fund; a loss beyond
  the account's cash is paid by the insurance fund and, beyond it, is bad debt (no social loss).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Self

import numpy as np
from pydantic import Field, ValidationError, model_validator

from perpsim.engine.core.accounting import (
    INVARIANT_RTOL,
    conservation_problem,
    negative_balances_problem,
)
from perpsim.engine.core.accounts import FLAT_ACCOUNT, AccountState, AccountStore, IntArray, Side
from perpsim.engine.core.config import FrozenModel
from perpsim.engine.core.events import EventEmitter
from perpsim.engine.core.index import IndexOracle
from perpsim.engine.core.numbers import (
    ceil_to_lot,
    check_finite,
    check_lot,
    check_positive,
    check_price,
    check_time,
)
from perpsim.engine.core.status import Status
from perpsim.engine.registry import VenueContext, VenueSpec
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
from perpsim.errors import (
    BadAmountError,
    GovernanceError,
    InsufficientBalanceError,
    InvalidOperationError,
    PriceLimitError,
    UnsafeError,
    WrongStatusError,
)

KIND = "cpmm_test"
POOL = "pool"
CREATOR = "pool_creator"
FUNDING_PERIOD_S = 8 * 3600
#: Relative tolerance under which a share amount equal to a balance counts as all of it.
SHARE_RTOL = 1e-12

COLUMNS: tuple[str, ...] = (
    f"{KIND}_reserve_base",
    f"{KIND}_reserve_quote",
    f"{KIND}_pool_position",
    f"{KIND}_pool_margin_balance",
)


class CPMMGovernance(FrozenModel):
    """The design's rates and lots."""

    initial_margin_rate: float = Field(0.10, gt=0.0, lt=1.0)
    maintenance_margin_rate: float = Field(0.05, gt=0.0, lt=1.0)
    liquidation_penalty_rate: float = Field(0.01, ge=0.0, lt=1.0)
    penalty_fund_rate: float = Field(0.01, ge=0.0, lt=1.0)
    fee_rate: float = Field(0.001, ge=0.0, lt=0.1)
    funding_cap: float = Field(0.01, ge=0.0, lt=1.0)
    keeper_prize: float = Field(5.0, ge=0.0)
    lot_size: float = Field(0.001, gt=0.0)
    trading_lot_size: float = Field(0.01, gt=0.0)

    @model_validator(mode="after")
    def _consistent(self) -> CPMMGovernance:
        if self.maintenance_margin_rate >= self.initial_margin_rate:
            raise ValueError("maintenance_margin_rate must be below initial_margin_rate")
        if self.liquidation_penalty_rate + self.penalty_fund_rate >= self.initial_margin_rate:
            raise ValueError("the penalties must be below initial_margin_rate")
        ratio = self.trading_lot_size / self.lot_size
        if abs(ratio - round(ratio)) > 1e-9 * ratio or round(ratio) < 1:
            raise ValueError("trading_lot_size must be a multiple of lot_size")
        return self


class CPMMPool(FrozenModel):
    """The pool at the start: ``initial_liquidity`` collateral from the creator."""

    initial_liquidity: float = Field(1_000_000.0, gt=0.0)


def changed_governance(governance: CPMMGovernance, key: str, value: Any) -> CPMMGovernance:
    """``governance`` with ``key`` set to ``value``, validated.

    Raises:
        GovernanceError: an unknown key, or a value the rules refuse.
    """
    try:
        return CPMMGovernance.model_validate({**governance.model_dump(), key: value})
    except ValidationError as exc:
        raise GovernanceError(f"governance {key}={value!r} rejected: {exc}") from None


class CPMMConfig(FrozenModel):
    """The scenario's ``venue:`` section for ``kind: cpmm_test``."""

    governance_keys: ClassVar[tuple[str, ...]] = tuple(CPMMGovernance.model_fields)

    kind: Literal["cpmm_test"] = KIND
    governance: CPMMGovernance = CPMMGovernance()
    pool: CPMMPool = CPMMPool()
    insurance_fund: float = Field(100_000.0, ge=0.0)

    def with_governance(self, key: str, value: float | str) -> Self:
        """A copy with one governance key changed (validated as ``set_governance`` does)."""
        return self.model_copy(
            update={"governance": changed_governance(self.governance, key, value)}
        )


def _sign(side: Side) -> float:
    return 1.0 if side is Side.LONG else (-1.0 if side is Side.SHORT else 0.0)


def _signed(st: AccountState) -> float:
    return _sign(st.position_side) * st.position_size


def _mb(st: AccountState, price: float, acc: float) -> float:
    """Margin balance: cash + PnL at ``price`` − funding owed since entry."""
    q = st.position_size
    return st.cash_balance + _sign(st.position_side) * (
        (price - acc) * q - st.entry_value + st.entry_funding_loss
    )


def _apply(st: AccountState, delta: float, price: float, acc: float) -> tuple[AccountState, float]:
    """Trade signed ``delta`` at ``price``: close against the position first, open the rest.

    Returns:
        The new state and the amount opened.
    """
    cash, side, q, ev, _, efl = st
    sign = _sign(side)
    amount = abs(delta)
    if sign != 0.0 and sign * delta < 0.0:
        closed = q if amount >= q * (1.0 - SHARE_RTOL) else amount
        cash += sign * ((price - acc) * closed - (ev - efl) * closed / q)
        if closed == q:
            side, q, ev, efl = Side.FLAT, 0.0, 0.0, 0.0
        else:
            keep = (q - closed) / q
            q, ev, efl = q - closed, ev * keep, efl * keep
        amount -= closed
    opened = amount if amount > abs(delta) * SHARE_RTOL else 0.0
    if opened:
        side = Side.LONG if delta > 0.0 else Side.SHORT
        q, ev, efl = q + opened, ev + price * opened, efl + acc * opened
    return AccountState(cash, side, q, ev, 0.0, efl), opened


class CPMMVenue(EventEmitter):
    """The constant-product venue (see the module docstring)."""

    kind: ClassVar[str] = KIND

    def __init__(self, governance: CPMMGovernance, oracle: IndexOracle, capacity: int) -> None:
        super().__init__()
        self.governance = governance
        self.oracle = oracle
        self.accounts = AccountStore(capacity)
        self.pool_row = self.accounts.add(POOL)
        self.reserve_base = 0.0
        self.reserve_quote = 0.0
        self.shares: dict[str, float] = {}
        self.insurance_fund = 0.0
        self.total_bad_debt = 0.0
        self.deposited = 0.0
        self.withdrawn = 0.0
        self.shortfall = 0.0
        self.settlement_price = 0.0
        self._status = Status.NORMAL
        self._now = 0
        # Funding: accumulated at _acc_time, accruing at _rate × _rate_index per 8 hours.
        self._acc = 0.0
        self._acc_time = 0
        self._rate = 0.0
        self._rate_index = 0.0

    # -- time, status, rules -------------------------------------------------------------------

    @property
    def products(self) -> tuple[str, ...]:
        """One perpetual: ``("perpetual",)``."""
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
        """The exchange's clock."""
        return self._now

    def set_time(self, now: int) -> None:
        """Advance the clock (never backwards)."""
        t = check_time(now)
        if t < self._now:
            raise BadAmountError(f"time cannot go back: {t} < current time {self._now}")
        self._now = t

    @property
    def status(self) -> Status:
        """NORMAL, EMERGENCY or SETTLED."""
        return self._status

    @property
    def rules(self) -> VenueRules:
        """The governance in force now."""
        g = self.governance
        return VenueRules(
            g.lot_size,
            g.trading_lot_size,
            g.initial_margin_rate,
            g.maintenance_margin_rate,
            g.fee_rate,
            0.0,
            g.keeper_prize,
        )

    def set_governance(self, key: str, value: Any) -> None:
        """Change one governance key; funding up to now accrues under the old rates."""
        new = changed_governance(self.governance, key, value)
        self._accrue()
        self.governance = new
        self._refresh(self._rate_index)
        self.emit_event("set_governance", self._now, {"key": key, "value": value})

    # -- helpers ---------------------------------------------------------------------------------

    def _require(self, op: str, *allowed: Status) -> None:
        if self._status not in allowed:
            names = " or ".join(s.value for s in allowed)
            raise WrongStatusError(f"{op} requires {names}; the venue is {self._status.value}")

    def _trader(self, account: str | int) -> int:
        row = self.accounts.row(account)
        if row == self.pool_row:
            raise InvalidOperationError("the pool's account belongs to its LPs")
        return row

    def _acc_now(self) -> float:
        if self._status is not Status.NORMAL:
            return self._acc
        return self._acc + self._rate_index * self._rate * (self._now - self._acc_time) / (
            FUNDING_PERIOD_S
        )

    def _accrue(self) -> None:
        self._acc, self._acc_time = self._acc_now(), self._now

    def _refresh(self, index: float) -> None:
        self._rate_index = index
        cap = self.governance.funding_cap
        premium = self.reserve_quote / self.reserve_base / index - 1.0 if self.reserve_base else 0.0
        self._rate = min(max(premium, -cap), cap)

    def _mark(self) -> float:
        if self._status is not Status.NORMAL:
            return self.settlement_price
        return self.oracle.index(self._now)[0]

    def _check(self, who: str, st: AccountState, opened: float, price: float, acc: float) -> None:
        mb = _mb(st, price, acc)
        rate = self.governance.initial_margin_rate if opened else 0.0
        rate = max(rate, self.governance.maintenance_margin_rate)
        if mb < price * st.position_size * rate:
            kind = "initial-margin" if opened else "maintenance-margin"
            raise UnsafeError(f"{who} would not be {kind} safe (margin balance {mb:.10g})")
        if st.cash_balance < 0.0:
            raise InsufficientBalanceError(f"{who} would end with negative cash")

    def _withdrawable(self, st: AccountState, price: float, acc: float) -> float:
        pm = price * st.position_size * self.governance.initial_margin_rate
        return max(min(_mb(st, price, acc) - pm, st.cash_balance), 0.0)

    def _pool_value(self) -> float:
        return _mb(self.accounts.read(self.pool_row), self._mark(), self._acc_now())

    def _margins(self) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        a, p, acc = self.accounts, self._mark(), self._acc_now()
        mb = a.cash_balance + a.sign * (
            (p - acc) * a.position_size - a.entry_value + a.entry_funding_loss
        )
        return mb, p * a.position_size * self.governance.maintenance_margin_rate

    # -- collateral, trading, liquidity --------------------------------------------------------

    def deposit(self, account: str, amount: float) -> None:
        """Move collateral in (creates the account)."""
        self._require("deposit", Status.NORMAL, Status.EMERGENCY)
        amt = check_positive(amount, "deposit amount")
        if not isinstance(account, str) or not account or account == POOL:
            raise InvalidOperationError(f"cannot deposit into account {account!r}")
        row = self.accounts.index.get(account)
        if row is None:
            row = self.accounts.add(account)
        st = self.accounts.read(row)
        self.accounts.write(row, st._replace(cash_balance=st.cash_balance + amt))
        self.deposited += amt
        self.emit_event("deposit", self._now, {"account": account, "amount": amt})

    def deposit_insurance_fund(self, amount: float) -> None:
        """Add collateral to the insurance fund."""
        self._require("deposit_insurance_fund", Status.NORMAL, Status.EMERGENCY)
        amt = check_positive(amount, "insurance fund deposit")
        self.insurance_fund += amt
        self.deposited += amt
        self.emit_event("deposit_insurance_fund", self._now, {"amount": amt})

    def withdraw(self, account: str, amount: float) -> None:
        """Move collateral out, keeping the account initial-margin safe."""
        self._require("withdraw", Status.NORMAL)
        amt = check_positive(amount, "withdraw amount")
        row = self._trader(account)
        st = self.accounts.read(row)
        limit = self._withdrawable(st, self._mark(), self._acc_now())
        if amt > limit:
            raise InsufficientBalanceError(f"{account} can withdraw at most {limit:.10g}")
        self.accounts.write(row, st._replace(cash_balance=st.cash_balance - amt))
        self.withdrawn += amt
        self.emit_event("withdraw", self._now, {"account": account, "amount": amt})

    def quote(self, size: float) -> Quote:
        """Price a signed trade: ``Y / (X − size)``, the fee on top."""
        s = check_finite(size, "trade size")
        if s == 0.0:
            raise BadAmountError("trade size must be non-zero")
        x, y = self.reserve_base, self.reserve_quote
        if x <= 0.0:
            raise InvalidOperationError("the pool is empty")
        if s >= x:
            raise BadAmountError(f"cannot buy {s:.10g}: the pool's reserve is {x:.10g}")
        price = y / (x - s)
        return Quote(
            s, price, y / x, price / (y / x) - 1.0, abs(s) * price * self.governance.fee_rate
        )

    def trade(self, account: str | int, size: float, limit_price: float | None = None) -> Fill:
        """Trade against the pool; both sides must stay safe."""
        self._require("trade", Status.NORMAL)
        s = check_finite(size, "trade size")
        if s == 0.0:
            raise BadAmountError("trade size must be non-zero")
        check_lot(abs(s), self.governance.trading_lot_size, "trade size")
        limit = None if limit_price is None else check_finite(limit_price, "limit price")
        row = self._trader(account)
        q = self.quote(s)
        if limit is not None and (q.price > limit if s > 0 else q.price < limit):
            raise PriceLimitError(f"price {q.price:.10g} is worse than the limit {limit:.10g}")
        mark, acc = self._mark(), self._acc_now()
        t0, p0 = self.accounts.read(row), self.accounts.read(self.pool_row)
        t1, opened = _apply(t0, s, q.price, acc)
        t1 = t1._replace(cash_balance=t1.cash_balance - q.fee)
        p1, _ = _apply(p0, -s, q.price, acc)
        p1 = p1._replace(cash_balance=p1.cash_balance + q.fee)
        name = self.accounts.names[row]
        self._check(name, t1, opened, mark, acc)
        try:
            self._check(POOL, p1, 0.0, mark, acc)
        except (UnsafeError, InsufficientBalanceError) as exc:
            raise UnsafeError(f"the pool would not be safe: {exc}") from None
        self._accrue()
        self.accounts.write(row, t1)
        self.accounts.write(self.pool_row, p1)
        x = self.reserve_base
        self.reserve_quote = self.reserve_quote * x / (x - s)
        self.reserve_base = x - s
        self._refresh(self._rate_index)
        self.emit_event(
            "buy" if s > 0 else "sell",
            self._now,
            {
                "account": name,
                "counterparty": POOL,
                "side": "long" if s > 0 else "short",
                "amount": abs(s),
                "price": q.price,
                "fee": q.fee,
            },
        )
        return Fill(name, s, q.price, q.fee)

    def size_for_price(self, target: float) -> float:
        """The trade that moves ``Y / X`` to ``target``: ``X − sqrt(X·Y / target)``."""
        t = check_price(target, "target price")
        x, y = self.reserve_base, self.reserve_quote
        return x - math.sqrt(x * y / t) if x > 0.0 else 0.0

    def add_liquidity(self, account: str, collateral: float) -> float:
        """Move ``collateral`` from the account into the pool; reserves grow in proportion."""
        self._require("add_liquidity", Status.NORMAL)
        c = check_positive(collateral, "collateral")
        row = self._trader(account)
        st = self.accounts.read(row)
        if c > self._withdrawable(st, self._mark(), self._acc_now()):
            raise InsufficientBalanceError(f"{account} cannot spare {c:.10g} of collateral")
        supply, value = math.fsum(self.shares.values()), self._pool_value()
        if supply > 0.0 and value <= 0.0:
            raise UnsafeError("the pool has no value left to share")
        index = self.oracle.index(self._now)[0]
        self._accrue()
        if supply > 0.0:
            minted = supply * c / value
            growth = 1.0 + c / value
            self.reserve_base *= growth
            self.reserve_quote *= growth
        else:
            minted = c
            self.reserve_base = c / (2.0 * index)
            self.reserve_quote = c / 2.0
        name = self.accounts.names[row]
        self.accounts.write(row, st._replace(cash_balance=st.cash_balance - c))
        pool = self.accounts.read(self.pool_row)
        self.accounts.write(self.pool_row, pool._replace(cash_balance=pool.cash_balance + c))
        self.shares[name] = self.shares.get(name, 0.0) + minted
        self._refresh(self._rate_index or index)
        fields = {"account": name, "collateral": c, "shares": minted}
        self.emit_event("add_liquidity", self._now, fields)
        return minted

    def remove_liquidity(self, account: str, shares: float) -> float:
        """Burn shares for their part of the pool's value, paid into the margin account."""
        self._require("remove_liquidity", Status.NORMAL)
        sh = check_positive(shares, "shares")
        row = self._trader(account)
        name = self.accounts.names[row]
        held = self.shares.get(name, 0.0)
        if sh > held * (1.0 + SHARE_RTOL):
            raise InsufficientBalanceError(f"{name} holds {held:.10g} shares, not {sh:.10g}")
        sh = min(sh, held)
        supply = math.fsum(self.shares.values())
        part = 1.0 if sh >= supply * (1.0 - SHARE_RTOL) else sh / supply
        payout = part * self._pool_value()
        if payout <= 0.0:
            raise InsufficientBalanceError("the pool has no value to pay out")
        pool = self.accounts.read(self.pool_row)
        p1 = pool._replace(cash_balance=pool.cash_balance - payout)
        try:
            self._check(POOL, p1, 0.0, self._mark(), self._acc_now())
        except (UnsafeError, InsufficientBalanceError) as exc:
            raise UnsafeError(f"the pool would not be safe: {exc}") from None
        self._accrue()
        st = self.accounts.read(row)
        self.accounts.write(row, st._replace(cash_balance=st.cash_balance + payout))
        self.accounts.write(self.pool_row, p1)
        self.reserve_base *= 1.0 - part
        self.reserve_quote *= 1.0 - part
        left = held - sh
        if left > held * SHARE_RTOL:
            self.shares[name] = left
        else:
            del self.shares[name]
        self._refresh(self._rate_index)
        fields = {"account": name, "shares": sh, "collateral": payout}
        self.emit_event("remove_liquidity", self._now, fields)
        return payout

    def share_balance(self, account: str) -> float:
        """Shares held by ``account``."""
        return self.shares.get(account, 0.0)

    def share_price(self) -> float:
        """The pool's value (its cash once settled) per share."""
        supply = math.fsum(self.shares.values())
        if supply <= 0.0:
            return 0.0
        if self._status is Status.SETTLED:
            return self.accounts.read(self.pool_row).cash_balance / supply
        return self._pool_value() / supply

    # -- prices and funding ----------------------------------------------------------------------

    def index_price(self) -> float:
        """The oracle's index."""
        return self.oracle.index(self._now)[0]

    def mark_price(self) -> float:
        """The index (the settlement price once settlement has begun)."""
        return self._mark()

    def fair_price(self) -> float:
        """``Y / X``."""
        if self.reserve_base <= 0.0:
            raise InvalidOperationError("the pool is empty: there is no fair price")
        return self.reserve_quote / self.reserve_base

    def funding_rate(self) -> float:
        """The 8-hour rate accruing now (0 outside NORMAL)."""
        return self._rate if self._status is Status.NORMAL else 0.0

    def accumulated_funding_per_contract(self) -> float:
        """Funding per long contract since the start."""
        return self._acc_now()

    def open_interest(self) -> float:
        """Contracts held long."""
        a = self.accounts
        return float(a.position_size[a.position_side == Side.LONG].sum())

    # -- accounts, liquidation, keepers ----------------------------------------------------------

    def account(self, account: str | int) -> AccountView:
        """Every margin quantity of one account at the mark price."""
        st = self.accounts.read(self.accounts.row(account))
        g, p, acc = self.governance, self._mark(), self._acc_now()
        sign, q = _sign(st.position_side), st.position_size
        pnl1 = sign * (p * q - st.entry_value)
        funding = sign * (acc * q - st.entry_funding_loss)
        mb = st.cash_balance + pnl1 - funding
        pm, mm = p * q * g.initial_margin_rate, p * q * g.maintenance_margin_rate
        liq_price = 0.0
        if q > 0.0:
            owed = st.entry_value - st.entry_funding_loss
            if sign > 0:
                liq_price = (owed + acc * q - st.cash_balance) / (
                    q * (1.0 - g.maintenance_margin_rate)
                )
            else:
                liq_price = (st.cash_balance + owed + acc * q) / (
                    q * (1.0 + g.maintenance_margin_rate)
                )
        return AccountView(
            cash_balance=st.cash_balance,
            position_side=st.position_side.name.lower(),
            position_size=q,
            entry_value=st.entry_value,
            entry_social_loss=0.0,
            entry_funding_loss=st.entry_funding_loss,
            price=p,
            pnl1=pnl1,
            social_loss=0.0,
            funding_loss=funding,
            pnl2=pnl1 - funding,
            margin_balance=mb,
            position_margin=pm,
            maintenance_margin=mm,
            available_margin=mb - pm,
            withdrawable_balance=self._withdrawable(st, p, acc),
            is_safe=mb >= mm,
            is_im_safe=mb >= pm,
            is_bankrupt=mb < 0.0,
            estimated_liquidation_price=liq_price,
            liquidation_amount=self._liquidation_amount(st, p, acc) if mb < mm else 0.0,
            avg_entry_price=st.entry_value / q if q > 0.0 else 0.0,
        )

    def _liquidation_amount(self, st: AccountState, price: float, acc: float) -> float:
        """The least (on the lot grid) that brings the account back to initial margin."""
        g, q = self.governance, st.position_size
        if q <= 0.0:
            return 0.0
        mb = _mb(st, price, acc)
        penalty = g.liquidation_penalty_rate + g.penalty_fund_rate
        need = (g.initial_margin_rate * price * q - mb) / (
            price * (g.initial_margin_rate - penalty)
        )
        if mb < 0.0 or need >= q:
            return q
        return min(ceil_to_lot(need, g.lot_size), q) if need > 0.0 else 0.0

    def account_name(self, row: int) -> str:
        """The name of ``row``."""
        return self.accounts.names[row]

    def liquidatable_accounts(self) -> IntArray:
        """Unsafe rows holding a position, except the pool's (one vectorised scan)."""
        if self._status is Status.SETTLED:
            return np.empty(0, dtype=np.int64)
        mb, mm = self._margins()
        unsafe = (mb < mm) & (self.accounts.position_size > 0.0)
        unsafe[self.pool_row] = False
        return np.flatnonzero(unsafe)

    def liquidate(
        self, liquidator: str | int, account: str | int, max_amount: float
    ) -> LiquidationResult:
        """The liquidator takes over part of an unsafe position at the mark price."""
        self._require("liquidate", Status.NORMAL, Status.EMERGENCY)
        g = self.governance
        max_amt = check_positive(max_amount, "max liquidation amount")
        check_lot(max_amt, g.lot_size, "max liquidation amount")
        l_row, v_row = self._trader(liquidator), self._trader(account)
        if l_row == v_row:
            raise InvalidOperationError("an account cannot liquidate itself")
        price, acc = self._mark(), self._acc_now()
        v0, l0 = self.accounts.read(v_row), self.accounts.read(l_row)
        v_name, l_name = self.accounts.names[v_row], self.accounts.names[l_row]
        if v0.position_size <= 0.0 or _mb(v0, price, acc) >= price * v0.position_size * (
            g.maintenance_margin_rate
        ):
            raise InvalidOperationError(f"{v_name} is safe and cannot be liquidated")
        amount = min(self._liquidation_amount(v0, price, acc), max_amt, v0.position_size)
        side = _sign(v0.position_side)
        v1, _ = _apply(v0, -side * amount, price, acc)
        pen_l, pen_f = (
            price * amount * g.liquidation_penalty_rate,
            price * amount * g.penalty_fund_rate,
        )
        cash = v1.cash_balance - pen_l - pen_f
        loss = max(-cash, 0.0)
        v1 = v1._replace(cash_balance=max(cash, 0.0))
        l1, opened = _apply(l0, side * amount, price, acc)
        l1 = l1._replace(cash_balance=l1.cash_balance + pen_l)
        self._check(f"liquidator {l_name}", l1, opened, price, acc)
        fund = self.insurance_fund + pen_f
        paid = min(fund, loss)
        bad = loss - paid
        self.accounts.write(v_row, v1)
        self.accounts.write(l_row, l1)
        self.insurance_fund = fund - paid
        self.total_bad_debt += bad
        result = LiquidationResult(
            l_name,
            v_name,
            v0.position_side.name.lower(),
            price,
            amount,
            pen_l,
            pen_f,
            loss,
            paid,
            0.0,
            bad,
        )
        self.emit_event(
            "liquidate",
            self._now,
            {
                "account": v_name,
                "counterparty": l_name,
                "side": result.side,
                "amount": amount,
                "price": price,
                "penalty": pen_l,
                "penalty_fund": pen_f,
                "loss": loss,
                "insurance_fund_paid": paid,
                "social_loss": 0.0,
                "bad_debt": bad,
            },
        )
        return result

    def update_index(self, caller: str | int) -> float:
        """Bring the oracle's index into funding; pay the prize from the fund when it moved."""
        self._require("update_index", Status.NORMAL)
        row = self._trader(caller)
        index = self.oracle.index(self._now)[0]
        prize = self.governance.keeper_prize if index != self._rate_index else 0.0
        if prize > self.insurance_fund:
            raise InsufficientBalanceError("the insurance fund cannot pay the keeper prize")
        self._accrue()
        self._refresh(index)
        self.insurance_fund -= prize
        st = self.accounts.read(row)
        self.accounts.write(row, st._replace(cash_balance=st.cash_balance + prize))
        fields = {"account": self.accounts.names[row], "price": index, "amount": prize}
        self.emit_event("update_index", self._now, fields)
        return prize

    # -- settlement ------------------------------------------------------------------------------

    def begin_global_settlement(self, price: float) -> None:
        """NORMAL or EMERGENCY → EMERGENCY at ``price``; funding stops."""
        self._require("begin_global_settlement", Status.NORMAL, Status.EMERGENCY)
        p = check_price(price, "settlement price")
        self._accrue()
        self._status, self.settlement_price = Status.EMERGENCY, p
        self.emit_event("begin_global_settlement", self._now, {"price": p})

    def global_settled(self) -> None:
        """EMERGENCY → SETTLED: the pool's position closes at the settlement price."""
        self._require("global_settled", Status.EMERGENCY)
        pool = self.accounts.read(self.pool_row)
        mb = _mb(pool, self.settlement_price, self._acc)
        self.shortfall += max(-mb, 0.0)
        self.accounts.write(self.pool_row, FLAT_ACCOUNT._replace(cash_balance=max(mb, 0.0)))
        self._status = Status.SETTLED
        self.emit_event("global_settled", self._now, {"price": self.settlement_price})

    def share_holders(self) -> Mapping[str, float]:
        """Share balances by holder (a copy)."""
        return dict(self.shares)

    def settle_shares(self, holder: str, shares: float) -> float:
        """After settlement, redeem shares for their part of the pool's cash."""
        self._require("settle_shares", Status.SETTLED)
        sh = check_positive(shares, "shares")
        row = self._trader(holder)
        held = self.shares.get(holder, 0.0)
        if sh > held * (1.0 + SHARE_RTOL):
            raise InsufficientBalanceError(f"{holder} holds {held:.10g} shares, not {sh:.10g}")
        sh = min(sh, held)
        pool = self.accounts.read(self.pool_row)
        payout = pool.cash_balance * sh / math.fsum(self.shares.values())
        st = self.accounts.read(row)
        self.accounts.write(self.pool_row, pool._replace(cash_balance=pool.cash_balance - payout))
        self.accounts.write(row, st._replace(cash_balance=st.cash_balance + payout))
        if held - sh > held * SHARE_RTOL:
            self.shares[holder] = held - sh
        else:
            del self.shares[holder]
        self.emit_event(
            "settle_share", self._now, {"account": holder, "shares": sh, "amount": payout}
        )
        return payout

    def accounts_to_settle(self) -> IntArray:
        """Rows holding cash or a position, except the pool's."""
        a = self.accounts
        rows: IntArray = np.flatnonzero((a.cash_balance != 0.0) | (a.position_size > 0.0))
        return rows[rows != self.pool_row]

    def settle(self, account: str | int) -> float:
        """After settlement, pay an account's margin balance out (nothing if negative)."""
        self._require("settle", Status.SETTLED)
        row = self._trader(account)
        mb = _mb(self.accounts.read(row), self.settlement_price, self._acc)
        payout = max(mb, 0.0)
        self.shortfall += payout - mb
        self.accounts.write(row, FLAT_ACCOUNT)
        self.withdrawn += payout
        name = self.accounts.names[row]
        fields = {"account": name, "amount": payout, "price": self.settlement_price}
        self.emit_event("settle", self._now, fields)
        return payout

    # -- what the outputs read -------------------------------------------------------------------

    def funds(self) -> Mapping[str, float]:
        """The insurance fund, then the pool's margin balance (the LPs' capital)."""
        return {"insurance_fund": self.insurance_fund, "lp_capital": self._pool_value()}

    def bad_debt(self) -> float:
        """Losses beyond the account's cash and the insurance fund."""
        return self.total_bad_debt

    def observe(self) -> dict[str, Any]:
        """The common columns, then ``cpmm_test_*``."""
        mb, mm = self._margins()
        normal = self._status is Status.NORMAL
        fair = self.reserve_quote / self.reserve_base if self.reserve_base > 0.0 else math.nan
        premium = fair / self._rate_index - 1.0 if normal and self._rate_index else 0.0
        return {
            "mark_price": self._mark(),
            "fair_price": fair,
            "premium_rate": premium,
            "funding_rate": self.funding_rate(),
            "accumulated_funding_per_contract": self._acc_now(),
            "open_interest": self.open_interest(),
            "lp_share_price": self.share_price(),
            "lp_share_supply": math.fsum(self.shares.values()),
            "insurance_fund": self.insurance_fund,
            "bad_debt": self.total_bad_debt,
            "unsafe_accounts": int(np.count_nonzero(mb < mm)),
            "bankrupt_accounts": int(np.count_nonzero(mb < 0.0)),
            "status": self._status.value,
            f"{KIND}_reserve_base": self.reserve_base,
            f"{KIND}_reserve_quote": self.reserve_quote,
            f"{KIND}_pool_position": _signed(self.accounts.read(self.pool_row)),
            f"{KIND}_pool_margin_balance": float(mb[self.pool_row]),
        }

    def account_records(self) -> list[AccountRecord]:
        """Every account's fields; its value is its margin balance plus its shares."""
        mb, _ = self._margins()
        price = self.share_price()
        out = []
        for row, name in enumerate(self.accounts.names):
            st = self.accounts.read(row)
            shares = self.shares.get(name, 0.0)
            fields = {
                "cash_balance": st.cash_balance,
                "position_side": st.position_side.name.lower(),
                "position_size": st.position_size,
                "entry_value": st.entry_value,
                "entry_funding_loss": st.entry_funding_loss,
                "margin_balance": float(mb[row]),
                "shares": shares,
            }
            value = float(mb[row]) + shares * price if row != self.pool_row else 0.0
            out.append(AccountRecord(name, fields, value))
        return out

    def check_invariants(self) -> list[str]:
        """Conservation, open interest, signs, reserves and shares."""
        a = self.accounts
        mb, _ = self._margins()
        scale = float(np.abs(a.cash_balance).sum() + a.entry_value.sum()) + self.deposited + 1.0
        tol = INVARIANT_RTOL * scale
        problems = []
        value = math.fsum(mb.tolist()) + self.insurance_fund
        expected = self.deposited - self.withdrawn + self.total_bad_debt + self.shortfall
        problems.append(conservation_problem(value, expected, tol, "Σ margin balances + fund"))
        problems.append(negative_balances_problem(a.names, a.cash_balance, tol, "cash balance"))
        if self.insurance_fund < -tol:
            problems.append(f"negative insurance fund {self.insurance_fund:.10g}")
        size, side = a.position_size, a.position_side
        if ((side == Side.FLAT) != (size == 0.0)).any() or (size < 0.0).any():
            problems.append("position side and size disagree")
        long, short = size[side == Side.LONG].sum(), size[side == Side.SHORT].sum()
        if self._status is not Status.SETTLED and not math.isclose(
            long, short, rel_tol=1e-9, abs_tol=1e-9
        ):
            problems.append(f"long open interest {long:.12g} != short {short:.12g}")
        if self.reserve_base < 0.0 or self.reserve_quote < 0.0:
            problems.append("negative pool reserves")
        if (self.reserve_base > 0.0) != (self.reserve_quote > 0.0):
            problems.append("one pool reserve is empty and the other is not")
        if any(v <= 0.0 for v in self.shares.values()):
            problems.append("a share balance is not positive")
        return [p for p in problems if p is not None]


def build(config: CPMMConfig, context: VenueContext) -> CPMMVenue:
    """A funded venue: the insurance fund, then the creator's liquidity at the index."""
    venue = CPMMVenue(config.governance, context.oracle, context.capacity)
    venue.event_sink = context.event_sink
    venue.set_time(context.now)
    if config.insurance_fund > 0.0:
        venue.deposit_insurance_fund(config.insurance_fund)
    venue.deposit(CREATOR, config.pool.initial_liquidity)
    venue.add_liquidity(CREATOR, config.pool.initial_liquidity)
    return venue


SPEC = VenueSpec(
    kind=KIND,
    title="Constant-product test venue",
    config_model=CPMMConfig,
    build=build,
    columns=COLUMNS,
    governance_keys=CPMMConfig.governance_keys,
    governance_defaults=CPMMGovernance().model_dump(),
    experimental=True,
)
