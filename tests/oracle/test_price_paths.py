"""Tests of the price-path generators, their configuration and the historical data loader.

Statistical tests use tolerances of four standard errors derived from the sampling error of the
statistic on the path generated (a false failure has probability below 1e-4 for any seed); the
seeds are fixed so the suite is deterministic.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError
from support import REPO

from perpsim.errors import ConfigError
from perpsim.oracle import (
    SECONDS_PER_YEAR,
    BootstrapPath,
    ConstantPath,
    GBMPath,
    HistoricalPath,
    JumpDiffusionPath,
    OracleFeedConfig,
    PricePathConfig,
    Regime,
    RegimeSwitchingPath,
    Shock,
    build_path,
    parse_duration,
    parse_timestamp,
    path_start_time,
    regime_switching_path,
    resample,
)

DATA = REPO / "scenarios" / "data"
EVENTS = "events_1h.csv"
BT_SPOT = {"event": "black_thursday_2020", "market": "binance_spot_ETHUSDT"}
HOUR = 3_600
DAY = 86_400
ADAPTER: TypeAdapter[Any] = TypeAdapter(PricePathConfig)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed))


def read_rows(path: Path, **where: str) -> list[dict[str, str]]:
    """Reads a CSV with the csv module (independently of the loader under test)."""
    with path.open(newline="") as fh:
        return [r for r in csv.DictReader(fh) if all(r[k] == v for k, v in where.items())]


def write_csv(
    path: Path, rows: Sequence[tuple[object, object]], header: str = "timestamp,open"
) -> Path:
    lines = [header] + [f"{t},{p}" for t, p in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def hourly_rows(
    n: int, start: int = 1_700_000_000, price: float = 100.0
) -> list[tuple[int, float]]:
    return [(start + i * HOUR, price + i) for i in range(n)]


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (3600, 3600),
        (0, 0),
        ("3600", 3600),
        ("90s", 90),
        ("30m", 1800),
        ("2h", 7200),
        ("1d", 86_400),
        ("1w", 604_800),
        ("1h30m", 5400),
        (" 2H ", 7200),
        (60.0, 60),
    ],
)
def test_parse_duration_accepts_seconds_and_units(value: object, seconds: int) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["2x", "", "h", "1.5h", "-2h", 1.5, True, None, [60]])
def test_parse_duration_rejects_other_values_with_a_clear_message(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


def test_parse_timestamp_reads_unix_seconds_and_iso_8601() -> None:
    assert parse_timestamp(1583971200) == 1583971200
    assert parse_timestamp("2020-03-12") == 1583971200
    assert parse_timestamp("2020-03-12T10:00:00Z") == 1583971200 + 10 * HOUR
    assert parse_timestamp("2020-03-12T11:00:00+01:00") == 1583971200 + 10 * HOUR
    for bad in ("12/03/2020 noon", "2020-03-12T10:00:00.5Z", 1.5, True):
        with pytest.raises(ValueError, match="time"):
            parse_timestamp(bad)


def test_path_config_is_a_discriminated_union_with_duration_strings() -> None:
    cfg = ADAPTER.validate_python(
        {
            "kind": "gbm",
            "s0": 2000,
            "mu": 0.1,
            "sigma": 0.8,
            "shocks": [{"at": "1d", "change": -0.3, "over": "2h"}],
        }
    )
    assert isinstance(cfg, GBMPath)
    assert cfg.shocks == (Shock(at=DAY, change=-0.3, over=2 * HOUR),)
    regimes = ADAPTER.validate_python(
        {
            "kind": "regime_switching",
            "s0": 1,
            "regimes": [{"sigma": 0.5, "mean_duration": "2d"}, {"sigma": 2, "mean_duration": "6h"}],
            "initial_regime": 1,
        }
    )
    assert regimes.regimes[0].mean_duration == 2 * DAY
    hist = ADAPTER.validate_python(
        {"kind": "historical", "file": EVENTS, "filter": BT_SPOT, "start": "2020-03-12"}
    )
    assert isinstance(hist, HistoricalPath)
    assert hist.start == 1583971200
    assert isinstance(ADAPTER.validate_python({"kind": "constant", "price": 1}), ConstantPath)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "gbm", "s0": 100, "sigma": -0.1}, "sigma"),
        ({"kind": "gbm", "s0": 0, "sigma": 0.1}, "s0"),
        ({"kind": "gbm", "s0": float("nan"), "sigma": 0.1}, "s0"),
        ({"kind": "gbm", "s0": 1, "sigma": 0.1, "volatility": 1}, "volatility"),
        ({"kind": "constant", "price": -1}, "price"),
        ({"kind": "jump_diffusion", "s0": 1, "sigma": 0, "jump_intensity": -1}, "jump_intensity"),
        (
            {"kind": "jump_diffusion", "s0": 1, "sigma": 0, "jump_intensity": 1, "jump_std": -1},
            "jump_std",
        ),
        ({"kind": "constant", "price": 1, "shocks": [{"at": 0, "change": -1}]}, "change"),
        ({"kind": "constant", "price": 1, "shocks": [{"at": -5, "change": 0.1}]}, "at"),
        (
            {"kind": "constant", "price": 1, "shocks": [{"at": 0, "change": 0.1, "over": "x"}]},
            "over",
        ),
        ({"kind": "regime_switching", "s0": 1, "regimes": []}, "regimes"),
        (
            {"kind": "regime_switching", "s0": 1, "regimes": [{"sigma": 1, "mean_duration": 0}]},
            "mean_duration",
        ),
        (
            {
                "kind": "regime_switching",
                "s0": 1,
                "regimes": [{"sigma": 1, "mean_duration": 10}],
                "initial_regime": 1,
            },
            "initial_regime",
        ),
        ({"kind": "historical", "file": "x.csv", "interpolation": "cubic"}, "interpolation"),
        ({"kind": "historical", "file": "x.csv", "start": 10, "end": 10}, "end"),
        ({"kind": "historical", "file": "x.csv", "start": "yesterday"}, "start"),
        ({"kind": "bootstrap", "file": "x.csv", "block_length": 0}, "block_length"),
        ({"kind": "brownian", "s0": 1}, "kind"),
    ],
)
def test_bad_path_configs_are_rejected_naming_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        ADAPTER.validate_python(data)
    assert field in str(info.value)


def test_configs_are_frozen() -> None:
    cfg = GBMPath(s0=1, sigma=0.5)
    with pytest.raises(ValidationError):
        cfg.sigma = 0.6  # type: ignore[misc]
    feed = OracleFeedConfig(heartbeat="30m", outages=[{"start": "1h", "duration": "10m"}])
    assert feed.heartbeat == 1800
    assert feed.outages[0].start == HOUR and feed.outages[0].duration == 600


# --------------------------------------------------------------------------- generators


def test_build_path_rejects_bad_tick_times() -> None:
    cfg = ConstantPath(price=1)
    for bad in (np.array([-1, 0]), np.array([0, 10, 5]), np.zeros((2, 2), int), np.array([0.5])):
        with pytest.raises(ValueError, match="tick times"):
            build_path(cfg, bad, rng(0))


def test_gbm_log_returns_have_the_configured_drift_and_volatility() -> None:
    mu, sigma = 0.3, 0.8
    ticks = np.arange(1, 10 * 8760 + 1, dtype=np.int64) * HOUR  # 10 years of hourly ticks
    prices = build_path(GBMPath(s0=2000, mu=mu, sigma=sigma), ticks, rng(1))
    r = np.diff(np.log(np.concatenate(([2000.0], prices))))
    dt = HOUR / SECONDS_PER_YEAR
    years = ticks[-1] / SECONDS_PER_YEAR
    drift_hat = r.sum() / years  # annualised mean log return; standard error sigma / sqrt(T)
    assert abs(drift_hat - (mu - sigma**2 / 2)) < 4 * sigma / math.sqrt(years)
    vol_hat = r.std(ddof=1) / math.sqrt(dt)  # standard error ~ sigma / sqrt(2n)
    assert abs(vol_hat - sigma) < 4 * sigma / math.sqrt(2 * r.size)


def test_gbm_handles_irregular_ticks_and_starts_at_s0() -> None:
    gen = rng(2)
    steps = gen.integers(1, 4 * HOUR, size=50_000)
    ticks = np.concatenate(([0], np.cumsum(steps))).astype(np.int64)
    mu, sigma = -0.2, 1.2
    prices = build_path(GBMPath(s0=50, mu=mu, sigma=sigma), ticks, rng(3))
    assert prices[0] == 50.0
    dt = np.diff(ticks) / SECONDS_PER_YEAR
    z = (np.diff(np.log(prices)) - (mu - sigma**2 / 2) * dt) / (sigma * np.sqrt(dt))
    n = z.size
    assert abs(z.mean()) < 4 / math.sqrt(n)
    assert abs(z.var() - 1) < 4 * math.sqrt(2 / n)


def test_jump_diffusion_jump_count_and_sizes_match_the_intensity() -> None:
    lam, m, s = 60.0, -0.05, 0.01
    ticks = np.arange(1, 10 * 8760 + 1, dtype=np.int64) * HOUR
    cfg = JumpDiffusionPath(s0=100, mu=0, sigma=0, jump_intensity=lam, jump_mean=m, jump_std=s)
    prices = build_path(cfg, ticks, rng(4))
    dt = HOUR / SECONDS_PER_YEAR
    kappa = math.expm1(m + s**2 / 2)
    r = np.diff(np.log(np.concatenate(([100.0], prices))))
    excess = r - (-lam * kappa) * dt  # sigma = 0: everything but the drift is a jump
    jumped = np.abs(excess) > 1e-9
    p_jump = 1 - math.exp(-lam * dt)
    expected = ticks.size * p_jump
    assert abs(jumped.sum() - expected) < 4 * math.sqrt(ticks.size * p_jump * (1 - p_jump))
    sizes = excess[jumped]  # ~ all single jumps: P(2+ | 1+) is about lam*dt/2 = 0.3%
    assert abs(sizes.mean() - m) < 4 * math.sqrt(s**2 + m**2 * lam * dt) / math.sqrt(sizes.size)
    assert abs(sizes.std() / s - 1) < 0.25


def test_jump_diffusion_log_return_moments_include_the_compensated_drift() -> None:
    mu, sigma, lam, m, s = 0.1, 0.5, 20.0, -0.04, 0.03
    cfg = JumpDiffusionPath(s0=1, mu=mu, sigma=sigma, jump_intensity=lam, jump_mean=m, jump_std=s)
    ticks = np.arange(1, 40 * 8760 + 1, dtype=np.int64) * HOUR  # 40 years
    r = np.diff(np.log(np.concatenate(([1.0], build_path(cfg, ticks, rng(5))))))
    years = ticks[-1] / SECONDS_PER_YEAR
    kappa = math.expm1(m + s**2 / 2)
    mean_per_year = mu - sigma**2 / 2 - lam * kappa + lam * m
    var_per_year = sigma**2 + lam * (m**2 + s**2)
    assert abs(r.sum() / years - mean_per_year) < 4 * math.sqrt(var_per_year / years)
    dt = HOUR / SECONDS_PER_YEAR
    # Variance of r^2 estimated from the sample itself (fat tails from the jumps).
    var_hat = (r**2).mean() / dt
    se = (r**2).std() / dt / math.sqrt(r.size)
    assert abs(var_hat - var_per_year) < 4 * se


def _stationary_and_asymptotic_variance(durations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stationary law of the regime chain and the asymptotic variance of each occupancy."""
    n = durations.size
    rates = 1 / durations
    q = (rates[:, None] / (n - 1)) * (1 - np.eye(n)) - np.diag(rates)
    pi = durations / durations.sum()
    asym = np.empty(n)
    for i in range(n):
        g = (np.arange(n) == i).astype(float) - pi[i]
        # Poisson equation Q h = -g with pi . h = 0.
        a = np.vstack((q, pi))
        h = np.linalg.lstsq(a, np.concatenate((-g, [0.0])), rcond=None)[0]
        asym[i] = 2 * np.sum(pi * g * h)
    return pi, asym


