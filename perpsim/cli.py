"""The ``perpsim`` command line.

Every command returns an exit code: 0 on success, 1 when a run completed but found problems
(e.g. a replay expectation failed), 2 for bad input (a file, a flag) with a message and no
traceback.

Each command imports what it uses when it runs (no import cycle is involved): ``perpsim
validate`` and ``perpsim --help`` then start without loading matplotlib, jinja2 or dask, which
matters when a test corpus starts one process per file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from perpsim import __version__
from perpsim.errors import ConfigError


def _cmd_replay(args: argparse.Namespace) -> int:
    from perpsim.io import atomic_write_text
    from perpsim.replay import replay_run_dir, run_dir_replay_doc, run_replay_file

    target = Path(args.file)
    verdict: str | None = None
    if target.is_dir():
        _check_run_folder(target)
        if args.export:
            doc = run_dir_replay_doc(target)
            atomic_write_text(Path(args.export), yaml.safe_dump(doc, sort_keys=False))
        report, ledger = replay_run_dir(target)
        doc_out = json.loads(report.to_json())
        doc_out["ledger"] = ledger
        text = json.dumps(doc_out, indent=2)
        # A run's report holds every operation: the terminal gets the verdict, --out the JSON.
        verdict = _ledger_verdict(target, report, ledger, args.out)
    else:
        if args.export:
            raise ConfigError("--export works on a run folder, not on a replay file")
        report = run_replay_file(target)
        text = report.to_json()
    if args.out:
        atomic_write_text(Path(args.out), text + "\n")
    if args.json:
        print(text)
    elif not args.quiet:
        print(verdict if verdict is not None else text)
    if not report.ok:
        for f in report.failures[:20]:
            print(f"{args.file}: op {f['index']} ({f['op']}): {f['failure']}", file=sys.stderr)
        if len(report.failures) > 20:
            print(f"... and {len(report.failures) - 20} more failures", file=sys.stderr)
        return 1
    return 0


def _ledger_verdict(run_dir: Path, report: Any, ledger: dict[str, Any], out: str | None) -> str:
    """What ``perpsim replay RUN_DIR`` prints: the verdict first, then a few lines."""
    mismatches = ledger.get("mismatches") or []
    head = (
        f"OK: the event log of {run_dir} rebuilds its ledger"
        if report.ok
        else f"FAILED: the event log of {run_dir} does not rebuild its ledger"
    )
    lines = [
        head,
        f"  accounts compared       {int(ledger.get('accounts', 0)):,}",
        f"  ledger mismatches       {len(mismatches):,}",
        f"  largest difference      {float(ledger.get('max_abs_diff', 0.0)):.3g}",
        f"  operations rejected     {len(report.errors):,} (as they were in the run)",
        f"  failed operations       {len(report.failures):,}",
    ]
    for m in mismatches[:5]:
        lines.append(f"  mismatch: {m}")
    lines.append(
        f"  full report: {out}" if out else "  the full report (JSON): add --out FILE (or --json)"
    )
    return "\n".join(lines)


def _cmd_run(args: argparse.Namespace) -> int:
    import shutil

    from perpsim.run import (
        check_run_size,
        default_out_dir,
        mark_complete,
        memory_limit,
        prepare_run_dir,
        publish_run_dir,
        run_scenario,
        write_outputs,
    )
    from perpsim.scenario import load_scenario, resolve_scenario_path

    path = resolve_scenario_path(args.scenario)
    scenario = load_scenario(path, args.set or ())
    seed = scenario.seed if args.seed is None else args.seed
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {seed}")
    fmt = args.format or scenario.output.format
    check_run_size(scenario, memory_limit(args.max_memory))
    out = Path(args.out) if args.out else default_out_dir(scenario.name, seed)
    # --out is checked (and a folder created in it) before the run, not after it.
    staging = prepare_run_dir(out, overwrite=args.overwrite)
    show = not args.quiet
    code = 0
    try:
        progress, finish = _progress(scenario, enabled=show and sys.stderr.isatty())
        try:
            result = run_scenario(
                scenario,
                seed,
                base_dir=path.parent,
                check_invariants=not args.no_check_invariants,
                progress=progress,
                max_memory=memory_limit(args.max_memory),
            )
        except ConfigError as exc:  # found while building the run (its price path)
            text = str(exc)
            where = f"{args.scenario}: " if text.startswith("price_path") else ""
            raise ConfigError(where + text) from None
        finally:
            finish()
        write_outputs(result, staging, fmt, complete=False)
        figures: list[Path] = []
        if not args.no_plots:
            try:
                figures = _plots(staging)
            except Exception as exc:  # the tables are worth keeping without their figures
                print(
                    f"error: the figures failed ({type(exc).__name__}: {exc}); the tables are"
                    f" kept; draw them with: perpsim plot {out}",
                    file=sys.stderr,
                )
                code = 1
        mark_complete(result, staging, figures)
        publish_run_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if show:
        _print_summary(result, out)
    if result.error:
        print(f"error: the run stopped: {result.error}", file=sys.stderr)
        return 1
    return code


def _plots(out: Path) -> list[Path]:
    from perpsim.plots import plot_run

    return plot_run(out)


def _progress(scenario: Any, enabled: bool) -> tuple[Any, Any]:
    """The run's progress bar (ticks, simulated date, trades/s), or nothing off a terminal."""
    if not enabled:
        return None, lambda: None
    import time as _time

    from perpsim.progress import Progress

    bar = Progress(scenario.name, scenario.clock.n_ticks, unit="ticks", transient=True)
    t0 = _time.perf_counter()
    state = {"last": 0}

    def update(model: Any) -> None:
        if model.tick - state["last"] < 50 and model.tick != model.n_ticks:
            return
        state["last"] = model.tick
        trades = model.trades_total
        elapsed = max(_time.perf_counter() - t0, 1e-9)
        date = scenario.clock.iso(int(model.offsets[model.tick]))
        bar.update(completed=model.tick, status=f"{date}  {trades / elapsed:,.0f} trades/s")

    return update, bar.stop


