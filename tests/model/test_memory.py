"""Many runs in one process run in flat memory: a finished model is freed.

Mesa 3.3's ``Agent._ids`` is keyed by the model, so without :func:`perpsim.run.release_model`
every finished model (agents, event log, time series) stays alive in a sweep worker.
"""

from __future__ import annotations

import gc
import tracemalloc
import weakref
from typing import Any

from perpsim.run import run_scenario
from perpsim.scenario import load_scenario, resolve_scenario_path


def _run(refs: list[weakref.ref[Any]]) -> None:
    path = resolve_scenario_path("baseline")
    scenario = load_scenario(path, ["clock.duration=1h"])
    seen: list[weakref.ref[Any]] = []

    def keep(model: Any) -> None:
        if not seen:
            seen.append(weakref.ref(model))

    run_scenario(scenario, base_dir=path.parent, progress=keep)
    refs.extend(seen)


def test_a_finished_model_is_freed() -> None:
    refs: list[weakref.ref[Any]] = []
    _run(refs)
    gc.collect()
    assert refs and refs[0]() is None, "the finished model is still referenced"


def test_memory_stays_flat_over_many_runs() -> None:
    refs: list[weakref.ref[Any]] = []
    _run(refs)  # warm caches (price data, imports) before measuring
    gc.collect()
    tracemalloc.start()
    try:
        _run(refs)
        gc.collect()
        first, _ = tracemalloc.get_traced_memory()
        for _ in range(3):
            _run(refs)
        gc.collect()
        last, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # One 1-hour baseline model holds about 0.7 MB; three kept models would be 2 MB.
    assert last - first < 300_000, f"memory grew by {(last - first) / 1e6:.2f} MB over 3 runs"
    assert all(r() is None for r in refs)
