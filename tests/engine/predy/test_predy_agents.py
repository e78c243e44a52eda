"""Every agent type trades Predy through the venue contract: a short run of the shipped baseline
with a whale on each product and an admin who settles the pool at the end."""

from __future__ import annotations

from pathlib import Path

from perpsim.agents import REGISTRY
from support import REPO

from perpsim.run import run_scenario
from perpsim.scenario import load_scenario

SCENARIO = """
extends: {base}
name: predy_every_agent
clock: {{start: "2024-01-01T00:00:00Z", tick: 5m, duration: 8h}}
# A lagging oracle, so that the arbitrageurs (who see the market) have a gap to trade.
oracle: {{heartbeat: 1h, deviation_threshold: 0.005, latency: 36}}
agents:
  - {{name: noise, type: noise_trader, count: 20}}
  - {{name: squared_noise, type: noise_trader, product: squared, count: 10}}
  - name: whale
    type: whale
    params: {{capital: 2000000, side: long, size: 100, leverage: 2, schedule: [1h]}}
  - name: squared_whale
    type: whale
    product: squared
    params: {{capital: 2000000, side: short, size: 120, leverage: 2, schedule: [2h]}}
  - name: drainer
    type: fund_drainer
    params: {{capital: 300000, size: 40, slice: 10, open_at: 1h, close_at: 4h}}
  - name: pumper
    type: oracle_pumper
    params: {{capital: 20000, size: 5, slice: 5, open_at: 1h, withdraw_from: 2h}}
  - name: glp
    type: glp_vault_family
    product: future
    params:
      glp: {{weights: {{USDC: 0.5, ETH: 0.5}}}}
      vaults: {{USDC: {{tvl: 100000}}, ETH: {{tvl: 100000, target: {{ETH: 1.0}}}}}}
  - name: backstop
    type: backstop
    params: {{capital: 2000000, latency: 1m}}
  - name: whale_dump
    type: self_liquidator
    params: {{capital: 100000, size: 20, slice: 5, open_at: 1h, withdraw_from: 2h, close_from: 5h}}
  - name: cycler
    type: cross_venue_cycler
    params: {{capital: 100000, size: 20, slice: 10, first_push_at: 5h, cycles: 1, lead: 5m}}
  - name: admin
    type: admin
    params: {{settle_at: 7h, settlement_price: index, complete_after: 30m}}
events:
  - {{at: 3h, kind: price_shock, change: -0.08, over: 1h}}
  - {{at: 5h, kind: price_shock, change: 0.05}}
  - {{at: 5h10m, kind: price_shock, change: -0.047619047619047616}}
"""


def test_every_agent_type_runs_on_predy(tmp_path: Path) -> None:
    path = tmp_path / "predy_every_agent.yaml"
    base = (REPO / "scenarios" / "predy_baseline.yaml").as_posix()
    path.write_text(SCENARIO.format(base=base), encoding="utf-8")
    scenario = load_scenario(path)
    assert {pop.type for pop in scenario.agents} == set(REGISTRY)
    result = run_scenario(scenario, base_dir=path.parent)
    assert result.error is None, result.error
    assert result.summary["invariants"] == "ok"
    assert result.summary["status"] == "SETTLED"
    events = result.events
    traded = set(events.loc[events["kind"].isin(["buy", "sell"]), "account"])
    for who in ("whale", "squared_whale", "arbs-0", "squared_arbs-0", "variance_sellers-0", "glp"):
        assert who in traded, who
    assert (events["kind"] == "hedge").any()
    assert (events["kind"] == "settle").any()
