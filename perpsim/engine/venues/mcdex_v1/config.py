"""TEMPORARY placeholder (lead): replaced by engineer A's MCDEXV1Config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perpsim.engine.venues.mcdex_v1.governance import AMMGovernance, PerpetualGovernance


@dataclass(frozen=True)
class MCDEXV1Config:
    """Placeholder."""

    kind: str
    perpetual_governance: PerpetualGovernance
    amm_governance: AMMGovernance
    pool: Any
    insurance_fund: float
    dev_balance: float
