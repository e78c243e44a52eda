"""The scenario's ``venue:`` section for ``kind: d8x``: :class:`D8XConfig`.

``governance`` holds every parameter of the spec's deployed list (:class:`D8XGovernance`, the
deployed values as defaults; validated by the engine's own model); ``pool`` is the pool at the
start: its collateral currency, the initial AMM fund, LP cash and default fund, the quanto
collateral's price, and the exposure EMAs.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import Field, field_validator, model_validator

from perpsim.engine.core.config import FrozenModel, NonNegativeReal, PositiveReal, problem_at
from perpsim.engine.venues.d8x.governance import (
    GOVERNANCE_KEYS,
    D8XGovernance,
    check_quanto_targets,
)
from perpsim.errors import GovernanceError

__all__ = ["D8XConfig", "D8XPoolConfig"]


class D8XPoolConfig(FrozenModel):
    """The pool at the start of a run (amounts in the collateral currency).

    Attributes:
        collateral: ``quote`` (linear), ``base`` (inverse) or ``quanto`` (a third currency).
        amm_fund: the AMM fund's cash M at the start (governance funds it).
        lp_cash: what the pool's creator deposits as LP cash (it receives the first shares).
        default_fund: the default fund's cash at the start.
        collateral_price: quanto only: S3 at the start (quote per unit of collateral).
        collateral_beta: quanto only: S3 = collateral_price × (S2 / S2₀)^beta (0: fixed,
            1: it moves with the index).
        trader_exposure_ema: Π̄ at the start (base currency; null: its minimum).
        amm_exposure_ema: |K̄±| at the start (base currency; null: its minimum).
    """

    collateral: Literal["quote", "base", "quanto"] = "quote"
    amm_fund: PositiveReal = 50_000.0
    lp_cash: NonNegativeReal = 500_000.0
    default_fund: NonNegativeReal = 50_000.0
    collateral_price: PositiveReal = 1.0
    collateral_beta: float = Field(0.0, ge=-5.0, le=5.0, allow_inf_nan=False)
    trader_exposure_ema: PositiveReal | None = None
    amm_exposure_ema: PositiveReal | None = None


class D8XConfig(FrozenModel):
    """D8X as a scenario configures it (``venue: {kind: d8x, ...}``).

    Attributes:
        kind: ``d8x``.
        governance: every parameter (defaults: the deployed values).
        pool: the pool at the start.
        governance_keys: the keys ``governance`` and ``set_governance`` events may use.
    """

    governance_keys: ClassVar[tuple[str, ...]] = GOVERNANCE_KEYS

    kind: Literal["d8x"] = "d8x"
    governance: D8XGovernance = D8XGovernance()
    pool: D8XPoolConfig = D8XPoolConfig()

    @field_validator("governance", mode="before")
    @classmethod
    def _known_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key in value:
                if key not in GOVERNANCE_KEYS:
                    raise problem_at(
                        [key],
                        f"unknown D8X parameter {key!r}",
                        allowed=", ".join(GOVERNANCE_KEYS),
                    )
        return value

    @model_validator(mode="after")
    def _quanto_targets_reachable(self) -> Self:
        if self.pool.collateral == "quanto":
            try:
                check_quanto_targets(self.governance)
            except GovernanceError as exc:
                raise ValueError(f"governance: {exc}") from None
        return self

    def with_governance(self, key: str, value: float | str) -> Self:
        """A copy with one parameter changed, validated as ``set_governance`` does.

        Raises:
            GovernanceError: the engine rejects the change.
        """
        if key not in GOVERNANCE_KEYS:
            raise GovernanceError(f"unknown D8X parameter {key!r}")
        governance = self.governance.with_changes(**{key: value})
        if self.pool.collateral == "quanto":
            check_quanto_targets(governance)
        return self.model_copy(update={"governance": governance})
