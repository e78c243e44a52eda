"""The keeper: brings new oracle prices into the exchange for the update_index prize."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from perpsim.engine.core.config import FrozenModel
from perpsim.engine.core.status import Status

from ..base import PerpAgent, Phase
from ..params import DelayParam, NonNegativeParam

if TYPE_CHECKING:
    from perpsim.model import PerpModel

#: Collateral a keeper deposits at the start to open the margin account its prizes are paid
#: into (an account exists only once something is deposited). One unit of collateral: small
#: next to any prize worth calling for, and easy to subtract when reading its PnL.
KEEPER_DEPOSIT = 1.0


class KeeperParams(FrozenModel):
    """Parameters of a keeper (calls ``update_index`` for the prize, which also runs funding).

    Attributes:
        latency: Seconds between a new oracle price and the keeper's update_index call.
        gas_cost: Cost (USD) of one call; a keeper calls only if the prize covers it.
    """

    latency: DelayParam = 30
    gas_cost: NonNegativeParam = 5.0


class Keeper(PerpAgent):
    """Calls update_index ``latency`` seconds after each new oracle price, for the prize.

    It sleeps until ``latency`` after the next index update the oracle publishes, then calls
    update_index if the governance prize covers its ``gas_cost`` (gas is paid off the exchange
    and only counted here); the prize, paid when the call brings in a changed index, lands in
    its margin account. While a keeper outage has taken it down it skips the updates.
    """

    agent_type: ClassVar[str] = "keeper"
    Params: ClassVar[type[FrozenModel]] = KeeperParams
    phase: ClassVar[Phase] = Phase.KEEPER

    def __init__(
        self,
        model: PerpModel,
        name: str,
        population: str,
        params: dict[str, Any],
        rng: np.random.Generator,
    ) -> None:
        super().__init__(model, name, population, params, rng)
        self.latency = float(params["latency"])
        self.gas_cost = float(params["gas_cost"])
        self.calls = 0
        self.skipped = 0
        self.prizes = 0.0
        self.gas_spent = 0.0

    def start(self) -> None:
        """Open the prize account and wait for the next oracle update."""
        self.venue.deposit(self.name, KEEPER_DEPOSIT)
        self._schedule()

    def _schedule(self) -> None:
        update = self.model.next_oracle_update_after(self.now)
        if update is not None:
            self.wake_at(update + self.latency)

    def step(self) -> None:
        """Call update_index if it is up and the prize covers the gas; wait for the next one."""
        if self.venue.status is not Status.NORMAL:
            return
        if self.is_down():
            self.skipped += 1
        elif self.venue.rules.keeper_prize >= self.gas_cost:
            self.calls += 1
            self.gas_spent += self.gas_cost
            prize = self.attempt("update_index", self.venue.update_index, self.name)
            if prize is not None:
                self.prizes += float(prize)
        else:
            self.skipped += 1
        self._schedule()