def test_regime_occupancy_matches_the_stationary_distribution() -> None:
    durations = np.array([3 * DAY, DAY, 6 * HOUR], dtype=float)
    sigmas = [0.3, 0.8, 2.0]
    cfg = RegimeSwitchingPath(
        s0=1000,
        mu=0.05,
        regimes=[
            Regime(sigma=s, mean_duration=int(d)) for s, d in zip(sigmas, durations, strict=True)
        ],
    )
    horizon = 6 * 365 * DAY
    ticks = np.arange(0, horizon + 1, 600, dtype=np.int64)
    res = regime_switching_path(cfg, ticks, rng(6))
    bounds = np.concatenate(([0.0], res.switch_times, [float(horizon)]))
    occupancy = np.bincount(res.states, weights=np.diff(bounds), minlength=3) / horizon
    pi, asym = _stationary_and_asymptotic_variance(durations)
    se = np.sqrt(asym / horizon)
    assert np.all(np.abs(occupancy - pi) < 4 * se), (occupancy, pi, se)
    # The per-tick regime is the chain's state at that tick.
    assert np.array_equal(
        res.regime, res.states[np.searchsorted(bounds[:-1], ticks, side="right") - 1]
    )
    # Within each regime the log-returns have that regime's volatility.
    r = np.diff(np.log(res.prices))
    dt = 600 / SECONDS_PER_YEAR
    switches_between = np.diff(np.searchsorted(res.switch_times, ticks, side="left"))
    steady = switches_between == 0
    for i, sigma in enumerate(sigmas):
        sel = steady & (res.regime[1:] == i)
        z = (r[sel] - (cfg.mu - sigma**2 / 2) * dt) / (sigma * math.sqrt(dt))
        assert abs(z.var() - 1) < 4 * math.sqrt(2 / z.size)
    # build_path gives the same prices for the same seed.
    assert np.array_equal(build_path(cfg, ticks, rng(6)), res.prices)


