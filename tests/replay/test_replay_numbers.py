"""Replay files and run-folder replays read numbers as YAML 1.2 does (``1e-18`` is a number)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from perpsim.engine.venues.mcdex_v1.replay import events_to_ops, governance_value
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


def test_exponent_numbers_in_a_json_replay_file(tmp_path: Path) -> None:
    """JSON is YAML 1.2: the same loader reads it, exponents included."""
    path = tmp_path / "r.json"
    path.write_text(
        '{"venue": "perpetual", "governance": {"lot_size": 1e-18},'
        ' "ops": [{"op": "set_mark_price", "price": 1e3},'
        ' {"op": "set_governance", "key": "maker_dev_fee_rate", "value": -5e-05},'
        ' {"op": "deposit", "account": "a", "amount": 2.5e2},'
        ' {"op": "observe", "names": ["a.cash_balance"], "expect": {"a.cash_balance": 250}}]}',
        encoding="utf-8",
    )
    report = run_replay_file(path)
    assert report.ok, report.failures
    assert report.observations[0]["values"]["a.cash_balance"] == 250.0


def test_governance_changes_replayed_from_a_run_are_numbers() -> None:
    """A run's event log stores governance values as text; replaying them gives numbers."""
    events = pd.DataFrame(
        [
            {"kind": "deposit", "time": 100, "account": "a", "amount": 1000.0},
            {"kind": "set_governance", "time": 100, "key": "taker_dev_fee_rate", "value": "5e-05"},
            {"kind": "set_governance", "time": 100, "key": "lot_size", "value": "1e-18"},
        ]
    )
    ops = events_to_ops(events)
    values = [op["value"] for op in ops if op["op"] == "set_governance"]
    assert values == [5e-05, 1e-18] and all(isinstance(v, float) for v in values)
