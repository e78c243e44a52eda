"""Benchmark of D8X's pricing path: the normal CDF, the default probability, quotes and trades.

    python -m benchmarks.d8x_pricing            # prints a table, writes JSON
    python -m benchmarks.d8x_pricing --reps 5

D8X's reference simulator spent about half its time in scalar ``scipy.stats.norm.cdf`` calls;
the engine uses ``math.erfc`` for a scalar Φ and ``scipy.special.ndtr`` for grids. The cases:

- Φ per call: scalar ``scipy.stats.norm.cdf`` against :func:`normal_cdf` (``math.erfc``), and
  the vectorised :func:`normal_cdf_array` per element on 10,000 points;
- the default probability per call, without and with quanto collateral;
- a price grid of 1,000 trade sizes: a loop of scalar calls against :func:`prob_default_array`;
- the venue: quotes per second (each runs the trade's before-hook on a working copy) and trades
  per second through the whole hook (funding, oracle, rebalance, booking, fees, rebalance).

Each case reports the median of ``--reps`` repetitions; the JSON (default
``benchmarks/results/d8x_pricing_<UTC time>.json``) keeps the machine description.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.__main__ import machine

HERE = Path(__file__).resolve().parent


def _per_second(fn: Callable[[], int]) -> float:
    t0 = time.perf_counter()
    n = fn()
    return n / (time.perf_counter() - t0)


def bench_cdf_scipy(n: int = 20_000) -> float:
    """Scalar ``scipy.stats.norm.cdf`` calls per second (the reference simulator's path)."""
    from scipy.stats import norm

    xs = np.random.default_rng(1).normal(size=n).tolist()

    def run() -> int:
        for x in xs:
            norm.cdf(x)
        return n

    return _per_second(run)


def bench_cdf_erfc(n: int = 200_000) -> float:
    """Scalar :func:`normal_cdf` calls per second."""
    from perpsim.engine.venues.d8x.formulas import normal_cdf

    xs = np.random.default_rng(1).normal(size=n).tolist()

    def run() -> int:
        for x in xs:
            normal_cdf(x)
        return n

    return _per_second(run)


def bench_cdf_array(n: int = 10_000, loops: int = 200) -> float:
    """Elements per second of :func:`normal_cdf_array` on arrays of ``n``."""
    from perpsim.engine.venues.d8x.formulas import normal_cdf_array

    xs = np.random.default_rng(1).normal(size=n)

    def run() -> int:
        for _ in range(loops):
            normal_cdf_array(xs)
        return n * loops

    return _per_second(run)


def bench_pd(quanto: bool, n: int = 100_000) -> float:
    """Default-probability calls per second (the contracts' test setting)."""
    from perpsim.engine.venues.d8x.formulas import prob_default, prob_default_quanto

    ks = np.random.default_rng(2).uniform(-0.5, 0.5, size=n).tolist()

    def run() -> int:
        for k in ks:
            if quanto:
                prob_default_quanto(
                    0.4 + k, 14400.0 + k * 38000.0, 38000.0, 2000.0, 0.05, 0.07, 0.5, 0.04, 10, 0.06
                )
            else:
                prob_default(0.4 + k, 14400.0 + k * 38000.0, 38000.0, 0.05, 10.0, 0.06)
        return n

    return _per_second(run)


def bench_grid(vectorised: bool, sizes: int = 1_000, loops: int = 50) -> float:
    """Price grids of ``sizes`` trade sizes per second: scalar loop or one array call."""
    from perpsim.engine.venues.d8x.formulas import prob_default, prob_default_array

    ks = np.linspace(-5.0, 5.0, sizes)
    kl = ks.tolist()

    def run() -> int:
        for _ in range(loops):
            if vectorised:
                prob_default_array(ks, 0.4, 14400.0, 38000.0, 0.05, 10.0, 0.06)
            else:
                [
                    prob_default(0.4 + k, 14400.0 + k * 38000.0, 38000.0, 0.05, 10.0, 0.06)
                    for k in kl
                ]
        return loops

    return _per_second(run)


def _venue() -> Any:
    from perpsim.engine.core.index import SettableOracle
    from perpsim.engine.registry import VenueContext
    from perpsim.engine.venues.d8x import SPEC

    oracle = SettableOracle(2000.0, 0)
    config = SPEC.config_model.model_validate(
        {"kind": "d8x", "pool": {"amm_fund": 200_000, "lp_cash": 5_000_000}}
    )
    venue = SPEC.build(config, VenueContext(oracle=oracle, now=0, capacity=1100))
    for i in range(1000):
        venue.deposit(f"t{i}", 1e6)
    return venue


def bench_quotes(n: int = 5_000) -> float:
    """Venue quotes per second (before-hook on a working copy, then p(k))."""
    venue = _venue()
    sizes = np.where(np.random.default_rng(3).random(n) < 0.5, 0.5, -0.5).tolist()

    def run() -> int:
        for s in sizes:
            venue.quote(s)
        return n

    return _per_second(run)


def bench_trades(n: int = 5_000) -> float:
    """Venue trades per second through the whole hook, with time passing (funding accrues)."""
    venue = _venue()
    sizes = np.where(np.random.default_rng(4).random(n) < 0.5, 0.5, -0.5).tolist()

    def run() -> int:
        for i, s in enumerate(sizes):
            if i % 5 == 0:
                venue.set_time(venue.now + 1)
            venue.trade(f"t{i % 1000}", s)
        return n

    return _per_second(run)


CASES: dict[str, tuple[str, Callable[[], float]]] = {
    "cdf_scipy_scalar_per_s": ("Φ: scipy.stats.norm.cdf, scalar calls/s", bench_cdf_scipy),
    "cdf_erfc_scalar_per_s": ("Φ: normal_cdf (math.erfc), scalar calls/s", bench_cdf_erfc),
    "cdf_array_elements_per_s": ("Φ: normal_cdf_array (ndtr), elements/s", bench_cdf_array),
    "pd_no_quanto_per_s": ("prob_default calls/s", lambda: bench_pd(False)),
    "pd_quanto_per_s": ("prob_default_quanto calls/s", lambda: bench_pd(True)),
    "grid_scalar_per_s": ("1,000-size price grid, scalar loop, grids/s", lambda: bench_grid(False)),
    "grid_array_per_s": (
        "1,000-size price grid, prob_default_array, grids/s",
        lambda: bench_grid(True),
    ),
    "venue_quotes_per_s": ("venue quotes/s (before-hook + p(k))", bench_quotes),
    "venue_trades_per_s": ("venue trades/s (the whole hook)", bench_trades),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.d8x_pricing", description=__doc__)
    ap.add_argument("--reps", type=int, default=3, help="repetitions per case (median)")
    ap.add_argument("--out", help="JSON file (default benchmarks/results/d8x_pricing_<time>.json)")
    args = ap.parse_args(argv)
    reps = max(1, args.reps)
    results: dict[str, Any] = {}
    rows = []
    for key, (label, fn) in CASES.items():
        values = [fn() for _ in range(reps)]
        med = statistics.median(values)
        results[key] = {"median": med, "values": values}
        rows.append((label, f"{med:,.0f}"))
    speedup = (
        results["cdf_erfc_scalar_per_s"]["median"] / results["cdf_scipy_scalar_per_s"]["median"]
    )
    results["cdf_erfc_speedup_over_scipy"] = speedup
    rows.append(("Φ: math.erfc speed-up over scalar scipy", f"{speedup:,.0f}x"))
    doc = {
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "results": results,
    }
    stamp = str(doc["when"]).replace(":", "")
    out = Path(args.out) if args.out else HERE / "results" / f"d8x_pricing_{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    print(f"\nJSON: {out}")
    return 0 if math.isfinite(speedup) else 1


if __name__ == "__main__":
    raise SystemExit(main())