def test_regime_switching_with_one_regime_is_gbm_and_initial_regime_is_used() -> None:
    ticks = np.arange(0, 200 * DAY, HOUR, dtype=np.int64)
    one = RegimeSwitchingPath(s0=10, regimes=[Regime(sigma=0.6, mean_duration=DAY)])
    res = regime_switching_path(one, ticks, rng(7))
    assert res.switch_times.size == 0 and np.all(res.regime == 0)
    two = RegimeSwitchingPath(
        s0=10,
        regimes=[Regime(sigma=0.1, mean_duration=DAY), Regime(sigma=2, mean_duration=DAY)],
        initial_regime=1,
    )
    res2 = regime_switching_path(two, ticks, rng(8))
    assert res2.regime[0] == 1 and set(np.unique(res2.regime)) == {0, 1}


# --------------------------------------------------------------------------- shocks


def test_shock_ramps_the_log_price_linearly_and_stays() -> None:
    cfg = ConstantPath(price=100, shocks=[Shock(at=HOUR, change=-0.3, over=1800)])
    ticks = np.array([0, 1800, 3600, 4500, 5400, 9000], dtype=np.int64)
    prices = build_path(cfg, ticks, rng(0))
    expected = [100, 100, 100, 100 * 0.7**0.5, 70, 70]
    np.testing.assert_allclose(prices, expected, rtol=1e-12)
    step = build_path(ConstantPath(price=100, shocks=[Shock(at=HOUR, change=0.5)]), ticks, rng(0))
    np.testing.assert_allclose(step, [100, 100, 150, 150, 150, 150], rtol=1e-12)


