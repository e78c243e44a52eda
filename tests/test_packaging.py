"""The wheel ships every package and the report's templates (the list in pyproject is explicit)."""

from __future__ import annotations

import tomllib
from pathlib import Path

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
    assert found - listed == set(), "packages missing from pyproject.toml"
    assert listed - found == set(), "pyproject.toml lists packages that do not exist"


def test_report_templates_are_package_data() -> None:
    data = _config()["package-data"]
    patterns = data["perpsim.report"]  # type: ignore[index]
    templates = REPO / "perpsim" / "report" / "templates"
    files = [p for p in templates.iterdir() if p.is_file()]
    assert files
    for f in files:
        assert any(f.match(pattern.split("/")[-1]) for pattern in patterns), f.name
