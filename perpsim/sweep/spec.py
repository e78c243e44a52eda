"""The sweep file: its schema (the varied parameters, the sampler, the seeds) and its reading.

:func:`read_spec` reads a sweep file with the project's YAML 1.2 reader
(:mod:`perpsim.scenario.yaml`) into a validated :class:`SweepSpec`; every problem names the file,
the key and its line. Checking the keys against a scenario is the plan's job
(:mod:`perpsim.sweep.plan`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Literal, Self, TypeAlias

import numpy as np
import numpy.typing as npt
from pydantic import (
    BaseModel,
    BeforeValidator,
    Discriminator,
    Field,
    Strict,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from perpsim.engine.core.config import FrozenModel, Real
from perpsim.errors import ConfigError
from perpsim.scenario.yaml import KeyLines, load_yaml_file
from perpsim.sweep.layout import RESERVED_COLUMNS, metric_column

__all__ = [
    "MAX_POINTS",
    "ChoiceParam",
    "Keep",
    "LogUniformParam",
    "Parameter",
    "RangeParam",
    "Sampler",
    "SweepSpec",
    "UniformParam",
    "ValuesParam",
    "grid_values",
    "line_of",
    "read_spec",
]

Keep: TypeAlias = Literal["summary", "timeseries", "all"]
Sampler: TypeAlias = Literal["grid", "random", "lhs", "sobol"]

#: A grid or sample with more points than this is refused (a guard against typos).
MAX_POINTS: Final = 1_000_000


def _render(path: Sequence[Any]) -> str:
    return ".".join(str(p) for p in path) if path else "(top level)"


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# The sweep file's schema
# ---------------------------------------------------------------------------------------------


def _check_values(values: list[Any]) -> list[Any]:
    for i, v in enumerate(values):
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"values[{i}] is not finite: {v!r}")
        try:
            json.dumps(v, allow_nan=False)
        except (TypeError, ValueError):
            raise ValueError(f"values[{i}] cannot be written as a scenario value: {v!r}") from None
    return values


def _round12(x: float) -> float:
    """``x`` rounded to 12 significant digits (so 0.05 + 0.025 stays 0.075)."""
    return float(f"{x:.12g}")


class ValuesParam(FrozenModel):
    """An explicit list of values: ``{values: [0.05, 0.075, 0.1]}`` (or just the list).

    With a non-grid sampler each sample picks one value, all equally likely.
    """

    values: list[Any] = Field(min_length=1)

    _check = field_validator("values")(_check_values)

    def grid_values(self) -> list[Any]:
        """The values of this parameter on a grid."""
        return list(self.values)

    def from_unit(self, u: npt.NDArray[np.float64]) -> list[Any]:
        """Maps uniform samples in [0, 1) to values."""
        idx = np.minimum((u * len(self.values)).astype(np.int64), len(self.values) - 1)
        return [self.values[int(i)] for i in idx]

    def column_kind(self) -> str:
        """The dtype of this parameter's column."""
        return _kind_of_values(self.values)


class RangeParam(FrozenModel):
    """A range: ``{range: [lo, hi], count: n, scale: linear|log}``.

    On a grid: ``count`` values from ``lo`` to ``hi`` inclusive, evenly spaced (``log``:
    evenly spaced logarithms). With a non-grid sampler: any value in ``[lo, hi]``, uniform in
    the value (``linear``) or in its logarithm (``log``); ``count`` is then not needed.
    ``integer: true`` rounds the values to integers (for counts of agents, for instance).
    """

    range: tuple[Real, Real]
    count: Annotated[int, Strict(), Field(ge=1)] | None = None
    scale: Literal["linear", "log"] = "linear"
    integer: Annotated[bool, Strict()] = False

    @model_validator(mode="after")
    def _check(self) -> RangeParam:
        lo, hi = self.range
        if not lo < hi:
            raise ValueError(f"range [{lo}, {hi}] must have lo < hi")
        if self.scale == "log" and lo <= 0:
            raise ValueError(f"a log-scale range needs lo > 0, got {lo}")
        if self.integer and not (float(lo).is_integer() and float(hi).is_integer()):
            raise ValueError(f"an integer range needs integer bounds, got [{lo}, {hi}]")
        return self

    def grid_values(self) -> list[Any]:
        """The values of this parameter on a grid (``count`` of them)."""
        lo, hi = self.range
        n = self.count or 1
        raw = np.geomspace(lo, hi, n) if self.scale == "log" else np.linspace(lo, hi, n)
        if self.integer:
            return list(dict.fromkeys(round(float(x)) for x in raw))
        return [_round12(float(x)) for x in raw]

    def from_unit(self, u: npt.NDArray[np.float64]) -> list[Any]:
        """Maps uniform samples in [0, 1) to values."""
        lo, hi = self.range
        return _continuous(u, lo, hi, self.scale == "log", self.integer)

    def column_kind(self) -> str:
        """The dtype of this parameter's column."""
        return "int64" if self.integer else "float64"


