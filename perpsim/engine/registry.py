"""The registry of exchange designs: venue kind → :class:`VenueSpec`.

Adding a design is a folder ``perpsim/engine/venues/<kind>/`` whose package exposes ``SPEC``, plus
one line in :data:`VENUES`. Everything above the engine (scenario, model, replay, plots, report)
finds a design here and never imports its folder.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from perpsim.engine.core.events import EventSink
from perpsim.engine.core.figures import FigureSpec
from perpsim.engine.core.index import IndexOracle
from perpsim.engine.venue import SINGLE_PRODUCT, Venue

#: Every registered design: kind → the package that exposes its ``SPEC``.
VENUES: Mapping[str, str] = {
    "mcdex_v1": "perpsim.engine.venues.mcdex_v1",
    "predy": "perpsim.engine.venues.predy",
    "d8x": "perpsim.engine.venues.d8x",
}

#: The design a scenario uses when it names none.
DEFAULT_KIND = "mcdex_v1"


@dataclass(frozen=True, slots=True)
class VenueContext:
    """What the model hands a design's ``build``.

    Attributes:
        oracle: where the venue reads the index price.
        now: the start time (unix seconds).
        capacity: the number of account rows to allocate up front.
        event_sink: receives every state change, the set-up's included.
    """

    oracle: IndexOracle
    now: int
    capacity: int = 64
    event_sink: EventSink | None = None


@dataclass(frozen=True)
class ReplaySpec:
    """How ``perpsim replay`` drives a design.

    Attributes:
        session: makes a replay session from a parsed replay document and a source name for
            messages; ``session.run()`` returns a :class:`~perpsim.engine.core.replay.ReplayReport`.
            It raises :class:`~perpsim.errors.ConfigError` for a malformed document.
        run_doc: the replay document (without ``name``/``kind``) that rebuilds a run's ledger,
            from the run's resolved ``venue:`` section and its event log.
        compare_ledger: compares a finished session's ledger with a run's final accounts table;
            returns a mapping with at least ``mismatches`` (a list) and ``max_abs_diff``.
        operations: the names of the operations a replay file may use.
        observations: the names of the values a replay file may observe.
    """

    session: Callable[[Mapping[str, Any], str], Any]
    run_doc: Callable[[Mapping[str, Any], Any], dict[str, Any]]
    compare_ledger: Callable[[Any, Any], dict[str, Any]]
    operations: tuple[str, ...]
    observations: tuple[str, ...]


@dataclass(frozen=True)
class VenueSpec:
    """One exchange design.

    Attributes:
        kind: its registry key (``venue.kind`` in a scenario).
        title: a human name for reports.
        config_model: the pydantic model of its scenario section (``kind`` is its
            discriminator field).
        build: makes a ready venue (funds seeded, pool created) from a validated config.
        columns: its own time-series columns, prefixed with its kind, after the common ones.
        governance_keys: the keys ``set_governance`` events may change.
        governance_defaults: every governance key with its default, in the design's order
            (what a scenario that sets nothing gets; shown in reports).
        replay: how ``perpsim replay`` runs its operations (None: not replayable).
        figures: its own figures, as data the plotting layer draws.
        experimental: not yet checked against the design's reference cases.
        products: the products a venue of this kind trades (the first is the default); a
            population's ``product:`` must be one of them.
        loss_funds: the funds that absorb a bankrupt trader's loss, in the order they do, each
            as ``(time-series column, name)``; empty when the design has none (its losses fall
            on the LPs). ``perpsim compare`` reports each fund's fall.
        loss_note: who bears a loss, in one sentence (what the design does not have, too).
    """

    kind: str
    title: str
    config_model: type[Any]
    build: Callable[[Any, VenueContext], Venue]
    columns: tuple[str, ...]
    governance_keys: tuple[str, ...]
    governance_defaults: Mapping[str, Any] = field(default_factory=dict)
    replay: ReplaySpec | None = None
    figures: tuple[FigureSpec, ...] = field(default=())
    experimental: bool = False
    products: tuple[str, ...] = SINGLE_PRODUCT
    loss_funds: tuple[tuple[str, str], ...] = ()
    loss_note: str = ""


class UnknownVenueError(KeyError):
    """No design is registered under that kind."""


#: Specs loaded or registered so far (kind → spec).
_LOADED: dict[str, VenueSpec] = {}


def register_venue(spec: VenueSpec, *, replace: bool = False) -> None:
    """Add a design at run time (a plug-in outside this package, or a test's own venue).

    Raises:
        ValueError: ``spec.kind`` is taken and ``replace`` is False.
    """
    if not replace and (spec.kind in VENUES or spec.kind in _LOADED):
        raise ValueError(f"venue kind {spec.kind!r} is already registered")
    _LOADED[spec.kind] = spec


def unregister_venue(kind: str) -> None:
    """Remove a design added by :func:`register_venue` (the built-in ones stay)."""
    if kind in VENUES:
        raise ValueError(f"venue kind {kind!r} is built in and cannot be removed")
    _LOADED.pop(kind, None)


def venue_kinds() -> tuple[str, ...]:
    """Every registered kind: the built-in ones in registry order, then those added."""
    return tuple(VENUES) + tuple(k for k in _LOADED if k not in VENUES)


def venue_spec(kind: str) -> VenueSpec:
    """The spec of ``kind``.

    Raises:
        UnknownVenueError: ``kind`` is not registered.
    """
    spec = _LOADED.get(kind)
    if spec is not None:
        return spec
    if kind not in VENUES:
        raise UnknownVenueError(
            f"unknown venue kind {kind!r}; registered: {', '.join(venue_kinds())}"
        )
    spec = importlib.import_module(VENUES[kind]).SPEC
    if not isinstance(spec, VenueSpec) or spec.kind != kind:
        raise TypeError(f"{VENUES[kind]}.SPEC is not the VenueSpec of {kind!r}")
    _LOADED[kind] = spec
    return spec


def venue_config_models() -> tuple[type[Any], ...]:
    """The scenario config model of every registered design (for the ``venue:`` union)."""
    return tuple(venue_spec(kind).config_model for kind in venue_kinds())


def build_venue(config: Any, context: VenueContext) -> Venue:
    """Build the venue a validated ``venue:`` section describes."""
    return venue_spec(str(config.kind)).build(config, context)
