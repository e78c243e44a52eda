"""The one YAML reader of perpsim: YAML 1.2 numbers, no timestamps, no duplicate keys, positions.

Every YAML file perpsim reads (scenarios, sweeps, replay files) goes through this module, so they
all read ``1e-3`` as a number (PyYAML's default YAML 1.1 rules read it as text), keep times as
text (the schemas parse them), refuse duplicate and non-text keys, and remember where each value
was written:

- mappings come back as :class:`YDict` and lists as :class:`YList`, which carry the
  :class:`Origin` (source and line) of each of their entries;
- :func:`load_yaml_text` and :func:`load_yaml_file` also return :data:`KeyLines`, the line of
  every key path, for schemas that report problems by path.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeAlias

import yaml

from perpsim.errors import ConfigError

__all__ = [
    "MAX_EXPANDED_NODES",
    "KeyLines",
    "Origin",
    "PathElem",
    "YDict",
    "YList",
    "copy_tree",
    "expanded_size",
    "load_yaml_file",
    "load_yaml_text",
    "origin_for",
    "parse_yaml",
    "read_text_file",
]

#: One step of a key path: a mapping key or a list index.
PathElem: TypeAlias = str | int
#: The line (1-based) where the value of every key path starts.
KeyLines: TypeAlias = dict[tuple[Any, ...], int]


@dataclasses.dataclass(frozen=True)
class Origin:
    """Where a value was written.

    Attributes:
        source: How to name the source in messages (a file as given, or ``--set KEY=VALUE``).
        line: 1-based line number, if known.
        path: The file, if the value came from a file (used to resolve relative paths).
    """

    source: str
    line: int | None = None
    path: Path | None = None


class YDict(dict[str, Any]):
    """A mapping read from YAML that remembers where each of its keys was written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.origins: dict[str, Origin] = {}


class YList(list[Any]):
    """A list read from YAML that remembers where each of its items was written."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.origins: list[Origin | None] = [None] * len(self)


# YAML 1.2 floats: unlike YAML 1.1 (PyYAML's default) this reads 1e-3 and 1.0e3 as numbers.
_FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)[eE][-+]?[0-9]+
    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.VERBOSE,
)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with positions, duplicate-key detection and YAML 1.2 floats.

    Timestamps are not converted: times stay text and are read by the schema.
    """

    def __init__(self, stream: str, origin: Origin) -> None:
        super().__init__(stream)
        self.origin = origin

    def here(self, node: yaml.Node) -> Origin:
        """The origin of ``node``."""
        return dataclasses.replace(self.origin, line=node.start_mark.line + 1)


_Loader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> Iterator[YDict]:
    data = YDict()
    yield data
    first_seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
            continue
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in first_seen:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"found duplicate key {key!r} (first defined on line {first_seen[key]})",
                key_node.start_mark,
            )
        first_seen[key] = line
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"found a key that is not a string: {key!r} (quote it to use it as a name)",
                key_node.start_mark,
            )
        data[key] = loader.construct_object(value_node, deep=False)
        data.origins[key] = loader.here(key_node)


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> Iterator[YList]:
    data = YList()
    yield data
    for child in node.value:
        data.append(loader.construct_object(child, deep=False))
        data.origins.append(loader.here(child))


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def _yaml_error(source: str, exc: yaml.YAMLError) -> ConfigError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(unknown line)"
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        return ConfigError(f"{source}: {where}: invalid YAML: {problem}{context}")
    return ConfigError(f"{source}: invalid YAML: {exc}")


