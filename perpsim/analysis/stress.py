"""The worst plausible case: ``perpsim stress SPEC.yaml``.

Within bounds the user sets (shock size and speed, oracle, keeper and liquidator outages, whale
size and timing, LP withdrawal fraction: any scenario key), optuna's TPE sampler searches for the
market that maximises a loss metric. Each round asks the optimiser for ``batch`` candidates and
runs them as one sweep (:func:`perpsim.sweep.run_sweep`: process pool or Dask, journal, resume,
failures isolated) in ``rounds/NNN/``. Every candidate runs with the same seeds (common random
numbers: the sweep's seed ``i`` is the same at every point of every round), so the search
compares markets, not luck. The optimiser is seeded and its history is the journal's, so
``--resume`` replays the finished rounds and continues where the search stopped.

The worst candidate is written as a runnable scenario (``worst.yaml``: ``extends:`` the
scenario, with the sections the search changed and the seed), which is run again to check that
it reproduces the loss.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import pandas as pd
import yaml
from pydantic import Field, Strict, field_validator, model_validator

from perpsim.analysis.plans import point_values, scenario_plan
from perpsim.analysis.specs import (
    SpecProblem,
    check_metric,
    first_value,
    last_value,
    read_analysis_file,
)
from perpsim.engine.core.config import FrozenModel
from perpsim.errors import ConfigError
from perpsim.io import atomic_write_text
from perpsim.progress import ProgressMode
from perpsim.scenario import apply_typed_overrides, load_raw_scenario
from perpsim.scenario.yaml import KeyLines
from perpsim.sweep import (
    ChoiceParam,
    LogUniformParam,
    Parameter,
    RangeParam,
    RunTask,
    SweepPlan,
    UniformParam,
    ValuesParam,
    run_task,
)

__all__ = [
    "ROUNDS",
    "StressPlan",
    "StressResult",
    "StressSpec",
    "load_stress",
    "run_stress",
    "worst_scenario_yaml",
]

#: One sweep folder per round of candidates.
ROUNDS: Final = "rounds"
#: Every candidate in search order with its loss.
TRACE: Final = "trace.csv"
#: The worst loss found within each budget.
BUDGET: Final = "budget.csv"
#: The worst candidate as a runnable scenario.
WORST: Final = "worst.yaml"
#: What was found.
SUMMARY: Final = "stress.json"


class StressSpec(FrozenModel):
    """A stress file.

    Attributes:
        name: Short name (default: the file's stem).
        description: What the search is for.
        scenario: A scenario file (relative to this file) or a shipped scenario's name.
        overrides: ``set:``, fixed overrides applied to every candidate (for instance the
            events whose size and timing the search varies).
        parameters: The bounds of the search: ``{range: [lo, hi]}`` (``scale: log``,
            ``integer: true``), ``{dist: uniform | loguniform, ...}``, or a list of values.
        objective: The loss to maximise: a run metric such as ``bad_debt``,
            ``social_loss_total``, ``liquidation_loss_total`` or ``insurance_fund_drawdown``.
        budget: Candidates to evaluate.
        batch: Candidates per round (run in parallel); the search depends on it, not on the
            number of workers.
        optimizer: ``tpe`` (optuna's tree-structured Parzen estimator) or ``random``.
        startup: Random candidates before TPE models the losses.
        seeds: Runs per candidate (the loss is their mean); the same seeds for every candidate.
        seed: Root of the runs' seeds (default: the scenario's) and the optimiser's seed.
    """

    name: Annotated[str, Strict(), Field(min_length=1)] | None = None
    description: Annotated[str, Strict()] | None = None
    scenario: Annotated[str, Strict(), Field(min_length=1)]
    overrides: dict[str, Any] = Field(default_factory=dict, alias="set")
    parameters: dict[str, Parameter] = Field(min_length=1)
    objective: Annotated[str, Strict()]
    budget: Annotated[int, Strict(), Field(ge=1, le=100_000)]
    batch: Annotated[int, Strict(), Field(ge=1, le=1_000)] = 4
    optimizer: Literal["tpe", "random"] = "tpe"
    startup: Annotated[int, Strict(), Field(ge=1)] = 8
    seeds: Annotated[int, Strict(), Field(ge=1, le=1_000)] = 1
    seed: Annotated[int, Strict(), Field(ge=0)] | None = None

    @field_validator("objective")
    @classmethod
    def _metric(cls, value: str) -> str:
        return check_metric(value)

    @model_validator(mode="after")
    def _check(self) -> StressSpec:
        for key, p in self.parameters.items():
            if key in self.overrides:
                raise SpecProblem(("parameters", key), "is also in set: give it in one place")
            if isinstance(p, ChoiceParam) and p.weights is not None:
                raise SpecProblem(("parameters", key), "a search takes no weights")
            if isinstance(p, (ValuesParam, ChoiceParam)):
                for v in p.values:
                    if not isinstance(v, (str, int, float, bool)) and v is not None:
                        raise SpecProblem(
                            ("parameters", key), "a search's values must be numbers or text"
                        )
        return self


@dataclasses.dataclass(frozen=True)
class StressPlan:
    """A validated search: the spec and the scenario's plan (checked with the bounds' corners).

    Attributes:
        spec: The file's content.
        source: The file, for messages.
        name: The search's name.
        base_dir: The folder relative scenario paths are read from.
        lines: Line numbers of the file's keys.
        check: The plan of the bounds' two corners (validates the scenario, every key and
            both ends of every range).
    """

    spec: StressSpec
    source: str
    name: str
    base_dir: Path
    lines: KeyLines
    check: SweepPlan

    def round_plan(self, points: list[tuple[Any, ...]]) -> SweepPlan:
        """The sweep of one round's candidates (every point's scenario validated)."""
        return scenario_plan(
            source=self.source,
            base_dir=self.base_dir,
            name=self.name,
            scenario=self.spec.scenario,
            overrides=self.spec.overrides,
            parameters=self.spec.parameters,
            points=points,
            seeds=self.spec.seeds,
            seed=self.spec.seed,
            lines=self.lines,
        )


def load_stress(path: str | Path) -> StressPlan:
    """Reads and validates a stress file (the scenario, every key and the bounds' corners).

    Raises:
        ConfigError: One line per problem, each naming the file, the key and the line.
    """
    path = Path(path)
    spec, lines, _ = read_analysis_file(path, StressSpec, "stress file")
    # Both corners of the bounds are validated now, so that a search does not stop half-way
    # on a candidate whose scenario is invalid (an event after the end of the run, ...).
    corners = [
        tuple(first_value(p) for p in spec.parameters.values()),
        tuple(last_value(p) for p in spec.parameters.values()),
    ]
    base_dir = path.resolve().parent
    check = scenario_plan(
        source=str(path),
        base_dir=base_dir,
        name=spec.name or path.stem,
        scenario=spec.scenario,
        overrides=spec.overrides,
        parameters=spec.parameters,
        points=corners,
        seeds=spec.seeds,
        seed=spec.seed,
        lines=lines,
    )
    return StressPlan(
        spec=spec,
        source=str(path),
        name=spec.name or path.stem,
        base_dir=base_dir,
        lines=lines,
        check=check,
    )


def _distribution(param: Any) -> Any:
    import optuna

    if isinstance(param, RangeParam):
        lo, hi = param.range
        if param.integer:
            return optuna.distributions.IntDistribution(int(lo), int(hi), log=param.scale == "log")
        return optuna.distributions.FloatDistribution(lo, hi, log=param.scale == "log")
    if isinstance(param, (UniformParam, LogUniformParam)):
        log = isinstance(param, LogUniformParam)
        if param.integer:
            return optuna.distributions.IntDistribution(int(param.low), int(param.high), log=log)
        return optuna.distributions.FloatDistribution(param.low, param.high, log=log)
    if isinstance(param, (ValuesParam, ChoiceParam)):
        return optuna.distributions.CategoricalDistribution(list(param.values))
    raise TypeError(f"not a parameter: {param!r}")


@dataclasses.dataclass
class StressResult:
    """What the search found.

    Attributes:
        trace: One row per candidate in search order: ``trial``, ``round``, the parameters,
            ``loss`` (NaN when its runs failed), ``status``.
        budget: ``budget`` → ``worst_loss`` found within the first ``budget`` candidates.
        worst: The worst candidate's row of the trace.
        worst_path: The written scenario.
        reproduced_loss: The objective of ``worst.yaml`` run again (seed index 0), or None.
        worst_seed: The seed written in ``worst.yaml``.
        worst_summary: The summary metrics of that run.
    """

    trace: pd.DataFrame
    budget: pd.DataFrame
    worst: dict[str, Any]
    worst_path: Path
    reproduced_loss: float | None
    worst_seed: int
    worst_summary: dict[str, Any]


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def worst_scenario_yaml(
    plan: StressPlan, values: Mapping[str, Any], seed: int, loss: float, out_file: Path
) -> str:
    """The worst candidate as a scenario file that ``extends`` the searched scenario.

    The top-level sections the search changed are written whole (``extends`` merges
    mappings and replaces lists), with the run's seed, so ``perpsim run`` reproduces it.
    """
    ref = plan.check.scenario
    base = _plain(load_raw_scenario(ref))
    raw = _plain(
        apply_typed_overrides(
            load_raw_scenario(ref), {**plan.spec.overrides, **values}, source=plan.source
        )
    )
    changed = {k: raw[k] for k in raw if k not in ("name", "seed") and raw.get(k) != base.get(k)}
    extends = (
        ref if not Path(ref).is_absolute() else os.path.relpath(ref, out_file.resolve().parent)
    )
    doc: dict[str, Any] = {
        "extends": extends,
        "name": f"{base.get('name', 'scenario')}_worst",
        "seed": seed,
        **changed,
    }
    settings = "\n".join(f"#   {k} = {json.dumps(v)}" for k, v in values.items())
    header = (
        f"# {out_file.name} — the worst case `perpsim stress {plan.source}` found.\n"
        "#\n"
        f"# Question: which market within the search's bounds maximises {plan.spec.objective}"
        f" on {base.get('name')}?\n"
        f"# Found: {plan.spec.objective} = {loss:,.6g} (mean over {plan.spec.seeds} seed(s);"
        f" this file holds seed index 0's seed) with\n{settings}\n"
        f"# Run it again: perpsim run {out_file}\n\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


def run_stress(
    plan: StressPlan,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    progress: ProgressMode = "off",
    verify: bool = True,
) -> StressResult:
    """Runs the search and writes its outputs.

    Files in ``out_dir``: ``rounds/NNN/`` (one sweep folder per round), ``trace.csv``,
    ``budget.csv``, ``worst.yaml``, ``stress.json``, ``trace.png``, ``budget.png``.

    Args:
        plan: The search.
        out_dir: Its folder.
        workers: Local worker processes (1: in this process).
        scheduler: A Dask scheduler address.
        resume: Continue a search in ``out_dir`` (finished rounds are read from their journals).
        retry_failed: With ``resume``, run failed runs again.
        progress: The progress display of each round.
        verify: Run ``worst.yaml`` again and record its loss.

    Raises:
        ConfigError: ``out_dir`` holds another search, or no candidate finished.
    """
    import optuna

    from perpsim.analysis.figures import stress_budget_figure, stress_trace_figure
    from perpsim.sweep import run_sweep

    spec = plan.spec
    out = Path(out_dir)
    if not resume and (out / ROUNDS).exists() and any((out / ROUNDS).iterdir()):
        raise ConfigError(
            f"{out}: already holds a search; add --resume to continue it, or choose another --out"
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seed = spec.seed if spec.seed is not None else plan.check.root_seed
    sampler: Any = (
        optuna.samplers.TPESampler(seed=seed % 2**32, n_startup_trials=spec.startup)
        if spec.optimizer == "tpe"
        else optuna.samplers.RandomSampler(seed=seed % 2**32)
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    dists = {k: _distribution(p) for k, p in spec.parameters.items()}
    keys = list(spec.parameters)
    rows: list[dict[str, Any]] = []
    done = 0
    rnd = 0
    while done < spec.budget:
        size = min(spec.batch, spec.budget - done)
        trials = [study.ask(dists) for _ in range(size)]
        points = [tuple(t.params[k] for k in keys) for t in trials]
        rplan = plan.round_plan(points)
        folder = out / ROUNDS / f"{rnd:03d}"
        run_sweep(
            rplan,
            folder,
            workers=workers,
            scheduler=scheduler,
            resume=resume,
            retry_failed=retry_failed,
            progress=progress,
        )
        losses = point_values(rplan, folder, spec.objective)
        for i, (trial, vals) in enumerate(zip(trials, losses, strict=True)):
            if vals:
                loss = float(sum(vals) / len(vals))
                study.tell(trial, loss)
                status = "ok" if len(vals) == spec.seeds else "partly failed"
            else:
                loss = math.nan
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                status = "failed"
            rows.append(
                {
                    "trial": done + i,
                    "round": rnd,
                    **dict(zip(keys, points[i], strict=True)),
                    "loss": loss,
                    "status": status,
                }
            )
        done += size
        rnd += 1
    trace = pd.DataFrame.from_records(rows)
    ok = trace[trace["loss"].notna()]
    if ok.empty:
        raise ConfigError(f"{plan.source}: every candidate failed; see {out / ROUNDS}")
    # From the rows themselves: a row of the frame would turn integer values into floats.
    worst_row = rows[int(ok.index[int(ok["loss"].to_numpy().argmax(axis=0))])]
    budgets = sorted(
        {*(1 << k for k in range(spec.budget.bit_length()) if 1 << k <= spec.budget), spec.budget}
    )
    running = trace["loss"].cummax()
    budget = pd.DataFrame(
        {"budget": budgets, "worst_loss": [float(running.iloc[b - 1]) for b in budgets]}
    )
    atomic_write_text(out / TRACE, trace.to_csv(index=False))
    atomic_write_text(out / BUDGET, budget.to_csv(index=False))
    values = {k: worst_row[k] for k in keys}
    worst_seed = plan.check.seed_of(0, 0)
    worst_path = out / WORST
    atomic_write_text(
        worst_path,
        worst_scenario_yaml(plan, values, worst_seed, float(worst_row["loss"]), worst_path),
    )
    reproduced: float | None = None
    summary: dict[str, Any] = {}
    if verify:
        row = run_task(
            RunTask(
                point_id=0,
                seed_index=0,
                seed=worst_seed,
                scenario=str(worst_path.resolve()),
                overrides=(),
            )
        )
        if row["status"] == "ok":
            reproduced = float(row[spec.objective])
            summary = {k: v for k, v in row.items() if k not in ("traceback",)}
    stress_trace_figure(trace, spec.objective, out / "trace.png")
    stress_budget_figure(budget, spec.objective, out / "budget.png")
    first_seed_loss = _first_seed_loss(plan, out, int(worst_row["trial"]), int(worst_row["round"]))
    record = {
        "name": plan.name,
        "source": plan.source,
        "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True),
        "objective": spec.objective,
        "budget": spec.budget,
        "batch": spec.batch,
        "optimizer": spec.optimizer,
        "seeds": spec.seeds,
        "worst": {
            "trial": int(worst_row["trial"]),
            "loss": float(worst_row["loss"]),
            "values": values,
        },
        "worst_scenario": WORST,
        "worst_seed": worst_seed,
        "search_loss_seed_index_0": first_seed_loss,
        "reproduced_loss": reproduced,
        "reproduced": (
            None
            if reproduced is None or first_seed_loss is None
            else math.isclose(reproduced, first_seed_loss, rel_tol=1e-9, abs_tol=1e-9)
        ),
        "worst_insurance_fund_exhausted": summary.get("insurance_fund_exhausted"),
        "worst_summary": {
            k: summary.get(k)
            for k in (
                "insurance_fund_min",
                "insurance_fund_exhausted",
                "social_loss_total",
                "bad_debt",
                "liquidation_loss_total",
                "liquidation_count",
            )
        },
    }
    atomic_write_text(out / SUMMARY, json.dumps(record, indent=2, default=str) + "\n")
    return StressResult(
        trace=trace,
        budget=budget,
        worst=worst_row,
        worst_path=worst_path,
        reproduced_loss=reproduced,
        worst_seed=worst_seed,
        worst_summary=summary,
    )


def _first_seed_loss(plan: StressPlan, out: Path, trial: int, rnd: int) -> float | None:
    """The worst candidate's loss with seed index 0 (what ``worst.yaml`` reproduces)."""
    from perpsim.sweep import read_journal
    from perpsim.sweep.layout import JOURNAL

    point = trial - rnd * plan.spec.batch
    rows = read_journal(out / ROUNDS / f"{rnd:03d}" / JOURNAL)
    row = rows.get((point, 0))
    if row is None or row.get("status") != "ok" or row.get(plan.spec.objective) is None:
        return None
    return float(row[plan.spec.objective])
