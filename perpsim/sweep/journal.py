"""The journal of a sweep: ``results.jsonl``, one JSON line per finished run.

Each line is flushed and fsynced as its run finishes, so a sweep killed at any moment loses at
most the runs in flight; the tables are rebuilt from the journal (:mod:`perpsim.sweep.tables`).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, TextIO

import numpy as np

from perpsim.io import atomic_write_bytes
from perpsim.metrics import SUMMARY_METRICS
from perpsim.sweep.layout import ID_COLUMNS

__all__ = [
    "QUARANTINE",
    "Journal",
    "journal_line",
    "read_journal",
    "read_journal_checked",
    "row_problem",
]


def _json_clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, np.generic):
        return _json_clean(v.item())
    return v


def journal_line(row: Mapping[str, Any]) -> str:
    """One line of the journal (strict JSON: non-finite numbers are written as null)."""
    return json.dumps({k: _json_clean(v) for k, v in row.items()}, allow_nan=False) + "\n"


class Journal:
    """Append-only ``results.jsonl``: one JSON line per finished run, flushed and fsynced.

    Args:
        path: The journal.
        sync_interval: Seconds between fsyncs. 0 (the default) fsyncs every line; a function
            run in place of the model (microseconds a run) syncs at most this often, and on
            close. Every line is flushed at once either way, so a killed process loses nothing.
    """

    def __init__(self, path: Path, sync_interval: float = 0.0) -> None:
        self.path = path
        self.sync_interval = sync_interval
        self._synced = time.monotonic()
        self._fh: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def append(self, row: Mapping[str, Any]) -> None:
        """Writes one run's row and makes it durable."""
        self._fh.write(journal_line(row))
        self._fh.flush()
        now = time.monotonic()
        if now - self._synced >= self.sync_interval:
            os.fsync(self._fh.fileno())
            self._synced = now

    def close(self) -> None:
        """Makes every line durable and closes the file."""
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()


#: Where ``--resume`` moves the journal lines it cannot use, each with its line number.
QUARANTINE: Final = "results.rejected.jsonl"

_STATUSES: Final = ("ok", "failed")


def row_problem(row: Any) -> str | None:
    """Why a parsed journal line is not a run's row (None when it is one).

    A row is a JSON object with integer ids, ``status`` ``ok`` or ``failed``, text (or null)
    ``error``, and every summary metric as a number, a boolean or null (a function run in place
    of the model has ``outputs``, a mapping of names to numbers, instead).
    """
    if not isinstance(row, dict):
        return f"not a JSON object (got {type(row).__name__})"
    for key in ID_COLUMNS:
        value = row.get(key)
        if key not in row:
            return f"missing {key!r}"
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"{key!r} must be an integer >= 0 (got {value!r})"
    if row.get("status") not in _STATUSES:
        return f"'status' must be 'ok' or 'failed' (got {row.get('status')!r})"
    for key in ("error", "traceback"):
        if key not in row:
            return f"missing {key!r}"
        if row[key] is not None and not isinstance(row[key], str):
            return f"{key!r} must be text or null (got {row[key]!r})"
    outputs = row.get("outputs")
    if outputs is not None and (
        not isinstance(outputs, dict)
        or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in outputs.values()
        )
    ):
        return f"'outputs' must map names to numbers (got {outputs!r})"
    # A function run in place of the model has its outputs and no summary metrics.
    if row["status"] == "ok" and outputs is None:
        missing = [m for m in SUMMARY_METRICS if m not in row]
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            return f"missing metric(s) {', '.join(map(repr, missing[:3]))}{more}"
    for m in SUMMARY_METRICS:
        value = row.get(m)
        if value is not None and not isinstance(value, (int, float)):
            return f"metric {m!r} must be a number, a boolean or null (got {value!r})"
    return None


def read_journal(path: Path, *, repair: bool = False) -> dict[tuple[int, int], dict[str, Any]]:
    """The runs recorded in a journal, by ``(point_id, seed_index)``.

    Every line is checked (:func:`row_problem`); a torn last line (a process killed while
    writing it), an unreadable line and a line that is not a run's row are left out, so a bad
    line never replaces a good row. A run recorded twice keeps its last good line.

    Args:
        path: ``results.jsonl``.
        repair: Move the bad lines to :data:`QUARANTINE` next to it (each with its line number
            and the reason) and rewrite the journal without them (before appending to it).

    Returns:
        The rows.
    """
    return read_journal_checked(path, repair=repair)[0]


def read_journal_checked(
    path: Path, *, repair: bool = False
) -> tuple[dict[tuple[int, int], dict[str, Any]], list[str]]:
    """:func:`read_journal`, and one message per bad line (``results.jsonl:LINE: reason``)."""
    if not path.exists():
        return {}, []
    data = path.read_bytes()
    rows: dict[tuple[int, int], dict[str, Any]] = {}
    good: list[bytes] = []
    problems: list[str] = []
    rejected: list[str] = []
    chunks = data.split(b"\n")
    for i, chunk in enumerate(chunks):
        if not chunk.strip():
            continue
        torn = i == len(chunks) - 1  # no newline after it
        problem: str | None
        try:
            row = json.loads(chunk)
            problem = (
                "incomplete last line (the sweep was stopped while writing it)"
                if torn
                else (row_problem(row))
            )
        except (ValueError, RecursionError):
            problem = (
                "incomplete last line (the sweep was stopped while writing it)"
                if torn
                else "not valid JSON"
            )
        if problem is not None:
            problems.append(f"{path}:{i + 1}: {problem}")
            rejected.append(
                json.dumps(
                    {"line": i + 1, "problem": problem, "text": chunk.decode("utf-8", "replace")}
                )
            )
            continue
        rows[(row["point_id"], row["seed_index"])] = row
        good.append(chunk)
    if repair and (problems or (data and not data.endswith(b"\n"))):
        if rejected:
            quarantine = path.with_name(QUARANTINE)
            old = quarantine.read_text(encoding="utf-8") if quarantine.exists() else ""
            atomic_write_bytes(quarantine, (old + "".join(r + "\n" for r in rejected)).encode())
        atomic_write_bytes(path, b"".join(c + b"\n" for c in good))
    return rows, problems
