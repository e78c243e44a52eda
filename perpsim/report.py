"""A self-contained report of a run or a sweep (``perpsim report DIR``).

``report.html`` is one file a governance forum can take as it is: inline CSS, the figures
embedded as base64 PNGs, no scripts, fonts, links or images from elsewhere. Its sections:

1. **Question** — the scenario's (or sweep's) description: what the run asks.
2. **Parameters** — governance in force (scenario value or engine default), market, oracle,
   pool, insurance fund, agent populations; for a sweep, the varied keys and their values.
3. **Headline risk numbers** — a few sentences, then the insurance fund (minimum, drawdown),
   socialised loss, bad debt, VaR95 / CVaR95 / LaR95 and the probability that the insurance fund
   is exhausted (across seeds for a sweep), liquidations, funding, LP and trader outcomes.
4. **Figures** — every figure of ``perpsim plot`` with how to read it.
5. **Notable events** — the largest liquidations, emergency and settlement, scheduled events,
   governance changes, rejected actions; for a sweep, the worst and the failed runs.
6. **Reproduce** — the commands, versions, seed and commit of the manifest, and the resolved
   scenario.

``report.md`` (next to the HTML, same stem) holds the same text as Markdown for pasting; its
figures are links to the PNGs in ``plots/``.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import shlex
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import yaml

from perpsim import __version__
from perpsim.engine.governance import AMMGovernance, PerpetualGovernance
from perpsim.errors import ConfigError
from perpsim.io import atomic_write_text
from perpsim.plots import (
    RUN_FIGURES,
    SWEEP_FIGURES,
    FigureInfo,
    RunData,
    SweepData,
    event_markers,
    fmt_duration,
    fmt_number,
    fmt_time,
    fmt_usd,
    governance_value,
    is_run_dir,
    is_sweep_dir,
    load_run,
    load_sweep,
    metric_label,
    plot_run,
    plot_sweep,
)

__all__ = [
    "SECTIONS",
    "Report",
    "Table",
    "build_report",
    "render_html",
    "render_markdown",
    "write_report",
]

#: The sections of every report: (anchor, heading).
SECTIONS: Final = (
    ("question", "Question"),
    ("parameters", "Parameters"),
    ("headline", "Headline risk numbers"),
    ("figures", "Figures"),
    ("events", "Notable events"),
    ("reproduce", "Reproduce"),
)

#: What each governance key means (shown in the parameters table).
GOVERNANCE_MEANING: Final[dict[str, str]] = {
    "initial_margin_rate": "margin to open a position, share of its value",
    "maintenance_margin_rate": "below this margin an account can be liquidated",
    "liquidation_penalty_rate": "share of the liquidated value paid to the liquidator",
    "penalty_fund_rate": "share of the liquidated value paid to the insurance fund",
    "taker_dev_fee_rate": "dev fee on two-party trades, taker",
    "maker_dev_fee_rate": "dev fee on two-party trades, maker (negative = rebate)",
    "lot_size": "position sizes are multiples of this (contracts)",
    "trading_lot_size": "trade sizes are multiples of this (contracts)",
    "social_loss_side": "who pays a loss the fund cannot cover",
    "pool_fee_rate": "AMM fee on traded value, paid to LPs",
    "pool_dev_fee_rate": "AMM fee on traded value, paid to the dev account",
    "ema_alpha": "per-second weight of the premium EMA",
    "update_index_prize": "USD paid to the keeper of an index update",
    "mark_premium_limit": "mark price stays within index × (1 ± this)",
    "funding_dampener": "premiums within ± this pay no funding",
}
_PERCENT_KEYS: Final = frozenset(
    {
        "initial_margin_rate",
        "maintenance_margin_rate",
        "liquidation_penalty_rate",
        "penalty_fund_rate",
        "taker_dev_fee_rate",
        "maker_dev_fee_rate",
        "pool_fee_rate",
        "pool_dev_fee_rate",
        "mark_premium_limit",
        "funding_dampener",
    }
)


# ---------------------------------------------------------------------------------------------
# The report as data (rendered to HTML and to Markdown)
# ---------------------------------------------------------------------------------------------


@dataclass
class Table:
    """A table of text cells.

    Attributes:
        title: Heading above the table.
        header: Column names.
        rows: Cells, already formatted.
        note: A sentence under the table.
        numeric: Indexes of right-aligned columns.
        emphasise: Indexes of rows to highlight (e.g. the worst point).
    """

    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""
    numeric: set[int] = field(default_factory=set)
    emphasise: set[int] = field(default_factory=set)


@dataclass
class Report:
    """The content of a report, independent of its format.

    Attributes:
        title: Main heading.
        subtitle: One line under it (folder, seed, dates).
        question: Paragraphs of the question.
        parameters: Parameter tables.
        findings: Headline sentences.
        headline: Headline tables.
        figures: (info, PNG path) of every figure.
        events: Notable-event tables.
        event_notes: Sentences of the notable-events section.
        commands: (what, command) pairs to reproduce.
        manifest: Versions, seed, commit and other provenance as (name, value) pairs.
        manifest_json: The manifest as JSON text (without the resolved scenario).
        resolved: The resolved scenario (or sweep file) as YAML text, if known.
        warnings: Caveats shown at the top (failed runs, dirty checkout, ...).
    """

    title: str
    subtitle: str
    question: list[str]
    parameters: list[Table]
    findings: list[str]
    headline: list[Table]
    figures: list[tuple[FigureInfo, Path]]
    events: list[Table]
    event_notes: list[str]
    commands: list[tuple[str, str]]
    manifest: list[tuple[str, str]]
    manifest_json: str
    resolved: str | None = None
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------


def _pct(x: Any, digits: int = 2) -> str:
    if not isinstance(x, int | float) or isinstance(x, bool) or math.isnan(x):
        return "—"
    return f"{x:+.{digits}%}".replace("-", "−") if x < 0 else f"{x:.{digits}%}"


def _rate(key: str, value: Any) -> str:
    if key in _PERCENT_KEYS and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{float(value) * 100:.4g} %"
    if key == "update_index_prize" and isinstance(value, int | float):
        return fmt_usd(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _num(x: Any) -> float:
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, int | float | np.integer | np.floating):
        return float(x)
    return math.nan


_DURATION_WORDS: Final = (
    "time",
    "interval",
    "latency",
    "lookback",
    "horizon",
    "window",
    "after",
    "schedule",
)


def _dist(value: Any, key: str = "") -> str:
    """A parameter value or distribution in words: ``lognormal(median 2, σ 0.8, ≤ 50)``.

    Parameters whose name says they are durations (``holding_time``, ``latency``, ...) are
    written as durations (``4 h``) rather than seconds.
    """
    is_duration = any(w in key for w in _DURATION_WORDS)

    def show(v: Any) -> str:
        if is_duration and isinstance(v, int | float) and not isinstance(v, bool):
            return fmt_duration(v)
        if is_duration and isinstance(v, list):
            return "[" + ", ".join(show(x) for x in v) + "]"
        return _short(v)

    if isinstance(value, dict) and "dist" in value:
        d = value["dist"]
        if d == "uniform" and value.get("low") is not None:
            return f"uniform {show(value['low'])}–{show(value.get('high'))}"
        parts = []
        for k, label in (
            ("value", ""),
            ("median", "median "),
            ("mean", "mean "),
            ("sigma", "σ "),
            ("low", "≥ "),
            ("high", "≤ "),
            ("choices", ""),
        ):
            v = value.get(k)
            if v is not None:
                parts.append(f"{label}{_short(v) if k == 'sigma' else show(v)}")
        return f"{d}({', '.join(parts)})"
    return show(value)


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_short(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_short(x)}" for k, x in v.items()) + "}"
    return str(v)


def _paragraphs(text: str) -> list[str]:
    out: list[str] = []
    for block in text.strip().split("\n\n"):
        para = " ".join(line.strip() for line in block.splitlines() if line.strip())
        if para:
            out.append(para)
    return out


# ---------------------------------------------------------------------------------------------
# Run report
# ---------------------------------------------------------------------------------------------


def _varied_text(key: str, values: Sequence[Any]) -> str:
    return "varied: " + ", ".join(_rate(key, v) for v in values)


def _governance_table(
    scenario: dict[str, Any], varied: dict[str, list[Any]] | None = None
) -> Table:
    rows = []
    set_keys = scenario.get("governance") or {}
    varied = varied or {}
    for cls in (PerpetualGovernance, AMMGovernance):
        for key in cls.__dataclass_fields__:
            meaning = GOVERNANCE_MEANING.get(key, "")
            if f"governance.{key}" in varied:
                values = varied[f"governance.{key}"]
                rows.append([key, _varied_text(key, values), "the sweep", meaning])
                continue
            value = governance_value(scenario, key)
            source = "scenario" if key in set_keys else "engine default"
            rows.append([key, _rate(key, value), source, meaning])
    return Table(
        "Governance in force at the start",
        ["key", "value", "set by", "meaning"],
        rows,
        note="Changes during the run are listed under Notable events.",
        numeric={1},
    )


def _market_table(run: RunData, varied: dict[str, list[Any]] | None = None) -> Table:
    sc = run.scenario
    varied = varied or {}
    clock = sc.get("clock") or {}
    rows: list[list[str]] = []
    start, tick = clock.get("start"), clock.get("tick")
    if isinstance(start, int | float) and isinstance(tick, int | float):
        n = clock.get("ticks") or (clock.get("duration") or 0) // max(int(tick), 1)
        rows.append(["period", f"{fmt_time(start)} to {fmt_time(start + n * tick)}"])
        rows.append(["tick", f"{fmt_duration(tick)} ({n:,} ticks)"])
    pp = dict(sc.get("price_path") or {})
    if pp:
        kind = pp.pop("kind", "?")
        shocks = pp.pop("shocks", None)
        detail = ", ".join(
            f"{k} {_short(v)}" for k, v in pp.items() if v is not None and k not in ("filter",)
        )
        if isinstance(pp.get("filter"), dict):
            detail += ", filter " + _short(pp["filter"])
        rows.append(["market price path", f"{kind}: {detail}" if detail else str(kind)])
        if shocks:
            rows.append(["price-path shocks", _short(shocks)])
    oracle = sc.get("oracle") or {}
    if oracle:
        hb, dev, lat = (
            oracle.get("heartbeat"),
            oracle.get("deviation_threshold"),
            oracle.get("latency"),
        )
        parts = []
        if isinstance(hb, int | float):
            parts.append(f"heartbeat {fmt_duration(hb)}")
        if isinstance(dev, int | float):
            parts.append(f"deviation threshold {dev:.3%}")
        if isinstance(lat, int | float):
            parts.append(f"latency {fmt_duration(lat)}")
        rows.append(["oracle", ", ".join(parts)])
    pool = sc.get("pool") or {}
    if pool:
        liq = pool.get("initial_liquidity")
        cash = pool.get("creator_cash")
        rows.append(
            [
                "AMM pool at the start",
                f"{fmt_number(liq)} contracts"
                + (f"; creator cash {fmt_usd(cash)}" if cash is not None else ""),
            ]
        )
    for key, label in (
        ("insurance_fund", "insurance fund at the start"),
        ("dev_balance", "dev account (pays index-update prizes)"),
    ):
        if key in varied:
            rows.append([label, "varied: " + ", ".join(fmt_usd(v) for v in varied[key])])
        elif key in sc:
            rows.append([label, fmt_usd(sc.get(key))])
    other = [k for k in varied if not k.startswith("governance.") and k not in sc]
    other += [k for k in varied if "." in k and not k.startswith("governance.")]
    for key in dict.fromkeys(other):
        rows.append([key, "varied: " + ", ".join(_short(v) for v in varied[key])])
    out = sc.get("output") or {}
    if out.get("record_every"):
        rows.append(["time series recorded every", f"{out['record_every']} ticks"])
    return Table("Market, oracle, pool and funds", ["item", "value"], rows)


def _agents_table(run: RunData) -> Table:
    rows = []
    for pop in run.scenario.get("agents") or []:
        params = pop.get("params") or {}
        text = "; ".join(f"{k} {_dist(v, k)}" for k, v in params.items() if v is not None)
        rows.append([str(pop.get("name")), str(pop.get("type")), str(pop.get("count")), text])
    note = "" if rows else "This scenario has no agents."
    return Table(
        "Agent populations",
        ["population", "type", "count", "parameters"],
        rows,
        note=note,
        numeric={2},
    )


def _lp_change(run: RunData) -> tuple[float, str]:
    """LP share price change, end vs start; after settlement, up to the last redemption.

    Once every share has been redeemed (after settlement) the recorded share price is 0, which
    is not a loss: the change is then taken to the last price while shares existed (as the
    summary's ``lp_return`` does).
    """
    lp = _num(run.summary.get("lp_return"))
    ts = run.timeseries
    if "lp_share_supply" not in ts or "lp_share_price" not in ts:
        return lp, ""
    supply = run.column("lp_share_supply")
    price = run.column("lp_share_price")
    alive = np.flatnonzero((supply > 0) & np.isfinite(price))
    if alive.size and supply[-1] <= 0 and price[alive[0]] > 0:
        change = float(price[alive[-1]] / price[alive[0]] - 1.0)
        return change, f" (to {fmt_time(run.times[alive[-1]])}, when the last shares were redeemed)"
    return lp, ""


def _run_findings(run: RunData) -> list[str]:
    s = run.summary
    out: list[str] = []
    fund = run.column("insurance_fund")
    t = run.times
    f0 = _num(s.get("insurance_fund_initial", fund[0]))
    fmin = _num(s.get("insurance_fund_min", np.nanmin(fund)))
    i_min = int(np.nanargmin(fund))
    if fmin < f0:
        drop = (f0 - fmin) / f0 if f0 > 0 else math.nan
        when = fmt_time(t[i_min])
        exhausted = bool(s.get("insurance_fund_exhausted"))
        out.append(
            f"The insurance fund started at {fmt_usd(f0)} and fell to {fmt_usd(fmin)}"
            f" ({_pct(-drop, 1)}) at {when}"
            + ("; it was exhausted." if exhausted else "; it was not exhausted.")
        )
    else:
        out.append(
            f"The insurance fund never fell below its starting {fmt_usd(f0)}"
            f" (final {fmt_usd(s.get('insurance_fund_final'))})."
        )
    social, bad = _num(s.get("social_loss_total")), _num(s.get("bad_debt"))
    if social > 0 or bad > 0:
        out.append(
            f"{fmt_usd(social)} of liquidation losses were socialised (charged to the positions"
            f" of the other side) and {fmt_usd(bad)} was left as bad debt."
        )
    else:
        out.append("No loss was socialised and there is no bad debt.")
    n = int(_num(s.get("liquidation_count")) or 0)
    if n and _num(s.get("liquidation_loss_total")) > 0:
        out.append(
            f"{n:,} liquidations of {fmt_usd(s.get('liquidated_value'))} of positions; their"
            f" losses were {fmt_usd(s.get('liquidation_loss_total'))}, of which the insurance"
            f" fund paid {fmt_usd(s.get('insurance_fund_paid_total'))}."
        )
    elif n:
        out.append(
            f"{n:,} liquidations of {fmt_usd(s.get('liquidated_value'))} of positions; every"
            " liquidated account's margin covered its loss."
        )
    else:
        out.append("No account was liquidated.")
    ev = run.events
    if ev is not None and not ev.empty:
        for _, r in ev[ev["kind"] == "begin_global_settlement"].iterrows():
            out.append(
                f"Global settlement began at {fmt_time(r['time'])} at a settlement price of"
                f" {fmt_number(r['price'])} USD: trading stopped (EMERGENCY)."
            )
        for _, r in ev[ev["kind"] == "global_settled"].iterrows():
            out.append(f"Settlement completed at {fmt_time(r['time'])}; the market is SETTLED.")
    status = s.get("status")
    if status and status != "NORMAL" and not any("settlement" in f for f in out):
        out.append(f"The run ended in status {status}.")
    lp, lp_note = _lp_change(run)
    if not math.isnan(lp):
        out.append(f"LP share value changed by {_pct(lp)} over the run{lp_note}.")
    p5, p50 = _num(s.get("trader_pnl_p5")), _num(s.get("trader_pnl_p50"))
    if not math.isnan(p50):
        out.append(
            f"Traders: median PnL {fmt_usd(p50)}; the worst 5% lost {fmt_usd(-p5)} or more."
            if p5 < 0
            else f"Traders: median PnL {fmt_usd(p50)}."
        )
    inv = s.get("invariants")
    if inv not in (None, "ok"):
        out.append(f"Accounting check failed: {inv}.")
    elif inv == "ok":
        out.append("The accounting invariants held at every tick.")
    return out


def _run_headline(run: RunData) -> list[Table]:
    s = run.summary
    f0 = _num(s.get("insurance_fund_initial"))
    dd = _num(s.get("insurance_fund_drawdown"))
    dd_pct = f" ({dd / f0:.1%} of the start)" if f0 > 0 and not math.isnan(dd) else ""
    slpc_l = run.column("mcdex_v1_social_loss_per_contract_long")[-1]
    slpc_s = run.column("mcdex_v1_social_loss_per_contract_short")[-1]
    needs = "— (one seed; run a sweep over seeds)"
    risk = [
        ["insurance fund at the start", fmt_usd(s.get("insurance_fund_initial")), ""],
        ["insurance fund minimum", fmt_usd(s.get("insurance_fund_min")), "lowest recorded"],
        ["insurance fund at the end", fmt_usd(s.get("insurance_fund_final")), ""],
        ["insurance fund max drawdown", fmt_usd(dd) + dd_pct, "largest fall from a peak"],
        [
            "insurance fund exhausted",
            fmt_number(s.get("insurance_fund_exhausted")),
            "a loss was socialised or written off",
        ],
        ["socialised loss", fmt_usd(s.get("social_loss_total")), "charged to the other side"],
        [
            "social loss per contract (long / short)",
            f"{fmt_number(slpc_l)} / {fmt_number(slpc_s)} USD",
            "at the end",
        ],
        ["bad debt", fmt_usd(s.get("bad_debt")), "loss nobody could absorb"],
        ["VaR95 / CVaR95 of bad debt and drawdown", needs, "tail across seeds"],
        ["LaR95 (liquidated value)", needs, "95th percentile across seeds"],
        ["P(insurance fund exhausted)", needs, "share of seeds"],
    ]
    activity = [
        ["liquidations", fmt_number(s.get("liquidation_count")), ""],
        ["liquidated value", fmt_usd(s.get("liquidated_value")), "contracts × price"],
        ["liquidation losses", fmt_usd(s.get("liquidation_loss_total")), "beyond the margin"],
        ["… paid by the insurance fund", fmt_usd(s.get("insurance_fund_paid_total")), ""],
        ["most accounts unsafe at once", fmt_number(s.get("max_unsafe_accounts")), ""],
        [
            "time with unsafe accounts",
            fmt_duration(_num(s.get("time_with_unsafe_accounts_s")) or 0),
            "",
        ],
        ["funding paid by longs", fmt_usd(s.get("funding_paid_by_longs")), ""],
        ["funding paid by shorts", fmt_usd(s.get("funding_paid_by_shorts")), ""],
        [
            "LP return",
            _pct(_lp_change(run)[0]),
            "share price, end vs start"
            + (" (before the last redemption)" if _lp_change(run)[1] else ""),
        ],
        [
            "trader PnL p5 / p50 / p95",
            " / ".join(
                fmt_number(s.get(k)) for k in ("trader_pnl_p5", "trader_pnl_p50", "trader_pnl_p95")
            )
            + " USD",
            "",
        ],
        [
            "trades / volume",
            f"{fmt_number(s.get('trades'))} / {fmt_number(s.get('volume'))} contracts",
            "",
        ],
        [
            "market price min / max",
            f"{fmt_number(s.get('min_market_price'))} / {fmt_number(s.get('max_market_price'))}"
            " USD",
            "",
        ],
        ["status at the end", str(s.get("status", "—")), ""],
        ["time in EMERGENCY", fmt_duration(_num(s.get("time_in_emergency_s")) or 0), ""],
    ]
    return [
        Table("Risk", ["metric", "value", "meaning"], risk, numeric={1}),
        Table("Activity and outcomes", ["metric", "value", "note"], activity, numeric={1}),
    ]


def _run_events(run: RunData) -> tuple[list[Table], list[str]]:
    tables: list[Table] = []
    notes: list[str] = []
    liq = run.liquidations()
    if not liq.empty:
        df = liq.copy()
        df["value"] = df["amount"].astype(float) * df["price"].astype(float)
        for c in ("loss", "insurance_fund_paid", "social_loss", "bad_debt"):
            if c not in df:
                df[c] = 0.0
        df = df.sort_values(["loss", "value"], ascending=False, kind="stable").head(10)
        rows = [
            [
                fmt_time(r["time"]),
                str(r["account"]),
                str(r["side"]),
                fmt_number(r["amount"]),
                fmt_number(r["price"]),
                fmt_usd(r["value"]),
                fmt_usd(r["loss"]),
                fmt_usd(r["insurance_fund_paid"]),
                fmt_usd(r["social_loss"]),
                fmt_usd(r["bad_debt"]),
            ]
            for _, r in df.iterrows()
        ]
        tables.append(
            Table(
                f"Largest liquidations (top {len(rows)} of {len(liq):,} by loss, then value)",
                [
                    "time",
                    "account",
                    "side",
                    "contracts",
                    "price (USD)",
                    "value",
                    "loss",
                    "fund paid",
                    "socialised",
                    "bad debt",
                ],
                rows,
                numeric=set(range(3, 10)),
            )
        )
    elif run.events is None:
        notes.append(
            "This run folder has no event log (the run kept only its time series): the"
            f" summary counts {fmt_number(run.summary.get('liquidation_count'))} liquidations;"
            " re-run with all outputs for the details."
        )
    else:
        notes.append("No liquidations in this run.")
    markers = [m for m in event_markers(run)]
    timeline = [
        [
            fmt_time(m.start),
            fmt_time(m.end) if m.end is not None else "",
            m.label,
        ]
        for m in markers
    ]
    if timeline:
        tables.append(
            Table(
                "Scenario events, emergency and settlement",
                ["from", "until", "event"],
                timeline,
                note="Shocks, outages and manipulations as scheduled by the scenario; governance"
                " changes and settlement as they happened (event log); status periods from the"
                " time series.",
            )
        )
    else:
        notes.append("No scheduled events; the market stayed NORMAL.")
    rej = run.summary.get("rejections")
    if isinstance(rej, dict) and rej:
        top = sorted(rej.items(), key=lambda kv: -int(kv[1]))[:12]
        tables.append(
            Table(
                "Rejected actions (agent action: engine error)",
                ["action: error", "count"],
                [[k, f"{int(v):,}"] for k, v in top],
                note="Agents' operations the engine refused (e.g. a trade that would leave the"
                " account under initial margin).",
                numeric={1},
            )
        )
    err = run.manifest.get("error")
    if err:
        notes.append(f"The run stopped early: {err}")
    return tables, notes


def _manifest_rows(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key in ("scenario", "name", "seed", "root_seed", "started_at", "created_at"):
        if manifest.get(key) is not None:
            rows.append((key, str(manifest[key])))
    if manifest.get("git_commit") is not None or "git_commit" in manifest:
        rows.append(("git commit", str(manifest.get("git_commit") or "unknown (not a checkout)")))
    versions = manifest.get("versions")
    if isinstance(versions, dict):
        rows.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    elif manifest.get("perpsim"):
        rows.append(("perpsim", str(manifest["perpsim"])))
    for key in ("ticks_run", "wall_time_s"):
        v = manifest.get(key)
        if isinstance(v, int | float):
            rows.append((key.replace("_", " "), f"{v:,.1f}" if isinstance(v, float) else f"{v:,}"))
    return rows


def _commit_warning(manifest: dict[str, Any]) -> list[str]:
    commit = manifest.get("git_commit")
    if isinstance(commit, str) and commit.endswith("-dirty"):
        return [
            "The run was made from a checkout with uncommitted changes"
            f" ({commit}); the commit alone may not reproduce it."
        ]
    return []


def _run_report(run: RunData, figures: list[Path]) -> Report:
    sc = run.scenario
    desc = str(sc.get("description") or "")
    question = _paragraphs(desc) or ["The scenario gives no description."]
    t = run.times
    seed = run.seed
    manifest = {k: v for k, v in run.manifest.items() if k != "resolved_scenario"}
    resolved = yaml.safe_dump(sc, sort_keys=False, allow_unicode=True) if sc else None
    out_hint = "OUT"
    commands = [
        ("Recorded command", str(run.manifest.get("command") or "—")),
        (
            "Re-run the scenario with the same seed (add the same --set overrides as the"
            " recorded command)",
            f"perpsim run {run.name} --seed {seed} --out {out_hint}",
        ),
        (
            "Exact re-run: save the resolved scenario below as scenario.yaml, then",
            f"perpsim run scenario.yaml --seed {seed} --out {out_hint} && perpsim report"
            f" {out_hint}",
        ),
    ]
    commit = run.manifest.get("git_commit")
    if isinstance(commit, str) and commit:
        commands.insert(0, ("Check out the code", f"git checkout {commit.removesuffix('-dirty')}"))
    infos = {f.file: f for f in RUN_FIGURES}
    figs = [(infos[p.name], p) for p in figures if p.name in infos]
    events, notes = _run_events(run)
    warnings = _commit_warning(run.manifest)
    if run.manifest.get("error"):
        warnings.append(f"The run stopped early: {run.manifest['error']}")
    return Report(
        title=f"Risk report: {run.name}",
        subtitle=f"seed {seed} · {fmt_time(t[0])} – {fmt_time(t[-1])} · run folder {run.path}",
        question=question,
        parameters=[_governance_table(sc), _market_table(run), _agents_table(run)],
        findings=_run_findings(run),
        headline=_run_headline(run),
        figures=figs,
        events=events,
        event_notes=notes,
        commands=commands,
        manifest=_manifest_rows(run.manifest),
        manifest_json=json.dumps(manifest, indent=2, default=str),
        resolved=resolved,
        warnings=warnings,
    )


# ---------------------------------------------------------------------------------------------
# Sweep report
# ---------------------------------------------------------------------------------------------


def _first_run_manifest(sweep: SweepData) -> dict[str, Any]:
    runs = sweep.path / "runs"
    if runs.is_dir():
        for d in sorted(runs.iterdir()):
            f = d / "manifest.json"
            if f.is_file():
                try:
                    doc = json.loads(f.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                if isinstance(doc, dict):
                    return doc
    return {}


def _base_scenario(sweep: SweepData) -> dict[str, Any]:
    """The base scenario: the sweep's scenario with its fixed overrides (``set:``).

    If that cannot be loaded here (the file moved), a kept run's resolved scenario is used;
    the varied keys are then shown as varied anyway.
    """
    m = sweep.manifest
    ref = m.get("scenario")
    spec = m.get("spec")
    fixed = spec.get("set") if isinstance(spec, dict) else None
    if isinstance(ref, str) and ref:
        try:
            from perpsim.scenario import load_scenario
            from perpsim.sweep import override_text

            items = [f"{k}={override_text(v)}" for k, v in (fixed or {}).items()]
            return dict(json.loads(load_scenario(ref, items).model_dump_json()))
        except Exception:  # the report does without it
            pass
    sc = _first_run_manifest(sweep).get("resolved_scenario")
    return sc if isinstance(sc, dict) else {}


def _sorted_unique(values: Any) -> list[Any]:
    uniq = list(dict.fromkeys(v.item() if isinstance(v, np.generic) else v for v in values))
    try:
        return sorted(uniq)
    except TypeError:
        return uniq


def _int_text(v: Any) -> str:
    """An id or seed as an exact integer (never through a float)."""
    if isinstance(v, int | np.integer) and not isinstance(v, bool):
        return str(int(v))
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _sweep_value(v: Any) -> str:
    return f"{float(v):g}" if isinstance(v, float | np.floating) else str(v)


def _col(agg: pd.DataFrame, name: str) -> list[float]:
    if name not in agg.columns:
        return [math.nan] * len(agg)
    return [_num(v) if v is not None and v is not pd.NA else math.nan for v in agg[name]]


def _sweep_headline(sweep: SweepData) -> tuple[list[str], list[Table]]:
    agg = sweep.aggregate.reset_index(drop=True)
    ok = sweep.ok
    findings: list[str] = []
    n_runs, n_ok = len(sweep.results), len(ok)
    findings.append(
        f"{agg['point_id'].nunique()} parameter points × seeds = {n_runs} runs;"
        f" {n_ok} finished" + (f", {n_runs - n_ok} failed." if n_ok < n_runs else ".")
    )
    cols: list[tuple[str, str, Callable[[Any], str]]] = [
        ("insurance_fund_min_mean", "fund min (mean)", fmt_number),
        ("insurance_fund_drawdown_mean", "drawdown (mean)", fmt_number),
        ("var95_insurance_fund_drawdown", "VaR95 drawdown", fmt_number),
        ("cvar95_insurance_fund_drawdown", "CVaR95 drawdown", fmt_number),
        ("social_loss_total_mean", "social loss (mean)", fmt_number),
        ("var95_bad_debt", "VaR95 bad debt", fmt_number),
        ("cvar95_bad_debt", "CVaR95 bad debt", fmt_number),
        ("lar95", "LaR95", fmt_number),
        ("p_insurance_fund_exhausted", "P(fund exhausted)", lambda v: _pct(_num(v), 0)),
    ]
    key = "var95_insurance_fund_drawdown"
    worst: int | None = None
    vals = _col(agg, key)
    if any(not math.isnan(v) for v in vals) and np.nanmax(vals) <= 0:
        findings.append("The insurance fund never fell below its starting level at any point.")
    elif any(not math.isnan(v) for v in vals):
        worst = int(np.nanargmax(vals))
        best = int(np.nanargmin(vals))
        findings.append(
            f"Highest tail risk: {sweep.point_label(agg.loc[worst, 'point_id'])} — VaR95 of the"
            f" insurance-fund drawdown {fmt_usd(vals[worst])}, P(fund exhausted)"
            f" {_pct(_col(agg, 'p_insurance_fund_exhausted')[worst], 0)}."
        )
        findings.append(
            f"Lowest tail risk: {sweep.point_label(agg.loc[best, 'point_id'])} — VaR95"
            f" {fmt_usd(vals[best])}."
        )
    pex = [v for v in _col(agg, "p_insurance_fund_exhausted") if not math.isnan(v)]
    if pex and max(pex) == 0:
        findings.append("The insurance fund was never exhausted.")
    elif pex:
        findings.append(
            f"The insurance fund was exhausted in {_pct(min(pex), 0)} to {_pct(max(pex), 0)} of"
            " the seeds, depending on the point."
        )
    for m, what in (("bad_debt", "bad debt"), ("social_loss_total", "socialised loss")):
        if m in ok.columns:
            v = np.asarray(ok[m].astype("Float64").to_numpy(dtype=float, na_value=np.nan))
            v = v[np.isfinite(v)]
            if v.size and np.max(v) > 0:
                share = float(np.mean(v > 0))
                findings.append(
                    f"{what.capitalize()} occurred in {share:.0%} of the runs (largest"
                    f" {fmt_usd(np.max(v))})."
                )
            elif v.size:
                findings.append(f"No run had any {what}.")
    header = ["point", *[sweep.short(k) for k in sweep.params], "runs ok", *[c[1] for c in cols]]
    rows = []
    for _, r in agg.iterrows():
        n_ok_pt = r.get("n_ok", _num(r.get("n_runs")) - _num(r.get("n_failed")))
        row = [
            _int_text(r["point_id"]),
            *[_sweep_value(r[k]) for k in sweep.params],
            f"{int(_num(n_ok_pt))}/{int(_num(r.get('n_runs')))}",
        ]
        for c, _label, fmt in cols:
            row.append(fmt(r[c]) if c in agg.columns else "—")
        rows.append(row)
    n_p = len(sweep.params)
    table = Table(
        "Risk per parameter point (USD unless stated; statistics across seeds)",
        header,
        rows,
        note="VaR95 = 95th percentile across seeds; CVaR95 = mean of the runs at or beyond it;"
        " LaR95 = 95th percentile of the liquidated value. The highlighted row has the highest"
        " VaR95 of the insurance-fund drawdown.",
        numeric=set(range(n_p + 1, len(header))) | {0},
        emphasise={worst} if worst is not None else set(),
    )
    pooled = []
    for m in (
        "insurance_fund_min",
        "insurance_fund_drawdown",
        "social_loss_total",
        "bad_debt",
        "liquidated_value",
        "liquidation_count",
    ):
        if m in ok.columns:
            v = np.asarray(ok[m].astype("Float64").to_numpy(dtype=float, na_value=np.nan))
            v = v[np.isfinite(v)]
            if v.size:
                pooled.append(
                    [
                        metric_label(m),
                        fmt_number(np.mean(v)),
                        fmt_number(np.percentile(v, 5)),
                        fmt_number(np.median(v)),
                        fmt_number(np.percentile(v, 95)),
                        fmt_number(np.max(v)),
                    ]
                )
    tables = [table]
    if pooled:
        tables.append(
            Table(
                "All finished runs pooled",
                ["metric", "mean", "p5", "median", "p95", "max"],
                pooled,
                numeric={1, 2, 3, 4, 5},
            )
        )
    return findings, tables


def _run_command(sweep: SweepData, r: pd.Series) -> str:
    scenario = sweep.manifest.get("scenario_name") or sweep.manifest.get("scenario") or "SCENARIO"
    spec = sweep.manifest.get("spec")
    fixed = spec.get("set") if isinstance(spec, dict) else None
    sets = [f"{k}={_short(v)}" for k, v in (fixed or {}).items()]
    sets += [f"{k}={_sweep_value(r[k])}" for k in sweep.params]
    return f"perpsim run {shlex.quote(str(scenario))} --seed {_int_text(r['seed'])}" + "".join(
        f" --set {shlex.quote(s)}" for s in sets
    )


def _sweep_events(sweep: SweepData) -> tuple[list[Table], list[str], str | None]:
    tables: list[Table] = []
    notes: list[str] = []
    worst_cmd: str | None = None
    ok = sweep.ok.copy()
    if not ok.empty and "insurance_fund_drawdown" in ok:

        def fl(name: str) -> pd.Series:
            if name not in ok:
                return pd.Series(0.0, index=ok.index)
            return ok[name].astype("Float64").fillna(0.0).astype(float)

        ok["_loss"] = fl("insurance_fund_drawdown") + fl("social_loss_total") + fl("bad_debt")
        ok["_liq"] = fl("liquidated_value")
        worst = ok.sort_values(["_loss", "_liq"], ascending=False, kind="stable").head(10)
        rows = [
            [
                sweep.point_label(r["point_id"]),
                _int_text(r["seed"]) if "seed" in r else "—",
                fmt_usd(r.get("insurance_fund_drawdown")),
                fmt_usd(r.get("social_loss_total")),
                fmt_usd(r.get("bad_debt")),
                fmt_number(r.get("liquidation_count")),
                str(r.get("perp_status") or ("SETTLED" if r.get("settled") is True else "")),
            ]
            for _, r in worst.iterrows()
        ]
        tables.append(
            Table(
                "Worst runs (fund drawdown + socialised loss + bad debt, then liquidated value)",
                ["point", "seed", "drawdown", "socialised", "bad debt", "liquidations", "status"],
                rows,
                numeric={1, 2, 3, 4, 5},
            )
        )
        if "seed" in worst:
            worst_cmd = _run_command(sweep, worst.iloc[0])
        if "time_in_emergency_s" in ok:
            em = ok["time_in_emergency_s"].astype("Float64").fillna(0.0).astype(float) > 0
            settled = (
                ok["settled"].astype("boolean").fillna(False).astype(bool)
                if "settled" in ok
                else em & False
            )
            if em.any() or settled.any():
                notes.append(
                    f"{int(em.sum())} runs went into EMERGENCY and {int(settled.sum())} were"
                    " settled."
                )
            else:
                notes.append("No run went into EMERGENCY or settlement.")
    res = sweep.results
    if "status" in res:
        failed = res[res["status"].astype(str) != "ok"]
        if len(failed):
            rows = [
                [
                    sweep.point_label(r["point_id"]),
                    str(r.get("seed_index", "")),
                    textwrap.shorten(str(r.get("error") or ""), 160),
                ]
                for _, r in failed.head(20).iterrows()
            ]
            tables.append(
                Table(f"Failed runs ({len(failed)})", ["point", "seed index", "error"], rows)
            )
        else:
            notes.append("Every run finished.")
    return tables, notes, worst_cmd


def _sweep_report(sweep: SweepData, figures: list[Path]) -> Report:
    m = sweep.manifest
    spec = m.get("spec") if isinstance(m.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    base = _base_scenario(sweep)
    question = _paragraphs(str(spec.get("description") or m.get("description") or ""))
    if base.get("description"):
        question.append("Base scenario: " + " ".join(_paragraphs(str(base["description"]))))
    varied = "; ".join(
        f"{k} over {', '.join(_sweep_value(v) for v in _sorted_unique(sweep.aggregate[k]))}"
        for k in sweep.params
    )
    seeds = m.get("seeds") or int(sweep.results.groupby("point_id").size().max())
    question.append(f"The sweep varies {varied or 'nothing'}, with {seeds} seed(s) per point.")
    params_rows = [
        [
            k,
            ", ".join(_sweep_value(v) for v in _sorted_unique(sweep.aggregate[k])),
            GOVERNANCE_MEANING.get(k.rsplit(".", 1)[-1], ""),
        ]
        for k in sweep.params
    ]
    tables = [Table("Varied parameters", ["key", "values", "meaning"], params_rows)]
    settings = []
    for key in (
        "scenario",
        "sampler",
        "points",
        "seeds",
        "runs",
        "root_seed",
        "common_seeds",
        "keep",
    ):
        if m.get(key) is not None:
            settings.append([key.replace("_", " "), _short(m[key])])
    fixed = spec.get("set")
    if isinstance(fixed, dict) and fixed:
        settings.append(
            ["fixed overrides", ", ".join(f"{k}={_short(v)}" for k, v in fixed.items())]
        )
    if settings:
        tables.append(Table("Sweep settings", ["setting", "value"], settings))
    if base:
        fake = RunData(
            path=sweep.path,
            timeseries=pd.DataFrame(),
            events=None,
            accounts=None,
            summary={},
            manifest={"resolved_scenario": base},
        )
        varied_values = {k: _sorted_unique(sweep.aggregate[k]) for k in sweep.params}
        gov = _governance_table(base, varied_values)
        gov.title = "Governance of the base scenario (with the sweep's fixed overrides)"
        tables += [gov, _market_table(fake, varied_values), _agents_table(fake)]
    findings, headline = _sweep_headline(sweep)
    infos = {f.file: f for f in SWEEP_FIGURES}
    figs = [(infos[p.name], p) for p in figures if p.name in infos]
    events, notes, worst_cmd = _sweep_events(sweep)
    commands = []
    if worst_cmd:
        commands.append(
            ("Re-run the worst run alone, with every output (events, accounts, figures)", worst_cmd)
        )
    if m.get("sweep_file"):
        commands.append(("Re-run the sweep", f"perpsim sweep {m['sweep_file']} --out OUT"))
    commands.append(("Re-draw the figures of this sweep", f"perpsim plot {sweep.path}"))
    commands.append(("Rebuild this report", f"perpsim report {sweep.path}"))
    manifest_rows = _manifest_rows(m)
    first = _first_run_manifest(sweep)
    if first:
        manifest_rows += [
            (f"run: {k}", v) for k, v in _manifest_rows(first) if k in ("git commit", "versions")
        ]
    warnings = _commit_warning(first)
    n_failed = (
        int((sweep.results["status"].astype(str) != "ok").sum())
        if ("status" in sweep.results)
        else 0
    )
    if n_failed:
        warnings.append(f"{n_failed} runs failed and are left out of every statistic.")
    spec_yaml = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True) if spec else None
    return Report(
        title=f"Sweep risk report: {sweep.name}",
        subtitle=f"{len(sweep.aggregate)} points · {len(sweep.results)} runs · sweep folder"
        f" {sweep.path}",
        question=question,
        parameters=tables,
        findings=findings,
        headline=headline,
        figures=figs,
        events=events,
        event_notes=notes,
        commands=commands,
        manifest=manifest_rows,
        manifest_json=json.dumps(
            {k: v for k, v in m.items() if k != "spec"}, indent=2, default=str
        ),
        resolved=spec_yaml,
        warnings=warnings,
    )


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------

_CSS: Final = """
:root { color-scheme: light; }
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1d1d1f;
  max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; line-height: 1.45;
  background: #ffffff; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
h2 { font-size: 1.3em; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #0072B2; }
h3 { font-size: 1.05em; margin: 22px 0 6px; }
.sub { color: #555; font-size: 0.92em; margin: 0 0 14px; }
nav { background: #f5f7fa; border: 1px solid #dde3ea; border-radius: 6px; padding: 8px 14px;
  font-size: 0.92em; }
nav a { margin-right: 14px; color: #0b5394; text-decoration: none; }
.warn { background: #fff6e0; border-left: 4px solid #E69F00; padding: 8px 12px; margin: 10px 0; }
.findings { background: #f0f6fb; border-left: 4px solid #0072B2; padding: 10px 18px; }
.findings li { margin: 4px 0; }
table { border-collapse: collapse; margin: 6px 0 4px; font-size: 0.9em; width: 100%; }
th, td { border: 1px solid #d9dde3; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
tr:nth-child(even) td { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.hl td { background: #fde8e0 !important; font-weight: 600; }
.note { color: #555; font-size: 0.85em; margin: 2px 0 12px; }
figure { margin: 18px 0 30px; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e3e3; }
figcaption { font-size: 0.9em; color: #333; margin-top: 6px; }
pre, code { font-family: Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 0.85em; }
pre { background: #f6f8fa; border: 1px solid #e1e4e8; padding: 10px; overflow-x: auto;
  white-space: pre-wrap; word-break: break-all; }
details summary { cursor: pointer; color: #0b5394; margin: 8px 0; }
footer { margin-top: 40px; color: #777; font-size: 0.8em; }
@media print { nav { display: none; } figure { page-break-inside: avoid; } }
"""


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _html_table(t: Table) -> str:
    parts = [f"<h3>{_h(t.title)}</h3>"] if t.title else []
    if t.rows:
        parts.append("<table><thead><tr>")
        parts += [f"<th>{_h(c)}</th>" for c in t.header]
        parts.append("</tr></thead><tbody>")
        for i, row in enumerate(t.rows):
            parts.append('<tr class="hl">' if i in t.emphasise else "<tr>")
            for j, cell in enumerate(row):
                cls = ' class="num"' if j in t.numeric else ""
                parts.append(f"<td{cls}>{_h(cell)}</td>")
            parts.append("</tr>")
        parts.append("</tbody></table>")
    if t.note:
        parts.append(f'<p class="note">{_h(t.note)}</p>')
    return "".join(parts)


def render_html(report: Report) -> str:
    """The report as one self-contained HTML document (figures embedded as base64 PNGs)."""
    body: list[str] = [
        f"<h1>{_h(report.title)}</h1>",
        f'<p class="sub">{_h(report.subtitle)}</p>',
        "<nav>" + "".join(f'<a href="#{a}">{_h(name)}</a>' for a, name in SECTIONS) + "</nav>",
    ]
    body += [f'<p class="warn">{_h(w)}</p>' for w in report.warnings]
    body.append('<section id="question"><h2>1. Question</h2>')
    body += [f"<p>{_h(p)}</p>" for p in report.question]
    body.append('</section><section id="parameters"><h2>2. Parameters</h2>')
    body += [_html_table(t) for t in report.parameters]
    body.append('</section><section id="headline"><h2>3. Headline risk numbers</h2>')
    body.append(
        '<ul class="findings">' + "".join(f"<li>{_h(f)}</li>" for f in report.findings) + "</ul>"
    )
    body += [_html_table(t) for t in report.headline]
    body.append('</section><section id="figures"><h2>4. Figures</h2>')
    if not report.figures:
        body.append("<p>No figures.</p>")
    for i, (info, path) in enumerate(report.figures, start=1):
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        body.append(
            f'<figure id="fig-{i}"><img alt="{_h(info.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption><b>Figure {i}. {_h(info.title)}.</b> {_h(info.caption)}</figcaption>"
            "</figure>"
        )
    body.append('</section><section id="events"><h2>5. Notable events</h2>')
    body += [f"<p>{_h(n)}</p>" for n in report.event_notes]
    body += [_html_table(t) for t in report.events]
    body.append('</section><section id="reproduce"><h2>6. Reproduce</h2>')
    for what, cmd in report.commands:
        body.append(f"<p>{_h(what)}:</p><pre>{_h(cmd)}</pre>")
    body.append(
        _html_table(Table("Manifest", ["item", "value"], [[k, v] for k, v in report.manifest]))
    )
    body.append(
        "<details><summary>Full manifest (JSON)</summary>"
        f"<pre>{_h(report.manifest_json)}</pre></details>"
    )
    if report.resolved:
        body.append(
            "<details><summary>Resolved scenario / sweep specification (YAML)</summary>"
            f"<pre>{_h(report.resolved)}</pre></details>"
        )
    body.append("</section>")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body.append(f"<footer>Generated by perpsim {_h(__version__)} on {_h(stamp)}.</footer>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_h(report.title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(t: Table) -> list[str]:
    out = [f"### {t.title}", ""] if t.title else []
    if t.rows:
        out.append("| " + " | ".join(_md_cell(c) for c in t.header) + " |")
        out.append(
            "|" + "|".join("---:" if j in t.numeric else "---" for j in range(len(t.header))) + "|"
        )
        for i, row in enumerate(t.rows):
            cells = [_md_cell(c) for c in row]
            if i in t.emphasise:
                cells = [f"**{c}**" if c else c for c in cells]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    if t.note:
        out += [f"_{t.note}_", ""]
    return out


def render_markdown(report: Report, md_path: Path | None = None) -> str:
    """The report as Markdown; figures are links relative to ``md_path``'s folder."""
    lines = [f"# {report.title}", "", f"_{report.subtitle}_", ""]
    lines += [f"> **Note:** {w}" for w in report.warnings]
    if report.warnings:
        lines.append("")
    lines += ["## 1. Question", ""]
    for p in report.question:
        lines += [p, ""]
    lines += ["## 2. Parameters", ""]
    for t in report.parameters:
        lines += _md_table(t)
    lines += ["## 3. Headline risk numbers", ""]
    lines += [f"- {f}" for f in report.findings]
    lines.append("")
    for t in report.headline:
        lines += _md_table(t)
    lines += ["## 4. Figures", ""]
    base = md_path.parent if md_path is not None else None
    for i, (info, path) in enumerate(report.figures, start=1):
        rel = os.path.relpath(path, base) if base is not None else str(path)
        lines += [
            f"**Figure {i}. {info.title}.** {info.caption}",
            "",
            f"![{info.title}]({Path(rel).as_posix()})",
            "",
        ]
    lines += ["## 5. Notable events", ""]
    for n in report.event_notes:
        lines += [n, ""]
    for t in report.events:
        lines += _md_table(t)
    lines += ["## 6. Reproduce", ""]
    for what, cmd in report.commands:
        lines += [f"{what}:", "", "```", cmd, "```", ""]
    lines += _md_table(Table("Manifest", ["item", "value"], [[k, v] for k, v in report.manifest]))
    if report.resolved:
        lines += [
            "<details><summary>Resolved scenario / sweep specification (YAML)</summary>",
            "",
            "```yaml",
            report.resolved.rstrip(),
            "```",
            "",
            "</details>",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def build_report(path: Path) -> Report:
    """Draw the figures of a run or sweep folder and assemble its report.

    Raises:
        ConfigError: ``path`` is neither a run folder nor a sweep folder.
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: no such folder")
    if not p.is_dir():
        raise ConfigError(f"{p}: not a folder (give a run folder or a sweep folder)")
    if is_sweep_dir(p):
        return _sweep_report(load_sweep(p), plot_sweep(p))
    if is_run_dir(p):
        return _run_report(load_run(p), plot_run(p))
    raise ConfigError(
        f"{p}: neither a run folder (timeseries.parquet, summary.json, manifest.json) nor a"
        " sweep folder (results.parquet)"
    )


def write_report(path: Path, out: Path | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` (default ``<path>/report.html``) and the Markdown next to it.

    Returns:
        The HTML and Markdown paths.

    Raises:
        ConfigError: ``path`` is not a run or sweep folder, or ``out`` is not an .html file.
    """
    html_path = Path(out) if out is not None else Path(path) / "report.html"
    if html_path.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--out {html_path}: the report is HTML; name it *.html")
    report = build_report(Path(path))
    md_path = html_path.with_suffix(".md")
    atomic_write_text(html_path, render_html(report))
    atomic_write_text(md_path, render_markdown(report, md_path))
    return html_path, md_path
