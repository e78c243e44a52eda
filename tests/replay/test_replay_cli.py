"""``perpsim replay`` run as a real command in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import REPO, PerpsimCLI

EXAMPLES = sorted((REPO / "scenarios" / "replay").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_shipped_replay_examples_pass(path: Path, tmp_path: Path, perpsim_cli: PerpsimCLI) -> None:
    out = tmp_path / "report.json"
    proc = perpsim_cli("replay", str(path), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report == json.loads(proc.stdout)
    assert report["ok"] is True and report["failures"] == []
    assert report["observations"], "every example observes something"


def test_observations_results_and_expected_errors(tmp_path: Path, perpsim_cli: PerpsimCLI) -> None:
    f = tmp_path / "r.json"
    f.write_text(
        json.dumps(
            {
                "governance": {"taker_dev_fee_rate": 0.001, "maker_dev_fee_rate": 0.0},
                "ops": [
                    {"op": "set_mark_price", "price": 100},
                    {"op": "deposit", "account": "a", "amount": 100},
                    {"op": "deposit", "account": "b", "amount": 100},
                    {
                        "op": "trade",
                        "taker": "a",
                        "maker": "b",
                        "side": "buy",
                        "price": 100,
                        "amount": 2,
                    },
                    {"op": "withdraw", "account": "a", "amount": 1000, "expect_error": True},
                    {
                        "op": "observe",
                        "names": [
                            "a.cash_balance",
                            "a.position_side",
                            "perp.total_size_long",
                            "a.pnl1@110",
                        ],
                    },
                ],
            }
        )
    )
    proc = perpsim_cli("replay", str(f))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["results"][0]["index"] == 3
    assert report["results"][0]["result"]["taker_fee"] == pytest.approx(0.2)
    assert report["errors"] == [
        {
            "index": 4,
            "op": "withdraw",
            "error_type": "InsufficientBalanceError",
            "error": report["errors"][0]["error"],
            "expected": True,
        }
    ]
    obs = report["observations"][0]
    assert obs["index"] == 5
    assert obs["values"] == {
        "a.cash_balance": pytest.approx(99.8),
        "a.position_side": "long",
        "perp.total_size_long": 2.0,
        "a.pnl1@110": pytest.approx(20.0),
    }


def test_unexpected_rejection_and_failed_expectation_exit_1(
    tmp_path: Path, perpsim_cli: PerpsimCLI
) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(
        "ops:\n"
        "  - {op: set_mark_price, price: 100}\n"
        "  - {op: deposit, account: a, amount: 10}\n"
        "  - {op: withdraw, account: a, amount: 20}\n"
        "  - {op: observe, names: [a.cash_balance], expect: {a.cash_balance: 11}}\n"
        "  - {op: deposit, account: a, amount: 1, expect_error: true}\n"
    )
    proc = perpsim_cli("replay", str(f))
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    failures = {x["index"]: x["failure"] for x in report["failures"]}
    assert "InsufficientBalanceError" in failures[2]
    assert "expected 11" in failures[3]
    assert "succeeded" in failures[4]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("ops: [{op: dposit, account: a, amount: 1}]", "did you mean 'deposit'"),
        ("ops: [{op: deposit, account: a}]", "missing argument 'amount'"),
        ("ops: [{op: deposit, account: a, amount: 1, colour: red}]", "unknown argument 'colour'"),
        ("ops: {}", "ops: must be a list"),
        ("governance: {maintenance_margin_rate: 0.5}\nops: []", "maintenance_margin_rate"),
        ("ops: [\n  {op: deposit", "invalid YAML"),
        ("- 1\n- 2", "must be a mapping"),
        ("venue: perpetual\nops: [{op: set_index, price: 1}]", "venue"),
    ],
)
@pytest.mark.slow
def test_bad_files_exit_2_without_traceback(
    tmp_path: Path, content: str, message: str, perpsim_cli: PerpsimCLI
) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(content)
    proc = perpsim_cli("replay", str(f))
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_file_exit_2(perpsim_cli: PerpsimCLI) -> None:
    proc = perpsim_cli("replay", "no/such/file.yaml")
    assert proc.returncode == 2
    assert "file not found" in proc.stderr and "Traceback" not in proc.stderr
