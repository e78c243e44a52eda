"""The self-liquidator: a whale short left to be liquidated into the backstop, the long cashed.

Hyperliquid's JELLY-USD market, March 26 2025: one actor opened a large short on one account
and the same size long on others (net flat), then pumped the thin spot markets the oracle reads.
The short was liquidated and, too big for the book, inherited whole by the exchange's
counterparty backstop; as the pump went on the backstop's loss was the long's paper gain, which
the actor tried to withdraw.

Here the attacker opens a short on ``NAME/short`` and a long of the same size on ``NAME``
through the pool, in slices: each tick it sells a slice on the short and, only if that went
through, buys the same slice on the long (taking the short's slice back if the long is
refused), so the legs stay equal and the pool's own position is unchanged once both are on
(each leg is the other's counterparty through it); what is not built by ``withdraw_from`` is
given up. The pump is the scenario's (a market-path move, or ``oracle_manipulation``). It never
tops the short up: from ``withdraw_from`` to ``withdraw_until`` it withdraws, every tick, each
account's paper gain beyond the margin it was opened with (as far as the venue lets it), and
whatever a flat account still holds. It keeps the long open, unless ``close_from`` is set: a
venue that pays out cash only (D8X, Predy) lets a gain out once it is realised, so from then on
it sells the long back a slice a tick. Its profit is its withdrawals (and settlement payouts)
plus what is left, minus its deposits: the ``pnl`` of population ``attacker`` in
``accounts.parquet``. Only the venue contract is used, so the attack runs on every venue kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from perpsim.engine.core.config import FrozenModel
from perpsim.engine.core.status import Status

from ..base import PerpAgent, Phase, lots, withdraw_collateral
from ..params import FractionParam, PositiveParam, RunTime
from .oracle_pumper import WITHDRAW_USE

if TYPE_CHECKING:
    from perpsim.model import PerpModel


class SelfLiquidatorParams(FrozenModel):
    """Parameters of a self-liquidator.

    Attributes:
        capital: Collateral (USD) the attacker brings (what the legs do not need stays in its
            wallet; a smaller capital makes smaller legs).
        size: Contracts of each leg (the short and the long).
        slice: Contracts traded per leg per tick while the legs are built (a refused slice is
            tried again the next tick; what is not built by ``withdraw_from`` is given up).
        leverage_use: Share of the venue's highest leverage (1 / initial margin rate) each leg
            is opened at: the rest is the room the short needs to stay initial-margin safe
            while it is built.
        open_at: Run time at which it starts building both legs.
        withdraw_from: Run time from which it withdraws what it can, every tick.
        withdraw_until: Run time after which it stops (its accounts are left as they are).
        close_from: Run time from which it also sells the long back to the pool, a slice per
            tick, to turn its paper gain into cash it can withdraw (for a venue that lets only
            cash out, as D8X and Predy); null: it never closes.
    """

    capital: PositiveParam = 2_000_000.0
    size: PositiveParam = 500.0
    slice: PositiveParam = 10.0
    leverage_use: FractionParam = 0.8
    open_at: RunTime = 3_600
    withdraw_from: RunTime = 7_200
    withdraw_until: RunTime = 86_400
    close_from: RunTime | None = None


class SelfLiquidator(PerpAgent):
    """A short on ``NAME/short``, a long on ``NAME``, the long's gain withdrawn (see the module).

    Attributes:
        account_names: its two accounts (the account table gives both its population).
        deposited: collateral put into its accounts (USD).
        withdrawn: collateral taken out (USD; settlement payouts are in ``accounts.parquet``).
        built: contracts of each leg built so far.
    """

    agent_type: ClassVar[str] = "self_liquidator"
    Params: ClassVar[type[FrozenModel]] = SelfLiquidatorParams
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
        self.account_names: tuple[str, ...] = (self.short_account, self.long_account)
        self.wallet = float(params["capital"])
        self.size = float(params["size"])
        self.slice = float(params["slice"])
        self.leverage_use = float(params["leverage_use"])
        self.open_at = model.start_time + int(params["open_at"])
        self.withdraw_from = model.start_time + int(params["withdraw_from"])
        self.withdraw_until = model.start_time + int(params["withdraw_until"])
        close_from = params.get("close_from")
        self.close_from: int | None = (
            None if close_from is None else model.start_time + int(close_from)
        )
        self.deposited = 0.0
        self.withdrawn = 0.0
        #: The margin each account was opened with (kept in while it holds a position).
        self.margin: dict[str, float] = {}
        self.built = 0.0
        self.left = 0.0  # contracts still to build on each leg
        self.opened = False

    def start(self) -> None:
        """Wait for the opening time."""
        self.wake_at(self.open_at)

    def step(self) -> None:
        """Build both legs slice by slice; inside the window withdraw what the venue allows."""
        if self.venue.status is not Status.NORMAL or self.now > self.withdraw_until:
            return
        if not self.opened:
            self.opened = True
            self._open()
        if self.left > 0.0 and self.now >= self.withdraw_from:
            self.left = 0.0  # what is not built before the pump is given up
        if self.left > 0.0:
            self._build_slice()
        elif self.close_from is not None and self.now >= self.close_from:
            self._close_slice()
        if self.now >= self.withdraw_from:
            self._withdraw_available()
        wake = self.now + self.model.tick_seconds
        self.wake_at(wake if self.left > 0.0 else max(wake, self.withdraw_from))

    def _open(self) -> None:
        """Deposit each leg's margin at ``leverage_use`` of the venue's highest leverage."""
        g = self.venue.rules
        price = self.venue.mark_price()
        per_contract = price * g.initial_margin_rate / self.leverage_use
        per_contract += 2.0 * price * g.trade_fee_rate
        size = lots(min(self.size, self.wallet / (2.0 * per_contract)), g.trading_lot_size)
        if size <= 0.0:
            return
        for account in self.account_names:
            self.venue.deposit(account, size * per_contract)
            self.wallet -= size * per_contract
            self.deposited += size * per_contract
            self.margin[account] = size * per_contract
        self.left = size

    def _build_slice(self) -> None:
        """Sell a slice on the short, then (only if it went through) buy it on the long."""
        lot = self.venue.rules.trading_lot_size
        part = lots(min(self.left, self.slice), lot)
        if part <= 0.0:
            self.left = 0.0
            return
        if self.attempt("trade", self.venue.trade, self.short_account, -part) is None:
            return  # refused (margin, a pause, a halt): try again next tick
        if self.attempt("trade", self.venue.trade, self.long_account, part) is None:
            # The long refused: take the slice back off the short so the legs stay equal.
            self.attempt("trade", self.venue.trade, self.short_account, part)
            return
        self.left -= part
        self.built += part
        if self.left < lot * (1.0 - 1e-9):
            self.left = 0.0

    def _close_slice(self) -> None:
        """Sell one slice of the long back to the pool (realising its gain)."""
        view = self.venue.account(self.long_account)
        if view.position_size <= 0.0 or view.position_side != "long":
            return
        lot = self.venue.rules.trading_lot_size
        part = lots(min(view.position_size, self.slice), lot)
        if part > 0.0:
            self.attempt("trade", self.venue.trade, self.long_account, -part)

    def _withdraw_available(self) -> None:
        """Take out each account's paper gain (a flat account: all it holds).

        An account with a position keeps the margin it was opened with: only what its margin
        balance has gained beyond it is taken, and no more than the venue allows (a venue whose
        withdrawal limit is its liquidation threshold, as Predy's, would otherwise be left one
        tick from liquidation).
        """
        for account in self.account_names:
            view = self.venue.account(account)
            amount = view.withdrawable_balance
            if view.position_size > 0.0:
                gain = view.margin_balance - self.margin.get(account, 0.0)
                amount = min(WITHDRAW_USE * amount, gain)
            if amount > 0.0 and self.attempt(
                "withdraw", withdraw_collateral, self.venue, account, amount
            ):
                self.withdrawn += amount

    @property
    def profit(self) -> float:
        """Withdrawals minus deposits so far (USD; settlement payouts not included)."""
        return self.withdrawn - self.deposited
