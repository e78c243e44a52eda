"""Designs side by side: ``perpsim compare SCENARIO --venues mcdex_v1,d8x,predy``.

One market, agent populations and events, run on each venue kind with the same seeds: a sweep
whose one varied key is the scenario's whole ``venue:`` section (one point per kind; the
scenario's own kind keeps its section, every other kind gets ``{kind: K}`` with its own default
governance, plus the user's overrides for that kind). The runs go through the sweep machinery
(``keep: timeseries``, so each fund's path is read back); the table holds the metrics every
design has, and says what a design does not have (from the registry's ``loss_funds`` and
``loss_note``, so a new design is compared without a line here).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Final

import numpy as np
import pandas as pd
from pydantic import Field, Strict, field_validator

from perpsim.analysis.plans import scenario_plan
from perpsim.analysis.specs import line_of, read_analysis_file
from perpsim.engine.core.config import FrozenModel, PositiveReal
from perpsim.engine.registry import venue_kinds, venue_spec
from perpsim.errors import ConfigError
from perpsim.io import atomic_write_text
from perpsim.metrics import max_drawdown
from perpsim.progress import ProgressMode
from perpsim.scenario import (
    SCENARIO_DIR,
    apply_typed_overrides,
    load_raw_scenario,
    resolve_scenario_path,
    scenario_from_raw,
)
from perpsim.scenario.yaml import KeyLines
from perpsim.sweep import SweepPlan, ValuesParam, read_journal, run_sweep
from perpsim.sweep.layout import JOURNAL

__all__ = [
    "ComparePlan",
    "CompareResult",
    "CompareSpec",
    "load_compare",
    "plan_compare",
    "run_compare",
]

#: The rows of the table every design has (summary metrics), with their labels.
COMMON_ROWS: Final = (
    ("liquidation_count", "liquidations"),
    ("liquidated_value", "liquidated value (USD)"),
    ("liquidation_loss_total", "loss of bankrupt liquidations (USD)"),
    ("social_loss_total", "socialised loss (USD)"),
    ("bad_debt", "bad debt (USD)"),
    ("lp_return", "LP return"),
    ("funding_paid_by_longs", "funding paid by longs (USD)"),
    ("funding_paid_by_shorts", "funding paid by shorts (USD)"),
    ("price_impact", "price impact of the impact size (buy, start)"),
    ("time_in_emergency_s", "time in EMERGENCY (s)"),
)


class CompareSpec(FrozenModel):
    """A compare file (or the command line's ``SCENARIO --venues ...``).

    Attributes:
        name: Short name (default: the scenario's name).
        scenario: A scenario file (relative to this file) or a shipped scenario's name.
        overrides: ``set:``, overrides applied on every venue (``clock.duration: 6h``).
        venues: The kinds to run, each with overrides of its ``venue:`` section as dotted
            keys (``pool.default_fund: 30000``, ``governance.liquidation_penalty_rate: 0.01``);
            default every registered kind with none.
        seeds: Runs per venue (the same seeds on every venue).
        seed: Root of the seeds (default: the scenario's).
        impact_size: Size (contracts) of the buy whose price impact is compared.
    """

    name: Annotated[str, Strict(), Field(min_length=1)] | None = None
    description: Annotated[str, Strict()] | None = None
    scenario: Annotated[str, Strict(), Field(min_length=1)]
    overrides: dict[str, Any] = Field(default_factory=dict, alias="set")
    venues: dict[str, dict[str, Any]] | None = None
    seeds: Annotated[int, Strict(), Field(ge=1, le=10_000)] = 1
    seed: Annotated[int, Strict(), Field(ge=0)] | None = None
    impact_size: PositiveReal = 10.0

    @field_validator("venues", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {str(k): {} for k in value}
        if isinstance(value, Mapping):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    @field_validator("venues")
    @classmethod
    def _known(cls, value: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("name at least one venue kind")
        kinds = venue_kinds()
        for k in value:
            if k not in kinds:
                raise ValueError(f"unknown venue kind {k!r} (registered: {', '.join(kinds)})")
        return value


@dataclasses.dataclass(frozen=True)
class ComparePlan:
    """The validated comparison: one point per venue kind.

    Attributes:
        spec: The comparison.
        source: For messages.
        name: The comparison's name.
        kinds: The venue kinds, in order.
        blocks: Each kind's ``venue:`` section.
        sweep: The sweep plan.
    """

    spec: CompareSpec
    source: str
    name: str
    kinds: tuple[str, ...]
    blocks: tuple[dict[str, Any], ...]
    sweep: SweepPlan


def _nested(block: dict[str, Any], dotted: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(block))
    for key, value in dotted.items():
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"venues: {key}: {p} is not a mapping")
        node[parts[-1]] = value
    return out


def plan_compare(
    spec: CompareSpec,
    *,
    base_dir: Path,
    source: str = "perpsim compare",
    lines: KeyLines | None = None,
) -> ComparePlan:
    """Builds each kind's ``venue:`` section, validates each kind's scenario, plans the runs.

    Raises:
        ConfigError: A kind's scenario is invalid (the message names the kind and the key).
    """
    lines = lines or {}
    candidate = base_dir / spec.scenario
    ref = str(candidate.resolve()) if candidate.is_file() else spec.scenario
    try:
        raw = apply_typed_overrides(load_raw_scenario(ref), spec.overrides, source=source)
    except ConfigError as exc:
        raise ConfigError(f"{source}: scenario {spec.scenario}: {exc}") from None
    own = json.loads(json.dumps(raw.get("venue") or {}))
    own_kind = str(own.get("kind", "mcdex_v1"))
    venues = spec.venues if spec.venues is not None else {k: {} for k in venue_kinds()}
    kinds = tuple(venues)
    blocks: list[dict[str, Any]] = []
    problems: list[str] = []
    for kind in kinds:
        base = own if kind == own_kind else {"kind": kind}
        try:
            block = _nested(base, venues[kind])
            scenario_from_raw(
                apply_typed_overrides(raw, {"venue": block}, source=source),
                f"{source}: venues.{kind}",
            )
        except ConfigError as exc:
            line = line_of(("venues", kind), lines)
            problems.append(str(exc) + (f" (venues.{kind}: line {line})" if line else ""))
            continue
        blocks.append(block)
    if problems:
        raise ConfigError("\n".join(problems))
    name = spec.name or f"{raw.get('name', 'scenario')}_compare"
    sweep = scenario_plan(
        source=source,
        base_dir=base_dir,
        name=name,
        scenario=spec.scenario,
        overrides=spec.overrides,
        parameters={"venue": ValuesParam(values=blocks)},
        points=[(b,) for b in blocks],
        seeds=spec.seeds,
        seed=spec.seed,
        keep="timeseries",
        lines=lines,
    )
    return ComparePlan(
        spec=spec, source=source, name=name, kinds=kinds, blocks=tuple(blocks), sweep=sweep
    )


def load_compare(
    scenario: str,
    *,
    venues: Sequence[str] | None = None,
    venue_set: Sequence[str] = (),
    seeds: int | None = None,
    overrides: Sequence[str] = (),
    impact_size: float | None = None,
) -> ComparePlan:
    """A comparison from the command line: a scenario (or a compare file) and its options.

    Args:
        scenario: A scenario file or shipped name, or a compare file (a mapping with
            ``scenario`` and ``venues``).
        venues: The kinds (default: the compare file's, else every registered kind).
        venue_set: ``KIND.key=value`` overrides of a kind's ``venue:`` section (the value
            read as YAML).
        seeds: Runs per venue.
        overrides: ``key=value`` overrides of the scenario, for every venue.
        impact_size: Size of the buy whose price impact is compared.

    Raises:
        ConfigError: A bad file, kind, key or value.
    """
    path = Path(scenario)
    data: dict[str, Any] = {}
    lines: KeyLines = {}
    source = "perpsim compare"
    base_dir = Path.cwd()
    if path.is_file() and _is_compare_file(path):
        spec0, lines, _ = read_analysis_file(path, CompareSpec, "compare file")
        data = spec0.model_dump(by_alias=True, exclude_none=True)
        source = str(path)
        base_dir = path.resolve().parent
    else:
        data["scenario"] = scenario
    if venues is not None:
        known = data.get("venues") or {}
        data["venues"] = {k: known.get(k, {}) for k in venues}
    for item in venue_set:
        key, sep, text = item.partition("=")
        kind, dot, sub = key.partition(".")
        if not sep or not dot or not sub:
            raise ConfigError(f"--venue-set {item}: must be KIND.key=value")
        v = data.setdefault("venues", None) or {k: {} for k in venue_kinds()}
        data["venues"] = v
        if kind not in v:
            raise ConfigError(
                f"--venue-set {item}: venue kind {kind!r} is not compared (compared:"
                f" {', '.join(v)})"
            )
        v[kind] = {**v[kind], sub: _value(text, f"--venue-set {item}")}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item}: must be KEY=VALUE")
        data.setdefault("set", {})[key.strip()] = _value(text, f"--set {item}")
    if seeds is not None:
        data["seeds"] = seeds
    if impact_size is not None:
        data["impact_size"] = impact_size
    from pydantic import ValidationError

    try:
        spec = CompareSpec.model_validate(data)
    except ValidationError as err:
        msgs = [
            f"{source}: {'.'.join(str(p) for p in e['loc'])}: "
            + str(e["msg"]).removeprefix("Value error, ")
            for e in err.errors()
        ]
        raise ConfigError("\n".join(msgs)) from None
    return plan_compare(spec, base_dir=base_dir, source=source, lines=lines)


def _value(text: str, source: str) -> Any:
    """A command-line value read as the scenario files read YAML (times stay text)."""
    from perpsim.scenario.yaml import copy_tree, load_yaml_text

    if not text:
        return None
    return json.loads(json.dumps(copy_tree(load_yaml_text(text, source)[0])))


def _is_compare_file(path: Path) -> bool:
    from perpsim.scenario.yaml import load_yaml_file

    try:
        doc, _ = load_yaml_file(path)
    except ConfigError:
        return False
    return isinstance(doc, dict) and "scenario" in doc and "venues" in doc


@dataclasses.dataclass
class CompareResult:
    """The side-by-side table.

    Attributes:
        table: One row per metric, one column per kind (NaN: the design does not have it).
        labels: Row → what it is.
        notes: Per kind: what the design does not have, who bears a loss.
        failed: Runs that failed, as messages.
    """

    table: pd.DataFrame
    labels: dict[str, str]
    notes: dict[str, str]
    failed: list[str]


def _price_impact(plan: ComparePlan, block: dict[str, Any], size: float) -> float:
    """The relative price impact of a buy of ``size`` after the first tick of the run."""
    from perpsim.errors import EngineError
    from perpsim.model import PerpModel

    ref = plan.sweep.scenario
    raw = apply_typed_overrides(
        load_raw_scenario(ref), {**plan.spec.overrides, "venue": block}, source=plan.source
    )
    scenario = scenario_from_raw(raw, plan.source)
    base_dir = resolve_scenario_path(ref).resolve().parent
    model = PerpModel(scenario, plan.sweep.seed_of(0, 0), base_dir=base_dir)
    model.step()
    try:
        return float(model.venue.quote(size).price_impact)
    except EngineError:
        return math.nan


def run_compare(
    plan: ComparePlan,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    progress: ProgressMode = "off",
) -> CompareResult:
    """Runs the scenario on every kind and writes the side-by-side table and figures.

    Files in ``out_dir``: ``sweep/`` (the sweep folder with each run's time series),
    ``compare.csv``, ``compare.md``, ``compare.json``, ``compare.png``, ``funds.png``.
    """
    from perpsim.analysis.figures import compare_figure, funds_figure

    out = Path(out_dir)
    sweep_dir = out / "sweep"
    run_sweep(
        plan.sweep,
        sweep_dir,
        workers=workers,
        scheduler=scheduler,
        resume=resume,
        progress=progress,
    )
    rows = read_journal(sweep_dir / JOURNAL)
    labels = dict(COMMON_ROWS)
    table: dict[str, dict[str, float]] = {}
    notes: dict[str, str] = {}
    failed: list[str] = []
    fund_paths: dict[str, dict[str, pd.Series]] = {}
    for pid, kind in enumerate(plan.kinds):
        spec = venue_spec(kind)
        runs = [rows.get((pid, s)) for s in range(plan.spec.seeds)]
        ok = [r for r in runs if r is not None and r.get("status") == "ok"]
        for r in runs:
            if r is not None and r.get("status") != "ok":
                failed.append(f"{kind} seed index {r['seed_index']}: {r.get('error')}")
        col: dict[str, float] = {}
        for metric, _ in COMMON_ROWS:
            if metric == "price_impact":
                continue
            vals = [float(r[metric]) for r in ok if r.get(metric) is not None]
            col[metric] = float(np.mean(vals)) if vals else math.nan
        col["price_impact"] = _price_impact(plan, plan.blocks[pid], plan.spec.impact_size)
        paths: dict[str, pd.Series] = {}
        for column, fund in spec.loss_funds:
            falls, starts, mins = [], [], []
            for r in ok:
                ts = pd.read_parquet(sweep_dir / str(r["run_dir"]) / "timeseries.parquet")
                if column not in ts:
                    continue
                x = ts[column].to_numpy(dtype=np.float64)
                falls.append(max_drawdown(x))
                starts.append(float(x[0]))
                mins.append(float(np.min(x)))
                if fund not in paths:
                    paths[fund] = pd.Series(
                        x, index=pd.to_datetime(ts["time"], utc=True) if "time" in ts else ts.index
                    )
            for what, vals in (("start", starts), ("min", mins), ("largest fall", falls)):
                row = f"fund: {fund}: {what}"
                labels[row] = f"{fund}: {what} (USD)"
                col[row] = float(np.mean(vals)) if vals else math.nan
        fund_paths[kind] = paths
        table[kind] = col
        funds = ", ".join(f for _, f in spec.loss_funds) or "none"
        notes[kind] = f"funds that absorb losses: {funds}. {spec.loss_note}".strip()
    frame = pd.DataFrame(table)
    # The common rows, then each design's funds in its own order (labels keeps the order).
    frame = frame.reindex(list(labels))
    result = CompareResult(table=frame, labels=labels, notes=notes, failed=failed)
    long = frame.reset_index(names="metric").melt(id_vars="metric", var_name="venue")
    atomic_write_text(out / "compare.csv", long.to_csv(index=False))
    atomic_write_text(out / "compare.md", compare_markdown(plan, result))
    atomic_write_text(
        out / "compare.json",
        json.dumps(
            {
                "name": plan.name,
                "scenario": plan.spec.scenario,
                "venues": list(plan.kinds),
                "seeds": plan.spec.seeds,
                "impact_size": plan.spec.impact_size,
                "table": {
                    k: {m: (None if math.isnan(v) else v) for m, v in c.items()}
                    for k, c in table.items()
                },
                "notes": notes,
                "failed": failed,
                "labels": labels,
                "spec": plan.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
            },
            indent=2,
        )
        + "\n",
    )
    compare_figure(
        frame,
        [(m, lab) for m, lab in COMMON_ROWS if m in frame.index],
        out / "compare.png",
    )
    funds_figure(fund_paths, out / "funds.png")
    return result


def compare_cell(metric: str, value: Any) -> str:
    """A cell of the table as people read it (— when the design does not have it)."""
    v = float(value)
    if math.isnan(v):
        return "—"
    if metric in ("lp_return", "price_impact"):
        return f"{v * 100:.2f}%"
    return f"{v:,.0f}" if abs(v) >= 10 else f"{v:,.4g}"


def compare_markdown(plan: ComparePlan, result: CompareResult) -> str:
    """The side-by-side table in Markdown, with what each design does not have."""
    kinds = list(plan.kinds)
    shipped = resolve_scenario_path(plan.sweep.scenario).resolve().parent == SCENARIO_DIR.resolve()
    lines = [
        f"## {plan.name}: `{plan.spec.scenario}` on {len(kinds)} designs",
        "",
        f"The same market, agents and events on every design, {plan.spec.seeds} seed(s) each"
        " (the same seeds), each design with its own default governance unless overridden"
        f" ({'shipped scenario' if shipped else 'scenario file'}). Means over the seeds.",
        "",
        "| metric | " + " | ".join(kinds) + " |",
        "|---|" + "---|" * len(kinds),
    ]
    for metric in result.table.index:
        label = result.labels.get(metric, metric)
        if metric == "price_impact":
            label = f"price impact of a {plan.spec.impact_size:g}-contract buy (start)"
        cells = [compare_cell(metric, result.table.loc[metric, k]) for k in kinds]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "— : the design does not have it.", ""]
    for kind in kinds:
        lines.append(f"- **{kind}**: {result.notes[kind]}")
    if result.failed:
        lines += ["", "Failed runs:", *(f"- {f}" for f in result.failed)]
    lines.append("")
    lines.append("![the metrics side by side](compare.png) ![each fund](funds.png)")
    return "\n".join(lines) + "\n"