class _BoundedDist(FrozenModel):
    """What ``uniform`` and ``loguniform`` share: the bounds and the integer flag."""

    #: Uniform in the logarithm (``loguniform``) rather than in the value.
    log_scale: ClassVar[bool] = False

    low: Real
    high: Real
    integer: Annotated[bool, Strict()] = False

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.log_scale and not 0 < self.low < self.high:
            raise ValueError(f"needs 0 < low < high, got low={self.low}, high={self.high}")
        if not self.low < self.high:
            raise ValueError(f"needs low < high, got low={self.low}, high={self.high}")
        if self.integer and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise ValueError("an integer distribution needs integer low and high")
        return self

    def from_unit(self, u: npt.NDArray[np.float64]) -> list[Any]:
        """Maps uniform samples in [0, 1) to values."""
        return _continuous(u, self.low, self.high, self.log_scale, self.integer)

    def column_kind(self) -> str:
        """The dtype of this parameter's column."""
        return "int64" if self.integer else "float64"


class UniformParam(_BoundedDist):
    """``{dist: uniform, low: a, high: b}``: uniform on ``[low, high]`` (non-grid samplers)."""

    dist: Literal["uniform"]


class LogUniformParam(_BoundedDist):
    """``{dist: loguniform, low: a, high: b}``: uniform logarithm on ``[low, high]``, low > 0."""

    log_scale: ClassVar[bool] = True

    dist: Literal["loguniform"]


class ChoiceParam(FrozenModel):
    """``{dist: choice, values: [...], weights: [...]}``: one of the values (non-grid samplers).

    ``weights`` (optional, non-negative, not all zero) make some values more likely.
    """

    dist: Literal["choice"]
    values: list[Any] = Field(min_length=1)
    weights: list[Annotated[float, Strict(), Field(ge=0)]] | None = None

    _check_v = field_validator("values")(_check_values)

    @model_validator(mode="after")
    def _check(self) -> ChoiceParam:
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError(
                    f"weights has {len(self.weights)} entries for {len(self.values)} values"
                )
            if sum(self.weights) <= 0:
                raise ValueError("weights must not all be zero")
        return self

    def from_unit(self, u: npt.NDArray[np.float64]) -> list[Any]:
        """Maps uniform samples in [0, 1) to values (inverse of the weights' CDF)."""
        w = np.asarray(self.weights or [1.0] * len(self.values), dtype=np.float64)
        cdf = np.cumsum(w) / w.sum()
        idx = np.minimum(np.searchsorted(cdf, u, side="right"), len(self.values) - 1)
        return [self.values[int(i)] for i in idx]

    def column_kind(self) -> str:
        """The dtype of this parameter's column."""
        return _kind_of_values(self.values)


def _continuous(
    u: npt.NDArray[np.float64], lo: float, hi: float, log: bool, integer: bool
) -> list[Any]:
    if log:
        x = np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))
        if integer:
            return [int(min(max(round(float(v)), lo), hi)) for v in x]
    elif integer:
        x = np.floor(lo + u * (hi - lo + 1.0))
        return [int(min(float(v), hi)) for v in x]
    else:
        x = lo + u * (hi - lo)
    return [min(max(_round12(float(v)), lo), hi) for v in x]


