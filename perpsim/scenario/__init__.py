"""Scenario files: YAML in, a typed, validated and frozen :class:`Scenario` out.

A scenario describes one simulation run: the clock, the market price path, the oracle feed, the
governance rates of the perpetual and of the AMM pool, the initial pool liquidity and insurance
fund, the agent populations, a timeline of events and the output settings. The schema of every
section is documented for users in ``docs/scenarios.md``.

Loading a file goes through four steps, each of which reports its problems as
:class:`~perpsim.errors.ConfigError` with one line per problem in the form
``FILE: key.path: message (got VALUE; allowed ...; line N)``:

1. **YAML** (:func:`load_raw_scenario`, with :mod:`perpsim.scenario.yaml`): a strict loader
   that rejects duplicate keys and non-string keys, reads ``1e-3`` as a number (YAML 1.1 would
   read a string) and keeps times as text. Every mapping and list remembers the file and line of
   each of its entries.
2. **extends** (:mod:`perpsim.scenario.extends`): ``extends: other.yaml`` (relative to the file;
   a bare name also finds a shipped scenario) is loaded first and the file is deep-merged on top
   of it: mappings merge key by key, lists are replaced, except ``agents``, whose populations
   merge by ``name``. A mapping whose ``kind`` / ``type`` / ``dist`` changes replaces the
   inherited one instead of merging with it, and setting one of ``clock.duration`` /
   ``clock.ticks`` (or a whale's ``schedule`` / ``arrival_rate``) drops the inherited other one.
   Cycles are detected.
3. **overrides** (:func:`apply_overrides`, :mod:`perpsim.scenario.overrides`): ``a.b.c=value``
   pairs, the value read as YAML, checked against the schema (unknown keys are errors with "did
   you mean"); list elements are addressed by index (``agents.0.count``) or, for ``agents``, by
   population name (``agents.noise.count``).
4. **validation** (:func:`scenario_from_raw`): the pydantic models (:mod:`perpsim.scenario.schema`
   and the section modules it builds on), plus the venue's own governance validation (MCDEX v1's
   ``PerpetualGovernance`` and ``AMMGovernance``) for the base rates and for every
   ``set_governance`` event applied in time order.

Times inside a run (event times, outage starts, a whale's schedule, ...) are integer seconds from
``clock.start``; they may also be written as durations (``"6h"``) or as ISO 8601 times
(``"2020-03-12T10:00:00Z"``), which are converted to offsets from ``clock.start``. Every such time
must fall within the run, ``[0, clock.ticks × clock.tick]``.
"""

from __future__ import annotations

from perpsim.agents.liquidity.liquidity_provider import LiquidityProviderParams
from perpsim.agents.params import (
    ChoiceDist,
    ConstantDist,
    Distribution,
    Interval,
    LognormalDist,
    NormalDist,
    ParamValue,
    UniformDist,
    sample_param,
)
from perpsim.agents.services.admin import AdminParams, SettleWhen
from perpsim.agents.services.keeper import KeeperParams
from perpsim.agents.services.liquidator import LiquidationUnwind, LiquidatorParams
from perpsim.agents.traders.arbitrageur import ArbitrageurParams
from perpsim.agents.traders.momentum_trader import MomentumTraderParams
from perpsim.agents.traders.noise_trader import NoiseTraderParams
from perpsim.agents.traders.whale import WhaleParams
from perpsim.engine.core.config import Problem, ProblemsError, did_you_mean
from perpsim.scenario.cli import list_scenarios_command, validate_command
from perpsim.scenario.clock import ClockConfig
from perpsim.scenario.events import (
    BeginGlobalSettlementEvent,
    Event,
    HedgerOutageEvent,
    KeeperOutageEvent,
    LiquidatorOutageEvent,
    LiquidityWithdrawalEvent,
    OracleManipulationEvent,
    OracleOutageEvent,
    PriceShockEvent,
    SetGovernanceEvent,
)
from perpsim.scenario.extends import SCENARIO_DIR
from perpsim.scenario.files import (
    load_raw_scenario,
    load_scenario,
    resolve_scenario_path,
    scenario_from_raw,
    shipped_scenarios,
)
from perpsim.scenario.output import OutputConfig
from perpsim.scenario.overrides import apply_overrides, apply_typed_overrides
from perpsim.scenario.populations import POPULATION_MODELS, Population
from perpsim.scenario.schema import Scenario
from perpsim.scenario.venue import MOVED_TO_VENUE, VenueConfig
from perpsim.scenario.yaml import Origin

__all__ = [
    "MOVED_TO_VENUE",
    "POPULATION_MODELS",
    "SCENARIO_DIR",
    "AdminParams",
    "ArbitrageurParams",
    "BeginGlobalSettlementEvent",
    "ChoiceDist",
    "ClockConfig",
    "ConstantDist",
    "Distribution",
    "Event",
    "HedgerOutageEvent",
    "Interval",
    "KeeperOutageEvent",
    "KeeperParams",
    "LiquidationUnwind",
    "LiquidatorOutageEvent",
    "LiquidatorParams",
    "LiquidityProviderParams",
    "LiquidityWithdrawalEvent",
    "LognormalDist",
    "MomentumTraderParams",
    "NoiseTraderParams",
    "NormalDist",
    "OracleManipulationEvent",
    "OracleOutageEvent",
    "Origin",
    "OutputConfig",
    "ParamValue",
    "Population",
    "PriceShockEvent",
    "Problem",
    "ProblemsError",
    "Scenario",
    "SetGovernanceEvent",
    "SettleWhen",
    "UniformDist",
    "VenueConfig",
    "WhaleParams",
    "apply_overrides",
    "apply_typed_overrides",
    "did_you_mean",
    "list_scenarios_command",
    "load_raw_scenario",
    "load_scenario",
    "resolve_scenario_path",
    "sample_param",
    "scenario_from_raw",
    "shipped_scenarios",
    "validate_command",
]
