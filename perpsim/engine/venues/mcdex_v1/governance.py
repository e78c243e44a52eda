"""Governance parameters of the perpetual (seed 002) and the AMM pool (seed 004).

Both are frozen dataclasses validated on construction; a run-time change builds a new validated
copy (``with_changes``) so a rejected change leaves the old parameters in force.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from perpsim.errors import GovernanceError

SocialLossSide = Literal["opposite", "same"]
SOCIAL_LOSS_SIDES: tuple[str, ...] = ("opposite", "same")
CashBalanceRule = Literal["margin", "non_negative"]
CASH_BALANCE_RULES: tuple[str, ...] = ("margin", "non_negative")
SettlementFunding = Literal["last_update", "accrue"]
SETTLEMENT_FUNDING: tuple[str, ...] = ("last_update", "accrue")

#: Perpetual governance options that take one of a few names rather than a number.
CHOICE_KEYS: dict[str, tuple[str, ...]] = {
    "social_loss_side": SOCIAL_LOSS_SIDES,
    "cash_balance_rule": CASH_BALANCE_RULES,
    "settlement_funding": SETTLEMENT_FUNDING,
}

#: The funding period of seed 004: a funding rate is an 8-hour rate.
FUNDING_PERIOD_SECONDS = 28_800


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GovernanceError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise GovernanceError(f"{name} must be finite, got {value!r}")
    return v


@dataclass(frozen=True, slots=True)
class PerpetualGovernance:
    """The seed's ``Gov*`` parameters of the perpetual.

    Attributes:
        initial_margin_rate: ``GovInitialMarginRate``; position margin = mark × size × this.
        maintenance_margin_rate: ``GovMaintenanceMarginRate``; an account is safe while its margin
            balance covers mark × size × this.
        liquidation_penalty_rate: ``GovLiquidationPenaltyRate``; share of the liquidated value
            paid to the liquidator.
        penalty_fund_rate: ``GovPenaltyFundRate``; share of the liquidated value paid to the
            insurance fund.
        taker_dev_fee_rate: ``GovTakerDevFeeRate`` of two-party trades, paid to the dev account.
        maker_dev_fee_rate: ``GovMakerDevFeeRate``; negative is a rebate paid by the dev account.
        lot_size: ``GovLotSize``; every position size and change is a multiple of it.
        trading_lot_size: ``GovTradingLotSize``; the unit of trades, a multiple of ``lot_size``.
        social_loss_side: ``"opposite"`` (default, the deployed rule: a liquidated long's loss is
            paid by shorts) or ``"same"`` (the spring-2020 rule: the liquidated side pays).
        cash_balance_rule: ``"margin"`` (default, the deployed contracts: an operation may leave
            cash negative as long as the margin checks hold) or ``"non_negative"`` (stricter:
            a trade, liquidity operation, liquidation or admin decrease that would leave an
            account's cash below zero is refused).
        settlement_funding: ``"last_update"`` (default, the deployed contracts: global settlement
            freezes the accumulated funding where the last funding update left it) or
            ``"accrue"`` (funding is first brought up to the settlement time, then frozen).
    """

    initial_margin_rate: float = 0.10
    maintenance_margin_rate: float = 0.075
    liquidation_penalty_rate: float = 0.005
    penalty_fund_rate: float = 0.005
    taker_dev_fee_rate: float = 0.00075
    maker_dev_fee_rate: float = -0.00025
    lot_size: float = 1e-18
    trading_lot_size: float = 1e-18
    social_loss_side: SocialLossSide = "opposite"
    cash_balance_rule: CashBalanceRule = "margin"
    settlement_funding: SettlementFunding = "last_update"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.name not in CHOICE_KEYS:
                object.__setattr__(self, f.name, _finite(f.name, getattr(self, f.name)))
        im, mm = self.initial_margin_rate, self.maintenance_margin_rate
        if not 0 < mm < im < 1:
            raise GovernanceError(
                f"margin rates must satisfy 0 < maintenance_margin_rate < initial_margin_rate < 1,"
                f" got maintenance_margin_rate={mm}, initial_margin_rate={im}"
            )
        for name in ("liquidation_penalty_rate", "penalty_fund_rate"):
            v = getattr(self, name)
            if not 0 <= v < mm:
                raise GovernanceError(
                    f"{name} must satisfy 0 <= {name} < maintenance_margin_rate ({mm}), got {v}"
                )
        for name in ("taker_dev_fee_rate", "maker_dev_fee_rate"):
            v = getattr(self, name)
            if not -1 < v < 1:
                raise GovernanceError(f"{name} must be in (-1, 1), got {v}")
        if self.lot_size <= 0:
            raise GovernanceError(f"lot_size must be > 0, got {self.lot_size}")
        if self.trading_lot_size <= 0:
            raise GovernanceError(f"trading_lot_size must be > 0, got {self.trading_lot_size}")
        ratio = self.trading_lot_size / self.lot_size
        if (
            not math.isfinite(ratio)
            or ratio < 1 - 1e-9
            or abs(ratio - round(ratio)) > 1e-9 * max(1.0, ratio)
        ):
            raise GovernanceError(
                "trading_lot_size must be a positive integer multiple of lot_size, got"
                f" trading_lot_size={self.trading_lot_size}, lot_size={self.lot_size}"
            )
        for name, choices in CHOICE_KEYS.items():
            if getattr(self, name) not in choices:
                raise GovernanceError(
                    f"{name} must be one of {choices}, got {getattr(self, name)!r}"
                )

    def with_changes(self, **changes: Any) -> PerpetualGovernance:
        """Return a validated copy with ``changes`` applied (unknown keys are rejected)."""
        _check_keys(self, changes)
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class AMMGovernance:
    """The seed's ``Gov*`` parameters of the AMM pool (seed 004).

    Attributes:
        pool_fee_rate: ``GovPoolFeeRate``; fee on traded value paid to the pool (the LPs).
        pool_dev_fee_rate: ``GovPoolDevFeeRate``; fee on traded value paid to the dev account.
        ema_alpha: ``GovEMAAlpha``; per-second weight of the premium EMA (seed example 2/(600+1)).
        update_index_prize: ``GovUpdateIndexPrize``; collateral paid from the dev account to the
            caller of ``update_index`` when the index changed.
        mark_premium_limit: ``GovMarkPremiumLimit``; the mark price stays within index × (1 ± this).
        funding_dampener: ``GovFundingDampener``; premium rates within ± this pay no funding.
    """

    pool_fee_rate: float = 0.000375
    pool_dev_fee_rate: float = 0.000375
    ema_alpha: float = 2.0 / (600 + 1)
    update_index_prize: float = 0.0
    mark_premium_limit: float = 0.005
    funding_dampener: float = 0.0005

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _finite(f.name, getattr(self, f.name)))
        for name in ("pool_fee_rate", "pool_dev_fee_rate"):
            v = getattr(self, name)
            if not 0 <= v < 1:
                raise GovernanceError(f"{name} must be in [0, 1), got {v}")
        if not 0 < self.ema_alpha < 1:
            raise GovernanceError(f"ema_alpha must be in (0, 1), got {self.ema_alpha}")
        if self.update_index_prize < 0:
            raise GovernanceError(f"update_index_prize must be >= 0, got {self.update_index_prize}")
        if not 0 < self.mark_premium_limit < 1:
            # Below 1 the clamped mark price index × (1 ± limit) stays positive.
            raise GovernanceError(
                f"mark_premium_limit must be in (0, 1), got {self.mark_premium_limit}"
            )
        if not 0 <= self.funding_dampener <= self.mark_premium_limit:
            raise GovernanceError(
                "funding_dampener must satisfy 0 <= funding_dampener <= mark_premium_limit"
                f" ({self.mark_premium_limit}), got {self.funding_dampener}"
            )

    @property
    def ema_alpha2(self) -> float:
        """``GovEMAAlpha2`` = 1 − alpha."""
        return 1.0 - self.ema_alpha

    def with_changes(self, **changes: Any) -> AMMGovernance:
        """Return a validated copy with ``changes`` applied (unknown keys are rejected)."""
        _check_keys(self, changes)
        return dataclasses.replace(self, **changes)


PERPETUAL_GOVERNANCE_KEYS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(PerpetualGovernance)
)
AMM_GOVERNANCE_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(AMMGovernance))
GOVERNANCE_KEYS: tuple[str, ...] = PERPETUAL_GOVERNANCE_KEYS + AMM_GOVERNANCE_KEYS


def _check_keys(obj: object, changes: dict[str, Any]) -> None:
    names = {f.name for f in dataclasses.fields(obj)}  # type: ignore[arg-type]
    unknown = sorted(set(changes) - names)
    if unknown:
        raise GovernanceError(
            f"unknown governance key(s) {unknown} for {type(obj).__name__};"
            f" allowed: {sorted(names)}"
        )


def split_governance(
    values: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a flat ``{key: value}`` mapping into perpetual and AMM parts.

    Raises:
        GovernanceError: a key belongs to neither.
    """
    perp: dict[str, Any] = {}
    amm: dict[str, Any] = {}
    for key, value in values.items():
        if key in PERPETUAL_GOVERNANCE_KEYS:
            perp[key] = value
        elif key in AMM_GOVERNANCE_KEYS:
            amm[key] = value
        else:
            raise GovernanceError(
                f"unknown governance key {key!r}; allowed: {', '.join(GOVERNANCE_KEYS)}"
            )
    return perp, amm
