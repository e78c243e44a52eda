"""The tables of a sweep: ``results.parquet`` (one row per run) and ``aggregate.parquet`` (one
row per point), rebuilt from the journal at the end, on Ctrl-C and on ``--resume``.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from perpsim.io import atomic_write_bytes
from perpsim.metrics import SUMMARY_METRICS, cvar, var
from perpsim.sweep.journal import read_journal
from perpsim.sweep.layout import AGGREGATE, JOURNAL, RESULTS, STATS, TAIL_COLUMNS, metric_column
from perpsim.sweep.plan import SweepPlan

__all__ = ["aggregate_results", "rank_points", "results_frame", "write_tables"]


def _param_series(values: Sequence[Any], kind: str) -> pd.Series:
    if kind == "float64":
        return pd.Series([float(v) for v in values], dtype="float64")
    if kind == "int64":
        return pd.Series([int(v) for v in values], dtype="int64")
    if kind == "bool":
        return pd.Series([bool(v) for v in values], dtype="bool")
    if kind == "string":
        return pd.Series(list(values), dtype="string")
    return pd.Series([json.dumps(v, sort_keys=True) for v in values], dtype="string")


def results_frame(
    plan: SweepPlan, rows: Mapping[tuple[int, int], Mapping[str, Any]]
) -> pd.DataFrame:
    """``results.parquet``: one row per run, sorted by ``(point_id, seed_index)``.

    Columns: ``point_id``, ``seed_index``, ``seed``, every varied key, ``status``, ``error``,
    ``traceback``, ``wall_time_s``, every summary metric (floats; booleans as nullable
    booleans), ``perp_status``, ``invariants``, ``run_dir``.
    """
    keys = sorted(k for k in rows if 0 <= k[0] < plan.n_points and 0 <= k[1] < plan.spec.seeds)
    recs = [rows[k] for k in keys]
    cols: dict[str, pd.Series] = {
        "point_id": pd.Series([k[0] for k in keys], dtype="int64"),
        "seed_index": pd.Series([k[1] for k in keys], dtype="int64"),
        "seed": pd.Series([int(r["seed"]) for r in recs], dtype="int64"),
    }
    for j, (key, kind) in enumerate(zip(plan.keys, plan.kinds, strict=True)):
        cols[key] = _param_series([plan.points[k[0]][j] for k in keys], kind)
    for name in ("status", "error", "traceback"):
        cols[name] = pd.Series([r.get(name) for r in recs], dtype="string")
    cols["wall_time_s"] = pd.Series([r.get("wall_time_s") for r in recs], dtype="float64")
    for m in SUMMARY_METRICS:
        vals = [r.get(m) for r in recs]
        present = [v for v in vals if v is not None]
        if present and all(isinstance(v, bool) for v in present):
            cols[m] = pd.Series(vals, dtype="boolean")
        else:
            cols[m] = pd.Series(
                [math.nan if v is None or isinstance(v, str) else float(v) for v in vals],
                dtype="float64",
            )
    for name in TAIL_COLUMNS:
        cols[name] = pd.Series([r.get(name) for r in recs], dtype="string")
    return pd.DataFrame(cols)


def _floats(series: pd.Series) -> npt.NDArray[np.float64]:
    """A metric column as floats (booleans as 0/1, missing values as NaN)."""
    x: npt.NDArray[np.float64] = np.asarray(
        series.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64
    )
    return x


def _stats(x: npt.NDArray[np.float64]) -> tuple[float, float, float, float]:
    if not x.size:
        return (math.nan, math.nan, math.nan, math.nan)
    return (
        float(np.mean(x)),
        float(np.median(x)),
        float(np.quantile(x, 0.05)),
        float(np.quantile(x, 0.95)),
    )


def aggregate_results(
    results: pd.DataFrame,
    keys: Sequence[str] = (),
    points: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``aggregate.parquet``: risk statistics per point over its successful runs.

    For every summary metric: ``<metric>_mean``, ``_median``, ``_p5``, ``_p95`` (booleans as
    0/1; NaN values, e.g. trader PnL without traders, are left out). Then ``var95_bad_debt`` /
    ``cvar95_bad_debt`` and ``var95_insurance_fund_drawdown`` /
    ``cvar95_insurance_fund_drawdown`` (95th percentile of the loss, and the mean of the losses
    at or beyond it), ``p_insurance_fund_exhausted`` (share of runs where it was) and ``lar95``
    (95th percentile of the liquidated value). Failed runs are counted (``n_failed``) but left
    out of every statistic.

    Args:
        results: Rows as in ``results.parquet``.
        keys: The varied keys (copied into each point's row).
        points: One row per point (``point_id`` and the keys); points without any row then
            appear with ``n_runs`` 0. Default: the points present in ``results``.

    Returns:
        One row per point, sorted by ``point_id``.
    """
    if points is None:
        cols = ["point_id", *keys]
        points = results[cols].drop_duplicates("point_id").sort_values("point_id")
    points = points.reset_index(drop=True)
    # Every column converted once, then sliced per point: a Saltelli design has tens of
    # thousands of points, and per-point pandas conversions would take minutes.
    pid_all = results["point_id"].to_numpy(dtype=np.int64)
    ok_all = (results["status"] == "ok").to_numpy(dtype=bool, na_value=False)
    columns = {m: _floats(results[m]) for m in SUMMARY_METRICS if m in results}
    # Metrics no run has (a function run in place of the model has none) are NaN throughout.
    columns = {m: x for m, x in columns.items() if not np.isnan(x).all()}
    blank = dict.fromkeys((f"{m}_{st}" for m in SUMMARY_METRICS for st in STATS), math.nan)
    order = np.argsort(pid_all, kind="stable")
    uniq, starts = np.unique(pid_all[order], return_index=True)
    ends = [*starts[1:].tolist(), len(order)]
    rows_of = {int(u): order[b:e] for u, b, e in zip(uniq, starts, ends, strict=True)}
    no_rows = np.empty(0, dtype=np.int64)

    def values(metric: str, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        if metric not in columns:
            return np.empty(0)
        x = columns[metric][rows]
        return x[~np.isnan(x)]

    records: list[dict[str, Any]] = []
    for pid in points["point_id"].astype("int64"):
        rows = rows_of.get(int(pid), no_rows)
        ok = rows[ok_all[rows]]
        rec: dict[str, Any] = {
            "n_runs": len(rows),
            "n_ok": len(ok),
            "n_failed": len(rows) - len(ok),
        }
        rec.update(blank)
        for m in columns:
            x = values(m, ok)
            for stat, v in zip(STATS, _stats(x), strict=True):
                rec[f"{m}_{stat}"] = v
        for m in ("bad_debt", "insurance_fund_drawdown"):
            x = values(m, ok)
            rec[f"var95_{m}"] = var(x, 0.95)
            rec[f"cvar95_{m}"] = cvar(x, 0.95)
        ex = values("insurance_fund_exhausted", ok)
        rec["p_insurance_fund_exhausted"] = float(np.mean(ex)) if ex.size else math.nan
        lv = values("liquidated_value", ok)
        rec["lar95"] = float(np.quantile(lv, 0.95)) if lv.size else math.nan
        records.append(rec)
    stats = pd.DataFrame.from_records(records, index=points.index)
    for c in ("n_runs", "n_ok", "n_failed"):
        stats[c] = stats[c].astype("int64") if len(stats) else pd.Series(dtype="int64")
    out = pd.concat([points, stats], axis=1)
    return out


def _points_frame(plan: SweepPlan) -> pd.DataFrame:
    cols: dict[str, pd.Series] = {"point_id": pd.Series(range(plan.n_points), dtype="int64")}
    for j, (key, kind) in enumerate(zip(plan.keys, plan.kinds, strict=True)):
        cols[key] = _param_series([p[j] for p in plan.points], kind)
    return pd.DataFrame(cols)


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, engine="pyarrow", compression="zstd")
    return buf.getvalue()


def write_tables(plan: SweepPlan, out_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(Re)builds ``results.parquet`` and ``aggregate.parquet`` from the journal, atomically.

    Returns:
        The results and aggregate frames.
    """
    rows = read_journal(out_dir / JOURNAL)
    results = results_frame(plan, rows)
    aggregate = aggregate_results(results, plan.keys, _points_frame(plan))
    atomic_write_bytes(out_dir / RESULTS, _parquet_bytes(results))
    atomic_write_bytes(out_dir / AGGREGATE, _parquet_bytes(aggregate))
    return results, aggregate


def rank_points(
    aggregate: pd.DataFrame, metric: str, minimize: bool = True, n: int = 5
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``n`` best and ``n`` worst points for ``metric`` (see :func:`metric_column`).

    Points where the metric is undefined (no successful run) are left out. Ties keep the
    point order.
    """
    col = metric_column(metric)
    ranked = aggregate[aggregate[col].notna()].sort_values(
        [col, "point_id"], ascending=[minimize, True], kind="stable"
    )
    worst = aggregate[aggregate[col].notna()].sort_values(
        [col, "point_id"], ascending=[not minimize, True], kind="stable"
    )
    return ranked.head(n), worst.head(n)
