"""From pydantic's errors to problems at the user's key paths, and to where each was written."""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final

from pydantic import Tag, ValidationError

from perpsim.agents.params import format_number
from perpsim.engine.core.config import MISSING, Problem, ProblemsError, unknown_name_message
from perpsim.scenario.errors import show_value
from perpsim.scenario.introspect import (
    is_model,
    literal_values,
    model_of,
    strip_annotated,
    union_members,
)
from perpsim.scenario.schema import Scenario
from perpsim.scenario.yaml import Origin, PathElem, origin_for

__all__ = ["problems_from_validation", "with_origin", "with_population_name"]


def _matches_label(member: Any, label: PathElem) -> bool:
    if typing.get_origin(member) is Annotated and any(
        isinstance(m, Tag) and m.tag == label for m in typing.get_args(member)[1:]
    ):
        return True
    base = strip_annotated(member)
    if is_model(base):
        return any(label in literal_values(base, f) for f in base.model_fields)
    return getattr(base, "__name__", None) == label


def _locate(loc: Sequence[PathElem]) -> tuple[list[PathElem], Any]:
    """Maps a pydantic ``loc`` to a key path (union labels removed) and the type found there."""
    tp: Any = Scenario
    path: list[PathElem] = []
    i = 0
    while i < len(loc):
        elem = loc[i]
        if tp is None:
            path.append(elem)
            i += 1
            continue
        base = strip_annotated(tp)
        members = union_members(base)
        if members is not None:
            if len(members) == 1:
                tp = members[0]
                continue
            chosen = next((m for m in members if _matches_label(m, elem)), None)
            if chosen is not None:
                tp = chosen
                i += 1
            else:
                tp = None
            continue
        if is_model(base):
            info = base.model_fields.get(elem) if isinstance(elem, str) else None
            tp = info.annotation if info is not None else None
            if info is not None and info.discriminator is not None:
                # A discriminated union of one member (one registered venue) is that model, but
                # pydantic still puts its tag in ``loc``.
                member = strip_annotated(tp)
                if is_model(member) and i + 1 < len(loc) and _matches_label(member, loc[i + 1]):
                    path.append(elem)
                    tp = member
                    i += 2
                    continue
        elif typing.get_origin(base) in (tuple, list):
            args = typing.get_args(base)
            tp = args[0] if args else None
        elif typing.get_origin(base) in (dict, Mapping):
            args = typing.get_args(base)
            tp = args[1] if len(args) == 2 else None
        else:
            tp = None
        path.append(elem)
        i += 1
    return path, tp


def _union_tags(tp: Any, discriminator: str) -> list[str]:
    members = union_members(strip_annotated(tp)) or ()
    tags: list[str] = []
    for member in members:
        base = strip_annotated(member)
        if is_model(base):
            tags += [str(v) for v in literal_values(base, discriminator)]
    return tags


_SIMPLE_MESSAGES: Final[dict[str, tuple[str, str | None]]] = {
    "finite_number": ("must be a finite number", "a finite number"),
    "float_type": ("must be a number", "a number"),
    "float_parsing": ("must be a number", "a number"),
    "int_type": ("must be a whole number", "an integer"),
    "int_parsing": ("must be a whole number", "an integer"),
    "int_from_float": ("must be a whole number", "an integer"),
    "bool_type": ("must be true or false", "true, false"),
    "bool_parsing": ("must be true or false", "true, false"),
    "string_type": ("must be a text", "a string"),
    "model_type": ("must be a mapping of keys", "a mapping"),
    "model_attributes_type": ("must be a mapping of keys", "a mapping"),
    "dict_type": ("must be a mapping", "a mapping"),
    "tuple_type": ("must be a list", "a list"),
    "list_type": ("must be a list", "a list"),
    "missing": ("required key is missing", None),
}


def _genericproblem(error: Mapping[str, Any], path: tuple[PathElem, ...]) -> Problem:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = error.get("input", MISSING) if kind != "missing" else MISSING
    bounds = {
        "greater_than": (">", "gt"),
        "greater_than_equal": (">=", "ge"),
        "less_than": ("<", "lt"),
        "less_than_equal": ("<=", "le"),
    }
    if kind in bounds:
        op, name = bounds[kind]
        bound = ctx[name]
        limit = f"{op} {format_number(bound) if isinstance(bound, int | float) else bound}"
        return Problem(path, f"must be {limit}", got=got, allowed=limit)
    if kind in _SIMPLE_MESSAGES:
        message, allowed = _SIMPLE_MESSAGES[kind]
        return Problem(path, message, got=got, allowed=allowed)
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        message = unknown_name_message("value", got, options) if options else error["msg"]
        return Problem(path, message, got=got, allowed=", ".join(options) or None)
    if kind == "too_short":
        return Problem(
            path,
            f"must have at least {ctx.get('min_length')} item(s)",
            got=got,
            allowed=f"at least {ctx.get('min_length')} item(s)",
        )
    if kind == "string_too_short":
        return Problem(path, "must not be empty", got=got)
    if kind == "string_pattern_mismatch":
        return Problem(
            path,
            "must be a name of letters, digits, _ or - (not starting with a digit)",
            got=got,
            allowed=str(ctx.get("pattern")),
        )
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return Problem(path, message, got=got)


