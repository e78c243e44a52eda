"""The Mango-style oracle pump (``scenarios/attacks/oracle_pump.yaml``): the paper gain is
withdrawn while the index is pumped; an answer bound, or a guard that stops withdrawals, stops it.
"""

from __future__ import annotations

import pytest
from support import REPO

from perpsim.errors import PerpsimError
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


def test_an_ema_index_trims_the_pump_but_does_not_stop_it() -> None:
    naive, ema = _run(), _run("oracle.ema={half_life: 30m}")
    # A 30-minute EMA holds the x24 pump to about x3.1, and the withdrawals shrink by ~90%.
    assert float(ema.timeseries["index_price"].max()) < 0.2 * float(
        naive.timeseries["index_price"].max()
    )
    assert 0.0 < _profit(ema) < 0.2 * _profit(naive)


PREDY = FILE.with_name("oracle_pump_predy.yaml")


def _run_predy(*overrides: str) -> RunResult:
    result = run_scenario(load_scenario(PREDY, list(overrides)), base_dir=PREDY.parent)
    assert result.error is None, result.error
    return result


def test_on_predy_the_gain_is_taken_by_closing_at_the_pump_and_a_bound_stops_it() -> None:
    # Predy lends nothing against a paper gain: withdrawing alone takes back the deposit and
    # no more; selling at the pumped index takes the gain, paid by the pool.
    closing = _run_predy()
    assert _profit(closing) > 500_000.0
    assert float(closing.summary["lp_return"]) < -0.05
    withdrawing = _run_predy("agents.attacker.params.close_at=null")
    assert abs(_profit(withdrawing)) < 1_000.0
    clamped = _run_predy("oracle.max_answer=4000")
    assert _profit(clamped) < 0.01 * _profit(closing)


def test_a_close_outside_the_attack_window_is_refused() -> None:
    with pytest.raises(PerpsimError, match=r"params\.close_at: must lie between open_at"):
        load_scenario(FILE, ["agents.attacker.params.close_at=5h"])
