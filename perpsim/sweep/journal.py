"""The journal of a sweep: ``results.jsonl``, one JSON line per finished run.

Each line is flushed and fsynced as its run finishes, so a sweep killed at any moment loses at
most the runs in flight; the tables are rebuilt from the journal (:mod:`perpsim.sweep.tables`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from perpsim.io import atomic_write_bytes

__all__ = ["Journal", "journal_line", "read_journal"]


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
    """Append-only ``results.jsonl``: one JSON line per finished run, flushed and fsynced."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def append(self, row: Mapping[str, Any]) -> None:
        """Writes one run's row and makes it durable."""
        self._fh.write(journal_line(row))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Closes the file."""
        self._fh.close()


def read_journal(path: Path, *, repair: bool = False) -> dict[tuple[int, int], dict[str, Any]]:
    """The runs recorded in a journal, by ``(point_id, seed_index)``.

    A torn last line (a process killed while writing) and any unreadable line are ignored; a
    run recorded twice keeps its last line.

    Args:
        path: ``results.jsonl``.
        repair: Rewrite the file without its unreadable lines (before appending to it).

    Returns:
        The rows.
    """
    if not path.exists():
        return {}
    data = path.read_bytes()
    rows: dict[tuple[int, int], dict[str, Any]] = {}
    good: list[bytes] = []
    bad = 0
    chunks = data.split(b"\n")
    for i, chunk in enumerate(chunks):
        if not chunk.strip():
            continue
        torn = i == len(chunks) - 1  # no newline after it
        try:
            row = json.loads(chunk)
            key = (int(row["point_id"]), int(row["seed_index"]))
            if torn or not isinstance(row, dict):
                raise ValueError("incomplete line")
        except (ValueError, KeyError, TypeError):
            bad += 1
            continue
        rows[key] = row
        good.append(chunk)
    if repair and (bad or (data and not data.endswith(b"\n"))):
        atomic_write_bytes(path, b"".join(c + b"\n" for c in good))
    return rows
