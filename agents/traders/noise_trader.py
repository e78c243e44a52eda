"""The noise trader: random, leveraged, short-lived positions (the bulk of retail flow)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import numpy as np
from pydantic import BeforeValidator

from perpsim.engine.core.config import FrozenModel, problem_at
from perpsim.engine.core.status import Status
from perpsim.engine.venue import AccountView

from ..base import PerpAgent, Phase, lots, withdraw_collateral
from ..params import DurationParam, FractionParam, PositiveParam, ProbabilityParam

if TYPE_CHECKING:
    from perpsim.model import PerpModel

#: Margin multiple (of the maintenance margin) of ``top_up: true``.
DEFAULT_TOP_UP = 1.5
#: Longest time between two looks at an open position (seconds), when a rule needs them.
MAX_CHECK_INTERVAL = 3_600.0
#: A top-up restores the initial margin, or, when the rule's own threshold (m × maintenance
#: margin) is higher, this multiple of that threshold, so that it does not fire again at once.
TOP_UP_HEADROOM = 1.1
#: Relative distance from a rule's trigger price beyond which a look skips reading the account
#: (covers the funding that can accrue between two looks).
TRIGGER_BUFFER = 0.005
#: Share of the exchange's maximum leverage (1 / initial_margin_rate) a trader's leverage is
#: capped at: the rest absorbs a pool price up to the mark premium limit away from the mark.
LEVERAGE_CAP = 0.95


def _check_top_up(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and math.isfinite(value) and value >= 1:
        return float(value)
    raise problem_at(
        [],
        "must be false, true, or a margin threshold (a multiple of the maintenance margin)",
        got=value,
        allowed="false, true, or a number >= 1",
    )


class NoiseTraderParams(FrozenModel):
    """Parameters of a noise trader (random arrivals, random side).

    Attributes:
        arrival_rate: Mean number of trades per hour per trader (Poisson arrivals).
        long_probability: Probability that a trade opens a long, in [0, 1].
        size: Contracts per trade (1 contract = 1 unit of the underlying).
        leverage: Notional at entry divided by the margin deposited for the trade.
        holding_time: Mean seconds a position is held before it is closed (exponential).
        initial_cash: Collateral (USD) each trader starts with.
        stop_loss: Fraction of the deposited margin lost at which the trader closes, in (0, 1];
            null for no stop-loss.
        top_up: false: never add margin; a number m >= 1: deposit enough to restore the
            initial margin when the margin balance falls below m × maintenance margin;
            true: the same with m = 1.5.
    """

    arrival_rate: PositiveParam = 0.5
    long_probability: ProbabilityParam = 0.5
    size: PositiveParam = 1.0
    leverage: PositiveParam = 3.0
    holding_time: DurationParam = 14_400
    initial_cash: PositiveParam = 5_000.0
    stop_loss: FractionParam | None = 0.5
    top_up: Annotated[bool | float, BeforeValidator(_check_top_up)] = False


class NoiseTrader(PerpAgent):
    """Opens a random position at Poisson arrivals and closes it after a random holding time.

    While flat it waits an exponential time (``arrival_rate`` per hour), then deposits the
    margin of a ``size``-contract trade at ``leverage`` and goes long with ``long_probability``,
    else short. It closes after an exponential holding time (mean ``holding_time``), earlier when
    it has lost ``stop_loss`` of its deposited margin, tops its margin back up to the initial
    margin when it falls below ``top_up`` × the maintenance margin, and withdraws its cash
    after each close.
    """

    agent_type: ClassVar[str] = "noise_trader"
    Params: ClassVar[type[FrozenModel]] = NoiseTraderParams
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
        self.mean_wait = 3_600.0 / float(params["arrival_rate"])
        self.long_probability = float(params["long_probability"])
        self.size = float(params["size"])
        self.leverage = float(params["leverage"])
        self.holding_time = float(params["holding_time"])
        self.wallet = float(params["initial_cash"])
        stop = params.get("stop_loss")
        self.stop_loss: float | None = None if stop is None else float(stop)
        top = params.get("top_up", False)
        self.top_up: float | None = (
            DEFAULT_TOP_UP if top is True else None if top is False else float(top)
        )
        self.check_interval = min(
            MAX_CHECK_INTERVAL, max(float(model.tick_seconds), self.holding_time / 4.0)
        )
        self.holding = False
        self.close_at = 0.0
        self.deposited = 0.0  # margin deposited for the open position (initial + top-ups)
        self.trigger: float | None = None  # mark price near which the rules must be checked
        self.trigger_long = True
        # Counters read by tests and summaries.
        self.arrivals = 0
        self.opened_long = 0
        self.opened_short = 0
        self.stop_outs = 0
        self.top_ups = 0

    def start(self) -> None:
        """Schedule the first arrival."""
        self._schedule_arrival()

    def _schedule_arrival(self) -> None:
        self.wake_in(self.rng.exponential(self.mean_wait))

    def _schedule_check(self) -> None:
        if self.stop_loss is None and self.top_up is None:
            self.wake_at(self.close_at)
        else:
            self.wake_at(min(self.close_at, self.now + self.check_interval))

    def step(self) -> None:
        """Open at an arrival; while holding, apply the stop-loss / top-up rules or close."""
        venue = self._venue
        if venue.status is not Status.NORMAL:
            return  # trading has stopped for good: stay asleep
        if not self.holding:
            self._arrive()
            return
        # Most looks at an open position find the mark far from every trigger: that look is
        # _manage's first branch (_far_from_triggers, then _schedule_check) written out.
        trigger = self.trigger
        model = self.model
        now = model.now
        if trigger is not None and now < self.close_at:
            mark = venue.mark_price()
            if (
                mark > trigger * (1.0 + TRIGGER_BUFFER)
                if self.trigger_long
                else mark < trigger * (1.0 - TRIGGER_BUFFER)
            ):
                if self.stop_loss is None and self.top_up is None:
                    model.wake(self, self.close_at)
                else:
                    model.wake(self, min(self.close_at, now + self.check_interval))
                return
        self._manage()

    # ------------------------------------------------------------------------------------------

    def _arrive(self) -> None:
        self.arrivals += 1
        long = bool(self.rng.random() < self.long_probability)
        price = self.venue.mark_price()
        g = self.venue.rules
        fee_rate = g.trade_fee_rate
        leverage = min(self.leverage, LEVERAGE_CAP / g.initial_margin_rate)
        per_contract = price / leverage + price * fee_rate
        size = lots(min(self.size, self.wallet / per_contract), g.trading_lot_size)
        if size <= 0.0:
            return  # broke: no further arrivals
        margin = size * per_contract
        self.venue.deposit(self.name, margin)
        self.wallet -= margin
        fill = self.attempt("trade", self.venue.trade, self.name, size if long else -size)
        if fill is None:
            self._withdraw_all()
            self._schedule_arrival()
            return
        if long:
            self.opened_long += 1
        else:
            self.opened_short += 1
        self.holding = True
        self.deposited = margin
        self.close_at = self.now + self.rng.exponential(self.holding_time)
        self.trigger = None  # the first look reads the account
        self._schedule_check()

    def _manage(self) -> None:
        if self.now < self.close_at and self._far_from_triggers():
            self._schedule_check()
            return
        view = self.venue.account(self.name)
        if view.position_size <= 0.0:  # liquidated in full
            self._flat()
            return
        if self.now >= self.close_at:
            self._close(view.position_side, view.position_size)
            return
        mb = view.margin_balance
        if self.stop_loss is not None and mb <= self.deposited * (1.0 - self.stop_loss):
            if self._close(view.position_side, view.position_size):
                self.stop_outs += 1
            return
        if self.top_up is not None and mb < self.top_up * view.maintenance_margin:
            target = max(
                view.position_margin, TOP_UP_HEADROOM * self.top_up * view.maintenance_margin
            )
            amount = min(target - mb, self.wallet)
            if amount > 0.0:
                self.venue.deposit(self.name, amount)
                self.wallet -= amount
                self.deposited += amount
                self.top_ups += 1
                view = self.venue.account(self.name)
        self._set_triggers(view)
        self._schedule_check()

    def _set_triggers(self, view: AccountView) -> None:
        """Remember the mark price at which a rule (or a liquidation) would fire.

        With funding and social loss left aside, the margin balance moves by ±size per unit of
        price, so the stop-loss, the top-up rule and the liquidation each happen at a price
        level; until the mark comes within ``TRIGGER_BUFFER`` of the nearest one, a look at the
        position costs one price read instead of reading the account.
        """
        long = view.position_side == "long"
        size, margin_balance = view.position_size, view.margin_balance
        mark = view.price
        rate = self.venue.rules.maintenance_margin_rate
        sign = 1.0 if long else -1.0
        levels = [view.estimated_liquidation_price]
        if self.stop_loss is not None:
            floor = self.deposited * (1.0 - self.stop_loss)
            levels.append(mark - sign * (margin_balance - floor) / size)
        if self.top_up is not None:
            room = 1.0 - sign * self.top_up * rate
            if room > 0.0:
                levels.append((mark * size - sign * margin_balance) / (size * room))
            else:  # a long whose rule fires at any price: always read the account
                levels.append(float("inf"))
        self.trigger_long = long
        self.trigger = max(levels) if long else min(levels)

    def _far_from_triggers(self) -> bool:
        if self.trigger is None:
            return False
        mark = self.venue.mark_price()
        if self.trigger_long:
            return mark > self.trigger * (1.0 + TRIGGER_BUFFER)
        return mark < self.trigger * (1.0 - TRIGGER_BUFFER)

    def _close(self, side: str, size: float) -> bool:
        """Close the position and go flat; on a rejection try again later (returns False)."""
        lot = self.venue.rules.trading_lot_size
        amount = lots(size, lot)
        if amount > 0.0:
            signed = -amount if side == "long" else amount
            if self.attempt("trade", self.venue.trade, self.name, signed) is None:
                self.wake_in(self.check_interval)
                return False
        self._flat()
        return True

    def _flat(self) -> None:
        self.holding = False
        self.deposited = 0.0
        self._withdraw_all()
        self._schedule_arrival()

    def _withdraw_all(self) -> None:
        view = self.venue.account(self.name)
        if view.position_size == 0.0:
            amount = view.cash_balance
        else:  # a dust position below the trading lot: leave a rounding margin
            amount = view.withdrawable_balance * (1.0 - 1e-9)
        if amount > 0.0 and self.attempt(
            "withdraw", withdraw_collateral, self.venue, self.name, amount
        ):
            self.wallet += amount
