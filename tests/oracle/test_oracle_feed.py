"""Tests of the oracle feed: publication rules, lookups, and behaviour on real prices."""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from pydantic import ValidationError
from support import REPO

from perpsim.errors import ConfigError
from perpsim.oracle import (
    REASONS,
    FeedUpdates,
    GBMPath,
    HistoricalPath,
    Manipulation,
    OracleFeed,
    OracleFeedConfig,
    Outage,
    build_path,
    parse_timestamp,
)
from perpsim.oracle.config import OracleEma
from perpsim.scenario import load_scenario

DATA = REPO / "scenarios" / "data"
HOUR = 3_600
START = 1_700_000_000  # an arbitrary Unix start time


def minute_ticks(hours: float, step: int = 60) -> npt.NDArray[np.int64]:
    return np.arange(0, int(hours * HOUR) + 1, step, dtype=np.int64)


def step_path(
    ticks: npt.NDArray[np.int64], moves: dict[int, float], p0: float = 100.0
) -> np.ndarray:
    """Constant ``p0``, then the given price from each run time in ``moves`` on."""
    prices = np.full(ticks.shape, p0)
    for at, price in sorted(moves.items()):
        prices[ticks >= at] = price
    return prices


def reference_ema(ticks: np.ndarray, values: list[float], half_life: float) -> list[float]:
    """The documented EMA: each value held since the previous tick, half-life weighting."""
    out = [values[0]]
    for dt, x in zip(np.diff(ticks).tolist(), values[1:], strict=True):
        keep = 0.5 ** (dt / half_life)
        out.append(keep * out[-1] + (1.0 - keep) * x)
    return out


