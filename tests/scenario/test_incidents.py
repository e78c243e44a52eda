"""The incident pack (``scenarios/incidents/``): each file says what it answers and how it fills
the bars, and the LUNA feed freezes at its minimum answer where its comment says.

The runs themselves are in ``test_shipped_scenarios.py`` (every shipped file, briefly); the
numbers of the comment blocks come from full runs (``docs/incidents.md``), too long for a test.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from support import REPO

from perpsim.model.model import market_path
from perpsim.model.streams import Streams
from perpsim.oracle.feed import OracleFeed
from perpsim.scenario import load_scenario, shipped_scenarios

INCIDENTS = REPO / "scenarios" / "incidents"
FILES = sorted(INCIDENTS.glob("*.yaml"))


def test_the_pack_is_shipped_and_covers_the_six_windows() -> None:
    assert set(FILES) <= set(shipped_scenarios())
    text = " ".join(p.read_text(encoding="utf-8") for p in FILES)
    for event in (
        "eth_usd_10min_2020-03-12",
        "eth_usd_10min_2021-05-19",
        "luna_ust_2022",
        "ftx_2022",
        "yen_carry_2024",
        "tariff_oct10_2025",
    ):
        assert event in text, event


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_each_incident_states_its_question_fill_and_numbers(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    scenario = load_scenario(path)
    assert "# Question:" in text
    assert f"# Expected (seed {scenario.seed})" in text
    if scenario.price_path.kind == "historical":
        assert "Intrabar fill" in text
        assert scenario.price_path.bars is not None  # type: ignore[union-attr]
        assert re.search(r"bars=null", text)  # and what the fill changes


def test_luna_feed_freezes_at_its_minimum_and_the_guard_trips_first() -> None:
    path = INCIDENTS / "luna_feed_floor.yaml"
    scenario = load_scenario(path)
    offsets = np.arange(scenario.clock.n_ticks + 1, dtype=np.int64) * int(scenario.clock.tick)
    prices = market_path(scenario, Streams(scenario.seed), offsets, path.parent)
    feed = OracleFeed(scenario.oracle, start_time=int(scenario.clock.start)).publish(
        offsets, prices
    )
    start = int(scenario.clock.start)
    assert feed.price.min() >= 0.1
    # The last answer is just above the minimum, and nothing is published after it.
    assert feed.price[-1] == pytest.approx(0.100037, abs=1e-6)
    frozen_at = int(feed.time[-1])
    assert scenario.clock.iso(frozen_at - start).startswith("2022-05-12T10:")
    assert prices[-1] < 0.02
    # The guard's min_price (0.2) trips before the freeze, at 05:51.
    guard = scenario.oracle.guard
    assert guard is not None
    times = start + offsets
    index = feed.prices_at(times)
    ages = feed.ages(times)
    tripped = [i for i in range(times.size) if guard.trips(float(index[i]), int(ages[i]))]
    assert scenario.clock.iso(int(offsets[tripped[0]])) == "2022-05-12T05:51:00Z"
