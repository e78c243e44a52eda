"""Mesa agents of perpsim, installed as ``perpsim.agents``.

Agents observe the market, decide, and call the venue (:class:`perpsim.engine.Venue`); they
never touch balances themselves.
"""

from __future__ import annotations

from .admin import Admin
from .arbitrageur import Arbitrageur
from .base import PerpAgent, Phase
from .keeper import Keeper
from .liquidator import Liquidator
from .liquidity_provider import LiquidityProvider
from .momentum_trader import MomentumTrader
from .noise_trader import NoiseTrader
from .whale import Whale

#: Agent class of each scenario population ``type``.
REGISTRY: dict[str, type[PerpAgent]] = {
    cls.agent_type: cls
    for cls in (
        NoiseTrader,
        MomentumTrader,
        Arbitrageur,
        Whale,
        LiquidityProvider,
        Liquidator,
        Keeper,
        Admin,
    )
}

__all__ = [
    "REGISTRY",
    "Admin",
    "Arbitrageur",
    "Keeper",
    "Liquidator",
    "LiquidityProvider",
    "MomentumTrader",
    "NoiseTrader",
    "PerpAgent",
    "Phase",
    "Whale",
]
