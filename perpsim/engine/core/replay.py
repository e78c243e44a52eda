"""What a replay reports and how it runs, whatever design it ran on.

A replay runs a list of engine operations on named accounts and observes values; the report lists
the observations, each operation's result, the rejections and the failures (an unexpected
rejection, an expectation not met, a rejection that changed state). :class:`ReplayRunner` is the
run loop every design's replay shares; the design gives its operations and observable values.
"""

from __future__ import annotations

import difflib
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np

from perpsim.errors import EngineError

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


# -- the shared runner ----------------------------------------------------------------------------

#: An operation table: op name -> (required arguments, optional arguments).
OpTable = Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]
#: Keys every operation may carry.
COMMON_KEYS = ("op", "at_time", "expect_error", "comment")
#: Top-level keys every replay file may carry (a design may allow more).
TOP_LEVEL_KEYS = ("ops", "governance", "kind", "venue", "check_invariants", "description", "name")


def check_top_level(doc: Mapping[str, Any], extra: tuple[str, ...] = ()) -> list[str]:
    """Problems with a replay file's top-level keys (unknown ones)."""
    allowed = set(TOP_LEVEL_KEYS) | set(extra)
    return [
        f"{key}: unknown top-level key (allowed: {sorted(allowed)})"
        for key in doc
        if key not in allowed
    ]


