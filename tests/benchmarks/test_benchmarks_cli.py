"""``python -m benchmarks``: the JSON of its cheapest cases, the e2e child, the scenario files.

The suite itself is run by hand (minutes to a quarter of an hour); these tests run the real
command on the cases that take seconds (``import``, ``scan``), the end-to-end child on an hour
of each venue's scenario, and check what the JSON promises: one entry per target, each with
its ``target`` and a boolean ``meets_target`` that agrees with the measured value.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import REPO

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import d8x_reference
from benchmarks.__main__ import (
    CASES,
    E2E_SCENARIOS,
    IMPORT_MAX_S,
    SCAN_MAX_MS,
    TARGETS,
    _with_e2e_target,
)

#: The rows of the issue's targets table (and the venue rows), as keys of ``TARGETS``.
ISSUE_ROWS = (
    "e2e_10000_wall_s",
    "e2e_100000_wall_s",
    "growth_ratio",
    "engine_amm_trades_per_s",
    "import_s",
    "sweep_parallel_efficiency_2",
    "d8x_reference_ratio",
    "venue_trades_per_s",
    "e2e_d8x_10000_trades_per_s",
    "e2e_predy_10000_trades_per_s",
)


def _benchmarks(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_targets_cover_the_issue_table() -> None:
    assert set(ISSUE_ROWS) <= set(TARGETS)
    assert {"import", "growth", "e2e_d8x", "e2e_predy", "d8x_reference"} <= set(CASES)


def test_import_and_scan_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = _benchmarks("--only", "import", "scan", "--reps", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert {"when", "machine", "targets", "results", "meets_targets", "errors"} <= set(doc)
    assert doc["targets"] == TARGETS
    assert doc["duration_override"] is None
    assert doc["errors"] == {}
    results = doc["results"]
    assert {"scan_1000_ms", "scan_10000_ms", "scan_100000_ms", "import"} <= set(results)

    scan = results["scan_100000_ms"]
    assert scan["target"] == TARGETS["scan_100000_ms"]
    assert scan["meets_target"] is (scan["median"] <= SCAN_MAX_MS)
    assert len(scan["values"]) >= 3

    imp = results["import"]
    assert imp["target"] == TARGETS["import_s"]
    for key in ("import_perpsim_s", "perpsim_help_s"):
        entry = imp[key]
        assert len(entry["values"]) >= 5
        assert entry["median"] > 0
        assert entry["meets_target"] is (entry["median"] <= IMPORT_MAX_S)
    assert imp["python_startup_s"]["median"] > 0
    assert "meets_target" not in imp["python_startup_s"]
    both = imp["import_perpsim_s"]["meets_target"] and imp["perpsim_help_s"]["meets_target"]
    assert imp["meets_target"] is both
    assert doc["meets_targets"] == {"scan_100000_ms": scan["meets_target"], "import": both}
    assert "pass" in proc.stdout and "import: perpsim --help" in proc.stdout


@pytest.mark.parametrize("kind", sorted(E2E_SCENARIOS))
def test_e2e_child_runs_each_venue(kind: str) -> None:
    scenario = E2E_SCENARIOS[kind]
    proc = _benchmarks(
        "--e2e-child", "50", "--child-scenario", str(scenario), "--child-duration", "1h"
    )
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["venue"] == kind
    assert r["ticks"] == 60 and r["duration_s"] == 3600
    assert r["invariants"] == "ok" and r["record_every"] == 1
    assert r["ms_per_tick"] > 0 and r["loop_s"] <= r["wall_s"]
    assert r["peak_rss_bytes"] > 0


def _yaml(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def test_e2e_scenarios_share_clock_market_and_crowd() -> None:
    base = _yaml(E2E_SCENARIOS["mcdex_v1"])
    crowd = {a["name"]: a for a in base["agents"]}
    for kind in ("d8x", "predy"):
        other = _yaml(E2E_SCENARIOS[kind])
        for key in ("seed", "clock", "price_path", "output"):
            assert other[key] == base[key], (kind, key)
        assert other["venue"]["kind"] == kind
        theirs = {a["name"]: a for a in other["agents"]}
        for name, population in crowd.items():
            mine = dict(theirs[name])
            if kind == "predy" and name == "keeper":
                assert mine.pop("params") == {"gas_cost": 0.0}
            assert mine == population, (kind, name)


def test_e2e_checks_follow_the_measured_values() -> None:
    run = {
        "wall_s": 5.0,
        "peak_rss_bytes": 900_000_000,
        "trades": 310_000,
        "invariants": ["ok"],
        "record_every": 1,
        "duration_s": 30 * 86400,
    }
    assert _with_e2e_target(10_000, dict(run))["meets_target"] is True
    slow = _with_e2e_target(10_000, {**run, "wall_s": 7.0})
    assert slow["meets_target"] is False and slow["checks"]["wall"] is False
    few = _with_e2e_target(10_000, {**run, "trades": 299_999})
    assert few["meets_target"] is False and few["checks"]["trades"] is False
    broken = _with_e2e_target(10_000, {**run, "invariants": ["ok", "pool: negative cash"]})
    assert broken["meets_target"] is False
    big = _with_e2e_target(100_000, {**run, "wall_s": 59.0, "peak_rss_bytes": 2 * 10**9 + 1})
    assert big["meets_target"] is False and big["checks"]["memory"] is False
    assert "meets_target" not in _with_e2e_target(1_000, dict(run))


def test_d8x_reference_without_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    def fake(n_markets: int, scenario: Path = d8x_reference.SCENARIO) -> dict[str, Any]:
        seen.append(n_markets)
        run = {"seed": 1, "wall_s": 2.0, "peak_rss_bytes": 1, "trades": 10}
        return {"scenario": "s", "markets": n_markets, "wall_s": 2.0 * n_markets, "runs": [run]}

    monkeypatch.setattr(d8x_reference, "run_perpsim", fake)
    r = d8x_reference.compare(None)
    assert seen == [3]
    assert r["reference_given"] is False and r["reference"] is None
    assert r["ratio"] is None and r["meets_target"] is None
    assert "not given" in r["note"]
    assert "reference: not run" in d8x_reference.describe(r)


def test_d8x_reference_reads_the_crowd_from_result_names(tmp_path: Path) -> None:
    (tmp_path / "res104-20-BTCUSDMATIC_2022723-0.csv").write_text(
        ",mark_price,num_trades\n0,1.0,3\n1,1.0,946.0\n"
    )
    (tmp_path / "sim_id_0.csv").write_text("x\n1\n")
    crowd = d8x_reference._crowd(tmp_path)
    assert crowd == {"BTCUSD": {"traders": 104, "bots": 20, "trades": 946}}
