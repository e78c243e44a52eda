"""Building blocks of typed configuration, shared by the venue configs, the scenario and the sweep.

- :class:`FrozenModel`: the base of every configuration model (frozen, unknown keys refused,
  no NaN or infinity);
- strict numeric and text types (:data:`PositiveReal`, :data:`NonNegativeReal`, ...): ``true``
  or ``"1"`` is not a number here;
- :class:`Problem` / :class:`ProblemsError`: what a validator raises to report problems at key
  paths relative to the value it validates (the scenario turns them into one line each);
- :func:`did_you_mean` / :func:`unknown_name_message`: the suggestion shown for a misspelt name;
- :class:`VenueSection`: what the scenario needs from any design's ``venue:`` config model.

The engine owns these (a venue's config validates with them); everything above imports them.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, ClassVar, Final, Protocol, Self, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, Strict

__all__ = [
    "MISSING",
    "FrozenModel",
    "NonNegativeReal",
    "PathElem",
    "PositiveReal",
    "Problem",
    "ProblemsError",
    "Real",
    "StrictBool",
    "StrictStr",
    "VenueSection",
    "did_you_mean",
    "problem_at",
    "unknown_name_message",
]


class FrozenModel(BaseModel):
    """A frozen configuration model: unknown keys and non-finite numbers are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


Real = Annotated[float, Strict()]
PositiveReal = Annotated[float, Strict(), Field(gt=0)]
NonNegativeReal = Annotated[float, Strict(), Field(ge=0)]
StrictBool = Annotated[bool, Strict()]
StrictStr = Annotated[str, Strict()]

#: One step of a key path: a mapping key or a list index.
PathElem: TypeAlias = str | int


class _Missing:
    """Marker for "no value to show" in a :class:`Problem`."""

    def __repr__(self) -> str:
        return "<missing>"


#: The ``got`` of a :class:`Problem` that has no offending value to show.
MISSING: Final = _Missing()


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration.

    Attributes:
        path: Key path of the offending value, e.g. ``("agents", 0, "params", "size")``.
        message: What is wrong.
        got: The offending value (:data:`MISSING` if there is none to show).
        allowed: What would be accepted, if that can be said briefly.
        related: Other key paths involved (e.g. both margin rates of ``mm < im``).
        context: A note that helps find the value (e.g. the name of the population).
    """

    path: tuple[PathElem, ...]
    message: str
    got: Any = MISSING
    allowed: str | None = None
    related: tuple[tuple[PathElem, ...], ...] = ()
    context: str | None = None


class ProblemsError(ValueError):
    """Raised inside validators to report problems at key paths relative to the validated value.

    Pydantic wraps it in its ``ValidationError``; the scenario unpacks it again so that each
    problem names its own key path.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems: tuple[Problem, ...] = tuple(problems)


def problem_at(path: Sequence[PathElem], message: str, **kwargs: Any) -> ProblemsError:
    """A :class:`ProblemsError` of one :class:`Problem` (keyword arguments as its fields)."""
    return ProblemsError([Problem(tuple(path), message, **kwargs)])


def _normalise_name(word: str) -> str:
    return word.lower().replace("_", "").replace("-", "").replace(" ", "")


def did_you_mean(word: object, options: Iterable[str]) -> str | None:
    """Returns the option closest to ``word``, or None if none is close.

    Args:
        word: What the user wrote.
        options: The valid names.

    Returns:
        The best match (case, ``_`` and ``-`` are ignored first, then difflib's ratio ≥ 0.6).
    """
    opts = list(options)
    text = str(word)
    normalised = {_normalise_name(o): o for o in opts}
    if _normalise_name(text) in normalised:
        return normalised[_normalise_name(text)]
    matches = difflib.get_close_matches(text, opts, n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_name_message(what: str, word: object, options: Sequence[str]) -> str:
    """``unknown WHAT 'word'``, with a did-you-mean suggestion when one is close."""
    suggestion = did_you_mean(word, options)
    hint = f"; did you mean {suggestion!r}?" if suggestion else ""
    return f"unknown {what} {str(word)!r}{hint}"


class VenueSection(Protocol):
    """What the scenario's generic checks need from a design's ``venue:`` config model.

    Attributes:
        governance_keys: The keys ``set_governance`` events (and ``--set``) may change.
        kind: The design's registry key (the section's discriminator).
    """

    governance_keys: ClassVar[tuple[str, ...]]

    @property
    def kind(self) -> str:
        """The design's registry key."""
        ...

    def with_governance(self, key: str, value: float | str) -> Self:
        """A copy with one governance key changed.

        Raises:
            GovernanceError: the design rejects the change.
        """
        ...
