"""The incident pack (``scenarios/incidents/``): each file says what it answers and how it fills
the bars, every incident has a file per registered venue kind on the same market and crowd, and
the LUNA feed freezes at its minimum answer where its comment says.

The runs themselves are in ``test_shipped_scenarios.py`` (every shipped file, briefly); the
numbers of the comment blocks come from full runs (``docs/incidents.md``). One incident, Black
Thursday's 10-minute day (the cheapest with a loss), is run in full on every venue kind that is
not the default, with and without its bars, and checked against its comment.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from support import REPO

from perpsim.engine.registry import DEFAULT_KIND, venue_kinds
from perpsim.model.model import market_path
from perpsim.model.streams import Streams
from perpsim.oracle.feed import OracleFeed
from perpsim.run import RunResult, run_scenario
from perpsim.scenario import load_scenario, shipped_scenarios

INCIDENTS = REPO / "scenarios" / "incidents"
FILES = sorted(INCIDENTS.glob("*.yaml"))
#: The venue kinds other than the default: each incident has a ``<name>_<kind>.yaml``.
OTHER_KINDS = tuple(kind for kind in venue_kinds() if kind != DEFAULT_KIND)
#: The default venue's incidents, which the other kinds' files extend.
BASE_FILES = [p for p in FILES if not p.stem.endswith(tuple(f"_{k}" for k in OTHER_KINDS))]
#: The default venue's populations whose parameters a venue kind's files may change.
VENUE_NEEDS: dict[str, tuple[str, ...]] = {"predy": ("keepers",)}


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


def test_the_default_venue_pack_is_the_seven_incidents() -> None:
    # A file named like another kind's would hide an incident from the pairing test below.
    assert len(BASE_FILES) == 7
    assert {load_scenario(p).venue.kind for p in BASE_FILES} == {DEFAULT_KIND}


@pytest.mark.parametrize("kind", OTHER_KINDS)
@pytest.mark.parametrize("base", BASE_FILES, ids=lambda p: p.stem)
def test_each_incident_runs_on_every_venue_kind_on_the_same_market(base: Path, kind: str) -> None:
    path = INCIDENTS / f"{base.stem}_{kind}.yaml"
    assert path.is_file(), f"no {path.name}"
    text = path.read_text(encoding="utf-8")
    assert re.search(rf"^extends: {re.escape(base.name)}$", text, re.MULTILINE)
    ours, theirs = load_scenario(path), load_scenario(base)
    assert ours.venue.kind == kind
    assert ours.name == path.stem
    # The same question: path, seed, clock, events and rules; only the venue (and what it
    # needs) differs.
    assert ours.seed == theirs.seed
    assert ours.clock == theirs.clock
    assert ours.price_path == theirs.price_path
    assert ours.events == theirs.events
    assert ours.governance_rules == theirs.governance_rules
    assert ours.oracle.min_answer == theirs.oracle.min_answer
    assert ours.oracle.guard == theirs.oracle.guard
    # The same crowd: every population of the default venue's file, with its type, count and
    # parameters, but for what the venue kind needs (Predy pays no keeper prize).
    crowd = {p.name: p for p in ours.agents}
    for pop in theirs.agents:
        mine = crowd.get(pop.name)
        assert mine is not None and (mine.type, mine.count) == (pop.type, pop.count), pop.name
        assert pop.name in VENUE_NEEDS.get(kind, ()) or mine.params == pop.params, pop.name
    # The comment block names what differs and compares with the default venue's numbers.
    assert f"# What differs from {base.name}:" in text
    assert base.name in text.split("# Expected")[1].split("# What differs")[0]


def _run(name: str, *overrides: str) -> RunResult:
    path = INCIDENTS / f"{name}.yaml"
    result = run_scenario(load_scenario(path, list(overrides)), base_dir=path.parent)
    assert result.error is None, result.error
    assert result.summary["invariants"] == "ok"
    return result


@pytest.mark.slow
@pytest.mark.parametrize("bars", [True, False], ids=["bars", "opens"])
def test_black_thursday_on_d8x_the_amm_margin_takes_the_loss_not_the_default_fund(
    bars: bool,
) -> None:
    result = _run("black_thursday_2020_10min_d8x", *([] if bars else ["price_path.bars=null"]))
    s = result.summary
    assert s["status"] == "NORMAL"
    assert s["social_loss_total"] == 0.0 and s["bad_debt"] == 0.0
    assert s["insurance_fund_paid_total"] == 0.0  # the DF pays none of it
    if bars:
        assert s["min_market_price"] == pytest.approx(102.21, abs=0.005)
        assert s["liquidation_count"] == 99
        assert round(s["liquidated_value"], -2) == 282_200
        assert round(s["liquidation_loss_total"], -1) == 1_530
        assert s["max_unsafe_accounts_before_liquidation"] == 36
        assert s["max_bankrupt_accounts_before_liquidation"] == 13
        assert round(100 * s["lp_return"], 2) == -0.75
        # Drawn on by the AMM fund's stress top-ups, not by a loss.
        assert round(s["insurance_fund_min"], -2) == 81_400
        assert round(s["insurance_fund_final"], -2) == 189_800
    else:
        assert s["min_market_price"] == pytest.approx(107.00, abs=0.005)
        assert s["liquidation_count"] == 135
        assert round(s["liquidated_value"], -2) == 212_400
        assert s["liquidation_loss_total"] == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("bars", [True, False], ids=["bars", "opens"])
def test_black_thursday_on_predy_the_pool_absorbs_the_insolvent_vaults(bars: bool) -> None:
    result = _run("black_thursday_2020_10min_predy", *([] if bars else ["price_path.bars=null"]))
    s = result.summary
    assert s["status"] == "NORMAL"
    assert s["bad_debt"] == 0.0
    assert s["insurance_fund_initial"] == 0.0  # Predy has none: the LPs pay
    assert s["social_loss_total"] == pytest.approx(s["liquidation_loss_total"])
    insolvent = float(result.timeseries["predy_insolvent_loss"].iloc[-1])
    assert insolvent == pytest.approx(s["social_loss_total"])
    if bars:
        assert s["liquidation_count"] == 91
        assert round(s["liquidated_value"], -2) == 354_700
        assert round(s["liquidation_loss_total"], -1) == 7_380
        assert s["max_unsafe_accounts_before_liquidation"] == 29
        assert s["max_bankrupt_accounts_before_liquidation"] == 12
        assert round(100 * s["lp_return"], 1) == -1.2
        assert int((result.events["kind"] == "hedge").sum()) == 7
        assert round(float(result.timeseries["predy_net_delta"].max()), -1) == 5_960
    else:
        assert s["liquidation_count"] == 70
        assert round(s["liquidated_value"], -2) == 276_600
        assert s["liquidation_loss_total"] == 0.0
