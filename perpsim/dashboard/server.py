"""``perpsim viz``: serve the dashboard on a local port with Solara's server (uvicorn).

The page is :mod:`perpsim.dashboard.app`; the target (a scenario with ``--set`` items, or a run
folder) travels in the ``PERPSIM_VIZ`` environment variable. Solara's usage telemetry is
switched off (the dashboard makes no connection beyond the local port), and its front-end files
come from the ``solara-assets`` package, so the page needs no network.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Sequence
from typing import Final

from perpsim.errors import ConfigError

__all__ = ["MISSING_HINT", "missing_packages", "serve"]

#: What ``perpsim viz`` says when the viz extra is not installed.
MISSING_HINT: Final = (
    "perpsim viz needs the dashboard's packages ({missing}); install them with"
    " pip install -e '.[viz]' (or pip install 'perpsim[viz]')"
)

_NEEDED: Final = ("solara", "solara_assets", "altair", "uvicorn")


def missing_packages() -> list[str]:
    """The dashboard's packages that are not installed (empty when it can start)."""
    return [name for name in _NEEDED if importlib.util.find_spec(name) is None]


def serve(
    *,
    scenario: str | None = None,
    overrides: Sequence[str] = (),
    run_dir: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8521,
) -> None:
    """Serve the dashboard until interrupted (Ctrl-C or SIGTERM).

    Raises:
        ConfigError: A dashboard package is missing (the message says how to install it).
    """
    missing = missing_packages()
    if missing:
        raise ConfigError(MISSING_HINT.format(missing=", ".join(missing)))
    target = {"run_dir": run_dir} if run_dir else {"scenario": scenario, "overrides": [*overrides]}
    os.environ["PERPSIM_VIZ"] = json.dumps(target)
    os.environ["SOLARA_APP"] = "perpsim.dashboard.app"
    os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "false")
    # The banner sits on top of the lower right chart; the tab is titled after the tool.
    os.environ.setdefault("SOLARA_THEME_SHOW_BANNER", "false")
    os.environ.setdefault("SOLARA_THEME_TITLE", "perpsim dashboard")
    os.environ["SERVER_NAME"] = host
    os.environ["SERVER_PORT"] = str(port)
    import uvicorn

    config = uvicorn.Config(
        "solara.server.starlette:app", host=host, port=port, log_level="warning", lifespan="on"
    )
    print(f"perpsim dashboard: http://{host}:{port}/  (Ctrl-C stops it)", flush=True)
    uvicorn.Server(config).run()
