"""The report of a sweep: per-point tail statistics, worst and failed runs, how to reproduce."""

from __future__ import annotations

import json
import math
import shlex
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from perpsim.errors import ConfigError
from perpsim.plots import (
    SWEEP_FIGURES,
    RunData,
    SweepData,
    fmt_number,
    fmt_usd,
    metric_label,
)
from perpsim.report.model import Report, Table
from perpsim.report.provenance import commit_warning, manifest_rows
from perpsim.report.tables import GOVERNANCE_MEANING, agents_table, governance_table, market_table
from perpsim.report.text import num, paragraphs, pct, short, sorted_unique, sweep_value
from perpsim.scenario import (
    apply_typed_overrides,
    load_raw_scenario,
    resolve_scenario_path,
    scenario_from_raw,
)

__all__ = ["sweep_report"]


def _first_run_manifest(sweep: SweepData) -> dict[str, Any]:
    runs = sweep.path / "runs"
    if runs.is_dir():
        for d in sorted(runs.iterdir()):
            f = d / "manifest.json"
            if f.is_file():
                try:
                    doc = json.loads(f.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                if isinstance(doc, dict):
                    return doc
    return {}


def _base_scenario(sweep: SweepData) -> dict[str, Any]:
    """The base scenario: the sweep's scenario with its fixed overrides (``set:``).

    If that cannot be loaded here (the file moved), a kept run's resolved scenario is used;
    the varied keys are then shown as varied anyway.
    """
    m = sweep.manifest
    ref = m.get("scenario")
    spec = m.get("spec")
    fixed = spec.get("set") if isinstance(spec, dict) else None
    if isinstance(ref, str) and ref:
        try:
            path = resolve_scenario_path(ref)
            raw = apply_typed_overrides(load_raw_scenario(path), dict(fixed or {}))
            scenario = scenario_from_raw(raw, str(path))
        except ConfigError:
            pass  # the file moved or no longer validates: use a kept run's scenario below
        else:
            return dict(json.loads(scenario.model_dump_json()))
    sc = _first_run_manifest(sweep).get("resolved_scenario")
    return sc if isinstance(sc, dict) else {}


def _int_text(v: Any) -> str:
    """An id or seed as an exact integer (never through a float)."""
    if isinstance(v, int | np.integer) and not isinstance(v, bool):
        return str(int(v))
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _col(agg: pd.DataFrame, name: str) -> list[float]:
    if name not in agg.columns:
        return [math.nan] * len(agg)
    return [num(v) if v is not None and v is not pd.NA else math.nan for v in agg[name]]


def _sweep_headline(sweep: SweepData) -> tuple[list[str], list[Table]]:
    agg = sweep.aggregate.reset_index(drop=True)
    ok = sweep.ok
    findings: list[str] = []
    n_runs, n_ok = len(sweep.results), len(ok)
    findings.append(
        f"{agg['point_id'].nunique()} parameter points × seeds = {n_runs} runs;"
        f" {n_ok} finished" + (f", {n_runs - n_ok} failed." if n_ok < n_runs else ".")
    )
    cols: list[tuple[str, str, Callable[[Any], str]]] = [
        ("insurance_fund_min_mean", "fund min (mean)", fmt_number),
        ("insurance_fund_drawdown_mean", "drawdown (mean)", fmt_number),
        ("var95_insurance_fund_drawdown", "VaR95 drawdown", fmt_number),
        ("cvar95_insurance_fund_drawdown", "CVaR95 drawdown", fmt_number),
        ("social_loss_total_mean", "social loss (mean)", fmt_number),
        ("var95_bad_debt", "VaR95 bad debt", fmt_number),
        ("cvar95_bad_debt", "CVaR95 bad debt", fmt_number),
        ("lar95", "LaR95", fmt_number),
        ("p_insurance_fund_exhausted", "P(fund exhausted)", lambda v: pct(num(v), 0)),
    ]
    key = "var95_insurance_fund_drawdown"
    worst: int | None = None
    vals = _col(agg, key)
    if any(not math.isnan(v) for v in vals) and np.nanmax(vals) <= 0:
        findings.append("The insurance fund never fell below its starting level at any point.")
    elif any(not math.isnan(v) for v in vals):
        worst = int(np.nanargmax(vals))
        best = int(np.nanargmin(vals))
        findings.append(
            f"Highest tail risk: {sweep.point_label(agg.loc[worst, 'point_id'])} — VaR95 of the"
            f" insurance-fund drawdown {fmt_usd(vals[worst])}, P(fund exhausted)"
            f" {pct(_col(agg, 'p_insurance_fund_exhausted')[worst], 0)}."
        )
        findings.append(
            f"Lowest tail risk: {sweep.point_label(agg.loc[best, 'point_id'])} — VaR95"
            f" {fmt_usd(vals[best])}."
        )
    pex = [v for v in _col(agg, "p_insurance_fund_exhausted") if not math.isnan(v)]
    if pex and max(pex) == 0:
        findings.append("The insurance fund was never exhausted.")
    elif pex:
        findings.append(
            f"The insurance fund was exhausted in {pct(min(pex), 0)} to {pct(max(pex), 0)} of"
            " the seeds, depending on the point."
        )
    for m, what in (("bad_debt", "bad debt"), ("social_loss_total", "socialised loss")):
        if m in ok.columns:
            v = np.asarray(ok[m].astype("Float64").to_numpy(dtype=float, na_value=np.nan))
            v = v[np.isfinite(v)]
            if v.size and np.max(v) > 0:
                share = float(np.mean(v > 0))
                findings.append(
                    f"{what.capitalize()} occurred in {share:.0%} of the runs (largest"
                    f" {fmt_usd(np.max(v))})."
                )
            elif v.size:
                findings.append(f"No run had any {what}.")
    header = ["point", *[sweep.short(k) for k in sweep.params], "runs ok", *[c[1] for c in cols]]
    rows = []
    for _, r in agg.iterrows():
        n_ok_pt = r.get("n_ok", num(r.get("n_runs")) - num(r.get("n_failed")))
        row = [
            _int_text(r["point_id"]),
            *[sweep_value(r[k]) for k in sweep.params],
            f"{int(num(n_ok_pt))}/{int(num(r.get('n_runs')))}",
        ]
        for c, _label, fmt in cols:
            row.append(fmt(r[c]) if c in agg.columns else "—")
        rows.append(row)
    n_p = len(sweep.params)
    table = Table(
        "Risk per parameter point (USD unless stated; statistics across seeds)",
        header,
        rows,
        note="VaR95 = 95th percentile across seeds; CVaR95 = mean of the runs at or beyond it;"
        " LaR95 = 95th percentile of the liquidated value. The highlighted row has the highest"
        " VaR95 of the insurance-fund drawdown.",
        numeric=set(range(n_p + 1, len(header))) | {0},
        emphasise={worst} if worst is not None else set(),
    )
    pooled = []
    for m in (
        "insurance_fund_min",
        "insurance_fund_drawdown",
        "social_loss_total",
        "bad_debt",
        "liquidated_value",
        "liquidation_count",
    ):
        if m in ok.columns:
            v = np.asarray(ok[m].astype("Float64").to_numpy(dtype=float, na_value=np.nan))
            v = v[np.isfinite(v)]
            if v.size:
                pooled.append(
                    [
                        metric_label(m),
                        fmt_number(np.mean(v)),
                        fmt_number(np.percentile(v, 5)),
                        fmt_number(np.median(v)),
                        fmt_number(np.percentile(v, 95)),
                        fmt_number(np.max(v)),
                    ]
                )
    tables = [table]
    if pooled:
        tables.append(
            Table(
                "All finished runs pooled",
                ["metric", "mean", "p5", "median", "p95", "max"],
                pooled,
                numeric={1, 2, 3, 4, 5},
            )
        )
    return findings, tables


def _run_command(sweep: SweepData, r: pd.Series) -> str:
    scenario = sweep.manifest.get("scenario_name") or sweep.manifest.get("scenario") or "SCENARIO"
    spec = sweep.manifest.get("spec")
    fixed = spec.get("set") if isinstance(spec, dict) else None
    sets = [f"{k}={short(v)}" for k, v in (fixed or {}).items()]
    sets += [f"{k}={sweep_value(r[k])}" for k in sweep.params]
    return f"perpsim run {shlex.quote(str(scenario))} --seed {_int_text(r['seed'])}" + "".join(
        f" --set {shlex.quote(s)}" for s in sets
    )


def _sweep_events(sweep: SweepData) -> tuple[list[Table], list[str], str | None]:
    tables: list[Table] = []
    notes: list[str] = []
    worst_cmd: str | None = None
    ok = sweep.ok.copy()
    if not ok.empty and "insurance_fund_drawdown" in ok:

        def fl(name: str) -> pd.Series:
            if name not in ok:
                return pd.Series(0.0, index=ok.index)
            return ok[name].astype("Float64").fillna(0.0).astype(float)

        ok["_loss"] = fl("insurance_fund_drawdown") + fl("social_loss_total") + fl("bad_debt")
        ok["_liq"] = fl("liquidated_value")
        worst = ok.sort_values(["_loss", "_liq"], ascending=False, kind="stable").head(10)
        rows = [
            [
                sweep.point_label(r["point_id"]),
                _int_text(r["seed"]) if "seed" in r else "—",
                fmt_usd(r.get("insurance_fund_drawdown")),
                fmt_usd(r.get("social_loss_total")),
                fmt_usd(r.get("bad_debt")),
                fmt_number(r.get("liquidation_count")),
                str(r.get("perp_status") or ("SETTLED" if r.get("settled") is True else "")),
            ]
            for _, r in worst.iterrows()
        ]
        tables.append(
            Table(
                "Worst runs (fund drawdown + socialised loss + bad debt, then liquidated value)",
                ["point", "seed", "drawdown", "socialised", "bad debt", "liquidations", "status"],
                rows,
                numeric={1, 2, 3, 4, 5},
            )
        )
        if "seed" in worst:
            worst_cmd = _run_command(sweep, worst.iloc[0])
        if "time_in_emergency_s" in ok:
            em = ok["time_in_emergency_s"].astype("Float64").fillna(0.0).astype(float) > 0
            settled = (
                ok["settled"].astype("boolean").fillna(False).astype(bool)
                if "settled" in ok
                else em & False
            )
            if em.any() or settled.any():
                notes.append(
                    f"{int(em.sum())} runs went into EMERGENCY and {int(settled.sum())} were"
                    " settled."
                )
            else:
                notes.append("No run went into EMERGENCY or settlement.")
    res = sweep.results
    if "status" in res:
        failed = res[res["status"].astype(str) != "ok"]
        if len(failed):
            rows = [
                [
                    sweep.point_label(r["point_id"]),
                    str(r.get("seed_index", "")),
                    textwrap.shorten(str(r.get("error") or ""), 160),
                ]
                for _, r in failed.head(20).iterrows()
            ]
            tables.append(
                Table(f"Failed runs ({len(failed)})", ["point", "seed index", "error"], rows)
            )
        else:
            notes.append("Every run finished.")
    return tables, notes, worst_cmd


def sweep_report(sweep: SweepData, figures: list[Path]) -> Report:
    """The report of a sweep, from its folder and its drawn figures."""
    m = sweep.manifest
    spec = m.get("spec") if isinstance(m.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    base = _base_scenario(sweep)
    question = paragraphs(str(spec.get("description") or m.get("description") or ""))
    if base.get("description"):
        question.append("Base scenario: " + " ".join(paragraphs(str(base["description"]))))
    varied = "; ".join(
        f"{k} over {', '.join(sweep_value(v) for v in sorted_unique(sweep.aggregate[k]))}"
        for k in sweep.params
    )
    seeds = m.get("seeds") or int(sweep.results.groupby("point_id").size().max())
    question.append(f"The sweep varies {varied or 'nothing'}, with {seeds} seed(s) per point.")
    params_rows = [
        [
            k,
            ", ".join(sweep_value(v) for v in sorted_unique(sweep.aggregate[k])),
            GOVERNANCE_MEANING.get(k.rsplit(".", 1)[-1], ""),
        ]
        for k in sweep.params
    ]
    tables = [Table("Varied parameters", ["key", "values", "meaning"], params_rows)]
    settings = []
    for key in (
        "scenario",
        "sampler",
        "points",
        "seeds",
        "runs",
        "root_seed",
        "common_seeds",
        "keep",
    ):
        if m.get(key) is not None:
            settings.append([key.replace("_", " "), short(m[key])])
    fixed = spec.get("set")
    if isinstance(fixed, dict) and fixed:
        settings.append(["fixed overrides", ", ".join(f"{k}={short(v)}" for k, v in fixed.items())])
    if settings:
        tables.append(Table("Sweep settings", ["setting", "value"], settings))
    if base:
        fake = RunData(
            path=sweep.path,
            timeseries=pd.DataFrame(),
            events=None,
            accounts=None,
            summary={},
            manifest={"resolved_scenario": base},
        )
        varied_values = {k: sorted_unique(sweep.aggregate[k]) for k in sweep.params}
        gov = governance_table(base, varied_values)
        gov.title = "Governance of the base scenario (with the sweep's fixed overrides)"
        tables += [gov, market_table(fake, varied_values), agents_table(fake)]
    findings, headline = _sweep_headline(sweep)
    infos = {f.file: f for f in SWEEP_FIGURES}
    figs = [(infos[p.name], p) for p in figures if p.name in infos]
    events, notes, worst_cmd = _sweep_events(sweep)
    commands = []
    if worst_cmd:
        commands.append(
            ("Re-run the worst run alone, with every output (events, accounts, figures)", worst_cmd)
        )
    if m.get("sweep_file"):
        commands.append(("Re-run the sweep", f"perpsim sweep {m['sweep_file']} --out OUT"))
    commands.append(("Re-draw the figures of this sweep", f"perpsim plot {sweep.path}"))
    commands.append(("Rebuild this report", f"perpsim report {sweep.path}"))
    provenance = manifest_rows(m)
    first = _first_run_manifest(sweep)
    if first:
        provenance += [
            (f"run: {k}", v) for k, v in manifest_rows(first) if k in ("git commit", "versions")
        ]
    warnings = commit_warning(first)
    n_failed = (
        int((sweep.results["status"].astype(str) != "ok").sum())
        if ("status" in sweep.results)
        else 0
    )
    if n_failed:
        warnings.append(f"{n_failed} runs failed and are left out of every statistic.")
    spec_yaml = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True) if spec else None
    return Report(
        title=f"Sweep risk report: {sweep.name}",
        subtitle=f"{len(sweep.aggregate)} points · {len(sweep.results)} runs · sweep folder"
        f" {sweep.path}",
        question=question,
        parameters=tables,
        findings=findings,
        headline=headline,
        figures=figs,
        events=events,
        event_notes=notes,
        commands=commands,
        manifest=provenance,
        manifest_json=json.dumps(
            {k: v for k, v in m.items() if k != "spec"}, indent=2, default=str
        ),
        resolved=spec_yaml,
        warnings=warnings,
    )
