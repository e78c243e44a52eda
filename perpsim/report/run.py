"""The report of one run: findings, headline tables, notable events, how to reproduce it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import yaml

from perpsim.metrics import DEFAULT_PRICE_IMPACT_SIZE, format_metric, metric_label
from perpsim.plots import (
    RunData,
    event_markers,
    fmt_duration,
    fmt_number,
    fmt_time,
    fmt_usd,
    run_figure_infos,
    venue_kind,
)
from perpsim.report.model import Report, Table
from perpsim.report.provenance import commit_warning, manifest_rows
from perpsim.report.tables import agents_table, governance_table, market_table
from perpsim.report.text import num, paragraphs, pct
from perpsim.report.vaults import vault_tables

__all__ = ["run_report"]


def _lp_change(run: RunData) -> tuple[float, str]:
    """LP share price change, end vs start; after settlement, up to the last redemption.

    Once every share has been redeemed (after settlement) the recorded share price is 0, which
    is not a loss: the change is then taken to the last price while shares existed (as the
    summary's ``lp_return`` does).
    """
    lp = num(run.summary.get("lp_return"))
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
    f0 = num(s.get("insurance_fund_initial", fund[0]))
    fmin = num(s.get("insurance_fund_min", np.nanmin(fund)))
    i_min = int(np.nanargmin(fund))
    if fmin < f0:
        drop = (f0 - fmin) / f0 if f0 > 0 else math.nan
        when = fmt_time(t[i_min])
        exhausted = bool(s.get("insurance_fund_exhausted"))
        out.append(
            f"The insurance fund started at {fmt_usd(f0)} and fell to {fmt_usd(fmin)}"
            f" ({pct(-drop, 1)}) at {when}"
            + ("; it was exhausted." if exhausted else "; it was not exhausted.")
        )
    else:
        out.append(
            f"The insurance fund never fell below its starting {fmt_usd(f0)}"
            f" (final {fmt_usd(s.get('insurance_fund_final'))})."
        )
    social, bad = num(s.get("social_loss_total")), num(s.get("bad_debt"))
    if social > 0 or bad > 0:
        out.append(
            f"{fmt_usd(social)} of liquidation losses were socialised (charged to the positions"
            f" of the other side) and {fmt_usd(bad)} was left as bad debt."
        )
    else:
        out.append("No loss was socialised and there is no bad debt.")
    n = int(num(s.get("liquidation_count")) or 0)
    if n and num(s.get("liquidation_loss_total")) > 0:
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
        out.append(f"LP share value changed by {pct(lp)} over the run{lp_note}.")
    p5, p50 = num(s.get("trader_pnl_p5")), num(s.get("trader_pnl_p50"))
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


def _question_table(run: RunData) -> Table | None:
    """The metrics the scenario's question picked (``output.headline``), with their units."""
    output = run.scenario.get("output") or {}
    names = [str(m) for m in output.get("headline") or () if m in run.summary]
    if not names:
        return None
    size = float(output.get("price_impact_size") or DEFAULT_PRICE_IMPACT_SIZE)
    return Table(
        "The scenario's headline (output.headline)",
        ["metric", "value", "summary.json key"],
        [[metric_label(m, size), format_metric(m, run.summary.get(m)), m] for m in names],
        note="The numbers this scenario's question is about, as its comment block quotes them.",
        numeric={1},
    )


def _label(key: str) -> str:
    return metric_label(key)


def _run_headline(run: RunData) -> list[Table]:
    s = run.summary
    f0 = num(s.get("insurance_fund_initial"))
    dd = num(s.get("insurance_fund_drawdown"))
    dd_pct = f" ({dd / f0:.1%} of the start)" if f0 > 0 and not math.isnan(dd) else ""
    needs = "— (one seed; run a sweep over seeds)"
    risk = [
        [_label("insurance_fund_initial"), fmt_usd(s.get("insurance_fund_initial")), ""],
        [_label("insurance_fund_min"), fmt_usd(s.get("insurance_fund_min")), "lowest recorded"],
        [_label("insurance_fund_final"), fmt_usd(s.get("insurance_fund_final")), ""],
        [_label("insurance_fund_drawdown"), fmt_usd(dd) + dd_pct, "largest fall from a peak"],
        [
            _label("insurance_fund_exhausted"),
            fmt_number(s.get("insurance_fund_exhausted")),
            "a loss was socialised or written off",
        ],
        [
            _label("social_loss_total"),
            fmt_usd(s.get("social_loss_total")),
            "charged to the other side",
        ],
        [_label("bad_debt"), fmt_usd(s.get("bad_debt")), "loss nobody could absorb"],
        ["VaR95 / CVaR95 of bad debt and drawdown", needs, "tail across seeds"],
        ["LaR95 (liquidated value)", needs, "95th percentile across seeds"],
        ["P(insurance fund exhausted)", needs, "share of seeds"],
    ]
    kind = venue_kind(run.scenario)
    per_side = [f"{kind}_social_loss_per_contract_{side}" for side in ("long", "short")]
    if all(c in run.timeseries for c in per_side):  # designs that charge each side apart
        slpc_l, slpc_s = (run.column(c)[-1] for c in per_side)
        risk.insert(
            6,
            [
                "social loss per contract (long / short)",
                f"{fmt_number(slpc_l)} / {fmt_number(slpc_s)} USD",
                "at the end",
            ],
        )
    activity = [
        [_label("liquidation_count"), fmt_number(s.get("liquidation_count")), ""],
        [_label("liquidated_value"), fmt_usd(s.get("liquidated_value")), "contracts × price"],
        [
            _label("liquidation_loss_total"),
            fmt_usd(s.get("liquidation_loss_total")),
            "beyond the margin",
        ],
        ["… paid by the insurance fund", fmt_usd(s.get("insurance_fund_paid_total")), ""],
        [
            _label("max_unsafe_accounts_before_liquidation"),
            fmt_number(
                s.get("max_unsafe_accounts_before_liquidation", s.get("max_unsafe_accounts"))
            ),
            "",
        ],
        [
            _label("max_bankrupt_accounts_before_liquidation"),
            fmt_number(s.get("max_bankrupt_accounts_before_liquidation")),
            "margin balance < 0",
        ],
        [
            _label("max_unsafe_accounts_end_of_tick"),
            fmt_number(s.get("max_unsafe_accounts_end_of_tick")),
            "after liquidators acted (as in the figure's dotted line)",
        ],
        [
            _label("time_with_unsafe_accounts_s"),
            fmt_duration(num(s.get("time_with_unsafe_accounts_s")) or 0),
            "",
        ],
        [_label("funding_paid_by_longs"), fmt_usd(s.get("funding_paid_by_longs")), ""],
        [_label("funding_paid_by_shorts"), fmt_usd(s.get("funding_paid_by_shorts")), ""],
        [
            _label("lp_return"),
            pct(_lp_change(run)[0]),
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
        [_label("time_in_emergency_s"), fmt_duration(num(s.get("time_in_emergency_s")) or 0), ""],
    ]
    tables = [
        Table("Risk", ["metric", "value", "meaning"], risk, numeric={1}),
        Table("Activity and outcomes", ["metric", "value", "note"], activity, numeric={1}),
        *vault_tables(run),
    ]
    question = _question_table(run)
    return tables if question is None else [question, *tables]


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


def run_report(run: RunData, figures: list[Path]) -> Report:
    """The report of one run, from its folder and its drawn figures."""
    sc = run.scenario
    desc = str(sc.get("description") or "")
    question = paragraphs(desc) or ["The scenario gives no description."]
    t = run.times
    seed = run.seed
    manifest = {k: v for k, v in run.manifest.items() if k != "resolved_scenario"}
    resolved = yaml.safe_dump(sc, sort_keys=False, allow_unicode=True) if sc else None
    out_hint = "OUT"
    data_files = [d for d in run.manifest.get("data_files") or [] if isinstance(d, dict)]
    commands = [
        ("Recorded command", str(run.manifest.get("command") or "—")),
        (
            "Re-run the scenario with the same seed (add the same --set overrides as the"
            " recorded command)",
            f"perpsim run {run.name} --seed {seed} --out {out_hint}",
        ),
        (
            "Exact re-run: save the resolved scenario below as scenario.yaml"
            + (
                " in a folder that holds its data files ("
                + "; ".join(
                    f"{d.get('file')}, SHA-256 {str(d.get('sha256', '?'))[:16]}…"
                    for d in data_files
                )
                + ", paths relative to the scenario)"
                if data_files
                else ""
            )
            + ", then",
            f"perpsim run scenario.yaml --seed {seed} --out {out_hint} && perpsim report"
            f" {out_hint}",
        ),
    ]
    commit = run.manifest.get("git_commit")
    if isinstance(commit, str) and commit:
        commands.insert(0, ("Check out the code", f"git checkout {commit.removesuffix('-dirty')}"))
    infos = {f.file: f for f in run_figure_infos(run)}
    figs = [(infos[p.name], p) for p in figures if p.name in infos]
    events, notes = _run_events(run)
    warnings = commit_warning(run.manifest)
    if run.manifest.get("error"):
        warnings.append(f"The run stopped early: {run.manifest['error']}")
    return Report(
        title=f"Risk report: {run.name}",
        subtitle=f"seed {seed} · {fmt_time(t[0])} – {fmt_time(t[-1])} · run folder {run.path}",
        question=question,
        parameters=[governance_table(sc), market_table(run), agents_table(run)],
        findings=_run_findings(run),
        headline=_run_headline(run),
        figures=figs,
        events=events,
        event_notes=notes,
        commands=commands,
        manifest=manifest_rows(run.manifest),
        manifest_json=json.dumps(manifest, indent=2, default=str),
        resolved=resolved,
        warnings=warnings,
    )
