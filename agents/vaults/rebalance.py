"""The steps of one vault-family rebalance as plain functions (``spec/glp-vault.md``).

Each function is one step of the seed's rebalancing notes under the spec's name, and knows
nothing of the venue or the model, so a worked case can be checked against it on its own:

=================================  =============================================================
step                               function
=================================  =============================================================
2. mark hedges to market           :func:`mark_to_market`
3. charge funding pro rata         :func:`funding_pro_rata`
5. settle internal hedges          :func:`internal_hedges`, :func:`settle_internal_hedges`
6. top up from the buffer          :func:`buffer_topup`
7. fit the new targets             :func:`fit_targets`
8. net GLP, split its fee          :func:`net_glp`, :func:`split_fee_pro_rata`
9. net the hedges                  :func:`net_hedges`
=================================  =============================================================

Signs: a hedge is a signed USD notional per asset, > 0 long; a GLP change is signed units,
> 0 mint. "The net's side" of a set of signed changes is the vaults whose change has the sign
of the sum: they alone trade with the outside (the others are matched internally), so they
alone pay what the outside charges (the mint fee, the venue's funding and trading costs),
pro rata to their changes (:func:`net_side_shares`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "ZERO_SUM_TOLERANCE",
    "Fit",
    "InternalSettlementError",
    "buffer_topup",
    "delta_fractions",
    "fit_targets",
    "funding_pro_rata",
    "internal_hedges",
    "mark_to_market",
    "net_glp",
    "net_hedges",
    "net_side_shares",
    "settle_internal_hedges",
    "split_fee_pro_rata",
]

#: Relative tolerance of the zero-sum check of internal settlements (float rounding only).
ZERO_SUM_TOLERANCE = 1e-9


class InternalSettlementError(AssertionError):
    """Internal hedge transfers did not sum to zero (a bookkeeping bug, never market data)."""


def mark_to_market(notional: float, price_prev: float, price_now: float) -> float:
    """PnL of a hedge of signed USD ``notional`` when its price moves (seed step 2).

    A short of USD notional N (``notional = −N``) earns ``N × (1 − P_t / P_{t−1})``; a long
    earns the opposite.
    """
    return notional * (price_now / price_prev - 1.0)


def net_side_shares(changes: Mapping[str, float]) -> dict[str, float]:
    """Each vault's share of the net: pro rata among the vaults on the net's side.

    Returns:
        Shares summing to 1 over the vaults whose change has the sign of the sum (0 for the
        others); every share 0 when the changes net to zero.
    """
    net = math.fsum(changes.values())
    if net == 0.0:
        return dict.fromkeys(changes, 0.0)
    side = {v: c for v, c in changes.items() if c * net > 0}
    total = math.fsum(side.values())
    return {v: (side[v] / total if v in side else 0.0) for v in changes}


def net_glp(changes: Mapping[str, float]) -> float:
    """The one GLP mint (> 0) or burn (< 0) that carries every vault's change (step 8)."""
    return math.fsum(changes.values())


def split_fee_pro_rata(changes: Mapping[str, float], fee: float) -> dict[str, float]:
    """The net mint or burn's fee, charged to the vaults on the net's side pro rata (step 8).

    The seed's case: USDC −50, BTC +25, ETH +100 nets to a mint of 75; ETH pays 100/125 of its
    fee, BTC 25/125, USDC nothing (its burn was matched by the others' mints internally).
    """
    return {v: s * fee for v, s in net_side_shares(changes).items()}


def funding_pro_rata(funding: float, notionals: Mapping[str, float]) -> dict[str, float]:
    """The venue's realised funding on the net hedge, charged pro rata (step 3).

    Only the net position pays or earns funding on the venue; it is the part of the hedges of
    the vaults on the net's side that is not matched internally, which is proportional to
    their notionals. ``funding`` > 0 is paid (a cost); the result is each vault's cost.
    """
    return {v: s * funding for v, s in net_side_shares(notionals).items()}


