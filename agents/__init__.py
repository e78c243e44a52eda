"""Mesa agents of perpsim, installed as ``perpsim.agents``.

Agents observe the market, decide, and call the venue (:class:`perpsim.engine.Venue`); they
never touch balances themselves.

Each agent class names its scenario ``type`` (``agent_type``) and carries its typed parameters
model (``Params``, defined in the same file from the pieces of :mod:`perpsim.agents.params`).
The scenario's ``agents:`` union is built from :data:`REGISTRY`, so a new agent type is one
file plus its import and its entry in the tuple below.
"""

from __future__ import annotations

from .base import PerpAgent, Phase
from .liquidity.liquidity_provider import LiquidityProvider
from .services.admin import Admin
from .services.backstop import Backstop
from .services.keeper import Keeper
from .services.liquidator import Liquidator
from .services.predy_hedger import PredyHedger
from .traders.arbitrageur import Arbitrageur
from .traders.cross_venue_cycler import CrossVenueCycler
from .traders.fund_drainer import FundDrainer
from .traders.momentum_trader import MomentumTrader
from .traders.noise_trader import NoiseTrader
from .traders.oracle_pumper import OraclePumper
from .traders.self_liquidator import SelfLiquidator
from .traders.variance_seller import VarianceSeller
from .traders.whale import Whale
from .vaults.family import GLPVaultFamily

#: Agent class of each scenario population ``type`` (its ``Params`` validate the population).
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
        PredyHedger,
        VarianceSeller,
        GLPVaultFamily,
        FundDrainer,
        OraclePumper,
        CrossVenueCycler,
        Backstop,
        SelfLiquidator,
    )
}

__all__ = [
    "REGISTRY",
    "Admin",
    "Arbitrageur",
    "Backstop",
    "CrossVenueCycler",
    "FundDrainer",
    "GLPVaultFamily",
    "Keeper",
    "Liquidator",
    "LiquidityProvider",
    "MomentumTrader",
    "NoiseTrader",
    "OraclePumper",
    "PerpAgent",
    "Phase",
    "PredyHedger",
    "SelfLiquidator",
    "VarianceSeller",
    "Whale",
]
