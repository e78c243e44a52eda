"""Typed errors of perpsim.

Every rejected engine operation raises a subclass of :class:`PerpsimError`. The engine validates
all inputs before it mutates anything, so catching one of these means the state is unchanged.
"""

from __future__ import annotations


class PerpsimError(Exception):
    """Base class of every error perpsim raises on purpose."""


class EngineError(PerpsimError):
    """An engine operation was rejected; the engine's state is unchanged."""


class BadAmountError(EngineError):
    """An amount, price, rate or time is not finite, not positive, or out of range."""


class LotSizeError(EngineError):
    """An amount or position is not a multiple of the lot size."""


class WrongStatusError(EngineError):
    """The operation is not allowed in the perpetual's current status."""


class UnsafeError(EngineError):
    """The operation would leave (or finds) an account below its margin requirement."""


class InsufficientBalanceError(EngineError):
    """An account, the pool or the dev account does not hold enough collateral or shares."""


class UnknownAccountError(EngineError):
    """An operation names an account that does not exist."""


class UnknownProductError(EngineError):
    """An operation names a product the venue does not trade."""


class InvalidOperationError(EngineError):
    """The operation is not valid in the current state (self-liquidation, a second pool, ...)."""


class PriceLimitError(EngineError):
    """An AMM trade price is worse than the trader's limit price."""


class DeadlineError(EngineError):
    """An AMM operation arrived after its deadline."""


class GovernanceError(EngineError):
    """A governance parameter is unknown or violates the seed's validation rules."""


class HaltedError(EngineError):
    """Trading, liquidation or new positions are halted (an oracle guard or governance)."""


class InvariantViolation(PerpsimError):
    """An accounting invariant does not hold (a bug, never a user error)."""


class ConfigError(PerpsimError):
    """A scenario, sweep or replay file (or a CLI flag) is invalid."""