def net_hedges(hedges: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Sum of the vaults' hedges per asset: the only position held outside (step 9).

    Args:
        hedges: Signed USD notional per vault, per asset (the netting matrix).

    Returns:
        Net signed notional per asset.
    """
    assets: dict[str, list[float]] = {}
    for per_asset in hedges.values():
        for asset, notional in per_asset.items():
            assets.setdefault(asset, []).append(notional)
    return {a: math.fsum(v) for a, v in assets.items()}


def internal_hedges(notionals: Mapping[str, float]) -> dict[str, float]:
    """The part of each vault's hedge (one asset) matched by other vaults' opposite hedges.

    The matched amount is ``m = min(Σ longs, Σ |shorts|)``; the side with the smaller total is
    wholly internal, the other side is internal pro rata, ``h_v × m / Σ side``.
    """
    longs = math.fsum(n for n in notionals.values() if n > 0)
    shorts = -math.fsum(n for n in notionals.values() if n < 0)
    matched = min(longs, shorts)
    out: dict[str, float] = {}
    for v, n in notionals.items():
        side = longs if n > 0 else shorts
        out[v] = n * matched / side if side > 0 else 0.0
    return out


def settle_internal_hedges(
    notionals: Mapping[str, float], price_prev: float, price_now: float
) -> dict[str, float]:
    """Zero-sum TVL transfers that settle the internal hedges of one asset (step 5).

    Each vault gets :func:`mark_to_market` of its internal part; one vault's short is another's
    long, so the transfers sum to zero, which is asserted.

    Raises:
        InternalSettlementError: the transfers do not sum to zero.
    """
    transfers = {
        v: mark_to_market(n, price_prev, price_now) for v, n in internal_hedges(notionals).items()
    }
    total = math.fsum(transfers.values())
    scale = math.fsum(abs(t) for t in transfers.values())
    if abs(total) > ZERO_SUM_TOLERANCE * max(1.0, scale):
        raise InternalSettlementError(
            f"internal hedge transfers sum to {total!r}, not zero: {transfers}"
        )
    return transfers


def buffer_topup(fitted: float, invested: float, buffer: float, threshold: float) -> float:
    """What the buffer puts back into positions after the invested TVL fell (step 6).

    The positions were fitted for ``fitted``; marks, costs or withdrawals brought the TVL
    outside the buffer to ``invested``. While the buffer holds more than ``threshold`` it tops
    the positions back up (95 → 90 takes 5 from the buffer), so nothing has to trade.

    Returns:
        ``min(max(0, fitted − invested), max(0, buffer − threshold))``.
    """
    return min(max(0.0, fitted - invested), max(0.0, buffer - threshold))


@dataclass(frozen=True, slots=True)
class Fit:
    """A vault's targets (the seed's ``F(glp_allocations, vault_adjusted_hedge amount)``).

    Attributes:
        glp_units: GLP to hold.
        hedges: Signed USD hedge notional per asset.
    """

    glp_units: float
    hedges: dict[str, float]


def fit_targets(
    tvl: float,
    scaling: float,
    glp_price: float,
    exposures: Mapping[str, float],
    target_delta: Mapping[str, float],
) -> Fit:
    """The targets of one vault (step 7).

    The vault puts ``scaling × tvl`` into GLP (the rest backs the hedges' margin), then hedges
    every risky asset to its target delta: ``hedge_j = target_j × tvl − units × exposure_j``.
    A USDC vault has every target 0 (it shorts GLP's ETH and BTC); an ETH vault has ETH's 1
    (long ETH equal to its TVL) and BTC's 0.

    Args:
        tvl: The TVL the fit sees (after the buffer).
        scaling: The share of it put into GLP (leverage/buffer), in (0, 1].
        glp_price: USD price of one GLP.
        exposures: USD exposure of one GLP to each risky asset.
        target_delta: Target delta per asset as a fraction of TVL (missing assets: 0).

    Returns:
        GLP units and hedges.
    """
    units = scaling * tvl / glp_price if tvl > 0 else 0.0
    assets = list(exposures) + [a for a in target_delta if a not in exposures]
    hedges = {
        a: target_delta.get(a, 0.0) * max(tvl, 0.0) - units * exposures.get(a, 0.0) for a in assets
    }
    return Fit(glp_units=units, hedges=hedges)


def delta_fractions(
    tvl: float,
    glp_units: float,
    exposures: Mapping[str, float],
    hedges: Mapping[str, float],
    target_delta: Mapping[str, float],
) -> dict[str, float]:
    """A vault's delta off its target per asset, as a fraction of its TVL (0 when TVL ≤ 0)."""
    out: dict[str, float] = {}
    # In a fixed order (not a set's, which changes with the interpreter's hash seed): callers
    # act on the assets in this order, so a run would not be reproducible.
    for a in dict.fromkeys([*exposures, *hedges, *target_delta]):
        exposure = glp_units * exposures.get(a, 0.0) + hedges.get(a, 0.0)
        off = exposure - target_delta.get(a, 0.0) * tvl
        out[a] = off / tvl if tvl > 0 else 0.0
    return out
