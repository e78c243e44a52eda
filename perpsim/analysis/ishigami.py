"""The Ishigami function: the sensitivity analysis's self-test, run in place of the model.

``y = sin(x1) + a sin²(x2) + b x3⁴ sin(x1)`` with ``x1, x2, x3`` uniform on ``[-π, π]``,
``a = 7`` and ``b = 0.1`` (Ishigami and Homma, 1990). Its Sobol indices are known in closed
form: first order ``S1 ≈ (0.314, 0.442, 0)`` and total ``ST ≈ (0.558, 0.442, 0.244)``, so a
sensitivity analysis that recovers them has its sampling, its runs and its estimator right.
``analyses/ishigami.yaml`` runs it with ``model: perpsim.analysis.ishigami:ishigami``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["S1", "ST", "A", "B", "ishigami", "ishigami_indices"]

A: Final = 7.0
B: Final = 0.1


def ishigami_indices(a: float = A, b: float = B) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The exact first-order and total Sobol indices of the Ishigami function."""
    pi = math.pi
    v1 = 0.5 * (1.0 + b * pi**4 / 5.0) ** 2
    v2 = a**2 / 8.0
    v13 = b**2 * pi**8 * (1.0 / 18.0 - 1.0 / 50.0)
    v = v1 + v2 + v13
    return (v1 / v, v2 / v, 0.0), ((v1 + v13) / v, v2 / v, v13 / v)


#: The known indices (first order, total), to 3 decimals (0.314, 0.442, 0) and
#: (0.558, 0.442, 0.244).
S1, ST = ishigami_indices()


def ishigami(values: Mapping[str, Any], seed: int) -> dict[str, float]:
    """The Ishigami function of ``x1``, ``x2``, ``x3`` (the seed is not used: it is exact).

    Args:
        values: ``x1``, ``x2``, ``x3`` (radians).
        seed: The run's seed (unused; every model function takes one).

    Returns:
        ``{"y": ...}``.
    """
    x1, x2, x3 = (float(values[k]) for k in ("x1", "x2", "x3"))
    return {"y": math.sin(x1) + A * math.sin(x2) ** 2 + B * x3**4 * math.sin(x1)}


#: The outputs a sensitivity file may name as metrics.
ishigami.outputs = ("y",)  # type: ignore[attr-defined]
