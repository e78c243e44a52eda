"""Number, price, time and lot-grid checks every exchange design uses.

Every engine operation validates its arguments with these before it changes anything, so a bad
amount is a :class:`~perpsim.errors.BadAmountError` (or :class:`~perpsim.errors.LotSizeError`)
with a message naming what was wrong, never a half-applied operation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from perpsim.errors import BadAmountError, LotSizeError

#: Relative tolerance of the lot-size grid (float64 sizes cannot be exact multiples).
LOT_RTOL = 1e-9


def check_finite(value: Any, what: str) -> float:
    """Return ``value`` as a float, or raise BadAmountError if it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise BadAmountError(f"{what} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise BadAmountError(f"{what} must be finite, got {value!r}")
    return v


def check_positive(value: Any, what: str) -> float:
    """Return ``value`` as a float, or raise BadAmountError unless finite and > 0."""
    v = check_finite(value, what)
    if v <= 0:
        raise BadAmountError(f"{what} must be > 0, got {value!r}")
    return v


def check_price(value: Any, what: str = "price") -> float:
    """A price: finite and > 0."""
    return check_positive(value, what)


def check_time(value: Any, what: str = "time") -> int:
    """A time in whole seconds (int, or a float with no fraction)."""
    if isinstance(value, bool):
        raise BadAmountError(f"{what} must be whole seconds, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and value == int(value):
        return int(value)
    raise BadAmountError(f"{what} must be whole seconds, got {value!r}")


def is_lot_multiple(amount: float, lot: float) -> bool:
    """Whether ``amount`` is a whole, non-zero number of ``lot`` (within float precision).

    A float residue far below one lot (say 4e-15 with a lot of 0.001) is not on the grid.
    """
    k = amount / lot
    r = round(k)
    return r != 0 and abs(k - r) <= LOT_RTOL * max(1.0, abs(k))


def check_lot(amount: float, lot: float, what: str) -> None:
    """Raise LotSizeError unless ``amount`` is a multiple of ``lot``."""
    if not is_lot_multiple(amount, lot):
        raise LotSizeError(f"{what} {amount!r} is not a multiple of the lot size {lot!r}")


def ceil_to_lot(amount: float, lot: float) -> float:
    """Round ``amount`` up to the lot grid (an amount already on the grid is returned as is)."""
    if is_lot_multiple(amount, lot):
        return amount
    return math.ceil(amount / lot) * lot


def floor_to_lot(amount: float, lot: float) -> float:
    """Round ``amount`` down to the lot grid (an amount already on the grid is returned as is).

    Amounts below one lot floor to 0.
    """
    if is_lot_multiple(amount, lot):
        return amount
    return float(math.floor(amount / lot + LOT_RTOL)) * lot
