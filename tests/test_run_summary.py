"""The terminal summary of ``perpsim run``: labels and units, and each scenario's headline.

It used to print the raw ``summary.json`` keys with no units, the LP return as a fraction and
no liquidation loss; ``lp_run``'s headline numbers (share supply, price impact) were in no
summary at all.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from support import REPO, PerpsimCLI

from perpsim.cli import main
from perpsim.metrics import METRICS, SUMMARY_METRICS, format_metric, format_value, metric_label
from perpsim.plots import load_run
from perpsim.report.run import run_report
from perpsim.scenario import load_scenario, shipped_scenarios

#: A short lp_run: two hours, LPs leave at 1h; enough for the pool to shrink.
SHORT_LP_RUN = [
    "--set",
    "clock.duration=2h",
    "--set",
    "agents.noise.count=20",
    "--set",
    "events=[{at: 1h, kind: liquidity_withdrawal, fraction: 1.0, population: lps}]",
]


@pytest.fixture(scope="module")
def lp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from support import run_perpsim

    out = tmp_path_factory.mktemp("summary") / "lp_run"
    proc = run_perpsim("run", "lp_run", *SHORT_LP_RUN, "--out", str(out), "--no-plots")
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def test_the_summary_has_labels_and_units_not_keys(lp_run: tuple[Path, str]) -> None:
    out, stdout = lp_run
    summary = json.loads((out / "summary.json").read_text())
    shown = [k for k in SUMMARY_METRICS if "_" in k and re.search(rf"\b{k}\b", stdout)]
    assert shown == [], f"raw keys in the terminal summary: {shown}"
    for label in ("liquidation loss", "LP share value change", "insurance fund at the start"):
        assert label in stdout
    assert re.search(r"insurance fund at the start\s*│\s*250,000 USD", stdout)
    lp = summary["lp_return"]
    # A percentage, not a fraction.
    assert re.search(rf"LP share value change\s*│\s*{format_value('%', lp)}", stdout)
    assert format_value("%", lp).endswith("%") and f"{lp:.4g}" not in stdout
    assert re.search(r"trades\s*│\s*[\d,]+\s*│", stdout)
    assert "accounting invariants" in stdout and "wall time" in stdout


def test_the_scenarios_headline_comes_first_and_holds_lp_runs_numbers(
    lp_run: tuple[Path, str],
) -> None:
    out, stdout = lp_run
    summary = json.loads((out / "summary.json").read_text())
    headline = load_scenario("lp_run").output.headline
    assert {"lp_share_supply_max", "price_impact_min", "price_impact_max"} <= set(headline)
    lines = [line for line in stdout.splitlines() if "│" in line]
    labels = [metric_label(m) for m in headline]
    first = [line.split("│")[1].strip() for line in lines[: len(labels)]]
    assert first == labels
    assert "shares" in stdout
    # The share supply and the price impact of a 10-contract buy are in the summary.
    assert summary["lp_share_supply_max"] > 3_000 > 2 * summary["lp_share_supply_final"]
    assert 0 < summary["price_impact_min"] < summary["price_impact_max"] < 0.05
    assert format_metric("price_impact_max", summary["price_impact_max"]) in stdout
    assert "price impact of a 10-contract buy, largest" in stdout


def test_the_report_shows_the_headline_with_the_same_labels(lp_run: tuple[Path, str]) -> None:
    out, _ = lp_run
    report = run_report(load_run(out), [])
    question = report.headline[0]
    assert question.title.startswith("The scenario's headline")
    keys = [row[2] for row in question.rows]
    assert keys == list(load_scenario("lp_run").output.headline)
    assert question.rows[0][0] == metric_label(keys[0])


def test_an_unknown_headline_metric_is_refused_with_the_valid_names(
    tmp_path: Path, perpsim_cli: PerpsimCLI, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        f"extends: {REPO / 'scenarios' / 'baseline.yaml'}\nname: s\n"
        "output: {headline: [bad_debt, liquidation_los_total]}\n"
    )
    proc = perpsim_cli("validate", str(scenario))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    # ``run`` loads the scenario the same way (in this process: one child is enough).
    assert main(["run", str(scenario), "--quiet", "--out", str(tmp_path / "o")]) == 2
    for stderr in (proc.stderr, capsys.readouterr().err):
        assert "output.headline.1: unknown summary metric 'liquidation_los_total'" in stderr
        assert "did you mean 'liquidation_loss_total'?" in stderr
        assert "valid: insurance_fund_initial" in stderr
    assert not (tmp_path / "o").exists()
    scenario.write_text(
        f"extends: {REPO / 'scenarios' / 'baseline.yaml'}\nname: s\n"
        "output: {headline: [bad_debt, bad_debt]}\n"
    )
    assert main(["validate", str(scenario)]) == 2
    assert "lists 'bad_debt' more than once" in capsys.readouterr().err


def test_every_metric_has_a_label_and_a_unit_and_no_key_went_away() -> None:
    assert list(METRICS) == list(SUMMARY_METRICS)
    # summary.json keys that sweeps, the dashboard and scripts read: only ever added to.
    for key in ("lp_return", "liquidation_loss_total", "max_unsafe_accounts_before_liquidation"):
        assert key in SUMMARY_METRICS
    for path in shipped_scenarios():
        for name in load_scenario(path).output.headline:
            assert name in METRICS, (path.name, name)


@pytest.mark.parametrize(
    ("unit", "value", "text"),
    [
        ("USD", 30484.07, "30,484 USD"),
        ("USD", -12.5, "−12.50 USD"),
        ("%", -0.0963, "−9.63%"),
        ("%", 0.0031, "0.31%"),
        ("%", 0.00002, "0.0020%"),
        ("contracts", 6613.416, "6,613 contracts"),
        ("price", 86.0, "86 USD"),
        ("price", 133.7877, "133.79 USD"),
        ("count", 1125, "1,125"),
        ("duration", 147_300, "1 d 16 h"),
        ("yes/no", True, "yes"),
        ("USD", math.nan, "—"),
    ],
)
def test_values_are_shown_in_their_unit(unit: str, value: object, text: str) -> None:
    assert format_value(unit, value) == text  # type: ignore[arg-type]
