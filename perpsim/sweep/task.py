"""One run of a sweep: the task (plain data, picklable) and the worker function.

:func:`run_task` is what every backend executes, in this process, in a local worker process or
on a Dask worker; it never raises: a failing run comes back as a row with its traceback.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shutil
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from perpsim.metrics import SUMMARY_METRICS
from perpsim.run import run_scenario, write_outputs
from perpsim.scenario import (
    apply_typed_overrides,
    load_raw_scenario,
    resolve_scenario_path,
    scenario_from_raw,
)
from perpsim.sweep.layout import RUNS
from perpsim.sweep.spec import Keep

__all__ = ["RunTask", "run_task"]


@dataclasses.dataclass(frozen=True)
class RunTask:
    """Everything a worker needs for one run (plain data, picklable).

    Attributes:
        point_id: The point.
        seed_index: The seed index at this point.
        seed: The run's seed.
        scenario: Scenario file (absolute) or a shipped scenario's name.
        overrides: ``(key, value)`` pairs: the sweep's ``set:``, then the point's values, as
            Python values (applied with :func:`perpsim.scenario.apply_typed_overrides`).
        keep: ``summary``, ``timeseries`` or ``all``.
        out_dir: The sweep's folder (run folders go under ``runs/``); None keeps nothing.
        check_invariants: Check the accounting after every tick.
        function: ``module:function`` of a function run in place of the model (the analysis
            layer's self-tests, e.g. the Ishigami function): it takes the overrides as a
            mapping and the seed, and returns its outputs as a mapping of name to number,
            recorded under ``outputs`` in the row (which has no summary metrics); ``scenario``
            is then not read.
    """

    point_id: int
    seed_index: int
    seed: int
    scenario: str
    overrides: tuple[tuple[str, Any], ...]
    keep: Keep = "summary"
    out_dir: str | None = None
    check_invariants: bool = True
    function: str | None = None

    @property
    def run_name(self) -> str:
        """The run's folder name under ``runs/``."""
        return f"{self.point_id:05d}-{self.seed_index:03d}"


def _metric_value(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    return None


def _call_function(task: RunTask) -> dict[str, float]:
    """Runs ``task.function`` on the task's values; its outputs as floats."""
    module, _, name = str(task.function).partition(":")
    fn = getattr(importlib.import_module(module), name)
    outputs = fn(dict(task.overrides), task.seed)
    return {str(k): float(v) for k, v in dict(outputs).items()}


def run_task(task: RunTask) -> dict[str, Any]:
    """Runs one scenario of a sweep; never raises (a failure becomes a row).

    Args:
        task: The run.

    Returns:
        The result row: ids, ``status`` (``ok`` or ``failed``), ``error`` and ``traceback``
        (None when ok), ``wall_time_s``, every metric of
        :data:`~perpsim.metrics.SUMMARY_METRICS`, ``perp_status``, ``invariants`` and
        ``run_dir`` (relative to the sweep folder, when the run keeps files).
    """
    t0 = time.perf_counter()
    row: dict[str, Any] = {
        "point_id": task.point_id,
        "seed_index": task.seed_index,
        "seed": task.seed,
        "status": "failed",
        "error": None,
        "traceback": None,
        "wall_time_s": 0.0,
        "perp_status": None,
        "invariants": None,
        "run_dir": None,
    }
    try:
        if task.function is not None:
            row["outputs"] = _call_function(task)
            row["status"] = "ok"
            row["wall_time_s"] = time.perf_counter() - t0
            return row
        raw = apply_typed_overrides(
            load_raw_scenario(task.scenario), dict(task.overrides), source=task.scenario
        )
        scenario = scenario_from_raw(raw, task.scenario)
        base_dir = resolve_scenario_path(task.scenario).resolve().parent
        result = run_scenario(
            scenario, task.seed, base_dir=base_dir, check_invariants=task.check_invariants
        )
        summary = result.summary
        for key in SUMMARY_METRICS:
            row[key] = _metric_value(summary.get(key))
        row["perp_status"] = str(summary.get("status"))
        inv = summary.get("invariants", "ok")
        row["invariants"] = inv if isinstance(inv, str) else json.dumps(inv, default=str)
        if task.keep != "summary" and task.out_dir is not None:
            runs = Path(task.out_dir) / RUNS
            runs.mkdir(parents=True, exist_ok=True)
            final = runs / task.run_name
            tmp = runs / f".{task.run_name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
            try:
                write_outputs(result, tmp, "parquet", task.keep)
                if final.exists():
                    shutil.rmtree(final)
                os.replace(tmp, final)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
            row["run_dir"] = f"{RUNS}/{task.run_name}"
        if result.error is None:
            row["status"] = "ok"
        else:
            row["error"] = f"the run stopped: {result.error}"
    except Exception as exc:  # a failing run is a row, never a crash of the sweep
        row["status"] = "failed"
        row["error"] = f"{type(exc).__name__}: {exc}"
        row["traceback"] = traceback.format_exc()
    row["wall_time_s"] = time.perf_counter() - t0
    return row