def _print_summary(result: Any, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from perpsim.run import summary_rows

    text = summary_rows(result)
    table = Table(title=f"run summary: {text.title}", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for label, value in text.headline:
        table.add_row(label, value, style="bold")
    if text.headline:
        table.add_section()
    for label, value in text.rows:
        table.add_row(label, value)
    console = Console(stderr=False)
    console.print(table)
    if text.headline:
        console.print("bold: the scenario's headline metrics (output.headline)")
    console.print(f"outputs: {out}")


def _is_sweep_file(name: str) -> bool:
    """A YAML mapping with ``parameters`` and ``scenario``: a sweep file, not a scenario."""
    from perpsim.scenario.yaml import load_yaml_file

    path = Path(name)
    if not path.is_file():
        return False
    try:
        doc, _ = load_yaml_file(path)
    except ConfigError:
        return False
    return isinstance(doc, dict) and "parameters" in doc and "scenario" in doc


def _analysis_kind(name: str) -> str | None:
    """``sensitivity``, ``stress`` or ``compare`` for an analysis file, else None."""
    from perpsim.analysis.cli import analysis_file_kind
    from perpsim.scenario.yaml import load_yaml_file

    path = Path(name)
    if not path.is_file():
        return None
    try:
        doc, _ = load_yaml_file(path)
    except ConfigError:
        return None
    return analysis_file_kind(doc)


def _cmd_validate(args: argparse.Namespace) -> int:
    from perpsim.analysis.cli import validate_analysis_file
    from perpsim.scenario import validate_command

    analyses = {f: k for f in args.files if (k := _analysis_kind(f)) is not None}
    sweeps = [f for f in args.files if f not in analyses and _is_sweep_file(f)]
    scenarios = [f for f in args.files if f not in sweeps and f not in analyses]
    status = validate_command(scenarios) if scenarios else 0
    for name, kind in analyses.items():
        try:
            print(validate_analysis_file(name, kind))
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            status = 2
    if sweeps:
        from perpsim.sweep import load_sweep

        for name in sweeps:
            try:
                plan = load_sweep(name)  # the scenario, every key and every point's scenario
            except ConfigError as exc:
                print(str(exc), file=sys.stderr)
                status = 2
                continue
            print(
                f"OK {name} (sweep: {plan.n_points} points x {plan.spec.seeds} seeds ="
                f" {plan.n_runs} runs of {plan.scenario_name})"
            )
    return status


def _cmd_scenarios(args: argparse.Namespace) -> int:
    from perpsim.scenario import list_scenarios_command

    return list_scenarios_command()


def _cmd_sweep(args: argparse.Namespace) -> int:
    import signal

    from perpsim.progress import ProgressMode
    from perpsim.sweep import load_sweep, print_report, run_sweep

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    plan = load_sweep(args.file)
    out = Path(args.out) if args.out else Path("outputs") / "sweeps" / plan.name
    progress: ProgressMode = "off" if args.quiet else "bar" if sys.stderr.isatty() else "lines"

    def _terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)  # `kill PID` stops cleanly too
    try:
        outcome = run_sweep(
            plan,
            out,
            workers=args.workers,
            scheduler=args.scheduler,
            resume=args.resume,
            retry_failed=args.retry_failed,
            progress=progress,
        )
    except KeyboardInterrupt:
        print(
            f"interrupted: the finished runs are saved in {out}; continue with"
            f" perpsim sweep {args.file} --out {out} --resume",
            file=sys.stderr,
        )
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not args.quiet:
        print_report(plan, outcome)
    failed = outcome.results[outcome.results["status"] != "ok"]
    for _, row in failed.head(5).iterrows():
        point = int(row["point_id"])
        print(
            f"run {point}-{row['seed_index']} ({plan.describe_point(point)}, seed {row['seed']})"
            f" failed: {row['error']}",
            file=sys.stderr,
        )
    if len(failed) > 5:
        print(f"... and {len(failed) - 5} more failed runs (see results.parquet)", file=sys.stderr)
    return 0 if outcome.complete and outcome.n_failed == 0 else 1


def _check_run_folder(path: Path) -> None:
    """Refuse an incomplete run folder (a killed run); warn about one that cannot say."""
    from perpsim.run import check_run_dir

    if path.is_dir():
        warning = check_run_dir(path)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)


