"""Agent populations: each agent type's typed parameters, and the ``agents:`` union by ``type``."""

from __future__ import annotations

import math
from typing import Annotated, Any, Final, Literal

from pydantic import BeforeValidator, Field, Strict, model_validator

from perpsim.engine.core.config import FrozenModel, NonNegativeReal, StrictBool, problem_at
from perpsim.oracle.config import Duration
from perpsim.scenario.clock import RunTime
from perpsim.scenario.distributions import (
    DelayParam,
    DurationParam,
    FractionParam,
    NonNegativeParam,
    PositiveParam,
    ProbabilityParam,
)

__all__ = [
    "MAX_POPULATION_COUNT",
    "AdminParams",
    "AdminPopulation",
    "ArbitrageurParams",
    "ArbitrageurPopulation",
    "KeeperParams",
    "KeeperPopulation",
    "LiquidationUnwind",
    "LiquidatorParams",
    "LiquidatorPopulation",
    "LiquidityProviderParams",
    "LiquidityProviderPopulation",
    "MomentumTraderParams",
    "MomentumTraderPopulation",
    "NoiseTraderParams",
    "NoiseTraderPopulation",
    "Population",
    "PopulationName",
    "SettleWhen",
    "WhaleParams",
    "WhalePopulation",
]

#: Populations of a scenario are limited to this many agents each (a guard against typos).
MAX_POPULATION_COUNT: Final = 1_000_000


Count = Annotated[int, Strict(), Field(ge=0, le=MAX_POPULATION_COUNT)]


