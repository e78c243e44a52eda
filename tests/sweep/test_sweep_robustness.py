"""A sweep folder that cannot be trusted is said so: bad journal lines, changed inputs, --out.

The runs use the tiny scenario of ``tests/data/sweeps`` (a fraction of a second each).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import REPO
from support import run_perpsim as cli

from perpsim.sweep import JOURNAL, load_sweep, read_journal, run_sweep
from perpsim.sweep.journal import QUARANTINE

DATA = REPO / "tests" / "data" / "sweeps"
TINY_SCENARIO = DATA / "tiny_scenario.yaml"


def _sweep(
    tmp_path: Path,
    scenario: Path = TINY_SCENARIO,
    seeds: int = 2,
    key: str = "price_path.sigma: [0.3, 0.6]",
) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(f"scenario: {scenario}\nparameters:\n  {key}\nseeds: {seeds}\n")
    return path


def test_bad_journal_lines_are_quarantined_with_line_numbers_and_rerun(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path)
    out = tmp_path / "out"
    plan = load_sweep(sweep)
    run_sweep(plan, out, workers=1)
    journal = out / JOURNAL
    lines = journal.read_text().splitlines()
    good = json.loads(lines[1])
    # a valid-JSON row without its metrics (it would replace the real row), a row of the wrong
    # shape, and a line that is not JSON at all
    stub = {"point_id": good["point_id"], "seed_index": good["seed_index"], "status": "ok"}
    lines += [json.dumps(stub), json.dumps([1, 2]), "{not json"]
    journal.write_text("\n".join(lines) + "\n")
    assert read_journal(journal)[(good["point_id"], good["seed_index"])] == good
    proc = cli("sweep", str(sweep), "--out", str(out), "--resume", "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for n in (5, 6, 7):
        assert f"{journal}:{n}:" in proc.stderr
    assert "missing 'seed'" in proc.stderr and "not valid JSON" in proc.stderr
    quarantined = [json.loads(x) for x in (out / QUARANTINE).read_text().splitlines()]
    assert [q["line"] for q in quarantined] == [5, 6, 7]
    assert journal.read_text().splitlines() == lines[:4]  # the good rows, each once


def test_a_row_with_missing_metrics_is_refused(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, seeds=1)
    out = tmp_path / "out"
    run_sweep(load_sweep(sweep), out, workers=1)
    journal = out / JOURNAL
    row = json.loads(journal.read_text().splitlines()[0])
    del row["bad_debt"]
    journal.write_text(journal.read_text() + json.dumps(row) + "\n")
    proc = cli("sweep", str(sweep), "--out", str(out), "--resume", "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    assert "missing metric(s) 'bad_debt'" in proc.stderr


def test_editing_a_data_file_or_the_code_changes_the_fingerprint(tmp_path: Path) -> None:
    data = tmp_path / "prices.csv"
    data.write_text(
        "timestamp,open\n" + "".join(f"{1704067200 + 3600 * i},{2000 + i}\n" for i in range(30))
    )
    scenario = tmp_path / "scenario.yaml"
    text = TINY_SCENARIO.read_text()
    start = text.index("price_path:")
    end = text.index("oracle:")
    scenario.write_text(
        text[:start] + "price_path:\n  kind: historical\n  file: prices.csv\n\n" + text[end:]
    )
    sweep = _sweep(
        tmp_path, scenario, seeds=1, key="venue.governance.pool_fee_rate: [0.0003, 0.0006]"
    )
    first = load_sweep(sweep).fingerprint
    assert load_sweep(sweep).fingerprint == first
    out = tmp_path / "out"
    run_sweep(load_sweep(sweep), out, workers=1)
    data.write_text(data.read_text().replace(",2010\n", ",1500\n"))
    assert load_sweep(sweep).fingerprint != first
    proc = cli("sweep", str(sweep), "--out", str(out), "--resume", "--workers", "1")
    assert proc.returncode == 2 and "a data file" in proc.stderr


def test_the_fingerprint_follows_the_source(tmp_path: Path, monkeypatch: object) -> None:
    import perpsim.run

    sweep = _sweep(tmp_path, seeds=1)
    first = load_sweep(sweep).fingerprint
    monkeypatch.setattr(perpsim.run, "source_sha256", lambda: "0" * 64)  # type: ignore[attr-defined]
    monkeypatch.setattr("perpsim.sweep.plan.source_sha256", lambda: "0" * 64)  # type: ignore[attr-defined]
    assert load_sweep(sweep).fingerprint != first


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, seeds=1)
    target = tmp_path / "file.txt"
    target.write_text("x")
    for out in (target, target / "sub"):
        proc = cli("sweep", str(sweep), "--out", str(out), "--workers", "1")
        assert proc.returncode == 2 and "not a folder" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    shutil.rmtree(tmp_path / "out", ignore_errors=True)


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                kids = Path(f"/proc/{p}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for k in map(int, kids):
                if k not in found:
                    found.add(k)
                    todo.append(k)
    return found


def _cmdlines(pids: set[int]) -> dict[int, str]:
    """The command lines of those of ``pids`` still running (one may exit while it is read: a
    short-lived child of the sweep, such as a ``git`` call for the manifest)."""
    out: dict[int, str] = {}
    for p in pids:
        try:
            out[p] = Path(f"/proc/{p}/cmdline").read_text(errors="replace")
        except OSError:
            continue
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_a_killed_sweep_leaves_no_process_behind(tmp_path: Path) -> None:
    """kill -9 of the sweep: its workers, the fork server and the resource tracker all exit."""
    sweep = _sweep(tmp_path, seeds=12)
    out = tmp_path / "out"
    command = ["sweep", str(sweep), "--out", str(out), "--quiet", "--workers", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "perpsim", *command],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        journal = out / JOURNAL
        if journal.exists() and journal.read_text().count("\n") >= 2:
            break
        assert proc.poll() is None, "the sweep ended early"
        time.sleep(0.05)
    running = _cmdlines(_descendants(proc.pid))
    family = set(running)
    commands = " ".join(running.values())
    assert "forkserver" in commands and "resource_tracker" in commands
    assert len(family) >= 4  # tracker, fork server, two workers
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.monotonic() + 20
    while any(_alive(p) for p in family) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in family if _alive(p)]


def test_validate_checks_a_sweep_file(tmp_path: Path) -> None:
    good = _sweep(tmp_path, seeds=2)
    proc = cli("validate", str(good), str(TINY_SCENARIO))
    assert proc.returncode == 0, proc.stderr
    assert f"OK {good} (sweep: 2 points x 2 seeds = 4 runs" in proc.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"scenario: {TINY_SCENARIO}\nparameters:\n  price_path.nope: [1, 2]\n")
    proc = cli("validate", str(bad))
    assert proc.returncode == 2 and "price_path.nope" in proc.stderr and "line 3" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_final_table_shows_the_safety_check_and_warns_about_few_seeds(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, seeds=2)
    sweep.write_text(sweep.read_text() + "metric: final_mark_price\n")
    command = ["sweep", str(sweep), "--out", str(tmp_path / "o"), "--workers", "1"]
    proc = subprocess.run(
        [sys.executable, "-m", "perpsim", *command],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    for column in ("p_insurance_fund_exhausted", "bad_debt_mean", "var95_bad_debt"):
        assert column in proc.stdout
    assert "2 seed(s) per point" in proc.stdout and "rough" in proc.stdout