def test_shocks_compose_with_any_generator_without_changing_its_randomness() -> None:
    ticks = np.arange(0, 3 * DAY, 60, dtype=np.int64)
    shocks = [Shock(at=DAY, change=-0.4, over=2 * HOUR), Shock(at=2 * DAY, change=0.25)]
    base = GBMPath(s0=3000, mu=0.1, sigma=0.9)
    plain = build_path(base, ticks, rng(9))
    shocked = build_path(base.model_copy(update={"shocks": tuple(shocks)}), ticks, rng(9))
    ramp = np.clip((ticks - DAY) / (2 * HOUR), 0, 1)
    factor = 0.6**ramp * np.where(ticks >= 2 * DAY, 1.25, 1.0)
    np.testing.assert_allclose(shocked / plain, factor, rtol=1e-12)
    hist = HistoricalPath(file=EVENTS, filter=BT_SPOT, shocks=[Shock(at=HOUR, change=-0.5)])
    t = np.array([0, HOUR], dtype=np.int64)
    unshocked = build_path(hist.model_copy(update={"shocks": ()}), t, rng(0), DATA)
    np.testing.assert_allclose(build_path(hist, t, rng(0), DATA), unshocked * [1, 0.5])


# --------------------------------------------------------------------------- determinism


DETERMINISM_CASES: list[PricePathConfig] = [
    GBMPath(s0=100, mu=0.05, sigma=0.7),
    JumpDiffusionPath(s0=100, sigma=0.5, jump_intensity=30, jump_mean=-0.05, jump_std=0.05),
    RegimeSwitchingPath(
        s0=100,
        regimes=[Regime(sigma=0.3, mean_duration=DAY), Regime(sigma=1.5, mean_duration=HOUR)],
    ),
    HistoricalPath(file=EVENTS, filter=BT_SPOT, interpolation="bridge"),
    BootstrapPath(file=EVENTS, filter=BT_SPOT, block_length="6h"),
]


