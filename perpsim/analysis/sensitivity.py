"""Sobol sensitivity indices of run metrics: ``perpsim sensitivity SPEC.yaml``.

Which governance rates and market parameters matter for a metric? The spec gives each
parameter's range or distribution, the metrics, ``N`` (a power of two) and the seeds. SALib
draws the Saltelli design (``N × (D + 2)`` points for ``D`` parameters, ``N × (2D + 2)`` with
second-order indices) on the unit cube; each parameter maps its coordinate to a value the way a
sweep's parameters do (:meth:`~perpsim.sweep.RangeParam.from_unit`); the points run through
the sweep machinery (:func:`perpsim.sweep.run_sweep`: process pool or Dask, journal, resume,
failures isolated); SALib estimates first-order and total indices with bootstrap confidence
intervals from the mean of each point's seeds. Because the design is a Sobol sequence, its first
``n × (D + 2)`` rows are the design of ``n``: the indices at ``N/4`` and ``N/2`` come from the
same runs, and the convergence check compares them with those at ``N``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import Field, Strict, field_validator, model_validator

from perpsim.analysis.plans import function_plan, load_function, point_values, scenario_plan
from perpsim.analysis.specs import (
    SpecProblem,
    check_metric,
    located,
    read_analysis_file,
)
from perpsim.engine.core.config import FrozenModel, Real
from perpsim.errors import ConfigError
from perpsim.io import atomic_write_text
from perpsim.progress import ProgressMode
from perpsim.scenario.yaml import KeyLines
from perpsim.sweep import Parameter, SweepOutcome, SweepPlan, run_sweep

__all__ = [
    "INDICES",
    "SUMMARY",
    "SWEEP_DIR",
    "IncompleteRunsError",
    "SensitivityPlan",
    "SensitivityResult",
    "SensitivitySpec",
    "analyse",
    "load_sensitivity",
    "report_section",
    "run_sensitivity",
]

#: The sweep folder inside the analysis folder (journal, results, resume).
SWEEP_DIR: Final = "sweep"
#: The indices at N/4, N/2 and N, one row per metric, parameter and N.
INDICES: Final = "indices.csv"
#: What was found: the stability verdict per metric, the design, the files.
SUMMARY: Final = "sensitivity.json"
#: The report section (Markdown).
REPORT: Final = "report.md"


class SensitivitySpec(FrozenModel):
    """A sensitivity file.

    Attributes:
        name: Short name (default: the file's stem).
        description: What the analysis is for.
        scenario: A scenario file (relative to this file) or a shipped scenario's name.
        model: ``module:function`` run in place of the scenario (``scenario`` or ``model``,
            not both): it takes the parameters' values and a seed and returns a mapping of
            outputs (the self-test uses ``perpsim.analysis.ishigami:ishigami``).
        overrides: ``set:``, fixed overrides applied to every run.
        parameters: The varied keys, each a range (``{range: [lo, hi]}``, ``scale: log``) or
            a distribution (``uniform``, ``loguniform``, ``choice``), as in a sweep file.
        metrics: The run metrics to explain (``summary.json`` names; a model's outputs).
        N: Base sample size, a power of two (at least 8): ``N × (D + 2)`` points.
        seeds: Runs per point (common random numbers: seed ``i`` is the same at every point);
            the indices explain the mean over seeds (for a boolean, the probability).
        seed: Root of the runs' seeds (default: the scenario's) and of the design's scramble.
        second_order: Also estimate second-order indices (``N × (2D + 2)`` points).
        resamples: Bootstrap resamples of the confidence intervals.
        conf_level: Confidence level of the intervals.
        stability_tolerance: The indices are stable when none moves by more than this between
            ``N/2`` and ``N``.
    """

    name: Annotated[str, Strict(), Field(min_length=1)] | None = None
    description: Annotated[str, Strict()] | None = None
    scenario: Annotated[str, Strict(), Field(min_length=1)] | None = None
    model: Annotated[str, Strict(), Field(min_length=1)] | None = None
    overrides: dict[str, Any] = Field(default_factory=dict, alias="set")
    parameters: dict[str, Parameter] = Field(min_length=1)
    metrics: list[Annotated[str, Strict()]] = Field(min_length=1)
    N: Annotated[int, Strict(), Field(ge=8, le=1 << 20)]
    seeds: Annotated[int, Strict(), Field(ge=1, le=10_000)] = 1
    seed: Annotated[int, Strict(), Field(ge=0)] | None = None
    second_order: Annotated[bool, Strict()] = False
    resamples: Annotated[int, Strict(), Field(ge=10, le=100_000)] = 1000
    conf_level: Annotated[Real, Field(gt=0, lt=1)] = 0.95
    stability_tolerance: Annotated[Real, Field(gt=0, lt=1)] = 0.05

    @field_validator("N")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            lo = 1 << (value.bit_length() - 1)
            raise ValueError(
                f"N must be a power of two for a balanced Sobol design, got {value} (use"
                f" {lo} or {lo * 2})"
            )
        return value

    @model_validator(mode="after")
    def _check(self) -> SensitivitySpec:
        if (self.scenario is None) == (self.model is None):
            raise SpecProblem((), "give scenario (a scenario to run) or model (a function)")
        if self.model is not None:
            if self.overrides:
                raise SpecProblem(("set",), "is for a scenario, not for a model function")
            if self.seeds != 1:
                raise SpecProblem(("seeds",), "a model function runs once per point")
        else:
            for i, m in enumerate(self.metrics):
                try:
                    check_metric(m)
                except ValueError as exc:
                    raise SpecProblem(("metrics", i), str(exc)) from None
        if len(set(self.metrics)) != len(self.metrics):
            raise SpecProblem(("metrics",), "names a metric twice")
        for key in self.parameters:
            if key in self.overrides:
                raise SpecProblem(("parameters", key), "is also in set: give it in one place")
        return self


@dataclasses.dataclass(frozen=True)
class SensitivityPlan:
    """A validated sensitivity analysis: its spec, its Saltelli design and its sweep plan.

    Attributes:
        spec: The file's content.
        source: The file, for messages.
        name: The analysis's name.
        unit: The design on the unit cube, ``(n_points, D)``.
        sweep: The sweep plan that runs it.
    """

    spec: SensitivitySpec
    source: str
    name: str
    unit: npt.NDArray[np.float64]
    sweep: SweepPlan

    @property
    def keys(self) -> tuple[str, ...]:
        """The varied keys."""
        return tuple(self.spec.parameters)

    @property
    def rows_per_base(self) -> int:
        """Design rows per base sample: ``D + 2`` (``2D + 2`` with second order)."""
        d = len(self.keys)
        return 2 * d + 2 if self.spec.second_order else d + 2

    @property
    def levels(self) -> tuple[int, int, int]:
        """The base sizes of the convergence check: ``N/4``, ``N/2``, ``N``."""
        n = self.spec.N
        return n // 4, n // 2, n


def _problem(keys: Sequence[str]) -> dict[str, Any]:
    return {"num_vars": len(keys), "names": list(keys), "bounds": [[0.0, 1.0]] * len(keys)}


def _design(spec: SensitivitySpec, seed: int) -> npt.NDArray[np.float64]:
    from SALib.sample import sobol as sobol_sample  # deferred: SALib is slow to import

    unit = sobol_sample.sample(
        _problem(list(spec.parameters)),
        spec.N,
        calc_second_order=spec.second_order,
        scramble=True,
        seed=seed,
    )
    return np.clip(np.asarray(unit, dtype=np.float64), 0.0, np.nextafter(1.0, 0.0))


def load_sensitivity(path: str | Path) -> SensitivityPlan:
    """Reads, validates and plans a sensitivity file (every point's scenario is validated).

    Raises:
        ConfigError: One line per problem, each naming the file, the key and the line.
    """
    path = Path(path)
    spec, lines, _ = read_analysis_file(path, SensitivitySpec, "sensitivity file")
    return plan_sensitivity(
        spec, base_dir=path.resolve().parent, source=str(path), lines=lines, default_name=path.stem
    )


def plan_sensitivity(
    spec: SensitivitySpec,
    *,
    base_dir: Path,
    source: str = "<sensitivity>",
    lines: KeyLines | None = None,
    default_name: str = "sensitivity",
) -> SensitivityPlan:
    """Draws the Saltelli design of ``spec`` and plans its runs.

    Raises:
        ConfigError: The scenario, a key, a point or a model's metric is invalid.
    """
    lines = lines or {}
    name = spec.name or default_name
    unit = _design(spec, spec.seed or 0)
    params = list(spec.parameters.values())
    columns = [p.from_unit(unit[:, j]) for j, p in enumerate(params)]
    points = list(zip(*columns, strict=True))
    if spec.model is not None:
        try:
            fn = load_function(spec.model)
        except ConfigError as exc:
            raise ConfigError(
                located(source, ("model",), str(exc).removeprefix("model: "), lines)
            ) from None
        outputs = getattr(fn, "outputs", None)
        if outputs is not None:
            for i, m in enumerate(spec.metrics):
                try:
                    check_metric(m, tuple(outputs))
                except ValueError as exc:
                    raise ConfigError(located(source, ("metrics", i), str(exc), lines)) from None
        sweep = function_plan(
            source=source,
            name=name,
            function=spec.model,
            parameters=spec.parameters,
            points=points,
            seed=spec.seed or 0,
        )
    else:
        sweep = scenario_plan(
            source=source,
            base_dir=base_dir,
            name=name,
            scenario=str(spec.scenario),
            overrides=spec.overrides,
            parameters=spec.parameters,
            points=points,
            seeds=spec.seeds,
            seed=spec.seed,
            lines=lines,
        )
    return SensitivityPlan(spec=spec, source=source, name=name, unit=unit, sweep=sweep)


@dataclasses.dataclass
class SensitivityResult:
    """The indices of every metric at N/4, N/2 and N, and the stability verdicts.

    Attributes:
        indices: One row per metric, parameter and base size ``n``: ``S1``, ``S1_conf``,
            ``ST``, ``ST_conf`` (the half-width of the interval at ``conf_level``).
        stable: Per metric: no index moved by more than ``stability_tolerance`` between N/2
            and N (None when the metric does not vary).
        max_change: Per metric: the largest move of an index between N/2 and N.
        notes: Sentences for the reader (a metric that does not vary, failed runs).
        outcome: The sweep's outcome (None when only analysed from a finished folder).
    """

    indices: pd.DataFrame
    stable: dict[str, bool | None]
    max_change: dict[str, float]
    notes: list[str]
    outcome: SweepOutcome | None = None


def _indices(
    plan: SensitivityPlan, y: npt.NDArray[np.float64], n: int, seed: int
) -> dict[str, npt.NDArray[np.float64]]:
    from SALib.analyze import sobol as sobol_analyze

    rows = n * plan.rows_per_base
    res = sobol_analyze.analyze(
        _problem(plan.keys),
        y[:rows],
        calc_second_order=plan.spec.second_order,
        num_resamples=plan.spec.resamples,
        conf_level=plan.spec.conf_level,
        print_to_console=False,
        seed=seed,
    )
    return {k: np.asarray(res[k], dtype=np.float64) for k in ("S1", "S1_conf", "ST", "ST_conf")}


class IncompleteRunsError(RuntimeError):
    """Some points of the design have no successful run: the estimator needs every point."""


def analyse(plan: SensitivityPlan, out_dir: Path) -> SensitivityResult:
    """The indices of the runs recorded in ``out_dir``'s sweep folder.

    Raises:
        IncompleteRunsError: Some points have no successful run.
    """
    spec = plan.spec
    records: list[dict[str, Any]] = []
    stable: dict[str, bool | None] = {}
    max_change: dict[str, float] = {}
    notes: list[str] = []
    for metric in spec.metrics:
        per_point = point_values(plan.sweep, out_dir / SWEEP_DIR, metric)
        missing = [i for i, v in enumerate(per_point) if not v]
        if missing:
            raise IncompleteRunsError(
                f"{plan.source}: {len(missing)} of {len(per_point)} points have no successful"
                f" run with {metric} (first: point {missing[0]}); the Sobol estimator needs"
                f" every point: see {out_dir / SWEEP_DIR / 'results.parquet'} and run again"
                " with --resume --retry-failed"
            )
        y = np.asarray([float(np.mean(v)) for v in per_point], dtype=np.float64)
        by_n: dict[int, dict[str, npt.NDArray[np.float64]]] = {}
        for n in plan.levels:
            part = y[: n * plan.rows_per_base]
            if float(np.var(part)) == 0.0:
                nan = np.full(len(plan.keys), math.nan)
                by_n[n] = {"S1": nan, "S1_conf": nan, "ST": nan, "ST_conf": nan}
            else:
                by_n[n] = _indices(plan, y, n, spec.seed or 0)
            for j, key in enumerate(plan.keys):
                records.append(
                    {
                        "metric": metric,
                        "parameter": key,
                        "n": n,
                        **{k: float(v[j]) for k, v in by_n[n].items()},
                    }
                )
        half, full = by_n[plan.levels[1]], by_n[plan.levels[2]]
        if np.isnan(full["S1"]).all():
            stable[metric] = None
            max_change[metric] = math.nan
            notes.append(
                f"{metric} is the same at every point ({y[0]:.6g}): it has no variance to"
                " explain, so its indices are undefined"
            )
            continue
        change = float(
            np.nanmax(np.abs(np.concatenate([full["S1"] - half["S1"], full["ST"] - half["ST"]])))
        )
        max_change[metric] = change
        stable[metric] = bool(change <= spec.stability_tolerance)
        if not stable[metric]:
            notes.append(
                f"{metric}: an index moved by {change:.3f} between N={plan.levels[1]} and"
                f" N={plan.levels[2]} (tolerance {spec.stability_tolerance}): not converged;"
                f" double N (or add seeds if the metric is noisy)"
            )
    return SensitivityResult(
        indices=pd.DataFrame.from_records(records),
        stable=stable,
        max_change=max_change,
        notes=notes,
    )


def _fmt(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.3f}"


def report_section(plan: SensitivityPlan, result: SensitivityResult) -> str:
    """The report section: what was varied, the indices with their intervals, convergence."""
    spec = plan.spec
    n_full = plan.levels[2]
    what = f"scenario `{spec.scenario}`" if spec.scenario else f"model `{spec.model}`"
    pct = round(spec.conf_level * 100)
    lines = [
        f"## Sensitivity: {plan.name}",
        "",
        *([spec.description.strip(), ""] if spec.description else []),
        f"Sobol indices of {len(spec.metrics)} metric(s) of the {what} over"
        f" {len(plan.keys)} parameters: N = {n_full}, {plan.sweep.n_points} points ×"
        f" {spec.seeds} seed(s) = {plan.sweep.n_runs} runs (Saltelli design, SALib;"
        f" {pct}% bootstrap intervals of {spec.resamples} resamples). S1 is the share of the"
        " metric's variance a parameter explains alone; ST adds its interactions.",
        "",
        "| parameter | range |",
        "|---|---|",
    ]
    for key, param in spec.parameters.items():
        lines.append(f"| `{key}` | {_param_text(param)} |")
    lines.append("")
    idx = result.indices
    for metric in spec.metrics:
        verdict = result.stable.get(metric)
        label = (
            "undefined (no variance)"
            if verdict is None
            else ("stable" if verdict else "NOT stable")
            + f" between N={plan.levels[1]} and N={n_full} (largest move"
            f" {result.max_change[metric]:.3f}, tolerance {spec.stability_tolerance})"
        )
        lines += [
            f"### {metric}: {label}",
            "",
            f"| parameter | S1 (N={n_full}) | ST (N={n_full}) | S1 at N/4, N/2, N | ST at N/4,"
            " N/2, N |",
            "|---|---|---|---|---|",
        ]
        m = idx[idx["metric"] == metric]
        for key in plan.keys:
            r = m[m["parameter"] == key].sort_values("n")
            last = r.iloc[-1]
            lines.append(
                f"| `{key}` | {_fmt(last['S1'])} ± {_fmt(last['S1_conf'])} |"
                f" {_fmt(last['ST'])} ± {_fmt(last['ST_conf'])} |"
                f" {', '.join(_fmt(v) for v in r['S1'])} |"
                f" {', '.join(_fmt(v) for v in r['ST'])} |"
            )
        lines.append("")
    if result.notes:
        lines += [*(f"- {n}" for n in result.notes), ""]
    lines += ["![Sobol indices with their intervals](sensitivity.png)", ""]
    return "\n".join(lines)


def _param_text(param: Any) -> str:
    data = param.model_dump(exclude_defaults=True)
    return ", ".join(f"{k}: {v}" for k, v in data.items())


def run_sensitivity(
    plan: SensitivityPlan,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    progress: ProgressMode = "off",
) -> SensitivityResult:
    """Runs the design through the sweep machinery, then writes the indices and the figures.

    Files in ``out_dir``: ``sweep/`` (the sweep folder: journal, results, resume),
    ``indices.csv``, ``sensitivity.json``, ``sensitivity.png``, ``convergence.png`` and
    ``report.md`` (the report section).

    Raises:
        ConfigError: ``out_dir`` holds another analysis.
        IncompleteRunsError: Some points have no successful run.
    """
    from perpsim.analysis.figures import convergence_figure, indices_figure

    out = Path(out_dir)
    outcome = run_sweep(
        plan.sweep,
        out / SWEEP_DIR,
        workers=workers,
        scheduler=scheduler,
        resume=resume,
        retry_failed=retry_failed,
        progress=progress,
    )
    result = analyse(plan, out)
    result.outcome = outcome
    atomic_write_text(out / INDICES, result.indices.to_csv(index=False))
    indices_figure(plan, result, out / "sensitivity.png")
    convergence_figure(plan, result, out / "convergence.png")
    atomic_write_text(out / REPORT, report_section(plan, result))
    summary = {
        "name": plan.name,
        "source": plan.source,
        "N": plan.spec.N,
        "levels": list(plan.levels),
        "parameters": list(plan.keys),
        "metrics": list(plan.spec.metrics),
        "points": plan.sweep.n_points,
        "seeds": plan.spec.seeds,
        "runs": plan.sweep.n_runs,
        "failed_runs": outcome.n_failed,
        "stable": result.stable,
        "max_change_half_to_full": {
            k: (None if math.isnan(v) else v) for k, v in result.max_change.items()
        },
        "stability_tolerance": plan.spec.stability_tolerance,
        "notes": result.notes,
        "parameter_ranges": {k: _param_text(p) for k, p in plan.spec.parameters.items()},
        "spec": plan.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    atomic_write_text(out / SUMMARY, json.dumps(summary, indent=2) + "\n")
    return result
