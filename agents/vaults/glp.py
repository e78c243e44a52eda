"""The GLP basket as pure functions, under the names of ``spec/glp-vault.md``.

GLP is an index-like LP token: ``price = Σ_j amount_j × price_j`` (assets under management per
token), where ``amount_j`` is the units of asset ``j`` one GLP holds. The scenario gives target
*value* weights (e.g. 50% USDC, 25% ETH, 25% BTC); :func:`glp_amounts` turns them into amounts at
the current prices, and between two weight resets the amounts stay fixed, so the value weights
drift with prices (ETH's share grows when ETH rallies), as in GMX's pool.

Minting and burning pay a fee: a flat rate, or GMX v1's dynamic rule
(:func:`gmx_v1_fee_rate`), which rewards actions that move an asset's amount in the pool toward
its target and taxes those that move it away.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "glp_amounts",
    "glp_exposures",
    "glp_price",
    "gmx_v1_fee_rate",
    "pool_amounts",
    "value_weights",
]


def glp_amounts(
    weights: Mapping[str, float], prices: Mapping[str, float], glp_price: float
) -> dict[str, float]:
    """Units of each asset one GLP holds, for value ``weights`` at ``prices``.

    Args:
        weights: Value share of each asset (summing to 1).
        prices: USD price of each asset (stables at 1).
        glp_price: USD price of one GLP.

    Returns:
        ``amount_j = weight_j × glp_price / price_j``.
    """
    return {a: w * glp_price / prices[a] for a, w in weights.items()}


def glp_price(amounts: Mapping[str, float], prices: Mapping[str, float]) -> float:
    """``Σ_j amount_j × price_j``: the USD value of one GLP (assets under management / supply)."""
    return float(sum(amounts[a] * prices[a] for a in amounts))


def glp_exposures(amounts: Mapping[str, float], prices: Mapping[str, float]) -> dict[str, float]:
    """USD exposure of one GLP to each asset (``amount_j × price_j``)."""
    return {a: amounts[a] * prices[a] for a in amounts}


def value_weights(amounts: Mapping[str, float], prices: Mapping[str, float]) -> dict[str, float]:
    """The current value share of each asset in GLP."""
    total = glp_price(amounts, prices)
    return {a: amounts[a] * prices[a] / total for a in amounts}


def pool_amounts(
    aum: float, amounts: Mapping[str, float], prices: Mapping[str, float]
) -> dict[str, float]:
    """USD amount of each asset in a GLP pool worth ``aum``."""
    return {a: aum * w for a, w in value_weights(amounts, prices).items()}


def gmx_v1_fee_rate(amount: float, target: float, change: float, base: float, tax: float) -> float:
    """GMX v1's dynamic mint/burn fee rate for one asset.

    With the asset's current amount ``a`` in the pool, its target ``t`` (from the target
    weights) and the change ``d`` (> 0 adds the asset, as a mint with it does; < 0 removes it):

    - if the action moves ``a`` toward ``t``: ``fee = max(0, b − x × |a − t| / t)``;
    - otherwise: ``fee = b + x × min(avg, t) / t``, where ``avg`` is the mean of ``|a − t|``
      before and ``|a + d − t|`` after.

    Args:
        amount: The asset's current USD amount in the pool (``a``).
        target: Its target USD amount (``t`` > 0).
        change: The signed USD change the action makes (``d``).
        base: The base fee rate ``b`` (e.g. 0.003).
        tax: The tax rate ``x`` (e.g. 0.005; 0.002 for stables).

    Returns:
        The fee rate on the action's notional.

    Raises:
        ValueError: ``target`` is not positive.
    """
    if target <= 0:
        raise ValueError(f"the target amount must be positive, got {target}")
    before = abs(amount - target)
    after = abs(amount + change - target)
    if after < before:
        return max(0.0, base - tax * before / target)
    avg = 0.5 * (before + after)
    return base + tax * min(avg, target) / target