def _check_top_up(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and math.isfinite(value) and value >= 1:
        return float(value)
    raise problem_at(
        [],
        "must be false, true, or a margin threshold (a multiple of the maintenance margin)",
        got=value,
        allowed="false, true, or a number >= 1",
    )


class NoiseTraderParams(FrozenModel):
    """Parameters of a noise trader (random arrivals, random side).

    Attributes:
        arrival_rate: Mean number of trades per hour per trader (Poisson arrivals).
        long_probability: Probability that a trade opens a long, in [0, 1].
        size: Contracts per trade (1 contract = 1 unit of the underlying).
        leverage: Notional at entry divided by the margin deposited for the trade.
        holding_time: Mean seconds a position is held before it is closed (exponential).
        initial_cash: Collateral (USD) each trader starts with.
        stop_loss: Fraction of the deposited margin lost at which the trader closes, in (0, 1];
            null for no stop-loss.
        top_up: false: never add margin; a number m >= 1: deposit enough to restore the
            initial margin when the margin balance falls below m × maintenance margin;
            true: the same with m = 1.5.
    """

    arrival_rate: PositiveParam = 0.5
    long_probability: ProbabilityParam = 0.5
    size: PositiveParam = 1.0
    leverage: PositiveParam = 3.0
    holding_time: DurationParam = 14_400
    initial_cash: PositiveParam = 5_000.0
    stop_loss: FractionParam | None = 0.5
    top_up: Annotated[bool | float, BeforeValidator(_check_top_up)] = False


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


class LiquidityProviderParams(FrozenModel):
    """Parameters of a liquidity provider of the AMM pool.

    Attributes:
        capital: Collateral (USD) each LP starts with.
        initial_fraction: Fraction of the capital added as liquidity at the start, in [0, 1].
        add_interval: Seconds between two further additions.
        add_fraction: Fraction of the remaining cash added at each addition, in [0, 1].
        drawdown_exit: The LP removes all its liquidity when the value of its pool share has
            fallen by this fraction over ``return_window`` (0.1 = 10%); null never exits.
        return_window: Seconds over which the drawdown is measured.
    """

    capital: PositiveParam = 1_000_000.0
    initial_fraction: ProbabilityParam = 0.5
    add_interval: DurationParam = 86_400
    add_fraction: ProbabilityParam = 0.1
    drawdown_exit: FractionParam | None = 0.1
    return_window: DurationParam = 86_400


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


class KeeperParams(FrozenModel):
    """Parameters of a keeper (calls ``update_index`` for the prize, which also runs funding).

    Attributes:
        latency: Seconds between a new oracle price and the keeper's update_index call.
        gas_cost: Cost (USD) of one call; a keeper calls only if the prize covers it.
    """

    latency: DelayParam = 30
    gas_cost: NonNegativeParam = 5.0


class SettleWhen(FrozenModel):
    """Conditions under which the admin begins global settlement (any one suffices).

    Attributes:
        insurance_fund_exhausted: Settle when the insurance fund is empty after a loss.
        bad_debt_above: Settle when the cumulative social loss plus unrecoverable bad debt
            (USD) exceeds this; null disables the condition.
    """

    insurance_fund_exhausted: StrictBool = False
    bad_debt_above: NonNegativeReal | None = None


class AdminParams(FrozenModel):
    """Parameters of the admin (the only one who can begin global settlement).

    Attributes:
        settle_when: Automatic triggers.
        settle_at: A time within the run at which to settle unconditionally; null for none.
        settlement_price: ``index`` (the oracle's price) or ``mark`` (the perpetual's mark).
        complete_after: Seconds between beginning settlement (EMERGENCY) and completing it
            (SETTLED), during which the price may still be corrected.
    """

    settle_when: SettleWhen = SettleWhen()
    settle_at: RunTime | None = None
    settlement_price: Literal["mark", "index"] = "index"
    complete_after: Annotated[Duration, Field(ge=0)] = 3_600


PopulationName = Annotated[
    str, Strict(), Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
]


class _PopulationBase(FrozenModel):
    """Fields shared by every population.

    Attributes:
        name: Unique name (letters, digits, ``_``, ``-``; not starting with a digit); also the
            ``--set agents.NAME.…`` address of the population.
        count: Number of agents (0 disables an inherited population).
    """

    name: PopulationName
    count: Count = 1


class NoiseTraderPopulation(_PopulationBase):
    """A population of noise traders."""

    type: Literal["noise_trader"]
    params: NoiseTraderParams = NoiseTraderParams()


class MomentumTraderPopulation(_PopulationBase):
    """A population of momentum traders."""

    type: Literal["momentum_trader"]
    params: MomentumTraderParams = MomentumTraderParams()


class ArbitrageurPopulation(_PopulationBase):
    """A population of arbitrageurs."""

    type: Literal["arbitrageur"]
    params: ArbitrageurParams = ArbitrageurParams()


class WhalePopulation(_PopulationBase):
    """A population of whales (``params`` is required: a schedule or an arrival rate)."""

    type: Literal["whale"]
    params: WhaleParams


class LiquidityProviderPopulation(_PopulationBase):
    """A population of liquidity providers."""

    type: Literal["liquidity_provider"]
    params: LiquidityProviderParams = LiquidityProviderParams()


class LiquidatorPopulation(_PopulationBase):
    """A population of liquidators."""

    type: Literal["liquidator"]
    params: LiquidatorParams = LiquidatorParams()


class KeeperPopulation(_PopulationBase):
    """A population of keepers."""

    type: Literal["keeper"]
    params: KeeperParams = KeeperParams()


class AdminPopulation(_PopulationBase):
    """The admin (count 0 or 1; at most one admin in a scenario)."""

    type: Literal["admin"]
    count: Annotated[int, Strict(), Field(ge=0, le=1)] = 1
    params: AdminParams = AdminParams()


#: Any agent population; ``type`` selects the model.
Population = Annotated[
    NoiseTraderPopulation
    | MomentumTraderPopulation
    | ArbitrageurPopulation
    | WhalePopulation
    | LiquidityProviderPopulation
    | LiquidatorPopulation
    | KeeperPopulation
    | AdminPopulation,
    Field(discriminator="type"),
]
