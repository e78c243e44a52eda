"""The counterparty backstop: a large vault that takes unsafe positions over and holds them.

Hyperliquid's HLP "liquidator vault" is the model: when a position is too large for the book to
absorb, the backstop inherits it at the liquidation price (with its margin) instead of selling
it into the market, then holds it and unwinds it slowly, or not at all. In March 2025 it
inherited the JELLY whale's short and marked a loss of about 12M USD before the exchange
settled the market. It is a :class:`~perpsim.agents.services.liquidator.Liquidator` without a
per-tick capacity: every tick it takes all that the venue's liquidation lets it take of every
unsafe account (within its own margin: the whole position where the venue lets a liquidation
take it, as it does a bankrupt one), and it tracks its profit and loss on what it inherited.

Where a venue's pool takes a liquidated position itself (D8X's ``liquidateByAMM``, Predy's
``liquidateByPool``), the pool *is* the backstop: this agent is then only the liquidator that
triggers it, holds nothing, and its LPs carry the loss (``lp_loss`` of ``governance_rules:``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from perpsim.engine.core.config import FrozenModel

from ..params import DelayParam, DurationParam, PositiveParam
from .liquidator import LiquidationUnwind, Liquidator

if TYPE_CHECKING:
    from perpsim.model import PerpModel

#: Contracts per tick the backstop may take over: no bound in practice (its margin binds).
UNBOUNDED = 1e12


class BackstopParams(FrozenModel):
    """Parameters of a counterparty backstop (takes unsafe positions over, holds them).

    Attributes:
        capital: Collateral (USD) the vault deposits; it can inherit positions up to about
            0.9 × capital / initial margin rate of notional.
        latency: Seconds between an account becoming unsafe and the backstop taking it over.
        unwind: ``hold`` (keep what it inherited: Hyperliquid's vault during JELLY),
            ``twap`` (sell it back into the pool in equal slices over ``unwind_horizon``) or
            ``immediate``.
        unwind_horizon: Seconds over which a ``twap`` unwind is spread.
    """

    capital: PositiveParam = 50_000_000.0
    latency: DelayParam = 0
    unwind: LiquidationUnwind = "hold"
    unwind_horizon: DurationParam = 86_400


class Backstop(Liquidator):
    """Takes over all it may of every unsafe position (no capacity, within its margin).

    Attributes:
        deposited: the collateral it put in.
        liquidated_amount: contracts inherited so far (from :class:`Liquidator`).
        inherited_value: their notional at the liquidation prices (USD).
    """

    agent_type: ClassVar[str] = "backstop"
    Params: ClassVar[type[FrozenModel]] = BackstopParams

    def __init__(
        self,
        model: PerpModel,
        name: str,
        population: str,
        params: dict[str, Any],
        rng: np.random.Generator,
    ) -> None:
        super().__init__(model, name, population, {**params, "capacity": UNBOUNDED}, rng)
        self.deposited = float(params["capital"])
        self.inherited_value = 0.0

    def liquidate(self, rows: Any) -> float:
        """Take over ``rows`` (as :meth:`Liquidator.liquidate`, without a capacity)."""
        before = self.liquidated_amount
        taken = super().liquidate(rows)
        if self.liquidated_amount > before:
            self.inherited_value += (self.liquidated_amount - before) * self.venue.mark_price()
        return taken

    @property
    def pnl(self) -> float:
        """Its profit so far (USD): margin balance at the mark minus what it deposited.

        It includes the penalties it earned and its unwinding trades; read it while the venue
        trades (after settlement the account is paid out and flat: see ``accounts.parquet``).
        """
        return self.venue.account(self.name).margin_balance - self.deposited

    @property
    def loss(self) -> float:
        """What it has lost so far (USD; negative when it is ahead): ``-pnl``."""
        return -self.pnl
