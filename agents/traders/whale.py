"""The whale: rare, large, leveraged directional positions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import model_validator

from perpsim.engine.core.config import FrozenModel, problem_at
from perpsim.engine.core.status import Status
from perpsim.errors import EngineError

from ..base import PerpAgent, Phase, lots, withdraw_collateral
from ..params import DurationParam, PositiveParam, RunTime

if TYPE_CHECKING:
    from perpsim.model import PerpModel

#: Share of the exchange's maximum leverage (1 / initial_margin_rate) a trader's leverage is
#: capped at: the rest absorbs a pool price up to the mark premium limit away from the mark.
LEVERAGE_CAP = 0.95
#: Largest price impact (trade price / fair price − 1) a whale accepts per slice: a position
#: bigger than the pool can take at once is built (and closed) one slice per tick, while
#: arbitrageurs bring the pool's price back in between.
MAX_IMPACT = 0.005
#: Consecutive rejected slices after which a whale gives up the rest of an order.
MAX_REJECTIONS = 10


WhaleSide = Literal["long", "short", "random"]


class WhaleParams(FrozenModel):
    """Parameters of a whale (rare, large, leveraged trades).

    Exactly one of ``schedule`` and ``arrival_rate`` must be given.

    Attributes:
        capital: Collateral (USD) each whale starts with.
        side: ``long``, ``short`` or ``random`` (a fair coin per trade).
        size: Contracts per trade.
        leverage: Notional divided by margin when opening.
        schedule: Times (within the run) at which each whale opens a position.
        arrival_rate: Mean number of trades per hour per whale (Poisson), instead of a schedule.
        holding_time: Mean seconds a position is held (exponential).
    """

    capital: PositiveParam = 2_000_000.0
    side: WhaleSide = "random"
    size: PositiveParam = 200.0
    leverage: PositiveParam = 2.0
    schedule: tuple[RunTime, ...] | None = None
    arrival_rate: PositiveParam | None = None
    holding_time: DurationParam = 21_600

    @model_validator(mode="after")
    def _check(self) -> WhaleParams:
        if (self.schedule is None) == (self.arrival_rate is None):
            raise problem_at(
                ["schedule" if self.schedule is not None else "arrival_rate"],
                "give exactly one of schedule (a list of times) or arrival_rate (per hour)",
                allowed="schedule: [6h, 30h] or arrival_rate: 0.05",
            )
        return self


class Whale(PerpAgent):
    """Opens a large position at the times of its schedule (or at Poisson arrivals) and holds it.

    At each scheduled time (or, with ``arrival_rate``, after an exponential wait while flat) it
    deposits the margin of ``size`` contracts at ``leverage`` and trades them on its ``side`` (a
    fair coin for ``random``), one slice per tick of at most ``MAX_IMPACT`` price impact. It
    closes the whole position the same way after an exponential holding time (mean
    ``holding_time``) and never adds margin, so with thin margin a move against it gets it
    liquidated in size.
    """

    agent_type: ClassVar[str] = "whale"
    Params: ClassVar[type[FrozenModel]] = WhaleParams
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
        self.side = str(params["side"])
        self.size = float(params["size"])
        self.leverage = float(params["leverage"])
        self.holding_time = float(params["holding_time"])
        schedule = params.get("schedule")
        rate = params.get("arrival_rate")
        self.schedule: list[float] = sorted(model.start_time + float(t) for t in schedule or ())
        self.mean_wait: float | None = None if rate is None else 3_600.0 / float(rate)
        self.next_arrival: float | None = None
        self.close_at: float | None = None
        self.pending = 0.0  # signed contracts of the current order still to trade
        self.failures = 0
        self.orders = 0

    def start(self) -> None:
        """Schedule the first opening."""
        if self.mean_wait is not None:
            self.next_arrival = self.now + self.rng.exponential(self.mean_wait)
        self._reschedule()

    def _reschedule(self) -> None:
        if self.pending:
            self.wake_in(self.model.tick_seconds)
            return
        times = [t for t in (self.close_at, self.next_arrival) if t is not None]
        if self.schedule:
            times.append(self.schedule[0])
        if times:
            self.wake_at(min(times))

    def step(self) -> None:
        """Close a position whose time is over, place what is due, trade the next slice."""
        if self.venue.status is not Status.NORMAL:
            return
        if self.close_at is not None and self.now >= self.close_at:
            self._close()
        while self.schedule and self.schedule[0] <= self.now:
            self.schedule.pop(0)
            self._open()
        if self.next_arrival is not None and self.next_arrival <= self.now:
            self.next_arrival = None
            if self.close_at is None:
                self._open()
        if self.pending:
            self._trade_slice()
        idle = self.close_at is None and not self.pending and self.next_arrival is None
        if idle and self.mean_wait is not None:  # flat again: wait for the next arrival
            self.next_arrival = self.now + self.rng.exponential(self.mean_wait)
        self._reschedule()

    def _open(self) -> None:
        long = self.side == "long" or (self.side == "random" and self.rng.random() < 0.5)
        price = self.venue.mark_price()
        g = self.venue.rules
        leverage = min(self.leverage, LEVERAGE_CAP / g.initial_margin_rate)
        per_contract = price / leverage + price * g.trade_fee_rate
        size = lots(min(self.size, self.wallet / per_contract), g.trading_lot_size)
        if size <= 0.0:
            return
        margin = size * per_contract
        self.venue.deposit(self.name, margin)
        self.wallet -= margin
        self.orders += 1
        self.pending += size if long else -size
        self.failures = 0
        self.close_at = self.now + self.rng.exponential(self.holding_time)

    def _close(self) -> None:
        self.close_at = None
        view = self.venue.account(self.name)
        position = view.position_size if view.position_side == "long" else -view.position_size
        self.pending = -position
        self.failures = 0
        if position == 0.0:  # liquidated in full
            self._withdraw_if_flat()

    def _slice(self, amount: float) -> float:
        """The largest part of signed ``amount`` (halving) within ``MAX_IMPACT``."""
        lot = self.venue.rules.trading_lot_size
        size = lots(abs(amount), lot)
        while size >= lot:
            try:
                impact = abs(self.venue.quote(size if amount > 0 else -size).price_impact)
            except EngineError:
                impact = float("inf")  # a buy as big as the pool
            if impact <= MAX_IMPACT:
                return size if amount > 0 else -size
            size = lots(size / 2.0, lot)
        return 0.0

    def _trade_slice(self) -> None:
        part = self._slice(self.pending)
        if part == 0.0:
            self.pending = 0.0  # less than a lot left
        elif self.attempt("trade", self.venue.trade, self.name, part) is not None:
            self.pending -= part
            self.failures = 0
        else:
            self.failures += 1
            if self.failures >= MAX_REJECTIONS:
                self.pending = 0.0
        lot = self.venue.rules.trading_lot_size
        if abs(self.pending) < lot * (1.0 - 1e-9):
            self.pending = 0.0
            if self.close_at is None:
                self._withdraw_if_flat()

    def _withdraw_if_flat(self) -> None:
        view = self.venue.account(self.name)
        if view.position_size == 0.0 and view.cash_balance > 0.0:
            amount = view.cash_balance
            if self.attempt("withdraw", withdraw_collateral, self.venue, self.name, amount):
                self.wallet += amount
