"""Inputs the engine cannot carry are refused by ``perpsim validate`` and ``perpsim run``.

Each hostile input is tried as a user would, in a child process: exit 2, a message naming the
file and the key (or the line of the data file), no traceback. Then the second documented way of
writing shocks and outages is seen by every output (one timeline).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import REPO
from support import run_perpsim as cli

from perpsim.plots import event_markers, load_run
from perpsim.scenario import load_scenario

TINY = (REPO / "tests" / "data" / "sweeps" / "tiny_scenario.yaml").read_text()


def _scenario(tmp_path: Path, path_section: str, events: str = "[]") -> Path:
    start, end = TINY.index("price_path:"), TINY.index("oracle:")
    text = TINY[:start] + "price_path:\n" + path_section + "\n" + TINY[end:]
    path = tmp_path / "scenario.yaml"
    path.write_text(text.replace("events: []", f"events: {events}"))
    return path


def _csv(tmp_path: Path, rows: list[str]) -> str:
    (tmp_path / "prices.csv").write_text("timestamp,open\n" + "".join(r + "\n" for r in rows))
    return "  kind: historical\n  file: prices.csv\n"


HOURS = [f"{1704067200 + 3600 * i},2000" for i in range(30)]


@pytest.mark.parametrize(
    ("section", "rows", "events", "expected"),
    [
        ("  kind: gbm\n  s0: 2000\n  sigma: 1.0e6\n", None, "[]", "price_path.sigma: must be <="),
        ("  kind: gbm\n  s0: 1.0e-300\n  sigma: 0.5\n", None, "[]", "price_path.s0: must be >="),
        ("  kind: gbm\n  s0: 2000\n  mu: 1.0e5\n  sigma: 0.5\n", None, "[]", "price_path.mu"),
        (None, [*HOURS[:5], f"{1704067200 + 5 * 3600},1e300", *HOURS[6:]], "[]", "line 7"),
        (None, [], "[]", "has 0 data row(s)"),
        (None, HOURS[:1], "[]", "has 1 data row(s)"),
        # a path in range that the shocks push out of it: the generator's check, not a field's
        (
            "  kind: constant\n  price: 1.0e11\n",
            None,
            "[{kind: price_shock, at: 1h, change: 20}]",
            "outside the prices a run can carry",
        ),
    ],
    ids=[
        "sigma 1e6",
        "s0 1e-300",
        "mu 1e5",
        "csv 1e300",
        "csv header only",
        "csv one row",
        "shock",
    ],
)
def test_refused_by_validate_and_run(
    tmp_path: Path, section: str | None, rows: list[str] | None, events: str, expected: str
) -> None:
    path = _scenario(tmp_path, section if rows is None else _csv(tmp_path, rows), events)
    for command in (("validate", str(path)), ("run", str(path), "--out", str(tmp_path / "o"))):
        proc = cli(*command, *(["--quiet", "--no-plots"] if command[0] == "run" else []))
        assert proc.returncode == 2, (command, proc.stderr)
        assert expected in proc.stderr, proc.stderr
        assert str(path) in proc.stderr or "prices.csv" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


def test_the_second_way_of_writing_shocks_and_outages_reaches_every_output(
    tmp_path: Path,
) -> None:
    path = _scenario(
        tmp_path, "  kind: gbm\n  s0: 2280\n  sigma: 0.5\n  shocks: [{at: 3h, change: -0.25}]\n"
    )
    text = path.read_text().replace(
        "  latency: 36\n",
        "  latency: 36\n  outages: [{start: 2h, duration: 1h}]\n"
        "  manipulations: [{start: 6h, duration: 10m, spike: 0.1}]\n",
    )
    path.write_text(text)
    scenario = load_scenario(path)
    assert [e.kind for e in scenario.events] == [
        "price_shock",
        "oracle_outage",
        "oracle_manipulation",
    ]
    assert not scenario.price_path.shocks and not scenario.oracle.outages
    out = tmp_path / "run"
    proc = cli("run", str(path), "--out", str(out), "--quiet", "--no-plots")
    assert proc.returncode == 0, proc.stderr
    resolved = json.loads((out / "manifest.json").read_text())["resolved_scenario"]
    assert [e["kind"] for e in resolved["events"]] == [e.kind for e in scenario.events]
    labels = " ".join(m.label for m in event_markers(load_run(out)))
    assert "-25%" in labels or "25" in labels
    assert "outage" in labels and "manipulation" in labels
    report = cli("report", str(out))
    assert report.returncode == 0, report.stderr
    assert "No scheduled events" not in (out / "report.md").read_text()


def test_a_huge_run_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text(TINY.replace("duration: 1d", "duration: 36500d").replace("10m", "1m"))
    for command in (("validate", str(path)), ("run", str(path), "--out", str(tmp_path / "o"))):
        proc = cli(*command, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert "52,560,000 ticks" in proc.stderr and "--max-memory" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_the_memory_limit_can_be_lowered_and_raised(tmp_path: Path) -> None:
    from perpsim.errors import ConfigError
    from perpsim.run import check_run_size, estimate_run_bytes, parse_memory

    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    scenario = load_scenario(path)
    need = estimate_run_bytes(scenario)
    with pytest.raises(ConfigError, match="above the limit"):
        check_run_size(scenario, need - 1)
    check_run_size(scenario, need)
    assert parse_memory("1.5GB") == int(1.5 * 1024**3) and parse_memory("512m") == 512 * 1024**2
    out = tmp_path / "o"
    proc = cli("run", str(path), "--out", str(out), "--quiet", "--no-plots", "--max-memory", "1k")
    assert proc.returncode == 2 and "above the limit of" in proc.stderr
    proc = cli("run", str(path), "--out", str(out), "--quiet", "--no-plots", "--max-memory", "1GB")
    assert proc.returncode == 0, proc.stderr
