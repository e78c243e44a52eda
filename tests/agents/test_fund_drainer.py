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
