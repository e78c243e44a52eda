"""Other ``--out`` forms a user types: empty, a broken link, a folder full of other files.

``--out ''`` used to mean the working directory (a run wrote there, a sweep put its tables
among the user's files), a sweep into any non-empty folder mixed its tables with what was
there, and a broken symbolic link was reported as "File exists".
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import REPO, PerpsimCLI

TINY = REPO / "tests" / "data" / "sweeps" / "tiny_scenario.yaml"


def sweep_file(tmp_path: Path) -> Path:
    path = tmp_path / "sw.yaml"
    path.write_text(
        f"name: sw\nscenario: {TINY}\n"
        "parameters:\n  venue.governance.pool_fee_rate: [0.0003, 0.0006]\nseeds: 1\n"
    )
    return path


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_empty_out_and_a_broken_link_are_refused(
    tmp_path: Path, perpsim_cli: PerpsimCLI, command: str
) -> None:
    target = str(TINY) if command == "run" else str(sweep_file(tmp_path))
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for out, message in (("", "--out is empty"), ("dangling", "is a broken symbolic link")):
        proc = perpsim_cli(command, target, "--out", out, "--quiet", cwd=tmp_path)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr
    # Nothing was written in the working directory.
    expected = {"dangling", "sw.yaml"} if command == "sweep" else {"dangling"}
    assert {p.name for p in tmp_path.iterdir()} == expected


def test_a_sweep_refuses_a_folder_of_other_files(tmp_path: Path, perpsim_cli: PerpsimCLI) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    proc = perpsim_cli("sweep", str(sweep_file(tmp_path)), "--out", str(out), "--quiet")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "holds files that are not a perpsim sweep (notes.txt)" in proc.stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
