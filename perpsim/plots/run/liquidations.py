"""Liquidations per time bin by side, who absorbed their losses, and the unsafe accounts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import matplotlib.ticker as mticker
import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

from perpsim.plots.files import FloatArray, TimeArray, dt64
from perpsim.plots.markers import Marker, run_title, time_axes
from perpsim.plots.rundata import RunData
from perpsim.plots.style import (
    COLORS,
    NO_DATA_COLOR,
    CompactFormatter,
    dnum,
    legend_beside,
    new_figure,
    no_data,
    usd_axis,
)

__all__ = ["fig_liquidations"]


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
        fig, axes = new_figure(4, height=9.6, height_ratios=(1.3, 1.3, 1.3, 1.1))
    else:
        fig, axes = new_figure(2, height=5.2, height_ratios=(1.0, 1.3))
    secs = t.astype("datetime64[s]").astype(np.int64)
    step = float(np.median(np.diff(secs))) if len(secs) > 1 else 60.0
    span = float(secs[-1] - secs[0]) if len(secs) > 1 else step
    size, name = _bin_size(span, step)
    first = int(secs[0] // size * size)
    edges = np.arange(first, int(secs[-1]) + 2 * size, size, dtype=np.int64)
    centers = dnum(((edges[:-1] + size / 2.0) * 1e9).astype("datetime64[ns]"))
    width = size / 86400.0 * 0.9

    if has_liq:
        ax_n, ax_v, ax_l, ax_u = axes
        tops = {"n": 0.0, "v": 0.0, "l": 0.0}  # the tallest stack of each bar panel
        if not liq.empty:
            lt = dt64(liq["time"])
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
            tops = {
                "n": float(np.max(bottom_n)),
                "v": float(np.max(bottom_v)),
                "l": float(np.max(bottom_l)),
            }
            if total_loss == 0:
                no_data(ax_l, "no liquidation loss: the liquidated accounts covered their own")
                ax_l.set_ylim(0, 1)
                ax_l.set_yticks([0])
        else:  # no event log: the time series' counts since the previous row
            n_bins = _binned(t, np.nan_to_num(counts_ts), edges)
            v_bins = _binned(t, np.nan_to_num(run.column("liquidation_volume")), edges)
            ax_n.bar(centers, n_bins, width, color=COLORS["muted"], label="liquidations")
            ax_v.bar(centers, v_bins, width, color=COLORS["muted"], label="contracts")
            tops = {"n": float(np.max(n_bins)), "v": float(np.max(v_bins)), "l": 0.0}
            no_data(ax_l, "no event log: losses per liquidation unknown")
        ax_n.set_title(f"Liquidations per {name}")
        ax_n.set_ylabel("liquidations")
        ax_n.yaxis.set_major_locator(mticker.MaxNLocator(integer=True))
        ax_v.set_title(f"Contracts liquidated per {name}")
        ax_v.yaxis.set_major_formatter(CompactFormatter())
        ax_v.set_ylabel("contracts")
        ax_l.set_title(f"Liquidation losses per {name}, by who absorbed them")
        usd_axis(ax_l, "USD")
        for a, key in ((ax_n, "n"), (ax_v, "v"), (ax_l, "l")):
            # Headroom above the tallest bar, so that it does not touch the frame.
            top = float(tops[key])
            if top > 0:
                a.set_ylim(0, top * 1.12)
            else:
                a.set_ylim(bottom=0)
            legend_beside(a)
    else:
        ax_n, ax_u = axes
        no_data(ax_n, "no liquidations in this run")
        ax_n.set_yticks([])
        ax_n.set_title(f"Liquidations per {name}")
        ax_n.grid(False)

    columns = run.timeseries.columns
    before = "unsafe_accounts_before_liquidation" in columns
    lines: list[tuple[str, str, str, str]] = []
    if before:  # run folders before the columns existed show the end-of-tick counts alone
        lines += [
            ("unsafe_accounts_before_liquidation", "mark", "-", "unsafe, before liquidators act"),
            (
                "bankrupt_accounts_before_liquidation",
                "bad_debt",
                "-",
                "bankrupt (margin balance < 0), before liquidators act",
            ),
        ]
    lines += [
        ("unsafe_accounts", "mark", ":" if before else "-", "unsafe at the end of the tick"),
        (
            "bankrupt_accounts",
            "bad_debt",
            ":" if before else "--",
            "bankrupt at the end of the tick",
        ),
    ]
    top = 0.0
    for column, color, ls, label in lines:
        values = run.column(column)
        ax_u.plot(t, values, color=COLORS[color], ls=ls, drawstyle="steps-post", label=label)
        top = max(top, float(np.nanmax(np.r_[values, 0.0])))
    ax_u.set_ylim(0, max(top * 1.15, 1.0))
    ax_u.yaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    if top == 0:
        ax_u.text(
            0.01,
            0.9,
            "no account was under maintenance margin at a recorded tick",
            transform=ax_u.transAxes,
            fontsize=9,
            color=NO_DATA_COLOR,
            va="top",
        )
    ax_u.set_title(
        "Unsafe and bankrupt accounts: before liquidators act (solid), end of tick (dotted)"
        if before
        else "Unsafe accounts (at recorded ticks)"
    )
    ax_u.set_ylabel("accounts")
    legend_beside(ax_u)
    run_title(fig, run, "Liquidations")
    time_axes(axes, run, markers)
    return fig
