"""Every shipped scenario runs, and the crash scenarios show what their comment blocks claim.

The first test runs each file of ``scenarios/*.yaml`` for a few hours with fewer agents and no
events (a short run cannot hold the events of a long one; a cross-venue cycler keeps its first
push) and checks the outputs' shape. The others run the crash scenarios over the part of the
run that matters and assert the behaviour each one is about: liquidation loss, insurance-fund
use, social loss, the effect of a stale index, a whale liquidated in size, LPs leaving,
one-sided funding and global settlement.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import REPO

from perpsim.engine.registry import venue_spec
from perpsim.model import timeseries_columns
from perpsim.oracle.config import parse_duration
from perpsim.run import RunResult, run_scenario
from perpsim.scenario import load_raw_scenario, load_scenario, shipped_scenarios

SCENARIOS = REPO / "scenarios"

#: Most agents per population in the short runs (admins and single agents keep their count).
SHORT_COUNT = {"noise_trader": 40, "momentum_trader": 4, "liquidity_provider": 3}


def run(name: str | Path, *overrides: str) -> RunResult:
    """Run ``scenarios/NAME.yaml`` (or the file ``name``) with ``overrides``; the run must
    finish cleanly."""
    path = name if isinstance(name, Path) else SCENARIOS / f"{name}.yaml"
    scenario = load_scenario(path, list(overrides))
    result = run_scenario(scenario, base_dir=path.parent)
    assert result.error is None, result.error
    assert result.summary["invariants"] == "ok"
    return result


def liquidations(result: RunResult) -> pd.DataFrame:
    events = result.events
    return events[events["kind"] == "liquidate"]


def short_overrides(path: Path) -> list[str]:
    """Overrides that make a shipped scenario a three-hour run with a few agents per type."""
    raw = load_raw_scenario(path)
    out = ["clock.duration=3h", "events=[]", "output.record_every=1"]
    for pop in raw.get("agents", []):
        name, kind = pop["name"], pop.get("type")
        count = pop.get("count", 1)
        if kind in SHORT_COUNT and count > SHORT_COUNT[kind]:
            out.append(f"agents.{name}.count={SHORT_COUNT[kind]}")
        if kind == "whale" and "schedule" in pop.get("params", {}):
            out.append(f"agents.{name}.params.schedule=[30m]")
        if kind == "admin":
            out.append(f"agents.{name}.params.settle_at=null")
        if kind == "cross_venue_cycler":
            # Its external pushes are events it checks at the start: keep the first cycle's.
            first = parse_duration(pop.get("params", {}).get("first_push_at", 3600))
            kept = [e for e in raw.get("events", []) if parse_duration(e["at"]) < first + 3600]
            out[1] = "events=" + json.dumps([dict(e) for e in kept], default=str)
            out.append(f"agents.{name}.params.cycles=1")
    return out


@pytest.mark.parametrize("path", shipped_scenarios(), ids=lambda p: p.stem)
def test_shipped_scenario_runs_briefly(path: Path) -> None:
    overrides = short_overrides(path)
    result = run(path, *overrides)
    ts = result.timeseries
    assert list(ts.columns) == list(
        timeseries_columns(
            venue_spec(result.manifest["resolved_scenario"]["venue"]["kind"]).columns
        )
    )
    # Three hours at the scenario's own tick length: the set-up row and one per tick.
    ticks = load_scenario(path, overrides).clock.n_ticks
    assert ticks * load_scenario(path).clock.tick == 3 * 3600
    assert len(ts) == ticks + 1
    for column in ("market_price", "index_price", "mark_price"):
        prices = ts[column].to_numpy(dtype=np.float64)
        assert np.isfinite(prices).all() and (prices > 0).all(), column
    assert result.summary["trades"] > 0
    assert result.summary["ticks"] == ticks
    assert result.summary["status"] == "NORMAL"
    assert not result.accounts.empty


def check_liquidation_ledger(result: RunResult) -> None:
    """Each liquidation's loss is paid by the fund, socialised or written off, and the summary
    adds the events up."""
    liq = liquidations(result)
    split = liq["insurance_fund_paid"] + liq["social_loss"] + liq["bad_debt"]
    assert np.allclose(liq["loss"], split, rtol=1e-9, atol=1e-6)
    s = result.summary
    assert s["liquidation_count"] == len(liq)
    assert math.isclose(s["liquidation_loss_total"], float(liq["loss"].sum()), rel_tol=1e-9)
    assert math.isclose(s["social_loss_total"], float(liq["social_loss"].sum()), rel_tol=1e-9)


@pytest.mark.slow
def test_black_thursday_loses_into_the_insurance_fund() -> None:
    result = run("black_thursday")
    s = result.summary
    assert s["min_market_price"] == 86.0  # through the hours' lows (bars), not their opens
    assert s["liquidation_count"] > 100
    assert s["liquidation_loss_total"] > 1_000.0
    assert s["insurance_fund_drawdown"] > 1_000.0
    # At default margins the fund covers everything: no social loss, no bad debt.
    assert s["social_loss_total"] == 0.0 and s["bad_debt"] == 0.0
    assert s["insurance_fund_paid_total"] == pytest.approx(s["liquidation_loss_total"])
    check_liquidation_ledger(result)


@pytest.mark.slow
def test_black_thursday_thin_margins_exhausts_the_fund() -> None:
    result = run("black_thursday_thin_margins")
    s = result.summary
    assert s["social_loss_total"] > 1_000.0
    assert s["insurance_fund_exhausted"]
    assert s["insurance_fund_final"] < 0.05 * s["insurance_fund_initial"]
    assert s["liquidation_loss_total"] > s["insurance_fund_initial"]
    check_liquidation_ledger(result)
    # Bankrupt longs are socialised onto the shorts (the opposite side), and longs carry the
    # shorts that the rebounds bankrupt: each side's share per contract grew.
    liq = liquidations(result)
    by_side = liq.groupby("side")["social_loss"].sum()
    assert by_side["long"] > 1_000.0
    final = result.timeseries.iloc[-1]
    assert final["mcdex_v1_social_loss_per_contract_short"] > 0.0
    assert by_side["short"] > 0.0 and final["mcdex_v1_social_loss_per_contract_long"] > 0.0


@pytest.mark.slow
def test_may19_2021_ten_minute_steps_use_the_fund() -> None:
    scenario = load_scenario("may19_2021")
    assert scenario.price_path.interpolation == "previous"  # type: ignore[union-attr]
    result = run("may19_2021", "output.record_every=1")
    s = result.summary
    assert s["liquidation_count"] > 100
    assert s["insurance_fund_paid_total"] > 1_000.0
    assert s["insurance_fund_drawdown"] > 1_000.0
    check_liquidation_ledger(result)
    # The market moves in 10-minute steps: at most one new price per 10 minutes.
    prices = result.timeseries["market_price"].to_numpy()
    assert np.count_nonzero(np.diff(prices)) <= len(prices) // 10 + 1


@pytest.mark.slow
def test_flash_crash_loss_comes_from_the_oracle_outage() -> None:
    # Up to 1d6h: the outage (1d to 1d40m), the crash and the first hours after it.
    short = "clock.duration=1d6h"
    shock = "{at: 1d5m, kind: price_shock, change: -0.25, over: 10m}"
    outage = "{at: 1d, kind: oracle_outage, duration: 40m}"
    with_outage = run("flash_crash_oracle_outage", short, f"events=[{outage}, {shock}]")
    without = run("flash_crash_oracle_outage", short, f"events=[{shock}]")
    assert with_outage.summary["liquidation_loss_total"] > 10_000.0
    assert with_outage.summary["insurance_fund_drawdown"] > 10_000.0
    assert without.summary["liquidation_loss_total"] == 0.0
    assert without.summary["liquidation_count"] > 0
    # The stale index is what makes them bankrupt: the first update after the outage.
    liq = liquidations(with_outage)
    lossy = liq[liq["loss"] > 0]
    assert (lossy["tick"] >= 1440 + 40).all()
    check_liquidation_ledger(with_outage)


@pytest.mark.slow
def test_keeper_outage_alone_changes_nothing_but_a_stale_oracle_loses() -> None:
    short = "clock.duration=1d6h"
    shock = "{at: 1d1h, kind: price_shock, change: -0.20, over: 3h}"
    keepers = "{at: 1d, kind: keeper_outage, duration: 6h}"
    shipped = run("keeper_outage_crash", short)
    keepers_only = run("keeper_outage_crash", short, f"events=[{keepers}, {shock}]")
    none = run("keeper_outage_crash", short, f"events=[{shock}]")
    assert shipped.summary["liquidation_loss_total"] > 5_000.0
    assert shipped.summary["insurance_fund_drawdown"] > 5_000.0
    check_liquidation_ledger(shipped)
    assert none.summary["liquidation_loss_total"] == 0.0
    # update_index only pays the prize: the engine reads the oracle on every operation.
    for key in ("liquidation_count", "liquidated_value", "trades", "funding_paid_by_longs"):
        assert keepers_only.summary[key] == none.summary[key], key
    index_age = shipped.timeseries["index_age_s"].max()
    assert index_age >= 3 * 3_600


@pytest.mark.slow
def test_whale_is_liquidated_in_size_during_the_fall() -> None:
    result = run("whale_cascade", "clock.duration=1d2h")
    liq = liquidations(result)
    whale = liq[liq["account"] == "whale"]
    assert len(whale) >= 2
    assert whale["amount"].sum() >= 300.0  # of its 600 contracts
    first = int(whale["tick"].iloc[0])
    others = liq[(liq["account"] != "whale") & (liq["tick"] > first) & (liq["tick"] <= first + 15)]
    assert len(others) >= 10  # a burst of liquidations follows the whale's first
    # The mark never leaves the index by more than the premium limit, however hard the
    # unwinding hits the pool's price.
    limit = load_scenario("whale_cascade").venue.amm_governance.mark_premium_limit
    assert result.timeseries["premium_rate"].abs().max() <= limit * (1 + 1e-9)
    check_liquidation_ledger(result)


@pytest.mark.slow
def test_lp_run_shrinks_the_pool() -> None:
    result = run("lp_run", "clock.duration=1d6h")
    ts = result.timeseries
    supply = ts["lp_share_supply"]
    assert supply.iloc[-1] < 0.2 * supply.max()
    assert supply.iloc[-1] == pytest.approx(500.0)  # only the creator's shares are left
    position = ts["mcdex_v1_pool_position_size"]
    assert position.iloc[-1] < 0.25 * position.iloc[1]
    # Thinner pool, larger price impact of a 10-contract trade (about 10 / position), which
    # the time series records (a quote) and the summary follows: the scenario's headline.
    assert 10.0 / position.iloc[-1] > 3 * (10.0 / position.iloc[1])
    impact = ts["price_impact"]
    assert impact.iloc[1:].to_numpy() == pytest.approx(10.0 / (position.iloc[1:] - 10.0))
    s = result.summary
    assert s["price_impact_max"] > 3 * s["price_impact_min"]
    assert s["lp_share_supply_max"] == pytest.approx(supply.max())
    assert s["lp_share_supply_final"] == pytest.approx(500.0)
    assert set(load_scenario("lp_run").output.headline) <= set(s)
    assert not any(k.startswith("trade:") for k in result.summary["rejections"])
    assert (ts["mcdex_v1_pool_available_margin"] > 0).all()
    kinds = result.events["kind"]
    assert (kinds == "remove_liquidity").sum() >= 25  # 5 nervous + 2 x 10 patient LPs


@pytest.mark.slow
def test_funding_stress_longs_pay() -> None:
    result = run("funding_stress", "clock.duration=2d")
    s = result.summary
    assert s["funding_paid_by_longs"] > 50_000.0
    assert s["funding_paid_by_longs"] > 4 * s["funding_paid_by_shorts"]
    rate = result.timeseries["funding_rate"]
    assert (rate > 0).mean() > 0.6
    assert rate.mean() > 0.0005  # 0.05% per 8 hours on average


@pytest.mark.slow
def test_global_settlement_settles_every_account() -> None:
    # Up to 1d18h: the crash, the fund running out, EMERGENCY and SETTLED (the shipped run
    # also schedules a settlement at 2d, which is rejected once the admin has begun).
    result = run(
        "global_settlement",
        "clock.duration=1d18h",
        "events=[{at: 1d12h, kind: price_shock, change: -0.35, over: 10m}]",
    )
    s = result.summary
    assert s["status"] == "SETTLED" and s["settled"]
    assert s["social_loss_total"] > 0.0 and s["insurance_fund_exhausted"]
    assert 0 < s["time_in_emergency_s"] <= 2 * 3_600
    events = result.events
    begin = events[events["kind"] == "begin_global_settlement"]
    assert len(begin) == 1 and int(begin["tick"].iloc[0]) < 1440 + 13 * 60
    accounts = result.accounts
    assert (accounts["cash_balance"].abs() < 1e-6).all()
    assert (accounts["position_size"] == 0.0).all()
    assert (accounts["shares"] < 1e-9).all()
    assert (events["kind"] == "settle").sum() > 100
    check_liquidation_ledger(result)
