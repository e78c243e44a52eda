"""Answers for governance: sensitivity indices, a worst-case search, and designs side by side.

- :mod:`~perpsim.analysis.sensitivity`: ``perpsim sensitivity SPEC.yaml``, Sobol indices
  (SALib) of run metrics over governance rates and market parameters;
- :mod:`~perpsim.analysis.stress`: ``perpsim stress SPEC.yaml``, the adversarial market that
  maximises a loss within bounds (optuna), written as a runnable scenario;
- :mod:`~perpsim.analysis.compare`: ``perpsim compare SCENARIO --venues ...``, one market on
  every registered design;
- :mod:`~perpsim.analysis.plans` turns each analysis's points into a sweep plan, so every run goes
  through the sweep machinery (process pool or Dask, journal, resume, failures isolated);
- :mod:`~perpsim.analysis.specs` reads the files; :mod:`~perpsim.analysis.figures` draws;
  :mod:`~perpsim.analysis.ishigami` is the sensitivity self-test's function;
  :mod:`~perpsim.analysis.cli` holds the three commands.

The names below are loaded on first use, so that ``perpsim``'s command line, which registers the
three commands, does not import the scenario layer, SALib or optuna until one of them runs. The
user's guide is ``docs/analysis.md``.
"""

from __future__ import annotations

import importlib
from typing import Any, Final

#: Public name → the module that defines it.
_NAMES: Final = {
    "SensitivitySpec": "sensitivity",
    "SensitivityPlan": "sensitivity",
    "SensitivityResult": "sensitivity",
    "IncompleteRunsError": "sensitivity",
    "load_sensitivity": "sensitivity",
    "plan_sensitivity": "sensitivity",
    "run_sensitivity": "sensitivity",
    "analyse": "sensitivity",
    "report_section": "sensitivity",
    "StressSpec": "stress",
    "StressPlan": "stress",
    "StressResult": "stress",
    "load_stress": "stress",
    "run_stress": "stress",
    "CompareSpec": "compare",
    "ComparePlan": "compare",
    "CompareResult": "compare",
    "load_compare": "compare",
    "plan_compare": "compare",
    "run_compare": "compare",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'perpsim.analysis' has no attribute {name!r}")
    return getattr(importlib.import_module(f"perpsim.analysis.{module}"), name)
