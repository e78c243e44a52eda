"""The variance seller: short the squared perpetual, delta-hedged with the future.

A short squared position receives funding close to the variance of the underlying and loses
its gamma, (S²/10,000)(ΔS/S)² per contract per move; delta-hedged, the two roughly cancel when
the variance the pool charges matches the variance realised. This trader sells that variance:
it shorts ``size`` squared contracts once and holds the future long the squared short's delta
(2 × index_squared / index_future per contract), rebalancing when it drifts by more than
``delta_band`` contracts. It needs a venue with both products (Predy's).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from perpsim.engine.core.config import FrozenModel
from perpsim.engine.core.status import Status
from perpsim.errors import ConfigError

from ..base import PerpAgent, Phase, lots
from ..params import DurationParam, NonNegativeParam, PositiveParam

if TYPE_CHECKING:
    from perpsim.engine.venue import Venue
    from perpsim.model import PerpModel

SQUARED = "squared"
FUTURE = "future"


class VarianceSellerParams(FrozenModel):
    """Parameters of a variance seller.

    Attributes:
        capital: Collateral (USD) deposited at the start.
        size: Squared contracts it shorts.
        rehedge_interval: Seconds between two looks at its delta.
        delta_band: Future contracts its hedge may be off before it rebalances.
    """

    capital: PositiveParam = 100_000.0
    size: PositiveParam = 50.0
    rehedge_interval: DurationParam = 3_600
    delta_band: NonNegativeParam = 0.5


class VarianceSeller(PerpAgent):
    """Shorts the squared perpetual and keeps its delta flat with the future."""

    agent_type: ClassVar[str] = "variance_seller"
    Params: ClassVar[type[FrozenModel]] = VarianceSellerParams
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
        self.capital = float(params["capital"])
        self.size = float(params["size"])
        self.interval = float(params["rehedge_interval"])
        self.band = float(params["delta_band"])
        self.rehedges = 0
        self.opened = False

    def _views(self) -> tuple[Venue, Venue]:
        return self.venue.product(SQUARED), self.venue.product(FUTURE)

    def start(self) -> None:
        """Deposit the capital and look at the market at once."""
        if SQUARED not in self.venue.products or FUTURE not in self.venue.products:
            raise ConfigError(
                f"agents.{self.population}: a variance_seller needs a venue with the squared"
                f" and future products (venue.kind: predy), not {self.venue.kind!r}"
            )
        self.venue.deposit(self.name, self.capital)
        self.wake_in(1.0)

    @staticmethod
    def _signed(view: Any) -> float:
        q = float(view.position_size)
        return q if view.position_side == "long" else (-q if view.position_side == "short" else 0.0)

    def step(self) -> None:
        """Open the squared short once, then keep the future at the short's delta."""
        if self.venue.status is not Status.NORMAL:
            return
        self.wake_in(self.interval)
        squared, future = self._views()
        if not self.opened:
            lot = squared.rules.trading_lot_size
            amount = lots(self.size, lot)
            if amount > 0.0 and self.attempt("trade", squared.trade, self.name, -amount) is None:
                return
            self.opened = True
        short = self._signed(squared.account(self.name))
        # d(S²/10,000)/dS = 2 S / 10,000 = 2 × index_squared / index_future.
        delta = 2.0 * squared.index_price() / future.index_price()
        target = -short * delta
        held = self._signed(future.account(self.name))
        gap = target - held
        if abs(gap) <= self.band:
            return
        lot = future.rules.trading_lot_size
        amount = lots(abs(gap), lot)
        if amount <= 0.0:
            return
        if self.attempt("trade", future.trade, self.name, math.copysign(amount, gap)) is not None:
            self.rehedges += 1
