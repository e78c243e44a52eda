"""``perpsim replay``: run a list of engine operations on named accounts and observe values.

A replay file (YAML or JSON) holds ``ops``, a list of ``{op, ...args, at_time?}``, and optionally
``kind`` (the exchange design, ``mcdex_v1`` by default). It is how a user reproduces an incident
or audits a formula, and how an engine is checked against reference numbers. Each design's
operations come from its registry spec (:class:`~perpsim.engine.registry.ReplaySpec`); see
``docs/replay.md`` for MCDEX v1's. ``perpsim replay RUN_DIR`` rebuilds a run's ledger from its
event log (:mod:`perpsim.replay.run_dir`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from perpsim.engine.core.replay import ReplayReport
from perpsim.engine.registry import (
    DEFAULT_KIND,
    ReplaySpec,
    UnknownVenueError,
    venue_kinds,
    venue_spec,
)
from perpsim.errors import ConfigError
from perpsim.replay.files import load_replay_file
from perpsim.replay.run_dir import replay_run_dir, run_dir_replay_doc


def replay_spec(doc: Mapping[str, Any], source: str) -> ReplaySpec:
    """The replay spec of the design a replay document names (``kind``).

    Raises:
        ConfigError: the kind is unknown or its design cannot be replayed.
    """
    kind = doc.get("kind")
    if kind is None:
        # ``venue: <kind>`` names a design too (MCDEX v1's own ``venue:`` values are not kinds).
        venue = doc.get("venue")
        kind = venue if isinstance(venue, str) and venue in venue_kinds() else DEFAULT_KIND
    try:
        spec = venue_spec(str(kind))
    except UnknownVenueError as exc:
        raise ConfigError(f"{source}: kind: {exc.args[0]}") from None
    if spec.replay is None:
        raise ConfigError(f"{source}: kind: venue {kind!r} has no replay operations")
    return spec.replay


def run_replay_doc(doc: Mapping[str, Any], source: str = "<replay>") -> ReplayReport:
    """Run a parsed replay document on a fresh exchange of its design."""
    report: ReplayReport = replay_spec(doc, source).session(doc, source).run()
    return report


def run_replay_file(path: str | Path) -> ReplayReport:
    """Load and run one replay file.

    Raises:
        ConfigError: the file is unreadable or malformed.
    """
    return run_replay_doc(load_replay_file(path), source=str(path))


__all__ = [
    "ReplayReport",
    "load_replay_file",
    "replay_run_dir",
    "replay_spec",
    "run_dir_replay_doc",
    "run_replay_doc",
    "run_replay_file",
]