def _kind_of_values(values: Sequence[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int64"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "float64"
    if all(isinstance(v, str) for v in values):
        return "string"
    return "json"


_TAGS: Final = ("values", "range", "uniform", "loguniform", "choice")


def _param_shorthand(value: Any) -> Any:
    if isinstance(value, list):
        return {"values": value}
    return value


def _param_tag(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return {
            ValuesParam: "values",
            RangeParam: "range",
            UniformParam: "uniform",
            LogUniformParam: "loguniform",
            ChoiceParam: "choice",
        }.get(type(value))
    if not isinstance(value, Mapping):
        return None
    if "dist" in value:
        dist = value["dist"]
        return dist if dist in ("uniform", "loguniform", "choice") else None
    if "range" in value:
        return "range"
    if "values" in value:
        return "values"
    return None


#: How one parameter varies.
Parameter = Annotated[
    Annotated[ValuesParam, Tag("values")]
    | Annotated[RangeParam, Tag("range")]
    | Annotated[UniformParam, Tag("uniform")]
    | Annotated[LogUniformParam, Tag("loguniform")]
    | Annotated[ChoiceParam, Tag("choice")],
    Discriminator(
        _param_tag,
        custom_error_type="parameter_kind",
        custom_error_message=(
            "give values: [...], range: [lo, hi] (with count for a grid), or"
            " dist: uniform | loguniform | choice"
        ),
    ),
    BeforeValidator(_param_shorthand),
]


class SweepSpec(FrozenModel):
    """A sweep file.

    Attributes:
        name: Short name (default: the file's stem).
        description: What the sweep is for.
        scenario: A scenario file (relative to the sweep file) or a shipped scenario's name.
        overrides: ``set:``, fixed ``dotted.key: value`` overrides applied to every run.
        parameters: The varied keys, each a :data:`Parameter`, in order.
        sampler: ``grid`` (every combination), ``random``, ``lhs`` (Latin hypercube) or
            ``sobol`` (scrambled Sobol sequence).
        samples: Number of points of a non-grid sampler.
        seeds: Runs per point.
        seed: Root of the sweep's SeedSequence (default: the scenario's seed).
        common_seeds: Seed index ``i`` gets the same seed at every point (common random numbers:
            every point sees the same market paths, so differences between points are due to
            the parameters). With ``false`` every run gets its own seed.
        keep: What each run keeps besides its row: ``summary`` (nothing), ``timeseries`` or
            ``all`` (a folder under ``runs/``).
        metric: The metric of the best / worst table.
        minimize: Whether smaller values of ``metric`` are better.
    """

    name: Annotated[str, Strict(), Field(min_length=1)] | None = None
    description: Annotated[str, Strict()] | None = None
    scenario: Annotated[str, Strict(), Field(min_length=1)]
    overrides: dict[str, Any] = Field(default_factory=dict, alias="set")
    parameters: dict[str, Parameter] = Field(min_length=1)
    sampler: Sampler = "grid"
    samples: Annotated[int, Strict(), Field(ge=1)] | None = None
    seeds: Annotated[int, Strict(), Field(ge=1, le=1_000_000)] = 1
    seed: Annotated[int, Strict(), Field(ge=0)] | None = None
    common_seeds: Annotated[bool, Strict()] = True
    keep: Keep = "summary"
    metric: Annotated[str, Strict()] = "bad_debt"
    minimize: Annotated[bool, Strict()] = True

    @field_validator("overrides")
    @classmethod
    def _check_overrides(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_values(list(value.values()))
        return value

    @field_validator("metric")
    @classmethod
    def _check_metric(cls, value: str) -> str:
        metric_column(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> SweepSpec:
        for key in self.parameters:
            _check_key(key, ("parameters", key))
            if key in self.overrides:
                raise _SpecProblem(("parameters", key), "is also in set: give it in one place")
        for key in self.overrides:
            _check_key(key, ("set", key))
        if self.sampler == "grid":
            if self.samples is not None:
                raise _SpecProblem(
                    ("samples",), "is for the random, lhs and sobol samplers, not for grid"
                )
            for key, p in self.parameters.items():
                if isinstance(p, (UniformParam, LogUniformParam, ChoiceParam)):
                    raise _SpecProblem(
                        ("parameters", key),
                        "a distribution needs sampler random, lhs or sobol; a grid takes"
                        " values: [...] or range: [lo, hi] with count",
                    )
                if isinstance(p, RangeParam) and p.count is None:
                    raise _SpecProblem(("parameters", key), "a range on a grid needs count")
            size = math.prod(len(grid_values(p)) for p in self.parameters.values())
            if size > MAX_POINTS:
                raise _SpecProblem(
                    ("parameters",), f"the grid has {size} points (at most {MAX_POINTS})"
                )
        else:
            if self.samples is None:
                raise _SpecProblem(
                    ("sampler",), f"sampler {self.sampler} needs samples (the number of points)"
                )
            if self.samples > MAX_POINTS:
                raise _SpecProblem(("samples",), f"must be <= {MAX_POINTS}")
            if self.sampler == "sobol" and self.samples & (self.samples - 1):
                lo = 1 << (self.samples.bit_length() - 1)
                raise _SpecProblem(
                    ("samples",),
                    f"a Sobol sample is balanced only for a power of two points, got"
                    f" {self.samples} (use {lo} or {lo * 2}, or sampler lhs)",
                )
        return self


class _SpecProblem(ValueError):
    """A problem found by a whole-file check, at a key path of the file."""

    def __init__(self, path: tuple[Any, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


def grid_values(param: Any) -> list[Any]:
    """The grid values of a :data:`Parameter` (a list or a range with ``count``)."""
    if isinstance(param, (ValuesParam, RangeParam)):
        return param.grid_values()
    raise ValueError(f"{type(param).__name__} has no grid values")


def _check_key(key: str, path: tuple[Any, ...]) -> None:
    parts = key.split(".")
    if not key or any(not p.strip() for p in parts):
        raise _SpecProblem(path, "bad key: use a dotted scenario key such as clock.tick")
    if parts[0] == "seed":
        raise _SpecProblem(path, "cannot be set or varied: the sweep seeds each run")
    if parts[0] == "extends":
        raise _SpecProblem(path, "cannot be set: extends is resolved before overrides apply")
    if path[0] == "parameters" and key in RESERVED_COLUMNS:
        raise _SpecProblem(path, "clashes with a column of results.parquet")


def _spec_problems(err: ValidationError, source: str, lines: KeyLines) -> str:
    out: list[str] = []
    for e in err.errors():
        loc = list(e["loc"])
        # parameters.<key>.<tag>.<field>: the union's tag is not part of the file.
        if len(loc) >= 3 and loc[0] == "parameters" and loc[2] in _TAGS:
            del loc[2]
        msg = str(e["msg"])
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        kind = e["type"]
        value: Any = e.get("input")
        has_value = "input" in e and kind not in ("missing", "extra_forbidden")
        problem = e.get("ctx", {}).get("error")
        if isinstance(problem, _SpecProblem):
            loc = [*loc, *problem.path]
            has_value = False
        path = tuple(loc)
        if kind == "extra_forbidden":
            msg = "unknown key"
        elif kind == "too_short" and path == ("parameters",):
            msg = "give at least one parameter to vary"
        extras: list[str] = []
        if has_value and (not isinstance(value, (dict, list)) or kind == "parameter_kind"):
            extras.append(f"got {_show(value)}")
        line = line_of(path, lines)
        if line is not None:
            extras.append(f"line {line}")
        tail = f" ({'; '.join(extras)})" if extras else ""
        out.append(f"{source}: {_render(path)}: {msg}{tail}")
    return "\n".join(dict.fromkeys(out))


def line_of(path: tuple[Any, ...], lines: KeyLines) -> int | None:
    """The line of ``path`` in the sweep file, or of its closest parent that has one."""
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


def read_spec(path: Path) -> tuple[SweepSpec, KeyLines]:
    """Reads and validates a sweep file.

    Args:
        path: The sweep file (YAML).

    Returns:
        The spec, and the line of every key path of the file (for later messages).

    Raises:
        ConfigError: One line per problem, each naming the file and the key.
    """
    source = str(path)
    data, lines = load_yaml_file(path, source, "sweep file")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: (top level): a sweep file must be a mapping")
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_spec_problems(err, source, lines)) from None
    return spec, lines
