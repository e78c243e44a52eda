"""The oracle pumper: a long position, a pumped index, the paper gain withdrawn.

The Mango Markets attack of October 2022 on a perpetual exchange: the attacker builds a long
position, the index source (a thin spot market) is pumped for minutes (the scenario's
``oracle_manipulation`` events), and while the index is up the attacker withdraws everything
the venue lets it withdraw against the paper gain. It never closes: when the pump ends the
position is worth far less than what was withdrawn, and the account's deficit is left to the
venue. Its profit is its withdrawals minus its deposits. Only the venue contract is used.

Where a venue lends nothing against an unrealised gain (Predy: a vault withdraws at most its
USDC), the gain can only be taken by closing at the pumped index: with ``close_at`` the attacker
sells its whole position at that time (halving a size the pool refuses), then withdraws.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import model_validator

from perpsim.engine.core.config import FrozenModel, problem_at
from perpsim.engine.core.status import Status

from ..base import PerpAgent, Phase, lots, trade_halving, withdraw_collateral
from ..params import PositiveParam, RunTime

if TYPE_CHECKING:
    from perpsim.model import PerpModel

#: Share of the venue's maximum leverage the position uses (the rest pays fees and impact).
LEVERAGE_USE = 0.9
#: Share of the withdrawable balance taken each tick (the rest absorbs the next tick's move).
WITHDRAW_USE = 0.99
#: Smallest withdrawal it bothers with (USD): below it the balance left is dust.
MIN_WITHDRAWAL = 1.0


class OraclePumperParams(FrozenModel):
    """Parameters of an oracle pumper.

    Attributes:
        capital: Collateral (USD) it deposits.
        size: Contracts of the long position.
        slice: Contracts bought per tick while building it.
        open_at: Run time at which it starts buying.
        withdraw_from: Run time from which it withdraws what it can, every tick.
        withdraw_until: Run time after which it stops (the account is left as it is).
        close_at: Run time at which it sells its whole position (None: it never closes), within
            ``[open_at, withdraw_until]``.
    """

    capital: PositiveParam = 1_000_000.0
    size: PositiveParam = 200.0
    slice: PositiveParam = 20.0
    open_at: RunTime = 3_600
    withdraw_from: RunTime = 7_200
    withdraw_until: RunTime = 9_000
    close_at: RunTime | None = None

    @model_validator(mode="after")
    def _check(self) -> OraclePumperParams:
        if self.close_at is not None and not self.open_at <= self.close_at <= self.withdraw_until:
            raise problem_at(
                ["close_at"],
                f"must lie between open_at ({self.open_at} s) and withdraw_until "
                f"({self.withdraw_until} s); got {self.close_at} s",
                allowed="a run time inside the attack's window, e.g. 2h3m",
            )
        return self


class OraclePumper(PerpAgent):
    """Builds a long, then withdraws against the pumped index every tick (see the module)."""

    agent_type: ClassVar[str] = "oracle_pumper"
    Params: ClassVar[type[FrozenModel]] = OraclePumperParams
    phase: ClassVar[Phase] = Phase.TRADER

    def __init__(
        self,
        model: PerpModel,
        name: str,
        population: str,
        params: dict[str, Any],
        rng: np.random.Generator,
    ) -> None:
        super().__init__(model, name, population, params, rng)
        self.capital = float(params["capital"])
        self.size = float(params["size"])
        self.slice = float(params["slice"])
        self.open_at = model.start_time + int(params["open_at"])
        self.withdraw_from = model.start_time + int(params["withdraw_from"])
        self.withdraw_until = model.start_time + int(params["withdraw_until"])
        close_at = params.get("close_at")
        self.close_at = None if close_at is None else model.start_time + int(close_at)
        self.deposited = 0.0
        self.withdrawn = 0.0
        self.left = 0.0
        self.opened = False
        self.closed = False

    def start(self) -> None:
        """Wait for the opening time."""
        self.wake_at(self.open_at)

    def step(self) -> None:
        """Deposit and buy in slices; withdraw what the venue allows inside the window."""
        if self.venue.status is not Status.NORMAL or self.now > self.withdraw_until:
            return
        if not self.opened:
            self.opened = True
            self.venue.deposit(self.name, self.capital)
            self.deposited = self.capital
            g = self.venue.rules
            price = self.venue.mark_price()
            most = self.capital * LEVERAGE_USE / (g.initial_margin_rate * price)
            self.left = lots(min(self.size, most), g.trading_lot_size)
        if self.left > 0.0:
            part = lots(min(self.left, self.slice), self.venue.rules.trading_lot_size)
            if part <= 0.0 or self.attempt("trade", self.venue.trade, self.name, part) is None:
                self.left = 0.0  # refused (margin, a pause, a halt): keep what it has
            else:
                self.left -= part
        if self.close_at is not None and not self.closed and self.now >= self.close_at:
            self.closed = True
            self.left = 0.0
            self._close()
        if self.now >= self.withdraw_from:
            amount = WITHDRAW_USE * self.venue.account(self.name).withdrawable_balance
            if amount >= MIN_WITHDRAWAL and self.attempt(
                "withdraw", withdraw_collateral, self.venue, self.name, amount
            ):
                self.withdrawn += amount
        self.wake_in(self.model.tick_seconds)

    def _close(self) -> None:
        """Sell the whole position, halving a size the pool refuses."""
        me = self.venue.account(self.name)
        lot = self.venue.rules.trading_lot_size
        sign = -1.0 if me.position_side == "long" else 1.0
        trade_halving(self, sign * lots(me.position_size, lot), lot)

    @property
    def profit(self) -> float:
        """Withdrawals minus deposits so far (USD)."""
        return self.withdrawn - self.deposited
