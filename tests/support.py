"""What test modules share that is not a fixture: the repository root, the ``perpsim`` command,
running a scenario file and comparing two runs' tables.

Test modules import it by name (``tests/`` is on ``sys.path`` under pytest's default import
mode, put there by ``tests/conftest.py``); a ``conftest`` module cannot be imported by name,
since every folder of tests may have one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from perpsim.run import RunResult

#: The repository root: the working directory of every ``perpsim`` command a test runs.
REPO: Final = Path(__file__).resolve().parent.parent

#: The type of :func:`run_perpsim`, for the ``perpsim_cli`` fixture of ``conftest.py``.
PerpsimCLI = Callable[..., subprocess.CompletedProcess[str]]


def run_perpsim(
    *args: str, cwd: Path = REPO, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Runs ``python -m perpsim ARGS`` in a child interpreter.

    The child imports perpsim from this checkout (``PYTHONPATH``) whatever is installed, and its
    output is captured as text; a non-zero exit status is returned, not raised.

    Args:
        *args: The command line after ``perpsim``.
        cwd: The working directory (relative paths in ``args`` are resolved from it).
        timeout: Seconds before the child is killed and ``subprocess.TimeoutExpired`` raised.

    Returns:
        The finished process, with ``returncode``, ``stdout`` and ``stderr``.
    """
    return subprocess.run(
        [sys.executable, "-m", "perpsim", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_file(path: Path, overrides: list[str]) -> RunResult:
    """Runs the scenario file ``path`` with ``overrides`` in this process (no outputs written)."""
    from perpsim.run import run_scenario
    from perpsim.scenario import load_scenario

    return run_scenario(load_scenario(path, overrides), base_dir=path.parent)


def assert_same_run(a: RunResult, b: RunResult) -> None:
    """Asserts two runs gave the same tables and summary (the summary's wall time aside)."""
    import pandas as pd

    pd.testing.assert_frame_equal(a.timeseries, b.timeseries)
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.accounts, b.accounts)
    drop = {"wall_time_s"}
    assert {k: v for k, v in a.summary.items() if k not in drop} == {
        k: v for k, v in b.summary.items() if k not in drop
    }
