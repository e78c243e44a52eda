"""Parameter sweeps: ``perpsim sweep SWEEP.yaml``.

A sweep runs one scenario at many *points* (values of governance rates or any other scenario
key) and several *seeds* per point, and reduces the runs to risk statistics per point. The file
format, the samplers, the outputs and the resume rules are documented for users in
``docs/sweeps.md``; in short:

1. **Plan** (:func:`load_sweep`): the sweep file is read (YAML, errors name the file, the key
   and the line), the scenario is resolved, every varied key is checked against the scenario
   schema, the points are generated (grid, random, Latin hypercube or Sobol) and every point's
   scenario is validated before anything runs.
2. **Run** (:func:`run_sweep`): each run is a :class:`RunTask` (plain data) executed by
   :func:`run_task` through a :class:`concurrent.futures.Executor`: in-process for one worker,
   a local process pool, or a Dask cluster. :func:`run_task` never raises: a failing run comes
   back as a row with its traceback. Rows are appended to a journal (``results.jsonl``, flushed
   and fsynced) as runs finish.
3. **Collect** (:func:`write_tables`): ``results.parquet`` (one row per run, sorted by point and
   seed) and ``aggregate.parquet`` (one row per point) are rebuilt from the journal at the end,
   on Ctrl-C and on ``--resume``.

Seeds come from one :class:`numpy.random.SeedSequence` rooted at the sweep's ``seed``: run
``(point, seed_index)`` always gets the same seed, so the results do not depend on the executor,
the number of workers or the completion order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import itertools
import json
import math
import multiprocessing
import os
import re
import shutil
import signal
import sys
import time
import traceback
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    CancelledError,
    Executor,
    Future,
    ProcessPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final, Literal, ParamSpec, TextIO, TypeAlias, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from perpsim import __version__
from perpsim.errors import ConfigError
from perpsim.io import atomic_write_bytes, atomic_write_text
from perpsim.metrics import SUMMARY_METRICS, cvar, var

__all__ = [
    "AGGREGATE_EXTRA",
    "MAX_ATTEMPTS",
    "MAX_POINTS",
    "RESULT_COLUMNS_MACHINE_DEPENDENT",
    "ChoiceParam",
    "InlineExecutor",
    "LogUniformParam",
    "Parameter",
    "RangeParam",
    "RunTask",
    "SweepOutcome",
    "SweepPlan",
    "SweepSpec",
    "UniformParam",
    "ValuesParam",
    "aggregate_results",
    "generate_points",
    "load_sweep",
    "metric_column",
    "plan_sweep",
    "print_report",
    "rank_points",
    "read_journal",
    "results_frame",
    "run_seed",
    "run_sweep",
    "run_task",
    "sampler_seed_sequence",
    "unit_samples",
    "write_tables",
]

Keep: TypeAlias = Literal["summary", "timeseries", "all"]
Sampler: TypeAlias = Literal["grid", "random", "lhs", "sobol"]

#: A grid or sample with more points than this is refused (a guard against typos).
MAX_POINTS: Final = 1_000_000

#: A run whose worker process dies this many times is recorded as failed.
MAX_ATTEMPTS: Final = 3

#: Columns of ``results.parquet`` that depend on the machine (leave them out when comparing).
RESULT_COLUMNS_MACHINE_DEPENDENT: Final = ("wall_time_s",)

#: Risk statistics of ``aggregate.parquet`` beyond the per-metric mean/median/p5/p95.
AGGREGATE_EXTRA: Final = (
    "var95_bad_debt",
    "cvar95_bad_debt",
    "var95_insurance_fund_drawdown",
    "cvar95_insurance_fund_drawdown",
    "p_insurance_fund_exhausted",
    "lar95",
)

#: Per-metric statistics of ``aggregate.parquet`` (column ``<metric>_<stat>``).
STATS: Final = ("mean", "median", "p5", "p95")

#: Columns of a result row before the varied parameters.
_ID_COLUMNS: Final = ("point_id", "seed_index", "seed")
#: Columns of a result row after the parameters and before the metrics.
_STATUS_COLUMNS: Final = ("status", "error", "traceback", "wall_time_s")
#: Columns of a result row after the metrics.
_TAIL_COLUMNS: Final = ("perp_status", "invariants", "run_dir")
_RESERVED: Final = frozenset(
    (*_ID_COLUMNS, *_STATUS_COLUMNS, *_TAIL_COLUMNS, *SUMMARY_METRICS, "n_runs", "n_ok")
)

# Seed-sequence domains: the sampler's stream and the two ways of seeding runs never overlap.
_SAMPLER_DOMAIN: Final = 0
_COMMON_DOMAIN: Final = 1
_INDEPENDENT_DOMAIN: Final = 2

JOURNAL: Final = "results.jsonl"
MANIFEST: Final = "sweep.json"
RESULTS: Final = "results.parquet"
AGGREGATE: Final = "aggregate.parquet"
RUNS: Final = "runs"
_LOCK: Final = ".lock"


# ---------------------------------------------------------------------------------------------
# Reading the sweep file
# ---------------------------------------------------------------------------------------------

# YAML 1.2 floats: 1e-3 is a number (YAML 1.1, PyYAML's default, reads it as text).
_FLOAT_RE = (
    r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?(?:[0-9][0-9_]*)[eE][-+]?[0-9]+"
    r"|[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)"
    r"|\.(?:nan|NaN|NAN))$"
)


class _SweepLoader(yaml.SafeLoader):
    """Safe loader with YAML 1.2 floats, times kept as text, and duplicate keys rejected."""


_SweepLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SweepLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(_FLOAT_RE),
    list("-+0123456789."),
)


def _read_yaml(path: Path) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """Reads a YAML file; returns the data and the line of every key path (1-based)."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot be read: {exc}") from None
    loader = _SweepLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[tuple[Any, ...], int] = {}
        if node is not None:
            _collect_lines(node, (), lines, source)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: invalid YAML: {problem}{where}") from None
    finally:
        loader.dispose()
    return data, lines


