"""``perpsim viz [SCENARIO | RUN_DIR] [--set KEY=VALUE ...] [--host H] [--port N]``.

Everything is checked before the server starts, so bad input exits with code 2 and the same
message as ``perpsim run`` (a scenario the scenario layer rejects) or ``perpsim plot`` (a folder
that is not a run folder), and a missing ``viz`` extra says how to install it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from perpsim.errors import ConfigError

__all__ = ["viz_command"]


def viz_command(
    target: str | None, overrides: Sequence[str] = (), host: str = "127.0.0.1", port: int = 8521
) -> int:
    """Check the target, then serve the dashboard until interrupted.

    Args:
        target: A shipped scenario's name, a scenario file or a run folder (default: baseline).
        overrides: ``--set`` items for a scenario.
        host: The address to bind (loopback by default).
        port: The TCP port.

    Returns:
        0 once the server stopped.

    Raises:
        ConfigError: Bad input, or the viz extra is missing.
    """
    from perpsim.dashboard.server import MISSING_HINT, missing_packages, serve

    if not 1 <= port <= 65535:
        raise ConfigError(f"--port must be between 1 and 65535, got {port}")
    missing = missing_packages()
    if missing:
        raise ConfigError(MISSING_HINT.format(missing=", ".join(missing)))
    name = target or "baseline"
    path = Path(name)
    if path.is_dir():
        if overrides:
            raise ConfigError(f"{name}: --set changes a scenario, not a finished run folder")
        from perpsim.dashboard.recorded import RecordedRun

        RecordedRun(path)  # a folder that is not a run folder says why, before the server starts
        serve(run_dir=str(path.resolve()), host=host, port=port)
        return 0
    from perpsim.scenario import load_scenario, resolve_scenario_path

    load_scenario(resolve_scenario_path(name), overrides)
    serve(scenario=name, overrides=overrides, host=host, port=port)
    return 0
