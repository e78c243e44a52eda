"""A run is the same in every process: no output may depend on the interpreter's hash seed.

The GLP vault family once walked a set of asset names when it booked internal hedges, so the
order of its float sums (and the last digits of every vault's value) changed from one process to
the next: the same scenario and seed wrote different files. Two child processes with different
``PYTHONHASHSEED`` must write the same bytes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support import REPO


def run_with_hash_seed(seed: str, out: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "perpsim",
            "run",
            "scenarios/glp_vaults_crash_d8x.yaml",
            "--out",
            str(out),
            "--quiet",
            "--no-plots",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": seed},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_glp_vaults_on_d8x_write_the_same_bytes_whatever_the_hash_seed(tmp_path: Path) -> None:
    run_with_hash_seed("1", tmp_path / "a")
    run_with_hash_seed("3", tmp_path / "b")
    for name in ("vaults.parquet", "events.parquet", "timeseries.parquet", "accounts.parquet"):
        a, b = (tmp_path / d / name for d in ("a", "b"))
        assert a.read_bytes() == b.read_bytes(), name
