"""The sweep folder: its file names and the columns of its two tables.

Every other module of the sweep package (and anything that reads a sweep folder) names files
and columns through these constants, so that the layout is written down once.
"""

from __future__ import annotations

from typing import Final

from perpsim.metrics import SUMMARY_METRICS

__all__ = [
    "AGGREGATE",
    "AGGREGATE_EXTRA",
    "ID_COLUMNS",
    "JOURNAL",
    "LOCK",
    "MANIFEST",
    "RESERVED_COLUMNS",
    "RESULTS",
    "RESULT_COLUMNS_MACHINE_DEPENDENT",
    "RUNS",
    "STATS",
    "STATUS_COLUMNS",
    "TAIL_COLUMNS",
    "aggregate_columns",
    "metric_column",
]

#: The journal: one JSON line per finished run.
JOURNAL: Final = "results.jsonl"
#: The sweep's manifest (what was planned; checked on ``--resume``).
MANIFEST: Final = "sweep.json"
#: One row per run.
RESULTS: Final = "results.parquet"
#: One row per point.
AGGREGATE: Final = "aggregate.parquet"
#: The kept run folders.
RUNS: Final = "runs"
#: The lock file held while a sweep runs in the folder.
LOCK: Final = ".lock"

#: Columns of ``results.parquet`` that depend on the machine (leave them out when comparing).
RESULT_COLUMNS_MACHINE_DEPENDENT: Final = ("wall_time_s",)

#: Risk statistics of ``aggregate.parquet`` beyond the per-metric mean/median/p5/p95.
AGGREGATE_EXTRA: Final = (
    "var95_bad_debt",
    "cvar95_bad_debt",
    "var95_insurance_fund_drawdown",
    "cvar95_insurance_fund_drawdown",
    "p_insurance_fund_exhausted",
    "lar95",
)

#: Per-metric statistics of ``aggregate.parquet`` (column ``<metric>_<stat>``).
STATS: Final = ("mean", "median", "p5", "p95")

#: Columns of a result row before the varied parameters.
ID_COLUMNS: Final = ("point_id", "seed_index", "seed")
#: Columns of a result row after the parameters and before the metrics.
STATUS_COLUMNS: Final = ("status", "error", "traceback", "wall_time_s")
#: Columns of a result row after the metrics.
TAIL_COLUMNS: Final = ("perp_status", "invariants", "run_dir")
#: Names a varied key cannot have (they are columns of the tables already).
RESERVED_COLUMNS: Final = frozenset(
    (*ID_COLUMNS, *STATUS_COLUMNS, *TAIL_COLUMNS, *SUMMARY_METRICS, "n_runs", "n_ok")
)


def aggregate_columns() -> tuple[str, ...]:
    """The statistic columns of ``aggregate.parquet`` (after ``point_id`` and the keys)."""
    return (*(f"{m}_{s}" for m in SUMMARY_METRICS for s in STATS), *AGGREGATE_EXTRA)


def metric_column(metric: str) -> str:
    """The ``aggregate.parquet`` column that ranks points for ``metric``.

    Args:
        metric: A summary metric (ranked by its mean over seeds, e.g. ``bad_debt``) or any
            statistic column of ``aggregate.parquet`` (``bad_debt_p95``, ``var95_bad_debt``,
            ``p_insurance_fund_exhausted``, ...).

    Returns:
        The column name.

    Raises:
        ValueError: ``metric`` is neither.
    """
    if metric in SUMMARY_METRICS:
        return f"{metric}_mean"
    if metric in aggregate_columns():
        return metric
    raise ValueError(
        f"unknown metric {metric!r} (allowed: a summary metric such as bad_debt, or a column"
        f" of aggregate.parquet such as {', '.join(AGGREGATE_EXTRA)})"
    )
