"""A process loads its compiled kernels only once its Python calls have paid for the loading.

``perpsim.engine.core.kernels.BUDGET`` counts what the calls answered in Python would have saved
compiled (D8X's rebalance and trade probe, Predy's liquidation price); the kernels run from the
call that finds the budget paid. Which path answers changes no float, so a run that switches in
the middle must give exactly the tables of a run in Python throughout and of a run compiled
throughout, and the switch must really happen (the kernels counted before and after). A short
run in a fresh process must not import numba at all.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from support import REPO, assert_same_run, run_file

from perpsim.engine.core import kernels
from perpsim.engine.venues.d8x import kernel as d8x_kernel
from perpsim.engine.venues.d8x.pool import D8XPool
from perpsim.engine.venues.predy import kernel as predy_kernel
from perpsim.engine.venues.predy.venue import PredyVenue


def test_the_budget_pays_once_then_stays_paid() -> None:
    budget = kernels.KernelBudget(load_cost_us=100.0)
    answers = [budget.compiled(30.0) for _ in range(6)]
    # 0, 30, 60 and 90 µs counted are short of 100; the fifth call finds 120.
    assert answers == [False, False, False, False, True, True]
    assert budget.paid() and budget.saved_us == 120.0
    budget.reset()
    assert not budget.paid()
    budget.count(99.0)
    assert not budget.paid()
    budget.count(1.0)
    assert budget.paid()
    fresh = kernels.KernelBudget(load_cost_us=1.0)
    fresh.pay_now()
    assert fresh.compiled(0.0)


@contextmanager
def counting(
    monkeypatch: pytest.MonkeyPatch, module: Any, names: tuple[str, ...]
) -> Iterator[dict[str, int]]:
    """Counts the calls of a kernel module's functions ``names`` while the block runs."""
    counts = dict.fromkeys(names, 0)
    with monkeypatch.context() as m:
        for name in names:
            inner: Callable[..., Any] = getattr(module, name)

            def counted(*args: Any, _inner: Callable[..., Any] = inner, _name: str = name) -> Any:
                counts[_name] += 1
                return _inner(*args)

            m.setattr(module, name, counted)
        yield counts


def _three_ways(
    monkeypatch: pytest.MonkeyPatch,
    path: Path,
    overrides: list[str],
    module: Any,
    names: tuple[str, ...],
    set_python: Callable[[bool], None],
    load_cost_us: float,
) -> tuple[dict[str, int], dict[str, int]]:
    """Runs the scenario in Python only, compiled throughout, and switching part-way (budget
    ``load_cost_us``); all tables equal; the kernel counts (compiled, switching)."""
    set_python(True)
    try:
        python = run_file(path, overrides)
    finally:
        set_python(False)
    with counting(monkeypatch, module, names) as all_compiled:
        compiled = run_file(path, overrides)
    budget = kernels.KernelBudget(load_cost_us=load_cost_us)
    monkeypatch.setattr(kernels, "BUDGET", budget)
    with counting(monkeypatch, module, names) as switching:
        switched = run_file(path, overrides)
    assert budget.paid(), "the budget was never reached: nothing switched"
    assert_same_run(python, compiled)
    assert_same_run(compiled, switched)
    return all_compiled, switching


def test_a_d8x_run_switching_to_the_kernels_part_way_is_the_same_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def python_only(on: bool) -> None:
        D8XPool.compiled_kernels = not on

    compiled, switching = _three_ways(
        monkeypatch,
        REPO / "scenarios" / "d8x_baseline.yaml",
        ["clock.duration=12h"],
        d8x_kernel,
        ("probe_price", "rebalance"),
        python_only,
        load_cost_us=60_000.0,
    )
    for name in ("probe_price", "rebalance"):
        assert 0 < switching[name] < compiled[name], (name, switching, compiled)


def test_a_predy_run_switching_to_the_kernel_part_way_is_the_same_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def python_only(on: bool) -> None:
        PredyVenue.compiled_liquidation_prices = not on

    compiled, switching = _three_ways(
        monkeypatch,
        REPO / "scenarios" / "predy_baseline.yaml",
        ["clock.duration=1d"],
        predy_kernel,
        ("liquidation_index",),
        python_only,
        load_cost_us=3_000.0,
    )
    assert 0 < switching["liquidation_index"] < compiled["liquidation_index"]


def test_a_short_run_in_a_fresh_process_does_not_load_numba() -> None:
    """The D8X reference crowd's market for 6 hours: its rebalances save less than the load."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from perpsim.engine.core import kernels\n"
        "from perpsim.run import run_scenario\n"
        "from perpsim.scenario import load_scenario\n"
        f"path = Path({str(REPO / 'benchmarks' / 'scenarios' / 'd8x_reference_3d.yaml')!r})\n"
        "r = run_scenario(load_scenario(path, ['clock.duration=6h']), base_dir=path.parent)\n"
        "assert r.summary['trades'] > 0, r.summary\n"
        "print('numba' in sys.modules, kernels.BUDGET.saved_us > 0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]
