"""A finished run folder both the dashboard's run-folder tests read (written once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from perpsim.run import run_scenario, write_outputs
from perpsim.scenario import load_scenario, resolve_scenario_path

#: The flash crash cut to 26 hours: the oracle outage at 1 day, the crash 5 minutes later.
RUN_OVERRIDES = ("clock.duration=1d2h",)


@pytest.fixture(scope="session")
def recorded_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = resolve_scenario_path("flash_crash_oracle_outage")
    result = run_scenario(load_scenario(path, RUN_OVERRIDES), base_dir=path.parent)
    out = tmp_path_factory.mktemp("recorded") / "run"
    write_outputs(result, out)
    return out