def problems_from_validation(err: ValidationError) -> list[Problem]:
    """The problems of a failed :class:`~perpsim.scenario.Scenario` validation, at key paths.

    Args:
        err: pydantic's error.

    Returns:
        One problem per error, its path as the user writes it (union tags removed); unknown
        keys and tags say "did you mean".
    """
    problems: list[Problem] = []
    for error in err.errors(include_url=False):
        loc = tuple(error["loc"])
        kind = error["type"]
        ctx = error.get("ctx") or {}
        if kind in ("value_error", "assertion_error") and isinstance(
            ctx.get("error"), ProblemsError
        ):
            base, _ = _locate(loc)
            for p in ctx["error"].problems:
                problems.append(
                    dataclasses.replace(
                        p,
                        path=(*base, *p.path),
                        related=tuple((*base, *r) for r in p.related),
                    )
                )
        elif kind == "extra_forbidden":
            parent_path, parent_tp = _locate(loc[:-1])
            model = model_of(parent_tp)
            fields = list(model.model_fields) if model is not None else []
            problems.append(
                Problem(
                    (*parent_path, loc[-1]),
                    unknown_name_message("key", loc[-1], fields),
                    allowed=", ".join(fields) or None,
                )
            )
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            path, tp = _locate(loc)
            disc = str(ctx.get("discriminator", "kind")).strip("'\"")
            tags = re.findall(r"'([^']*)'", str(ctx.get("expected_tags", ""))) or _union_tags(
                tp, disc
            )
            if not isinstance(error.get("input"), Mapping):
                problems.append(
                    Problem(tuple(path), "must be a mapping of keys", got=error.get("input"))
                )
            elif kind == "union_tag_invalid":
                tag = error["input"].get(disc, ctx.get("tag"))
                problems.append(
                    Problem(
                        (*path, disc),
                        unknown_name_message(disc, show_value(tag).strip("'"), tags),
                        got=tag,
                        allowed=", ".join(tags),
                    )
                )
            else:
                problems.append(
                    Problem((*path, disc), "required key is missing", allowed=", ".join(tags))
                )
        else:
            path, _ = _locate(loc)
            problems.append(_genericproblem(error, tuple(path)))
    return problems


def with_origin(
    problem: Problem, raw: Mapping[str, Any], source: str
) -> tuple[Problem, Origin | None]:
    """Finds where a problem's value was written.

    When a problem involves several keys (``related``), the one the user wrote most directly
    (an override, then the file itself, then an inherited file) is named first: that is most
    likely the one the user just changed.
    """
    candidates = [problem.path, *problem.related]
    origins = [origin_for(raw, path) for path in candidates]
    ranks = [_origin_rank(origin, source) for origin in origins]
    best = max(range(len(candidates)), key=lambda i: (ranks[i], -i))
    if best == 0:
        return problem, origins[0]
    rest = tuple(path for i, path in enumerate(candidates) if i not in (0, best))
    moved = dataclasses.replace(
        problem,
        path=candidates[best],
        related=(problem.path, *rest),
        got=_value_at_path(raw, candidates[best]),
    )
    return moved, origins[best]


def _origin_rank(origin: Origin | None, source: str) -> int:
    """How directly the user wrote a value: an override, the file itself, or an inherited file."""
    if origin is None:
        return -1
    if origin.source.startswith("--set "):
        return 2
    return 1 if origin.source == source else 0


def with_population_name(problem: Problem, raw: Mapping[str, Any]) -> Problem:
    """Adds the population's name to a problem under ``agents.N`` (N counts inherited ones)."""
    path = problem.path
    if len(path) >= 2 and path[0] == "agents" and isinstance(path[1], int):
        name = _value_at_path(raw, (*path[:2], "name"))
        if isinstance(name, str) and path[2:] != ("name",):
            return dataclasses.replace(problem, context=f"population {name!r}")
    return problem


def _value_at_path(raw: Any, path: Sequence[PathElem]) -> Any:
    node = raw
    for elem in path:
        in_mapping = isinstance(node, Mapping) and elem in node
        in_list = isinstance(node, list) and isinstance(elem, int) and 0 <= elem < len(node)
        if not (in_mapping or in_list):
            return MISSING
        node = node[elem]
    return node
