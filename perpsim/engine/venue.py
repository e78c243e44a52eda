"""The venue interface: the narrow surface agents trade through, whatever pool is behind it.

Agents never touch balances; they call a :class:`Venue`. Three pool types are planned (the MCDEX
v1 AMM here; Predy's power-perpetual pool and D8X's pool with a default fund next), so the
interface speaks in what every one of them has: signed trade sizes, collateral in and out,
liquidity in collateral and shares, prices, and liquidation of unsafe accounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from perpsim.engine.accounts import IntArray, Side
from perpsim.engine.amm import AMMPool, IndexOracle
from perpsim.engine.governance import AMMGovernance, PerpetualGovernance
from perpsim.engine.perpetual import (
    AccountView,
    LiquidationResult,
    Perpetual,
    Status,
    check_positive,
    floor_to_lot,
)
from perpsim.errors import BadAmountError


@dataclass(frozen=True, slots=True)
class Quote:
    """The price of a trade of signed ``size`` (> 0 buys), computed without changing state.

    Attributes:
        size: the signed size quoted.
        price: the execution price before fees.
        fair_price: the pool's price for an infinitesimal trade.
        price_impact: price / fair_price − 1 (positive for buys, negative for sells).
        fee: fees the trader would pay, in collateral.
    """

    size: float
    price: float
    fair_price: float
    price_impact: float
    fee: float


@dataclass(frozen=True, slots=True)
class Fill:
    """An executed trade: signed size, price and fees paid."""

    account: str
    size: float
    price: float
    fee: float


@runtime_checkable
class Venue(Protocol):
    """What an agent can do and see on an exchange (any pool type)."""

    @property
    def now(self) -> int:
        """The exchange's clock (seconds)."""
        ...

    @property
    def status(self) -> Status:
        """NORMAL, EMERGENCY or SETTLED."""
        ...

    def deposit(self, account: str, amount: float) -> None:
        """Move collateral from the agent's wallet into its margin account."""
        ...

    def withdraw(self, account: str, amount: float) -> None:
        """Move collateral from the margin account back to the wallet."""
        ...

    def quote(self, size: float) -> Quote:
        """Price a trade of signed ``size`` without changing state."""
        ...

    def trade(self, account: str | int, size: float, limit_price: float | None = None) -> Fill:
        """Trade signed ``size`` against the pool (> 0 buys), no worse than ``limit_price``."""
        ...

    def add_liquidity(self, account: str, collateral: float) -> float:
        """Provide about ``collateral`` of liquidity; return the shares minted."""
        ...

    def remove_liquidity(self, account: str, shares: float) -> float:
        """Burn ``shares``; return the collateral received."""
        ...

    def index_price(self) -> float:
        """The oracle's index price."""
        ...

    def mark_price(self) -> float:
        """The mark price margin is computed at."""
        ...

    def fair_price(self) -> float:
        """The pool's own price."""
        ...

    def funding_rate(self) -> float:
        """The current funding rate (8-hour rate; > 0 means longs pay)."""
        ...

    def account(self, account: str | int) -> AccountView:
        """Every margin quantity of one account at the mark price."""
        ...

    def share_balance(self, account: str) -> float:
        """LP shares held by ``account``."""
        ...

    def share_price(self) -> float:
        """Collateral one LP share is worth now."""
        ...

    def liquidatable_accounts(self) -> IntArray:
        """Rows of every account that can be liquidated now (one vectorised scan)."""
        ...

    def account_name(self, row: int) -> str:
        """The name of the account in ``row``."""
        ...

    def liquidate(
        self, liquidator: str | int, account: str | int, max_amount: float
    ) -> LiquidationResult:
        """Liquidate up to ``max_amount`` of an unsafe account's position."""
        ...

    def update_index(self, caller: str | int) -> float:
        """Pull the oracle's index into the exchange; return the keeper prize paid."""
        ...


