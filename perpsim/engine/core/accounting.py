"""The accounting check every design runs after each tick: collateral is conserved.

A venue knows what it holds (margin balances, funds, LP capital) and what crossed its boundary
(deposits, withdrawals, write-offs); these helpers turn the comparison into readable problems.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

#: Relative tolerance of the accounting checks.
INVARIANT_RTOL = 1e-9


def conservation_problem(value: float, expected: float, tol: float, held: str) -> str | None:
    """A message when ``value`` (what the venue holds) differs from ``expected`` beyond ``tol``.

    Args:
        value: the collateral the venue holds now, e.g. Σ margin balances + funds.
        expected: deposits − withdrawals + write-offs + admin adjustments.
        tol: the absolute tolerance.
        held: what ``value`` sums, for the message.
    """
    if abs(value - expected) <= tol:
        return None
    return (
        f"collateral not conserved: {held} = {value:.12g}"
        f" but deposits − withdrawals + write-offs + admin = {expected:.12g}"
        f" (difference {value - expected:.3g})"
    )


def negative_balances_problem(
    names: Sequence[str], balances: npt.NDArray[np.float64], tol: float, what: str
) -> str | None:
    """A message naming (up to five) accounts whose ``balances`` are below ``-tol``."""
    bad = balances < -tol
    if not bad.any():
        return None
    rows = np.flatnonzero(bad)[:5]
    return f"negative {what}: " + ", ".join(f"{names[r]}={balances[r]:.10g}" for r in rows)
