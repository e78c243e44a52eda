"""Units, labels and axis formats of summary metrics and per-point sweep statistics."""

from __future__ import annotations

from typing import Any, Final

import matplotlib.ticker as mticker
import numpy as np
import pandas as pd

from perpsim.metrics import METRICS, SUMMARY_METRICS
from perpsim.metrics import metric_label as summary_label
from perpsim.plots.files import FloatArray
from perpsim.plots.style import CompactFormatter

__all__ = [
    "floats",
    "metric_formatter",
    "metric_label",
    "metric_unit",
    "metric_values",
]


#: Sweep statistics that are not summary metrics, and their units.
_SWEEP_ONLY_UNITS: Final = {"loss_beyond_fund": "USD", "lar95": "USD"}

#: A summary metric's unit (``perpsim.metrics.METRICS``) as the figures' axes show it.
_AXIS_UNIT: Final = {
    "USD": "USD",
    "price": "USD",
    "%": "%",
    "contracts": "contracts",
    "shares": "shares",
    "count": "count",
    "duration": "hours",
    "yes/no": "share of runs",
}


def _base(name: str) -> tuple[str, str]:
    """(statistic prefix, summary metric) of a sweep column: ``var95_bad_debt`` → var95, ..."""
    base, prefix = name, ""
    for p in ("var95_", "cvar95_", "p_"):
        if base.startswith(p):
            prefix, base = p, base[len(p) :]
            break
    for suffix in ("_mean", "_median", "_p5", "_p95"):
        if base.endswith(suffix) and base[: -len(suffix)] in SUMMARY_METRICS:
            base = base[: -len(suffix)]
    return prefix, base


def metric_unit(name: str) -> str:
    """The unit of a summary metric or sweep statistic, for axis labels.

    Summary metrics take theirs from :data:`perpsim.metrics.METRICS` (the terminal summary's
    and the report's), durations in hours.
    """
    prefix, base = _base(name)
    if prefix == "p_":
        return "probability"
    if base in _SWEEP_ONLY_UNITS:
        return _SWEEP_ONLY_UNITS[base]
    info = METRICS.get(base)
    return _AXIS_UNIT[info.unit] if info is not None else "count"


def metric_label(name: str) -> str:
    """``insurance fund max drawdown (USD)``, ``VaR95 of bad debt (USD)``, ...

    A summary metric is named by its label in :data:`perpsim.metrics.METRICS`.
    """
    special = {
        "lar95": "LaR95: 95th pct of liquidated value",
        "p_insurance_fund_exhausted": "P(insurance fund exhausted)",
        "loss_beyond_fund": "loss beyond the fund",
    }
    if name in special:
        return f"{special[name]} ({metric_unit(name)})"
    prefix, base = _base(name)
    words = {"var95_": "VaR95 of ", "cvar95_": "CVaR95 of ", "p_": "P: "}.get(prefix, "")
    label = base.replace("_", " ") if base not in METRICS else summary_label(base)
    stat = name[len(prefix) + len(base) :].lstrip("_")
    suffix = {"mean": ", mean", "median": ", median", "p5": ", 5th pct", "p95": ", 95th pct"}
    return f"{words}{label}{suffix.get(stat, '')} ({metric_unit(name)})"


def floats(values: Any) -> FloatArray:
    """Numbers, booleans (as 0/1) or missing values as a float array (NaN where missing)."""
    s = pd.Series(values)
    try:
        return np.asarray(s.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan))
    except (TypeError, ValueError):
        return np.asarray(pd.to_numeric(s, errors="coerce"), dtype=np.float64)


def metric_values(name: str, values: Any) -> FloatArray:
    """A metric's values as floats in its plotting unit (durations in hours)."""
    v = floats(values)
    return v / 3600.0 if metric_unit(name) == "hours" else v


def metric_formatter(name: str) -> mticker.Formatter:
    """The axis formatter of a metric (percent for rates and shares)."""
    unit = metric_unit(name)
    return CompactFormatter(percent=unit in ("%", "probability", "share of runs"))
