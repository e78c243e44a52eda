"""The ``venue:`` section: a union of the registered designs' config models, keyed by ``kind``."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Annotated, Any, Final, TypeAlias

from pydantic import BeforeValidator, Field

from perpsim.engine.core.config import Problem, ProblemsError, VenueSection
from perpsim.engine.registry import DEFAULT_KIND, venue_config_models

__all__ = ["MOVED_TO_VENUE", "VenueConfig", "refuse_moved_keys", "venue_union"]


def _default_kind(value: Any) -> Any:
    """A ``venue:`` section without ``kind`` is the default design's."""
    if isinstance(value, Mapping) and "kind" not in value:
        return {"kind": DEFAULT_KIND, **value}
    return value


#: The ``venue:`` section: the config model of the design its ``kind`` names (every registered
#: design; MCDEX v1 when ``kind`` is left out).
def venue_union() -> Any:
    """The ``venue:`` field's type: a union over every design registered now, keyed by kind."""
    return Annotated[
        typing.Union[venue_config_models()],  # noqa: UP007 (a union built from the registry)
        BeforeValidator(_default_kind),
        Field(discriminator="kind"),
    ]


if typing.TYPE_CHECKING:
    VenueConfig: TypeAlias = VenueSection
else:
    VenueConfig = venue_union()

#: Top-level keys of older scenarios that now live in the ``venue:`` section.
MOVED_TO_VENUE: Final = ("governance", "pool", "insurance_fund", "dev_balance")


def refuse_moved_keys(data: Mapping[str, Any]) -> None:
    """Refuses the flat keys of older scenarios, naming their new path under ``venue:``.

    Raises:
        ProblemsError: One problem per moved key found in ``data``.
    """
    problems = [
        Problem(
            (key,),
            f"moved to venue.{key} (the exchange design's own section)",
            allowed=f"venue: {{kind: {DEFAULT_KIND}, {key}: ...}}",
        )
        for key in MOVED_TO_VENUE
        if key in data
    ]
    if problems:
        raise ProblemsError(problems)
