"""The wheel ships every package, the report's templates and the shipped scenarios.

The list of packages in pyproject is explicit; the last test builds a wheel and runs it from
outside the checkout, as a user who ran ``pip install .`` would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _config() -> dict[str, object]:
    with (REPO / "pyproject.toml").open("rb") as f:
        tool: dict[str, object] = tomllib.load(f)["tool"]["setuptools"]
    return tool


def test_every_package_directory_is_listed() -> None:
    listed = set(_config()["packages"])  # type: ignore[arg-type]
    found = {
        ".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "perpsim").rglob("__init__.py")
    }
    found |= {
        ".".join(("perpsim", *p.parent.relative_to(REPO).parts))
        for p in (REPO / "agents").rglob("__init__.py")
    }
    # data packages: folders mapped into the package by package-dir, with no Python in them
    data = {
        name
        for name, folder in _config()["package-dir"].items()  # type: ignore[attr-defined]
        if not (REPO / folder / "__init__.py").exists()
    }
    assert data == {"perpsim.scenarios"}
    assert found - listed == set(), "packages missing from pyproject.toml"
    assert listed - found - data == set(), "pyproject.toml lists packages that do not exist"


def test_report_templates_are_package_data() -> None:
    data = _config()["package-data"]
    patterns = data["perpsim.report"]  # type: ignore[index]
    templates = REPO / "perpsim" / "report" / "templates"
    files = [p for p in templates.iterdir() if p.is_file()]
    assert files
    for f in files:
        assert any(f.match(pattern.split("/")[-1]) for pattern in patterns), f.name


def _build_tree(dst: Path) -> Path:
    """A copy of what the wheel is built from (the checkout itself stays free of build files)."""
    src = dst / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in ("perpsim", "agents", "scenarios"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    return src


@pytest.mark.slow
def test_a_wheel_install_finds_the_shipped_scenarios(tmp_path: Path) -> None:
    src = _build_tree(tmp_path)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    build = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("perpsim-*.whl")
    site = tmp_path / "site"
    install = subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    shutil.rmtree(src)  # nothing may come from the copy the wheel was built from
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # -P: the working directory is not on sys.path (only the installed package is found)
    env["PYTHONPATH"] = str(site)

    def perpsim(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-P", "-m", "perpsim", *args],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    where = perpsim("scenarios")
    assert where.returncode == 0, where.stderr
    assert "black_thursday.yaml" in where.stdout
    check = subprocess.run(
        [
            sys.executable,
            "-P",
            "-c",
            "import perpsim, perpsim.scenario as s; print(perpsim.__file__); print(s.SCENARIO_DIR)",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.stdout.splitlines() == [
        str(site / "perpsim" / "__init__.py"),
        str(site / "perpsim" / "scenarios"),
    ], check.stderr
    # scenarios that read price data (validate builds their market path), a run, a replay
    valid = perpsim("validate", "black_thursday", "may19_2021")
    assert valid.returncode == 0, valid.stderr
    out = elsewhere / "run"
    run = perpsim("run", "baseline", "--set", "clock.duration=1h", "--out", str(out), "--quiet")
    assert run.returncode == 0, run.stderr
    assert (out / "plots" / "prices.png").is_file()
    replay = perpsim(
        "replay",
        str(site / "perpsim" / "scenarios" / "replay" / "social_loss_worked_example.yaml"),
        "--quiet",
    )
    assert replay.returncode == 0, replay.stderr
