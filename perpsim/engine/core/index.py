"""Where a venue reads its index price: the oracle feed as the exchange sees it at a time.

The model hands every venue an :class:`IndexOracle` built from the scenario's oracle feed;
replays and tests use a :class:`SettableOracle` they publish to by hand.
"""

from __future__ import annotations

from typing import Protocol

from perpsim.engine.core.numbers import check_price, check_time
from perpsim.errors import InvalidOperationError


class IndexOracle(Protocol):
    """What the pool reads: the latest index price and its timestamp as seen at ``now``."""

    def index(self, now: int) -> tuple[float, int]:
        """Return ``(price, timestamp)`` of the latest published index at or before ``now``."""
        ...


class SettableOracle:
    """An oracle whose price and timestamp are set from outside (standalone use, replay)."""

    def __init__(self, price: float | None = None, timestamp: int = 0) -> None:
        self._price: float | None = None
        self._timestamp = 0
        if price is not None:
            self.set(price, timestamp)

    def set(self, price: float, timestamp: int) -> None:
        """Publish ``price`` with index timestamp ``timestamp``."""
        p = check_price(price, "index price")
        t = check_time(timestamp, "index timestamp")
        self._price, self._timestamp = p, t

    def index(self, now: int) -> tuple[float, int]:
        """The last published price and timestamp.

        Raises:
            InvalidOperationError: nothing has been published yet.
        """
        if self._price is None:
            raise InvalidOperationError("the oracle has no index price yet")
        return self._price, self._timestamp
