"""What test modules share that is not a fixture: the repository root, the ``perpsim`` command.

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
from typing import Final

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
