"""``perpsim validate`` and ``perpsim scenarios``, run as real commands in a subprocess."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support import REPO
from support import run_perpsim as perpsim

BROKEN_DIR = REPO / "tests" / "data" / "broken_scenarios"
BROKEN_FILES = sorted(BROKEN_DIR.glob("*.yaml"))
SHIPPED_FILES = sorted((REPO / "scenarios").glob("*.yaml"))


def expectations(path: Path) -> list[str]:
    found = re.findall(r"^# expect: (.+)$", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return [e.strip() for e in found]


def test_every_broken_scenario_is_rejected_with_its_key_and_no_traceback() -> None:
    assert BROKEN_FILES, "the broken-scenario corpus was not found"
    names = [str(p.relative_to(REPO)) for p in BROKEN_FILES]
    result = perpsim("validate", *names)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""  # no file printed OK
    lines = result.stderr.splitlines()
    for name, path in zip(names, BROKEN_FILES, strict=True):
        own = "\n".join(line for line in lines if line.startswith(f"{name}: "))
        assert own, f"no error reported for {name}"
        for expected in expectations(path):
            assert expected in own, f"{name}: {expected!r} not in:\n{own}"


@pytest.mark.parametrize(
    "name",
    [
        "yaml_syntax_error",
        "yaml_empty_file",
        "extends_cycle_a",
        "gov_mm_not_below_im",
        "unknown_top_level_key",
        "event_set_governance_sequence",
    ],
)
@pytest.mark.slow
def test_single_broken_file_exits_2(name: str) -> None:
    path = BROKEN_DIR / f"{name}.yaml"
    result = perpsim("validate", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    for expected in expectations(path):
        assert expected in result.stderr


def test_shipped_scenarios_validate() -> None:
    result = perpsim("validate", *[str(p.relative_to(REPO)) for p in SHIPPED_FILES])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    for path in SHIPPED_FILES:
        assert f"OK {path.relative_to(REPO)}" in result.stdout


def test_validate_accepts_bare_names_and_reports_each_file() -> None:
    result = perpsim("validate", "black_thursday", "tests/data/broken_scenarios/seed_negative.yaml")
    assert result.returncode == 2
    assert "OK black_thursday" in result.stdout
    assert "tests/data/broken_scenarios/seed_negative.yaml: seed: must be >= 0" in result.stderr


def test_missing_file_exits_2_without_traceback() -> None:
    result = perpsim("validate", "no/such/scenario.yaml")
    assert result.returncode == 2
    assert "no/such/scenario.yaml: file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_scenarios_command_lists_shipped_scenarios() -> None:
    result = perpsim("scenarios")
    assert result.returncode == 0, result.stderr
    assert SHIPPED_FILES, "no shipped scenario was found"
    for path in SHIPPED_FILES:
        assert path.name in result.stdout
    assert "Calm ETH market" in result.stdout
    assert "The 2021-05-19 crash" in result.stdout
