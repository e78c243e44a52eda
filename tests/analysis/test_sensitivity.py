"""perpsim sensitivity: the Ishigami self-test through the sweep machinery, and a tiny model run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import REPO

from perpsim.analysis.ishigami import S1, ST, ishigami_indices
from perpsim.analysis.sensitivity import (
    SWEEP_DIR,
    load_sensitivity,
    run_sensitivity,
)
from perpsim.report import write_report
from perpsim.sweep import read_journal
from perpsim.sweep.layout import JOURNAL


def test_ishigami_closed_form() -> None:
    s1, st = ishigami_indices()
    assert np.allclose(s1, (0.3139, 0.4424, 0.0), atol=5e-4)
    assert np.allclose(st, (0.5576, 0.4424, 0.2437), atol=5e-4)


def test_ishigami_indices_recovered_at_n_4096(tmp_path: Path) -> None:
    """The shipped self-test file, through the same path as a model: within ±0.02 at N = 2^12."""
    plan = load_sensitivity(REPO / "analyses" / "ishigami.yaml")
    assert plan.spec.N == 4096 and plan.sweep.n_runs == 4096 * 5
    assert plan.sweep.function == "perpsim.analysis.ishigami:ishigami"
    result = run_sensitivity(plan, tmp_path / "ish", workers=1)
    # Every point is a run of the sweep, recorded in its journal.
    assert len(read_journal(tmp_path / "ish" / SWEEP_DIR / JOURNAL)) == plan.sweep.n_runs
    full = result.indices[result.indices["n"] == 4096].set_index("parameter")
    for j, key in enumerate(("x1", "x2", "x3")):
        assert abs(full.at[key, "S1"] - S1[j]) <= 0.02, (key, full.at[key, "S1"])
        assert abs(full.at[key, "ST"] - ST[j]) <= 0.02, (key, full.at[key, "ST"])
        assert 0 < full.at[key, "ST_conf"] < 0.1
    assert set(result.indices["n"]) == {1024, 2048, 4096}
    assert result.stable == {"y": True}
    out = tmp_path / "ish"
    csv = pd.read_csv(out / "indices.csv")
    assert list(csv.columns) == ["metric", "parameter", "n", "S1", "S1_conf", "ST", "ST_conf"]
    summary = json.loads((out / "sensitivity.json").read_text())
    assert summary["stable"] == {"y": True} and summary["runs"] == 20480
    report = (out / "report.md").read_text()
    assert "## Sensitivity: ishigami" in report and "stable between N=2048 and N=4096" in report
    assert (out / "sensitivity.png").stat().st_size > 10_000
    assert (out / "convergence.png").stat().st_size > 10_000


TINY = """\
extends: baseline
name: tiny
clock: {duration: 20m}
agents:
  - name: noise
    count: 15
  - name: momentum
    count: 2
  - name: lps
    count: 2
"""

SPEC = """\
name: tiny_sensitivity
scenario: tiny.yaml
set:
  venue.insurance_fund: 50000
parameters:
  venue.governance.pool_fee_rate: {range: [0.0001, 0.003]}
  price_path.sigma: {range: [0.3, 1.5]}
metrics: [volume, lp_return, bad_debt]
N: 8
resamples: 100
seed: 7
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "tiny.yaml").write_text(TINY)
    (folder / "spec.yaml").write_text(SPEC)
    out = folder / "out"
    run_sensitivity(load_sensitivity(folder / "spec.yaml"), out, workers=1)
    return folder, out


def test_model_sensitivity_runs_every_point_and_resumes(tiny_run: tuple[Path, Path]) -> None:
    folder, out = tiny_run
    plan = load_sensitivity(folder / "spec.yaml")
    assert plan.sweep.n_points == 8 * 4
    results = pd.read_parquet(out / SWEEP_DIR / "results.parquet")
    assert len(results) == 32 and (results["status"] == "ok").all()
    # The Saltelli points are the sweep's points: each run's fee is its point's.
    fees = results["venue.governance.pool_fee_rate"].to_numpy()
    assert np.allclose(fees, [p[0] for p in plan.sweep.points])
    before = pd.read_csv(out / "indices.csv")
    again = run_sensitivity(plan, out, workers=1, resume=True)
    assert again.outcome is not None and again.outcome.n_new == 0
    assert again.outcome.n_skipped == 32
    pd.testing.assert_frame_equal(again.indices, before)
    # A metric that is the same at every point is said to have no indices.
    assert again.stable["bad_debt"] is None
    assert any("bad_debt is the same at every point" in n for n in again.notes)
    vol = before[(before["metric"] == "volume") & (before["n"] == 8)]
    assert vol["ST"].notna().all()


def test_perpsim_report_of_a_sensitivity_folder(tiny_run: tuple[Path, Path]) -> None:
    _, out = tiny_run
    html_path, md_path = write_report(out)
    assert html_path == out / "sensitivity_report.html" and md_path.name == "sensitivity_report.md"
    md = md_path.read_text()
    assert "# Sensitivity report: tiny_sensitivity" in md
    assert "| venue.governance.pool_fee_rate | range: (0.0001, 0.003) |" in md
    idx = pd.read_csv(out / "indices.csv")
    last = idx[(idx["metric"] == "volume") & (idx["n"] == 8)].set_index("parameter")
    assert f"| price_path.sigma | {last.at['price_path.sigma', 'S1']:.3f} ±" in md
    assert "bad_debt: the same at every point" in md
    assert "perpsim sensitivity" in md and "--resume" in md
    html = html_path.read_text()
    assert html.count("data:image/png;base64,") == 2
    # The section the command wrote is kept.
    assert (out / "report.md").read_text().startswith("## Sensitivity: tiny_sensitivity")