@pytest.mark.parametrize("cfg", DETERMINISM_CASES, ids=lambda c: c.kind)
def test_same_seed_gives_an_identical_path_and_another_seed_a_different_one(
    cfg: PricePathConfig,
) -> None:
    ticks = np.arange(0, 5 * DAY, 60, dtype=np.int64)
    a = build_path(cfg, ticks, rng(123), DATA)
    b = build_path(cfg, ticks, rng(123), DATA)
    c = build_path(cfg, ticks, rng(124), DATA)
    assert a.dtype == np.float64 and a.shape == ticks.shape
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.all(np.isfinite(a)) and np.all(a > 0)


# --------------------------------------------------------------------------- historical replay


def _bt_spot_rows() -> tuple[np.ndarray, np.ndarray]:
    rows = read_rows(DATA / EVENTS, **BT_SPOT)
    t = np.array([int(r["timestamp"]) for r in rows], dtype=np.int64)
    p = np.array([float(r["open"]) for r in rows])
    return t, p


@pytest.mark.parametrize("interpolation", ["linear", "previous", "bridge"])
def test_historical_replay_equals_the_data_at_the_data_timestamps(interpolation: str) -> None:
    t, p = _bt_spot_rows()
    assert t.size == 192
    cfg = HistoricalPath(file=EVENTS, filter=BT_SPOT, interpolation=interpolation)
    start = path_start_time(cfg, DATA)
    assert start == t[0]
    prices = build_path(cfg, t - t[0], rng(10), DATA)
    assert np.array_equal(prices, p)
    # The same through an explicit start time and a window, on a minute grid.
    ticks = np.arange(0, 24 * HOUR + 1, 60, dtype=np.int64)
    day_start = parse_timestamp("2020-03-12")
    windowed = cfg.model_copy(update={"start": day_start, "end": day_start + 2 * DAY})
    minute = build_path(windowed, ticks, rng(11), DATA, start_time=day_start)
    on_data = (ticks % HOUR) == 0
    i0 = int(np.searchsorted(t, day_start))
    assert np.array_equal(minute[on_data], p[i0 : i0 + 25])