def _collect_lines(node: yaml.Node, path: tuple[Any, ...], lines: KeyLines) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                _collect_lines(value_node, (*path, key_node.value), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _collect_lines(item, (*path, i), lines)


#: The most values (mappings, lists and scalars, each alias counted as a copy of what it names)
#: one YAML document may expand to. Aliases let a few lines name billions of values ("billion
#: laughs"); a merge (``extends``, a sweep's points, a JSON dump) would copy every one of them.
#: The largest file perpsim ships expands to a few thousand; a generated replay file of every
#: operation of a month-long run stays far below.
MAX_EXPANDED_NODES: Final = 2_000_000


def expanded_size(node: yaml.Node, limit: int = MAX_EXPANDED_NODES) -> int:
    """The number of values ``node`` expands to, aliases copied out (stops counting past ``limit``).

    Each node is sized once (aliases share their node), so the count costs one pass over the
    distinct nodes whatever the expansion.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    # Post-order without recursion: an alias chain may be deep.
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        current, expanded = stack.pop()
        key = id(current)
        if key in sizes or (not expanded and key in open_nodes):
            continue  # sized already, or a recursive alias (counted as too large below)
        children: list[yaml.Node] = []
        if isinstance(current, yaml.MappingNode):
            for k, v in current.value:
                children += (k, v)
        elif isinstance(current, yaml.SequenceNode):
            children = list(current.value)
        if not expanded:
            open_nodes.add(key)
            stack.append((current, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
            continue
        open_nodes.discard(key)
        # A child still open is an ancestor: a recursive alias expands without end.
        total = 1 + sum(sizes.get(id(c), limit + 1) for c in children)
        sizes[key] = min(total, limit + 1)
    return sizes[id(node)]


def _load(text: str, origin: Origin) -> tuple[Any, KeyLines]:
    loader = _Loader(text, origin)
    lines: KeyLines = {}
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines
        if expanded_size(node) > MAX_EXPANDED_NODES:
            raise ConfigError(
                f"{origin.source}: invalid YAML: its aliases (*name) expand to more than"
                f" {MAX_EXPANDED_NODES:,} values; write the values out, or use fewer aliases"
            )
        _collect_lines(node, (), lines)
        return loader.construct_document(node), lines
    except yaml.YAMLError as exc:
        raise _yaml_error(origin.source, exc) from None
    except RecursionError:
        raise ConfigError(f"{origin.source}: invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()


def parse_yaml(text: str, origin: Origin) -> Any:
    """Parses one YAML document; mappings and lists remember their entries' origins.

    Args:
        text: the YAML text.
        origin: where the text comes from (its ``line`` is replaced by each entry's line).

    Returns:
        The data: :class:`YDict`, :class:`YList`, text, numbers, booleans or None.

    Raises:
        ConfigError: the text is not valid YAML, or has a duplicate or non-text key; the message
            names ``origin.source`` and the line and column.
    """
    return _load(text, origin)[0]


def load_yaml_text(text: str, source: str, path: Path | None = None) -> tuple[Any, KeyLines]:
    """Parses one YAML document and the line of each of its key paths.

    Args:
        text: the YAML text.
        source: how to name it in messages.
        path: the file it was read from, if any (kept in each entry's :class:`Origin`).

    Returns:
        The data (as :func:`parse_yaml` returns it) and the line where the value of every key
        path starts (``()`` is the document itself; list items are addressed by index).

    Raises:
        ConfigError: as :func:`parse_yaml`.
    """
    return _load(text, Origin(source, None, path))


def read_text_file(path: Path, source: str, what: str = "YAML file") -> str:
    """Reads a UTF-8 text file, with a one-line message for each way that can fail.

    Args:
        path: the file.
        source: how to name it in messages.
        what: what the file should be (said when ``path`` is a directory).

    Raises:
        ConfigError: the file is missing, a directory, not UTF-8, or unreadable.
    """
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a directory, not a {what}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not a UTF-8 text file ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the file ({exc.strerror})") from None


def load_yaml_file(
    path: str | Path, source: str | None = None, what: str = "YAML file"
) -> tuple[Any, KeyLines]:
    """Reads and parses a YAML file (see :func:`load_yaml_text`).

    Args:
        path: the file.
        source: how to name it in messages (default: the path as given).
        what: what the file should be (said when ``path`` is a directory).

    Raises:
        ConfigError: the file cannot be read (see :func:`read_text_file`) or is not valid YAML.
    """
    p = Path(path)
    name = str(path) if source is None else source
    return load_yaml_text(read_text_file(p, name, what), name, p)


def copy_tree(value: Any) -> Any:
    """Deep copy of a parsed tree, keeping the origins (mappings and tuples become YAML types)."""
    if isinstance(value, Mapping):
        out = YDict()
        for key, item in value.items():
            out[key] = copy_tree(item)
        if isinstance(value, YDict):
            out.origins.update(value.origins)
        return out
    if isinstance(value, list | tuple):
        seq = YList(copy_tree(v) for v in value)
        if isinstance(value, YList):
            seq.origins = list(value.origins)
        return seq
    return value


def origin_for(raw: Any, path: Sequence[PathElem]) -> Origin | None:
    """The origin of the deepest entry of ``raw`` found along ``path`` (None if none is known)."""
    node = raw
    origin: Origin | None = None
    for elem in path:
        if isinstance(node, Mapping) and isinstance(elem, str) and elem in node:
            if isinstance(node, YDict):
                origin = node.origins.get(elem, origin)
            node = node[elem]
        elif isinstance(node, list) and isinstance(elem, int) and 0 <= elem < len(node):
            if isinstance(node, YList) and elem < len(node.origins):
                origin = node.origins[elem] or origin
            node = node[elem]
        else:
            break
    return origin
