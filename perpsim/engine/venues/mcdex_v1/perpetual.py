"""The MCDEX v1 perpetual of seed 002 ("Internal Design of Perpetual").

Margin accounts, two-party trades, remargin, deposit/withdraw, liquidation with the insurance
fund and social loss, and global settlement, with the decisions of ``spec/mcdex-v1.md``.

Every public operation validates everything first and only then writes: a rejected call raises
a :class:`~perpsim.errors.EngineError` subclass and leaves every bit of state unchanged.
Computations on single accounts use plain Python floats on :class:`AccountState` tuples (fast
and exact to the formulas); scans over all accounts are vectorised numpy expressions.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

import numpy as np

from perpsim.engine.core.accounting import (
    INVARIANT_RTOL,
    conservation_problem,
    negative_balances_problem,
)
from perpsim.engine.core.accounts import (
    FLAT_ACCOUNT,
    AccountState,
    AccountStore,
    FloatArray,
    IntArray,
    Side,
    parse_side,
)
from perpsim.engine.core.events import EventEmitter
from perpsim.engine.core.numbers import (
    ceil_to_lot,
    check_finite,
    check_lot,
    check_positive,
    check_price,
    check_time,
    floor_to_lot,
)
from perpsim.engine.core.status import Status
from perpsim.engine.venue import AccountView, LiquidationResult
from perpsim.engine.venues.mcdex_v1.bookkeeping import AccountingSums, LiquidationBounds
from perpsim.engine.venues.mcdex_v1.governance import PerpetualGovernance
from perpsim.errors import (
    BadAmountError,
    GovernanceError,
    InsufficientBalanceError,
    InvalidOperationError,
    InvariantViolation,
    UnsafeError,
    WrongStatusError,
)

#: The view's word for each side (``Side(i).name.lower()``, without the enum lookup).
_SIDE_WORDS = ("flat", "short", "long")

#: Relative tolerance under which a close of ``amount`` equal to the size is treated as full.
_FULL_CLOSE_RTOL = 1e-12

DEV_ACCOUNT = "dev"

_P = ParamSpec("_P")
_R = TypeVar("_R")


def first_touch(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Let an operation create the accounts it names, and drop them again if it is rejected.

    The contracts give every address an (empty) account, so an operation on a name never seen
    before acts on a flat account with cash 0. The row is created on first touch; when the
    operation raises, the rows it created are removed, so a rejected call leaves nothing behind.
    The decorated method's owner has an ``accounts`` store.
    """

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        accounts: AccountStore = args[0].accounts  # type: ignore[attr-defined]
        n = len(accounts)
        try:
            return fn(*args, **kwargs)
        except BaseException:
            if len(accounts) != n:
                accounts.truncate(n)
            raise

    return wrapper


class PriceSource(Protocol):
    """Where the perpetual's mark price and accumulated funding come from."""

    def funding(self) -> None:
        """Bring the funding state up to date (the seed's ``Funding()``)."""

    def mark_price(self) -> float:
        """The current mark price."""

    def accumulated_funding_per_contract(self) -> float:
        """The current ``AccumulatedFundingPerContract``."""

    def stored_accumulated_funding_per_contract(self) -> float:
        """``AccumulatedFundingPerContract`` as the last funding update stored it."""

    def freeze_funding(self, value: float) -> None:
        """Store ``value`` as the accumulated funding (the admin's EMERGENCY setter)."""

    def prices(self) -> tuple[float, float]:
        """``(mark_price(), accumulated_funding_per_contract())`` in one call."""


class ExternalPriceSource:
    """A settable mark price and accumulated funding, for standalone use and tests."""

    def __init__(self, mark_price: float | None = None, accumulated_funding: float = 0.0) -> None:
        self._mark: float | None = None
        self._acc = 0.0
        if mark_price is not None:
            self.set_mark_price(mark_price)
        self.set_accumulated_funding(accumulated_funding)

    def funding(self) -> None:
        """Nothing to bring up to date: both values are set from outside."""

    def mark_price(self) -> float:
        """The mark price last set.

        Raises:
            InvalidOperationError: no mark price was set yet.
        """
        if self._mark is None:
            raise InvalidOperationError("no mark price has been set")
        return self._mark

    def accumulated_funding_per_contract(self) -> float:
        """The accumulated funding per contract last set."""
        return self._acc

    def stored_accumulated_funding_per_contract(self) -> float:
        """The accumulated funding per contract last set (nothing accrues on its own)."""
        return self._acc

    def prices(self) -> tuple[float, float]:
        """The mark price and the accumulated funding per contract last set."""
        return self.mark_price(), self._acc

    def freeze_funding(self, value: float) -> None:
        """Set the accumulated funding per contract."""
        self.set_accumulated_funding(value)

    def set_mark_price(self, price: float) -> None:
        """Set the mark price (finite, > 0)."""
        self._mark = check_price(price, "mark price")

    def set_accumulated_funding(self, value: float) -> None:
        """Set ``AccumulatedFundingPerContract`` (any finite number)."""
        self._acc = check_finite(value, "accumulated funding per contract")


# --------------------------------------------------------------------------------------------
# The seed's per-account formulas, on plain floats


def pnl1(st: AccountState, price: float) -> float:
    """``PNL1``: long ``price·size − entry_value``; short ``entry_value − price·size``."""
    if st.position_side is Side.LONG:
        return price * st.position_size - st.entry_value
    if st.position_side is Side.SHORT:
        return st.entry_value - price * st.position_size
    return 0.0


def social_loss(st: AccountState, slpc_long: float, slpc_short: float) -> float:
    """``SocialLoss`` = side's social loss per contract × size − entry_social_loss."""
    if st.position_side is Side.LONG:
        return slpc_long * st.position_size - st.entry_social_loss
    if st.position_side is Side.SHORT:
        return slpc_short * st.position_size - st.entry_social_loss
    return 0.0


def funding_loss(st: AccountState, acc: float) -> float:
    """``FundingLoss``: long ``acc·size − entry_funding_loss``; short the negative."""
    if st.position_side is Side.LONG:
        return acc * st.position_size - st.entry_funding_loss
    if st.position_side is Side.SHORT:
        return -(acc * st.position_size - st.entry_funding_loss)
    return 0.0


def margin_balance(
    st: AccountState, price: float, slpc_long: float, slpc_short: float, acc: float
) -> float:
    """``MarginBalance`` = cash + PNL1 − SocialLoss − FundingLoss."""
    # pnl1, social_loss and funding_loss written out (this is on every trade's path); the same
    # operations in the same order, so the same bits (x − (−y) is x + y exactly).
    cash, side, size, ev, esl, efl = st
    if side is Side.LONG:
        return cash + ((price * size - ev) - (slpc_long * size - esl) - (acc * size - efl))
    if side is Side.SHORT:
        return cash + ((ev - price * size) - (slpc_short * size - esl) + (acc * size - efl))
    return cash


