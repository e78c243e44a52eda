"""The scenario's ``venue:`` section for ``kind: mcdex_v1``: :class:`MCDEXV1Config`.

``governance`` is the flat mapping of both governance sets (the perpetual's and the pool's keys
side by side; the engine's defaults apply to the others), validated by the engine's own
:class:`PerpetualGovernance` and :class:`AMMGovernance`, which are built once here and carried
typed to the venue. ``pool`` is the pool at the start; ``insurance_fund`` and ``dev_balance`` the
initial balances.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, model_validator

from perpsim.engine.core.config import (
    MISSING,
    FrozenModel,
    NonNegativeReal,
    PositiveReal,
    Problem,
    ProblemsError,
    problem_at,
    unknown_name_message,
)
from perpsim.engine.venues.mcdex_v1.governance import (
    CHOICE_KEYS,
    GOVERNANCE_KEYS,
    PERPETUAL_GOVERNANCE_KEYS,
    AMMGovernance,
    PerpetualGovernance,
    split_governance,
)
from perpsim.errors import GovernanceError

__all__ = ["GovernanceValues", "MCDEXV1Config", "PoolConfig"]

_T = TypeVar("_T")


def _engine_call(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """Calls the engine's governance validation; arithmetic failures become GovernanceError."""
    try:
        return fn(*args, **kwargs)
    except ArithmeticError as exc:
        raise GovernanceError(
            f"lot_size and trading_lot_size are out of range ({exc}), got"
            " trading_lot_size / lot_size overflowing"
        ) from exc


def _engine_problem(
    exc: GovernanceError, explicit: Iterable[str], values: Mapping[str, Any]
) -> Problem:
    """Turns an engine governance error into a problem naming the governance keys involved."""
    message = str(exc)
    mentioned = sorted(
        (m.start(), key)
        for key in GOVERNANCE_KEYS
        for m in [re.search(rf"(?<![A-Za-z0-9_]){re.escape(key)}(?![A-Za-z0-9_])", message)]
        if m is not None
    )
    keys = [key for _, key in mentioned]
    explicit = list(explicit)
    primary = next((k for k in keys if k in explicit), keys[0] if keys else None)
    if primary is None:
        return Problem((), message)
    related = tuple((k,) for k in keys if k != primary)
    return Problem((primary,), message, got=values.get(primary, MISSING), related=related)


def _validate_governance(value: Any) -> Any:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise problem_at(
            [], "must be a mapping of governance keys to values", got=value, allowed="a mapping"
        )
    problems: list[Problem] = []
    clean: dict[str, float | str] = {}
    for key, item in value.items():
        if key not in GOVERNANCE_KEYS:
            problems.append(
                Problem(
                    (key,),
                    unknown_name_message("key", key, GOVERNANCE_KEYS),
                    allowed=", ".join(GOVERNANCE_KEYS),
                )
            )
        elif key in CHOICE_KEYS:
            if item not in CHOICE_KEYS[key]:
                problems.append(
                    Problem(
                        (key,), "not an allowed name", got=item, allowed=", ".join(CHOICE_KEYS[key])
                    )
                )
            else:
                clean[key] = item
        elif isinstance(item, bool) or not isinstance(item, int | float):
            problems.append(Problem((key,), "must be a number", got=item, allowed="a number"))
        elif not math.isfinite(item):
            problems.append(Problem((key,), "must be a finite number", got=item))
        else:
            clean[key] = float(item)
    if problems:
        raise ProblemsError(problems)
    perp, amm = split_governance(clean)
    for cls, values in ((PerpetualGovernance, perp), (AMMGovernance, amm)):
        try:
            _engine_call(cls, **values)
        except GovernanceError as exc:
            problems.append(_engine_problem(exc, values, clean))
    if problems:
        raise ProblemsError(problems)
    return clean


def _freeze_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


#: Flat governance keys of the perpetual and the pool (validated by the engine), read-only.
GovernanceValues = Annotated[
    Mapping[str, float | str],
    BeforeValidator(_validate_governance),
    AfterValidator(_freeze_mapping),
    PlainSerializer(dict, return_type=dict[str, float | str]),
]


class PoolConfig(FrozenModel):
    """The AMM pool at the start of the run.

    Attributes:
        initial_liquidity: Contracts the pool starts long (``create_pool(amount)``); the creator
            pays 2 × index × amount and goes short the same amount.
        creator_cash: Collateral (USD) of the pool creator; null lets the model deposit what
            create_pool needs plus the initial margin of the creator's short.
    """

    initial_liquidity: PositiveReal = 1_000.0
    creator_cash: NonNegativeReal | None = None


class MCDEXV1Config(FrozenModel):
    """MCDEX v1 as a scenario configures it (``venue: {kind: mcdex_v1, ...}``).

    Attributes:
        kind: ``mcdex_v1``.
        governance: Governance keys set by the scenario (the engine's defaults apply to the
            others); read the validated objects as :attr:`perpetual_governance` and
            :attr:`amm_governance`.
        pool: The AMM pool at the start.
        insurance_fund: Initial balance (USD) of the insurance fund.
        dev_balance: Initial cash (USD) of the dev account, which pays the update_index prize.
        governance_keys: The keys ``governance`` and ``set_governance`` events may use.
    """

    governance_keys: ClassVar[tuple[str, ...]] = GOVERNANCE_KEYS

    kind: Literal["mcdex_v1"] = "mcdex_v1"
    governance: GovernanceValues = Field(default_factory=lambda: MappingProxyType({}))
    pool: PoolConfig = PoolConfig()
    insurance_fund: NonNegativeReal = 0.0
    dev_balance: NonNegativeReal = 0.0

    _perpetual: PerpetualGovernance = PerpetualGovernance()
    _amm: AMMGovernance = AMMGovernance()

    @model_validator(mode="after")
    def _build(self) -> MCDEXV1Config:
        perp, amm = split_governance(dict(self.governance))
        self._perpetual = PerpetualGovernance(**perp)
        self._amm = AMMGovernance(**amm)
        lot = self._perpetual.lot_size
        ratio = self.pool.initial_liquidity / lot
        if not math.isfinite(ratio) or abs(ratio - round(ratio)) > 1e-9 * max(1.0, ratio):
            raise problem_at(
                ["pool", "initial_liquidity"],
                f"must be a multiple of governance.lot_size ({lot})",
                got=self.pool.initial_liquidity,
            )
        return self

    @property
    def perpetual_governance(self) -> PerpetualGovernance:
        """The perpetual's governance at the start of the run (engine defaults + scenario)."""
        return self._perpetual

    @property
    def amm_governance(self) -> AMMGovernance:
        """The AMM pool's governance at the start of the run (engine defaults + scenario)."""
        return self._amm

    def with_governance(self, key: str, value: float | str) -> MCDEXV1Config:
        """A copy with one governance key changed, validated by the engine.

        Args:
            key: One of :attr:`governance_keys`.
            value: The new value.

        Raises:
            GovernanceError: the engine rejects the change (the rates in force are kept).
        """
        perp, amm = self._perpetual, self._amm
        if key in PERPETUAL_GOVERNANCE_KEYS:
            perp = _engine_call(perp.with_changes, **{key: value})
        else:
            amm = _engine_call(amm.with_changes, **{key: value})
        changed = self.model_copy(
            update={"governance": MappingProxyType({**self.governance, key: value})}
        )
        changed._perpetual, changed._amm = perp, amm
        return changed