def test_historical_linear_and_previous_interpolation_between_data_points() -> None:
    _, p = _bt_spot_rows()
    ticks = np.array([1800, HOUR + 900], dtype=np.int64)
    lin = build_path(HistoricalPath(file=EVENTS, filter=BT_SPOT), ticks, rng(0), DATA)
    np.testing.assert_allclose(lin, [(p[0] + p[1]) / 2, 0.75 * p[1] + 0.25 * p[2]], rtol=1e-12)
    prev_cfg = HistoricalPath(file=EVENTS, filter=BT_SPOT, interpolation="previous")
    assert np.array_equal(build_path(prev_cfg, ticks, rng(0), DATA), p[[0, 1]])


def test_historical_reads_iso_times_of_the_ten_minute_days() -> None:
    for day in ("2020-03-12", "2021-05-19"):
        file = f"eth_usd_10min_{day}.csv"
        rows = read_rows(DATA / file)
        assert len(rows) == 24 * 6  # the whole day, one row per ten minutes
        cfg = HistoricalPath(file=file, time_column="period_end_utc", price_column="close")
        start = path_start_time(cfg, DATA)
        assert start == parse_timestamp(rows[0]["period_end_utc"])
        ticks = np.arange(0, 143 * 600 + 1, 600, dtype=np.int64)
        assert np.array_equal(
            build_path(cfg, ticks, rng(0), DATA), [float(r["close"]) for r in rows]
        )


def test_every_shipped_event_series_loads() -> None:
    rows = read_rows(DATA / EVENTS)
    series = sorted({(r["event"], r["market"]) for r in rows})
    assert series
    for event, market in series:
        cfg = HistoricalPath(file=EVENTS, filter={"event": event, "market": market})
        expected = [float(r["open"]) for r in rows if (r["event"], r["market"]) == (event, market)]
        ticks = np.arange(len(expected), dtype=np.int64) * HOUR
        assert np.array_equal(build_path(cfg, ticks, rng(0), DATA), expected)


def test_historical_ticks_outside_the_data_are_an_error() -> None:
    cfg = HistoricalPath(file=EVENTS, filter=BT_SPOT)
    with pytest.raises(ConfigError, match="only covers 2020-03-09T00:00:00Z"):
        build_path(cfg, np.array([0, 200 * HOUR]), rng(0), DATA)
    with pytest.raises(ConfigError, match="only covers"):
        build_path(cfg, np.array([0]), rng(0), DATA, start_time=parse_timestamp("2020-01-01"))


def test_relative_files_resolve_against_base_dir(tmp_path: Path) -> None:
    write_csv(tmp_path / "p.csv", hourly_rows(3))
    cfg = HistoricalPath(file="p.csv")
    np.testing.assert_array_equal(
        build_path(cfg, np.array([0, HOUR]), rng(0), tmp_path), [100, 101]
    )
    with pytest.raises(ConfigError, match=r"'p.csv' \(relative to .*\) not found"):
        build_path(cfg, np.array([0]), rng(0), tmp_path / "elsewhere")


def _gbm_csv(path: Path, sigma: float, hours: int, seed: int, jump_at: int | None = None) -> Path:
    gen = rng(seed)
    r = sigma * math.sqrt(HOUR / SECONDS_PER_YEAR) * gen.standard_normal(hours)
    if jump_at is not None:
        r[jump_at] += math.log(0.8)
    prices = 1000 * np.exp(np.concatenate(([0.0], np.cumsum(r))))
    return write_csv(
        path, [(1_600_000_000 + i * HOUR, repr(float(v))) for i, v in enumerate(prices)]
    )


def test_bridge_has_the_volatility_of_the_data_inside_each_interval(tmp_path: Path) -> None:
    sigma, hours = 0.7, 8_000
    _gbm_csv(tmp_path / "gbm.csv", sigma, hours, seed=12)
    cfg = HistoricalPath(file="gbm.csv", interpolation="bridge")
    ticks = np.arange(0, hours * HOUR + 1, 600, dtype=np.int64)
    prices = build_path(cfg, ticks, rng(13), tmp_path)
    r = np.diff(np.log(prices))
    # The bridge's realized variance estimates the data's integrated variance through the local
    # MedRV estimates, whose relative standard error is sqrt(2.96 / n_hours) (Andersen, Dobrev &
    # Schaumburg 2012), plus sqrt(2 / n_ticks) for the fine-scale sampling.
    realized = (r**2).sum() / (ticks[-1] / SECONDS_PER_YEAR)
    se = math.sqrt(2.96 / hours) + math.sqrt(2 / r.size)
    assert abs(realized / sigma**2 - 1) < 4 * se
    # Linear interpolation, by contrast, has only the hourly variance spread over 6 ticks.
    linear = build_path(
        cfg.model_copy(update={"interpolation": "linear"}), ticks, rng(13), tmp_path
    )
    linear_rv = (np.diff(np.log(linear)) ** 2).sum() / (ticks[-1] / SECONDS_PER_YEAR)
    assert abs(linear_rv / sigma**2 - 1 / 6) < 0.05