def apply_trade(
    st: AccountState,
    side: Side,
    price: float,
    amount: float,
    slpc_long: float,
    slpc_short: float,
    acc: float,
) -> tuple[AccountState, float, float]:
    """The seed's ClosePositions then OpenPositions for one party trading ``amount`` on ``side``.

    ``side`` is the direction of this party's trade (LONG = buying). A trade against an open
    position closes first and opens the remainder on the other side (reverse).

    Returns:
        The new state, the opened amount and the closed amount.
    """
    cash, pside, size, ev, esl, efl = st
    closed = 0.0
    if pside is not Side.FLAT and pside is not side:
        closed = size if amount >= size * (1.0 - _FULL_CLOSE_RTOL) else amount
        ratio = closed / size
        if pside is Side.LONG:
            rpnl1 = price * closed - ev * ratio
            sl = (slpc_long - esl / size) * closed
            fl = (acc - efl / size) * closed
        else:
            rpnl1 = ev * ratio - price * closed
            sl = (slpc_short - esl / size) * closed
            fl = -(acc - efl / size) * closed
        cash += rpnl1 - sl - fl
        if closed == size:
            pside, size, ev, esl, efl = Side.FLAT, 0.0, 0.0, 0.0, 0.0
        else:
            keep = (size - closed) / size
            esl *= keep
            efl *= keep
            ev *= keep
            size -= closed
    opened = amount - closed
    if opened > 0.0 and opened > amount * _FULL_CLOSE_RTOL:
        pside = side
        ev += price * opened
        size += opened
        esl += (slpc_long if side is Side.LONG else slpc_short) * opened
        efl += acc * opened
    else:
        opened = 0.0
    return AccountState(cash, pside, size, ev, esl, efl), opened, closed


def _size_delta(before: AccountState, after: AccountState) -> tuple[float, float]:
    """Change of (long size, short size) contributed by one account."""
    long_b = before.position_size if before.position_side is Side.LONG else 0.0
    short_b = before.position_size if before.position_side is Side.SHORT else 0.0
    long_a = after.position_size if after.position_side is Side.LONG else 0.0
    short_a = after.position_size if after.position_side is Side.SHORT else 0.0
    return long_a - long_b, short_a - short_b


# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TradeFill:
    """A two-party trade as executed."""

    price: float
    amount: float
    taker_fee: float
    maker_fee: float


