"""Halts in front of any venue: an oracle guard, and governance's pause of new positions.

A real exchange stops trading (or liquidating) when its oracle cannot be trusted: the answer is
older than a staleness limit, or sits at the feed's minimum or maximum answer (Chainlink's
aggregator refuses a round outside its bounds, so the feed freezes at the last answer inside
them, as LUNA/USD did at 0.107 on 2022-05-12 while the market traded near 0.01). Governance can
also pause new positions while positions may still be reduced.

:class:`GuardedVenue` adds these halts to any design without touching it: it forwards every
operation of the :class:`~perpsim.engine.venue.Venue` contract and refuses ``trade`` (and
``liquidate``, ``withdraw``) with :class:`~perpsim.errors.HaltedError` while a halt named in
:class:`Halts` is on. The model decides when a halt starts or ends and sets :attr:`halts`;
the venue's own state is never touched by a refusal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perpsim.engine.venue import Venue
from perpsim.errors import EngineError, HaltedError

__all__ = ["HALTS", "GuardedVenue", "Halts"]

#: What can be halted.
HALTS: tuple[str, ...] = ("trading", "liquidation", "opening", "withdrawal")


@dataclass
class Halts:
    """The halts in force now, each with the reason shown in a refusal (None: not halted).

    Attributes:
        trading: every trade is refused.
        liquidation: every liquidation is refused.
        opening: trades that increase an account's position are refused (reducing is allowed).
        withdrawal: every withdrawal is refused (collateral stays in the venue).
    """

    trading: str | None = None
    liquidation: str | None = None
    opening: str | None = None
    withdrawal: str | None = None
    #: Reasons of every named source that currently asks for each halt (the model's sources:
    #: the oracle guard and each governance rule), so one source ending keeps another's halt.
    sources: dict[str, dict[str, str]] = field(default_factory=dict)

    def set(self, what: str, source: str, reason: str | None) -> bool:
        """Start (``reason`` given) or end (None) the halt ``what`` asked for by ``source``.

        Returns:
            Whether the halt in force changed (started, or ended with no other source left).

        Raises:
            ValueError: ``what`` is not one of :data:`HALTS`.
        """
        if what not in HALTS:
            raise ValueError(f"unknown halt {what!r}: use {', '.join(HALTS)}")
        asks = self.sources.setdefault(what, {})
        if reason is None:
            asks.pop(source, None)
        else:
            asks[source] = reason
        before = getattr(self, what)
        after = "; ".join(asks[s] for s in sorted(asks)) if asks else None
        setattr(self, what, after)
        return (before is None) != (after is None)


class GuardedVenue:
    """A venue whose trades and liquidations stop while a halt is on (see the module).

    Args:
        venue: the design's venue (or one product's view of it).
        halts: the halts, shared by every product view of the same venue.

    Everything but ``trade``, ``liquidate``, ``withdraw`` and ``product`` is the wrapped
    venue's own.
    """

    def __init__(self, venue: Venue, halts: Halts | None = None) -> None:
        self._inner = venue
        self.halts = halts if halts is not None else Halts()

    @property
    def inner(self) -> Venue:
        """The wrapped venue."""
        return self._inner

    def __getattr__(self, name: str) -> Any:
        # Only called for names this class does not define: the rest of the contract.
        return getattr(self._inner, name)

    @property
    def event_sink(self) -> Any:
        """The wrapped venue's event sink."""
        return self._inner.event_sink

    @event_sink.setter
    def event_sink(self, sink: Any) -> None:
        self._inner.event_sink = sink

    def product(self, name: str) -> GuardedVenue:
        """The product's view of the wrapped venue, under the same halts."""
        view = self._inner.product(name)
        return self if view is self._inner else GuardedVenue(view, self.halts)

    def trade(self, account: str | int, size: float, limit_price: float | None = None) -> Any:
        """The wrapped venue's trade, unless trading (or opening, for this trade) is halted.

        Raises:
            HaltedError: a halt is on; nothing changed.
        """
        h = self.halts
        if h.trading is not None:
            raise HaltedError(f"trading is halted: {h.trading}")
        if h.opening is not None and self._opens(account, float(size)):
            raise HaltedError(f"new positions are paused: {h.opening}")
        return self._inner.trade(account, size, limit_price)

    def withdraw(self, account: str, amount: float) -> None:
        """The wrapped venue's withdrawal, unless withdrawals are halted.

        Raises:
            HaltedError: withdrawals are halted; nothing changed.
        """
        if self.halts.withdrawal is not None:
            raise HaltedError(f"withdrawals are halted: {self.halts.withdrawal}")
        self._inner.withdraw(account, amount)

    def liquidate(self, liquidator: str | int, account: str | int, max_amount: float) -> Any:
        """The wrapped venue's liquidation, unless liquidation is halted.

        Raises:
            HaltedError: liquidation is halted; nothing changed.
        """
        if self.halts.liquidation is not None:
            raise HaltedError(f"liquidation is halted: {self.halts.liquidation}")
        return self._inner.liquidate(liquidator, account, max_amount)

    def _opens(self, account: str | int, size: float) -> bool:
        """Whether a trade of ``size`` makes the account's position larger in absolute value."""
        try:
            view = self._inner.account(account)
        except EngineError:  # an account not yet created holds nothing
            return size != 0.0
        held = view.position_size if view.position_side == "long" else -view.position_size
        return abs(held + size) > abs(held) * (1.0 + 1e-12)
