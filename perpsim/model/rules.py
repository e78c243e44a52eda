"""Running ``governance_rules:`` (:mod:`perpsim.scenario.rules`) inside the model's tick.

Once per tick, after the scheduled events, :class:`RuleBook` measures each enabled rule's
metric, tracks how long its condition has held, decides (subject to ``hold``, ``cooldown`` and
``max_firings``), and applies decisions whose ``latency`` has passed and undoes changes whose
``expiry`` has come. A governance change goes through the venue's ``set_governance`` (validated
by the design; the venue logs its own ``set_governance`` event); a halt goes through the
:class:`~perpsim.engine.core.guard.Halts` of the model's guarded venue; a settlement (the loss
cap) goes through the venue's global settlement (``begin_global_settlement``, then
``global_settled``, ``settle_shares`` and ``settle`` of every account, each logged by the venue).
Every step is also logged as a ``governance_rule`` event (``stage``: ``decided``, ``applied``,
``completed``, ``expired``, ``rejected``, ``skipped``), which the figures mark.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from perpsim.agents.services.backstop import Backstop
from perpsim.engine.core.status import Status
from perpsim.errors import ConfigError, EngineError
from perpsim.oracle.config import SECONDS_PER_YEAR

if TYPE_CHECKING:
    from perpsim.model.model import PerpModel
    from perpsim.scenario.rules import GovernanceRule

__all__ = ["HALT_OF_ACTION", "RuleBook", "measure"]

#: The halt each halt action turns on.
HALT_OF_ACTION: dict[str, str] = {
    "pause_opening": "opening",
    "halt_trading": "trading",
    "halt_liquidation": "liquidation",
    "halt_withdrawal": "withdrawal",
}


def backstops(model: PerpModel) -> list[Backstop]:
    """The model's counterparty backstop agents (population type ``backstop``)."""
    return [
        a
        for members in model.agents_by_population.values()
        for a in members
        if isinstance(a, Backstop)
    ]


def lp_shares(model: PerpModel) -> float:
    """LP shares in issue now."""
    return float(sum(model.venue.share_holders().values()))


def measure(model: PerpModel, rule: GovernanceRule, fund_start: float) -> float:
    """The rule's metric now (NaN when it cannot be measured, e.g. the pool cannot quote).

    ``fund_start`` is the metric's value at the start where it is relative to one: the fund of
    ``fund_fraction``, the LP share price of ``lp_loss``.
    """
    metric = rule.metric
    venue = model.venue
    if metric == "realized_volatility":
        assert rule.window is not None
        prices = model.market_history(rule.window)
        if prices.size < 3:
            return math.nan
        r = np.diff(np.log(prices))
        span = (prices.size - 1) * model.tick_seconds
        return math.sqrt(float(np.dot(r, r)) * SECONDS_PER_YEAR / span)
    if metric == "price_change":
        assert rule.window is not None
        prices = model.market_history(rule.window)
        return float(prices[-1] / prices[0] - 1.0) if prices.size >= 2 else math.nan
    if metric in ("premium", "abs_premium"):
        try:
            premium = venue.fair_price() / venue.index_price() - 1.0
        except EngineError:
            return math.nan
        return abs(premium) if metric == "abs_premium" else premium
    if metric == "fund_fraction":
        return float(venue.funds()[rule.fund]) / fund_start
    if metric == "index_age":
        return float(model.now - model.feed.index(model.now)[1])
    if metric == "unsafe_accounts":
        return float(model.unsafe_rows.size)
    if metric == "open_interest":
        return float(venue.open_interest())
    if metric == "backstop_loss":
        return float(sum(b.loss for b in backstops(model)))
    if metric == "lp_loss":
        try:
            price = float(venue.share_price())
        except EngineError:
            return math.nan
        return (fund_start - price) * lp_shares(model)
    raise ValueError(f"unknown metric {metric!r}")


@dataclass
class _Pending:
    at: int
    decided: int
    value: float


@dataclass
class _Active:
    until: int
    delta: float


class _RuleState:
    def __init__(self, rule: GovernanceRule, fund_start: float) -> None:
        self.rule = rule
        self.fund_start = fund_start
        self.held_since: int | None = None
        self.last_decision: int | None = None
        self.decisions = 0
        self.pending: list[_Pending] = []
        self.active: list[_Active] = []
        #: When each settlement this rule began is to be completed, and at what price.
        self.completions: list[tuple[int, float]] = []


