"""The plug-in point end to end: a shipped scenario's agents trade on a venue the tests register.

``scenarios/baseline.yaml``, shortened to six hours, keeps its traders, arbitrageurs,
liquidators and keepers; only its ``venue:`` section changes, to the test-only constant-product
design. Nothing outside ``tests/`` knows that design: the scenario validates it through the
registry, the model builds it through its spec, the agents use only the venue contract, and the
run checks the venue's own invariants after every tick.
"""

from __future__ import annotations

from pathlib import Path

import cpmm_venue

from perpsim.run import run_scenario
from perpsim.scenario import apply_overrides, load_raw_scenario, scenario_from_raw

BASELINE = Path(__file__).resolve().parents[3] / "scenarios" / "baseline.yaml"

#: The populations kept: every trader, the liquidators and the keepers.
KEPT = {"noise_trader", "momentum_trader", "arbitrageur", "liquidator", "keeper"}


def test_baseline_agents_run_on_the_test_venue(cpmm_registered: str) -> None:
    raw = apply_overrides(load_raw_scenario(BASELINE), ["clock.duration=6h"])
    raw["agents"] = [p for p in raw["agents"] if p["type"] in KEPT]
    raw["venue"] = {
        "kind": cpmm_registered,
        "governance": {"keeper_prize": 5.0, "lot_size": 0.001, "trading_lot_size": 0.01},
        "pool": {"initial_liquidity": 20_000_000.0},
        "insurance_fund": 250_000.0,
    }
    scenario = scenario_from_raw(raw, "baseline on the test venue")
    assert scenario.venue.kind == cpmm_registered
    assert {p.type for p in scenario.agents} == KEPT

    result = run_scenario(scenario, check_invariants=True)

    assert result.error is None
    assert result.summary["invariants"] == "ok"
    assert result.summary["ticks"] == 6 * 60
    kinds = result.events["kind"].value_counts()
    assert kinds.get("buy", 0) > 0 and kinds.get("sell", 0) > 0
    assert result.summary["trades"] > 0
    updates = result.events[result.events["kind"] == "update_index"]
    assert (updates["amount"] > 0.0).any(), "no keeper brought a new index in for the prize"
    columns = set(result.timeseries.columns)
    assert set(cpmm_venue.COLUMNS) <= columns
    assert not any(c.startswith("mcdex_v1_") for c in columns)
    depth = result.timeseries[f"{cpmm_registered}_reserve_base"]
    assert depth.iloc[-1] > 0.0
    # The arbitrageurs keep the pool's price near the market.
    gap = (result.timeseries["fair_price"] / result.timeseries["market_price"] - 1.0).abs()
    assert gap.median() < 0.005