def test_bridge_volatility_is_not_inflated_around_a_jump(tmp_path: Path) -> None:
    sigma, hours, jump = 0.6, 400, 200
    _gbm_csv(tmp_path / "jump.csv", sigma, hours, seed=14, jump_at=jump)
    ticks = np.arange(0, hours * HOUR + 1, 60, dtype=np.int64)
    prices = build_path(
        HistoricalPath(file="jump.csv", interpolation="bridge"), ticks, rng(15), tmp_path
    )
    r = np.diff(np.log(prices))
    hour_of = (ticks[1:] - 1) // HOUR
    near = (np.abs(hour_of - jump) <= 12) & (hour_of != jump)
    per_hour = (r[near] ** 2).sum() / near.sum() * 60
    expected = sigma**2 * HOUR / SECONDS_PER_YEAR
    # A plain mean of r^2 over 24 h would put the 22% jump's r^2 = 0.05 into every neighbour
    # (about 50 x the diffusive variance); the median of three neighbouring returns (MedRV)
    # ignores it.
    assert per_hour < 4 * expected


def test_resample_rejects_unknown_method_and_bridge_without_rng() -> None:
    with pytest.raises(ValueError, match="unknown interpolation"):
        resample([0, 10], [1.0, 2.0], [5], "cubic")
    with pytest.raises(ValueError, match="random generator"):
        resample([0, 10], [1.0, 2.0], [5], "bridge")


# --------------------------------------------------------------------------- bad data


def _load(path: Path, **kwargs: Any) -> np.ndarray:
    cfg = HistoricalPath(file=str(path), **kwargs)
    return build_path(cfg, np.array([0], dtype=np.int64), rng(0), None)


def test_missing_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        _load(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"time_column": "time"}, "time_column 'time' is not in the file"),
        ({"price_column": "close"}, "price_column 'close' is not in the file"),
        ({"filter": {"market": "x"}}, "filter column 'market' is not in the file"),
    ],
)
def test_missing_columns_are_rejected(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    path = write_csv(tmp_path / "p.csv", hourly_rows(3))
    with pytest.raises(ConfigError, match=message) as info:
        _load(path, **kwargs)
    assert "columns: timestamp, open" in str(info.value) and str(path) in str(info.value)


def test_filter_matching_nothing_lists_the_values(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"filter event='crash' matches no row .*black_thursday_2020"
    ):
        _load(DATA / EVENTS, filter={"event": "crash"})


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [(1, 10), (3601, ""), (7201, 12)],
            r"line 3 at .*\(3601\): price \('open'\) is missing or NaN",
        ),
        ([(1, 10), (3601, "nan"), (7201, 12)], r"line 3 .* is missing or NaN"),
        ([(1, 10), (3601, "abc"), (7201, 12)], r"line 3 .* is 'abc', not a finite number"),
        ([(1, 10), (3601, 0), (7201, 12)], r"line 3 .* is 0.0; prices must be positive"),
        ([(1, 10), (3601, 11), (7201, -12)], r"line 4 .* is -12.0; prices must be positive"),
        ([(1, 10), ("", 11), (7201, 12)], r"line 3: the time \('timestamp'\) is missing"),
        ([(1, 10), (7201, 11), (3601, 12)], r"line 4: time .*\(3601\).* is earlier than"),
        ([(1, 10), (3601, 11), (3601, 12)], r"line 4: time .*\(3601\).* is duplicated"),
        ([(1, 10), ("soon", 11)], r"line 3: cannot read time 'soon'.*must be a number"),
        ([("2020-03-12", 10), ("soon", 11)], r"line 3: cannot read time 'soon'.*ISO 8601"),
        ([(1, 10), (3601.5, 11)], r"line 3: time '3601.5' .* not a whole number"),
        (
            [("2020-03-12T00:00:00Z", 10), ("2020-03-12T01:00:00.5Z", 11)],
            r"line 3: time '2020-03-12T01:00:00.5Z' .* not a whole second",
        ),
        ([(1_700_000_000_000, 10), (1_700_000_360_000, 11)], "milliseconds"),
        ([(1, 10)], "at least 2 are needed"),
    ],
)
def test_bad_rows_are_rejected_with_line_and_problem(
    tmp_path: Path, rows: list[tuple[object, object]], message: str
) -> None:
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(ConfigError, match=message) as info:
        _load(path)
    assert str(path) in str(info.value)


