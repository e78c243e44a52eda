"""The venue contract: everything agents, the model, metrics, plots and reports need from an
exchange, whatever design is behind it.

Agents never touch balances: they call a :class:`Venue`. The contract speaks in what every design
has: signed trade sizes, collateral in and out, liquidity in collateral and shares, prices, the
funding rate, a small typed :class:`VenueRules` (lots, margin and fee rates), liquidatable
accounts and liquidation, per-account views, the named loss-absorbing funds, and
:meth:`Venue.observe` (the venue's row of the time series). Nothing of any one design is here:
each design lives in ``perpsim/engine/venues/<kind>/`` and is found through
:mod:`perpsim.engine.registry`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from perpsim.engine.core.accounts import IntArray
from perpsim.engine.core.events import EventSink
from perpsim.engine.core.status import Status
from perpsim.errors import UnknownProductError

#: Time-series columns every venue's :meth:`Venue.observe` returns, in this order. A design
#: adds its own after these, prefixed with its kind (``mcdex_v1_pool_cash_balance``).
COMMON_COLUMNS: tuple[str, ...] = (
    "mark_price",
    "fair_price",
    "premium_rate",
    "funding_rate",
    "accumulated_funding_per_contract",
    "open_interest",
    "lp_share_price",
    "lp_share_supply",
    "insurance_fund",
    "bad_debt",
    "unsafe_accounts",
    "bankrupt_accounts",
    "status",
)

#: The product list of a design with one perpetual (``Venue.products``).
SINGLE_PRODUCT: tuple[str, ...] = ("perpetual",)


def supports(venue: object, capability: type) -> bool:
    """Whether ``venue``, or the venue a wrapper in front of it forwards to, has ``capability``.

    A wrapper such as :class:`~perpsim.engine.core.guard.GuardedVenue` forwards the names it
    does not define through ``__getattr__`` and exposes what it wraps as ``inner``. Since Python
    3.12, ``isinstance`` against a runtime-checkable protocol looks attributes up statically and
    no longer sees forwarded ones, so capability checks go through this function instead.

    Args:
        venue: the venue an agent was given (possibly wrapped).
        capability: a ``runtime_checkable`` protocol (for example, a pool that hedges).

    Returns:
        True if ``venue`` or one of the venues it wraps is an instance of ``capability``.
    """
    target: object | None = venue
    while target is not None:
        if isinstance(target, capability):
            return True
        target = getattr(target, "inner", None)
    return False


@runtime_checkable
class IncrementalAccounting(Protocol):
    """A venue that can check its accounting at the cost of what changed (optional).

    The model checks in full every few ticks and at the end, and between full checks calls
    :meth:`check_changed_invariants` on a venue that has it (through :func:`supports`).
    """

    def check_changed_invariants(self) -> list[str]:
        """The problems :meth:`Venue.check_invariants` would find now, looking only at what
        changed since the last check (exactly: a rule of one account is checked on the accounts
        written since, the whole-book rules on totals kept up to date)."""
        ...


@runtime_checkable
class PositionReader(Protocol):
    """A venue that reads one account's signed position without building its whole view
    (optional).

    An agent that looks every tick and trades rarely (the arbitrageur) needs only its position
    to decide; the view's margin quantities, liquidation price and withdrawable balance are
    work for the looks that trade. Agents check for it with :func:`supports`.
    """

    def signed_position(self, account: str | int) -> float:
        """``position_size`` of :meth:`Venue.account`, negative for a short (0 when flat).

        Raises:
            UnknownAccountError: as :meth:`Venue.account` would.
        """
        ...


def check_product(products: tuple[str, ...], name: str) -> None:
    """Reject a product name the venue does not trade.

    Raises:
        UnknownProductError: ``name`` is not one of ``products`` (the message lists them).
    """
    if name not in products:
        raise UnknownProductError(
            f"unknown product {name!r}: this venue trades {', '.join(map(repr, products))}"
        )


@dataclass(frozen=True, slots=True)
class VenueRules:
    """The rules of a venue an agent sizes its orders by (read fresh: governance can change).

    Attributes:
        lot_size: the grid of position sizes (liquidations and LP amounts are on it).
        trading_lot_size: the grid of trade sizes.
        initial_margin_rate: margin needed to open, per unit of notional.
        maintenance_margin_rate: margin below which an account can be liquidated.
        trade_fee_rate: everything a taker pays per unit of notional on a pool trade.
        funding_dampener: premium (relative) inside which no funding is paid (0 if none).
        keeper_prize: what a call that brings a new index in pays its caller (0 if none).
    """

    lot_size: float
    trading_lot_size: float
    initial_margin_rate: float
    maintenance_margin_rate: float
    trade_fee_rate: float
    funding_dampener: float
    keeper_prize: float


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


@dataclass(frozen=True, slots=True)
class AccountView:
    """One margin account at one price: what it holds and what it is worth.

    The names are seed 002's (MCDEX v1), which every design here shares in meaning: cash and a
    position (side, size, entry value), the losses charged to it (social loss, funding), its
    margin balance and the margins it needs. A design without one of these concepts reports 0.
    """

    cash_balance: float
    position_side: str
    position_size: float
    entry_value: float
    entry_social_loss: float
    entry_funding_loss: float
    price: float
    pnl1: float
    social_loss: float
    funding_loss: float
    pnl2: float
    margin_balance: float
    position_margin: float
    maintenance_margin: float
    available_margin: float
    withdrawable_balance: float
    is_safe: bool
    is_im_safe: bool
    is_bankrupt: bool
    estimated_liquidation_price: float
    liquidation_amount: float
    avg_entry_price: float


@dataclass(frozen=True, slots=True)
class LiquidationResult:
    """What one liquidation did (amounts in collateral; ``amount`` in contracts)."""

    liquidator: str
    trader: str
    side: str
    price: float
    amount: float
    penalty_to_liquidator: float
    penalty_to_fund: float
    liquidation_loss: float
    insurance_fund_paid: float
    social_loss: float
    bad_debt: float


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """One account of the final ledger (``accounts.parquet``).

    Attributes:
        account: its name.
        fields: what the venue stores and computes for it, in column order (cash, position,
            margin balance, LP shares, ...).
        value: what it is worth now (margin balance plus shares at their price; 0 for an
            account whose value belongs to others, such as the pool's own).
    """

    account: str
    fields: Mapping[str, Any]
    value: float


@runtime_checkable
class Venue(Protocol):
    """What agents, the model and the outputs can do and see on an exchange (any design).

    Every operation validates its arguments first and raises an
    :class:`~perpsim.errors.EngineError` subclass with a clear message, leaving the state
    unchanged, when it refuses.
    """

    #: The registry kind of the design (``mcdex_v1``).
    kind: ClassVar[str]

    # -- time, status, rules -----------------------------------------------------------------

    @property
    def products(self) -> tuple[str, ...]:
        """The products this venue trades; the first is the default (single designs: one)."""
        ...

    def product(self, name: str) -> Venue:
        """This venue seen as trading product ``name``.

        Quotes, trades, prices, funding, open interest and rules of the returned venue are the
        product's; accounts, collateral, liquidity, funds and :meth:`observe` are shared. A
        single-product venue returns itself for its own product.

        Raises:
            UnknownProductError: the venue has no product ``name``.
        """
        ...

    @property
    def now(self) -> int:
        """The exchange's clock (seconds)."""
        ...

    def set_time(self, now: int) -> None:
        """Advance the exchange's clock to ``now`` (never backwards)."""
        ...

    @property
    def status(self) -> Status:
        """NORMAL, EMERGENCY or SETTLED."""
        ...

    @property
    def rules(self) -> VenueRules:
        """Lots, margin and fee rates in force now."""
        ...

    def set_governance(self, key: str, value: Any) -> None:
        """Change one governance parameter (validated by the design's own rules)."""
        ...

    # -- collateral, trading, liquidity -------------------------------------------------------

    def deposit(self, account: str, amount: float) -> None:
        """Move collateral from the agent's wallet into its margin account (creates it)."""
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

    def size_for_price(self, target: float) -> float:
        """The signed trade that would move the pool's own price to ``target`` (0 if none)."""
        ...

    def add_liquidity(self, account: str, collateral: float) -> float:
        """Provide about ``collateral`` of liquidity; return the shares minted."""
        ...

    def remove_liquidity(self, account: str, shares: float) -> float:
        """Burn ``shares``; return the collateral received."""
        ...

    def share_balance(self, account: str) -> float:
        """LP shares held by ``account``."""
        ...

    def share_price(self) -> float:
        """Collateral one LP share is worth now."""
        ...

    # -- prices and funding --------------------------------------------------------------------

    def index_price(self) -> float:
        """The index price the exchange reads now."""
        ...

    def mark_price(self) -> float:
        """The price margin is computed at."""
        ...

    def fair_price(self) -> float:
        """The pool's own price (raises when the pool cannot quote)."""
        ...

    def funding_rate(self) -> float:
        """The current funding rate (8-hour rate; > 0 means longs pay)."""
        ...

    def accumulated_funding_per_contract(self) -> float:
        """Funding paid per long contract since the start (grows when longs pay)."""
        ...

    def open_interest(self) -> float:
        """Contracts held long (= short)."""
        ...

    # -- accounts, liquidation, keepers --------------------------------------------------------

    def account(self, account: str | int) -> AccountView:
        """Every margin quantity of one account at the mark price."""
        ...

    def account_name(self, row: int) -> str:
        """The name of the account in ``row``."""
        ...

    def liquidatable_accounts(self) -> IntArray:
        """Rows of every account that can be liquidated now (one vectorised scan)."""
        ...

    def liquidate(
        self, liquidator: str | int, account: str | int, max_amount: float
    ) -> LiquidationResult:
        """Liquidate up to ``max_amount`` of an unsafe account's position."""
        ...

    def update_index(self, caller: str | int) -> float:
        """Pull the oracle's index into the exchange; return the keeper prize paid."""
        ...

    # -- settlement (the admin's powers) -------------------------------------------------------

    def begin_global_settlement(self, price: float) -> None:
        """Stop trading and fix the settlement price (NORMAL → EMERGENCY)."""
        ...

    def global_settled(self) -> None:
        """Complete the settlement (EMERGENCY → SETTLED)."""
        ...

    def share_holders(self) -> Mapping[str, float]:
        """Every LP share holder and its shares."""
        ...

    def settle_shares(self, holder: str, shares: float) -> float:
        """After settlement, redeem ``shares`` of ``holder`` for collateral."""
        ...

    def accounts_to_settle(self) -> IntArray:
        """Rows that still hold collateral or a position and are settled one by one."""
        ...

    def settle(self, account: str | int) -> float:
        """After settlement, pay an account out; return the collateral paid."""
        ...

    # -- what the outputs read -----------------------------------------------------------------

    @property
    def event_sink(self) -> EventSink | None:
        """Where every state-changing operation is reported, one flat record each.

        The model, the metrics and the account table read these kinds and fields, which every
        design must emit (others are free): ``deposit`` / ``withdraw`` / ``settle`` with
        ``account`` and ``amount`` (collateral); ``buy`` / ``sell`` / ``trade`` with ``account``
        and ``amount`` (contracts); ``liquidate`` with ``account`` (the trader),
        ``counterparty`` (the liquidator), ``amount``, ``price``, ``loss``,
        ``insurance_fund_paid`` and ``social_loss``. Each record's ``kind`` and ``time`` are set
        by the sink's caller (:class:`~perpsim.engine.core.events.EventEmitter`).
        """
        ...

    @event_sink.setter
    def event_sink(self, sink: EventSink | None) -> None: ...

    def funds(self) -> Mapping[str, float]:
        """The loss-absorbing funds by name, ``insurance_fund`` always among them.

        Other names are the design's (``default_fund``, ``lp_capital``, ...). A fund may sit
        inside an account (MCDEX v1's ``lp_capital`` is the pool's own margin account), so the
        funds are not to be added to :meth:`account_records` values.
        """
        ...

    def bad_debt(self) -> float:
        """Losses that no fund and no counterparty could absorb, so far."""
        ...

    def observe(self) -> dict[str, Any]:
        """The venue's row of the time series: :data:`COMMON_COLUMNS`, then its own."""
        ...

    def account_records(self) -> list[AccountRecord]:
        """The final ledger, one record per account."""
        ...

    def check_invariants(self) -> list[str]:
        """The accounting problems found now (empty when the books balance)."""
        ...
