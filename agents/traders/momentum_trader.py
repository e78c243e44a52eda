"""The momentum trader: follows the recent trend of the market price."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import model_validator

from perpsim.engine.core.config import FrozenModel, problem_at
from perpsim.engine.core.status import Status

from ..base import PerpAgent, Phase, lots
from ..params import DurationParam, NonNegativeParam, PositiveParam

if TYPE_CHECKING:
    from perpsim.model import PerpModel

#: Share of the exchange's maximum leverage (1 / initial_margin_rate) a trader's leverage is
#: capped at: the rest absorbs a pool price up to the mark premium limit away from the mark.
LEVERAGE_CAP = 0.95


def _both_numbers(*values: Any) -> bool:
    return all(isinstance(v, int | float) for v in values)


class MomentumTraderParams(FrozenModel):
    """Parameters of a momentum trader (follows the recent price trend).

    Attributes:
        lookback: Seconds over which the trend (relative price change) is measured.
        threshold: Relative price change over ``lookback`` that triggers a signal (0.01 = 1%).
        size_per_signal: Contracts added per signal in the direction of the trend.
        max_size: Largest position (contracts); must be >= size_per_signal.
        leverage: Notional divided by margin when opening.
        initial_cash: Collateral (USD) each trader starts with.
        decision_interval: Seconds between two looks at the market.
    """

    lookback: DurationParam = 3_600
    threshold: NonNegativeParam = 0.01
    size_per_signal: PositiveParam = 2.0
    max_size: PositiveParam = 10.0
    leverage: PositiveParam = 3.0
    initial_cash: PositiveParam = 20_000.0
    decision_interval: DurationParam = 300

    @model_validator(mode="after")
    def _check(self) -> MomentumTraderParams:
        if _both_numbers(self.max_size, self.size_per_signal) and (
            float(self.max_size) < float(self.size_per_signal)  # type: ignore[arg-type]
        ):
            raise problem_at(
                ["max_size"],
                "must be >= size_per_signal",
                got=self.max_size,
                allowed=f">= {self.size_per_signal}",
            )
        return self


class MomentumTrader(PerpAgent):
    """Trades in the direction of the market's return over ``lookback``, more for a stronger trend.

    Every ``decision_interval`` it measures the relative change of the market price over
    ``lookback``; beyond ``threshold`` it trades ``size_per_signal × change / threshold``
    contracts in that direction (an opposite position is reduced or reversed first), never
    holding more than ``max_size``. It deposits the margin of its position at ``leverage`` from
    its cash and holds the position until an opposite signal.
    """

    agent_type: ClassVar[str] = "momentum_trader"
    Params: ClassVar[type[FrozenModel]] = MomentumTraderParams
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
        self.lookback = float(params["lookback"])
        self.threshold = float(params["threshold"])
        self.size_per_signal = float(params["size_per_signal"])
        self.max_size = float(params["max_size"])
        self.leverage = float(params["leverage"])
        self.wallet = float(params["initial_cash"])
        self.interval = float(params["decision_interval"])
        self.has_account = False  # the engine opens the account at the first deposit
        self.signals = 0

    def start(self) -> None:
        """First look at the market after one decision interval."""
        self.wake_in(self.interval)

    def signal(self) -> float:
        """The market's relative change over the lookback window (0 without history)."""
        history = self.model.market_history(self.lookback)
        if len(history) < 2:
            return 0.0
        return float(history[-1] / history[0] - 1.0)

    def step(self) -> None:
        """Measure the trend and trade with it when it is beyond the threshold."""
        if self.venue.status is not Status.NORMAL:
            return
        self.wake_in(self.interval)
        change = self.signal()
        if change == 0.0 or abs(change) <= self.threshold:
            return
        self.signals += 1
        direction = 1.0 if change > 0.0 else -1.0
        strength = abs(change) / self.threshold if self.threshold > 0.0 else 1.0
        position, margin_balance = 0.0, 0.0
        price = self.venue.mark_price()
        g = self.venue.rules
        leverage = min(self.leverage, LEVERAGE_CAP / g.initial_margin_rate)
        per_contract = price / leverage + price * g.trade_fee_rate
        if self.has_account:
            position = self.position()
            if self._holds_max_with(position, direction, change):
                return
            margin_balance = self.venue.account(self.name).margin_balance
        cap = min(self.max_size, max(margin_balance + self.wallet, 0.0) / per_contract)
        # np.clip's result (NaN included) without a numpy call on two scalars.
        target = min(max(position + direction * self.size_per_signal * strength, -cap), cap)
        size = lots(abs(target - position), g.trading_lot_size)
        if size <= 0.0 or (target - position) * direction <= 0.0:
            return
        if abs(target) > abs(position):
            need = abs(target) * per_contract - margin_balance
            amount = min(need, self.wallet)
            if amount > 0.0:
                self.venue.deposit(self.name, amount)
                self.wallet -= amount
                self.has_account = True
        self.attempt("trade", self.venue.trade, self.name, direction * size)

    def _holds_max_with(self, position: float, direction: float, change: float) -> bool:
        """Whether it already holds ``max_size`` or more with the trend, so that the look
        cannot trade: the target is clipped to within ``cap ≤ max_size`` of zero, which is no
        further in ``direction`` than ``position``.

        Most signals of a lasting trend find it there, and then the margin balance (the whole
        account view) is not read. A NaN or infinite ``change`` takes the long way.
        """
        return position * direction >= self.max_size and abs(change) < math.inf
