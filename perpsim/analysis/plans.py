"""Analysis designs as sweep plans: every run of an analysis goes through the sweep machinery.

An analysis chooses its own points (Saltelli samples, an optimiser's candidates, one venue per
design) and hands them to :func:`perpsim.sweep.plan_sweep`, which checks every key against the
scenario, validates every point's scenario and fingerprints the plan;
:func:`perpsim.sweep.run_sweep` then runs them on the process pool or a Dask cluster, with the
journal, ``--resume`` and failures isolated. A function in place of the model (the Ishigami
self-test) gets a plan of the same shape.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from perpsim import __version__
from perpsim.errors import ConfigError
from perpsim.scenario.yaml import KeyLines
from perpsim.sweep import SweepPlan, SweepSpec, plan_sweep, read_journal
from perpsim.sweep.layout import JOURNAL

__all__ = ["function_plan", "load_function", "point_values", "scenario_plan"]


def _sweep_spec(
    *,
    name: str,
    scenario: str,
    overrides: Mapping[str, Any],
    parameters: Mapping[str, Any],
    n_points: int,
    seeds: int,
    seed: int | None,
    keep: str,
) -> SweepSpec:
    # The points are the analysis's own; "random" with their number only satisfies the sweep
    # file's schema (plan_sweep is handed the points themselves).
    return SweepSpec.model_validate(
        {
            "name": name,
            "scenario": scenario,
            "set": dict(overrides),
            "parameters": dict(parameters),
            "sampler": "random",
            "samples": max(1, n_points),
            "seeds": seeds,
            "seed": seed,
            "keep": keep,
        }
    )


def scenario_plan(
    *,
    source: str,
    base_dir: Path,
    name: str,
    scenario: str,
    overrides: Mapping[str, Any],
    parameters: Mapping[str, Any],
    points: Sequence[tuple[Any, ...]],
    seeds: int,
    seed: int | None,
    keep: str = "summary",
    lines: KeyLines | None = None,
) -> SweepPlan:
    """The sweep plan of an analysis that runs a scenario at the given points.

    Raises:
        ConfigError: The scenario, a key or a point's scenario is invalid (located messages).
    """
    spec = _sweep_spec(
        name=name,
        scenario=scenario,
        overrides=overrides,
        parameters=parameters,
        n_points=len(points),
        seeds=seeds,
        seed=seed,
        keep=keep,
    )
    return plan_sweep(
        spec, base_dir=base_dir, source=source, default_name=name, lines=lines, points=points
    )


def load_function(ref: str) -> Callable[..., Mapping[str, float]]:
    """The function ``module:function`` names.

    Raises:
        ConfigError: It cannot be imported or is not callable.
    """
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"model: {ref!r} must be module:function")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"model: cannot import {ref!r}: {exc}") from None
    if not callable(fn):
        raise ConfigError(f"model: {ref!r} is not a function")
    return fn  # type: ignore[no-any-return]


def function_plan(
    *,
    source: str,
    name: str,
    function: str,
    parameters: Mapping[str, Any],
    points: Sequence[tuple[Any, ...]],
    seed: int,
) -> SweepPlan:
    """The sweep plan of a function run in place of the model (one run per point)."""
    load_function(function)
    spec = _sweep_spec(
        name=name,
        scenario=function,
        overrides={},
        parameters=parameters,
        n_points=len(points),
        seeds=1,
        seed=seed,
        keep="summary",
    )
    pts = tuple(tuple(p) for p in points)
    digest = hashlib.sha256(
        json.dumps(
            {"function": function, "points": pts, "seed": seed, "perpsim": __version__},
            default=str,
        ).encode()
    ).hexdigest()
    return SweepPlan(
        spec=spec,
        source=source,
        name=name,
        scenario=function,
        scenario_name=function,
        base_overrides=(),
        keys=tuple(parameters),
        kinds=tuple(p.column_kind() for p in parameters.values()),
        points=pts,
        root_seed=seed,
        fingerprint=digest,
        function=function,
    )


def point_values(plan: SweepPlan, out_dir: Path, metric: str) -> list[list[float]]:
    """Every successful run's value of ``metric``, per point (booleans as 0/1).

    Reads the sweep's journal, so a function's outputs (``outputs``) and the model's summary
    metrics are read the same way.
    """
    rows = read_journal(out_dir / JOURNAL)
    values: list[list[float]] = [[] for _ in range(plan.n_points)]
    for (pid, _), row in sorted(rows.items()):
        if row.get("status") != "ok" or not 0 <= pid < plan.n_points:
            continue
        outputs = row.get("outputs")
        v = outputs.get(metric) if isinstance(outputs, dict) else row.get(metric)
        if v is not None:
            values[pid].append(float(v))
    return values
