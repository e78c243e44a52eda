"""The three commands as a user runs them: bad files exit 2 with located messages; a tiny
stress search writes a worst case that reproduces; a tiny comparison holds every venue asked."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml
from support import PerpsimCLI

from perpsim.analysis.compare import CompareSpec, plan_compare
from perpsim.cli import main
from perpsim.engine.registry import venue_kinds
from perpsim.metrics import SUMMARY_METRICS
from perpsim.scenario import load_scenario

TINY = """\
extends: baseline
name: tiny
clock: {duration: 20m}
agents:
  - name: noise
    count: 30
  - name: momentum
    count: 2
  - name: lps
    count: 2
"""

BAD = {
    "n.yaml": """\
scenario: baseline
parameters:
  venue.insurance_fund: {range: [1000, 5000]}
metrics: [bad_debt]
N: 100
""",
    "metric.yaml": """\
scenario: baseline
parameters:
  venue.insurance_fund: {range: [1000, 5000]}
metrics: [bad_debt, fund_gone]
N: 16
""",
    "keys.yaml": """\
scenario: baseline
parameters:
  venue.insurance_fund: {range: [5000, 1000]}
metrics: [bad_debt]
N: 16
sedes: 3
""",
    "scenario_key.yaml": """\
scenario: baseline
parameters:
  venue.governance.maintenance_margn_rate: {range: [0.01, 0.05]}
metrics: [bad_debt]
N: 16
""",
    "stress.yaml": """\
scenario: baseline
parameters:
  events.0.change: {range: [-0.3, -0.1]}
objective: fund_loss
budget: 4
""",
    "compare.yaml": """\
scenario: baseline
venues: [mcdex_v1, ftx]
""",
}


def test_bad_files_exit_2_with_located_messages(perpsim_cli: PerpsimCLI, tmp_path: Path) -> None:
    for name, text in BAD.items():
        (tmp_path / name).write_text(text)
    proc = perpsim_cli("validate", *sorted(str(tmp_path / n) for n in BAD))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr
    assert "Traceback" not in err
    assert (
        "n.yaml: N: N must be a power of two for a balanced Sobol design, got 100 (use 64 or"
        " 128)" in err
    )
    assert "metric.yaml: metrics.1: unknown metric 'fund_gone' (metrics: " in err
    assert all(m in err for m in SUMMARY_METRICS)
    assert "(line 4)" in err
    assert "keys.yaml: sedes: unknown key (line 6)" in err
    assert (
        "keys.yaml: parameters.venue.insurance_fund: range [5000.0, 1000.0] must have lo < hi"
        in err
    )
    assert "maintenance_margn_rate" in err and "did you mean 'maintenance_margin_rate'" in err
    assert "stress.yaml: objective: unknown metric 'fund_gone'" not in err
    assert "stress.yaml: objective: unknown metric 'fund_loss'" in err
    assert "compare.yaml: venues: unknown venue kind 'ftx' (registered: " in err
    # The commands themselves refuse the same files before running anything.
    for command, name in (
        ("sensitivity", "n.yaml"),
        ("stress", "stress.yaml"),
        ("compare", "compare.yaml"),
    ):
        code = main([command, str(tmp_path / name), "--out", str(tmp_path / "o")])
        assert code == 2
    assert not (tmp_path / "o").exists()


def test_stress_writes_a_worst_case_that_reproduces(
    perpsim_cli: PerpsimCLI, tmp_path: Path
) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY)
    (tmp_path / "stress.yaml").write_text(
        """\
scenario: tiny.yaml
set:
  events:
    - {at: 300, kind: price_shock, change: -0.1, over: 60}
    - {at: 300, kind: liquidator_outage, duration: 600}
parameters:
  events.0.change: {range: [-0.4, -0.05]}
  events.1.duration: {range: [60, 2400], integer: true}
