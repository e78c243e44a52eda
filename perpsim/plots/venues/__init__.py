"""A venue's own figures, drawn from the :class:`~perpsim.engine.core.figures.FigureSpec` values
its design declares (``VenueSpec.figures`` in the registry).

Nothing here knows a design: each panel is a list of time-series columns with labels, colour
roles and a few drawing options, so a new exchange design adds figures in its own folder. A
column the run did not record is left out (a run folder of an older version still plots).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from perpsim.engine.core.figures import FigureSpec, PanelSpec
from perpsim.engine.registry import UnknownVenueError, venue_spec
from perpsim.errors import ConfigError
from perpsim.plots.files import FloatArray
from perpsim.plots.info import FigureInfo
from perpsim.plots.markers import Marker, run_title, time_axes
from perpsim.plots.rundata import RunData
from perpsim.plots.style import COLORS, CompactFormatter, legend_beside, new_figure, no_data

__all__ = ["draw_figure", "figure_info", "governance_defaults", "venue_figures"]


def venue_figures(kind: str) -> tuple[FigureSpec, ...]:
    """The figures the design ``kind`` declares, in reading order.

    Raises:
        ConfigError: no design of that kind is registered.
    """
    try:
        return venue_spec(kind).figures
    except UnknownVenueError as exc:
        raise ConfigError(str(exc.args[0])) from None


def governance_defaults(kind: str) -> dict[str, Any]:
    """Every governance key of the design ``kind`` with its default, in the design's order.

    An unknown design gives an empty mapping: the tables and bands that need a default then
    show only what the scenario set.
    """
    try:
        return dict(venue_spec(kind).governance_defaults)
    except UnknownVenueError:
        return {}


def figure_info(spec: FigureSpec) -> FigureInfo:
    """The file name, title and caption of a declared figure (for the report)."""
    return FigureInfo(f"{spec.name}.png", spec.title, spec.caption)


def _draw_panel(ax: Axes, panel: PanelSpec, run: RunData) -> None:
    t = run.times
    drawn: list[FloatArray] = []
    hidden_at_end = False
    gap_note = ""
    for s in panel.series:
        if s.column not in run.timeseries:
            continue
        y = run.column(s.column)
        if s.only_where is not None and s.only_where in run.timeseries:
            hidden = ~(run.column(s.only_where) > 0)
            y = np.where(hidden, np.nan, y)
            if not drawn and len(hidden) and hidden[-1]:
                hidden_at_end, gap_note = True, s.gap_note
        style: dict[str, Any] = {"label": s.label}
        if s.color is not None:
            style["color"] = COLORS.get(s.color, s.color)
        if s.dashed:
            style["ls"] = "--"
        if s.width is not None:
            style["lw"] = s.width
        if s.kind == "step":
            style["drawstyle"] = "steps-post"
        ax.plot(t, y, **style)
        drawn.append(y)
    if panel.from_zero:
        ax.set_ylim(bottom=0)
    values = np.concatenate(drawn) if drawn else np.empty(0)
    if panel.empty_text is not None and not (np.nan_to_num(values) != 0).any():
        no_data(ax, panel.empty_text)
        ax.set_ylim(-1, 1)
    first = drawn[0][np.isfinite(drawn[0])] if drawn else np.empty(0)
    if first.size and first[0] > 0 and (panel.reference or panel.change_label):
        if panel.reference:
            ax.axhline(first[0], color=COLORS["muted"], ls="--", lw=0.9, label=panel.reference)
        if panel.change_label:
            note = f"{panel.change_label}: {first[-1] / first[0] - 1.0:+.2%}"
            if hidden_at_end and gap_note:
                note += "\n" + gap_note
            ax.text(
                1.01,
                0.02,
                note,
                transform=ax.transAxes,
                fontsize=9,
                va="bottom",
                bbox={"boxstyle": "round,pad=0.4", "fc": "white", "ec": "#cccccc"},
            )
    ax.set_title(panel.title)
    ax.yaxis.set_major_formatter(CompactFormatter(percent=panel.axis_format == "percent"))
    ax.set_ylabel(panel.ylabel)
    legend_beside(ax)


def draw_figure(spec: FigureSpec, run: RunData, markers: list[Marker]) -> Figure:
    """Draw one declared figure of a run: its panels over a shared time axis, with events."""
    n = len(spec.panels)
    fig, axes = new_figure(n, height=spec.height if spec.height is not None else 1.4 + 2.2 * n)
    for ax, panel in zip(axes, spec.panels, strict=True):
        _draw_panel(ax, panel, run)
    run_title(fig, run, spec.title)
    time_axes(axes, run, markers)
    return fig
