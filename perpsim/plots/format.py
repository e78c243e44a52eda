"""Numbers, money, durations and times as short text (figures and the report share them)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["fmt_duration", "fmt_number", "fmt_param", "fmt_time", "fmt_usd"]


def fmt_number(x: Any, digits: int = 3) -> str:
    """A short rendering of a number: ``1.25M``, ``250k``, ``2,280``, ``0.0125``; text as is."""
    if x is None:
        return "—"
    if isinstance(x, bool | np.bool_):
        return "yes" if x else "no"
    if not isinstance(x, int | float | np.integer | np.floating):
        return str(x)
    v = float(x)
    if math.isnan(v):
        return "—"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    a = abs(v)
    for threshold, div, suffix in ((1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if a >= threshold:
            return f"{v / div:.{digits}g}{suffix}".replace("-", "−")
    if a >= 100 or v == int(v):
        return f"{v:,.0f}".replace("-", "−")
    return f"{v:.{digits}g}".replace("-", "−")


def fmt_usd(x: Any) -> str:
    """``1,234,567 USD`` (cents below 100 USD); ``—`` for a missing value."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    v = float(x)
    text = f"{v:,.0f}" if abs(v) >= 100 or v == 0 else f"{v:,.2f}"
    return text.replace("-", "−") + " USD"


def fmt_duration(seconds: float) -> str:
    """``45 s``, ``20 min``, ``1 h 30 min``, ``2 d 6 h``."""
    s = round(float(seconds))
    if s < 60:
        return f"{s} s"
    parts: list[str] = []
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if s >= size:
            parts.append(f"{s // size} {unit}")
            s %= size
    return " ".join(parts[:2])


def fmt_time(value: Any) -> str:
    """A time (unix seconds, Timestamp, datetime64) as ``2020-03-12 10:05 UTC``."""
    if isinstance(value, int | float | np.integer | np.floating):
        ts = pd.Timestamp(datetime.fromtimestamp(float(value), tz=UTC))
    else:
        ts = pd.Timestamp(value)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    fmt = "%Y-%m-%d %H:%M:%S UTC" if ts.second else "%Y-%m-%d %H:%M UTC"
    return ts.strftime(fmt)


def fmt_param(v: Any) -> str:
    """A parameter value for labels: floats without trailing zeros (``0.05``)."""
    if isinstance(v, float | np.floating):
        return f"{float(v):g}"
    return str(v)
