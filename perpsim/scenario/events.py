"""The event timeline: one model per event ``kind``."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, Strict, model_validator

from perpsim.agents.params import RunTime
from perpsim.engine.core.config import FrozenModel, PositiveReal, StrictStr, problem_at
from perpsim.oracle.config import Duration
from perpsim.scenario.populations import PopulationName

__all__ = [
    "BeginGlobalSettlementEvent",
    "Event",
    "KeeperOutageEvent",
    "LiquidatorOutageEvent",
    "LiquidityWithdrawalEvent",
    "OracleManipulationEvent",
    "OracleOutageEvent",
    "PriceShockEvent",
    "SetGovernanceEvent",
]


def _check_governance_value(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise problem_at(
            [],
            "must be a number (or, for social_loss_side, a name)",
            got=value,
            allowed="a finite number",
        )
    if not math.isfinite(value):
        raise problem_at([], "must be a finite number", got=value, allowed="a finite number")
    return float(value)


GovernanceValue = Annotated[float | str, BeforeValidator(_check_governance_value)]


class _EventBase(FrozenModel):
    """Fields shared by every event.

    Attributes:
        at: Time within the run (seconds from clock.start; ``"6h"`` and ISO 8601 also work).
    """

    at: RunTime


class SetGovernanceEvent(_EventBase):
    """Change one governance rate (validated by the engine against the rates in force).

    Attributes:
        key: A governance key of the scenario's venue (see ``venue.governance``).
        value: The new value.
    """

    kind: Literal["set_governance"]
    key: StrictStr
    value: GovernanceValue


class OracleOutageEvent(_EventBase):
    """The oracle publishes nothing for ``duration`` seconds.

    Attributes:
        duration: Seconds (``"2h"`` works).
    """

    kind: Literal["oracle_outage"]
    duration: Annotated[Duration, Field(gt=0)]


class KeeperOutageEvent(_EventBase):
    """Keepers do not call update_index for ``duration`` seconds.

    Attributes:
        duration: Seconds.
        population: Only this keeper population (default: all keepers).
    """

    kind: Literal["keeper_outage"]
    duration: Annotated[Duration, Field(gt=0)]
    population: PopulationName | None = None


class LiquidatorOutageEvent(_EventBase):
    """Liquidators do not act for ``duration`` seconds.

    Attributes:
        duration: Seconds.
        population: Only this liquidator population (default: all liquidators).
    """

    kind: Literal["liquidator_outage"]
    duration: Annotated[Duration, Field(gt=0)]
    population: PopulationName | None = None


class HedgerOutageEvent(_EventBase):
    """Predy hedgers do not hedge the pool for ``duration`` seconds.

    Attributes:
        duration: Seconds.
        population: Only this predy_hedger population (default: all hedgers).
    """

    kind: Literal["hedger_outage"]
    duration: Annotated[Duration, Field(gt=0)]
    population: PopulationName | None = None


class PriceShockEvent(_EventBase):
    """The market price moves by ``change`` (relative), ramped over ``over`` seconds.

    Attributes:
        change: Relative change once complete (-0.3 = a 30% fall); must be > -1.
        over: Seconds of the ramp; 0 for a jump.
    """

    kind: Literal["price_shock"]
    change: Annotated[float, Strict(), Field(gt=-1)]
    over: Annotated[Duration, Field(ge=0)] = 0


class OracleManipulationEvent(_EventBase):
    """The oracle publishes the market price × (1 + ``spike``) for ``duration`` seconds.

    Attributes:
        spike: Relative distortion (0.2 = +20%); must be > -1 and not 0.
        duration: Seconds.
    """

    kind: Literal["oracle_manipulation"]
    spike: Annotated[float, Strict(), Field(gt=-1)]
    duration: Annotated[Duration, Field(gt=0)]

    @model_validator(mode="after")
    def _check(self) -> OracleManipulationEvent:
        if self.spike == 0:
            raise problem_at(["spike"], "must not be 0", got=self.spike, allowed="> -1, not 0")
        return self


class LiquidityWithdrawalEvent(_EventBase):
    """Liquidity providers remove a fraction of their pool shares.

    Attributes:
        fraction: Fraction of each LP's shares removed, in (0, 1].
        population: Only this liquidity_provider population (default: all LPs).
    """

    kind: Literal["liquidity_withdrawal"]
    fraction: Annotated[float, Strict(), Field(gt=0, le=1)]
    population: PopulationName | None = None


class BeginGlobalSettlementEvent(_EventBase):
    """The admin begins global settlement.

    Attributes:
        price: Settlement price; null uses the admin's ``settlement_price`` rule (the index
            without an admin population).
    """

    kind: Literal["begin_global_settlement"]
    price: PositiveReal | None = None


#: Any event of the timeline; ``kind`` selects the model.
Event = Annotated[
    SetGovernanceEvent
    | OracleOutageEvent
    | KeeperOutageEvent
    | LiquidatorOutageEvent
    | HedgerOutageEvent
    | PriceShockEvent
    | OracleManipulationEvent
    | LiquidityWithdrawalEvent
    | BeginGlobalSettlementEvent,
    Field(discriminator="kind"),
]
