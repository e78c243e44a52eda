"""``governance_rules:``: governance that reacts to the run's state while it runs.

A rule is declarative: a **metric** (measured every tick, over a **window** where the metric
needs one), a **condition** (``above`` or ``below`` a threshold, held for ``hold`` seconds) and
an **action** (change one governance key by a bounded step, halt something, or settle the
market at a reference price: a loss cap). Real-world frictions are part of the rule: the action
takes effect ``latency`` seconds after the decision (a governance vote or a risk oracle's
delay), a rule does not decide again within ``cooldown`` of its last decision (debounce), each
change is at most ``max_step`` and never passes ``limit``, and a change can ``expire`` (be
undone) after a while. The model evaluates the rules (:mod:`perpsim.model.rules`); this module
only describes and validates them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, Strict, model_validator

from perpsim.engine.core.config import FrozenModel, StrictBool, did_you_mean, problem_at
from perpsim.oracle.config import Duration

__all__ = [
    "METRICS",
    "WINDOWED_METRICS",
    "GovernanceRule",
    "HaltAction",
    "RuleAction",
    "SetGovernanceAction",
    "SettleAction",
    "governance_value",
]

#: What a rule can watch (see :class:`GovernanceRule`).
METRICS: tuple[str, ...] = (
    "realized_volatility",
    "price_change",
    "premium",
    "abs_premium",
    "fund_fraction",
    "index_age",
    "unsafe_accounts",
    "open_interest",
    "backstop_loss",
    "lp_loss",
)
#: The metrics computed over ``window`` (the others are read at the tick).
WINDOWED_METRICS: tuple[str, ...] = ("realized_volatility", "price_change")

Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
RuleName = Annotated[str, Strict(), Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")]


class SetGovernanceAction(FrozenModel):
    """Change one governance key of the venue (the same path as a ``set_governance`` event).

    Give exactly one of ``add``, ``multiply`` and ``set``.

    Attributes:
        kind: ``set_governance``.
        key: A governance key of the scenario's venue kind.
        add: Added to the value in force at each firing.
        multiply: The value in force is multiplied by this at each firing (> 0).
        set: The value to move to (in steps of at most ``max_step``).
        max_step: The largest change of one firing (absolute); null: no bound.
        limit: The value is never moved past this (the upper bound of a rise, the lower bound
            of a fall); a firing at the limit changes nothing.
    """

    kind: Literal["set_governance"]
    key: Annotated[str, Strict()]
    add: Number | None = None
    multiply: Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)] | None = None
    set: Number | None = None
    max_step: Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)] | None = None
    limit: Number | None = None

    @model_validator(mode="after")
    def _one_change(self) -> SetGovernanceAction:
        given = [k for k in ("add", "multiply", "set") if getattr(self, k) is not None]
        if len(given) != 1:
            raise problem_at(
                [given[1] if len(given) > 1 else "add"],
                "give exactly one of add, multiply and set",
                got=given or None,
                allowed="add: 0.01 | multiply: 1.5 | set: 0.1",
            )
        if self.add == 0 or self.multiply == 1:
            raise problem_at([given[0]], "changes nothing", got=getattr(self, given[0]))
        return self

    def target(self, value: float) -> float:
        """The value one firing moves ``value`` to (step bound and limit applied)."""
        if self.add is not None:
            new = value + self.add
        elif self.multiply is not None:
            new = value * self.multiply
        else:
            assert self.set is not None
            new = self.set
        if self.max_step is not None:
            new = value + max(-self.max_step, min(self.max_step, new - value))
        if self.limit is not None:
            new = (
                min(new, max(value, self.limit))
                if new > value
                else max(new, min(value, self.limit))
            )
        return new


class HaltAction(FrozenModel):
    """Halt something on the venue while the action is in force.

    Attributes:
        kind: ``pause_opening`` (trades that increase a position are refused; closing works),
            ``halt_trading`` (every trade is refused), ``halt_liquidation`` or
            ``halt_withdrawal``.
    """

    kind: Literal["pause_opening", "halt_trading", "halt_liquidation", "halt_withdrawal"]


class SettleAction(FrozenModel):
    """Settle the market at a reference price: a loss cap (Hyperliquid's JELLY, March 2025).

    The venue's global settlement begins at ``price`` (EMERGENCY: trading and withdrawals stop)
    and completes ``complete_after`` later (SETTLED), when every LP share is redeemed and every
    account is paid out at that price. It fires once: a rule does not decide again once the
    venue has left NORMAL.

    Attributes:
        kind: ``settle``.
        price: The settlement price: a number (USD), ``index`` (the index the venue reads) or
            ``mark`` (its mark price).
        lookback: With ``price: index``: the index as it was this long before the decision (a
            reference from before a manipulation; the first index when the run is younger);
            0: now.
        complete_after: Seconds from the beginning of settlement to its completion.
    """

    kind: Literal["settle"]
    price: (
        Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)] | Literal["index", "mark"]
    ) = "index"
    lookback: Annotated[Duration, Field(ge=0)] = 0
    complete_after: Annotated[Duration, Field(ge=0)] = 0

    @model_validator(mode="before")
    @classmethod
    def _price(cls, data: Any) -> Any:
        # One message for the two forms of price (a number, or the name of a price).
        price: Any = data.get("price", "index") if isinstance(data, Mapping) else "index"
        if isinstance(price, str) and price in ("index", "mark"):
            return data
        number = isinstance(price, int | float) and not isinstance(price, bool)
        if not (number and math.isfinite(price) and price > 0):
            suggestion = ""
            if isinstance(price, str):
                close = did_you_mean(price, ("index", "mark"))
                suggestion = f"; did you mean {close!r}?" if close else ""
            raise problem_at(
                ["price"],
                f"must be a price above 0 (USD), index or mark{suggestion}",
                got=price,
                allowed="2280 | index | mark",
            )
        return data

    @model_validator(mode="after")
    def _check(self) -> SettleAction:
        if self.lookback and self.price != "index":
            raise problem_at(
                ["lookback"],
                "is only used with price: index (the index as it was that long ago)",
                got=self.lookback,
                allowed="price: index with lookback: 2h, or no lookback",
            )
        return self

    def describe(self) -> str:
        """``settle at the index 7200 s ago``, ``settle at 2280``, ``settle at the mark``."""
        if isinstance(self.price, float):
            at = f"{self.price:g}"
        elif self.lookback:
            at = f"the index {self.lookback} s ago"
        else:
            at = f"the {self.price}"
        return f"settle at {at}"


#: A rule's action; ``kind`` selects it.
RuleAction = Annotated[SetGovernanceAction | HaltAction | SettleAction, Field(discriminator="kind")]


class GovernanceRule(FrozenModel):
    """One reacting governance rule (see the module docstring).

    Metrics (``metric``):

    - ``realized_volatility``: annualised standard deviation of the market price's tick log
      returns over ``window`` (1.2 = 120%);
    - ``price_change``: market price now / market price ``window`` ago − 1;
    - ``premium``: the pool's own price / the index − 1 (``abs_premium``: its absolute value);
    - ``fund_fraction``: the venue's fund ``fund`` now / at the start of the run;
    - ``index_age``: seconds since the index the venue reads was published;
    - ``unsafe_accounts``: accounts found unsafe at the last scan;
    - ``open_interest``: contracts held long;
    - ``backstop_loss``: what the ``backstop`` agents have lost on the positions they took
      over (USD: deposits minus margin balance at the mark; needs a backstop population);
    - ``lp_loss``: what the LPs have lost (USD: the LP shares in issue times the fall of the
      share price since the start), the backstop's loss where the pool takes liquidated
      positions itself (D8X, Predy).

    Attributes:
        name: Unique name (in the event log and the figures).
        metric: What is watched.
        window: The lookback of ``realized_volatility`` and ``price_change`` (at least two
            ticks); not used by the other metrics.
        fund: The fund of ``fund_fraction`` (a name of ``venue.funds()``).
        above: The condition holds while the metric is above this.
        below: The condition holds while the metric is below this (give one of the two).
        hold: The condition must have held this long without a break before the rule fires.
        action: What a firing does.
        latency: Seconds from the decision to the change (governance or risk-oracle delay).
        cooldown: After a decision the rule does not decide again for this long.
        expiry: A change is undone this long after it took effect; null: it stays.
        max_firings: Decisions at most; null: no bound.
        enabled: A disabled rule is validated but never fires (a sweep compares the two).
    """

    name: RuleName
    metric: Literal[
        "realized_volatility",
        "price_change",
        "premium",
        "abs_premium",
        "fund_fraction",
        "index_age",
        "unsafe_accounts",
        "open_interest",
        "backstop_loss",
        "lp_loss",
    ]
    window: Annotated[Duration, Field(gt=0)] | None = None
    fund: Annotated[str, Strict()] = "insurance_fund"
    above: Number | None = None
    below: Number | None = None
    hold: Annotated[Duration, Field(ge=0)] = 0
    action: RuleAction
    latency: Annotated[Duration, Field(ge=0)] = 0
    cooldown: Annotated[Duration, Field(ge=0)] = 0
    expiry: Annotated[Duration, Field(gt=0)] | None = None
    max_firings: Annotated[int, Strict(), Field(ge=1)] | None = None
    enabled: StrictBool = True

    @model_validator(mode="after")
    def _check(self) -> GovernanceRule:
        if (self.above is None) == (self.below is None):
            raise problem_at(
                ["above" if self.above is not None else "below"],
                "give exactly one of above and below",
                allowed="above: 1.2 | below: 0.2",
            )
        if self.metric in WINDOWED_METRICS and self.window is None:
            raise problem_at(
                ["window"], f"metric {self.metric} needs a window", allowed="a duration, e.g. 1h"
            )
        if self.metric not in WINDOWED_METRICS and self.window is not None:
            raise problem_at(
                ["window"],
                f"metric {self.metric} is read at the tick and takes no window"
                " (use hold: for how long the condition must last)",
                got=self.window,
            )
        if isinstance(self.action, SettleAction) and self.expiry is not None:
            raise problem_at(
                ["expiry"],
                "a settlement cannot be undone (a settle action takes no expiry)",
                got=self.expiry,
            )
        return self

    @property
    def threshold(self) -> float:
        """The condition's threshold."""
        value = self.above if self.above is not None else self.below
        assert value is not None
        return value

    def holds(self, value: float) -> bool:
        """Whether the condition holds for a metric ``value`` (NaN never holds)."""
        if math.isnan(value):
            return False
        return value > self.threshold if self.above is not None else value < self.threshold

    def describe(self) -> str:
        """One line: ``name: metric > x for 4h -> action``."""
        op = ">" if self.above is not None else "<"
        window = f" over {self.window} s" if self.window is not None else ""
        hold = f" for {self.hold} s" if self.hold else ""
        return f"{self.name}: {self.metric}{window} {op} {self.threshold:g}{hold} -> {_act(self)}"


def _act(rule: GovernanceRule) -> str:
    a: Any = rule.action
    if isinstance(a, HaltAction):
        return a.kind
    if isinstance(a, SettleAction):
        return a.describe()
    how = (
        f"+{a.add:g}"
        if a.add is not None
        else f"x{a.multiply:g}"
        if a.multiply is not None
        else f"={a.set:g}"
    )
    return f"{a.key} {how}"


def governance_value(section: Any, key: str) -> float | None:
    """The value of governance ``key`` in a scenario's ``venue:`` section (None if unknown).

    Reads the design's validated governance objects (defaults included): MCDEX v1 keeps them as
    ``perpetual_governance`` / ``amm_governance``, the other designs as ``governance``.
    """
    for attr in ("perpetual_governance", "amm_governance", "governance"):
        source = getattr(section, attr, None)
        if source is None or isinstance(source, Mapping):
            continue
        value = getattr(source, key, None)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None
