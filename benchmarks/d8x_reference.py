"""perpsim against D8X's reference simulator, each a whole process, on the same market size.

    python -m benchmarks.d8x_reference --reference /path/to/perpetual-simulation \\
        --python /tmp/d8xref-venv/bin/python
    python -m benchmarks.d8x_reference            # perpsim's side only (no reference given)
    python -m benchmarks --only d8x_reference --reference /path/to/perpetual-simulation

The target of the "ten times faster" issue: perpsim at least 30 times faster than the reference
simulator on its 3-day crowd (3 days of 1-minute steps), whole process against whole process.

**Obtaining the reference.** Clone the D8X perpetual-simulation repository (D8X's public
Python simulator of its perpetuals, the one ``tests/engine/d8x/test_reference_simulator.py``
compares with) anywhere outside this repository, default branch. It needs Python 3 with numpy,
pandas, scipy, matplotlib and joblib; it was written against pandas 1.x, so give it a venv of
its own, never the project's::

    python3 -m venv /tmp/d8xref-venv
    /tmp/d8xref-venv/bin/pip install "numpy<2" "pandas<2" "scipy<1.12" "matplotlib<3.8" joblib

and pass ``--python /tmp/d8xref-venv/bin/python`` (or set ``PERPSIM_D8X_REFERENCE_PYTHON``;
default: this interpreter, which is usually the project's, where the simulator fails: no
joblib, pandas 3). Nothing of the reference is copied into this repository: this script only
runs it from the path given.

**How it is run, and the one modification.** The simulator is started by ``simulation.py``,
whose ``main()`` runs a grid of 8 configurations (4 seeds x 2 initial investments) of two
months each (2022-07-20 to 2022-09-20), in parallel with joblib. Its crowd and market are
module constants: a MATIC pool (quanto collateral) with three perpetuals, BTCUSD, ETHUSD and
AVAXUSD, each starting with ``NUM_TRADERS = 10`` traders (90% noise, 10% momentum) and
``BOTS_PER_PERP = 20`` arbitrage bots, traders joining at random while the first 75% of the run
lasts (about ``GROWTH_MULTIPLIER = 10`` times the starting crowd), 25 liquidity providers, an
attacker on AVAX; one step of the loop is one minute (its price data are Chainlink rounds
interpolated to the minute, ``block_time_sec = 60``). The horizon and the grid are local
variables of ``main()``, so no argument or constant gives 3 days. The modification is therefore
a driver, not an edit: a small script (written to a temporary folder, text in this module)
imports ``simulation.py`` from the checkout and does what ``main()``'s ``run_single_sim`` does
for the grid's first configuration (seed 567, long probability 0.5, initial investment
3 x 350,000 USD, 2,000 USD per trader, one trade a day) with the horizon 2022-07-20 to
2022-07-23: ``simulate(...)``, ``report_stats(...)`` and the CSV of the summary. It calls the
simulator's own functions and changes none of its code or constants; ``--markets`` restricts
the module's ``SYMBOLS`` (its list of simulated perpetuals) to some of them.

The simulator reads ``./data`` and writes ``./results`` relative to its working directory. The
driver runs in a temporary folder whose ``data/`` links to the checkout's files, so the
checkout is not written to. Price files the simulator needs but the checkout does not have
(a partial copy without the repository's large CSV files) are replaced there by a GBM minute
series at the market's level (80% volatility), marked ``synthetic`` in the result: the crowd's
growth and most of the work of a step (every trader's look at the market, the pricing of 38
trade sizes a market for the state record) do not depend on the prices.

**Same market size.** The simulator's 3-day run ends with about 95-113 noise and momentum
traders and 20 bots in each of its markets, about 126 traders a market (the counts are in its
result files' names, ``res<traders>-<bots>-<symbol>...``, and in the JSON under ``crowd``).
Its cost is per market: one market alone (``--markets ETHUSD``) took 31 s where the three took
82 s. perpsim has one perpetual per pool, so its side runs
``benchmarks/scenarios/d8x_reference_3d.yaml`` (a quanto D8X pool with the simulator's
ETHUSD-MATIC parameters, 3 days at 1-minute ticks, 96 noise traders, 10 momentum traders and 20
arbitrageurs from the first tick: the final crowd of one of the simulator's markets) once per
market of the reference run, each as a whole ``perpsim run`` process (seeds 1, 2, ...; no
figures, CSV tables as the simulator writes), and adds the wall times. The ratio is the
reference's wall time over that sum.

Each side's wall time is the whole process as a user starts it: interpreter start-up, imports,
reading the inputs, the run and writing the outputs. The preparation of the reference's
working folder is not timed. The JSON (default ``benchmarks/results/d8x_reference_<UTC
time>.json``) has both sides, the crowd, the trades and the ratio with its target.

Measured on the 2-core development machine (the repository's snapshot without its large price
files, so BTCUSD, ETHUSD and AVAXUSD prices synthetic, MATICUSD the reference's; numpy 1.26,
pandas 1.5.3, scipy 1.11): the reference 82 s for its 3 markets (4,318 steps, 165 MiB peak),
perpsim 4.7-4.9 s a market process (about 3.4 s of it the run), 14.5 s in all: 5.7x.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

HERE = Path(__file__).resolve().parent
SCENARIO: Final = HERE / "scenarios" / "d8x_reference_3d.yaml"

#: The ratio of the issue's table: the reference's wall time over perpsim's.
TARGET_RATIO: Final = 30.0
TARGET: Final = f">= {TARGET_RATIO:g}x (reference wall / perpsim wall, whole processes)"

#: The reference run's horizon: the start of ``main()``'s first horizon, 3 days.
START: Final = "2022-07-20T00:00:00+00:00"
DAYS: Final = 3

#: The reference's interpreter, when ``--python`` is not given (else this interpreter).
PYTHON_ENV: Final = "PERPSIM_D8X_REFERENCE_PYTHON"

#: How to make an interpreter for the reference (shown when it cannot import its packages).
VENV_HINT: Final = (
    "The reference simulator needs numpy, pandas 1.x, scipy, matplotlib and joblib in an"
    " interpreter of its own, e.g.:\n  python3 -m venv /tmp/d8xref-venv\n"
    '  /tmp/d8xref-venv/bin/pip install "numpy<2" "pandas<2" "scipy<1.12" "matplotlib<3.8"'
    " joblib\nthen pass --python /tmp/d8xref-venv/bin/python (or set"
    " PERPSIM_D8X_REFERENCE_PYTHON)."
)

#: What this script changes in the reference's run, for the JSON.
MODIFICATION: Final = (
    "none to its files: a driver imports simulation.py and runs main()'s first grid"
    " configuration (seed 567, long probability 0.5, 3 x 350,000 USD, 2,000 USD a trader,"
    " one trade a day) through simulate() and report_stats() over 2022-07-20 to 2022-07-23"
    " instead of main()'s grid of 8 two-month runs"
)

#: The driver, run by the reference's interpreter in the working folder (argv: the checkout,
#: the mode ``prepare`` or ``run``, the start, the days, the markets as a comma list or ``-``).
#: ``prepare`` fills ``data/index`` with links to the checkout's price files and a synthetic
#: series for any the checkout lacks; ``run`` is the timed run. Both print one JSON line.
DRIVER: Final = r"""
import glob, json, os, sys
from datetime import datetime, timedelta

