"""Rebuilding a run's ledger from its event log, and comparing it with the run's accounts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from perpsim.engine.core.replay import ReplayReport
from perpsim.engine.registry import DEFAULT_KIND, ReplaySpec, UnknownVenueError, venue_spec
from perpsim.errors import ConfigError
from perpsim.model.events import MODEL_EVENT_KINDS


def read_run_table(run_dir: Path, name: str) -> pd.DataFrame:
    """A run folder's table ``name`` (parquet, or csv for ``--format csv`` runs).

    Raises:
        ConfigError: the folder has neither.
    """
    pq, csv = run_dir / f"{name}.parquet", run_dir / f"{name}.csv"
    if pq.exists():
        return pd.read_parquet(pq)
    if csv.exists():
        df = pd.read_csv(csv, keep_default_na=True)
        if "time" in df:
            df["time"] = pd.to_datetime(df["time"], utc=True)
        return df
    raise ConfigError(f"{run_dir}: no {name}.parquet or {name}.csv (is this a run folder?)")


def _run_venue(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any], ReplaySpec]:
    """The manifest, the resolved venue section and the replay spec of a run folder."""
    manifest_path = run_dir / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{manifest_path}: cannot read the run's manifest: {exc}") from None
    resolved = manifest.get("resolved_scenario", {})
    # Run folders of the first release had flat governance keys and no venue section.
    section = dict(resolved.get("venue") or {"governance": resolved.get("governance") or {}})
    kind = str(section.get("kind", DEFAULT_KIND))
    try:
        spec = venue_spec(kind)
    except UnknownVenueError as exc:
        raise ConfigError(f"{manifest_path}: {exc.args[0]}") from None
    if spec.replay is None:
        raise ConfigError(f"{manifest_path}: venue {kind!r} has no replay operations")
    return manifest, section, spec.replay


def run_dir_replay_doc(run_dir: Path) -> dict[str, Any]:
    """The replay document (design, governance, ops) that rebuilds a run folder's ledger."""
    manifest, section, replay = _run_venue(run_dir)
    events = read_run_table(run_dir, "events")
    if "kind" in events.columns:
        # Governance-rule decisions and halts describe the run, not engine operations (a
        # rule's change is also logged by the venue as its own set_governance).
        events = events[~events["kind"].isin(MODEL_EVENT_KINDS)]
    doc = replay.run_doc(section, events)
    return {
        "name": f"ledger of {manifest.get('scenario', run_dir.name)}",
        "kind": str(section.get("kind", DEFAULT_KIND)),
        **doc,
    }


def replay_run_dir(run_dir: str | Path) -> tuple[ReplayReport, dict[str, Any]]:
    """Replay a run folder's event log and compare the rebuilt ledger with the run's.

    Returns:
        The replay report and the ledger comparison: ``accounts`` compared, ``mismatches``
        (account, field, run value, replayed value) and ``max_abs_diff``.
    """
    path = Path(run_dir)
    _, _, replay = _run_venue(path)
    doc = run_dir_replay_doc(path)
    session = replay.session(doc, str(path))
    report: ReplayReport = session.run()
    ledger = replay.compare_ledger(session, read_run_table(path, "accounts"))
    if ledger["mismatches"]:
        report.failures.append(
            {
                "index": -1,
                "op": "ledger",
                "failure": f"{len(ledger['mismatches'])} ledger mismatches",
            }
        )
    return report, ledger
