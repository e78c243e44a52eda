"""The D8X pool's parameters: the spec's deployed list, each with its deployed value as default.

:class:`D8XGovernance` is frozen and validated on construction; a change builds a new validated
copy (:meth:`D8XGovernance.with_changes`), so a rejected change leaves the parameters in force.
The deployed values are those of the first deployment (Sovryn Perpetuals, 2022:
``PERPETUAL_BASE_PARAMS``, ``PERPETUAL_UNDERLYING_RISKS_PARAMS``,
``PERPETUAL_DEFAULT_FUND_RISK_PARAMS``).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from perpsim.engine.core.config import FrozenModel
from perpsim.errors import GovernanceError

__all__ = ["GOVERNANCE_KEYS", "PRICING_CAPITAL", "D8XGovernance"]

#: Where the pricing formula reads the AMM's capital M from.
PRICING_CAPITAL: tuple[str, ...] = ("amm_fund", "pool")


class D8XGovernance(FrozenModel):
    """Every rate and parameter of one D8X perpetual and its pool (collateral units: the pool's).

    Attributes:
        initial_margin_rate_alpha: α of IM = min(α + β |pos|, cap) (``fInitialMarginRateAlpha``).
        margin_rate_beta: β, how margin rates grow with the position (``fMarginRateBeta``).
        initial_margin_rate_cap: the IM rate's cap (``fInitialMarginRateCap``); the liquidation
            amount restores margin at this rate.
        maintenance_margin_rate_alpha: MM = IM − (α_IM − α_MM) (``fMaintenanceMarginRateAlpha``).
        treasury_fee_rate: per unit of notional, to the AMM fund or the DF (``fTreasuryFeeRate``).
        lp_fee_rate: per unit of notional, to LP cash (``fPnLPartRate``).
        liquidation_penalty_rate: of the liquidated notional; half to the liquidator, half to
            the DF (``fLiquidationPenaltyRate``).
        minimal_spread: δ of the price while the DF is at target (``fMinimalSpread``).
        minimal_spread_in_stress: δ while the DF is below target (``fMinimalSpreadInStress``).
        incentive_spread: ι, the D8X simulator's incentive spread (``fIncentiveSpread``), added
            to the price as ι × incentive_shape(k / Π̄); 0 in the deployed parameters.
        lot_size: the grid of positions and trades, base currency (``fLotSizeBC``).
        funding_rate_clamp: Δ, the premium inside which no funding is paid (``fFundingRateClamp``).
        mark_price_ema_lambda: λ of the mark premium EMA (``fMarkPriceEMALambda``).
        sigma2: volatility of the index returns (``fSigma2``).
        sigma3: volatility of the quanto collateral's returns (``fSigma3``).
        rho23: correlation of the two (``fRho23``).
        stress_return_s2_down: r2−, the index's down stress return (``fStressReturnS2[0]``).
        stress_return_s2_up: r2+ (``fStressReturnS2[1]``).
        stress_return_s3_down: r3−, the quanto collateral's return in the S2-down stress
            scenario (``fStressReturnS3[0]``). Either sign: the collateral may fall with the
            index (D8X's MATIC pool for BTCUSD uses −20% / −10%).
        stress_return_s3_up: r3+, its return in the S2-up scenario (``fStressReturnS3[1]``).
        cover_n_rate: n = max(rate × active accounts, 5) traders covered (``fDFCoverNRate``).
        df_lambda_slow: λ of the exposure EMAs when the exposure falls (``fDFLambda[0]``).
        df_lambda_fast: λ when it rises (``fDFLambda[1]``).
        amm_target_dd_baseline: the AMM fund's baseline distance to default (``fAMMTargetDD[0]``).
        amm_target_dd_stress: its stress distance to default (``fAMMTargetDD[1]``).
        amm_min_size: the AMM fund target's floor (``fAMMMinSizeCC``).
        minimal_trader_exposure_ema: floor of the trader-exposure observations
            (``fMinimalTraderExposureEMA``).
        minimal_amm_exposure_ema: floor of the AMM-exposure observations
            (``fMinimalAMMExposureEMA``).
        price_move_threshold: a before-hook rebalance runs when the index (or S3) moved more
            than this since it was last read (``PRICE_MOVE_THRESHOLD``, 1 bp).
        default_fund_target_interval: seconds between recomputations of the DF target
            (``iTargetPoolSizeUpdateTime``).
        pricing_capital: ``amm_fund`` (M = AMM fund: the deployed contracts) or ``pool``
            (M = AMM fund + AMM margin + ``pricing_lp_share`` × LP cash: D8X's simulator).
        pricing_lp_share: the share P of LP cash in the ``pool`` pricing capital. D8X's
            simulator starts P at 0 when LPs deposit and raises it towards min(LP cash,
            0.75 DF) over its fund-transfer convergence period; here P is fixed, by default 0
            (the simulator's value for a fresh deposit, hence for its first trade).
    """

    initial_margin_rate_alpha: float = Field(0.06, gt=0.0, lt=1.0)
    margin_rate_beta: float = Field(0.1, ge=0.0)
    initial_margin_rate_cap: float = Field(0.1, gt=0.0, lt=1.0)
    maintenance_margin_rate_alpha: float = Field(0.04, gt=0.0, lt=1.0)
    treasury_fee_rate: float = Field(0.0003, ge=0.0, lt=0.1)
    lp_fee_rate: float = Field(0.0003, ge=0.0, lt=0.1)
    liquidation_penalty_rate: float = Field(0.002, ge=0.0, lt=0.1)
    minimal_spread: float = Field(0.0005, ge=0.0, lt=0.5)
    minimal_spread_in_stress: float = Field(0.001, ge=0.0, lt=0.5)
    incentive_spread: float = Field(0.0, ge=0.0, lt=0.5)
    lot_size: float = Field(0.0001, gt=0.0)
    funding_rate_clamp: float = Field(0.0005, ge=0.0, lt=0.5)
    mark_price_ema_lambda: float = Field(0.7, gt=0.0, lt=1.0)
    sigma2: float = Field(0.05, gt=0.0, lt=5.0)
    sigma3: float = Field(0.1, gt=0.0, lt=5.0)
    rho23: float = Field(0.1, ge=-1.0, le=1.0)
    stress_return_s2_down: float = Field(-0.5, lt=0.0)
    stress_return_s2_up: float = Field(0.2, gt=0.0)
    stress_return_s3_down: float = Field(-0.1, gt=-10.0, lt=10.0)
    stress_return_s3_up: float = Field(0.1, gt=-10.0, lt=10.0)
    cover_n_rate: float = Field(0.04, ge=0.0)
    df_lambda_slow: float = Field(0.999, gt=0.0, lt=1.0)
    df_lambda_fast: float = Field(0.25, gt=0.0, lt=1.0)
    amm_target_dd_baseline: float = Field(-2.5828074520, lt=0.0)
    amm_target_dd_stress: float = Field(-2.053748910631823, lt=0.0)
    amm_min_size: float = Field(0.25, gt=0.0)
    minimal_trader_exposure_ema: float = Field(0.01, gt=0.0)
    minimal_amm_exposure_ema: float = Field(1.0, gt=0.0)
    price_move_threshold: float = Field(0.0001, ge=0.0, lt=1.0)
    default_fund_target_interval: float = Field(28_800.0, ge=0.0)
    pricing_capital: Literal["amm_fund", "pool"] = "amm_fund"
    pricing_lp_share: float = Field(0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _consistent(self) -> D8XGovernance:
        if self.maintenance_margin_rate_alpha >= self.initial_margin_rate_alpha:
            raise ValueError(
                "maintenance_margin_rate_alpha must be below initial_margin_rate_alpha"
            )
        if self.initial_margin_rate_cap < self.initial_margin_rate_alpha:
            raise ValueError("initial_margin_rate_cap must be at least initial_margin_rate_alpha")
        fees = self.liquidation_penalty_rate + self.treasury_fee_rate + self.lp_fee_rate
        if fees >= self.initial_margin_rate_cap:
            raise ValueError(
                "liquidation_penalty_rate + treasury_fee_rate + lp_fee_rate must be below"
                " initial_margin_rate_cap (the liquidation amount divides by the difference)"
            )
        if self.amm_target_dd_stress <= self.amm_target_dd_baseline:
            raise ValueError(
                "amm_target_dd_stress must be above amm_target_dd_baseline (the stress target"
                " is the smaller fund)"
            )
        return self

    def with_changes(self, **changes: Any) -> D8XGovernance:
        """A validated copy with ``changes`` applied.

        Raises:
            GovernanceError: an unknown key, or a value the rules refuse.
        """
        unknown = [k for k in changes if k not in GOVERNANCE_KEYS]
        if unknown:
            raise GovernanceError(
                f"unknown governance key {unknown[0]!r}; allowed: {', '.join(GOVERNANCE_KEYS)}"
            )
        for key, value in changes.items():
            if key == "pricing_capital":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise GovernanceError(f"{key} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise GovernanceError(f"{key} must be finite, got {value!r}")
        try:
            return D8XGovernance.model_validate({**self.model_dump(), **changes})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "governance"
            raise GovernanceError(f"{where}: {first['msg']}") from None

    @property
    def stress_return_s2(self) -> tuple[float, float]:
        """(r2−, r2+)."""
        return self.stress_return_s2_down, self.stress_return_s2_up

    @property
    def stress_return_s3(self) -> tuple[float, float]:
        """(r3−, r3+)."""
        return self.stress_return_s3_down, self.stress_return_s3_up


#: Every governance key, in the spec's order.
GOVERNANCE_KEYS: tuple[str, ...] = tuple(D8XGovernance.model_fields)


def check_quanto_targets(g: D8XGovernance) -> None:
    """Refuse parameters under which no quanto AMM fund reaches a target distance to default.

    The contracts would revert every action that updates the AMM fund target (see
    ``formulas.quanto_target_reachable``).

    Raises:
        GovernanceError: sigma3 is too large for one of the target distances to default.
    """
    for key in ("amm_target_dd_baseline", "amm_target_dd_stress"):
        dd = getattr(g, key)
        if math.expm1(g.sigma3 * g.sigma3) * dd * dd >= 1.0:
            limit = math.sqrt(math.log1p(1.0 / (dd * dd)))
            raise GovernanceError(
                f"sigma3 = {g.sigma3!r} is too large for {key} = {dd!r} in a quanto pool: no AMM"
                f" fund reaches that distance to default (keep sigma3 below {limit:.4g})"
            )
