"""Units, labels and axis formats of summary metrics and per-point sweep statistics."""

from __future__ import annotations

from typing import Any, Final

import matplotlib.ticker as mticker
import numpy as np
import pandas as pd

from perpsim.metrics import SUMMARY_METRICS
from perpsim.plots.files import FloatArray
from perpsim.plots.style import CompactFormatter

__all__ = [
    "floats",
    "metric_formatter",
    "metric_label",
    "metric_unit",
    "metric_values",
]


_USD_METRICS: Final = frozenset(
    {
        "insurance_fund_initial",
        "insurance_fund_min",
        "insurance_fund_final",
        "insurance_fund_drawdown",
        "social_loss_total",
        "bad_debt",
        "liquidated_value",
        "liquidation_loss_total",
        "insurance_fund_paid_total",
        "funding_paid_by_longs",
        "funding_paid_by_shorts",
        "trader_pnl_p5",
        "trader_pnl_p50",
        "trader_pnl_p95",
        "trader_pnl_mean",
        "final_mark_price",
        "min_market_price",
        "max_market_price",
        "loss_beyond_fund",
        "lar95",
    }
)


_CONTRACT_METRICS: Final = frozenset({"liquidation_volume", "volume"})


_BOOL_METRICS: Final = frozenset({"insurance_fund_exhausted", "settled"})


def metric_unit(name: str) -> str:
    """The unit of a summary metric or sweep statistic, for axis labels."""
    base = name
    for prefix in ("var95_", "cvar95_", "p_"):
        if base.startswith(prefix):
            if prefix == "p_":
                return "probability"
            base = base[len(prefix) :]
    for suffix in ("_mean", "_median", "_p5", "_p95"):
        if base.endswith(suffix) and base[: -len(suffix)] in SUMMARY_METRICS:
            base = base[: -len(suffix)]
    if base in _USD_METRICS:
        return "USD"
    if base in _CONTRACT_METRICS:
        return "contracts"
    if base in _BOOL_METRICS:
        return "share of runs"
    if base == "lp_return":
        return "%"
    if base.endswith("_s"):
        return "hours"
    return "count"


def metric_label(name: str) -> str:
    """``insurance fund drawdown (USD)``, ``VaR95 of bad debt (USD)``, ..."""
    special = {
        "lar95": "LaR95: 95th pct of liquidated value",
        "p_insurance_fund_exhausted": "P(insurance fund exhausted)",
    }
    if name in special:
        text = special[name]
    else:
        text = name
        for prefix, words in (("var95_", "VaR95 of "), ("cvar95_", "CVaR95 of ")):
            if text.startswith(prefix):
                text = words + text[len(prefix) :]
        if text.endswith("_s"):
            text = text[:-2]
        text = text.replace("_", " ")
    return f"{text} ({metric_unit(name)})"


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
