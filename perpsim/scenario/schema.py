"""The :class:`Scenario` model: every section, and the checks that span sections."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, Strict, model_validator
from pydantic.fields import FieldInfo

from perpsim.agents.params import looks_absolute
from perpsim.agents.services.admin import AdminParams
from perpsim.agents.traders.whale import WhaleParams
from perpsim.engine.core.config import (
    FrozenModel,
    Problem,
    ProblemsError,
    StrictStr,
    unknown_name_message,
)
from perpsim.engine.registry import DEFAULT_KIND, venue_kinds, venue_spec
from perpsim.errors import ConfigError, GovernanceError
from perpsim.oracle.assets import AssetConfig
from perpsim.oracle.config import BootstrapPath, HistoricalPath, OracleFeedConfig, PricePathConfig
from perpsim.oracle.data import format_time
from perpsim.oracle.paths import load_path_data
from perpsim.scenario.assets import check_assets, fill_underlying_path, underlying_of
from perpsim.scenario.clock import ClockConfig, safe_timestamp
from perpsim.scenario.events import (
    Event,
    HedgerOutageEvent,
    KeeperOutageEvent,
    LiquidatorOutageEvent,
    LiquidityWithdrawalEvent,
    OracleManipulationEvent,
    OracleOutageEvent,
    PriceShockEvent,
    SetGovernanceEvent,
)
from perpsim.scenario.output import OutputConfig
from perpsim.scenario.populations import Population
from perpsim.scenario.rules import GovernanceRule, SetGovernanceAction, governance_value
from perpsim.scenario.venue import VenueConfig, refuse_moved_keys, venue_union
from perpsim.scenario.yaml import PathElem

__all__ = ["Scenario", "follow_registry"]


def _guard_foreign_sections(data: Mapping[str, Any]) -> None:
    """Catches what the price path and oracle models would accept silently or crash on.

    Those models read numbers leniently (``true`` would be 1.0), and their time parser can fail
    with something other than a ValueError; both are reported here with their key path.
    """
    problems: list[Problem] = []

    def visit(node: Any, path: tuple[PathElem, ...]) -> None:
        if isinstance(node, bool):
            problems.append(
                Problem(path, "must be a number, not true/false", got=node, allowed="a number")
            )
        elif isinstance(node, Mapping):
            for key, value in node.items():
                if key != "filter":
                    visit(value, (*path, key))
        elif isinstance(node, list | tuple):
            for i, value in enumerate(node):
                visit(value, (*path, i))

    for section in ("price_path", "oracle"):
        visit(data.get(section), (section,))
    price_path = data.get("price_path")
    if isinstance(price_path, Mapping):
        for key in ("start", "end"):
            value = price_path.get(key)
            if value is None or isinstance(value, bool):
                continue
            try:
                safe_timestamp(value)
            except ValueError as exc:
                if exc.__cause__ is not None:
                    problems.append(Problem(("price_path", key), str(exc), got=value))
    if problems:
        raise ProblemsError(problems)


def _to_offset(value: Any, start: int) -> Any:
    """Converts an ISO 8601 time into seconds from ``start``; leaves anything else."""
    if not looks_absolute(value):
        return value
    try:
        return safe_timestamp(value) - start
    except ValueError:
        return value


class Scenario(FrozenModel):
    """One simulation run, validated and frozen.

    Attributes:
        name: Short name.
        description: What question the scenario answers (several lines allowed).
        seed: Root seed of the run's random streams (>= 0).
        clock: Start, tick and length.
        price_path: The market price path (``kind`` selects the generator).
        oracle: The oracle feed that turns the market price into index updates.
        venue: The exchange design (``kind``) and its own settings: governance, pool, funds.
        agents: Agent populations.
        events: The event timeline (in file order; see :meth:`timeline`).
        assets: Named assets with their own price paths (:mod:`perpsim.scenario.assets`).
        governance_rules: Rules that change governance while the run goes, from its state
            (:mod:`perpsim.scenario.rules`).
        output: Output settings.
    """

    name: Annotated[str, Strict(), Field(min_length=1)]
    description: StrictStr = ""
    seed: Annotated[int, Strict(), Field(ge=0)] = 0
    clock: ClockConfig
    price_path: PricePathConfig
    oracle: OracleFeedConfig = OracleFeedConfig()
    venue: VenueConfig = Field(default_factory=lambda: venue_spec(DEFAULT_KIND).config_model())
    agents: tuple[Population, ...] = ()
    events: tuple[Event, ...] = ()
    assets: dict[str, AssetConfig] = Field(default_factory=dict)
    governance_rules: tuple[GovernanceRule, ...] = ()
    output: OutputConfig = OutputConfig()

    @model_validator(mode="before")
    @classmethod
    def _absolute_times(cls, data: Any) -> Any:
        """Converts ISO 8601 times within the run into offsets from ``clock.start``."""
        if not isinstance(data, Mapping):
            return data
        refuse_moved_keys(data)
        data = fill_underlying_path(data)
        _guard_foreign_sections(data)
        if not isinstance(data.get("clock"), Mapping):
            return data
        try:
            start = safe_timestamp(data["clock"].get("start"))
        except ValueError:
            return data
        out = dict(data)
        if isinstance(out.get("events"), list | tuple):
            out["events"] = [
                {**e, "at": _to_offset(e["at"], start)}
                if isinstance(e, Mapping) and "at" in e
                else e
                for e in out["events"]
            ]
        if isinstance(out.get("agents"), list | tuple):
            out["agents"] = [_population_times(p, start) for p in out["agents"]]
        return out

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        problems: list[Problem] = []
        problems += self._check_populations()
        problems += self._check_times()
        problems += self._check_event_targets()
        problems += self._check_governance_timeline()
        problems += self._check_rules()
        problems += self._check_output()
        problems += self._check_price_data()
        problems += check_assets(self.assets, self.price_path, True)
        if problems:
            raise ProblemsError(problems)
        self._fold_timeline()
        return self

    def _fold_timeline(self) -> None:
        """One list of scheduled events: the path's shocks and the oracle's windows move there.

        ``price_path.shocks``, ``oracle.outages`` and ``oracle.manipulations`` are the second
        documented way to write ``price_shock``, ``oracle_outage`` and ``oracle_manipulation``
        events. They are appended to :attr:`events` (and emptied), so the run, the figures'
        markers, the report and the manifest see every one of them in one place. The run is
        the same: shocks compose by multiplication and windows by union, in any order.
        """
        path, oracle = self.price_path, self.oracle
        if not (path.shocks or oracle.outages or oracle.manipulations):
            return
        folded: list[Any] = [
            *(
                PriceShockEvent(kind="price_shock", at=s.at, change=s.change, over=s.over)
                for s in path.shocks
            ),
            *(
                OracleOutageEvent(kind="oracle_outage", at=o.start, duration=o.duration)
                for o in oracle.outages
            ),
            *(
                OracleManipulationEvent(
                    kind="oracle_manipulation", at=m.start, duration=m.duration, spike=m.spike
                )
                for m in oracle.manipulations
            ),
        ]
        # The model is frozen; this runs once, inside its own validation.
        object.__setattr__(self, "events", (*self.events, *folded))
        object.__setattr__(self, "price_path", path.model_copy(update={"shocks": ()}))
        object.__setattr__(
            self, "oracle", oracle.model_copy(update={"outages": (), "manipulations": ()})
        )

    # -- checks ---------------------------------------------------------------------------

    def _check_populations(self) -> list[Problem]:
        problems: list[Problem] = []
        first: dict[str, int] = {}
        admins = 0
        products = venue_spec(self.venue.kind).products
        for i, pop in enumerate(self.agents):
            if pop.name in first:
                problems.append(
                    Problem(
                        ("agents", i, "name"),
                        f"duplicate population name (already used by agents.{first[pop.name]})",
                        got=pop.name,
                        allowed="a name not used by another population",
                    )
                )
            first.setdefault(pop.name, i)
            if pop.product is not None and pop.product not in products:
                problems.append(
                    Problem(
                        ("agents", i, "product"),
                        f"venue kind {self.venue.kind!r} has no product {pop.product!r}",
                        got=pop.product,
                        allowed=" | ".join(products),
                    )
                )
            if pop.type == "admin":
                admins += pop.count
                if admins > 1 and pop.count:
                    problems.append(
                        Problem(
                            ("agents", i, "count"),
                            "a scenario has at most one admin",
                            got=pop.count,
                            allowed="one admin population with count 1",
                        )
                    )
        return problems

    def _check_times(self) -> list[Problem]:
        span = self.clock.span
        problems: list[Problem] = []

        def check(path: tuple[PathElem, ...], offset: int) -> None:
            if 0 <= offset <= span:
                return
            where = "before the start" if offset < 0 else "after the end"
            problems.append(
                Problem(
                    path,
                    f"is {where} of the run (offset {offset} s = {self.clock.iso(offset)})",
                    got=offset,
                    allowed=f"0 to {span} s ({self.clock.iso(0)} to {self.clock.iso(span)})",
                )
            )

        for i, event in enumerate(self.events):
            check(("events", i, "at"), event.at)
        for i, pop in enumerate(self.agents):
            if isinstance(pop.params, WhaleParams) and pop.params.schedule is not None:
                for j, t in enumerate(pop.params.schedule):
                    check(("agents", i, "params", "schedule", j), t)
            if isinstance(pop.params, AdminParams) and pop.params.settle_at is not None:
                check(("agents", i, "params", "settle_at"), pop.params.settle_at)
        for i, shock in enumerate(self.price_path.shocks):
            check(("price_path", "shocks", i, "at"), shock.at)
        for i, outage in enumerate(self.oracle.outages):
            check(("oracle", "outages", i, "start"), outage.start)
        for i, manipulation in enumerate(self.oracle.manipulations):
            check(("oracle", "manipulations", i, "start"), manipulation.start)
        return problems

    def _check_event_targets(self) -> list[Problem]:
        wanted: dict[type, str] = {
            LiquidityWithdrawalEvent: "liquidity_provider",
            KeeperOutageEvent: "keeper",
            LiquidatorOutageEvent: "liquidator",
            HedgerOutageEvent: "predy_hedger",
        }
        problems: list[Problem] = []
        for i, event in enumerate(self.events):
            target = getattr(event, "population", None)
            if target is None:
                continue
            type_name = wanted[type(event)]
            names = [p.name for p in self.agents if p.type == type_name]
            if target not in names:
                problems.append(
                    Problem(
                        ("events", i, "population"),
                        unknown_name_message(f"{type_name} population", target, names),
                        got=target,
                        allowed=", ".join(names) or f"(no {type_name} population defined)",
                    )
                )
        return problems

    def _check_governance_timeline(self) -> list[Problem]:
        venue = self.venue
        keys = venue.governance_keys
        problems: list[Problem] = []
        for index, event in self._sorted_events():
            if not isinstance(event, SetGovernanceEvent):
                continue
            if event.key not in keys:
                problems.append(
                    Problem(
                        ("events", index, "key"),
                        unknown_name_message("governance key", event.key, keys),
                        got=event.key,
                        allowed=", ".join(keys),
                    )
                )
                continue
            try:
                venue = venue.with_governance(event.key, event.value)
            except GovernanceError as exc:
                problems.append(
                    Problem(
                        ("events", index, "value"),
                        f"rejected by the engine at offset {event.at} s: {exc}",
                        got=event.value,
                    )
                )
        return problems

    def _check_rules(self) -> list[Problem]:
        """Unique names; a governance action names a numeric key of the venue and every value
        it can reach from the start (its first step, its limit) passes the engine's checks."""
        problems: list[Problem] = []
        first: dict[str, int] = {}
        keys = self.venue.governance_keys
        for i, rule in enumerate(self.governance_rules):
            if rule.name in first:
                problems.append(
                    Problem(
                        ("governance_rules", i, "name"),
                        "duplicate rule name"
                        f" (already used by governance_rules.{first[rule.name]})",
                        got=rule.name,
                    )
                )
            first.setdefault(rule.name, i)
            action = rule.action
            if not isinstance(action, SetGovernanceAction):
                continue
            where = ("governance_rules", i, "action", "key")
            if action.key not in keys:
                problems.append(
                    Problem(
                        where,
                        unknown_name_message("governance key", action.key, keys),
                        got=action.key,
                        allowed=", ".join(keys),
                    )
                )
                continue
            base = governance_value(self.venue, action.key)
            if base is None:
                problems.append(Problem(where, "is not a numeric governance key", got=action.key))
                continue
            reach = [action.target(base)]
            if action.limit is not None:
                reach.append(action.limit)
            for value in reach:
                try:
                    self.venue.with_governance(action.key, value)
                except GovernanceError as exc:
                    problems.append(
                        Problem(
                            ("governance_rules", i, "action"),
                            f"{action.key}={value:g} (reachable from {base:g}) is rejected by"
                            f" the engine: {exc}",
                            got=value,
                        )
                    )
                    break
        return problems

    def _check_output(self) -> list[Problem]:
        if self.output.record_every <= self.clock.n_ticks:
            return []
        return [
            Problem(
                ("output", "record_every"),
                f"is longer than the run ({self.clock.n_ticks} ticks)",
                got=self.output.record_every,
                allowed=f"1 to {self.clock.n_ticks}",
            )
        ]

    def _check_price_data(self) -> list[Problem]:
        path = self.price_path
        if not isinstance(path, HistoricalPath | BootstrapPath):
            return []
        if not Path(path.file).expanduser().is_file():
            return [Problem(("price_path", "file"), "file not found", got=path.file)]
        try:
            series = load_path_data(path, None)
        except ConfigError as exc:
            return [Problem(("price_path", _data_error_key(str(exc))), str(exc))]
        if not isinstance(path, HistoricalPath):
            return []
        first, last = int(series.times[0]), int(series.times[-1])
        if first <= self.clock.start and self.clock.end <= last:
            return []
        return [
            Problem(
                ("clock", "start"),
                f"the run ({self.clock.iso(0)} to {self.clock.iso(self.clock.span)}) is not"
                f" covered by the price data ({format_time(first)} to {format_time(last)})",
                got=self.clock.start,
                allowed=f"a run within {format_time(first)} to {format_time(last)}",
                related=(
                    ("clock", "duration" if self.clock.duration is not None else "ticks"),
                    ("price_path", "file"),
                ),
            )
        ]

    # -- accessors ------------------------------------------------------------------------

    def governance_at(self, offset: int) -> Any:
        """The venue's section after the ``set_governance`` events at or before ``offset``.

        Args:
            offset: Seconds from ``clock.start``.

        Returns:
            A copy of :attr:`venue` with those changes applied (validated, as in the run).
        """
        venue = self.venue
        for _, event in self._sorted_events():
            if event.at > offset:
                break
            if isinstance(event, SetGovernanceEvent):
                venue = venue.with_governance(event.key, event.value)
        return venue

    def rule_base_values(self) -> dict[str, float]:
        """The start value of every governance key an enabled rule changes."""
        out: dict[str, float] = {}
        for rule in self.governance_rules:
            action = rule.action
            if rule.enabled and isinstance(action, SetGovernanceAction):
                value = governance_value(self.venue, action.key)
                if value is not None:
                    out[action.key] = value
        return out

    def _sorted_events(self) -> list[tuple[int, Any]]:
        return sorted(enumerate(self.events), key=lambda item: (item[1].at, item[0]))

    def timeline(self) -> tuple[Any, ...]:
        """The events in the order they fire: by time, then by position in the file."""
        return tuple(event for _, event in self._sorted_events())

    def population(self, name: str) -> Any:
        """The population called ``name``.

        Raises:
            KeyError: No population has that name.
        """
        for pop in self.agents:
            if pop.name == name:
                return pop
        raise KeyError(name)

    @property
    def underlying_asset(self) -> str | None:
        """The asset of ``assets:`` that is the perpetual's underlying, if any."""
        return underlying_of(self.assets)

    @property
    def n_ticks(self) -> int:
        """Number of ticks of the run."""
        return self.clock.n_ticks


