"""The MCDEX v1 AMM pool of seed 004 ("Internal Design of AMM") and its funding machinery.

The liquidity pool is a margin account of the perpetual that always holds a long position. It
prices trades from its own margin (``pool_available_margin / (size ∓ amount)``), mints share
tokens to liquidity providers, and is the perpetual's source of the mark price and of the
accumulated funding per contract.

Funding state is advanced lazily: views compute "what ``Funding()`` would give now" without
storing it, and operations store it only once they are accepted, so a rejected call leaves the
funding state exactly as it was (as a reverted transaction would).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from perpsim.engine.core.accounts import AccountState, AccountStore, Side
from perpsim.engine.core.index import IndexOracle, SettableOracle
from perpsim.engine.core.numbers import (
    check_finite,
    check_lot,
    check_positive,
    check_time,
    floor_to_lot,
)
from perpsim.engine.core.status import Status
from perpsim.engine.venues.mcdex_v1.funding import accumulated_funding, funding_rate
from perpsim.engine.venues.mcdex_v1.governance import FUNDING_PERIOD_SECONDS, AMMGovernance
from perpsim.engine.venues.mcdex_v1.perpetual import Perpetual, apply_trade, first_touch
from perpsim.errors import (
    BadAmountError,
    DeadlineError,
    InsufficientBalanceError,
    InvalidOperationError,
    PriceLimitError,
    UnsafeError,
    WrongStatusError,
)

POOL_ACCOUNT = "pool"


class FundingState(NamedTuple):
    """The pool's funding storage (seed 004, "Pool storage")."""

    last_funding_time: int | None
    last_premium: float
    last_ema_premium: float
    last_index_price: float
    accumulated_funding_per_contract: float


_EMPTY_FUNDING = FundingState(None, 0.0, 0.0, 0.0, 0.0)


