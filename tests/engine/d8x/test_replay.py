"""D8X replay documents: the design named by ``kind`` or ``venue``, and malformed files."""

from __future__ import annotations

import pytest

from perpsim.errors import ConfigError
from perpsim.replay import run_replay_doc

OPS = [
    {"op": "set_index", "price": 1000.0},
    {"op": "create_pool", "amm_fund": 100.0, "default_fund": 1000.0, "lp_cash": 10000.0},
    {"op": "deposit", "account": "t", "amount": 500.0},
    {"op": "trade", "account": "t", "amount": 1.0},
    {
        "op": "observe",
        "names": ["pool.k2", "t.position", "quote@0.price", "quote@-0.5.pd"],
        "expect": {"pool.k2": 1.0, "t.position": 1.0},
    },
]


@pytest.mark.parametrize("key", ["kind", "venue"])
def test_a_replay_names_d8x_by_kind_or_venue(key: str) -> None:
    report = run_replay_doc({key: "d8x", "ops": OPS})
    assert report.venue == "d8x" and report.ok, report.failures
    values = report.observations[0]["values"]
    assert values["quote@0.price"] > 0.0 and 0.0 <= values["quote@-0.5.pd"] <= 1.0


def test_malformed_d8x_replays_list_every_problem() -> None:
    doc = {
        "kind": "d8x",
        "governance": {"sigma2": -1.0},
        "ops": [{"op": "trad", "account": "t"}, {"op": "trade", "account": "t"}],
        "extra": 1,
    }
    with pytest.raises(ConfigError) as info:
        run_replay_doc(doc, "f.yaml")
    text = str(info.value)
    for part in (
        "extra: unknown top-level key",
        "did you mean 'trade'",
        "missing argument 'amount'",
        "governance: sigma2",
    ):
        assert part in text, text


def test_operations_before_the_pool_are_refused() -> None:
    report = run_replay_doc(
        {"kind": "d8x", "ops": [{"op": "deposit", "account": "a", "amount": 1}]}
    )
    assert not report.ok and "create_pool first" in report.failures[0]["failure"]
