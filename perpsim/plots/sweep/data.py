"""The outputs of a sweep, read from its folder, and the parameter choices of its figures."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perpsim.errors import ConfigError
from perpsim.metrics import SUMMARY_METRICS
from perpsim.plots.files import FloatArray, read_json, read_table
from perpsim.plots.format import fmt_param
from perpsim.plots.sweep.metrics import metric_values
from perpsim.scenario.yaml import load_yaml_file
from perpsim.sweep.layout import AGGREGATE_EXTRA
from perpsim.sweep.tables import aggregate_results

__all__ = [
    "SweepData",
    "axes_params",
    "check_metric",
    "is_numeric",
    "per_run_metric",
    "positions",
    "read_sweep_dir",
    "run_values",
    "sorted_values",
    "sweep_subtitle",
]


@dataclass
class SweepData:
    """The outputs of a sweep, read from its folder.

    Attributes:
        path: The sweep folder.
        results: One row per run (``point_id``, ``seed_index``, ``seed``, the parameters, every
            summary metric, ``status``, ...).
        aggregate: One row per point (read, or computed from ``results``).
        params: The varied parameters (dotted keys), in order.
        manifest: The sweep's manifest / sweep.yaml (empty if none).
    """

    path: Path
    results: pd.DataFrame
    aggregate: pd.DataFrame
    params: list[str]
    manifest: dict[str, Any]

    @property
    def ok(self) -> pd.DataFrame:
        """The runs that finished."""
        if "status" not in self.results.columns:
            return self.results
        return self.results[self.results["status"].astype(str) == "ok"]

    def short(self, key: str) -> str:
        """A parameter's short name (its last dotted part, or two if that is ambiguous)."""
        last = key.rsplit(".", 1)[-1]
        if sum(1 for p in self.params if p.rsplit(".", 1)[-1] == last) > 1:
            return ".".join(key.split(".")[-2:])
        return last

    def point_label(self, point_id: Any, sep: str = ", ") -> str:
        """``maintenance_margin_rate=0.05, initial_margin_rate=0.1``."""
        rows = self.aggregate[self.aggregate["point_id"].astype(str) == str(point_id)]
        if rows.empty or not self.params:
            return str(point_id)
        r = rows.iloc[0]
        return sep.join(f"{self.short(k)}={fmt_param(r[k])}" for k in self.params)

    @property
    def name(self) -> str:
        """The sweep's name (manifest, else the folder's name)."""
        for key in ("name", "sweep", "scenario"):
            v = self.manifest.get(key)
            if isinstance(v, str) and v:
                return v
        return self.path.name

    @property
    def metric(self) -> str:
        """The sweep's own metric (``spec.metric`` of its manifest), else the fund drawdown."""
        spec = self.manifest.get("spec")
        m = spec.get("metric") if isinstance(spec, dict) else None
        return m if isinstance(m, str) and m else "insurance_fund_drawdown"

    def run_dir(self, point_id: Any, seed_index: Any) -> Path | None:
        """The kept run folder of one run (``runs/<point>-<seed index>``), if any."""
        r = self.results
        if "run_dir" in r.columns:
            sel = r[
                (r["point_id"].astype(str) == str(point_id))
                & (r["seed_index"].astype(str) == str(seed_index))
            ]["run_dir"].dropna()
            if len(sel):
                p = self.path / str(sel.iloc[0])
                return p if p.is_dir() else None
        for name in (f"{int(point_id):05d}-{int(seed_index):03d}", f"{point_id}-{seed_index}"):
            p = self.path / "runs" / name
            if p.is_dir():
                return p
        return None


