"""Points and seeds: the samplers of a sweep and the seed of every run.

Everything comes from one :class:`numpy.random.SeedSequence` rooted at the sweep's ``seed``, in
separate domains: the sampler's stream, and the seeds of runs (common to every point, or one per
run). Run ``(point, seed_index)`` always gets the same seed, so the results do not depend on the
executor, the number of workers or the completion order.
"""

from __future__ import annotations

import inspect
import itertools
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from perpsim.sweep.spec import Sampler, SweepSpec, grid_values

__all__ = ["generate_points", "run_seed", "sampler_seed_sequence", "unit_samples"]

# Seed-sequence domains: the sampler's stream and the two ways of seeding runs never overlap.
_SAMPLER_DOMAIN: Final = 0
_COMMON_DOMAIN: Final = 1
_INDEPENDENT_DOMAIN: Final = 2


def sampler_seed_sequence(root: int) -> np.random.SeedSequence:
    """The SeedSequence of a sweep's sampler (separate from every run's)."""
    return np.random.SeedSequence(root, spawn_key=(_SAMPLER_DOMAIN,))


def run_seed(root: int, point_id: int, seed_index: int, common: bool = True) -> int:
    """The seed of run ``(point_id, seed_index)`` of a sweep rooted at ``root``.

    Args:
        root: The sweep's root seed.
        point_id: The point.
        seed_index: The seed index (``0 .. seeds-1``).
        common: Common random numbers: the seed depends on ``seed_index`` only.

    Returns:
        A seed in ``[0, 2**63)`` for :func:`perpsim.run.run_scenario`.
    """
    key = (_COMMON_DOMAIN, seed_index) if common else (_INDEPENDENT_DOMAIN, point_id, seed_index)
    state = np.random.SeedSequence(root, spawn_key=key).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


def _qmc(cls: Any, d: int, rng: np.random.Generator, **kwargs: Any) -> Any:
    params = inspect.signature(cls).parameters
    key = "rng" if "rng" in params else "seed"
    return cls(d=d, **{key: rng}, **kwargs)


def unit_samples(
    sampler: Sampler, n: int, d: int, seed: np.random.SeedSequence
) -> npt.NDArray[np.float64]:
    """``n`` points in the unit cube ``[0, 1)^d``.

    Args:
        sampler: ``random`` (independent uniforms), ``lhs`` (Latin hypercube: each coordinate
            has exactly one point in each of the ``n`` strata) or ``sobol`` (scrambled Sobol;
            ``n`` a power of two keeps its balance).
        n: Number of points.
        d: Dimension.
        seed: The sampler's SeedSequence.

    Returns:
        An ``(n, d)`` array.
    """
    rng = np.random.default_rng(seed)
    if sampler == "random":
        return rng.random((n, d))
    # Deferred: scipy.stats takes about a second to import and only these two samplers use it.
    from scipy.stats import qmc

    if sampler == "lhs":
        engine = _qmc(qmc.LatinHypercube, d, rng)
    elif sampler == "sobol":
        engine = _qmc(qmc.Sobol, d, rng, scramble=True)
    else:
        raise ValueError(f"unit_samples: no unit samples for sampler {sampler!r}")
    out = np.asarray(engine.random(n), dtype=np.float64)
    return np.clip(out, 0.0, np.nextafter(1.0, 0.0))


def generate_points(spec: SweepSpec, root_seed: int) -> list[tuple[Any, ...]]:
    """The points of a sweep: one tuple of values (in ``spec.parameters`` order) per point.

    A grid lists every combination, the first parameter varying slowest; the other samplers
    map :func:`unit_samples` through each parameter. The same spec and root seed always give
    the same points.
    """
    params = list(spec.parameters.values())
    if spec.sampler == "grid":
        lists = [grid_values(p) for p in params]
        return [tuple(c) for c in itertools.product(*lists)]
    n = int(spec.samples or 0)
    u = unit_samples(spec.sampler, n, len(params), sampler_seed_sequence(root_seed))
    columns = [p.from_unit(u[:, j]) for j, p in enumerate(params)]
    return list(zip(*columns, strict=True))
