"""The arbitrageur: keeps the AMM's price in line with the external market, harvests funding."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast, runtime_checkable

import numpy as np

from perpsim.engine.core.config import FrozenModel
from perpsim.engine.core.status import Status
from perpsim.engine.venue import supports
from perpsim.errors import EngineError

from ..base import PerpAgent, Phase, lots
from ..params import DurationParam, NonNegativeParam, PositiveParam

if TYPE_CHECKING:
    from perpsim.model import PerpModel

#: Share of its margin balance an arbitrageur commits as initial margin (the rest is a buffer).
MARGIN_USE = 0.8


@runtime_checkable
class FairValued(Protocol):
    """A venue whose product is not the underlying itself (Predy's squared perpetual): it says
    what the product is worth at an external price of the underlying."""

    def fair_value(self, market_price: float) -> float:
        """The product's value at the underlying's external price ``market_price``."""
        ...


class ArbitrageurParams(FrozenModel):
    """Parameters of an arbitrageur (trades the AMM price back to the index, harvests funding).

    Attributes:
        capital: Collateral (USD) each arbitrageur starts with.
        threshold: Relative gap between the AMM price and the index, beyond the trading fees,
            above which it trades (0.001 = 0.1%).
        max_trade_size: Largest trade in contracts.
        funding_threshold: Absolute 8-hour funding rate above which it takes the side that
            receives funding (0 disables funding trades only if set very high).
        decision_interval: Seconds between two looks at the market.
    """

    capital: PositiveParam = 200_000.0
    threshold: NonNegativeParam = 0.001
    max_trade_size: PositiveParam = 20.0
    funding_threshold: NonNegativeParam = 0.0005
    decision_interval: DurationParam = 60


class Arbitrageur(PerpAgent):
    """Trades the pool's fair price back to the external market price, and takes funding.

    Every ``decision_interval`` it compares the pool's fair price with the market price; when
    the gap exceeds the pool's fees plus ``threshold`` it buys (or sells) just enough to bring
    the fair price back to that band, hedging on the external market. Otherwise it takes the
    side that receives funding when ``|funding_rate|`` beats ``funding_threshold`` plus its
    round-trip fees, and unwinds its position when the gap reverses; positions are limited by
    ``max_trade_size`` per trade and by its capital at the initial margin rate.
    """

    agent_type: ClassVar[str] = "arbitrageur"
    Params: ClassVar[type[FrozenModel]] = ArbitrageurParams
    phase: ClassVar[Phase] = Phase.TRADER

    def __init__(
        self,
        model: PerpModel,
        name: str,
        population: str,
        params: dict[str, Any],
        rng: np.random.Generator,
    ) -> None:
        super().__init__(model, name, population, params, rng)
        self.wallet = float(params["capital"])
        self.threshold = float(params["threshold"])
        self.max_trade_size = float(params["max_trade_size"])
        self.funding_threshold = float(params["funding_threshold"])
        self.interval = float(params["decision_interval"])
        #: The offsetting position on the external market (contracts, signed) and its cash.
        self.hedge_position = 0.0
        self.hedge_cash = 0.0
        self.arbitrage_trades = 0
        self.funding_trades = 0
        self.unwind_trades = 0
        # Whether the venue prices a product with a fair value of its own: the venue an agent
        # trades never changes, and the capability check walks protocol attributes.
        self._fair_valued: bool | None = None

    def start(self) -> None:
        """Deposit the whole capital and start watching the market."""
        self.venue.deposit(self.name, self.wallet)
        self.wallet = 0.0
        self.wake_in(self.interval)

    def reference_price(self) -> float:
        """The external price of what the venue trades: the market price, or the product's
        fair value there when the venue has one (Predy's squared: index + variance funding)."""
        market = float(self.model.market_price())
        venue = self.venue
        if self._fair_valued is None:
            self._fair_valued = supports(venue, FairValued)
        if self._fair_valued:
            return float(cast(FairValued, venue).fair_value(market))
        return market

    def hedge_pnl(self) -> float:
        """Value of the external hedge at the current reference price."""
        return float(self.hedge_cash + self.hedge_position * self.reference_price())

    def step(self) -> None:
        """Compare prices, then trade the gap, the funding, or the unwind (at most one)."""
        # The venue, read once: most looks end before a trade.
        venue = self._venue
        if venue.status is not Status.NORMAL:
            return
        self.wake_in(self.interval)
        try:
            fair = venue.fair_price()
        except EngineError:
            return  # the pool is drained: nothing to arbitrage
        market = self.reference_price()
        fee = venue.rules.trade_fee_rate
        band = fee + self.threshold
        position = self.position()
        target, kind, limit = self.decide(fair, market, band, fee, position)
        if target is None:
            return
        # The margin balance only for a look that trades: most looks end above.
        margin_balance = venue.account(self.name).margin_balance
        size = venue.size_for_price(target)
        if limit is not None:
            size = math.copysign(min(abs(size), limit), size)
        size = self._cap(size, position, margin_balance)
        lot = venue.rules.trading_lot_size
        amount = lots(abs(size), lot)
        if amount <= 0.0:
            return
        signed = math.copysign(amount, size)
        fill = self.attempt("trade", venue.trade, self.name, signed, target)
        if fill is None:
            return
        self.hedge_position -= signed
        self.hedge_cash += signed * market
        if kind == "arbitrage":
            self.arbitrage_trades += 1
        elif kind == "funding":
            self.funding_trades += 1
        else:
            self.unwind_trades += 1

    def decide(
        self, fair: float, market: float, band: float, fee: float, position: float
    ) -> tuple[float | None, str, float | None]:
        """The fair price to trade the pool to, why, and a cap on the size (unwinds).

        Args:
            fair: the pool's fair price.
            market: the external market price.
            band: fees plus threshold, relative.
            fee: the pool's fee rate per trade (pool + dev).
            position: the arbitrageur's signed position.

        Returns:
            ``(target fair price or None, "arbitrage" | "funding" | "unwind", size cap)``.
        """
        low, high = market * (1.0 - band), market * (1.0 + band)
        if fair < low:
            return low, "arbitrage", None
        if fair > high:
            return high, "arbitrage", None
        rate = self.venue.funding_rate()
        hurdle = self.funding_threshold + 2.0 * fee
        if abs(rate) > hurdle:
            index = self.venue.index_price()
            damp = self.venue.rules.funding_dampener
            if rate > 0.0:  # longs pay: be short, but not below the band or the dampener
                target = max(low, index * (1.0 + damp))
                return (target, "funding", None) if target < fair else (None, "", None)
            target = min(high, index * (1.0 - damp))
            return (target, "funding", None) if target > fair else (None, "", None)
        if position > 0.0 and fair > market:
            return market, "unwind", position
        if position < 0.0 and fair < market:
            return market, "unwind", -position
        return None, "", None

    def _cap(self, size: float, position: float, margin_balance: float) -> float:
        """Limit a trade by ``max_trade_size`` and by the margin its new position needs."""
        size = math.copysign(min(abs(size), self.max_trade_size), size)
        rate = self.venue.rules.initial_margin_rate
        cap = max(margin_balance, 0.0) * MARGIN_USE / (self.venue.mark_price() * rate)
        allowed = max(cap - math.copysign(1.0, size) * position, 0.0)
        return math.copysign(min(abs(size), allowed), size)
