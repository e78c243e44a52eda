"""The fund drainer: one attacker, two accounts, opposite positions, a gap, the fund pays.

The self-dealing insurance-fund drain. The attacker opens the same large position long on one
account and short on the other, both at the venue's highest leverage, through the pool (the
pool's own position is unchanged once both legs are on: each leg is the other's counterparty
through it). A price gap larger than the initial margin makes one leg bankrupt: its loss beyond
its margin is paid by whatever absorbs a bankrupt trader's loss on this venue (the insurance
fund, a default fund, LPs, or socialised), while the other leg keeps its whole gain. The
attacker closes the surviving leg and withdraws. Its profit is the bankrupt leg's deficit,
minus fees and price impact. It works on every venue kind (only the contract is used), and it
stops where the initial margin covers the largest gap before liquidators can act.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from perpsim.engine.core.config import FrozenModel
from perpsim.engine.core.status import Status

from ..base import PerpAgent, Phase, lots, withdraw_collateral
from ..params import PositiveParam, RunTime

if TYPE_CHECKING:
    from perpsim.model import PerpModel

#: Share of the venue's maximum leverage (1 / initial_margin_rate) each leg uses: the rest pays
#: the fees and the price impact, so that the trade passes the initial-margin check.
LEVERAGE_USE = 0.95
#: Most slices per leg: a leg bigger than the pool takes at once is built over several ticks.
MAX_SLICES = 50


class FundDrainerParams(FrozenModel):
    """Parameters of a fund drainer.

    Attributes:
        capital: Collateral (USD) the attacker brings (split over its two accounts as needed).
        size: Contracts of each leg.
        slice: Contracts traded per leg per tick while the legs are built or closed.
        open_at: Run time at which it opens both legs.
        close_at: Run time at which it closes what is left and withdraws.
    """

    capital: PositiveParam = 2_000_000.0
    size: PositiveParam = 500.0
    slice: PositiveParam = 50.0
    open_at: RunTime = 3_600
    close_at: RunTime = 7_200


class FundDrainer(PerpAgent):
    """Two accounts (``NAME`` long and ``NAME/short``) with opposite positions (see the module).

    Attributes:
        account_names: its two accounts (the account table gives both its population).
    """

    agent_type: ClassVar[str] = "fund_drainer"
    Params: ClassVar[type[FrozenModel]] = FundDrainerParams
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
        self.long_account = name
        self.short_account = f"{name}/short"
        self.account_names: tuple[str, ...] = (self.long_account, self.short_account)
        self.wallet = float(params["capital"])
        self.size = float(params["size"])
        self.slice = float(params["slice"])
        self.open_at = model.start_time + int(params["open_at"])
        self.close_at = model.start_time + int(params["close_at"])
        #: Contracts still to trade on each leg (signed), and slices tried.
        self.pending: dict[str, float] = {}
        self.tries = 0
        self.opened = False
        self.closing = False

    def start(self) -> None:
        """Wait for the opening time."""
        self.wake_at(self.open_at)

    def step(self) -> None:
        """Open both legs, build them slice by slice, close and withdraw at ``close_at``."""
        if self.venue.status is not Status.NORMAL:
            return
        if not self.opened and self.now < self.close_at:
            self.opened = True
            self._open()
        elif self.now >= self.close_at and not self.closing:
            self.closing = True
            self.tries = 0
            self.pending = {a: -self._position(a) for a in self.account_names}
        self._trade_slices()
        if self.closing and not any(self.pending.values()):
            self._withdraw()
            return
        self.wake_in(self.model.tick_seconds if self.pending else self.close_at - self.now)

    def _open(self) -> None:
        g = self.venue.rules
        price = self.venue.mark_price()
        leverage = LEVERAGE_USE / g.initial_margin_rate
        per_contract = price / leverage + 2.0 * price * g.trade_fee_rate
        size = lots(min(self.size, self.wallet / (2.0 * per_contract)), g.trading_lot_size)
        if size <= 0.0:
            self.closing = True
            return
        for account in self.account_names:
            self.venue.deposit(account, size * per_contract)
            self.wallet -= size * per_contract
        self.pending = {self.long_account: size, self.short_account: -size}

    def _trade_slices(self) -> None:
        lot = self.venue.rules.trading_lot_size
        self.tries += 1
        for account in self.account_names:
            left = self.pending.get(account, 0.0)
            if abs(left) < lot * (1.0 - 1e-9) or self.tries > MAX_SLICES:
                self.pending[account] = 0.0
                continue
            part = lots(min(abs(left), self.slice), lot)
            signed = part if left > 0 else -part
            if self.attempt("trade", self.venue.trade, account, signed) is not None:
                self.pending[account] = left - signed
        self.pending = {a: v for a, v in self.pending.items() if abs(v) >= lot * (1.0 - 1e-9)}

    def _position(self, account: str) -> float:
        view = self.venue.account(account)
        return view.position_size if view.position_side == "long" else -view.position_size

    def _withdraw(self) -> None:
        for account in self.account_names:
            view = self.venue.account(account)
            if view.position_size == 0.0 and view.cash_balance > 0.0:
                amount = view.cash_balance
                if self.attempt("withdraw", withdraw_collateral, self.venue, account, amount):
                    self.wallet += amount