class MCDEXVenue:
    """The :class:`Venue` of an MCDEX v1 perpetual with its AMM pool.

    Args:
        perpetual: the perpetual engine.
        pool: its AMM pool (installed as the perpetual's price source).
    """

    def __init__(self, perpetual: Perpetual, pool: AMMPool) -> None:
        self.perpetual = perpetual
        self.pool = pool

    @classmethod
    def build(
        cls,
        perpetual_governance: PerpetualGovernance | None = None,
        amm_governance: AMMGovernance | None = None,
        oracle: IndexOracle | None = None,
        *,
        capacity: int = 64,
    ) -> MCDEXVenue:
        """A new perpetual and pool wired together (the pool is not created yet)."""
        perp = Perpetual(perpetual_governance, capacity=capacity)
        return cls(perp, AMMPool(perp, amm_governance, oracle))

    @property
    def now(self) -> int:
        """The exchange's clock (seconds)."""
        return self.perpetual.now

    @property
    def status(self) -> Status:
        """The perpetual's status."""
        return self.perpetual.status

    def deposit(self, account: str, amount: float) -> None:
        """Deposit collateral (creates the account if new)."""
        self.perpetual.deposit(account, amount)

    def withdraw(self, account: str, amount: float) -> None:
        """Withdraw collateral."""
        self.perpetual.withdraw(account, amount)

    def quote(self, size: float) -> Quote:
        """Price a signed trade against the pool, fees included, without changing state."""
        price = self.pool.quote_price(size)
        fair = self.pool.fair_price()
        g = self.pool.governance
        fee = abs(size) * price * (g.pool_fee_rate + g.pool_dev_fee_rate)
        return Quote(float(size), price, fair, price / fair - 1.0, fee)

    def trade(self, account: str | int, size: float, limit_price: float | None = None) -> Fill:
        """Buy (size > 0) from or sell (size < 0) to the pool."""
        s = float(size)
        if s > 0:
            price, pool_fee, dev_fee = self.pool._trade(
                account, Side.LONG, s, limit_price, None, "buy"
            )
        elif s < 0:
            price, pool_fee, dev_fee = self.pool._trade(
                account, Side.SHORT, -s, limit_price, None, "sell"
            )
        else:
            raise BadAmountError("trade size must be non-zero")
        name = self.perpetual.name(self.perpetual.row(account))
        return Fill(name, s, price, pool_fee + dev_fee)

    def add_liquidity(self, account: str, collateral: float) -> float:
        """Provide liquidity worth about ``collateral``.

        MCDEX v1 adds liquidity in contracts: the provider pays 2 × fair price × amount, so
        the amount is collateral / (2 × fair price), floored to the lot size.
        """
        c = check_positive(collateral, "collateral")
        fair = self.pool.fair_price()
        amount = floor_to_lot(c / (2.0 * fair), self.perpetual.governance.lot_size)
        if amount <= 0.0:
            raise BadAmountError(f"collateral {c:.10g} is less than one lot of liquidity")
        return self.pool.add_liquidity(account, amount)

    def remove_liquidity(self, account: str, shares: float) -> float:
        """Burn shares; return the collateral the pool paid (2 × fair price × amount)."""
        fair = self.pool.fair_price()
        amount = self.pool.remove_liquidity(account, shares)
        return 2.0 * fair * amount

    def index_price(self) -> float:
        """The oracle's index price."""
        return self.pool.index_price()

    def mark_price(self) -> float:
        """The perpetual's mark price."""
        return self.perpetual.mark_price

    def fair_price(self) -> float:
        """The pool's fair price."""
        return self.pool.fair_price()

    def funding_rate(self) -> float:
        """The pool's funding rate."""
        return self.pool.funding_rate()

    def account(self, account: str | int) -> AccountView:
        """Every margin quantity of one account at the mark price."""
        return self.perpetual.view(account)

    def share_balance(self, account: str) -> float:
        """LP shares held by ``account``."""
        return self.pool.share_balance(account)

    def share_price(self) -> float:
        """Collateral one share redeems for now."""
        return self.pool.share_price()

    def liquidatable_accounts(self) -> IntArray:
        """Rows of unsafe accounts holding a position (NORMAL or EMERGENCY), one scan."""
        if self.perpetual.status is Status.SETTLED:
            return np.empty(0, dtype=np.int64)
        return self.perpetual.unsafe_accounts()

    def account_name(self, row: int) -> str:
        """The name of the account in ``row``."""
        return self.perpetual.name(row)

    def liquidate(
        self, liquidator: str | int, account: str | int, max_amount: float
    ) -> LiquidationResult:
        """Liquidate up to ``max_amount`` of an unsafe account at the mark price."""
        return self.perpetual.liquidate(liquidator, account, max_amount)

    def update_index(self, caller: str | int) -> float:
        """Call the pool's update_index; return the prize paid."""
        return self.pool.update_index(caller)
