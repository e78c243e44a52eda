"""The event sink: how an engine reports every state-changing operation.

An operation that succeeded emits one flat record (``kind``, ``time`` and its amounts); the model
collects them into the run's event table, which is enough to replay the ledger. A rejected
operation emits nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Receives one event record (a flat dict with at least ``kind`` and ``time``).
EventSink = Callable[[dict[str, Any]], None]


class EventEmitter:
    """Holds an optional :data:`EventSink` and stamps each record with its kind and time."""

    def __init__(self) -> None:
        self.event_sink: EventSink | None = None

    def emit_event(self, kind: str, time: int, fields: dict[str, Any]) -> None:
        """Send ``fields`` (mutated: ``kind`` and ``time`` are added) to the sink, if any."""
        if self.event_sink is not None:
            fields["kind"] = kind
            fields["time"] = time
            self.event_sink(fields)
