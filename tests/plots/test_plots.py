"""Figures (``perpsim plot``) and reports (``perpsim report``) of runs and sweeps.

Run folders come from the real pipeline (model, engine, ``write_outputs``). Where a test needs
liquidations, traders and a completed settlement without depending on agent behaviour, a
*scripted* run drives the engine directly between ticks: traders open leveraged positions
against the AMM, a price jump makes them unsafe, a liquidator liquidates them, and the admin
steps (``global_settled``, ``settle``) are called by the script. Sweep folders are both
synthetic (exactly the agreed columns of ``results.parquet`` / ``aggregate.parquet``) and real
(``perpsim sweep`` on a tiny grid).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.text import Text
from PIL import Image
from support import REPO, run_perpsim

from perpsim.engine.core.figures import FigureSpec, PanelSpec, SeriesSpec
from perpsim.engine.core.status import Status
from perpsim.errors import ConfigError, EngineError
from perpsim.metrics import SUMMARY_METRICS, run_summary
from perpsim.model import PerpModel
from perpsim.plots import (
    RUN_FIGURES,
    SWEEP_FIGURES,
    CompactFormatter,
    event_markers,
    fmt_duration,
    fmt_number,
    governance_defaults,
    governance_series,
    governance_value,
    load_run,
    plot_dir,
    plot_run,
    plot_sweep,
    read_sweep_dir,
    run_figures,
    sweep_figures,
    venue_section,
)
from perpsim.plots.venues import draw_figure, figure_info, venue_figures
from perpsim.report import SECTIONS, render_html, write_report
from perpsim.report.model import Report
from perpsim.report.tables import governance_table
from perpsim.run import (
    RunResult,
    run_scenario,
    timeseries_frame,
    versions,
    write_outputs,
)
from perpsim.scenario import load_scenario

ROOT = REPO
SCENARIOS = ROOT / "scenarios"
#: The common figures, then MCDEX v1's own (every test run is of the default design).
RUN_FILES = [f.file for f in RUN_FIGURES] + [
    figure_info(spec).file for spec in venue_figures("mcdex_v1")
]
SWEEP_FILES = [f.file for f in SWEEP_FIGURES]
PARAMS = ("venue.governance.initial_margin_rate", "venue.governance.maintenance_margin_rate")


# ---------------------------------------------------------------------------------------------
# Building run and sweep folders
# ---------------------------------------------------------------------------------------------


def scripted_run(
    out: Path,
    overrides: list[str],
    *,
    leverage: tuple[float, float] = (3.0, 9.5),
    settle_after: int | None = None,
    n_traders: int = 30,
    seed: int = 7,
) -> Path:
    """A run of global_settlement.yaml without agents, driven by a script between ticks."""
    sc = load_scenario(SCENARIOS / "global_settlement.yaml", ["agents=[]", *overrides])
    model = PerpModel(sc, seed, base_dir=SCENARIOS)
    rng = np.random.default_rng(seed)
    venue = model.venue
    traders = [f"noise-{i}" for i in range(n_traders)]
    for name in traders:
        venue.deposit(name, 5000.0)
    venue.deposit("liquidator", 5e6)
    price = venue.mark_price()
    for name in traders:
        size = round(5000.0 * rng.uniform(*leverage) / price, 2)
        side = 1.0 if rng.random() < 0.7 else -1.0
        with contextlib.suppress(EngineError):
            venue.trade(name, side * size)
    settle_tick: int | None = None
    while model.tick < model.n_ticks:
        model.step()
        if venue.status is Status.NORMAL and rng.random() < 0.2:
            with contextlib.suppress(EngineError):
                venue.trade(traders[int(rng.integers(n_traders))], float(rng.choice([-0.5, 0.5])))
        if venue.status is not Status.SETTLED:
            for row in venue.liquidatable_accounts().tolist():
                name = venue.account_name(row)
                if name in ("pool", "liquidator"):
                    continue
                venue.liquidate("liquidator", name, venue.account(name).position_size)
        if venue.status is Status.EMERGENCY and settle_after is not None:
            if settle_tick is None:
                settle_tick = model.tick + settle_after
            elif model.tick >= settle_tick:
                venue.global_settled()
                for name in [*traders, "liquidator", "pool_creator"]:
                    shares = venue.share_balance(name)
                    if shares > 0:
                        venue.settle_shares(name, shares)
                    venue.settle(name)
    accounts = model.account_table()
    for a in accounts:  # the script's traders stand for a noise-trader population
        if a["account"].startswith("noise-"):
            a["population"], a["agent_type"] = "noise", "noise_trader"
    manifest = {
        "scenario": sc.name,
        "seed": seed,
        "resolved_scenario": json.loads(sc.model_dump_json()),
        "versions": versions(),
        "git_commit": "0123abcd",
        "command": "scripted test run",
        "started_at": "2024-01-01T00:00:00Z",
        "wall_time_s": 1.0,
        "ticks_run": model.tick,
        "error": None,
    }
    result = RunResult(
        summary=run_summary(model, accounts),
        manifest=manifest,
        timeseries=timeseries_frame(model),
        event_log=model.event_log,
        accounts=pd.DataFrame(accounts),
    )
    write_outputs(result, out)
    return out


def plain_run(out: Path, name: str, overrides: list[str], fmt: str = "parquet") -> Path:
    """A shipped scenario run through the ordinary pipeline (``run_scenario``)."""
    sc = load_scenario(SCENARIOS / f"{name}.yaml", overrides)
    result = run_scenario(sc, None, base_dir=SCENARIOS)
    assert result.error is None, result.error
    write_outputs(result, out, fmt)
    return out


def synthetic_sweep(
    out: Path,
    *,
    ims: tuple[float, ...] = (0.05, 0.1, 0.2),
    mms: tuple[float, ...] | None = (0.03, 0.04),
    seeds: int = 6,
    keep_runs: bool = True,
) -> Path:
    """A sweep folder with exactly the agreed columns (results, aggregate, sweep.json, runs/)."""
    rng = np.random.default_rng(3)
    keys = list(PARAMS if mms is not None else PARAMS[:1])
    rows: list[dict[str, Any]] = []
    points = list(itertools.product(ims, mms if mms is not None else (None,)))
    for pid, (im, mm) in enumerate(points):
        for si in range(seeds):
            row: dict[str, Any] = {"point_id": pid, "seed_index": si, "seed": 10_000 + si}
            row[keys[0]] = im
            if mm is not None:
                row[keys[1]] = mm
            row.update(status="ok", error=None, traceback=None, wall_time_s=1.0)
            for m in SUMMARY_METRICS:
                row[m] = float(rng.normal(100.0, 10.0))
            dd = float(rng.gamma(2.0, 250.0 / im))
            row.update(
                insurance_fund_initial=50_000.0,
                insurance_fund_min=50_000.0 - dd,
                insurance_fund_drawdown=dd,
                insurance_fund_exhausted=dd > 20_000,
                social_loss_total=max(0.0, dd - 20_000),
                bad_debt=max(0.0, dd - 45_000),
                settled=False,
                liquidated_value=float(rng.gamma(2.0, 5_000.0 / im)),
                time_in_emergency_s=0.0,
            )
            if pid == 1 and si == 0:
                row.update(status="failed", error="InvariantViolation: test failure")
                for m in SUMMARY_METRICS:
                    row[m] = None
            if keep_runs and row["status"] == "ok":
                run = out / "runs" / f"{pid:05d}-{si:03d}"
                run.mkdir(parents=True)
                t = pd.date_range("2020-03-12", periods=150, freq="10min", tz="UTC")
                fall = np.maximum.accumulate(np.abs(rng.normal(0.0, 1.0, len(t))).cumsum())
                fund = 50_000.0 - fall / fall[-1] * dd
                pd.DataFrame({"time": t, "insurance_fund": fund}).to_parquet(
                    run / "timeseries.parquet"
                )
                row["run_dir"] = f"runs/{pid:05d}-{si:03d}"
            rows.append(row)
    results = pd.DataFrame(rows)
    for m in ("insurance_fund_exhausted", "settled"):
        results[m] = results[m].astype("boolean")
    out.mkdir(parents=True, exist_ok=True)
    results.to_parquet(out / "results.parquet")
    agg: list[dict[str, Any]] = []
    for pid, g in results.groupby("point_id"):
        ok = g[g["status"] == "ok"]
        rec: dict[str, Any] = {"point_id": pid, **{k: g[k].iloc[0] for k in keys}}
        rec.update(n_runs=len(g), n_ok=len(ok), n_failed=len(g) - len(ok))
        for m in SUMMARY_METRICS:
            v = ok[m].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
            rec[f"{m}_mean"], rec[f"{m}_median"] = float(np.mean(v)), float(np.median(v))
            rec[f"{m}_p5"], rec[f"{m}_p95"] = (float(q) for q in np.percentile(v, [5, 95]))
        for m in ("bad_debt", "insurance_fund_drawdown"):
            v = ok[m].to_numpy(dtype=float)
            var = float(np.quantile(v, 0.95))
            rec[f"var95_{m}"], rec[f"cvar95_{m}"] = var, float(v[v >= var].mean())
        rec["p_insurance_fund_exhausted"] = float(ok["insurance_fund_exhausted"].mean())
        rec["lar95"] = float(np.quantile(ok["liquidated_value"], 0.95))
        agg.append(rec)
    pd.DataFrame(agg).to_parquet(out / "aggregate.parquet")
    manifest = {
        "name": "margin_grid",
        "scenario": "black_thursday",
        "parameters": keys,
        "seeds": seeds,
        "spec": {"description": "Which margin rates keep the insurance fund solvent?"},
    }
    (out / "sweep.json").write_text(json.dumps(manifest))
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run folders shared by the module's tests."""
    base = tmp_path_factory.mktemp("runs")
    return {
        # a -35% jump at 4h, losses beyond the fund, then global settlement, completed 1h later
        "crash": scripted_run(
            base / "crash",
            [
                "clock.duration=12h",
                "events=[{at: 4h, kind: price_shock, change: -0.35},"
                " {at: 8h, kind: begin_global_settlement}]",
            ],
            settle_after=60,
        ),
        # calm: no events, low leverage, no liquidation
        "calm": scripted_run(
            base / "calm", ["events=[]", "clock.duration=12h"], leverage=(1.0, 2.0)
        ),
        # the ordinary pipeline with CSV tables and no agents at all
        "csv": plain_run(base / "csv", "baseline", ["agents=[]", "clock.duration=6h"], "csv"),
    }


