"""What a replay reports, whatever design it ran on.

A replay runs a list of engine operations on named accounts and observes values; the report lists
the observations, each operation's result, the rejections and the failures (an unexpected
rejection, an expectation not met, a rejection that changed state).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

#: A value a replay can observe.
Value = float | int | str | bool | None


@dataclass
class ReplayReport:
    """The outcome of one replay, as written to JSON."""

    file: str
    venue: str
    observations: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing failed (no unexpected rejection, every expectation met)."""
        return not self.failures

    def to_json(self) -> str:
        """The report as pretty JSON (non-finite numbers become strings)."""
        doc = {"ok": self.ok, **asdict(self)}
        return json.dumps(jsonable(doc), indent=2)


def jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else str(v)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def matches(got: Any, want: Any, rel: float, abs_tol: float) -> bool:
    """Whether an observed value meets its expectation (numbers within the tolerances)."""
    if isinstance(want, bool) or isinstance(got, bool):
        return bool(got) == bool(want) if isinstance(got, bool) == isinstance(want, bool) else False
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(float(got), float(want), rel_tol=rel, abs_tol=abs_tol)
    return bool(got == want)