def _data_error_key(message: str) -> str:
    """The price_path key a data-loading error is about."""
    for word, key in (
        ("bars", "bars"),
        ("filter", "filter"),
        ("time_column", "time_column"),
        ("price_column", "price_column"),
        ("the window", "start"),
        ("gap", "gap_tolerance"),
    ):
        if word in message:
            return key
    return "file"


def _population_times(pop: Any, start: int) -> Any:
    if not isinstance(pop, Mapping) or not isinstance(pop.get("params"), Mapping):
        return pop
    params = dict(pop["params"])
    if isinstance(params.get("schedule"), list | tuple):
        params["schedule"] = [_to_offset(t, start) for t in params["schedule"]]
    if "settle_at" in params:
        params["settle_at"] = _to_offset(params["settle_at"], start)
    return {**pop, "params": params}


#: The venue kinds the ``Scenario`` model was last built for.
_VENUE_KINDS: list[tuple[str, ...]] = [venue_kinds()]


def follow_registry() -> None:
    """Rebuild the ``venue:`` field when designs were registered (or removed) since.

    A plug-in or a test registers its design at run time with
    :func:`perpsim.engine.registry.register_venue`; its scenarios validate from then on.
    """
    kinds = venue_kinds()
    if kinds == _VENUE_KINDS[0]:
        return
    union = venue_union()
    field = Scenario.model_fields["venue"]
    field.annotation = typing.get_args(union)[0]
    field.metadata = [m for m in typing.get_args(union)[1:] if not isinstance(m, FieldInfo)]
    field.discriminator = "kind"
    Scenario.model_rebuild(force=True)
    _VENUE_KINDS[0] = kinds
