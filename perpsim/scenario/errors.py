"""Problems as users read them: ``FILE: key.path: message (got ...; allowed ...; line N)``.

Every stage of loading a scenario (YAML, ``extends``, overrides, validation) reports through
these helpers, so a message reads the same whichever stage found it. The "did you mean" part of
a message comes from :func:`perpsim.engine.core.config.unknown_name_message`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from perpsim.engine.core.config import MISSING, Problem
from perpsim.errors import ConfigError
from perpsim.scenario.yaml import Origin, PathElem

__all__ = ["config_error", "format_problem", "render_path", "show_value"]


def render_path(path: Sequence[PathElem]) -> str:
    """A key path as users write it (``agents.0.count``), or ``(top level)``."""
    return ".".join(str(p) for p in path) if path else "(top level)"


def show_value(value: Any, limit: int = 80) -> str:
    """A short, YAML-like rendering of a value for error messages."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, float) and math.isnan(value):
        text = ".nan"
    elif isinstance(value, float) and math.isinf(value):
        text = ".inf" if value > 0 else "-.inf"
    elif isinstance(value, str):
        text = repr(value)
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{k}: {show_value(v, limit)}" for k, v in value.items()) + "}"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(show_value(v, limit) for v in value) + "]"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_problem(problem: Problem, source: str, origin: Origin | None) -> str:
    """One line of a ConfigError: ``SOURCE: key.path: message (details)``.

    Args:
        problem: What is wrong, and where.
        source: How to name the scenario.
        origin: Where the value was written (its line, or the file or override it came from).

    Returns:
        The line.
    """
    details: list[str] = []
    if problem.context:
        details.append(problem.context)
    if problem.got is not MISSING:
        details.append(f"got {show_value(problem.got)}")
    if problem.allowed:
        details.append(f"allowed: {problem.allowed}")
    if problem.related:
        details.append("involves " + ", ".join(render_path(r) for r in problem.related))
    if origin is not None:
        if origin.source == source:
            if origin.line is not None:
                details.append(f"line {origin.line}")
        elif origin.line is not None:
            details.append(f"from {origin.source} line {origin.line}")
        else:
            details.append(f"from {origin.source}")
    suffix = f" ({'; '.join(details)})" if details else ""
    return f"{source}: {render_path(problem.path)}: {problem.message}{suffix}"


def config_error(lines: Sequence[str]) -> ConfigError:
    """One ConfigError of the given lines, each line once, in order."""
    unique = list(dict.fromkeys(lines))
    return ConfigError("\n".join(unique))
