"""``governance_rules:`` and the oracle guard: validation, firing times, frictions, halts.

Short runs (an hour or two of one-minute ticks, a few agents); each scenario runs once per module.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from perpsim.agents.services.predy_hedger import Hedgeable
from perpsim.agents.traders.arbitrageur import Arbitrageur, FairValued
from support import REPO

from perpsim.engine.core.guard import GuardedVenue, Halts
from perpsim.engine.venue import supports
from perpsim.errors import ConfigError, HaltedError
from perpsim.model import PerpModel
from perpsim.oracle.config import SECONDS_PER_YEAR, OracleFeedConfig
from perpsim.oracle.feed import OracleFeed
from perpsim.run import RunResult, run_scenario
from perpsim.scenario import load_scenario
from perpsim.scenario.rules import SetGovernanceAction

BASELINE = str(REPO / "scenarios" / "baseline.yaml")
SMALL = [
    "agents.noise.count=20",
    "agents.momentum.count=2",
    "agents.lps.count=2",
    "output.record_every=1",
]


def _run(overrides: list[str], *, raw_rules: str | None = None) -> RunResult:
    extra = [f"governance_rules={raw_rules}"] if raw_rules is not None else []
    scenario = load_scenario(BASELINE, [*SMALL, *overrides, *extra])
    result = run_scenario(scenario, base_dir=REPO / "scenarios")
    assert result.error is None, result.error
    return result


VOL_RULE = (
    "[{name: vol_mm, metric: realized_volatility, window: 30m, above: 1.2,"
    " action: {kind: set_governance, key: maintenance_margin_rate, add: 0.01, limit: 0.09},"
    " latency: 5m, cooldown: 20m, expiry: 1h}]"
)


@pytest.fixture(scope="module")
def vol_run() -> RunResult:
    return _run(
        ["clock.duration=3h", "events=[{at: 1h, kind: price_shock, change: -0.12, over: 6m}]"],
        raw_rules=VOL_RULE,
    )


def _rule_events(result: RunResult, stage: str | None = None) -> pd.DataFrame:
    ev = result.events
    out = ev[ev["kind"] == "governance_rule"]
    return out if stage is None else out[out["stage"] == stage]


def test_rule_fires_when_the_series_crosses_and_applies_after_its_latency(
    vol_run: RunResult,
) -> None:
    ts = vol_run.timeseries
    prices = ts["market_price"].to_numpy(dtype=np.float64)
    times = ts["time"].to_numpy()
    # The metric from the recorded series: 30 one-minute returns, annualised.
    first = None
    for k in range(30, len(prices)):
        r = np.diff(np.log(prices[k - 30 : k + 1]))
        if math.sqrt(float(r @ r) * SECONDS_PER_YEAR / 1800) > 1.2:
            first = k
            break
    assert first is not None
    decided = _rule_events(vol_run, "decided")
    assert decided["time"].iloc[0] == pd.Timestamp(times[first])
    applied = _rule_events(vol_run, "applied")
    gap = applied["time"].iloc[0] - decided["time"].iloc[0]
    assert gap == pd.Timedelta(minutes=5)
    # The cooldown spaces decisions; the limit caps the rise; each change expires after 1 h.
    gaps = decided["time"].diff().dropna()
    assert (gaps >= pd.Timedelta(minutes=20)).all()
    sets = vol_run.events[vol_run.events["kind"] == "set_governance"]
    values = sets["value"].astype(float).to_numpy()
    assert values.max() <= 0.09 + 1e-12
    assert values[0] == pytest.approx(0.085)
    expired = _rule_events(vol_run, "expired")
    assert len(expired) >= 1
    assert expired["time"].iloc[0] - applied["time"].iloc[0] == pd.Timedelta(hours=1)


def test_static_run_is_the_rule_disabled(vol_run: RunResult) -> None:
    rules = VOL_RULE.replace("expiry: 1h}", "expiry: 1h, enabled: false}")
    static = _run(
        ["clock.duration=3h", "events=[{at: 1h, kind: price_shock, change: -0.12, over: 6m}]"],
        raw_rules=rules,
    )
    assert _rule_events(static).empty
    assert (static.events["kind"] == "set_governance").sum() == 0
    # Same market (same seed), different governance.
    assert np.array_equal(
        static.timeseries["market_price"].to_numpy(), vol_run.timeseries["market_price"].to_numpy()
    )


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            "[{name: a, metric: premium, above: 0.005, action: {kind: set_governance,"
            " key: maintenance_margin_rte, add: 0.01}}]",
            "did you mean 'maintenance_margin_rate'",
        ),
        (
            "[{name: a, metric: premium, above: 0.005, action: {kind: set_governance,"
            " key: maintenance_margin_rate, add: 0.05}}]",
            "rejected by the engine",
        ),
        (
            "[{name: a, metric: realized_volatility, above: 1, action: {kind: pause_opening}}]",
            "needs a window",
        ),
        (
            "[{name: a, metric: premium, window: 1h, above: 1, action: {kind: pause_opening}}]",
            "takes no window",
        ),
        (
            "[{name: a, metric: premium, above: 1, below: 0, action: {kind: pause_opening}}]",
            "exactly one of above and below",
        ),
        (
            "[{name: a, metric: premium, above: 1, action: {kind: halt_trading}},"
            " {name: a, metric: premium, above: 2, action: {kind: halt_trading}}]",
            "duplicate rule name",
        ),
    ],
)
def test_bad_rules_are_refused_naming_the_key(rules: str, message: str) -> None:
    with pytest.raises(ConfigError, match="governance_rules") as err:
        load_scenario(BASELINE, [f"governance_rules={rules}"])
    assert message in str(err.value)


def test_bounded_step_and_limit() -> None:
    up = SetGovernanceAction(kind="set_governance", key="k", set=0.2, max_step=0.03, limit=0.15)
    assert up.target(0.1) == pytest.approx(0.13)
    assert up.target(0.13) == pytest.approx(0.15)
    assert up.target(0.15) == 0.15  # at the limit: no change
    down = SetGovernanceAction(kind="set_governance", key="k", multiply=0.5, limit=0.01)
    assert down.target(0.016) == pytest.approx(0.01)


def test_fund_fraction_rule_names_a_fund_the_venue_has() -> None:
    scenario = load_scenario(
        BASELINE,
        [
            *SMALL,
            "clock.duration=10m",
            "governance_rules=[{name: f, metric: fund_fraction, fund: no_such_fund,"
            " below: 0.2, action: {kind: pause_opening}}]",
        ],
    )
    with pytest.raises(ConfigError, match="no fund 'no_such_fund'"):
        PerpModel(scenario, base_dir=REPO / "scenarios")


@pytest.mark.parametrize("kind", ["baseline", "d8x_baseline", "predy_baseline"])
def test_a_halting_rule_stops_trading_on_every_venue_kind(kind: str) -> None:
    scenario = load_scenario(
        str(REPO / "scenarios" / f"{kind}.yaml"),
        [
            "clock.duration=40m",
            "governance_rules=[{name: stop, metric: index_age, above: -1, hold: 20m,"
            " action: {kind: halt_trading}, max_firings: 1}]",
        ],
    )
    result = run_scenario(scenario, base_dir=REPO / "scenarios")
    assert result.error is None, result.error
    ev = result.events
    # First measured at tick 1, held 20 minutes: the halt starts 20 minutes after tick 1.
    tick1 = int(scenario.clock.start) + int(scenario.clock.tick)
    start = pd.Timestamp(tick1 + 20 * 60, unit="s", tz="UTC")
    halt = ev[(ev["kind"] == "halt") & (ev["stage"] == "started")]
    assert list(halt["time"]) == [start]
    trades = ev[ev["kind"].isin(["buy", "sell", "trade"])]
    assert (trades["time"] < start).any()
    assert not (trades["time"] >= start).any()
    assert any(k.startswith("trade:HaltedError") for k in result.summary["rejections"])


def test_pause_opening_refuses_increases_and_lets_positions_close() -> None:
    scenario = load_scenario(BASELINE, [*SMALL, "clock.duration=10m"])
    model = PerpModel(scenario, base_dir=REPO / "scenarios")
    model.run()
    venue = GuardedVenue(model.venue, Halts())
    holder = "test-trader"
    venue.deposit(holder, 100_000.0)
    lot = venue.rules.trading_lot_size
    venue.trade(holder, 3 * lot)
    sign = 1.0
    venue.halts.set("opening", "test", "paused by the test")
    with pytest.raises(HaltedError, match="new positions are paused"):
        venue.trade(holder, sign * lot)
    venue.trade(holder, -sign * lot)  # reducing works
    venue.halts.set("opening", "test", None)
    venue.trade(holder, sign * lot)
    venue.halts.set("withdrawal", "test", "guard")
    with pytest.raises(HaltedError, match="withdrawals are halted"):
        venue.withdraw(holder, 1.0)
    venue.halts.set("withdrawal", "test", None)
    venue.withdraw(holder, 1.0)


def test_feed_freezes_inside_its_answer_bounds() -> None:
    t = np.arange(0, 7200, 60, dtype=np.int64)
    prices = np.geomspace(1.0, 0.01, t.size)
    feed = OracleFeed(OracleFeedConfig(min_answer=0.1, latency=0)).publish(t, prices)
    assert feed.price.min() >= 0.1
    last = int(feed.time[-1])
    # Nothing after the market crossed 0.1: the last answer is just above it and ages.
    crossed = int(t[np.flatnonzero(prices < 0.1)[0]])
    assert last < crossed
    assert feed.age(crossed + 3600) > 3600


def _guard_run(guard: str) -> dict[str, Any]:
    result = _run(
        [
            "clock.duration=2h",
            f"oracle.guard={guard}",
            "events=[{at: 30m, kind: oracle_outage, duration: 40m},"
            " {at: 35m, kind: price_shock, change: -0.2, over: 10m}]",
        ]
    )
    ev = result.events
    return {"events": ev, "summary": result.summary}


def test_staleness_guard_stops_trading_and_liquidation_while_the_index_is_old() -> None:
    # The outage starts at 30 min; the index is older than 10 min from 40 min until it ends.
    out = _guard_run("{max_age: 10m}")
    ev = out["events"]
    halts = ev[ev["kind"] == "halt"]
    assert set(halts["key"]) == {"trading", "liquidation"}
    started = halts[halts["stage"] == "started"]["time"]
    ended = halts[halts["stage"] == "ended"]["time"]
    assert len(started) >= 2 and len(ended) >= 2
    # No trade or liquidation while a halt is on.
    windows = list(zip(started.iloc[::2], ended.iloc[::2], strict=False))
    acts = ev[ev["kind"].isin(["buy", "sell", "trade", "liquidate"])]
    for a, b in windows:
        assert not ((acts["time"] >= a) & (acts["time"] < b)).any()


def test_agents_see_the_capabilities_of_a_guarded_venue() -> None:
    # A halting rule wraps the venue; Python >= 3.12 protocol checks do not see forwarded
    # names, so the arbitrageur of Predy's squared product must still price at fair value.
    scenario = load_scenario(
        str(REPO / "scenarios" / "predy_baseline.yaml"),
        [
            "clock.duration=10m",
            "governance_rules=[{name: stop, metric: index_age, above: 1e9,"
            " action: {kind: halt_trading}}]",
        ],
    )
    model = PerpModel(scenario, base_dir=REPO / "scenarios")
    assert isinstance(model.venue, GuardedVenue)
    assert supports(model.venue, Hedgeable)
    assert supports(model.venue, FairValued)
    assert not supports(GuardedVenue(PerpModel(load_scenario(BASELINE, SMALL)).venue), FairValued)
    model.run()
    squared = model.agents_by_population["squared_arbs"]
    assert all(isinstance(a, Arbitrageur) for a in squared)
    market = model.market_price()
    fair = squared[0].venue.fair_value(market)
    assert fair != pytest.approx(market)
    assert squared[0].reference_price() == pytest.approx(fair)
