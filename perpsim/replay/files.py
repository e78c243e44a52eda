"""Reading replay files (YAML or JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from perpsim.errors import ConfigError


def load_replay_file(path: str | Path) -> dict[str, Any]:
    """Read a replay file (YAML or JSON).

    Raises:
        ConfigError: unreadable, not YAML/JSON, or not a mapping with an ``ops`` list.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read replay file: {exc.strerror or exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{p}: not valid YAML/JSON{where}: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{p}: a replay file must be a mapping with an 'ops' list")
    return doc
