"""The one style of every figure: rc parameters, colours, axis formatters and scaffolding.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the non-interactive Agg
backend (no pyplot state), legends beside the panels so they never cover data, and written
atomically.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import matplotlib
import matplotlib.dates as mdates
import matplotlib.ticker as mticker
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from perpsim.io import atomic_write_bytes
from perpsim.plots.files import FloatArray

__all__ = [
    "COLORS",
    "DPI",
    "NO_DATA_COLOR",
    "STYLE",
    "WIDTH",
    "CompactFormatter",
    "date_ticks",
    "dnum",
    "legend_beside",
    "new_figure",
    "no_data",
    "pct_axis",
    "save_png",
    "style_context",
    "subtitle_title",
    "usd_axis",
]


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


NO_DATA_COLOR: Final = "#666666"


class CompactFormatter(mticker.Formatter):
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


def dnum(values: Any) -> FloatArray:
    """Times as matplotlib date numbers (days)."""
    days = mdates.date2num(values)  # type: ignore[no-untyped-call]
    return np.atleast_1d(np.asarray(days, dtype=np.float64))


def date_ticks(ax: Axes, minticks: int = 4, maxticks: int = 9) -> None:
    """Concise date ticks (``Jan-02``, ``12:00``) on the x axis."""
    locator = mdates.AutoDateLocator(minticks=minticks, maxticks=maxticks)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, show_offset=False)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)


def style_context() -> Any:
    """The context of :data:`STYLE`."""
    return matplotlib.rc_context(STYLE)  # type: ignore[arg-type]


def new_figure(
    nrows: int,
    ncols: int = 1,
    *,
    height: float,
    width: float = WIDTH,
    sharex: bool | str = True,
    sharey: bool | str = False,
    height_ratios: Sequence[float] | None = None,
) -> tuple[Figure, list[Axes]]:
    """A constrained-layout figure of ``nrows`` × ``ncols`` panels (axes listed row by row)."""
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


def subtitle_title(fig: Figure, what: str, sub: str) -> None:
    """The figure's title with a grey line of context above it."""
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


def legend_beside(ax: Axes) -> None:
    """The panel's legend beside it (never over the data)."""
    handles, _labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def no_data(ax: Axes, text: str) -> None:
    """A sentence in the middle of a panel saying why it has nothing to show."""
    ax.text(
        0.5,
        0.5,
        text,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=12,
        color=NO_DATA_COLOR,
        bbox={"boxstyle": "round,pad=0.6", "fc": "#f4f4f4", "ec": "#dddddd"},
    )


def usd_axis(ax: Axes, label: str) -> None:
    """Y axis with compact numbers (``250k``) and the label ``label``."""
    ax.yaxis.set_major_formatter(CompactFormatter())
    ax.set_ylabel(label)


def pct_axis(ax: Axes, label: str) -> None:
    """Y axis in percent with the label ``label``."""
    ax.yaxis.set_major_formatter(CompactFormatter(percent=True))
    ax.set_ylabel(label)


def save_png(fig: Figure, path: Path) -> Path:
    """Write the figure as a PNG, atomically; return ``path``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.15)
    atomic_write_bytes(path, buf.getvalue())
    return path
