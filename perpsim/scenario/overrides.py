"""Overrides: ``--set a.b.c=value`` and a sweep's typed values, checked against the schema."""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from perpsim.engine.core.config import Problem, unknown_name_message
from perpsim.errors import ConfigError
from perpsim.scenario.errors import config_error, format_problem, render_path, show_value
from perpsim.scenario.extends import drop_exclusive
from perpsim.scenario.introspect import (
    is_model,
    literal_values,
    model_of,
    strip_annotated,
    union_members,
)
from perpsim.scenario.schema import Scenario
from perpsim.scenario.yaml import Origin, PathElem, YDict, YList, copy_tree, parse_yaml

__all__ = ["apply_overrides", "apply_typed_overrides"]


class _OverrideError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _member_for(members: Sequence[Any], node: Any) -> Any:
    """The union member matching ``node`` (by its discriminator), or None."""
    if not isinstance(node, Mapping):
        simple = [
            m for m in members if model_of(m) is None and union_members(strip_annotated(m)) is None
        ]
        return simple[0] if simple else None
    for member in members:
        base = strip_annotated(member)
        inner = union_members(base)
        if inner is not None:
            found = _member_for(inner, node)
            if found is not None:
                return found
            continue
        if is_model(base):
            for field in base.model_fields:
                values = literal_values(base, field)
                if values and field in node and node[field] in values:
                    return base
    return None


def _all_models(members: Sequence[Any]) -> list[Any]:
    models: list[Any] = []
    for member in members:
        base = strip_annotated(member)
        inner = union_members(base)
        if inner is not None:
            models += _all_models(inner)
        elif is_model(base):
            models.append(base)
    return models


def _set_in(raw: YDict, key_text: str, value: Any, origin: Origin, *, typed: bool = False) -> None:
    """Sets one key path of ``raw``; ``value`` is YAML text, or a Python value if ``typed``."""
    parts = key_text.split(".")
    if not key_text or any(not p.strip() for p in parts):
        raise _OverrideError(
            Problem((), f"bad key {key_text!r}", allowed="dotted keys such as clock.tick")
        )
    parts = [p.strip() for p in parts]
    node: Any = raw
    tp: Any = Scenario
    walked: list[PathElem] = []
    # The keys of a venue's free-form ``governance`` mapping, once the walk enters one.
    governance_keys: tuple[str, ...] | None = None

    def read(target: Any, path: Sequence[PathElem]) -> Any:
        return copy_tree(value) if typed else _value_at(value, target, origin, path)

    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        shown = tuple(parts[:depth])  # the path as the user wrote it
        here = (*shown, part)
        base = strip_annotated(tp) if tp is not None else None
        members = union_members(base) if base is not None else None
        while members is not None:
            chosen = _member_for(members, node) if len(members) > 1 else members[0]
            if chosen is None:
                models = _all_models(members)
                owner = next((m for m in models if part in m.model_fields), None)
                if owner is None:
                    fields = sorted({f for m in models for f in m.model_fields})
                    raise _OverrideError(
                        Problem(
                            here,
                            unknown_name_message("key", part, fields),
                            allowed=", ".join(fields),
                        )
                    )
                chosen = owner
            base = strip_annotated(chosen)
            members = union_members(base)
        if base is None:
            raise _OverrideError(Problem(here, "cannot be set: unknown schema"))
        if typing.get_origin(base) in (tuple, list):
            if not isinstance(node, list):
                raise _OverrideError(Problem(shown, "is not a list in the scenario", got=node))
            index = _list_index(node, part, shown, is_agents=tuple(walked) == ("agents",))
            walked.append(index)
            if last:
                node[index] = read(typing.get_args(base)[0], here)
                if isinstance(node, YList):
                    node.origins[index] = origin
                return
            node = node[index]
            tp = typing.get_args(base)[0]
            continue
        if is_model(base):
            if base is Scenario and part == "extends":
                raise _OverrideError(
                    Problem(
                        here,
                        "cannot be overridden: extends is resolved before overrides apply",
                        allowed="keys of the resolved scenario",
                    )
                )
            if part not in base.model_fields:
                fields = list(base.model_fields)
                raise _OverrideError(
                    Problem(
                        here, unknown_name_message("key", part, fields), allowed=", ".join(fields)
                    )
                )
            child_tp: Any = base.model_fields[part].annotation
            next_keys = getattr(base, "governance_keys", None) if part == "governance" else None
        elif governance_keys is not None:
            if part not in governance_keys:
                raise _OverrideError(
                    Problem(
                        here,
                        unknown_name_message("governance key", part, governance_keys),
                        allowed=", ".join(governance_keys),
                    )
                )
            child_tp = float | str
            next_keys = None
        else:
            raise _OverrideError(
                Problem(
                    here,
                    f"{render_path(shown)} is a value, not a mapping with keys",
                    got=node,
                )
            )
        if not isinstance(node, dict):
            raise _OverrideError(Problem(shown, "is not a mapping in the scenario", got=node))
        if last:
            drop_exclusive(node, [part], walked)
            node[part] = read(child_tp, here)
            if isinstance(node, YDict):
                node.origins[part] = origin
            return
        if node.get(part) is None:
            node[part] = YDict()
            if isinstance(node, YDict):
                node.origins[part] = origin
        node = node[part]
        tp = child_tp
        governance_keys = next_keys
        walked.append(part)


