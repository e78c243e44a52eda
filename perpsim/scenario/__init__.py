"""Scenario files: YAML in, a typed, validated and frozen :class:`Scenario` out.

A scenario describes one simulation run: the clock, the market price path, the oracle feed, the
governance rates of the perpetual and of the AMM pool, the initial pool liquidity and insurance
fund, the agent populations, a timeline of events and the output settings. The schema of every
section is documented for users in ``docs/scenarios.md``.

Loading a file goes through four steps, each of which reports its problems as
:class:`~perpsim.errors.ConfigError` with one line per problem in the form
``FILE: key.path: message (got VALUE; allowed ...; line N)``:

1. **YAML** (:func:`load_raw_scenario`): a strict loader that rejects duplicate keys and non-string
   keys, reads ``1e-3`` as a number (YAML 1.1 would read a string) and keeps times as text. Every
   mapping and list remembers the file and line of each of its entries.
2. **extends**: ``extends: other.yaml`` (relative to the file; a bare name also finds a shipped
   scenario) is loaded first and the file is deep-merged on top of it: mappings merge key by key,
   lists are replaced, except ``agents``, whose populations merge by ``name``. A mapping whose
   ``kind`` / ``type`` / ``dist`` changes replaces the inherited one instead of merging with it, and
   setting one of ``clock.duration`` / ``clock.ticks`` (or a whale's ``schedule`` /
   ``arrival_rate``) drops the inherited other one. Cycles are detected.
3. **overrides** (:func:`apply_overrides`): ``a.b.c=value`` pairs, the value read as YAML, checked
   against the schema (unknown keys are errors with "did you mean"); list elements are addressed
   by index (``agents.0.count``) or, for ``agents``, by population name (``agents.noise.count``).
4. **validation** (:func:`scenario_from_raw`): the pydantic models below, plus the engine's own
   governance validation (MCDEX v1's ``PerpetualGovernance`` and ``AMMGovernance``) for the base
   rates and for every ``set_governance`` event applied in time order.

Times inside a run (event times, outage starts, a whale's schedule, ...) are integer seconds from
``clock.start``; they may also be written as durations (``"6h"``) or as ISO 8601 times
(``"2020-03-12T10:00:00Z"``), which are converted to offsets from ``clock.start``. Every such time
must fall within the run, ``[0, clock.ticks × clock.tick]``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Discriminator,
    Field,
    Strict,
    Tag,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo

from perpsim.engine.core.config import (
    MISSING,
    FrozenModel,
    NonNegativeReal,
    PositiveReal,
    Problem,
    ProblemsError,
    Real,
    StrictBool,
    StrictStr,
    VenueSection,
    did_you_mean,
    problem_at,
    unknown_name_message,
)
from perpsim.engine.registry import DEFAULT_KIND, venue_config_models, venue_kinds, venue_spec
from perpsim.errors import ConfigError, GovernanceError
from perpsim.oracle.config import (
    BootstrapPath,
    Duration,
    HistoricalPath,
    OracleFeedConfig,
    PricePathConfig,
    parse_duration,
    parse_timestamp,
)
from perpsim.oracle.data import format_time
from perpsim.oracle.paths import load_path_data
from perpsim.scenario.yaml import (
    Origin,
    PathElem,
    YDict,
    YList,
    copy_tree,
    origin_for,
    parse_yaml,
    read_text_file,
)

__all__ = [
    "MOVED_TO_VENUE",
    "SCENARIO_DIR",
    "AdminParams",
    "AdminPopulation",
    "ArbitrageurParams",
    "ArbitrageurPopulation",
    "BeginGlobalSettlementEvent",
    "ChoiceDist",
    "ClockConfig",
    "ConstantDist",
    "Distribution",
    "Event",
    "Interval",
    "KeeperOutageEvent",
    "KeeperParams",
    "KeeperPopulation",
    "LiquidationUnwind",
    "LiquidatorOutageEvent",
    "LiquidatorParams",
    "LiquidatorPopulation",
    "LiquidityProviderParams",
    "LiquidityProviderPopulation",
    "LiquidityWithdrawalEvent",
    "LognormalDist",
    "MomentumTraderParams",
    "MomentumTraderPopulation",
    "NoiseTraderParams",
    "NoiseTraderPopulation",
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
    "WhalePopulation",
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

#: The folder of the scenarios shipped with perpsim.
SCENARIO_DIR: Final[Path] = Path(__file__).resolve().parents[2] / "scenarios"

#: Populations of a scenario are limited to this many agents each (a guard against typos).
MAX_POPULATION_COUNT: Final = 1_000_000
#: Latest allowed clock.start: 9999-12-31T23:59:59Z.
MAX_UNIX_TIME: Final = 253_402_300_799
#: Longest tick: one week.
MAX_TICK: Final = 7 * 86_400
#: Longest run: 100 years of 365 days.
MAX_RUN: Final = 100 * 365 * 86_400
#: Most ticks in a run.
MAX_TICKS: Final = 1_000_000_000


# ---------------------------------------------------------------------------------------------
# Problems and their messages
# ---------------------------------------------------------------------------------------------


def _render_path(path: Sequence[PathElem]) -> str:
    return ".".join(str(p) for p in path) if path else "(top level)"


def _show(value: Any, limit: int = 80) -> str:
    """A short, YAML-like rendering of a value for error messages."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, float) and math.isnan(value):
        text = ".nan"
    elif isinstance(value, float) and math.isinf(value):
        text = ".inf" if value > 0 else "-.inf"
    elif isinstance(value, str):
        text = repr(value)
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{k}: {_show(v, limit)}" for k, v in value.items()) + "}"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(_show(v, limit) for v in value) + "]"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _format_problem(problem: Problem, source: str, origin: Origin | None) -> str:
    details: list[str] = []
    if problem.context:
        details.append(problem.context)
    if problem.got is not MISSING:
        details.append(f"got {_show(problem.got)}")
    if problem.allowed:
        details.append(f"allowed: {problem.allowed}")
    if problem.related:
        details.append("involves " + ", ".join(_render_path(r) for r in problem.related))
    if origin is not None:
        if origin.source == source:
            if origin.line is not None:
                details.append(f"line {origin.line}")
        elif origin.line is not None:
            details.append(f"from {origin.source} line {origin.line}")
        else:
            details.append(f"from {origin.source}")
    suffix = f" ({'; '.join(details)})" if details else ""
    return f"{source}: {_render_path(problem.path)}: {problem.message}{suffix}"


def _config_error(lines: Sequence[str]) -> ConfigError:
    unique = list(dict.fromkeys(lines))
    return ConfigError("\n".join(unique))


# ---------------------------------------------------------------------------------------------
# YAML with positions
# ---------------------------------------------------------------------------------------------


def _read_yaml_file(path: Path, source: str) -> YDict:
    text = read_text_file(path, source, "scenario file")
    data = parse_yaml(text, Origin(source, None, path))
    if data is None:
        raise ConfigError(
            f"{source}: (top level): the file is empty (allowed: a mapping with at least"
            " name, clock and price_path)"
        )
    if not isinstance(data, YDict):
        raise ConfigError(
            f"{source}: (top level): a scenario must be a mapping of keys"
            f" (got {_kind_of(data)} {_show(data)}; line 1)"
        )
    return data


def _kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a text"
    return f"a {type(value).__name__}"


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------------------------
# extends
# ---------------------------------------------------------------------------------------------

_DISCRIMINATOR_KEYS: Final = ("kind", "type", "dist")


def _exclusive_groups(path: Sequence[PathElem]) -> tuple[tuple[str, ...], ...]:
    """Keys of the mapping at ``path`` of which setting one drops the inherited others."""
    if tuple(path) == ("clock",):
        return (("duration", "ticks"),)
    if len(path) == 3 and path[0] == "agents" and path[2] == "params":
        return (("schedule", "arrival_rate"),)
    return ()


def _drop_exclusive(
    target: dict[str, Any], setting: Iterable[str], path: Sequence[PathElem]
) -> None:
    setting = set(setting)
    for group in _exclusive_groups(path):
        if setting & set(group):
            for key in group:
                if key not in setting:
                    target.pop(key, None)