checkout, mode, start, days, markets = sys.argv[1:6]
sys.path.insert(0, checkout)
import simulation as sim

if markets != "-":
    wanted = markets.split(",")
    unknown = [m for m in wanted if m not in sim.SYMBOLS]
    if unknown:
        sys.exit(f"markets {unknown} are not among the simulator's {sim.SYMBOLS}")
    sim.SYMBOLS = wanted
t0 = datetime.fromisoformat(start)
t1 = t0 + timedelta(days=int(days))

if mode == "prepare":
    import numpy as np
    import pandas as pd
    levels = {"BTCUSD": 23000.0, "ETHUSD": 1500.0, "AVAXUSD": 25.0, "MATICUSD": 0.9}
    needed = list(sim.SYMBOLS)
    if sim.COLL not in ("USD", "USDC", "USDT", "XUSD", "ZUSD"):
        needed.append(sim.COLL + "USD")
    source = {}
    rng = np.random.default_rng(20220720)
    for k, sym in enumerate(needed):
        pattern = f"./data/index/chainlink/{sym}_{sim.NETWORK[sym]}_*.csv"
        if glob.glob(pattern):
            source[sym] = "reference files"
            continue
        first = int(t0.timestamp()) - 3600
        n = int(days) * 1440 + 120
        dt = 1.0 / (365 * 1440)
        steps = -0.5 * 0.64 * dt + 0.8 * np.sqrt(dt) * rng.standard_normal(n)
        price = levels.get(sym, 100.0) * np.exp(np.cumsum(steps))
        name = f"./data/index/chainlink/{sym}_{sim.NETWORK[sym]}_synthetic.csv"
        pd.DataFrame({"timestamp": first + 60 * np.arange(n), "price": price}).to_csv(name)
        source[sym] = "synthetic GBM (the checkout has no " + pattern[len("./data/index/"):] + ")"
    print("D8XREF " + json.dumps({"markets": list(sim.SYMBOLS), "collateral": sim.COLL,
                                  "index_data": source}))
