"""``perpsim validate`` warns about the traps of a scenario written from scratch.

Each trap is a valid scenario that silently does something else than meant; the warning goes to
stderr and the exit code stays 0. The shipped from-scratch example validates without warnings.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import REPO
from support import run_perpsim as cli

EXAMPLE = REPO / "docs" / "examples" / "from_scratch.yaml"


def test_the_from_scratch_example_validates_without_warnings() -> None:
    proc = cli("validate", str(EXAMPLE))
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            (
                "    type: arbitrageur\n    count: 3",
                "    type: arbitrageur\n    count: 0",
            ),
            "no arbitrageur",
        ),
        (
            ("    type: liquidator\n    count: 2", "    type: liquidator\n    count: 0"),
            "no liquidator",
        ),
        (("    lot_size: 0.001\n    trading_lot_size: 0.01\n", ""), "lot_size: 1e-18"),
    ],
    ids=["no arbitrageur", "no liquidator", "default lot size"],
)
def test_each_trap_is_warned_about(tmp_path: Path, edit: tuple[str, str], expected: str) -> None:
    text = EXAMPLE.read_text()
    assert edit[0] in text
    path = tmp_path / "trap.yaml"
    path.write_text(text.replace(edit[0], edit[1]))
    proc = cli("validate", str(path))
    assert proc.returncode == 0, proc.stderr
    assert f"{path}: warning:" in proc.stderr and expected in proc.stderr, proc.stderr
    assert proc.stderr.count("warning:") == 1