class RuleBook:
    """The scenario's enabled governance rules, evaluated once per tick.

    Args:
        model: the model (its venue, clock, market history, feed and unsafe scan).
        rules: the scenario's rules (disabled ones are left out).
        base_values: the governance value of each key a rule changes, at the start of the run.
        halt: ``halt(what, source, reason)`` starts (reason) or ends (None) a halt; returns
            whether the halt in force changed.
        log: receives each ``governance_rule`` record.

    Raises:
        ConfigError: a ``fund_fraction`` rule names a fund the venue does not have, or one
            that is empty at the start.
    """

    def __init__(
        self,
        model: PerpModel,
        rules: tuple[GovernanceRule, ...],
        base_values: dict[str, float],
        halt: Callable[[str, str, str | None], bool],
        log: Callable[[dict[str, Any]], None],
    ) -> None:
        self.model = model
        self.values = dict(base_values)
        self._halt = halt
        self._log = log
        funds = model.venue.funds()
        self.states: list[_RuleState] = []
        for rule in rules:
            if not rule.enabled:
                continue
            start = 1.0
            if rule.metric == "fund_fraction":
                if rule.fund not in funds:
                    raise ConfigError(
                        f"governance_rules.{rule.name}.fund: the venue has no fund {rule.fund!r}"
                        f" (its funds: {', '.join(funds)})"
                    )
                start = float(funds[rule.fund])
                if not start > 0:
                    raise ConfigError(
                        f"governance_rules.{rule.name}.fund: {rule.fund} is {start:g} at the"
                        " start; fund_fraction needs a fund that starts above 0"
                    )
            elif rule.metric == "backstop_loss" and not backstops(model):
                raise ConfigError(
                    f"governance_rules.{rule.name}.metric: backstop_loss needs a population of"
                    " type backstop (none in agents:); where the pool takes liquidated"
                    " positions itself (d8x, predy) use lp_loss"
                )
            elif rule.metric == "lp_loss":
                start = float(model.venue.share_price())
            self.states.append(_RuleState(rule, start))

    def __bool__(self) -> bool:
        return bool(self.states)

    def note_set(self, key: str, value: Any) -> None:
        """A scheduled ``set_governance`` event changed ``key``: rules step from its value."""
        if key in self.values and isinstance(value, int | float):
            self.values[key] = float(value)

    def step(self) -> None:
        """Expire, apply, then measure and decide (this tick's order)."""
        now = self.model.now
        for st in self.states:
            self._expire(st, now)
            self._apply_due(st, now)
            self._evaluate(st, now)
            self._complete_due(st, now)

    # -- the three stages ----------------------------------------------------------------

    def _evaluate(self, st: _RuleState, now: int) -> None:
        rule = st.rule
        if rule.action.kind == "settle" and self.model.venue.status is not Status.NORMAL:
            st.held_since = None
            return  # a settlement fires once: the market is no longer trading
        value = measure(self.model, rule, st.fund_start)
        if not rule.holds(value):
            st.held_since = None
            return
        if st.held_since is None:
            st.held_since = now
        if now - st.held_since < rule.hold:
            return
        if st.last_decision is not None and now - st.last_decision < rule.cooldown:
            return
        if rule.max_firings is not None and st.decisions >= rule.max_firings:
            return
        st.last_decision = now
        st.decisions += 1
        st.pending.append(_Pending(now + rule.latency, now, value))
        self._record(rule, "decided", metric_value=value)
        self._apply_due(st, now)

    def _apply_due(self, st: _RuleState, now: int) -> None:
        rule = st.rule
        while st.pending and st.pending[0].at <= now:
            p = st.pending.pop(0)
            action: Any = rule.action
            if action.kind in HALT_OF_ACTION:
                what = HALT_OF_ACTION[action.kind]
                self._halt(what, rule.name, f"governance rule {rule.name}")
                st.active.append(_Active(self._until(rule, now), 0.0))
                self._record(rule, "applied", key=action.kind, metric_value=p.value)
                continue
            if action.kind == "settle":
                self._begin_settlement(st, now, p.value)
                continue
            old = self.values[action.key]
            new = action.target(old)
            if new == old:
                self._record(rule, "skipped", key=action.key, value=old, metric_value=p.value)
                continue
            if self._set(rule, action.key, old, new, p.value):
                st.active.append(_Active(self._until(rule, now), new - old))

    def _expire(self, st: _RuleState, now: int) -> None:
        rule = st.rule
        keep = [a for a in st.active if a.until > now]
        due = [a for a in st.active if a.until <= now]
        st.active = keep
        action: Any = rule.action
        if action.kind in HALT_OF_ACTION:
            # The halt ends when none of this rule's firings keeps it in force any more.
            if due and not keep:
                self._halt(HALT_OF_ACTION[action.kind], rule.name, None)
                self._record(rule, "expired", key=action.kind)
            return
        for a in due:
            old = self.values[action.key]
            self._set(rule, action.key, old, old - a.delta, math.nan, stage="expired")

    def _begin_settlement(self, st: _RuleState, now: int, metric_value: float) -> None:
        """Begin global settlement at the action's price; plan (or run) its completion."""
        rule = st.rule
        action: Any = rule.action
        venue = self.model.venue
        if venue.status is not Status.NORMAL:
            # Settled or settling already (an admin, an event): nothing left to cap.
            self._record(rule, "skipped", key="settle", metric_value=metric_value)
            return
        try:
            price = self._settlement_price(action, now)
            venue.begin_global_settlement(price)
        except EngineError as exc:
            self.model.rejections[f"governance_rule:{rule.name}:{type(exc).__name__}"] += 1
            self._record(rule, "rejected", key="settle", metric_value=metric_value)
            return
        self._record(rule, "applied", key="settle", value=price, metric_value=metric_value)
        st.completions.append((now + action.complete_after, price))
        self._complete_due(st, now)

    def _settlement_price(self, action: Any, now: int) -> float:
        if isinstance(action.price, float):
            return action.price
        venue = self.model.venue
        if action.price == "mark":
            return float(venue.mark_price())
        if not action.lookback:
            return float(venue.index_price())
        model = self.model
        return float(model.feed.index(max(now - action.lookback, model.start_time))[0])

    def _complete_due(self, st: _RuleState, now: int) -> None:
        """Complete a settlement whose time has come: SETTLED, every share and account paid.

        An admin agent may have completed it first; what it left is paid out here.
        """
        if not st.completions or st.completions[0][0] > now:
            return
        _, price = st.completions.pop(0)
        venue = self.model.venue
        rule = st.rule
        try:
            if venue.status is Status.EMERGENCY:
                venue.global_settled()
        except EngineError as exc:
            self.model.rejections[f"governance_rule:{rule.name}:{type(exc).__name__}"] += 1
            self._record(rule, "rejected", key="settle")
            return
        # Every LP share is redeemed and every account paid out (a refusal is counted).
        for holder, shares in venue.share_holders().items():
            if shares > 0.0:
                self._try(rule, venue.settle_shares, holder, shares)
        for row in venue.accounts_to_settle().tolist():
            self._try(rule, venue.settle, row)
        self._record(rule, "completed", key="settle", value=price)

    def _try(self, rule: GovernanceRule, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except EngineError as exc:
            self.model.rejections[f"governance_rule:{rule.name}:{type(exc).__name__}"] += 1

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _until(rule: GovernanceRule, now: int) -> int:
        return now + rule.expiry if rule.expiry is not None else 2**62

    def _set(
        self,
        rule: GovernanceRule,
        key: str,
        old: float,
        new: float,
        metric_value: float,
        stage: str = "applied",
    ) -> bool:
        try:
            self.model.venue.set_governance(key, new)
        except EngineError as exc:
            self.model.rejections[f"governance_rule:{rule.name}:{type(exc).__name__}"] += 1
            self._record(rule, "rejected", key=key, value=new, metric_value=metric_value)
            return False
        self.values[key] = new
        self._record(rule, stage, key=key, value=new, metric_value=metric_value)
        return True

    def _record(
        self,
        rule: GovernanceRule,
        stage: str,
        *,
        key: str | None = None,
        value: float | None = None,
        metric_value: float = math.nan,
    ) -> None:
        self._log(
            {
                "kind": "governance_rule",
                "time": self.model.now,
                "tick": self.model.tick,
                "rule": rule.name,
                "stage": stage,
                "key": key if key is not None else _action_key(rule),
                "value": None if value is None else repr(float(value)),
                "metric_value": metric_value,
            }
        )


def _action_key(rule: GovernanceRule) -> str:
    a: Any = rule.action
    return str(a.kind) if a.kind in HALT_OF_ACTION or a.kind == "settle" else str(a.key)
