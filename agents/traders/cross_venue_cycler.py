"""The cross-venue cycler: a large long, an external push of the index, the close at the push.

The GMX AVAX attack of September 2022. GMX v1 traded at the Chainlink price with no price
impact: a trader opened a large AVAX long on GMX, bought AVAX on external exchanges to push
their price (and so the oracle) up, closed the long at the higher oracle price, and sold the
external AVAX back, several times; GMX's LPs paid.

Here each cycle is: open ``size`` contracts long through the venue contract in the ``lead``
before a push (in slices, each at most ``max_premium`` above the index), the push itself (a
``price_shock`` event of the scenario: the attacker's buying on the external market moves the
market path, so every agent and the oracle see it), the close once the index has published the
pushed price, then the push's reversal (a second ``price_shock`` ``hold`` later). The oracle
feed is precomputed from the market path, so the attacker cannot move the index during a run;
the scenario schedules the pushes and the attacker checks at the start that they are there.

The external market is a constant-product pool of ``external_depth`` USD (and as much ETH) at
the price before the push, with a taker fee of ``external_fee_rate``. The attacker buys the ETH
that moves its price from the market price before the push to the pushed price; the rest of the
market then arbitrages the pool back to the true price (the reversal), and the attacker sells
its ETH into the recovered pool. What that round trip loses (the sale at a lower price than the
purchase, plus fees both ways) is the push's cost, booked in the attacker's own books and part
of its profit. The per-cycle numbers are the run's ``cycles`` table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import numpy as np
from pydantic import Field, Strict, model_validator

from perpsim.engine.core.config import FrozenModel, problem_at
from perpsim.engine.core.status import Status
from perpsim.errors import ConfigError, EngineError

from ..base import PerpAgent, Phase, lots, withdraw_collateral
from ..params import DurationParam, FractionParam, PositiveParam, ProbabilityParam, RunTime

if TYPE_CHECKING:
    from perpsim.model import PerpModel

#: Share of the venue's maximum leverage (1 / initial_margin_rate) the position uses: the rest
#: pays the fees and the premium, so that every slice passes the initial-margin check.
LEVERAGE_USE = 0.9
#: Share of the push the index must have published before the attacker closes.
PUBLISHED_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class ExternalRoundTrip:
    """The push's round trip on the external constant-product market (USD, ETH).

    Attributes:
        bought: ETH bought to move the price to the pushed price.
        spent: USD paid for it (before fees).
        received: USD received selling it back into the recovered pool (before fees).
        fees: Taker fees of both legs.
    """

    bought: float
    spent: float
    received: float
    fees: float

    @property
    def cost(self) -> float:
        """What the round trip loses: spent − received + fees (USD)."""
        return self.spent - self.received + self.fees


def external_round_trip(
    depth: float, fee_rate: float, before: float, pushed: float, after: float
) -> ExternalRoundTrip:
    """The cost of pushing a constant-product market from ``before`` to ``pushed`` and back.

    The pool holds ``depth`` USD at price ``before`` (liquidity L = depth / √before, constant).
    Moving its price to ``pushed`` takes L(√pushed − √before) USD and gives
    L(1/√before − 1/√pushed) ETH. Other traders then bring the pool back to the market price
    ``after`` (its reserves L/√after ETH and L√after USD), and the ETH is sold into it:
    y·q / (x + q) USD. Fees are ``fee_rate`` of each leg's USD.

    Args:
        depth: USD side of the external pool before the push (> 0).
        fee_rate: Taker fee per unit of USD traded, in [0, 1).
        before: Market price just before the push.
        pushed: Market price the push reaches (no purchase if not above ``before``).
        after: Market price when the ETH is sold back.

    Returns:
        The round trip (all zero when ``pushed`` is not above ``before``).
    """
    if pushed <= before:
        return ExternalRoundTrip(0.0, 0.0, 0.0, 0.0)
    liquidity = depth / math.sqrt(before)
    spent = liquidity * (math.sqrt(pushed) - math.sqrt(before))
    bought = liquidity * (1.0 / math.sqrt(before) - 1.0 / math.sqrt(pushed))
    eth, usd = liquidity / math.sqrt(after), liquidity * math.sqrt(after)
    received = usd * bought / (eth + bought)
    return ExternalRoundTrip(bought, spent, received, fee_rate * (spent + received))


class CrossVenueCyclerParams(FrozenModel):
    """Parameters of a cross-venue cycler.

    Attributes:
        capital: Collateral (USD) it deposits once, at the first opening.
        size: Contracts of the long opened before each push.
        slice: Most contracts traded per tick while opening or closing.
        max_premium: Worst price above the index (relative) it pays for an opening slice, and
            below the index it accepts for a closing slice before the reversal.
        first_push_at: Run time of the first push (a ``price_shock`` event there, change > 0).
        period: Seconds between two pushes.
        cycles: Number of pushes.
        lead: Seconds before each push at which it starts opening.
        hold: Seconds from each push to its reversal (a ``price_shock`` event, change < 0).
        external_depth: USD side of the external constant-product pool it pushes.
        external_fee_rate: Taker fee of the external market per unit of USD traded.
    """

    capital: PositiveParam = 500_000.0
    size: PositiveParam = 1_000.0
    slice: PositiveParam = 100.0
    max_premium: FractionParam = 0.01
    first_push_at: RunTime = 3_600
    period: DurationParam = 3_600
    cycles: Annotated[int, Strict(), Field(ge=1)] = 5
    lead: DurationParam = 600
    hold: DurationParam = 600
    external_depth: PositiveParam = 5_000_000.0
    external_fee_rate: ProbabilityParam = 0.001

    @model_validator(mode="after")
    def _check(self) -> CrossVenueCyclerParams:
        lead, hold, period = (_number(v) for v in (self.lead, self.hold, self.period))
        if lead is not None and hold is not None and period is not None and lead + hold > period:
            raise problem_at(
                ["period"],
                "must be at least lead + hold: a cycle opens, is pushed and reversed before the"
                " next one opens",
                got=self.period,
                allowed=f">= {lead + hold:g} s",
            )
        first = self.first_push_at
        if lead is not None and first < lead:
            raise problem_at(
                ["first_push_at"],
                "must be at least lead after the start (it opens lead before each push)",
                got=first,
                allowed=f">= {lead:g} s",
            )
        if _number(self.external_fee_rate) == 1.0:
            raise problem_at(["external_fee_rate"], "must be below 1", got=1.0, allowed="[0, 1)")
        return self


def _number(value: object) -> float | None:
    """A parameter as a number (None when it is a distribution)."""
    return float(value) if isinstance(value, int | float) else None


class CrossVenueCycler(PerpAgent):
    """Opens long before each scheduled push, closes at the pushed index (see the module).

    Attributes:
        rows: One record per finished cycle (the ``cycles`` table).
        external_cost: What the external pushes have cost so far (USD).
    """

    agent_type: ClassVar[str] = "cross_venue_cycler"
    Params: ClassVar[type[FrozenModel]] = CrossVenueCyclerParams
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
        self.max_premium = float(params["max_premium"])
        self.first_push_at = int(params["first_push_at"])
        self.period = int(params["period"])
        self.cycles = int(params["cycles"])
        self.lead = int(params["lead"])
        self.hold = int(params["hold"])
        self.depth = float(params["external_depth"])
        self.fee_rate = float(params["external_fee_rate"])
        self.deposited = 0.0
        self.withdrawn = 0.0
        self.external_cost = 0.0
        self.rows: list[dict[str, Any]] = []
        self.cycle = 0
        self.stage = "wait"  # wait → open → hold → close → (next cycle) ... → done
        self._reset_cycle()

    def _reset_cycle(self) -> None:
        self.start_balance = 0.0
        self.bought = self.bought_value = 0.0
        self.sold = self.sold_value = 0.0
        self.close_time: int | None = None

    # -- schedule --------------------------------------------------------------------------

    def push_time(self, cycle: int) -> int:
        """Unix time of push ``cycle`` (0-based)."""
        return self.model.start_time + self.first_push_at + cycle * self.period

    def _tick(self, time: int) -> int:
        """The tick of the market path at or after ``time``."""
        return math.ceil((time - self.model.start_time) / self.model.tick_seconds - 1e-9)

    def start(self) -> None:
        """Check that the scenario schedules every push and reversal, then wait for the first.

        Raises:
            ConfigError: ``lead`` is shorter than a tick (nothing could be opened before a
                push), or a push (a ``price_shock`` with change > 0 at a push time) or its
                reversal (change < 0, ``hold`` later) is missing from the scenario's events.
        """
        if self.lead < self.model.tick_seconds:
            raise ConfigError(
                f"agents.{self.population}.params.lead: {self.lead} s is shorter than the"
                f" run's tick ({self.model.tick_seconds} s): the attacker opens at a tick"
                " before each push, so lead must be at least one tick"
            )
        shocks = [
            (int(e.at), float(e.change))
            for e in self.model.config.events
            if e.kind == "price_shock"
        ]
        for k in range(self.cycles):
            push = self.first_push_at + k * self.period
            for at, up, what in ((push, True, "push"), (push + self.hold, False, "reversal")):
                if not any(t == at and (c > 0.0) == up for t, c in shocks):
                    raise ConfigError(
                        f"agents.{self.population}.params: cycle {k + 1}'s {what} needs a"
                        f" price_shock event with change {'> 0' if up else '< 0'} at {at} s"
                        f" (first_push_at + {k} × period{' + hold' if not up else ''}); the"
                        " attacker's external buying is part of the scenario's market path"
                    )
        self.wake_at(self.push_time(0) - self.lead)

    # -- the cycle -------------------------------------------------------------------------

    def step(self) -> None:
        """Open before the push, close once the index shows it, book the external round trip."""
        if self.venue.status is not Status.NORMAL or self.stage == "done":
            return
        push = self.push_time(self.cycle)
        if self.stage == "wait":
            self._begin()
        if self.stage == "open":
            if self.now < push and self.bought < self.size:
                self._open_slice()
            if self.now >= push:
                self.stage = "hold"
        if self.stage == "hold":
            tick = self._tick(push)
            before, pushed = self.model.market_prices[tick - 1], self.model.market_prices[tick]
            shown = before + PUBLISHED_SHARE * (pushed - before)
            if self.venue.index_price() >= shown or self.now >= push + self.hold:
                self.stage = "close"
        if self.stage == "close":
            if self._position() > 0.0:
                self._close_slice(forced=self.now >= push + self.hold)
            if self._position() <= 0.0 and self.close_time is None:
                self.close_time = self.now
            if self.close_time is not None and self.now >= push + self.hold:
                self._finish(push)
        if self.stage in ("open", "hold", "close"):
            self.wake_in(self.model.tick_seconds)

    def _begin(self) -> None:
        if self.deposited == 0.0:
            self.venue.deposit(self.name, self.capital)
            self.deposited = self.capital
        self._reset_cycle()
        self.start_balance = self.venue.account(self.name).margin_balance
        self.stage = "open"

    def _open_slice(self) -> None:
        g = self.venue.rules
        index = self.venue.index_price()
        balance = self.venue.account(self.name).margin_balance
        most = balance * LEVERAGE_USE / (g.initial_margin_rate * index) - self._position()
        amount = lots(min(self.size - self.bought, self.slice, most), g.trading_lot_size)
        part = self._within_premium(amount, index)
        # A slice the venue refuses (a position limit, the margin) is halved: the attacker
        # takes the largest position the venue lets it have, whatever the venue's rule is.
        while part >= g.trading_lot_size:
            fill = self.attempt("trade", self.venue.trade, self.name, part)
            if fill is not None:
                self.bought += part
                self.bought_value += part * fill.price
                return
            part = lots(part / 2.0, g.trading_lot_size)

    def _close_slice(self, forced: bool) -> None:
        lot = self.venue.rules.trading_lot_size
        amount = lots(min(self._position(), self.slice), lot)
        if amount < self._position() and self._position() - amount < lot:
            amount = self._position()  # no dust left behind
        if not forced:
            part = self._within_premium(-amount, self.venue.index_price())
            if part > 0.0:
                self._sell(part)
            return
        # At the reversal it will not hold the long any longer: it sells at any price, halving a
        # slice the venue refuses (one that would leave the account below its margin).
        while amount >= lot and not self._sell(amount):
            amount = lots(amount / 2.0, lot)

    def _sell(self, amount: float) -> bool:
        fill = self.attempt("trade", self.venue.trade, self.name, -amount)
        if fill is None:
            return False
        self.sold += amount
        self.sold_value += amount * fill.price
        return True

    def _within_premium(self, amount: float, index: float) -> float:
        """The largest part of signed ``amount`` (halving) priced within ``max_premium``.

        The attack trades against the index, so the premium is measured against it, not
        against the pool's own price: what a venue charges over its index is what it charges
        the attacker.
        """
        lot = self.venue.rules.trading_lot_size
        size = lots(abs(amount), lot)
        while size >= lot:
            signed = size if amount > 0 else -size
            try:
                price = self.venue.quote(signed).price
            except EngineError:
                price = math.inf if amount > 0 else 0.0  # more than the pool can take
            premium = price / index - 1.0 if amount > 0 else 1.0 - price / index
            if premium <= self.max_premium:
                return size
            size = lots(size / 2.0, lot)
        return 0.0

    def _finish(self, push: int) -> None:
        """Book the external round trip and the cycle's row; move to the next cycle."""
        tick = self._tick(push)
        prices = self.model.market_prices
        before, pushed = float(prices[tick - 1]), float(prices[tick])
        after = float(prices[self._tick(push + self.hold)])
        trip = external_round_trip(self.depth, self.fee_rate, before, pushed, after)
        self.external_cost += trip.cost
        venue_pnl = self.venue.account(self.name).margin_balance - self.start_balance
        self.rows.append(
            {
                "population": self.population,
                "account": self.name,
                "cycle": self.cycle + 1,
                "time": push,
                "closed_after_s": (
                    math.nan if self.close_time is None else float(self.close_time - push)
                ),
                "size": self.bought,
                "open_price": self.bought_value / self.bought if self.bought else math.nan,
                "close_price": self.sold_value / self.sold if self.sold else math.nan,
                "market_before": before,
                "market_pushed": pushed,
                "market_after": after,
                "venue_pnl": venue_pnl,
                "external_bought": trip.bought,
                "external_spent": trip.spent,
                "external_received": trip.received,
                "external_fees": trip.fees,
                "external_cost": trip.cost,
                "net": venue_pnl - trip.cost,
            }
        )
        self.cycle += 1
        if self.cycle >= self.cycles:
            self._withdraw()
            self.stage = "done"
            return
        self.stage = "wait"
        self.wake_at(self.push_time(self.cycle) - self.lead)

    def _position(self) -> float:
        view = self.venue.account(self.name)
        return view.position_size if view.position_side == "long" else -view.position_size

    def _withdraw(self) -> None:
        view = self.venue.account(self.name)
        if view.position_size == 0.0 and view.cash_balance > 0.0:
            amount = view.cash_balance
            if self.attempt("withdraw", withdraw_collateral, self.venue, self.name, amount):
                self.withdrawn += amount

    # -- results ---------------------------------------------------------------------------

    @property
    def venue_pnl(self) -> float:
        """Withdrawals + what the account is worth now − deposits (USD)."""
        left = self.venue.account(self.name).margin_balance if self.deposited else 0.0
        return self.withdrawn + left - self.deposited

    @property
    def profit(self) -> float:
        """The attack's profit: the venue P&L minus the external pushes' cost (USD)."""
        return self.venue_pnl - self.external_cost

    def output_tables(self) -> dict[str, list[dict[str, Any]]]:
        """The ``cycles`` table: one row per finished cycle."""
        return {"cycles": list(self.rows)}