@pytest.fixture(scope="module")
def plotted(runs: dict[str, Path]) -> dict[str, list[Path]]:
    return {name: plot_run(runs[name]) for name in ("crash", "calm")}


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def check_png(path: Path, *, min_w: int = 700, max_w: int = 2600, max_h: int = 3200) -> None:
    """A real PNG of a sensible size, not blank."""
    assert path.is_file() and path.stat().st_size > 15_000, path
    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
        assert min_w <= w <= max_w and 300 <= h <= max_h, (path.name, im.size)
        gray = np.asarray(im.convert("L"), dtype=np.float64)
    assert gray.std() > 10, f"{path.name} looks blank"


def figure_texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text()]


def text_overlaps(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of visible labels (texts, tick labels, legends) whose boxes overlap."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    legends = [leg for leg in fig.findobj(Legend) if leg.get_visible()]
    skip = {id(t) for leg in legends for t in leg.findobj(Text)}
    axes = [a for ax in fig.axes for a in (ax, *ax.child_axes)]
    drawn: list[Text] = []
    for ax in axes:  # tick labels: only those of ticks inside the view (the drawn ones)
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                skip.update((id(tick.label1), id(tick.label2)))
            if not (ax.get_visible() and axis.get_visible()):
                continue
            lo, hi = sorted(axis.get_view_interval())
            pad = (hi - lo) * 1e-6
            k = 0 if axis is ax.xaxis else 1
            drawn += [
                t
                for t in axis.get_ticklabels(which="both")
                if t.get_visible() and lo - pad <= t.get_position()[k] <= hi + pad
            ]
    boxes = [(f"legend {i}", leg.get_window_extent(renderer)) for i, leg in enumerate(legends)]
    texts = [t for t in fig.findobj(Text) if id(t) not in skip] + drawn
    for t in texts:
        if not t.get_visible() or not t.get_text().strip():
            continue
        if t.axes is not None and not t.axes.get_visible():
            continue
        boxes.append((t.get_text(), t.get_window_extent(renderer)))
    clashes = []
    for (a, ba), (b, bb) in itertools.combinations(boxes, 2):
        ix = min(ba.x1, bb.x1) - max(ba.x0, bb.x0)
        iy = min(ba.y1, bb.y1) - max(ba.y0, bb.y0)
        if ix > 1.5 and iy > 1.5:
            clashes.append((a, b))
    return clashes


def assert_self_contained(text: str) -> None:
    """No external resource: no remote URL, stylesheet link, script or web font."""
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:|//)", text, re.I)
    assert "<link" not in text.lower()
    assert "<script" not in text.lower()
    assert "@import" not in text and "@font-face" not in text
    for src in re.findall(r"""<img[^>]*\ssrc="([^"]+)\"""", text):
        assert src.startswith("data:image/png;base64,")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``perpsim ARGS``, with time for a full run and its figures."""
    return run_perpsim(*args, timeout=300)


# ---------------------------------------------------------------------------------------------
# Run figures
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["crash", "calm"])
def test_every_run_figure_is_written(
    name: str, runs: dict[str, Path], plotted: dict[str, list[Path]]
) -> None:
    paths = plotted[name]
    assert [p.name for p in paths] == RUN_FILES
    for p in paths:
        assert p.parent == runs[name] / "plots"
        check_png(p)
    assert not list((runs[name] / "plots").glob(".*.tmp")), "atomic writes leave no temp file"


def test_crash_run_figures_show_liquidations_losses_and_settlement(runs: dict[str, Path]) -> None:
    run = load_run(runs["crash"])
    assert run.summary["liquidation_count"] > 0 and run.summary["social_loss_total"] > 0
    assert run.summary["settled"] is True
    kinds = {m.kind for m in event_markers(run)}
    assert {
        "price_shock",
        "begin_global_settlement",
        "global_settled",
        "EMERGENCY",
        "SETTLED",
    } <= kinds
    figs = dict((info.file, fig) for info, fig in run_figures(run))
    fund = " ".join(figure_texts(figs["insurance_fund.png"]))
    assert "liquidation the fund paid for" in fund
    assert "no social loss" not in " ".join(figure_texts(figs["social_loss.png"]))
    pool = " ".join(figure_texts(figs["pool.png"]))
    assert "pool's long position" in pool and "share price change" in pool
    liq = " ".join(figure_texts(figs["liquidations.png"]))
    assert "no liquidations in this run" not in liq
    assert "paid by the insurance fund" in liq and "socialised to the other side" in liq
    for fig in figs.values():
        events = " ".join(figure_texts(fig))
        if fig is not figs["trader_pnl.png"]:
            assert "global settlement begins" in events and "SETTLED: market closed" in events
    pnl = " ".join(figure_texts(figs["trader_pnl.png"]))
    assert "noise trader" in pnl and "p50" in pnl


def test_calm_run_says_so_instead_of_drawing_empty_panels(runs: dict[str, Path]) -> None:
    run = load_run(runs["calm"])
    assert run.summary["liquidation_count"] == 0
    figs = dict((info.file, fig) for info, fig in run_figures(run))
    assert "no liquidations in this run" in figure_texts(figs["liquidations.png"])
    assert "no social loss in this run" in figure_texts(figs["social_loss.png"])
    assert "no socialised loss and no bad debt in this run" in figure_texts(
        figs["insurance_fund.png"]
    )
    csv = dict((i.file, f) for i, f in run_figures(load_run(runs["csv"])))
    assert any("no trader accounts" in t for t in figure_texts(csv["trader_pnl.png"]))


@pytest.mark.parametrize("name", ["crash", "calm"])
@pytest.mark.slow
def test_run_figures_have_units_titles_and_no_overlapping_labels(
    name: str, runs: dict[str, Path]
) -> None:
    for info, fig in run_figures(load_run(runs[name])):
        texts = " ".join(figure_texts(fig))
        assert info.title.split()[0].lower() in texts.lower() or fig.get_suptitle()
        assert fig.get_suptitle().endswith("(seed 7)")
        assert re.search(r"USD|contracts|% per 8 h|accounts|traders|min\)", texts), info.file
        if info.file != "trader_pnl.png":
            assert "time (UTC)" in texts
        assert text_overlaps(fig) == [], info.file


@pytest.mark.slow
def test_dates_are_readable(runs: dict[str, Path]) -> None:
    (_info, fig), *_ = run_figures(load_run(runs["crash"]))
    FigureCanvasAgg(fig).draw()
    bottom = fig.axes[2]
    labels = [t.get_text() for t in bottom.get_xticklabels() if t.get_text()]
    assert labels and any(re.fullmatch(r"[A-Z][a-z]{2}-\d\d", lbl) for lbl in labels), labels
    assert all(
        re.fullmatch(r"[A-Z][a-z]{2}-\d\d|\d\d:\d\d|\d{4}|[A-Z][a-z]{2}", lbl) for lbl in labels
    ), labels


@pytest.mark.slow
def test_shipped_crash_scenario_with_agents(tmp_path: Path) -> None:
    """global_settlement.yaml with its agents (fewer noise traders, ends 3 h after the admin)."""
    out = plain_run(
        tmp_path / "gs", "global_settlement", ["agents.noise.count=60", "clock.duration=2d3h"]
    )
    run = load_run(out)
    assert run.summary["liquidation_count"] > 0 and run.summary["status"] == "SETTLED"
    assert {"begin_global_settlement", "global_settled", "SETTLED"} <= {
        m.kind for m in event_markers(run)
    }
    html_path, _ = write_report(out)
    assert [p.name for p in sorted((out / "plots").glob("*.png"))] == sorted(RUN_FILES)
    for p in (out / "plots").glob("*.png"):
        check_png(p)
    text = html_path.read_text()
    assert_self_contained(text)
    for needle in (
        "Largest liquidations",
        "Global settlement began",
        "Settlement completed",
        "noise_trader",
        "perpsim run global_settlement --seed 13",
    ):
        assert needle in text, needle


@pytest.mark.slow
def test_dampener_band_follows_governance_changes(tmp_path: Path) -> None:
    out = plain_run(
        tmp_path / "gov",
        "baseline",
        [
            "agents=[]",
            "clock.duration=4h",
            "events=[{at: 2h, kind: set_governance, key: funding_dampener, value: 0.002},"
            " {at: 1h, kind: oracle_outage, duration: 30m}]",
        ],
    )
    run = load_run(out)
    markers = event_markers(run)
    assert [m.kind for m in markers] == ["oracle_outage", "set_governance"]
    assert markers[0].end is not None and markers[0].label == "oracle outage, 30 min"
    band = governance_series(run, "funding_dampener")
    assert (
        band is not None and band[0] == pytest.approx(0.0005) and band[-1] == pytest.approx(0.002)
    )
    paths = plot_run(out)
    assert len(paths) == len(RUN_FILES)


def test_a_design_declares_its_figures_as_data(runs: dict[str, Path]) -> None:
    """Any FigureSpec is drawn by the generic renderer; columns the run lacks are left out."""
    run = load_run(runs["crash"])
    spec = FigureSpec(
        name="custom",
        title="A test design's figure",
        panels=(
            PanelSpec(
                "Fund and a column this run never recorded",
                "USD",
                (
                    SeriesSpec("insurance_fund", "the fund", kind="step", color="fund"),
                    SeriesSpec("test_design_default_fund", "a default fund"),
                ),
                reference="at the start",
                change_label="fund change",
            ),
            PanelSpec(
                "Nothing happened",
                "contracts",
                (SeriesSpec("test_design_hedge", "hedge"),),
                empty_text="no hedge in this run",
            ),
        ),
        caption="test",
    )
    fig = draw_figure(spec, run, event_markers(run))
    texts = figure_texts(fig)
    assert "the fund" in texts and "a default fund" not in texts
    assert "no hedge in this run" in texts
    assert any(t.startswith("fund change: ") for t in texts)
    assert fig.get_suptitle().startswith("A test design's figure — ")
    assert "SETTLED: market closed" in " ".join(texts)  # events on the shared time axis
    labelled = [
        [ln.get_label() for ln in ax.get_lines() if ln.get_label()[0] != "_"] for ax in fig.axes
    ]
    assert labelled == [["the fund", "at the start"], []]
    assert figure_info(spec).file == "custom.png"
    with pytest.raises(ConfigError, match="unknown venue kind 'no_such_design'"):
        venue_figures("no_such_design")


def test_common_figures_need_only_common_columns(runs: dict[str, Path], tmp_path: Path) -> None:
    """A run folder without any design-prefixed column still gets every common figure."""
    out = tmp_path / "common-only"
    out.mkdir()
    ts = pd.read_parquet(runs["crash"] / "timeseries.parquet")
    ts.drop(columns=[c for c in ts.columns if c.startswith("mcdex_v1_")]).to_parquet(
        out / "timeseries.parquet"
    )
    for name in ("events.parquet", "accounts.parquet", "summary.json", "manifest.json"):
        (out / name).write_bytes((runs["crash"] / name).read_bytes())
    run = load_run(out)
    figs = dict((info.file, fig) for info, fig in run_figures(run))
    assert [f.file for f in RUN_FIGURES] == list(figs)[: len(RUN_FIGURES)]
    pool = figs["pool.png"]  # MCDEX's pool figure keeps the common columns it shows
    assert "open interest (long = short)" in figure_texts(pool)
    assert "pool's long position" not in figure_texts(pool)


def test_scenario_venue_section_and_old_flat_keys() -> None:
    """Governance, pool and funds are read under venue: and, for old run folders, flat."""
    flat = {"governance": {"initial_margin_rate": 0.2}, "pool": {"initial_liquidity": 50}}
    nested = {"venue": {"kind": "mcdex_v1", **flat}}
    for sc in (flat, nested):
        assert venue_section(sc)["kind"] == "mcdex_v1"
        assert venue_section(sc)["pool"] == {"initial_liquidity": 50}
        assert governance_value(sc, "initial_margin_rate") == 0.2
        default = governance_defaults("mcdex_v1")["maintenance_margin_rate"]
        assert governance_value(sc, "maintenance_margin_rate") == default
        rows = {r[0]: r for r in governance_table(sc).rows}
        assert rows["initial_margin_rate"][1:3] == ["20 %", "scenario"]
        assert rows["maintenance_margin_rate"][2] == "engine default"
    varied = {"venue.governance.initial_margin_rate": [0.1, 0.2]}
    rows = {r[0]: r for r in governance_table(nested, varied).rows}
    assert rows["initial_margin_rate"][1:3] == ["varied: 10 %, 20 %", "the sweep"]
    with pytest.raises(KeyError):
        governance_value(nested, "no_such_rate")


def test_report_page_escapes_text() -> None:
    """The template autoescapes: a description cannot inject markup into the page."""
    report = Report(
        title="Risk report: <b>x</b>",
        subtitle="s",
        question=['<script>alert("x")</script> & more'],
        parameters=[],
        findings=[],
        headline=[],
        figures=[],
        events=[],
        event_notes=[],
        commands=[],
        manifest=[("seed", "1")],
        manifest_json="{}",
    )
    text = render_html(report)
    assert "<script" not in text and "&lt;script&gt;" in text and "&amp; more" in text
    assert "<title>Risk report: &lt;b&gt;x&lt;/b&gt;</title>" in text
    assert "<p>No figures.</p>" in text
    assert_self_contained(text)


def test_formatters() -> None:
    fmt = CompactFormatter()
    assert fmt.format_ticks([5000, 7500, 10000, 12500]) == ["5.0k", "7.5k", "10.0k", "12.5k"]
    assert fmt.format_ticks([0, 1_000_000, 2_000_000]) == ["0", "1M", "2M"]
    assert fmt.format_ticks([2200, 2400]) == ["2,200", "2,400"]
    assert fmt.format_ticks([-0.002, 0, 0.002]) == ["−0.002", "0", "0.002"]
    assert CompactFormatter(percent=True).format_ticks([0, 0.0025, 0.005]) == [
        "0%",
        "0.25%",
        "0.50%",
    ]
    assert fmt_number(47_897.3) == "47.9k" and fmt_number(True) == "yes"
    assert fmt_duration(5400) == "1 h 30 min" and fmt_duration(194_400) == "2 d 6 h"


# ---------------------------------------------------------------------------------------------
# Sweep figures
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_every_sweep_figure_is_written(tmp_path: Path) -> None:
    sweep = synthetic_sweep(tmp_path / "sweep")
    paths = plot_sweep(sweep)
    assert [p.name for p in paths] == SWEEP_FILES
    for p in paths:
        check_png(p, min_w=600)
    data = read_sweep_dir(sweep)
    assert data.params == list(PARAMS)
    for info, fig in sweep_figures(data):
        assert text_overlaps(fig) == [], info.file
    heat = dict((i.file, f) for i, f in sweep_figures(data, metric="p_insurance_fund_exhausted"))
    texts = " ".join(figure_texts(heat["sweep_heatmap.png"]))
    assert "P(insurance fund exhausted)" in texts and "%" in texts
    frontier = " ".join(figure_texts(heat["sweep_frontier.png"]))
    assert "max leverage" in frontier and "20×" in frontier and "frontier" in frontier


@pytest.mark.slow
def test_sweep_options_and_missing_pieces(tmp_path: Path) -> None:
    one = synthetic_sweep(tmp_path / "one", mms=None, keep_runs=False)
    names = [p.name for p in plot_sweep(one, metric="bad_debt")]
    assert names == ["sweep_metric.png", "sweep_losses.png", "sweep_frontier.png"]
    two = synthetic_sweep(tmp_path / "two", keep_runs=False)
    names = [p.name for p in plot_dir(two, metric="lar95", x=PARAMS[1], y=PARAMS[0])]
    assert "sweep_fan.png" not in names and "sweep_heatmap.png" in names
    with pytest.raises(ConfigError, match=r"unknown metric 'nope'.*insurance_fund_drawdown"):
        plot_sweep(two, metric="nope")
    with pytest.raises(ConfigError, match="not a varied parameter"):
        plot_sweep(two, x="venue.governance.lot_size")
    with pytest.raises(ConfigError, match="apply to sweep folders only"):
        plot_dir(tmp_path, metric="bad_debt")


@pytest.mark.slow
def test_real_sweep_plots_and_report(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(
        "name: tiny\n"
        "description: Does a larger insurance fund or a higher maintenance margin help?\n"
        "scenario: baseline\n"
        "set: {agents: [], clock.duration: 3h}\n"
        "parameters:\n"
        "  venue.governance.maintenance_margin_rate: [0.05, 0.075]\n"
        "  venue.insurance_fund: [10000, 20000]\n"
        "seeds: 2\n"
        "keep: timeseries\n"
    )
    proc = cli("sweep", str(spec), "--out", str(tmp_path / "out"), "--workers", "1", "--quiet")
    assert proc.returncode == 0, proc.stderr
    paths = plot_sweep(tmp_path / "out")
    assert [p.name for p in paths] == SWEEP_FILES
    for p in paths:
        check_png(p, min_w=600)
    html_path, md_path = write_report(tmp_path / "out")
    text = html_path.read_text()
    assert_self_contained(text)
    assert text.count("data:image/png;base64,") == len(SWEEP_FILES)
    assert "Does a larger insurance fund" in text and "varied: 5 %, 7.5 %" in text
    assert "perpsim run baseline --seed" in text
    assert "# Sweep risk report: tiny" in md_path.read_text()
    # a run kept by the sweep has only its time series, summary and manifest
    kept = load_run(tmp_path / "out" / "runs" / "00000-000")
    assert kept.events is None and kept.accounts is None
    figs = dict((i.file, f) for i, f in run_figures(kept))
    assert len(figs) == len(RUN_FILES)
    assert any("no accounts table" in t for t in figure_texts(figs["trader_pnl.png"]))


# ---------------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_run_report_holds_every_section_and_is_self_contained(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    html_path, md_path = write_report(runs["crash"], tmp_path / "forum" / "crash.html")
    assert md_path == tmp_path / "forum" / "crash.md"
    text = html_path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    for anchor, heading in SECTIONS:
        assert f'<section id="{anchor}">' in text and heading in text
    assert_self_contained(text)
    assert text.count("data:image/png;base64,") == len(RUN_FILES)
    for needle in (
        "A -35% crash with a small insurance fund",  # the question
        "maintenance_margin_rate",  # parameters
        "insurance fund minimum",
        "insurance fund max drawdown",
        "socialised loss",
        "bad debt",
        "VaR95",
        "LaR95",
        "P(insurance fund exhausted)",
        "Largest liquidations",  # notable events
        "global settlement begins",
        "Settlement completed",
        "perpsim run global_settlement --seed 7",  # reproduce
        "git checkout 0123abcd",
        "numpy",
        "Resolved scenario",
    ):
        assert needle in text, needle
    md = md_path.read_text(encoding="utf-8")
    for _, heading in SECTIONS:
        assert heading in md
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", md)
    assert len(links) == len(RUN_FILES)
    for link in links:  # relative to the Markdown file, pointing at the run's PNGs
        assert (md_path.parent / link).resolve() == (runs["crash"] / "plots" / Path(link).name)


@pytest.mark.slow
def test_sweep_report_holds_every_section(tmp_path: Path) -> None:
    sweep = synthetic_sweep(tmp_path / "sweep")
    html_path, _ = write_report(sweep)
    text = html_path.read_text()
    for anchor, _heading in SECTIONS:
        assert f'<section id="{anchor}">' in text
    assert_self_contained(text)
    assert text.count("data:image/png;base64,") == len(SWEEP_FILES)
    for needle in (
        "Which margin rates",
        "VaR95 drawdown",
        "CVaR95 bad debt",
        "LaR95",
        "P(fund exhausted)",
        "Failed runs (1)",
        "InvariantViolation",
        "Worst runs",
        'class="hl"',
    ):
        assert needle in text, needle


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_report_of_a_csv_run_and_cli_plot_of_a_sweep(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    proc = cli("report", str(runs["csv"]))  # CSV tables, no agents
    assert proc.returncode == 0, proc.stderr
    html_path, md_path = runs["csv"] / "report.html", runs["csv"] / "report.md"
    for name in RUN_FILES:
        check_png(runs["csv"] / "plots" / name)
    assert f"report: {html_path}" in proc.stdout and md_path.is_file()
    text = html_path.read_text()
    assert "No account was liquidated." in text and "No liquidations in this run." in text
    assert "never fell below" in text
    assert_self_contained(text)
    sweep = synthetic_sweep(tmp_path / "sweep", keep_runs=False)
    proc = cli("plot", str(sweep), "--metric", "var95_bad_debt", "--x", PARAMS[1])
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.split()) == len(SWEEP_FILES) - 1  # no fan chart without runs


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plot", "no/such/dir"], "no such folder"),
        (["report", "tests"], "neither a run folder"),
        (["plot", "pyproject.toml"], "not a folder"),
        (["report", "README.md"], "not a folder"),
        (["report", "tests/data", "--out", "x.pdf"], "name it *.html"),
    ],
)
def test_cli_bad_dir_exits_2_without_traceback(
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from perpsim.cli import main

    monkeypatch.chdir(ROOT)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.slow
def test_perpsim_run_draws_the_figures_unless_told_not_to(tmp_path: Path) -> None:
    common = ["baseline", "--set", "agents=[]", "--set", "clock.duration=2h", "--quiet"]
    proc = cli("run", *common, "--out", str(tmp_path / "a"))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "a" / "plots").glob("*.png")) == sorted(RUN_FILES)
    proc = cli("run", *common, "--out", str(tmp_path / "b"), "--no-plots")
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "b" / "plots").exists()


@pytest.fixture(autouse=True)
def _no_figure_leak() -> Iterator[None]:
    """Figures are plain Figure objects: nothing accumulates in pyplot."""
    yield
    assert (
        "matplotlib.pyplot" not in sys.modules
        or not __import__("matplotlib.pyplot").pyplot.get_fignums()
    )
