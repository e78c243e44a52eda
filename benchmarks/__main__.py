"""Run perpsim's benchmarks, print a table and write JSON.

    python -m benchmarks                 # engine, scan, end-to-end 1k/10k, sweeps
    python -m benchmarks --full          # also the 100,000-trader end-to-end case
    python -m benchmarks --only engine scan
    python -m benchmarks --only venues   # trades/s of every registered design (benchmarks.venues)

Each case reports the median of several repetitions; end-to-end cases run in a fresh
subprocess each so their peak memory (max RSS) is their own. The JSON (default
``benchmarks/results/<UTC time>.json``) keeps the machine description.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
E2E_SCENARIO = HERE / "scenarios" / "e2e_30d.yaml"

TARGETS = {
    "engine_amm_trades_per_s": ">= 20,000",
    "scan_100000_ms": "<= 1 ms",
    "e2e_10000_wall_s": "<= 60 s (and >= 200,000 trades, <= 2 GB)",
    "e2e_100000_wall_s": "<= 600 s",
    "sweep_parallel_efficiency_2": ">= 0.85",
    "venue_trades_per_s": ">= 0.5 x mcdex_v1",
}


def machine() -> dict[str, Any]:
    """What this machine is: CPU, cores, memory, Python and library versions."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    import mesa
    import pandas

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_bytes": mem,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pandas.__version__,
        "mesa": mesa.__version__,
    }


def median_of(fn: Callable[[], float], reps: int) -> tuple[float, list[float]]:
    values = [fn() for _ in range(reps)]
    return statistics.median(values), values


# ---------------------------------------------------------------------------------------------


def bench_engine(n_trades: int = 20_000) -> float:
    """AMM trades per second through the full path: quote, funding, trade, fees, checks."""
    from perpsim.engine import AMMGovernance, MCDEXVenue, PerpetualGovernance

    v = MCDEXVenue.build(PerpetualGovernance(), AMMGovernance())
    v.pool.oracle.set(2000.0, 0)  # type: ignore[attr-defined,unused-ignore]
    v.perpetual.set_time(1)
    v.deposit("lp", 1e10)
    v.pool.create_pool("lp", 50_000)
    names = [f"t{i}" for i in range(1000)]
    for n in names:
        v.deposit(n, 1e6)
    rng = np.random.default_rng(1)
    sides = rng.random(n_trades) < 0.5
    t0 = time.perf_counter()
    for i in range(n_trades):
        if i % 5 == 0:
            v.perpetual.set_time(v.perpetual.now + 1)  # funding runs over elapsed time
        size = 0.5 if sides[i] else -0.5
        q = v.quote(size)
        v.trade(names[i % 1000], size, limit_price=q.price * (1.001 if size > 0 else 0.999))
    return n_trades / (time.perf_counter() - t0)


def bench_scan(n_accounts: int, reps: int = 200) -> float:
    """Milliseconds to find the unsafe accounts (and their margin balances) of N accounts."""
    from perpsim.engine import (
        AccountState,
        ExternalPriceSource,
        Perpetual,
        PerpetualGovernance,
        Side,
    )

    rng = np.random.default_rng(2)
    p = Perpetual(PerpetualGovernance(), ExternalPriceSource(1000.0), capacity=n_accounts + 8)
    for i in range(n_accounts):
        row = p.accounts.add(f"a{i}")
        side = Side(int(rng.integers(0, 3)))
        size = float(rng.uniform(0.1, 3.0)) if side else 0.0
        entry = float(rng.uniform(900, 1100))
        p.accounts.write(
            row, AccountState(float(rng.uniform(10, 300)), side, size, size * entry, 0.0, 0.0)
        )
    p.social_loss_per_contract_long = 0.3
    p.unsafe_accounts()
    t0 = time.perf_counter()
    for _ in range(reps):
        p.unsafe_accounts()
    return (time.perf_counter() - t0) / reps * 1000


def _venue_trades_per_s(kind: str) -> float:
    from benchmarks.venues import bench_kind

    return bench_kind(kind, 5_000)["trades_per_s"]


def _e2e_child(n_traders: int) -> None:
    """Run in a subprocess: one end-to-end run, print JSON with its measurements."""
    from perpsim.run import run_scenario
    from perpsim.scenario import load_scenario

    scenario = load_scenario(E2E_SCENARIO, [f"agents.noise.count={n_traders}"])
    t0 = time.perf_counter()
    result = run_scenario(scenario, base_dir=E2E_SCENARIO.parent)
    wall = time.perf_counter() - t0
    ticks = int(result.summary["ticks"])
    trades = int(result.summary["trades"])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "wall_s": wall,
                "ticks": ticks,
                "trades": trades,
                "ticks_per_s": ticks / wall,
                "trades_per_s": trades / wall,
                "peak_rss_bytes": rss,
                "invariants": result.summary["invariants"],
            }
        )
    )


