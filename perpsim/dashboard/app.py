"""The dashboard's page: Mesa's ``SolaraViz`` around a :class:`DashboardRun`, or a run folder.

The server (:mod:`perpsim.dashboard.server`) names this module as the Solara app; what it shows
comes from the ``PERPSIM_VIZ`` environment variable (JSON: ``{"scenario": …, "overrides": […]}``
for a live run, ``{"run_dir": …}`` for a finished run folder).

Live runs use Mesa's ``SolaraViz`` as it comes: its sidebar holds the Reset / Play / Step
controls and the model parameters (scenario, venue kind, step size, seed, funds, governance
rates), and each chart or table below is one of its components. Reset builds a new
:class:`DashboardRun` from the parameters; the inputs follow the venue kind of the run shown.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import solara
from mesa.visualization import SolaraViz

from perpsim.dashboard.panels import COMMON_PANELS, render_panel, venue_panels
from perpsim.dashboard.recorded import RecordedRun
from perpsim.dashboard.session import (
    STEP_SIZES,
    DashboardRun,
    initial_params,
    scenario_choices,
)
from perpsim.dashboard.snapshot import Snapshot
from perpsim.engine.core.figures import PanelSpec
from perpsim.engine.registry import venue_kinds
from perpsim.plots.format import fmt_time

__all__ = ["ENV_VAR", "Page", "live_components", "model_params"]

#: The environment variable the server passes the target in.
ENV_VAR: Final = "PERPSIM_VIZ"

_CSS: Final = """
.perpsim-cell { width: 100%; }
.perpsim-cell svg { width: 100%; max-width: 600px; height: auto; display: block; }
.perpsim-muted { color: #666; font-size: 13px; }
.perpsim-status td { padding: 1px 10px 1px 0; font-size: 13px; }
.perpsim-status td.v { text-align: right; font-variant-numeric: tabular-nums; }
.perpsim-events-cell { max-height: 372px; overflow-y: auto; }
.perpsim-events { border-collapse: collapse; width: 100%; font-size: 12px; }
.perpsim-events th { text-align: left; border-bottom: 1px solid #bbb; padding: 2px 6px; }
.perpsim-events td { border-bottom: 1px solid #eee; padding: 2px 6px; vertical-align: top; }
.perpsim-events td.t { white-space: nowrap; color: #444; font-variant-numeric: tabular-nums; }
.perpsim-events td.k { white-space: nowrap; font-weight: 600; }
.perpsim-events tr.liquidation td.k { color: #b34700; }
.perpsim-events tr.governance td.k { color: #333; }
.perpsim-events tr.outage td.k { color: #8b5a2b; }
.perpsim-error { white-space: pre-wrap; font-family: monospace; font-size: 12px;
  background: #fdecea; color: #611a15; border-left: 4px solid #d32f2f; padding: 8px 10px; }
.perpsim-progress { height: 6px; background: #e0e0e0; border-radius: 3px; margin: 4px 0 8px; }
.perpsim-progress > div { height: 6px; background: #0072B2; border-radius: 3px; }
"""


def _target() -> dict[str, Any]:
    raw = os.environ.get(ENV_VAR)
    if not raw:
        return {"scenario": "baseline", "overrides": []}
    doc = json.loads(raw)
    return doc if isinstance(doc, dict) else {"scenario": "baseline", "overrides": []}


# ------------------------------------------------------------------------------------------
# Cells (each one grid cell of the page)


@solara.component
def ChartCell(snapshot: Snapshot | None, panel: PanelSpec) -> None:
    """One chart, redrawn only when the snapshot changes."""
    key = snapshot.key if snapshot is not None else None
    svg = solara.use_memo(
        lambda: render_panel(panel, snapshot) if snapshot is not None else None, [key]
    )
    with solara.Div(classes=["perpsim-cell", "perpsim-chart"]):
        if svg is None:
            solara.HTML(tag="div", unsafe_innerHTML=f"<b>{html.escape(panel.title)}</b>")
            solara.Text("No run to show.", classes=["perpsim-muted"])
        else:
            solara.HTML(tag="div", unsafe_innerHTML=svg)


def _status_html(snap: Snapshot) -> str:
    done = snap.tick / snap.n_ticks if snap.n_ticks else 1.0
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td class='v'>{html.escape(v)}</td></tr>"
        for k, v in snap.headline()
    )
    return (
        f"<div><b>{html.escape(snap.name)}</b> · {html.escape(snap.title)}</div>"
        f"<div class='perpsim-muted perpsim-clock'>{html.escape(fmt_time(snap.now))} · tick"
        f" {snap.tick:,} of {snap.n_ticks:,} ({done:.0%}) · seed {snap.seed}</div>"
        f"<div class='perpsim-progress'><div style='width:{done * 100:.1f}%'></div></div>"
        f"<table class='perpsim-status'>{rows}</table>"
    )


@solara.component
def StatusCell(
    snapshot: Snapshot | None, error: str | None, hint: str, changes: Sequence[str] = ()
) -> None:
    """The run's clock and headline numbers, or the scenario layer's message.

    Args:
        snapshot: The run as far as it went (None: there is no run).
        error: The scenario layer's message, or why the run stopped.
        hint: What to do next.
        changes: The ``--set`` items the run was built with.
    """
    with solara.Div(classes=["perpsim-cell", "perpsim-status-cell"]):
        if error is not None:
            solara.HTML(
                tag="div",
                unsafe_innerHTML="<b>The run cannot go on with these values</b>",
            )
            solara.HTML(tag="div", unsafe_innerHTML=html.escape(error), classes=["perpsim-error"])
        if snapshot is not None:
            solara.HTML(tag="div", unsafe_innerHTML=_status_html(snapshot))
        if changes:
            solara.HTML(
                tag="div",
                unsafe_innerHTML="changed from the file: <code class='perpsim-overrides'>"
                + html.escape("  ".join(changes))
                + "</code>",
                classes=["perpsim-muted"],
            )
        solara.Text(hint, classes=["perpsim-muted"])


def _events_html(snap: Snapshot) -> str:
    if not snap.events:
        return (
            "<div class='perpsim-muted'>No liquidations, outages or governance changes yet.</div>"
        )
    body = "".join(
        f"<tr class='{html.escape(r.kind.replace(' ', '-'))}'>"
        f"<td class='t'>{html.escape(fmt_time(r.time).removesuffix(' UTC'))}</td>"
        f"<td class='k'>{html.escape(r.kind)}</td><td>{html.escape(r.text)}</td></tr>"
        for r in snap.events
    )
    return (
        "<table class='perpsim-events'><thead><tr><th>time (UTC)</th><th>event</th>"
        "<th>what (contracts @ USD; losses in USD)</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


@solara.component
def EventsCell(snapshot: Snapshot | None) -> None:
    """The latest liquidations, outages and governance changes, newest first."""
    with solara.Div(classes=["perpsim-cell", "perpsim-events-cell"]):
        solara.HTML(tag="div", unsafe_innerHTML="<b>Latest events</b>")
        if snapshot is None:
            solara.Text("No run to show.", classes=["perpsim-muted"])
        else:
            solara.HTML(tag="div", unsafe_innerHTML=_events_html(snapshot))


# ------------------------------------------------------------------------------------------
# Live runs: Mesa's SolaraViz

_RESET_HINT: Final = (
    "Change the values under Model Parameters, then press Reset; Step and Play advance by"
    " the step size."
)


def live_components(kind: str) -> list[Callable[[DashboardRun], Any]]:
    """SolaraViz's components for a run of ``kind``: status, events, common and venue charts."""

    def status(model: DashboardRun) -> Any:
        return StatusCell(model.snapshot(), model.error, _RESET_HINT, model.overrides)

    def events(model: DashboardRun) -> Any:
        return EventsCell(model.snapshot())

    def chart(panel: PanelSpec) -> Callable[[DashboardRun], Any]:
        def draw(model: DashboardRun) -> Any:
            return ChartCell(model.snapshot(), panel)

        return draw

    return [status, events, *(chart(p) for p in (*COMMON_PANELS, *venue_panels(kind)))]


def model_params(run: DashboardRun) -> dict[str, Any]:
    """SolaraViz's ``model_params`` for the inputs of ``run`` (Reset passes them back)."""
    params: dict[str, Any] = {
        "scenario_file": {
            "type": "Select",
            "value": run.scenario_file,
            "values": scenario_choices(run.cli_file),
            "label": "scenario",
        },
        "venue_kind": {
            "type": "Select",
            "value": run.venue_kind,
            "values": list(venue_kinds()),
            "label": "venue kind",
        },
        "step_size": {
            "type": "Select",
            "value": run.step_size,
            "values": list(STEP_SIZES),
            "label": "step size (one Step, one Play frame)",
        },
    }
    for f in run.fields:
        params[f.name] = {"type": "InputText", "value": f.text, "label": f.label}
    # Fixed values (not inputs): what the form showed, and the command line's scenario.
    params["form"] = {
        "scenario_file": run.scenario_file,
        "venue_kind": run.venue_kind,
        "values": run.form_values(),
    }
    params["cli_overrides"] = run.cli_overrides
    params["cli_file"] = run.cli_file
    return params


@solara.component
def LivePage(scenario: str, overrides: tuple[str, ...]) -> None:
    """A live run of ``scenario`` in Mesa's SolaraViz."""
    first = solara.use_memo(lambda: DashboardRun(**initial_params(scenario, overrides)), [])
    model = solara.use_reactive(first)
    run = model.value
    solara.Style(_CSS)
    # A new scenario or kind brings other inputs: SolaraViz starts afresh with them.
    SolaraViz(
        model,
        components=live_components(run.venue_kind),
        model_params=model_params(run),
        name=f"perpsim · {run.scenario_file} · {run.venue_kind}",
        play_interval=1,
        render_interval=1,
    ).key(f"{run.scenario_file}|{run.venue_kind}")


# ------------------------------------------------------------------------------------------
# Finished run folders


@solara.component
def RecordedPage(run_dir: str) -> None:
    """A finished run folder, with a time slider (nothing is run)."""
    recorded = solara.use_memo(lambda: RecordedRun(Path(run_dir)), [run_dir])
    row, set_row = solara.use_state(recorded.n_rows - 1)
    snap = recorded.snapshot(row)
    solara.Style(_CSS)
    with solara.AppBar():
        solara.AppBarTitle(f"perpsim · {snap.name} · recorded run")
    with solara.Sidebar(), solara.Column(), solara.Card("Run folder"):
        solara.Text(str(recorded.path), classes=["perpsim-muted"])
    with solara.Row(style="align-items: center; padding: 0 8px;"):
        solara.SliderInt(
            "time",
            value=row,
            min=0,
            max=recorded.n_rows - 1,
            on_value=set_row,
            thumb_label=False,
        )
        solara.Text(fmt_time(snap.now), classes=["perpsim-muted", "perpsim-slider-time"])
    with solara.GridFixed(columns=2, column_gap="16px", row_gap="16px", align_items="start"):
        StatusCell(snap, None, "Move the slider to see the run at an earlier time.")
        EventsCell(snap)
        for panel in (*COMMON_PANELS, *venue_panels(snap.kind)):
            ChartCell(snap, panel)


@solara.component
def Page() -> None:
    """The app Solara serves: a live run or a run folder, as ``PERPSIM_VIZ`` says."""
    target = _target()
    if target.get("run_dir"):
        RecordedPage(str(target["run_dir"]))
    else:
        LivePage(str(target.get("scenario", "baseline")), tuple(target.get("overrides") or ()))