def _list_index(node: list[Any], part: str, shown: Sequence[PathElem], *, is_agents: bool) -> int:
    if re.fullmatch(r"-?\d+", part):
        index = int(part)
        if not 0 <= index < len(node):
            raise _OverrideError(
                Problem(
                    (*shown, part),
                    "index out of range",
                    got=index,
                    allowed=f"0 to {len(node) - 1}" if node else "(the list is empty)",
                )
            )
        return index
    names = [item.get("name") for item in node if isinstance(item, Mapping)]
    if is_agents:
        if part in names:
            return names.index(part)
        valid = [n for n in names if isinstance(n, str)]
        raise _OverrideError(
            Problem(
                (*shown, part),
                unknown_name_message("population", part, valid),
                allowed=", ".join(valid) or "(no populations)",
            )
        )
    raise _OverrideError(
        Problem((*shown, part), "a list element is addressed by its index", got=part)
    )


def _value_at(text: str, tp: Any, origin: Origin, path: Sequence[PathElem]) -> Any:
    """Reads an override value as YAML (text fields keep the text as written).

    Args:
        text: The text after ``=``.
        tp: The schema type of the target (plain ``str`` targets are not parsed).
        origin: Where the override came from (for messages).
        path: The key path being set (for messages).

    Returns:
        The value.

    Raises:
        _OverrideError: The value is not valid YAML.
    """
    if strip_annotated(tp) is str:
        return text
    if not text.strip():
        return None
    try:
        return parse_yaml(text, origin)
    except ConfigError as exc:
        detail = str(exc).split("invalid YAML: ", 1)[-1]
        raise _OverrideError(
            Problem(tuple(path), f"cannot read the value as YAML: {detail}", got=text)
        ) from None


def apply_overrides(
    raw: Mapping[str, Any], overrides: Sequence[str], *, source: str = "--set"
) -> dict[str, Any]:
    """Applies ``KEY=VALUE`` overrides to a raw (extends-resolved) scenario.

    Args:
        raw: The scenario as loaded by :func:`load_raw_scenario` (not modified).
        overrides: Items like ``"clock.tick=30"``, ``"agents.noise.count=50"`` or
            ``"venue.governance.initial_margin_rate=0.05"``. The value is read as YAML (so ``true``,
            ``1e-3``, ``[1, 2]`` and ``{dist: uniform, low: 1, high: 2}`` work); an empty value
            is null. List elements are addressed by index; ``agents`` also by population name.
            Setting ``clock.duration`` drops ``clock.ticks`` and vice versa.
        source: How to name the scenario in messages.

    Returns:
        A new raw scenario.

    Raises:
        ConfigError: A key does not exist in the schema (with "did you mean"), an index is out of
            range, or a value is not valid YAML; one line per problem.
    """
    result: YDict = copy_tree(raw)
    lines: list[str] = []
    for item in overrides:
        origin = Origin(f"--set {item}")
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise _OverrideError(
                    Problem((), "an override must be KEY=VALUE", got=item, allowed="a.b.c=value")
                )
            _set_in(result, key.strip(), value, origin)
        except _OverrideError as exc:
            lines.append(format_problem(exc.problem, source, origin))
    if lines:
        raise config_error(lines)
    return result


def apply_typed_overrides(
    raw: Mapping[str, Any], values: Mapping[str, Any], *, source: str = "--set"
) -> dict[str, Any]:
    """Applies ``{key path: value}`` overrides whose values are already Python values.

    The keys are checked exactly as :func:`apply_overrides` checks them; the values are used as
    given (``0.05`` stays the float 0.05: nothing goes through YAML text). A sweep sets its
    points this way.

    Args:
        raw: The scenario as loaded by :func:`load_raw_scenario` (not modified).
        values: Key paths such as ``"venue.governance.maintenance_margin_rate"`` and their values.
        source: How to name the scenario in messages.

    Returns:
        A new raw scenario.

    Raises:
        ConfigError: A key does not exist in the schema or an index is out of range.
    """
    result: YDict = copy_tree(raw)
    lines: list[str] = []
    for key, value in values.items():
        origin = Origin(f"--set {key}={show_value(value)}")
        try:
            _set_in(result, key.strip(), value, origin, typed=True)
        except _OverrideError as exc:
            lines.append(format_problem(exc.problem, source, origin))
    if lines:
        raise config_error(lines)
    return result