def test_gaps_are_rejected_naming_the_timestamps(tmp_path: Path) -> None:
    rows = hourly_rows(10, start=1_583_971_200)
    del rows[4:7]  # three hours missing after 03:00
    path = write_csv(tmp_path / "gap.csv", rows)
    with pytest.raises(ConfigError) as info:
        _load(path)
    text = str(info.value)
    assert "1 gap(s) longer than 1.5 × the median spacing of 3600 s" in text
    assert "14400 s from 2020-03-12T03:00:00Z (1583982000) to 2020-03-12T07:00:00Z" in text
    # A window that avoids the gap, or a looser tolerance, is accepted.
    assert _load(path, end="2020-03-12T03:00:00Z")[0] == 100
    assert _load(path, gap_tolerance=5)[0] == 100


def test_blank_lines_count_in_line_numbers_and_trailing_ones_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("timestamp,open\n1,10\n3601,11\n\n\n")
    assert _load(path)[0] == 10
    path.write_text("timestamp,open\n1,10\n\n3601,11\n")
    with pytest.raises(ConfigError, match=r"line 3: the time \('timestamp'\) is missing"):
        _load(path)


def test_bad_rows_outside_the_window_or_filter_do_not_matter(tmp_path: Path) -> None:
    rows: list[tuple[object, object]] = [(1, -5), (3601, 10), (7201, 11), (10801, 12)]
    path = write_csv(tmp_path / "w.csv", rows)
    assert _load(path, start=3601)[0] == 10
    with pytest.raises(ConfigError, match="must be positive"):
        _load(path)


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_chains_blocks_of_consecutive_data_returns() -> None:
    _, p = _bt_spot_rows()
    data_r = np.diff(np.log(p))
    cfg = BootstrapPath(file=EVENTS, filter=BT_SPOT, block_length="6h")
    ticks = np.arange(0, 30 * DAY + 1, HOUR, dtype=np.int64)
    prices = build_path(cfg, ticks, rng(16), DATA)
    assert prices[0] == p[0]
    r = np.diff(np.log(prices))
    for k in range(0, r.size, 6):
        block = r[k : k + 6]
        starts = np.flatnonzero(np.isclose(data_r, block[0], rtol=0, atol=1e-12))
        assert any(
            np.allclose(data_r[s : s + block.size], block, rtol=0, atol=1e-12) for s in starts
        ), f"block at hour {k} is not a run of consecutive data returns"
    with_s0 = build_path(cfg.model_copy(update={"s0": 2500.0}), ticks, rng(16), DATA)
    np.testing.assert_allclose(with_s0 / prices, 2500 / p[0], rtol=1e-12)


def test_bootstrap_block_longer_than_the_data_is_rejected() -> None:
    cfg = BootstrapPath(file=EVENTS, filter=BT_SPOT, block_length="30d")
    with pytest.raises(ConfigError, match="block_length 2592000 s is 720 data steps"):
        build_path(cfg, np.array([0, HOUR]), rng(0), DATA)
