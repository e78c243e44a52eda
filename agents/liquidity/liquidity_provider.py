"""The liquidity provider: funds the AMM pool and runs when its share value falls."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from perpsim.engine.core.config import FrozenModel
from perpsim.engine.core.status import Status

from ..base import PerpAgent, Phase, lots, withdraw_collateral
from ..params import DurationParam, FractionParam, PositiveParam, ProbabilityParam

if TYPE_CHECKING:
    from perpsim.model import PerpModel

#: Margin an LP keeps for the short hedge AddLiquidity gives it, as a fraction of the hedge's
#: notional (at least twice the initial margin rate): 0.5 survives a rally of about 40%.
HEDGE_MARGIN = 0.5


class LiquidityProviderParams(FrozenModel):
    """Parameters of a liquidity provider of the AMM pool.

    Attributes:
        capital: Collateral (USD) each LP starts with.
        initial_fraction: Fraction of the capital added as liquidity at the start, in [0, 1].
        add_interval: Seconds between two further additions.
        add_fraction: Fraction of the remaining cash added at each addition, in [0, 1].
        drawdown_exit: The LP removes all its liquidity when the value of its pool share has
            fallen by this fraction over ``return_window`` (0.1 = 10%); null never exits.
        return_window: Seconds over which the drawdown is measured.
    """

    capital: PositiveParam = 1_000_000.0
    initial_fraction: ProbabilityParam = 0.5
    add_interval: DurationParam = 86_400
    add_fraction: ProbabilityParam = 0.1
    drawdown_exit: FractionParam | None = 0.1
    return_window: DurationParam = 86_400


class LiquidityProvider(PerpAgent):
    """Adds liquidity at the start and over time; removes all of it on a drawdown of its shares.

    It adds ``initial_fraction`` of its capital at the start and ``add_fraction`` of its
    remaining cash every ``add_interval``, depositing with each addition a margin buffer for
    the short position AddLiquidity gives it. It watches the share price every tick and, when
    the price has fallen more than ``drawdown_exit`` below its peak over ``return_window``,
    removes all its liquidity, closes what is left of its hedge and leaves for good (so LP runs
    emerge in a crash).
    """

    agent_type: ClassVar[str] = "liquidity_provider"
    Params: ClassVar[type[FrozenModel]] = LiquidityProviderParams
    phase: ClassVar[Phase] = Phase.LP

    def __init__(
        self,
        model: PerpModel,
        name: str,
        population: str,
        params: dict[str, Any],
        rng: np.random.Generator,
    ) -> None:
        super().__init__(model, name, population, params, rng)
        self.wallet = float(params["capital"])
        self.initial_fraction = float(params["initial_fraction"])
        self.add_interval = float(params["add_interval"])
        self.add_fraction = float(params["add_fraction"])
        exit_ = params.get("drawdown_exit")
        self.drawdown_exit: float | None = None if exit_ is None else float(exit_)
        self.return_window = float(params["return_window"])
        self.next_add = 0.0
        self.exited = False
        self.exit_time: int | None = None
        self.additions = 0
        self.removals = 0
        # (time, share price) of the window, prices decreasing: the front is the peak.
        self._peaks: deque[tuple[int, float]] = deque()

    def start(self) -> None:
        """Add the initial liquidity and start watching."""
        if self.initial_fraction > 0.0:
            self.add(self.initial_fraction * self.wallet)
        self.next_add = self.now + self.add_interval
        self._reschedule()

    def _reschedule(self) -> None:
        if self.exited:
            return
        if self.drawdown_exit is None:
            self.wake_at(self.next_add)
        else:
            self.wake_in(self.model.tick_seconds)

    def step(self) -> None:
        """Check the drawdown (exit), else add liquidity when an addition is due."""
        if self.venue.status is not Status.NORMAL or self.exited:
            return
        if self.drawdown_exit is not None and self._drawdown() > self.drawdown_exit:
            self.exit()
            return
        if self.now >= self.next_add:
            self.add(self.add_fraction * self.wallet)
            self.next_add += self.add_interval
        self._reschedule()

    def _drawdown(self) -> float:
        """Fall of the share price below its peak over the return window (0 to 1)."""
        price = self.venue.share_price()
        peaks = self._peaks
        while peaks and peaks[-1][1] <= price:
            peaks.pop()
        peaks.append((self.now, price))
        while peaks[0][0] < self.now - self.return_window:
            peaks.popleft()
        if self.venue.share_balance(self.name) <= 0.0:
            return 0.0
        peak = peaks[0][1]
        return 1.0 - price / peak if peak > 0.0 else 0.0

    def add(self, amount: float) -> float:
        """Deposit ``amount`` of its cash and provide liquidity with it; return shares minted.

        Of ``amount``, the part C goes into the pool and the rest, ``HEDGE_MARGIN`` × C / 2,
        stays as margin of the short hedge of C / 2 notional.
        """
        amount = min(amount, self.wallet)
        if amount <= 0.0:
            return 0.0
        rate = max(HEDGE_MARGIN, 2.0 * self.venue.rules.initial_margin_rate)
        collateral = amount / (1.0 + rate / 2.0)
        self.venue.deposit(self.name, amount)
        self.wallet -= amount
        shares = self.attempt("add_liquidity", self.venue.add_liquidity, self.name, collateral)
        if shares is None:
            return 0.0
        self.additions += 1
        return float(shares)

    def withdraw_liquidity(self, fraction: float) -> None:
        """Remove ``fraction`` of its shares (a liquidity_withdrawal event); 1 means exit."""
        if self.venue.status is not Status.NORMAL or self.exited:
            return
        if fraction >= 1.0:
            self.exit()
            return
        shares = self.venue.share_balance(self.name) * fraction
        if shares > 0.0 and self.attempt(
            "remove_liquidity", self.venue.remove_liquidity, self.name, shares
        ):
            self.removals += 1

    def exit(self) -> None:
        """Remove all liquidity, close the remaining hedge, withdraw the cash and stop."""
        self.exited = True
        self.exit_time = self.now
        shares = self.venue.share_balance(self.name)
        if shares > 0.0 and self.attempt(
            "remove_liquidity", self.venue.remove_liquidity, self.name, shares
        ):
            self.removals += 1
        view = self.venue.account(self.name)
        amount = lots(view.position_size, self.venue.rules.trading_lot_size)
        if amount > 0.0:
            signed = -amount if view.position_side == "long" else amount
            self.attempt("trade", self.venue.trade, self.name, signed)
            view = self.venue.account(self.name)
        if view.position_size == 0.0:
            cash = view.cash_balance
        else:  # a position left (the pool could not take it, or dust): keep its margin
            cash = view.withdrawable_balance * (1.0 - 1e-9)
        if cash > 0.0 and self.attempt(
            "withdraw", withdraw_collateral, self.venue, self.name, cash
        ):
            self.wallet += cash
