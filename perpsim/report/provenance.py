"""Where a run or sweep came from: the manifest rows and the dirty-checkout warning."""

from __future__ import annotations

from typing import Any

__all__ = ["commit_warning", "manifest_rows"]


def manifest_rows(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """The provenance of a manifest as (item, value) rows: seed, commit, versions, times."""
    rows: list[tuple[str, str]] = []
    for key in ("scenario", "name", "seed", "root_seed", "started_at", "created_at"):
        if manifest.get(key) is not None:
            rows.append((key, str(manifest[key])))
    if manifest.get("git_commit") is not None or "git_commit" in manifest:
        rows.append(("git commit", str(manifest.get("git_commit") or "unknown (not a checkout)")))
    versions = manifest.get("versions")
    if isinstance(versions, dict):
        rows.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    elif manifest.get("perpsim"):
        rows.append(("perpsim", str(manifest["perpsim"])))
    for key in ("ticks_run", "wall_time_s"):
        v = manifest.get(key)
        if isinstance(v, int | float):
            rows.append((key.replace("_", " "), f"{v:,.1f}" if isinstance(v, float) else f"{v:,}"))
    return rows


def commit_warning(manifest: dict[str, Any]) -> list[str]:
    """A warning when the run was made from a checkout with uncommitted changes."""
    commit = manifest.get("git_commit")
    if isinstance(commit, str) and commit.endswith("-dirty"):
        return [
            "The run was made from a checkout with uncommitted changes"
            f" ({commit}); the commit alone may not reproduce it."
        ]
    return []