else:
    import pandas as pd
    params = dict(sim.SIM_PARAMS)
    params.update(group_hash=0, sim_hash=0, seed=567, from_date=t0, to_date=t1, prob_long=0.5,
                  initial_protocol_investment=len(sim.SYMBOLS) * 350_000,
                  usd_per_trader=2_000, num_trades_per_day=1)
    df = sim.simulate(params)
    res = sim.report_stats(df, params)
    pd.DataFrame(res, index=[0]).to_csv("./results/sim_id_0.csv", index=False)
    print("D8XREF " + json.dumps({"steps": int(df.shape[0]), "markets": list(sim.SYMBOLS)}))
"""


def _timed(cmd: list[str], cwd: Path, log: Path) -> tuple[float, int, int]:
    """Runs ``cmd`` with its output in ``log``; its wall time, peak RSS (bytes) and exit code."""
    with log.open("wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, int(usage.ru_maxrss) * 1024, proc.returncode


def _last_json(log: Path, tag: str = "D8XREF ") -> dict[str, Any]:
    """The JSON of the last line of ``log`` that starts with ``tag``."""
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.startswith(tag)]
    if not lines:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the reference simulator did not finish ({log}):\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1][len(tag) :])
    return result


def _link_tree(src: Path, dst: Path) -> None:
    """``dst`` mirrors ``src``: real folders, each file a symbolic link to ``src``'s."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        if entry.is_dir():
            _link_tree(entry, dst / entry.name)
        else:
            (dst / entry.name).symlink_to(entry.resolve())


def _crowd(results: Path) -> dict[str, dict[str, int]]:
    """Per market: the traders, bots and trades of the reference run (from its result files)."""
    crowd: dict[str, dict[str, int]] = {}
    for f in sorted(results.glob("res*-*-*.csv")):
        m = re.match(r"res(\d+)-(\d+)-([A-Z]+USD)", f.name)
        if m is None:
            continue
        header, last = "", ""
        with f.open() as fh:
            header = fh.readline()
            for line in fh:
                last = line
        cols = header.rstrip("\n").split(",")
        values = last.rstrip("\n").split(",")
        trades = None
        if "num_trades" in cols and len(values) == len(cols):
            try:
                trades = int(float(values[cols.index("num_trades")]))
            except ValueError:
                trades = None
        row = {"traders": int(m.group(1)), "bots": int(m.group(2))}
        if trades is not None:
            row["trades"] = trades
        crowd[m.group(3)] = row
    return crowd


def _git_commit(path: Path) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    top = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--show-toplevel"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    # A checkout without .git inside another repository would report that one's commit.
    return proc.stdout.strip() or None if top and Path(top).resolve() == path else None


