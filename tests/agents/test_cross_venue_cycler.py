"""The GMX-AVAX-style cross-venue cycle (``scenarios/attacks/avax_cycle*.yaml``): the
oracle-priced pool (Predy) pays the pushes, D8X's premium charges for them, and Predy's vault
limit cuts the profit; the external round trip and the parameters are checked on their own.

Each seven-hour file runs in one to three seconds; the module stays under about 15 s.
"""

from __future__ import annotations

import math

import pytest
from perpsim.agents.traders.cross_venue_cycler import external_round_trip
from support import REPO

from perpsim.errors import PerpsimError
from perpsim.run import RunResult, run_scenario
from perpsim.scenario import load_scenario

ATTACKS = REPO / "scenarios" / "attacks"


def _run(name: str, *overrides: str) -> RunResult:
    path = ATTACKS / f"{name}.yaml"
    result = run_scenario(load_scenario(path, list(overrides)), base_dir=path.parent)
    assert result.error is None, result.error
    return result


def _venue_pnl(result: RunResult) -> float:
    acc = result.accounts
    att = acc[acc["population"] == "attacker"]
    return float((att["withdrawals"] + att["final_value"] - att["deposits"]).sum())


def _net(result: RunResult) -> float:
    """The attack's profit: the venue P&L less what the external pushes cost."""
    return _venue_pnl(result) - float(result.tables["cycles"]["external_cost"].sum())


@pytest.fixture(scope="module")
def predy() -> RunResult:
    return _run("avax_cycle_predy")


def test_the_oracle_priced_pool_pays_the_pushes(predy: RunResult) -> None:
    cycles = predy.tables["cycles"]
    assert list(cycles["cycle"]) == [1, 2, 3, 4, 5]
    assert (cycles["size"] == 1000.0).all()  # zero impact: the whole size every cycle
    # Opened about at the index and closed about at the pushed index.
    assert (cycles["close_price"] / cycles["open_price"] - 1.0 > 0.04).all()
    assert (cycles["external_cost"] > 0.0).all()
    # The cycle rows add up to the account's P&L (the attacker is flat between cycles).
    assert float(cycles["venue_pnl"].sum()) == pytest.approx(_venue_pnl(predy), rel=1e-9)
    assert _net(predy) > 300_000.0
    # The pool's LPs paid.
    acc = predy.accounts
    lps = acc[(acc["population"] == "lps") | (acc["account"] == "pool_creator")]
    assert float(lps["pnl"].sum()) < -_net(predy)
    assert predy.summary["lp_return"] < 0.0


def test_d8x_charges_where_predy_pays(predy: RunResult) -> None:
    d8x = _run("avax_cycle_d8x")
    cycles = d8x.tables["cycles"]
    # The default-probability premium keeps the first cycle small; it fades as the funds grow.
    assert float(cycles["size"].iloc[0]) < 100.0
    assert float(cycles["net"].iloc[0]) < 0.0
    assert (cycles["size"] < 1000.0).all()
    assert _net(d8x) < 0.25 * _net(predy)


def test_the_deployed_vault_limit_cuts_the_profit(predy: RunResult) -> None:
    guarded = _run("avax_cycle_predy", "venue.governance.max_position_per_vault=150")
    assert (guarded.tables["cycles"]["size"] <= 150.0).all()
    assert _net(guarded) < 0.2 * _net(predy)


def test_the_external_round_trip() -> None:
    # Selling the ETH back into the pool the purchase left (nobody traded in between) undoes
    # the purchase: no cost without fees.
    trip = external_round_trip(5e6, 0.0, 2000.0, 2100.0, 2100.0)
    assert trip.bought > 0.0
    assert trip.cost == pytest.approx(0.0, abs=1e-6)
    # The market arbitrages the pool back first: the sale is into the recovered pool.
    back = external_round_trip(5e6, 0.001, 2000.0, 2100.0, 2000.0)
    liquidity = 5e6 / math.sqrt(2000.0)
    assert back.spent == pytest.approx(liquidity * (math.sqrt(2100.0) - math.sqrt(2000.0)))
    assert back.received < back.spent
    assert back.fees == pytest.approx(0.001 * (back.spent + back.received))
    assert back.cost == pytest.approx(back.spent - back.received + back.fees)
    assert external_round_trip(5e6, 0.001, 2000.0, 1990.0, 2000.0).cost == 0.0


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("agents.attacker.params.period=5m", "period"),
        ("agents.attacker.params.cycles=0", "cycles"),
        ("agents.attacker.params.first_push_at=30s", "first_push_at"),
        ("agents.attacker.params.external_fee_rate=1", "external_fee_rate"),
        ("agents.attacker.params.external_depth=-1", "external_depth"),
    ],
)
def test_bad_params_name_the_key(override: str, key: str) -> None:
    with pytest.raises(PerpsimError, match=rf"params\.{key}: "):
        load_scenario(ATTACKS / "avax_cycle.yaml", [override])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("agents.attacker.params.first_push_at=90m", r"cycle 1's push needs a price_shock event"),
        ("agents.attacker.params.hold=5m", r"cycle 1's reversal needs a price_shock event"),
        ("agents.attacker.params.lead=30s", r"params\.lead: 30 s is shorter than the run's tick"),
    ],
)
def test_a_schedule_the_market_path_does_not_carry_is_a_clear_error(
    override: str, message: str
) -> None:
    path = ATTACKS / "avax_cycle.yaml"
    scenario = load_scenario(path, [override])
    with pytest.raises(PerpsimError, match=message):
        run_scenario(scenario, base_dir=path.parent)


def test_on_mcdex_the_patient_cycle_pays_the_open_interest_cap_trims_it_and_haste_loses() -> None:
    # The constant-product AMM charges a rushed cycle for its size; sliced, the arbitrageurs
    # bring the AMM back in between and they pay for the push.
    patient = _run("avax_cycle")
    assert _net(patient) > 20_000.0
    acc = patient.accounts
    assert float(acc[acc["population"] == "arbs"]["pnl"].sum()) < 0.0
    assert patient.summary["insurance_fund_final"] == pytest.approx(250_000.0)
    capped = _run("avax_cycle", "governance_rules.0.enabled=true")
    assert 0.0 < _net(capped) < 0.5 * _net(patient)
    rushed = _run(
        "avax_cycle", "agents.attacker.params.lead=1m", "agents.attacker.params.slice=1000"
    )
    assert _net(rushed) < 0.0
    assert (rushed.tables["cycles"]["size"] < 50.0).all()
