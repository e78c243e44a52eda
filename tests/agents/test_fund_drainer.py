"""The self-dealing fund drain (``scenarios/attacks/fund_drain.yaml``): a profit paid by the
insurance fund at the engine's margins, a loss once the initial margin covers the gap.

The full six-hour scenario runs once (about 3 s); the guarded variant runs over the same market.
The other venue kinds' files run briefly in ``test_shipped_scenarios.py``.
"""

from __future__ import annotations

import pandas as pd
import pytest
from support import REPO

from perpsim.run import RunResult, run_scenario
from perpsim.scenario import load_scenario

FILE = REPO / "scenarios" / "attacks" / "fund_drain.yaml"


def _run(*overrides: str) -> RunResult:
    result = run_scenario(load_scenario(FILE, list(overrides)), base_dir=FILE.parent)
    assert result.error is None, result.error
    return result


def _profit(result: RunResult) -> float:
    """Cash out minus cash in over the attacker's accounts (it walks away from a deficit)."""
    acc = result.accounts
    att = acc[acc["population"] == "attacker"]
    assert set(att["account"]) == {"attacker", "attacker/short"}
    return float(att["withdrawals"].sum() - att["deposits"].sum())


def _attacker_liquidations(result: RunResult) -> pd.DataFrame:
    ev = result.events
    return ev[(ev["kind"] == "liquidate") & (ev["account"] == "attacker")]


@pytest.fixture(scope="module")
def unguarded() -> RunResult:
    return _run()


def test_the_fund_pays_the_bankrupt_leg_and_the_attacker_profits(unguarded: RunResult) -> None:
    liq = _attacker_liquidations(unguarded)
    loss = float(liq["loss"].sum())
    assert loss > 50_000.0
    assert float(liq["insurance_fund_paid"].sum()) == pytest.approx(loss)
    s = unguarded.summary
    assert s["insurance_fund_final"] < s["insurance_fund_initial"] - 50_000.0
    profit = _profit(unguarded)
    assert 0.0 < profit < loss  # the deficit, less fees, impact and penalties
    # Both legs were built in full: the short closed 1,000 ETH.
    ev = unguarded.events
    sells = ev[(ev["kind"] == "sell") & (ev["account"] == "attacker/short")]
    assert float(sells["amount"].abs().sum()) == pytest.approx(1000.0)


def test_an_initial_margin_above_the_gap_stops_it(unguarded: RunResult) -> None:
    guarded = _run(
        "venue.governance.initial_margin_rate=0.2",
        "venue.governance.maintenance_margin_rate=0.15",
    )
    assert float(_attacker_liquidations(guarded)["loss"].sum()) == 0.0
    assert _profit(guarded) < 0.0 < _profit(unguarded)
    assert guarded.summary["insurance_fund_final"] >= guarded.summary["insurance_fund_initial"]


def test_on_d8x_the_lps_pay_the_whole_bankrupt_leg_not_the_default_fund() -> None:
    # The baseline's 100-contract liquidators: D8X's liquidation takes the pool's amount, so
    # the 1,000-contract bankrupt leg goes in one call. The DF is drained in the same minute by
    # the AMM fund's stress top-ups, which are not the loss's payment.
    d8x = REPO / "scenarios" / "attacks" / "fund_drain_d8x.yaml"
    result = run_scenario(load_scenario(d8x, []), base_dir=d8x.parent)
    assert result.error is None, result.error
    liq = _attacker_liquidations(result)
    assert float(liq["amount"].sum()) == pytest.approx(1000.0)
    assert float(liq["loss"].sum()) > 50_000.0
    assert float(liq["insurance_fund_paid"].sum()) == 0.0
    ts = result.timeseries
    at = ts.index[ts["time"] >= liq["time"].iloc[0]][0]
    assert ts["d8x_default_fund_cash"].iloc[at] < 0.1 * ts["d8x_default_fund_cash"].iloc[at - 1]
    assert ts["lp_share_price"].iloc[at] < ts["lp_share_price"].iloc[at - 1]
    assert result.summary["social_loss_total"] == 0.0
    assert _profit(result) > 0.0