def run_reference(
    checkout: Path,
    python: str,
    markets: list[str] | None = None,
    keep: Path | None = None,
) -> dict[str, Any]:
    """Runs the reference simulator's 3-day case as a whole process.

    Args:
        checkout: The D8X perpetual-simulation checkout (its ``simulation.py`` and ``data/``).
        python: The interpreter with the reference's packages.
        markets: Some of the simulator's markets (default: all it simulates).
        keep: Keep the working folder (data links, results, log) here instead of a temporary
            one.

    Returns:
        ``wall_s``, ``peak_rss_bytes``, ``steps``, ``markets``, ``crowd`` (traders, bots and
        trades per market), ``index_data`` (whose prices were used), ``log`` and the setup.

    Raises:
        FileNotFoundError: ``checkout`` has no ``simulation.py``.
        FileExistsError: ``keep`` is a folder with files this script did not write.
        RuntimeError: The preparation or the run failed (the end of its log is shown).
    """
    checkout = checkout.resolve()
    if not (checkout / "simulation.py").is_file():
        raise FileNotFoundError(f"{checkout}: no simulation.py (not the D8X reference checkout)")
    if keep is not None and keep.exists():
        if not keep.is_dir() or (any(keep.iterdir()) and not (keep / "d8xref_driver.py").is_file()):
            raise FileExistsError(f"--keep {keep}: exists and is not this script's folder")
        shutil.rmtree(keep)
    work = Path(tempfile.mkdtemp(prefix="d8xref-")) if keep is None else keep.resolve()
    try:
        data = work / "data"
        data.mkdir(parents=True)
        (work / "results").mkdir()
        for entry in (checkout / "data").iterdir():
            if entry.name == "index" and entry.is_dir():
                _link_tree(entry, data / "index")
            else:
                (data / entry.name).symlink_to(entry.resolve())
        (data / "index" / "chainlink").mkdir(parents=True, exist_ok=True)
        driver = work / "d8xref_driver.py"
        driver.write_text(DRIVER)
        chosen = ",".join(markets) if markets else "-"
        args = [str(checkout), "", START, str(DAYS), chosen]
        prep_log = work / "prepare.log"
        args[1] = "prepare"
        _, _, rc = _timed([python, str(driver), *args], work, prep_log)
        if rc != 0:
            raise RuntimeError(
                f"preparing the reference run failed with {python}:\n"
                f"{prep_log.read_text(errors='replace')[-3000:]}\n{VENV_HINT}"
            )
        prepared = _last_json(prep_log)
        log = work / "run.log"
        args[1] = "run"
        wall, rss, rc = _timed([python, str(driver), *args], work, log)
        if rc != 0:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the reference run failed (exit {rc}):\n{tail}")
        done = _last_json(log)
        crowd = _crowd(work / "results")
        return {
            "path": str(checkout),
            "commit": _git_commit(checkout),
            "python": python,
            "window": [START, f"{DAYS} days"],
            "modification": MODIFICATION,
            "markets": done["markets"],
            "collateral": prepared["collateral"],
            "index_data": prepared["index_data"],
            "steps": done["steps"],
            "crowd": crowd,
            "traders_per_market": {
                k: v["traders"] + v["bots"] for k, v in crowd.items() if "traders" in v
            },
            "wall_s": wall,
            "peak_rss_bytes": rss,
            "log": str(log) if keep is not None else None,
        }
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


def perpsim_command() -> list[str]:
    """``perpsim`` of this interpreter's environment, else ``python -m perpsim``."""
    script = Path(sys.executable).parent / "perpsim"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "perpsim"]


def run_perpsim(n_markets: int, scenario: Path = SCENARIO) -> dict[str, Any]:
    """Runs ``scenario`` once per market, each as a whole ``perpsim run`` process.

    Args:
        n_markets: How many market-sized runs (seeds 1 to ``n_markets``).
        scenario: The market-sized scenario.

    Returns:
        ``wall_s`` (the sum), ``runs`` (seed, wall time, peak RSS, trades and status of each)
        and the command.

    Raises:
        RuntimeError: A run failed (the end of its output is shown).
    """
    cmd = perpsim_command()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="perpsim-d8xref-") as tmp:
        for seed in range(1, n_markets + 1):
            out = Path(tmp) / f"run{seed}"
            log = Path(tmp) / f"run{seed}.log"
            full = [*cmd, "run", str(scenario), "--seed", str(seed), "--out", str(out)]
            full += ["--no-plots", "--quiet"]
            wall, rss, rc = _timed(full, HERE.parent, log)
            if rc != 0:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"perpsim run failed (exit {rc}):\n{tail}")
            summary = json.loads((out / "summary.json").read_text())
            runs.append(
                {
                    "seed": seed,
                    "wall_s": wall,
                    "peak_rss_bytes": rss,
                    "trades": summary.get("trades"),
                    "ticks": summary.get("ticks"),
                    "invariants": summary.get("invariants"),
                    "run_wall_s": summary.get("wall_time_s"),
                }
            )
    return {
        "scenario": str(scenario.relative_to(HERE.parent)),
        "command": " ".join([*cmd, "run", "SCENARIO", "--seed", "N", "--out", "DIR"])
        + " --no-plots --quiet",
        "markets": n_markets,
        "wall_s": sum(r["wall_s"] for r in runs),
        "runs": runs,
    }


