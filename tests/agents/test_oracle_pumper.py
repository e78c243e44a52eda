"""The Mango-style oracle pump (``scenarios/attacks/oracle_pump.yaml``): the paper gain is
withdrawn while the index is pumped; an answer bound, or a guard that stops withdrawals, stops it.
"""

from __future__ import annotations

import pytest
from support import REPO

from perpsim.run import RunResult, run_scenario
from perpsim.scenario import load_scenario

FILE = REPO / "scenarios" / "attacks" / "oracle_pump.yaml"


def _run(*overrides: str) -> RunResult:
    result = run_scenario(load_scenario(FILE, list(overrides)), base_dir=FILE.parent)
    assert result.error is None, result.error
    return result


def _profit(result: RunResult) -> float:
    acc = result.accounts
    att = acc[acc["account"] == "attacker"]
    return float((att["withdrawals"] + att["final_value"] - att["deposits"]).sum())


def test_the_pump_pays_out_and_an_answer_bound_stops_it() -> None:
    naive = _run()
    assert _profit(naive) > 1_000_000.0
    ev = naive.events
    liq = ev[(ev["kind"] == "liquidate") & (ev["account"] == "attacker")]
    assert float(liq["loss"].sum()) > 1_000_000.0
    clamped = _run("oracle.max_answer=4000")
    assert _profit(clamped) < 0.0
    assert clamped.summary["social_loss_total"] == pytest.approx(0.0)


def test_a_guard_must_stop_withdrawals_to_stop_the_pump() -> None:
    guarded = _run("oracle.guard={max_price: 4000, stops: all}")
    assert _profit(guarded) < 0.0
    assert any(k.startswith("withdraw:HaltedError") for k in guarded.summary["rejections"])
