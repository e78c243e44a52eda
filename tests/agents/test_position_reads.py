"""The agents' cheap looks give the runs their long way gives, on every design.

An arbitrageur reads only its position on a look that does not trade (the venue's
:class:`~perpsim.engine.venue.PositionReader`), and a momentum trader already holding
``max_size`` with the trend stops before reading its margin balance
(``MomentumTrader._holds_max_with``). The reference is the code as it was: every position from
the full account view, every signal through the whole sizing. Both are run on the same scenario
and seed; every table must be the same, and the cheap looks must have been taken (so that the
comparison is not vacuous).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from perpsim.agents.base import PerpAgent
from perpsim.agents.traders.momentum_trader import MomentumTrader
from support import REPO, assert_same_run, run_file

#: Scenarios with arbitrageurs and momentum traders on each design (a few hours of each).
CASES = {
    "mcdex_v1": (REPO / "scenarios" / "baseline.yaml", ["clock.duration=1d"]),
    "predy": (
        REPO / "scenarios" / "predy_baseline.yaml",
        ["clock.duration=2d", "agents.momentum.params.max_size=2"],
    ),
    "d8x": (REPO / "benchmarks" / "scenarios" / "d8x_reference_3d.yaml", ["clock.duration=1d"]),
}


def _view_position(agent: PerpAgent) -> float:
    view = agent.venue.account(agent.name)
    return view.position_size if view.position_side == "long" else -view.position_size


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Counts of the cheap looks taken (position reads, momentum signals stopped early)."""
    counts = {"reads": 0, "stopped": 0}
    read, holds = PerpAgent.position, MomentumTrader._holds_max_with

    def position(self: PerpAgent) -> float:
        counts["reads"] += 1
        return read(self)

    def holds_max_with(self: MomentumTrader, position: float, d: float, change: float) -> bool:
        stop = holds(self, position, d, change)
        counts["stopped"] += stop
        return stop

    monkeypatch.setattr(PerpAgent, "position", position)
    monkeypatch.setattr(MomentumTrader, "_holds_max_with", holds_max_with)
    yield counts


@pytest.mark.parametrize("kind", list(CASES))
def test_cheap_looks_change_no_table(
    kind: str, counted: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, overrides = CASES[kind]
    fast = run_file(path, overrides)
    assert fast.manifest["resolved_scenario"]["venue"]["kind"] == kind
    assert counted["reads"] > 1_000 and counted["stopped"] > 0, counted
    assert fast.summary["trades"] > 0

    monkeypatch.setattr(PerpAgent, "position", _view_position)
    monkeypatch.setattr(MomentumTrader, "_holds_max_with", lambda *_: False)
    slow = run_file(path, overrides)

    assert_same_run(fast, slow)
