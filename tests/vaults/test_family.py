"""The GLP vault family on a short run: books balance, internal settlements are zero-sum,
hedges are real venue trades, and netting costs less than no netting on the same seed."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from perpsim.agents.vaults import rebalance
from perpsim.agents.vaults.compare import main as compare_main
from perpsim.agents.vaults.compare import vault_totals
from perpsim.agents.vaults.family import GLPVaultFamily

from perpsim.errors import ConfigError
from perpsim.model import PerpModel
from perpsim.plots import run_figure_infos
from perpsim.plots.run.vaults import VAULTS_FIGURE, fig_vaults, read_vaults
from perpsim.plots.rundata import load_run
from perpsim.report.vaults import vault_tables
from perpsim.run import agent_tables, run_scenario, write_outputs
from perpsim.scenario import scenario_from_raw

COSTS = ("fees_mint_burn", "fees_trading", "trading_impact", "fees_off_venue")


def _raw(netting: bool, kind: str = "mcdex_v1", **vault_params: Any) -> dict[str, Any]:
    venue: dict[str, Any] = {"kind": kind}
    if kind == "mcdex_v1":
        venue |= {"pool": {"initial_liquidity": 5000}, "insurance_fund": 100000}
    elif kind == "d8x":
        venue |= {
            "pool": {
                "collateral": "quote",
                "amm_fund": 500000,
                "lp_cash": 30000000,
                "default_fund": 500000,
            }
        }
    return {
        "name": "vaults",
        "seed": 5,
        "clock": {"start": "2024-01-01T00:00:00Z", "tick": "1h", "duration": "4d"},
        "assets": {
            "ETH": {
                "underlying": True,
                "factor_loading": 0.9,
                "path": {"kind": "gbm", "s0": 3000.0, "sigma": 0.9},
            },
            "BTC": {"factor_loading": 0.9, "path": {"kind": "gbm", "s0": 60000.0, "sigma": 0.8}},
        },
        "oracle": {"latency": 0},
        "venue": venue,
        "agents": [
            {
                "name": "glp",
                "type": "glp_vault_family",
                "params": {
                    "netting": netting,
                    "rebalance_interval": "12h",
                    "max_trade": 40,
                    "glp": {"fee": {"kind": "gmx_v1_dynamic"}, "fee_apr": 0.2},
                    "vaults": {
                        "USDC": {"tvl": 2e6, "scaling": 0.8},
                        "ETH": {"tvl": 1e6, "target": {"ETH": 1.0}, "scaling": 0.5},
                        "BTC": {"tvl": 1e6, "target": {"BTC": 1.0}, "scaling": 0.5},
                    },
                    "flows": [{"at": "2d", "vault": "USDC", "withdraw_fraction": 0.3}],
                    "poisson_flows": {
                        "ETH": {
                            "deposit_rate": 2,
                            "deposit_size": 20000,
                            "withdrawal_rate": 2,
                            "withdrawal_size": 20000,
                        }
                    },
                    **vault_params,
                },
            },
            {
                "name": "arbs",
                "type": "arbitrageur",
                "params": {"capital": 2e6, "max_trade_size": 50},
            },
        ],
    }


def _run(raw: dict[str, Any]) -> PerpModel:
    model = PerpModel(scenario_from_raw(raw))  # invariants checked every tick
    model.run()
    return model


def _family(model: PerpModel) -> GLPVaultFamily:
    agent = model.agents_by_population["glp"][0]
    assert isinstance(agent, GLPVaultFamily)
    return agent


@pytest.fixture(scope="module")
def runs() -> dict[bool, PerpModel]:
    return {netting: _run(_raw(netting)) for netting in (True, False)}


def _last(model: PerpModel, vault: str) -> dict[str, Any]:
    return next(r for r in reversed(_family(model).rows) if r["vault"] == vault)


def test_books_balance_and_settlements_are_zero_sum(
    runs: dict[bool, PerpModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    for model in runs.values():
        family = _family(model)
        assert family.problems == []
        assert model.invariant_problems == []
        px = family.glp_px(family.prices())
        for book in family.books:
            claims = math.fsum(
                family.vaults[n].claim + family.vaults[n].buffer for n in book.vaults
            )
            margin = model.venue.account(book.account).margin_balance
            # Between rebalances the venue's marks move the margin; at the last rebalance the
            # claims matched (problems == []); the gap is what the marks did since.
            assert claims == pytest.approx(book.cash + book.margin - book.payout_due, rel=1e-9)
            assert margin > 0
        total = math.fsum(v.tvl(px) for v in family.vaults.values())
        assert _last(model, "family")["tvl"] == pytest.approx(total)
    # Internal transfers sum to zero over the run (each settlement is asserted on its own).
    transfers = [v.internal_transfers for v in _family(runs[True]).vaults.values()]
    assert any(abs(t) > 1.0 for t in transfers)
    assert math.fsum(transfers) == pytest.approx(0.0, abs=1e-6 * max(map(abs, transfers)))


def test_hedges_are_venue_trades(runs: dict[bool, PerpModel]) -> None:
    netted, alone = runs[True], runs[False]
    accounts = {r["account"]: r for r in netted.account_table()}
    assert accounts["glp"]["agent_type"] == "glp_vault_family"
    trades = [e for e in netted.event_log if e["kind"] in ("buy", "sell") and e["account"] == "glp"]
    assert trades and all(e["fee"] > 0 for e in trades)
    own = {e["account"] for e in alone.event_log if e["kind"] in ("buy", "sell")}
    assert {"glp.USDC", "glp.ETH", "glp.BTC"} <= own
    table = agent_tables(netted)["vaults"]
    assert set(table["vault"]) == {"USDC", "ETH", "BTC", "family"}
    for column in ("tvl", "glp_units", "hedge_notional_ETH", "delta_BTC", "buffer", "oi_share"):
        assert column in table.columns
    family_rows = table[table["vault"] == "family"]
    assert (family_rows["oi_share"] > 0).any()
    assert (family_rows["oi_share"] <= 1).all()


def test_netting_costs_less_than_no_netting(runs: dict[bool, PerpModel]) -> None:
    cost = {n: math.fsum(_last(m, "family")[c] for c in COSTS) for n, m in runs.items()}
    assert cost[True] < cost[False]
    volume = {
        n: math.fsum(
            e["amount"]
            for e in m.event_log
            if e["kind"] in ("buy", "sell") and "glp" in e["account"]
        )
        for n, m in runs.items()
    }
    assert volume[True] < 0.7 * volume[False]
    # The off-venue BTC hedge is netted too.
    assert (
        _last(runs[True], "family")["fees_off_venue"]
        < _last(runs[False], "family")["fees_off_venue"]
    )


def test_deltas_stay_near_target_after_setup(runs: dict[bool, PerpModel]) -> None:
    family = _family(runs[True])
    start = runs[True].start_time + 86_400
    peak = max(
        abs(r[f"delta_{a}"])
        for r in family.rows
        if r["vault"] != "family" and r["time"] >= start
        for a in ("ETH", "BTC")
    )
    assert peak < family.cfg.delta_trigger + 0.05
    usdc = _last(runs[True], "USDC")
    assert usdc["withdrawals"] > 0.25 * 2e6


def test_a_broken_settlement_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    def lopsided(n: dict[str, float]) -> dict[str, float]:
        return {v: x for v, x in n.items()}  # every hedge "internal": not zero-sum

    monkeypatch.setattr(rebalance, "internal_hedges", lopsided)
    with pytest.raises(rebalance.InternalSettlementError, match="not zero"):
        rebalance.settle_internal_hedges({"A": -10.0, "B": 30.0}, 1.0, 1.1)


def test_the_family_runs_on_d8x() -> None:
    model = _run(_raw(True, kind="d8x"))
    family = _family(model)
    assert family.problems == []
    assert family.trades > 0
    assert _last(model, "family")["oi_share"] > 0


def test_every_risky_asset_needs_a_path() -> None:
    # Without assets: the market price is the family's `underlying` (ETH); BTC has no path.
    raw = _raw(True)
    raw["price_path"] = raw.pop("assets")["ETH"]["path"]
    with pytest.raises(ConfigError, match=r"BTC.*assets:"):
        PerpModel(scenario_from_raw(raw))
    # A basket of the market's asset and stables needs no assets: section.
    glp = raw["agents"][0]["params"]
    glp["glp"] = {"weights": {"USDC": 0.5, "ETH": 0.5}}
    glp["vaults"] = {"USDC": {"tvl": 1e6}, "ETH": {"tvl": 1e6, "target": {"ETH": 1.0}}}
    glp["flows"], glp["poisson_flows"] = [], {}
    raw["clock"]["duration"] = "6h"
    family = _family(_run(raw))
    assert family.problems == [] and family.trades > 0


def test_run_folder_has_the_vault_table_and_figure(tmp_path: Path) -> None:
    raw = _raw(True)
    raw["clock"]["duration"] = "1d"
    result = run_scenario(scenario_from_raw(raw))
    out = tmp_path / "run"
    write_outputs(result, out)
    vaults = pd.read_parquet(out / "vaults.parquet")
    assert str(vaults["time"].dtype).startswith("datetime64")
    assert set(vaults["vault"]) == {"USDC", "ETH", "BTC", "family"}
    # The vault figure alone (plot_run draws it after the others; they have their own tests).
    run = load_run(out)
    assert VAULTS_FIGURE in run_figure_infos(run)
    table = read_vaults(run)
    assert table is not None
    fig = fig_vaults(run, [], table)
    assert len(fig.axes) == 5  # four panels and the open-interest share's twin axis
    (report_table,) = vault_tables(run)
    assert report_table.title == "GLP vaults"
    assert [r[0] for r in report_table.rows] == ["USDC", "ETH", "BTC", "family"]
    totals = vault_totals(vaults)
    assert totals.loc["family", "total_cost"] > 0
    assert compare_main([str(out), str(out)]) == 0
    assert compare_main([str(out), str(tmp_path)]) == 2


def test_on_predy_the_design_caps_the_hedge() -> None:
    raw = _raw(True, kind="predy")
    for pop in raw["agents"]:
        pop["product"] = "future"
    model = _run(raw)
    family = _family(model)
    assert family.problems == []
    assert family.trades > 0
    # Predy's vaults hold at most max_position_per_vault (150) contracts: the rest is refused,
    # counted, and stays unhedged with the vaults on the net's side.
    assert model.rejections["hedge:UnsafeError"] > 0
    assert abs(family._position(family.books[0])) <= 150.0 + 1e-9
    assert max(abs(r["delta_ETH"]) for r in family.rows if r["vault"] == "ETH") > 0.2
