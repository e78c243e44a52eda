"""``extends:``: a scenario file on top of another one, deep-merged.

Mappings merge key by key, lists are replaced, except ``agents``, whose populations merge by
``name``. A mapping whose ``kind`` / ``type`` / ``dist`` changes replaces the inherited one, and
setting one key of an exclusive group (``clock.duration`` / ``clock.ticks``, a whale's
``schedule`` / ``arrival_rate``) drops the inherited other one. Cycles are detected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from perpsim.errors import ConfigError
from perpsim.scenario.errors import config_error, show_value
from perpsim.scenario.yaml import (
    Origin,
    PathElem,
    YDict,
    YList,
    copy_tree,
    parse_yaml,
    read_text_file,
)

__all__ = ["SCENARIO_DIR", "drop_exclusive", "load_with_extends"]


def _scenario_dir() -> Path:
    """Where the shipped scenarios are: in the package once installed, else in the checkout.

    A wheel installs the repository's ``scenarios/`` (its YAML files, ``data/`` and
    ``replay/``) as ``perpsim/scenarios/`` (package data, see ``pyproject.toml``); a checkout
    or an editable install reads the repository's folder.
    """
    package = Path(__file__).resolve().parents[1]
    installed = package / "scenarios"
    return installed if installed.is_dir() else package.parent / "scenarios"


#: The folder of the scenarios shipped with perpsim.
SCENARIO_DIR: Final[Path] = _scenario_dir()


def _read_yaml_file(path: Path, source: str) -> YDict:
    text = read_text_file(path, source, "scenario file")
    data = parse_yaml(text, Origin(source, None, path))
    if data is None:
        raise ConfigError(
            f"{source}: (top level): the file is empty (allowed: a mapping with at least"
            " name, clock and price_path)"
        )
    if not isinstance(data, YDict):
        raise ConfigError(
            f"{source}: (top level): a scenario must be a mapping of keys"
            f" (got {_kind_of(data)} {show_value(data)}; line 1)"
        )
    return data


def _kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a text"
    return f"a {type(value).__name__}"


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


_DISCRIMINATOR_KEYS: Final = ("kind", "type", "dist")


def _exclusive_groups(path: Sequence[PathElem]) -> tuple[tuple[str, ...], ...]:
    """Keys of the mapping at ``path`` of which setting one drops the inherited others."""
    if tuple(path) == ("clock",):
        return (("duration", "ticks"),)
    if len(path) == 3 and path[0] == "agents" and path[2] == "params":
        return (("schedule", "arrival_rate"),)
    return ()


def drop_exclusive(
    target: dict[str, Any], setting: Iterable[str], path: Sequence[PathElem]
) -> None:
    """Removes from ``target`` (the mapping at ``path``) the keys that ``setting`` makes moot.

    Setting ``clock.duration`` drops ``clock.ticks`` and vice versa (and a whale's ``schedule``
    / ``arrival_rate``), so a file or an override can switch from one to the other.
    """
    setting = set(setting)
    for group in _exclusive_groups(path):
        if setting & set(group):
            for key in group:
                if key not in setting:
                    target.pop(key, None)


def _merge(base: Any, over: Any, path: tuple[PathElem, ...]) -> Any:
    """Deep-merges ``over`` on top of ``base`` (the rules of ``extends``)."""
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        for disc in _DISCRIMINATOR_KEYS:
            if disc in base and disc in over and base[disc] != over[disc]:
                return copy_tree(over)
        result: YDict = copy_tree(base)
        drop_exclusive(result, over.keys(), path)
        for key, value in over.items():
            result[key] = (
                _merge(result[key], value, (*path, key)) if key in result else copy_tree(value)
            )
            if isinstance(over, YDict) and key in over.origins:
                result.origins[key] = over.origins[key]
        return result
    if path == ("agents",) and isinstance(base, list) and isinstance(over, list):
        return _merge_populations(base, over)
    return copy_tree(over)


def _merge_populations(base: list[Any], over: list[Any]) -> YList:
    result: YList = copy_tree(base)
    by_name = {
        item["name"]: i
        for i, item in enumerate(result)
        if isinstance(item, Mapping) and isinstance(item.get("name"), str)
    }
    for j, item in enumerate(over):
        origin = over.origins[j] if isinstance(over, YList) else None
        name = item.get("name") if isinstance(item, Mapping) else None
        if isinstance(name, str) and name in by_name:
            i = by_name[name]
            result[i] = _merge(result[i], item, ("agents", name))
            result.origins[i] = origin
        else:
            result.append(copy_tree(item))
            result.origins.append(origin)
    return result


def _resolve_extends(child: Path, target: str) -> Path | None:
    candidate = (child.parent / target).resolve()
    if candidate.is_file():
        return candidate
    if len(Path(target).parts) == 1:
        for name in (target, f"{target}.yaml"):
            shipped = SCENARIO_DIR / name
            if shipped.is_file():
                return shipped.resolve()
    return None


def load_with_extends(path: Path, source: str, chain: tuple[Path, ...]) -> YDict:
    """Reads a scenario file and, recursively, the files it extends, merged.

    Args:
        path: The file.
        source: How to name it in messages.
        chain: The files already being loaded (for cycle detection).

    Returns:
        The merged raw mapping.

    Raises:
        ConfigError: The file or one it extends is missing, not valid YAML, or ``extends``
            is broken or cyclic.
    """
    data = _read_yaml_file(path, source)
    if "extends" not in data:
        return data
    target = data.pop("extends")
    origin = data.origins.pop("extends", None)
    line = f"; line {origin.line}" if origin and origin.line else ""
    if not isinstance(target, str) or not target.strip():
        raise ConfigError(
            f"{source}: extends: must be the path of another scenario file"
            f" (got {show_value(target)}; allowed: a relative path such as baseline.yaml{line})"
        )
    parent = _resolve_extends(path, target)
    if parent is None:
        raise ConfigError(
            f"{source}: extends: file not found (got {target!r}; looked for"
            f" {(path.parent / target).resolve()} and in {SCENARIO_DIR}{line})"
        )
    resolved_chain = (*chain, path.resolve())
    if parent in resolved_chain:
        cycle = " -> ".join(p.name for p in (*resolved_chain, parent))
        raise ConfigError(
            f"{source}: extends: extends cycle {cycle} (got {target!r}; allowed: a file that does"
            f" not extend this one{line})"
        )
    try:
        base = load_with_extends(parent, _display(parent), resolved_chain)
    except ConfigError as exc:
        raise config_error(
            [f"{source}: extends: {line}" for line in str(exc).splitlines()]
        ) from None
    merged: YDict = _merge(base, data, ())
    return merged
