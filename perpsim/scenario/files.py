"""Scenario files: finding them, reading them (with ``extends``), overriding and validating."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from perpsim.engine.core.config import did_you_mean
from perpsim.errors import ConfigError
from perpsim.scenario.errors import config_error, format_problem, show_value
from perpsim.scenario.extends import SCENARIO_DIR, load_with_extends
from perpsim.scenario.locate import problems_from_validation, with_origin, with_population_name
from perpsim.scenario.overrides import apply_overrides
from perpsim.scenario.schema import Scenario, follow_registry
from perpsim.scenario.yaml import YDict, copy_tree

__all__ = [
    "load_raw_scenario",
    "load_scenario",
    "resolve_scenario_path",
    "scenario_from_raw",
    "shipped_scenarios",
]


#: Folders of :data:`SCENARIO_DIR` whose files are shipped scenarios too (their bare names are
#: found like the top level's: ``perpsim run ftx_2022`` runs ``incidents/ftx_2022.yaml``).
SHIPPED_SUBFOLDERS: tuple[str, ...] = ("incidents", "attacks")


def shipped_scenarios() -> list[Path]:
    """The scenario files shipped in :data:`SCENARIO_DIR` and its :data:`SHIPPED_SUBFOLDERS`,
    the top level first, each folder sorted by name."""
    out = sorted(SCENARIO_DIR.glob("*.yaml"))
    for folder in SHIPPED_SUBFOLDERS:
        out += sorted((SCENARIO_DIR / folder).glob("*.yaml"))
    return out


def resolve_scenario_path(spec: str | Path) -> Path:
    """Finds a scenario file: a path, or the bare name of a shipped scenario.

    Args:
        spec: ``path/to/file.yaml``, or ``black_thursday`` / ``black_thursday.yaml`` for
            ``scenarios/black_thursday.yaml``.

    Returns:
        The path of the file.

    Raises:
        ConfigError: No such file.
    """
    path = Path(spec)
    if path.is_file():
        return path
    if path.exists():
        raise ConfigError(f"{spec}: is a directory, not a scenario file")
    folders = ("", *SHIPPED_SUBFOLDERS) if len(path.parts) == 1 else ("",)
    if len(path.parts) == 1 or (len(path.parts) == 2 and path.parts[0] in SHIPPED_SUBFOLDERS):
        for folder in folders:
            for name in (str(path), f"{path}.yaml"):
                shipped = SCENARIO_DIR / folder / name
                if shipped.is_file():
                    return shipped
    names = [p.stem for p in shipped_scenarios()]
    suggestion = did_you_mean(path.stem, names)
    hint = f"; did you mean {suggestion!r}?" if suggestion else ""
    return_hint = f" (shipped scenarios: {', '.join(names)})" if names else ""
    raise ConfigError(f"{spec}: file not found{hint}{return_hint}")


def load_raw_scenario(path: str | Path) -> dict[str, Any]:
    """Reads a scenario file and resolves ``extends``, without validating it.

    Args:
        path: A file, or the bare name of a shipped scenario.

    Returns:
        The merged raw mapping (it remembers the file and line of every entry).

    Raises:
        ConfigError: The file is missing or not valid YAML, or ``extends`` is broken.
    """
    resolved = resolve_scenario_path(path)
    source = str(path)
    return load_with_extends(resolved, source, ())


def _resolve_data_paths(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """Makes a relative ``price_path.file`` (and ``assets.<name>.path.file``) relative to the
    file that set it."""
    out: Any = raw
    where: list[tuple[str, ...]] = [("price_path",)]
    assets = raw.get("assets")
    if isinstance(assets, Mapping):
        where += [("assets", str(name), "path") for name in assets]
    for keys in where:
        node: Any = out
        for key in keys:
            node = node.get(key) if isinstance(node, Mapping) else None
        if not isinstance(node, Mapping) or not isinstance(node.get("file"), str):
            continue
        origin = node.origins.get("file") if isinstance(node, YDict) else None
        file = Path(node["file"])
        if file.is_absolute() or origin is None or origin.path is None:
            continue
        if out is raw:
            out = copy_tree(raw)
        target = out
        for key in keys:
            target = target[key]
        target["file"] = str((origin.path.parent / file).resolve())
    resolved: Mapping[str, Any] = out
    return resolved


def scenario_from_raw(raw: Mapping[str, Any], source: str = "<scenario>") -> Scenario:
    """Validates a raw scenario.

    Args:
        raw: A mapping as returned by :func:`load_raw_scenario` / :func:`apply_overrides` (or
            any plain mapping; relative data files then resolve against the working directory).
        source: How to name the scenario in messages.

    Returns:
        The frozen scenario.

    Raises:
        ConfigError: One line per problem, ``SOURCE: key.path: message (got ...; allowed ...)``.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{source}: (top level): a scenario must be a mapping (got {show_value(raw)})"
        )
    follow_registry()
    try:
        return Scenario.model_validate(_resolve_data_paths(raw))
    except ValidationError as err:
        problems = problems_from_validation(err)
    lines: list[str] = []
    for problem in problems:
        located, origin = with_origin(problem, raw, source)
        located = with_population_name(located, raw)
        lines.append(format_problem(located, source, origin))
    raise config_error(lines or [f"{source}: (top level): invalid scenario"])


def load_scenario(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Loads, overrides and validates a scenario file.

    Args:
        path: A file, or the bare name of a shipped scenario (``black_thursday``).
        overrides: ``KEY=VALUE`` items applied after ``extends`` (see :func:`apply_overrides`).

    Returns:
        The frozen scenario.

    Raises:
        ConfigError: The message lists every problem, one per line, each
            ``FILE: key.path: message (got VALUE; allowed ...)``.
    """
    source = str(path)
    raw = load_raw_scenario(path)
    if overrides:
        raw = apply_overrides(raw, overrides, source=source)
    return scenario_from_raw(raw, source)
