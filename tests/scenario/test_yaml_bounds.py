"""Alias bombs ("billion laughs") are refused by the one YAML loader, before any merge.

The expansion happens where a tree is copied: ``extends`` merges, a sweep's points, a replay.
Each check runs the command in a child process under a 2 GB address-space limit, so that the
regression it guards against fails the test instead of exhausting the machine.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO

from perpsim.errors import ConfigError
from perpsim.scenario.yaml import MAX_EXPANDED_NODES, expanded_size, load_yaml_text

#: Nine levels of ten aliases each: 10**10 values once expanded, from a dozen lines.
BOMB = "\n".join(
    ["lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * 10) + "]" for i in range(1, 10)]
)


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def _perpsim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perpsim", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limited,
    )


def _bomb_scenario(tmp_path: Path) -> Path:
    path = tmp_path / "bomb.yaml"
    path.write_text(f"extends: baseline.yaml\ndescription: x\n{BOMB}\n")
    return path


@pytest.mark.parametrize("command", ["validate", "run"])
def test_scenario_with_extends(tmp_path: Path, command: str) -> None:
    proc = _perpsim(command, str(_bomb_scenario(tmp_path)))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "aliases" in proc.stderr and "Traceback" not in proc.stderr


def test_sweep_file(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"scenario: baseline\nparameters:\n  price_path.sigma: [0.3]\n{BOMB}\n")
    proc = _perpsim("sweep", str(sweep), "--out", str(tmp_path / "out"), "--workers", "1")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "aliases" in proc.stderr and "Traceback" not in proc.stderr


def test_replay_file(tmp_path: Path) -> None:
    replay = tmp_path / "replay.yaml"
    replay.write_text(f"ops: []\n{BOMB}\n")
    proc = _perpsim("replay", str(replay))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "aliases" in proc.stderr and "Traceback" not in proc.stderr


def test_recursive_alias_and_the_count() -> None:
    with pytest.raises(ConfigError, match="aliases"):
        load_yaml_text("a: &x [1, *x]\n", "rec.yaml")
    ok = "base: &b {x: 1, y: [1, 2]}\nc: *b\nd: *b\n"
    assert load_yaml_text(ok, "ok.yaml")[0]["d"] == {"x": 1, "y": [1, 2]}
    import yaml

    node = yaml.compose(ok)
    assert node is not None
    # root + 3 keys + (mapping + 2 keys + 1 + list + 2 items) three times
    assert expanded_size(node) == 1 + 3 + 3 * 7
    assert expanded_size(yaml.compose(BOMB)) == MAX_EXPANDED_NODES + 1  # type: ignore[arg-type]
