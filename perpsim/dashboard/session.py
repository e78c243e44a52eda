"""A live run for the dashboard: the form's values → the scenario layer → :class:`PerpModel`.

:class:`DashboardRun` is the Mesa model that Mesa's ``SolaraViz`` steps, plays and resets. It
holds no model logic: it turns the form into ``--set`` items (``seed=…``,
``venue.governance.maintenance_margin_rate=…``), loads the scenario with
:func:`perpsim.scenario.load_scenario` exactly as ``perpsim run --set`` does, builds
:class:`perpsim.model.PerpModel` from it and calls its ``step``. A value the scenario layer
rejects is kept as the run's :attr:`DashboardRun.error`, the same message the CLI prints.

Mesa re-creates the model on Reset with ``type(model)(**form values)``, so the constructor takes
every input by keyword and never raises.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import mesa
import pandas as pd

from perpsim.dashboard.snapshot import (
    NOTABLE_KINDS,
    EventRow,
    MarkerSpan,
    Snapshot,
    event_row,
    latest,
    marker_spans,
    scheduled_rows,
)
from perpsim.engine.registry import UnknownVenueError, venue_kinds, venue_spec
from perpsim.errors import ConfigError, InvariantViolation
from perpsim.model import PerpModel
from perpsim.plots.markers import event_markers
from perpsim.plots.rundata import RunData
from perpsim.plots.scenario import governance_value
from perpsim.scenario import Scenario, load_scenario, resolve_scenario_path, shipped_scenarios
from perpsim.scenario.errors import show_value

__all__ = [
    "GOVERNANCE_WORDS",
    "STEP_SIZES",
    "DashboardRun",
    "FormField",
    "form_fields",
    "governance_inputs",
    "scenario_choices",
]

#: What one press of Step (and one frame of Play) advances, by label: a simulated span in
#: seconds, or None for "as many ticks as fit in :data:`FAST_FRAME_S` of wall time".
STEP_SIZES: Final[dict[str, int | None]] = {
    "1 tick": 0,
    "10 minutes": 600,
    "1 hour": 3600,
    "6 hours": 6 * 3600,
    "1 day": 86400,
    "fastest (a frame every 2 s)": None,
}

#: The step size a new dashboard starts with.
DEFAULT_STEP: Final = "1 hour"

#: Wall time of one frame in the fastest step size. Sending a frame to the page costs about
#: 0.3 s here (the table of rows, Solara's diff, the websocket), so a frame every 2 s keeps
#: playing within about 15% of the simulation's own speed.
FAST_FRAME_S: Final = 2.0

#: The governance keys the form offers are those whose name contains one of these words (the
#: rates a risk review varies: margins, penalties, fees, funding); the others stay as the
#: scenario sets them and can still be changed with ``--set``.
GOVERNANCE_WORDS: Final = ("margin", "penalty", "fee", "funding", "dampener", "multiplier")


@dataclass(frozen=True)
class FormField:
    """One text input of the form.

    Attributes:
        name: The input's name (the keyword Mesa passes on Reset).
        label: What the page shows.
        text: The value as the scenario has it.
        override: The ``--set`` key the value goes to.
    """

    name: str
    label: str
    text: str
    override: str


def scenario_choices(extra: str | None = None) -> list[str]:
    """The scenario picker's options: the shipped scenarios by name, and ``extra`` (a file)."""
    names = [p.stem for p in shipped_scenarios()]
    if extra is not None and extra not in names:
        names.insert(0, extra)
    return names


def governance_inputs(kind: str) -> list[str]:
    """The governance keys of ``kind`` the form offers (see :data:`GOVERNANCE_WORDS`)."""
    spec = venue_spec(kind)
    defaults = spec.governance_defaults
    return [
        key
        for key in spec.governance_keys
        if any(word in key for word in GOVERNANCE_WORDS)
        and isinstance(defaults.get(key, 0.0), int | float)
    ]


def fund_inputs(kind: str) -> list[tuple[str, ...]]:
    """The fund balances of ``kind``'s venue section: fields named ``*_fund``, at its top level
    (MCDEX v1's ``insurance_fund``) or one section down (D8X's ``pool.default_fund``)."""
    found: list[tuple[str, ...]] = []
    model = venue_spec(kind).config_model
    for name, info in model.model_fields.items():
        if name.endswith("_fund"):
            found.append((name,))
        inner = getattr(info.annotation, "model_fields", None)
        if isinstance(inner, dict):
            found += [(name, sub) for sub in inner if sub.endswith("_fund")]
    return found


def _default_at(model: Any, path: Sequence[str]) -> Any:
    """The schema default of a venue field path (None when the field is required)."""
    info = model.model_fields[path[0]]
    if len(path) > 1:
        return _default_at(info.annotation, path[1:])
    return None if info.is_required() else info.get_default(call_default_factory=True)


def _text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return show_value(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))  # 30000, not 30000.0
        return repr(value) if math.isfinite(value) else show_value(value)
    return str(value)