def check_op(i: int, op: Any, table: OpTable) -> list[str]:
    """Problems with operation ``i``: its name, missing or unknown arguments, ``observe``'s
    names and expectations. A design adds its own checks after these."""
    if not isinstance(op, dict):
        return [f"ops[{i}]: each operation must be a mapping with an 'op' key, got {op!r}"]
    name = op.get("op")
    if not isinstance(name, str) or name not in table:
        close = difflib.get_close_matches(str(name), list(table), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return [f"ops[{i}].op: unknown operation {name!r}{hint}"]
    required, optional = table[name]
    problems = [f"ops[{i}] ({name}): missing argument {a!r}" for a in required if a not in op]
    allowed = set(required) | set(optional) | set(COMMON_KEYS)
    for key in op:
        if key not in allowed:
            problems.append(
                f"ops[{i}] ({name}): unknown argument {key!r}"
                f" (allowed: {sorted(set(required) | set(optional))})"
            )
    if name == "observe" and "names" in op:
        names = op["names"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            problems.append(f"ops[{i}] (observe): names must be a list of strings")
        expect = op.get("expect")
        if expect is not None and not isinstance(expect, dict):
            problems.append(f"ops[{i}] (observe): expect must be a mapping name -> value")
    return problems


def check_ops(
    doc: Mapping[str, Any],
    table: OpTable,
    extra: Callable[[int, dict[str, Any]], list[str]] | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The file's operations that are mappings, and the problems of all of them.

    Args:
        doc: the replay file.
        table: the design's operations.
        extra: the design's own checks of operation ``i`` (run on the mappings whose name is
            known).
    """
    ops = doc.get("ops")
    if not isinstance(ops, list):
        return [], ["ops: must be a list of operations"]
    problems: list[str] = []
    for i, op in enumerate(ops):
        problems.extend(check_op(i, op, table))
        if extra is not None and isinstance(op, dict) and op.get("op") in table:
            problems.extend(extra(i, op))
    return [op for op in ops if isinstance(op, dict)], problems


class ReplayRunner(ABC):
    """Runs a replay's operations in order, whatever the design: the clock (``at_time``),
    refusals (``expect_error``: a refused op must leave the state as it was), observations with
    expectations, and the accounting checks. A design supplies its operations, its observable
    values, a snapshot of its state and its invariant check.

    Subclasses set ``source``, ``ops`` and ``check_each`` in their constructor.
    """

    #: The name written as the report's ``venue``.
    report_venue: str
    #: What an observation may raise for a value that does not exist now.
    observe_errors: ClassVar[tuple[type[Exception], ...]] = (EngineError, KeyError, ValueError)

    source: str
    ops: list[dict[str, Any]]
    check_each: bool

    @abstractmethod
    def _snapshot(self) -> tuple[Any, ...]:
        """Everything an operation could change (compared around a refused one)."""

    @abstractmethod
    def _dispatch(self, name: str, op: dict[str, Any]) -> Any:
        """Run one state-changing operation; its result goes into the report."""

    @abstractmethod
    def _set_time(self, t: Any) -> None:
        """Move the clock (an op's ``at_time``)."""

    @abstractmethod
    def _invariant_problems(self, required: bool) -> list[str]:
        """The accounting check's problems; ``required`` for a ``check_invariants`` op (which
        may raise when there is nothing to check yet), not for the check after every op."""

    @abstractmethod
    def value(self, name: str) -> Value:
        """The value of one observation name.

        Raises:
            KeyError: an unknown name.
            EngineError: the value does not exist now.
        """

    def run(self) -> ReplayReport:
        """Run every op in order and return the report."""
        report = ReplayReport(file=self.source, venue=self.report_venue)
        for i, op in enumerate(self.ops):
            self._run_one(i, op, report)
        return report

    def _run_one(self, i: int, op: dict[str, Any], report: ReplayReport) -> None:
        name = op["op"]
        expect_error = bool(op.get("expect_error", False))
        before: tuple[Any, ...] | None = None
        try:
            if "at_time" in op:
                self._set_time(op["at_time"])
            # Taken after the op's own clock move: a refusal must change nothing else.
            before = self._snapshot() if expect_error else None
            if name == "observe":
                self._observe(i, op, report)
                return
            if name == "check_invariants":
                problems = self._invariant_problems(required=True)
                report.results.append({"index": i, "op": name, "result": problems})
                if problems:
                    report.failures.append({"index": i, "op": name, "failure": "; ".join(problems)})
                return
            result = self._dispatch(name, op)
        except EngineError as exc:
            report.errors.append(
                {
                    "index": i,
                    "op": name,
                    "error_type": type(exc).__name__,
                    "error": str(exc),
                    "expected": expect_error,
                }
            )
            if not expect_error:
                report.failures.append(
                    {"index": i, "op": name, "failure": f"rejected: {type(exc).__name__}: {exc}"}
                )
            elif before is not None and self._snapshot() != before:
                report.failures.append(
                    {"index": i, "op": name, "failure": "rejected, but the state changed"}
                )
            return
        if expect_error:
            report.failures.append(
                {"index": i, "op": name, "failure": "expected an error, but the op succeeded"}
            )
        if result is not None:
            report.results.append({"index": i, "op": name, "result": result})
        if self.check_each:
            problems = self._invariant_problems(required=False)
            if problems:
                report.failures.append(
                    {"index": i, "op": name, "failure": "invariants: " + "; ".join(problems)}
                )

    def _observe(self, i: int, op: dict[str, Any], report: ReplayReport) -> None:
        values: dict[str, Value] = {}
        errors: dict[str, str] = {}
        for name in op["names"]:
            try:
                values[name] = self.value(name)
            except self.observe_errors as exc:
                errors[name] = str(exc).strip("'\"")
        entry: dict[str, Any] = {"index": i, "values": values}
        if errors:
            entry["errors"] = errors
            report.failures.append(
                {"index": i, "op": "observe", "failure": f"cannot observe: {errors}"}
            )
        report.observations.append(entry)
        expect = op.get("expect") or {}
        rel = float(op.get("rel_tol", 1e-9))
        abs_tol = float(op.get("abs_tol", 1e-9))
        for name, want in expect.items():
            got = values[name] if name in values else self._safe_value(name)
            if not matches(got, want, rel, abs_tol):
                report.failures.append(
                    {
                        "index": i,
                        "op": "observe",
                        "failure": f"{name}: expected {want!r}, got {got!r}",
                    }
                )

    def _safe_value(self, name: str) -> Value:
        try:
            return self.value(name)
        except self.observe_errors as exc:
            return f"error: {exc}"
