"""``perpsim sensitivity``, ``perpsim stress`` and ``perpsim compare``: parsers and commands.

:func:`add_parsers` adds the three subcommands to ``perpsim``'s parser (``perpsim/cli.py``).
Bad input raises :class:`~perpsim.errors.ConfigError` (exit 2, no traceback); runs that failed
exit 1 with their errors; Ctrl-C keeps the finished runs and exits 130, printing the command
that resumes.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from perpsim.errors import ConfigError
from perpsim.progress import ProgressMode

__all__ = ["add_parsers", "analysis_file_kind", "validate_analysis_file"]


def _progress(args: argparse.Namespace) -> ProgressMode:
    return "off" if args.quiet else "bar" if sys.stderr.isatty() else "lines"


def _check_workers(args: argparse.Namespace) -> None:
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")


@contextmanager
def _resumable(command: str) -> Iterator[None]:
    """SIGTERM stops like Ctrl-C; either prints the command that continues."""

    def _terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    except KeyboardInterrupt:
        print(f"interrupted: the finished runs are kept; continue with {command}", file=sys.stderr)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def _fmt(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.3f}"


def _cmd_sensitivity(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from perpsim.analysis.sensitivity import (
        IncompleteRunsError,
        load_sensitivity,
        run_sensitivity,
    )

    _check_workers(args)
    plan = load_sensitivity(args.file)
    out = Path(args.out) if args.out else Path("outputs") / "sensitivity" / plan.name
    with _resumable(f"perpsim sensitivity {args.file} --out {out} --resume"):
        try:
            result = run_sensitivity(
                plan,
                out,
                workers=args.workers,
                scheduler=args.scheduler,
                resume=args.resume,
                retry_failed=args.retry_failed,
                progress=_progress(args),
            )
        except IncompleteRunsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    console = Console()
    n4, n2, n = plan.levels
    idx = result.indices
    for metric in plan.spec.metrics:
        verdict = result.stable[metric]
        title = (
            f"{metric}: no variance, indices undefined"
            if verdict is None
            else f"{metric}: {'stable' if verdict else 'NOT stable'} between N={n2} and N={n}"
            f" (largest move {result.max_change[metric]:.3f})"
        )
        table = Table(title=title)
        for col in (
            "parameter",
            f"S1 (N={n})",
            f"ST (N={n})",
            f"S1 @ {n4}/{n2}/{n}",
            f"ST @ {n4}/{n2}/{n}",
        ):
            table.add_column(col, justify="left" if col == "parameter" else "right")
        m = idx[idx["metric"] == metric]
        for key in plan.keys:
            r = m[m["parameter"] == key].sort_values("n")
            last = r.iloc[-1]
            table.add_row(
                key,
                f"{_fmt(last['S1'])} ± {_fmt(last['S1_conf'])}",
                f"{_fmt(last['ST'])} ± {_fmt(last['ST_conf'])}",
                " ".join(_fmt(v) for v in r["S1"]),
                " ".join(_fmt(v) for v in r["ST"]),
            )
        if not args.quiet:
            console.print(table)
    for note in result.notes:
        print(f"note: {note}")
    print(f"outputs: {out}/indices.csv, sensitivity.png, convergence.png, report.md")
    return 0


def _cmd_stress(args: argparse.Namespace) -> int:
    import json

    from perpsim.analysis.stress import load_stress, run_stress

    _check_workers(args)
    plan = load_stress(args.file)
    out = Path(args.out) if args.out else Path("outputs") / "stress" / plan.name
    with _resumable(f"perpsim stress {args.file} --out {out} --resume"):
        result = run_stress(
            plan,
            out,
            workers=args.workers,
            scheduler=args.scheduler,
            resume=args.resume,
            retry_failed=args.retry_failed,
            progress=_progress(args),
            verify=not args.no_verify,
        )
    objective = plan.spec.objective
    worst = result.worst
    print(
        f"worst {objective} = {worst['loss']:,.6g} (candidate {worst['trial']} of"
        f" {plan.spec.budget}) at:"
    )
    for key in plan.spec.parameters:
        print(f"  {key} = {json.dumps(worst[key])}")
    for _, r in result.budget.iterrows():
        print(f"  within {int(r['budget'])} candidates: worst {objective} {r['worst_loss']:,.6g}")
    record = json.loads((out / "stress.json").read_text(encoding="utf-8"))
    if record["reproduced_loss"] is not None:
        print(
            f"{result.worst_path} run again (seed {result.worst_seed}): {objective} ="
            f" {record['reproduced_loss']:,.6g} ("
            + ("reproduced" if record["reproduced"] else "NOT reproduced")
            + f"); insurance fund exhausted: {record['worst_insurance_fund_exhausted']}"
        )
    print(f"outputs: {out}/worst.yaml, trace.csv, budget.csv, trace.png, budget.png")
    failed = int((result.trace["status"] != "ok").sum())
    if failed:
        print(f"{failed} candidate(s) had failed runs (see {out}/trace.csv)", file=sys.stderr)
    return 1 if failed or record["reproduced"] is False else 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from perpsim.analysis.compare import compare_cell, load_compare, run_compare

    _check_workers(args)
    venues = None
    if args.venues is not None:
        venues = [v.strip() for v in args.venues.split(",") if v.strip()]
        if not venues:
            raise ConfigError("--venues: name at least one venue kind")
    plan = load_compare(
        args.scenario,
        venues=venues,
        venue_set=args.venue_set or (),
        seeds=args.seeds,
        overrides=args.set or (),
        impact_size=args.impact_size,
    )
    out = Path(args.out) if args.out else Path("outputs") / "compare" / plan.name
    with _resumable(f"perpsim compare {args.scenario} ... --out {out} --resume"):
        result = run_compare(
            plan,
            out,
            workers=args.workers,
            scheduler=args.scheduler,
            resume=args.resume,
            progress=_progress(args),
        )
    if not args.quiet:
        table = Table(title=f"{plan.name}: the same market on {len(plan.kinds)} designs")
        table.add_column("metric")
        for kind in plan.kinds:
            table.add_column(kind, justify="right")
        for metric in result.table.index:
            table.add_row(
                result.labels.get(metric, metric),
                *(compare_cell(metric, result.table.loc[metric, k]) for k in plan.kinds),
            )
        Console().print(table)
        print("— : the design does not have it.")
        for kind in plan.kinds:
            print(f"{kind}: {result.notes[kind]}")
    for f in result.failed:
        print(f"failed: {f}", file=sys.stderr)
    print(f"outputs: {out}/compare.md, compare.csv, compare.png, funds.png")
    return 1 if result.failed else 0


def _common(p: argparse.ArgumentParser, what: str) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="local worker processes (default: the number of cores; 1 runs in this process)",
    )
    where.add_argument(
        "--scheduler", metavar="ADDRESS", help="run on a Dask cluster, e.g. tcp://host:8786"
    )
    p.add_argument("--out", help=f"output folder (default outputs/{what}/<name>/)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress and no tables")


def add_parsers(sub: Any) -> None:
    """Adds ``sensitivity``, ``stress`` and ``compare`` to ``perpsim``'s subparsers."""
    p = sub.add_parser(
        "sensitivity",
        help="Sobol indices (S1, ST) of run metrics over parameter ranges (docs/analysis.md)",
        description="Sobol first-order and total indices (SALib, Saltelli design, bootstrap"
        " intervals) of the metrics of SPEC.yaml, with a convergence check at N/4, N/2 and N;"
        " the runs go through the sweep machinery.",
    )
    p.add_argument("file", metavar="SPEC.yaml", help="sensitivity file")
    _common(p, "sensitivity")
    p.add_argument(
        "--retry-failed", action="store_true", help="with --resume, run failed runs again"
    )
    p.set_defaults(func=_cmd_sensitivity)

    p = sub.add_parser(
        "stress",
        help="search for the market that maximises a loss within bounds (docs/analysis.md)",
        description="Worst-case search (optuna TPE) over the bounds of SPEC.yaml with common"
        " random numbers; writes the worst scenario as runnable YAML, the trace and the worst"
        " loss against the budget.",
    )
    p.add_argument("file", metavar="SPEC.yaml", help="stress file")
    _common(p, "stress")
    p.add_argument(
        "--retry-failed", action="store_true", help="with --resume, run failed runs again"
    )
    p.add_argument(
        "--no-verify", action="store_true", help="do not run the written worst.yaml again"
    )
    p.set_defaults(func=_cmd_stress)

    p = sub.add_parser(
        "compare",
        help="one scenario on several exchange designs, side by side (docs/analysis.md)",
        description="Run SCENARIO (a file, a shipped name, or a compare file) with the same"
        " market, agents, events and seeds on each venue kind, each with its own default"
        " governance unless overridden; print and write a side-by-side table and figures.",
    )
    p.add_argument("scenario", metavar="SCENARIO", help="scenario, shipped name or compare file")
    p.add_argument(
        "--venues",
        metavar="KINDS",
        help="comma-separated venue kinds (default: every registered kind)",
    )
    p.add_argument(
        "--venue-set",
        action="append",
        metavar="KIND.KEY=VALUE",
        help="override a key of one kind's venue: section, e.g. d8x.pool.default_fund=30000",
    )
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override the scenario (every venue)"
    )
    p.add_argument("--seeds", type=int, metavar="N", help="runs per venue (default 1)")
    p.add_argument(
        "--impact-size", type=float, metavar="Q", help="size of the price-impact buy (default 10)"
    )
    _common(p, "compare")
    p.set_defaults(func=_cmd_compare)


