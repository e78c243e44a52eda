"""Progress of a long job (a run's ticks, a sweep's runs), on stderr.

One :class:`Progress` serves ``perpsim run`` and ``perpsim sweep``: a rich bar with the time
elapsed and an ETA on a terminal; one line per 10% when stderr is a log file (so a sweep on a
cluster still shows where it is); or nothing.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Literal, TypeAlias

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

__all__ = ["Progress", "ProgressMode", "duration_text"]

#: ``bar`` (rich, on a terminal), ``lines`` (a line per 10%, for logs) or ``off``.
ProgressMode: TypeAlias = Literal["bar", "lines", "off"]


def duration_text(seconds: float) -> str:
    """``42 s``, ``3 min 05 s`` or ``2 h 07 min``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Progress:
    """Progress of ``total`` steps of a job named ``label``.

    Args:
        label: The job's name, shown first.
        total: Number of steps.
        unit: What a step is (``ticks``, ``runs``).
        mode: See :data:`ProgressMode`.
        done: Steps already done before this job started (a resumed sweep).
        transient: The bar disappears when stopped (a run's summary table follows it).

    Use it as a context manager, or call :meth:`stop`.
    """

    def __init__(
        self,
        label: str,
        total: int,
        *,
        unit: str,
        mode: ProgressMode = "bar",
        done: int = 0,
        transient: bool = False,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.mode = mode
        self.done = done
        self._start = done
        self._t0 = time.monotonic()
        self._next_line = done + max(1, total // 10)
        self._bar: RichProgress | None = None
        if mode == "bar":
            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(unit),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=transient,
            )
            self._task = self._bar.add_task(label, total=total, completed=done, status="")
            self._bar.start()

    def update(self, *, completed: int | None = None, advance: int = 0, status: str = "") -> None:
        """Moves the progress on.

        Args:
            completed: Steps done so far (absolute), or None to count ``advance`` more.
            advance: Steps done since the last update.
            status: What else to show (rich markup, e.g. ``[red]2 failed``); kept until the
                next update.
        """
        self.done = completed if completed is not None else self.done + advance
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, status=status)
        elif self.mode == "lines" and (self.done >= self._next_line or self.done == self.total):
            self._next_line = self.done + max(1, self.total // 10)
            plain = Text.from_markup(status).plain
            extra = f", {plain}" if plain else ""
            elapsed = time.monotonic() - self._t0
            new = self.done - self._start
            eta = ""
            if new > 0 and self.done < self.total:
                eta = f", ETA {duration_text(elapsed / new * (self.total - self.done))}"
            print(
                f"{self.label}: {self.done}/{self.total} {self.unit}{extra},"
                f" {duration_text(elapsed)} elapsed{eta}",
                file=sys.stderr,
            )

    def stop(self) -> None:
        """Stops the bar (it stays on screen unless ``transient``); idempotent."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
