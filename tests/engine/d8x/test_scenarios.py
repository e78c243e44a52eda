"""The shipped D8X scenarios: the same market and traders as the MCDEX ones they compare with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import PerpsimCLI

from perpsim.engine.venues.d8x import D8XConfig
from perpsim.scenario import load_scenario


def resolved(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(load_scenario(name).model_dump_json())
    return doc


@pytest.mark.parametrize(
    "d8x, mcdex", [("d8x_black_thursday", "black_thursday"), ("d8x_baseline", "baseline")]
)
def test_a_d8x_scenario_changes_only_the_venue(d8x: str, mcdex: str) -> None:
    ours, theirs = resolved(d8x), resolved(mcdex)
    assert ours["venue"]["kind"] == "d8x" and theirs["venue"]["kind"] == "mcdex_v1"
    for key in set(ours) | set(theirs):
        if key not in ("venue", "name", "description"):
            assert ours.get(key) == theirs.get(key), key


def test_the_shipped_pools_use_the_deployed_parameters() -> None:
    deployed = D8XConfig().governance
    for name in ("d8x_baseline", "d8x_black_thursday", "d8x_default_fund_drain"):
        venue = load_scenario(name).venue
        assert isinstance(venue, D8XConfig)
        assert venue.governance == deployed
    quanto = load_scenario("d8x_quanto_crash").venue
    assert isinstance(quanto, D8XConfig)
    assert quanto.pool.collateral == "quanto" and quanto.pool.collateral_beta == 1.0


@pytest.mark.slow
def test_a_d8x_run_replays_to_the_same_ledger(tmp_path: Path, perpsim_cli: PerpsimCLI) -> None:
    """``perpsim replay RUN_DIR`` rebuilds a D8X run's ledger from its event log exactly."""
    out = tmp_path / "run"
    proc = perpsim_cli(
        "run",
        "d8x_baseline",
        "--set",
        "clock.duration=2h",
        "--set",
        "agents.noise.count=30",
        "--out",
        str(out),
        "--no-plots",
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    proc = perpsim_cli("replay", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True, report["failures"][:3]
    assert report["ledger"]["mismatches"] == [] and report["ledger"]["accounts"] > 30
