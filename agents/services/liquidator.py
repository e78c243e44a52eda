"""The liquidator: takes over unsafe positions and unwinds them into the pool."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from perpsim.engine.core.config import FrozenModel
from perpsim.engine.core.status import Status

from ..base import PerpAgent, Phase, lots, trade_halving
from ..params import DelayParam, DurationParam, PositiveParam

if TYPE_CHECKING:
    from perpsim.model import PerpModel

#: Share of its margin balance a liquidator commits as initial margin (the rest is a buffer).
MARGIN_USE = 0.9


def _signed(side: str, size: float) -> float:
    return size if side == "long" else -size


LiquidationUnwind = Literal["immediate", "twap", "hold"]


class LiquidatorParams(FrozenModel):
    """Parameters of a liquidator (takes over unsafe positions, then unwinds them).

    Attributes:
        capital: Collateral (USD) each liquidator starts with.
        latency: Seconds between an account becoming unsafe and the liquidator acting on it.
        capacity: Contracts each liquidator can take over per tick.
        unwind: ``immediate`` (sell to the AMM at once), ``twap`` (in equal slices over
            ``unwind_horizon``) or ``hold`` (keep the position).
        unwind_horizon: Seconds over which a ``twap`` unwind is spread.
    """

    capital: PositiveParam = 500_000.0
    latency: DelayParam = 0
    capacity: PositiveParam = 50.0
    unwind: LiquidationUnwind = "immediate"
    unwind_horizon: DurationParam = 3_600


class Liquidator(PerpAgent):
    """Liquidates unsafe accounts within its capacity and capital, then unwinds into the pool.

    Every tick, unless an outage has taken it down, it liquidates the accounts that have been
    unsafe for at least ``latency`` seconds, up to ``capacity`` contracts per tick and only as
    much as keeps it initial-margin safe at the mark price. It unwinds what it acquired through
    the pool: at once (``immediate``, in chunks the pool accepts), in equal slices each tick over
    ``unwind_horizon`` (``twap``), or not at all (``hold``).
    """

    agent_type: ClassVar[str] = "liquidator"
    Params: ClassVar[type[FrozenModel]] = LiquidatorParams
    phase: ClassVar[Phase] = Phase.LIQUIDATOR

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
        self.latency = float(params["latency"])
        self.capacity = float(params["capacity"])
        self.unwind = str(params["unwind"])
        self.unwind_horizon = float(params["unwind_horizon"])
        self.twap_left = 0  # slices left in the current twap unwind
        # Whether it may hold a position: it starts flat and only its own liquidations give it
        # one, so while flat it need not read its account every tick to find it still flat.
        self._may_hold = False
        self.liquidations = 0
        self.liquidated_amount = 0.0
        self.unwound_amount = 0.0

    def start(self) -> None:
        """Deposit the whole capital and watch every tick."""
        self.venue.deposit(self.name, self.wallet)
        self.wallet = 0.0
        self.wake_in(self.model.tick_seconds)

    def step(self) -> None:
        """Liquidate what is due, then unwind by the policy (nothing while down)."""
        status = self.venue.status
        if status is Status.SETTLED:
            return
        self.wake_in(self.model.tick_seconds)
        if self.is_down():
            return
        rows = self.model.liquidatable(self.latency)
        if rows.size and self.liquidate(rows) > 0.0:
            self.twap_left = max(1, math.ceil(self.unwind_horizon / self.model.tick_seconds))
        if status is Status.NORMAL and self.unwind != "hold":
            self._unwind()

    def liquidate(self, rows: npt.NDArray[np.int64]) -> float:
        """Liquidate ``rows`` in order within capacity and margin; return the amount taken."""
        lot = self.venue.rules.lot_size
        rate = self.venue.rules.initial_margin_rate
        remaining = lots(self.capacity, lot)
        me = self.venue.account(self.name)
        taken = 0.0
        for row in rows.tolist():
            # Its margin allows positions up to ``cap`` contracts (at the initial margin rate,
            # with a buffer); taking over a position on its own side uses that room, on the
            # other side it first closes what it holds.
            position = _signed(me.position_side, me.position_size)
            cap = max(me.margin_balance, 0.0) * MARGIN_USE / (me.price * rate)
            if remaining < lot or not me.is_safe or cap + abs(position) < lot:
                break
            if self.venue.account_name(row) == self.name:
                continue
            victim = self.venue.account(row)
            if victim.is_safe or victim.position_size <= 0.0:
                continue  # someone else got there first
            side = 1.0 if victim.position_side == "long" else -1.0
            affordable = cap - side * position
            amount = min(victim.liquidation_amount, victim.position_size, remaining, affordable)
            amount = lots(amount, lot)
            if amount <= 0.0:
                continue  # it cannot afford this one
            result = self.attempt("liquidate", self.venue.liquidate, self.name, row, amount)
            if result is not None:
                self._may_hold = True
                remaining -= result.amount
                taken += result.amount
                self.liquidations += 1
                self.liquidated_amount += result.amount
                me = self.venue.account(self.name)
        return taken

    def _unwind(self) -> None:
        if not self._may_hold:
            self.twap_left = 0
            return
        me = self.venue.account(self.name)
        if me.position_size <= 0.0:
            self.twap_left = 0
            self._may_hold = False
            return
        lot = self.venue.rules.trading_lot_size
        size = me.position_size
        if self.unwind == "twap":
            slices = max(self.twap_left, 1)
            self.twap_left = max(self.twap_left - 1, 0)
            size = max(size / slices, min(lot, size))
        amount = lots(size, lot)
        direction = -1.0 if me.position_side == "long" else 1.0
        self.unwound_amount += trade_halving(self, direction * amount, lot)
