"""The JELLY-style whale self-liquidation dump (``scenarios/attacks/whale_dump*.yaml``): a profit
paid by the backstop that inherits the short (or by the LPs where the pool is the backstop); a
loss cap that settles the market, an open-interest cap and Predy's vault limit make it smaller.
Also the pieces it needs: the ``backstop`` agent, the ``settle`` rule action and its validation,
and the ``backstop_loss`` / ``lp_loss`` metrics.

The six-hour MCDEX v1 file runs about a second; the D8X and Predy files run too, unguarded and
guarded (the other files' brief runs are in ``test_shipped_scenarios.py``).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from support import REPO

from perpsim.errors import ConfigError
from perpsim.model import PerpModel
from perpsim.run import RunResult, run_scenario
from perpsim.scenario import load_scenario
from perpsim.scenario.rules import GovernanceRule, SettleAction

ATTACKS = REPO / "scenarios" / "attacks"
FILE = ATTACKS / "whale_dump.yaml"
BASELINE = REPO / "scenarios" / "baseline.yaml"
LOSS_CAP = "governance_rules.0.enabled=true"
OI_CAP = "governance_rules.1.enabled=true"


def _run(name: str = "whale_dump", *overrides: str) -> RunResult:
    path = ATTACKS / f"{name}.yaml"
    result = run_scenario(load_scenario(path, list(overrides)), base_dir=path.parent)
    assert result.error is None, result.error
    assert result.summary["invariants"] == "ok"
    return result


def _profit(result: RunResult) -> float:
    """The accounts table's pnl of population attacker: out (and what is left) minus in."""
    acc = result.accounts
    att = acc[acc["population"] == "attacker"]
    assert set(att["account"]) == {"attacker", "attacker/short"}
    return float(att["pnl"].sum())


def _pnl(result: RunResult, population: str) -> float:
    acc = result.accounts
    return float(acc[acc["population"] == population]["pnl"].sum())


def _rule_events(result: RunResult, rule: str) -> pd.DataFrame:
    ev = result.events
    return ev[(ev["kind"] == "governance_rule") & (ev["rule"] == rule)]


@pytest.fixture(scope="module")
def unguarded() -> RunResult:
    return _run()


@pytest.fixture(scope="module")
def capped() -> RunResult:
    return _run("whale_dump", LOSS_CAP)


# -- MCDEX v1: the backstop pays ------------------------------------------------------------


def test_the_backstop_inherits_the_short_whole_and_pays_the_long(unguarded: RunResult) -> None:
    ev = unguarded.events
    liq = ev[(ev["kind"] == "liquidate") & (ev["account"] == "attacker/short")]
    # Every piece of the 500-contract short goes to the backstop (all but a few lots: MCDEX v1
    # takes what restores the initial margin), some in one call beyond what a baseline
    # liquidator takes in a tick (100 contracts), and none of it is bankrupt.
    assert set(liq["counterparty"]) == {"backstop"}
    assert float(liq["amount"].sum()) == pytest.approx(500.0, abs=0.1)
    assert float(liq["amount"].max()) > 100.0
    assert float(liq["loss"].sum()) == 0.0
    s = unguarded.summary
    assert s["insurance_fund_paid_total"] == 0.0 and s["social_loss_total"] == 0.0
    profit = _profit(unguarded)
    assert profit > 500_000.0
    # The backstop holds the attacker's short through the pump: its loss is the long's gain.
    backstop = _pnl(unguarded, "backstop")
    assert backstop < -0.8 * profit
    final = unguarded.accounts.set_index("account").loc["backstop"]
    assert final["position_side"] == "short" and final["position_size"] > 499.9


def test_the_loss_cap_settles_the_market_at_the_reference_price(
    unguarded: RunResult, capped: RunResult
) -> None:
    rule = _rule_events(capped, "loss_cap")
    assert list(rule["stage"]) == ["decided", "applied", "completed"]
    decided = rule[rule["stage"] == "decided"].iloc[0]
    assert decided["metric_value"] > 500_000.0  # the backstop's loss passed the cap
    ev = capped.events
    begin = ev[ev["kind"] == "begin_global_settlement"]
    assert len(begin) == 1 and begin["time"].iloc[0] == decided["time"]
    # The index two hours before (the run's first index, before the legs and the pump).
    assert float(begin["price"].iloc[0]) == pytest.approx(2280.0)
    assert float(rule[rule["stage"] == "applied"]["value"].iloc[0]) == pytest.approx(2280.0)
    assert capped.summary["status"] == "SETTLED" and capped.summary["settled"]
    acc = capped.accounts
    assert (acc["position_size"] == 0.0).all() and (acc["cash_balance"].abs() < 1e-6).all()
    # Smaller, and the backstop ends ahead (as Hyperliquid's did).
    assert _profit(capped) < 0.5 * _profit(unguarded)
    assert _pnl(capped, "backstop") > 0.0


def test_the_loss_cap_does_not_fire_below_the_cap(unguarded: RunResult) -> None:
    high = _run("whale_dump", LOSS_CAP, "governance_rules.0.above=50000000")
    assert _rule_events(high, "loss_cap").empty
    assert high.summary["status"] == "NORMAL"
    assert _profit(high) == pytest.approx(_profit(unguarded))


def test_an_open_interest_cap_trims_the_legs(unguarded: RunResult) -> None:
    guarded = _run("whale_dump", OI_CAP)
    ev = guarded.events
    bought = ev[(ev["kind"] == "buy") & (ev["account"] == "attacker")]["amount"].sum()
    assert float(bought) < 500.0
    assert guarded.summary["rejections"].get("trade:HaltedError", 0) > 0
    assert 0.0 < _profit(guarded) < 0.5 * _profit(unguarded)


