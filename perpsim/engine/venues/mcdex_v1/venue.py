"""MCDEX v1 behind the venue contract: the perpetual (seed 002) and its AMM pool (seed 004)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np

from perpsim.engine.core.accounts import IntArray, Side
from perpsim.engine.core.events import EventSink
from perpsim.engine.core.index import IndexOracle
from perpsim.engine.core.numbers import check_positive, floor_to_lot
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
from perpsim.engine.venues.mcdex_v1.amm import AMMPool
from perpsim.engine.venues.mcdex_v1.governance import (
    AMM_GOVERNANCE_KEYS,
    AMMGovernance,
    PerpetualGovernance,
)
from perpsim.engine.venues.mcdex_v1.perpetual import Perpetual
from perpsim.errors import BadAmountError, EngineError

#: Size of the sale quoted to measure the pool's depth (contracts; a quote changes nothing).
DEPTH_PROBE = 1.0

#: The design's own time-series columns (after the common ones), in order.
MCDEX_V1_COLUMNS: tuple[str, ...] = (
    "mcdex_v1_pool_position_size",
    "mcdex_v1_pool_cash_balance",
    "mcdex_v1_pool_available_margin",
    "mcdex_v1_social_loss_per_contract_long",
    "mcdex_v1_social_loss_per_contract_short",
    "mcdex_v1_dev_balance",
)


class MCDEXVenue:
    """The venue of an MCDEX v1 perpetual with its AMM pool.

    Args:
        perpetual: the perpetual engine.
        pool: its AMM pool (installed as the perpetual's price source).
    """

    kind: ClassVar[str] = "mcdex_v1"

    def __init__(self, perpetual: Perpetual, pool: AMMPool) -> None:
        self.perpetual = perpetual
        self.pool = pool
        self._rules_key: tuple[PerpetualGovernance, AMMGovernance] | None = None
        self._rules: VenueRules | None = None

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

    # -- time, status, rules -----------------------------------------------------------------

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
        """The exchange's clock (seconds)."""
        return self.perpetual.now

    def set_time(self, now: int) -> None:
        """Advance the perpetual's clock."""
        self.perpetual.set_time(now)

    @property
    def status(self) -> Status:
        """The perpetual's status."""
        return self.perpetual.status

    @property
    def rules(self) -> VenueRules:
        """Lots and rates of the perpetual's and the pool's governance in force now."""
        g, amm = self.perpetual.governance, self.pool.governance
        # Governance objects are immutable and replaced on change: identity is the cache key
        # (comparing them field by field would cost more than building the rules).
        cached = self._rules_key
        if self._rules is None or cached is None or cached[0] is not g or cached[1] is not amm:
            self._rules = VenueRules(
                lot_size=g.lot_size,
                trading_lot_size=g.trading_lot_size,
                initial_margin_rate=g.initial_margin_rate,
                maintenance_margin_rate=g.maintenance_margin_rate,
                trade_fee_rate=amm.pool_fee_rate + amm.pool_dev_fee_rate,
                funding_dampener=amm.funding_dampener,
                keeper_prize=amm.update_index_prize,
            )
            self._rules_key = (g, amm)
        return self._rules

    def set_governance(self, key: str, value: Any) -> None:
        """Change a perpetual or AMM governance key (the AMM's when the name is the pool's)."""
        if key in AMM_GOVERNANCE_KEYS:
            self.pool.change_governance(key, value)
        else:
            self.perpetual.set_governance(key, value)

    # -- collateral, trading, liquidity -------------------------------------------------------

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
            price, pool_fee, dev_fee = self.pool.trade(account, Side.LONG, s, limit_price, None)
        elif s < 0:
            price, pool_fee, dev_fee = self.pool.trade(account, Side.SHORT, -s, limit_price, None)
        else:
            raise BadAmountError("trade size must be non-zero")
        name = self.perpetual.name(self.perpetual.row(account))
        return Fill(name, s, price, pool_fee + dev_fee)

    def size_for_price(self, target: float) -> float:
        """The signed trade that moves the pool's fair price to ``target``.

        The pool keeps PoolAvailableMargin × PositionSize = K through a trade (fees aside):
        after buying ``a`` the fair price is K / (size − a)², after selling ``a`` it is
        K / (size + a)². The depth is read from the quote of a small sale
        (price = K / size / (size + probe)), the same arithmetic a trader outside the
        contract would do. 0 when the pool shows no measurable depth.
        """
        fair = self.pool.fair_price()
        quote = self.quote(-DEPTH_PROBE)
        if quote.price >= fair:
            return 0.0
        depth = quote.price * DEPTH_PROBE / (fair - quote.price)
        k = fair * depth * depth
        return float(depth - math.sqrt(k / target))

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

    def share_balance(self, account: str) -> float:
        """LP shares held by ``account``."""
        return self.pool.share_balance(account)

    def share_price(self) -> float:
        """Collateral one share redeems for now."""
        return self.pool.share_price()

    # -- prices and funding --------------------------------------------------------------------

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

    def accumulated_funding_per_contract(self) -> float:
        """``AccumulatedFundingPerContract`` (frozen outside NORMAL)."""
        return self.perpetual.accumulated_funding_per_contract

    def open_interest(self) -> float:
        """Long open interest."""
        return self.perpetual.total_size_long

    # -- accounts, liquidation, keepers --------------------------------------------------------

    def account(self, account: str | int) -> AccountView:
        """Every margin quantity of one account at the mark price."""
        return self.perpetual.view(account)

    def signed_position(self, account: str | int) -> float:
        """The account's position, negative for a short
        (:class:`~perpsim.engine.venue.PositionReader`)."""
        st = self.perpetual.state(account)
        return st.position_size if st.position_side is Side.LONG else -st.position_size

    def account_name(self, row: int) -> str:
        """The name of the account in ``row``."""
        return self.perpetual.name(row)

    def liquidatable_accounts(self) -> IntArray:
        """Rows of unsafe accounts holding a position (NORMAL or EMERGENCY), one scan."""
        if self.perpetual.status is Status.SETTLED:
            return np.empty(0, dtype=np.int64)
        return self.perpetual.unsafe_accounts()

    def liquidate(
        self, liquidator: str | int, account: str | int, max_amount: float
    ) -> LiquidationResult:
        """Liquidate up to ``max_amount`` of an unsafe account at the mark price."""
        return self.perpetual.liquidate(liquidator, account, max_amount)

    def update_index(self, caller: str | int) -> float:
        """Call the pool's update_index; return the prize paid."""
        return self.pool.update_index(caller)

    # -- settlement ----------------------------------------------------------------------------

    def begin_global_settlement(self, price: float) -> None:
        """The admin's beginGlobalSettlement (NORMAL or EMERGENCY → EMERGENCY)."""
        self.perpetual.begin_global_settlement(price)

    def global_settled(self) -> None:
        """The admin's endGlobalSettlement (EMERGENCY → SETTLED)."""
        self.perpetual.global_settled()

    def share_holders(self) -> Mapping[str, float]:
        """Share balances by holder (a copy)."""
        return dict(self.pool.share_balances)

    def settle_shares(self, holder: str, shares: float) -> float:
        """The pool's settleShare: redeem shares into the holder's margin account."""
        return self.pool.settle_share(holder, shares)

    def accounts_to_settle(self) -> IntArray:
        """Rows holding cash or a position, except the pool's (its cash went to the holders)."""
        a = self.perpetual.accounts
        holding = (a.cash_balance != 0.0) | (a.position_size > 0.0)
        rows: IntArray = np.flatnonzero(holding)
        keep: IntArray = rows[rows != self.pool.pool_row]
        return keep

    def settle(self, account: str | int) -> float:
        """The perpetual's settle: pay an account out after settlement."""
        return self.perpetual.settle(account)

    # -- what the outputs read -----------------------------------------------------------------

    @property
    def event_sink(self) -> EventSink | None:
        """Where the perpetual and the pool report each state change."""
        return self.perpetual.event_sink

    @event_sink.setter
    def event_sink(self, sink: EventSink | None) -> None:
        self.perpetual.event_sink = sink

    def funds(self) -> Mapping[str, float]:
        """The insurance fund, then the pool's available margin (the LPs' capital)."""
        return {"insurance_fund": self.perpetual.insurance_fund, "lp_capital": self._lp_capital()}

    def bad_debt(self) -> float:
        """Losses written off because the side that should pay them was empty."""
        return self.perpetual.bad_debt

    def _lp_capital(self) -> float:
        if self.perpetual.status is Status.NORMAL:
            return self.pool.available_margin()
        return self.pool.pool_state().cash_balance

    def observe(self) -> dict[str, Any]:
        """The common columns, then ``mcdex_v1_*``: the pool's margin account, social loss per
        contract and the dev account."""
        perp, pool = self.perpetual, self.pool
        status = perp.status
        pool_st = pool.pool_state()
        try:
            fair = pool.fair_price()
        except EngineError:
            fair = math.nan
        if status is Status.NORMAL:
            premium_rate = pool.premium_rate()
            funding_rate = pool.funding_rate()
            pam = pool.available_margin()
        else:
            premium_rate = funding_rate = 0.0
            pam = pool_st.cash_balance
        # The scan's answer (mb < mm, bit for bit); bankrupt accounts are among the unsafe.
        n_unsafe = int(perp.unsafe_accounts().size)
        n_bankrupt = int(perp.bankrupt_accounts().size) if n_unsafe else 0
        return {
            "mark_price": perp.mark_price,
            "fair_price": fair,
            "premium_rate": premium_rate,
            "funding_rate": funding_rate,
            "accumulated_funding_per_contract": perp.accumulated_funding_per_contract,
            "open_interest": perp.total_size_long,
            "lp_share_price": pool.share_price(),
            "lp_share_supply": pool.total_supply,
            "insurance_fund": perp.insurance_fund,
            "bad_debt": perp.bad_debt,
            "unsafe_accounts": n_unsafe,
            "bankrupt_accounts": n_bankrupt,
            "status": status.value,
            "mcdex_v1_pool_position_size": pool_st.position_size,
            "mcdex_v1_pool_cash_balance": pool_st.cash_balance,
            "mcdex_v1_pool_available_margin": pam,
            "mcdex_v1_social_loss_per_contract_long": perp.social_loss_per_contract_long,
            "mcdex_v1_social_loss_per_contract_short": perp.social_loss_per_contract_short,
            "mcdex_v1_dev_balance": perp.accounts.read(perp.dev).cash_balance,
        }

    def account_records(self) -> list[AccountRecord]:
        """Stored fields, margin balance and shares of every account; the pool's value is 0."""
        perp, pool = self.perpetual, self.pool
        a = perp.accounts
        mbs = perp.margin_balances() if len(a) else np.empty(0)
        share_price = pool.share_price()
        out = []
        for row, name in enumerate(a.names):
            shares = pool.share_balance(name)
            value = float(mbs[row]) + shares * share_price if name != pool.account else 0.0
            fields = {
                "cash_balance": a.cash_balance[row].item(),
                "position_side": Side(int(a.position_side[row])).name.lower(),
                "position_size": a.position_size[row].item(),
                "entry_value": a.entry_value[row].item(),
                "entry_social_loss": a.entry_social_loss[row].item(),
                "entry_funding_loss": a.entry_funding_loss[row].item(),
                "margin_balance": float(mbs[row]),
                "shares": shares,
            }
            out.append(AccountRecord(name, fields, value))
        return out

    def check_invariants(self) -> list[str]:
        """The perpetual's accounting checks (conservation, open interest, signs)."""
        return self.perpetual.check_invariants(raise_on_violation=False)

    def check_changed_invariants(self) -> list[str]:
        """The same checks on the accounts written since the last check and on totals kept
        up to date (see :meth:`Perpetual.check_invariants` with ``full=False``)."""
        return self.perpetual.check_invariants(raise_on_violation=False, full=False)
