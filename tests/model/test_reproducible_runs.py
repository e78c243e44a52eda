"""The same scenario and seed give the same tables in one process, whatever ran before.

A sweep worker, a notebook or the dashboard runs many models in one interpreter. D8X's view
cache was keyed by ``id()`` of the pool's state: a freed state's id is reused by the next one,
which then read a stale view, so a second identical run in the same process gave other
numbers (and a run's numbers depended on how memory happened to be allocated).
"""

from __future__ import annotations

import pandas as pd
import pytest
from support import REPO

from perpsim.run import run_scenario
from perpsim.scenario import load_scenario

SHORT = ["clock.duration=2h", "agents.noise.count=20"]


@pytest.mark.parametrize("name", ["baseline", "d8x_baseline", "predy_baseline"])
def test_a_second_run_in_the_same_process_gives_the_same_tables(name: str) -> None:
    scenario = load_scenario(name, SHORT)
    first = run_scenario(scenario, base_dir=REPO / "scenarios")
    second = run_scenario(scenario, base_dir=REPO / "scenarios")
    pd.testing.assert_frame_equal(first.timeseries, second.timeseries)
    pd.testing.assert_frame_equal(first.accounts, second.accounts)
    pd.testing.assert_frame_equal(first.events, second.events)
