"""Figures a venue declares as data, drawn by a generic renderer (``perpsim.plots.venues``).

A design's own quantities (the MCDEX pool's margin, Predy's variance, D8X's default fund) are
time-series columns prefixed with its kind. To show them, the design's folder lists
:class:`FigureSpec` values; the plotting layer draws any list of them the same way (one panel
per :class:`PanelSpec`, one line per :class:`SeriesSpec`, the scenario's events on every time
axis), so a new design adds figures without touching the plotting code.

Plain Python on purpose: the engine knows nothing of matplotlib or pandas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["FigureSpec", "PanelSpec", "SeriesSpec"]

#: How a series is drawn: ``line`` joins the recorded values, ``step`` holds each value until
#: the next row (for quantities that jump, such as accumulated losses).
SeriesKind = Literal["line", "step"]
#: The y-axis format of a panel: ``number`` shortens large values (``250k``), ``percent``
#: shows fractions as %.
AxisFormat = Literal["number", "percent"]


@dataclass(frozen=True)
class SeriesSpec:
    """One line of a panel: a time-series column.

    Attributes:
        column: Time-series column (common or prefixed with the venue's kind).
        label: Legend text.
        kind: ``line`` or ``step``.
        color: A colour role of the plotting style (``pool``, ``oi``, ``lp``, ``long``,
            ``short``, ``fund``, ``social``, ``bad_debt``, ``muted``, ...) or a hex colour.
        dashed: Draw the line dashed.
        width: Line width in points (None: the style's default).
        only_where: A column; the series is drawn only where that column is > 0 (e.g. the LP
            share price only while shares exist).
        gap_note: Appended to the panel's change note when ``only_where`` hid the last rows.
    """

    column: str
    label: str
    kind: SeriesKind = "line"
    color: str | None = None
    dashed: bool = False
    width: float | None = None
    only_where: str | None = None
    gap_note: str = ""


@dataclass(frozen=True)
class PanelSpec:
    """One panel (axes) of a figure.

    Attributes:
        title: Panel title.
        ylabel: Y-axis label with its unit (``USD``, ``contracts``, ``USD per share``).
        series: The lines, drawn in order.
        axis_format: ``number`` or ``percent``.
        from_zero: Start the y axis at 0 (sizes and counts).
        empty_text: Shown instead of flat lines when every series is 0 throughout.
        reference: Legend text of a dashed line at the first series' first drawn value.
        change_label: Beside the panel: ``<change_label>: +1.23%``, the first series' change
            from its first to its last drawn value.
    """

    title: str
    ylabel: str
    series: tuple[SeriesSpec, ...]
    axis_format: AxisFormat = "number"
    from_zero: bool = False
    empty_text: str | None = None
    reference: str | None = None
    change_label: str | None = None


@dataclass(frozen=True)
class FigureSpec:
    """A figure of a run: its file, title, panels and how to read it.

    Attributes:
        name: File stem inside ``<run>/plots/`` (``pool`` -> ``pool.png``).
        title: Figure title (the run's name and seed are added).
        panels: The panels, top to bottom, sharing the time axis.
        caption: What it shows and how to read it (shown under it in the report).
        height: Figure height in inches (None: from the number of panels).
    """

    name: str
    title: str
    panels: tuple[PanelSpec, ...]
    caption: str
    height: float | None = None
