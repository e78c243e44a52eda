"""Fixtures shared by the whole suite.

* :func:`perpsim_cli` hands a test :func:`support.run_perpsim`, which runs the ``perpsim``
  command in a child interpreter, the way a user would.
* :func:`no_leftover_children` (autouse) fails a test that leaves child processes running, so
  that a pool, a cluster or a command that outlives its test is reported by the test that
  started it instead of slowing down, or breaking, whichever test runs next.
* :func:`kernels_loaded` (autouse) gives every test a process whose compiled kernels have paid
  for their loading (``perpsim.engine.core.kernels.BUDGET``), so a test sees the compiled paths
  whatever ran before it; a test of the budget itself installs a fresh one.

Test modules that want the helper itself (not a fixture argument) import it from
:mod:`support`.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
from support import PerpsimCLI, run_perpsim

from perpsim.engine.core import kernels

#: ``pytester`` runs a pytest session inside a test: how ``test_conftest.py`` checks these
#: fixtures.
pytest_plugins = ("pytester",)

#: Processes that multiprocessing starts once and keeps for the life of the interpreter (the
#: fork server that sweep pools fork their workers from, the tracker of shared resources):
#: they outlive the first test that needs them by design.
INTERPRETER_HELPERS: Final = ("multiprocessing.forkserver", "multiprocessing.resource_tracker")

#: How long a child may take to exit after its test has ended (a pool or a cluster that was
#: shut down but whose processes are still finishing) before it counts as left running.
EXIT_GRACE_S: Final = 10.0


@pytest.fixture
def perpsim_cli() -> PerpsimCLI:
    """:func:`run_perpsim`, for tests that take their helpers as arguments."""
    return run_perpsim


def _child_pids(pid: int) -> list[int]:
    """The children of process ``pid`` (every thread's: a pool may start them from any)."""
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            found.extend(
                int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()
            )
        except OSError:  # the thread ended while we looked
            continue
    return found


def _proc_descendants() -> dict[int, str]:
    """This process's live descendants, except the interpreter helpers: pid → command line.

    A helper is recognised by its command line only as a direct child: the fork server's own
    children (pool workers) inherit that command line, and are checked like any other process.
    Zombies are left out: they have exited, and only wait for their parent to read the status.
    """
    me = os.getpid()
    running: dict[int, str] = {}
    todo = [(pid, me) for pid in _child_pids(me)]
    while todo:
        pid, parent = todo.pop()
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            todo.extend((child, pid) for child in _child_pids(pid))
        except OSError:  # it exited meanwhile
            continue
        helper = parent == me and any(h in cmdline for h in INTERPRETER_HELPERS)
        if state != "Z" and not helper:
            running[pid] = cmdline.strip()
    return running


def _multiprocessing_children() -> dict[int, str]:
    """Where there is no ``/proc/PID/task/TID/children``: what multiprocessing itself started."""
    return {p.pid: p.name for p in multiprocessing.active_children() if p.pid is not None}


_running_children: Final = (
    _proc_descendants
    if Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists()
    else _multiprocessing_children
)


@pytest.fixture(autouse=True)
def kernels_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with the compiled kernels in use (a budget already paid)."""
    budget = kernels.KernelBudget()
    budget.pay_now()
    monkeypatch.setattr(kernels, "BUDGET", budget)


@pytest.fixture(autouse=True)
def no_leftover_children() -> Iterator[None]:
    """Fails the test if a process it started is still running a while after it ended.

    Processes that were already running when the test started (those of wider-scoped fixtures)
    are not its own. Leftovers are killed after being reported, so the next test starts clean.
    """
    before = set(_running_children())
    yield
    deadline = time.monotonic() + EXIT_GRACE_S
    while True:
        multiprocessing.active_children()  # reaps finished multiprocessing children
        left = {pid: cmd for pid, cmd in _running_children().items() if pid not in before}
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if not left:
        return
    for pid in left:
        try:
            os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))  # no SIGKILL on Windows
        except (ProcessLookupError, PermissionError):
            continue
    listing = "\n".join(f"  {pid}: {cmd}" for pid, cmd in sorted(left.items()))
    pytest.fail(f"the test left child processes running:\n{listing}", pytrace=False)
