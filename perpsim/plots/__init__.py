"""Figures of a run or a sweep (``perpsim plot DIR``).

A run folder (``perpsim run``) gets the common figures in ``<run>/plots/`` (prices, premium and
funding, accumulated funding, insurance fund and losses, liquidations, trader PnL: see
:mod:`perpsim.plots.run`) and the figures its exchange design declares as data
(:mod:`perpsim.plots.venues`). A sweep folder (``perpsim sweep``) gets a heatmap of a statistic
over two parameters, a metric against one parameter with seed bands, the loss distribution per
point, a fan chart of the insurance fund across seeds (when the runs' time series were kept) and
the capital-efficiency / tail-risk frontier (:mod:`perpsim.plots.sweep`). ``docs/plots.md``
says how to read each one.

Every figure uses one style (:data:`STYLE`, colour-blind-safe colours, legends beside the panels
so they never cover data), dates in UTC with a concise formatter, units in every axis label,
the scenario's events (price shocks, oracle and keeper outages, governance changes, global
settlement, ...) drawn on every time axis, and a sentence instead of an empty panel.
"""

from __future__ import annotations

from perpsim.plots.files import is_run_dir, is_sweep_dir
from perpsim.plots.folders import plot_dir
from perpsim.plots.format import fmt_duration, fmt_number, fmt_param, fmt_time, fmt_usd
from perpsim.plots.info import FigureInfo
from perpsim.plots.markers import Marker, event_markers
from perpsim.plots.run import RUN_FIGURES, plot_run, run_figure_infos, run_figures
from perpsim.plots.rundata import RunData, load_run
from perpsim.plots.scenario import (
    governance_series,
    governance_value,
    venue_kind,
    venue_section,
)
from perpsim.plots.style import DPI, STYLE, CompactFormatter
from perpsim.plots.sweep import SWEEP_FIGURES, plot_sweep, sweep_figures
from perpsim.plots.sweep.data import SweepData, read_sweep_dir
from perpsim.plots.sweep.metrics import metric_label, metric_unit
from perpsim.plots.venues import governance_defaults

__all__ = [
    "DPI",
    "RUN_FIGURES",
    "STYLE",
    "SWEEP_FIGURES",
    "CompactFormatter",
    "FigureInfo",
    "Marker",
    "RunData",
    "SweepData",
    "event_markers",
    "fmt_duration",
    "fmt_number",
    "fmt_param",
    "fmt_time",
    "fmt_usd",
    "governance_defaults",
    "governance_series",
    "governance_value",
    "is_run_dir",
    "is_sweep_dir",
    "load_run",
    "metric_label",
    "metric_unit",
    "plot_dir",
    "plot_run",
    "plot_sweep",
    "read_sweep_dir",
    "run_figure_infos",
    "run_figures",
    "sweep_figures",
    "venue_kind",
    "venue_section",
]
