"""The report of an analysis folder: ``perpsim sensitivity``, ``stress`` or ``compare``.

An analysis writes its numbers (a JSON summary, CSV tables) and its figures into its folder;
this module reads them back into the same :class:`~perpsim.report.model.Report` a run or a sweep
gets, so ``perpsim report DIR`` gives one self-contained page for a risk review whatever
produced ``DIR``. Nothing is recomputed: the page says what the folder holds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import pandas as pd
import yaml

from perpsim.analysis.compare import compare_cell
from perpsim.errors import ConfigError
from perpsim.plots import FigureInfo
from perpsim.plots.files import read_json
from perpsim.report.model import Report, Table
from perpsim.report.text import paragraphs, short

__all__ = ["ANALYSIS_SUMMARIES", "analysis_kind", "analysis_report"]

#: The summary file that marks each kind of analysis folder.
ANALYSIS_SUMMARIES: Final = {
    "sensitivity": "sensitivity.json",
    "stress": "stress.json",
    "compare": "compare.json",
}


def analysis_kind(path: Path) -> str | None:
    """Which analysis wrote ``path`` (``sensitivity``, ``stress``, ``compare``), or None."""
    for kind, name in ANALYSIS_SUMMARIES.items():
        if (path / name).is_file():
            return kind
    return None


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ConfigError(f"{path}: missing; the analysis folder is incomplete (run it again)")
    return pd.read_csv(path)


def _num(x: Any) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(v) else f"{v:.3f}"


def _figures(path: Path, infos: list[FigureInfo]) -> list[tuple[FigureInfo, Path]]:
    return [(info, path / info.file) for info in infos if (path / info.file).is_file()]


def _question(spec: dict[str, Any], fallback: str) -> list[str]:
    text = str(spec.get("description") or "").strip()
    return paragraphs(text) if text else [fallback]


def _spec_yaml(spec: dict[str, Any]) -> str | None:
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True) if spec else None


def _settings(spec: dict[str, Any], keys: tuple[str, ...]) -> Table:
    rows = [[k.replace("_", " "), short(spec[k])] for k in keys if spec.get(k) is not None]
    fixed = spec.get("set")
    if isinstance(fixed, dict) and fixed:
        rows.append(["fixed overrides", ", ".join(f"{k}={short(v)}" for k, v in fixed.items())])
    return Table("Settings", ["setting", "value"], rows)


def _manifest(data: dict[str, Any], keys: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(k.replace("_", " "), short(data[k])) for k in keys if data.get(k) is not None]


def _sensitivity(path: Path, data: dict[str, Any]) -> Report:
    spec = data.get("spec") if isinstance(data.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    idx = _read_csv(path / "indices.csv")
    levels = [int(n) for n in data.get("levels", sorted(idx["n"].unique()))]
    n_full = levels[-1]
    ranges = data.get("parameter_ranges") or {}
    what = f"scenario {spec['scenario']}" if spec.get("scenario") else f"model {spec.get('model')}"
    question = _question(
        spec, f"Which of {len(data.get('parameters', []))} parameters matter to the {what}?"
    )
    question.append(
        f"Sobol first-order (S1) and total (ST) indices of {', '.join(data.get('metrics', []))}"
        f" over the {what}, N = {n_full}: {data.get('points')} points × {data.get('seeds')}"
        f" seed(s) = {data.get('runs')} runs (Saltelli design, SALib). S1 is the share of a"
        " metric's variance a parameter explains alone; ST adds its interactions."
    )
    params = [
        Table(
            "Varied parameters",
            ["parameter", "range or distribution"],
            [[k, str(ranges.get(k, ""))] for k in data.get("parameters", [])],
        ),
        _settings(spec, ("scenario", "model", "N", "seeds", "seed", "conf_level", "resamples")),
    ]
    findings: list[str] = []
    headline: list[Table] = []
    tol = data.get("stability_tolerance")
    for metric in data.get("metrics", []):
        verdict = (data.get("stable") or {}).get(metric)
        move = (data.get("max_change_half_to_full") or {}).get(metric)
        if verdict is None:
            findings.append(f"{metric}: the same at every point; its indices are undefined.")
        else:
            findings.append(
                f"{metric}: {'stable' if verdict else 'NOT stable'} between N={levels[-2]} and"
                f" N={n_full} (largest move {_num(move)}, tolerance {tol})."
            )
        m = idx[idx["metric"] == metric]
        rows = []
        for key in data.get("parameters", []):
            r = m[m["parameter"] == key].sort_values("n")
            if r.empty:
                continue
            last = r.iloc[-1]
            rows.append(
                [
                    key,
                    f"{_num(last['S1'])} ± {_num(last['S1_conf'])}",
                    f"{_num(last['ST'])} ± {_num(last['ST_conf'])}",
                    ", ".join(_num(v) for v in r["S1"]),
                    ", ".join(_num(v) for v in r["ST"]),
                ]
            )
        headline.append(
            Table(
                f"{metric}: indices at N = {n_full}",
                ["parameter", "S1", "ST", "S1 at N/4, N/2, N", "ST at N/4, N/2, N"],
                rows,
                note="± is the half-width of the bootstrap interval.",
                numeric={1, 2},
            )
        )
    figures = _figures(
        path,
        [
            FigureInfo(
                "sensitivity.png",
                "Sobol indices",
                "S1 and ST of each parameter with their bootstrap intervals, one panel per"
                " metric. ST near 0: the parameter does not matter within its range; ST well"
                " above S1: it acts through interactions.",
            ),
            FigureInfo(
                "convergence.png",
                "Convergence",
                "Every index at N/4, N/2 and N from the same runs: flat lines mean N is large"
                " enough.",
            ),
        ],
    )
    source = data.get("source", "SPEC.yaml")
    return Report(
        title=f"Sensitivity report: {data.get('name', path.name)}",
        subtitle=f"N = {n_full} · {data.get('runs')} runs · analysis folder {path}",
        question=question,
        parameters=params,
        findings=findings,
        headline=headline,
        figures=figures,
        events=[],
        event_notes=[*data.get("notes", []), _runs_note(data.get("failed_runs"))],
        commands=_commands("sensitivity", source, path),
        manifest=_manifest(data, ("name", "source", "N", "points", "seeds", "runs")),
        manifest_json=json.dumps({k: v for k, v in data.items() if k != "spec"}, indent=2),
        resolved=_spec_yaml(spec),
        warnings=[f"{data['failed_runs']} runs failed."] if data.get("failed_runs") else [],
    )


def _runs_note(failed: Any) -> str:
    return (
        "The runs are in sweep/ (a sweep folder: perpsim report sweep/ gives its own report)."
        + (f" {failed} of them failed." if failed else "")
    )


def _commands(kind: str, source: Any, path: Path) -> list[tuple[str, str]]:
    return [
        (f"Run the {kind} again", f"perpsim {kind} {source} --out OUT"),
        ("Continue it if it was interrupted", f"perpsim {kind} {source} --out {path} --resume"),
        ("Rebuild this report", f"perpsim report {path}"),
    ]


def _stress(path: Path, data: dict[str, Any]) -> Report:
    spec = data.get("spec") if isinstance(data.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    objective = str(data.get("objective", "loss"))
    worst = data.get("worst") or {}
    values = worst.get("values") or {}
    bounds = spec.get("parameters") or {}
    question = _question(
        spec, f"What is the worst {objective} of {spec.get('scenario')} within these bounds?"
    )
    question.append(
        f"A search ({data.get('optimizer')}, {data.get('budget')} candidates in batches of"
        f" {data.get('batch')}, {data.get('seeds')} seed(s) each, common random numbers) for"
        f" the market that maximises {objective}."
    )
    params = [
        Table(
            "Searched parameters",
            ["parameter", "bounds", "worst found"],
            [[k, short(bounds.get(k, "")), short(values.get(k))] for k in values],
        ),
        _settings(spec, ("scenario", "objective", "budget", "batch", "optimizer", "seeds", "seed")),
    ]
    findings = [
        f"The worst {objective} found: {short(worst.get('loss'))} (trial {worst.get('trial')})."
    ]
    rep = data.get("reproduced")
    if rep is not None:
        findings.append(
            f"Re-run from {data.get('worst_scenario')} alone: {short(data.get('reproduced_loss'))}"
            f" ({'the same as' if rep else 'NOT the same as'} the search's first seed,"
            f" {short(data.get('search_loss_seed_index_0'))})."
        )
    if data.get("worst_insurance_fund_exhausted") is not None:
        findings.append(
            "The insurance fund is "
            + ("exhausted" if data["worst_insurance_fund_exhausted"] else "not exhausted")
            + " in the worst scenario."
        )
    summary = data.get("worst_summary") or {}
    headline = [
        Table(
            "The worst scenario's run",
            ["metric", "value"],
            [[k.replace("_", " "), short(v)] for k, v in summary.items() if v is not None],
            numeric={1},
        )
    ]
    budget_path = path / "budget.csv"
    if budget_path.is_file():
        budget = pd.read_csv(budget_path)
        headline.append(
            Table(
                "The worst loss by budget",
                ["runs", f"worst {objective}"],
                [
                    [str(int(b)), short(v)]
                    for b, v in zip(budget["budget"], budget["worst_loss"], strict=True)
                ],
                note="Still rising at the full budget: a larger budget may find worse.",
                numeric={0, 1},
            )
        )
    figures = _figures(
        path,
        [
            FigureInfo("trace.png", "Search trace", f"{objective} of every candidate, in order."),
            FigureInfo("budget.png", "Worst loss by budget", "The worst found after each budget."),
        ],
    )
    source = data.get("source", "SPEC.yaml")
    commands = [
        (
            "Run the worst scenario found",
            f"perpsim run {path / str(data.get('worst_scenario', 'worst.yaml'))}",
        ),
        *_commands("stress", source, path),
    ]
    return Report(
        title=f"Worst-case report: {data.get('name', path.name)}",
        subtitle=f"{data.get('budget')} candidates · {objective} · analysis folder {path}",
        question=question,
        parameters=params,
        findings=findings,
        headline=headline,
        figures=figures,
        events=[],
        event_notes=[
            "Every candidate is in trace.csv; the worst as a runnable scenario in worst.yaml."
        ],
        commands=commands,
        manifest=_manifest(data, ("name", "source", "objective", "budget", "worst_seed")),
        manifest_json=json.dumps({k: v for k, v in data.items() if k != "spec"}, indent=2),
        resolved=_spec_yaml(spec),
    )


def _compare(path: Path, data: dict[str, Any]) -> Report:
    spec = data.get("spec") if isinstance(data.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    venues = [str(v) for v in data.get("venues", [])]
    table = data.get("table") or {}
    labels = data.get("labels") or {}
    metrics = list(labels) or sorted({m for c in table.values() for m in c})
    question = _question(
        spec, f"Would another exchange design have done better on {data.get('scenario')}?"
    )
    question.append(
        f"The same market, agents, events and {data.get('seeds')} seed(s) on {', '.join(venues)},"
        " each design with its own default governance unless overridden. Means over the seeds."
    )
    overrides = spec.get("venues") or {}
    params = [
        Table(
            "Designs",
            ["venue kind", "overrides of its venue section"],
            [
                [
                    v,
                    ", ".join(f"{k}={short(x)}" for k, x in (overrides.get(v) or {}).items())
                    or "its defaults (or the scenario's own)",
                ]
                for v in venues
            ],
        ),
        _settings(spec, ("scenario", "seeds", "seed", "impact_size")),
    ]
    rows = []
    for metric in metrics:
        label = str(labels.get(metric, metric))
        cells = []
        for v in venues:
            value = (table.get(v) or {}).get(metric)
            cells.append(compare_cell(metric, math.nan if value is None else value))
        rows.append([label, *cells])
    headline = [
        Table(
            "Side by side",
            ["metric", *venues],
            rows,
            note="— : the design does not have it.",
            numeric=set(range(1, len(venues) + 1)),
        )
    ]
    notes = data.get("notes") or {}
    findings = [f"{v}: {notes[v]}" for v in venues if v in notes]
    figures = _figures(
        path,
        [
            FigureInfo("compare.png", "The metrics side by side", "One panel per metric."),
            FigureInfo("funds.png", "Each design's funds", "The funds that absorb losses."),
        ],
    )
    # The command line that runs the same comparison, whether it came from a file or flags.
    parts = [f"perpsim compare {spec.get('scenario', data.get('scenario'))}"]
    parts.append(f"--venues {','.join(venues)}")
    for v in venues:
        for k, x in (overrides.get(v) or {}).items():
            parts.append(f"--venue-set {v}.{k}={short(x)}")
    for k, x in (spec.get("set") or {}).items():
        parts.append(f"--set {k}={short(x)}")
    for key, flag in (("seeds", "--seeds"), ("impact_size", "--impact-size")):
        if spec.get(key) is not None:
            parts.append(f"{flag} {short(spec[key])}")
    rerun = " ".join(parts)
    return Report(
        title=f"Design comparison: {data.get('name', path.name)}",
        subtitle=f"{len(venues)} designs · {data.get('seeds')} seed(s) · analysis folder {path}",
        question=question,
        parameters=params,
        findings=findings,
        headline=headline,
        figures=figures,
        events=[],
        event_notes=[_runs_note(len(data.get("failed") or []))],
        commands=[
            ("Run the comparison again", f"{rerun} --out OUT"),
            ("Continue it if it was interrupted", f"{rerun} --out {path} --resume"),
            ("Rebuild this report", f"perpsim report {path}"),
        ],
        manifest=_manifest(data, ("name", "scenario", "seeds", "impact_size")),
        manifest_json=json.dumps({k: v for k, v in data.items() if k != "spec"}, indent=2),
        resolved=_spec_yaml(spec),
        warnings=[f"Failed: {f}" for f in data.get("failed") or []],
    )


_BUILDERS: Final[dict[str, Callable[[Path, dict[str, Any]], Report]]] = {
    "sensitivity": _sensitivity,
    "stress": _stress,
    "compare": _compare,
}


def analysis_report(path: Path) -> Report:
    """The report of the analysis folder ``path``.

    Raises:
        ConfigError: ``path`` is not an analysis folder, or its files cannot be read.
    """
    kind = analysis_kind(path)
    if kind is None:
        raise ConfigError(
            f"{path}: not an analysis folder (no {', '.join(ANALYSIS_SUMMARIES.values())})"
        )
    return _BUILDERS[kind](path, read_json(path / ANALYSIS_SUMMARIES[kind]))