class AMMPool:
    """The AMM pool: every trader's counterparty and the perpetual's mark-price source.

    Args:
        perpetual: the perpetual whose margin account the pool is. The pool installs itself
            as the perpetual's price source.
        governance: the pool's governance parameters (defaults if omitted).
        oracle: the index oracle; a :class:`SettableOracle` if omitted.
        account: the name of the pool's margin account.
    """

    def __init__(
        self,
        perpetual: Perpetual,
        governance: AMMGovernance | None = None,
        oracle: IndexOracle | None = None,
        *,
        account: str = POOL_ACCOUNT,
    ) -> None:
        self.perp = perpetual
        self.governance = governance if governance is not None else AMMGovernance()
        self.oracle: IndexOracle = oracle if oracle is not None else SettableOracle()
        self.account = account
        self.pool_row = perpetual.ensure_account(account)
        perpetual.mark_pooled(self.pool_row)
        self.share_balances: dict[str, float] = {}
        self.total_supply = 0.0
        self.created = False
        self._fs = _EMPTY_FUNDING
        self._preview_key: tuple[object, ...] | None = None
        self._preview = _EMPTY_FUNDING
        perpetual.price_source = self

    def _resum_supply(self) -> None:
        # TotalSupply is the sum of the balances, recomputed exactly on every mint and burn so
        # that float residue never leaves ownerless shares (LP holders are few).
        self.share_balances = {k: v for k, v in self.share_balances.items() if v > 0.0}
        self.total_supply = math.fsum(self.share_balances.values())

    @property
    def dead(self) -> bool:
        """A created pool drained to size 0 (by LPs leaving or by liquidation) is dead."""
        return self.created and self.perp.accounts.size_of(self.pool_row) <= 0.0

    # ----------------------------------------------------------------------------------------
    # Funding

    @property
    def funding_state(self) -> FundingState:
        """The stored funding state (as of the last operation that ran ``Funding()``)."""
        return self._fs

    def _pool_available_margin(self, st: AccountState, acc: float) -> float:
        """``PoolAvailableMargin`` = cash − entry_value − social_loss − funding_loss."""
        size = st.position_size
        sl = self.perp.social_loss_per_contract_long * size - st.entry_social_loss
        fl = acc * size - st.entry_funding_loss
        return st.cash_balance - st.entry_value - sl - fl

    def _fair(self, st: AccountState, acc: float) -> float | None:
        if st.position_size <= 0.0:
            return None
        return self._pool_available_margin(st, acc) / st.position_size

    def _step(self, fs: FundingState, end: int, index_price: float) -> FundingState:
        """Steps 3-5 of the seed's Funding(): integrate to ``end``, then refresh the premium."""
        assert fs.last_funding_time is not None
        acc_pc = fs.accumulated_funding_per_contract
        ema = fs.last_ema_premium
        if end != fs.last_funding_time:
            g = self.governance
            ema, acc = accumulated_funding(
                end - fs.last_funding_time,
                fs.last_ema_premium,
                fs.last_premium,
                fs.last_index_price,
                g.ema_alpha,
                g.mark_premium_limit,
                g.funding_dampener,
            )
            acc_pc += acc / FUNDING_PERIOD_SECONDS
        fair = self._fair(self.perp.accounts.read(self.pool_row), acc_pc)
        premium = fs.last_premium if fair is None else fair - index_price
        return FundingState(end, premium, ema, index_price, acc_pc)

    def _advance(self, fs: FundingState) -> FundingState:
        """The funding state ``Funding()`` would store now (pure).

        It is a function of the state advanced from, the time, the index, the pool's margin
        account, the long social loss per contract and the governance only, so the last answer
        is kept under those: the mark-price reads of a tick and the operations that follow them
        integrate the funding once, not once each.
        """
        perp = self.perp
        if fs.last_funding_time is None or self.dead or perp.status is not Status.NORMAL:
            return fs
        now = perp.now
        index = self.oracle.index(now)
        key = (
            fs,
            now,
            index,
            perp.accounts.read(self.pool_row),
            perp.social_loss_per_contract_long,
            self.governance,
        )
        if self._preview_key == key:
            return self._preview
        price, ts = index
        ts = min(ts, now)
        advanced = fs
        if ts > fs.last_funding_time:
            # The index changed inside the interval: integrate up to its timestamp with the
            # old index and premium, then switch (seed step 2).
            advanced = self._step(fs, ts, price)
        result = self._step(advanced, now, price)
        self._preview_key, self._preview = key, result
        return result

    def _current_prices_state(self) -> FundingState:
        """Funding state good enough for the mark price and accumulated funding.

        Those two depend only on the time and the index, not on the latest premium, so when
        funding already ran this second with the same index the stored state is exact.
        """
        fs = self._fs
        perp = self.perp
        if fs.last_funding_time is None or perp.status is not Status.NORMAL:
            return fs
        now = perp.now
        index = self.oracle.index(now)
        # Funding already ran this second with this index (the common case: every operation
        # runs it) or the pool is dead: the stored state is the answer either way.
        if (
            fs.last_funding_time == now and index[0] == fs.last_index_price and index[1] <= now
        ) or self.dead:
            return fs
        return self._advance(fs)

    def current_funding_state(self) -> FundingState:
        """The funding state as if ``Funding()`` ran now (nothing is stored)."""
        return self._advance(self._fs)

    def funding(self) -> None:
        """The seed's ``Funding()``: store the funding state as of now (frozen outside NORMAL)."""
        self._fs = self._advance(self._fs)

    def _mark_from(self, fs: FundingState) -> float:
        idx = fs.last_index_price
        lim = self.governance.mark_premium_limit * idx
        premium = min(max(fs.last_ema_premium, -lim), lim)
        return max(idx + premium, 0.0)

    def mark_price(self) -> float:
        """``MarkPrice`` = last index + EMA premium clamped to ± limit × index, floored at 0.

        Raises:
            InvalidOperationError: the pool has not been created yet.
        """
        if not self.created:
            raise InvalidOperationError("the pool has not been created: there is no mark price yet")
        return self._mark_from(self._current_prices_state())

    def accumulated_funding_per_contract(self) -> float:
        """``AccumulatedFundingPerContract`` as of now."""
        return self._current_prices_state().accumulated_funding_per_contract

    def prices(self) -> tuple[float, float]:
        """``(MarkPrice, AccumulatedFundingPerContract)`` as of now, from one funding preview.

        Raises:
            InvalidOperationError: the pool has not been created yet.
        """
        if not self.created:
            raise InvalidOperationError("the pool has not been created: there is no mark price yet")
        fs = self._current_prices_state()
        return self._mark_from(fs), fs.accumulated_funding_per_contract

    def stored_accumulated_funding_per_contract(self) -> float:
        """``AccumulatedFundingPerContract`` as the last ``Funding()`` stored it."""
        return self._fs.accumulated_funding_per_contract

    def freeze_funding(self, value: float) -> None:
        """Store ``value`` as the accumulated funding per contract (called by the perpetual's
        EMERGENCY setter, which checks the status)."""
        self._fs = self._fs._replace(accumulated_funding_per_contract=value)

    def premium(self) -> float:
        """The contract's ``currentPremium``: fair price − last index after funding to now."""
        if not self.created:
            raise InvalidOperationError("the pool has not been created: there is no premium yet")
        fs = self.current_funding_state()
        fair = self._fair(self.pool_state(), fs.accumulated_funding_per_contract)
        if fair is None:
            raise InvalidOperationError("the pool holds no position: there is no premium")
        return fair - fs.last_index_price

    def premium_rate(self) -> float:
        """``PremiumRate`` = (mark − last index) / last index."""
        fs = self._current_prices_state()
        return (self._mark_from(fs) - fs.last_index_price) / fs.last_index_price

    def funding_rate(self) -> float:
        """``FundingRate``: the premium rate with the dampener band removed (an 8-hour rate)."""
        return funding_rate(self.premium_rate(), self.governance.funding_dampener)

    # ----------------------------------------------------------------------------------------
    # Views

    def index_price(self) -> float:
        """The oracle's current index price."""
        return self.oracle.index(self.perp.now)[0]

    def index_timestamp(self) -> int:
        """The oracle's current index timestamp."""
        return self.oracle.index(self.perp.now)[1]

    def pool_state(self) -> AccountState:
        """The pool's margin account."""
        return self.perp.accounts.read(self.pool_row)

    def available_margin(self) -> float:
        """``PoolAvailableMargin`` now."""
        return self._pool_available_margin(
            self.pool_state(), self.accumulated_funding_per_contract()
        )

    def position_size(self) -> float:
        """The pool's long position."""
        return self.pool_state().position_size

    def fair_price(self) -> float:
        """``FairPrice`` = PoolAvailableMargin / PositionSize.

        Raises:
            InvalidOperationError: the pool holds no position (not created, or drained).
        """
        fair = self._fair(self.pool_state(), self.accumulated_funding_per_contract())
        if fair is None:
            raise InvalidOperationError("the pool holds no position: there is no fair price")
        return fair

    def share_balance(self, account: str) -> float:
        """The share tokens held by ``account``."""
        return self.share_balances.get(account, 0.0)

    def share_price(self) -> float:
        """Collateral one share redeems for now (2 × PoolAvailableMargin / TotalSupply)."""
        if self.total_supply <= 0.0:
            return 0.0
        if self.perp.status is Status.SETTLED:
            return self.pool_state().cash_balance / self.total_supply
        return 2.0 * self.available_margin() / self.total_supply

    def quote_price(self, size: float) -> float:
        """The price of a trade of signed ``size`` (> 0 buys from the pool), nothing changed.

        Raises:
            BadAmountError: ``size`` is 0 or a buy is not smaller than the pool's position.
        """
        s = float(size)
        if not math.isfinite(s) or s == 0.0:
            raise BadAmountError(f"trade size must be finite and non-zero, got {size!r}")
        pool = self.pool_state()
        pam = self._pool_available_margin(pool, self.accumulated_funding_per_contract())
        if s > 0:
            if s >= pool.position_size:
                raise BadAmountError(
                    f"cannot buy {s:.10g}: the pool holds only {pool.position_size:.10g}"
                )
            return pam / (pool.position_size - s)
        return pam / (pool.position_size - s)

    # ----------------------------------------------------------------------------------------
    # Operations

    def _require_live(self, op: str) -> None:
        if self.perp.status is not Status.NORMAL:
            raise WrongStatusError(
                f"{op} requires status NORMAL; the perpetual is {self.perp.status.value}"
            )
        if not self.created:
            raise InvalidOperationError(f"{op}: the pool has not been created")
        if self.dead:
            raise InvalidOperationError(f"{op}: the pool was drained to size 0 and is dead")

    @property
    def accounts(self) -> AccountStore:
        """The perpetual's margin accounts (the pool's is one of them)."""
        return self.perp.accounts

    def _trader_row(self, account: str | int) -> int:
        # Callers are wrapped in first_touch: a name never seen is an empty account.
        row = self.perp.touch(account)
        if row == self.pool_row:
            raise InvalidOperationError("the pool cannot trade with itself")
        if row == self.perp.dev:
            raise InvalidOperationError("the dev account cannot trade with the pool")
        return row

    @first_touch
    def create_pool(self, account: str | int, amount: float) -> float:
        """``CreatePool``: the creator pays 2 × index × amount and sells ``amount`` to the pool.

        Returns:
            The shares minted (equal to ``amount``).
        """
        perp = self.perp
        if perp.status is not Status.NORMAL:
            raise WrongStatusError(
                f"create_pool requires status NORMAL; the perpetual is {perp.status.value}"
            )
        if self.created:
            raise InvalidOperationError("the pool has already been created")
        amt = check_positive(amount, "pool amount")
        # The contract checks the position grid (lot_size), not the trading lot.
        check_lot(amt, perp.governance.lot_size, "pool amount")
        row = self._trader_row(account)
        pool0 = perp.accounts.read(self.pool_row)
        if pool0.position_size != 0.0 or pool0.cash_balance != 0.0:
            raise InvalidOperationError("create_pool requires an empty pool account")
        index, _ = self.oracle.index(perp.now)
        acc = self._fs.accumulated_funding_per_contract
        sl_l, sl_s = perp.social_loss_per_contract_long, perp.social_loss_per_contract_short
        collateral = 2.0 * index * amt
        t0 = perp.accounts.read(row)
        t1, opened, _ = apply_trade(
            t0._replace(cash_balance=t0.cash_balance - collateral),
            Side.SHORT,
            index,
            amt,
            sl_l,
            sl_s,
            acc,
        )
        p1, _, _ = apply_trade(
            pool0._replace(cash_balance=pool0.cash_balance + collateral),
            Side.LONG,
            index,
            amt,
            sl_l,
            sl_s,
            acc,
        )
        # The new pool's premium is exactly 0, so the mark price is the index.
        who = perp.name(row)
        perp.check_after(who, t1, opened, index, acc)
        perp.commit(row, t0, t1)
        perp.commit(self.pool_row, pool0, p1)
        perp.snap_open_interest()
        self.share_balances[who] = self.share_balances.get(who, 0.0) + amt
        self._resum_supply()
        self.created = True
        fair = self._fair(p1, acc)
        premium = 0.0 if fair is None else fair - index
        self._fs = FundingState(perp.now, premium, premium, index, acc)
        perp.emit("create_pool", account=who, amount=amt, price=index, shares=amt)
        return amt

    def _check_deadline(self, deadline: int | float | None) -> None:
        if deadline is None:
            return
        d = check_time(deadline, "deadline")
        if self.perp.now >= d:
            raise DeadlineError(f"deadline {d} has passed (now {self.perp.now})")

    @first_touch
    def trade(
        self,
        account: str | int,
        side: Side,
        amount: float,
        limit_price: float | None = None,
        deadline: int | float | None = None,
    ) -> tuple[float, float, float]:
        """Buy (``side`` LONG) from or sell (SHORT) to the pool.

        Returns:
            ``(price, pool fee, dev fee)``.
        """
        op = "buy" if side is Side.LONG else "sell"
        perp = self.perp
        self._require_live(op)
        amt = check_positive(amount, f"{op} amount")
        check_lot(amt, perp.governance.trading_lot_size, f"{op} amount")
        limit = None if limit_price is None else check_finite(limit_price, "limit price")
        if limit is not None and limit < 0.0:
            raise BadAmountError(f"limit price must be >= 0, got {limit_price!r}")
        self._check_deadline(deadline)
        row = self._trader_row(account)
        fs1 = self._advance(self._fs)
        mark = self._mark_from(fs1)
        acc = fs1.accumulated_funding_per_contract
        pool0 = perp.accounts.read(self.pool_row)
        pam = self._pool_available_margin(pool0, acc)
        size = pool0.position_size
        if side is Side.LONG:
            if amt >= size:
                raise BadAmountError(
                    f"cannot buy {amt:.10g}: the amount must be below the pool's position"
                    f" {size:.10g}"
                )
            price = pam / (size - amt)
            if limit is not None and price > limit:
                raise PriceLimitError(f"buy price {price:.10g} is above the limit {limit:.10g}")
        else:
            price = pam / (size + amt)
            if limit is not None and price < limit:
                raise PriceLimitError(f"sell price {price:.10g} is below the limit {limit:.10g}")
        if price <= 0.0:
            raise UnsafeError(f"the pool's price {price:.10g} is not positive")
        sl_l, sl_s = perp.social_loss_per_contract_long, perp.social_loss_per_contract_short
        t0 = perp.accounts.read(row)
        t1, opened, _ = apply_trade(t0, side, price, amt, sl_l, sl_s, acc)
        p1, _, _ = apply_trade(pool0, side.opposite, price, amt, sl_l, sl_s, acc)
        g = self.governance
        value = price * amt
        pool_fee = value * g.pool_fee_rate
        dev_fee = value * g.pool_dev_fee_rate
        t1 = t1._replace(cash_balance=t1.cash_balance - pool_fee - dev_fee)
        p1 = p1._replace(cash_balance=p1.cash_balance + pool_fee)
        dev0 = perp.accounts.read(perp.dev)
        who = perp.name(row)
        perp.check_after(who, t1, opened, mark, acc)
        self._check_pool(p1, mark, acc)
        perp.commit(row, t0, t1)
        perp.commit(self.pool_row, pool0, p1)
        if dev_fee:
            perp.accounts.write(perp.dev, dev0._replace(cash_balance=dev0.cash_balance + dev_fee))
        perp.snap_open_interest()
        self._fs = self._step(fs1, perp.now, fs1.last_index_price)
        perp.emit(
            op,
            account=who,
            counterparty=self.account,
            side="long" if side is Side.LONG else "short",
            amount=amt,
            price=price,
            fee=pool_fee + dev_fee,
            pool_fee=pool_fee,
            dev_fee=dev_fee,
        )
        return price, pool_fee, dev_fee

    def _check_pool(self, st: AccountState, mark: float, acc: float) -> None:
        if st.position_side is Side.SHORT:
            raise UnsafeError("the pool must hold a long position")
        try:
            self.perp.check_after(self.account, st, 0.0, mark, acc)
        except (UnsafeError, InsufficientBalanceError) as exc:
            raise UnsafeError(f"the pool would not be safe: {exc}") from None
        if st.position_size > 0.0:
            pam = self._pool_available_margin(st, acc)
            if pam <= 0.0:
                raise UnsafeError(
                    f"the pool's available margin would be {pam:.10g}; it must stay > 0"
                )

    def buy(
        self,
        account: str | int,
        amount: float,
        limit_price: float | None = None,
        deadline: int | float | None = None,
    ) -> float:
        """``BuyFromPool``: go long ``amount`` at PoolAvailableMargin / (size − amount).

        Returns:
            The trade price.
        """
        return self.trade(account, Side.LONG, amount, limit_price, deadline)[0]

    def sell(
        self,
        account: str | int,
        amount: float,
        limit_price: float | None = None,
        deadline: int | float | None = None,
    ) -> float:
        """``SellToPool``: go short ``amount`` at PoolAvailableMargin / (size + amount).

        Returns:
            The trade price.
        """
        return self.trade(account, Side.SHORT, amount, limit_price, deadline)[0]

    @first_touch
    def add_liquidity(self, account: str | int, amount: float) -> float:
        """``AddLiquidity``: pay 2 × fair × amount, sell ``amount`` to the pool, get shares.

        Returns:
            The shares minted: total_supply × amount / pool size.
        """
        perp = self.perp
        self._require_live("add_liquidity")
        amt = check_positive(amount, "liquidity amount")
        check_lot(amt, perp.governance.lot_size, "liquidity amount")
        row = self._trader_row(account)
        fs1 = self._advance(self._fs)
        mark = self._mark_from(fs1)
        acc = fs1.accumulated_funding_per_contract
        pool0 = perp.accounts.read(self.pool_row)
        size = pool0.position_size
        price = self._pool_available_margin(pool0, acc) / size
        shares = self.total_supply * amt / size
        collateral = 2.0 * price * amt
        sl_l, sl_s = perp.social_loss_per_contract_long, perp.social_loss_per_contract_short
        t0 = perp.accounts.read(row)
        t1, opened, _ = apply_trade(
            t0._replace(cash_balance=t0.cash_balance - collateral),
            Side.SHORT,
            price,
            amt,
            sl_l,
            sl_s,
            acc,
        )
        p1, _, _ = apply_trade(
            pool0._replace(cash_balance=pool0.cash_balance + collateral),
            Side.LONG,
            price,
            amt,
            sl_l,
            sl_s,
            acc,
        )
        who = perp.name(row)
        perp.check_after(who, t1, opened, mark, acc)
        if p1.cash_balance <= 0.0:
            raise UnsafeError("the pool's cash balance must stay > 0")
        self._check_pool(p1, mark, acc)
        perp.commit(row, t0, t1)
        perp.commit(self.pool_row, pool0, p1)
        perp.snap_open_interest()
        self.share_balances[who] = self.share_balances.get(who, 0.0) + shares
        self._resum_supply()
        self._fs = self._step(fs1, perp.now, fs1.last_index_price)
        perp.emit(
            "add_liquidity",
            account=who,
            amount=amt,
            price=price,
            shares=shares,
            collateral=collateral,
        )
        return shares

    @first_touch
    def remove_liquidity(self, account: str | int, shares: float) -> float:
        """``RemoveLiquidity``: burn shares, receive 2 × fair × amount, buy ``amount`` back.

        The amount is shares × size / total_supply floored to ``lot_size``.

        Returns:
            The amount of contracts taken from the pool.
        """
        perp = self.perp
        self._require_live("remove_liquidity")
        sh = check_positive(shares, "share amount")
        row = self._trader_row(account)
        who = perp.name(row)
        held = self.share_balances.get(who, 0.0)
        if sh > held * (1.0 + 1e-12):
            raise InsufficientBalanceError(f"{who} holds {held:.10g} shares, cannot burn {sh:.10g}")
        sh = min(sh, held)
        fs1 = self._advance(self._fs)
        mark = self._mark_from(fs1)
        acc = fs1.accumulated_funding_per_contract
        pool0 = perp.accounts.read(self.pool_row)
        size = pool0.position_size
        price = self._pool_available_margin(pool0, acc) / size
        # The last holder takes the whole pool, whatever float residue the supply carries.
        everything = sh >= self.total_supply * (1.0 - 1e-12)
        amt = (
            size
            if everything
            else floor_to_lot(sh * size / self.total_supply, perp.governance.lot_size)
        )
        amt = min(amt, size)
        if amt <= 0.0:
            raise BadAmountError(f"{sh:.10g} shares are worth less than one lot of the pool")
        collateral = 2.0 * price * amt
        sl_l, sl_s = perp.social_loss_per_contract_long, perp.social_loss_per_contract_short
        t0 = perp.accounts.read(row)
        t1, opened, _ = apply_trade(
            t0._replace(cash_balance=t0.cash_balance + collateral),
            Side.LONG,
            price,
            amt,
            sl_l,
            sl_s,
            acc,
        )
        p1, _, _ = apply_trade(
            pool0._replace(cash_balance=pool0.cash_balance - collateral),
            Side.SHORT,
            price,
            amt,
            sl_l,
            sl_s,
            acc,
        )
        perp.check_after(who, t1, opened, mark, acc)
        if p1.position_size > 0.0:
            self._check_pool(p1, mark, acc)
        elif p1.cash_balance < -1e-9 * max(collateral, 1.0):
            raise UnsafeError(f"the drained pool would hold negative cash {p1.cash_balance:.10g}")
        else:
            p1 = p1._replace(cash_balance=max(p1.cash_balance, 0.0))
        perp.commit(row, t0, t1)
        perp.commit(self.pool_row, pool0, p1)
        perp.snap_open_interest()
        left = held - sh
        self.share_balances[who] = left if left > held * 1e-12 else 0.0
        self._resum_supply()
        self._fs = self._step(fs1, perp.now, fs1.last_index_price)
        perp.emit(
            "remove_liquidity",
            account=who,
            amount=amt,
            price=price,
            shares=sh,
            collateral=collateral,
        )
        return amt

    def transfer_shares(self, sender: str, receiver: str, shares: float) -> None:
        """Move share tokens between holders (they are transferable tokens)."""
        sh = check_positive(shares, "share amount")
        if not isinstance(receiver, str) or not receiver:
            raise InvalidOperationError(f"receiver must be a non-empty name, got {receiver!r}")
        if sender == receiver:
            raise InvalidOperationError("sender and receiver must differ")
        held = self.share_balances.get(sender, 0.0)
        if sh > held * (1.0 + 1e-12):
            raise InsufficientBalanceError(
                f"{sender} holds {held:.10g} shares, cannot transfer {sh:.10g}"
            )
        sh = min(sh, held)
        self.share_balances[sender] = held - sh
        self.share_balances[receiver] = self.share_balances.get(receiver, 0.0) + sh
        self.perp.emit("transfer_shares", account=sender, counterparty=receiver, shares=sh)

    @first_touch
    def update_index(self, caller: str | int) -> float:
        """``UpdateIndex``: run funding with the oracle's index; pay the prize if it changed.

        Returns:
            The prize paid to ``caller`` (0 when the index did not change).

        Raises:
            InsufficientBalanceError: the dev account cannot pay the prize.
        """
        perp = self.perp
        self._require_live("update_index")
        row = self._trader_row(caller)
        old_index = self._fs.last_index_price
        fs1 = self._advance(self._fs)
        prize = 0.0
        if fs1.last_index_price != old_index:
            prize = self.governance.update_index_prize
        dev0 = perp.accounts.read(perp.dev)
        if prize > 0.0:
            if dev0.cash_balance < prize:
                raise InsufficientBalanceError(
                    f"the dev account holds {dev0.cash_balance:.10g} and cannot pay the"
                    f" update-index prize {prize:.10g}"
                )
            c0 = perp.accounts.read(row)
            perp.accounts.write(perp.dev, dev0._replace(cash_balance=dev0.cash_balance - prize))
            perp.accounts.write(row, c0._replace(cash_balance=c0.cash_balance + prize))
        self._fs = fs1
        perp.emit("update_index", account=perp.name(row), price=fs1.last_index_price, amount=prize)
        return prize

    def settle_share(self, account: str, shares: float) -> float:
        """After settlement, redeem shares for their part of the pool's cash.

        The collateral is credited to the holder's margin account; ``settle`` pays it out.

        Returns:
            The collateral credited.
        """
        perp = self.perp
        if perp.status is not Status.SETTLED:
            raise WrongStatusError(
                f"settle_share requires status SETTLED; the perpetual is {perp.status.value}"
            )
        sh = check_positive(shares, "share amount")
        if account == self.account:
            raise InvalidOperationError("the pool's own account cannot redeem pool shares")
        held = self.share_balances.get(account, 0.0)
        if sh > held * (1.0 + 1e-12):
            raise InsufficientBalanceError(
                f"{account} holds {held:.10g} shares, cannot redeem {sh:.10g}"
            )
        sh = min(sh, held)
        pool0 = perp.accounts.read(self.pool_row)
        payout = pool0.cash_balance * sh / self.total_supply
        row = perp.ensure_account(account)
        st = perp.accounts.read(row)
        perp.accounts.write(self.pool_row, pool0._replace(cash_balance=pool0.cash_balance - payout))
        perp.accounts.write(row, st._replace(cash_balance=st.cash_balance + payout))
        self.share_balances[account] = held - sh
        self._resum_supply()
        perp.emit("settle_share", account=account, shares=sh, amount=payout)
        return payout

    def change_governance(self, key: str, value: float) -> None:
        """Change one AMM governance parameter at run time (validated).

        Funding is brought up to date first, so the old parameters govern the elapsed time.
        """
        new = self.governance.with_changes(**{key: value})
        self.funding()
        self.governance = new
        self.perp.emit("set_governance", key=key, value=value)
