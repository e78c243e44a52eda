"""Parameter sweeps: ``perpsim sweep SWEEP.yaml``.

A sweep runs one scenario at many *points* (values of governance rates or any other scenario
key) and several *seeds* per point, and reduces the runs to risk statistics per point. The file
format, the samplers, the outputs and the resume rules are documented for users in
``docs/sweeps.md``. One concept a module:

- :mod:`~perpsim.sweep.spec`: the sweep file, its schema and its reading (errors name the
  file, the key and the line);
- :mod:`~perpsim.sweep.sampling`: the points (grid, random, Latin hypercube, Sobol) and the
  seed of every run, from one :class:`numpy.random.SeedSequence`;
- :mod:`~perpsim.sweep.plan`: :func:`load_sweep` / :func:`plan_sweep` resolve the scenario,
  check every key through the scenario's override machinery and validate every point's
  scenario before anything runs;
- :mod:`~perpsim.sweep.task`: one run (:class:`RunTask`, plain data) and the worker function
  :func:`run_task`, which never raises;
- :mod:`~perpsim.sweep.backends`: where runs execute (in-process, a local process pool, a Dask
  cluster), each behind a :class:`concurrent.futures.Executor`;
- :mod:`~perpsim.sweep.journal`: ``results.jsonl``, one fsynced line per finished run;
- :mod:`~perpsim.sweep.tables`: ``results.parquet`` and ``aggregate.parquet``, rebuilt from the
  journal at the end, on Ctrl-C and on ``--resume``;
- :mod:`~perpsim.sweep.runner`: :func:`run_sweep` and :func:`print_report`;
- :mod:`~perpsim.sweep.layout`: the folder's file names and table columns.

Run ``(point, seed_index)`` always gets the same seed, so the results do not depend on the
executor, the number of workers or the completion order.
"""

from perpsim.sweep.backends import InlineExecutor, default_workers
from perpsim.sweep.journal import read_journal
from perpsim.sweep.layout import (
    AGGREGATE,
    AGGREGATE_EXTRA,
    JOURNAL,
    MANIFEST,
    RESULT_COLUMNS_MACHINE_DEPENDENT,
    RESULTS,
    RUNS,
    STATS,
    metric_column,
)
from perpsim.sweep.plan import SweepPlan, load_sweep, override_text, plan_sweep
from perpsim.sweep.runner import MAX_ATTEMPTS, SweepOutcome, print_report, run_sweep
from perpsim.sweep.sampling import generate_points, run_seed, sampler_seed_sequence, unit_samples
from perpsim.sweep.spec import (
    MAX_POINTS,
    ChoiceParam,
    LogUniformParam,
    Parameter,
    RangeParam,
    SweepSpec,
    UniformParam,
    ValuesParam,
)
from perpsim.sweep.tables import aggregate_results, rank_points, results_frame, write_tables
from perpsim.sweep.task import RunTask, run_task

__all__ = [
    "AGGREGATE",
    "AGGREGATE_EXTRA",
    "JOURNAL",
    "MANIFEST",
    "MAX_ATTEMPTS",
    "MAX_POINTS",
    "RESULTS",
    "RESULT_COLUMNS_MACHINE_DEPENDENT",
    "RUNS",
    "STATS",
    "ChoiceParam",
    "InlineExecutor",
    "LogUniformParam",
    "Parameter",
    "RangeParam",
    "RunTask",
    "SweepOutcome",
    "SweepPlan",
    "SweepSpec",
    "UniformParam",
    "ValuesParam",
    "aggregate_results",
    "default_workers",
    "generate_points",
    "load_sweep",
    "metric_column",
    "override_text",
    "plan_sweep",
    "print_report",
    "rank_points",
    "read_journal",
    "results_frame",
    "run_seed",
    "run_sweep",
    "run_task",
    "sampler_seed_sequence",
    "unit_samples",
    "write_tables",
]