def bench_e2e(n_traders: int, reps: int) -> dict[str, Any]:
    runs = []
    for _ in range(reps):
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks", "--e2e-child", str(n_traders)],
            capture_output=True,
            text=True,
            cwd=HERE.parent,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"end-to-end run failed:\n{proc.stderr[-3000:]}")
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "invariants"}
    med["repetitions"] = reps
    med["invariants"] = [r["invariants"] for r in runs]
    return med


def bench_sweep(workers: int, runs: int = 16) -> float:
    """Runs per second of a sweep of the shipped baseline (1 day) on ``workers`` processes.

    The worker pool's start-up is included: it is what a user waits for.
    """
    from perpsim.sweep import load_sweep, run_sweep

    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "bench_sweep.yaml"
        spec.write_text(
            f"scenario: {HERE.parent / 'scenarios' / 'baseline.yaml'}\n"
            "set: {clock.duration: 1d}\n"
            "parameters:\n"
            "  governance.maintenance_margin_rate: [0.05, 0.075]\n"
            f"seeds: {runs // 2}\n"
            "keep: summary\n"
        )
        plan = load_sweep(spec)
        t0 = time.perf_counter()
        run_sweep(plan, Path(tmp) / "out", workers=workers)
        return runs / (time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--only", nargs="+", choices=("engine", "scan", "venues", "e2e", "sweep"))
    ap.add_argument("--full", action="store_true", help="include the 100,000-trader case")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per case (median)")
    ap.add_argument("--out", help="JSON file (default benchmarks/results/<time>.json)")
    ap.add_argument("--e2e-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.e2e_child is not None:
        _e2e_child(args.e2e_child)
        return 0
    cases = set(args.only or ("engine", "scan", "venues", "e2e", "sweep"))
    results: dict[str, Any] = {}
    rows: list[tuple[str, str, str]] = []
    if "engine" in cases:
        med, vals = median_of(bench_engine, max(args.reps, 3))
        results["engine_amm_trades_per_s"] = {"median": med, "values": vals}
        rows.append(
            ("engine: AMM trades/s (full path)", f"{med:,.0f}", TARGETS["engine_amm_trades_per_s"])
        )
    if "scan" in cases:
        for n in (1_000, 10_000, 100_000):
            med, vals = median_of(partial(bench_scan, n), max(args.reps, 3))
            results[f"scan_{n}_ms"] = {"median": med, "values": vals}
            target = TARGETS["scan_100000_ms"] if n == 100_000 else ""
            rows.append((f"scan: unsafe accounts, {n:,} accounts (ms)", f"{med:.3f}", target))
    if "venues" in cases:
        from perpsim.engine.registry import venue_kinds

        per_kind: dict[str, float] = {}
        for kind in venue_kinds():
            med, vals = median_of(partial(_venue_trades_per_s, kind), max(args.reps, 3))
            per_kind[kind] = med
            results[f"venue_{kind}_trades_per_s"] = {"median": med, "values": vals}
        base = per_kind.get("mcdex_v1")
        for kind, med in per_kind.items():
            ratio = f" ({med / base:.2f} x mcdex_v1)" if base else ""
            rows.append(
                (
                    f"venue {kind}: quote + trade/s (contract)",
                    f"{med:,.0f}{ratio}",
                    TARGETS["venue_trades_per_s"] if kind != "mcdex_v1" else "",
                )
            )
    if "e2e" in cases:
        sizes = [1_000, 10_000] + ([100_000] if args.full else [])
        for n in sizes:
            reps = args.reps if n < 100_000 else 1
            r = bench_e2e(n, reps)
            results[f"e2e_{n}"] = r
            target = TARGETS.get(f"e2e_{n}_wall_s", "")
            rows.append(
                (
                    f"end-to-end 30 d @ 1 min, {n:,} traders",
                    f"{r['wall_s']:.1f} s, {r['ticks_per_s']:,.0f} ticks/s,"
                    f" {r['trades']:,.0f} trades ({r['trades_per_s']:,.0f}/s),"
                    f" peak {r['peak_rss_bytes'] / 2**20:,.0f} MiB",
                    target,
                )
            )
    if "sweep" in cases:
        one, v1 = median_of(lambda: bench_sweep(1), args.reps)
        two, v2 = median_of(lambda: bench_sweep(2), args.reps)
        eff = two / (2 * one)
        results["sweep"] = {
            "runs_per_s_1": one,
            "runs_per_s_2": two,
            "efficiency_2": eff,
            "values_1": v1,
            "values_2": v2,
        }
        rows.append(("sweep: runs/s at 1 worker", f"{one:.2f}", ""))
        rows.append(("sweep: runs/s at 2 workers", f"{two:.2f}", ""))
        rows.append(
            (
                "sweep: parallel efficiency at 2",
                f"{eff:.0%}",
                TARGETS["sweep_parallel_efficiency_2"],
            )
        )
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = {
        "when": when,
        "machine": machine(),
        "targets": TARGETS,
        "results": results,
    }
    out = Path(args.out) if args.out else HERE / "results" / f"{when.replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    width = max(len(r[0]) for r in rows) if rows else 10
    print(f"{'case':<{width}}  {'result':<70}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:<70}  {target}")
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