def _merge(base: Any, over: Any, path: tuple[PathElem, ...]) -> Any:
    """Deep-merges ``over`` on top of ``base`` (the rules of ``extends``)."""
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        for disc in _DISCRIMINATOR_KEYS:
            if disc in base and disc in over and base[disc] != over[disc]:
                return copy_tree(over)
        result: YDict = copy_tree(base)
        _drop_exclusive(result, over.keys(), path)
        for key, value in over.items():
            result[key] = (
                _merge(result[key], value, (*path, key)) if key in result else copy_tree(value)
            )
            if isinstance(over, YDict) and key in over.origins:
                result.origins[key] = over.origins[key]
        return result
    if path == ("agents",) and isinstance(base, list) and isinstance(over, list):
        return _merge_populations(base, over)
    return copy_tree(over)


def _merge_populations(base: list[Any], over: list[Any]) -> YList:
    result: YList = copy_tree(base)
    by_name = {
        item["name"]: i
        for i, item in enumerate(result)
        if isinstance(item, Mapping) and isinstance(item.get("name"), str)
    }
    for j, item in enumerate(over):
        origin = over.origins[j] if isinstance(over, YList) else None
        name = item.get("name") if isinstance(item, Mapping) else None
        if isinstance(name, str) and name in by_name:
            i = by_name[name]
            result[i] = _merge(result[i], item, ("agents", name))
            result.origins[i] = origin
        else:
            result.append(copy_tree(item))
            result.origins.append(origin)
    return result


def _resolve_extends(child: Path, target: str) -> Path | None:
    candidate = (child.parent / target).resolve()
    if candidate.is_file():
        return candidate
    if len(Path(target).parts) == 1:
        for name in (target, f"{target}.yaml"):
            shipped = SCENARIO_DIR / name
            if shipped.is_file():
                return shipped.resolve()
    return None


def _load_with_extends(path: Path, source: str, chain: tuple[Path, ...]) -> YDict:
    data = _read_yaml_file(path, source)
    if "extends" not in data:
        return data
    target = data.pop("extends")
    origin = data.origins.pop("extends", None)
    line = f"; line {origin.line}" if origin and origin.line else ""
    if not isinstance(target, str) or not target.strip():
        raise ConfigError(
            f"{source}: extends: must be the path of another scenario file"
            f" (got {_show(target)}; allowed: a relative path such as baseline.yaml{line})"
        )
    parent = _resolve_extends(path, target)
    if parent is None:
        raise ConfigError(
            f"{source}: extends: file not found (got {target!r}; looked for"
            f" {(path.parent / target).resolve()} and in {SCENARIO_DIR}{line})"
        )
    resolved_chain = (*chain, path.resolve())
    if parent in resolved_chain:
        cycle = " -> ".join(p.name for p in (*resolved_chain, parent))
        raise ConfigError(
            f"{source}: extends: extends cycle {cycle} (got {target!r}; allowed: a file that does"
            f" not extend this one{line})"
        )
    try:
        base = _load_with_extends(parent, _display(parent), resolved_chain)
    except ConfigError as exc:
        raise _config_error(
            [f"{source}: extends: {line}" for line in str(exc).splitlines()]
        ) from None
    merged: YDict = _merge(base, data, ())
    return merged


# ---------------------------------------------------------------------------------------------
# Schema: building blocks
# ---------------------------------------------------------------------------------------------


Count = Annotated[int, Strict(), Field(ge=0, le=MAX_POPULATION_COUNT)]

_ABSOLUTE_TIME_RE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}")


def _looks_absolute(value: object) -> bool:
    return isinstance(value, str) and _ABSOLUTE_TIME_RE.match(value) is not None


def _parse_run_time(value: object) -> int:
    if _looks_absolute(value):
        raise ValueError(
            f"the absolute time {value!r} cannot be placed in the run without a valid clock.start"
        )
    return parse_duration(value)


#: A time within the run, in seconds from ``clock.start`` (``"6h"`` and ISO 8601 also work).
RunTime = Annotated[int, BeforeValidator(_parse_run_time)]


@dataclasses.dataclass(frozen=True)
class Interval:
    """A range of real numbers, used for parameter ranges and distribution supports.

    Attributes:
        low: Lower end (``-inf`` for none).
        high: Upper end (``inf`` for none).
        low_closed: Whether ``low`` itself belongs to the range.
        high_closed: Whether ``high`` itself belongs to the range.
    """

    low: float = -math.inf
    high: float = math.inf
    low_closed: bool = True
    high_closed: bool = True

    def contains(self, x: float) -> bool:
        """Whether ``x`` is in the range."""
        above = x > self.low or (self.low_closed and x == self.low)
        below = x < self.high or (self.high_closed and x == self.high)
        return above and below

    def covers(self, other: Interval) -> bool:
        """Whether every point of ``other`` is in this range."""
        low_ok = other.low > self.low or (
            other.low == self.low and (self.low_closed or not other.low_closed)
        )
        high_ok = other.high < self.high or (
            other.high == self.high and (self.high_closed or not other.high_closed)
        )
        return low_ok and high_ok

    def __str__(self) -> str:
        if self.high == math.inf and self.low == -math.inf:
            return "unbounded"
        if self.high == math.inf:
            return f"{'>=' if self.low_closed else '>'} {_num(self.low)}"
        if self.low == -math.inf:
            return f"{'<=' if self.high_closed else '<'} {_num(self.high)}"
        left = "in [" if self.low_closed else "in ("
        right = "]" if self.high_closed else ")"
        return f"{left}{_num(self.low)}, {_num(self.high)}{right}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


_POSITIVE = Interval(0.0, math.inf, low_closed=False)
_NON_NEGATIVE = Interval(0.0, math.inf)
_PROBABILITY = Interval(0.0, 1.0)
_FRACTION = Interval(0.0, 1.0, low_closed=False)


# ---------------------------------------------------------------------------------------------
# Distributions
# ---------------------------------------------------------------------------------------------


