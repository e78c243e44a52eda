"""Predy's pool behind the venue contract: two products, ``future`` (the default) and ``squared``.

A :class:`PredyVenue` is the market seen as trading one product: quotes, trades, prices,
funding, open interest, rules and per-account position views are that product's; vaults,
deposits, LP tokens, funds and :meth:`PredyVenue.observe` are shared by both views.

Where the contract's words and Predy's differ:

- ``funding_rate()`` is the contract's 8-hour rate (FundingRate × 8 h / funding period); the
  daily rates are the columns ``predy_funding_rate_<product>``;
- a quote's ``price`` is the trade price before the trade fee (IndexPrice × (1 + FundingRate
  over the trade)), its ``fee`` the trade fee × |amount|; the fill price Predy records (and
  the replay shows) is their sum per contract;
- the mark and fair price are IndexPrice × (1 + FundingRate now); every vault and the pool are
  valued there;
- ``maintenance_margin`` is the vault's MinCollateral (Predy's only margin requirement; the
  rules' ``maintenance_margin_rate`` is its rate for a position in this product alone) and the
  rules' ``initial_margin_rate`` is twice it: a sizing rate for agents, not a rule of the pool;
- a liquidation closes the whole vault (``max_amount`` is only validated);
- Predy has no global settlement: the admin's powers freeze the pool at a settlement price,
  value every position at the indices there and pay vaults and LP tokens out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from perpsim.engine.core import kernels
from perpsim.engine.core.accounts import IntArray
from perpsim.engine.core.events import EventSink
from perpsim.engine.core.index import IndexOracle
from perpsim.engine.core.numbers import check_positive, floor_to_lot
from perpsim.engine.core.status import Status
from perpsim.engine.venue import (
    AccountRecord,
    AccountView,
    Fill,
    LiquidationResult,
    Quote,
    VenueRules,
    check_product,
)
from perpsim.engine.venues.predy import formulas as fx
from perpsim.engine.venues.predy.config import PredyParams
from perpsim.engine.venues.predy.formulas import FUTURE, PRODUCTS, SQUARED
from perpsim.engine.venues.predy.pool import POOL, HedgeResult, PredyMarket, VaultRow
from perpsim.errors import EngineError, InsufficientBalanceError, InvalidOperationError

__all__ = ["PREDY_COLUMNS", "PredyVenue"]

Pair = tuple[float, float]

#: Hours of the contract's funding rate.
CONTRACT_FUNDING_HOURS = 8

#: What the compiled liquidation price saves per account view, µs of CPU (the kernel is loaded
#: once the Python calls of a process would have saved its loading: ``kernels.BUDGET``).
_LIQUIDATION_PRICE_SAVING_US = 6.0

#: The design's own time-series columns, in order.
PREDY_COLUMNS: tuple[str, ...] = (
    "predy_funding_rate_future",
    "predy_funding_rate_squared",
    "predy_position_future",
    "predy_position_squared",
    "predy_locked_margin_future",
    "predy_locked_margin_squared",
    "predy_amount_liquidity",
    "predy_available_liquidity",
    "predy_utilization_ratio",
    "predy_variance",
    "predy_lp_token_price",
    "predy_hedge_underlying",
    "predy_hedge_target",
    "predy_hedge_usdc",
    "predy_net_delta",
    "predy_index_squared",
    "predy_protocol_fees",
    "predy_insolvent_loss",
)


class PredyVenue:
    """One product's view of a Predy market (see the module docstring).

    Args:
        market: the pool and vaults (shared by both views).
        product: ``future`` or ``squared``.
    """

    kind: ClassVar[str] = "predy"
    #: Whether account views compute the liquidation price compiled
    #: (:mod:`perpsim.engine.venues.predy.kernel`, once the process's calls have paid for its
    #: loading, :mod:`perpsim.engine.core.kernels`; false: the Python bisection, the same floats).
    compiled_liquidation_prices: ClassVar[bool] = True

    def __init__(self, market: PredyMarket, product: str = "future", *, _views: Any = None) -> None:
        check_product(PRODUCTS, product)
        self.market = market
        self.product_name = product
        self.i = PRODUCTS.index(product)
        self._views: dict[str, PredyVenue] = _views if _views is not None else {}
        self._views.setdefault(product, self)

    @classmethod
    def build(
        cls,
        params: PredyParams | None = None,
        oracle: IndexOracle | None = None,
        *,
        funding_formula: str = "seed",
        capacity: int = 64,
    ) -> PredyVenue:
        """A new, uninitialised market seen as trading the future."""
        return cls(PredyMarket(params, oracle, funding_formula=funding_formula, capacity=capacity))

    # -- products, time, status, rules ---------------------------------------------------------

    @property
    def products(self) -> tuple[str, ...]:
        """``("future", "squared")``."""
        return PRODUCTS

    def product(self, name: str) -> PredyVenue:
        """The view of product ``name`` (the same object for each name)."""
        check_product(PRODUCTS, name)
        view = self._views.get(name)
        if view is None:
            view = PredyVenue(self.market, name, _views=self._views)
        return view

    @property
    def now(self) -> int:
        """The market's clock."""
        return self.market.now

    def set_time(self, now: int) -> None:
        """Advance the clock (funding accrues lazily: at the next operation)."""
        self.market.set_time(now)

    @property
    def status(self) -> Status:
        """NORMAL, EMERGENCY or SETTLED."""
        return self.market.status

    @property
    def params(self) -> PredyParams:
        """The parameters in force."""
        return self.market.params

    @property
    def rules(self) -> VenueRules:
        """This product's rates: MinCollateral's rate for a position in it alone (the
        squared's 2α(1 + α)), twice it to size by, its trade fee per unit of index."""
        p = self.market.params
        a = p.vault_risk_param
        mm = a if self.i == FUTURE else a * (2.0 + 2.0 * a)
        return VenueRules(
            lot_size=p.lot_size,
            trading_lot_size=p.lot_size,
            initial_margin_rate=2.0 * mm,
            maintenance_margin_rate=mm,
            trade_fee_rate=p.trade_fee_rate * (self.i + 1),
            funding_dampener=0.0,
            keeper_prize=0.0,
        )

    def set_governance(self, key: str, value: Any) -> None:
        """Change one of Predy's parameters."""
        self.market.set_params(key, value)

    # -- collateral, trading, liquidity --------------------------------------------------------

    def deposit(self, account: str, amount: float) -> None:
        """Add USDC to the account's vault (creates it)."""
        self.market.deposit_margin(account, amount)

    def withdraw(self, account: str, amount: float) -> None:
        """Take USDC out of the vault (value − MinCollateral at most)."""
        self.market.withdraw_margin(account, amount)

    def _amounts(self, size: float) -> tuple[float, float]:
        return (size, 0.0) if self.i == FUTURE else (0.0, size)

    def quote(self, size: float) -> Quote:
        """The fill of a trade of signed ``size`` without changing state."""
        m = self.market
        fill = m.quote(self.i, size)
        fee = fill.trade_fee * abs(fill.amount)
        price = fill.trade_price - math.copysign(fill.trade_fee, fill.amount)
        fair = m.mark(self.i)  # fair_price(), without its two calls
        return Quote(fill.amount, price, fair, price / fair - 1.0, fee)

    def trade(self, account: str | int, size: float, limit_price: float | None = None) -> Fill:
        """Trade signed ``size`` of this product; ``limit_price`` bounds the price before fees."""
        s = size
        m = self.market
        i = self.i
        limit = None
        if limit_price is not None:
            lim = check_positive(limit_price, "limit price")
            # The contracts bound the fill price, fees included.
            fee = fx.trade_fee(i, fx.index_price(i, m.spot()), m.params.trade_fee_rate, True)
            limit = lim + fee if isinstance(s, (int, float)) and s > 0 else lim - fee
        if i == FUTURE:
            fills = m.trade(account, (s, 0.0), (limit, None))
        else:
            fills = m.trade(account, (0.0, s), (None, limit))
        f = fills[0]
        # The trade found the vault: a name is its own (a row is looked up).
        name = account if type(account) is str else m.vaults.names[m.vaults.row(account)]
        price = f.trade_price - math.copysign(f.trade_fee, f.amount)
        return Fill(name, f.amount, price, f.trade_fee * abs(f.amount))

    def size_for_price(self, target: float) -> float:
        """The trade after which this product's fair price is ``target`` (bisection on the
        pool's own post-trade funding rate).

        A Predy price stays near its index (the funding premium is at most a few tenths of a
        percent), so a target beyond what a vault may trade is answered with the largest trade
        toward it (``max_position_per_vault``, or less when the pool cannot lock the margin).
        """
        t = check_positive(target, "target price")
        fair = self.fair_price()
        if t == fair:
            return 0.0
        sign = 1.0 if t > fair else -1.0
        index = self.index_price()
        lot = self.params.lot_size

        def after(a: float) -> float | None:
            try:
                return index * (1.0 + self.market.post_trade_rate(self.i, sign * a))
            except EngineError:
                return None

        lo, hi = 0.0, float(self.params.max_position_per_vault)
        top = after(hi)
        if top is not None and (top - t) * sign < 0.0:
            return sign * floor_to_lot(hi, lot)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            got = after(mid)
            if got is None or (got - t) * sign > 0.0:
                hi = mid
            else:
                lo = mid
            if hi - lo < lot:
                break
        return sign * floor_to_lot(lo, lot) if lo >= lot else 0.0

    def add_liquidity(self, account: str, collateral: float) -> float:
        """Deposit USDC from the account's vault into the pool; the LP tokens minted (the pool
        must have been initialised, with its variance, by its first LP)."""
        return self.market.add_liquidity(account, collateral, from_vault=True)

    def remove_liquidity(self, account: str, shares: float) -> float:
        """Burn ``shares`` LP tokens; the USDC (at the LP token price) goes to the vault.

        Predy withdraws an amount of USDC; the amount worth ``shares`` is found by iterating
        amount = shares × LPTokenPrice(ΔL = −amount).
        """
        sh = check_positive(shares, "shares")
        m = self.market
        held = m.shares.get(account, 0.0)
        if held <= 0.0 or sh > held * (1.0 + 1e-12):
            raise InsufficientBalanceError(f"{account} holds {held:.10g} LP tokens, not {sh:.10g}")
        m._require("remove_liquidity", Status.NORMAL)
        amount = sh * m.lp_token_price(0.0)
        for _ in range(8):
            price = m.lp_token_price(-amount)
            new = sh * price
            if abs(new - amount) <= 1e-13 * abs(amount):
                break
            amount = new
        if amount <= 0.0:
            raise InvalidOperationError("the LP tokens are worth nothing")
        m.remove_liquidity(account, amount, to_vault=True)
        return amount

    def share_balance(self, account: str) -> float:
        """LP tokens held by ``account``."""
        return self.market.shares.get(account, 0.0)

    def share_price(self) -> float:
        """The LP token price (ΔL = 0); 0 without LP tokens."""
        return self.market.share_price()

    # -- prices and funding --------------------------------------------------------------------

    def index_price(self) -> float:
        """This product's index: S or S² / 10,000."""
        return fx.index_price(self.i, self.market.spot())

    def mark_price(self) -> float:
        """IndexPrice × (1 + FundingRate now)."""
        return self.market.mark(self.i)

    def fair_price(self) -> float:
        """The pool's price of an infinitesimal trade before fees (the mark)."""
        return self.mark_price()

    def daily_funding_rate(self) -> float:
        """Predy's FundingRate of this product now (per funding period)."""
        return self.market.current_rate(self.i)

    def funding_rate(self) -> float:
        """The contract's 8-hour rate: FundingRate × 8 h / funding period (> 0: longs pay)."""
        return (
            self.daily_funding_rate() * CONTRACT_FUNDING_HOURS * 3600 / self.params.funding_period
        )

    def accumulated_funding_per_contract(self) -> float:
        """amountFundingPaidPerPosition of this product, the pending accrual included."""
        return self.market.funding_now()[self.i]

    def open_interest(self) -> float:
        """Contracts of this product held long by vaults."""
        # The live vaults' column: the long positions in the same (row) order as the whole
        # column's, so the same sum, at the cost of the live vaults only.
        vaults = self.market.vaults
        col = vaults.position[vaults.live_rows(), self.i]
        return float(col[col > 0.0].sum())

    def expected_funding_value(self, horizon: float) -> float:
        """What a long pays in funding over ``horizon`` seconds at today's rate (USDC).

        The squared's fair value to an arbitrageur is its index plus this: the index alone
        ignores the variance a holder pays for.
        """
        return self.index_price() * self.daily_funding_rate() * horizon / self.params.funding_period

    def fair_value(self, market_price: float) -> float:
        """This product's value at an external underlying price ``market_price``: its index
        there plus one funding period of the funding a long pays with the pool flat (the EWMA
        variance for the squared, the base rate for the future).

        What an arbitrageur compares the pool's price with: the squared's index alone ignores
        the variance its holder pays for.
        """
        s = check_positive(market_price, "market price")
        m = self.market
        base = m.state.variance if self.i == SQUARED else m.params.base_funding_rate
        return fx.index_price(self.i, s) * (1.0 + base)

    # -- hedging (Predy's own) -------------------------------------------------------------------

    def hedge(self, caller: str) -> HedgeResult:
        """Bring the pool's underlying to its target on the spot market (execHedge)."""
        return self.market.hedge(caller)

    def hedge_plan(self) -> fx.HedgeAmounts:
        """What a hedge would do now (nothing changes)."""
        return self.market.hedge_plan()

    # -- accounts, liquidation, keepers --------------------------------------------------------

    def _row(self, account: str | int) -> int:
        return self.market.vaults.row(account)

    def signed_position(self, account: str | int) -> float:
        """The vault's (or the pool's) position in this product, negative for a short
        (:class:`~perpsim.engine.venue.PositionReader`)."""
        if account == POOL:
            return self.market.state.position[self.i]
        return self.market.vaults.read(self._row(account)).position[self.i]

    def account(self, account: str | int) -> AccountView:
        """The vault (or the pool's account) with this product's position."""
        m = self.market
        if account == POOL:
            return self._pool_view()
        v = m.vaults.read(self._row(account))
        # One read of the spot and the rates serves the marks, the funding, the value,
        # MinCollateral, the withdrawable USDC and the liquidation price: each of their own
        # calls would read the same two (a view changes nothing), about ten times each.
        spot = m.spot()
        rates = m.current_rates()
        marks = m._marks_at(spot, rates)
        funding_now = m._funding_now_at(spot, rates)
        value = m.vault_value(v, marks, funding_now)
        mc = m._min_collateral_at(v, spot, rates)
        q = v.position[self.i]
        side = "long" if q > 0.0 else ("short" if q < 0.0 else "flat")
        funding = q * (funding_now[self.i] - v.entry_funding[self.i])
        pnl = q * (marks[self.i] - v.entry[self.i])
        im = 2.0 * mc
        unsafe = value < mc and v.position != (0.0, 0.0)
        # Positional: keyword construction of a frozen dataclass costs twice as much.
        return AccountView(
            v.usdc,  # cash_balance
            side,  # position_side
            abs(q),  # position_size
            abs(q) * v.entry[self.i],  # entry_value
            0.0,  # entry_social_loss
            abs(q) * v.entry_funding[self.i],  # entry_funding_loss
            marks[self.i],  # price
            pnl,  # pnl1
            0.0,  # social_loss
            funding,  # funding_loss
            pnl - funding,  # pnl2
            value,  # margin_balance
            im,  # position_margin
            mc,  # maintenance_margin
            value - im,  # available_margin
            m._withdrawable_of(v, value, mc),  # withdrawable_balance
            not unsafe,  # is_safe
            value >= im,  # is_im_safe
            value < 0.0,  # is_bankrupt
            self._liquidation_price(v, spot, rates, funding_now),  # estimated_liquidation_price
            abs(q) if unsafe else 0.0,  # liquidation_amount
            v.entry[self.i] if q != 0.0 else 0.0,  # avg_entry_price
        )

    def _liquidation_gap(
        self, v: VaultRow, rates: Pair | None = None, funding: Pair | None = None
    ) -> Callable[[float], float]:
        """The vault's value less its MinCollateral as a function of the index, the funding
        rates and the funding held at today's (what :meth:`_liquidation_price` bisects on).

        ``rates`` and ``funding``, when given, are the market's current rates and funding now,
        already read."""
        m = self.market
        if rates is None:
            rates = (m.current_rate(FUTURE), m.current_rate(SQUARED))
        if funding is None:
            funding = m.funding_now()
        p = m.params
        # gap(s) is PredyMarket.vault_value at the marks of index s less fx.min_collateral at
        # s, written out with every term that does not depend on s taken once, each float
        # operation the same and in the same order: the same value, bit for bit, at a third of
        # the cost (the bisection below evaluates it about 55 times per account view).
        q0, q1 = v.position
        e0, e1 = v.entry
        usdc = v.usdc
        fund0 = q0 * (funding[0] - v.entry_funding[0])
        fund1 = q1 * (funding[1] - v.entry_funding[1])
        up0, up1 = 1.0 + rates[0], 1.0 + rates[1]
        net0 = up0 * q0
        alpha, floor = p.vault_risk_param, p.min_margin
        curve = 2.0 * alpha
        abs_q1 = abs(q1)
        has_position = q0 != 0.0 or q1 != 0.0
        scale = fx.SCALING_FACTOR

        def gap(s: float) -> float:
            value = usdc
            if q0 != 0.0:
                value += q0 * (s * up0 - e0) - fund0
            if q1 != 0.0:
                value += q1 * (s * s / scale * up1 - e1) - fund1
            with_funding = s * up1
            net = 2.0 * with_funding * q1 / scale + net0
            mc = alpha * s * (abs(net) + curve * with_funding * abs_q1 / scale)
            if has_position and mc < floor:
                mc = floor
            return value - mc

        return gap

    def _liquidation_price(
        self,
        v: VaultRow,
        spot: float | None = None,
        rates: Pair | None = None,
        funding: Pair | None = None,
    ) -> float:
        """This product's index at which the vault would reach its MinCollateral, the funding
        rates held at today's (0 if none between 1/100 and 100 times the spot).

        ``spot``, ``rates`` and ``funding``, when given, are the market's spot, current rates
        and funding now, already read (a view reads them once)."""
        m = self.market
        if v.position == (0.0, 0.0) or m.status is not Status.NORMAL:
            return 0.0
        if spot is None:
            spot = m.spot()
        if rates is None:
            rates = (m.current_rate(FUTURE), m.current_rate(SQUARED))
        if funding is None:
            funding = m.funding_now()
        if self.compiled_liquidation_prices and kernels.BUDGET.compiled(
            _LIQUIDATION_PRICE_SAVING_US
        ):
            from perpsim.engine.venues.predy import kernel  # numba, loaded on first use only

            p = m.params
            q0, q1 = v.position
            # The terms _liquidation_gap takes once, with its operations.
            fund0 = q0 * (funding[0] - v.entry_funding[0])
            fund1 = q1 * (funding[1] - v.entry_funding[1])
            found, s = kernel.liquidation_index(
                v.usdc,
                q0,
                q1,
                v.entry[0],
                v.entry[1],
                fund0,
                fund1,
                rates[0],
                rates[1],
                p.vault_risk_param,
                p.min_margin,
                fx.SCALING_FACTOR,
                spot,
            )
            return 0.0 if found == kernel.NONE else fx.index_price(self.i, s)
        gap = self._future_only_gap(v, spot, rates, funding)
        if gap is None:
            gap = self._liquidation_gap(v, rates, funding)
        return self._bisect_liquidation_price(gap, spot)

    def _bisect_liquidation_price(self, gap: Callable[[float], float], spot: float) -> float:
        """The bisection of :meth:`_liquidation_price` on ``gap`` (value less MinCollateral at
        an index), from the spot down to 1/100 of it, then up to 100 times it."""
        if gap(spot) < 0.0:
            return fx.index_price(self.i, spot)
        for lo_f, hi_f in ((0.01, 1.0), (1.0, 100.0)):
            lo, hi = spot * lo_f, spot * hi_f
            glo, ghi = gap(lo), gap(hi)
            if (glo < 0.0) == (ghi < 0.0):
                continue
            below = glo < 0.0
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                if mid == lo or mid == hi:  # noqa: SIM109 - float ==, as the loop compares
                    # lo keeps glo's side and hi the other: at the end of the floats a step
                    # leaves both where they are, and so would every step after it.
                    break
                if (gap(mid) < 0.0) == below:
                    lo = mid
                else:
                    hi = mid
            near = hi if lo_f < 1.0 else lo
            return fx.index_price(self.i, near)
        return 0.0

    def _future_only_gap(
        self, v: VaultRow, spot: float, rates: Pair, funding: Pair
    ) -> Callable[[float], float] | None:
        """:meth:`_liquidation_gap` of a vault holding the future only (a position in it, none
        in the squared: every noise trader's and arbitrageur's) without the squared's terms,
        for the indices the bisection from ``spot`` tries (up to 100 times it in size); None
        where that would not be exact.

        With no squared position those terms are signed zeros wherever the bisection looks,
        when the funding-rate factor times twice the highest index tried is finite: the net
        delta is then the future's alone (a signed zero added to it leaves it, and ``abs``
        takes the sign of a zero away) and the curvature term adds a signed zero to a
        magnitude. So the gap is ``usdc + (q0 (s up0 − e0) − fund0) − max(α s |net0|,
        floor)``, the very floats of the general gap at about half its operations (the
        bisection evaluates it about 55 times per account view).
        """
        p = self.market.params
        alpha, floor = p.vault_risk_param, p.min_margin
        q0, q1 = v.position
        if q1 != 0.0 or q0 == 0.0:
            return None
        up0, up1 = 1.0 + rates[0], 1.0 + rates[1]
        net0 = up0 * q0
        # A product's rounding is monotone: finite at the brackets' far end (spot × 100), the
        # squared's terms (2 s up1 × q1 and 2α s up1 × |q1|) are finite, so zero, throughout.
        top = (spot * 100.0) * up1
        if not (
            math.isfinite(net0) and math.isfinite(2.0 * top) and math.isfinite(2.0 * alpha * top)
        ):
            return None
        abs_net0 = abs(net0)
        usdc, e0 = v.usdc, v.entry[0]
        fund0 = q0 * (funding[0] - v.entry_funding[0])

        def gap(s: float) -> float:
            mc = alpha * s * abs_net0
            if mc < floor:
                mc = floor
            return usdc + (q0 * (s * up0 - e0) - fund0) - mc

        return gap

    def _pool_view(self) -> AccountView:
        m = self.market
        st = m.state
        q = st.position[self.i]
        equity = m.pool_equity()
        marks = m.marks()
        if m.status is Status.NORMAL:
            pend = m.pending_funding()[self.i]
            funding = -(st.funding_received[self.i] + pend * -q)
        else:
            funding = -st.funding_received[self.i]
        pnl = q * (marks[self.i] - st.entry[self.i])
        side = "long" if q > 0.0 else ("short" if q < 0.0 else "flat")
        # Positional: keyword construction of a frozen dataclass costs twice as much.
        return AccountView(
            st.amount_liquidity - math.fsum(st.locked) + math.fsum(st.amounts_usdc),  # cash_balance
            side,  # position_side
            abs(q),  # position_size
            abs(q) * st.entry[self.i],  # entry_value
            0.0,  # entry_social_loss
            0.0,  # entry_funding_loss
            marks[self.i],  # price
            pnl,  # pnl1
            0.0,  # social_loss
            funding,  # funding_loss
            pnl - funding,  # pnl2
            equity,  # margin_balance
            0.0,  # position_margin
            0.0,  # maintenance_margin
            self.available_liquidity(),  # available_margin
            0.0,  # withdrawable_balance
            True,  # is_safe
            True,  # is_im_safe
            equity < 0.0,  # is_bankrupt
            0.0,  # estimated_liquidation_price
            0.0,  # liquidation_amount
            st.entry[self.i] if q != 0.0 else 0.0,  # avg_entry_price
        )

    def available_liquidity(self) -> float:
        """L − Σ M_i − Σ max(0, −amountsUsdc_i)."""
        st = self.market.state
        return fx.available_liquidity(st.amount_liquidity, st.locked, st.amounts_usdc)

    def account_name(self, row: int) -> str:
        """The name of the vault in ``row``."""
        return self.market.vaults.names[row]

    def liquidatable_accounts(self) -> IntArray:
        """Rows of vaults with a position worth less than their MinCollateral (one scan of the
        live vaults, ascending)."""
        m = self.market
        if m.status is Status.SETTLED or not len(m.vaults):
            return np.empty(0, dtype=np.int64)
        live, values, mcs, has = m.live_values_and_min_collaterals()
        rows: IntArray = live[(values < mcs) & has]
        return rows

    def liquidate(
        self, liquidator: str | int, account: str | int, max_amount: float
    ) -> LiquidationResult:
        """liquidateByPool: the whole vault closes at the pool's prices."""
        check_positive(max_amount, "max liquidation amount")
        m = self.market
        row = self._row(account)
        before = m.vaults.read(row)
        q = before.position[self.i]
        result = m.liquidate(liquidator, account)
        return LiquidationResult(
            liquidator=m.vaults.names[m.vaults.row(liquidator)],
            trader=m.vaults.names[row],
            side="long" if q > 0.0 else ("short" if q < 0.0 else "flat"),
            price=result["price"],
            amount=abs(q),
            penalty_to_liquidator=result["reward"] / 2.0,
            penalty_to_fund=result["reward"] / 2.0,
            liquidation_loss=result["shortfall"],
            insurance_fund_paid=0.0,
            social_loss=result["shortfall"],
            bad_debt=0.0,
        )

    def update_index(self, caller: str | int) -> float:
        """Predy reads the oracle itself: this pays funding and takes a variance snapshot when
        due (a keeper's poke); no prize."""
        m = self.market
        if isinstance(caller, str):
            m.vaults.row(caller)
        m.update_variance()
        return 0.0

    # -- settlement ----------------------------------------------------------------------------

    def begin_global_settlement(self, price: float) -> None:
        """Freeze the market at this product's ``price`` (the spot it implies)."""
        p = check_positive(price, "settlement price")
        spot = p if self.i == FUTURE else math.sqrt(p * fx.SCALING_FACTOR)
        self.market.begin_global_settlement(spot)

    def global_settled(self) -> None:
        """Fix the pool's equity for its LP tokens."""
        self.market.global_settled()

    def share_holders(self) -> Mapping[str, float]:
        """LP token balances (a copy)."""
        return dict(self.market.shares)

    def settle_shares(self, holder: str, shares: float) -> float:
        """Redeem LP tokens after settlement (into the holder's vault)."""
        return self.market.settle_shares(holder, shares)

    def accounts_to_settle(self) -> IntArray:
        """Vaults holding USDC or a position."""
        usdc, pos, _, _ = self.market.vaults.view()
        rows: IntArray = np.flatnonzero((usdc != 0.0) | (pos != 0.0).any(axis=1))
        return rows

    def settle(self, account: str | int) -> float:
        """Pay a vault's value out after settlement."""
        return self.market.settle(account)

    # -- what the outputs read -----------------------------------------------------------------

    @property
    def event_sink(self) -> EventSink | None:
        """Where the market reports each state change."""
        return self.market.event_sink

    @event_sink.setter
    def event_sink(self, sink: EventSink | None) -> None:
        self.market.event_sink = sink

    def funds(self) -> Mapping[str, float]:
        """No insurance fund; the pool's equity (the LPs' capital); the protocol's fees."""
        return {
            "insurance_fund": 0.0,
            "lp_capital": self.market.pool_equity(),
            "protocol_fees": self.market.state.protocol_fees,
        }

    def bad_debt(self) -> float:
        """Written off by the design: a negative pool at settlement (a settled vault's negative
        value is counted apart, as the settlement shortfall)."""
        return self.market.flows.bad_debt

    def observe(self) -> dict[str, Any]:
        """The common columns (this product's), then ``predy_*`` of both products."""
        m = self.market
        st = m.state
        # The live vaults only: a vault holding nothing is neither unsafe nor bankrupt.
        _, values, mcs, has = m.live_values_and_min_collaterals()
        normal = m.status is Status.NORMAL
        spot = m.spot()
        rate = self.daily_funding_rate() if normal else 0.0
        d0, d1 = fx.pool_deltas(spot, st.position[0], st.position[1])
        target = -(d0 + d1) if d0 + d1 < 0.0 else 0.0
        return {
            "mark_price": self.mark_price(),
            "fair_price": self.fair_price(),
            "premium_rate": rate,
            "funding_rate": self.funding_rate() if normal else 0.0,
            "accumulated_funding_per_contract": self.accumulated_funding_per_contract(),
            "open_interest": self.open_interest(),
            "lp_share_price": self.share_price(),
            "lp_share_supply": st.supply,
            "insurance_fund": 0.0,
            "bad_debt": m.flows.bad_debt,
            "unsafe_accounts": int(np.count_nonzero((values < mcs) & has)),
            "bankrupt_accounts": int(np.count_nonzero(values < 0.0)),
            "status": m.status.value,
            "predy_funding_rate_future": m.current_rate(FUTURE),
            "predy_funding_rate_squared": m.current_rate(SQUARED),
            "predy_position_future": st.position[0],
            "predy_position_squared": st.position[1],
            "predy_locked_margin_future": st.locked[0],
            "predy_locked_margin_squared": st.locked[1],
            "predy_amount_liquidity": st.amount_liquidity,
            "predy_available_liquidity": self.available_liquidity(),
            "predy_utilization_ratio": fx.utilization_ratio(st.amount_liquidity, st.locked),
            "predy_variance": st.variance,
            "predy_lp_token_price": self.share_price(),
            "predy_hedge_underlying": st.amount_underlying,
            "predy_hedge_target": target,
            "predy_hedge_usdc": st.amounts_usdc[0] + st.amounts_usdc[1],
            "predy_net_delta": d0 + d1,
            "predy_index_squared": fx.index_price(SQUARED, spot),
            "predy_protocol_fees": st.protocol_fees,
            "predy_insolvent_loss": st.insolvent_loss,
        }

    def account_records(self) -> list[AccountRecord]:
        """Every vault (USDC, both positions, entries, value, LP tokens), then the pool."""
        m = self.market
        values, mcs = m.values_and_min_collaterals()
        usdc, pos, entry, efund = m.vaults.view()
        price = self.share_price()
        out = []
        for row, name in enumerate(m.vaults.names):
            shares = m.shares.get(name, 0.0)
            fields = {
                "usdc": float(usdc[row]),
                "position_future": float(pos[row, 0]),
                "position_squared": float(pos[row, 1]),
                "entry_price_future": float(entry[row, 0]),
                "entry_price_squared": float(entry[row, 1]),
                "entry_funding_future": float(efund[row, 0]),
                "entry_funding_squared": float(efund[row, 1]),
                "value": float(values[row]),
                "min_collateral": float(mcs[row]),
                "shares": shares,
            }
            out.append(AccountRecord(name, fields, float(values[row]) + shares * price))
        st = m.state
        pool_fields = {
            "usdc": st.amount_liquidity - math.fsum(st.locked) + math.fsum(st.amounts_usdc),
            "position_future": st.position[0],
            "position_squared": st.position[1],
            "entry_price_future": st.entry[0],
            "entry_price_squared": st.entry[1],
            "entry_funding_future": 0.0,
            "entry_funding_squared": 0.0,
            "value": m.pool_equity(),
            "min_collateral": 0.0,
            "shares": 0.0,
        }
        out.append(AccountRecord(POOL, pool_fields, 0.0))
        return out

    def check_invariants(self) -> list[str]:
        """The market's accounting checks."""
        return self.market.check_invariants()

    def check_changed_invariants(self) -> list[str]:
        """The same checks on the live vaults only (holding USDC or a position): a vault
        holding nothing breaks no rule and adds nothing to a total (IncrementalAccounting;
        the model checks every vault every few ticks and at the end)."""
        return self.market.check_invariants(full=False)
