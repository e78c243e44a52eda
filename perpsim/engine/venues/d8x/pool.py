"""The D8X pool: one perpetual in one collateral currency, its AMM and the pool's funds.

Capital (``spec/d8x.md``): the AMM's margin account (position −K2, locked-in value −L1; the
counterparty of every trader), the AMM fund (its cash M and target), LP cash with share tokens,
and the default fund (DF) with its target. Traders hold margin accounts: a signed position, a
locked-in value L (quote currency), cash (collateral) and the unit accumulated funding at their
last settlement.

Every action runs inside the hook of :mod:`.hook` (seed 000): :meth:`D8XPool._run` runs the
before-steps, the action, then the after-steps, in the table's order. All of it happens on a
working copy (:class:`_Txn`): an action that is refused at any step raises its typed error and
nothing is written, so a rejected call leaves the state unchanged; an accepted one is committed
at once, with its events and its trace of steps.

A quote runs the trade's before-hook on such a copy and keeps it, with everything the hook read
(the state, the index, S3, the AMM's row): a trade that finds all of it unchanged books on that
copy instead of running the hook again. Prices and AMM fund targets are remembered under keys of
every input. None of this changes a number: the same operations run on the same values.

Live rows: every account an agent ever opened keeps its row, and most rows of a long run are
flat and empty (a noise trader withdraws everything after each close). :meth:`D8XPool._commit`,
the one writer of the margin arrays, keeps the rows holding cash, a position or a locked-in
value (:meth:`D8XPool.live_rows`, ascending) and the rows written since the last accounting
check. The per-tick scans (the unsafe rows, the time-series row, open interest, the check
between full ones) read those rows only: a row that is not live has a margin balance of exactly
0, no margin requirement and no position, so it adds nothing to a count, a filtered sum or an
exact sum (``math.fsum``) and every result is the whole pass's, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from perpsim.engine.core import kernels
from perpsim.engine.core.events import EventEmitter
from perpsim.engine.core.index import IndexOracle
from perpsim.engine.core.numbers import check_lot, check_positive, check_price, check_time
from perpsim.engine.core.status import Status
from perpsim.engine.venues.d8x import formulas as f
from perpsim.engine.venues.d8x.formulas import Collateral
from perpsim.engine.venues.d8x.governance import D8XGovernance, check_quanto_targets
from perpsim.engine.venues.d8x.hook import HOOKS, Action, Step
from perpsim.errors import (
    BadAmountError,
    InsufficientBalanceError,
    InvalidOperationError,
    PriceLimitError,
    UnknownAccountError,
    UnsafeError,
    WrongStatusError,
)

__all__ = ["AMM", "CollateralPrice", "D8XPool", "Margin", "PoolState"]

#: Name of the AMM's own margin account (row 0).
AMM = "amm"
#: A position may not be left smaller than this many lots (``MIN_NUM_LOTS_PER_POSITION``).
MIN_LOTS_PER_POSITION = 10.0
#: Relative tolerance under which a share amount equal to a balance counts as all of it.
SHARE_RTOL = 1e-12
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
#: The AMM's row alone, for the row-set views.
_AMM_ROWS: IntArray = np.zeros(1, dtype=np.int64)
_AMM_ROWS.flags.writeable = False
#: Receives ``(action, [(phase, step), ...])`` once an action has been committed.
HookListener = Callable[[Action, list[tuple[str, Step]]], None]
# The trace's entries, built once: an action appends about ten, and tuples built per entry
# were a measurable share of a trade (equal values; a trace is only ever read).
_BEFORE: dict[Step, tuple[str, Step]] = {step: ("before", step) for step in Step}
_AFTER: dict[Step, tuple[str, Step]] = {step: ("after", step) for step in Step}
_ACTION: tuple[str, Step] = ("action", Step.ACTION)
#: What the compiled rebalance and the compiled probe save per call, µs of CPU (measured: the
#: rebalance 3.5 in quote and 11 in quanto collateral, the probe 21-23 in quote; the kernels are
#: loaded once the Python calls of a process would have saved their loading: ``kernels.BUDGET``).
_REBALANCE_SAVING_US = 8.0
_PROBE_SAVING_US = 20.0

#: The collateral's code in the compiled probe's inputs (``kernel.INPUTS``).
_COLLATERAL_CODE: dict[Collateral, float] = {
    Collateral.QUOTE: 0.0,
    Collateral.BASE: 1.0,
    Collateral.QUANTO: 2.0,
}
_COLLATERAL_INT: dict[Collateral, int] = {c: int(code) for c, code in _COLLATERAL_CODE.items()}


class CollateralPrice:
    """Where the pool reads S3, the quote price of its collateral.

    Quote collateral: 1; base collateral: the index S2. Quanto collateral follows a price of
    its own: by default ``start × (S2 / S2₀)^beta`` (S2₀ the first index read; beta = 0 keeps it
    fixed, beta = 1 moves it with the index, the case quanto pools fear), or a value set from
    outside (:meth:`set`, the replay's ``set_collateral_price``).

    Args:
        collateral: the pool's collateral currency.
        start: S3 at the start (quanto only).
        beta: elasticity of S3 to the index (quanto only).
    """

    def __init__(self, collateral: Collateral, start: float = 1.0, beta: float = 0.0) -> None:
        self.collateral = collateral
        self.start = check_price(start, "collateral price")
        self.beta = float(beta)
        self.reference: float | None = None
        self.fixed: float | None = None

    def price(self, s2: float) -> float:
        """S3 when the index is ``s2``."""
        if self.collateral is Collateral.QUOTE:
            return 1.0
        if self.collateral is Collateral.BASE:
            return s2
        if self.fixed is not None:
            return self.fixed
        if self.reference is None:
            self.reference = s2
        return float(self.start * (s2 / self.reference) ** self.beta)

    def set(self, price: float) -> None:
        """Fix S3 at ``price`` from now on (quanto collateral only).

        Raises:
            InvalidOperationError: the collateral is not quanto (S3 is 1 or the index).
        """
        p = check_price(price, "collateral price")
        if self.collateral is not Collateral.QUANTO:
            raise InvalidOperationError(
                f"the collateral price S3 of a {self.collateral.value} pool is not set from"
                " outside (it is 1 for quote and the index for base collateral)"
            )
        self.fixed = p


@dataclass(slots=True)
class Margin:
    """One margin account: signed position (base), locked-in value (quote), cash (collateral)
    and the unit accumulated funding at its last settlement."""

    position: float = 0.0
    locked_in: float = 0.0
    cash: float = 0.0
    funding_start: float = 0.0


@dataclass
class PoolState:
    """Every scalar of the pool (the spec's names; collateral amounts in collateral)."""

    governance: D8XGovernance
    now: int
    status: Status = Status.NORMAL
    s2: float = 0.0
    s3: float = 1.0
    price_moved: bool = True
    amm_fund_cash: float = 0.0
    amm_fund_target: float = 0.0
    lp_cash: float = 0.0
    share_supply: float = 0.0
    default_fund_cash: float = 0.0
    default_fund_target: float = 0.0
    default_fund_target_time: int = 0
    k_star: float = 0.0
    premium_rate: float = 0.0
    mark_premium_ema: float = 0.0
    mark_premium_rate: float = 0.0
    mark_time: int = -1
    funding_rate: float = 0.0
    unit_accumulated_funding: float = 0.0
    last_funding_time: int = 0
    trader_exposure_ema: float = 0.0
    amm_exposure_ema_short: float = -1.0
    amm_exposure_ema_long: float = 1.0
    settlement_s2: float = 0.0
    settlement_s3: float = 0.0
    settlement_premium: float = 0.0
    bad_debt: float = 0.0
    written_off: float = 0.0
    deposited: float = 0.0
    withdrawn: float = 0.0
    emergency_shortfall: float = 0.0
    # Collateral put into the pool side (AMM fund, DF, LP cash) less what LPs took out: the
    # base of the AMM's P&L.
    pool_contributed: float = 0.0


def _copy_state(st: PoolState) -> PoolState:
    """A shallow copy of ``st``: what ``copy.copy`` makes (a new instance holding the same field
    values), without its generic ``__reduce_ex__`` dispatch, which cost a third of a quote."""
    new = object.__new__(PoolState)
    new.__dict__.update(st.__dict__)
    return new


def _check_quanto_targets(collateral: Collateral, g: D8XGovernance) -> None:
    if collateral is Collateral.QUANTO:
        check_quanto_targets(g)


@dataclass
class _Txn:
    """A working copy of the pool: the scalars, the rows an action touched, new accounts,
    shares, events and the trace of hook steps. Committed whole or dropped."""

    st: PoolState
    rows: dict[int, Margin] = field(default_factory=dict)
    new_names: list[str] = field(default_factory=list)
    shares: dict[str, float] | None = None
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    trace: list[tuple[str, Step]] = field(default_factory=list)
    fees: float = 0.0
    #: What the DF has put into the AMM's margin in this action: the shortfall LP cash and the
    #: AMM fund could not cover (its top-ups of the AMM fund are transfers, not losses paid).
    df_cover: float = 0.0


#: An account's stored fields: position, locked-in value, cash, funding start.
_Row = tuple[float, float, float, float]
#: A quote's working copy after the trade's before-hook and what that hook read: the state
#: object, a copy of its fields, the index S2, S3 and the AMM's stored row.
_Prepared = tuple[PoolState, dict[str, Any], float, float, _Row, _Txn]


class D8XPool(EventEmitter):
    """One D8X perpetual with its pool (see the module docstring).

    Trade probes (:meth:`trade_probe`) and rebalances run compiled
    (:mod:`perpsim.engine.venues.d8x.kernel`) while :attr:`compiled_kernels` is true and the
    process's calls have paid for loading them (:mod:`perpsim.engine.core.kernels`), the Python
    code answering where the compiled one stops; both give the same floats.

    Args:
        governance: the parameters in force.
        collateral: the collateral currency.
        oracle: where the index S2 is read.
        collateral_price: where S3 is read.
        now: the start time (unix seconds).
        capacity: account rows to allocate up front.
        trader_exposure_ema: Π̄ at the start (floored at its minimum).
        amm_exposure_ema: |K̄±| at the start (floored at its minimum).
    """

    #: Whether :meth:`trade_probe` and the rebalance run compiled (false: the Python code only;
    #: the tests compare the two).
    compiled_kernels: ClassVar[bool] = True

    def __init__(
        self,
        governance: D8XGovernance,
        collateral: Collateral,
        oracle: IndexOracle,
        collateral_price: CollateralPrice,
        now: int,
        capacity: int = 64,
        *,
        trader_exposure_ema: float | None = None,
        amm_exposure_ema: float | None = None,
    ) -> None:
        super().__init__()
        self.collateral = collateral
        self.oracle = oracle
        self.collateral_price = collateral_price
        cap = max(int(capacity), 2)
        self._pos = np.zeros(cap)
        self._locked = np.zeros(cap)
        self._cash = np.zeros(cap)
        self._fstart = np.zeros(cap)
        self.names: list[str] = [AMM]
        self.index: dict[str, int] = {AMM: 0}
        self.shares: dict[str, float] = {}
        #: Whether each row is live (holds cash, a position or a locked-in value), per row, as
        #: of the last commit.
        self._live: list[bool] = [False]
        #: Whether each row is in :attr:`_live_rows`.
        self._listed: list[bool] = [False]
        #: The listed rows, ascending: the live rows once the rows in :attr:`_toggled` are
        #: moved in or out (:meth:`live_rows`, in one pass per read, however many changed).
        self._live_rows: IntArray = np.empty(0, dtype=np.int64)
        #: Rows whose liveness a commit changed since :attr:`_live_rows` was brought up to date.
        self._toggled: set[int] = set()
        #: Rows committed since the last accounting check (:meth:`check_invariants`).
        self._written: set[int] = set()
        #: Called with each committed action's trace (tests observe the seed's order).
        self.hook_listener: HookListener | None = None
        # Each step's method, looked up once per step (a chain of tests cost more per trade).
        self._steps: dict[Step, Callable[[_Txn], object]] = {
            Step.ACCRUE_FUNDING: self._accrue_funding,
            Step.UPDATE_ORACLE: self._update_oracle,
            Step.REBALANCE_ON_PRICE_MOVE: self._rebalance_on_price_move,
            Step.UPDATE_AMM_FUND_TARGET: self._update_amm_fund_target,
            Step.DISTRIBUTE_FEES: self._no_step,
            Step.REBALANCE: self._rebalance,
            Step.UPDATE_FUNDING_RATE: self._update_funding_rate,
            Step.UPDATE_DEFAULT_FUND_TARGET: self._update_default_fund_target,
        }
        self._view: PoolState | None = None
        # The state the view was made from, held (not its id(): a freed state's id is reused
        # by the next one, which then got a stale view, so results depended on allocation).
        self._view_key: tuple[PoolState, dict[str, Any], float, float] | None = None
        # Caches of pure functions, each under a key of everything its value depends on (the
        # hypothesis state machines' snapshots of "nothing changed" do not read them):
        # the last mid price and trade price with their k* (``_price_ks``) ...
        self._mid_memo: tuple[tuple[Any, ...], float, float] | None = None
        self._trade_memo: tuple[tuple[Any, ...], float, float] | None = None
        # ... the mid price of one view state (``mid_price``): a new view comes with every
        # commit (the only writer of the AMM's row, which installs a new state) and every
        # change of the state's fields, the index or S3, so the same view, the same price ...
        self._view_mid: tuple[PoolState, float] | None = None
        # ... the AMM fund's baseline and stress targets (``_update_amm_fund_target``) ...
        self._target_memo: tuple[tuple[Any, ...], float, float | None] | None = None
        # ... and the governance laid out for the compiled rebalance (``kernel.INPUTS``).
        self._kernel_governance: tuple[D8XGovernance, FloatArray] | None = None
        # ... and a quote's working copy after the trade's before-hook, with what that hook read
        # (the state object and its fields, the index, S3, the AMM's row): the trade that
        # follows the quote starts from it (``_prepared_trade``, ``_take_prepared``).
        self._prepared: _Prepared | None = None
        g = governance
        _check_quanto_targets(collateral, g)
        t = check_time(now, "start time")
        s2, _ = oracle.index(t)
        pi = max(
            trader_exposure_ema or g.minimal_trader_exposure_ema, g.minimal_trader_exposure_ema
        )
        k_bar = max(amm_exposure_ema or 0.0, g.minimal_amm_exposure_ema)
        st = PoolState(governance=g, now=t, s2=float(s2), last_funding_time=t)
        st.s3 = collateral_price.price(st.s2)
        st.trader_exposure_ema = pi
        st.amm_exposure_ema_short, st.amm_exposure_ema_long = -k_bar, k_bar
        st.amm_fund_target = g.amm_min_size
        st.default_fund_target_time = t
        self.state = st
        txn = _Txn(_copy_state(st))
        txn.st.default_fund_target = self._default_fund_target(txn)
        self._update_k_star(txn)
        self._commit(txn, None)

    # -- accounts ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.names)

    def row(self, account: str | int) -> int:
        """The row of an account given by name or row number.

        Raises:
            UnknownAccountError: no such account.
        """
        if isinstance(account, str):
            try:
                return self.index[account]
            except KeyError:
                raise UnknownAccountError(f"unknown account {account!r}") from None
        if (
            isinstance(account, (int, np.integer))
            and not isinstance(account, bool)
            and 0 <= account < len(self.names)
        ):
            return int(account)
        raise UnknownAccountError(f"unknown account {account!r}")

    def margin(self, row: int) -> Margin:
        """One account's stored fields (a copy)."""
        return Margin(
            self._pos.item(row),
            self._locked.item(row),
            self._cash.item(row),
            self._fstart.item(row),
        )

    @property
    def positions(self) -> FloatArray:
        """Signed positions of every account (a read-only view; row 0 is the AMM's)."""
        return self._pos[: len(self.names)]

    def _row_of(self, txn: _Txn, row: int) -> Margin:
        m = txn.rows.get(row)
        if m is None:
            m = self.margin(row) if row < len(self.names) else Margin()
            txn.rows[row] = m
        return m

    def _trader_row(self, account: str | int, what: str = "account") -> int:
        row = self.row(account)
        if row == 0:
            raise InvalidOperationError(f"the AMM's own margin account cannot be the {what}")
        return row

    # -- prices of the state ----------------------------------------------------------------------

    def _prices(self, st: PoolState) -> tuple[float, float, float]:
        """(index S2, S3, mark) in force: the settlement values outside NORMAL."""
        if st.status is Status.NORMAL:
            return st.s2, st.s3, f.mark_price(st.s2, st.mark_premium_rate)
        s2 = st.settlement_s2
        return s2, st.settlement_s3, f.mark_price(s2, st.settlement_premium)

    @staticmethod
    def _index_prices(st: PoolState) -> tuple[float, float]:
        """(S2, S3) of :meth:`_prices`, without the mark it does not need."""
        if st.status is Status.NORMAL:
            return st.s2, st.s3
        return st.settlement_s2, st.settlement_s3

    def _uaf_now(self, st: PoolState) -> float:
        """Unit accumulated funding including what accrued since the last action."""
        if st.status is not Status.NORMAL or st.now <= st.last_funding_time:
            return st.unit_accumulated_funding
        conv = f.base_to_collateral(self.collateral, st.s2, st.s2, st.s3)
        dt = st.now - st.last_funding_time
        return st.unit_accumulated_funding + st.funding_rate * dt / f.FUNDING_INTERVAL_S * conv

    def view_state(self) -> PoolState:
        """The state as the views see it now: the oracle's index and S3 read, funding accrued
        to now (no rebalance; the stored state is unchanged)."""
        st = self.state
        if st.status is not Status.NORMAL:
            return st
        s2, _ = self.oracle.index(st.now)
        s2 = float(s2)
        s3 = self.collateral_price.price(s2)
        cached = self._view_key
        # Everything the view is made of: the state object and its fields (a set-up may write
        # one in place; the clock does), the index and S3 (which may be set from outside).
        if (
            cached is not None
            and cached[0] is st
            and cached[2] == s2
            and cached[3] == s3
            and cached[1] == st.__dict__
            and self._view is not None
        ):
            return self._view
        view = _copy_state(st)
        view.unit_accumulated_funding = self._uaf_now(st)
        view.last_funding_time = max(st.now, st.last_funding_time)
        view.s2 = s2
        view.s3 = s3
        self._view, self._view_key = view, (st, dict(st.__dict__), s2, s3)
        return view

    def view_txn(self) -> _Txn:
        """A working copy of :meth:`view_state` (for prices read without changing state)."""
        return _Txn(_copy_state(self.view_state()))

    def _margin_balance(self, st: PoolState, m: Margin, at_mark: bool = True) -> float:
        s2, s3, mark = self._prices(st)
        price = mark if at_mark else s2
        b2c = f.base_to_collateral(self.collateral, price, s2, s3)
        c2q = f.collateral_to_quote(self.collateral, s2, s3)
        cash = m.cash - m.position * (self._uaf_now(st) - m.funding_start)
        return m.position * b2c + cash - m.locked_in / c2q

    def _margin_requirement(
        self, st: PoolState, m: Margin, initial: bool, at_mark: bool = True
    ) -> float:
        g = st.governance
        s2, s3, mark = self._prices(st)
        b2c = f.base_to_collateral(self.collateral, mark if at_mark else s2, s2, s3)
        rate = f.initial_margin_rate(
            m.position, g.initial_margin_rate_alpha, g.margin_rate_beta, g.initial_margin_rate_cap
        )
        if not initial:
            rate -= g.initial_margin_rate_alpha - g.maintenance_margin_rate_alpha
        return abs(m.position * b2c * rate)

    def _balance_and_im(self, st: PoolState, m: Margin) -> tuple[float, float]:
        """(:meth:`_margin_balance`, :meth:`_margin_requirement` initial) at the mark, with the
        prices and conversions read once (the same operations as the two)."""
        s2, s3, mark = self._prices(st)
        return self._balance_and_im_at(st, m, mark, s2, s3)

    def _balance_and_im_at(
        self, st: PoolState, m: Margin, mark: float, s2: float, s3: float
    ) -> tuple[float, float]:
        """:meth:`_balance_and_im` with the mark, S2 and S3 given."""
        coll = self.collateral
        b2c = f.base_to_collateral(coll, mark, s2, s3)
        c2q = f.collateral_to_quote(coll, s2, s3)
        pos = m.position
        cash = m.cash - pos * (self._uaf_now(st) - m.funding_start)
        g = st.governance
        rate = f.initial_margin_rate(
            pos, g.initial_margin_rate_alpha, g.margin_rate_beta, g.initial_margin_rate_cap
        )
        return pos * b2c + cash - m.locked_in / c2q, abs(pos * b2c * rate)

    def _capital(self, txn: _Txn) -> tuple[float, float, float]:
        """(M1, M2, M3): the pricing capital in the slot of the collateral currency."""
        st = txn.st
        m = st.amm_fund_cash
        if st.governance.pricing_capital == "pool":
            amm = self._row_of(txn, 0)
            m += amm.cash + st.governance.pricing_lp_share * st.lp_cash
        if self.collateral is Collateral.QUOTE:
            return m, 0.0, 0.0
        if self.collateral is Collateral.BASE:
            return 0.0, m, 0.0
        return 0.0, 0.0, m

    def _k2_l1(self, txn: _Txn) -> tuple[float, float]:
        amm = self._row_of(txn, 0)
        return -amm.position, -amm.locked_in

    def _pd(self, txn: _Txn, k: float) -> f.DefaultProbability:
        st, g = txn.st, txn.st.governance
        k2, l1 = self._k2_l1(txn)
        m1, m2, m3 = self._capital(txn)
        return f.prob_default_any(
            k2 + k, l1 + k * st.s2, st.s2, g.sigma2, m1, m2, m3, st.s3, g.sigma3, g.rho23
        )

    def _price(self, txn: _Txn, k: float) -> float:
        return self._price_ks(txn, k)[0]

    def _price_ks(self, txn: _Txn, k: float) -> tuple[float, float]:
        """(p(k), k*): the price of a trade of ``k`` in the working state and the k* it used.

        Both are pure functions of the key below (everything :func:`perp_price`, its default
        probability and k* read). The last mid price and the last price of a trade are kept
        under their keys: a quote and the trade that follows it price the same state, and so do
        a quote's mid and the mark update of the rebalance before it.
        """
        st = txn.st
        g = st.governance
        amm = txn.rows.get(0)
        if amm is None:
            amm = self._row_of(txn, 0)
        k2 = -amm.position
        l1 = -amm.locked_in
        # _capital, inline (the hottest caller).
        m = st.amm_fund_cash
        if g.pricing_capital == "pool":
            m += amm.cash + g.pricing_lp_share * st.lp_cash
        coll = self.collateral
        if coll is Collateral.QUOTE:
            m1, m2, m3 = m, 0.0, 0.0
        elif coll is Collateral.BASE:
            m1, m2, m3 = 0.0, m, 0.0
        else:
            m1, m2, m3 = 0.0, 0.0, m
        s2 = st.s2
        s3 = st.s3
        pi = st.trader_exposure_ema
        calm = st.default_fund_cash > st.default_fund_target
        key = (k, k2, l1, m1, m2, m3, s2, s3, pi, calm, g)
        mid = k == 0.0
        memo = self._mid_memo if mid else self._trade_memo
        if memo is not None and memo[0] == key:
            return memo[1], memo[2]
        ks = f.k_star(k2, m2, m3, s2, s3, g.sigma2, g.sigma3, g.rho23)
        spread = g.minimal_spread if calm else g.minimal_spread_in_stress
        q = f.prob_default_any(
            k2 + k, l1 + k * s2, s2, g.sigma2, m1, m2, m3, s3, g.sigma3, g.rho23
        ).q
        price = f.perp_price(k, q, s2, ks, spread, g.incentive_spread, pi)
        if mid:
            self._mid_memo = (key, price, ks)
        else:
            self._trade_memo = (key, price, ks)
        return price, ks

    # -- the hook ------------------------------------------------------------------------------

    def _begin(self) -> _Txn:
        return _Txn(_copy_state(self.state))

    def _run(self, action: Action, body: Callable[[_Txn], Any], txn: _Txn | None = None) -> Any:
        """Run ``body`` inside its action's hook on a working copy; commit if nothing refused."""
        txn = self._begin() if txn is None else txn
        self._run_in(txn, action, body)
        self._commit(txn, action)
        return txn

    def _run_in(self, txn: _Txn, action: Action, body: Callable[[_Txn], Any]) -> None:
        hook = HOOKS[action]
        steps, trace = self._steps, txn.trace
        for step in hook.before:
            trace.append(_BEFORE[step])
            steps[step](txn)
        trace.append(_ACTION)
        body(txn)
        for step in hook.after:
            trace.append(_AFTER[step])
            steps[step](txn)

    def _step(self, txn: _Txn, step: Step) -> None:
        self._steps[step](txn)

    def _rebalance_on_price_move(self, txn: _Txn) -> None:
        if txn.st.price_moved:
            txn.trace.append(_BEFORE[Step.REBALANCE])
            self._rebalance(txn)

    def _no_step(self, txn: _Txn) -> None:
        """A trade-like action books its own fees at DISTRIBUTE_FEES (its callback in
        :meth:`_run_trade_like`); elsewhere the step does nothing."""

    def _commit(self, txn: _Txn, action: Action | None) -> None:
        n_new = len(txn.new_names)
        if n_new:
            need = len(self.names) + n_new
            if need > len(self._pos):
                cap = max(need, 2 * len(self._pos))
                for attr in ("_pos", "_locked", "_cash", "_fstart"):
                    old = getattr(self, attr)
                    new = np.zeros(cap)
                    new[: len(self.names)] = old[: len(self.names)]
                    setattr(self, attr, new)
            for name in txn.new_names:
                self.index[name] = len(self.names)
                self.names.append(name)
                self._live.append(False)
                self._listed.append(False)
        # The one place the margin arrays are written: the live rows and the rows written since
        # the last check follow every write here.
        live_of, written = self._live, self._written
        for row, m in txn.rows.items():
            pos, locked, cash = m.position, m.locked_in, m.cash
            self._pos[row] = pos
            self._locked[row] = locked
            self._cash[row] = cash
            self._fstart[row] = m.funding_start
            live = bool(pos != 0.0 or cash != 0.0 or locked != 0.0)
            if live != live_of[row]:
                live_of[row] = live
                self._toggled.add(row)
            written.add(row)
        if txn.shares is not None:
            self.shares = txn.shares
        self.state = txn.st
        for kind, fields in txn.events:
            self.emit_event(kind, txn.st.now, fields)
        if action is not None and self.hook_listener is not None:
            self.hook_listener(action, list(txn.trace))

    def live_rows(self) -> IntArray:
        """The rows holding cash, a position or a locked-in value, ascending, the AMM's among
        them when it holds anything (do not modify).

        Every other row holds exactly nothing: its margin balance is 0, it needs no margin and
        it is never unsafe, bankrupt or long.
        """
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
                out.sort()
                rows = np.delete(rows, np.searchsorted(rows, out))
            if ins:
                ins.sort()
                rows = np.insert(rows, np.searchsorted(rows, ins), ins)
            self._live_rows = rows
        return self._live_rows

    def trader_live_rows(self) -> IntArray:
        """:meth:`live_rows` without the AMM's (row 0)."""
        rows = self.live_rows()
        if rows.size and rows.item(0) == 0:
            return rows[1:]
        return rows

    def amm_and_trader_live_rows(self) -> IntArray:
        """The AMM's row (first, live or not), then :meth:`trader_live_rows`."""
        rows = self.live_rows()
        if rows.size and rows.item(0) == 0:
            return rows
        return np.concatenate((_AMM_ROWS, rows))

    # -- steps ---------------------------------------------------------------------------------

    def _accrue_funding(self, txn: _Txn) -> None:
        """Unit accumulated funding += f × dt / 8 h × (base → collateral at the index)."""
        st = txn.st
        if st.now <= st.last_funding_time or st.status is not Status.NORMAL:
            return
        dt = st.now - st.last_funding_time
        conv = f.base_to_collateral(self.collateral, st.s2, st.s2, st.s3)
        st.unit_accumulated_funding += st.funding_rate * dt / f.FUNDING_INTERVAL_S * conv
        st.last_funding_time = st.now

    def _update_oracle(self, txn: _Txn) -> None:
        """Read S2 and S3; flag a move beyond the threshold since the last read.

        Quote and base pools have no S3 oracle, whose "insignificant move" flag never sets in
        the contracts: they rebalance before every action.
        """
        st = txn.st
        if st.status is not Status.NORMAL:
            st.price_moved = False
            return
        s2, _ = self.oracle.index(st.now)
        s2 = check_price(s2, "index price")
        s3 = self.collateral_price.price(s2)
        thr = st.governance.price_move_threshold
        moved2 = abs(s2 / st.s2 - 1.0) >= thr if st.s2 > 0.0 else True
        if self.collateral is Collateral.QUANTO:
            moved3 = abs(s3 / st.s3 - 1.0) >= thr if st.s3 > 0.0 else True
            st.price_moved = moved2 or moved3
        else:
            st.price_moved = True
        st.s2, st.s3 = s2, s3

    def _target(self, txn: _Txn, dd: float) -> float:
        st, g = txn.st, txn.st.governance
        amm = txn.rows.get(0)
        if amm is None:
            amm = self._row_of(txn, 0)
        return f.amm_fund_target(
            self.collateral,
            -amm.position,
            -amm.locked_in,
            st.trader_exposure_ema,
            st.k_star,
            st.s2,
            g.sigma2,
            dd,
            g.amm_min_size,
            st.s3,
            g.sigma3,
            g.rho23,
        )

    def _update_amm_fund_target(self, txn: _Txn) -> tuple[float, float]:
        """Target = baseline when the fund exceeds the stress target, else the stress target.

        Both targets are pure functions of the key below (k* enters by its sign only); they are
        kept under it, since the rebalance after a trade's target update, and the next action's
        rebalance, compute them again from the same exposure.

        Returns:
            (target set, stress target).
        """
        st, g = txn.st, txn.st.governance
        amm = txn.rows.get(0)
        if amm is None:
            amm = self._row_of(txn, 0)
        key = (
            amm.position,
            amm.locked_in,
            st.trader_exposure_ema,
            st.k_star > 0.0,
            st.s2,
            st.s3,
            g,
        )
        memo = self._target_memo
        if memo is not None and memo[0] == key:
            baseline, stress = memo[1], memo[2]
        else:
            baseline, stress = self._target(txn, g.amm_target_dd_baseline), None
            self._target_memo = (key, baseline, None)
        if st.amm_fund_cash > baseline:
            st.amm_fund_target = baseline
            return baseline, math.nan
        if stress is None:
            stress = self._target(txn, g.amm_target_dd_stress)
            self._target_memo = (key, baseline, stress)
        st.amm_fund_target = baseline if st.amm_fund_cash > stress else stress
        return st.amm_fund_target, stress

    def _rebalance(self, txn: _Txn) -> None:
        """Equalise the AMM margin, top up the AMM fund below its stress target, update the
        mark price and k* (``_rebalance``; nothing outside NORMAL)."""
        if txn.st.status is not Status.NORMAL:
            return
        if (
            self.compiled_kernels
            and kernels.BUDGET.compiled(_REBALANCE_SAVING_US)
            and self._compiled_rebalance(txn)
        ):
            return
        self._equalise_amm_margin(txn)
        self._rebalance_to_target(txn)
        # The mark update changes none of k*'s inputs: its mid price used the same k*.
        txn.st.k_star = self._update_mark_price(txn)

    def _compiled_rebalance(self, txn: _Txn) -> bool:
        """:meth:`_rebalance` by ``kernel.rebalance`` (the same floats); False, with nothing
        changed, where the Python rebalance must run (it raises, or records an EMERGENCY)."""
        from perpsim.engine.venues.d8x import kernel  # numba, loaded on first use only

        st = txn.st
        g = st.governance
        kept = self._kernel_governance
        if kept is None or kept[0] is not g:
            kept = (g, self._kernel_inputs_of(st, Margin(), 0.0, 0.0))
            self._kernel_governance = kept
        amm = self._row_of(txn, 0)
        code, cash, lp, amf, dfc, target, mid, ks = kernel.rebalance(
            _COLLATERAL_INT[self.collateral],
            st.s2,
            st.s3,
            st.amm_fund_cash,
            st.lp_cash,
            st.default_fund_cash,
            st.default_fund_target,
            st.amm_fund_target,
            st.trader_exposure_ema,
            st.k_star,
            amm.position,
            amm.locked_in,
            amm.cash,
            amm.funding_start,
            self._uaf_now(st),
            kept[1],
        )
        if code != kernel.OK:
            return False
        amm.cash = float(cash)
        st.lp_cash, st.amm_fund_cash = float(lp), float(amf)
        st.default_fund_cash, st.amm_fund_target = float(dfc), float(target)
        # _update_mark_price from its mid price, then k* (what it returns).
        st.premium_rate = mid / st.s2 - 1.0
        if st.mark_time != st.now:
            st.mark_time = st.now
            st.mark_premium_rate = st.mark_premium_ema
        st.mark_premium_ema = f.ema(st.mark_premium_ema, st.premium_rate, g.mark_price_ema_lambda)
        st.k_star = float(ks)
        return True

    def _equalise_amm_margin(self, txn: _Txn) -> None:
        st = txn.st
        amm = txn.rows.get(0)
        if amm is None:
            amm = self._row_of(txn, 0)
        # _margin_balance minus _margin_requirement (initial), both at the index, with the
        # prices read once: the same operations (a rebalance runs in NORMAL: S2 and S3 are the
        # state's own).
        mb, im = self._balance_and_im_at(st, amm, st.s2, st.s2, st.s3)
        excess = mb - im
        if excess > 0.0:
            amm.cash -= excess
            to_lp, to_amm = f.split_amount(st.lp_cash, st.amm_fund_cash, excess, False)
            st.lp_cash += to_lp
            # The fund is filled (or trimmed) to its target; the rest goes to the DF.
            contribution = min(st.amm_fund_target - st.amm_fund_cash, to_amm)
            st.amm_fund_cash += contribution
            st.default_fund_cash += to_amm - contribution
        elif excess < 0.0:
            need = -excess
            cap = f.MAX_DRAW_FROM_POOLS * (st.lp_cash + st.amm_fund_cash)
            from_df = 0.0
            if need > cap:
                from_df = need - cap
                need = cap
                if from_df > st.default_fund_cash:
                    st.emergency_shortfall += from_df - st.default_fund_cash
                    from_df = st.default_fund_cash
                    self._set_emergency(txn)
                st.default_fund_cash -= from_df
                txn.df_cover += from_df
            to_lp, to_amm = f.split_amount(st.lp_cash, st.amm_fund_cash, need, True)
            st.amm_fund_cash -= to_amm
            st.lp_cash -= to_lp
            amm.cash += need + from_df

    def _rebalance_to_target(self, txn: _Txn) -> None:
        st = txn.st
        target, stress = self._update_amm_fund_target(txn)
        if math.isnan(stress) or target != stress:
            return
        gap = stress - st.amm_fund_cash
        from_df = min(gap, st.default_fund_cash * f.CEIL_AMT_FUND_WITHDRAWAL)
        gap -= from_df
        from_lp = min(gap, st.lp_cash * f.CEIL_AMT_FUND_WITHDRAWAL)
        from_lp = max(from_lp, 0.0)
        st.lp_cash -= from_lp
        st.default_fund_cash -= from_df
        st.amm_fund_cash += from_lp + from_df

    def _update_mark_price(self, txn: _Txn) -> float:
        """Mid premium r_mid = p(0)/S2 − 1; a new block takes the last EMA as the mark premium,
        then r̄ ← λ r̄ + (1 − λ) r_mid (``_updateMarkPrice``).

        Returns:
            The k* of the state (the one the mid price used; what :meth:`_update_k_star` sets).
        """
        st = txn.st
        mid, ks = self._price_ks(txn, 0.0)
        st.premium_rate = mid / st.s2 - 1.0
        if st.mark_time != st.now:
            st.mark_time = st.now
            st.mark_premium_rate = st.mark_premium_ema
        st.mark_premium_ema = f.ema(
            st.mark_premium_ema, st.premium_rate, st.governance.mark_price_ema_lambda
        )
        return ks

    def _update_k_star(self, txn: _Txn) -> None:
        st, g = txn.st, txn.st.governance
        k2, _ = self._k2_l1(txn)
        _, m2, m3 = self._capital(txn)
        st.k_star = f.k_star(k2, m2, m3, st.s2, st.s3, g.sigma2, g.sigma3, g.rho23)

    def _update_funding_rate(self, txn: _Txn) -> None:
        st, g = txn.st, txn.st.governance
        if st.status is not Status.NORMAL:
            return
        amm = txn.rows.get(0)
        k2 = -(self._row_of(txn, 0) if amm is None else amm).position
        st.funding_rate = f.funding_rate(
            st.mark_premium_rate,
            k2,
            g.funding_rate_clamp,
            g.initial_margin_rate_alpha,
            g.maintenance_margin_rate_alpha,
        )
        st.last_funding_time = st.now

    def _active_accounts(self, txn: _Txn) -> int:
        """Traders holding a position, with the working copy's rows in place of the stored."""
        # The stored positions of the live rows (every other row is flat), then each row the
        # action touched counted as it is now instead of as it was stored.
        count = int(np.count_nonzero(self._pos[self.trader_live_rows()]))
        n = len(self.names)
        for row, m in txn.rows.items():
            if row == 0:
                continue
            if row < n and self._pos.item(row) != 0.0:
                count -= 1
            if m.position != 0.0:
                count += 1
        return count

    def _default_fund_target(self, txn: _Txn) -> float:
        st, g = txn.st, txn.st.governance
        return f.default_fund_target(
            self.collateral,
            st.amm_exposure_ema_short,
            st.amm_exposure_ema_long,
            st.trader_exposure_ema,
            f.cover_n(self._active_accounts(txn), g.cover_n_rate),
            g.stress_return_s2,
            g.stress_return_s3,
            st.s2,
            st.s3,
        )

    def _update_default_fund_target(self, txn: _Txn) -> None:
        st = txn.st
        if st.status is not Status.NORMAL:
            return
        if st.now - st.default_fund_target_time > st.governance.default_fund_target_interval:
            st.default_fund_target = self._default_fund_target(txn)
            st.default_fund_target_time = st.now

    def _set_emergency(self, txn: _Txn) -> None:
        """The DF cannot pay a shortfall: EMERGENCY at the index and mark premium in force."""
        st = txn.st
        if st.status is not Status.NORMAL:
            return
        st.status = Status.EMERGENCY
        st.settlement_s2, st.settlement_s3 = st.s2, st.s3
        st.settlement_premium = st.mark_premium_rate
        txn.events.append(
            (
                "emergency",
                {
                    "price": st.s2,
                    "amount": st.emergency_shortfall,
                    "account": AMM,
                },
            )
        )

    # -- booking -------------------------------------------------------------------------------

    def _settle_funding(self, st: PoolState, m: Margin) -> None:
        uaf = self._uaf_now(st)
        m.cash -= m.position * (uaf - m.funding_start)
        m.funding_start = uaf

    def _book(self, txn: _Txn, trader: Margin, k: float, price: float, is_close: bool) -> float:
        """Book a trade of ``k`` at ``price`` against the AMM (``_executeTrade``).

        The trader pays the premium k (price − S2) in cash and locks in k S2; a closing trade
        also realises its P&L at the average locked-in price. Funding is settled on both sides.
        A trader left with negative cash (a late liquidation) owes the rest to the AMM margin.

        Returns:
            What the trader could not pay and the AMM margin absorbed (collateral, ≥ 0).
        """
        st = txn.st
        s2, s3 = self._index_prices(st)
        q2c = 1.0 / f.collateral_to_quote(self.collateral, s2, s3)
        delta_cash = -k * (price - s2) * q2c
        delta_locked = k * s2
        if is_close:
            avg = abs(trader.locked_in / trader.position)
            pnl = avg * k - delta_locked
            delta_locked += pnl
            delta_cash += pnl * q2c
        amm = txn.rows.get(0)
        if amm is None:
            amm = self._row_of(txn, 0)
        # Funding settled (what _settle_funding does), then the trade, the AMM's side (sign −1)
        # first: the loop over both sides, unrolled.
        uaf = self._uaf_now(st)
        amm.cash -= amm.position * (uaf - amm.funding_start)
        amm.funding_start = uaf
        amm.position += -1.0 * k
        amm.cash += -1.0 * delta_cash
        amm.locked_in += -1.0 * delta_locked
        trader.cash -= trader.position * (uaf - trader.funding_start)
        trader.funding_start = uaf
        trader.position += 1.0 * k
        trader.cash += 1.0 * delta_cash
        trader.locked_in += 1.0 * delta_locked
        if abs(trader.position) < st.governance.lot_size * 1e-9:
            # A closed position keeps no float residue: the AMM takes it, so both still net.
            amm.position += trader.position
            amm.locked_in += trader.locked_in
            trader.position = trader.locked_in = 0.0
        absorbed = 0.0
        if trader.cash < 0.0:
            absorbed = -trader.cash
            amm.cash -= absorbed
            trader.cash = 0.0
        if not is_close:
            self._update_exposure_emas(txn, trader.position)
        return absorbed

    def _update_exposure_emas(self, txn: _Txn, trader_position: float) -> None:
        st, g = txn.st, txn.st.governance
        amm = txn.rows.get(0)
        k2 = -(self._row_of(txn, 0) if amm is None else amm).position
        if k2 > 0.0:
            st.amm_exposure_ema_long = f.exposure_ema(
                st.amm_exposure_ema_long,
                k2,
                g.df_lambda_slow,
                g.df_lambda_fast,
                g.minimal_amm_exposure_ema,
            )
        else:
            st.amm_exposure_ema_short = f.exposure_ema(
                st.amm_exposure_ema_short,
                k2,
                g.df_lambda_slow,
                g.df_lambda_fast,
                g.minimal_amm_exposure_ema,
            )
        st.trader_exposure_ema = f.exposure_ema(
            st.trader_exposure_ema,
            abs(trader_position),
            g.df_lambda_slow,
            g.df_lambda_fast,
            g.minimal_trader_exposure_ema,
        )

    def _fees(self, txn: _Txn, trader: Margin, k: float, opened: bool) -> tuple[float, float]:
        """(treasury fee, LP fee) of a trade of ``k`` (``_calculateFees``): an opening trade
        must afford them from its available margin; a closing one pays at most its balance."""
        st, g = txn.st, txn.st.governance
        s2, s3 = self._index_prices(st)
        notional = abs(k) * f.base_to_collateral(self.collateral, s2, s2, s3)
        treasury, lp = f.trade_fees(notional, g.treasury_fee_rate, g.lp_fee_rate)
        if opened:
            mb, im = self._balance_and_im(st, trader)
            avail = mb - im
            if treasury + lp > avail:
                raise UnsafeError(
                    f"margin not enough: fees {treasury + lp:.10g} exceed the available margin"
                    f" {avail:.10g} after the trade"
                )
            return treasury, lp
        avail = self._margin_balance(st, trader)
        if avail <= 0.0:
            return 0.0, 0.0
        total = treasury + lp
        if total > avail:
            treasury *= avail / total
            lp = avail - treasury
        return treasury, lp

    def _distribute_fees(self, txn: _Txn, trader: Margin, treasury: float, lp: float) -> None:
        """Trader pays; the treasury fee goes where :func:`fee_contributions` says, the LP fee
        to LP cash (to the AMM fund while there is no LP cash)."""
        st = txn.st
        trader.cash -= treasury + lp
        to_amm, to_df = f.fee_contributions(
            st.amm_fund_cash,
            st.amm_fund_target,
            st.default_fund_cash,
            st.default_fund_target,
            treasury,
        )
        if st.lp_cash != 0.0:
            st.lp_cash += lp
        else:
            to_amm += lp
        st.default_fund_cash += to_df
        st.amm_fund_cash += to_amm
        txn.fees += treasury + lp

    # -- the actions ---------------------------------------------------------------------------

    def _require(self, op: str, *allowed: Status) -> None:
        status = self.state.status
        if status not in allowed:
            names = " or ".join(s.value for s in allowed)
            raise WrongStatusError(f"{op} requires {names}; the pool is {status.value}")

    def set_time(self, now: int) -> None:
        """Advance the clock (never backwards)."""
        t = check_time(now)
        if t < self.state.now:
            raise BadAmountError(f"time cannot go back: {t} < current time {self.state.now}")
        self.state.now = t

    def fund_amm(self, amount: float) -> None:
        """Governance adds collateral to the AMM fund (``addAMMLiquidityToPerpetual``)."""
        self._require("fund_amm", Status.NORMAL)
        amt = check_positive(amount, "AMM fund amount")
        txn = self._begin()
        txn.st.amm_fund_cash += amt
        txn.st.deposited += amt
        txn.st.pool_contributed += amt
        self._update_k_star(txn)
        txn.events.append(("fund_amm", {"amount": amt}))
        self._commit(txn, None)

    def fund_default_fund(self, amount: float) -> None:
        """Add collateral to the default fund (from outside the pool)."""
        self._require("fund_default_fund", Status.NORMAL, Status.EMERGENCY)
        amt = check_positive(amount, "default fund amount")
        txn = self._begin()
        txn.st.default_fund_cash += amt
        txn.st.deposited += amt
        txn.st.pool_contributed += amt
        txn.events.append(("fund_default_fund", {"amount": amt}))
        self._commit(txn, None)

    def update(self, caller: str = "keeper") -> None:
        """A keeper's call: the before-hook (funding, oracle, rebalance) and the after-steps."""
        self._require("update", Status.NORMAL)

        def body(txn: _Txn) -> None:
            txn.events.append(
                ("update_index", {"account": caller, "price": txn.st.s2, "amount": 0.0})
            )

        self._run(Action.UPDATE, body)

    def deposit(self, account: str, amount: float) -> None:
        """A trader deposits collateral (creates the account)."""
        self._require("deposit", Status.NORMAL, Status.EMERGENCY)
        amt = check_positive(amount, "deposit amount")
        if not isinstance(account, str) or not account or account == AMM:
            raise InvalidOperationError(f"cannot deposit into account {account!r}")

        def body(txn: _Txn) -> None:
            row = self.index.get(account)
            if row is None:
                row = len(self.names)
                txn.new_names.append(account)
            m = self._row_of(txn, row)
            m.cash += amt
            txn.st.deposited += amt
            txn.events.append(("deposit", {"account": account, "amount": amt}))

        self._run(Action.TRADER_DEPOSIT, body)

    def withdrawable(self, row: int, st: PoolState | None = None, m: Margin | None = None) -> float:
        """What an account may withdraw: its margin above initial margin, at most its cash."""
        st = self.view_state() if st is None else st
        m = self.margin(row) if m is None else m
        if st.status is not Status.NORMAL:
            return 0.0
        mb = self._margin_balance(st, m)
        im = self._margin_requirement(st, m, initial=True) if m.position != 0.0 else 0.0
        cash = m.cash - m.position * (self._uaf_now(st) - m.funding_start)
        return max(min(mb - im, cash), 0.0)

    def withdraw(self, account: str, amount: float) -> None:
        """A trader withdraws collateral, staying initial-margin safe."""
        self._require("withdraw", Status.NORMAL)
        amt = check_positive(amount, "withdraw amount")
        row = self._trader_row(account)

        def body(txn: _Txn) -> None:
            m = self._row_of(txn, row)
            limit = self.withdrawable(row, txn.st, m)
            if amt > limit:
                raise InsufficientBalanceError(f"{account} can withdraw at most {limit:.10g}")
            self._settle_funding(txn.st, m)
            m.cash -= amt
            txn.st.withdrawn += amt
            txn.events.append(("withdraw", {"account": self.names[row], "amount": amt}))

        self._run(Action.TRADER_WITHDRAW, body)

    def _check_trade(self, txn: _Txn, trader: Margin, k: float) -> bool:
        """Validate a trade's size against the position; return whether it is closing."""
        lot = txn.st.governance.lot_size
        new = trader.position + k
        if abs(new) < lot * 0.5:
            new = 0.0
        is_close = not (new != 0.0 and (new > 0.0) == (k > 0.0))
        if new != 0.0 and abs(new) < MIN_LOTS_PER_POSITION * lot * (1.0 - 1e-9):
            raise BadAmountError(
                f"position too small: {new:.10g} would be below {MIN_LOTS_PER_POSITION:g} lots"
            )
        return is_close

    def _before_trade(self, txn: _Txn) -> _Txn:
        """Run the trade's before-hook on ``txn``, traced as :meth:`_run_trade_like` traces it."""
        steps, trace = self._steps, txn.trace
        for step in HOOKS[Action.TRADE].before:
            trace.append(_BEFORE[step])
            steps[step](txn)
        return txn

    def _amm_row(self) -> _Row:
        """The AMM's stored row (what the before-hook's rebalance starts from)."""
        return (self._pos.item(0), self._locked.item(0), self._cash.item(0), self._fstart.item(0))

    def _prepared_valid(self, c: _Prepared, st: PoolState) -> bool:
        """Whether the before-hook kept in ``c`` would run the same on ``st`` now: the same state
        object with the same fields, the same index (compared unvalidated: a value equal to the
        validated one is valid), hence the same S3 source input, and the same AMM row."""
        return (
            c[0] is st
            and c[2] == self.oracle.index(st.now)[0]
            and c[3] == self.collateral_price.price(c[2])
            and c[4] == self._amm_row()
            and c[1] == st.__dict__
        )

    def _prepared_trade(self) -> _Txn:
        """A working copy after the trade's before-hook, kept for the next quote or trade while
        everything the hook read is unchanged (never written to by a quote or a probe)."""
        st = self.state
        if st.status is not Status.NORMAL:
            return self._before_trade(self._begin())
        c = self._prepared
        if c is not None and self._prepared_valid(c, st):
            return c[5]
        txn = self._before_trade(self._begin())
        # The index and S3 the hook read: its oracle step (in NORMAL, as here) stored them,
        # validated, and nothing after it in the hook writes them.
        row = self._amm_row()
        self._prepared = (st, dict(st.__dict__), txn.st.s2, txn.st.s3, row, txn)
        return txn

    def _take_prepared(self) -> _Txn | None:
        """The kept working copy for a trade to book on, if still valid (it is dropped either
        way: the trade writes to it)."""
        c = self._prepared
        if c is None:
            return None
        self._prepared = None
        st = self.state
        if st.status is not Status.NORMAL or not self._prepared_valid(c, st):
            return None
        return c[5]

    def quote(self, k: float) -> tuple[float, float, float]:
        """(price, mid price, fees) a trade of ``k`` would get now, after the before-hook."""
        txn = self._prepared_trade()
        st = txn.st
        s2, s3 = self._index_prices(st)
        notional = abs(k) * f.base_to_collateral(self.collateral, s2, s2, s3)
        g = st.governance
        treasury, lp = f.trade_fees(notional, g.treasury_fee_rate, g.lp_fee_rate)
        price_ks = self._price_ks
        return price_ks(txn, k)[0], price_ks(txn, 0.0)[0], treasury + lp

    def trade(
        self, account: str | int, k: float, limit_price: float | None = None
    ) -> tuple[float, float]:
        """A trader trades signed ``k`` (> 0 buys) against the AMM.

        Returns:
            (price, fees paid).
        """
        if self.state.status is not Status.NORMAL:
            self._require("trade", Status.NORMAL)
        if isinstance(k, bool) or not isinstance(k, (int, float, np.integer, np.floating)):
            raise BadAmountError(f"trade size must be a number, got {k!r}")
        if not math.isfinite(k) or k == 0.0:
            raise BadAmountError(f"trade size must be finite and non-zero, got {k!r}")
        k = float(k)
        check_lot(abs(k), self.state.governance.lot_size, "trade size")
        limit = None
        if limit_price is not None:
            limit = check_price(limit_price, "limit price")
        row = self._trader_row(account, "trader")
        # The trade's hook, as _run_trade_like runs it, written out: no callbacks to build for
        # every trade. A quote of this state may have run the before-hook already.
        txn = self._take_prepared()
        if txn is None:
            txn = self._before_trade(self._begin())
        trace = txn.trace
        trace.append(_ACTION)
        m = self._row_of(txn, row)
        is_close = self._check_trade(txn, m, k)
        price = self._price_ks(txn, k)[0]
        if limit is not None and (price > limit if k > 0.0 else price < limit):
            raise PriceLimitError(f"price {price:.10g} is worse than the limit {limit:.10g}")
        self._book(txn, m, k, price, is_close)
        opened = not is_close
        steps = self._steps
        for step in HOOKS[Action.TRADE].after:
            trace.append(_AFTER[step])
            if step is Step.DISTRIBUTE_FEES:
                treasury, lp = self._fees(txn, m, k, opened)
                self._distribute_fees(txn, m, treasury, lp)
            else:
                steps[step](txn)
        mb, im = self._balance_and_im(txn.st, m)
        if opened and mb < im:
            raise UnsafeError(
                f"{self.names[row]} would not be initial-margin safe (margin balance {mb:.10g})"
            )
        if not opened and m.position != 0.0 and mb < 0.0:
            raise UnsafeError(f"{self.names[row]} would be left with a negative margin balance")
        txn.events.append(
            (
                "buy" if k > 0.0 else "sell",
                {
                    "account": self.names[row],
                    "counterparty": AMM,
                    "side": "long" if k > 0.0 else "short",
                    "amount": abs(k),
                    "price": price,
                    "fee": txn.fees,
                },
            )
        )
        self._commit(txn, Action.TRADE)
        return price, txn.fees

    def _run_trade_like(
        self,
        txn: _Txn,
        action: Action,
        body: Callable[[_Txn], None],
        fees: Callable[[_Txn], None],
        *,
        before: bool = True,
    ) -> None:
        """The hook of a trade or liquidation: its fee step books the action's fees
        (``before=False``: the before-steps have already run on ``txn``)."""
        hook = HOOKS[action]
        steps, trace = self._steps, txn.trace
        for step in hook.before if before else ():
            trace.append(_BEFORE[step])
            steps[step](txn)
        trace.append(_ACTION)
        body(txn)
        for step in hook.after:
            trace.append(_AFTER[step])
            if step is Step.DISTRIBUTE_FEES:
                fees(txn)
            else:
                steps[step](txn)

    def liquidation_amount(self, row: int, st: PoolState | None = None) -> float:
        """The signed position amount a liquidation of ``row`` takes now (0 if safe)."""
        st = self.view_state() if st is None else st
        m = self.margin(row)
        g = st.governance
        if m.position == 0.0:
            return 0.0
        mb = self._margin_balance(st, m)
        if mb >= self._margin_requirement(st, m, initial=False):
            return 0.0
        s2, s3, mark = self._prices(st)
        fee_rate = g.liquidation_penalty_rate + g.treasury_fee_rate + g.lp_fee_rate
        c2q = f.collateral_to_quote(self.collateral, s2, s3)
        return f.liquidation_amount(
            mb,
            m.position,
            s2,
            mark,
            c2q,
            g.initial_margin_rate_cap,
            fee_rate,
            g.lot_size,
            MIN_LOTS_PER_POSITION,
        )

    def liquidate(
        self, liquidator: str | int, account: str | int, max_amount: float
    ) -> dict[str, float]:
        """Liquidate an account below maintenance margin (D8X's ``liquidateByAMM``).

        The AMM takes the position at the mark price; the amount is the pool's own, as in the
        contract, whose liquidation takes no amount: what restores the initial margin, grown to
        the lot, or the whole position when the balance cannot pay the fees or fewer than ten
        lots would remain. ``max_amount`` is validated (positive, on the lot) but does not bound
        it: the liquidator takes no position here, so its capacity is not the limit, and a cut
        below the pool's amount would leave a bankrupt position that could never be liquidated.
        The penalty goes half to the liquidator's account, half to the DF.

        Returns:
            The liquidation's amounts (see :class:`~perpsim.engine.venue.LiquidationResult`).
        """
        self._require("liquidate", Status.NORMAL)
        g = self.state.governance
        check_lot(
            check_positive(max_amount, "max liquidation amount"),
            g.lot_size,
            "max liquidation amount",
        )
        l_row = self._trader_row(liquidator, "liquidator")
        v_row = self._trader_row(account, "liquidated account")
        if l_row == v_row:
            raise InvalidOperationError("an account cannot liquidate itself")
        out: dict[str, float] = {}

        def body(txn: _Txn) -> None:
            st = txn.st
            m = self._row_of(txn, v_row)
            if m.position == 0.0 or self._margin_balance(st, m) >= self._margin_requirement(
                st, m, initial=False
            ):
                raise InvalidOperationError(
                    f"{self.names[v_row]} is maintenance-margin safe and cannot be liquidated"
                )
            size = min(abs(self._liquidation_amount_in(txn, m)), abs(m.position))
            k = -size if m.position > 0.0 else size
            s2, s3, mark = self._prices(st)
            side = "long" if m.position > 0.0 else "short"
            df_cover_before = txn.df_cover
            owed = self._book(txn, m, k, mark, True)
            remaining = max(
                self._margin_balance(st, m)
                - (self._margin_requirement(st, m, initial=False) if m.position else 0.0),
                0.0,
            )
            notional = size * f.base_to_collateral(self.collateral, s2, s2, s3)
            penalty = min(notional * g.liquidation_penalty_rate, remaining)
            m.cash -= penalty
            half = 0.5 * penalty
            lm = self._row_of(txn, l_row)
            lm.cash += half
            st.default_fund_cash += half
            out.update(
                price=mark,
                amount=size,
                penalty_to_liquidator=half,
                penalty_to_fund=penalty - half,
                loss=owed,
                remaining=remaining - penalty,
                df_cover_before=df_cover_before,
                side=1.0 if side == "long" else -1.0,
            )

        def fees(txn: _Txn) -> None:
            if out["remaining"] > 0.0:
                m = self._row_of(txn, v_row)
                treasury, lp = self._fees(txn, m, out["amount"], False)
                self._distribute_fees(txn, m, treasury, lp)

        txn = self._begin()
        self._run_trade_like(txn, Action.LIQUIDATE, body, fees)
        m = self._row_of(txn, v_row)
        if m.position != 0.0 and self._margin_balance(txn.st, m) < 0.0:
            raise UnsafeError(f"{self.names[v_row]} would be left with a negative balance")
        lm = self._row_of(txn, l_row)
        if lm.cash < 0.0:
            raise InsufficientBalanceError(f"liquidator {self.names[l_row]} has negative cash")
        st = txn.st
        # The DF pays a liquidation's loss only when the AMM margin's shortfall after it is more
        # than LP cash and the AMM fund may cover; its stress top-ups of the AMM fund in the same
        # rebalance move money inside the pool and are not counted.
        df_paid = min(out["loss"], txn.df_cover - out["df_cover_before"])
        out["insurance_fund_paid"] = df_paid
        # What the DF could not pay is reported here; it becomes bad debt at settlement.
        out["bad_debt"] = st.emergency_shortfall - self.state.emergency_shortfall
        txn.events.append(
            (
                "liquidate",
                {
                    "account": self.names[v_row],
                    "counterparty": self.names[l_row],
                    "side": "long" if out["side"] > 0 else "short",
                    "amount": out["amount"],
                    "price": out["price"],
                    "penalty": out["penalty_to_liquidator"],
                    "penalty_fund": out["penalty_to_fund"],
                    "loss": out["loss"],
                    "insurance_fund_paid": df_paid,
                    "social_loss": 0.0,
                    "bad_debt": out["bad_debt"],
                },
            )
        )
        self._commit(txn, Action.LIQUIDATE)
        return out

    def _liquidation_amount_in(self, txn: _Txn, m: Margin) -> float:
        st, g = txn.st, txn.st.governance
        s2, s3, mark = self._prices(st)
        fee_rate = g.liquidation_penalty_rate + g.treasury_fee_rate + g.lp_fee_rate
        return f.liquidation_amount(
            self._margin_balance(st, m),
            m.position,
            s2,
            mark,
            f.collateral_to_quote(self.collateral, s2, s3),
            g.initial_margin_rate_cap,
            fee_rate,
            g.lot_size,
            MIN_LOTS_PER_POSITION,
        )

    def add_liquidity(self, account: str, amount: float) -> float:
        """An LP moves ``amount`` of its margin cash into LP cash; returns the shares minted."""
        self._require("add_liquidity", Status.NORMAL)
        amt = check_positive(amount, "liquidity amount")
        row = self._trader_row(account, "liquidity provider")
        out: dict[str, float] = {}

        def body(txn: _Txn) -> None:
            st = txn.st
            m = self._row_of(txn, row)
            spare = self.withdrawable(row, st, m)
            if amt > spare:
                raise InsufficientBalanceError(
                    f"{self.names[row]} can move at most {spare:.10g} into the pool"
                )
            if st.share_supply > 0.0 and st.lp_cash <= 0.0:
                raise InvalidOperationError("LP cash is empty: shares cannot be priced")
            minted = f.shares_to_mint(amt, st.share_supply, st.lp_cash)
            self._settle_funding(st, m)
            m.cash -= amt
            st.lp_cash += amt
            st.pool_contributed += amt
            st.share_supply += minted
            shares = dict(self.shares)
            shares[self.names[row]] = shares.get(self.names[row], 0.0) + minted
            txn.shares = shares
            out["shares"] = minted
            txn.events.append(
                (
                    "add_liquidity",
                    {"account": self.names[row], "collateral": amt, "shares": minted},
                )
            )

        self._run(Action.LP_DEPOSIT, body)
        return out["shares"]

    def remove_liquidity(self, account: str, shares: float) -> float:
        """An LP burns ``shares`` for their part of LP cash (into its margin cash)."""
        self._require("remove_liquidity", Status.NORMAL)
        sh = check_positive(shares, "shares")
        row = self._trader_row(account, "liquidity provider")
        name = self.names[row]
        held = self.shares.get(name, 0.0)
        if sh > held * (1.0 + SHARE_RTOL):
            raise InsufficientBalanceError(f"{name} holds {held:.10g} shares, not {sh:.10g}")
        sh = min(sh, held)
        out: dict[str, float] = {}

        def body(txn: _Txn) -> None:
            st = txn.st
            payout = f.tokens_to_return(sh, st.share_supply, st.lp_cash)
            if payout <= 0.0:
                raise InsufficientBalanceError("LP cash is empty: nothing to pay out")
            m = self._row_of(txn, row)
            m.cash += payout
            st.lp_cash -= payout
            st.pool_contributed -= payout
            st.share_supply -= sh
            shares_now = dict(self.shares)
            left = held - sh
            if left > held * SHARE_RTOL:
                shares_now[name] = left
            else:
                del shares_now[name]
            if not shares_now:
                st.share_supply = 0.0
            txn.shares = shares_now
            out["payout"] = payout
            txn.events.append(
                ("remove_liquidity", {"account": name, "shares": sh, "collateral": payout})
            )

        self._run(Action.LP_WITHDRAW, body)
        return out["payout"]

    # -- settlement ----------------------------------------------------------------------------

    def begin_global_settlement(self, price: float) -> None:
        """The admin stops the pool at ``price`` (NORMAL or EMERGENCY → EMERGENCY)."""
        self._require("begin_global_settlement", Status.NORMAL, Status.EMERGENCY)
        p = check_price(price, "settlement price")
        txn = self._begin()
        st = txn.st
        if st.status is Status.NORMAL:
            self._accrue_funding(txn)
            st.settlement_s3 = st.s3
        st.status = Status.EMERGENCY
        st.settlement_s2, st.settlement_premium = p, 0.0
        txn.events.append(("begin_global_settlement", {"price": p}))
        self._commit(txn, None)

    def global_settled(self) -> None:
        """EMERGENCY → SETTLED: the AMM's position closes at the settlement mark; its margin
        balance goes to the AMM fund, a deficit is taken from LP cash, then the DF, and what
        none can pay is bad debt."""
        self._require("global_settled", Status.EMERGENCY)
        txn = self._begin()
        st = txn.st
        amm = self._row_of(txn, 0)
        mb = self._margin_balance(st, amm)
        amm.position = amm.locked_in = amm.cash = 0.0
        amm.funding_start = st.unit_accumulated_funding
        st.amm_fund_cash += mb
        for pot in ("lp_cash", "default_fund_cash"):
            if st.amm_fund_cash < 0.0:
                take = min(getattr(st, pot), -st.amm_fund_cash)
                setattr(st, pot, getattr(st, pot) - take)
                st.amm_fund_cash += take
        if st.amm_fund_cash < 0.0:
            st.bad_debt += -st.amm_fund_cash
            st.amm_fund_cash = 0.0
        st.status = Status.SETTLED
        txn.events.append(("global_settled", {"price": f.mark_price(st.settlement_s2, 0.0)}))
        self._commit(txn, None)

    def settle_shares(self, holder: str, shares: float) -> float:
        """After settlement, redeem shares for their part of LP cash (into the margin cash)."""
        self._require("settle_shares", Status.SETTLED)
        sh = check_positive(shares, "shares")
        row = self._trader_row(holder, "share holder")
        held = self.shares.get(holder, 0.0)
        if sh > held * (1.0 + SHARE_RTOL):
            raise InsufficientBalanceError(f"{holder} holds {held:.10g} shares, not {sh:.10g}")
        sh = min(sh, held)
        txn = self._begin()
        st = txn.st
        supply = st.share_supply
        payout = st.lp_cash if sh >= supply * (1.0 - SHARE_RTOL) else st.lp_cash * sh / supply
        m = self._row_of(txn, row)
        m.cash += payout
        st.lp_cash -= payout
        st.pool_contributed -= payout
        st.share_supply -= sh
        shares_now = dict(self.shares)
        if held - sh > held * SHARE_RTOL:
            shares_now[holder] = held - sh
        else:
            del shares_now[holder]
        if not shares_now:
            st.share_supply = 0.0
        txn.shares = shares_now
        txn.events.append(("settle_share", {"account": holder, "shares": sh, "amount": payout}))
        self._commit(txn, None)
        return payout

    def settle(self, account: str | int) -> float:
        """After settlement, pay an account its margin balance at the settlement mark."""
        self._require("settle", Status.SETTLED)
        row = self._trader_row(account)
        txn = self._begin()
        st = txn.st
        m = self._row_of(txn, row)
        mb = self._margin_balance(st, m)
        payout = max(mb, 0.0)
        txn.rows[row] = Margin(funding_start=st.unit_accumulated_funding)
        st.withdrawn += payout
        st.written_off += payout - mb
        txn.events.append(
            (
                "settle",
                {"account": self.names[row], "amount": payout, "price": self._prices(st)[2]},
            )
        )
        self._commit(txn, None)
        return payout

    def set_governance(self, key: str, value: Any) -> None:
        """Change one parameter (validated); funding up to now accrues under the old rate."""
        new = self.state.governance.with_changes(**{key: value})
        _check_quanto_targets(self.collateral, new)
        txn = self._begin()
        self._accrue_funding(txn)
        txn.st.governance = new
        txn.events.append(("set_governance", {"key": key, "value": str(value)}))
        self._commit(txn, None)

    # -- vectorised views ----------------------------------------------------------------------

    def margin_balances(self, at_mark: bool = True, rows: IntArray | None = None) -> FloatArray:
        """Margin balance of every account (at the mark price), as of now.

        ``rows``: of those rows only, in their order (each element the same float as the whole
        array's: the same operations, element by element).
        """
        st = self.view_state()
        s2, s3, mark = self._prices(st)
        price = mark if at_mark else s2
        b2c = f.base_to_collateral(self.collateral, price, s2, s3)
        c2q = f.collateral_to_quote(self.collateral, s2, s3)
        if rows is None:
            n = len(self.names)
            pos, cash0 = self._pos[:n], self._cash[:n]
            fstart, locked = self._fstart[:n], self._locked[:n]
        else:
            pos, cash0 = self._pos[rows], self._cash[rows]
            fstart, locked = self._fstart[rows], self._locked[rows]
        cash = cash0 - pos * (self._uaf_now(st) - fstart)
        out: FloatArray = pos * b2c + cash - locked / c2q
        return out

    def amm_margin_balance(self) -> float:
        """The AMM's margin balance at the mark (:meth:`margin_balances` of row 0)."""
        return float(self.margin_balances(rows=_AMM_ROWS)[0])

    def amm_pnl(self) -> float:
        """The AMM's P&L so far: what the pool side (the AMM's margin account at the mark, the AMM
        fund, LP cash and the DF) holds now, less the collateral put into it (funding of the AMM
        fund and the DF, LP deposits, less LP withdrawals). Fees earned count; bad debt the pool
        absorbed is lost."""
        st = self.view_state()
        held = self.amm_margin_balance() + st.amm_fund_cash + st.lp_cash
        return held + st.default_fund_cash - st.pool_contributed

    def margin_requirements(self, initial: bool, rows: IntArray | None = None) -> FloatArray:
        """Initial or maintenance margin of every account (at the mark price), as of now
        (``rows``: of those rows only, as in :meth:`margin_balances`)."""
        st = self.view_state()
        g = st.governance
        s2, s3, mark = self._prices(st)
        b2c = f.base_to_collateral(self.collateral, mark, s2, s3)
        pos = self._pos[: len(self.names)] if rows is None else self._pos[rows]
        rate = np.minimum(
            g.initial_margin_rate_alpha + g.margin_rate_beta * np.abs(pos),
            g.initial_margin_rate_cap,
        )
        if not initial:
            rate = rate - (g.initial_margin_rate_alpha - g.maintenance_margin_rate_alpha)
        out: FloatArray = np.abs(pos * b2c) * rate
        return out

    def unsafe_rows(self) -> IntArray:
        """Rows below maintenance margin holding a position (the AMM's excluded), ascending.

        Only the traders' live rows are read: every other row holds no position.
        """
        rows = self.trader_live_rows()
        mbs = self.margin_balances(rows=rows)
        unsafe = (mbs < self.margin_requirements(False, rows=rows)) & (self._pos[rows] != 0.0)
        out: IntArray = rows[unsafe]
        return out

    def pricing(self) -> tuple[float, float, float, float]:
        """(K2, L1, M (pricing capital), S2) as of now."""
        txn = self.view_txn()
        k2, l1 = self._k2_l1(txn)
        return k2, l1, math.fsum(self._capital(txn)), txn.st.s2

    def mid_price(self) -> float:
        """p(0) as of now (without the before-hook's rebalance)."""
        # Pricing reads the state and the AMM's row and writes neither (only its memo): the
        # view state itself serves, without the working copy view_txn would make of it.
        view = self.view_state()
        kept = self._view_mid
        if kept is not None and kept[0] is view:
            return kept[1]
        price = self._price_ks(_Txn(view), 0.0)[0]
        # Outside NORMAL the view is the stored state itself, which the clock writes in place.
        if view.status is Status.NORMAL:
            self._view_mid = (view, price)
        return price

    def mid_default_probability(self) -> f.DefaultProbability:
        """Q(0) and its distance to default, as of now."""
        return self._pd(self.view_txn(), 0.0)

    def mid_after_trade(self, k: float) -> float:
        """The mid price after a trade of ``k`` by a well-funded trader (state unchanged)."""
        return self.trade_probe()(k)

    def trade_probe(self, next_trade: float = 0.0) -> Callable[[float], float]:
        """A function giving the price of ``next_trade`` (0: the mid price) after a trade of
        ``k`` by a well-funded trader: the whole trade (before-hook once, then booking, fees,
        rebalance) on working copies."""
        # The probe keeps its own copy: the kept working copy is the next trade's to write to.
        prepared = self._prepared_trade()
        base_st = _copy_state(prepared.st)
        base_rows = [
            (r, m.position, m.locked_in, m.cash, m.funding_start) for r, m in prepared.rows.items()
        ]

        def mid_after(k: float) -> float:
            rows = {r: Margin(p, locked, cash, fs) for r, p, locked, cash, fs in base_rows}
            txn = _Txn(_copy_state(base_st), rows)
            trader = Margin(cash=1e300)

            def body(t: _Txn) -> None:
                self._book(t, trader, k, self._price(t, k), False)

            def fees(t: _Txn) -> None:
                st = t.st
                s2, s3, _ = self._prices(st)
                notional = abs(k) * f.base_to_collateral(self.collateral, s2, s2, s3)
                g = st.governance
                treasury, lp = f.trade_fees(notional, g.treasury_fee_rate, g.lp_fee_rate)
                self._distribute_fees(t, trader, treasury, lp)

            self._run_trade_like(txn, Action.TRADE, body, fees, before=False)
            return self._price(txn, next_trade)

        if not self.compiled_kernels or base_st.status is not Status.NORMAL:
            return mid_after
        budget = kernels.BUDGET
        if not budget.paid():
            # Until the kernels have paid for their loading, this probe answers in Python
            # throughout (the same floats), each answer counted.
            def counted(k: float) -> float:
                budget.count(_PROBE_SAVING_US)
                return mid_after(k)

            return counted
        from perpsim.engine.venues.d8x import kernel  # numba, loaded by the first probe only

        inputs = self._kernel_inputs(prepared, base_st)
        probe, ok, after = kernel.probe_price, kernel.OK, float(next_trade)

        def compiled(k: float) -> float:
            code, price = probe(float(k), after, inputs)
            # Where the Python probe raises, the compiled one stops: the Python one raises.
            return float(price) if code == ok else mid_after(k)

        return compiled

    def _kernel_inputs(self, prepared: _Txn, st: PoolState) -> FloatArray:
        """The compiled probe's inputs (``kernel.INPUTS``) for a probe on ``prepared``, whose
        state (a copy) is ``st``, in NORMAL."""
        g = st.governance
        amm = prepared.rows.get(0)
        if amm is None:
            amm = self.margin(0)
        due = st.now - st.default_fund_target_time > g.default_fund_target_interval
        # What the default fund target's update reads of the accounts: the stored positions and
        # the working copy's rows, which no probe changes (its trader has no row).
        n = f.cover_n(self._active_accounts(prepared), g.cover_n_rate) if due else 0.0
        return self._kernel_inputs_of(st, amm, 1.0 if due else 0.0, n)

    def _kernel_inputs_of(self, st: PoolState, amm: Margin, due: float, n: float) -> FloatArray:
        """``kernel.INPUTS`` of the state ``st``, the AMM's row ``amm``, whether the default
        fund target is due and the cover n."""
        g = st.governance
        return np.array(
            [
                _COLLATERAL_CODE[self.collateral],
                st.s2,
                st.s3,
                st.amm_fund_cash,
                st.lp_cash,
                st.default_fund_cash,
                st.default_fund_target,
                due,
                self._uaf_now(st),
                st.k_star,
                st.trader_exposure_ema,
                st.amm_exposure_ema_short,
                st.amm_exposure_ema_long,
                amm.position,
                amm.locked_in,
                amm.cash,
                amm.funding_start,
                1.0 if g.pricing_capital == "pool" else 0.0,
                g.pricing_lp_share,
                g.minimal_spread,
                g.minimal_spread_in_stress,
                g.incentive_spread,
                g.sigma2,
                g.sigma3,
                g.rho23,
                g.lot_size,
                g.df_lambda_slow,
                g.df_lambda_fast,
                g.minimal_amm_exposure_ema,
                g.minimal_trader_exposure_ema,
                g.amm_target_dd_baseline,
                g.amm_target_dd_stress,
                g.amm_min_size,
                g.treasury_fee_rate,
                g.lp_fee_rate,
                g.initial_margin_rate_alpha,
                g.margin_rate_beta,
                g.initial_margin_rate_cap,
                g.stress_return_s2_down,
                g.stress_return_s2_up,
                g.stress_return_s3_down,
                g.stress_return_s3_up,
                n,
                g.mark_price_ema_lambda,
            ],
            dtype=np.float64,
        )

    def _checked_rows(self) -> IntArray:
        """The rows the check between full ones reads, ascending: the live rows, and the AMM's
        and each row written since the last check unless it holds exactly nothing."""
        rows = self.live_rows()
        written = self._written
        written.add(0)
        listed = self._listed
        pos, cash, locked, fstart = self._pos, self._cash, self._locked, self._fstart
        # A row that is not live was written empty: read one by one, it adds exactly nothing to
        # any total (margin balance 0, not among the non-zero entries) and is left out; one that
        # holds something after all (changed behind the commit's back) is read with the others.
        extra = sorted(
            r
            for r in written
            if not listed[r]
            and (
                pos.item(r) != 0.0
                or cash.item(r) != 0.0
                or locked.item(r) != 0.0
                or not math.isfinite(fstart.item(r))
            )
        )
        if extra:
            rows = np.insert(rows, np.searchsorted(rows, extra), extra)
        return rows

    def check_invariants(self, *, full: bool = True) -> list[str]:
        """Conservation across AMM margin, AMM fund, LP cash, DF and traders; signs; shares.

        Every total is taken the same way whatever rows it reads: the margin balances' as an
        exact sum (``math.fsum``: correctly rounded, whatever the order and however many zeros
        it adds), the cash and position sums (and the tolerances) over the non-zero entries in
        row order. ``full=True`` reads every row. ``full=False`` (the check between full ones,
        :meth:`D8XVenue.check_changed_invariants`) reads the live rows and looks at each row
        written since the last check (and the AMM's), and finds exactly the problems the full
        check would find now:

        - every write of a margin row goes through :meth:`_commit`, which records the row as
          written and keeps the live rows, so a row neither live nor written since the last
          check was empty at its last write and still is: its margin balance is exactly 0 and it
          adds nothing to any total (it is not even among the non-zero entries summed);
        - a row written since the last check that is not live is read on its own: if it holds
          exactly nothing it adds nothing either and is left out; if it holds something after
          all (changed behind the commit's back after its last write) it is read with the live
          rows;
        - the rules here are all whole-book rules on those totals (D8X has no rule of one
          account: a trader's cash may be negative) and on scalars of the state and the share
          balances, so each total, each tolerance and each problem is the full check's, bit for
          bit, at the tick it happens. A row changed behind the commit's back and not written
          since the last check is found by the next full check.
        """
        st = self.state
        if full:
            n = len(self.names)
            pos, cash = self._pos[:n], self._cash[:n]
            mbs = self.margin_balances()
        else:
            rows = self._checked_rows()
            pos, cash = self._pos[rows], self._cash[rows]
            mbs = self.margin_balances(rows=rows)
        self._written.clear()
        problems: list[str] = []
        held = math.fsum(mbs.tolist()) + (st.amm_fund_cash + st.lp_cash + st.default_fund_cash)
        expected = st.deposited - st.withdrawn + st.bad_debt + st.written_off
        # The non-zero entries only, in row order: the same array (so the same pairwise sum)
        # from every row as from the rows that can hold anything.
        abs_cash = np.abs(cash[cash != 0.0])
        scale = abs(st.deposited) + abs(st.withdrawn) + float(abs_cash.sum()) + 1.0
        if abs(held - expected) > 1e-9 * scale:
            problems.append(
                f"collateral not conserved: Σ margin balances + funds = {held:.12g}"
                f" but deposits − withdrawals + bad debt = {expected:.12g}"
            )
        if st.status is not Status.SETTLED:
            held_pos = pos[pos != 0.0]
            total = float(held_pos.sum())
            if abs(total) > 1e-9 * (float(np.abs(held_pos).sum()) + 1.0):
                problems.append(f"positions do not net to zero: {total:.12g}")
        for name in ("amm_fund_cash", "lp_cash", "default_fund_cash"):
            if getattr(st, name) < -1e-9 * scale:
                problems.append(f"negative {name} {getattr(st, name):.10g}")
        # A trader's cash may be negative (fees and penalties are paid out of a margin balance
        # that includes the position's P&L, as in the contracts); the AMM's absorbs what a
        # closed position cannot pay.
        if any(v <= 0.0 for v in self.shares.values()):
            problems.append("a share balance is not positive")
        supply = math.fsum(self.shares.values())
        if abs(supply - st.share_supply) > 1e-9 * (supply + 1.0):
            problems.append(f"share supply {st.share_supply!r} != Σ balances {supply!r}")
        return problems