def reference_publish(
    cfg: OracleFeedConfig, ticks: np.ndarray, market: np.ndarray, start: int
) -> list[tuple[int, float, str]]:
    """A plain tick-by-tick implementation of the documented rules, for cross-checking."""
    lat, hb, thr = cfg.latency, cfg.heartbeat, cfg.deviation_threshold
    out: list[tuple[int, float, str]] = []
    ref = 0.0
    last = 0
    next_clock = 0
    observed: list[float] = []
    distorted: list[bool] = []
    for tau, m in zip(ticks.tolist(), market.tolist(), strict=True):
        obs = m
        manipulated = False
        for w in cfg.manipulations:
            if w.start <= tau + lat < w.start + w.duration:
                obs *= 1 + w.spike
                manipulated = True
        observed.append(obs)
        distorted.append(manipulated)
    if cfg.ema is not None:
        observed = reference_ema(ticks, observed, cfg.ema.half_life)
    for i, tau in enumerate(ticks.tolist()):
        seen = tau + lat
        obs, manipulated = observed[i], distorted[i]
        if i == 0:
            out.append((start + tau, obs, "initial"))
            ref, last, next_clock = obs, tau, (tau // hb + 1) * hb
            continue
        if any(o.start <= seen < o.start + o.duration for o in cfg.outages):
            continue
        deviates = abs(obs / ref - 1) >= thr
        beat = tau >= next_clock if cfg.heartbeat_mode == "clock" else tau - last >= hb
        if deviates or beat:
            reason = "manipulation" if manipulated else ("deviation" if deviates else "heartbeat")
            out.append((start + tau + lat, obs, reason))
            ref, last = obs, tau
            if tau >= next_clock:
                next_clock = (tau // hb + 1) * hb
    return out


def as_list(updates: FeedUpdates) -> list[tuple[int, float, str]]:
    return list(
        zip(updates.time.tolist(), updates.price.tolist(), updates.reason.tolist(), strict=True)
    )


# --------------------------------------------------------------------------- the rules


@pytest.mark.parametrize("mode", ["clock", "since_last"])
@pytest.mark.parametrize("latency", [0, 36, 150])
def test_publish_matches_a_tick_by_tick_reference(mode: str, latency: int) -> None:
    gen = np.random.default_rng(np.random.SeedSequence(42))
    ticks = np.cumsum(gen.integers(5, 40, size=30_000)).astype(np.int64)
    market = build_path(GBMPath(s0=2000, sigma=0.6), ticks, gen)
    cfg = OracleFeedConfig(
        heartbeat_mode=mode,
        latency=latency,
        outages=[Outage(start=20_000, duration=9_000), Outage(start=100_000, duration=600)],
        manipulations=[
            Manipulation(start=50_000, duration=1_200, spike=0.08),
            Manipulation(start=200_000, duration=5_000, spike=-0.003),
            Manipulation(start=201_000, duration=900, spike=0.02),
        ],
    )
    got = OracleFeed(cfg, START).publish(ticks, market)
    assert as_list(got) == reference_publish(cfg, ticks, market, START)
    assert {"heartbeat", "deviation", "manipulation"} <= set(got.reason.tolist())
    np.testing.assert_array_equal(got.source_time[1:], got.time[1:] - latency)


@pytest.mark.parametrize(("mode", "latency"), [("clock", 0), ("clock", 36), ("since_last", 36)])
def test_constant_price_publishes_one_heartbeat_per_period(mode: str, latency: int) -> None:
    ticks = minute_ticks(24)
    cfg = OracleFeedConfig(heartbeat_mode=mode, latency=latency)
    up = OracleFeed(cfg, START).publish(ticks, np.full(ticks.shape, 100.0))
    assert up.reason.tolist() == ["initial"] + ["heartbeat"] * 24
    np.testing.assert_array_equal(up.time, START + np.r_[0, np.arange(1, 25) * HOUR + latency])
    ages = up.ages(START + ticks[ticks >= 0])
    assert ages.max() <= HOUR + latency and ages.min() == 0


def test_deviation_reference_is_the_last_published_price() -> None:
    ticks = minute_ticks(2)
    # +0.3% (no update), +0.6% vs the last published price (update), then -0.1% from there
    # although the tick-to-tick move is -0.4% (no update), then -0.5% exactly (update).
    moves = {600: 100.3, 1200: 100.6, 1800: 100.2, 2400: 100.6 * 0.995}
    up = OracleFeed(OracleFeedConfig(latency=0), START).publish(ticks, step_path(ticks, moves))
    assert as_list(up) == [
        (START, 100.0, "initial"),
        (START + 1200, 100.6, "deviation"),
        (START + 2400, 100.6 * 0.995, "deviation"),
        (START + 3600, 100.6 * 0.995, "heartbeat"),
        (START + 7200, 100.6 * 0.995, "heartbeat"),
    ]


def test_clock_heartbeat_ignores_deviations_but_since_last_restarts() -> None:
    ticks = minute_ticks(3)
    prices = step_path(ticks, {600: 101.0})
    clock = OracleFeed(OracleFeedConfig(latency=0), START).publish(ticks, prices)
    since = OracleFeed(OracleFeedConfig(latency=0, heartbeat_mode="since_last"), START).publish(
        ticks, prices
    )
    assert (clock.time - START).tolist() == [0, 600, 3600, 7200, 10800]
    assert (since.time - START).tolist() == [0, 600, 4200, 7800]


def test_latency_delays_readability_and_publishes_the_observed_price() -> None:
    ticks = minute_ticks(2)
    market = step_path(ticks, {900: 102.0, 960: 103.0})
    up = OracleFeed(OracleFeedConfig(latency=90), START).publish(ticks, market)
    assert (up.time[1], up.price[1], up.reason[1]) == (START + 990, 102.0, "deviation")
    # The index at t is the market price at t - latency for the updates.
    for t, p in zip(up.time[1:], up.price[1:], strict=True):
        assert p == market[ticks == t - START - 90][0]
    assert up.index(START + 989) == (100.0, START)
    assert up.index(START + 990) == (102.0, START + 990)
    assert up.age(START + 1000) == 10


def test_outage_suppresses_every_update_and_the_overdue_one_comes_at_its_end() -> None:
    ticks = minute_ticks(8)
    market = step_path(ticks, {2 * HOUR: 110.0})
    cfg = OracleFeedConfig(latency=30, outages=[Outage(start=5_400, duration=3 * HOUR)])
    up = OracleFeed(cfg, START).publish(ticks, market)
    rel = up.time - START
    assert not np.any((rel >= 5_400) & (rel < 5_400 + 3 * HOUR))
    after = int(np.searchsorted(rel, 5_400 + 3 * HOUR))
    # First tick whose update is readable at or after the end (16200 s): tick 16200 - 30 -> 16230.
    assert (rel[after], up.price[after], up.reason[after]) == (16_230, 110.0, "deviation")
    assert up.age(START + 16_229) == 16_229 - 3_630
    # The same outage added at run time through with_outage.
    base = OracleFeed(OracleFeedConfig(latency=30), START)
    again = base.with_outage(5_400, 3 * HOUR).publish(ticks, market)
    assert as_list(again) == as_list(up)
    assert base.config.outages == ()
    assert len(base.publish(ticks, market)) > len(up)


def test_manipulation_spike_is_published_and_reverts() -> None:
    ticks = minute_ticks(4)
    market = np.full(ticks.shape, 100.0)
    feed = OracleFeed(OracleFeedConfig(latency=0), START).with_manipulation(4_000, 600, 0.10)
    up = feed.publish(ticks, market)
    assert (up.time[1:4] - START).tolist() == [3_600, 4_020, 4_620]
    assert up.reason[1:4].tolist() == ["heartbeat", "manipulation", "deviation"]
    np.testing.assert_allclose(up.price[1:4], [100.0, 110.0, 100.0], rtol=1e-12)
    # A spike below the threshold triggers nothing but distorts a heartbeat inside the window.
    small = OracleFeed(OracleFeedConfig(latency=0), START).with_manipulation(7_000, 600, 0.003)
    up2 = small.publish(ticks, market)
    assert (up2.time[2:4] - START).tolist() == [7_200, 10_800]
    assert up2.reason[2:4].tolist() == ["manipulation", "heartbeat"]
    np.testing.assert_allclose(up2.price[2:4], [100.3, 100.0], rtol=1e-12)


# --------------------------------------------------------------------------- the EMA answer

HALF_LIFE = 1_800


def ema_feed(**fields: object) -> OracleFeedConfig:
    return OracleFeedConfig.model_validate({"ema": {"half_life": "30m"}, **fields})


def test_ema_of_a_step_is_the_closed_form_on_irregular_ticks() -> None:
    gen = np.random.default_rng(np.random.SeedSequence(3))
    ticks = np.r_[0, np.cumsum(gen.integers(10, 120, size=400))].astype(np.int64)
    step, before = int(ticks[150]), int(ticks[149])
    market = np.where(ticks >= step, 200.0, 100.0)
    # A tiny threshold publishes every tick whose EMA moved, so every EMA value is visible.
    up = OracleFeed(ema_feed(latency=0, deviation_threshold=1e-9), START).publish(ticks, market)
    rel = up.time - START
    after = rel >= step
    # Each observation counts from the previous tick: the step is taken to start at `before`.
    expected = 100.0 + 100.0 * (1.0 - 2.0 ** (-(rel[after] - before) / HALF_LIFE))
    np.testing.assert_allclose(up.price[after], expected, rtol=1e-12)
    assert rel[after].tolist() == ticks[ticks >= step].tolist()
    np.testing.assert_array_equal(up.price[~after], 100.0)
    # Half the step is in the answer one half-life after it began.
    half = int(np.searchsorted(ticks, before + HALF_LIFE))
    fraction = (up.prices_at([START + int(ticks[half])])[0] - 100.0) / 100.0
    assert fraction == pytest.approx(1.0 - 2.0 ** (-(ticks[half] - before) / HALF_LIFE))
    assert 0.5 <= fraction < 0.5 + 120 / HALF_LIFE


@pytest.mark.parametrize(("mode", "latency"), [("clock", 36), ("since_last", 150)])
def test_ema_composes_with_the_rules_like_the_tick_by_tick_reference(
    mode: str, latency: int
) -> None:
    gen = np.random.default_rng(np.random.SeedSequence(11))
    ticks = np.cumsum(gen.integers(5, 40, size=8_000)).astype(np.int64)
    market = build_path(GBMPath(s0=2000, sigma=1.5), ticks, gen)
    cfg = ema_feed(
        heartbeat_mode=mode,
        latency=latency,
        outages=[Outage(start=20_000, duration=9_000)],
        manipulations=[Manipulation(start=50_000, duration=1_200, spike=0.5)],
    )
    got = as_list(OracleFeed(cfg, START).publish(ticks, market))
    want = reference_publish(cfg, ticks, market, START)
    assert [(t, r) for t, _, r in got] == [(t, r) for t, _, r in want]
    np.testing.assert_allclose([p for _, p, _ in got], [p for _, p, _ in want], rtol=1e-12)
    assert {"heartbeat", "deviation", "manipulation"} <= {r for _, _, r in got}


def test_ema_values_are_what_latency_and_deviation_publish() -> None:
    gen = np.random.default_rng(np.random.SeedSequence(5))
    ticks = minute_ticks(48)
    market = build_path(GBMPath(s0=2000, sigma=1.2), ticks, gen)
    ema = np.asarray(reference_ema(ticks, market.tolist(), HALF_LIFE))
    up = OracleFeed(ema_feed(latency=90), START).publish(ticks, market)
    # The rules run on the EMA: the same updates as a plain feed of the EMA values.
    plain = OracleFeed(OracleFeedConfig(latency=90), START).publish(ticks, ema)
    assert up.time.tolist() == plain.time.tolist()
    assert up.reason.tolist() == plain.reason.tolist()
    np.testing.assert_allclose(up.price, plain.price, rtol=1e-12)
    # Latency: each update is the EMA of its observation tick, readable 90 s later.
    np.testing.assert_array_equal(up.time[1:] - up.source_time[1:], 90)
    np.testing.assert_allclose(up.price, ema[np.searchsorted(ticks, up.source_time - START)])
    # Deviation: the reference is the last published EMA value, and an EMA moves less.
    moved = np.abs(up.price[1:] / up.price[:-1] - 1.0) >= 0.005
    assert np.array_equal(moved, up.reason[1:] == "deviation")
    raw = OracleFeed(OracleFeedConfig(latency=90), START).publish(ticks, market)
    assert 0 < up.count("deviation") < raw.count("deviation")


def test_ema_damps_a_manipulation_and_the_bounds_and_outages_apply_to_it() -> None:
    ticks = minute_ticks(6)
    market = np.full(ticks.shape, 100.0)
    pump = [Manipulation(start=4_000, duration=600, spike=1.0)]  # ticks 4020 to 4560
    naive = OracleFeed(OracleFeedConfig(latency=0, manipulations=pump), START)
    damped = OracleFeed(ema_feed(latency=0, manipulations=pump), START)
    assert naive.publish(ticks, market).price.max() == pytest.approx(200.0)
    up = damped.publish(ticks, market)
    peak = 100.0 + 100.0 * (1.0 - 2.0 ** (-600 / HALF_LIFE))  # the last tick before is 3960
    assert up.price.max() == pytest.approx(peak, rel=1e-12)
    rel = up.time - START
    inside = (rel >= 4_000) & (rel < 4_600)
    assert inside.any() and set(up.reason[inside].tolist()) == {"manipulation"}
    # After the window the answer decays towards the market, by half every half-life.
    later = rel > 4_600
    decay = 100.0 + (peak - 100.0) * 2.0 ** (-(rel[later] - 4_560) / HALF_LIFE)
    np.testing.assert_allclose(up.price[later], decay, rtol=1e-12)
    # max_answer bounds the EMA (the answer), not the pumped observation.
    capped = OracleFeed(ema_feed(latency=0, manipulations=pump, max_answer=110.0), START)
    cap = capped.publish(ticks, market)
    assert 105.0 < cap.price.max() <= 110.0
    # An outage blocks publication only: the first update after it carries the current EMA.
    step = step_path(ticks, {2 * HOUR: 200.0})
    out = OracleFeed(ema_feed(latency=0, outages=[Outage(start=2 * HOUR, duration=HOUR)]), START)
    ou = out.publish(ticks, step)
    first = int(np.searchsorted(ou.time - START, 3 * HOUR))
    assert ou.time[first] - START == 3 * HOUR
    want = 100.0 + 100.0 * (1.0 - 2.0 ** (-(HOUR + 60) / HALF_LIFE))
    assert ou.price[first] == pytest.approx(want, rel=1e-12)
    assert ou.price[first - 1] == 100.0


@pytest.mark.parametrize(
    ("ema", "message"),
    [
        ({"half_life": 0}, "greater than 0"),
        ({"half_life": "-5m"}, "cannot read duration"),
        ({"half_life": 1.5}, "whole number of seconds"),
        ({}, "half_life"),
        ({"half_life": "30m", "window": "1h"}, "window"),
    ],
)
def test_ema_validation(ema: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OracleFeedConfig.model_validate({"ema": ema})


def test_ema_errors_name_the_key_and_the_default_is_off() -> None:
    base = REPO / "scenarios" / "baseline.yaml"
    with pytest.raises(ConfigError, match=r"oracle\.ema\.half_life: must be > 0"):
        load_scenario(base, ["oracle.ema={half_life: 0}"])
    assert load_scenario(base).oracle.ema is None
    assert load_scenario(base, ["oracle.ema={half_life: 30m}"]).oracle.ema == OracleEma(
        half_life=HALF_LIFE
    )


def test_lookups_and_validation() -> None:
    ticks = minute_ticks(3)
    up = OracleFeed(OracleFeedConfig(latency=36), START).publish(ticks, np.full(ticks.shape, 5.0))
    assert len(up) == 4 and up.count("heartbeat") == 3 and up.count("initial") == 1
    assert set(up.reason.tolist()) <= set(REASONS)
    with pytest.raises(ValueError, match="unknown reason"):
        up.count("stale")
    with pytest.raises(ValueError, match="no oracle update is readable"):
        up.index(START - 1)
    with pytest.raises(ValueError, match="no oracle update is readable"):
        up.ages([START, START - 5])
    now = START + np.arange(0, 3 * HOUR, 7)
    assert up.ages(now).tolist() == [up.age(int(t)) for t in now]
    assert up.prices_at(now).tolist() == [up.index(int(t))[0] for t in now]
    feed = OracleFeed(start_time=START)
    with pytest.raises(ValueError, match="strictly increasing"):
        feed.publish(np.array([0, 60, 60]), np.ones(3))
    with pytest.raises(ValueError, match="equal length"):
        feed.publish(np.array([0, 60]), np.ones(3))
    with pytest.raises(ValueError, match=r"tick 1 \(run time 60\)"):
        feed.publish(np.array([0, 60]), np.array([1.0, -1.0]))


def test_publish_is_fast_on_a_million_ticks() -> None:
    gen = np.random.default_rng(np.random.SeedSequence(7))
    ticks = np.arange(1_000_000, dtype=np.int64) * 12  # 139 days of 12 s blocks
    market = build_path(GBMPath(s0=2000, sigma=1.0), ticks, gen)
    began = time.perf_counter()
    up = OracleFeed(OracleFeedConfig(), START).publish(ticks, market)
    elapsed = time.perf_counter() - began
    assert len(up) > 3_000
    assert elapsed < 5.0, f"publish took {elapsed:.2f} s on 10^6 ticks"


# --------------------------------------------------------------------------- real prices


def feed_statistics(times: np.ndarray, prices: np.ndarray) -> dict[str, float]:
    """Statistics of a sequence of oracle updates, the same for Chainlink and the model."""
    gaps = np.diff(times)
    moves = np.abs(prices[1:] / prices[:-1] - 1)
    deviation = moves >= 0.005
    return {
        "median_gap": float(np.median(gaps)),
        "mean_gap": float(gaps.mean()),
        "max_gap": float(gaps.max()),
        "deviation_share": float(deviation.mean()),
        "deviation_count": float(deviation.sum()),
    }


def test_default_feed_on_real_eth_prices_behaves_like_chainlink() -> None:
    """The default feed on real ETH prices reproduces the Chainlink ETH/USD rounds.

    Market: Binance ETHUSDT hourly opens of 2023-09 to 2023-12, bridged to 12 s ticks (the
    block time of the Chainlink timestamps) by a seeded log-price Brownian bridge with the data's
    local volatility. Reference: the Chainlink ETH/USD rounds of the same four months.

    Over 20 seeds the model gave: deviation share 0.319 to 0.336 (Chainlink 0.315), median gap
    2,772 to 3,060 s (Chainlink 2,604 s), mean gap +6% to +9%, deviation-update count -7% to +0%.
    The tolerances below cover that seed spread plus the known modelling differences: the model
    sees one venue (Binance spot, bridged) where Chainlink aggregates many; Chainlink has about
    265 extra non-deviation rounds a few minutes after its hourly one (5.7% of rounds) that no
    heartbeat-and-deviation rule produces, which lowers its gaps; and the gap distribution has
    an atom at the 3,600 s heartbeat holding ~45% of gaps, so the median moves by hundreds of
    seconds for a small change in the deviation rate (hence the looser median bound).
    """
    rounds = pd.read_csv(DATA / "chainlink_eth_usd_rounds_2023-09_2023-12.csv")
    cl_t = rounds["updated_at"].to_numpy(dtype=np.int64)
    cl_p = rounds["price_usd"].to_numpy(dtype=np.float64)
    chainlink = feed_statistics(cl_t, cl_p)
    # The shipped slice has the documented statistics.
    assert len(rounds) == 4_675
    assert chainlink["median_gap"] == 2_604 and chainlink["max_gap"] == 3_720
    assert chainlink["deviation_share"] == pytest.approx(0.3147, abs=5e-4)
    # Its heartbeat runs on a clock: non-deviation rounds come at minute 55-56 once an hour.
    minute = (cl_t[1:] % HOUR) // 60
    beats = ~(np.abs(cl_p[1:] / cl_p[:-1] - 1) >= 0.005)
    on_clock = beats & np.isin(minute, [55, 56])
    hours = (cl_t[-1] - cl_t[0]) / HOUR
    assert on_clock.sum() / beats.sum() > 0.9
    assert abs(on_clock.sum() / hours - 1) < 0.01

    start, end = parse_timestamp("2023-09-01"), parse_timestamp("2024-01-01")
    ticks = np.arange(0, end - start + 1, 12, dtype=np.int64)
    market = build_path(
        HistoricalPath(file="eth_usdt_binance_spot_1h_2023-09_2023-12.csv", interpolation="bridge"),
        ticks,
        np.random.default_rng(np.random.SeedSequence(20230901)),
        DATA,
        start_time=start,
    )
    updates = OracleFeed(OracleFeedConfig(), start).publish(ticks, market)
    model = feed_statistics(updates.time[1:], updates.price[1:])  # skip the synthetic initial

    assert abs(model["deviation_share"] - chainlink["deviation_share"]) <= 0.03
    assert abs(model["deviation_count"] / chainlink["deviation_count"] - 1) <= 0.10
    assert abs(model["median_gap"] / chainlink["median_gap"] - 1) <= 0.20
    assert abs(model["mean_gap"] / chainlink["mean_gap"] - 1) <= 0.12
    assert model["max_gap"] <= 3_600 <= chainlink["max_gap"] <= 3_720
    # One update at each hourly clock tick (a heartbeat, or a deviation that fell on it).
    on_the_hour = (updates.source_time[1:] - start) % HOUR == 0
    assert on_the_hour.sum() == (end - start) // HOUR
    # Every deviation update moved the price by at least the threshold, and no other did.
    moved = np.abs(updates.price[1:] / updates.price[:-1] - 1) >= 0.005
    assert np.array_equal(moved, updates.reason[1:] == "deviation")

    # The textbook "since last update" heartbeat does not reproduce Chainlink: its median gap
    # is the full heartbeat and far more of its updates are deviations.
    textbook = OracleFeed(OracleFeedConfig(heartbeat_mode="since_last"), start).publish(
        ticks, market
    )
    other = feed_statistics(textbook.time[1:], textbook.price[1:])
    assert other["median_gap"] >= 1.3 * chainlink["median_gap"]
    assert other["deviation_share"] - chainlink["deviation_share"] > 0.06