def _sweep_manifest(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for name in ("sweep.yaml", "sweep.yml"):
        f = path / name
        if f.is_file():
            loaded, _ = load_yaml_file(f, str(f), what="sweep file")
            if isinstance(loaded, dict):
                doc.update(loaded)
    for name in ("manifest.json", "sweep.json"):
        doc.update(read_json(path / name))  # perpsim sweep writes sweep.json
    return doc


def read_sweep_dir(path: Path) -> SweepData:
    """Read a sweep folder (its tables and manifest; :func:`perpsim.sweep.load_sweep` reads a
    sweep file).

    Raises:
        ConfigError: the folder has no readable ``results`` table or no ``point_id`` column.
    """
    p = Path(path)
    if not p.is_dir():
        raise ConfigError(f"{p}: no such folder" if not p.exists() else f"{p}: not a folder")
    results = read_table(p, "results")
    if results is None:
        raise ConfigError(f"{p}: no results.parquet or results.csv — not a sweep folder")
    if "point_id" not in results.columns:
        raise ConfigError(f"{p}: the results table has no point_id column")
    if results.empty:
        raise ConfigError(f"{p}: the results table has no rows")
    manifest = _sweep_manifest(p)
    listed = manifest.get("parameters")
    if isinstance(listed, list) and listed and all(k in results.columns for k in listed):
        params = [str(k) for k in listed]
    else:
        params = [c for c in results.columns if "." in c and c not in SUMMARY_METRICS]
    aggregate = read_table(p, "aggregate")
    if aggregate is None or "point_id" not in aggregate.columns:
        aggregate = aggregate_results(results, params)
    for k in params:
        if k not in aggregate.columns:
            first = results.groupby("point_id", sort=False)[k].first()
            aggregate[k] = aggregate["point_id"].map(first)
    return SweepData(p, results, aggregate, params, manifest)


def per_run_metric(sweep: SweepData, metric: str) -> bool:
    """Whether ``metric`` is a value per run (else a statistic per point)."""
    return metric in sweep.results.columns or metric == "loss_beyond_fund"


def run_values(sweep: SweepData, frame: pd.DataFrame, metric: str) -> FloatArray:
    """A per-run metric of some runs as floats (``loss_beyond_fund`` is derived)."""
    if metric == "loss_beyond_fund":
        return metric_values("social_loss_total", frame["social_loss_total"]) + metric_values(
            "bad_debt", frame["bad_debt"]
        )
    return metric_values(metric, frame[metric])


def check_metric(sweep: SweepData, metric: str) -> None:
    """Raise :class:`ConfigError` naming the choices if the sweep has no such metric."""
    if per_run_metric(sweep, metric) or metric in sweep.aggregate.columns:
        return
    choices = [m for m in SUMMARY_METRICS if m in sweep.results.columns]
    choices += [s for s in AGGREGATE_EXTRA if s in sweep.aggregate.columns]
    raise ConfigError(
        f"{sweep.path}: unknown metric {metric!r}; choose one of: {', '.join(choices)}"
    )


def axes_params(sweep: SweepData, x: str | None, y: str | None) -> tuple[str | None, str | None]:
    """The x and y parameters of the sweep figures: as asked, else the margin rates first."""
    for key, flag in ((x, "--x"), (y, "--y")):
        if key is not None and key not in sweep.params:
            varied = ", ".join(sweep.params) if sweep.params else "none"
            raise ConfigError(
                f"{sweep.path}: {flag} {key!r} is not a varied parameter (varied: {varied})"
            )
    if x is None and sweep.params:  # capital efficiency first: the margin rates
        ranked = sorted(
            (p for p in sweep.params if p != y),
            key=lambda p: (
                not p.endswith("initial_margin_rate"),
                not p.endswith("maintenance_margin_rate"),
            ),
        )
        x = ranked[0] if ranked else None
    if y is None:
        y = next((p for p in sweep.params if p != x), None)
    if x is not None and x == y:
        raise ConfigError(f"{sweep.path}: --x and --y must be different parameters")
    return x, y


def sorted_values(values: Iterable[Any]) -> list[Any]:
    """The distinct values (NaN dropped), sorted where they compare."""
    uniq = list(dict.fromkeys(v for v in values if not (isinstance(v, float) and math.isnan(v))))
    try:
        return sorted(uniq)
    except TypeError:
        return uniq


def is_numeric(values: Sequence[Any]) -> bool:
    """Whether every value is a number (not a boolean)."""
    return all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
        for v in values
    )


def sweep_subtitle(sweep: SweepData) -> str:
    """``12 parameter points, 36 runs, 2 failed``."""
    n_points = sweep.aggregate["point_id"].nunique()
    n_runs = len(sweep.results)
    n_ok = len(sweep.ok)
    failed = f", {n_runs - n_ok} failed" if n_ok < n_runs else ""
    return f"{n_points} parameter points, {n_runs} runs{failed}"


def positions(values: Sequence[Any], xs: Sequence[Any]) -> FloatArray:
    """X positions of values: themselves if numeric, else their index in ``xs``."""
    if is_numeric(xs):
        return np.asarray([float(v) for v in values], dtype=np.float64)
    index = {v: i for i, v in enumerate(xs)}
    return np.asarray([index[v] for v in values], dtype=np.float64)