def analysis_file_kind(doc: Any) -> str | None:
    """``sensitivity``, ``stress`` or ``compare`` for an analysis file's mapping, else None."""
    if not isinstance(doc, dict):
        return None
    if "venues" in doc and "scenario" in doc:
        return "compare"
    if "metrics" in doc and "N" in doc:
        return "sensitivity"
    if "objective" in doc and "budget" in doc:
        return "stress"
    return None


def validate_analysis_file(path: str, kind: str) -> str:
    """Validates an analysis file as its command would; the ``OK`` line.

    Raises:
        ConfigError: The file is invalid.
    """
    if kind == "sensitivity":
        from perpsim.analysis.sensitivity import load_sensitivity

        plan = load_sensitivity(path)
        return (
            f"OK {path} (sensitivity: N={plan.spec.N}, {plan.sweep.n_points} points x"
            f" {plan.spec.seeds} seeds = {plan.sweep.n_runs} runs)"
        )
    if kind == "stress":
        from perpsim.analysis.stress import load_stress

        splan = load_stress(path)
        return (
            f"OK {path} (stress: budget {splan.spec.budget} candidates of {splan.spec.seeds}"
            " seed(s))"
        )
    from perpsim.analysis.compare import load_compare

    cplan = load_compare(path)
    return f"OK {path} (compare: {', '.join(cplan.kinds)})"
