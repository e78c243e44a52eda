"""Time in a scenario: the ``clock:`` section and times within the run.

Times inside a run are integer seconds from ``clock.start``; they may also be written as
durations (``"6h"``) or as ISO 8601 times, which :class:`~perpsim.scenario.Scenario` converts to
offsets from ``clock.start`` before validation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final

from pydantic import BeforeValidator, Field, Strict, model_validator

from perpsim.engine.core.config import FrozenModel, Problem, ProblemsError, problem_at
from perpsim.oracle.config import Duration, parse_timestamp

__all__ = [
    "MAX_RUN",
    "MAX_TICK",
    "MAX_TICKS",
    "MAX_UNIX_TIME",
    "ClockConfig",
    "safe_timestamp",
]

#: Latest allowed clock.start: 9999-12-31T23:59:59Z.
MAX_UNIX_TIME: Final = 253_402_300_799
#: Longest tick: one week.
MAX_TICK: Final = 7 * 86_400
#: Longest run: 100 years of 365 days.
MAX_RUN: Final = 100 * 365 * 86_400
#: Most ticks in a run.
MAX_TICKS: Final = 1_000_000_000


def _parse_start(value: object) -> int:
    return safe_timestamp(value)


def safe_timestamp(value: object) -> int:
    """:func:`parse_timestamp`, with every failure reported as a ValueError."""
    try:
        return parse_timestamp(value)
    except ValueError:
        raise
    except Exception as exc:  # e.g. OverflowError from pandas for "1h"
        raise ValueError(
            f"cannot read time {value!r}: use Unix seconds or ISO 8601 such as"
            " '2020-03-12T10:00:00Z'"
        ) from exc


class ClockConfig(FrozenModel):
    """The simulated time.

    Tick ``i`` (1 to ``n_ticks``) takes the time to ``start + i × tick``.

    Attributes:
        start: Start of the run: Unix seconds or ISO 8601 (UTC unless a zone is given).
        tick: Seconds per tick (``"1m"`` works).
        duration: Length of the run (seconds or ``"3d"``); a multiple of ``tick``. Give this or
            ``ticks``.
        ticks: Number of ticks.
    """

    start: Annotated[int, BeforeValidator(_parse_start), Field(ge=0, le=MAX_UNIX_TIME)]
    tick: Annotated[Duration, Field(gt=0, le=MAX_TICK)]
    duration: Annotated[Duration, Field(gt=0, le=MAX_RUN)] | None = None
    ticks: Annotated[int, Strict(), Field(ge=1, le=MAX_TICKS)] | None = None

    @model_validator(mode="after")
    def _check(self) -> ClockConfig:
        if (self.duration is None) == (self.ticks is None):
            raise ProblemsError(
                [
                    Problem(
                        ("duration" if self.duration is not None else "ticks",),
                        "give exactly one of duration and ticks",
                        allowed="duration: 3d or ticks: 4320",
                        related=(("ticks",) if self.duration is not None else ("duration",),),
                    )
                ]
            )
        if self.ticks is not None and self.ticks * self.tick > MAX_RUN:
            raise problem_at(
                ["ticks"],
                f"makes the run longer than {MAX_RUN // 86_400} days",
                got=self.ticks,
                allowed=f"<= {MAX_RUN // self.tick} at {self.tick} s per tick",
            )
        if self.duration is not None and self.duration % self.tick:
            raise problem_at(
                ["duration"],
                f"must be a whole number of ticks ({self.tick} s each)",
                got=self.duration,
                allowed=f"a multiple of {self.tick}",
            )
        return self

    @property
    def n_ticks(self) -> int:
        """Number of ticks of the run."""
        if self.ticks is not None:
            return self.ticks
        assert self.duration is not None  # checked by the validator
        return self.duration // self.tick

    @property
    def span(self) -> int:
        """Length of the run in seconds."""
        return self.n_ticks * self.tick

    @property
    def end(self) -> int:
        """End of the run, Unix seconds."""
        return self.start + self.span

    def iso(self, offset: int) -> str:
        """The ISO 8601 UTC time of a run offset."""
        try:
            moment = datetime.fromtimestamp(self.start + offset, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return f"Unix time {self.start + offset}"
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
