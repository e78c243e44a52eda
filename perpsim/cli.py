"""The ``perpsim`` command line.

Every command returns an exit code: 0 on success, 1 when a run completed but found problems
(e.g. a replay expectation failed), 2 for bad input (a file, a flag) with a message and no
traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from perpsim import __version__
from perpsim.errors import ConfigError


def _cmd_replay(args: argparse.Namespace) -> int:
    from perpsim.io import atomic_write_text
    from perpsim.replay import run_replay_file

    report = run_replay_file(args.file)
    text = report.to_json()
    if args.out:
        atomic_write_text(Path(args.out), text + "\n")
    if not args.quiet:
        print(text)
    if not report.ok:
        for f in report.failures:
            print(f"{args.file}: op {f['index']} ({f['op']}): {f['failure']}", file=sys.stderr)
        return 1
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from perpsim.scenario import validate_command

    return validate_command(args.files)


def _cmd_scenarios(args: argparse.Namespace) -> int:
    from perpsim.scenario import list_scenarios_command

    return list_scenarios_command()


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
    p.add_argument("file", help="replay file (.yaml/.yml/.json)")
    p.add_argument("--out", help="also write the JSON report to this file")
    p.add_argument("--quiet", action="store_true", help="do not print the report")
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser("validate", help="check scenario files; exit 2 with the errors")
    p.add_argument("files", nargs="+", help="scenario files (or shipped scenario names)")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("scenarios", help="list the shipped scenarios")
    p.set_defaults(func=_cmd_scenarios)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``perpsim`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