def _cmd_plot(args: argparse.Namespace) -> int:
    from perpsim.plots import plot_dir

    _check_run_folder(Path(args.dir))
    paths = plot_dir(Path(args.dir), metric=args.metric, x=args.x, y=args.y)
    if not args.quiet:
        for path in paths:
            print(path)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from perpsim.report import write_report

    _check_run_folder(Path(args.dir))
    html_path, md_path = write_report(Path(args.dir), Path(args.out) if args.out else None)
    if not args.quiet:
        print(f"report: {html_path}")
        print(f"summary: {md_path}")
    return 0


def _cmd_viz(args: argparse.Namespace) -> int:
    from perpsim.dashboard.cli import viz_command

    return viz_command(args.target, args.set or (), host=args.host, port=args.port)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="perpsim",
        description="Agent-based risk simulator for AMM-based perpetual-futures exchanges.",
    )
    parser.add_argument("--version", action="version", version=f"perpsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "replay",
        help="run a list of engine operations and print observed values as JSON",
        description="Run the operations of a replay file (YAML or JSON) against a fresh"
        " exchange; print the observations, results and errors as JSON.",
    )
    p.add_argument(
        "file",
        help="replay file (.yaml/.yml/.json), or a run folder: its event log is replayed and"
        " the rebuilt ledger compared with the run's accounts",
    )
    p.add_argument("--export", help="with a run folder: also write its replay file here")
    p.add_argument("--out", help="also write the JSON report to this file")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the whole JSON report (a run folder prints its verdict otherwise)",
    )
    p.add_argument("--quiet", action="store_true", help="do not print the report")
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser(
        "run",
        help="run a scenario and write time series, events, summary and manifest",
        description="Run a scenario (a file, or the name of a shipped one) and write its"
        " outputs to --out (default outputs/<scenario>/<timestamp>-<seed>/).",
    )
    p.add_argument("scenario", help="scenario file, or a shipped scenario's name")
    p.add_argument("--seed", type=int, help="root seed (default: the scenario's)")
    p.add_argument("--out", help="output folder")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help=(
            "override a scenario key (dotted path),"
            " e.g. venue.governance.maintenance_margin_rate=0.05"
        ),
    )
    p.add_argument(
        "--format", choices=("parquet", "csv"), help="table format (default: the scenario's)"
    )
    p.add_argument("--no-plots", action="store_true", help="do not draw the figures")
    p.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="refuse a run estimated to need more memory than this (default 4GB, or"
        " PERPSIM_MAX_MEMORY), e.g. 16GB",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in --out (a non-empty --out is refused otherwise)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary table")
    p.add_argument(
        "--no-check-invariants",
        action="store_true",
        help="do not check the accounting after every tick (it is checked by default)",
    )
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "validate", help="check scenario, sweep and analysis files; exit 2 with the errors"
    )
    p.add_argument(
        "files", nargs="+", help="scenario files (or shipped scenario names) and sweep files"
    )
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("scenarios", help="list the shipped scenarios")
    p.set_defaults(func=_cmd_scenarios)

    p = sub.add_parser(
        "sweep",
        help="run a scenario over a grid or sample of parameters x seeds",
        description="Run the sweep described by SWEEP.yaml (see docs/sweeps.md) on local worker"
        " processes or a Dask cluster; write results.parquet (one row per run) and"
        " aggregate.parquet (risk statistics per point) to --out.",
    )
    p.add_argument("file", metavar="SWEEP.yaml", help="sweep file")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="local worker processes (default: the number of cores; 1 runs in this process)",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask cluster, e.g. tcp://host:8786 (needs pip install 'perpsim[dask]')",
    )
    p.add_argument("--out", help="output folder (default outputs/sweeps/<sweep name>/)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted sweep in --out")
    p.add_argument(
        "--retry-failed", action="store_true", help="with --resume, run failed runs again"
    )
    p.add_argument("--quiet", action="store_true", help="no progress and no final table")
    p.set_defaults(func=_cmd_sweep)
    from perpsim.analysis.cli import add_parsers

    add_parsers(sub)  # sensitivity, stress, compare (docs/analysis.md)
    p = sub.add_parser(
        "plot",
        help="draw the figures of a run folder or a sweep folder (PNG, in DIR/plots/)",
        description="Draw the figures of a run (prices, funding, insurance fund, pool,"
        " liquidations, trader PnL) or of a sweep (heatmap, metric vs parameter, losses, fan"
        " chart, frontier) into DIR/plots/. See docs/plots.md.",
    )
    p.add_argument("dir", metavar="DIR", help="a run folder or a sweep folder")
    p.add_argument(
        "--metric",
        help="sweeps: the statistic of the heatmap and the metric plot (a summary metric such"
        " as bad_debt, or p_insurance_fund_exhausted, var95_bad_debt, lar95, ...)",
    )
    p.add_argument("--x", metavar="KEY", help="sweeps: the varied parameter on the x axis")
    p.add_argument("--y", metavar="KEY", help="sweeps: the second varied parameter")
    p.add_argument("--quiet", action="store_true", help="do not list the files written")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser(
        "report",
        help="write a self-contained HTML report (and a Markdown summary) of a run or sweep",
        description="Write one HTML file with the question, parameters, headline risk numbers,"
        " figures (embedded), notable events and how to reproduce; and a Markdown summary with"
        " the same stem next to it.",
    )
    p.add_argument("dir", metavar="DIR", help="a run folder or a sweep folder")
    p.add_argument("--out", metavar="FILE", help="the HTML file (default DIR/report.html)")
    p.add_argument("--quiet", action="store_true", help="do not print the paths written")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "viz",
        help="open the interactive dashboard (Mesa SolaraViz) on a scenario or a run folder",
        description="Serve a dashboard on http://HOST:PORT/: step, play and reset a scenario"
        " with new governance rates, or look through a finished run folder with a time slider."
        " Needs the viz extra: pip install -e '.[viz]'. See docs/dashboard.md.",
    )
    p.add_argument(
        "target",
        nargs="?",
        metavar="SCENARIO",
        help="scenario file, shipped scenario's name, or run folder (default: baseline)",
    )
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a scenario key (as in run)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8521, help="TCP port (default 8521)")
    p.set_defaults(func=_cmd_viz)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``perpsim`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for flag in ("out", "export"):  # "" would be the working directory
        value = getattr(args, flag, None)
        if isinstance(value, str) and not value.strip():
            print(f"error: --{flag} is empty: give a path", file=sys.stderr)
            return 2
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``perpsim ... | head``): every file is written already. Point
        # stdout at nothing so that the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # what a shell reports for a command ended by SIGPIPE
    return code


if __name__ == "__main__":
    raise SystemExit(main())