class _DistBase(FrozenModel):
    def support(self) -> Interval:
        """The range of values :meth:`sample` can return."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
        """Draws ``n`` values.

        Args:
            rng: The random stream to draw from.
            n: Number of values.

        Returns:
            A float64 array of shape ``(n,)``.
        """
        raise NotImplementedError


def _clip_bounds(low: float | None, high: float | None) -> None:
    if low is not None and high is not None and not low < high:
        raise problem_at(["high"], "must be greater than low", got=high, allowed=f"> {low}")


def _clipped(
    values: npt.NDArray[np.float64], low: float | None, high: float | None
) -> npt.NDArray[np.float64]:
    if low is None and high is None:
        return values
    return np.clip(
        values, -np.inf if low is None else low, np.inf if high is None else high
    ).astype(np.float64)


class LognormalDist(_DistBase):
    """Log-normal: ``log X ~ Normal(mu, sigma²)``, given by its ``median`` or its ``mean``.

    Attributes:
        dist: ``"lognormal"``.
        mean: Mean of X (then ``mu = log(mean) − sigma²/2``); give this or ``median``.
        median: Median of X (then ``mu = log(median)``).
        sigma: Standard deviation of ``log X``.
        low: Optional lower bound; draws below it are clipped to it.
        high: Optional upper bound; draws above it are clipped to it.
    """

    dist: Literal["lognormal"]
    mean: PositiveReal | None = None
    median: PositiveReal | None = None
    sigma: NonNegativeReal
    low: Real | None = None
    high: Real | None = None

    @model_validator(mode="after")
    def _check(self) -> LognormalDist:
        if (self.mean is None) == (self.median is None):
            raise problem_at(
                ["median" if self.median is not None else "mean"],
                "give exactly one of mean or median",
                allowed="mean: X or median: X",
            )
        _clip_bounds(self.low, self.high)
        return self

    @property
    def mu(self) -> float:
        """Mean of ``log X``."""
        if self.median is not None:
            return math.log(self.median)
        assert self.mean is not None  # checked by the validator
        return math.log(self.mean) - self.sigma**2 / 2

    def support(self) -> Interval:
        low = Interval(0.0, math.inf, low_closed=False)
        if self.low is not None and self.low > 0:
            low = Interval(self.low, math.inf)
        high = math.inf if self.high is None else self.high
        return Interval(low.low, high, low.low_closed, True)

    def sample(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
        return _clipped(rng.lognormal(self.mu, self.sigma, n), self.low, self.high)


class UniformDist(_DistBase):
    """Uniform on ``[low, high)``.

    Attributes:
        dist: ``"uniform"``.
        low: Lower end.
        high: Upper end; must be greater than ``low``.
    """

    dist: Literal["uniform"]
    low: Real
    high: Real

    @model_validator(mode="after")
    def _check(self) -> UniformDist:
        _clip_bounds(self.low, self.high)
        return self

    def support(self) -> Interval:
        return Interval(self.low, self.high)

    def sample(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
        return rng.uniform(self.low, self.high, n)


class NormalDist(_DistBase):
    """Normal ``Normal(mean, std²)``, optionally clipped to ``[low, high]``.

    Attributes:
        dist: ``"normal"``.
        mean: Mean.
        std: Standard deviation.
        low: Optional lower bound; draws below it are clipped to it.
        high: Optional upper bound; draws above it are clipped to it.
    """

    dist: Literal["normal"]
    mean: Real
    std: NonNegativeReal
    low: Real | None = None
    high: Real | None = None

    @model_validator(mode="after")
    def _check(self) -> NormalDist:
        _clip_bounds(self.low, self.high)
        return self

    def support(self) -> Interval:
        if self.std == 0:
            lo = self.mean if self.low is None else max(self.mean, self.low)
            hi = self.mean if self.high is None else min(self.mean, self.high)
            return Interval(min(lo, hi), max(lo, hi))
        return Interval(
            -math.inf if self.low is None else self.low,
            math.inf if self.high is None else self.high,
        )

    def sample(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
        return _clipped(rng.normal(self.mean, self.std, n), self.low, self.high)


class ChoiceDist(_DistBase):
    """A choice among ``values``, with optional ``weights`` (normalised to sum to 1).

    Attributes:
        dist: ``"choice"``.
        values: The possible values; at least one.
        weights: One non-negative weight per value (equal weights if omitted).
    """

    dist: Literal["choice"]
    values: tuple[Real, ...] = Field(min_length=1)
    weights: tuple[NonNegativeReal, ...] | None = None

    @model_validator(mode="after")
    def _check(self) -> ChoiceDist:
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise problem_at(
                    ["weights"],
                    "must have one weight per value",
                    got=len(self.weights),
                    allowed=f"{len(self.values)} weights",
                )
            if sum(self.weights) <= 0:
                raise problem_at(["weights"], "must not all be zero", got=list(self.weights))
        return self

    def support(self) -> Interval:
        chosen = [
            v for i, v in enumerate(self.values) if self.weights is None or self.weights[i] > 0
        ]
        return Interval(min(chosen), max(chosen))

    def sample(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
        values = np.asarray(self.values, dtype=np.float64)
        if self.weights is None:
            return rng.choice(values, size=n)
        weights = np.asarray(self.weights, dtype=np.float64)
        return rng.choice(values, size=n, p=weights / weights.sum())


class ConstantDist(_DistBase):
    """Always ``value``.

    Attributes:
        dist: ``"constant"``.
        value: The value.
    """

    dist: Literal["constant"]
    value: Real

    def support(self) -> Interval:
        return Interval(self.value, self.value)

    def sample(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
        return np.full(n, self.value, dtype=np.float64)


#: A distribution of a numeric agent parameter; ``dist`` selects the kind.
Distribution = Annotated[
    LognormalDist | UniformDist | NormalDist | ChoiceDist | ConstantDist,
    Field(discriminator="dist"),
]
_DIST_NUMERIC_FIELDS: Final = ("mean", "median", "low", "high", "value", "std")


def _param_tag(value: Any) -> str:
    return "distribution" if isinstance(value, Mapping | _DistBase) else "number"


#: A numeric agent parameter: a number, or a distribution (a mapping with ``dist``).
ParamValue = Annotated[
    Annotated[float, Strict(), Tag("number")] | Annotated[Distribution, Tag("distribution")],
    Discriminator(_param_tag),
]


def _in_range(interval: Interval) -> AfterValidator:
    def check(value: Any) -> Any:
        if isinstance(value, _DistBase):
            support = value.support()
            if not interval.covers(support):
                raise problem_at(
                    [],
                    f"this {getattr(value, 'dist', 'distribution')} distribution can produce"
                    f" values outside the allowed range (its values are {support}; bound it"
                    " with low/high or choose another distribution)",
                    allowed=str(interval),
                )
        elif not interval.contains(float(value)):
            raise problem_at([], f"must be {interval}", got=value, allowed=str(interval))
        return value

    return AfterValidator(check)


def _durations_to_seconds(value: Any) -> Any:
    """Reads duration strings (``"2h"``) in a parameter, or in a distribution's fields."""
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, Mapping) and "dist" in value:
        converted = dict(value)
        for key in _DIST_NUMERIC_FIELDS:
            if isinstance(converted.get(key), str):
                converted[key] = parse_duration(converted[key])
        if isinstance(converted.get("values"), list | tuple):
            converted["values"] = [
                parse_duration(v) if isinstance(v, str) else v for v in converted["values"]
            ]
        return converted
    return value


PositiveParam = Annotated[ParamValue, _in_range(_POSITIVE)]
NonNegativeParam = Annotated[ParamValue, _in_range(_NON_NEGATIVE)]
ProbabilityParam = Annotated[ParamValue, _in_range(_PROBABILITY)]
FractionParam = Annotated[ParamValue, _in_range(_FRACTION)]
#: Seconds > 0; also ``"2h"``, and durations inside a distribution.
DurationParam = Annotated[ParamValue, BeforeValidator(_durations_to_seconds), _in_range(_POSITIVE)]
#: Seconds >= 0; also ``"30s"``, and durations inside a distribution.
DelayParam = Annotated[ParamValue, BeforeValidator(_durations_to_seconds), _in_range(_NON_NEGATIVE)]


def sample_param(
    value: float | _DistBase, rng: np.random.Generator, n: int
) -> npt.NDArray[np.float64]:
    """Draws ``n`` values of an agent parameter.

    Args:
        value: A plain number (repeated ``n`` times) or a distribution.
        rng: The random stream to draw from (unused for a plain number).
        n: Number of values (typically the population's ``count``).

    Returns:
        A float64 array of shape ``(n,)``.
    """
    if isinstance(value, _DistBase):
        return value.sample(rng, n)
    return np.full(n, float(value), dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Agent populations
# ---------------------------------------------------------------------------------------------


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

# ---------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------


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
    | PriceShockEvent
    | OracleManipulationEvent
    | LiquidityWithdrawalEvent
    | BeginGlobalSettlementEvent,
    Field(discriminator="kind"),
]

# ---------------------------------------------------------------------------------------------
# Clock, output, the venue
# ---------------------------------------------------------------------------------------------


def _parse_start(value: object) -> int:
    return _safe_timestamp(value)


def _safe_timestamp(value: object) -> int:
    """:func:`parse_timestamp`, with every failure reported as a ValueError."""
    try:
        return parse_timestamp(value)
    except ValueError:
        raise
    except Exception as exc:  # e.g. OverflowError from pandas for "1h"
        raise ValueError(
            f"cannot read time {value!r}: use Unix seconds or ISO 8601 such as"
            " '2020-03-12T10:00:00Z'"
        ) from exc