# -- where the pool is the backstop -----------------------------------------------------------


def test_on_d8x_the_lps_pay_and_the_loss_cap_on_their_loss_stops_it() -> None:
    d8x = _run("whale_dump_d8x")
    # The AMM takes the short (liquidateByAMM): the backstop agent holds nothing.
    assert d8x.accounts.set_index("account").loc["backstop", "final_value"] == pytest.approx(
        30_000_000.0, rel=1e-3
    )
    profit = _profit(d8x)
    assert profit > 300_000.0
    assert d8x.summary["lp_return"] < -0.2
    capped = _run("whale_dump_d8x", LOSS_CAP)
    decided = _rule_events(capped, "loss_cap")
    decided = decided[decided["stage"] == "decided"]
    assert len(decided) == 1 and decided["metric_value"].iloc[0] > 2_000_000.0
    assert capped.summary["status"] == "SETTLED"
    assert _profit(capped) < profit


def test_on_predy_the_vault_limit_trims_it() -> None:
    predy = _run("whale_dump_predy")
    profit = _profit(predy)
    assert profit > 300_000.0
    limited = _run("whale_dump_predy", "venue.governance.max_position_per_vault=150")
    assert _profit(limited) < 0.5 * profit


# -- the settle action, the metrics and their validation ---------------------------------------


def _model(overrides: list[str]) -> PerpModel:
    small = ["agents.noise.count=20", "agents.momentum.count=2", "agents.lps.count=2"]
    return PerpModel(load_scenario(BASELINE, [*small, *overrides]), base_dir=BASELINE.parent)


def test_a_settle_action_completes_after_complete_after() -> None:
    rule = (
        "governance_rules=[{name: stop, metric: open_interest, above: 0,"
        " action: {kind: settle, price: 2000, complete_after: 10m}}]"
    )
    model = _model(["clock.duration=1h", rule])
    model.run()
    records = [r for r in model.event_log if r["kind"] == "governance_rule"]
    stages = [r["stage"] for r in records]
    assert stages == ["decided", "applied", "completed"]
    applied, completed = records[1], records[2]
    assert float(applied["value"]) == 2000.0
    assert completed["time"] - applied["time"] == 600
    assert model.time_in_emergency_s == 600
    begin = model.event_log.of_kind("begin_global_settlement")
    assert [e["price"] for e in begin] == [2000.0]
    assert model.venue.accounts_to_settle().size == 0


def test_backstop_loss_needs_a_backstop_and_lp_loss_reads_the_share_price() -> None:
    with pytest.raises(ConfigError, match=r"governance_rules\.cap\.metric: backstop_loss needs"):
        _model(
            [
                "governance_rules=[{name: cap, metric: backstop_loss, above: 1,"
                " action: {kind: settle}}]"
            ]
        )
    model = _model(
        ["governance_rules=[{name: cap, metric: lp_loss, above: 1e12, action: {kind: settle}}]"]
    )
    state = model.rules.states[0]
    assert state.fund_start == pytest.approx(model.venue.share_price())


@pytest.mark.parametrize(
    ("action", "key", "message"),
    [
        ("{kind: settle, price: indx}", "action.price", "did you mean 'index'"),
        ("{kind: settle, price: -5}", "action.price", "must be a price above 0"),
        ("{kind: settle, price: true}", "action.price", "must be a price above 0"),
        ("{kind: settle, price: mark, lookback: 1h}", "action.lookback", "only used with price"),
        ("{kind: settle, complete_after: -1}", "action.complete_after", ""),
        ("{kind: settle, at: 3}", "action.at", "unknown key"),
        ("{kind: setle}", "action.kind", "did you mean 'settle'"),
    ],
)
def test_bad_settle_actions_are_refused_naming_the_key(action: str, key: str, message: str) -> None:
    rules = f"[{{name: cap, metric: lp_loss, above: 1, action: {action}}}]"
    with pytest.raises(ConfigError, match=rf"governance_rules\.0\.{key}") as err:
        load_scenario(BASELINE, [f"governance_rules={rules}"])
    assert message in str(err.value)


def test_a_settlement_takes_no_expiry_and_the_metrics_are_known() -> None:
    rules = "[{name: cap, metric: lp_loss, above: 1, expiry: 1h, action: {kind: settle}}]"
    with pytest.raises(ConfigError, match=r"governance_rules\.0\.expiry: a settlement cannot"):
        load_scenario(BASELINE, [f"governance_rules={rules}"])
    rules = "[{name: cap, metric: backstop_los, above: 1, action: {kind: settle}}]"
    with pytest.raises(ConfigError, match="did you mean 'backstop_loss'"):
        load_scenario(BASELINE, [f"governance_rules={rules}"])


def test_settle_action_describes_itself() -> None:
    rule = GovernanceRule.model_validate(
        {
            "name": "cap",
            "metric": "backstop_loss",
            "above": 500_000,
            "action": {"kind": "settle", "price": "index", "lookback": "2h"},
        }
    )
    assert rule.describe() == "cap: backstop_loss > 500000 -> settle at the index 7200 s ago"
    fixed = SettleAction.model_validate({"kind": "settle", "price": 2280})
    assert fixed.price == 2280.0 and fixed.describe() == "settle at 2280"
    assert not math.isnan(fixed.price)
