"""What the three analysis files share: reading them, their messages, metrics and parameters.

A sensitivity, stress or compare file is read like a sweep file: YAML through
:mod:`perpsim.scenario.yaml`, a strict pydantic schema, and one line per problem naming the file,
the key and its line (exit 2 at the command line). Metrics are the run metrics of
``summary.json`` (:data:`~perpsim.metrics.SUMMARY_METRICS`); an unknown one is named with the list
of those that exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError

from perpsim.errors import ConfigError
from perpsim.metrics import SUMMARY_METRICS
from perpsim.scenario.yaml import KeyLines, load_yaml_file
from perpsim.sweep import ChoiceParam, LogUniformParam, RangeParam, UniformParam, ValuesParam

__all__ = [
    "METRICS",
    "SpecProblem",
    "check_metric",
    "first_value",
    "last_value",
    "line_of",
    "located",
    "read_analysis_file",
]

#: The run metrics an analysis may name (those of ``summary.json``, numbers and booleans).
METRICS: Final = SUMMARY_METRICS

#: Tags of the sweep's parameter union: not part of the file's key paths.
_TAGS: Final = ("values", "range", "uniform", "loguniform", "choice")

_Model = TypeVar("_Model", bound=BaseModel)


class SpecProblem(ValueError):
    """A problem a whole-file check found at a key path of the file."""

    def __init__(self, path: tuple[Any, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


def check_metric(name: str, allowed: Sequence[str] = METRICS) -> str:
    """``name`` if it is one of ``allowed``; else a message naming it and listing them.

    Raises:
        ValueError: ``name`` is not a metric.
    """
    if name not in allowed:
        raise ValueError(f"unknown metric {name!r} (metrics: {', '.join(allowed)})")
    return name


def first_value(param: Any) -> Any:
    """A value a parameter can take (to check its key against the scenario)."""
    if isinstance(param, (ValuesParam, ChoiceParam)):
        return param.values[0]
    if isinstance(param, RangeParam):
        return int(param.range[0]) if param.integer else param.range[0]
    if isinstance(param, (UniformParam, LogUniformParam)):
        return int(param.low) if param.integer else param.low
    raise TypeError(f"not a parameter: {param!r}")


def last_value(param: Any) -> Any:
    """The other end of a parameter's range (its last value)."""
    if isinstance(param, (ValuesParam, ChoiceParam)):
        return param.values[-1]
    if isinstance(param, RangeParam):
        return int(param.range[1]) if param.integer else param.range[1]
    if isinstance(param, (UniformParam, LogUniformParam)):
        return int(param.high) if param.integer else param.high
    raise TypeError(f"not a parameter: {param!r}")


def line_of(path: tuple[Any, ...], lines: KeyLines) -> int | None:
    """The line of ``path`` in the file, or of its closest parent that has one."""
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


def located(source: str, path: tuple[Any, ...], message: str, lines: KeyLines) -> str:
    """``SOURCE: key.path: message (line N)``."""
    where = ".".join(str(p) for p in path) if path else "(top level)"
    line = line_of(path, lines)
    return f"{source}: {where}: {message}" + (f" (line {line})" if line is not None else "")


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _problems(err: ValidationError, source: str, lines: KeyLines) -> str:
    out: list[str] = []
    for e in err.errors():
        loc = list(e["loc"])
        if len(loc) >= 3 and loc[0] == "parameters" and loc[2] in _TAGS:
            del loc[2]
        msg = str(e["msg"])
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        kind = e["type"]
        problem = e.get("ctx", {}).get("error")
        show_input = "input" in e and kind not in ("missing", "extra_forbidden")
        if isinstance(problem, SpecProblem):
            loc = [*loc, *problem.path]
            show_input = False
        if kind == "extra_forbidden":
            msg = "unknown key"
        value = e.get("input")
        if show_input and not isinstance(value, (dict, list)):
            msg = f"{msg} (got {_show(value)})"
        out.append(located(source, tuple(loc), msg, lines))
    return "\n".join(dict.fromkeys(out))


def read_analysis_file(
    path: str | Path, model: type[_Model], what: str
) -> tuple[_Model, KeyLines, Mapping[str, Any]]:
    """Reads and validates an analysis file.

    Args:
        path: The YAML file.
        model: Its schema.
        what: What the file is, for messages (``sensitivity file``).

    Returns:
        The validated spec, the line of every key path, and the raw mapping.

    Raises:
        ConfigError: One line per problem, each naming the file, the key and the line.
    """
    path = Path(path)
    source = str(path)
    data, lines = load_yaml_file(path, source, what)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: (top level): a {what} must be a mapping of keys")
    try:
        spec = model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_problems(err, source, lines)) from None
    return spec, lines, data