class Perpetual(EventEmitter):
    """The MCDEX v1 perpetual contract (seed 002) with the decisions of spec/mcdex-v1.md.

    Args:
        governance: the perpetual's governance parameters (defaults if omitted).
        price_source: where the mark price and accumulated funding come from; an
            :class:`ExternalPriceSource` if omitted. The AMM pool installs itself here.
        capacity: initial number of account rows to allocate.

    Attributes:
        accounts: the margin accounts (struct of arrays).
        status: NORMAL, EMERGENCY or SETTLED.
        insurance_fund: the insurance fund balance.
        social_loss_per_contract_long / social_loss_per_contract_short: the seed's
            ``LongSocialLossPerContract`` / ``ShortSocialLossPerContract``.
        bad_debt: losses that could not be socialised because the paying side was empty.
        now: the current time in whole seconds.
    """

    def __init__(
        self,
        governance: PerpetualGovernance | None = None,
        price_source: PriceSource | None = None,
        *,
        capacity: int = 64,
    ) -> None:
        self.governance = governance if governance is not None else PerpetualGovernance()
        self.price_source: PriceSource = (
            price_source if price_source is not None else ExternalPriceSource()
        )
        self.accounts = AccountStore(capacity)
        self.status = Status.NORMAL
        self.settlement_price = 0.0
        self._frozen_funding = 0.0
        self.social_loss_per_contract_long = 0.0
        self.social_loss_per_contract_short = 0.0
        self.insurance_fund = 0.0
        self.bad_debt = 0.0
        self.total_size_long = 0.0
        self.total_size_short = 0.0
        #: The largest open interest (either side) so far: the scale of the sums' rounding.
        self.peak_open_interest = 0.0
        self.now = 0
        # Ledger of collateral crossing the contract boundary, for the conservation check.
        self.total_deposits = 0.0
        self.total_withdrawals = 0.0
        self.admin_adjustments = 0.0
        self.settlement_shortfall = 0.0
        #: Set by set-up operations that create positions without a counterparty; the
        #: conservation and open-interest checks are then not meaningful and are skipped.
        self.setup_used = False
        self._slpc_floor = (0.0, 0.0)
        super().__init__()
        self.dev = self.accounts.add(DEV_ACCOUNT)
        #: Accounts whose cash belongs to others (the pool): settle() refuses them.
        self._pooled_rows: set[int] = set()
        #: Accounts whose cash the admin changed (their cash may be below 0 with no position).
        self._admin_rows: set[int] = set()
        # The last margin-balance scan and what it was computed from: the unsafe scan, the
        # accounting check and the time-series row of one tick usually see the same state.
        self._scan_key: tuple[float, float, float, float, int, int] | None = None
        self._scan_mb: FloatArray = np.empty(0)
        self._bounds = LiquidationBounds(self.accounts)
        self._sums = AccountingSums(self.accounts)
        # The governance the sums' last full check ran under (None: no full check yet).
        self._sums_governance: PerpetualGovernance | None = None

    # ----------------------------------------------------------------------------------------
    # Prices and small helpers

    @property
    def mark_price(self) -> float:
        """``MarkPrice``: the price source's in NORMAL, the settlement price otherwise."""
        if self.status is not Status.NORMAL:
            return self.settlement_price
        return self.price_source.mark_price()

    @property
    def accumulated_funding_per_contract(self) -> float:
        """``AccumulatedFundingPerContract`` from the price source (frozen outside NORMAL)."""
        if self.status is not Status.NORMAL:
            return self._frozen_funding
        return self.price_source.accumulated_funding_per_contract()

    def prices(self) -> tuple[float, float]:
        """``(mark_price, accumulated_funding_per_contract)`` with one price-source call."""
        if self.status is not Status.NORMAL:
            return self.settlement_price, self._frozen_funding
        return self.price_source.prices()

    def _funding(self) -> None:
        if self.status is Status.NORMAL:
            self.price_source.funding()

    def emit(self, kind: str, **fields: Any) -> None:
        """Report a state change of this perpetual (or its pool) to the event sink."""
        self.emit_event(kind, self.now, fields)

    def row(self, account: str | int) -> int:
        """The row of an account given by name or row (raises UnknownAccountError)."""
        return self.accounts.row(account)

    def name(self, row: int) -> str:
        """The name of the account in ``row``."""
        return self.accounts.names[row]

    def state(self, account: str | int) -> AccountState:
        """The stored fields of one account (a name never touched is a flat, empty account)."""
        a = self.accounts
        if isinstance(account, str) and account:
            row = a.index.get(account)
            return FLAT_ACCOUNT if row is None else a.read(row)
        return a.read(a.row(account))

    def touch(self, account: str | int) -> int:
        """The row of ``account``, creating its empty account on first touch.

        Only operations wrapped in :func:`first_touch` may call this, so that a rejected
        operation drops the account again.

        Raises:
            UnknownAccountError: ``account`` is a row number that does not exist, or not a name.
        """
        if isinstance(account, str) and account:
            row = self.accounts.index.get(account)
            return self.accounts.add(account) if row is None else row
        return self.accounts.row(account)

    def ensure_account(self, name: str) -> int:
        """Return the row of ``name``, creating a flat empty account if needed."""
        row = self.accounts.index.get(name)
        if row is None:
            row = self.accounts.add(name)
        return row

    def _require_status(self, *allowed: Status, op: str) -> None:
        if self.status not in allowed:
            names = " or ".join(s.value for s in allowed)
            raise WrongStatusError(
                f"{op} requires status {names}; the perpetual is {self.status.value}"
            )

    def _mb(self, st: AccountState, price: float, acc: float) -> float:
        return margin_balance(
            st, price, self.social_loss_per_contract_long, self.social_loss_per_contract_short, acc
        )

    def _is_safe(self, st: AccountState, price: float, acc: float) -> bool:
        mm = price * st.position_size * self.governance.maintenance_margin_rate
        return self._mb(st, price, acc) >= mm

    def _available(self, st: AccountState, price: float, acc: float) -> float:
        pm = price * st.position_size * self.governance.initial_margin_rate
        return self._mb(st, price, acc) - pm

    def check_after(
        self,
        who: str,
        st: AccountState,
        opened: float,
        price: float,
        acc: float,
        *,
        allow_negative_cash: bool = False,
    ) -> None:
        """The post-trade checks of the seed: IM-safe if it opened, safe in any case.

        Cash may end negative (the contracts check margin, not cash) unless governance's
        ``cash_balance_rule`` is ``"non_negative"``.

        Raises:
            UnsafeError: the margin requirement is not met.
            InsufficientBalanceError: cash would end negative.
        """
        mb = margin_balance(
            st, price, self.social_loss_per_contract_long, self.social_loss_per_contract_short, acc
        )
        if opened > 0.0:
            pm = price * st.position_size * self.governance.initial_margin_rate
            if mb < pm:
                raise UnsafeError(
                    f"{who} would not be initial-margin safe: margin balance {mb:.10g}"
                    f" < position margin {pm:.10g} at mark price {price:.10g}"
                )
        mm = price * st.position_size * self.governance.maintenance_margin_rate
        if mb < mm:
            raise UnsafeError(
                f"{who} would not be safe: margin balance {mb:.10g} < maintenance margin"
                f" {mm:.10g} at mark price {price:.10g}"
            )
        if (
            st.cash_balance < 0.0
            and not allow_negative_cash
            and self.governance.cash_balance_rule == "non_negative"
        ):
            raise InsufficientBalanceError(
                f"{who} would end with a negative cash balance {st.cash_balance:.10g}"
            )

    def commit(self, row: int, before: AccountState, after: AccountState) -> None:
        # _size_delta written out (two calls per trade).
        b_side, a_side = before.position_side, after.position_side
        b_size, a_size = before.position_size, after.position_size
        dl = (a_size if a_side is Side.LONG else 0.0) - (b_size if b_side is Side.LONG else 0.0)
        ds = (a_size if a_side is Side.SHORT else 0.0) - (b_size if b_side is Side.SHORT else 0.0)
        if dl:
            self.total_size_long += dl
            if self.total_size_long > self.peak_open_interest:
                self.peak_open_interest = self.total_size_long
        if ds:
            self.total_size_short += ds
            if self.total_size_short > self.peak_open_interest:
                self.peak_open_interest = self.total_size_short
        self.accounts.write(row, after)

    def snap_open_interest(self) -> None:
        # Incremental float sums drift by ~1e-16 per trade; when both sides should be equal,
        # make them bit-identical so "long OI == short OI" is an exact statement.
        if self.total_size_long != self.total_size_short and math.isclose(
            self.total_size_long, self.total_size_short, rel_tol=1e-12, abs_tol=1e-12
        ):
            self.total_size_short = self.total_size_long
        # The drift scales with the sizes that went through the sums (the largest open interest
        # so far): a side emptied after millions of contracts can be left at ±1e-8, not 0.
        zero = 1e-12 * max(1.0, self.peak_open_interest)
        if abs(self.total_size_long) < zero:
            self.total_size_long = max(self.total_size_long, 0.0)
        if abs(self.total_size_short) < zero:
            self.total_size_short = max(self.total_size_short, 0.0)

    # ----------------------------------------------------------------------------------------
    # Governance and time

    def set_governance(self, key: str, value: Any) -> None:
        """Change one governance parameter at run time, with the same validation.

        Raises:
            GovernanceError: unknown key or the new set violates the seed's rules.
        """
        self.governance = self.governance.with_changes(**{key: value})
        self.emit("set_governance", key=key, value=value)

    def set_time(self, now: int) -> None:
        """Advance the clock to ``now`` (whole seconds; time never goes back).

        Raises:
            BadAmountError: not whole seconds, or earlier than the current time.
        """
        t = check_time(now)
        if t < self.now:
            raise BadAmountError(f"time cannot go back: {t} < current time {self.now}")
        self.now = t

    # ----------------------------------------------------------------------------------------
    # Deposit / withdraw / remargin

    def deposit(self, account: str, amount: float) -> None:
        """``Deposit``: move collateral from the wallet into the account (creates it if new).

        Allowed in NORMAL and EMERGENCY (to avoid liquidation).
        """
        self._require_status(Status.NORMAL, Status.EMERGENCY, op="deposit")
        amt = check_positive(amount, "deposit amount")
        if not isinstance(account, str) or not account:
            raise InvalidOperationError(f"account name must be a non-empty string, got {account!r}")
        row = self.ensure_account(account)
        st = self.accounts.read(row)
        self.accounts.write(row, st._replace(cash_balance=st.cash_balance + amt))
        self.total_deposits += amt
        self.emit("deposit", account=account, amount=amt)

    @first_touch
    def withdraw(self, account: str | int, amount: float) -> None:
        """``Withdraw``: funding, remargin, then move collateral out to the wallet.

        Requires NORMAL, a safe account, ``amount`` ≤ the withdrawable balance and a safe,
        initial-margin-safe account afterwards.
        """
        self._require_status(Status.NORMAL, op="withdraw")
        amt = check_positive(amount, "withdraw amount")
        row = self.touch(account)
        if row in self._pooled_rows:
            raise InvalidOperationError("the pool's margin belongs to its LPs: it cannot withdraw")
        # Views already see funding as of now; it is stored only once the call is accepted.
        price, acc = self.prices()
        st = self.accounts.read(row)
        who = self.name(row)
        if not self._is_safe(st, price, acc):
            raise UnsafeError(f"{who} is not safe and cannot withdraw")
        rem = self._remargined(st, price, acc)
        withdrawable = max(self._available(rem, price, acc), 0.0)
        if amt > withdrawable:
            raise InsufficientBalanceError(
                f"{who} cannot withdraw {amt:.10g}: withdrawable balance is {withdrawable:.10g}"
            )
        new = rem._replace(cash_balance=rem.cash_balance - amt)
        self.check_after(who, new, 1.0 if new.position_size > 0 else 0.0, price, acc)
        self._funding()
        self.accounts.write(row, new)
        self.total_withdrawals += amt
        self.emit("withdraw", account=who, amount=amt, price=price)

    def _remargined(self, st: AccountState, price: float, acc: float) -> AccountState:
        if st.position_side is Side.FLAT:
            return st
        slpc = (
            self.social_loss_per_contract_long
            if st.position_side is Side.LONG
            else self.social_loss_per_contract_short
        )
        pnl2 = (
            pnl1(st, price)
            - social_loss(
                st, self.social_loss_per_contract_long, self.social_loss_per_contract_short
            )
            - funding_loss(st, acc)
        )
        size = st.position_size
        return AccountState(
            st.cash_balance + pnl2, st.position_side, size, price * size, slpc * size, acc * size
        )

    @first_touch
    def remargin(self, account: str | int) -> None:
        """``Remargin``: realise PNL2 into cash and reset the entries to the mark price.

        Requires NORMAL and a safe account (so cash cannot end negative).
        """
        self._require_status(Status.NORMAL, op="remargin")
        row = self.touch(account)
        price = self.mark_price
        acc = self.accumulated_funding_per_contract
        st = self.accounts.read(row)
        if not self._is_safe(st, price, acc):
            raise UnsafeError(f"{self.name(row)} is not safe and cannot be remargined")
        self._funding()
        self.accounts.write(row, self._remargined(st, price, acc))
        self.emit("remargin", account=self.name(row), price=price)

    # ----------------------------------------------------------------------------------------
    # Trades

    def _dev_fee(
        self,
        who: str,
        st: AccountState,
        dev: AccountState,
        price: float,
        opened: float,
        closed: float,
        rate: float,
        mark: float,
        acc: float,
    ) -> tuple[AccountState, AccountState, float]:
        """The seed's dev fee of one party: capped on closes, must be covered on opens."""
        if rate == 0.0:
            return st, dev, 0.0
        hard = price * opened * rate
        soft = price * closed * rate
        fee = hard + soft
        if fee > 0.0:
            available = self._available(st, mark, acc)
            if available < hard:
                raise UnsafeError(
                    f"{who}'s available margin {available:.10g} does not cover the dev fee"
                    f" {hard:.10g} on the opened position"
                )
            fee = min(fee, max(available, 0.0))
        elif dev.cash_balance + fee < 0.0:
            raise InsufficientBalanceError(
                f"the dev account cannot pay a rebate of {-fee:.10g}:"
                f" it holds {dev.cash_balance:.10g}"
            )
        return (
            st._replace(cash_balance=st.cash_balance - fee),
            dev._replace(cash_balance=dev.cash_balance + fee),
            fee,
        )

    @first_touch
    def trade(
        self,
        taker: str | int,
        maker: str | int,
        side: str | Side,
        price: float,
        amount: float,
    ) -> TradeFill:
        """The seed's Buy/Sell between two margin accounts at a given price.

        Args:
            taker: the account whose side is given.
            maker: the counterparty (takes the opposite side).
            side: the taker's side: ``"buy"``/``"long"`` or ``"sell"``/``"short"``.
            price: the trade price.
            amount: contracts, a multiple of ``trading_lot_size``.

        Returns:
            The fill with the dev fees charged (taker fee, maker fee; negative is a rebate).
        """
        self._require_status(Status.NORMAL, op="trade")
        try:
            tside = parse_side(side)
        except ValueError as exc:
            raise BadAmountError(str(exc)) from None
        if tside is Side.FLAT:
            raise BadAmountError("trade side must be buy/long or sell/short")
        p = check_price(price, "trade price")
        amt = check_positive(amount, "trade amount")
        check_lot(amt, self.governance.trading_lot_size, "trade amount")
        t_row, m_row = self.touch(taker), self.touch(maker)
        if t_row == m_row:
            raise InvalidOperationError("taker and maker must be different accounts")
        if self.dev in (t_row, m_row):
            raise InvalidOperationError("the dev account cannot trade")
        if t_row in self._pooled_rows or m_row in self._pooled_rows:
            raise InvalidOperationError("the pool trades only through the AMM")
        mark = self.mark_price
        acc = self.accumulated_funding_per_contract
        sl_l, sl_s = self.social_loss_per_contract_long, self.social_loss_per_contract_short
        t0, m0 = self.accounts.read(t_row), self.accounts.read(m_row)
        t1, t_open, t_close = apply_trade(t0, tside, p, amt, sl_l, sl_s, acc)
        m1, m_open, m_close = apply_trade(m0, tside.opposite, p, amt, sl_l, sl_s, acc)
        g = self.governance
        dev0 = self.accounts.read(self.dev)
        t_name, m_name = self.name(t_row), self.name(m_row)
        t1, dev1, t_fee = self._dev_fee(
            t_name, t1, dev0, p, t_open, t_close, g.taker_dev_fee_rate, mark, acc
        )
        m1, dev1, m_fee = self._dev_fee(
            m_name, m1, dev1, p, m_open, m_close, g.maker_dev_fee_rate, mark, acc
        )
        self.check_after(t_name, t1, t_open, mark, acc)
        self.check_after(m_name, m1, m_open, mark, acc)
        self._funding()
        self.commit(t_row, t0, t1)
        self.commit(m_row, m0, m1)
        self.accounts.write(self.dev, dev1)
        self.snap_open_interest()
        self.emit(
            "trade",
            account=t_name,
            counterparty=m_name,
            side=tside.name.lower(),
            amount=amt,
            price=p,
            fee=t_fee,
            counterparty_fee=m_fee,
        )
        return TradeFill(p, amt, t_fee, m_fee)

    # ----------------------------------------------------------------------------------------
    # Liquidation

    def liquidation_amount(self, account: str | int, price: float | None = None) -> float:
        """The seed's X clipped to [0, size] and rounded up to ``lot_size`` (no max cap).

        Args:
            account: the account.
            price: the liquidation price; the current mark (or settlement) price if omitted.
        """
        st = self.state(account)
        p = self.mark_price if price is None else check_price(price)
        return self._liquidation_amount(st, p, self.accumulated_funding_per_contract)

    def _liquidation_amount(self, st: AccountState, price: float, acc: float) -> float:
        if st.position_side is Side.FLAT:
            return 0.0
        g = self.governance
        size = st.position_size
        if st.position_side is Side.LONG:
            num = (
                st.cash_balance
                - st.entry_value
                + st.entry_social_loss
                + st.entry_funding_loss
                - acc * size
                + price * size
                - price * g.initial_margin_rate * size
                - self.social_loss_per_contract_long * size
            )
        else:
            num = (
                st.cash_balance
                + st.entry_value
                + st.entry_social_loss
                - st.entry_funding_loss
                + acc * size
                - price * size
                - price * g.initial_margin_rate * size
                - size * self.social_loss_per_contract_short
            )
        # The contract caps the amount at the position floored to the lot (a position left off
        # the grid by a lot-size change keeps its remainder).
        liquidatable = floor_to_lot(size, g.lot_size)
        rate = g.liquidation_penalty_rate + g.penalty_fund_rate - g.initial_margin_rate
        if rate == 0.0:
            # Penalties equal to the initial margin rate: closing any part leaves the available
            # margin (num) where it is, so only closing everything restores the initial margin.
            # This is the limit of X as the penalties approach the rate from below; the
            # contract itself divides by zero here and reverts.
            return liquidatable if num < 0.0 else 0.0
        x = num / (price * rate)
        x = min(max(x, 0.0), size)
        if x <= 0.0:
            return 0.0
        return min(ceil_to_lot(x, g.lot_size), liquidatable)

    @first_touch
    def liquidate(
        self, liquidator: str | int, trader: str | int, max_amount: float
    ) -> LiquidationResult:
        """``Liquidate``: move part of an unsafe account's position to the liquidator.

        Allowed in NORMAL (at the mark price) and EMERGENCY (at the settlement price).
        The amount is the seed's X rounded up to ``lot_size``, capped by ``max_amount`` and the
        position. Penalties go to the liquidator and the insurance fund; a shortfall is paid by
        the insurance fund, then socialised on the side given by ``social_loss_side``
        (opposite by default), or recorded as bad debt when that side is empty.
        """
        self._require_status(Status.NORMAL, Status.EMERGENCY, op="liquidate")
        max_amt = check_positive(max_amount, "max liquidation amount")
        g = self.governance
        check_lot(max_amt, g.lot_size, "max liquidation amount")
        l_row, v_row = self.touch(liquidator), self.touch(trader)
        if l_row == v_row:
            raise InvalidOperationError("an account cannot liquidate itself")
        if self.dev in (l_row, v_row):
            raise InvalidOperationError("the dev account cannot take part in a liquidation")
        if l_row in self._pooled_rows:
            raise InvalidOperationError("the pool cannot act as a liquidator")
        price = self.mark_price
        acc = self.accumulated_funding_per_contract
        sl_l, sl_s = self.social_loss_per_contract_long, self.social_loss_per_contract_short
        v0 = self.accounts.read(v_row)
        l_name, v_name = self.name(l_row), self.name(v_row)
        if v0.position_side is Side.FLAT or self._is_safe(v0, price, acc):
            raise InvalidOperationError(f"{v_name} is safe and cannot be liquidated")
        amount = min(self._liquidation_amount(v0, price, acc), max_amt)
        if amount <= 0.0:
            raise BadAmountError(f"the liquidation amount of {v_name} is 0 (nothing to liquidate)")
        vside = v0.position_side
        v1, _, _ = apply_trade(v0, vside.opposite, price, amount, sl_l, sl_s, acc)
        penalty_l = price * amount * g.liquidation_penalty_rate
        penalty_f = price * amount * g.penalty_fund_rate
        cash_after = v1.cash_balance - penalty_l - penalty_f
        loss = 0.0
        if cash_after < 0.0:
            loss = -cash_after
            cash_after = 0.0
        v1 = v1._replace(cash_balance=cash_after)
        l0 = self.accounts.read(l_row)
        l1, l_open, _ = apply_trade(l0, vside, price, amount, sl_l, sl_s, acc)
        l1 = l1._replace(cash_balance=l1.cash_balance + penalty_l)
        # Totals after the position transfer (victim closed, liquidator opened or closed).
        dl_v, ds_v = _size_delta(v0, v1)
        dl_l, ds_l = _size_delta(l0, l1)
        long_after = self.total_size_long + dl_v + dl_l
        short_after = self.total_size_short + ds_v + ds_l
        fund = self.insurance_fund + penalty_f
        fund_paid = min(fund, loss)
        fund -= fund_paid
        social = loss - fund_paid
        new_sl_l, new_sl_s = sl_l, sl_s
        bad = 0.0
        if social > 0.0:
            pay_side = vside.opposite if g.social_loss_side == "opposite" else vside
            pay_size = long_after if pay_side is Side.LONG else short_after
            if pay_size > 1e-15:
                if pay_side is Side.LONG:
                    new_sl_l = sl_l + social / pay_size
                else:
                    new_sl_s = sl_s + social / pay_size
            else:
                bad = social
        # The liquidator's check sees the social loss it may have just been charged.
        lmb = margin_balance(l1, price, new_sl_l, new_sl_s, acc)
        req_rate = g.initial_margin_rate if l_open > 0.0 else g.maintenance_margin_rate
        req = price * l1.position_size * req_rate
        if lmb < req:
            kind = "initial-margin" if l_open > 0.0 else "maintenance-margin"
            raise UnsafeError(
                f"liquidator {l_name} would not be {kind} safe: margin balance {lmb:.10g}"
                f" < {req:.10g} at price {price:.10g}"
            )
        if l1.cash_balance < 0.0 and g.cash_balance_rule == "non_negative":
            raise InsufficientBalanceError(
                f"liquidator {l_name} would end with a negative cash balance {l1.cash_balance:.10g}"
            )
        self._funding()
        self.commit(v_row, v0, v1)
        self.commit(l_row, l0, l1)
        self.snap_open_interest()
        self.insurance_fund = fund
        self.social_loss_per_contract_long = new_sl_l
        self.social_loss_per_contract_short = new_sl_s
        self._slpc_floor = (new_sl_l, new_sl_s)
        self.bad_debt += bad
        result = LiquidationResult(
            liquidator=l_name,
            trader=v_name,
            side=vside.name.lower(),
            price=price,
            amount=amount,
            penalty_to_liquidator=penalty_l,
            penalty_to_fund=penalty_f,
            liquidation_loss=loss,
            insurance_fund_paid=fund_paid,
            social_loss=social - bad,
            bad_debt=bad,
        )
        self.emit(
            "liquidate",
            account=v_name,
            counterparty=l_name,
            side=result.side,
            amount=amount,
            price=price,
            penalty=penalty_l,
            penalty_fund=penalty_f,
            loss=loss,
            insurance_fund_paid=fund_paid,
            social_loss=result.social_loss,
            bad_debt=bad,
        )
        return result

    # ----------------------------------------------------------------------------------------
    # Insurance fund and admin

    def deposit_insurance_fund(self, amount: float) -> None:
        """Anyone may add collateral to the insurance fund (not in SETTLED)."""
        self._require_status(Status.NORMAL, Status.EMERGENCY, op="deposit_insurance_fund")
        amt = check_positive(amount, "insurance fund deposit")
        self.insurance_fund += amt
        self.total_deposits += amt
        self.emit("deposit_insurance_fund", amount=amt)

    @first_touch
    def increase_cash_balance(self, account: str | int, amount: float) -> None:
        """Admin power in EMERGENCY: add ``amount`` to an account's cash."""
        self._require_status(Status.EMERGENCY, op="increase_cash_balance")
        amt = check_positive(amount, "amount")
        row = self.touch(account)
        st = self.accounts.read(row)
        self.accounts.write(row, st._replace(cash_balance=st.cash_balance + amt))
        self._admin_rows.add(row)
        self.admin_adjustments += amt
        self.emit("increase_cash_balance", account=self.name(row), amount=amt)

    @first_touch
    def decrease_cash_balance(self, account: str | int, amount: float) -> None:
        """Admin power in EMERGENCY: remove ``amount`` from an account's cash.

        The contract does not check the result: cash may go negative, unless governance's
        ``cash_balance_rule`` is ``"non_negative"``.
        """
        self._require_status(Status.EMERGENCY, op="decrease_cash_balance")
        amt = check_positive(amount, "amount")
        row = self.touch(account)
        st = self.accounts.read(row)
        if st.cash_balance - amt < 0.0 and self.governance.cash_balance_rule == "non_negative":
            raise InsufficientBalanceError(
                f"{self.name(row)} holds {st.cash_balance:.10g}; cannot decrease by {amt:.10g}"
            )
        self.accounts.write(row, st._replace(cash_balance=st.cash_balance - amt))
        self._admin_rows.add(row)
        self.admin_adjustments -= amt
        self.emit("decrease_cash_balance", account=self.name(row), amount=amt)

    def set_social_loss_per_contract(
        self, side: str | Side, value: float, *, setup: bool = False
    ) -> None:
        """Admin power in EMERGENCY: set the social loss per contract of one side.

        Args:
            side: long or short.
            value: the new per-contract social loss (finite).
            setup: allow it outside EMERGENCY, to reproduce a known state (replay set-up).
        """
        if not setup:
            self._require_status(Status.EMERGENCY, op="set_social_loss_per_contract")
        try:
            s = parse_side(side)
        except ValueError as exc:
            raise BadAmountError(str(exc)) from None
        if s is Side.FLAT:
            raise BadAmountError("side must be long or short")
        v = check_finite(value, "social loss per contract")
        if s is Side.LONG:
            delta = v - self.social_loss_per_contract_long
            self.admin_adjustments -= delta * self.total_size_long
            self.social_loss_per_contract_long = v
        else:
            delta = v - self.social_loss_per_contract_short
            self.admin_adjustments -= delta * self.total_size_short
            self.social_loss_per_contract_short = v
        self._slpc_floor = (self.social_loss_per_contract_long, self.social_loss_per_contract_short)
        self.emit("set_social_loss_per_contract", side=s.name.lower(), price=v)

    def set_accumulated_funding_per_contract(self, value: float) -> None:
        """Admin power in EMERGENCY: set ``AccumulatedFundingPerContract`` (the AMM's
        governance key ``accumulatedFundingPerContract`` in the contracts).

        Long and short open interest are equal, so the change moves collateral between the
        sides and the books still balance.

        Raises:
            WrongStatusError: not in EMERGENCY.
            BadAmountError: ``value`` is not finite.
        """
        self._require_status(Status.EMERGENCY, op="set_accumulated_funding_per_contract")
        v = check_finite(value, "accumulated funding per contract")
        self.price_source.freeze_funding(v)
        self._frozen_funding = v
        self.emit("set_accumulated_funding_per_contract", price=v)

    def open_position(self, account: str, side: str | Side, price: float, amount: float) -> None:
        """Set-up only: give ``account`` a position with no counterparty, fees or checks.

        Used to reproduce a known state (an incident, a snapshot). The open-interest and
        conservation checks are disabled for the rest of the run.
        """
        try:
            s = parse_side(side)
        except ValueError as exc:
            raise BadAmountError(str(exc)) from None
        if s is Side.FLAT:
            raise BadAmountError("side must be long or short")
        p = check_price(price)
        amt = check_positive(amount, "amount")
        row = self.ensure_account(account)
        st = self.accounts.read(row)
        acc = self.accumulated_funding_per_contract
        new, _, _ = apply_trade(
            st,
            s,
            p,
            amt,
            self.social_loss_per_contract_long,
            self.social_loss_per_contract_short,
            acc,
        )
        self.commit(row, st, new)
        self.setup_used = True
        self.emit("open_position", account=account, side=s.name.lower(), amount=amt, price=p)

    # ----------------------------------------------------------------------------------------
    # Global settlement

    def begin_global_settlement(self, price: float) -> None:
        """``BeginGlobalSettle``: enter EMERGENCY at ``price`` (repeatable to correct it).

        Funding freezes: as the contract does, at the value the last funding update stored
        (governance ``settlement_funding: last_update``, the default), or first brought up to
        now (``accrue``). Trading and withdrawals stop.
        """
        self._require_status(Status.NORMAL, Status.EMERGENCY, op="begin_global_settlement")
        p = check_price(price, "settlement price")
        if self.status is Status.NORMAL:
            if self.governance.settlement_funding == "accrue":
                self._funding()
            self._frozen_funding = self.price_source.stored_accumulated_funding_per_contract()
        self.settlement_price = p
        self.status = Status.EMERGENCY
        self.emit("begin_global_settlement", price=p)

    def global_settled(self) -> None:
        """``GlobalSettled``: EMERGENCY → SETTLED; the pool's position closes at the price."""
        self._require_status(Status.EMERGENCY, op="global_settled")
        price = self.settlement_price
        acc = self.accumulated_funding_per_contract
        for row in sorted(self._pooled_rows):
            st = self.accounts.read(row)
            if st.position_side is not Side.FLAT:
                mb = self._mb(st, price, acc)
                if mb < 0.0:
                    self.settlement_shortfall += -mb
                self.commit(row, st, AccountState(max(mb, 0.0), Side.FLAT, 0.0, 0.0, 0.0, 0.0))
        self.status = Status.SETTLED
        self.emit("global_settled", price=price)

    @first_touch
    def settle(self, account: str | int) -> float:
        """``Settle``: in SETTLED pay out max(cash + PNL2, 0) and flatten the account.

        Returns:
            The collateral paid to the owner's wallet.
        """
        self._require_status(Status.SETTLED, op="settle")
        row = self.touch(account)
        if row in self._pooled_rows:
            raise InvalidOperationError(
                f"{self.name(row)} is the pool's account; LPs redeem it with settle_share"
            )
        st = self.accounts.read(row)
        mb = self._mb(st, self.settlement_price, self.accumulated_funding_per_contract)
        payout = max(mb, 0.0)
        if mb < 0.0:
            self.settlement_shortfall += -mb
        self.commit(row, st, FLAT_ACCOUNT)
        self.snap_open_interest()
        self.total_withdrawals += payout
        self.emit("settle", account=self.name(row), amount=payout, price=self.settlement_price)
        return payout

    # ----------------------------------------------------------------------------------------
    # Views

    def view(self, account: str | int, price: float | None = None) -> AccountView:
        """Every quantity of the seed for one account, at the mark price or at ``price``.

        A name never touched is the contract's empty account (flat, cash 0).
        """
        st = self.state(account)
        if price is None:
            p, acc = self.prices()
        else:
            p, acc = check_price(price), self.accumulated_funding_per_contract
        g = self.governance
        sl_l, sl_s = self.social_loss_per_contract_long, self.social_loss_per_contract_short
        # pnl1, social_loss and funding_loss written out (agents read views all the time).
        side, ev = st.position_side, st.entry_value
        if side is Side.LONG:
            p1 = p * st.position_size - ev
            sl = sl_l * st.position_size - st.entry_social_loss
            fl = acc * st.position_size - st.entry_funding_loss
        elif side is Side.SHORT:
            p1 = ev - p * st.position_size
            sl = sl_s * st.position_size - st.entry_social_loss
            fl = -(acc * st.position_size - st.entry_funding_loss)
        else:
            p1 = sl = fl = 0.0
        pnl2 = p1 - sl - fl
        mb = st.cash_balance + pnl2
        size = st.position_size
        pm = p * size * g.initial_margin_rate
        mm = p * size * g.maintenance_margin_rate
        avail = mb - pm
        if st.position_side is Side.LONG:
            liq = (st.cash_balance - st.entry_value - sl - fl) / (
                size * g.maintenance_margin_rate - size
            )
        elif st.position_side is Side.SHORT:
            liq = (st.cash_balance + st.entry_value - sl - fl) / (
                size * g.maintenance_margin_rate + size
            )
        else:
            liq = 0.0
        # Positional: keyword construction of a frozen dataclass costs twice as much here.
        return AccountView(
            st.cash_balance,  # cash_balance
            _SIDE_WORDS[st.position_side],  # position_side
            size,  # position_size
            st.entry_value,  # entry_value
            st.entry_social_loss,  # entry_social_loss
            st.entry_funding_loss,  # entry_funding_loss
            p,  # price
            p1,  # pnl1
            sl,  # social_loss
            fl,  # funding_loss
            pnl2,  # pnl2
            mb,  # margin_balance
            pm,  # position_margin
            mm,  # maintenance_margin
            avail,  # available_margin
            max(avail, 0.0),  # withdrawable_balance
            mb >= mm,  # is_safe
            avail >= 0.0,  # is_im_safe
            mb < 0.0,  # is_bankrupt
            liq,  # estimated_liquidation_price
            self._liquidation_amount(st, p, acc),  # liquidation_amount
            st.entry_value / size if size > 0 else 0.0,  # avg_entry_price
        )

    def margin_balances(self, price: float | None = None) -> FloatArray:
        """``MarginBalance`` of every account, vectorised (at the mark price or ``price``).

        The same operations in the same order as the per-account formula, so each value is
        bit-identical to :meth:`view`'s; computed in place on scratch buffers (this is the
        per-tick liquidation scan).
        """
        p = self.mark_price if price is None else check_price(price)
        return self._margin_balances(p, self.accumulated_funding_per_contract).copy()

    def _margin_balances(self, p: float, acc: float) -> FloatArray:
        """The margin balances at ``p`` and ``acc`` (read-only; valid until the next write).

        Kept with the state they were computed from (the price, the funding, the social loss
        per contract and the accounts' write counter): asked again for the same state, the
        same array is returned without a new pass.
        """
        a = self.accounts
        key = (
            p,
            acc,
            self.social_loss_per_contract_long,
            self.social_loss_per_contract_short,
            a.version,
            len(a),
        )
        if key == self._scan_key:
            return self._scan_mb
        mb = self._compute_margin_balances(p, acc)
        if len(self._scan_mb) != len(mb):
            self._scan_mb = np.empty(len(mb))
        self._scan_mb[:] = mb
        self._scan_key = key
        return self._scan_mb

    def _compute_margin_balances(self, p: float, acc: float) -> FloatArray:
        a = self.accounts
        mb, t, _, _ = a.work()
        size, sign = a.position_size, a.sign
        # PNL1 = sign·(p·size − entry_value)
        np.multiply(size, p, out=mb)
        mb -= a.entry_value
        mb *= sign
        # − SocialLoss = − (slpc_side·size − entry_social_loss)
        sl_l, sl_s = self.social_loss_per_contract_long, self.social_loss_per_contract_short
        if sl_l == sl_s:
            np.multiply(size, sl_l, out=t)
        else:
            np.multiply(size, sl_s, out=t)
            np.multiply(size, sl_l, out=t, where=a.is_long)
        t -= a.entry_social_loss
        mb -= t
        # − FundingLoss = − sign·(acc·size − entry_funding_loss)
        np.multiply(size, acc, out=t)
        t -= a.entry_funding_loss
        t *= sign
        mb -= t
        # MarginBalance = CashBalance + PNL2
        mb += a.cash_balance
        return mb

    def maintenance_margins(self, price: float | None = None) -> FloatArray:
        """``MaintenanceMargin`` of every account, vectorised."""
        p = self.mark_price if price is None else check_price(price)
        result: FloatArray = (
            p * self.accounts.position_size * self.governance.maintenance_margin_rate
        )
        return result

    def _nobody_unsafe(self, p: float, acc: float) -> bool:
        """Whether the liquidation bounds rule out any unsafe account at ``p`` (no scan)."""
        return self._bounds.nobody_unsafe(
            p,
            acc,
            self.social_loss_per_contract_long,
            self.social_loss_per_contract_short,
            self.governance.maintenance_margin_rate,
        )

    def unsafe_accounts(self, price: float | None = None) -> IntArray:
        """Rows of every account with MarginBalance < MaintenanceMargin (one vectorised scan)."""
        p = self.mark_price if price is None else check_price(price)
        acc = self.accumulated_funding_per_contract
        if self._nobody_unsafe(p, acc):
            return np.empty(0, dtype=np.intp)
        mb = self._margin_balances(p, acc)
        _, _, mm, mask = self.accounts.work()
        # (p·size)·rate, the order of the per-account formula, so both agree to the bit.
        np.multiply(self.accounts.position_size, p, out=mm)
        mm *= self.governance.maintenance_margin_rate
        np.less(mb, mm, out=mask)
        return np.flatnonzero(mask)

    def bankrupt_accounts(self, price: float | None = None) -> IntArray:
        """Rows of every account with MarginBalance < 0."""
        p = self.mark_price if price is None else check_price(price)
        acc = self.accumulated_funding_per_contract
        # Bankrupt (MarginBalance < 0) implies unsafe (< MaintenanceMargin, which is >= 0).
        if self._nobody_unsafe(p, acc):
            return np.empty(0, dtype=np.intp)
        mb = self._margin_balances(p, acc)
        _, _, _, mask = self.accounts.work()
        np.less(mb, 0.0, out=mask)
        return np.flatnonzero(mask)

    # ----------------------------------------------------------------------------------------
    # Accounting checks

    def total_value(self) -> float:
        """Σ margin balances (at the mark or settlement price) + the insurance fund."""
        if len(self.accounts) == 0:
            return self.insurance_fund
        price: float | None
        try:
            price = self.mark_price
        except InvalidOperationError:
            price = None
        if price is None:
            # No price yet: only valid while nobody holds a position.
            return float(self.accounts.cash_balance.sum()) + self.insurance_fund
        return float(self.margin_balances(price).sum()) + self.insurance_fund

    def expected_value(self) -> float:
        """What :meth:`total_value` must equal: deposits − withdrawals + value created by
        write-offs (bad debt, settlement shortfall) + admin adjustments."""
        return (
            self.total_deposits
            - self.total_withdrawals
            + self.bad_debt
            + self.settlement_shortfall
            + self.admin_adjustments
        )

    def check_invariants(self, *, raise_on_violation: bool = True, full: bool = True) -> list[str]:
        """Check the accounting invariants; return (or raise) the violations found.

        - collateral is conserved: Σ(cash + PNL2) + insurance fund = deposits − withdrawals
          + bad debt + settlement shortfall + admin adjustments;
        - long open interest == short open interest == the sums of the account arrays
          (NORMAL and EMERGENCY);
        - cash: with ``cash_balance_rule: margin`` (the contract's rule) an account may hold
          negative cash while it has a position, but a flat account's margin balance is its cash
          and must not be negative (a liquidation floors the victim's cash at 0; every other
          operation leaves its accounts safe), except where the admin set cash directly; with
          ``non_negative`` no account has negative cash;
        - the insurance fund is not negative;
        - position sizes are ≥ 0 and flat ⇔ size 0;
        - social loss per contract never decreased except by the admin.

        Args:
            raise_on_violation: raise :class:`~perpsim.errors.InvariantViolation` instead of
                returning the problems.
            full: check every account with whole-array passes. Otherwise the per-account rules
                are checked on the accounts written since the last check (no other account can
                have changed) and the sums from incrementally kept totals
                (:class:`~perpsim.engine.venues.mcdex_v1.bookkeeping.AccountingSums`); the
                first check, and any after a governance change, is full regardless.
        """
        if full or self._sums_governance is not self.governance:
            problems = self._check_full()
            self._sums.resync()
            self._sums_governance = self.governance
        else:
            problems = self._check_written()
        if problems and raise_on_violation:
            raise InvariantViolation(
                f"accounting invariants violated at time {self.now}: " + "; ".join(problems)
            )
        return problems

    def _check_full(self) -> list[str]:
        problems: list[str] = []
        a = self.accounts
        size = a.position_size
        side = a.position_side
        scale = float(np.abs(a.cash_balance).sum()) + abs(self.insurance_fund)
        scale += self.total_deposits + self.total_withdrawals + 1.0
        cash = a.cash_balance
        if self.governance.cash_balance_rule == "margin":
            cash = np.where(side == Side.FLAT, cash, 0.0)
            if self._admin_rows:
                cash[list(self._admin_rows)] = 0.0
            what = "cash balance of a flat account (its margin balance)"
        else:
            what = "cash balance"
        negative = negative_balances_problem(a.names, cash, INVARIANT_RTOL * scale, what)
        if negative is not None:
            problems.append(negative)
        if self.insurance_fund < -INVARIANT_RTOL * scale:
            problems.append(f"negative insurance fund {self.insurance_fund:.10g}")
        if (size < 0).any():
            problems.append("negative position size")
        flat = side == Side.FLAT
        if (flat & (size != 0)).any() or (~flat & (size <= 0)).any():
            problems.append("position side and size disagree (flat must mean size 0)")
        sum_long = float(size[side == Side.LONG].sum())
        sum_short = float(size[side == Side.SHORT].sum())
        if not self.setup_used:
            value = self.total_value()
            notional = float(np.abs(a.entry_value).sum())
        else:
            value = notional = 0.0
        problems += self._check_totals(scale, sum_long, sum_short, value, notional)
        return problems

    def _check_written(self) -> list[str]:
        problems: list[str] = []
        a = self.accounts
        sums = self._sums
        written = sums.take_written()
        scale = sums.abs_cash + abs(self.insurance_fund)
        scale += self.total_deposits + self.total_withdrawals + 1.0
        margin_rule = self.governance.cash_balance_rule == "margin"
        tol = INVARIANT_RTOL * scale
        bad_rows: list[int] = []
        negative_size = disagree = False
        for row, st in written:
            pside, psize = st.position_side, st.position_size
            if st.cash_balance < -tol and (
                not margin_rule or (pside is Side.FLAT and row not in self._admin_rows)
            ):
                bad_rows.append(row)
            if psize < 0:
                negative_size = True
            if (pside is Side.FLAT and psize != 0) or (pside is not Side.FLAT and psize <= 0):
                disagree = True
        if bad_rows:
            what = (
                "cash balance of a flat account (its margin balance)"
                if margin_rule
                else "cash balance"
            )
            names = [a.names[r] for r in bad_rows]
            cash = np.asarray([a.read(r).cash_balance for r in bad_rows])
            negative = negative_balances_problem(names, cash, tol, what)
            if negative is not None:
                problems.append(negative)
        if self.insurance_fund < -tol:
            problems.append(f"negative insurance fund {self.insurance_fund:.10g}")
        if negative_size:
            problems.append("negative position size")
        if disagree:
            problems.append("position side and size disagree (flat must mean size 0)")
        value = notional = 0.0
        if not self.setup_used:
            try:
                price: float | None = self.mark_price
            except InvalidOperationError:
                price = None
            if price is None or len(a) == 0:
                value = sums.cash + self.insurance_fund
            else:
                value = (
                    sums.margin_balance_sum(
                        price,
                        self.accumulated_funding_per_contract,
                        self.social_loss_per_contract_long,
                        self.social_loss_per_contract_short,
                    )
                    + self.insurance_fund
                )
            notional = sums.abs_entry_value
        problems += self._check_totals(scale, sums.long_size, sums.short_size, value, notional)
        return problems

    def _check_totals(
        self, scale: float, sum_long: float, sum_short: float, value: float, notional: float
    ) -> list[str]:
        """The whole-book rules, given the sums over the accounts (however computed)."""
        problems: list[str] = []
        floor_l, floor_s = self._slpc_floor
        if (
            self.social_loss_per_contract_long < floor_l
            or self.social_loss_per_contract_short < floor_s
        ):
            problems.append("social loss per contract decreased outside an admin operation")
        oi_scale = max(sum_long, sum_short, self.peak_open_interest, 1.0)
        if not math.isclose(sum_long, self.total_size_long, rel_tol=1e-9, abs_tol=1e-9 * oi_scale):
            problems.append(
                f"total_size_long {self.total_size_long:.12g} != Σ long sizes {sum_long:.12g}"
            )
        if not math.isclose(
            sum_short, self.total_size_short, rel_tol=1e-9, abs_tol=1e-9 * oi_scale
        ):
            problems.append(
                f"total_size_short {self.total_size_short:.12g} != Σ short sizes {sum_short:.12g}"
            )
        if not self.setup_used:
            # Settlement flattens accounts one at a time, so only before it must sides match.
            if self.status is not Status.SETTLED and not math.isclose(
                sum_long, sum_short, rel_tol=1e-9, abs_tol=1e-9 * oi_scale
            ):
                problems.append(f"long open interest {sum_long:.12g} != short {sum_short:.12g}")
            expected = self.expected_value()
            tol = INVARIANT_RTOL * (scale + notional)
            lost = conservation_problem(value, expected, tol, "Σ margin balances + insurance fund")
            if lost is not None:
                problems.append(lost)
        return problems

    # ----------------------------------------------------------------------------------------

    def mark_pooled(self, row: int) -> None:
        """Mark an account as a pool account (its cash belongs to share holders)."""
        self._pooled_rows.add(row)

    def change_governance(self, governance: PerpetualGovernance) -> None:
        """Replace the whole governance set (already validated)."""
        if not isinstance(governance, PerpetualGovernance):
            raise GovernanceError("governance must be a PerpetualGovernance")
        self.governance = governance