objective: liquidation_volume
budget: 4
batch: 2
startup: 2
seed: 3
"""
    )
    out = tmp_path / "out"
    proc = perpsim_cli(
        "stress", str(tmp_path / "stress.yaml"), "--out", str(out), "--workers", "1", "--quiet"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(reproduced)" in proc.stdout
    trace = pd.read_csv(out / "trace.csv")
    assert list(trace["trial"]) == [0, 1, 2, 3] and list(trace["round"]) == [0, 0, 1, 1]
    assert ((trace["events.0.change"] >= -0.4) & (trace["events.0.change"] <= -0.05)).all()
    budget = pd.read_csv(out / "budget.csv")
    assert list(budget["budget"]) == [1, 2, 4]
    assert budget["worst_loss"].iloc[-1] == trace["loss"].max()
    assert budget["worst_loss"].is_monotonic_increasing
    record = json.loads((out / "stress.json").read_text())
    assert record["reproduced"] is True
    assert record["reproduced_loss"] == record["worst"]["loss"]
    worst = yaml.safe_load((out / "worst.yaml").read_text())
    assert worst["events"][0]["change"] == record["worst"]["values"]["events.0.change"]
    assert (out / "rounds" / "001" / "results.jsonl").exists()
    # The written scenario is a scenario file of its own (its seed included).
    scenario = load_scenario(str(out / "worst.yaml"))
    assert scenario.seed == record["worst_seed"] and scenario.name == "tiny_worst"
    # perpsim report reads the folder into one page: the worst values and the budget curve.
    proc = perpsim_cli("report", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    md = (out / "stress_report.md").read_text()
    assert "# Worst-case report:" in md
    assert "The worst liquidation_volume found:" in md and "(the same as" in md
    assert "| events.1.duration | " in md and f"perpsim run {out / 'worst.yaml'}" in md
    assert (out / "stress_report.html").read_text().count("data:image/png;base64,") == 2


def test_compare_covers_every_registered_kind_by_default(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY)
    plan = plan_compare(CompareSpec.model_validate({"scenario": "tiny.yaml"}), base_dir=tmp_path)
    assert plan.kinds == venue_kinds()
    assert plan.sweep.n_points == len(venue_kinds())
    # The scenario's own kind keeps its section; the others get their defaults.
    assert plan.blocks[0]["kind"] == "mcdex_v1" and plan.blocks[0]["insurance_fund"] == 250000
    assert all(b == {"kind": k} for k, b in zip(plan.kinds[1:], plan.blocks[1:], strict=True))


def test_compare_side_by_side(perpsim_cli: PerpsimCLI, tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY)
    out = tmp_path / "out"
    proc = perpsim_cli(
        "compare",
        str(tmp_path / "tiny.yaml"),
        "--venues",
        "mcdex_v1,predy",
        "--venue-set",
        "predy.pool.initial_liquidity=2000000",
        "--workers",
        "1",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "predy: funds that absorb losses: none. no insurance fund" in proc.stdout
    table = pd.read_csv(out / "compare.csv")
    assert set(table["venue"]) == {"mcdex_v1", "predy"}
    wide = table.pivot(index="metric", columns="venue", values="value")
    assert wide.loc["fund: insurance fund: start", "mcdex_v1"] == 250000
    assert pd.isna(wide.loc["fund: insurance fund: start", "predy"])
    for row in (
        "liquidation_count",
        "lp_return",
        "funding_paid_by_longs",
        "price_impact",
        "social_loss_total",
        "bad_debt",
    ):
        assert row in wide.index
    assert wide.loc["price_impact"].notna().all()
    md = (out / "compare.md").read_text()
    assert "| metric | mcdex_v1 | predy |" in md and "**predy**" in md
    runs = pd.read_parquet(out / "sweep" / "results.parquet")
    assert (runs["status"] == "ok").all() and runs["seed"].nunique() == 1
    proc = perpsim_cli("report", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = (out / "compare_report.md").read_text()
    assert "# Design comparison:" in report and "| metric | mcdex_v1 | predy |" in report
    assert "predy: funds that absorb losses: none." in report
    assert "--venues mcdex_v1,predy --venue-set predy.pool.initial_liquidity=2000000" in report
    assert (out / "compare_report.html").read_text().count("data:image/png;base64,") == 2