class ClockConfig(FrozenModel):
    """The simulated time.

    Tick ``i`` (1 to ``n_ticks``) takes the time to ``start + i × tick``.

    Attributes:
        start: Start of the run: Unix seconds or ISO 8601 (UTC unless a zone is given).
        tick: Seconds per tick (``"1m"`` works).
        duration: Length of the run (seconds or ``"3d"``); a multiple of ``tick``. Give this or
            ``ticks``.
        ticks: Number of ticks.
    """

    start: Annotated[int, BeforeValidator(_parse_start), Field(ge=0, le=MAX_UNIX_TIME)]
    tick: Annotated[Duration, Field(gt=0, le=MAX_TICK)]
    duration: Annotated[Duration, Field(gt=0, le=MAX_RUN)] | None = None
    ticks: Annotated[int, Strict(), Field(ge=1, le=MAX_TICKS)] | None = None

    @model_validator(mode="after")
    def _check(self) -> ClockConfig:
        if (self.duration is None) == (self.ticks is None):
            raise ProblemsError(
                [
                    Problem(
                        ("duration" if self.duration is not None else "ticks",),
                        "give exactly one of duration and ticks",
                        allowed="duration: 3d or ticks: 4320",
                        related=(("ticks",) if self.duration is not None else ("duration",),),
                    )
                ]
            )
        if self.ticks is not None and self.ticks * self.tick > MAX_RUN:
            raise problem_at(
                ["ticks"],
                f"makes the run longer than {MAX_RUN // 86_400} days",
                got=self.ticks,
                allowed=f"<= {MAX_RUN // self.tick} at {self.tick} s per tick",
            )
        if self.duration is not None and self.duration % self.tick:
            raise problem_at(
                ["duration"],
                f"must be a whole number of ticks ({self.tick} s each)",
                got=self.duration,
                allowed=f"a multiple of {self.tick}",
            )
        return self

    @property
    def n_ticks(self) -> int:
        """Number of ticks of the run."""
        if self.ticks is not None:
            return self.ticks
        assert self.duration is not None  # checked by the validator
        return self.duration // self.tick

    @property
    def span(self) -> int:
        """Length of the run in seconds."""
        return self.n_ticks * self.tick

    @property
    def end(self) -> int:
        """End of the run, Unix seconds."""
        return self.start + self.span

    def iso(self, offset: int) -> str:
        """The ISO 8601 UTC time of a run offset."""
        try:
            moment = datetime.fromtimestamp(self.start + offset, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return f"Unix time {self.start + offset}"
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class OutputConfig(FrozenModel):
    """What a run writes.

    Attributes:
        record_every: Ticks between two rows of the time series.
        format: ``parquet`` or ``csv``.
        keep_events: Whether to write the event log.
    """

    record_every: Annotated[int, Strict(), Field(ge=1)] = 1
    format: Literal["parquet", "csv"] = "parquet"
    keep_events: StrictBool = True


def _default_kind(value: Any) -> Any:
    """A ``venue:`` section without ``kind`` is the default design's."""
    if isinstance(value, Mapping) and "kind" not in value:
        return {"kind": DEFAULT_KIND, **value}
    return value


#: The ``venue:`` section: the config model of the design its ``kind`` names (every registered
#: design; MCDEX v1 when ``kind`` is left out).
def venue_union() -> Any:
    """The ``venue:`` field's type: a union over every design registered now, keyed by kind."""
    return Annotated[
        typing.Union[venue_config_models()],  # noqa: UP007 (a union built from the registry)
        BeforeValidator(_default_kind),
        Field(discriminator="kind"),
    ]


if typing.TYPE_CHECKING:
    VenueConfig: TypeAlias = VenueSection
else:
    VenueConfig = venue_union()

#: Top-level keys of older scenarios that now live in the ``venue:`` section.
MOVED_TO_VENUE: Final = ("governance", "pool", "insurance_fund", "dev_balance")


def _moved_keys(data: Mapping[str, Any]) -> None:
    problems = [
        Problem(
            (key,),
            f"moved to venue.{key} (the exchange design's own section)",
            allowed=f"venue: {{kind: {DEFAULT_KIND}, {key}: ...}}",
        )
        for key in MOVED_TO_VENUE
        if key in data
    ]
    if problems:
        raise ProblemsError(problems)


# ---------------------------------------------------------------------------------------------
# The scenario
# ---------------------------------------------------------------------------------------------


def _guard_foreign_sections(data: Mapping[str, Any]) -> None:
    """Catches what the price path and oracle models would accept silently or crash on.

    Those models read numbers leniently (``true`` would be 1.0), and their time parser can fail
    with something other than a ValueError; both are reported here with their key path.
    """
    problems: list[Problem] = []

    def visit(node: Any, path: tuple[PathElem, ...]) -> None:
        if isinstance(node, bool):
            problems.append(
                Problem(path, "must be a number, not true/false", got=node, allowed="a number")
            )
        elif isinstance(node, Mapping):
            for key, value in node.items():
                if key != "filter":
                    visit(value, (*path, key))
        elif isinstance(node, list | tuple):
            for i, value in enumerate(node):
                visit(value, (*path, i))

    for section in ("price_path", "oracle"):
        visit(data.get(section), (section,))
    price_path = data.get("price_path")
    if isinstance(price_path, Mapping):
        for key in ("start", "end"):
            value = price_path.get(key)
            if value is None or isinstance(value, bool):
                continue
            try:
                _safe_timestamp(value)
            except ValueError as exc:
                if exc.__cause__ is not None:
                    problems.append(Problem(("price_path", key), str(exc), got=value))
    if problems:
        raise ProblemsError(problems)


def _to_offset(value: Any, start: int) -> Any:
    """Converts an ISO 8601 time into seconds from ``start``; leaves anything else."""
    if not _looks_absolute(value):
        return value
    try:
        return _safe_timestamp(value) - start
    except ValueError:
        return value


class Scenario(FrozenModel):
    """One simulation run, validated and frozen.

    Attributes:
        name: Short name.
        description: What question the scenario answers (several lines allowed).
        seed: Root seed of the run's random streams (>= 0).
        clock: Start, tick and length.
        price_path: The market price path (``kind`` selects the generator).
        oracle: The oracle feed that turns the market price into index updates.
        venue: The exchange design (``kind``) and its own settings: governance, pool, funds.
        agents: Agent populations.
        events: The event timeline (in file order; see :meth:`timeline`).
        output: Output settings.
    """

    name: Annotated[str, Strict(), Field(min_length=1)]
    description: StrictStr = ""
    seed: Annotated[int, Strict(), Field(ge=0)] = 0
    clock: ClockConfig
    price_path: PricePathConfig
    oracle: OracleFeedConfig = OracleFeedConfig()
    venue: VenueConfig = Field(default_factory=lambda: venue_spec(DEFAULT_KIND).config_model())
    agents: tuple[Population, ...] = ()
    events: tuple[Event, ...] = ()
    output: OutputConfig = OutputConfig()

    @model_validator(mode="before")
    @classmethod
    def _absolute_times(cls, data: Any) -> Any:
        """Converts ISO 8601 times within the run into offsets from ``clock.start``."""
        if not isinstance(data, Mapping):
            return data
        _moved_keys(data)
        _guard_foreign_sections(data)
        if not isinstance(data.get("clock"), Mapping):
            return data
        try:
            start = _safe_timestamp(data["clock"].get("start"))
        except ValueError:
            return data
        out = dict(data)
        if isinstance(out.get("events"), list | tuple):
            out["events"] = [
                {**e, "at": _to_offset(e["at"], start)}
                if isinstance(e, Mapping) and "at" in e
                else e
                for e in out["events"]
            ]
        if isinstance(out.get("agents"), list | tuple):
            out["agents"] = [_population_times(p, start) for p in out["agents"]]
        return out

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        problems: list[Problem] = []
        problems += self._check_populations()
        problems += self._check_times()
        problems += self._check_event_targets()
        problems += self._check_governance_timeline()
        problems += self._check_output()
        problems += self._check_price_data()
        if problems:
            raise ProblemsError(problems)
        return self

    # -- checks ---------------------------------------------------------------------------

    def _check_populations(self) -> list[Problem]:
        problems: list[Problem] = []
        first: dict[str, int] = {}
        admins = 0
        for i, pop in enumerate(self.agents):
            if pop.name in first:
                problems.append(
                    Problem(
                        ("agents", i, "name"),
                        f"duplicate population name (already used by agents.{first[pop.name]})",
                        got=pop.name,
                        allowed="a name not used by another population",
                    )
                )
            first.setdefault(pop.name, i)
            if isinstance(pop, AdminPopulation):
                admins += pop.count
                if admins > 1 and pop.count:
                    problems.append(
                        Problem(
                            ("agents", i, "count"),
                            "a scenario has at most one admin",
                            got=pop.count,
                            allowed="one admin population with count 1",
                        )
                    )
        return problems

    def _check_times(self) -> list[Problem]:
        span = self.clock.span
        problems: list[Problem] = []

        def check(path: tuple[PathElem, ...], offset: int) -> None:
            if 0 <= offset <= span:
                return
            where = "before the start" if offset < 0 else "after the end"
            problems.append(
                Problem(
                    path,
                    f"is {where} of the run (offset {offset} s = {self.clock.iso(offset)})",
                    got=offset,
                    allowed=f"0 to {span} s ({self.clock.iso(0)} to {self.clock.iso(span)})",
                )
            )

        for i, event in enumerate(self.events):
            check(("events", i, "at"), event.at)
        for i, pop in enumerate(self.agents):
            if isinstance(pop, WhalePopulation) and pop.params.schedule is not None:
                for j, t in enumerate(pop.params.schedule):
                    check(("agents", i, "params", "schedule", j), t)
            if isinstance(pop, AdminPopulation) and pop.params.settle_at is not None:
                check(("agents", i, "params", "settle_at"), pop.params.settle_at)
        for i, shock in enumerate(self.price_path.shocks):
            check(("price_path", "shocks", i, "at"), shock.at)
        for i, outage in enumerate(self.oracle.outages):
            check(("oracle", "outages", i, "start"), outage.start)
        for i, manipulation in enumerate(self.oracle.manipulations):
            check(("oracle", "manipulations", i, "start"), manipulation.start)
        return problems

    def _check_event_targets(self) -> list[Problem]:
        wanted: dict[type, tuple[type, str]] = {
            LiquidityWithdrawalEvent: (LiquidityProviderPopulation, "liquidity_provider"),
            KeeperOutageEvent: (KeeperPopulation, "keeper"),
            LiquidatorOutageEvent: (LiquidatorPopulation, "liquidator"),
        }
        problems: list[Problem] = []
        for i, event in enumerate(self.events):
            target = getattr(event, "population", None)
            if target is None:
                continue
            pop_type, type_name = wanted[type(event)]
            names = [p.name for p in self.agents if isinstance(p, pop_type)]
            if target not in names:
                problems.append(
                    Problem(
                        ("events", i, "population"),
                        unknown_name_message(f"{type_name} population", target, names),
                        got=target,
                        allowed=", ".join(names) or f"(no {type_name} population defined)",
                    )
                )
        return problems

    def _check_governance_timeline(self) -> list[Problem]:
        venue = self.venue
        keys = venue.governance_keys
        problems: list[Problem] = []
        for index, event in self._sorted_events():
            if not isinstance(event, SetGovernanceEvent):
                continue
            if event.key not in keys:
                problems.append(
                    Problem(
                        ("events", index, "key"),
                        unknown_name_message("governance key", event.key, keys),
                        got=event.key,
                        allowed=", ".join(keys),
                    )
                )
                continue
            try:
                venue = venue.with_governance(event.key, event.value)
            except GovernanceError as exc:
                problems.append(
                    Problem(
                        ("events", index, "value"),
                        f"rejected by the engine at offset {event.at} s: {exc}",
                        got=event.value,
                    )
                )
        return problems

    def _check_output(self) -> list[Problem]:
        if self.output.record_every <= self.clock.n_ticks:
            return []
        return [
            Problem(
                ("output", "record_every"),
                f"is longer than the run ({self.clock.n_ticks} ticks)",
                got=self.output.record_every,
                allowed=f"1 to {self.clock.n_ticks}",
            )
        ]

    def _check_price_data(self) -> list[Problem]:
        path = self.price_path
        if not isinstance(path, HistoricalPath | BootstrapPath):
            return []
        if not Path(path.file).expanduser().is_file():
            return [Problem(("price_path", "file"), "file not found", got=path.file)]
        try:
            series = load_path_data(path, None)
        except ConfigError as exc:
            return [Problem(("price_path", _data_error_key(str(exc))), str(exc))]
        if not isinstance(path, HistoricalPath):
            return []
        first, last = int(series.times[0]), int(series.times[-1])
        if first <= self.clock.start and self.clock.end <= last:
            return []
        return [
            Problem(
                ("clock", "start"),
                f"the run ({self.clock.iso(0)} to {self.clock.iso(self.clock.span)}) is not"
                f" covered by the price data ({format_time(first)} to {format_time(last)})",
                got=self.clock.start,
                allowed=f"a run within {format_time(first)} to {format_time(last)}",
                related=(
                    ("clock", "duration" if self.clock.duration is not None else "ticks"),
                    ("price_path", "file"),
                ),
            )
        ]

    # -- accessors ------------------------------------------------------------------------

    def governance_at(self, offset: int) -> Any:
        """The venue's section after the ``set_governance`` events at or before ``offset``.

        Args:
            offset: Seconds from ``clock.start``.

        Returns:
            A copy of :attr:`venue` with those changes applied (validated, as in the run).
        """
        venue = self.venue
        for _, event in self._sorted_events():
            if event.at > offset:
                break
            if isinstance(event, SetGovernanceEvent):
                venue = venue.with_governance(event.key, event.value)
        return venue

    def _sorted_events(self) -> list[tuple[int, Any]]:
        return sorted(enumerate(self.events), key=lambda item: (item[1].at, item[0]))

    def timeline(self) -> tuple[Any, ...]:
        """The events in the order they fire: by time, then by position in the file."""
        return tuple(event for _, event in self._sorted_events())

    def population(self, name: str) -> Any:
        """The population called ``name``.

        Raises:
            KeyError: No population has that name.
        """
        for pop in self.agents:
            if pop.name == name:
                return pop
        raise KeyError(name)

    @property
    def n_ticks(self) -> int:
        """Number of ticks of the run."""
        return self.clock.n_ticks


def _data_error_key(message: str) -> str:
    """The price_path key a data-loading error is about."""
    for word, key in (
        ("filter", "filter"),
        ("time_column", "time_column"),
        ("price_column", "price_column"),
        ("the window", "start"),
        ("gap", "gap_tolerance"),
    ):
        if word in message:
            return key
    return "file"


def _population_times(pop: Any, start: int) -> Any:
    if not isinstance(pop, Mapping) or not isinstance(pop.get("params"), Mapping):
        return pop
    params = dict(pop["params"])
    if isinstance(params.get("schedule"), list | tuple):
        params["schedule"] = [_to_offset(t, start) for t in params["schedule"]]
    if "settle_at" in params:
        params["settle_at"] = _to_offset(params["settle_at"], start)
    return {**pop, "params": params}


# ---------------------------------------------------------------------------------------------
# pydantic errors -> problems
# ---------------------------------------------------------------------------------------------


def _strip_annotated(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _union_members(tp: Any) -> tuple[Any, ...] | None:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return tuple(a for a in typing.get_args(tp) if a is not type(None))
    return None


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _literal_values(model: Any, field: str) -> tuple[Any, ...]:
    info = model.model_fields.get(field)
    if info is None:
        return ()
    ann = _strip_annotated(info.annotation)
    return typing.get_args(ann) if typing.get_origin(ann) is Literal else ()


def _matches_label(member: Any, label: PathElem) -> bool:
    if typing.get_origin(member) is Annotated and any(
        isinstance(m, Tag) and m.tag == label for m in typing.get_args(member)[1:]
    ):
        return True
    base = _strip_annotated(member)
    if _is_model(base):
        return any(label in _literal_values(base, f) for f in base.model_fields)
    return getattr(base, "__name__", None) == label


def _locate(loc: Sequence[PathElem]) -> tuple[list[PathElem], Any]:
    """Maps a pydantic ``loc`` to a key path (union labels removed) and the type found there."""
    tp: Any = Scenario
    path: list[PathElem] = []
    i = 0
    while i < len(loc):
        elem = loc[i]
        if tp is None:
            path.append(elem)
            i += 1
            continue
        base = _strip_annotated(tp)
        members = _union_members(base)
        if members is not None:
            if len(members) == 1:
                tp = members[0]
                continue
            chosen = next((m for m in members if _matches_label(m, elem)), None)
            if chosen is not None:
                tp = chosen
                i += 1
            else:
                tp = None
            continue
        if _is_model(base):
            info = base.model_fields.get(elem) if isinstance(elem, str) else None
            tp = info.annotation if info is not None else None
            if info is not None and info.discriminator is not None:
                # A discriminated union of one member (one registered venue) is that model, but
                # pydantic still puts its tag in ``loc``.
                member = _strip_annotated(tp)
                if _is_model(member) and i + 1 < len(loc) and _matches_label(member, loc[i + 1]):
                    path.append(elem)
                    tp = member
                    i += 2
                    continue
        elif typing.get_origin(base) in (tuple, list):
            args = typing.get_args(base)
            tp = args[0] if args else None
        elif typing.get_origin(base) in (dict, Mapping):
            args = typing.get_args(base)
            tp = args[1] if len(args) == 2 else None
        else:
            tp = None
        path.append(elem)
        i += 1
    return path, tp


def _model_of(tp: Any) -> Any:
    base = _strip_annotated(tp)
    members = _union_members(base)
    if members is not None and len(members) == 1:
        return _model_of(members[0])
    return base if _is_model(base) else None


def _union_tags(tp: Any, discriminator: str) -> list[str]:
    members = _union_members(_strip_annotated(tp)) or ()
    tags: list[str] = []
    for member in members:
        base = _strip_annotated(member)
        if _is_model(base):
            tags += [str(v) for v in _literal_values(base, discriminator)]
    return tags


_SIMPLE_MESSAGES: Final[dict[str, tuple[str, str | None]]] = {
    "finite_number": ("must be a finite number", "a finite number"),
    "float_type": ("must be a number", "a number"),
    "float_parsing": ("must be a number", "a number"),
    "int_type": ("must be a whole number", "an integer"),
    "int_parsing": ("must be a whole number", "an integer"),
    "int_from_float": ("must be a whole number", "an integer"),
    "bool_type": ("must be true or false", "true, false"),
    "bool_parsing": ("must be true or false", "true, false"),
    "string_type": ("must be a text", "a string"),
    "model_type": ("must be a mapping of keys", "a mapping"),
    "model_attributes_type": ("must be a mapping of keys", "a mapping"),
    "dict_type": ("must be a mapping", "a mapping"),
    "tuple_type": ("must be a list", "a list"),
    "list_type": ("must be a list", "a list"),
    "missing": ("required key is missing", None),
}


def _genericproblem(error: Mapping[str, Any], path: tuple[PathElem, ...]) -> Problem:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = error.get("input", MISSING) if kind != "missing" else MISSING
    bounds = {
        "greater_than": (">", "gt"),
        "greater_than_equal": (">=", "ge"),
        "less_than": ("<", "lt"),
        "less_than_equal": ("<=", "le"),
    }
    if kind in bounds:
        op, name = bounds[kind]
        bound = ctx[name]
        limit = f"{op} {_num(bound) if isinstance(bound, int | float) else bound}"
        return Problem(path, f"must be {limit}", got=got, allowed=limit)
    if kind in _SIMPLE_MESSAGES:
        message, allowed = _SIMPLE_MESSAGES[kind]
        return Problem(path, message, got=got, allowed=allowed)
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        message = unknown_name_message("value", got, options) if options else error["msg"]
        return Problem(path, message, got=got, allowed=", ".join(options) or None)
    if kind == "too_short":
        return Problem(
            path,
            f"must have at least {ctx.get('min_length')} item(s)",
            got=got,
            allowed=f"at least {ctx.get('min_length')} item(s)",
        )
    if kind == "string_too_short":
        return Problem(path, "must not be empty", got=got)
    if kind == "string_pattern_mismatch":
        return Problem(
            path,
            "must be a name of letters, digits, _ or - (not starting with a digit)",
            got=got,
            allowed=str(ctx.get("pattern")),
        )
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return Problem(path, message, got=got)


def _problems_from_validation(err: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for error in err.errors(include_url=False):
        loc = tuple(error["loc"])
        kind = error["type"]
        ctx = error.get("ctx") or {}
        if kind in ("value_error", "assertion_error") and isinstance(
            ctx.get("error"), ProblemsError
        ):
            base, _ = _locate(loc)
            for p in ctx["error"].problems:
                problems.append(
                    dataclasses.replace(
                        p,
                        path=(*base, *p.path),
                        related=tuple((*base, *r) for r in p.related),
                    )
                )
        elif kind == "extra_forbidden":
            parent_path, parent_tp = _locate(loc[:-1])
            model = _model_of(parent_tp)
            fields = list(model.model_fields) if model is not None else []
            problems.append(
                Problem(
                    (*parent_path, loc[-1]),
                    unknown_name_message("key", loc[-1], fields),
                    allowed=", ".join(fields) or None,
                )
            )
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            path, tp = _locate(loc)
            disc = str(ctx.get("discriminator", "kind")).strip("'\"")
            tags = re.findall(r"'([^']*)'", str(ctx.get("expected_tags", ""))) or _union_tags(
                tp, disc
            )
            if not isinstance(error.get("input"), Mapping):
                problems.append(
                    Problem(tuple(path), "must be a mapping of keys", got=error.get("input"))
                )
            elif kind == "union_tag_invalid":
                tag = error["input"].get(disc, ctx.get("tag"))
                problems.append(
                    Problem(
                        (*path, disc),
                        unknown_name_message(disc, _show(tag).strip("'"), tags),
                        got=tag,
                        allowed=", ".join(tags),
                    )
                )
            else:
                problems.append(
                    Problem((*path, disc), "required key is missing", allowed=", ".join(tags))
                )
        else:
            path, _ = _locate(loc)
            problems.append(_genericproblem(error, tuple(path)))
    return problems


# ---------------------------------------------------------------------------------------------
# Overrides (--set a.b.c=value)
# ---------------------------------------------------------------------------------------------


class _OverrideError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _member_for(members: Sequence[Any], node: Any) -> Any:
    """The union member matching ``node`` (by its discriminator), or None."""
    if not isinstance(node, Mapping):
        simple = [
            m
            for m in members
            if _model_of(m) is None and _union_members(_strip_annotated(m)) is None
        ]
        return simple[0] if simple else None
    for member in members:
        base = _strip_annotated(member)
        inner = _union_members(base)
        if inner is not None:
            found = _member_for(inner, node)
            if found is not None:
                return found
            continue
        if _is_model(base):
            for field in base.model_fields:
                values = _literal_values(base, field)
                if values and field in node and node[field] in values:
                    return base
    return None


def _all_models(members: Sequence[Any]) -> list[Any]:
    models: list[Any] = []
    for member in members:
        base = _strip_annotated(member)
        inner = _union_members(base)
        if inner is not None:
            models += _all_models(inner)
        elif _is_model(base):
            models.append(base)
    return models


def _set_in(raw: YDict, key_text: str, value: Any, origin: Origin, *, typed: bool = False) -> None:
    """Sets one key path of ``raw``; ``value`` is YAML text, or a Python value if ``typed``."""
    parts = key_text.split(".")
    if not key_text or any(not p.strip() for p in parts):
        raise _OverrideError(
            Problem((), f"bad key {key_text!r}", allowed="dotted keys such as clock.tick")
        )
    parts = [p.strip() for p in parts]
    node: Any = raw
    tp: Any = Scenario
    walked: list[PathElem] = []
    # The keys of a venue's free-form ``governance`` mapping, once the walk enters one.
    governance_keys: tuple[str, ...] | None = None

    def read(target: Any, path: Sequence[PathElem]) -> Any:
        return copy_tree(value) if typed else _value_at(value, target, origin, path)

    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        shown = tuple(parts[:depth])  # the path as the user wrote it
        here = (*shown, part)
        base = _strip_annotated(tp) if tp is not None else None
        members = _union_members(base) if base is not None else None
        while members is not None:
            chosen = _member_for(members, node) if len(members) > 1 else members[0]
            if chosen is None:
                models = _all_models(members)
                owner = next((m for m in models if part in m.model_fields), None)
                if owner is None:
                    fields = sorted({f for m in models for f in m.model_fields})
                    raise _OverrideError(
                        Problem(
                            here,
                            unknown_name_message("key", part, fields),
                            allowed=", ".join(fields),
                        )
                    )
                chosen = owner
            base = _strip_annotated(chosen)
            members = _union_members(base)
        if base is None:
            raise _OverrideError(Problem(here, "cannot be set: unknown schema"))
        if typing.get_origin(base) in (tuple, list):
            if not isinstance(node, list):
                raise _OverrideError(Problem(shown, "is not a list in the scenario", got=node))
            index = _list_index(node, part, shown, is_agents=tuple(walked) == ("agents",))
            walked.append(index)
            if last:
                node[index] = read(typing.get_args(base)[0], here)
                if isinstance(node, YList):
                    node.origins[index] = origin
                return
            node = node[index]
            tp = typing.get_args(base)[0]
            continue
        if _is_model(base):
            if base is Scenario and part == "extends":
                raise _OverrideError(
                    Problem(
                        here,
                        "cannot be overridden: extends is resolved before overrides apply",
                        allowed="keys of the resolved scenario",
                    )
                )
            if part not in base.model_fields:
                fields = list(base.model_fields)
                raise _OverrideError(
                    Problem(
                        here, unknown_name_message("key", part, fields), allowed=", ".join(fields)
                    )
                )
            child_tp: Any = base.model_fields[part].annotation
            next_keys = getattr(base, "governance_keys", None) if part == "governance" else None
        elif governance_keys is not None:
            if part not in governance_keys:
                raise _OverrideError(
                    Problem(
                        here,
                        unknown_name_message("governance key", part, governance_keys),
                        allowed=", ".join(governance_keys),
                    )
                )
            child_tp = float | str
            next_keys = None
        else:
            raise _OverrideError(
                Problem(
                    here,
                    f"{_render_path(shown)} is a value, not a mapping with keys",
                    got=node,
                )
            )
        if not isinstance(node, dict):
            raise _OverrideError(Problem(shown, "is not a mapping in the scenario", got=node))
        if last:
            _drop_exclusive(node, [part], walked)
            node[part] = read(child_tp, here)
            if isinstance(node, YDict):
                node.origins[part] = origin
            return
        if node.get(part) is None:
            node[part] = YDict()
            if isinstance(node, YDict):
                node.origins[part] = origin
        node = node[part]
        tp = child_tp
        governance_keys = next_keys
        walked.append(part)


def _list_index(node: list[Any], part: str, shown: Sequence[PathElem], *, is_agents: bool) -> int:
    if re.fullmatch(r"-?\d+", part):
        index = int(part)
        if not 0 <= index < len(node):
            raise _OverrideError(
                Problem(
                    (*shown, part),
                    "index out of range",
                    got=index,
                    allowed=f"0 to {len(node) - 1}" if node else "(the list is empty)",
                )
            )
        return index
    names = [item.get("name") for item in node if isinstance(item, Mapping)]
    if is_agents:
        if part in names:
            return names.index(part)
        valid = [n for n in names if isinstance(n, str)]
        raise _OverrideError(
            Problem(
                (*shown, part),
                unknown_name_message("population", part, valid),
                allowed=", ".join(valid) or "(no populations)",
            )
        )
    raise _OverrideError(
        Problem((*shown, part), "a list element is addressed by its index", got=part)
    )


def _value_at(text: str, tp: Any, origin: Origin, path: Sequence[PathElem]) -> Any:
    """Reads an override value as YAML (text fields keep the text as written).

    Args:
        text: The text after ``=``.
        tp: The schema type of the target (plain ``str`` targets are not parsed).
        origin: Where the override came from (for messages).
        path: The key path being set (for messages).

    Returns:
        The value.

    Raises:
        _OverrideError: The value is not valid YAML.
    """
    if _strip_annotated(tp) is str:
        return text
    if not text.strip():
        return None
    try:
        return parse_yaml(text, origin)
    except ConfigError as exc:
        detail = str(exc).split("invalid YAML: ", 1)[-1]
        raise _OverrideError(
            Problem(tuple(path), f"cannot read the value as YAML: {detail}", got=text)
        ) from None


def apply_overrides(
    raw: Mapping[str, Any], overrides: Sequence[str], *, source: str = "--set"
) -> dict[str, Any]:
    """Applies ``KEY=VALUE`` overrides to a raw (extends-resolved) scenario.

    Args:
        raw: The scenario as loaded by :func:`load_raw_scenario` (not modified).
        overrides: Items like ``"clock.tick=30"``, ``"agents.noise.count=50"`` or
            ``"venue.governance.initial_margin_rate=0.05"``. The value is read as YAML (so ``true``,
            ``1e-3``, ``[1, 2]`` and ``{dist: uniform, low: 1, high: 2}`` work); an empty value
            is null. List elements are addressed by index; ``agents`` also by population name.
            Setting ``clock.duration`` drops ``clock.ticks`` and vice versa.
        source: How to name the scenario in messages.

    Returns:
        A new raw scenario.

    Raises:
        ConfigError: A key does not exist in the schema (with "did you mean"), an index is out of
            range, or a value is not valid YAML; one line per problem.
    """
    result: YDict = copy_tree(raw)
    lines: list[str] = []
    for item in overrides:
        origin = Origin(f"--set {item}")
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise _OverrideError(
                    Problem((), "an override must be KEY=VALUE", got=item, allowed="a.b.c=value")
                )
            _set_in(result, key.strip(), value, origin)
        except _OverrideError as exc:
            lines.append(_format_problem(exc.problem, source, origin))
    if lines:
        raise _config_error(lines)
    return result


def apply_typed_overrides(
    raw: Mapping[str, Any], values: Mapping[str, Any], *, source: str = "--set"
) -> dict[str, Any]:
    """Applies ``{key path: value}`` overrides whose values are already Python values.

    The keys are checked exactly as :func:`apply_overrides` checks them; the values are used as
    given (``0.05`` stays the float 0.05: nothing goes through YAML text). A sweep sets its
    points this way.

    Args:
        raw: The scenario as loaded by :func:`load_raw_scenario` (not modified).
        values: Key paths such as ``"venue.governance.maintenance_margin_rate"`` and their values.
        source: How to name the scenario in messages.

    Returns:
        A new raw scenario.

    Raises:
        ConfigError: A key does not exist in the schema or an index is out of range.
    """
    result: YDict = copy_tree(raw)
    lines: list[str] = []
    for key, value in values.items():
        origin = Origin(f"--set {key}={_show(value)}")
        try:
            _set_in(result, key.strip(), value, origin, typed=True)
        except _OverrideError as exc:
            lines.append(_format_problem(exc.problem, source, origin))
    if lines:
        raise _config_error(lines)
    return result


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def shipped_scenarios() -> list[Path]:
    """The scenario files shipped in :data:`SCENARIO_DIR`, sorted by name."""
    return sorted(SCENARIO_DIR.glob("*.yaml"))


def resolve_scenario_path(spec: str | Path) -> Path:
    """Finds a scenario file: a path, or the bare name of a shipped scenario.

    Args:
        spec: ``path/to/file.yaml``, or ``black_thursday`` / ``black_thursday.yaml`` for
            ``scenarios/black_thursday.yaml``.

    Returns:
        The path of the file.

    Raises:
        ConfigError: No such file.
    """
    path = Path(spec)
    if path.is_file():
        return path
    if path.exists():
        raise ConfigError(f"{spec}: is a directory, not a scenario file")
    if len(path.parts) == 1:
        for name in (path.name, f"{path.name}.yaml"):
            shipped = SCENARIO_DIR / name
            if shipped.is_file():
                return shipped
    names = [p.stem for p in shipped_scenarios()]
    suggestion = did_you_mean(path.stem, names)
    hint = f"; did you mean {suggestion!r}?" if suggestion else ""
    return_hint = f" (shipped scenarios: {', '.join(names)})" if names else ""
    raise ConfigError(f"{spec}: file not found{hint}{return_hint}")


def load_raw_scenario(path: str | Path) -> dict[str, Any]:
    """Reads a scenario file and resolves ``extends``, without validating it.

    Args:
        path: A file, or the bare name of a shipped scenario.

    Returns:
        The merged raw mapping (it remembers the file and line of every entry).

    Raises:
        ConfigError: The file is missing or not valid YAML, or ``extends`` is broken.
    """
    resolved = resolve_scenario_path(path)
    source = str(path)
    return _load_with_extends(resolved, source, ())


def _resolve_data_paths(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """Makes a relative ``price_path.file`` relative to the file that set it."""
    price_path = raw.get("price_path")
    if not isinstance(price_path, Mapping) or not isinstance(price_path.get("file"), str):
        return raw
    origin = price_path.origins.get("file") if isinstance(price_path, YDict) else None
    file = Path(price_path["file"])
    if file.is_absolute() or origin is None or origin.path is None:
        return raw
    out: YDict = copy_tree(raw)
    out["price_path"]["file"] = str((origin.path.parent / file).resolve())
    return out


def _with_origin(
    problem: Problem, raw: Mapping[str, Any], source: str
) -> tuple[Problem, Origin | None]:
    """Finds where a problem's value was written.

    When a problem involves several keys (``related``), the one the user wrote most directly
    (an override, then the file itself, then an inherited file) is named first: that is most
    likely the one the user just changed.
    """
    candidates = [problem.path, *problem.related]
    origins = [origin_for(raw, path) for path in candidates]
    ranks = [_origin_rank(origin, source) for origin in origins]
    best = max(range(len(candidates)), key=lambda i: (ranks[i], -i))
    if best == 0:
        return problem, origins[0]
    rest = tuple(path for i, path in enumerate(candidates) if i not in (0, best))
    moved = dataclasses.replace(
        problem,
        path=candidates[best],
        related=(problem.path, *rest),
        got=_value_at_path(raw, candidates[best]),
    )
    return moved, origins[best]


def _origin_rank(origin: Origin | None, source: str) -> int:
    """How directly the user wrote a value: an override, the file itself, or an inherited file."""
    if origin is None:
        return -1
    if origin.source.startswith("--set "):
        return 2
    return 1 if origin.source == source else 0


def _with_population_name(problem: Problem, raw: Mapping[str, Any]) -> Problem:
    """Adds the population's name to a problem under ``agents.N`` (N counts inherited ones)."""
    path = problem.path
    if len(path) >= 2 and path[0] == "agents" and isinstance(path[1], int):
        name = _value_at_path(raw, (*path[:2], "name"))
        if isinstance(name, str) and path[2:] != ("name",):
            return dataclasses.replace(problem, context=f"population {name!r}")
    return problem


def _value_at_path(raw: Any, path: Sequence[PathElem]) -> Any:
    node = raw
    for elem in path:
        in_mapping = isinstance(node, Mapping) and elem in node
        in_list = isinstance(node, list) and isinstance(elem, int) and 0 <= elem < len(node)
        if not (in_mapping or in_list):
            return MISSING
        node = node[elem]
    return node


#: The venue kinds the ``Scenario`` model was last built for.
_VENUE_KINDS: list[tuple[str, ...]] = [venue_kinds()]


def _follow_registry() -> None:
    """Rebuild the ``venue:`` field when designs were registered (or removed) since.

    A plug-in or a test registers its design at run time with
    :func:`perpsim.engine.registry.register_venue`; its scenarios validate from then on.
    """
    kinds = venue_kinds()
    if kinds == _VENUE_KINDS[0]:
        return
    union = venue_union()
    field = Scenario.model_fields["venue"]
    field.annotation = typing.get_args(union)[0]
    field.metadata = [m for m in typing.get_args(union)[1:] if not isinstance(m, FieldInfo)]
    field.discriminator = "kind"
    Scenario.model_rebuild(force=True)
    _VENUE_KINDS[0] = kinds


def scenario_from_raw(raw: Mapping[str, Any], source: str = "<scenario>") -> Scenario:
    """Validates a raw scenario.

    Args:
        raw: A mapping as returned by :func:`load_raw_scenario` / :func:`apply_overrides` (or
            any plain mapping; relative data files then resolve against the working directory).
        source: How to name the scenario in messages.

    Returns:
        The frozen scenario.

    Raises:
        ConfigError: One line per problem, ``SOURCE: key.path: message (got ...; allowed ...)``.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: (top level): a scenario must be a mapping (got {_show(raw)})")
    _follow_registry()
    try:
        return Scenario.model_validate(_resolve_data_paths(raw))
    except ValidationError as err:
        problems = _problems_from_validation(err)
    lines: list[str] = []
    for problem in problems:
        located, origin = _with_origin(problem, raw, source)
        located = _with_population_name(located, raw)
        lines.append(_format_problem(located, source, origin))
    raise _config_error(lines or [f"{source}: (top level): invalid scenario"])


def load_scenario(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Loads, overrides and validates a scenario file.

    Args:
        path: A file, or the bare name of a shipped scenario (``black_thursday``).
        overrides: ``KEY=VALUE`` items applied after ``extends`` (see :func:`apply_overrides`).

    Returns:
        The frozen scenario.

    Raises:
        ConfigError: The message lists every problem, one per line, each
            ``FILE: key.path: message (got VALUE; allowed ...)``.
    """
    source = str(path)
    raw = load_raw_scenario(path)
    if overrides:
        raw = apply_overrides(raw, overrides, source=source)
    return scenario_from_raw(raw, source)


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def validate_command(paths: Sequence[str], overrides: Sequence[str] = ()) -> int:
    """``perpsim validate FILE...``: checks each file.

    Prints ``OK path`` to stdout for a valid file and the problems to stderr otherwise.

    Args:
        paths: Files (or names of shipped scenarios).
        overrides: ``KEY=VALUE`` items applied to every file.

    Returns:
        0 if every file is valid, else 2.
    """
    if not paths:
        print("perpsim validate: give at least one scenario file", file=sys.stderr)
        return 2
    status = 0
    for path in paths:
        try:
            load_scenario(path, overrides)
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            status = 2
        except Exception as exc:  # a user must never see a traceback
            print(f"{path}: (top level): could not be validated: {exc!r}", file=sys.stderr)
            status = 2
        else:
            print(f"OK {path}")
    return status


def _summary(description: str) -> str:
    return next((line.strip() for line in description.splitlines() if line.strip()), "")


def list_scenarios_command(out: Callable[[str], None] = print) -> int:
    """``perpsim scenarios``: a table of the shipped scenarios.

    Args:
        out: Where to write the lines (stdout by default).

    Returns:
        0, or 2 if a shipped scenario cannot be read.
    """
    rows: list[tuple[str, str, str]] = []
    status = 0
    for path in shipped_scenarios():
        try:
            raw = load_raw_scenario(path)
        except ConfigError as exc:
            rows.append((path.name, "?", f"(cannot be read: {str(exc).splitlines()[0]})"))
            status = 2
            continue
        name = raw.get("name")
        description = raw.get("description")
        rows.append(
            (
                path.name,
                name if isinstance(name, str) else "?",
                _summary(description) if isinstance(description, str) else "",
            )
        )
    if not rows:
        out(f"no scenarios found in {SCENARIO_DIR}")
        return 2
    headers = ("file", "name", "description")
    widths = [max(len(r[i]) for r in [*rows, headers]) for i in range(2)]
    out(f"{headers[0]:<{widths[0]}}  {headers[1]:<{widths[1]}}  {headers[2]}")
    for file, name, summary in rows:
        out(f"{file:<{widths[0]}}  {name:<{widths[1]}}  {summary}")
    return status
