"""The summary, the time series, the figure and the report count unsafe accounts alike.

Both counts are recorded under names that say which: before liquidators act in a tick (when
a crash's accounts are unsafe and bankrupt) and at the end of the tick (after them).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from support import run_perpsim as cli

PAIRS = (
    ("max_unsafe_accounts_before_liquidation", "unsafe_accounts_before_liquidation"),
    ("max_bankrupt_accounts_before_liquidation", "bankrupt_accounts_before_liquidation"),
    ("max_unsafe_accounts_end_of_tick", "unsafe_accounts"),
    ("max_bankrupt_accounts_end_of_tick", "bankrupt_accounts"),
)


@pytest.mark.slow
def test_flash_crash_shows_its_bankrupt_accounts_everywhere(tmp_path: Path) -> None:
    out = tmp_path / "run"
    # every other recorded tick: the rows keep the most since the previous row, so nothing hides
    proc = cli(
        "run",
        "flash_crash_oracle_outage",
        "--out",
        str(out),
        "--quiet",
        "--no-plots",
        "--set",
        "output.record_every=2",
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    ts = pd.read_parquet(out / "timeseries.parquet")
    for metric, column in PAIRS:
        assert summary[metric] == ts[column].max(), metric
    # the scenario's headline (about 73 bankrupt at once when the oracle resumes) is visible
    assert summary["max_bankrupt_accounts_before_liquidation"] >= 50
    assert (
        summary["max_bankrupt_accounts_end_of_tick"]
        < summary["max_bankrupt_accounts_before_liquidation"]
    )
    assert cli("report", str(out), timeout=600).returncode == 0  # draws the figures too
    assert (out / "plots" / "liquidations.png").is_file()
    report = (out / "report.md").read_text()
    assert "most accounts bankrupt at once" in report
    assert f"{summary['max_bankrupt_accounts_before_liquidation']:,}" in report


def test_summary_sums_are_exactly_rounded_on_every_python() -> None:
    """math.fsum everywhere: 3.11's sum() and 3.12's compensated sum() differ in last digits."""
    import math

    from perpsim.run import run_scenario
    from perpsim.scenario import load_scenario, resolve_scenario_path

    path = resolve_scenario_path("baseline")
    result = run_scenario(load_scenario(path, ["clock.duration=4h"]), base_dir=path.parent)
    events = result.events
    trades = events[events["kind"].isin(["buy", "sell", "trade"])]
    assert len(trades) > 50
    assert result.summary["volume"] == math.fsum(trades["amount"].tolist())
    liq = events[events["kind"] == "liquidate"]
    assert result.summary["liquidated_value"] == math.fsum((liq["amount"] * liq["price"]).tolist())
