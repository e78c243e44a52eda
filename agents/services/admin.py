"""The admin: the only agent that can take the perpetual through global settlement."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from perpsim.engine.core.config import FrozenModel, NonNegativeReal, StrictBool
from perpsim.engine.core.status import Status
from perpsim.oracle.config import Duration

from ..base import PerpAgent, Phase
from ..params import RunTime

if TYPE_CHECKING:
    from perpsim.model import PerpModel

#: The insurance fund counts as exhausted at or below this balance (collateral).
EMPTY_FUND = 1e-9


class SettleWhen(FrozenModel):
    """Conditions under which the admin begins global settlement (any one suffices).

    Attributes:
        insurance_fund_exhausted: Settle when the insurance fund is empty after a loss.
        bad_debt_above: Settle when the cumulative social loss plus unrecoverable bad debt
            (USD) exceeds this; null disables the condition.
    """

    insurance_fund_exhausted: StrictBool = False
    bad_debt_above: NonNegativeReal | None = None


class AdminParams(FrozenModel):
    """Parameters of the admin (the only one who can begin global settlement).

    Attributes:
        settle_when: Automatic triggers.
        settle_at: A time within the run at which to settle unconditionally; null for none.
        settlement_price: ``index`` (the oracle's price) or ``mark`` (the perpetual's mark).
        complete_after: Seconds between beginning settlement (EMERGENCY) and completing it
            (SETTLED), during which the price may still be corrected.
    """

    settle_when: SettleWhen = SettleWhen()
    settle_at: RunTime | None = None
    settlement_price: Literal["mark", "index"] = "index"
    complete_after: Annotated[Duration, Field(ge=0)] = 3_600


class Admin(PerpAgent):
    """Begins global settlement by its rule or at ``settle_at``, then completes it and pays out.

    It begins settlement at the mark or index price (``settlement_price``) when the insurance
    fund is exhausted after a loss, when social loss plus bad debt exceed ``bad_debt_above``, or
    at ``settle_at``; a settlement begun by a begin_global_settlement event is taken over too.
    ``complete_after`` seconds later it completes settlement, redeems every LP share and settles
    every account holding a position or cash.
    """

    agent_type: ClassVar[str] = "admin"
    Params: ClassVar[type[FrozenModel]] = AdminParams
    phase: ClassVar[Phase] = Phase.ADMIN

    def __init__(
        self,
        model: PerpModel,
        name: str,
        population: str,
        params: dict[str, Any],
        rng: np.random.Generator,
    ) -> None:
        super().__init__(model, name, population, params, rng)
        when = params.get("settle_when") or {}
        if hasattr(when, "model_dump"):
            when = when.model_dump()
        self.on_fund_exhausted = bool(when.get("insurance_fund_exhausted", False))
        above = when.get("bad_debt_above")
        self.bad_debt_above: float | None = None if above is None else float(above)
        at = params.get("settle_at")
        self.settle_at: float | None = None if at is None else model.start_time + float(at)
        self.settlement_price = str(params.get("settlement_price", "index"))
        self.complete_after = float(params.get("complete_after", 0))
        self.began_at: int | None = None
        self.completed_at: int | None = None
        self.reason: str | None = None
        self.settled_accounts = 0

    @property
    def watches(self) -> bool:
        """Whether an automatic rule needs a look every tick."""
        return self.on_fund_exhausted or self.bad_debt_above is not None

    def start(self) -> None:
        """Plan the first look."""
        self._schedule()

    def _schedule(self) -> None:
        if self.completed_at is not None:
            return
        if self.began_at is not None:
            self.wake_at(self.began_at + self.complete_after)
            return
        if self.watches:
            self.wake_in(self.model.tick_seconds)
            return
        # Otherwise only the planned times: settle_at and begin_global_settlement events.
        start = self.model.start_time
        times: list[float] = [
            start + int(e.at)
            for e in self.model.config.events
            if e.kind == "begin_global_settlement" and start + int(e.at) > self.now
        ]
        if self.settle_at is not None and self.settle_at > self.now:
            times.append(self.settle_at)
        if times:
            self.wake_at(min(times))

    def trigger(self) -> str | None:
        """The reason to begin settlement now, or None."""
        if self.settle_at is not None and self.now >= self.settle_at:
            return "settle_at"
        losses = self.model.social_loss_total + self.venue.bad_debt()
        fund = self.venue.funds()["insurance_fund"]
        if self.on_fund_exhausted and fund <= EMPTY_FUND and losses > 0.0:
            return "insurance_fund_exhausted"
        if self.bad_debt_above is not None and losses > self.bad_debt_above:
            return "bad_debt_above"
        return None

    def step(self) -> None:
        """Begin settlement when a rule fires; complete it when its time has come."""
        status = self.venue.status
        if status is Status.SETTLED:
            return
        if status is Status.EMERGENCY and self.began_at is None:
            self.began_at = self.now  # begun by an event: take it over
            self.reason = "event"
        if status is Status.NORMAL:
            reason = self.trigger()
            if reason is not None and self.begin():
                self.reason = reason
        if self.began_at is not None and self.now >= self.began_at + self.complete_after:
            self.complete()
        self._schedule()

    def begin(self) -> bool:
        """Begin global settlement at the mark or index price; return whether it began."""
        venue = self.venue
        price = venue.mark_price() if self.settlement_price == "mark" else venue.index_price()
        self.attempt("begin_global_settlement", venue.begin_global_settlement, price)
        if venue.status is not Status.EMERGENCY:
            return False
        self.began_at = self.now
        return True

    def complete(self) -> None:
        """Complete settlement, redeem every share, and settle every account."""
        venue = self.venue
        self.attempt("global_settled", venue.global_settled)
        if venue.status is not Status.SETTLED:
            return
        self.completed_at = self.now
        for holder, shares in venue.share_holders().items():
            if shares > 0.0:
                self.attempt("settle_share", venue.settle_shares, holder, shares)
        for row in venue.accounts_to_settle().tolist():
            if self.attempt("settle", venue.settle, row) is not None:
                self.settled_accounts += 1
