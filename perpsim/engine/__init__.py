"""The exchange engine: plain Python + numpy, no Mesa.

- :class:`Perpetual` — the MCDEX v1 perpetual of seed 002 (margin accounts, trades, liquidation,
  insurance fund, social loss, global settlement).
- :class:`AMMPool` — the MCDEX v1 AMM of seed 004 (the pool account, share tokens, funding).
- :class:`MCDEXVenue` — both behind the :class:`Venue` interface agents use.
"""

from perpsim.engine.accounts import AccountState, AccountStore, Side
from perpsim.engine.amm import AMMPool, FundingState, IndexOracle, SettableOracle
from perpsim.engine.governance import (
    AMM_GOVERNANCE_KEYS,
    GOVERNANCE_KEYS,
    PERPETUAL_GOVERNANCE_KEYS,
    AMMGovernance,
    PerpetualGovernance,
)
from perpsim.engine.perpetual import (
    AccountView,
    ExternalPriceSource,
    LiquidationResult,
    Perpetual,
    PriceSource,
    Status,
    TradeFill,
)
from perpsim.engine.venue import Fill, MCDEXVenue, Quote, Venue

__all__ = [
    "AMM_GOVERNANCE_KEYS",
    "GOVERNANCE_KEYS",
    "PERPETUAL_GOVERNANCE_KEYS",
    "AMMGovernance",
    "AMMPool",
    "AccountState",
    "AccountStore",
    "AccountView",
    "ExternalPriceSource",
    "Fill",
    "FundingState",
    "IndexOracle",
    "LiquidationResult",
    "MCDEXVenue",
    "Perpetual",
    "PerpetualGovernance",
    "PriceSource",
    "Quote",
    "SettableOracle",
    "Side",
    "Status",
    "TradeFill",
    "Venue",
]
