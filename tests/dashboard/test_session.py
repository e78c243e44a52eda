"""The dashboard without a browser: its run, its form, its snapshots, its charts, its command.

Mesa smoke-tests its examples by rendering ``SolaraViz`` with ``solara.render`` and clicking the
widgets; :func:`test_the_page_steps_like_mesa_examples` does the same with the dashboard's page.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from support import REPO

from perpsim import cli
from perpsim.dashboard import server
from perpsim.dashboard.panels import COMMON_PANELS, FUND_PANEL, render_panel, venue_panels
from perpsim.dashboard.recorded import RecordedRun
from perpsim.dashboard.session import (
    DashboardRun,
    form_fields,
    governance_inputs,
    initial_params,
)
from perpsim.engine.registry import register_venue, unregister_venue, venue_kinds, venue_spec
from perpsim.errors import ConfigError
from perpsim.plots.scenario import governance_value
from perpsim.scenario import load_scenario, resolve_scenario_path


def _form(run: DashboardRun) -> dict[str, object]:
    return {
        "scenario_file": run.scenario_file,
        "venue_kind": run.venue_kind,
        "values": run.form_values(),
    }


def _reset(run: DashboardRun, **changes: str) -> DashboardRun:
    """What Mesa's Reset does: the same class, built from the form's current values."""
    values = {**run.form_values(), **changes}
    scenario = values.pop("scenario_file", run.scenario_file)
    kind = values.pop("venue_kind", run.venue_kind)
    return DashboardRun(
        scenario_file=scenario, venue_kind=kind, step_size=run.step_size, form=_form(run), **values
    )


def test_step_advances_the_run_by_the_step_size() -> None:
    run = DashboardRun(scenario_file="baseline", step_size="10 minutes")
    assert run.error is None and run.running
    assert run.model is not None and run.model.tick == 0
    for _ in range(3):
        run.step()
    assert run.model.tick == 3 * 600 // run.model.tick_seconds
    snap = run.snapshot()
    assert snap is not None and snap.tick == run.model.tick
    assert len(snap.timeseries) == len(run.model.recorder.rows)
    assert snap.end == int(run.model.times[-1])


def test_changed_inputs_become_set_items_and_the_rest_stays() -> None:
    first = DashboardRun(**initial_params("black_thursday"))
    changed = _reset(first, maintenance_margin_rate="0.05", seed="7")
    assert changed.error is None
    assert sorted(changed.overrides) == [
        "seed=7",
        "venue.governance.maintenance_margin_rate=0.05",
    ]
    assert changed.config is not None and changed.config.seed == 7
    resolved = json.loads(changed.config.model_dump_json())
    assert governance_value(resolved, "maintenance_margin_rate") == 0.05
    assert governance_value(resolved, "initial_margin_rate") == 0.1  # as the file sets it
    assert changed.form_values()["maintenance_margin_rate"] == "0.05"


def test_a_bad_value_shows_the_scenario_layers_message() -> None:
    first = DashboardRun(**initial_params("black_thursday"))
    bad = _reset(first, maintenance_margin_rate="0.2")
    item = "venue.governance.maintenance_margin_rate=0.2"
    with pytest.raises(ConfigError) as cli_error:
        load_scenario(resolve_scenario_path("black_thursday"), [item])
    assert bad.error == str(cli_error.value)
    assert bad.model is None and not bad.running and bad.snapshot() is None
    bad.step()  # nothing to step, and no exception
    text = _reset(first, insurance_fund="lots")
    assert text.error is not None and "venue.insurance_fund" in text.error


def test_another_scenario_starts_from_its_own_values() -> None:
    first = DashboardRun(**initial_params("black_thursday"))
    values = {**first.form_values(), "maintenance_margin_rate": "0.05"}
    other = DashboardRun(
        scenario_file="baseline", venue_kind=first.venue_kind, form=_form(first), **values
    )
    assert other.error is None and other.overrides == []
    assert other.config is not None and other.config.name == "baseline"


def test_another_scenario_brings_its_own_kind_unless_the_kind_was_changed(
    test_venue: str, tmp_path: Path
) -> None:
    first = DashboardRun(**initial_params("baseline"))
    assert first.venue_kind == "mcdex_v1"
    path = tmp_path / "other_kind.yaml"
    path.write_text(f"extends: baseline\nvenue: {{kind: {test_venue}}}\n")
    same = _reset(first, scenario_file=str(path))
    assert same.venue_kind == test_venue and not any("venue=" in o for o in same.overrides)
    third = next((k for k in venue_kinds() if k not in ("mcdex_v1", test_venue)), None)
    if third is not None:
        both = _reset(first, scenario_file=str(path), venue_kind=third)
        assert both.venue_kind == third and f"venue={{kind: {third}}}" in both.overrides


def test_cli_overrides_apply_to_the_command_lines_scenario() -> None:
    item = "venue.governance.maintenance_margin_rate=0.06"
    run = DashboardRun(**initial_params("black_thursday", [item]))
    assert run.error is None and run.overrides == [item]
    assert run.form_values()["maintenance_margin_rate"] == "0.06"


@pytest.fixture
def test_venue() -> Iterator[str]:
    """The contract suite's test-only venue, registered at run time (as a plug-in would be)."""
    path = REPO / "tests" / "engine" / "contract" / "cpmm_venue.py"
    module: ModuleType | None = sys.modules.get("cpmm_venue")
    if module is None:
        spec = importlib.util.spec_from_file_location("cpmm_venue", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["cpmm_venue"] = module
        spec.loader.exec_module(module)
    register_venue(module.SPEC)
    try:
        yield str(module.KIND)
    finally:
        unregister_venue(module.KIND)


def test_the_kind_picker_and_inputs_follow_the_registry(test_venue: str) -> None:
    assert test_venue in venue_kinds()
    first = DashboardRun(**initial_params("baseline"))
    switched = _reset(first, venue_kind=test_venue)
    assert switched.venue_kind == test_venue
    assert f"venue={{kind: {test_venue}}}" in switched.overrides
    spec = venue_spec(test_venue)
    names = [f.name for f in switched.fields]
    assert (
        set(governance_inputs(test_venue))
        <= set(names)
        <= {"seed", *spec.governance_keys}
        | {n for n in spec.config_model.model_fields if n.endswith("_fund")}
    )
    assert "maintenance_margin_rate" in names
    if switched.error is None:
        for _ in range(2):
            switched.step()
        snap = switched.snapshot()
        assert snap is not None and snap.kind == test_venue
    from perpsim.dashboard.app import live_components, model_params

    params = model_params(switched)
    assert test_venue in params["venue_kind"]["values"]
    assert len(live_components(test_venue)) == 2 + len(COMMON_PANELS) + len(
        venue_panels(test_venue)
    )


def test_every_kind_has_a_form() -> None:
    for kind in venue_kinds():
        fields = form_fields(kind, None)
        assert fields[0].name == "seed"
        assert all(f.override.startswith(("seed", "venue.")) for f in fields)


def test_charts_draw_each_series_and_say_when_there_is_nothing(tmp_path: Path) -> None:
    run = DashboardRun(scenario_file="black_thursday", step_size="1 day")
    run.step()
    snap = run.snapshot()
    assert snap is not None
    for panel in (*COMMON_PANELS, *venue_panels(snap.kind)):
        svg = render_panel(panel, snap)
        assert svg.startswith("<svg") and svg.endswith("</svg>")
        drawn = [s for s in panel.series if s.column in snap.timeseries.columns]
        if panel.empty_text and svg.count(panel.empty_text):
            continue
        assert svg.count('class="perpsim-series"') == len(drawn), panel.title
    fund = render_panel(FUND_PANEL, snap)
    assert snap.liquidation_count > 0 and "perpsim-liquidations" in fund
    assert f"liquidations ({snap.liquidation_count:,})" in fund
    funding = render_panel(COMMON_PANELS[1], snap)
    assert "%" in funding
    assert any(row.kind == "liquidation" for row in snap.events)


def test_a_finished_run_folder_is_shown_up_to_any_row(recorded_run_dir: Path) -> None:
    import pandas as pd

    result_events = pd.read_parquet(recorded_run_dir / "events.parquet")
    recorded = RecordedRun(recorded_run_dir)
    assert recorded.n_rows == len(pd.read_parquet(recorded_run_dir / "timeseries.parquet"))
    first, last = recorded.snapshot(0), recorded.snapshot(recorded.n_rows - 1)
    assert len(first.timeseries) == 1 and len(last.timeseries) == recorded.n_rows
    assert first.now < last.now and first.key != last.key
    # The oracle outage begins one day in: right then it is the table's latest event.
    at_outage = int(recorded.timeseries.index[recorded.timeseries["time"] == first.now + 86400][0])
    latest_then = recorded.snapshot(at_outage).events[0]
    assert latest_then.kind == "outage" and "oracle outage" in latest_then.text
    assert first.liquidation_count <= last.liquidation_count
    assert last.liquidation_count == int((result_events["kind"] == "liquidate").sum())


def test_the_page_steps_like_mesa_examples() -> None:
    import ipyvuetify as v
    import solara
    import solara.widgets

    from perpsim.dashboard import app

    def page_text() -> str:
        return " ".join(str(w.unsafe_innerHTML) for w in rc.find(solara.widgets.HTML).widgets)

    layout = solara.AppLayout(children=[app.LivePage("baseline", ())])
    _, rc = solara.render(layout, handle_error=False)
    try:
        step = rc.find(v.Btn, children=["Step"])
        step.assert_single()
        assert "tick 0 of" in page_text()
        step.widget.click()
        assert "tick 60 of" in page_text()  # one step of 1 hour at 1-minute ticks
        assert page_text().count('class="perpsim-series"') >= len(COMMON_PANELS)
    finally:
        rc.close()


def test_perpsim_viz_checks_its_input_before_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["viz", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert cli.main(["viz", str(tmp_path), "--set", "seed=1"]) == 2
    assert "--set changes a scenario" in capsys.readouterr().err
    assert cli.main(["viz", "black_thursday", "--set", "venue.governance.nope=1"]) == 2
    assert "unknown governance key" in capsys.readouterr().err
    assert cli.main(["viz", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err
    monkeypatch.setattr(server, "missing_packages", lambda: ["solara"])
    assert cli.main(["viz", "baseline"]) == 2
    err = capsys.readouterr().err
    assert "pip install -e '.[viz]'" in err and "Traceback" not in err


def test_the_events_table_keeps_the_latest_outage_among_many_liquidations() -> None:
    from perpsim.dashboard.snapshot import EventRow, latest

    outage = EventRow(100, "outage", "keeper outage, 30 min")
    cascade = [EventRow(200 + i, "liquidation", f"trader-{i}") for i in range(30)]
    table = latest([outage, *cascade], n=12)
    assert len(table) == 12 and table[-1] == outage
    assert [r.time for r in table] == sorted((r.time for r in table), reverse=True)
    assert latest(cascade, n=12) == tuple(reversed(cascade[-12:]))


def test_rejected_values_stay_in_their_inputs() -> None:
    first = DashboardRun(**initial_params("black_thursday"))
    bad = _reset(first, maintenance_margin_rate="0.2", seed="11")
    assert bad.error is not None
    shown = bad.form_values()
    assert shown["maintenance_margin_rate"] == "0.2" and shown["seed"] == "11"
    assert shown["insurance_fund"] == first.form_values()["insurance_fund"] == "30000"
    unknown = DashboardRun(scenario_file="baseline", venue_kind="no_such_kind")
    assert unknown.error is not None and "no_such_kind" in unknown.error
