"""Parameter values, rates, distributions and percentages in words for the report's tables."""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

from perpsim.plots import (
    fmt_duration,
    fmt_usd,
)

__all__ = [
    "PERCENT_KEYS",
    "dist",
    "num",
    "paragraphs",
    "pct",
    "rate",
    "short",
    "sorted_unique",
    "sweep_value",
]


def pct(x: Any, digits: int = 2) -> str:
    """A fraction as a percentage (``12.50%``, ``−3.0%``); ``—`` if not a number."""
    if not isinstance(x, int | float) or isinstance(x, bool) or math.isnan(x):
        return "—"
    return f"{x:+.{digits}%}".replace("-", "−") if x < 0 else f"{x:.{digits}%}"


def rate(key: str, value: Any) -> str:
    """A governance value in its unit (percent for rates, USD for the prize)."""
    if key in PERCENT_KEYS and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{float(value) * 100:.4g} %"
    if key == "update_index_prize" and isinstance(value, int | float):
        return fmt_usd(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def num(x: Any) -> float:
    """A number (booleans as 0/1) as a float; NaN for anything else."""
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, int | float | np.integer | np.floating):
        return float(x)
    return math.nan


_DURATION_WORDS: Final = (
    "time",
    "interval",
    "latency",
    "lookback",
    "horizon",
    "window",
    "after",
    "schedule",
)


def dist(value: Any, key: str = "") -> str:
    """A parameter value or distribution in words: ``lognormal(median 2, σ 0.8, ≤ 50)``.

    Parameters whose name says they are durations (``holding_time``, ``latency``, ...) are
    written as durations (``4 h``) rather than seconds.
    """
    is_duration = any(w in key for w in _DURATION_WORDS)

    def show(v: Any) -> str:
        if is_duration and isinstance(v, int | float) and not isinstance(v, bool):
            return fmt_duration(v)
        if is_duration and isinstance(v, list):
            return "[" + ", ".join(show(x) for x in v) + "]"
        return short(v)

    if isinstance(value, dict) and "dist" in value:
        d = value["dist"]
        if d == "uniform" and value.get("low") is not None:
            return f"uniform {show(value['low'])}–{show(value.get('high'))}"
        parts = []
        for k, label in (
            ("value", ""),
            ("median", "median "),
            ("mean", "mean "),
            ("sigma", "σ "),
            ("low", "≥ "),
            ("high", "≤ "),
            ("choices", ""),
        ):
            v = value.get(k)
            if v is not None:
                parts.append(f"{label}{short(v) if k == 'sigma' else show(v)}")
        return f"{d}({', '.join(parts)})"
    return show(value)


def short(v: Any) -> str:
    """A value in short text: floats with ``g``, lists and mappings inline."""
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(short(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {short(x)}" for k, x in v.items()) + "}"
    return str(v)


def paragraphs(text: str) -> list[str]:
    """A description's paragraphs (blank-line separated), each on one line."""
    out: list[str] = []
    for block in text.strip().split("\n\n"):
        para = " ".join(line.strip() for line in block.splitlines() if line.strip())
        if para:
            out.append(para)
    return out


def sorted_unique(values: Any) -> list[Any]:
    """The distinct values as Python scalars, sorted where they compare."""
    uniq = list(dict.fromkeys(v.item() if isinstance(v, np.generic) else v for v in values))
    try:
        return sorted(uniq)
    except TypeError:
        return uniq


def sweep_value(v: Any) -> str:
    """A parameter value of a sweep point as text."""
    return f"{float(v):g}" if isinstance(v, float | np.floating) else str(v)


PERCENT_KEYS: Final = frozenset(
    {
        "initial_margin_rate",
        "maintenance_margin_rate",
        "liquidation_penalty_rate",
        "penalty_fund_rate",
        "taker_dev_fee_rate",
        "maker_dev_fee_rate",
        "pool_fee_rate",
        "pool_dev_fee_rate",
        "mark_premium_limit",
        "funding_dampener",
    }
)