def form_fields(kind: str, resolved: Mapping[str, Any] | None) -> list[FormField]:
    """The seed, fund and governance inputs of ``kind``, with the values of a resolved scenario.

    Args:
        kind: The venue kind.
        resolved: The scenario as JSON (``Scenario.model_dump_json``); None gives the design's
            defaults (the form of a scenario that did not validate).
    """
    fields = [
        FormField("seed", "seed", _text(resolved.get("seed", 0)) if resolved else "0", "seed")
    ]
    venue = (resolved or {}).get("venue") or {}
    spec = venue_spec(kind)
    for path in fund_inputs(kind):
        value: Any = venue if str(venue.get("kind")) == kind else {}
        for part in path:
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None:
            value = _default_at(spec.config_model, path)
        name = "_".join(path)
        label = path[-1].replace("_", " ")
        text = "" if value is None else _text(value)
        fields.append(FormField(name, label, text, "venue." + ".".join(path)))
    for key in governance_inputs(kind):
        if resolved is not None and str(venue.get("kind")) == kind:
            value = governance_value(resolved, key)
        else:
            value = spec.governance_defaults.get(key)
        fields.append(FormField(key, key, _text(value), f"venue.governance.{key}"))
    return fields


class DashboardRun(mesa.Model):  # type: ignore[misc]
    """One run of a scenario as the dashboard shows it (Mesa steps it; never raises).

    Keyword args (every one a text, as the page's inputs give them):
        scenario_file: A shipped scenario's name or a scenario file.
        venue_kind: The venue kind to run (another kind than the file's replaces its
            ``venue:`` section by that kind's defaults: ``--set 'venue={kind: …}'``). When the
            scenario changed and the kind did not, the new scenario's own kind.
        step_size: A key of :data:`STEP_SIZES`.
        form: ``{"scenario_file", "venue_kind", "values"}``: what the inputs showed when the form
            was built. Only values the user changed become overrides, and none when the scenario
            or the kind changed (the inputs belonged to the other one).
        cli_overrides: ``--set`` items from the command line, applied to ``cli_file``.
        cli_file: The scenario given on the command line.
        kwargs: The seed, fund and governance inputs (see :func:`form_fields`).

    Attributes:
        model: The run, or None when the scenario did not validate.
        scenario: Not set: Mesa 3.5 reserves the name; see :attr:`config`.
        config: The validated scenario, or None.
        error: The scenario layer's message, or why the run stopped; None when all is well.
        overrides: The ``--set`` items the run was built with.
        fields: The form's inputs for this run.
    """

    def __init__(
        self,
        *,
        scenario_file: str,
        venue_kind: str = "",
        step_size: str = DEFAULT_STEP,
        form: Mapping[str, Any] | None = None,
        cli_overrides: Sequence[str] = (),
        cli_file: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(rng=0)
        # Mesa 3.5 passes its own Scenario object on Reset; perpsim's scenario is the file.
        kwargs.pop("scenario", None)
        self.scenario_file = scenario_file
        self.step_size = step_size if step_size in STEP_SIZES else DEFAULT_STEP
        self.cli_file = cli_file
        self.cli_overrides = tuple(cli_overrides)
        self.model: PerpModel | None = None
        self.config: Scenario | None = None
        self.error: str | None = None
        self.overrides: list[str] = []
        self.frames = 0
        self._rows: list[EventRow] = []
        self._seen = 0
        self._liquidation_times: list[int] = []
        self._spans: tuple[MarkerSpan, ...] = ()
        self._snapshot: Snapshot | None = None
        self.venue_kind = venue_kind
        try:
            self._build(venue_kind, form or {}, kwargs)
        except ConfigError as exc:
            self.error = str(exc)
        except Exception as exc:  # a page must show a message, never a traceback
            self.error = f"{scenario_file}: (top level): could not be built: {exc!r}"
        if not self.venue_kind:
            self.venue_kind = venue_kinds()[0]
        resolved = json.loads(self.config.model_dump_json()) if self.config is not None else None
        try:
            self.fields = form_fields(self.venue_kind, resolved)
        except UnknownVenueError:
            self.fields = []
        if resolved is None and self._same_form(form or {}):
            # Rejected values stay in their inputs (the page keeps them for the next Reset).
            self.fields = [
                dataclasses.replace(f, text=str(kwargs[f.name]).strip())
                if kwargs.get(f.name) is not None
                else f
                for f in self.fields
            ]
        self.running = self._can_step()

    def _same_form(self, form: Mapping[str, Any]) -> bool:
        """Whether the inputs were those of this scenario and kind (not of the previous ones)."""
        return bool(
            form.get("scenario_file") == self.scenario_file
            and form.get("venue_kind") == self.venue_kind
        )

    def _can_step(self) -> bool:
        return (
            self.error is None and self.model is not None and self.model.tick < self.model.n_ticks
        )

    def _build(self, venue_kind: str, form: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        path = resolve_scenario_path(self.scenario_file)
        base = list(self.cli_overrides) if self.scenario_file == self.cli_file else []
        own_kind = str(load_scenario(path, base).venue.kind)
        kind = venue_kind or own_kind
        if form.get("scenario_file") not in (None, self.scenario_file) and (
            venue_kind == form.get("venue_kind")
        ):
            kind = own_kind  # another scenario, kind untouched: the scenario's own kind
        self.venue_kind = kind
        try:
            venue_spec(kind)
        except UnknownVenueError as exc:
            raise ConfigError(f"{self.scenario_file}: venue.kind: {exc.args[0]}") from None
        overrides = list(base)
        if kind != own_kind:
            overrides.append(f"venue={{kind: {kind}}}")
        same_form = self._same_form(form)
        shown: Mapping[str, str] = (form.get("values") or {}) if same_form else {}
        if same_form:
            for spec_field in form_fields(kind, None):
                text = values.get(spec_field.name)
                if text is None or str(text).strip() == shown.get(spec_field.name):
                    continue
                overrides.append(f"{spec_field.override}={str(text).strip()}")
        self.overrides = overrides
        self.config = load_scenario(path, overrides)
        self.model = PerpModel(self.config, base_dir=path.parent)
        resolved = json.loads(self.config.model_dump_json())
        run = RunData(
            path=path,
            timeseries=pd.DataFrame({"time": [], "status": []}),
            events=None,
            accounts=None,
            summary={},
            manifest={"resolved_scenario": resolved},
        )
        self._spans = marker_spans(event_markers(run))
        self._collect()

    @property
    def ticks_per_step(self) -> int | None:
        """Ticks one step advances (None: as many as fit in a frame of wall time)."""
        span = STEP_SIZES[self.step_size]
        if span is None or self.model is None:
            return None
        return max(1, span // self.model.tick_seconds)

    def step(self) -> None:
        """Advance the run by one step size; an invariant violation stops it with a message."""
        model = self.model
        if model is None or self.error is not None:
            self.running = False
            return
        n = self.ticks_per_step
        deadline = time.perf_counter() + FAST_FRAME_S
        try:
            done = 0
            while model.tick < model.n_ticks:
                model.step()
                done += 1
                if (n is not None and done >= n) or (n is None and time.perf_counter() > deadline):
                    break
        except InvariantViolation as exc:
            self.error = f"the run stopped: {exc}"
        except Exception as exc:  # shown on the page instead of a traceback
            self.error = f"the run stopped at tick {model.tick}: {exc!r}"
        self.frames += 1
        self._collect()
        self.running = self._can_step()

    def _collect(self) -> None:
        """Take the new event-log records into the table (the log only grows)."""
        assert self.model is not None
        log = self.model.event_log
        end = len(log)
        # Only the rows since the last frame, and only the kinds the table lists: rebuilding the
        # whole log every frame would cost more as the run goes on.
        for record in log.since(self._seen, *sorted(NOTABLE_KINDS), stop=end):
            row = event_row(record)
            if row is not None:
                self._rows.append(row)
                if row.kind == "liquidation":
                    self._liquidation_times.append(row.time)
        self._seen = end

    def snapshot(self) -> Snapshot | None:
        """What the page shows now (None when the scenario did not validate)."""
        model = self.model
        if model is None:
            return None
        # Every chart of a frame asks; the rows are turned into a table once per frame.
        cached = self._snapshot
        if cached is not None and cached.key == (id(self), model.tick, self.frames):
            return cached
        ts = model.recorder.get_model_vars_dataframe()
        now = int(model.now)
        spec = model.venue_spec
        rows = self._rows[-200:] + scheduled_rows(self._spans, now)
        self._snapshot = Snapshot(
            key=(id(self), model.tick, self.frames),
            name=model.config.name,
            kind=spec.kind,
            title=spec.title,
            seed=model.run_seed,
            timeseries=ts,
            start=int(model.start_time),
            end=int(model.times[-1]),
            now=now,
            tick=int(model.tick),
            n_ticks=int(model.n_ticks),
            events=latest(rows),
            markers=tuple(s for s in self._spans if s.start <= now),
            liquidation_times=tuple(self._liquidation_times),
            liquidation_count=len(self._liquidation_times),
            columns=tuple(spec.columns),
        )
        return self._snapshot

    def form_values(self) -> dict[str, str]:
        """The texts the form shows for this run (what ``form["values"]`` holds)."""
        return {f.name: f.text for f in self.fields}


def initial_params(scenario: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The keyword arguments of the first :class:`DashboardRun` of ``perpsim viz SCENARIO``."""
    name = str(scenario)
    return {
        "scenario_file": name,
        "venue_kind": "",
        "step_size": DEFAULT_STEP,
        "form": None,
        "cli_overrides": tuple(overrides),
        "cli_file": name,
    }
