"""Figures of a run or a sweep (``perpsim plot DIR``).

A run folder (``perpsim run``) gets seven PNGs in ``<run>/plots/``: prices, premium and funding,
accumulated funding, insurance fund and losses, the pool, liquidations, and trader PnL. A sweep
folder (``perpsim sweep``) gets a heatmap of a statistic over two parameters, a metric against
one parameter with seed bands, the loss distribution per point, a fan chart of the insurance
fund across seeds (when the runs' time series were kept) and the capital-efficiency / tail-risk
frontier. ``docs/plots.md`` says how to read each one.

Every figure uses one style (:data:`STYLE`, colour-blind-safe colours, legends beside the panels
so they never cover data), dates in UTC with a concise formatter, units in every axis label,
the scenario's events (price shocks, oracle and keeper outages, governance changes, global
settlement, ...) drawn on every time axis, and a sentence instead of an empty panel. Figures
are drawn on :class:`matplotlib.figure.Figure` objects with the non-interactive Agg backend
(no pyplot state) and written atomically.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import matplotlib

if "matplotlib.pyplot" not in sys.modules:  # never switch the backend of an interactive session
    matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.ticker as mticker
import numpy as np
import numpy.typing as npt
import pandas as pd
import yaml
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from perpsim.engine.governance import AMMGovernance, PerpetualGovernance
from perpsim.errors import ConfigError
from perpsim.io import atomic_write_bytes
from perpsim.metrics import SUMMARY_METRICS, TRADER_TYPES, cvar, var

__all__ = [
    "DPI",
    "RUN_FIGURES",
    "STYLE",
    "SWEEP_FIGURES",
    "FigureInfo",
    "Marker",
    "RunData",
    "SweepData",
    "event_markers",
    "fmt_duration",
    "fmt_number",
    "fmt_time",
    "fmt_usd",
    "governance_value",
    "is_run_dir",
    "is_sweep_dir",
    "load_run",
    "load_sweep",
    "plot_dir",
    "plot_run",
    "plot_sweep",
    "run_figures",
    "sweep_figures",
]

FloatArray = npt.NDArray[np.float64]
TimeArray = npt.NDArray[np.datetime64]

#: Resolution of the PNGs (a 11-inch-wide figure is 1320 pixels wide).
DPI: Final = 120
#: Width of every figure, inches.
WIDTH: Final = 11.0

#: The one style of every figure.
STYLE: Final[dict[str, Any]] = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.alpha": 0.35,
    "grid.linewidth": 0.6,
    "legend.fontsize": 9,
    "legend.framealpha": 0.95,
    "legend.edgecolor": "#cccccc",
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "lines.linewidth": 1.4,
    "figure.titlesize": 13,
    "figure.titleweight": "bold",
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}

#: Colours (Okabe-Ito, colour-blind safe); the same quantity has the same colour everywhere.
COLORS: Final[dict[str, str]] = {
    "market": "#7f7f7f",
    "index": "#0072B2",
    "mark": "#D55E00",
    "fair": "#009E73",
    "long": "#0072B2",
    "short": "#D55E00",
    "fund": "#0072B2",
    "social": "#CC79A7",
    "bad_debt": "#000000",
    "pool": "#009E73",
    "oi": "#0072B2",
    "lp": "#E69F00",
    "band": "#009E73",
    "muted": "#555555",
}

_EVENT_STYLE: Final[dict[str, tuple[str, str]]] = {
    "price_shock": ("#D55E00", "--"),
    "oracle_outage": ("#CC79A7", "-"),
    "oracle_manipulation": ("#CC79A7", ":"),
    "keeper_outage": ("#8B5A2B", "-"),
    "liquidator_outage": ("#E69F00", "-"),
    "liquidity_withdrawal": ("#56B4E9", "-."),
    "set_governance": ("#555555", ":"),
    "begin_global_settlement": ("#000000", "-"),
    "global_settled": ("#000000", "-."),
    "EMERGENCY": ("#F0E442", "-"),
    "SETTLED": ("#999999", "-"),
}
_EVENT_NAMES: Final[dict[str, str]] = {
    "price_shock": "price shocks",
    "oracle_outage": "oracle outages",
    "oracle_manipulation": "oracle manipulations",
    "keeper_outage": "keeper outages",
    "liquidator_outage": "liquidator outages",
    "liquidity_withdrawal": "LP withdrawals",
    "set_governance": "governance changes",
    "begin_global_settlement": "global settlement begins",
    "global_settled": "settlement complete",
}

_NO_DATA_COLOR: Final = "#666666"


@dataclass(frozen=True)
class FigureInfo:
    """A figure's file name, title and how to read it (shown under it in the report).

    Attributes:
        file: File name inside ``plots/``.
        title: Short title.
        caption: What it shows and how to read it.
    """

    file: str
    title: str
    caption: str


#: The figures of a run, in reading order.
RUN_FIGURES: Final[tuple[FigureInfo, ...]] = (
    FigureInfo(
        "prices.png",
        "Prices",
        "Market price (simulated spot), oracle index, perpetual mark price and AMM fair price"
        " (USD); below, each price's gap to the index (%) with the mark-premium limit, and the"
        " age of the index (minutes) — it grows during oracle outages and when keepers lag.",
    ),
    FigureInfo(
        "funding.png",
        "Premium and funding rate",
        "The AMM premium (mark vs index, %) with the funding dampener band (premiums inside it"
        " pay no funding) and the mark-premium limit; below, the funding rate in % per 8 hours"
        " (right axis: annualised). Above zero longs pay shorts.",
    ),
    FigureInfo(
        "accumulated_funding.png",
        "Accumulated funding",
        "Funding accumulated per contract (USD per contract): rising while longs pay shorts,"
        " falling while shorts pay longs. The box gives the total funding each side paid.",
    ),
    FigureInfo(
        "insurance_fund.png",
        "Insurance fund, social loss and bad debt",
        "Insurance fund (USD) with every liquidation marked (red triangles: the fund paid part"
        " of a liquidation loss); the social loss charged per contract to longs and to shorts"
        " (USD per contract); cumulative socialised loss and bad debt (USD).",
    ),
    FigureInfo(
        "pool.png",
        "Open interest and the AMM pool",
        "Open interest and the pool's long position (contracts); the pool's available margin"
        " and cash (USD); the LP share price (USD per share) against its starting value.",
    ),
    FigureInfo(
        "liquidations.png",
        "Liquidations",
        "Liquidations per time bin by side of the liquidated position, the contracts"
        " liquidated, and who absorbed the liquidation losses (insurance fund, socialised,"
        " bad debt); below, the number of accounts under maintenance margin and bankrupt.",
    ),
    FigureInfo(
        "trader_pnl.png",
        "Trader PnL",
        "Distribution of the final PnL of trader accounts (noise and momentum traders, whales,"
        " arbitrageurs) in USD and as a return on their deposits, with the 5th, 50th and 95th"
        " percentiles.",
    ),
)

#: The figures of a sweep, in reading order (the heatmap needs two varied parameters, the fan
#: chart needs the runs' time series).
SWEEP_FIGURES: Final[tuple[FigureInfo, ...]] = (
    FigureInfo(
        "sweep_heatmap.png",
        "Heatmap over two parameters",
        "The chosen statistic for each combination of two varied parameters: the mean over"
        " seeds and the 95th percentile over seeds (VaR95). Darker is larger.",
    ),
    FigureInfo(
        "sweep_metric.png",
        "Metric against one parameter",
        "The chosen metric against one varied parameter: median over seeds (line) and the"
        " 5th–95th percentile band across seeds; one line per value of a second parameter.",
    ),
    FigureInfo(
        "sweep_losses.png",
        "Loss distribution per point",
        "For every parameter point, the distribution across seeds of the insurance-fund"
        " drawdown and of the loss beyond the fund (socialised loss + bad debt), USD. Boxes span"
        " the 25th–75th percentiles, whiskers the 5th–95th, dots are single runs, diamonds the"
        " VaR95.",
    ),
    FigureInfo(
        "sweep_fan.png",
        "Insurance fund across seeds",
        "Fan chart of the insurance fund (USD) over time across seeds for a few parameter points"
        " (the best, the worst and some in between by mean drawdown): median line, 25th–75th"
        " and 5th–95th percentile bands.",
    ),
    FigureInfo(
        "sweep_frontier.png",
        "Capital efficiency against tail risk",
        "For every parameter point, the VaR95 (filled) and CVaR95 (hollow) across seeds of the"
        " insurance-fund drawdown and of the loss beyond the fund, against the capital-efficiency"
        " parameter. The line joins the lowest tail risk reached at each value.",
    ),
)


# ---------------------------------------------------------------------------------------------
# Formatting helpers (shared with the report)
# ---------------------------------------------------------------------------------------------


def fmt_number(x: Any, digits: int = 3) -> str:
    """A short rendering of a number: ``1.25M``, ``250k``, ``2,280``, ``0.0125``; text as is."""
    if x is None:
        return "—"
    if isinstance(x, bool | np.bool_):
        return "yes" if x else "no"
    if not isinstance(x, int | float | np.integer | np.floating):
        return str(x)
    v = float(x)
    if math.isnan(v):
        return "—"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    a = abs(v)
    for threshold, div, suffix in ((1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if a >= threshold:
            return f"{v / div:.{digits}g}{suffix}".replace("-", "−")
    if a >= 100 or v == int(v):
        return f"{v:,.0f}".replace("-", "−")
    return f"{v:.{digits}g}".replace("-", "−")


def fmt_usd(x: Any) -> str:
    """``1,234,567 USD`` (cents below 100 USD); ``—`` for a missing value."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    v = float(x)
    text = f"{v:,.0f}" if abs(v) >= 100 or v == 0 else f"{v:,.2f}"
    return text.replace("-", "−") + " USD"


def fmt_duration(seconds: float) -> str:
    """``45 s``, ``20 min``, ``1 h 30 min``, ``2 d 6 h``."""
    s = round(float(seconds))
    if s < 60:
        return f"{s} s"
    parts: list[str] = []
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if s >= size:
            parts.append(f"{s // size} {unit}")
            s %= size
    return " ".join(parts[:2])


def fmt_time(value: Any) -> str:
    """A time (unix seconds, Timestamp, datetime64) as ``2020-03-12 10:05 UTC``."""
    if isinstance(value, int | float | np.integer | np.floating):
        ts = pd.Timestamp(datetime.fromtimestamp(float(value), tz=UTC))
    else:
        ts = pd.Timestamp(value)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    fmt = "%Y-%m-%d %H:%M:%S UTC" if ts.second else "%Y-%m-%d %H:%M UTC"
    return ts.strftime(fmt)


