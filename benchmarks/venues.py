"""Trades and quotes per second of every registered venue kind, through the venue contract.

    python -m benchmarks.venues                # every kind, prints a table, writes JSON
    python -m benchmarks.venues --kinds d8x --reps 5

Each kind is built as its shipped baseline scenario configures it (``baseline.yaml`` for
``mcdex_v1``, ``<kind>_baseline.yaml`` otherwise), through its registry spec exactly as the
model builds it. 500 traders deposit, then the case times ``--trades`` trades of 0.5 contracts
of alternating sign (a random side per trade), each priced first by ``quote`` and sent with a
limit 0.1% beyond the quote, with the clock one second further every five trades (so funding
accrues). These are the calls an agent makes: the numbers include the design's whole trade path
(its hook, fees, margin checks, rebalancing) but no agent logic.

The targets of issue 20: every design at least half of MCDEX's trades per second. The JSON
(default ``benchmarks/results/venues_<UTC time>.json``) keeps the machine description.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.__main__ import machine

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE.parent / "scenarios"
START = 1_704_067_200  # 2024-01-01T00:00:00Z
INDEX = 2000.0
TRADERS = 500


def build(kind: str) -> Any:
    """A venue of ``kind`` as its baseline scenario configures it, with a settable oracle."""
    from perpsim.engine.core.index import SettableOracle
    from perpsim.engine.registry import VenueContext, venue_spec
    from perpsim.scenario import load_scenario

    name = "baseline" if kind == "mcdex_v1" else f"{kind}_baseline"
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    spec = venue_spec(kind)
    oracle = SettableOracle(INDEX, START)
    venue = spec.build(scenario.venue, VenueContext(oracle=oracle, now=START, capacity=1024))
    return venue, oracle


def bench_kind(kind: str, n_trades: int) -> dict[str, float]:
    """Quotes per second and trades per second (quote + trade) on a fresh venue."""
    venue, _ = build(kind)
    names = [f"t{i}" for i in range(TRADERS)]
    for n in names:
        venue.deposit(n, 1e6)
    rng = np.random.default_rng(1)
    sides = np.where(rng.random(n_trades) < 0.5, 0.5, -0.5)
    t0 = time.perf_counter()
    for i in range(n_trades):
        venue.quote(float(sides[i]))
    quotes_per_s = n_trades / (time.perf_counter() - t0)
    now = venue.now
    t0 = time.perf_counter()
    for i in range(n_trades):
        if i % 5 == 0:
            now += 1
            venue.set_time(now)
        size = float(sides[i])
        q = venue.quote(size)
        venue.trade(names[i % TRADERS], size, limit_price=q.price * (1.001 if size > 0 else 0.999))
    trades_per_s = n_trades / (time.perf_counter() - t0)
    return {"quotes_per_s": quotes_per_s, "trades_per_s": trades_per_s}


def main(argv: list[str] | None = None) -> int:
    from perpsim.engine.registry import venue_kinds

    kinds_all = tuple(venue_kinds())
    ap = argparse.ArgumentParser(prog="python -m benchmarks.venues", description=__doc__)
    ap.add_argument("--kinds", nargs="+", choices=kinds_all, default=list(kinds_all))
    ap.add_argument("--trades", type=int, default=5_000, help="trades per repetition")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per case (median)")
    ap.add_argument("--out", help="JSON file (default benchmarks/results/venues_<time>.json)")
    args = ap.parse_args(argv)
    if args.trades < 1 or args.reps < 1:
        ap.error("--trades and --reps must be at least 1")
    results: dict[str, Any] = {}
    for kind in args.kinds:
        runs = [bench_kind(kind, args.trades) for _ in range(args.reps)]
        results[kind] = {
            "quotes_per_s": statistics.median(r["quotes_per_s"] for r in runs),
            "trades_per_s": statistics.median(r["trades_per_s"] for r in runs),
            "runs": runs,
        }
    mcdex = results.get("mcdex_v1", {}).get("trades_per_s")
    doc = {
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "target": "every kind >= 0.5 x mcdex_v1 trades/s",
        "results": results,
    }
    stamp = str(doc["when"]).replace(":", "")
    out = Path(args.out) if args.out else HERE / "results" / f"venues_{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"{'kind':<10}  {'quotes/s':>10}  {'trades/s':>10}  vs mcdex_v1")
    for kind, r in results.items():
        ratio = f"{r['trades_per_s'] / mcdex:.2f}x" if mcdex else "-"
        print(f"{kind:<10}  {r['quotes_per_s']:>10,.0f}  {r['trades_per_s']:>10,.0f}  {ratio}")
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
