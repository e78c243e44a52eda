"""A Predy vault's liquidation price compiled (numba): the Python bisection's float, faster.

Every account view gives the index at which the vault would reach its MinCollateral
(``PredyVenue._liquidation_price``): a bisection that evaluates the vault's value less its
MinCollateral about 55 times. :func:`liquidation_index` is that bisection and that gap function
(``PredyVenue._liquidation_gap``) with the same float operations in the same order; they use
only ``+ − × ÷``, ``abs`` and comparisons, which numba compiles to the same IEEE double
arithmetic as CPython (no fast-math), so the answer is the same float. The Python code stays
the reference (``PredyVenue.compiled_liquidation_prices = False`` selects it): the tests compare
the two over random vaults, rates and parameters, bit for bit.

Imported by the first account view of a vault with a position only (``import perpsim`` does not
load numba); the machine code is cached next to this file (or in numba's user cache).
"""

from __future__ import annotations

from numba import njit

__all__ = ["BELOW", "FOUND", "NONE", "liquidation_index"]

#: The vault is already below its MinCollateral at the spot (the price is the spot's index).
BELOW = 0
#: The bisection found the index: the price is that index's.
FOUND = 1
#: No index between 1/100 and 100 times the spot (the price is 0).
NONE = 2


@njit(cache=True)
def _gap(
    s: float,
    usdc: float,
    q0: float,
    q1: float,
    e0: float,
    e1: float,
    fund0: float,
    fund1: float,
    up0: float,
    up1: float,
    net0: float,
    alpha: float,
    floor: float,
    curve: float,
    abs_q1: float,
    has_position: bool,
    scale: float,
) -> float:
    value = usdc
    if q0 != 0.0:
        value += q0 * (s * up0 - e0) - fund0
    if q1 != 0.0:
        value += q1 * (s * s / scale * up1 - e1) - fund1
    with_funding = s * up1
    net = 2.0 * with_funding * q1 / scale + net0
    mc = alpha * s * (abs(net) + curve * with_funding * abs_q1 / scale)
    if has_position and mc < floor:
        mc = floor
    return value - mc


@njit(cache=True)
def liquidation_index(
    usdc: float,
    q0: float,
    q1: float,
    e0: float,
    e1: float,
    fund0: float,
    fund1: float,
    rate0: float,
    rate1: float,
    alpha: float,
    floor: float,
    scale: float,
    spot: float,
) -> tuple[int, float]:
    """Where the vault's value less its MinCollateral changes sign, the funding rates held.

    Args:
        usdc: the vault's USDC.
        q0: its future position.
        q1: its squared position.
        e0: the future's entry price.
        e1: the squared's entry price.
        fund0: ``q0 × (funding now − entry funding)`` of the future.
        fund1: the same of the squared.
        rate0: the future's funding rate now.
        rate1: the squared's.
        alpha: the vault risk parameter.
        floor: MinCollateral's floor (``min_margin``).
        scale: the squared's scaling factor.
        spot: the index now.

    Returns:
        ``(BELOW, spot)``, ``(FOUND, index)`` or ``(NONE, 0.0)``, as
        ``PredyVenue._bisect_liquidation_price`` decides.
    """
    up0, up1 = 1.0 + rate0, 1.0 + rate1
    net0 = up0 * q0
    curve = 2.0 * alpha
    abs_q1 = abs(q1)
    has = q0 != 0.0 or q1 != 0.0
    args = (usdc, q0, q1, e0, e1, fund0, fund1, up0, up1, net0, alpha, floor, curve, abs_q1)
    if _gap(spot, *args, has, scale) < 0.0:
        return BELOW, spot
    for bracket in range(2):
        lo_f, hi_f = (0.01, 1.0) if bracket == 0 else (1.0, 100.0)
        lo, hi = spot * lo_f, spot * hi_f
        glo = _gap(lo, *args, has, scale)
        ghi = _gap(hi, *args, has, scale)
        if (glo < 0.0) == (ghi < 0.0):
            continue
        below = glo < 0.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if mid == lo or mid == hi:  # noqa: SIM109 - float ==, as the Python loop compares
                break
            if (_gap(mid, *args, has, scale) < 0.0) == below:
                lo = mid
            else:
                hi = mid
        return FOUND, (hi if lo_f < 1.0 else lo)
    return NONE, 0.0
