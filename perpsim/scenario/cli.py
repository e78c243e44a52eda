"""The scenario commands: ``perpsim validate`` and ``perpsim scenarios``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from perpsim.errors import ConfigError
from perpsim.scenario.extends import SCENARIO_DIR
from perpsim.scenario.files import load_raw_scenario, load_scenario, shipped_scenarios

__all__ = ["list_scenarios_command", "validate_command"]


def validate_command(paths: Sequence[str], overrides: Sequence[str] = ()) -> int:
    """``perpsim validate FILE...``: checks each file.

    Prints ``OK path`` to stdout for a valid file and the problems to stderr otherwise.

    Args:
        paths: Files (or names of shipped scenarios).
        overrides: ``KEY=VALUE`` items applied to every file.

    Returns:
        0 if every file is valid, else 2.
    """
    if not paths:
        print("perpsim validate: give at least one scenario file", file=sys.stderr)
        return 2
    status = 0
    for path in paths:
        try:
            load_scenario(path, overrides)
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            status = 2
        except Exception as exc:  # a user must never see a traceback
            print(f"{path}: (top level): could not be validated: {exc!r}", file=sys.stderr)
            status = 2
        else:
            print(f"OK {path}")
    return status


def _summary(description: str) -> str:
    return next((line.strip() for line in description.splitlines() if line.strip()), "")


def list_scenarios_command(out: Callable[[str], None] = print) -> int:
    """``perpsim scenarios``: a table of the shipped scenarios.

    Args:
        out: Where to write the lines (stdout by default).

    Returns:
        0, or 2 if a shipped scenario cannot be read.
    """
    rows: list[tuple[str, str, str]] = []
    status = 0
    for path in shipped_scenarios():
        try:
            raw = load_raw_scenario(path)
        except ConfigError as exc:
            rows.append((path.name, "?", f"(cannot be read: {str(exc).splitlines()[0]})"))
            status = 2
            continue
        name = raw.get("name")
        description = raw.get("description")
        rows.append(
            (
                path.name,
                name if isinstance(name, str) else "?",
                _summary(description) if isinstance(description, str) else "",
            )
        )
    if not rows:
        out(f"no scenarios found in {SCENARIO_DIR}")
        return 2
    headers = ("file", "name", "description")
    widths = [max(len(r[i]) for r in [*rows, headers]) for i in range(2)]
    out(f"{headers[0]:<{widths[0]}}  {headers[1]:<{widths[1]}}  {headers[2]}")
    for file, name, summary in rows:
        out(f"{file:<{widths[0]}}  {name:<{widths[1]}}  {summary}")
    return status
