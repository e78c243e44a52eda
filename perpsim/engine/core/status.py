"""The lifecycle status of an exchange.

MCDEX v1 names three (seed 002); the other designs map their own states onto these so that
agents and the model can ask one question: may trading go on?
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """The perpetual's status (seed 002)."""

    NORMAL = "NORMAL"
    EMERGENCY = "EMERGENCY"
    SETTLED = "SETTLED"