def _collect_lines(
    node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int], source: str
) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key in seen:
                raise ConfigError(
                    f"{source}: {_render((*path, key))}: duplicate key"
                    f" (line {key_node.start_mark.line + 1})"
                )
            seen.add(key)
            _collect_lines(value_node, (*path, key), lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _collect_lines(item, (*path, i), lines, source)


def _render(path: Sequence[Any]) -> str:
    return ".".join(str(p) for p in path) if path else "(top level)"


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# The sweep file's schema
# ---------------------------------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


Real = Annotated[float, Strict()]


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


class ValuesParam(_Frozen):
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


class RangeParam(_Frozen):
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


class UniformParam(_Frozen):
    """``{dist: uniform, low: a, high: b}``: uniform on ``[low, high]`` (non-grid samplers)."""

    dist: Literal["uniform"]
    low: Real
    high: Real
    integer: Annotated[bool, Strict()] = False

    @model_validator(mode="after")
    def _check(self) -> UniformParam:
        if not self.low < self.high:
            raise ValueError(f"needs low < high, got low={self.low}, high={self.high}")
        if self.integer and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise ValueError("an integer distribution needs integer low and high")
        return self

    def from_unit(self, u: npt.NDArray[np.float64]) -> list[Any]:
        """Maps uniform samples in [0, 1) to values."""
        return _continuous(u, self.low, self.high, False, self.integer)

    def column_kind(self) -> str:
        """The dtype of this parameter's column."""
        return "int64" if self.integer else "float64"


class LogUniformParam(_Frozen):
    """``{dist: loguniform, low: a, high: b}``: uniform logarithm on ``[low, high]``, low > 0."""

    dist: Literal["loguniform"]
    low: Real
    high: Real
    integer: Annotated[bool, Strict()] = False

    @model_validator(mode="after")
    def _check(self) -> LogUniformParam:
        if not 0 < self.low < self.high:
            raise ValueError(f"needs 0 < low < high, got low={self.low}, high={self.high}")
        if self.integer and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise ValueError("an integer distribution needs integer low and high")
        return self

    def from_unit(self, u: npt.NDArray[np.float64]) -> list[Any]:
        """Maps uniform samples in [0, 1) to values."""
        return _continuous(u, self.low, self.high, True, self.integer)

    def column_kind(self) -> str:
        """The dtype of this parameter's column."""
        return "int64" if self.integer else "float64"


class ChoiceParam(_Frozen):
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


def _aggregate_columns() -> tuple[str, ...]:
    return (*(f"{m}_{s}" for m in SUMMARY_METRICS for s in STATS), *AGGREGATE_EXTRA)


def metric_column(metric: str) -> str:
    """The ``aggregate.parquet`` column that ranks points for ``metric``.

    Args:
        metric: A summary metric (ranked by its mean over seeds, e.g. ``bad_debt``) or any
            statistic column of ``aggregate.parquet`` (``bad_debt_p95``, ``var95_bad_debt``,
            ``p_insurance_fund_exhausted``, ...).

    Returns:
        The column name.

    Raises:
        ValueError: ``metric`` is neither.
    """
    if metric in SUMMARY_METRICS:
        return f"{metric}_mean"
    if metric in _aggregate_columns():
        return metric
    raise ValueError(
        f"unknown metric {metric!r} (allowed: a summary metric such as bad_debt, or a column"
        f" of aggregate.parquet such as {', '.join(AGGREGATE_EXTRA)})"
    )


class SweepSpec(_Frozen):
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
            size = math.prod(len(_grid_values(p)) for p in self.parameters.values())
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


def _grid_values(param: Any) -> list[Any]:
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
    if path[0] == "parameters" and key in _RESERVED:
        raise _SpecProblem(path, "clashes with a column of results.parquet")


def _spec_problems(err: ValidationError, source: str, lines: dict[tuple[Any, ...], int]) -> str:
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
        line = _line_of(path, lines)
        if line is not None:
            extras.append(f"line {line}")
        tail = f" ({'; '.join(extras)})" if extras else ""
        out.append(f"{source}: {_render(path)}: {msg}{tail}")
    return "\n".join(dict.fromkeys(out))


def _line_of(path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


# ---------------------------------------------------------------------------------------------
# Samplers and seeds
# ---------------------------------------------------------------------------------------------


def sampler_seed_sequence(root: int) -> np.random.SeedSequence:
    """The SeedSequence of a sweep's sampler (separate from every run's)."""
    return np.random.SeedSequence(root, spawn_key=(_SAMPLER_DOMAIN,))


def run_seed(root: int, point_id: int, seed_index: int, common: bool = True) -> int:
    """The seed of run ``(point_id, seed_index)`` of a sweep rooted at ``root``.

    Args:
        root: The sweep's root seed.
        point_id: The point.
        seed_index: The seed index (``0 .. seeds-1``).
        common: Common random numbers: the seed depends on ``seed_index`` only.

    Returns:
        A seed in ``[0, 2**63)`` for :func:`perpsim.run.run_scenario`.
    """
    key = (_COMMON_DOMAIN, seed_index) if common else (_INDEPENDENT_DOMAIN, point_id, seed_index)
    state = np.random.SeedSequence(root, spawn_key=key).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


def _qmc(cls: Any, d: int, rng: np.random.Generator, **kwargs: Any) -> Any:
    params = inspect.signature(cls).parameters
    key = "rng" if "rng" in params else "seed"
    return cls(d=d, **{key: rng}, **kwargs)


def unit_samples(
    sampler: Sampler, n: int, d: int, seed: np.random.SeedSequence
) -> npt.NDArray[np.float64]:
    """``n`` points in the unit cube ``[0, 1)^d``.

    Args:
        sampler: ``random`` (independent uniforms), ``lhs`` (Latin hypercube: each coordinate
            has exactly one point in each of the ``n`` strata) or ``sobol`` (scrambled Sobol;
            ``n`` a power of two keeps its balance).
        n: Number of points.
        d: Dimension.
        seed: The sampler's SeedSequence.

    Returns:
        An ``(n, d)`` array.
    """
    rng = np.random.default_rng(seed)
    if sampler == "random":
        return rng.random((n, d))
    from scipy.stats import qmc

    if sampler == "lhs":
        engine = _qmc(qmc.LatinHypercube, d, rng)
    elif sampler == "sobol":
        engine = _qmc(qmc.Sobol, d, rng, scramble=True)
    else:
        raise ValueError(f"unit_samples: no unit samples for sampler {sampler!r}")
    out = np.asarray(engine.random(n), dtype=np.float64)
    return np.clip(out, 0.0, np.nextafter(1.0, 0.0))


def generate_points(spec: SweepSpec, root_seed: int) -> list[tuple[Any, ...]]:
    """The points of a sweep: one tuple of values (in ``spec.parameters`` order) per point.

    A grid lists every combination, the first parameter varying slowest; the other samplers
    map :func:`unit_samples` through each parameter. The same spec and root seed always give
    the same points.
    """
    params = list(spec.parameters.values())
    if spec.sampler == "grid":
        lists = [_grid_values(p) for p in params]
        return [tuple(c) for c in itertools.product(*lists)]
    n = int(spec.samples or 0)
    u = unit_samples(spec.sampler, n, len(params), sampler_seed_sequence(root_seed))
    columns = [p.from_unit(u[:, j]) for j, p in enumerate(params)]
    return list(zip(*columns, strict=True))


# ---------------------------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------------------------


def override_text(value: Any) -> str:
    """A value as the text after ``=`` of a scenario override (read back as YAML)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, allow_nan=False)


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: the spec, the resolved scenario, the points and the seeds.

    Attributes:
        spec: The sweep file's content.
        source: The sweep file (for messages), or a label.
        name: The sweep's name.
        scenario: What workers load: an absolute scenario path, or a shipped scenario's name
            (so that workers on other machines find it in their own installation).
        scenario_name: The scenario's ``name``.
        base_overrides: ``set:`` as ``KEY=VALUE`` items.
        keys: The varied keys, in order.
        kinds: The dtype of each varied key's column.
        points: The points.
        root_seed: Root of the sweep's SeedSequence.
        fingerprint: Hash of everything that decides the results (spec, resolved scenario,
            perpsim version); a resumed sweep must have the same.
    """

    spec: SweepSpec
    source: str
    name: str
    scenario: str
    scenario_name: str
    base_overrides: tuple[str, ...]
    keys: tuple[str, ...]
    kinds: tuple[str, ...]
    points: tuple[tuple[Any, ...], ...]
    root_seed: int
    fingerprint: str

    @property
    def n_points(self) -> int:
        """Number of points."""
        return len(self.points)

    @property
    def n_runs(self) -> int:
        """Number of runs (points × seeds)."""
        return len(self.points) * self.spec.seeds

    def point_overrides(self, point_id: int) -> tuple[str, ...]:
        """The ``KEY=VALUE`` items of a point (``set:`` first)."""
        values = self.points[point_id]
        return (
            *self.base_overrides,
            *(f"{k}={override_text(v)}" for k, v in zip(self.keys, values, strict=True)),
        )

    def describe_point(self, point_id: int) -> str:
        """``key=value, ...`` of a point."""
        return ", ".join(
            f"{k}={override_text(v)}" for k, v in zip(self.keys, self.points[point_id], strict=True)
        )

    def seed_of(self, point_id: int, seed_index: int) -> int:
        """The seed of a run."""
        return run_seed(self.root_seed, point_id, seed_index, self.spec.common_seeds)

    def task(self, point_id: int, seed_index: int, out_dir: Path | None) -> RunTask:
        """The task of run ``(point_id, seed_index)``."""
        return RunTask(
            point_id=point_id,
            seed_index=seed_index,
            seed=self.seed_of(point_id, seed_index),
            scenario=self.scenario,
            overrides=self.point_overrides(point_id),
            keep=self.spec.keep,
            out_dir=None if out_dir is None else str(out_dir.resolve()),
        )


def _clean_override_message(text: str) -> str:
    text = re.sub(r"; from --set [^)]*\)", ")", text)
    return re.sub(r" \(from --set [^)]*\)", "", text)


def load_sweep(path: str | Path, *, validate_points: bool = True) -> SweepPlan:
    """Reads and validates a sweep file.

    Args:
        path: The sweep file (YAML).
        validate_points: Validate every point's scenario (the default; a point whose scenario
            is invalid is an error).

    Returns:
        The plan.

    Raises:
        ConfigError: One line per problem, each naming the file and the key.
    """
    path = Path(path)
    source = str(path)
    data, lines = _read_yaml(path)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: (top level): a sweep file must be a mapping")
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_spec_problems(err, source, lines)) from None
    return plan_sweep(
        spec,
        base_dir=path.resolve().parent,
        source=source,
        default_name=path.stem,
        validate_points=validate_points,
        lines=lines,
    )


def plan_sweep(
    spec: SweepSpec,
    *,
    base_dir: Path,
    source: str = "<sweep>",
    default_name: str = "sweep",
    validate_points: bool = True,
    lines: dict[tuple[Any, ...], int] | None = None,
) -> SweepPlan:
    """Resolves a sweep spec: scenario, keys, points and seeds.

    Args:
        spec: The validated spec.
        base_dir: The folder a relative ``scenario`` path is resolved against.
        source: How to name the sweep in messages.
        default_name: The name when ``spec.name`` is not given.
        validate_points: Validate every point's scenario.
        lines: Line numbers of the sweep file's keys (for messages).

    Returns:
        The plan.

    Raises:
        ConfigError: The scenario is missing or invalid, a key does not exist in the scenario,
            or a point's scenario is invalid.
    """
    from perpsim.scenario import (
        SCENARIO_DIR,
        apply_overrides,
        load_raw_scenario,
        resolve_scenario_path,
        scenario_from_raw,
    )

    lines = lines or {}

    def located(message: str, *path: Any) -> str:
        """The message with the line of ``path`` in the sweep file."""
        line = _line_of(tuple(path), lines)
        if line is None:
            return message
        if message.endswith(")"):
            return f"{message[:-1]}; line {line})"
        return f"{message} (line {line})"

    candidate = base_dir / spec.scenario
    if candidate.is_file():
        scenario_ref = str(candidate.resolve())
    else:
        try:
            shipped = resolve_scenario_path(spec.scenario)
        except ConfigError as exc:
            raise ConfigError(
                located(f"{source}: scenario: {exc}; looked in {base_dir} too", "scenario")
            ) from None
        is_shipped = shipped.resolve().parent == SCENARIO_DIR.resolve()
        scenario_ref = spec.scenario if is_shipped else str(shipped.resolve())
    raw = load_raw_scenario(scenario_ref)

    base_overrides = tuple(f"{k}={override_text(v)}" for k, v in spec.overrides.items())
    problems: list[str] = []
    checks = [(("set", key), value) for key, value in spec.overrides.items()]
    for key, param in spec.parameters.items():
        first = (
            param.values[0]
            if isinstance(param, (ValuesParam, ChoiceParam))
            else param.range[0]
            if isinstance(param, RangeParam)
            else param.low
        )
        checks.append((("parameters", key), first))
    for (section, key), value in checks:
        try:
            apply_overrides(raw, [f"{key}={override_text(value)}"], source=f"{source}: {section}")
        except ConfigError as exc:
            text = _clean_override_message(str(exc))
            text = text.replace(f"{source}: {section}: ", f"{source}: {section}.", 1)
            problems.append(located(text, section, key))
    if problems:
        raise ConfigError("\n".join(problems))
    try:
        base_raw = apply_overrides(raw, base_overrides, source=f"{source}: set")
        base = scenario_from_raw(base_raw, f"{spec.scenario} with the sweep's set")
    except ConfigError as exc:
        raise ConfigError(_clean_override_message(str(exc))) from None

    root = base.seed if spec.seed is None else spec.seed
    points = generate_points(spec, root)
    keys = tuple(spec.parameters)
    if validate_points:
        bad: list[str] = []
        n_bad = 0
        for pid, values in enumerate(points):
            items = [f"{k}={override_text(v)}" for k, v in zip(keys, values, strict=True)]
            label = f"{source}: point {pid} ({', '.join(items)})"
            try:
                scenario_from_raw(apply_overrides(base_raw, items, source=label), label)
            except ConfigError as exc:
                n_bad += 1
                if len(bad) < 10:
                    bad.append(_clean_override_message(str(exc)))
        if n_bad:
            more = f"\n... and {n_bad - len(bad)} more invalid points" if n_bad > len(bad) else ""
            raise ConfigError(
                f"{source}: {n_bad} of {len(points)} points give an invalid scenario:\n"
                + "\n".join(bad)
                + more
            )

    decisive = spec.model_dump(
        mode="json",
        by_alias=True,
        exclude={"name", "description", "scenario", "metric", "minimize"},
    )
    decisive["seed"] = root
    digest = hashlib.sha256(
        json.dumps(
            {
                "spec": decisive,
                "scenario": scenario_ref,
                "resolved_scenario": base_raw,
                "perpsim": __version__,
            },
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()
    kinds = tuple(p.column_kind() for p in spec.parameters.values())
    return SweepPlan(
        spec=spec,
        source=source,
        name=spec.name or default_name,
        scenario=scenario_ref,
        scenario_name=base.name,
        base_overrides=base_overrides,
        keys=keys,
        kinds=kinds,
        points=tuple(points),
        root_seed=root,
        fingerprint=digest,
    )


# ---------------------------------------------------------------------------------------------
# One run (executed by a worker)
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RunTask:
    """Everything a worker needs for one run (plain data, picklable).

    Attributes:
        point_id: The point.
        seed_index: The seed index at this point.
        seed: The run's seed.
        scenario: Scenario file (absolute) or a shipped scenario's name.
        overrides: ``KEY=VALUE`` items (the sweep's ``set:`` and the point's values).
        keep: ``summary``, ``timeseries`` or ``all``.
        out_dir: The sweep's folder (run folders go under ``runs/``); None keeps nothing.
        check_invariants: Check the accounting after every tick.
    """

    point_id: int
    seed_index: int
    seed: int
    scenario: str
    overrides: tuple[str, ...]
    keep: Keep = "summary"
    out_dir: str | None = None
    check_invariants: bool = True

    @property
    def run_name(self) -> str:
        """The run's folder name under ``runs/``."""
        return f"{self.point_id:05d}-{self.seed_index:03d}"


def _metric_value(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    return None


def run_task(task: RunTask) -> dict[str, Any]:
    """Runs one scenario of a sweep; never raises (a failure becomes a row).

    Args:
        task: The run.

    Returns:
        The result row: ids, ``status`` (``ok`` or ``failed``), ``error`` and ``traceback``
        (None when ok), ``wall_time_s``, every metric of
        :data:`~perpsim.metrics.SUMMARY_METRICS`, ``perp_status``, ``invariants`` and
        ``run_dir`` (relative to the sweep folder, when the run keeps files).
    """
    t0 = time.perf_counter()
    row: dict[str, Any] = {
        "point_id": task.point_id,
        "seed_index": task.seed_index,
        "seed": task.seed,
        "status": "failed",
        "error": None,
        "traceback": None,
        "wall_time_s": 0.0,
        "perp_status": None,
        "invariants": None,
        "run_dir": None,
    }
    try:
        from perpsim.run import run_scenario, write_outputs
        from perpsim.scenario import load_scenario, resolve_scenario_path

        scenario = load_scenario(task.scenario, task.overrides)
        base_dir = resolve_scenario_path(task.scenario).resolve().parent
        result = run_scenario(
            scenario, task.seed, base_dir=base_dir, check_invariants=task.check_invariants
        )
        summary = result.summary
        for key in SUMMARY_METRICS:
            row[key] = _metric_value(summary.get(key))
        row["perp_status"] = str(summary.get("status"))
        inv = summary.get("invariants", "ok")
        row["invariants"] = inv if isinstance(inv, str) else json.dumps(inv, default=str)
        if task.keep != "summary" and task.out_dir is not None:
            runs = Path(task.out_dir) / RUNS
            runs.mkdir(parents=True, exist_ok=True)
            final = runs / task.run_name
            tmp = runs / f".{task.run_name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
            try:
                write_outputs(result, tmp, "parquet", task.keep)
                if final.exists():
                    shutil.rmtree(final)
                os.replace(tmp, final)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
            row["run_dir"] = f"{RUNS}/{task.run_name}"
        if result.error is None:
            row["status"] = "ok"
        else:
            row["error"] = f"the run stopped: {result.error}"
    except Exception as exc:  # a failing run is a row, never a crash of the sweep
        row["status"] = "failed"
        row["error"] = f"{type(exc).__name__}: {exc}"
        row["traceback"] = traceback.format_exc()
    row["wall_time_s"] = time.perf_counter() - t0
    return row


# ---------------------------------------------------------------------------------------------
# The journal
# ---------------------------------------------------------------------------------------------


def _json_clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, np.generic):
        return _json_clean(v.item())
    return v


def _journal_line(row: Mapping[str, Any]) -> str:
    """One line of the journal (strict JSON: non-finite numbers are written as null)."""
    return json.dumps({k: _json_clean(v) for k, v in row.items()}, allow_nan=False) + "\n"


class _Journal:
    """Append-only ``results.jsonl``: one JSON line per finished run, flushed and fsynced."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def append(self, row: Mapping[str, Any]) -> None:
        self._fh.write(_journal_line(row))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def read_journal(path: Path, *, repair: bool = False) -> dict[tuple[int, int], dict[str, Any]]:
    """The runs recorded in a journal, by ``(point_id, seed_index)``.

    A torn last line (a process killed while writing) and any unreadable line are ignored; a
    run recorded twice keeps its last line.

    Args:
        path: ``results.jsonl``.
        repair: Rewrite the file without its unreadable lines (before appending to it).

    Returns:
        The rows.
    """
    if not path.exists():
        return {}
    data = path.read_bytes()
    rows: dict[tuple[int, int], dict[str, Any]] = {}
    good: list[bytes] = []
    bad = 0
    chunks = data.split(b"\n")
    for i, chunk in enumerate(chunks):
        if not chunk.strip():
            continue
        torn = i == len(chunks) - 1  # no newline after it
        try:
            row = json.loads(chunk)
            key = (int(row["point_id"]), int(row["seed_index"]))
            if torn or not isinstance(row, dict):
                raise ValueError("incomplete line")
        except (ValueError, KeyError, TypeError):
            bad += 1
            continue
        rows[key] = row
        good.append(chunk)
    if repair and (bad or (data and not data.endswith(b"\n"))):
        atomic_write_bytes(path, b"".join(c + b"\n" for c in good))
    return rows


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def _param_series(values: Sequence[Any], kind: str) -> pd.Series:
    if kind == "float64":
        return pd.Series([float(v) for v in values], dtype="float64")
    if kind == "int64":
        return pd.Series([int(v) for v in values], dtype="int64")
    if kind == "bool":
        return pd.Series([bool(v) for v in values], dtype="bool")
    if kind == "string":
        return pd.Series(list(values), dtype="string")
    return pd.Series([json.dumps(v, sort_keys=True) for v in values], dtype="string")


def results_frame(
    plan: SweepPlan, rows: Mapping[tuple[int, int], Mapping[str, Any]]
) -> pd.DataFrame:
    """``results.parquet``: one row per run, sorted by ``(point_id, seed_index)``.

    Columns: ``point_id``, ``seed_index``, ``seed``, every varied key, ``status``, ``error``,
    ``traceback``, ``wall_time_s``, every summary metric (floats; booleans as nullable
    booleans), ``perp_status``, ``invariants``, ``run_dir``.
    """
    keys = sorted(k for k in rows if 0 <= k[0] < plan.n_points and 0 <= k[1] < plan.spec.seeds)
    recs = [rows[k] for k in keys]
    cols: dict[str, pd.Series] = {
        "point_id": pd.Series([k[0] for k in keys], dtype="int64"),
        "seed_index": pd.Series([k[1] for k in keys], dtype="int64"),
        "seed": pd.Series([int(r["seed"]) for r in recs], dtype="int64"),
    }
    for j, (key, kind) in enumerate(zip(plan.keys, plan.kinds, strict=True)):
        cols[key] = _param_series([plan.points[k[0]][j] for k in keys], kind)
    for name in ("status", "error", "traceback"):
        cols[name] = pd.Series([r.get(name) for r in recs], dtype="string")
    cols["wall_time_s"] = pd.Series([r.get("wall_time_s") for r in recs], dtype="float64")
    for m in SUMMARY_METRICS:
        vals = [r.get(m) for r in recs]
        present = [v for v in vals if v is not None]
        if present and all(isinstance(v, bool) for v in present):
            cols[m] = pd.Series(vals, dtype="boolean")
        else:
            cols[m] = pd.Series(
                [math.nan if v is None or isinstance(v, str) else float(v) for v in vals],
                dtype="float64",
            )
    for name in _TAIL_COLUMNS:
        cols[name] = pd.Series([r.get(name) for r in recs], dtype="string")
    return pd.DataFrame(cols)


def _numeric(series: pd.Series) -> npt.NDArray[np.float64]:
    x: npt.NDArray[np.float64] = np.asarray(
        series.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64
    )
    return x[~np.isnan(x)]


def _stats(x: npt.NDArray[np.float64]) -> tuple[float, float, float, float]:
    if not x.size:
        return (math.nan, math.nan, math.nan, math.nan)
    return (
        float(np.mean(x)),
        float(np.median(x)),
        float(np.quantile(x, 0.05)),
        float(np.quantile(x, 0.95)),
    )


def aggregate_results(
    results: pd.DataFrame,
    keys: Sequence[str] = (),
    points: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``aggregate.parquet``: risk statistics per point over its successful runs.

    For every summary metric: ``<metric>_mean``, ``_median``, ``_p5``, ``_p95`` (booleans as
    0/1; NaN values, e.g. trader PnL without traders, are left out). Then ``var95_bad_debt`` /
    ``cvar95_bad_debt`` and ``var95_insurance_fund_drawdown`` /
    ``cvar95_insurance_fund_drawdown`` (95th percentile of the loss, and the mean of the losses
    at or beyond it), ``p_insurance_fund_exhausted`` (share of runs where it was) and ``lar95``
    (95th percentile of the liquidated value). Failed runs are counted (``n_failed``) but left
    out of every statistic.

    Args:
        results: Rows as in ``results.parquet``.
        keys: The varied keys (copied into each point's row).
        points: One row per point (``point_id`` and the keys); points without any row then
            appear with ``n_runs`` 0. Default: the points present in ``results``.

    Returns:
        One row per point, sorted by ``point_id``.
    """
    if points is None:
        cols = ["point_id", *keys]
        points = results[cols].drop_duplicates("point_id").sort_values("point_id")
    points = points.reset_index(drop=True)
    groups = {int(str(pid)): g for pid, g in results.groupby("point_id", sort=True)}
    records: list[dict[str, Any]] = []
    for pid in points["point_id"].astype("int64"):
        g = groups.get(int(pid), results.iloc[0:0])
        ok = g[g["status"] == "ok"]
        rec: dict[str, Any] = {
            "n_runs": len(g),
            "n_ok": len(ok),
            "n_failed": len(g) - len(ok),
        }
        for m in SUMMARY_METRICS:
            x = _numeric(ok[m]) if m in ok else np.empty(0)
            for stat, v in zip(STATS, _stats(x), strict=True):
                rec[f"{m}_{stat}"] = v
        for m in ("bad_debt", "insurance_fund_drawdown"):
            x = _numeric(ok[m]) if m in ok else np.empty(0)
            rec[f"var95_{m}"] = var(x, 0.95)
            rec[f"cvar95_{m}"] = cvar(x, 0.95)
        ex = _numeric(ok["insurance_fund_exhausted"]) if "insurance_fund_exhausted" in ok else None
        rec["p_insurance_fund_exhausted"] = (
            float(np.mean(ex)) if ex is not None and ex.size else math.nan
        )
        lv = _numeric(ok["liquidated_value"]) if "liquidated_value" in ok else np.empty(0)
        rec["lar95"] = float(np.quantile(lv, 0.95)) if lv.size else math.nan
        records.append(rec)
    stats = pd.DataFrame.from_records(records, index=points.index)
    for c in ("n_runs", "n_ok", "n_failed"):
        stats[c] = stats[c].astype("int64") if len(stats) else pd.Series(dtype="int64")
    out = pd.concat([points, stats], axis=1)
    return out


def _points_frame(plan: SweepPlan) -> pd.DataFrame:
    cols: dict[str, pd.Series] = {"point_id": pd.Series(range(plan.n_points), dtype="int64")}
    for j, (key, kind) in enumerate(zip(plan.keys, plan.kinds, strict=True)):
        cols[key] = _param_series([p[j] for p in plan.points], kind)
    return pd.DataFrame(cols)


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    import io

    buf = io.BytesIO()
    df.to_parquet(buf, index=False, engine="pyarrow", compression="zstd")
    return buf.getvalue()


def write_tables(plan: SweepPlan, out_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(Re)builds ``results.parquet`` and ``aggregate.parquet`` from the journal, atomically.

    Returns:
        The results and aggregate frames.
    """
    rows = read_journal(out_dir / JOURNAL)
    results = results_frame(plan, rows)
    aggregate = aggregate_results(results, plan.keys, _points_frame(plan))
    atomic_write_bytes(out_dir / RESULTS, _parquet_bytes(results))
    atomic_write_bytes(out_dir / AGGREGATE, _parquet_bytes(aggregate))
    return results, aggregate


def rank_points(
    aggregate: pd.DataFrame, metric: str, minimize: bool = True, n: int = 5
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``n`` best and ``n`` worst points for ``metric`` (see :func:`metric_column`).

    Points where the metric is undefined (no successful run) are left out. Ties keep the
    point order.
    """
    col = metric_column(metric)
    ranked = aggregate[aggregate[col].notna()].sort_values(
        [col, "point_id"], ascending=[minimize, True], kind="stable"
    )
    worst = aggregate[aggregate[col].notna()].sort_values(
        [col, "point_id"], ascending=[not minimize, True], kind="stable"
    )
    return ranked.head(n), worst.head(n)


# ---------------------------------------------------------------------------------------------
# Executors
# ---------------------------------------------------------------------------------------------

_P = ParamSpec("_P")
_T = TypeVar("_T")


class InlineExecutor(Executor):
    """Runs each submitted call at once, in this process (the one-worker executor).

    The returned futures are already done, so the sweep's loop is the same as with a pool.
    ``KeyboardInterrupt`` propagates from :meth:`submit`.
    """

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Calls ``fn(*args, **kwargs)`` now; returns a finished future."""
        future: Future[_T] = Future()
        future.set_running_or_notify_cancel()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future


def _ignore_sigint() -> None:
    """Pool workers leave Ctrl-C to the parent, which stops the sweep cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def perpsim_version() -> str:
    """perpsim's version in this process (checked on Dask workers)."""
    return __version__


def default_workers() -> int:
    """The number of cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: Modules the fork server imports once, so that new workers start at once.
_PRELOAD: Final = ("perpsim.sweep", "perpsim.run", "perpsim.scenario")


def _mp_context() -> multiprocessing.context.BaseContext:
    """A fork server that has imported perpsim (safe with threads, fast to start workers).

    Where there is no fork server (Windows) workers are spawned: each starts a fresh
    interpreter.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(list(_PRELOAD))
        return ctx
    return multiprocessing.get_context("spawn")


class _Backend:
    """Where runs execute: in-process, a local process pool, or a Dask cluster."""

    def __init__(self, workers: int | None, scheduler: str | None) -> None:
        self.scheduler = scheduler
        self.workers = workers or default_workers()
        self._client: Any = None
        self._threads = 1
        self._checked_at = 0.0
        if scheduler is not None:
            client = self._connect(scheduler)
            self.executor: Executor = client.get_executor(pure=False)
            self.description = f"Dask scheduler {scheduler}"
        elif self.workers <= 1:
            self.executor = InlineExecutor()
            self.description = "1 worker (in-process)"
        else:
            self.executor = self._pool()
            self.description = f"{self.workers} local worker processes"

    def _pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers, mp_context=_mp_context(), initializer=_ignore_sigint
        )

    def _connect(self, address: str) -> Any:
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError(
                "--scheduler needs dask.distributed: pip install 'perpsim[dask]'"
            ) from None
        try:
            self._client = Client(address, timeout="20s")  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"--scheduler {address}: cannot connect: {exc}") from None
        try:
            found = self._client.run(perpsim_version)
        except Exception as exc:
            self._client.close()
            raise ConfigError(
                f"--scheduler {address}: the workers cannot import perpsim ({exc}); install"
                " perpsim (the same version) on every worker machine"
            ) from None
        wrong = {w: v for w, v in found.items() if v != __version__}
        if wrong:
            self._client.close()
            raise ConfigError(
                f"--scheduler {address}: workers run another perpsim version than {__version__}:"
                f" {wrong}"
            )
        self._refresh_threads()
        return self._client

    def _refresh_threads(self) -> None:
        try:
            self._threads = max(1, sum(self._client.nthreads().values()))
        except Exception:
            self._threads = max(self._threads, 1)
        self._checked_at = time.monotonic()

    def capacity(self) -> int:
        """How many runs to keep submitted at once."""
        if self._client is not None:
            if time.monotonic() - self._checked_at > 10.0:
                self._refresh_threads()
            return 2 * self._threads + 2
        return 1 if self.workers <= 1 else 2 * self.workers

    def is_local_pool(self) -> bool:
        """Whether runs go to a local process pool."""
        return isinstance(self.executor, ProcessPoolExecutor)

    def recover(self) -> None:
        """Replaces a broken local pool (a worker process died) by a new one."""
        if isinstance(self.executor, ProcessPoolExecutor):
            with contextlib.suppress(Exception):
                self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = self._pool()

    def close(self, *, kill: bool = False) -> None:
        """Shuts down: waits for nothing if ``kill`` (workers are terminated)."""
        ex = self.executor
        if isinstance(ex, ProcessPoolExecutor) and kill:
            processes = list(getattr(ex, "_processes", {}).values())
            ex.shutdown(wait=False, cancel_futures=True)
            for p in processes:
                with contextlib.suppress(Exception):
                    p.terminate()
            for p in processes:
                with contextlib.suppress(Exception):
                    p.join(timeout=5)
        else:
            with contextlib.suppress(Exception):
                ex.shutdown(wait=not kill)  # a Dask executor cancels its tasks then
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()


# ---------------------------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class _Progress:
    """A rich progress bar with ETA on a terminal; a line per 10% otherwise; or nothing."""

    def __init__(self, mode: Literal["bar", "lines", "off"], total: int, done: int, label: str):
        self.mode = mode
        self.total = total
        self.done = done
        self.failed = 0
        self.label = label
        self._next_line = 0.0
        self._t0 = time.monotonic()
        self._start = done
        self._bar: Any = None
        self._task: Any = None
        if mode == "bar":
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("runs"),
                TextColumn("{task.fields[failed]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._task = self._bar.add_task(label, total=total, completed=done, failed="")
            self._bar.start()
        elif mode == "lines":
            self._next_line = done + max(1, total // 10)

    def advance(self, failed: bool) -> None:
        self.done += 1
        self.failed += int(failed)
        if self._bar is not None:
            text = f"[red]{self.failed} failed" if self.failed else ""
            self._bar.update(self._task, advance=1, failed=text)
        elif self.mode == "lines" and (self.done >= self._next_line or self.done == self.total):
            self._next_line = self.done + max(1, self.total // 10)
            extra = f", {self.failed} failed" if self.failed else ""
            elapsed = time.monotonic() - self._t0
            new = self.done - self._start
            eta = ""
            if new > 0 and self.done < self.total:
                eta = f", ETA {_duration(elapsed / new * (self.total - self.done))}"
            print(
                f"{self.label}: {self.done}/{self.total} runs{extra}, {_duration(elapsed)}"
                f" elapsed{eta}",
                file=sys.stderr,
            )

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


# ---------------------------------------------------------------------------------------------
# Running a sweep
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class SweepOutcome:
    """What a call of :func:`run_sweep` did.

    Attributes:
        out_dir: The sweep's folder.
        n_runs: Runs of the sweep.
        n_recorded: Runs recorded in the journal (finished, ok or failed).
        n_failed: Recorded runs that failed.
        n_new: Runs finished by this call.
        n_skipped: Runs already finished before this call (``resume``).
        wall_time_s: Duration of this call.
        results: The results table.
        aggregate: The aggregate table.
        backend: Where the runs executed.
    """

    out_dir: Path
    n_runs: int
    n_recorded: int
    n_failed: int
    n_new: int
    n_skipped: int
    wall_time_s: float
    results: pd.DataFrame
    aggregate: pd.DataFrame
    backend: str

    @property
    def complete(self) -> bool:
        """Whether every run is recorded."""
        return self.n_recorded == self.n_runs


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    """Holds an exclusive lock on the sweep folder (two sweeps in one folder would clash)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    fh = open(out_dir / _LOCK, "w")  # noqa: SIM115
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(f"{out_dir}: another sweep is running in this folder") from None
        yield
    finally:
        fh.close()


def _manifest(plan: SweepPlan) -> dict[str, Any]:
    return {
        "format": 1,
        "name": plan.name,
        "sweep_file": plan.source,
        "fingerprint": plan.fingerprint,
        "scenario": plan.scenario,
        "scenario_name": plan.scenario_name,
        "parameters": list(plan.keys),
        "sampler": plan.spec.sampler,
        "points": plan.n_points,
        "seeds": plan.spec.seeds,
        "runs": plan.n_runs,
        "root_seed": plan.root_seed,
        "common_seeds": plan.spec.common_seeds,
        "keep": plan.spec.keep,
        "spec": plan.spec.model_dump(mode="json", by_alias=True),
        "perpsim": __version__,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _prepare(plan: SweepPlan, out_dir: Path, resume: bool) -> None:
    manifest_path = out_dir / MANIFEST
    journal = out_dir / JOURNAL
    if manifest_path.exists():
        if not resume:
            raise ConfigError(
                f"{out_dir}: already holds a sweep; add --resume to continue it, or choose"
                " another --out"
            )
        try:
            old = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{manifest_path}: cannot be read: {exc}") from None
        if old.get("fingerprint") != plan.fingerprint:
            raise ConfigError(
                f"{out_dir}: was started from a different sweep (the sweep file, its scenario"
                f" or perpsim {__version__} changed since); resuming would mix results. Use"
                " another --out, or restore the original files"
            )
    elif journal.exists() and journal.stat().st_size > 0:
        raise ConfigError(f"{out_dir}: has {JOURNAL} but no {MANIFEST}; use another --out")
    else:
        atomic_write_text(manifest_path, json.dumps(_manifest(plan), indent=2) + "\n")


def run_sweep(
    plan: SweepPlan,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    progress: Literal["bar", "lines", "off"] = "off",
) -> SweepOutcome:
    """Runs a sweep, streaming each finished run to the journal.

    Args:
        plan: The sweep (see :func:`load_sweep`).
        out_dir: The sweep's folder.
        workers: Local worker processes (default: the number of cores); 1 runs in-process.
        scheduler: A Dask scheduler address (``tcp://host:8786``); overrides ``workers``.
        resume: Continue the sweep in ``out_dir``: runs already recorded are skipped.
        retry_failed: With ``resume``, run the failed runs again.
        progress: ``bar`` (rich, with ETA), ``lines`` (one line per 10%) or ``off``.

    Returns:
        What happened; the tables are written in ``out_dir``.

    Raises:
        ConfigError: ``out_dir`` holds another sweep, or the scheduler cannot be used.
        KeyboardInterrupt: After the tables were rebuilt from the runs finished so far.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        _prepare(plan, out, resume)
        recorded = read_journal(out / JOURNAL, repair=True)
        if retry_failed and any(r.get("status") != "ok" for r in recorded.values()):
            # Forget the failed runs first, so that each run keeps exactly one line.
            recorded = {k: r for k, r in recorded.items() if r.get("status") == "ok"}
            atomic_write_text(out / JOURNAL, "".join(_journal_line(r) for r in recorded.values()))
        done = {k for k in recorded if 0 <= k[0] < plan.n_points and 0 <= k[1] < plan.spec.seeds}
        n_skipped = len(done)
        backend = _Backend(workers, scheduler)
        bar = _Progress(progress, plan.n_runs, n_skipped, plan.name)
        journal = _Journal(out / JOURNAL)
        try:
            n_new = _execute(plan, out, backend, done, journal, bar)
        except BaseException:
            # Ctrl-C, a lost scheduler, ...: keep every finished run and stop the rest.
            bar.stop()
            backend.close(kill=True)
            journal.close()
            write_tables(plan, out)
            raise
        bar.stop()
        backend.close()
        journal.close()
        results, aggregate = write_tables(plan, out)
    n_failed = int((results["status"] != "ok").sum())
    return SweepOutcome(
        out_dir=out,
        n_runs=plan.n_runs,
        n_recorded=len(results),
        n_failed=n_failed,
        n_new=n_new,
        n_skipped=n_skipped,
        wall_time_s=time.perf_counter() - t0,
        results=results,
        aggregate=aggregate,
        backend=backend.description,
    )


def _lost_row(task: RunTask, exc: BaseException, attempts: int) -> dict[str, Any]:
    return {
        "point_id": task.point_id,
        "seed_index": task.seed_index,
        "seed": task.seed,
        "status": "failed",
        "error": (
            f"the worker running this run was lost {attempts} times (killed, out of memory or"
            f" crashed); last: {type(exc).__name__}: {exc}"
        ),
        "traceback": "".join(traceback.format_exception(exc)),
        "wall_time_s": 0.0,
        "perp_status": None,
        "invariants": None,
        "run_dir": None,
    }


def _execute(
    plan: SweepPlan,
    out: Path,
    backend: _Backend,
    done: set[tuple[int, int]],
    journal: _Journal,
    bar: _Progress,
) -> int:
    """Submits the runs not yet done, keeping a bounded number in flight; records each."""
    todo: Iterator[tuple[int, int]] = (
        (p, s) for p in range(plan.n_points) for s in range(plan.spec.seeds) if (p, s) not in done
    )
    retry: deque[RunTask] = deque()
    attempts: Counter[tuple[int, int]] = Counter()
    inflight: dict[Future[dict[str, Any]], RunTask] = {}
    n_new = 0
    exhausted = False

    def next_task() -> RunTask | None:
        nonlocal exhausted
        if retry:
            return retry.popleft()
        if exhausted:
            return None
        nxt = next(todo, None)
        if nxt is None:
            exhausted = True
            return None
        return plan.task(nxt[0], nxt[1], out)

    def settle(future: Future[dict[str, Any]]) -> bool:
        """Records a finished future's row (or retries its run); True if the pool broke."""
        nonlocal n_new
        task = inflight.pop(future)
        exc: BaseException | None = (
            CancelledError("cancelled by the executor")
            if future.cancelled()
            else future.exception()
        )
        if exc is None:
            row = future.result()
        else:
            key = (task.point_id, task.seed_index)
            attempts[key] += 1
            if attempts[key] < MAX_ATTEMPTS:
                retry.append(task)
                return isinstance(exc, BrokenProcessPool)
            row = _lost_row(task, exc, attempts[key])
        journal.append(row)
        n_new += 1
        bar.advance(row["status"] != "ok")
        return isinstance(exc, BrokenProcessPool)

    while True:
        broken = False
        while len(inflight) < backend.capacity():
            task = next_task()
            if task is None:
                break
            try:
                inflight[backend.executor.submit(run_task, task)] = task
            except BrokenProcessPool:
                retry.appendleft(task)
                broken = True
                break
        if not inflight and not broken:
            return n_new
        if not broken:
            finished, _ = wait(list(inflight), timeout=1.0, return_when=FIRST_COMPLETED)
            for future in finished:
                broken = settle(future) or broken
        if broken:
            # A worker process died and the pool is unusable: it fails every run it holds. Record
            # those that finished, retry the others on a new pool.
            wait(list(inflight), timeout=30.0)
            for future in [f for f in inflight if f.done()]:
                settle(future)
            retry.extend(inflight.values())
            inflight.clear()
            backend.recover()


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return "nan" if math.isnan(float(v)) else f"{float(v):,.6g}"
    return str(v)


def print_report(plan: SweepPlan, outcome: SweepOutcome, *, n: int = 5) -> None:
    """Prints the sweep's outcome and the best and worst points for the sweep's metric."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    metric = plan.spec.metric
    col = metric_column(metric)
    best, worst = rank_points(outcome.aggregate, metric, plan.spec.minimize, n)
    sense = "lower" if plan.spec.minimize else "higher"
    values = outcome.aggregate[col].dropna()
    if len(values) > 1 and values.nunique() == 1:
        console.print(f"every point has {col} = {_fmt(values.iloc[0])}: no best or worst point")
        worst = worst.iloc[0:0]
        best = best.iloc[0:0]
    short = [k.rsplit(".", 1)[-1] for k in plan.keys]
    headers = short if len(set(short)) == len(short) else list(plan.keys)
    for title, frame in (("best", best), ("worst", worst)):
        if frame.empty:
            continue
        table = Table(title=f"{title} {len(frame)} points by {col} ({sense} is better)")
        table.add_column("point", justify="right")
        for header in headers:
            table.add_column(header, justify="right")
        table.add_column(col, justify="right")
        table.add_column("ok/runs", justify="right")
        for _, r in frame.iterrows():
            table.add_row(
                str(int(r["point_id"])),
                *(_fmt(r[k]) for k in plan.keys),
                _fmt(r[col]),
                f"{int(r['n_ok'])}/{int(r['n_runs'])}",
            )
        console.print(table)
    console.print(
        f"{outcome.n_recorded}/{outcome.n_runs} runs recorded ({outcome.n_new} now,"
        f" {outcome.n_skipped} before; {outcome.n_failed} failed) on {outcome.backend}"
        f" in {outcome.wall_time_s:,.1f} s"
    )
    console.print(f"outputs: {outcome.out_dir / RESULTS}, {outcome.out_dir / AGGREGATE}")
