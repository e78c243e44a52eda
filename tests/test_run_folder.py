"""``perpsim run``'s output folder: checked before the run, whole or absent, never mixed.

Every test runs the command in a child process, as a user would, on the sweep tests' tiny
scenario (no agents, one day of 10-minute ticks: a run takes a fraction of a second).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO
from support import run_perpsim as cli

TINY = REPO / "tests" / "data" / "sweeps" / "tiny_scenario.yaml"


def _no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tmp: tmp / "file.txt", "is a file, not a folder"),
        (lambda tmp: tmp / "file.txt" / "sub", "lies under"),
        (lambda tmp: Path("/proc/self/perpsim-out"), "cannot write in"),
    ],
    ids=["a file", "under a file", "not writable"],
)
def test_bad_out_is_refused_before_the_run(tmp_path: Path, make: object, expected: str) -> None:
    (tmp_path / "file.txt").write_text("not a folder")
    out = make(tmp_path)  # type: ignore[operator]
    # Refused before the run: after it the result would be an exit 1 with a traceback.
    proc = cli("run", "black_thursday", "--out", str(out), "--quiet", timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr and f"--out {out}" in proc.stderr
    _no_traceback(proc)


def test_a_rerun_into_a_full_out_is_refused_and_overwrite_replaces_the_whole_folder(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    first = cli("run", str(TINY), "--out", str(out), "--no-plots", "--quiet", "--format", "csv")
    assert first.returncode == 0, first.stderr
    again = cli("run", str(TINY), "--out", str(out), "--no-plots", "--quiet", "--seed", "8")
    assert again.returncode == 2 and "--overwrite" in again.stderr
    _no_traceback(again)
    assert json.loads((out / "manifest.json").read_text())["seed"] == 7  # untouched
    replaced = cli(
        "run", str(TINY), "--out", str(out), "--no-plots", "--quiet", "--seed", "8", "--overwrite"
    )
    assert replaced.returncode == 0, replaced.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 8 and manifest["complete"] is True
    # nothing of the seed-7 run is left beside the seed-8 files, and no temporary file
    assert sorted(p.name for p in out.iterdir()) == sorted(manifest["files"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_overwrite_replaces_only_a_run_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    proc = cli("run", str(TINY), "--out", str(tmp_path), "--no-plots", "--quiet", "--overwrite")
    assert proc.returncode == 2 and "not a perpsim run" in proc.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"


KILL_WHILE_PLOTTING = """
import os, signal, sys
import perpsim.plots
from perpsim.cli import main

def killed(run_dir):
    os.kill(os.getpid(), signal.SIGKILL)

perpsim.plots.plot_run = killed
sys.exit(main(sys.argv[1:]))
"""


def test_a_run_killed_while_plotting_leaves_no_run_folder_and_its_leftover_is_refused(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", KILL_WHILE_PLOTTING, "run", str(TINY), "--out", str(out)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9
    assert not out.exists()  # not a folder that looks like a --no-plots run
    (partial,) = [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    for command in (("plot", str(partial)), ("report", str(partial)), ("replay", str(partial))):
        refused = cli(*command)
        assert refused.returncode == 2 and "incomplete run folder" in refused.stderr, command
        _no_traceback(refused)
    # the next run into the same --out succeeds and clears the killed run's leftover
    rerun = cli("run", str(TINY), "--out", str(out), "--no-plots", "--quiet")
    assert rerun.returncode == 0, rerun.stderr
    assert not partial.exists() and (out / "manifest.json").is_file()


def test_a_run_folder_missing_a_listed_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert cli("run", str(TINY), "--out", str(out), "--no-plots", "--quiet").returncode == 0
    (out / "events.parquet").unlink()
    proc = cli("replay", str(out))
    assert proc.returncode == 2 and "missing events.parquet" in proc.stderr
    _no_traceback(proc)


def test_output_files_follow_the_umask(tmp_path: Path) -> None:
    out = tmp_path / "run"
    old = os.umask(0o022)
    try:
        proc = cli("run", str(TINY), "--out", str(out), "--no-plots", "--quiet")
    finally:
        os.umask(old)
    assert proc.returncode == 0, proc.stderr
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert modes and set(modes.values()) == {0o644}, modes
    assert stat.S_IMODE(out.stat().st_mode) == 0o755


def test_a_closed_stdout_is_not_a_traceback(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "perpsim", "run", str(TINY), "--out", str(out), "--no-plots"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before anything is printed (`| head -0`)
    stderr = proc.stderr.read()
    proc.stderr.close()
    # 141 as after SIGPIPE (rich, which prints the table, exits 1 on a closed pipe itself)
    assert proc.wait(timeout=120) in (1, 141), stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
    assert json.loads((out / "manifest.json").read_text())["complete"] is True


def test_replay_of_a_run_folder_prints_its_verdict_and_writes_the_json_with_out(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    assert cli("run", str(TINY), "--out", str(out), "--no-plots", "--quiet").returncode == 0
    proc = cli("replay", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OK: the event log of") and len(proc.stdout) < 2000
    report = tmp_path / "replay.json"
    proc = cli("replay", str(out), "--out", str(report))
    assert proc.returncode == 0 and str(report) in proc.stdout
    doc = json.loads(report.read_text())
    assert doc["ok"] is True and doc["ledger"]["mismatches"] == []
    assert json.loads(cli("replay", str(out), "--json").stdout) == doc


def test_outputs_name_no_absolute_path_of_this_machine(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    rows = "".join(f"{1704067200 + 3600 * i},{2000 + i}\n" for i in range(30))
    (work / "data" / "prices.csv").write_text("timestamp,open\n" + rows)
    text = TINY.read_text()
    start, end = text.index("price_path:"), text.index("oracle:")
    (work / "scenario.yaml").write_text(
        text[:start] + "price_path:\n  kind: historical\n  file: data/prices.csv\n\n" + text[end:]
    )
    out = work / "run"
    proc = cli("run", str(work / "scenario.yaml"), "--out", str(out), "--quiet", cwd=work)
    assert proc.returncode == 0, proc.stderr
    report = cli("report", "run", cwd=work)
    assert report.returncode == 0, report.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["resolved_scenario"]["price_path"]["file"] == "data/prices.csv"
    (record,) = manifest["data_files"]
    assert record["file"] == "data/prices.csv" and len(record["sha256"]) == 64
    assert manifest["command"].startswith("perpsim run scenario.yaml --out run")
    for name in ("manifest.json", "report.html", "report.md"):
        body = (out / name).read_text()
        assert str(tmp_path) not in body, name
        assert str(REPO) not in body, name
    assert record["sha256"][:16] in (out / "report.md").read_text()
