"""The Predy hedger: keeps the pool's underlying holding at its target (execHedge).

A Predy pool only ever holds the underlying long: its target is the negative of its net delta
when that is negative, else nothing. The hedger looks every ``interval``; when the holding is
more than ``threshold`` (underlying units) off target it calls the venue's ``hedge``, which
trades the difference on the simulated spot market at a slippage that grows with the price move
since the last hedge (the venue's minimum to maximum). While a ``hedger`` outage has taken it
down (``agent_outage`` events naming its population) the pool drifts unhedged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast, runtime_checkable

import numpy as np

from perpsim.engine.core.config import FrozenModel
from perpsim.engine.core.status import Status
from perpsim.engine.venue import supports
from perpsim.errors import ConfigError

from ..base import PerpAgent, Phase
from ..params import DurationParam, NonNegativeParam

if TYPE_CHECKING:
    from perpsim.model import PerpModel


class HedgePlan(Protocol):
    """What a hedge would do: buy (``is_long``) or sell ``amount_underlying``."""

    @property
    def is_long(self) -> bool: ...

    @property
    def amount_underlying(self) -> float: ...


class HedgeFill(HedgePlan, Protocol):
    """What a hedge did: the plan, its USDC side and the slippage paid."""

    @property
    def amount_usdc(self) -> float: ...

    @property
    def slippage(self) -> float: ...

    @property
    def spot(self) -> float: ...


@runtime_checkable
class Hedgeable(Protocol):
    """A venue whose pool hedges its delta on a spot market (Predy's)."""

    def hedge(self, caller: str) -> HedgeFill:
        """Bring the pool's underlying to its target."""
        ...

    def hedge_plan(self) -> HedgePlan:
        """What a hedge would do now."""
        ...


class PredyHedgerParams(FrozenModel):
    """Parameters of a Predy hedger.

    Attributes:
        interval: Seconds between two looks at the pool's hedge.
        threshold: Underlying units the holding may be off its target before it hedges.
    """

    interval: DurationParam = 3_600
    threshold: NonNegativeParam = 0.0


class PredyHedger(PerpAgent):
    """Hedges the pool's net delta every ``interval`` when it is off by more than ``threshold``."""

    agent_type: ClassVar[str] = "predy_hedger"
    Params: ClassVar[type[FrozenModel]] = PredyHedgerParams
    phase: ClassVar[Phase] = Phase.KEEPER

    def __init__(
        self,
        model: PerpModel,
        name: str,
        population: str,
        params: dict[str, Any],
        rng: np.random.Generator,
    ) -> None:
        super().__init__(model, name, population, params, rng)
        self.interval = float(params["interval"])
        self.threshold = float(params["threshold"])
        self.hedges = 0
        self.skipped = 0
        #: USDC the pool paid (bought) or received (sold) through this hedger, and what the
        #: spot market's slippage cost the pool.
        self.usdc_bought = 0.0
        self.usdc_sold = 0.0
        self.slippage_cost = 0.0

    def start(self) -> None:
        """Check the venue can hedge, then look at the pool every ``interval``."""
        if not supports(self.venue, Hedgeable):
            raise ConfigError(
                f"agents.{self.population}: a predy_hedger needs a venue that hedges its pool"
                f" (venue.kind: predy), not {self.venue.kind!r}"
            )
        self.wake_in(self.interval)

    def step(self) -> None:
        """Hedge when up and the holding is off target by more than the threshold."""
        if self.venue.status is not Status.NORMAL:
            return
        self.wake_in(self.interval)
        if self.is_down():
            self.skipped += 1
            return
        # Checked in start(); a wrapper forwards hedge_plan and hedge to the pool.
        venue = cast(Hedgeable, self.venue)
        plan = self.attempt("hedge_plan", venue.hedge_plan)
        if plan is None or plan.amount_underlying <= max(self.threshold, 1e-9):
            return
        fill = self.attempt("hedge", venue.hedge, self.name)
        if fill is None:
            return
        self.hedges += 1
        notional = fill.amount_underlying * fill.spot
        if fill.is_long:
            self.usdc_bought += fill.amount_usdc
            self.slippage_cost += fill.amount_usdc - notional
        else:
            self.usdc_sold += fill.amount_usdc
            self.slippage_cost += notional - fill.amount_usdc
