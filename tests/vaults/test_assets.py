"""Named assets: correlated paths, named streams, the underlying as the market path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from perpsim.errors import ConfigError
from perpsim.model import PerpModel
from perpsim.model.streams import Streams
from perpsim.oracle.assets import AssetConfig, build_asset_paths
from perpsim.scenario import scenario_from_raw

REPO = Path(__file__).resolve().parents[2]


def _asset(**path: Any) -> dict[str, Any]:
    return {"path": {"kind": "gbm", "s0": 100.0, "sigma": 0.8, **path}}


def _paths(assets: dict[str, dict[str, Any]], n: int = 2000) -> dict[str, np.ndarray]:
    streams = Streams(11)
    configs = {k: AssetConfig.model_validate(v) for k, v in assets.items()}
    ticks = np.arange(n + 1, dtype=np.int64) * 3600
    return build_asset_paths(configs, ticks, streams.generator)


def test_adding_an_asset_changes_no_existing_path() -> None:
    eth = {**_asset(), "factor_loading": 0.9}
    alone = _paths({"ETH": eth})
    both = _paths({"BTC": {**_asset(s0=40000.0), "factor_loading": 0.9}, "ETH": eth})
    np.testing.assert_array_equal(alone["ETH"], both["ETH"])
    plain = _paths({"SOL": _asset()})
    more = _paths({"SOL": _asset(), "ETH": eth})
    np.testing.assert_array_equal(plain["SOL"], more["SOL"])


def test_factor_loadings_set_the_correlation() -> None:
    out = _paths(
        {"ETH": {**_asset(), "factor_loading": 0.9}, "BTC": {**_asset(), "factor_loading": 0.9}},
        n=20_000,
    )
    r = np.corrcoef(np.diff(np.log(out["ETH"])), np.diff(np.log(out["BTC"])))[0, 1]
    assert r == pytest.approx(0.81, abs=0.02)
    free = _paths({"ETH": _asset(), "BTC": _asset()}, n=20_000)
    r0 = np.corrcoef(np.diff(np.log(free["ETH"])), np.diff(np.log(free["BTC"])))[0, 1]
    assert abs(r0) < 0.03


def test_a_loading_needs_a_diffusion_path() -> None:
    with pytest.raises(ValueError, match="factor_loading"):
        AssetConfig.model_validate(
            {"path": {"kind": "constant", "price": 1.0}, "factor_loading": 0.5}
        )


def _scenario(**extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "assets",
        "seed": 3,
        "clock": {"start": "2024-01-01T00:00:00Z", "tick": "1h", "duration": "2d"},
        "assets": {
            "ETH": {"underlying": True, "factor_loading": 0.9, **_asset(s0=3000.0)},
            "BTC": {
                "factor_loading": 0.9,
                **_asset(s0=60000.0, shocks=[{"at": "1d", "change": -0.2}]),
            },
        },
        "events": [{"kind": "price_shock", "at": "1d", "change": -0.1}],
    }
    raw.update(extra)
    return raw


def test_the_underlying_is_the_market_path_with_its_shocks() -> None:
    scenario = scenario_from_raw(_scenario())
    assert scenario.underlying_asset == "ETH"
    assert scenario.price_path.kind == "gbm"
    model = PerpModel(scenario)
    eth = model.asset_prices["ETH"]
    # The market path is the ETH asset's path times the scenario's price shock.
    factor = np.where(model.offsets >= 86_400, 0.9, 1.0)
    np.testing.assert_allclose(model.market_prices, eth * factor, rtol=1e-12)
    assert model.asset_price("ETH") == model.market_prices[0]
    assert model.asset_price("BTC") == model.asset_prices["BTC"][0]
    assert {"asset:ETH", "asset:BTC", "asset_factor"} <= set(model.streams.names())
    assert "price_path" not in model.streams.names()


def test_a_scenario_without_assets_draws_no_asset_stream() -> None:
    raw = _scenario(price_path={"kind": "gbm", "s0": 3000.0, "sigma": 0.5})
    del raw["assets"]
    model = PerpModel(scenario_from_raw(raw))
    assert model.asset_prices == {}
    assert model.underlying_asset is None
    assert not [s for s in model.streams.names() if s.startswith("asset")]


def test_bad_assets_sections_are_named() -> None:
    two = _scenario()
    two["assets"]["BTC"]["underlying"] = True
    with pytest.raises(ConfigError, match=r"assets\.BTC\.underlying"):
        scenario_from_raw(two)
    both = _scenario(price_path={"kind": "gbm", "s0": 1.0, "sigma": 0.1})
    with pytest.raises(ConfigError, match="price_path"):
        scenario_from_raw(both)
    missing = _scenario()
    missing["assets"]["BTC"] = {"path": {"kind": "historical", "file": "nowhere.csv"}}
    with pytest.raises(ConfigError, match=r"assets\.BTC\.path\.file"):
        scenario_from_raw(missing)


def test_historical_assets_replay_the_shipped_2022_data_together() -> None:
    data = REPO / "scenarios" / "data"
    raw = {
        "name": "replay",
        "clock": {"start": "2022-01-01T00:00:00Z", "tick": "1h", "duration": "10d"},
        "assets": {
            "ETH": {
                "underlying": True,
                "path": {
                    "kind": "historical",
                    "file": str(data / "eth_usdt_binance_spot_1h_2022-01_2022-08.csv"),
                },
            },
            "BTC": {
                "path": {
                    "kind": "historical",
                    "file": str(data / "btc_usdt_binance_spot_1h_2022-01_2022-08.csv"),
                },
            },
        },
    }
    model = PerpModel(scenario_from_raw(raw))
    assert model.market_prices[0] == pytest.approx(3676.22)
    assert model.asset_prices["BTC"][0] == pytest.approx(46216.93)
    r = np.corrcoef(
        np.diff(np.log(model.market_prices)), np.diff(np.log(model.asset_prices["BTC"]))
    )
    assert r[0, 1] > 0.7