def _fmt_param(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return f"{float(v):g}"
    return str(v)


class _CompactFormatter(mticker.Formatter):
    """Tick labels such as ``250k`` or ``1.25M`` with as few decimals as keep ticks distinct."""

    def __init__(self, percent: bool = False) -> None:
        self.percent = percent

    def __call__(self, x: float, pos: int | None = None) -> str:
        return self.format_ticks([x])[0]

    def format_ticks(self, values: Sequence[float] | npt.ArrayLike) -> list[str]:
        vals = [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]
        if not vals:
            return []
        if self.percent:
            vals = [v * 100 for v in vals]
        top = max(abs(v) for v in vals)
        div, suffix = 1.0, ""
        for threshold, d, s in ((1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
            if top >= threshold:
                div, suffix = d, s
                break
        if self.percent:
            suffix = "%"
        scaled = [v / div for v in vals]
        tol = 1e-9 * max(max(abs(v) for v in scaled), 1e-300)
        labels: list[str] = []
        for digits in range(0, 9):  # fewest decimals that show every tick exactly
            labels = [f"{v:,.{digits}f}" for v in scaled]
            if all(abs(round(v, digits) - v) <= tol for v in scaled):
                break
        out = []
        for text in labels:
            if text.lstrip("-").strip("0.,") == "":
                text = "0"
            out.append(text.replace("-", "−") + (suffix if text != "0" or self.percent else ""))
        return out


# ---------------------------------------------------------------------------------------------
# Loading a run folder
# ---------------------------------------------------------------------------------------------


def _read_table(
    folder: Path, name: str, columns: Sequence[str] | None = None
) -> pd.DataFrame | None:
    """``<name>.parquet`` or ``<name>.csv`` of a folder, ``time`` parsed as UTC; None if absent."""
    pq, csv = folder / f"{name}.parquet", folder / f"{name}.csv"
    try:
        if pq.is_file():
            df = pd.read_parquet(pq, columns=list(columns) if columns else None)
        elif csv.is_file():
            df = pd.read_csv(csv, usecols=list(columns) if columns else None)
        else:
            return None
    except Exception as exc:  # a damaged file is bad input, not a bug
        raise ConfigError(f"{folder}: cannot read {name}: {exc}") from None
    if "time" in df.columns:
        df["time"] = pd.to_datetime(df["time"], utc=True)
    return df


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read JSON: {exc}") from None
    return doc if isinstance(doc, dict) else {}


def is_run_dir(path: Path) -> bool:
    """Whether ``path`` looks like a run folder (``perpsim run`` outputs)."""
    p = Path(path)
    if not p.is_dir() or is_sweep_dir(p):
        return False
    return any((p / f).is_file() for f in ("timeseries.parquet", "timeseries.csv")) or (
        (p / "manifest.json").is_file() and (p / "summary.json").is_file()
    )


def is_sweep_dir(path: Path) -> bool:
    """Whether ``path`` looks like a sweep folder (has ``results.parquet`` or ``results.csv``)."""
    p = Path(path)
    return p.is_dir() and any((p / f).is_file() for f in ("results.parquet", "results.csv"))


def governance_value(scenario: Mapping[str, Any], key: str) -> Any:
    """A governance key as the scenario set it, else the engine's default."""
    gov = scenario.get("governance") or {}
    if key in gov:
        return gov[key]
    for cls in (PerpetualGovernance, AMMGovernance):
        if key in {f.name for f in dataclasses.fields(cls)}:
            return getattr(cls(), key)
    raise KeyError(key)


_REQUIRED_TS: Final = (
    "time",
    "market_price",
    "index_price",
    "mark_price",
    "fair_price",
    "premium_rate",
    "funding_rate",
    "accumulated_funding_per_contract",
    "open_interest",
    "mcdex_v1_pool_position_size",
    "mcdex_v1_pool_cash_balance",
    "mcdex_v1_pool_available_margin",
    "lp_share_price",
    "insurance_fund",
    "mcdex_v1_social_loss_per_contract_long",
    "mcdex_v1_social_loss_per_contract_short",
    "social_loss_total",
    "bad_debt",
    "liquidations",
    "liquidation_volume",
    "unsafe_accounts",
    "bankrupt_accounts",
    "status",
)


@dataclass
class RunData:
    """The outputs of one run, read from its folder.

    Attributes:
        path: The run folder.
        timeseries: One row per recorded tick (``time`` is a UTC timestamp).
        events: The event log, or None if it was not written.
        accounts: The final ledger, or None if it was not written.
        summary: ``summary.json``.
        manifest: ``manifest.json``.
    """

    path: Path
    timeseries: pd.DataFrame
    events: pd.DataFrame | None
    accounts: pd.DataFrame | None
    summary: dict[str, Any]
    manifest: dict[str, Any]

    @property
    def scenario(self) -> dict[str, Any]:
        """The resolved scenario of the manifest (empty if unknown)."""
        sc = self.manifest.get("resolved_scenario")
        return sc if isinstance(sc, dict) else {}

    @property
    def name(self) -> str:
        """The scenario's name."""
        return str(self.manifest.get("scenario") or self.scenario.get("name") or self.path.name)

    @property
    def seed(self) -> Any:
        """The run's seed."""
        return self.manifest.get("seed", self.scenario.get("seed"))

    @property
    def times(self) -> TimeArray:
        """The time column as naive UTC ``datetime64[ns]``."""
        return _dt64(self.timeseries["time"])

    def column(self, name: str) -> FloatArray:
        """A numeric time-series column as floats (NaN where missing)."""
        return np.asarray(pd.to_numeric(self.timeseries[name], errors="coerce"), dtype=np.float64)

    def liquidations(self) -> pd.DataFrame:
        """The ``liquidate`` events (empty if none or no event log)."""
        if self.events is None or self.events.empty:
            return pd.DataFrame(columns=["time", "account", "side", "amount", "price", "loss"])
        return self.events[self.events["kind"] == "liquidate"].reset_index(drop=True)


def load_run(path: Path) -> RunData:
    """Read a run folder.

    Raises:
        ConfigError: the folder does not exist or holds no (readable) time series.
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: no such folder")
    if not p.is_dir():
        raise ConfigError(f"{p}: not a folder (give a run folder or a sweep folder)")
    ts = _read_table(p, "timeseries")
    if ts is None:
        raise ConfigError(
            f"{p}: no timeseries.parquet or timeseries.csv — not a run folder, or the run was"
            " written without its time series"
        )
    missing = [c for c in _REQUIRED_TS if c not in ts.columns]
    if missing:
        raise ConfigError(f"{p}: the time series lacks column(s) {', '.join(missing)}")
    if ts.empty:
        raise ConfigError(f"{p}: the time series has no rows")
    ts = ts.sort_values("time", kind="stable").reset_index(drop=True)
    return RunData(
        path=p,
        timeseries=ts,
        events=_read_table(p, "events"),
        accounts=_read_table(p, "accounts"),
        summary=_read_json(p / "summary.json"),
        manifest=_read_json(p / "manifest.json"),
    )


def _dt64(values: Any) -> TimeArray:
    """Times (UTC-aware or naive, a Series or an array) as naive UTC ``datetime64[ns]``."""
    s = pd.to_datetime(pd.Series(values), utc=True)
    return np.asarray(s.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]"))


def _unix_dt64(seconds: float) -> np.datetime64:
    return np.datetime64(round(float(seconds)) * 1_000_000_000, "ns")


def _dnum(values: Any) -> FloatArray:
    """Times as matplotlib date numbers (days)."""
    days = mdates.date2num(values)  # type: ignore[no-untyped-call]
    return np.atleast_1d(np.asarray(days, dtype=np.float64))


def _date_ticks(ax: Axes, minticks: int = 4, maxticks: int = 9) -> None:
    """Concise date ticks (``Jan-02``, ``12:00``) on the x axis."""
    locator = mdates.AutoDateLocator(minticks=minticks, maxticks=maxticks)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, show_offset=False)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)


def _style() -> Any:
    """The context of :data:`STYLE`."""
    return matplotlib.rc_context(STYLE)  # type: ignore[arg-type]


def _annualise(y: Any) -> Any:
    return np.asarray(y, dtype=np.float64) * 1095.0


def _de_annualise(y: Any) -> Any:
    return np.asarray(y, dtype=np.float64) / 1095.0


# ---------------------------------------------------------------------------------------------
# Scenario events and status periods
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Marker:
    """A scenario event or a status period drawn on every time axis.

    Attributes:
        kind: Event kind (``price_shock``, ``oracle_outage``, ...) or status (``EMERGENCY``).
        start: Start (naive UTC).
        end: End of a window, None for an instant.
        label: Text for the legend and the report.
    """

    kind: str
    start: np.datetime64
    end: np.datetime64 | None
    label: str


def _event_label(kind: str, e: Mapping[str, Any]) -> str:
    def num(key: str) -> float:
        v = e.get(key)
        return float(v) if isinstance(v, int | float) else math.nan

    pop = f" ({e['population']})" if e.get("population") else ""
    if kind == "price_shock":
        over = num("over")
        how = f" over {fmt_duration(over)}" if over > 0 else " (jump)"
        return f"price shock {num('change'):+.0%}{how}"
    if kind == "oracle_outage":
        return f"oracle outage, {fmt_duration(num('duration'))}"
    if kind == "oracle_manipulation":
        return f"oracle manipulation {num('spike'):+.0%}, {fmt_duration(num('duration'))}"
    if kind == "keeper_outage":
        return f"keeper outage{pop}, {fmt_duration(num('duration'))}"
    if kind == "liquidator_outage":
        return f"liquidator outage{pop}, {fmt_duration(num('duration'))}"
    if kind == "liquidity_withdrawal":
        return f"LPs{pop} withdraw {num('fraction'):.0%}"
    if kind == "set_governance":
        return f"governance: {e.get('key')} → {e.get('value')}"
    if kind == "begin_global_settlement":
        price = num("price")
        return "global settlement begins" + (f" at {price:,.2f} USD" if price == price else "")
    if kind == "global_settled":
        return "settlement complete"
    return kind.replace("_", " ")


def event_markers(run: RunData) -> list[Marker]:
    """The scenario's events and the EMERGENCY / SETTLED periods of a run, in time order.

    Timed windows (shocks, outages, manipulations) come from the resolved scenario; governance
    changes and settlement come from the event log when there is one (they are what actually
    happened, including an admin agent's decision), else from the scenario.
    """
    out: list[Marker] = []
    logged: set[str] = set()
    ev = run.events
    if ev is not None and not ev.empty:
        for kind in ("set_governance", "begin_global_settlement", "global_settled"):
            logged.add(kind)
            for _, r in ev[ev["kind"] == kind].iterrows():
                row = {str(k): (None if pd.isna(v) else v) for k, v in r.items()}
                t = _dt64([r["time"]])[0]
                out.append(Marker(kind, t, None, _event_label(kind, row)))
    sc = run.scenario
    start = (sc.get("clock") or {}).get("start")
    if isinstance(start, int | float):
        for e in sc.get("events") or []:
            kind = str(e.get("kind"))
            if kind in logged or not isinstance(e.get("at"), int | float):
                continue
            t0 = _unix_dt64(start + e["at"])
            span = e.get("duration") if kind != "price_shock" else e.get("over")
            t1 = (
                _unix_dt64(start + e["at"] + span)
                if isinstance(span, int | float) and span
                else None
            )
            out.append(Marker(kind, t0, t1, _event_label(kind, e)))
    out.extend(_status_spans(run))
    out.sort(key=lambda m: m.start)
    return out


def _status_spans(run: RunData) -> list[Marker]:
    status = run.timeseries["status"].astype(str).to_numpy()
    t = run.times
    out: list[Marker] = []
    labels = {"EMERGENCY": "EMERGENCY: trading halted", "SETTLED": "SETTLED: market closed"}
    for st, label in labels.items():
        mask = status == st
        if not mask.any():
            continue
        idx = np.flatnonzero(mask)
        breaks = np.flatnonzero(np.diff(idx) > 1)
        starts = np.r_[idx[0], idx[breaks + 1]]
        ends = np.r_[idx[breaks], idx[-1]]
        for a, b in zip(starts, ends, strict=True):
            end = t[b + 1] if b + 1 < len(t) else t[b]
            out.append(Marker(st, t[a], end, label))
    return out


def _draw_markers(axes: Iterable[Axes], markers: Sequence[Marker]) -> list[tuple[Artist, str]]:
    """Draw markers on every axis; return one legend entry per kind."""
    for ax in axes:
        for m in markers:
            color, ls = _EVENT_STYLE.get(m.kind, ("#555555", ":"))
            if m.end is not None and m.end > m.start:
                alpha = 0.3 if m.kind in ("EMERGENCY", "SETTLED") else 0.13
                ax.axvspan(
                    float(_dnum(m.start)[0]),
                    float(_dnum(m.end)[0]),
                    color=color,
                    alpha=alpha,
                    lw=0,
                    zorder=0,
                )
                if m.kind == "price_shock":
                    ax.axvline(float(_dnum(m.start)[0]), color=color, ls=ls, lw=1.1, zorder=1)
            else:
                ax.axvline(
                    float(_dnum(m.start)[0]), color=color, ls=ls, lw=1.2, zorder=1, alpha=0.9
                )
    entries: list[tuple[Artist, str]] = []
    by_kind: dict[str, list[Marker]] = {}
    for m in markers:
        by_kind.setdefault(m.kind, []).append(m)
    for kind, ms in by_kind.items():
        color, ls = _EVENT_STYLE.get(kind, ("#555555", ":"))
        if kind in ("EMERGENCY", "SETTLED"):
            label = ms[0].label
        elif len({m.label for m in ms}) == 1:
            label = ms[0].label + (f" (×{len(ms)})" if len(ms) > 1 else "")
        else:
            label = f"{_EVENT_NAMES.get(kind, kind)} (×{len(ms)})"
        handle: Artist
        if ms[0].end is not None and kind != "price_shock":
            alpha = 0.3 if kind in ("EMERGENCY", "SETTLED") else 0.2
            handle = Patch(facecolor=color, alpha=alpha, edgecolor="none")
        else:
            handle = Line2D([], [], color=color, ls=ls, lw=1.4)
        entries.append((handle, label))
    return entries


# ---------------------------------------------------------------------------------------------
# Figure scaffolding
# ---------------------------------------------------------------------------------------------


def _new_figure(
    nrows: int,
    ncols: int = 1,
    *,
    height: float,
    width: float = WIDTH,
    sharex: bool | str = True,
    sharey: bool | str = False,
    height_ratios: Sequence[float] | None = None,
) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    grid = fig.subplots(
        nrows,
        ncols,
        sharex=sharex,  # type: ignore[arg-type]
        sharey=sharey,  # type: ignore[arg-type]
        squeeze=False,
        gridspec_kw={"height_ratios": list(height_ratios)} if height_ratios else None,
    )
    return fig, [ax for row in grid for ax in row]


def _title(fig: Figure, run: RunData, what: str) -> None:
    t = run.times
    when = f"{fmt_time(t[0])} – {fmt_time(t[-1])}" if len(t) else ""
    fig.suptitle(f"{what} — {run.name} (seed {run.seed})")
    fig.text(
        0.5,
        1.0,
        when,
        ha="center",
        va="bottom",
        fontsize=9,
        color=COLORS["muted"],
        transform=fig.transFigure,
    )


def _subtitle_title(fig: Figure, what: str, sub: str) -> None:
    fig.suptitle(what)
    if sub:
        fig.text(
            0.5,
            1.0,
            sub,
            ha="center",
            va="bottom",
            fontsize=9,
            color=COLORS["muted"],
            transform=fig.transFigure,
        )


def _time_axes(axes: Sequence[Axes], run: RunData, markers: Sequence[Marker]) -> None:
    """Dates on the bottom axis, x limits, markers and the events legend."""
    t = run.times
    bottom = axes[-1]
    _date_ticks(bottom)
    bottom.set_xlabel("time (UTC)")
    if len(t) > 1:
        bottom.set_xlim(float(_dnum(t[0])[0]), float(_dnum(t[-1])[0]))
    entries = _draw_markers(axes, markers)
    if entries:
        fig = bottom.get_figure()
        assert isinstance(fig, Figure)
        fig.legend(
            [h for h, _ in entries],
            [lbl for _, lbl in entries],
            loc="outside lower center",
            ncols=min(3, len(entries)),
            frameon=False,
            title="scenario events and status",
            title_fontsize=9,
        )


def _legend(ax: Axes) -> None:
    """The panel's legend beside it (never over the data)."""
    handles, _labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def _no_data(ax: Axes, text: str) -> None:
    ax.text(
        0.5,
        0.5,
        text,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=12,
        color=_NO_DATA_COLOR,
        bbox={"boxstyle": "round,pad=0.6", "fc": "#f4f4f4", "ec": "#dddddd"},
    )


def _usd_axis(ax: Axes, label: str) -> None:
    ax.yaxis.set_major_formatter(_CompactFormatter())
    ax.set_ylabel(label)


def _pct_axis(ax: Axes, label: str) -> None:
    ax.yaxis.set_major_formatter(_CompactFormatter(percent=True))
    ax.set_ylabel(label)


def _save(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.15)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _step_values(
    times: TimeArray, change_times: Sequence[np.datetime64], values: Sequence[float], base: float
) -> FloatArray:
    """A parameter in force at each time, given its base value and dated changes."""
    out = np.full(len(times), float(base))
    for t, v in sorted(zip(change_times, values, strict=True), key=lambda p: p[0]):
        out[times >= t] = v
    return out


def _governance_series(run: RunData, key: str) -> FloatArray:
    base = float(governance_value(run.scenario, key))
    when: list[np.datetime64] = []
    vals: list[float] = []
    ev = run.events
    if ev is not None and not ev.empty:
        rows = ev[(ev["kind"] == "set_governance") & (ev["key"] == key)]
        for _, r in rows.iterrows():
            try:
                vals.append(float(r["value"]))
            except (TypeError, ValueError):
                continue
            when.append(_dt64([r["time"]])[0])
    else:
        start = (run.scenario.get("clock") or {}).get("start")
        for e in run.scenario.get("events") or []:
            if e.get("kind") == "set_governance" and e.get("key") == key and start is not None:
                when.append(_unix_dt64(start + e["at"]))
                vals.append(float(e["value"]))
    return _step_values(run.times, when, vals, base)


# ---------------------------------------------------------------------------------------------
# Run figures
# ---------------------------------------------------------------------------------------------


def fig_prices(run: RunData, markers: Sequence[Marker]) -> Figure:
    """Market, index, mark and fair prices; their gap to the index; the index age."""
    fig, (ax, dev, age) = _new_figure(3, height=8.2, height_ratios=(3.0, 1.6, 1.1))
    t = run.times
    market, index = run.column("market_price"), run.column("index_price")
    mark, fair = run.column("mark_price"), run.column("fair_price")
    ax.plot(t, market, color=COLORS["market"], lw=1.0, label="market (simulated spot)")
    ax.plot(t, index, color=COLORS["index"], lw=1.5, drawstyle="steps-post", label="index (oracle)")
    ax.plot(t, mark, color=COLORS["mark"], lw=1.2, label="mark (perpetual)")
    ax.plot(t, fair, color=COLORS["fair"], lw=1.0, ls="--", label="fair (AMM pool)")
    ax.set_title("Prices")
    _usd_axis(ax, "price (USD)")
    _legend(ax)

    with np.errstate(divide="ignore", invalid="ignore"):
        rel = {n: v / index - 1.0 for n, v in (("market", market), ("mark", mark), ("fair", fair))}
    limit = _governance_series(run, "mark_premium_limit")
    dev.fill_between(
        t,
        -limit,
        limit,
        step="post",
        color=COLORS["mark"],
        alpha=0.08,
        lw=0,
        label="mark-premium limit (± limit)",
    )
    dev.plot(t, rel["market"], color=COLORS["market"], lw=0.9, label="market vs index")
    dev.plot(t, rel["fair"], color=COLORS["fair"], lw=0.9, ls="--", label="fair vs index")
    dev.plot(t, rel["mark"], color=COLORS["mark"], lw=1.2, label="mark vs index")
    dev.axhline(0, color="#999999", lw=0.8)
    dev.set_title("Gap to the index")
    _pct_axis(dev, "vs index (%)")
    _legend(dev)

    age.plot(
        t,
        run.column("index_age_s") / 60.0 if "index_age_s" in run.timeseries else np.zeros(len(t)),
        color=COLORS["index"],
        lw=1.0,
        drawstyle="steps-post",
        label="age of the index",
    )
    hb = (run.scenario.get("oracle") or {}).get("heartbeat")
    if isinstance(hb, int | float) and hb > 0:
        age.axhline(
            hb / 60.0,
            color=COLORS["muted"],
            ls="--",
            lw=0.9,
            label=f"oracle heartbeat ({fmt_duration(hb)})",
        )
    age.set_ylim(bottom=0)
    age.set_title("Oracle staleness")
    age.set_ylabel("index age (min)")
    _legend(age)
    _title(fig, run, "Prices")
    _time_axes([ax, dev, age], run, markers)
    return fig


def fig_funding(run: RunData, markers: Sequence[Marker]) -> Figure:
    """Premium rate with the dampener band; funding rate in % per 8 h."""
    fig, (ax, fr) = _new_figure(2, height=6.4)
    t = run.times
    premium, funding = run.column("premium_rate"), run.column("funding_rate")
    damp = _governance_series(run, "funding_dampener")
    limit = _governance_series(run, "mark_premium_limit")
    ax.fill_between(
        t,
        -damp,
        damp,
        step="post",
        color=COLORS["band"],
        alpha=0.18,
        lw=0,
        label=f"dampener band (± {damp[0]:.3%}): no funding",
    )
    ax.plot(
        t,
        limit,
        color=COLORS["muted"],
        ls="--",
        lw=0.9,
        drawstyle="steps-post",
        label=f"mark-premium limit (± {limit[0]:.2%})",
    )
    ax.plot(t, -limit, color=COLORS["muted"], ls="--", lw=0.9, drawstyle="steps-post")
    ax.plot(t, premium, color=COLORS["mark"], lw=1.1, label="premium rate (mark vs index)")
    ax.axhline(0, color="#999999", lw=0.8)
    ax.set_title("AMM premium")
    _pct_axis(ax, "premium (% of index)")
    _legend(ax)

    fr.fill_between(
        t,
        funding,
        0,
        where=funding > 0,
        interpolate=True,
        color=COLORS["long"],
        alpha=0.25,
        lw=0,
        label="longs pay shorts",
    )
    fr.fill_between(
        t,
        funding,
        0,
        where=funding < 0,
        interpolate=True,
        color=COLORS["short"],
        alpha=0.25,
        lw=0,
        label="shorts pay longs",
    )
    fr.plot(t, funding, color="#333333", lw=1.0, label="funding rate")
    fr.axhline(0, color="#999999", lw=0.8)
    fr.set_title("Funding rate")
    _pct_axis(fr, "funding (% per 8 h)")
    sec = fr.secondary_yaxis("right", functions=(_annualise, _de_annualise))
    sec.yaxis.set_major_formatter(_CompactFormatter(percent=True))
    sec.set_ylabel("annualised (% per year)")
    fr.legend(loc="upper left", bbox_to_anchor=(1.12, 1.0), borderaxespad=0.0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.12, 1.0), borderaxespad=0.0)
    if np.nanmax(np.abs(funding)) == 0:
        fr.text(
            0.01,
            0.92,
            "no funding paid: the premium stayed inside the dampener band",
            transform=fr.transAxes,
            fontsize=9,
            color=_NO_DATA_COLOR,
            va="top",
        )
    _title(fig, run, "Premium and funding")
    _time_axes([ax, fr], run, markers)
    return fig


def fig_accumulated_funding(run: RunData, markers: Sequence[Marker]) -> Figure:
    """Accumulated funding per contract, with the totals each side paid."""
    fig, (ax,) = _new_figure(1, height=4.4)
    t = run.times
    acc = run.column("accumulated_funding_per_contract")
    ax.plot(t, acc, color="#333333", lw=1.3, label="accumulated funding per contract")
    ax.fill_between(
        t,
        acc,
        0,
        where=acc >= 0,
        interpolate=True,
        color=COLORS["long"],
        alpha=0.15,
        lw=0,
        label="net paid by longs",
    )
    ax.fill_between(
        t,
        acc,
        0,
        where=acc < 0,
        interpolate=True,
        color=COLORS["short"],
        alpha=0.15,
        lw=0,
        label="net paid by shorts",
    )
    ax.axhline(0, color="#999999", lw=0.8)
    ax.set_title("Accumulated funding (rises while longs pay shorts)")
    _usd_axis(ax, "USD per contract")
    _legend(ax)
    s = run.summary
    if "funding_paid_by_longs" in s:
        text = (
            f"funding paid by longs: {fmt_usd(s.get('funding_paid_by_longs'))}\n"
            f"funding paid by shorts: {fmt_usd(s.get('funding_paid_by_shorts'))}"
        )
        ax.text(
            1.01,
            0.02,
            text,
            transform=ax.transAxes,
            fontsize=9,
            va="bottom",
            ha="left",
            bbox={"boxstyle": "round,pad=0.4", "fc": "white", "ec": "#cccccc"},
        )
    _title(fig, run, "Accumulated funding")
    _time_axes([ax], run, markers)
    return fig


def fig_insurance_fund(run: RunData, markers: Sequence[Marker]) -> Figure:
    """Insurance fund with liquidation markers; social loss per contract; social loss, bad debt."""
    fig, (ax, sl, bd) = _new_figure(3, height=8.6, height_ratios=(2.2, 1.4, 1.4))
    t = run.times
    fund = run.column("insurance_fund")
    ax.plot(t, fund, color=COLORS["fund"], lw=1.5, drawstyle="steps-post", label="insurance fund")
    ax.axhline(
        fund[0],
        color=COLORS["muted"],
        ls="--",
        lw=0.9,
        label=f"initial ({fmt_number(fund[0])} USD)",
    )
    liq = run.liquidations()
    if not liq.empty:
        lt = _dt64(liq["time"])
        y = np.interp(_dnum(lt), _dnum(t), fund)
        paid = (
            np.asarray(
                liq.get("insurance_fund_paid", pd.Series(0.0, index=liq.index)), dtype=np.float64
            )
            > 0
        )
        if (~paid).any():
            ax.plot(
                lt[~paid],
                y[~paid],
                ls="none",
                marker="|",
                ms=9,
                color=COLORS["muted"],
                alpha=0.6,
                label=f"liquidation ({int((~paid).sum())})",
            )
        if paid.any():
            ax.plot(
                lt[paid],
                y[paid],
                ls="none",
                marker="v",
                ms=6,
                color="#C00000",
                label=f"liquidation the fund paid for ({int(paid.sum())})",
            )
    elif int(np.nansum(run.column("liquidations"))) == 0:
        ax.text(
            0.01,
            0.05,
            "no liquidations in this run",
            transform=ax.transAxes,
            fontsize=9,
            color=_NO_DATA_COLOR,
        )
    i_min = int(np.nanargmin(fund))
    if fund[i_min] < fund[0]:
        ax.annotate(
            f"min {fmt_number(fund[i_min])} USD\n{fmt_time(t[i_min])}",
            xy=(float(_dnum(t[i_min])[0]), fund[i_min]),
            xytext=(12, 14),
            textcoords="offset points",
            fontsize=8.5,
            arrowprops={"arrowstyle": "-", "color": "#888888"},
        )
    if fund[i_min] < fund[0]:  # it drew down: show how far it is from exhaustion
        ax.set_ylim(bottom=min(0.0, float(fund[i_min])))
    ax.set_title(
        "Insurance fund" + ("" if fund[i_min] < fund[0] else " (never below its starting level)")
    )
    _usd_axis(ax, "insurance fund (USD)")
    _legend(ax)

    slong = run.column("mcdex_v1_social_loss_per_contract_long")
    sshort = run.column("mcdex_v1_social_loss_per_contract_short")
    sl.plot(t, slong, color=COLORS["long"], drawstyle="steps-post", label="charged to longs")
    sl.plot(
        t, sshort, color=COLORS["short"], drawstyle="steps-post", ls="--", label="charged to shorts"
    )
    if np.nanmax(np.abs(np.r_[slong, sshort])) == 0:
        _no_data(sl, "no social loss in this run")
        sl.set_ylim(-1, 1)
    sl.set_title("Social loss per contract")
    _usd_axis(sl, "USD per contract")
    _legend(sl)

    social, bad = run.column("social_loss_total"), run.column("bad_debt")
    bd.plot(
        t,
        social,
        color=COLORS["social"],
        drawstyle="steps-post",
        label="socialised loss (cumulative)",
    )
    bd.plot(
        t,
        bad,
        color=COLORS["bad_debt"],
        drawstyle="steps-post",
        ls="--",
        label="bad debt (unrecoverable)",
    )
    if np.nanmax(np.abs(np.r_[social, bad])) == 0:
        _no_data(bd, "no socialised loss and no bad debt in this run")
        bd.set_ylim(-1, 1)
    bd.set_title("Losses beyond the insurance fund")
    _usd_axis(bd, "USD")
    _legend(bd)
    _title(fig, run, "Insurance fund and losses")
    _time_axes([ax, sl, bd], run, markers)
    return fig


def fig_pool(run: RunData, markers: Sequence[Marker]) -> Figure:
    """Open interest and pool position; pool margin and cash; LP share price."""
    fig, (oi, mg, lp) = _new_figure(3, height=8.0)
    t = run.times
    oi.plot(
        t, run.column("open_interest"), color=COLORS["oi"], label="open interest (long = short)"
    )
    oi.plot(
        t,
        run.column("mcdex_v1_pool_position_size"),
        color=COLORS["pool"],
        ls="--",
        label="pool's long position",
    )
    oi.set_ylim(bottom=0)
    oi.set_title("Open interest and the pool's position")
    oi.yaxis.set_major_formatter(_CompactFormatter())
    oi.set_ylabel("contracts")
    _legend(oi)

    mg.plot(
        t,
        run.column("mcdex_v1_pool_available_margin"),
        color=COLORS["pool"],
        label="pool available margin",
    )
    mg.plot(
        t,
        run.column("mcdex_v1_pool_cash_balance"),
        color=COLORS["muted"],
        ls="--",
        lw=1.0,
        label="pool cash balance",
    )
    mg.set_title("Pool margin")
    _usd_axis(mg, "USD")
    _legend(mg)

    share = run.column("lp_share_price")
    redeemed = np.zeros(len(share), dtype=bool)
    if "lp_share_supply" in run.timeseries:
        redeemed = ~(run.column("lp_share_supply") > 0)
        share = np.where(redeemed, np.nan, share)
    lp.plot(t, share, color=COLORS["lp"], lw=1.5, label="LP share price")
    valid = share[np.isfinite(share)]
    if valid.size and valid[0] > 0:
        lp.axhline(valid[0], color=COLORS["muted"], ls="--", lw=0.9, label="at the start")
        note = f"share price change: {valid[-1] / valid[0] - 1.0:+.2%}"
        if redeemed[-1]:
            note += "\n(to the last price before\nall shares were redeemed)"
        lp.text(
            1.01,
            0.02,
            note,
            transform=lp.transAxes,
            fontsize=9,
            va="bottom",
            bbox={"boxstyle": "round,pad=0.4", "fc": "white", "ec": "#cccccc"},
        )
    lp.set_title("LP share price")
    _usd_axis(lp, "USD per share")
    _legend(lp)
    _title(fig, run, "Open interest and the AMM pool")
    _time_axes([oi, mg, lp], run, markers)
    return fig


_BINS: Final = (
    (60, "minute"),
    (300, "5 minutes"),
    (600, "10 minutes"),
    (900, "15 minutes"),
    (1800, "30 minutes"),
    (3600, "hour"),
    (7200, "2 hours"),
    (21600, "6 hours"),
    (43200, "12 hours"),
    (86400, "day"),
    (604800, "week"),
)


def _bin_size(span_s: float, min_s: float) -> tuple[int, str]:
    for size, name in _BINS:
        if size >= min_s and span_s / size <= 150:
            return size, name
    return _BINS[-1]


def _binned(times: TimeArray, weights: FloatArray, edges: npt.NDArray[np.int64]) -> FloatArray:
    secs = times.astype("datetime64[s]").astype(np.int64)
    counts, _ = np.histogram(secs, bins=edges, weights=weights)
    return np.asarray(counts, dtype=np.float64)


def fig_liquidations(run: RunData, markers: Sequence[Marker]) -> Figure:
    """Liquidations and contracts per bin by side, who absorbed the losses; unsafe accounts."""
    t = run.times
    liq = run.liquidations()
    counts_ts = run.column("liquidations")
    has_liq = not liq.empty or np.nansum(counts_ts) > 0
    if has_liq:
        fig, axes = _new_figure(4, height=9.6, height_ratios=(1.3, 1.3, 1.3, 1.1))
    else:
        fig, axes = _new_figure(2, height=5.2, height_ratios=(1.0, 1.3))
    secs = t.astype("datetime64[s]").astype(np.int64)
    step = float(np.median(np.diff(secs))) if len(secs) > 1 else 60.0
    span = float(secs[-1] - secs[0]) if len(secs) > 1 else step
    size, name = _bin_size(span, step)
    first = int(secs[0] // size * size)
    edges = np.arange(first, int(secs[-1]) + 2 * size, size, dtype=np.int64)
    centers = _dnum(((edges[:-1] + size / 2.0) * 1e9).astype("datetime64[ns]"))
    width = size / 86400.0 * 0.9

    if has_liq:
        ax_n, ax_v, ax_l, ax_u = axes
        if not liq.empty:
            lt = _dt64(liq["time"])
            side = liq["side"].astype(str).to_numpy()
            amount = np.asarray(liq["amount"], dtype=np.float64)
            ones = np.ones(len(liq))
            bottom_n = np.zeros(len(centers))
            bottom_v = np.zeros(len(centers))
            for s, label in (("long", "long positions"), ("short", "short positions")):
                m = side == s
                n = _binned(lt[m], ones[m], edges)
                v = _binned(lt[m], amount[m], edges)
                ax_n.bar(centers, n, width, bottom=bottom_n, color=COLORS[s], label=label)
                ax_v.bar(centers, v, width, bottom=bottom_v, color=COLORS[s], label=label)
                bottom_n += n
                bottom_v += v
            bottom_l = np.zeros(len(centers))
            parts = (
                ("insurance_fund_paid", "paid by the insurance fund", COLORS["fund"]),
                ("social_loss", "socialised to the other side", COLORS["social"]),
                ("bad_debt", "bad debt", COLORS["bad_debt"]),
            )
            total_loss = 0.0
            for col, label, color in parts:
                w = (
                    np.nan_to_num(np.asarray(liq[col], dtype=np.float64))
                    if col in liq
                    else ones * 0
                )
                total_loss += float(w.sum())
                b = _binned(lt, w, edges)
                ax_l.bar(centers, b, width, bottom=bottom_l, color=color, label=label)
                bottom_l += b
            if total_loss == 0:
                _no_data(ax_l, "no liquidation loss: the liquidated accounts covered their own")
                ax_l.set_ylim(0, 1)
                ax_l.set_yticks([0])
        else:  # no event log: the time series' counts since the previous row
            ax_n.bar(
                centers,
                _binned(t, np.nan_to_num(counts_ts), edges),
                width,
                color=COLORS["muted"],
                label="liquidations",
            )
            ax_v.bar(
                centers,
                _binned(t, np.nan_to_num(run.column("liquidation_volume")), edges),
                width,
                color=COLORS["muted"],
                label="contracts",
            )
            _no_data(ax_l, "no event log: losses per liquidation unknown")
        ax_n.set_title(f"Liquidations per {name}")
        ax_n.set_ylabel("liquidations")
        ax_n.yaxis.set_major_locator(mticker.MaxNLocator(integer=True))
        ax_v.set_title(f"Contracts liquidated per {name}")
        ax_v.yaxis.set_major_formatter(_CompactFormatter())
        ax_v.set_ylabel("contracts")
        ax_l.set_title(f"Liquidation losses per {name}, by who absorbed them")
        _usd_axis(ax_l, "USD")
        for a in (ax_n, ax_v, ax_l):
            a.set_ylim(bottom=0)
            _legend(a)
    else:
        ax_n, ax_u = axes
        _no_data(ax_n, "no liquidations in this run")
        ax_n.set_yticks([])
        ax_n.set_title(f"Liquidations per {name}")
        ax_n.grid(False)

    ax_u.plot(
        t,
        run.column("unsafe_accounts"),
        color=COLORS["mark"],
        drawstyle="steps-post",
        label="under maintenance margin",
    )
    ax_u.plot(
        t,
        run.column("bankrupt_accounts"),
        color=COLORS["bad_debt"],
        ls="--",
        drawstyle="steps-post",
        label="bankrupt (margin balance < 0)",
    )
    top = float(np.nanmax(np.r_[run.column("unsafe_accounts"), 0.0]))
    ax_u.set_ylim(0, max(top * 1.15, 1.0))
    ax_u.yaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    if top == 0:
        ax_u.text(
            0.01,
            0.9,
            "no account was under maintenance margin at a recorded tick",
            transform=ax_u.transAxes,
            fontsize=9,
            color=_NO_DATA_COLOR,
            va="top",
        )
    ax_u.set_title("Unsafe accounts (at recorded ticks)")
    ax_u.set_ylabel("accounts")
    _legend(ax_u)
    _title(fig, run, "Liquidations")
    _time_axes(axes, run, markers)
    return fig


def fig_trader_pnl(run: RunData) -> Figure:
    """Histogram of trader PnL (USD) and return on deposits, stacked by agent type."""
    acc = run.accounts
    traders = (
        acc[acc["agent_type"].astype(str).isin(TRADER_TYPES)]
        if acc is not None and "agent_type" in acc.columns
        else pd.DataFrame()
    )
    if traders.empty:
        fig, (ax,) = _new_figure(1, height=3.6, sharex=False)
        if acc is None:
            why = "no accounts table in this run folder\n(the run kept only its time series)"
        else:
            why = (
                "no trader accounts in this run\n(noise or momentum traders, whales, arbitrageurs)"
            )
        _no_data(ax, why)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        ax.set_title("Trader PnL")
        _subtitle_title(fig, f"Trader PnL — {run.name} (seed {run.seed})", "")
        return fig
    fig, (ax, ar) = _new_figure(1, 2, height=4.8, sharex=False)
    pnl = np.asarray(traders["pnl"], dtype=np.float64)
    dep = np.asarray(traders["deposits"], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = np.where(dep > 0, pnl / dep, np.nan)
    kinds = [k for k in TRADER_TYPES if (traders["agent_type"] == k).any()]
    palette = dict(zip(TRADER_TYPES, ("#56B4E9", "#E69F00", "#CC79A7", "#009E73"), strict=True))
    kind_arr = traders["agent_type"].astype(str).to_numpy()
    for axis, values, xlabel, pct in (
        (ax, pnl, "PnL (USD)", False),
        (ar, ret, "return on deposits (%)", True),
    ):
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            _no_data(axis, "no deposits recorded")
            continue
        lo, hi = (
            np.percentile(finite, [1, 99]) if finite.size > 20 else (np.min(finite), np.max(finite))
        )
        if hi <= lo:
            lo, hi = lo - 1.0, hi + 1.0
        bins = [float(b) for b in np.linspace(lo, hi, 41)]
        data = [np.clip(values[(kind_arr == k) & np.isfinite(values)], lo, hi) for k in kinds]
        axis.hist(
            data,
            bins=bins,
            stacked=True,
            color=[palette[k] for k in kinds],
            label=[k.replace("_", " ") for k in kinds],
            edgecolor="white",
            linewidth=0.3,
        )
        for q, ls in ((5, ":"), (50, "--"), (95, "-.")):
            v = float(np.percentile(finite, q))
            text = f"{v:.0%}".replace("-", "−") if pct else fmt_usd(v)
            axis.axvline(v, color="#333333", ls=ls, lw=1.1, label=f"p{q}: {text}")
        axis.axvline(0, color="#999999", lw=0.8)
        axis.xaxis.set_major_formatter(_CompactFormatter(percent=pct))
        axis.set_xlabel(xlabel + (" — edge bins include the 1% tails" if finite.size > 20 else ""))
        axis.set_ylabel("traders")
        axis.yaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    ax.set_title("PnL")
    ar.set_title("Return on deposits")
    _legend(ax)
    _legend(ar)
    lost = float(np.mean(pnl < 0))
    _subtitle_title(
        fig,
        f"Trader PnL — {run.name} (seed {run.seed})",
        f"{len(pnl)} trader accounts; {lost:.0%} lost money; median {fmt_usd(np.median(pnl))}",
    )
    return fig


def run_figures(run: RunData) -> list[tuple[FigureInfo, Figure]]:
    """Every figure of a run, in :data:`RUN_FIGURES` order (not yet saved)."""
    markers = event_markers(run)
    makers: dict[str, Callable[[], Figure]] = {
        "prices.png": lambda: fig_prices(run, markers),
        "funding.png": lambda: fig_funding(run, markers),
        "accumulated_funding.png": lambda: fig_accumulated_funding(run, markers),
        "insurance_fund.png": lambda: fig_insurance_fund(run, markers),
        "pool.png": lambda: fig_pool(run, markers),
        "liquidations.png": lambda: fig_liquidations(run, markers),
        "trader_pnl.png": lambda: fig_trader_pnl(run),
    }
    out = []
    with _style():
        for info in RUN_FIGURES:
            out.append((info, makers[info.file]()))
    return out


def plot_run(run_dir: Path) -> list[Path]:
    """Draw every figure of a run into ``<run_dir>/plots/``; return the PNG paths.

    Raises:
        ConfigError: ``run_dir`` is not a readable run folder.
    """
    run = load_run(Path(run_dir))
    out_dir = run.path / "plots"
    written = []
    with _style():
        for info, fig in run_figures(run):
            written.append(_save(fig, out_dir / info.file))
    return written


# ---------------------------------------------------------------------------------------------
# Sweeps
# ---------------------------------------------------------------------------------------------

#: Aggregate statistics a sweep computes per point besides the per-metric quantiles.
TAIL_STATS: Final = (
    "var95_bad_debt",
    "cvar95_bad_debt",
    "var95_insurance_fund_drawdown",
    "cvar95_insurance_fund_drawdown",
    "p_insurance_fund_exhausted",
    "lar95",
)

_USD_METRICS: Final = frozenset(
    {
        "insurance_fund_initial",
        "insurance_fund_min",
        "insurance_fund_final",
        "insurance_fund_drawdown",
        "social_loss_total",
        "bad_debt",
        "liquidated_value",
        "liquidation_loss_total",
        "insurance_fund_paid_total",
        "funding_paid_by_longs",
        "funding_paid_by_shorts",
        "trader_pnl_p5",
        "trader_pnl_p50",
        "trader_pnl_p95",
        "trader_pnl_mean",
        "final_mark_price",
        "min_market_price",
        "max_market_price",
        "loss_beyond_fund",
        "lar95",
    }
)
_CONTRACT_METRICS: Final = frozenset({"liquidation_volume", "volume"})
_BOOL_METRICS: Final = frozenset({"insurance_fund_exhausted", "settled"})


def metric_unit(name: str) -> str:
    """The unit of a summary metric or sweep statistic, for axis labels."""
    base = name
    for prefix in ("var95_", "cvar95_", "p_"):
        if base.startswith(prefix):
            if prefix == "p_":
                return "probability"
            base = base[len(prefix) :]
    for suffix in ("_mean", "_median", "_p5", "_p95"):
        if base.endswith(suffix) and base[: -len(suffix)] in SUMMARY_METRICS:
            base = base[: -len(suffix)]
    if base in _USD_METRICS:
        return "USD"
    if base in _CONTRACT_METRICS:
        return "contracts"
    if base in _BOOL_METRICS:
        return "share of runs"
    if base == "lp_return":
        return "%"
    if base.endswith("_s"):
        return "hours"
    return "count"


def metric_label(name: str) -> str:
    """``insurance fund drawdown (USD)``, ``VaR95 of bad debt (USD)``, ..."""
    special = {
        "lar95": "LaR95: 95th pct of liquidated value",
        "p_insurance_fund_exhausted": "P(insurance fund exhausted)",
    }
    if name in special:
        text = special[name]
    else:
        text = name
        for prefix, words in (("var95_", "VaR95 of "), ("cvar95_", "CVaR95 of ")):
            if text.startswith(prefix):
                text = words + text[len(prefix) :]
        if text.endswith("_s"):
            text = text[:-2]
        text = text.replace("_", " ")
    return f"{text} ({metric_unit(name)})"


def _floats(values: Any) -> FloatArray:
    """Numbers, booleans (as 0/1) or missing values as a float array (NaN where missing)."""
    s = pd.Series(values)
    try:
        return np.asarray(s.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan))
    except (TypeError, ValueError):
        return np.asarray(pd.to_numeric(s, errors="coerce"), dtype=np.float64)


def _metric_values(name: str, values: Any) -> FloatArray:
    v = _floats(values)
    return v / 3600.0 if metric_unit(name) == "hours" else v


def _metric_formatter(name: str) -> mticker.Formatter:
    unit = metric_unit(name)
    return _CompactFormatter(percent=unit in ("%", "probability", "share of runs"))


@dataclass
class SweepData:
    """The outputs of a sweep, read from its folder.

    Attributes:
        path: The sweep folder.
        results: One row per run (``point_id``, ``seed_index``, ``seed``, the parameters, every
            summary metric, ``status``, ...).
        aggregate: One row per point (read, or computed from ``results``).
        params: The varied parameters (dotted keys), in order.
        manifest: The sweep's manifest / sweep.yaml (empty if none).
    """

    path: Path
    results: pd.DataFrame
    aggregate: pd.DataFrame
    params: list[str]
    manifest: dict[str, Any]

    @property
    def ok(self) -> pd.DataFrame:
        """The runs that finished."""
        if "status" not in self.results.columns:
            return self.results
        return self.results[self.results["status"].astype(str) == "ok"]

    def short(self, key: str) -> str:
        """A parameter's short name (its last dotted part, or two if that is ambiguous)."""
        last = key.rsplit(".", 1)[-1]
        if sum(1 for p in self.params if p.rsplit(".", 1)[-1] == last) > 1:
            return ".".join(key.split(".")[-2:])
        return last

    def point_label(self, point_id: Any, sep: str = ", ") -> str:
        """``maintenance_margin_rate=0.05, initial_margin_rate=0.1``."""
        rows = self.aggregate[self.aggregate["point_id"].astype(str) == str(point_id)]
        if rows.empty or not self.params:
            return str(point_id)
        r = rows.iloc[0]
        return sep.join(f"{self.short(k)}={_fmt_param(r[k])}" for k in self.params)

    @property
    def name(self) -> str:
        """The sweep's name (manifest, else the folder's name)."""
        for key in ("name", "sweep", "scenario"):
            v = self.manifest.get(key)
            if isinstance(v, str) and v:
                return v
        return self.path.name

    @property
    def metric(self) -> str:
        """The sweep's own metric (``spec.metric`` of its manifest), else the fund drawdown."""
        spec = self.manifest.get("spec")
        m = spec.get("metric") if isinstance(spec, dict) else None
        return m if isinstance(m, str) and m else "insurance_fund_drawdown"

    def run_dir(self, point_id: Any, seed_index: Any) -> Path | None:
        """The kept run folder of one run (``runs/<point>-<seed index>``), if any."""
        r = self.results
        if "run_dir" in r.columns:
            sel = r[
                (r["point_id"].astype(str) == str(point_id))
                & (r["seed_index"].astype(str) == str(seed_index))
            ]["run_dir"].dropna()
            if len(sel):
                p = self.path / str(sel.iloc[0])
                return p if p.is_dir() else None
        for name in (f"{int(point_id):05d}-{int(seed_index):03d}", f"{point_id}-{seed_index}"):
            p = self.path / "runs" / name
            if p.is_dir():
                return p
        return None


def _sweep_manifest(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for name in ("sweep.yaml", "sweep.yml"):
        f = path / name
        if f.is_file():
            try:
                loaded = yaml.safe_load(f.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError) as exc:
                raise ConfigError(f"{f}: cannot read: {exc}") from None
            if isinstance(loaded, dict):
                doc.update(loaded)
    for name in ("manifest.json", "sweep.json"):
        doc.update(_read_json(path / name))  # perpsim sweep writes sweep.json
    return doc


def _aggregate(results: pd.DataFrame, params: Sequence[str]) -> pd.DataFrame:
    """Per-point statistics as the sweep writes them (for folders without aggregate.parquet)."""
    ok = results[results["status"].astype(str) == "ok"] if "status" in results else results
    rows = []
    for pid, group in results.groupby("point_id", sort=False):
        g = ok[ok["point_id"] == pid]
        row: dict[str, Any] = {"point_id": pid}
        for k in params:
            row[k] = group[k].iloc[0]
        row["n_runs"] = len(group)
        row["n_failed"] = len(group) - len(g)
        for m in SUMMARY_METRICS:
            if m not in g:
                continue
            v = _floats(g[m])
            v = v[np.isfinite(v)]
            row[f"{m}_mean"] = float(v.mean()) if v.size else math.nan
            row[f"{m}_median"] = float(np.median(v)) if v.size else math.nan
            row[f"{m}_p5"] = float(np.percentile(v, 5)) if v.size else math.nan
            row[f"{m}_p95"] = float(np.percentile(v, 95)) if v.size else math.nan
        for m in ("bad_debt", "insurance_fund_drawdown"):
            if m in g:
                row[f"var95_{m}"] = var(_floats(g[m]))
                row[f"cvar95_{m}"] = cvar(_floats(g[m]))
        if "liquidated_value" in g:
            lv = _floats(g["liquidated_value"])
            lv = lv[np.isfinite(lv)]
            row["lar95"] = float(np.quantile(lv, 0.95)) if lv.size else math.nan
        if "insurance_fund_exhausted" in g:
            ex = _floats(g["insurance_fund_exhausted"])
            ex = ex[np.isfinite(ex)]
            row["p_insurance_fund_exhausted"] = float(ex.mean()) if ex.size else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def load_sweep(path: Path) -> SweepData:
    """Read a sweep folder.

    Raises:
        ConfigError: the folder has no readable ``results`` table or no ``point_id`` column.
    """
    p = Path(path)
    if not p.is_dir():
        raise ConfigError(f"{p}: no such folder" if not p.exists() else f"{p}: not a folder")
    results = _read_table(p, "results")
    if results is None:
        raise ConfigError(f"{p}: no results.parquet or results.csv — not a sweep folder")
    if "point_id" not in results.columns:
        raise ConfigError(f"{p}: the results table has no point_id column")
    if results.empty:
        raise ConfigError(f"{p}: the results table has no rows")
    manifest = _sweep_manifest(p)
    listed = manifest.get("parameters")
    if isinstance(listed, list) and listed and all(k in results.columns for k in listed):
        params = [str(k) for k in listed]
    else:
        params = [c for c in results.columns if "." in c and c not in SUMMARY_METRICS]
    aggregate = _read_table(p, "aggregate")
    if aggregate is None or "point_id" not in aggregate.columns:
        aggregate = _aggregate(results, params)
    for k in params:
        if k not in aggregate.columns:
            first = results.groupby("point_id", sort=False)[k].first()
            aggregate[k] = aggregate["point_id"].map(first)
    return SweepData(p, results, aggregate, params, manifest)


def _per_run_metric(sweep: SweepData, metric: str) -> bool:
    return metric in sweep.results.columns or metric == "loss_beyond_fund"


def _run_values(sweep: SweepData, frame: pd.DataFrame, metric: str) -> FloatArray:
    if metric == "loss_beyond_fund":
        return _metric_values("social_loss_total", frame["social_loss_total"]) + _metric_values(
            "bad_debt", frame["bad_debt"]
        )
    return _metric_values(metric, frame[metric])


def _check_metric(sweep: SweepData, metric: str) -> None:
    if _per_run_metric(sweep, metric) or metric in sweep.aggregate.columns:
        return
    choices = [m for m in SUMMARY_METRICS if m in sweep.results.columns]
    choices += [s for s in TAIL_STATS if s in sweep.aggregate.columns]
    raise ConfigError(
        f"{sweep.path}: unknown metric {metric!r}; choose one of: {', '.join(choices)}"
    )


def _axes_params(sweep: SweepData, x: str | None, y: str | None) -> tuple[str | None, str | None]:
    for key, flag in ((x, "--x"), (y, "--y")):
        if key is not None and key not in sweep.params:
            varied = ", ".join(sweep.params) if sweep.params else "none"
            raise ConfigError(
                f"{sweep.path}: {flag} {key!r} is not a varied parameter (varied: {varied})"
            )
    if x is None and sweep.params:  # capital efficiency first: the margin rates
        ranked = sorted(
            (p for p in sweep.params if p != y),
            key=lambda p: (
                not p.endswith("initial_margin_rate"),
                not p.endswith("maintenance_margin_rate"),
            ),
        )
        x = ranked[0] if ranked else None
    if y is None:
        y = next((p for p in sweep.params if p != x), None)
    if x is not None and x == y:
        raise ConfigError(f"{sweep.path}: --x and --y must be different parameters")
    return x, y


def _sorted_values(values: Iterable[Any]) -> list[Any]:
    uniq = list(dict.fromkeys(v for v in values if not (isinstance(v, float) and math.isnan(v))))
    try:
        return sorted(uniq)
    except TypeError:
        return uniq


def _is_numeric(values: Sequence[Any]) -> bool:
    return all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
        for v in values
    )


def _sweep_subtitle(sweep: SweepData) -> str:
    n_points = sweep.aggregate["point_id"].nunique()
    n_runs = len(sweep.results)
    n_ok = len(sweep.ok)
    failed = f", {n_runs - n_ok} failed" if n_ok < n_runs else ""
    return f"{n_points} parameter points, {n_runs} runs{failed}"


def fig_sweep_heatmap(sweep: SweepData, metric: str, x: str, y: str) -> Figure:
    """The metric over two parameters: mean and 95th percentile over seeds."""
    xs = _sorted_values(sweep.aggregate[x])
    ys = _sorted_values(sweep.aggregate[y])
    per_run = _per_run_metric(sweep, metric)
    bool_metric = metric_unit(metric) == "share of runs"
    panels: list[tuple[str, Callable[[FloatArray], float]]]
    if per_run and not bool_metric:
        panels = [
            ("mean over seeds", lambda v: float(np.mean(v))),
            ("95th percentile over seeds (VaR95)", lambda v: float(np.quantile(v, 0.95))),
        ]
    elif per_run:
        panels = [("share of runs", lambda v: float(np.mean(v)))]
    else:
        panels = [("per point", lambda v: float(np.mean(v)))]
    cell_w = max(0.9, min(1.6, 8.0 / max(len(xs), 1)))
    width = min(18.0, max(6.0, len(panels) * (len(xs) * cell_w + 2.5)))
    height = max(3.6, min(12.0, len(ys) * 0.6 + 2.2))
    fig, axes = _new_figure(1, len(panels), height=height, width=width, sharex=False)
    others = [p for p in sweep.params if p not in (x, y)]
    for ax, (title, stat) in zip(axes, panels, strict=True):
        grid = np.full((len(ys), len(xs)), np.nan)
        for i, yv in enumerate(ys):
            for j, xv in enumerate(xs):
                if per_run:
                    f = sweep.ok
                    vals = _run_values(sweep, f[(f[x] == xv) & (f[y] == yv)], metric)
                else:
                    a = sweep.aggregate
                    vals = _metric_values(metric, a[(a[x] == xv) & (a[y] == yv)][metric])
                vals = vals[np.isfinite(vals)]
                if vals.size:
                    grid[i, j] = stat(vals)
        if not np.isfinite(grid).any():
            _no_data(ax, f"no finished runs with {metric}")
            continue
        cmap = matplotlib.colormaps["YlOrRd"]
        lo, hi = float(np.nanmin(grid)), float(np.nanmax(grid))
        if lo >= 0:  # losses, counts, probabilities: 0 is the palest colour
            lo = 0.0
        if hi <= lo:
            hi = lo + (abs(lo) if lo else 1.0)
            title += " — the same at every point"
        im = ax.imshow(grid, cmap=cmap, aspect="auto", origin="lower", vmin=lo, vmax=hi)
        pct = metric_unit(metric) in ("%", "probability", "share of runs")
        for k, value in enumerate(grid.ravel()):
            i, j = divmod(k, len(xs))
            text = f"{value:.0%}" if pct and np.isfinite(value) else fmt_number(value)
            frac = 0.0 if hi == lo else (grid[i, j] - lo) / (hi - lo)
            color = "white" if np.isfinite(frac) and frac > 0.6 else "#222222"
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color=color)
        ax.set_xticks(range(len(xs)), [_fmt_param(v) for v in xs])
        ax.set_yticks(range(len(ys)), [_fmt_param(v) for v in ys])
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.grid(False)
        ax.set_title(title)
        cb = fig.colorbar(im, ax=ax, shrink=0.9)
        cb.ax.yaxis.set_major_formatter(_metric_formatter(metric))
        cb.set_label(metric_label(metric))
    note = f"; pooled over {', '.join(others)}" if others else ""
    _subtitle_title(
        fig, f"{metric_label(metric)} — sweep {sweep.name}", _sweep_subtitle(sweep) + note
    )
    return fig


def _positions(values: Sequence[Any], xs: Sequence[Any]) -> FloatArray:
    if _is_numeric(xs):
        return np.asarray([float(v) for v in values], dtype=np.float64)
    index = {v: i for i, v in enumerate(xs)}
    return np.asarray([index[v] for v in values], dtype=np.float64)


def fig_sweep_metric(sweep: SweepData, metric: str, x: str, y: str | None) -> Figure:
    """The metric against one parameter with p5–p95 seed bands, one line per y value."""
    fig, (ax,) = _new_figure(1, height=5.0, sharex=False)
    xs = _sorted_values(sweep.aggregate[x])
    groups: list[tuple[str, Any]] = [("all", None)]
    if y is not None:
        yv = _sorted_values(sweep.aggregate[y])
        if len(yv) <= 8:
            groups = [(f"{sweep.short(y)} = {_fmt_param(v)}", v) for v in yv]
    cmap = matplotlib.colormaps["viridis"]
    per_run = _per_run_metric(sweep, metric)
    for g, (label, yval) in enumerate(groups):
        color = cmap(g / max(len(groups) - 1, 1) * 0.85) if len(groups) > 1 else COLORS["index"]
        med, p5, p95, present = [], [], [], []
        for xv in xs:
            frame = sweep.ok if per_run else sweep.aggregate
            sel = frame[frame[x] == xv]
            if yval is not None:
                sel = sel[sel[y] == yval]
            vals = (
                _run_values(sweep, sel, metric) if per_run else _metric_values(metric, sel[metric])
            )
            vals = vals[np.isfinite(vals)]
            if not vals.size:
                continue
            present.append(xv)
            med.append(float(np.median(vals)) if per_run else float(np.mean(vals)))
            p5.append(float(np.percentile(vals, 5)))
            p95.append(float(np.percentile(vals, 95)))
        if not present:
            continue
        pos = _positions(present, xs)
        ax.plot(pos, med, color=color, marker="o", ms=5, label=label)
        if per_run:
            ax.fill_between(pos, p5, p95, color=color, alpha=0.18, lw=0)
    if per_run:
        ax.fill_between([], [], [], color="#888888", alpha=0.25, label="5th–95th pct over seeds")
    if not ax.lines:
        _no_data(ax, f"no finished runs with {metric}")
    elif all(np.nanmax(np.abs(np.asarray(ln.get_ydata(), dtype=float))) == 0 for ln in ax.lines):
        ax.set_ylim(-0.05, 1.0)
        ax.set_yticks([0])
        _no_data(ax, "zero at every point and seed")
    if not _is_numeric(xs):
        ax.set_xticks(range(len(xs)), [_fmt_param(v) for v in xs])
    elif len(xs) <= 12:
        ax.set_xticks([float(v) for v in xs], [_fmt_param(v) for v in xs])
    ax.set_xlabel(x)
    ax.yaxis.set_major_formatter(_metric_formatter(metric))
    ax.set_ylabel(metric_label(metric))
    stat = "median over seeds" if per_run else "value per point"
    ax.set_title(f"{metric.replace('_', ' ')} against {sweep.short(x)} ({stat})")
    _legend(ax)
    _subtitle_title(fig, f"{metric_label(metric)} — sweep {sweep.name}", _sweep_subtitle(sweep))
    return fig


def fig_sweep_losses(sweep: SweepData) -> Figure:
    """Per point: distribution over seeds of the insurance-fund drawdown and the loss beyond it."""
    agg = sweep.aggregate
    pids = list(agg["point_id"])
    shown = pids[:60]
    height = max(3.8, min(24.0, 0.34 * len(shown) + 2.2))
    fig, (a1, a2) = _new_figure(1, 2, height=height, sharex=False, sharey=True)
    labels = [sweep.point_label(p) for p in shown]
    ok = sweep.ok
    for ax, metric, title, color in (
        (a1, "insurance_fund_drawdown", "Insurance-fund drawdown", COLORS["fund"]),
        (a2, "loss_beyond_fund", "Loss beyond the fund (socialised + bad debt)", COLORS["social"]),
    ):
        data = []
        for pid in shown:
            sel = ok[ok["point_id"] == pid]
            v = _run_values(sweep, sel, metric) if len(sel) else np.empty(0)
            data.append(v[np.isfinite(v)])
        pos = np.arange(len(shown))
        nonempty = [i for i, d in enumerate(data) if d.size]
        if nonempty:
            ax.boxplot(
                [data[i] for i in nonempty],
                positions=pos[nonempty],
                orientation="horizontal",
                whis=(5, 95),
                widths=0.6,
                showfliers=False,
                patch_artist=True,
                boxprops={"facecolor": (*to_rgb(color), 0.25), "edgecolor": color},
                medianprops={"color": color, "lw": 1.6},
                whiskerprops={"color": color},
                capprops={"color": color},
            )
            rng = np.random.default_rng(0)
            for i in nonempty:
                jitter = rng.uniform(-0.18, 0.18, data[i].size)
                ax.plot(
                    data[i], i + jitter, ls="none", marker="o", ms=2.5, color="#333333", alpha=0.45
                )
                ax.plot(
                    [var(data[i])],
                    [i],
                    ls="none",
                    marker="D",
                    ms=6,
                    color="#C00000",
                    label="VaR95" if i == nonempty[0] else None,
                )
            if all(float(np.max(np.abs(d))) == 0 for d in data if d.size):
                ax.set_xlim(-0.05, 1.0)
                ax.set_xticks([0])
                _no_data(ax, "zero in every run")
        else:
            _no_data(ax, "no finished runs")
        ax.set_title(title)
        ax.xaxis.set_major_formatter(_CompactFormatter())
        ax.set_xlabel("USD per run")
        ax.set_xlim(left=min(0.0, ax.get_xlim()[0]))
    a1.set_yticks(range(len(shown)), labels)
    a1.invert_yaxis()
    a1.set_ylabel("parameter point")
    _legend(a2)
    more = f" (first 60 of {len(pids)} points)" if len(pids) > len(shown) else ""
    _subtitle_title(
        fig, f"Loss distribution per point — sweep {sweep.name}", _sweep_subtitle(sweep) + more
    )
    return fig


def _fan_series(sweep: SweepData, point_id: Any) -> tuple[TimeArray, FloatArray] | None:
    runs = sweep.ok[sweep.ok["point_id"] == point_id]
    series: list[pd.Series] = []
    for si in runs.get("seed_index", []):
        d = sweep.run_dir(point_id, si)
        if d is None:
            continue
        ts = _read_table(d, "timeseries", columns=("time", "insurance_fund"))
        if ts is None or ts.empty:
            continue
        series.append(
            pd.Series(np.asarray(ts["insurance_fund"], dtype=np.float64), index=_dt64(ts["time"]))
        )
    if not series:
        return None
    frame = pd.concat(series, axis=1).sort_index().ffill()
    return np.asarray(frame.index.to_numpy(dtype="datetime64[ns]")), frame.to_numpy(
        dtype=np.float64
    )


def fig_sweep_fan(sweep: SweepData) -> Figure | None:
    """Fan chart of the insurance fund across seeds for up to six points (None without runs)."""
    agg = sweep.aggregate
    col = "insurance_fund_drawdown_mean"
    order = (
        list(agg.sort_values(col, kind="stable")["point_id"])
        if col in agg
        else list(agg["point_id"])
    )
    if len(order) > 6:
        picks = np.unique(np.linspace(0, len(order) - 1, 6).round().astype(int))
        order = [order[i] for i in picks]
    fans = [(pid, _fan_series(sweep, pid)) for pid in order]
    fans_ok = [(pid, s) for pid, s in fans if s is not None]
    if not fans_ok:
        return None
    n = len(fans_ok)
    ncols = 1 if n == 1 else 2 if n <= 4 else 3
    nrows = math.ceil(n / ncols)
    fig, axes = _new_figure(nrows, ncols, height=3.0 * nrows + 1.4, sharex=True, sharey=True)
    for ax, (pid, (t, values)) in zip(axes, fans_ok, strict=False):
        q = np.nanpercentile(values, [5, 25, 50, 75, 95], axis=1)
        ax.fill_between(t, q[0], q[4], color=COLORS["fund"], alpha=0.15, lw=0, label="p5–p95")
        ax.fill_between(t, q[1], q[3], color=COLORS["fund"], alpha=0.3, lw=0, label="p25–p75")
        ax.plot(t, q[2], color=COLORS["fund"], lw=1.5, label="median")
        label = sweep.point_label(pid, sep="\n")
        ax.set_title(f"{label}\n({values.shape[1]} seeds)", fontsize=9.5)
        ax.yaxis.set_major_formatter(_CompactFormatter())
        _date_ticks(ax, 3, 6)
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax in axes[::ncols]:
        ax.set_ylabel("insurance fund (USD)")
    for ax in axes[max(0, n - ncols) : n]:
        ax.set_xlabel("time (UTC)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, frameon=False)
    chosen = "" if len(agg) <= 6 else " (6 points from best to worst mean drawdown)"
    _subtitle_title(
        fig, f"Insurance fund across seeds — sweep {sweep.name}", _sweep_subtitle(sweep) + chosen
    )
    return fig


def _leverage(x: Any) -> Any:
    """Margin rate <-> max leverage (1 / rate); its own inverse."""
    v = np.asarray(x, dtype=np.float64)
    return 1.0 / np.maximum(v, 1e-9)  # finite even at 0 (matplotlib probes the edges)


def fig_sweep_frontier(sweep: SweepData, x: str, y: str | None) -> Figure:
    """VaR95 / CVaR95 of the losses against the capital-efficiency parameter, with the frontier."""
    fig, (a1, a2) = _new_figure(1, 2, height=5.2, sharex=True)
    agg = sweep.aggregate
    xs = _sorted_values(agg[x])
    numeric = _is_numeric(xs)
    ok = sweep.ok
    groups: list[tuple[str, Any]] = [("points", None)]
    if y is not None and len(_sorted_values(agg[y])) <= 8:
        groups = [(f"{sweep.short(y)} = {_fmt_param(v)}", v) for v in _sorted_values(agg[y])]
    cmap = matplotlib.colormaps["viridis"]
    for ax, metric, title in (
        (a1, "insurance_fund_drawdown", "Insurance-fund drawdown"),
        (a2, "loss_beyond_fund", "Loss beyond the fund (socialised + bad debt)"),
    ):
        best: dict[Any, float] = {}
        for g, (label, yval) in enumerate(groups):
            color = cmap(g / max(len(groups) - 1, 1) * 0.85) if len(groups) > 1 else COLORS["index"]
            px, pv, pc = [], [], []
            for pid in agg["point_id"]:
                row = agg[agg["point_id"] == pid].iloc[0]
                if yval is not None and row[y] != yval:
                    continue
                v = _run_values(sweep, ok[ok["point_id"] == pid], metric)
                v = v[np.isfinite(v)]
                if not v.size:
                    continue
                px.append(row[x])
                pv.append(var(v))
                pc.append(cvar(v))
                best[row[x]] = min(best.get(row[x], math.inf), pv[-1])
            if not px:
                continue
            pos = _positions(px, xs)
            ax.vlines(pos, pv, pc, color=color, lw=0.8, alpha=0.6)
            ax.plot(pos, pv, ls="none", marker="o", ms=7, color=color, label=label)
            ax.plot(pos, pc, ls="none", marker="o", ms=7, mfc="none", mec=color)
        if best and max(abs(v) for v in best.values()) == 0:
            ax.set_ylim(-0.05, 1.0)
            ax.set_yticks([0])
            _no_data(ax, "zero at every point")
        elif best:
            bx = _sorted_values(best)
            ax.plot(
                _positions(bx, xs),
                [best[b] for b in bx],
                color="#C00000",
                lw=1.4,
                ls="--",
                zorder=0,
                label="frontier (lowest VaR95 at each value)",
            )
        else:
            _no_data(ax, "no finished runs")
        ax.plot([], [], ls="none", marker="o", mfc="none", mec="#555555", label="CVaR95 (hollow)")
        ax.set_title(title)
        ax.yaxis.set_major_formatter(_CompactFormatter())
        ax.set_ylabel("VaR95 / CVaR95 across seeds (USD)")
    xlabel = x
    if not numeric:
        a1.set_xticks(range(len(xs)), [_fmt_param(v) for v in xs])
    elif x.endswith("margin_rate") and all(float(v) > 0 for v in xs):
        a1.invert_xaxis()
        xlabel = f"{x}   (→ lower margin: more capital-efficient)"
        for ax in (a1, a2):
            ax.set_xticks([float(v) for v in xs], [_fmt_param(v) for v in xs])
            if x.endswith("initial_margin_rate"):  # the initial margin caps the leverage
                sec = ax.secondary_xaxis("top", functions=(_leverage, _leverage))
                sec.set_xticks([1.0 / float(v) for v in xs], [f"{1.0 / float(v):.3g}×" for v in xs])
                sec.set_xlabel("max leverage")
    elif len(xs) <= 12:
        a1.set_xticks([float(v) for v in xs], [_fmt_param(v) for v in xs])
    fig.supxlabel(xlabel, fontsize=10)
    entries: dict[str, Artist] = {}
    for ax in (a1, a2):  # one legend for both panels (a panel may lack the frontier)
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    a2.legend(
        list(entries.values()),
        list(entries),
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
    )
    _subtitle_title(
        fig, f"Capital efficiency against tail risk — sweep {sweep.name}", _sweep_subtitle(sweep)
    )
    return fig


def sweep_figures(
    sweep: SweepData, metric: str | None = None, x: str | None = None, y: str | None = None
) -> list[tuple[FigureInfo, Figure]]:
    """Every figure a sweep supports, in :data:`SWEEP_FIGURES` order (not yet saved).

    Args:
        sweep: the sweep.
        metric: the statistic of the heatmap and the metric plot (a summary metric, or a tail
            statistic such as ``p_insurance_fund_exhausted``); default the sweep's own metric.
        x: the parameter on the x axis (default: the initial margin rate if varied, else the
            first parameter).
        y: the second parameter (default: the next varied parameter).

    Raises:
        ConfigError: an unknown metric or parameter.
    """
    metric = metric or sweep.metric
    _check_metric(sweep, metric)
    xk, yk = _axes_params(sweep, x, y)
    info = {f.file: f for f in SWEEP_FIGURES}
    out: list[tuple[FigureInfo, Figure]] = []
    with _style():
        if xk is not None and yk is not None:
            out.append((info["sweep_heatmap.png"], fig_sweep_heatmap(sweep, metric, xk, yk)))
        if xk is not None:
            out.append((info["sweep_metric.png"], fig_sweep_metric(sweep, metric, xk, yk)))
        out.append((info["sweep_losses.png"], fig_sweep_losses(sweep)))
        fan = fig_sweep_fan(sweep)
        if fan is not None:
            out.append((info["sweep_fan.png"], fan))
        if xk is not None:
            out.append((info["sweep_frontier.png"], fig_sweep_frontier(sweep, xk, yk)))
    return out


def plot_sweep(
    sweep_dir: Path, metric: str | None = None, x: str | None = None, y: str | None = None
) -> list[Path]:
    """Draw the figures of a sweep into ``<sweep_dir>/plots/``; return the PNG paths.

    Raises:
        ConfigError: not a sweep folder, or an unknown metric or parameter.
    """
    sweep = load_sweep(Path(sweep_dir))
    written = []
    with _style():
        for info, fig in sweep_figures(sweep, metric, x, y):
            written.append(_save(fig, sweep.path / "plots" / info.file))
    return written


def plot_dir(
    path: Path, metric: str | None = None, x: str | None = None, y: str | None = None
) -> list[Path]:
    """Plot a run folder or a sweep folder (``perpsim plot DIR``).

    Raises:
        ConfigError: ``path`` is neither, or the options do not apply.
    """
    p = Path(path)
    if is_sweep_dir(p):
        return plot_sweep(p, metric, x, y)
    if not p.exists():
        raise ConfigError(f"{p}: no such folder")
    if not p.is_dir():
        raise ConfigError(f"{p}: not a folder (give a run folder or a sweep folder)")
    if metric is not None or x is not None or y is not None:
        raise ConfigError(f"{p}: --metric, --x and --y apply to sweep folders only")
    return plot_run(p)
