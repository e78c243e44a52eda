"""A historical path through each bar's high and low (``price_path.bars``), and Black Thursday.

Through the hourly opens alone, ``black_thursday.yaml``'s path bottomed at about 93 USD; the
real low of 86.00 came inside the hour that opened at 96.51 on 2020-03-13T02:00.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support import REPO, PerpsimCLI

from perpsim.errors import ConfigError
from perpsim.model.model import market_path
from perpsim.model.streams import Streams
from perpsim.oracle import HistoricalPath, build_path
from perpsim.scenario import load_scenario

HOUR = 3_600
T0 = 1_700_000_000
#: open, high, low, close: a rising hour, a falling hour, a flat hour.
BARS = [(100.0, 104.0, 97.0, 103.0), (103.0, 105.0, 90.0, 92.0), (92.0, 93.0, 91.0, 92.0)]


def bars_csv(path: Path, bars: list[tuple[float, float, float, float]] = BARS) -> Path:
    rows = [f"{T0 + i * HOUR},{o},{h},{lo},{c}" for i, (o, h, lo, c) in enumerate(bars)]
    path.write_text("\n".join(["timestamp,open,high,low,close", *rows]) + "\n")
    return path


def path_config(file: Path, **extra: object) -> HistoricalPath:
    return HistoricalPath(file=str(file), bars={}, **extra)


def test_the_path_visits_every_high_and_low_in_the_order_of_the_bar(tmp_path: Path) -> None:
    config = path_config(bars_csv(tmp_path / "bars.csv"))
    ticks = np.arange(0, 3 * HOUR + 1, 60, dtype=np.int64)
    prices = build_path(config, ticks, np.random.default_rng(0), start_time=T0)
    at = {int(t): float(p) for t, p in zip(ticks, prices, strict=True)}
    # A rising bar makes its low first, a falling bar its high first.
    assert [at[0], at[1200], at[2400]] == [100.0, 97.0, 104.0]
    assert [at[3600], at[3600 + 1200], at[3600 + 2400]] == [103.0, 105.0, 90.0]
    assert at[3 * HOUR] == 92.0  # the last bar ends at its close
    assert prices.min() == 90.0 and prices.max() == 105.0


@pytest.mark.parametrize("interpolation", ["linear", "previous", "bridge"])
def test_the_path_stays_within_each_bars_range(tmp_path: Path, interpolation: str) -> None:
    config = path_config(bars_csv(tmp_path / "bars.csv"), interpolation=interpolation)
    ticks = np.arange(0, 3 * HOUR + 1, 60, dtype=np.int64)
    prices = build_path(config, ticks, np.random.default_rng(1), start_time=T0)
    bar = np.minimum(ticks // HOUR, 2)
    highs = np.array([b[1] for b in BARS])[bar]
    lows = np.array([b[2] for b in BARS])[bar]
    assert np.all(prices <= highs) and np.all(prices >= lows)
    assert prices.min() == 90.0 and prices.max() == 105.0


def test_the_bridge_keeps_the_volatility_of_the_opens(tmp_path: Path) -> None:
    """The swings to a bar's extremes are its range: they do not raise the bridge's noise."""
    rng = np.random.default_rng(7)
    opens = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 200)))
    bars = [(o, o * 1.003, o * 0.997, o) for o in opens]  # narrow bars
    file = bars_csv(tmp_path / "bars.csv", bars)
    ticks = np.arange(0, 199 * HOUR, 60, dtype=np.int64)
    plain = build_path(
        HistoricalPath(file=str(file), interpolation="bridge"),
        ticks,
        np.random.default_rng(2),
        start_time=T0,
    )
    through = build_path(
        path_config(file, interpolation="bridge"), ticks, np.random.default_rng(2), start_time=T0
    )
    vol_plain = np.diff(np.log(plain)).std()
    vol_bars = np.diff(np.log(through)).std()
    assert vol_bars < 1.3 * vol_plain


def test_bad_bars_are_refused_naming_the_bar_and_the_key(tmp_path: Path) -> None:
    bad = [BARS[0], (103.0, 102.0, 90.0, 92.0), BARS[2]]  # high below the open
    config = path_config(bars_csv(tmp_path / "bad.csv", bad))
    ticks = np.arange(0, 2 * HOUR, 60, dtype=np.int64)
    with pytest.raises(ConfigError, match=r"bars: .*2023-11-14T23:13:20Z.*high is below"):
        build_path(config, ticks, np.random.default_rng(0), start_time=T0)
    missing = HistoricalPath(file=str(bars_csv(tmp_path / "b.csv")), bars={"high": "hi"})
    with pytest.raises(ConfigError, match=r"bars\.high: .*column 'hi' is not in the file"):
        build_path(missing, ticks, np.random.default_rng(0), start_time=T0)


def test_validate_names_price_path_bars(tmp_path: Path, perpsim_cli: PerpsimCLI) -> None:
    data = bars_csv(tmp_path / "bars.csv")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        f"extends: {REPO / 'scenarios' / 'baseline.yaml'}\nname: s\n"
        "clock: {start: 1700000000, tick: 1m, duration: 2h}\n"
        f"price_path: {{kind: historical, file: {data}, bars: {{low: nope}}}}\n"
    )
    proc = perpsim_cli("validate", str(scenario))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "price_path.bars" in proc.stderr and "'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_black_thursday_reaches_the_real_low() -> None:
    scenario = load_scenario("black_thursday")
    offsets = np.arange(scenario.clock.n_ticks + 1, dtype=np.int64) * scenario.clock.tick
    prices = market_path(scenario, Streams(scenario.seed), offsets, REPO / "scenarios")
    i = int(np.argmin(prices))
    assert prices[i] == 86.0
    assert scenario.clock.iso(int(offsets[i])).startswith("2020-03-13T02:")
    assert prices.max() == 203.18  # the 03-11 high
