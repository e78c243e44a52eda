"""What agents' typed parameters are made of: numbers or distributions, ranges, durations, times.

Each agent type declares its own parameters model next to its class (``Params``); this module
holds the pieces those models share. A numeric parameter is a number, or a distribution each
agent draws its own value from; its allowed range (:class:`Interval`) is checked against a plain
number and against the whole support of a distribution, so a population can never draw an
invalid value.
"""

from __future__ import annotations

import dataclasses
import math
import re
from abc import abstractmethod
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

import numpy as np
import numpy.typing as npt
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    Strict,
    Tag,
    model_validator,
)

from perpsim.engine.core.config import FrozenModel, NonNegativeReal, PositiveReal, Real, problem_at
from perpsim.oracle.config import parse_duration

__all__ = [
    "ChoiceDist",
    "ConstantDist",
    "DelayParam",
    "Distribution",
    "DistributionBase",
    "DurationParam",
    "FractionParam",
    "Interval",
    "LognormalDist",
    "NonNegativeParam",
    "NormalDist",
    "ParamValue",
    "PositiveParam",
    "ProbabilityParam",
    "RunTime",
    "UniformDist",
    "format_number",
    "looks_absolute",
    "sample_param",
]


def format_number(x: float) -> str:
    """A bound or limit as written in messages: ``5`` rather than ``5.0``."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


_ABSOLUTE_TIME_RE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}")


def looks_absolute(value: object) -> bool:
    """Whether ``value`` is written as an ISO 8601 time (rather than seconds or a duration)."""
    return isinstance(value, str) and _ABSOLUTE_TIME_RE.match(value) is not None


def _parse_run_time(value: object) -> int:
    if looks_absolute(value):
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
            return f"{'>=' if self.low_closed else '>'} {format_number(self.low)}"
        if self.low == -math.inf:
            return f"{'<=' if self.high_closed else '<'} {format_number(self.high)}"
        left = "in [" if self.low_closed else "in ("
        right = "]" if self.high_closed else ")"
        return f"{left}{format_number(self.low)}, {format_number(self.high)}{right}"


_POSITIVE = Interval(0.0, math.inf, low_closed=False)
_NON_NEGATIVE = Interval(0.0, math.inf)
_PROBABILITY = Interval(0.0, 1.0)
_FRACTION = Interval(0.0, 1.0, low_closed=False)


class DistributionBase(FrozenModel):
    """What every distribution of an agent parameter provides: its support and draws."""

    @abstractmethod
    def support(self) -> Interval:
        """The range of values :meth:`sample` can return."""

    @abstractmethod
    def sample(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
        """Draws ``n`` values.

        Args:
            rng: The random stream to draw from.
            n: Number of values.

        Returns:
            A float64 array of shape ``(n,)``.
        """


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


class LognormalDist(DistributionBase):
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


class UniformDist(DistributionBase):
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


class NormalDist(DistributionBase):
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


class ChoiceDist(DistributionBase):
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


class ConstantDist(DistributionBase):
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
    return "distribution" if isinstance(value, Mapping | DistributionBase) else "number"


#: A numeric agent parameter: a number, or a distribution (a mapping with ``dist``).
ParamValue = Annotated[
    Annotated[float, Strict(), Tag("number")] | Annotated[Distribution, Tag("distribution")],
    Discriminator(_param_tag),
]


def _in_range(interval: Interval) -> AfterValidator:
    def check(value: Any) -> Any:
        if isinstance(value, DistributionBase):
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
    value: float | DistributionBase, rng: np.random.Generator, n: int
) -> npt.NDArray[np.float64]:
    """Draws ``n`` values of an agent parameter.

    Args:
        value: A plain number (repeated ``n`` times) or a distribution.
        rng: The random stream to draw from (unused for a plain number).
        n: Number of values (typically the population's ``count``).

    Returns:
        A float64 array of shape ``(n,)``.
    """
    if isinstance(value, DistributionBase):
        return value.sample(rng, n)
    return np.full(n, float(value), dtype=np.float64)
