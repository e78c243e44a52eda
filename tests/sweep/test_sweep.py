"""``perpsim sweep``: samplers, spec validation, execution, failures, resume, statistics.

The runs use ``tests/data/sweeps/tiny_scenario.yaml`` (no agents, one day of 10-minute ticks,
about 0.1 s per run), so every executor path is exercised for real in a few seconds.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from support import REPO
from support import run_perpsim as cli

from perpsim.errors import ConfigError
from perpsim.metrics import SUMMARY_METRICS
from perpsim.progress import Progress
from perpsim.sweep import (
    AGGREGATE,
    JOURNAL,
    RESULTS,
    ChoiceParam,
    LogUniformParam,
    RangeParam,
    SweepPlan,
    SweepSpec,
    ValuesParam,
    aggregate_results,
    generate_points,
    load_sweep,
    read_journal,
    run_seed,
    run_sweep,
    sampler_seed_sequence,
    unit_samples,
)

ROOT = REPO
DATA = ROOT / "tests" / "data" / "sweeps"
TINY_SWEEP = DATA / "tiny_sweep.yaml"
TINY_SCENARIO = DATA / "tiny_scenario.yaml"
MACHINE = ["wall_time_s"]


def write_sweep(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text.replace("SCENARIO", str(TINY_SCENARIO)), encoding="utf-8")
    return path


def comparable(out_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(out_dir / RESULTS).drop(columns=MACHINE)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[SweepPlan, Path]:
    """The tiny sweep run once in-process: the results every other executor must match."""
    plan = load_sweep(TINY_SWEEP)
    out = tmp_path_factory.mktemp("reference")
    outcome = run_sweep(plan, out, workers=1)
    assert outcome.complete and outcome.n_failed == 0
    return plan, out


# ---------------------------------------------------------------------------------------------
# Points and seeds
# ---------------------------------------------------------------------------------------------


def spec(**kw: Any) -> SweepSpec:
    data: dict[str, Any] = {"scenario": "x.yaml", **kw}
    return SweepSpec.model_validate(data)


def test_grid_is_the_product_in_order_with_clean_values() -> None:
    s = spec(
        parameters={
            "venue.governance.maintenance_margin_rate": {"range": [0.05, 0.1], "count": 3},
            "venue.governance.liquidation_penalty_rate": [0.005, 0.01],
        }
    )
    points = generate_points(s, 1)
    assert points == [
        (0.05, 0.005),
        (0.05, 0.01),
        (0.075, 0.005),
        (0.075, 0.01),
        (0.1, 0.005),
        (0.1, 0.01),
    ]
    assert generate_points(s, 2) == points  # a grid does not depend on the seed


def test_log_range_is_geometric_and_integer_range_rounds() -> None:
    log = RangeParam.model_validate({"range": [1e-4, 1e-2], "count": 5, "scale": "log"})
    values = np.asarray(log.grid_values())
    assert values[0] == pytest.approx(1e-4) and values[-1] == pytest.approx(1e-2)
    assert np.allclose(values[1:] / values[:-1], 10**0.5)
    ints = RangeParam.model_validate({"range": [10, 20], "count": 4, "integer": True})
    assert ints.grid_values() == [10, 13, 17, 20]


@pytest.mark.parametrize("sampler", ["random", "lhs", "sobol"])
def test_samplers_count_bounds_determinism(sampler: str) -> None:
    s = spec(
        sampler=sampler,
        samples=64,
        parameters={
            "a": {"range": [0.05, 0.1]},
            "b": {"dist": "loguniform", "low": 1e-4, "high": 1e-2},
            "c": {"dist": "uniform", "low": 1, "high": 5, "integer": True},
            "d": {"values": ["x", "y", "z"]},
        },
    )
    points = generate_points(s, 42)
    assert len(points) == 64
    a, b, c, d = (list(col) for col in zip(*points, strict=True))
    assert all(0.05 <= v <= 0.1 for v in a)
    assert all(1e-4 <= v <= 1e-2 for v in b)
    assert set(c) <= {1, 2, 3, 4, 5} and all(isinstance(v, int) for v in c)
    assert set(d) == {"x", "y", "z"}
    assert generate_points(s, 42) == points
    assert generate_points(s, 43) != points
    # loguniform: about half of the points below the geometric mid-point 1e-3
    assert 16 <= sum(v < 1e-3 for v in b) <= 48


@pytest.mark.parametrize("sampler", ["lhs", "sobol"])
def test_lhs_and_sobol_put_one_point_in_each_stratum(sampler: str) -> None:
    n, d = 32, 3
    u = unit_samples(sampler, n, d, sampler_seed_sequence(5))  # type: ignore[arg-type]
    assert u.shape == (n, d) and (u >= 0).all() and (u < 1).all()
    for j in range(d):
        assert sorted((u[:, j] * n).astype(int)) == list(range(n))


def test_choice_weights_and_values_mapping() -> None:
    choice = ChoiceParam.model_validate(
        {"dist": "choice", "values": [1, 2, 3], "weights": [1, 0, 3]}
    )
    u = np.random.default_rng(0).random(4000)
    picked = choice.from_unit(u)
    assert 2 not in picked
    assert 0.2 < picked.count(1) / len(picked) < 0.3
    values = ValuesParam.model_validate({"values": ["a", "b"]})
    assert values.from_unit(np.array([0.0, 0.49, 0.5, 0.999999])) == ["a", "a", "b", "b"]
    lu = LogUniformParam.model_validate(
        {"dist": "loguniform", "low": 10, "high": 1000, "integer": True}
    )
    assert lu.from_unit(np.array([0.0, 0.5, 0.9999999])) == [10, 100, 1000]


def test_run_seeds_are_deterministic_and_distinct() -> None:
    common = [[run_seed(7, p, s) for s in range(4)] for p in range(3)]
    assert common[0] == common[1] == common[2]  # common random numbers across points
    assert len(set(common[0])) == 4
    indep = {run_seed(7, p, s, common=False) for p in range(3) for s in range(4)}
    assert len(indep) == 12
    assert run_seed(7, 2, 3, common=False) == run_seed(7, 2, 3, common=False)
    assert run_seed(8, 0, 0) != run_seed(7, 0, 0)
    assert all(0 <= x < 2**63 for x in indep)


def test_plan_resolves_relative_scenario_and_validates_points(
    reference: tuple[SweepPlan, Path],
) -> None:
    plan, _ = reference
    assert plan.scenario == str(TINY_SCENARIO.resolve())
    assert plan.keys == ("venue.governance.maintenance_margin_rate", "price_path.sigma")
    assert plan.n_points == 6 and plan.n_runs == 18
    assert plan.point_overrides(0) == (
        ("venue.insurance_fund", 200000),
        ("venue.governance.maintenance_margin_rate", 0.05),
        ("price_path.sigma", 0.3),
    )
    assert load_sweep(TINY_SWEEP).fingerprint == plan.fingerprint


# ---------------------------------------------------------------------------------------------
# Validation errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("scenario: SCENARIO\nparameters: {a: [1]}\nsamplr: grid\n", "samplr: unknown key"),
        (
            "scenario: SCENARIO\nparameters:\n  venue.governance.pool_fee_rate:"
            " {range: [0.01, 0.001], count: 3}\n",
            "parameters.venue.governance.pool_fee_rate: range [0.01, 0.001] must have lo < hi",
        ),
        (
            "scenario: SCENARIO\nparameters:\n  venue.governance.maintenance_margn_rate: [0.05]\n",
            "did you mean 'maintenance_margin_rate'",
        ),
        (
            "scenario: SCENARIO\nparameters:\n  clock.tik: [60]\n",
            "clock.tik: unknown key 'tik'; did you mean 'tick'?",
        ),
        (
            "scenario: SCENARIO\nparameters:\n  venue.governance.pool_fee_rate:"
            " {dist: uniform, low: 0, high: 0.01}\n",
            "parameters.venue.governance.pool_fee_rate: a distribution needs sampler random, lhs or"
            " sobol; a grid takes values: [...] or range: [lo, hi] with count (line 3)",
        ),
        (
            "scenario: SCENARIO\nsampler: sobol\nsamples: 100\nparameters:\n"
            "  venue.governance.pool_fee_rate: {range: [0, 0.01]}\n",
            "samples: a Sobol sample is balanced only for a power of two points, got 100 (use 64"
            " or 128, or sampler lhs) (line 3)",
        ),
        (
            "scenario: SCENARIO\nparameters:\n  venue.governance.pool_fee_rate: {dist: normal}\n",
            "give values: [...], range: [lo, hi]",
        ),
        (
            "scenario: SCENARIO\nparameters:\n"
            "  venue.governance.liquidation_penalty_rate: [0.01, 0.2]\n",
            "1 of 2 points give an invalid scenario",
        ),
        (
            "scenario: nowhere.yaml\nparameters: {a: [1]}\n",
            "scenario: nowhere.yaml: file not found",
        ),
        (
            "scenario: SCENARIO\nparameters:\n  seed: [1, 2]\n",
            "parameters.seed: cannot be set or varied: the sweep seeds each run (line 3)",
        ),
        (
            "scenario: SCENARIO\nparameters: {a: [1]}\nmetric: bad_dept\n",
            "unknown metric 'bad_dept'",
        ),
    ],
)
def test_spec_errors_name_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write_sweep(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_sweep(path)
    message = str(err.value)
    assert str(path) in message
    assert expected in message, message
    assert "--set" not in message


def test_spec_error_has_line_number(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path,
        "scenario: SCENARIO\nparameters:\n  venue.governance.pool_fee_rate:\n"
        "    range: [0.001, 0.01]\n    count: 0\n",
    )
    with pytest.raises(
        ConfigError, match=r"parameters\.venue\.governance\.pool_fee_rate\.count: .*line 5"
    ):
        load_sweep(path)


def test_cli_bad_sweep_exits_2_without_traceback(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, "scenario: SCENARIO\nparameters:\n  clock.tik: [60]\n")
    proc = cli("sweep", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "did you mean 'tick'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_missing_dask_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, reference: tuple[SweepPlan, Path], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ConfigError, match=r"pip install 'perpsim\[dask\]'"):
        run_sweep(reference[0], tmp_path / "out", scheduler="tcp://127.0.0.1:1")


# ---------------------------------------------------------------------------------------------
# Outputs and statistics
# ---------------------------------------------------------------------------------------------


def test_results_layout(reference: tuple[SweepPlan, Path]) -> None:
    plan, out = reference
    results = pd.read_parquet(out / RESULTS)
    assert len(results) == 18
    assert list(results[["point_id", "seed_index"]].itertuples(index=False, name=None)) == [
        (p, s) for p in range(6) for s in range(3)
    ]
    for col in ("seed", *plan.keys, "status", "error", "traceback", "wall_time_s"):
        assert col in results
    assert set(SUMMARY_METRICS) <= set(results.columns)
    assert (results["status"] == "ok").all()
    assert results["error"].isna().all()
    assert results["seed"].tolist() == [plan.seed_of(p, s) for p in range(6) for s in range(3)]
    # the same seed index sees the same market at every point (common random numbers)
    same_vol = results[results["price_path.sigma"] == 0.3]
    by_seed = same_vol.groupby("seed_index")["min_market_price"].nunique()
    assert (by_seed == 1).all()
    assert results["venue.governance.maintenance_margin_rate"].dtype == np.float64
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["fingerprint"] == plan.fingerprint and manifest["runs"] == 18
    assert len((out / JOURNAL).read_text().splitlines()) == 18


def _check_aggregate(results: pd.DataFrame, aggregate: pd.DataFrame) -> None:
    for _, row in aggregate.iterrows():
        rows = results[results["point_id"] == row["point_id"]]
        ok = rows[rows["status"] == "ok"]
        assert row["n_runs"] == len(rows) and row["n_ok"] == len(ok)
        assert row["n_failed"] == len(rows) - len(ok)
        for m in SUMMARY_METRICS:
            x = ok[m].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
            x = x[~np.isnan(x)]
            want = (
                (np.mean(x), np.median(x), np.percentile(x, 5), np.percentile(x, 95))
                if x.size
                else (math.nan,) * 4
            )
            got = [row[f"{m}_{s}"] for s in ("mean", "median", "p5", "p95")]
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, equal_nan=True)
        for m in ("bad_debt", "insurance_fund_drawdown"):
            x = ok[m].to_numpy(dtype=float)
            v = np.percentile(x, 95)
            assert row[f"var95_{m}"] == pytest.approx(v, rel=1e-12)
            assert row[f"cvar95_{m}"] == pytest.approx(x[x >= v].mean(), rel=1e-12)
        exhausted = ok["insurance_fund_exhausted"].astype(float).to_numpy()
        assert row["p_insurance_fund_exhausted"] == pytest.approx(exhausted.mean())
        lv = ok["liquidated_value"].to_numpy(dtype=float)
        assert row["lar95"] == pytest.approx(np.percentile(lv, 95), rel=1e-12)


def test_aggregate_matches_numpy_on_the_raw_rows(reference: tuple[SweepPlan, Path]) -> None:
    plan, out = reference
    results = pd.read_parquet(out / RESULTS)
    aggregate = pd.read_parquet(out / AGGREGATE)
    assert aggregate["point_id"].tolist() == list(range(6))
    assert list(aggregate.columns[:3]) == ["point_id", *plan.keys]
    _check_aggregate(results, aggregate)


def test_aggregate_statistics_on_rich_synthetic_rows() -> None:
    rng = np.random.default_rng(3)
    n = 90
    results = pd.DataFrame({"point_id": np.repeat([0, 1, 2], n // 3), "seed_index": 0})
    results["status"] = np.where(rng.random(n) < 0.1, "failed", "ok")
    for m in SUMMARY_METRICS:
        results[m] = rng.lognormal(0, 2, n) * (rng.random(n) < 0.7)
    results["insurance_fund_exhausted"] = pd.array(rng.random(n) < 0.3, dtype="boolean")
    results.loc[3, "trader_pnl_p5"] = math.nan
    aggregate = aggregate_results(results)
    assert aggregate["n_failed"].sum() == (results["status"] == "failed").sum()
    _check_aggregate(results, aggregate)


def test_progress_lines_every_tenth_with_failures_and_eta(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bar = Progress("tiny", 20, unit="runs", mode="lines", done=4)
    for i in range(16):
        bar.update(advance=1, status="[red]1 failed" if i >= 3 else "")
    bar.stop()
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "tiny: 6/20 runs",
        "tiny: 8/20 runs",
        "tiny: 10/20 runs",
        "tiny: 12/20 runs",
        "tiny: 14/20 runs",
        "tiny: 16/20 runs",
        "tiny: 18/20 runs",
        "tiny: 20/20 runs",
    ]
    assert "failed" not in lines[0] and ", 1 failed, " in lines[1]  # markup becomes plain text
    assert all("ETA" in line for line in lines[:-1]) and "ETA" not in lines[-1]


def test_progress_off_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress("tiny", 3, unit="runs", mode="off") as bar:
        for _ in range(3):
            bar.update(advance=1)
    assert capsys.readouterr() == ("", "")


# ---------------------------------------------------------------------------------------------
# Executors: identical results
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_workers_give_identical_results(
    reference: tuple[SweepPlan, Path], tmp_path: Path
) -> None:
    plan, ref = reference
    outcome = run_sweep(plan, tmp_path / "w2", workers=2)
    assert outcome.backend == "2 local worker processes"
    pd.testing.assert_frame_equal(comparable(tmp_path / "w2"), comparable(ref))
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "w2" / AGGREGATE), pd.read_parquet(ref / AGGREGATE)
    )


@pytest.mark.slow
def test_dask_local_cluster_gives_identical_results(
    reference: tuple[SweepPlan, Path], tmp_path: Path
) -> None:
    from distributed import LocalCluster

    _, ref = reference
    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        proc = cli(
            "sweep",
            str(TINY_SWEEP),
            "--scheduler",
            cluster.scheduler_address,
            "--out",
            str(tmp_path / "dask"),
        )
    assert proc.returncode == 0, proc.stderr
    assert "Dask scheduler" in proc.stdout
    pd.testing.assert_frame_equal(comparable(tmp_path / "dask"), comparable(ref))


# ---------------------------------------------------------------------------------------------
# Failures
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_failing_run_is_recorded_and_the_others_finish(tmp_path: Path) -> None:
    # creator_cash = 1 USD passes validation but the pool cannot be created: the run raises.
    path = write_sweep(
        tmp_path,
        "scenario: SCENARIO\nparameters:\n  venue.pool.creator_cash: [1.0, 1.0e9]\n"
        "  price_path.sigma: [0.3, 0.6]\nseeds: 2\n",
    )
    out = tmp_path / "out"
    proc = cli("sweep", str(path), "--workers", "2", "--out", str(out))
    assert proc.returncode == 1, proc.stderr
    assert "failed: UnsafeError" in proc.stderr
    assert "Traceback" not in proc.stderr
    results = pd.read_parquet(out / RESULTS)
    assert len(results) == 8
    bad = results[results["venue.pool.creator_cash"] == 1.0]
    good = results[results["venue.pool.creator_cash"] == 1.0e9]
    assert (bad["status"] == "failed").all() and (good["status"] == "ok").all()
    assert bad["error"].str.startswith("UnsafeError").all()
    assert bad["traceback"].str.contains("Traceback (most recent call last)", regex=False).all()
    assert bad["traceback"].str.contains("create_pool", regex=False).all()
    assert bad["bad_debt"].isna().all() and good["bad_debt"].notna().all()
    aggregate = pd.read_parquet(out / AGGREGATE)
    assert aggregate["n_failed"].tolist() == [2, 2, 0, 0]
    assert aggregate["n_ok"].tolist() == [0, 0, 2, 2]
    assert aggregate["final_mark_price_mean"].isna().tolist() == [True, True, False, False]


# ---------------------------------------------------------------------------------------------
# Interruption and resume
# ---------------------------------------------------------------------------------------------


def _wait_for_lines(journal: Path, n: int, proc: subprocess.Popen[str], limit: float = 60) -> int:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if journal.exists():
            lines = journal.read_bytes().count(b"\n")
            if lines >= n:
                return lines
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended early: {proc.communicate()}")
        time.sleep(0.01)
    raise AssertionError("the journal did not grow")


def _journal_keys(out: Path) -> list[tuple[int, int]]:
    keys = []
    for line in (out / JOURNAL).read_text().splitlines():
        row = json.loads(line)
        keys.append((row["point_id"], row["seed_index"]))
    return keys


@pytest.mark.slow
def test_killed_sweep_resumes_without_loss_or_duplicates(
    reference: tuple[SweepPlan, Path], tmp_path: Path
) -> None:
    _, ref = reference
    out = tmp_path / "out"
    args = [sys.executable, "-m", "perpsim", "sweep", str(TINY_SWEEP), "--out", str(out)]
    proc = subprocess.Popen([*args, "--workers", "2"], cwd=ROOT, text=True)
    _wait_for_lines(out / JOURNAL, 2, proc)
    workers = _pool_workers(proc.pid)
    assert workers
    proc.kill()  # SIGKILL: no clean-up at all
    proc.wait(timeout=30)
    # the orphaned pool workers notice and exit (they would otherwise wait forever)
    deadline = time.monotonic() + 20
    while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{w}").exists() for w in workers)
    done = read_journal(out / JOURNAL)
    assert 2 <= len(done) < 18
    again = cli("sweep", str(TINY_SWEEP), "--out", str(out))
    assert again.returncode == 2 and "--resume" in again.stderr  # no silent overwrite
    resumed = cli("sweep", str(TINY_SWEEP), "--out", str(out), "--resume", "--workers", "1")
    assert resumed.returncode == 0, resumed.stderr
    keys = _journal_keys(out)
    assert len(keys) == len(set(keys)) == 18
    pd.testing.assert_frame_equal(comparable(out), comparable(ref))


@pytest.mark.slow
def test_ctrl_c_writes_partial_tables_then_resume_completes(
    reference: tuple[SweepPlan, Path], tmp_path: Path
) -> None:
    plan, ref = reference
    out = tmp_path / "out"
    args = [sys.executable, "-m", "perpsim", "sweep", str(TINY_SWEEP), "--out", str(out)]
    proc = subprocess.Popen([*args, "--workers", "1"], cwd=ROOT, text=True, stderr=subprocess.PIPE)
    _wait_for_lines(out / JOURNAL, 3, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    partial = pd.read_parquet(out / RESULTS)
    assert 3 <= len(partial) < 18
    assert len(partial) == len(read_journal(out / JOURNAL))
    outcome = run_sweep(plan, out, workers=1, resume=True)
    assert outcome.n_skipped == len(partial) and outcome.n_new == 18 - len(partial)
    pd.testing.assert_frame_equal(comparable(out), comparable(ref))


@pytest.mark.slow
def test_torn_journal_line_is_dropped_and_rerun(
    reference: tuple[SweepPlan, Path], tmp_path: Path
) -> None:
    plan, ref = reference
    out = tmp_path / "out"
    shutil.copytree(ref, out)
    lines = (out / JOURNAL).read_bytes().splitlines(keepends=True)
    # a process killed while writing its 8th line: 7 whole lines and half of one
    (out / JOURNAL).write_bytes(b"".join(lines[:7]) + lines[7][: len(lines[7]) // 2])
    (out / RESULTS).unlink()
    outcome = run_sweep(plan, out, workers=2, resume=True)
    assert outcome.n_skipped == 7 and outcome.n_new == 11
    keys = _journal_keys(out)
    assert len(keys) == len(set(keys)) == 18
    pd.testing.assert_frame_equal(comparable(out), comparable(ref))


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _pool_workers(pid: int) -> list[int]:
    """The worker processes of a sweep: children of its fork server."""
    found = []
    for child in _children(pid):
        if b"forkserver" in Path(f"/proc/{child}/cmdline").read_bytes():
            found += _children(child)
    return found


@pytest.mark.slow
def test_killed_worker_process_is_replaced(
    reference: tuple[SweepPlan, Path], tmp_path: Path
) -> None:
    _, ref = reference
    out = tmp_path / "out"
    args = [sys.executable, "-m", "perpsim", "sweep", str(TINY_SWEEP), "--out", str(out)]
    proc = subprocess.Popen([*args, "--workers", "2"], cwd=ROOT, text=True)
    _wait_for_lines(out / JOURNAL, 1, proc)
    workers = _pool_workers(proc.pid)
    assert workers
    os.kill(workers[0], signal.SIGKILL)
    assert proc.wait(timeout=120) == 0
    keys = _journal_keys(out)
    assert len(keys) == len(set(keys)) == 18
    pd.testing.assert_frame_equal(comparable(out), comparable(ref))


@pytest.mark.slow
def test_resume_refuses_a_changed_sweep(reference: tuple[SweepPlan, Path], tmp_path: Path) -> None:
    _, ref = reference
    out = tmp_path / "out"
    shutil.copytree(ref, out)
    changed = tmp_path / "tiny_sweep.yaml"
    changed.write_text(
        TINY_SWEEP.read_text()
        .replace("seeds: 3", "seeds: 4")
        .replace("tiny_scenario.yaml", str(TINY_SCENARIO))
    )
    proc = cli("sweep", str(changed), "--out", str(out), "--resume")
    assert proc.returncode == 2
    assert "different sweep" in proc.stderr and "Traceback" not in proc.stderr
    # a comment or the ranking metric does not change the results: resuming is allowed
    same = tmp_path / "same.yaml"
    same.write_text(
        "# a new comment\n"
        + TINY_SWEEP.read_text()
        .replace("tiny_scenario.yaml", str(TINY_SCENARIO))
        .replace("metric: final_mark_price", "metric: lp_return")
    )
    proc = cli("sweep", str(same), "--out", str(out), "--resume", "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    assert "18/18 runs recorded (0 now, 18 before" in proc.stdout.replace("\n", " ")


def test_keep_timeseries_writes_run_folders(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path,
        "scenario: SCENARIO\nparameters:\n  price_path.sigma: [0.3, 0.6]\nkeep: timeseries\n",
    )
    plan = load_sweep(path)
    outcome = run_sweep(plan, tmp_path / "out", workers=1)
    assert outcome.results["run_dir"].tolist() == ["runs/00000-000", "runs/00001-000"]
    for run_dir in outcome.results["run_dir"]:
        folder = tmp_path / "out" / run_dir
        assert sorted(p.name for p in folder.iterdir()) == [
            "manifest.json",
            "summary.json",
            "timeseries.parquet",
        ]
        assert len(pd.read_parquet(folder / "timeseries.parquet")) == 145
    assert not [p for p in (tmp_path / "out" / "runs").iterdir() if p.name.startswith(".")]


def test_retry_failed_reruns_only_the_failed_runs(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path,
        "scenario: SCENARIO\nparameters:\n  venue.pool.creator_cash: [1.0, 1.0e9]\nseeds: 2\n",
    )
    plan = load_sweep(path)
    first = run_sweep(plan, tmp_path / "out", workers=1)
    assert (first.n_new, first.n_failed) == (4, 2)
    again = run_sweep(plan, tmp_path / "out", workers=1, resume=True)
    assert (again.n_new, again.n_skipped) == (0, 4)
    retried = run_sweep(plan, tmp_path / "out", workers=1, resume=True, retry_failed=True)
    assert (retried.n_new, retried.n_skipped, retried.n_failed) == (2, 2, 2)
    keys = _journal_keys(tmp_path / "out")
    assert len(keys) == len(set(keys)) == 4
