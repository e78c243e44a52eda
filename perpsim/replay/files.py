"""Reading replay files (YAML or JSON), with the project's one YAML 1.2 loader.

YAML 1.2 reads ``1e-18`` and ``5e-05`` as numbers (PyYAML's default YAML 1.1 reading makes them
strings), the same as scenarios and sweeps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perpsim.errors import ConfigError
from perpsim.scenario.yaml import load_yaml_file


def load_replay_file(path: str | Path) -> dict[str, Any]:
    """Read a replay file (YAML or JSON).

    Raises:
        ConfigError: unreadable, not YAML/JSON, or not a mapping with an ``ops`` list.
    """
    p = Path(path)
    doc, _ = load_yaml_file(p, str(p), what="replay file")
    if not isinstance(doc, dict):
        raise ConfigError(f"{p}: a replay file must be a mapping with an 'ops' list")
    return doc
