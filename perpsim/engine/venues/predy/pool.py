"""Predy's pool (PerpetualMarketCore) and its trader vaults (PerpetualMarket), in floats.

:class:`PoolState` is the pool's whole state (small, copied to price a trade without changing
anything); :class:`Vaults` holds the cross-margin vaults as arrays (one scan finds every vault
to liquidate). :class:`PredyMarket` runs the operations of ``spec/predy.md`` on both: each
operation computes its result on copies, validates, then commits, so a rejected operation raises
a typed :class:`~perpsim.errors.EngineError` and changes nothing. Every formula comes from
:mod:`.formulas`.

Accounting: the pool's cash is ``L − Σ M_i + Σ amountsUsdc_i``; it also holds
``amount_underlying`` of the underlying (the hedge). A vault's value and the pool's equity are
both taken at each product's mark, IndexPrice × (1 + FundingRate now), so what the traders and
the pool are worth always sums to the USDC that crossed the boundary plus the hedge's
underlying (:meth:`PredyMarket.check_invariants`).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from perpsim.engine.core.events import EventEmitter
from perpsim.engine.core.index import IndexOracle
from perpsim.engine.core.numbers import (
    check_finite,
    check_lot,
    check_positive,
    check_time,
    is_lot_multiple,
)
from perpsim.engine.core.status import Status
from perpsim.engine.venues.predy import formulas as fx
from perpsim.engine.venues.predy.config import PredyParams, changed_params
from perpsim.engine.venues.predy.formulas import FUTURE, PRODUCTS, SQUARED, SpreadInfo
from perpsim.errors import (
    BadAmountError,
    InsufficientBalanceError,
    InvalidOperationError,
    PriceLimitError,
    UnknownAccountError,
    UnsafeError,
    WrongStatusError,
)

__all__ = ["POOL", "PoolState", "PredyMarket", "TradeResult", "Vaults", "product_id"]

#: The account name of the pool itself (its LPs' claim) in views and ledgers.
POOL = "pool"
#: Relative tolerance under which an amount equal to a balance counts as all of it.
RTOL = 1e-12

Pair = tuple[float, float]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def product_id(name: str | int) -> int:
    """The id of a product name (``future`` 0, ``squared`` 1).

    Raises:
        InvalidOperationError: not a product of Predy.
    """
    if isinstance(name, int) and not isinstance(name, bool) and name in (FUTURE, SQUARED):
        return name
    if name in PRODUCTS:
        return PRODUCTS.index(str(name))
    raise InvalidOperationError(f"unknown product {name!r}: Predy trades 'future' and 'squared'")


#: The spread guard's memory before any fill.
NO_SPREAD = SpreadInfo()


def _same_float(a: float, b: float) -> bool:
    """Whether ``a`` and ``b`` are surely the same float, bit for bit (a nonzero ``==``: 0.0
    equals −0.0 and NaN nothing, and either answers False, which only costs a recomputation)."""
    return a == b and a != 0.0


def _set(pair: Pair, i: int, value: float) -> Pair:
    return (value, pair[1]) if i == 0 else (pair[0], value)


@dataclass(slots=True)
class PoolState:
    """Everything the pool stores (the contract's storage), as floats.

    Attributes:
        amount_liquidity: L.
        supply: LP token supply.
        locked: M_i per product.
        position: the pool's position per product (short < 0).
        entry: the pool's entry price per product.
        funding_paid: amountFundingPaidPerPosition_i, cumulative funding per long position.
        funding_received: funding the pool received per product, in total.
        last_funding_time: when funding was last paid.
        variance: the EWMA variance per day.
        snapshot_price: S at the last variance snapshot.
        snapshot_time: time of the last variance snapshot.
        amounts_usdc: the hedge's USDC per product (locked margin in, hedge purchases out).
        amount_underlying: the underlying the pool holds (long only).
        last_hedge_spot: S at the last hedge.
        spread: the spread guard per product; lp_spread: the LP token's.
        protocol_fees: protocol fees collected so far.
        insolvent_loss: what insolvent vaults left unpaid, charged to L.
    """

    amount_liquidity: float = 0.0
    supply: float = 0.0
    locked: Pair = (0.0, 0.0)
    position: Pair = (0.0, 0.0)
    entry: Pair = (0.0, 0.0)
    funding_paid: Pair = (0.0, 0.0)
    funding_received: Pair = (0.0, 0.0)
    last_funding_time: int = 0
    variance: float = 0.0
    snapshot_price: float = 0.0
    snapshot_time: int = 0
    amounts_usdc: Pair = (0.0, 0.0)
    amount_underlying: float = 0.0
    last_hedge_spot: float = 0.0
    spread: tuple[SpreadInfo, SpreadInfo] = (NO_SPREAD, NO_SPREAD)
    lp_spread: SpreadInfo = NO_SPREAD
    protocol_fees: float = 0.0
    insolvent_loss: float = 0.0

    def copy(self) -> PoolState:
        """A copy (every field is immutable, so a shallow one)."""
        # Positional construction: ``dataclasses.replace`` walks every field's metadata and
        # costs several times more, twice per trade (the quote's plan and the trade's).
        return PoolState(
            self.amount_liquidity,
            self.supply,
            self.locked,
            self.position,
            self.entry,
            self.funding_paid,
            self.funding_received,
            self.last_funding_time,
            self.variance,
            self.snapshot_price,
            self.snapshot_time,
            self.amounts_usdc,
            self.amount_underlying,
            self.last_hedge_spot,
            self.spread,
            self.lp_spread,
            self.protocol_fees,
            self.insolvent_loss,
        )


class VaultRow(NamedTuple):
    """One vault: USDC and, per product, position, entry price and entry funding."""

    usdc: float
    position: Pair
    entry: Pair
    entry_funding: Pair


FLAT_VAULT = VaultRow(0.0, (0.0, 0.0), (0.0, 0.0), (0.0, 0.0))


class Vaults:
    """The trader vaults as arrays (row per account; the pool has no row).

    A vault is *live* while it holds USDC or a position (either non-zero). Every vault an agent
    ever opened keeps its row, and most of them are flat and empty at any time (a noise trader
    withdraws everything after each close): the per-tick scans (the unsafe set, the recorded
    counts, open interest, the accounting check between full ones) read only the live rows,
    :meth:`live_rows` in row order, so a tick costs what the live vaults cost, not every vault
    the run has opened. A vault that is not live is worth exactly 0 and is never unsafe,
    bankrupt or long, so a scan of the live rows gives the whole scan's answers exactly.
    """

    def __init__(self, capacity: int = 64) -> None:
        n = max(int(capacity), 1)
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.usdc: FloatArray = np.zeros(n)
        self.position: FloatArray = np.zeros((n, 2))
        self.entry: FloatArray = np.zeros((n, 2))
        self.entry_funding: FloatArray = np.zeros((n, 2))
        #: Whether each row is live (holds USDC or a position), per row.
        self._live: list[bool] = []
        #: Whether each row is in :attr:`_live_rows`.
        self._listed: list[bool] = []
        #: The listed rows, ascending: the live rows once the rows in :attr:`_toggled` are
        #: moved in or out (:meth:`live_rows`, in one pass per read, however many changed).
        self._live_rows: IntArray = np.empty(0, dtype=np.int64)
        #: Rows whose liveness a write changed since :attr:`_live_rows` was brought up to date.
        self._toggled: set[int] = set()
        #: Counts the writes and additions: unchanged, no vault has changed.
        self.version = 0

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.index

    def add(self, name: str) -> int:
        """A new empty vault; its row."""
        self.version += 1
        row = len(self.names)
        if row == self.usdc.shape[0]:
            grow = max(row, 1)
            self.usdc = np.concatenate([self.usdc, np.zeros(grow)])
            self.position = np.vstack([self.position, np.zeros((grow, 2))])
            self.entry = np.vstack([self.entry, np.zeros((grow, 2))])
            self.entry_funding = np.vstack([self.entry_funding, np.zeros((grow, 2))])
        self.names.append(name)
        self.index[name] = row
        self._live.append(False)
        self._listed.append(False)
        return row

    def row(self, account: str | int) -> int:
        """The row of a vault by name or row.

        Raises:
            UnknownAccountError: no such vault.
        """
        if isinstance(account, bool):
            raise UnknownAccountError(f"no vault {account!r}")
        if isinstance(account, int | np.integer):
            r = int(account)
            if 0 <= r < len(self.names):
                return r
            raise UnknownAccountError(f"no vault in row {account!r}")
        r2 = self.index.get(account)
        if r2 is None:
            raise UnknownAccountError(f"no vault {account!r}")
        return r2

    def read(self, row: int) -> VaultRow:
        """One vault's values."""
        # ``item`` gives the Python float without a row view or a NumPy scalar in between.
        p, e, f = self.position.item, self.entry.item, self.entry_funding.item
        return VaultRow(
            self.usdc.item(row),
            (p(row, 0), p(row, 1)),
            (e(row, 0), e(row, 1)),
            (f(row, 0), f(row, 1)),
        )

    def write(self, row: int, v: VaultRow) -> None:
        """Store one vault's values."""
        self.version += 1
        # Element by element: assigning a tuple to a row converts it to an array first.
        self.usdc[row] = v.usdc
        pos, entry, efund = self.position, self.entry, self.entry_funding
        pos[row, 0], pos[row, 1] = v.position
        entry[row, 0], entry[row, 1] = v.entry
        efund[row, 0], efund[row, 1] = v.entry_funding
        q = v.position
        live = bool(v.usdc != 0.0 or q[0] != 0.0 or q[1] != 0.0)
        if live != self._live[row]:
            # Listed at the next read: a noise trader's vault turns live and empty again within
            # a few ticks, and one insertion (or deletion) per read costs what one per write did.
            self._live[row] = live
            self._toggled.add(row)

    def view(self) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """The used part of every array."""
        n = len(self.names)
        return self.usdc[:n], self.position[:n], self.entry[:n], self.entry_funding[:n]

    def live_rows(self) -> IntArray:
        """The rows of the vaults holding USDC or a position, ascending (do not modify)."""
        toggled = self._toggled
        if toggled:
            # The rows that turned live or empty since the last read, moved in or out at once
            # (a row that turned and turned back is left where it is).
            live_of, listed = self._live, self._listed
            ins: list[int] = []
            out: list[int] = []
            for row in toggled:
                live = live_of[row]
                if live != listed[row]:
                    listed[row] = live
                    (ins if live else out).append(row)
            toggled.clear()
            rows = self._live_rows
            if out:
                rows = np.delete(rows, np.searchsorted(rows, out))
            if ins:
                ins.sort()
                rows = np.insert(rows, np.searchsorted(rows, ins), ins)
            self._live_rows = rows
        return self._live_rows

    def live_view(self) -> tuple[IntArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        """The live rows and their part of every array (copies), in row order."""
        rows = self.live_rows()
        return (
            rows,
            self.usdc[rows],
            self.position[rows],
            self.entry[rows],
            self.entry_funding[rows],
        )


class TradeResult(NamedTuple):
    """One product's fill: the trader's amount, the trade price (fees and funding included),
    its parts and the cumulative funding per position at the fill."""

    product: int
    amount: float
    trade_price: float
    index_price: float
    funding_rate: float
    trade_fee: float
    protocol_fee: float
    funding_paid: float


class HedgeResult(NamedTuple):
    """What a hedge did: bought (is_long) or sold ``amount_underlying`` for ``amount_usdc``."""

    is_long: bool
    amount_underlying: float
    amount_usdc: float
    slippage: float
    spot: float


@dataclass
class _Flows:
    """USDC that crossed the boundary, and the underlying's book value, for the check."""

    usdc_in: float = 0.0
    usdc_out: float = 0.0
    bad_debt: float = 0.0
    #: Negative vault values no one paid at settlement (kept apart from ``bad_debt``, as the
    #: MCDEX engine keeps its settlement shortfall: the venue contract's ``bad_debt()`` is the
    #: loss the design itself wrote off, and a settled account's negative balance is the
    #: caller's to count).
    settlement_shortfall: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


class PredyMarket(EventEmitter):
    """Predy's pool, its vaults, LP tokens and clock (see the module docstring).

    Args:
        params: the parameters in force.
        oracle: where the spot price S is read.
        funding_formula: ``seed`` or ``mainnet``.
        capacity: vault rows allocated up front.
    """

    def __init__(
        self,
        params: PredyParams | None = None,
        oracle: IndexOracle | None = None,
        *,
        funding_formula: str = "seed",
        capacity: int = 64,
    ) -> None:
        super().__init__()
        if funding_formula not in ("seed", "mainnet"):
            raise InvalidOperationError(
                f"funding_formula must be 'seed' or 'mainnet', got {funding_formula!r}"
            )
        self.params = params or PredyParams()
        self.oracle = oracle
        self.funding_formula: fx.FundingFormula = "seed" if funding_formula == "seed" else "mainnet"
        self.state = PoolState()
        self.vaults = Vaults(capacity)
        self.shares: dict[str, float] = {}
        self.flows = _Flows()
        self.now = 0
        self.status = Status.NORMAL
        self.settlement_spot = 0.0
        #: The pool's equity once settled (what the LP tokens redeem for).
        self.settled_equity = 0.0
        self.initialized = False
        #: The last live values and MinCollaterals with their key
        #: (:meth:`live_values_and_min_collaterals`).
        self._live_values: (
            tuple[tuple[Any, ...], tuple[IntArray, FloatArray, FloatArray, npt.NDArray[np.bool_]]]
            | None
        ) = None
        #: The last share price with its key (:meth:`share_price`).
        self._share_price: tuple[tuple[Any, ...], int, float, float] | None = None

    # -- clock, prices -------------------------------------------------------------------------

    def set_time(self, now: Any) -> None:
        """Advance the clock (never backwards)."""
        t = check_time(now)
        if t < self.now:
            raise BadAmountError(f"time cannot go back: {t} < current time {self.now}")
        self.now = t

    def spot(self) -> float:
        """S: the oracle's price now (the settlement price once settlement has begun)."""
        if self.status is not Status.NORMAL:
            return self.settlement_spot
        if self.oracle is None:
            raise InvalidOperationError("the pool has no oracle")
        return float(self.oracle.index(self.now)[0])

    def set_params(self, key: str, value: Any) -> None:
        """Change one parameter (funding up to now accrues under the old ones)."""
        new = changed_params(self.params, key, value)
        if self.initialized and self.status is Status.NORMAL:
            st = self.state.copy()
            self._accrue(st, self.spot())
            self.state = st
        self.params = new
        self.emit_event("set_governance", self.now, {"key": key, "value": value})

    def _require(self, op: str, *allowed: Status) -> None:
        """Raise WrongStatusError unless the market is in one of ``allowed``."""
        if self.status not in allowed:
            names = " or ".join(s.value for s in allowed)
            raise WrongStatusError(f"{op} requires {names}; the pool is {self.status.value}")

    def _require_initialized(self, op: str) -> None:
        if not self.initialized:
            raise InvalidOperationError(f"{op}: the pool is not initialized")

    # -- funding rates, marks ------------------------------------------------------------------

    def _margin_arg(self, position: float, locked: float) -> float:
        if self.funding_formula == "mainnet":
            return fx.signed_margin(position, locked)
        return locked

    def _rate(self, st: PoolState, i: int, m: float, dm: float, liq: float, dl: float) -> float:
        p = self.params
        return fx.funding_rate(
            i,
            m,
            dm,
            liq,
            dl,
            variance=st.variance,
            squared_perp_funding_multiplier=p.squared_perp_funding_multiplier,
            perp_future_max_funding_rate=p.perp_future_max_funding_rate,
            base_funding_rate=p.base_funding_rate,
            formula=self.funding_formula,
        )

    def current_rate(self, i: int, st: PoolState | None = None) -> float:
        """FundingRate_i now (per funding period), 0 once settlement has begun."""
        if self.status is not Status.NORMAL:
            return 0.0
        return self._rates_of(st or self.state)[i]

    def current_rates(self, st: PoolState | None = None) -> Pair:
        """Both products' FundingRate now (per funding period), 0 once settlement has begun."""
        if self.status is not Status.NORMAL:
            return (0.0, 0.0)
        return self._rates_of(st or self.state)

    def _rates_of(self, st: PoolState) -> Pair:
        """Both FundingRates at ``st`` with no trade (the status is the caller's to check)."""
        p = self.params
        locked = st.locked
        if self.funding_formula == "mainnet":
            pos = st.position
            m0 = fx.signed_margin(pos[0], locked[0])
            m1 = fx.signed_margin(pos[1], locked[1])
        else:
            m0, m1 = locked
        return fx.current_funding_rates(
            m0,
            m1,
            st.amount_liquidity,
            variance=st.variance,
            squared_perp_funding_multiplier=p.squared_perp_funding_multiplier,
            perp_future_max_funding_rate=p.perp_future_max_funding_rate,
            base_funding_rate=p.base_funding_rate,
            formula=self.funding_formula,
        )

    @staticmethod
    def _marks_at(spot: float, rates: Pair) -> Pair:
        """IndexPrice_i × (1 + FundingRate_i) at ``spot`` for given rates."""
        return (
            fx.index_price(FUTURE, spot) * (1.0 + rates[0]),
            fx.index_price(SQUARED, spot) * (1.0 + rates[1]),
        )

    def marks(self, st: PoolState | None = None) -> Pair:
        """Each product's mark: IndexPrice × (1 + FundingRate now)."""
        spot = self.spot()
        return self._marks_at(spot, self.current_rates(st))

    def mark(self, i: int) -> float:
        """Product ``i``'s mark now: IndexPrice × (1 + FundingRate now)."""
        spot = self.spot()
        rate = 0.0 if self.status is not Status.NORMAL else self._rates_of(self.state)[i]
        return fx.index_price(i, spot) * (1.0 + rate)

    def pending_funding(self, st: PoolState | None = None) -> Pair:
        """Funding per long position accrued since the last payment, per product."""
        s = st or self.state
        if self.status is not Status.NORMAL or not self.initialized:
            return (0.0, 0.0)
        dt = self.now - s.last_funding_time
        if dt <= 0:
            return (0.0, 0.0)
        spot = self.spot()
        r0, r1 = self._rates_of(s)
        period = self.params.funding_period
        return (
            fx.index_price(FUTURE, spot) * r0 * dt / period,
            fx.index_price(SQUARED, spot) * r1 * dt / period,
        )

    def funding_now(self) -> Pair:
        """Cumulative funding per long position, the pending accrual included."""
        pend = self.pending_funding()
        f = self.state.funding_paid
        return (f[0] + pend[0], f[1] + pend[1])

    def _funding_now_at(self, spot: float, rates: Pair) -> Pair:
        """:meth:`funding_now` with the spot and :meth:`current_rates` already read: the same
        floats, :meth:`pending_funding`'s operations on the same values (its rates are
        :meth:`current_rates` whenever it computes any)."""
        s = self.state
        f = s.funding_paid
        dt = self.now - s.last_funding_time
        if self.status is not Status.NORMAL or not self.initialized or dt <= 0:
            return (f[0] + 0.0, f[1] + 0.0)
        r0, r1 = rates
        period = self.params.funding_period
        pend0 = fx.index_price(FUTURE, spot) * r0 * dt / period
        pend1 = fx.index_price(SQUARED, spot) * r1 * dt / period
        return (f[0] + pend0, f[1] + pend1)

    # -- operations on a PoolState (no commit) -------------------------------------------------

    def _accrue(self, st: PoolState, spot: float) -> None:
        """executeFundingPayment: pay funding for the time since the last payment."""
        dt = self.now - st.last_funding_time
        if dt <= 0 or self.status is not Status.NORMAL:
            return
        # The rates read neither funding nor L, which the payment moves: both come first.
        r0, r1 = self._rates_of(st)
        period = self.params.funding_period
        per0 = fx.funding_fee_per_position(fx.index_price(FUTURE, spot), r0, dt, period)
        per1 = fx.funding_fee_per_position(fx.index_price(SQUARED, spot), r1, dt, period)
        pos = st.position
        got0 = per0 * -pos[0]
        got1 = per1 * -pos[1]
        paid, received = st.funding_paid, st.funding_received
        st.funding_paid = (paid[0] + per0, paid[1] + per1)
        st.funding_received = (received[0] + got0, received[1] + got1)
        # Summed from 0.0 in product order (0.0 + −0.0 is +0.0): the float it always was.
        liquidity = 0.0
        liquidity += got0
        liquidity += got1
        st.amount_liquidity += liquidity
        st.last_funding_time = self.now

    def _snapshot_due(self, st: PoolState) -> bool:
        return self.now >= st.snapshot_time + self.params.variance_interval

    def _update_variance(self, st: PoolState, spot: float) -> bool:
        """updatePoolSnapshot: a new EWMA variance when the interval has passed."""
        if not self._snapshot_due(st):
            return False
        st.variance = fx.update_variance(
            st.variance,
            spot,
            st.snapshot_price,
            self.now - st.snapshot_time,
            self.params.funding_period,
        )
        st.snapshot_price = spot
        st.snapshot_time = self.now
        return True

    def _add_margin(
        self, st: PoolState, i: int, spot: float, positions: Pair
    ) -> tuple[float, float]:
        """NettingLib.addMargin: δ = RM_i − HV_i at ``positions``; amountsUsdc_i += δ."""
        d0, d1 = fx.pool_deltas(spot, positions[0], positions[1])
        g1 = fx.gamma(SQUARED) * positions[1]
        return self._add_margin_at(st, i, spot, d0, d1, g1)

    def _add_margin_at(
        self, st: PoolState, i: int, spot: float, d0: float, d1: float, g1: float
    ) -> tuple[float, float]:
        """:meth:`_add_margin` with the deltas and gamma of the positions already computed."""
        rm = fx.required_margin(i, d0, d1, g1, spot, self.params.pool_margin_risk_param)
        usdc = st.amounts_usdc
        hv = fx.hedge_position_value(i, usdc[i], st.amount_underlying, spot, d0, d1)
        delta_margin = rm - hv
        st.amounts_usdc = _set(usdc, i, usdc[i] + delta_margin)
        return delta_margin, hv

    def _available(self, st: PoolState) -> float:
        return fx.available_liquidity(st.amount_liquidity, st.locked, st.amounts_usdc)

    def _pre_trade(
        self, st: PoolState, i: int, delta_margin: float, hv: float, change: str
    ) -> fx.PreTrade:
        """calculatePreTrade, with the contracts' check that the pool can lock the margin."""
        if delta_margin > 0.0:
            need = delta_margin if hv >= 0.0 else delta_margin + hv
            avail = self._available(st)
            if avail < need * (1.0 - 1e-12):
                raise InsufficientBalanceError(
                    f"the pool cannot lock {need:.10g} more margin for {PRODUCTS[i]}: available"
                    f" liquidity is {avail:.10g}"
                )
        return fx.pre_trade(
            delta_margin, hv, st.locked[i], change, signed=self.funding_formula == "mainnet"
        )

    def _update_positions(
        self, st: PoolState, amounts: Pair, spot: float, *, guard: bool = True
    ) -> list[TradeResult]:
        """updatePoolPositions: the pool takes the other side of ``amounts`` (trader sides)."""
        if st.amount_liquidity <= 0.0:
            raise InsufficientBalanceError("the pool has no liquidity")
        old = st.position
        new = st.position = (old[0] - amounts[0], old[1] - amounts[1])
        p = self.params
        results: list[TradeResult] = []
        profit_total = 0.0
        fee_total = 0.0
        # addMargin of either product reads the deltas and gamma at the new positions only.
        d0, d1 = fx.pool_deltas(spot, new[0], new[1])
        g1 = fx.gamma(SQUARED) * new[1]
        for i in (FUTURE, SQUARED):
            a = amounts[i]
            if a == 0.0:
                continue
            delta_margin, hv = self._add_margin_at(st, i, spot, d0, d1, g1)
            change = fx.margin_change(old[i], new[i])
            pre = self._pre_trade(st, i, delta_margin, hv, change)
            locked = st.locked
            m = self._margin_arg(old[i], locked[i])
            index = fx.index_price(i, spot)
            rate = self._rate(
                st, i, m, pre.signed_delta_margin, st.amount_liquidity, pre.delta_liquidity
            )
            fee = fx.trade_fee(i, index, p.trade_fee_rate, a > 0.0)
            price = fx.trade_price(index, rate, fee)
            if guard:
                price, info = fx.spread_guard(
                    st.spread[i], a > 0.0, price, self.now, p.spread_window, p.spread_decay_interval
                )
                sp = st.spread
                st.spread = (info, sp[1]) if i == FUTURE else (sp[0], info)
            if price <= 0.0:
                raise InvalidOperationError(f"the {PRODUCTS[i]} trade price would be {price:.10g}")
            st.amount_liquidity += pre.delta_liquidity
            st.locked = _set(locked, i, locked[i] + pre.delta_locked)
            entry, profit = fx.entry_price_update(st.entry[i], old[i], price, -a)
            st.entry = _set(st.entry, i, entry)
            pfee = fx.protocol_fee(i, index, p.protocol_fee_rate, a)
            profit_total += profit
            fee_total += pfee
            results.append(
                TradeResult(i, a, price, index, rate, abs(fee), pfee, st.funding_paid[i])
            )
        st.amount_liquidity += profit_total - fee_total
        st.protocol_fees += fee_total
        return results

    def _rebalance(self, st: PoolState, spot: float) -> None:
        """rebalance: lock or unlock each product's margin to its required margin."""
        positions = st.position
        d0, d1 = fx.pool_deltas(spot, positions[0], positions[1])
        g1 = fx.gamma(SQUARED) * positions[1]
        for i in (FUTURE, SQUARED):
            delta_margin, hv = self._add_margin_at(st, i, spot, d0, d1, g1)
            pre = self._pre_trade(st, i, delta_margin, hv, fx.MarginChange.LONG_TO_LONG)
            st.amount_liquidity += pre.delta_liquidity
            st.locked = _set(st.locked, i, st.locked[i] + pre.delta_locked)

    # -- LP token --------------------------------------------------------------------------------

    def close_price(self, st: PoolState, i: int, spot: float, delta_liquidity: float) -> float:
        """The trade price of closing the pool's whole position (both products) for product i."""
        s = st.copy()
        positions = s.position
        a = positions[i]
        s.position = (0.0, 0.0)
        delta_margin, hv = self._add_margin(s, i, spot, (0.0, 0.0))
        change = fx.margin_change(positions[i], 0.0)
        pre = fx.pre_trade(
            delta_margin, hv, s.locked[i], change, signed=self.funding_formula == "mainnet"
        )
        m = self._margin_arg(positions[i], s.locked[i])
        index = fx.index_price(i, spot)
        rate = self._rate(
            s,
            i,
            m,
            pre.signed_delta_margin,
            s.amount_liquidity,
            delta_liquidity + pre.delta_liquidity,
        )
        fee = fx.trade_fee(i, index, self.params.trade_fee_rate, a > 0.0)
        price = fx.trade_price(index, rate, fee)
        price, _ = fx.spread_guard(
            s.spread[i],
            a > 0.0,
            price,
            self.now,
            self.params.spread_window,
            self.params.spread_decay_interval,
        )
        return price

    def unrealized_pnl(self, st: PoolState, spot: float, delta_liquidity: float) -> float:
        """Σ position_i × (close price_i − entry_i)."""
        total = 0.0
        for i in (FUTURE, SQUARED):
            if st.position[i] != 0.0:
                total += st.position[i] * (
                    self.close_price(st, i, spot, delta_liquidity) - st.entry[i]
                )
        return total

    def hedge_value(self, st: PoolState, spot: float) -> float:
        """Σ amountsUsdc_i + S × amountUnderlying."""
        return st.amounts_usdc[0] + st.amounts_usdc[1] + spot * st.amount_underlying

    def lp_token_price(self, delta_liquidity: float = 0.0, st: PoolState | None = None) -> float:
        """LPTokenPrice with the close-out PnL evaluated at ΔL = ``delta_liquidity``.

        Raises:
            InvalidOperationError: no LP tokens exist.
        """
        s = st or self.state
        if s.supply <= 0.0:
            raise InvalidOperationError("the pool has no LP tokens")
        if self.status is Status.SETTLED:
            return self.settled_equity / s.supply
        spot = self.spot()
        return fx.lp_token_price(
            s.amount_liquidity,
            self.unrealized_pnl(s, spot, delta_liquidity),
            self.hedge_value(s, spot),
            s.locked[0] + s.locked[1],
            s.supply,
        )

    def share_price(self) -> float:
        """``lp_token_price(0.0)`` now: what one LP token is worth; 0 without LP tokens.

        The LP agents read it every tick, and the time-series row twice, mostly with no
        operation in between: the answer is kept under everything it reads, the pool state's
        fields (each the same object: a field an operation changes is a new one), the status,
        the time, the spot (the same nonzero float), the parameters and the funding formula.
        The settled price is a division and is not kept.
        """
        s = self.state
        if s.supply <= 0.0:
            return 0.0
        if self.status is Status.SETTLED:
            return self.settled_equity / s.supply
        spot = self.spot()
        key = (
            self.status,
            s.amount_liquidity,
            s.supply,
            s.locked,
            s.position,
            s.entry,
            s.variance,
            s.amounts_usdc,
            s.amount_underlying,
            s.spread,
            self.params,
            self.funding_formula,
        )
        kept = self._share_price
        if (
            kept is not None
            and kept[1] == self.now
            and _same_float(kept[2], spot)
            and all(map(operator.is_, kept[0], key))
        ):
            return kept[3]
        price = self.lp_token_price(0.0)
        self._share_price = (key, self.now, spot, price)
        return price

    # -- vault values ----------------------------------------------------------------------------

    def vault_value(self, v: VaultRow, marks: Pair, funding: Pair) -> float:
        """USDC + Σ position × (mark − entry) − Σ position × (funding now − entry funding)."""
        value = v.usdc
        for i in (FUTURE, SQUARED):
            q = v.position[i]
            if q != 0.0:
                value += q * (marks[i] - v.entry[i]) - q * (funding[i] - v.entry_funding[i])
        return value

    def vault_min_collateral(self, v: VaultRow, st: PoolState | None = None) -> float:
        """MinCollateral of a vault at the funding rates of ``st`` (now by default)."""
        spot = self.spot()
        return self._min_collateral_at(v, spot, self.current_rates(st))

    def _min_collateral_at(self, v: VaultRow, spot: float, rates: Pair) -> float:
        """MinCollateral of a vault at ``spot`` and the funding rates ``rates``."""
        p = self.params
        return fx.min_collateral(
            spot,
            v.position[0],
            v.position[1],
            rates[0],
            rates[1],
            risk_param=p.vault_risk_param,
            min_margin=p.min_margin,
        )

    def values_and_min_collaterals(self) -> tuple[FloatArray, FloatArray]:
        """Every vault's value and MinCollateral (one vectorised pass)."""
        usdc, pos, entry, efund = self.vaults.view()
        if not len(usdc):
            return np.empty(0), np.empty(0)
        values, mc, _ = self._values_and_mcs(usdc, pos, entry, efund)
        return values, mc

    def live_values_and_min_collaterals(
        self,
    ) -> tuple[IntArray, FloatArray, FloatArray, npt.NDArray[np.bool_]]:
        """:meth:`values_and_min_collaterals` of the live vaults only (those holding USDC or a
        position, ascending): their rows, values, MinCollaterals and whether each holds a
        position. Row by row the same floats; every other vault is worth 0 and holds nothing.

        The answer is a function of the live vaults' rows (which change only through
        :meth:`Vaults.write`, counted by :attr:`Vaults.version`), the marks, the funding, the
        spot, the funding rates and the parameters, and is kept under them: the unsafe scan,
        the accounting check and the time-series row of a tick in which nothing was written in
        between compute it once. The arrays returned are read-only.
        """
        vaults = self.vaults
        rows = vaults.live_rows()
        if not len(rows):
            return rows, np.empty(0), np.empty(0), np.zeros(0, dtype=bool)
        marks, funding = self.marks(), self.funding_now()
        spot, rates = self.spot(), self.current_rates()
        key = (vaults, vaults.version, marks, funding, spot, rates, self.params)
        kept = self._live_values
        if kept is not None and kept[0][0] is vaults and kept[0][1:] == key[1:]:
            return kept[1]
        _, usdc, pos, entry, efund = vaults.live_view()
        values, mc, has = self._values_and_mcs_at(
            usdc, pos, entry, efund, marks, funding, spot, rates
        )
        for array in (values, mc, has):
            array.flags.writeable = False
        answer = (rows, values, mc, has)
        self._live_values = (key, answer)
        return answer

    def _values_and_mcs(
        self, usdc: FloatArray, pos: FloatArray, entry: FloatArray, efund: FloatArray
    ) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
        """Values, MinCollaterals and "holds a position" of the vaults given (row-wise)."""
        return self._values_and_mcs_at(
            usdc,
            pos,
            entry,
            efund,
            self.marks(),
            self.funding_now(),
            self.spot(),
            self.current_rates(),
        )

    def _values_and_mcs_at(
        self,
        usdc: FloatArray,
        pos: FloatArray,
        entry: FloatArray,
        efund: FloatArray,
        marks_now: Pair,
        funding_now: Pair,
        spot: float,
        rates: Pair,
    ) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
        """:meth:`_values_and_mcs` at the marks, funding, spot and rates given."""
        marks = np.asarray(marks_now)
        funding = np.asarray(funding_now)
        values = usdc + (pos * (marks - entry)).sum(axis=1) - (pos * (funding - efund)).sum(axis=1)
        p = self.params
        fr_f, fr_s = rates
        with_funding = spot * (1.0 + fr_s)
        net = 2.0 * with_funding * pos[:, 1] / fx.SCALING_FACTOR + (1.0 + fr_f) * pos[:, 0]
        curvature = 2.0 * p.vault_risk_param * with_funding * np.abs(pos[:, 1]) / fx.SCALING_FACTOR
        mc = p.vault_risk_param * spot * (np.abs(net) + curvature)
        has = (pos != 0.0).any(axis=1)
        mc = np.where(has & (mc < p.min_margin), p.min_margin, mc)
        return values, mc, has

    def pool_equity(self, st: PoolState | None = None) -> float:
        """What the pool is worth at the marks: cash + underlying + Σ P_i (mark_i − entry_i)
        + funding receivable (its LPs' claim; the same marks as the vaults')."""
        if self.status is Status.SETTLED:
            return self.settled_equity
        s = st or self.state
        if not self.initialized:
            return 0.0
        spot = self.spot()
        marks = self.marks(s)
        pend = self.pending_funding(s)
        value = s.amount_liquidity - s.locked[0] - s.locked[1] + self.hedge_value(s, spot)
        for i in (FUTURE, SQUARED):
            value += s.position[i] * (marks[i] - s.entry[i]) - s.position[i] * pend[i]
        return value

    # -- the vault side of a trade ---------------------------------------------------------------

    def _vault_after(self, v: VaultRow, fills: list[TradeResult]) -> VaultRow:
        usdc = v.usdc
        pos, entry, efund = list(v.position), list(v.entry), list(v.entry_funding)
        for f in fills:
            i = f.product
            e, profit = fx.entry_price_update(entry[i], pos[i], f.trade_price, f.amount)
            ef, fprofit = fx.entry_price_update(efund[i], pos[i], f.funding_paid, f.amount)
            usdc += profit - fprofit
            entry[i], efund[i] = e, ef
            pos[i] = pos[i] + f.amount
            if abs(pos[i]) <= abs(f.amount) * RTOL:
                pos[i], entry[i], efund[i] = 0.0, 0.0, 0.0
        return VaultRow(usdc, (pos[0], pos[1]), (entry[0], entry[1]), (efund[0], efund[1]))

    def _check_limits(self, v: VaultRow, amounts: Pair) -> None:
        limit = self.params.max_position_per_vault
        for i in (FUTURE, SQUARED):
            after = v.position[i] + amounts[i]
            if abs(after) > abs(v.position[i]) and abs(after) > limit * (1.0 + 1e-12):
                raise UnsafeError(
                    f"a vault may hold at most {limit:g} {PRODUCTS[i]} contracts; the trade"
                    f" would leave {after:.10g}"
                )

    def _vault_check(self, name: str, v: VaultRow, st: PoolState, spot: float) -> None:
        # One read of the rates at ``st`` serves both the marks and MinCollateral.
        rates = self.current_rates(st)
        value = self.vault_value(
            v, self._marks_at(spot, rates), (st.funding_paid[0], st.funding_paid[1])
        )
        mc = self._min_collateral_at(v, spot, rates)
        if value < mc:
            raise UnsafeError(
                f"{name}'s vault would be worth {value:.10g}, below its MinCollateral {mc:.10g}"
            )

    # -- public operations -----------------------------------------------------------------------

    def initialize(
        self, account: str, amount: float, variance: float, *, from_vault: bool
    ) -> float:
        """The first LP's ``initialize``: L = amount, supply = amount, the initial variance.

        Args:
            account: the LP.
            amount: USDC deposited.
            variance: the variance per day the pool starts with.
            from_vault: take the USDC from the account's vault (else from its wallet).
        """
        self._require("initialize", Status.NORMAL)
        amt = check_positive(amount, "initialize amount")
        var = check_positive(variance, "initial variance")
        if self.initialized:
            raise InvalidOperationError("the pool is already initialized")
        spot = self.spot()
        row = self._lp_row(account, amt, from_vault)
        st = self.state.copy()
        st.variance, st.snapshot_price, st.snapshot_time = var, spot, self.now
        st.last_hedge_spot = spot
        st.last_funding_time = self.now
        st.amount_liquidity += amt
        st.supply += amt
        self._commit_lp(account, row, amt, from_vault)
        self.state = st
        self.initialized = True
        self.shares[account] = self.shares.get(account, 0.0) + amt
        self.emit_event(
            "initialize",
            self.now,
            # The run's event table keeps ``value`` (text), not ``variance``: both are sent.
            {"account": account, "amount": amt, "variance": var, "value": repr(var), "shares": amt},
        )
        return amt

    def _lp_row(self, account: str, amount: float, from_vault: bool) -> int | None:
        if not isinstance(account, str) or not account or account == POOL:
            raise InvalidOperationError(f"cannot provide liquidity from account {account!r}")
        if not from_vault:
            return None
        row = self.vaults.row(account)
        v = self.vaults.read(row)
        free = self.withdrawable(v)
        if amount > free * (1.0 + RTOL):
            raise InsufficientBalanceError(
                f"{account} can spare {free:.10g} USDC from its vault, not {amount:.10g}"
            )
        return row

    def _commit_lp(self, account: str, row: int | None, amount: float, from_vault: bool) -> None:
        if row is None:
            self.flows.usdc_in += amount
            return
        v = self.vaults.read(row)
        self.vaults.write(row, v._replace(usdc=v.usdc - amount))

    def add_liquidity(self, account: str, amount: float, *, from_vault: bool) -> float:
        """``deposit``: mint amount / LPTokenPrice(ΔL = +amount) after the spread guard."""
        self._require("add_liquidity", Status.NORMAL)
        self._require_initialized("add_liquidity")
        amt = check_positive(amount, "deposit amount")
        row = self._lp_row(account, amt, from_vault)
        spot = self.spot()
        st = self.state.copy()
        self._accrue(st, spot)
        if st.supply <= 0.0:
            raise InvalidOperationError("the pool has no LP tokens: it must be initialized again")
        price = self.lp_token_price(amt, st)
        price, st.lp_spread = fx.spread_guard(
            st.lp_spread,
            True,
            price,
            self.now,
            self.params.spread_window,
            self.params.spread_decay_interval,
        )
        if price <= 0.0:
            raise UnsafeError(f"the LP token is worth {price:.10g}: deposits are refused")
        minted = amt / price
        st.amount_liquidity += amt
        st.supply += minted
        self._commit_lp(account, row, amt, from_vault)
        self.state = st
        self.shares[account] = self.shares.get(account, 0.0) + minted
        self.emit_event(
            "add_liquidity",
            self.now,
            {"account": account, "amount": amt, "shares": minted, "price": price},
        )
        return minted

    def remove_liquidity(self, account: str, amount: float, *, to_vault: bool) -> float:
        """``withdraw``: burn amount / LPTokenPrice(ΔL = −amount); needs available liquidity.

        Returns:
            The LP tokens burnt.
        """
        self._require("remove_liquidity", Status.NORMAL)
        self._require_initialized("remove_liquidity")
        amt = check_positive(amount, "withdrawal amount")
        held = self.shares.get(account, 0.0)
        if held <= 0.0:
            raise InsufficientBalanceError(f"{account} holds no LP tokens")
        row = self.vaults.row(account) if to_vault else None
        spot = self.spot()
        st = self.state.copy()
        self._accrue(st, spot)
        avail = self._available(st)
        if amt > avail * (1.0 + RTOL):
            raise InsufficientBalanceError(
                f"withdrawal of {amt:.10g} exceeds the pool's available liquidity {avail:.10g}"
            )
        price = self.lp_token_price(-amt, st)
        price, st.lp_spread = fx.spread_guard(
            st.lp_spread,
            False,
            price,
            self.now,
            self.params.spread_window,
            self.params.spread_decay_interval,
        )
        if price <= 0.0:
            raise UnsafeError(f"the LP token is worth {price:.10g}: nothing to withdraw")
        burnt = amt / price
        if burnt > held * (1.0 + 1e-9):
            raise InsufficientBalanceError(
                f"{account} holds {held:.10g} LP tokens; withdrawing {amt:.10g} burns {burnt:.10g}"
            )
        # Dust left below a billionth of the holding is burnt with it.
        burnt = held if burnt >= held * (1.0 - 1e-9) else burnt
        st.amount_liquidity -= amt
        st.supply -= burnt
        if row is None:
            self.flows.usdc_out += amt
        else:
            v = self.vaults.read(row)
            self.vaults.write(row, v._replace(usdc=v.usdc + amt))
        self.state = st
        if burnt < held:
            self.shares[account] = held - burnt
        else:
            del self.shares[account]
        self.emit_event(
            "remove_liquidity",
            self.now,
            {"account": account, "amount": amt, "shares": burnt, "price": price},
        )
        return burnt

    def deposit_margin(self, account: str, amount: float) -> None:
        """Add USDC to a vault (creates it)."""
        self._require("deposit_margin", Status.NORMAL, Status.EMERGENCY)
        amt = check_positive(amount, "deposit amount")
        if not isinstance(account, str) or not account or account == POOL:
            raise InvalidOperationError(f"cannot deposit into account {account!r}")
        row = self.vaults.index.get(account)
        if row is None:
            row = self.vaults.add(account)
        v = self.vaults.read(row)
        self.vaults.write(row, v._replace(usdc=v.usdc + amt))
        self.flows.usdc_in += amt
        self.emit_event("deposit", self.now, {"account": account, "amount": amt})

    def withdrawable(self, v: VaultRow) -> float:
        """What a vault can withdraw: value − MinCollateral, at most its USDC."""
        if self.status is not Status.NORMAL and self.status is not Status.EMERGENCY:
            return 0.0
        if v.position == (0.0, 0.0):
            return max(v.usdc, 0.0)
        value = self.vault_value(v, self.marks(), self.funding_now())
        return max(min(value - self.vault_min_collateral(v), v.usdc), 0.0)

    def _withdrawable_of(self, v: VaultRow, value: float, mc: float) -> float:
        """:meth:`withdrawable` with the vault's value and MinCollateral now already known."""
        if self.status is not Status.NORMAL and self.status is not Status.EMERGENCY:
            return 0.0
        if v.position == (0.0, 0.0):
            return max(v.usdc, 0.0)
        return max(min(value - mc, v.usdc), 0.0)

    def withdraw_margin(self, account: str | int, amount: float) -> None:
        """Take USDC out of a vault, keeping it above MinCollateral."""
        self._require("withdraw_margin", Status.NORMAL)
        amt = check_positive(amount, "withdraw amount")
        row = self.vaults.row(account)
        v = self.vaults.read(row)
        limit = self.withdrawable(v)
        if amt > limit * (1.0 + RTOL) + 1e-12:
            raise InsufficientBalanceError(
                f"{self.vaults.names[row]} can withdraw at most {limit:.10g}"
            )
        amt = min(amt, max(v.usdc, 0.0))
        self.vaults.write(row, v._replace(usdc=v.usdc - amt))
        self.flows.usdc_out += amt
        self.emit_event("withdraw", self.now, {"account": self.vaults.names[row], "amount": amt})

    def plan_trade(
        self, account: str | int | None, amounts: Pair, limits: tuple[float | None, float | None]
    ) -> tuple[PoolState, list[TradeResult], VaultRow | None, int | None]:
        """A trade's outcome on copies: the new pool state, the fills, the new vault.

        Funding is paid first (as the contracts' trade does); the variance snapshot after.
        """
        st, fills, new_v, row, _ = self._plan_trade(account, amounts, limits)
        return st, fills, new_v, row

    def _plan_trade(
        self, account: str | int | None, amounts: Pair, limits: tuple[float | None, float | None]
    ) -> tuple[PoolState, list[TradeResult], VaultRow | None, int | None, float]:
        """:meth:`plan_trade`, and the spot it was priced at (for the trade's margin check)."""
        if self.status is not Status.NORMAL:
            self._require("trade", Status.NORMAL)
        if not self.initialized:
            self._require_initialized("trade")
        lot = self.params.lot_size
        for i in (FUTURE, SQUARED):
            a = amounts[i]
            # The checks' messages are only built for an amount that fails them: a finite
            # float on the lot grid (every trade that goes through) costs two comparisons.
            if type(a) is not float or a - a != 0.0:
                a = check_finite(a, f"{PRODUCTS[i]} trade amount")
            if a != 0.0 and not is_lot_multiple(abs(a), lot):
                check_lot(abs(a), lot, f"{PRODUCTS[i]} trade amount")
        if amounts == (0.0, 0.0):
            raise BadAmountError("trade amount must be non-zero")
        if account is None:
            row = None
        else:
            # A vault's name is looked up directly; anything else (a row, a bad name) goes
            # through Vaults.row and its errors.
            got = self.vaults.index.get(account) if type(account) is str else None
            row = got if got is not None else self.vaults.row(account)
        spot = self.spot()
        st = self.state.copy()
        self._accrue(st, spot)
        v = None if row is None else self.vaults.read(row)
        if v is not None:
            self._check_limits(v, amounts)
        fills = self._update_positions(st, amounts, spot)
        for f in fills:
            limit = limits[f.product]
            if limit is not None and (
                f.trade_price > limit if f.amount > 0.0 else f.trade_price < limit
            ):
                raise PriceLimitError(
                    f"{PRODUCTS[f.product]} price {f.trade_price:.10g} is worse than the limit"
                    f" {limit:.10g}"
                )
        new_v = None if v is None else self._vault_after(v, fills)
        self._update_variance(st, spot)
        return st, fills, new_v, row, spot

    def trade(
        self,
        account: str | int,
        amounts: Pair,
        limits: tuple[float | None, float | None] = (None, None),
    ) -> list[TradeResult]:
        """A vault trades ``amounts`` (trader sides) against the pool; it must stay above its
        MinCollateral afterwards."""
        st, fills, new_v, row, spot = self._plan_trade(account, amounts, limits)
        assert new_v is not None and row is not None
        name = self.vaults.names[row]
        self._vault_check(name, new_v, st, spot)
        self.state = st
        self.vaults.write(row, new_v)
        if self.event_sink is None:
            # No one listens: the events' records need not be built.
            return fills
        for f in fills:
            self.emit_event(
                "buy" if f.amount > 0.0 else "sell",
                self.now,
                {
                    "account": name,
                    "counterparty": POOL,
                    "product": PRODUCTS[f.product],
                    # The run's event table keeps ``key``, not ``product``: both are sent.
                    "key": PRODUCTS[f.product],
                    "side": "long" if f.amount > 0.0 else "short",
                    "amount": abs(f.amount),
                    "price": f.trade_price,
                    "fee": f.trade_fee * abs(f.amount),
                    "protocol_fee": f.protocol_fee,
                },
            )
        return fills

    def quote(self, product: int, amount: float) -> TradeResult:
        """The fill of a trade of ``amount`` (no vault checks), without changing state."""
        amounts = (amount, 0.0) if product == FUTURE else (0.0, amount)
        _, fills, _, _, _ = self._plan_trade(None, amounts, (None, None))
        return fills[0]

    def post_trade_rate(self, product: int, amount: float) -> float:
        """The funding rate of ``product`` right after a trade of ``amount`` (no commit)."""
        amounts = (amount, 0.0) if product == FUTURE else (0.0, amount)
        st, _, _, _ = self.plan_trade(None, amounts, (None, None))
        return self.current_rate(product, st)

    def accrue_funding(self) -> Pair:
        """executeFundingPayment now; returns the funding per position paid per product."""
        self._require("accrue_funding", Status.NORMAL)
        self._require_initialized("accrue_funding")
        st = self.state.copy()
        before = st.funding_paid
        self._accrue(st, self.spot())
        self.state = st
        paid = (st.funding_paid[0] - before[0], st.funding_paid[1] - before[1])
        self.emit_event(
            "accrue_funding",
            self.now,
            {"amount": paid[0], "price": paid[1]},
        )
        return paid

    def update_variance(self) -> bool:
        """updatePoolSnapshot now (funding paid first); True when a snapshot was taken."""
        self._require("update_variance", Status.NORMAL)
        self._require_initialized("update_variance")
        st = self.state.copy()
        spot = self.spot()
        self._accrue(st, spot)
        done = self._update_variance(st, spot)
        self.state = st
        self.emit_event(
            "update_variance",
            self.now,
            {"amount": st.variance, "price": spot, "updated": done},
        )
        return done

    def hedge_plan(self) -> fx.HedgeAmounts:
        """getTokenAmountForHedging: what a hedge would trade now (after a rebalance)."""
        st = self.state.copy()
        spot = self.spot()
        self._accrue(st, spot)
        self._rebalance(st, spot)
        return self._hedge_amounts(st, spot)

    def _hedge_amounts(self, st: PoolState, spot: float) -> fx.HedgeAmounts:
        d0, d1 = fx.pool_deltas(spot, st.position[0], st.position[1])
        p = self.params
        slip = fx.slippage_tolerance(
            spot,
            st.last_hedge_spot,
            p.min_slippage_tolerance_of_hedge,
            p.max_slippage_tolerance_of_hedge,
            p.hedge_rate_of_return_threshold,
        )
        return fx.hedge_amounts(st.amount_underlying, d0, d1, spot, slip)

    def hedge(self, caller: str) -> HedgeResult:
        """execHedge: funding, snapshot, rebalance, trade the underlying to its target on the
        spot market at the slippage tolerance, rebalance.

        Raises:
            InvalidOperationError: the pool's holding is already on target.
        """
        self._require("hedge", Status.NORMAL)
        self._require_initialized("hedge")
        spot = self.spot()
        st = self.state.copy()
        self._accrue(st, spot)
        self._update_variance(st, spot)
        self._rebalance(st, spot)
        plan = self._hedge_amounts(st, spot)
        if plan.amount_underlying <= 1e-12:
            raise InvalidOperationError("the pool's hedge is already on target")
        slip = self._slippage(st, spot)
        r0 = plan.amount_usdc * plan.future_weight
        r1 = plan.amount_usdc - r0
        u = st.amounts_usdc
        if plan.is_long:
            st.amount_underlying += plan.amount_underlying
            st.amounts_usdc = (u[0] - r0, u[1] - r1)
        else:
            st.amount_underlying = max(st.amount_underlying - plan.amount_underlying, 0.0)
            st.amounts_usdc = (u[0] + r0, u[1] + r1)
        st.last_hedge_spot = spot
        self._rebalance(st, spot)
        self.state = st
        if plan.is_long:
            self.flows.usdc_out += plan.amount_usdc
        else:
            self.flows.usdc_in += plan.amount_usdc
        self.flows.extra["underlying_in"] = self.flows.extra.get("underlying_in", 0.0) + (
            plan.amount_underlying if plan.is_long else -plan.amount_underlying
        )
        result = HedgeResult(plan.is_long, plan.amount_underlying, plan.amount_usdc, slip, spot)
        self.emit_event(
            "hedge",
            self.now,
            {
                "account": caller,
                "side": "long" if plan.is_long else "short",
                "amount": plan.amount_underlying,
                "price": spot,
                "collateral": plan.amount_usdc,
                "slippage": slip,
            },
        )
        return result

    def _slippage(self, st: PoolState, spot: float) -> float:
        p = self.params
        return fx.slippage_tolerance(
            spot,
            st.last_hedge_spot,
            p.min_slippage_tolerance_of_hedge,
            p.max_slippage_tolerance_of_hedge,
            p.hedge_rate_of_return_threshold,
        )

    def is_liquidatable(self, v: VaultRow) -> bool:
        """Whether a vault holds a position and is worth less than its MinCollateral."""
        if v.position == (0.0, 0.0) or self.status is Status.SETTLED:
            return False
        return self.vault_value(v, self.marks(), self.funding_now()) < self.vault_min_collateral(v)

    def liquidate(self, liquidator: str | int, account: str | int) -> dict[str, float]:
        """liquidateByPool: close every position of an unsafe vault at the pool's prices.

        The reward (liquidation_fee_rate × MinCollateral, capped by the vault's USDC) goes half
        to L and half to the liquidator's vault. A vault left below zero is insolvent: L takes
        its shortfall (the LPs, as in the contracts, which leave the vault negative).
        """
        self._require("liquidate", Status.NORMAL, Status.EMERGENCY)
        l_row = self.vaults.row(liquidator)
        row = self.vaults.row(account)
        if l_row == row:
            raise InvalidOperationError("a vault cannot liquidate itself")
        name = self.vaults.names[row]
        v = self.vaults.read(row)
        if not self.is_liquidatable(v):
            raise InvalidOperationError(f"{name}'s vault is safe and cannot be liquidated")
        mc = self.vault_min_collateral(v)
        amounts = (-v.position[0], -v.position[1])
        spot = self.spot()
        st = self.state.copy()
        if self.status is Status.NORMAL:
            self._accrue(st, spot)
            fills = self._update_positions(st, amounts, spot)
        else:
            fills = self._settlement_fills(st, amounts)
        new_v = self._vault_after(v, fills)
        reward = fx.liquidation_reward(mc, new_v.usdc, self.params.liquidation_fee_rate)
        usdc = new_v.usdc - reward
        shortfall = max(-usdc, 0.0)
        st.amount_liquidity += reward / 2.0 - shortfall
        st.insolvent_loss += shortfall
        if self.status is Status.NORMAL:
            self._update_variance(st, spot)
        lv = self.vaults.read(l_row)
        self.state = st
        self.vaults.write(row, new_v._replace(usdc=max(usdc, 0.0)))
        self.vaults.write(l_row, lv._replace(usdc=lv.usdc + reward / 2.0))
        size = sum(abs(a) for a in amounts)
        result = {
            "amount": size,
            "reward": reward,
            "shortfall": shortfall,
            "price": fills[0].trade_price if fills else 0.0,
        }
        self.emit_event(
            "liquidate",
            self.now,
            {
                "account": name,
                "counterparty": self.vaults.names[l_row],
                "amount": size,
                "amount_future": abs(amounts[0]),
                "amount_squared": abs(amounts[1]),
                "price": result["price"],
                "penalty": reward / 2.0,
                "penalty_fund": reward / 2.0,
                "loss": shortfall,
                "insurance_fund_paid": 0.0,
                "social_loss": shortfall,
            },
        )
        return result

    def _settlement_fills(self, st: PoolState, amounts: Pair) -> list[TradeResult]:
        """Closing trades during settlement: at the settlement marks, no fee, no funding."""
        spot = self.settlement_spot
        fills = []
        old = st.position
        st.position = (old[0] - amounts[0], old[1] - amounts[1])
        profit = 0.0
        for i in (FUTURE, SQUARED):
            a = amounts[i]
            if a == 0.0:
                continue
            index = fx.index_price(i, spot)
            entry, gain = fx.entry_price_update(st.entry[i], old[i], index, -a)
            st.entry = _set(st.entry, i, entry)
            profit += gain
            fills.append(TradeResult(i, a, index, index, 0.0, 0.0, 0.0, st.funding_paid[i]))
        st.amount_liquidity += profit
        return fills

    # -- settlement ------------------------------------------------------------------------------

    def begin_global_settlement(self, spot: float) -> None:
        """NORMAL or EMERGENCY → EMERGENCY at spot ``spot``: funding stops, marks = indices."""
        self._require("begin_global_settlement", Status.NORMAL, Status.EMERGENCY)
        s = check_positive(spot, "settlement price")
        if self.status is Status.NORMAL and self.initialized:
            st = self.state.copy()
            self._accrue(st, self.spot())
            self.state = st
        self.status = Status.EMERGENCY
        self.settlement_spot = s
        self.emit_event("begin_global_settlement", self.now, {"price": s})

    def global_settled(self) -> None:
        """EMERGENCY → SETTLED: the pool's equity at the settlement marks is fixed for its LPs
        (its underlying counted at the settlement price)."""
        self._require("global_settled", Status.EMERGENCY)
        equity = self.pool_equity()
        spot = self.settlement_spot
        st = self.state.copy()
        # The underlying is sold at the settlement price: it leaves as USDC comes in.
        self.flows.usdc_in += st.amount_underlying * spot
        self.flows.extra["underlying_in"] = (
            self.flows.extra.get("underlying_in", 0.0) - st.amount_underlying
        )
        st.amount_underlying = 0.0
        if equity < 0.0:
            self.flows.bad_debt += -equity
            equity = 0.0
        self.state = st
        self.settled_equity = equity
        self.status = Status.SETTLED
        self.emit_event("global_settled", self.now, {"price": spot})

    def settle_shares(self, holder: str, shares: float) -> float:
        """After settlement, redeem LP tokens for their part of the pool's equity (into the
        holder's vault)."""
        self._require("settle_shares", Status.SETTLED)
        sh = check_positive(shares, "shares")
        held = self.shares.get(holder, 0.0)
        if sh > held * (1.0 + RTOL):
            raise InsufficientBalanceError(f"{holder} holds {held:.10g} LP tokens, not {sh:.10g}")
        row = self.vaults.index.get(holder)
        sh = min(sh, held)
        supply = self.state.supply
        payout = (
            self.settled_equity
            if sh >= supply * (1.0 - RTOL)
            else self.settled_equity * sh / supply
        )
        if row is None:
            row = self.vaults.add(holder)
        v = self.vaults.read(row)
        self.vaults.write(row, v._replace(usdc=v.usdc + payout))
        self.settled_equity -= payout
        st = self.state.copy()
        st.supply = max(supply - sh, 0.0)
        self.state = st
        if held - sh > held * RTOL:
            self.shares[holder] = held - sh
        else:
            del self.shares[holder]
        self.emit_event(
            "settle_share", self.now, {"account": holder, "shares": sh, "amount": payout}
        )
        return payout

    def settle(self, account: str | int) -> float:
        """After settlement, pay a vault's value at the settlement marks out (0 if negative)."""
        self._require("settle", Status.SETTLED)
        row = self.vaults.row(account)
        v = self.vaults.read(row)
        value = self.vault_value(v, self.marks(), self.funding_now())
        payout = max(value, 0.0)
        self.flows.settlement_shortfall += payout - value
        self.vaults.write(row, FLAT_VAULT)
        self.flows.usdc_out += payout
        name = self.vaults.names[row]
        self.emit_event("settle", self.now, {"account": name, "amount": payout})
        return payout

    # -- checks ----------------------------------------------------------------------------------

    def total_value(self, *, full: bool = True) -> float:
        """Σ vault values + the pool's equity + protocol fees (all at the marks).

        ``full=False`` sums the live vaults only: the same float (``fsum`` is exact, and every
        other vault is worth exactly 0)."""
        if full:
            values, _ = self.values_and_min_collaterals()
        else:
            _, values, _, _ = self.live_values_and_min_collaterals()
        return math.fsum(values.tolist()) + self.pool_equity() + self.state.protocol_fees

    def check_invariants(self, *, full: bool = True) -> list[str]:
        """Conservation (what the vaults and the pool are worth, less the underlying, is the
        USDC that came in less what went out), signs, LP tokens and open interest.

        ``full=False`` reads only the live vaults (holding USDC or a position): a vault that
        is not live holds nothing, so it breaks no rule and adds nothing to a total (the
        positions' sums may round differently, far below the checks' tolerances)."""
        problems: list[str] = []
        st = self.state
        spot = self.spot() if (self.initialized or self.status is not Status.NORMAL) else 0.0
        underlying = st.amount_underlying * spot if self.status is not Status.SETTLED else 0.0
        value = self.total_value(full=full) - underlying
        f = self.flows
        expected = f.usdc_in - f.usdc_out + f.bad_debt + f.settlement_shortfall
        scale = f.usdc_in + f.usdc_out + 1.0
        if abs(value - expected) > 1e-9 * scale:
            problems.append(
                f"collateral not conserved: vaults + pool − underlying = {value:.12g} but USDC in −"
                f" out + write-offs = {expected:.12g} (difference {value - expected:.3g})"
            )
        if st.amount_underlying < -1e-12:
            problems.append(f"negative underlying held {st.amount_underlying:.10g}")
        if any(x < -1e-9 * scale for x in st.locked):
            problems.append(f"negative locked margin {st.locked}")
        supply = math.fsum(self.shares.values())
        if abs(supply - st.supply) > 1e-9 * max(st.supply, 1.0):
            problems.append(f"LP token balances {supply:.12g} != supply {st.supply:.12g}")
        if full:
            usdc, pos, _, _ = self.vaults.view()
        else:
            _, usdc, pos, _, _ = self.vaults.live_view()
        if self.status is not Status.SETTLED:
            for i in (FUTURE, SQUARED):
                net = float(pos[:, i].sum()) + st.position[i]
                if abs(net) > 1e-9 * max(1.0, float(np.abs(pos[:, i]).sum())):
                    problems.append(
                        f"{PRODUCTS[i]}: vault positions {float(pos[:, i].sum()):.12g} are not the"
                        f" pool's {st.position[i]:.12g} reversed"
                    )
        if (usdc < -1e-9 * scale).any():
            problems.append("a vault holds negative USDC")
        return problems


#: Re-exported for the venue and the replay.
__all__ += ["FLAT_VAULT", "HedgeResult", "VaultRow"]
