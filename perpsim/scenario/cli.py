"""The scenario commands: ``perpsim validate`` and ``perpsim scenarios``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from perpsim.errors import ConfigError
from perpsim.scenario.extends import SCENARIO_DIR
from perpsim.scenario.files import (
    load_raw_scenario,
    load_scenario,
    resolve_scenario_path,
    shipped_scenarios,
)
from perpsim.scenario.schema import Scenario

__all__ = ["list_scenarios_command", "validate_command"]


def check_market_path(scenario: Scenario, base_dir: Path) -> None:
    """Build the run's market path (its seed's), so that one the engine cannot carry fails here.

    Raises:
        ConfigError: the path (with its shocks) leaves the prices a run can carry.
    """
    import numpy as np

    # The model layer is loaded only for a file that passed every other check.
    from perpsim.model.model import market_path
    from perpsim.model.streams import Streams

    offsets = np.arange(scenario.clock.n_ticks + 1, dtype=np.int64) * int(scenario.clock.tick)
    market_path(scenario, Streams(scenario.seed), offsets, base_dir)


def _located(source: str, exc: ConfigError) -> ConfigError:
    """A problem found by building the run, named with its file as the schema's messages are."""
    text = str(exc)
    return ConfigError(text if text.startswith(source) else f"{source}: {text}")


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
            scenario = load_scenario(path, overrides)
            from perpsim.run import check_run_size

            try:
                check_run_size(scenario)  # before the path is built: that needs the memory
                check_market_path(scenario, resolve_scenario_path(path).resolve().parent)
            except ConfigError as exc:
                raise _located(path, exc) from None
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            status = 2
        except Exception as exc:  # a user must never see a traceback
            print(f"{path}: (top level): could not be validated: {exc!r}", file=sys.stderr)
            status = 2
        else:
            from perpsim.scenario.traps import scenario_warnings

            for warning in scenario_warnings(scenario):
                print(f"{path}: warning: {warning}", file=sys.stderr)
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
        shown = path.relative_to(SCENARIO_DIR).as_posix()  # incidents/ftx_2022.yaml
        try:
            raw = load_raw_scenario(path)
        except ConfigError as exc:
            rows.append((shown, "?", f"(cannot be read: {str(exc).splitlines()[0]})"))
            status = 2
            continue
        name = raw.get("name")
        description = raw.get("description")
        rows.append(
            (
                shown,
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
