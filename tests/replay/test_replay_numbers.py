"""Replay files and run-folder replays read numbers as YAML 1.2 does (``1e-18`` is a number)."""

from __future__ import annotations

from pathlib import Path

from perpsim.engine.venues.mcdex_v1.replay import governance_value
from perpsim.replay import run_replay_file


def test_exponent_numbers_are_numbers(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "venue: perpetual\n"
        "governance: {lot_size: 1e-18, trading_lot_size: 1e-18}\n"
        "ops:\n"
        "  - {op: set_mark_price, price: 1000}\n"
        "  - {op: set_governance, key: taker_dev_fee_rate, value: 5e-05}\n"
        "  - {op: deposit, account: a, amount: 1e3}\n"
        "  - {op: observe, names: [a.cash_balance], expect: {a.cash_balance: 1000}}\n",
        encoding="utf-8",
    )
    report = run_replay_file(path)
    assert report.ok, report.failures
    assert report.errors == []


def test_governance_values_from_an_event_log() -> None:
    assert governance_value("5e-05") == 5e-05
    assert governance_value("1e-18") == 1e-18
    assert governance_value("opposite") == "opposite"
