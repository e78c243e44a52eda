"""What every perpsim agent shares: its phase in the tick, its account(s), its wake-ups.

The model does not loop over every agent every tick. An agent is called (``step``) only when it
asked to be woken: at construction it schedules its first wake-up, and each ``step`` schedules
the next one (Poisson arrivals, a decision interval, an oracle update...). Agents that are not
acting this tick cost nothing.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING, Any, ClassVar, cast

import mesa
import numpy as np

from perpsim.engine.core.config import FrozenModel
from perpsim.engine.core.numbers import floor_to_lot
from perpsim.engine.venue import PositionReader, supports
from perpsim.errors import EngineError

if TYPE_CHECKING:
    from perpsim.engine.venue import Venue
    from perpsim.model import PerpModel


class Phase(IntEnum):
    """When in a tick an agent acts (the order of ``spec/architecture.md``)."""

    KEEPER = 1
    ADMIN = 2
    TRADER = 3
    LIQUIDATOR = 4
    LP = 5


class PerpAgent(mesa.Agent):  # type: ignore[misc]
    """Base class of perpsim's agents.

    Args:
        model: the running :class:`~perpsim.model.PerpModel`.
        name: the agent's engine account name (unique).
        population: the scenario population it belongs to.
        params: its parameters, already sampled (plain numbers/strings/bools).
        rng: its population's random stream (derived from the run seed and the population's name).

    Subclasses set :attr:`phase`, implement :meth:`step`, and call :meth:`wake_at` /
    :meth:`wake_in` to be called again. They never touch balances: every action is a call on
    :attr:`venue`; a rejected call raises an :class:`~perpsim.errors.EngineError`, which
    :meth:`attempt` turns into a counted, logged refusal.
    """

    #: The scenario population ``type`` of this agent (its registry key).
    agent_type: ClassVar[str]
    #: The typed parameters of a population of this type (validated by the scenario).
    Params: ClassVar[type[FrozenModel]]
    phase: ClassVar[Phase] = Phase.TRADER
    model: PerpModel

    def __init__(
        self,
        model: PerpModel,
        name: str,
        population: str,
        params: dict[str, Any],
        rng: np.random.Generator,
    ) -> None:
        super().__init__(model)
        self.name = name
        self.population = population
        self.params = params
        self._rng = rng
        self.rejections = 0
        # Bound once: the venue (and its product view) never changes during a run.
        self._venue = model.venue_for(population)
        # Whether the venue reads a position without the whole account view (checked once).
        self._reads_position: bool | None = None

    # Helpers ---------------------------------------------------------------------------------

    @property
    def rng(self) -> np.random.Generator:
        """The agent's random stream (its population's), not Mesa's model-wide one."""
        return self._rng

    @property
    def venue(self) -> Venue:
        """The exchange this agent trades on (the product its population names, if any)."""
        return self._venue

    @property
    def now(self) -> int:
        """The current time (unix seconds)."""
        return self.model.now

    def wake_at(self, time: float) -> None:
        """Ask to be stepped at the first tick at or after ``time`` (unix seconds).

        An agent has one pending wake-up: a later call replaces the earlier one, so an agent
        with several reasons to wake schedules the earliest of them.
        """
        self.model.wake(self, time)

    def wake_in(self, seconds: float) -> None:
        """Ask to be stepped ``seconds`` from now (at least the next tick)."""
        self.model.wake(self, self.model.now + max(float(seconds), 1e-9))

    def attempt(self, action: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call a venue operation; on rejection count it and return None.

        Rejections are part of the market (a trade that would not be margin-safe, a pool that
        cannot take the size); the model counts them per reason for the summary.
        """
        try:
            return fn(*args, **kwargs)
        except EngineError as exc:
            self.rejections += 1
            self.model.count_rejection(self, action, exc)
            return None

    def position(self) -> float:
        """Its signed position on :attr:`venue` (contracts; negative: short, 0: flat).

        Read through the venue's :class:`~perpsim.engine.venue.PositionReader` when it has one
        (a look that needs only the position skips the rest of the account view), else from
        :meth:`~perpsim.engine.venue.Venue.account`.
        """
        venue = self._venue
        reads = self._reads_position
        if reads is None:
            reads = self._reads_position = supports(venue, PositionReader)
        if reads:
            return cast("PositionReader", venue).signed_position(self.name)
        view = venue.account(self.name)
        return view.position_size if view.position_side == "long" else -view.position_size

    def is_down(self) -> bool:
        """Whether an outage event has taken this agent down now."""
        return self.model.is_down(self)

    def start(self) -> None:
        """Called once after every agent exists and the pool is created (t = start)."""

    def step(self) -> None:
        """Act once (called only at the ticks this agent asked for)."""


def lots(amount: float, lot: float) -> float:
    """``amount`` floored to whole lots (0 below one lot)."""
    return floor_to_lot(amount, lot)


#: Halvings tried when the pool refuses a chunk of :func:`trade_halving`.
MAX_HALVINGS = 6


def trade_halving(agent: PerpAgent, size: float, lot: float) -> float:
    """Trade ``size`` (signed) in chunks the pool accepts; return the contracts traded.

    The pool may refuse a big chunk (it must stay safe, a buy must fit its position): the chunk
    is halved until one is accepted, then the rest goes on in chunks of at most that size.
    After ``MAX_HALVINGS`` refusals the rest is left.
    """
    direction = 1.0 if size > 0.0 else -1.0
    left = abs(size)
    chunk = left
    halvings = 0
    traded = 0.0
    while left > 0.0 and chunk > 0.0:
        if agent.attempt("trade", agent.venue.trade, agent.name, direction * chunk) is not None:
            traded += chunk
            left -= chunk
            if left < lot * (1.0 - 1e-9):
                break
            left = lots(left, lot)
            chunk = min(chunk, left)
        else:
            halvings += 1
            if halvings > MAX_HALVINGS:
                break
            chunk = lots(chunk / 2.0, lot)
    return traded


def withdraw_collateral(venue: Any, name: str, amount: float) -> bool:
    """Withdraw and report success (``PerpAgent.attempt`` returns None on a rejection)."""
    venue.withdraw(name, amount)
    return True
