"""Predy's parameters and the scenario's ``venue:`` section for ``kind: predy``.

:class:`PredyParams` holds every parameter of ``spec/predy.md``'s mainnet list (with the mainnet
value as default) and the constants of the contracts a risk review may want to vary; it is the
``governance`` of the venue (``set_governance`` changes one key, validated here).
:class:`PredyConfig` adds the pool at the start and the funding formula.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, ValidationError, field_validator, model_validator

from perpsim.engine.core.config import FrozenModel, NonNegativeReal, PositiveReal
from perpsim.errors import GovernanceError

__all__ = ["GOVERNANCE_KEYS", "PoolStart", "PredyConfig", "PredyParams", "changed_params"]


class PredyParams(FrozenModel):
    """Predy's parameters (mainnet values by default; rates are fractions, times seconds).

    Attributes:
        squared_perp_funding_multiplier: How much the squared's funding rises with the locked
            margin over the liquidity (× F).
        perp_future_max_funding_rate: The future's funding rate per day at F = 1.
        base_funding_rate: The future's funding rate at F = 0 (0 on mainnet).
        pool_margin_risk_param: α of the pool's required margin (the spot move it covers).
        trade_fee_rate: Trade fee per unit of index price (the squared pays twice this).
        protocol_fee_rate: The part of each trade's fee that leaves the pool (× 2 on squared).
        min_slippage_tolerance_of_hedge: Hedge slippage when the price has not moved.
        max_slippage_tolerance_of_hedge: Hedge slippage at ``hedge_rate_of_return_threshold``.
        hedge_rate_of_return_threshold: Price move since the last hedge at which the slippage
            reaches its maximum.
        variance_interval: Least time between two variance snapshots.
        funding_period: The period funding rates are quoted for (u² is normalised to it too).
        max_position_per_vault: Largest position per product in one vault (contracts).
        vault_risk_param: α of the vault's MinCollateral (0.05).
        min_margin: MinCollateral's floor when the vault holds a position (USDC).
        liquidation_fee_rate: Liquidation reward as a fraction of MinCollateral (half to L,
            half to the liquidator).
        spread_window: Seconds after a fill during which the other side cannot fill through
            it (0 disables the spread guard; the contracts' 5 blocks).
        spread_decay_interval: Seconds per basis point the guard relaxes (3 blocks).
        lot_size: Grid of position and trade sizes (the contracts' 1e-8).
    """

    squared_perp_funding_multiplier: float = Field(3.0, ge=0.0, le=20.0)
    perp_future_max_funding_rate: float = Field(0.004, ge=0.0, le=0.01)
    base_funding_rate: float = Field(0.0, ge=-0.01, le=0.01)
    pool_margin_risk_param: float = Field(0.4, ge=0.0, le=10.0)
    trade_fee_rate: float = Field(0.0005, ge=0.0, le=0.003)
    protocol_fee_rate: float = Field(0.0001, ge=0.0, le=0.003)
    min_slippage_tolerance_of_hedge: float = Field(0.0034, ge=0.0, le=0.02)
    max_slippage_tolerance_of_hedge: float = Field(0.0052, ge=0.0, le=0.02)
    hedge_rate_of_return_threshold: float = Field(0.05, gt=0.0, le=1.0)
    variance_interval: float = Field(43_200.0, gt=0.0)
    funding_period: float = Field(86_400.0, gt=0.0)
    max_position_per_vault: float = Field(150.0, gt=0.0)
    vault_risk_param: float = Field(0.05, gt=0.0, lt=0.5)
    min_margin: float = Field(200.0, ge=0.0)
    liquidation_fee_rate: float = Field(0.1, ge=0.0, le=1.0)
    spread_window: float = Field(5.0, ge=0.0, le=3600.0)
    spread_decay_interval: float = Field(3.0, gt=0.0)
    lot_size: float = Field(1e-8, gt=0.0, le=1.0)

    @field_validator("*", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number, got {value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PredyParams:
        if self.protocol_fee_rate >= self.trade_fee_rate and self.trade_fee_rate > 0.0:
            raise ValueError(
                "protocol_fee_rate must be below trade_fee_rate (the protocol takes part of the"
                " trade fee)"
            )
        if self.min_slippage_tolerance_of_hedge > self.max_slippage_tolerance_of_hedge:
            raise ValueError(
                "min_slippage_tolerance_of_hedge must not exceed max_slippage_tolerance_of_hedge"
            )
        return self


#: Every parameter key, in the spec's order.
GOVERNANCE_KEYS: tuple[str, ...] = tuple(PredyParams.model_fields)


def _message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def changed_params(params: PredyParams, key: str, value: Any) -> PredyParams:
    """``params`` with ``key`` set to ``value``, validated.

    Raises:
        GovernanceError: an unknown key, or a value the rules refuse (naming the key).
    """
    if key not in GOVERNANCE_KEYS:
        raise GovernanceError(
            f"unknown governance key {key!r}; Predy's keys: {', '.join(GOVERNANCE_KEYS)}"
        )
    try:
        return PredyParams.model_validate({**params.model_dump(), key: value})
    except ValidationError as exc:
        raise GovernanceError(f"governance {key}={value!r} rejected: {_message(exc)}") from None


class PoolStart(FrozenModel):
    """The pool at the start of a run: the first LP's ``initialize``.

    Attributes:
        initial_liquidity: USDC the first LP deposits (it mints as many LP tokens).
        initial_variance: The variance per day the pool starts with (the squared's funding
            rate at zero utilisation); 0.0016 is a 4% daily, ~76% yearly volatility.
    """

    initial_liquidity: PositiveReal = 1_000_000.0
    initial_variance: PositiveReal = 0.0016


class PredyConfig(FrozenModel):
    """Predy's pool as a scenario configures it (``venue: {kind: predy, ...}``).

    Attributes:
        kind: ``predy``.
        governance: The parameters (:class:`PredyParams`; mainnet values by default).
        pool: The pool at the start.
        funding_formula: ``seed`` (the seed's F, default) or ``mainnet`` ((3·I1 + 7·I3) / 10
            with signed margins).
        creator_cash: USDC of the first LP beyond what it deposits into the pool.
    """

    governance_keys: ClassVar[tuple[str, ...]] = GOVERNANCE_KEYS

    kind: Literal["predy"] = "predy"
    governance: PredyParams = PredyParams()
    pool: PoolStart = PoolStart()
    funding_formula: Literal["seed", "mainnet"] = "seed"
    creator_cash: NonNegativeReal = 0.0

    @field_validator("governance", mode="before")
    @classmethod
    def _governance(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, Mapping):
            unknown = [k for k in value if k not in GOVERNANCE_KEYS]
            if unknown:
                raise ValueError(
                    f"unknown key {unknown[0]!r}; Predy's keys: {', '.join(GOVERNANCE_KEYS)}"
                )
        return value

    def with_governance(self, key: str, value: float | str) -> Self:
        """A copy with one parameter changed (validated as ``set_governance`` does).

        Raises:
            GovernanceError: the key is unknown or the value refused.
        """
        return self.model_copy(update={"governance": changed_params(self.governance, key, value)})