def compare(
    reference: Path | None,
    python: str | None = None,
    markets: list[str] | None = None,
    keep: Path | None = None,
) -> dict[str, Any]:
    """Both sides and the ratio; without ``reference`` only perpsim's (3 markets).

    Args:
        reference: The reference checkout, or None.
        python: The reference's interpreter (default: ``$PERPSIM_D8X_REFERENCE_PYTHON``, else
            this one).
        markets: Some of the reference's markets (default: all it simulates).
        keep: Keep the reference's working folder here.

    Returns:
        ``reference`` (or None), ``perpsim``, ``ratio`` (None without the reference),
        ``target``, ``meets_target`` (None without the reference) and ``reference_given``.
    """
    ref = None
    if reference is not None:
        python = python or os.environ.get(PYTHON_ENV) or sys.executable
        ref = run_reference(reference, python, markets, keep)
        n_markets = len(ref["markets"])
    else:
        n_markets = len(markets) if markets else 3
    ours = run_perpsim(n_markets)
    ratio = ref["wall_s"] / ours["wall_s"] if ref is not None else None
    return {
        "reference_given": ref is not None,
        "note": None
        if ref is not None
        else (
            "the reference was not given (pass --reference PATH or set PERPSIM_D8X_REFERENCE):"
            " perpsim's side only, for the reference's default 3 markets"
        ),
        "reference": ref,
        "perpsim": ours,
        "ratio": ratio,
        "target": TARGET,
        "meets_target": None if ratio is None else bool(ratio >= TARGET_RATIO),
    }


def main(argv: list[str] | None = None) -> int:
    """The command line: runs :func:`compare`, prints both sides and writes the JSON."""
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.d8x_reference",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--reference",
        default=os.environ.get("PERPSIM_D8X_REFERENCE") or None,
        help="the D8X perpetual-simulation checkout (default: $PERPSIM_D8X_REFERENCE)",
    )
    ap.add_argument(
        "--python",
        help=f"the reference's interpreter (default: ${PYTHON_ENV}, else this one)",
    )
    ap.add_argument("--markets", nargs="+", help="some of the reference's markets (ETHUSD ...)")
    ap.add_argument("--keep", help="keep the reference's working folder (data, results, log)")
    ap.add_argument("--out", help="JSON file (default benchmarks/results/d8x_reference_<time>)")
    args = ap.parse_args(argv)
    from benchmarks.__main__ import machine

    result = compare(
        Path(args.reference) if args.reference else None,
        args.python,
        args.markets,
        Path(args.keep) if args.keep else None,
    )
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = {"when": when, "machine": machine(), "results": {"d8x_reference": result}}
    stamp = when.replace(":", "")
    out = Path(args.out) if args.out else HERE / "results" / f"d8x_reference_{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(describe(result))
    print(f"\nJSON: {out}")
    return 0


def describe(result: dict[str, Any]) -> str:
    """A few lines: both sides' wall times, the crowd and the ratio against its target."""
    ours = result["perpsim"]
    lines = [
        f"perpsim: {ours['markets']} x {ours['scenario']}: "
        + " + ".join(f"{r['wall_s']:.1f}" for r in ours["runs"])
        + f" = {ours['wall_s']:.1f} s ({sum(r['trades'] or 0 for r in ours['runs']):,} trades)"
    ]
    ref = result["reference"]
    if ref is None:
        lines.append(f"reference: not run ({result['note']})")
    else:
        crowd = ", ".join(
            f"{k} {v['traders']}+{v['bots']} ({v.get('trades', '?')} trades)"
            for k, v in ref["crowd"].items()
        )
        lines.append(
            f"reference: {ref['wall_s']:.1f} s, {ref['steps']:,} steps, peak"
            f" {ref['peak_rss_bytes'] / 2**20:,.0f} MiB; traders+bots per market: {crowd}"
        )
        synthetic = [k for k, v in ref["index_data"].items() if v.startswith("synthetic")]
        if synthetic:
            lines.append(f"  synthetic price data for {', '.join(synthetic)}")
        lines.append(
            f"ratio: {result['ratio']:.1f}x (target {result['target']}):"
            f" {'meets' if result['meets_target'] else 'does NOT meet'} the target"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
