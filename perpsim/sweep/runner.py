"""Running a sweep: the runs are streamed to the journal as they finish, then the tables.

:func:`run_sweep` holds a lock on the sweep folder, writes (or, on ``--resume``, checks) the
manifest, submits the runs not yet recorded to a backend (:mod:`perpsim.sweep.backends`),
keeping a bounded number in flight, appends each finished run to the journal and rebuilds the
tables at the end, on Ctrl-C and on any error. :func:`print_report` prints the outcome.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import time
import traceback
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, wait
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from perpsim import __version__
from perpsim.errors import ConfigError
from perpsim.io import atomic_write_text
from perpsim.progress import Progress, ProgressMode
from perpsim.run import not_a_folder
from perpsim.sweep.backends import Backend, open_backend
from perpsim.sweep.journal import QUARANTINE, Journal, journal_line, read_journal_checked
from perpsim.sweep.layout import AGGREGATE, JOURNAL, LOCK, MANIFEST, RESULTS, metric_column
from perpsim.sweep.plan import SweepPlan
from perpsim.sweep.tables import rank_points, write_tables
from perpsim.sweep.task import RunTask, run_task

__all__ = ["MAX_ATTEMPTS", "SweepOutcome", "print_report", "run_sweep"]

#: A run whose worker process dies this many times is recorded as failed.
MAX_ATTEMPTS: Final = 3

#: Columns the final table always shows beside the ranking metric: did the fund run out, and
#: how much debt could not be covered.
SAFETY_COLUMNS: Final = ("p_insurance_fund_exhausted", "bad_debt_mean", "var95_bad_debt")

#: Fewer seeds per point than this and the final table warns that its tail statistics are rough.
FEW_SEEDS: Final = 20


@dataclasses.dataclass
class SweepOutcome:
    """What a call of :func:`run_sweep` did.

    Attributes:
        out_dir: The sweep's folder.
        n_runs: Runs of the sweep.
        n_recorded: Runs recorded in the journal (finished, ok or failed).
        n_failed: Recorded runs that failed.
        n_new: Runs finished by this call.
        n_skipped: Runs already finished before this call (``resume``).
        wall_time_s: Duration of this call.
        results: The results table.
        aggregate: The aggregate table.
        backend: Where the runs executed.
    """

    out_dir: Path
    n_runs: int
    n_recorded: int
    n_failed: int
    n_new: int
    n_skipped: int
    wall_time_s: float
    results: pd.DataFrame
    aggregate: pd.DataFrame
    backend: str

    @property
    def complete(self) -> bool:
        """Whether every run is recorded."""
        return self.n_recorded == self.n_runs


def _make_out_dir(out: Path) -> None:
    """Creates the sweep folder, or says why it cannot be one (before any run starts)."""
    for parent in (out, *out.parents):
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                what = not_a_folder(parent)
                what = what if parent == out else f"lies under {parent}, which {what}"
                raise ConfigError(f"--out {out}: {what}")
            break
    if out.is_dir() and not (out / MANIFEST).exists() and not (out / JOURNAL).exists():
        # A sweep writes its tables beside whatever is there: only into a sweep's own folder.
        others = [e.name for e in out.iterdir() if e.name != LOCK]
        if others:
            shown = ", ".join(sorted(others)[:5]) + (", ..." if len(others) > 5 else "")
            raise ConfigError(
                f"--out {out}: holds files that are not a perpsim sweep ({shown}); give a new"
                " or empty folder (or a sweep's folder, with --resume)"
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write there: {exc.strerror}") from None


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    """Holds an exclusive lock on the sweep folder (two sweeps in one folder would clash)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    fh = open(out_dir / LOCK, "w")  # noqa: SIM115
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(f"{out_dir}: another sweep is running in this folder") from None
        yield
    finally:
        fh.close()


def _relative_to_cwd(path: str) -> str:
    p = Path(path)
    cwd = Path.cwd().resolve()
    if p.is_absolute() and p.resolve().is_relative_to(cwd):
        return p.resolve().relative_to(cwd).as_posix()
    return path


def _manifest(plan: SweepPlan) -> dict[str, Any]:
    return {
        "format": 1,
        "name": plan.name,
        # Paths as the user would type them here (not this machine's absolute paths).
        "sweep_file": _relative_to_cwd(plan.source),
        "fingerprint": plan.fingerprint,
        "scenario": _relative_to_cwd(plan.scenario),
        "scenario_name": plan.scenario_name,
        "parameters": list(plan.keys),
        "sampler": plan.spec.sampler,
        "points": plan.n_points,
        "seeds": plan.spec.seeds,
        "runs": plan.n_runs,
        "root_seed": plan.root_seed,
        "common_seeds": plan.spec.common_seeds,
        "keep": plan.spec.keep,
        "spec": plan.spec.model_dump(mode="json", by_alias=True),
        "perpsim": __version__,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _prepare(plan: SweepPlan, out_dir: Path, resume: bool) -> None:
    manifest_path = out_dir / MANIFEST
    journal = out_dir / JOURNAL
    if manifest_path.exists():
        if not resume:
            raise ConfigError(
                f"{out_dir}: already holds a sweep; add --resume to continue it, or choose"
                " another --out"
            )
        try:
            old = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{manifest_path}: cannot be read: {exc}") from None
        if old.get("fingerprint") != plan.fingerprint:
            raise ConfigError(
                f"{out_dir}: was started from a different sweep (the sweep file, its scenario,"
                f" a data file it reads, or perpsim's code ({__version__}) changed since);"
                " resuming would mix results. Use another --out, or restore the original files"
            )
    elif journal.exists() and journal.stat().st_size > 0:
        raise ConfigError(f"{out_dir}: has {JOURNAL} but no {MANIFEST}; use another --out")
    else:
        atomic_write_text(manifest_path, json.dumps(_manifest(plan), indent=2) + "\n")


def run_sweep(
    plan: SweepPlan,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    progress: ProgressMode = "off",
) -> SweepOutcome:
    """Runs a sweep, streaming each finished run to the journal.

    Args:
        plan: The sweep (see :func:`load_sweep`).
        out_dir: The sweep's folder.
        workers: Local worker processes (default: the number of cores); 1 runs in-process.
        scheduler: A Dask scheduler address (``tcp://host:8786``); overrides ``workers``.
        resume: Continue the sweep in ``out_dir``: runs already recorded are skipped.
        retry_failed: With ``resume``, run the failed runs again.
        progress: ``bar`` (rich, with ETA), ``lines`` (one line per 10%) or ``off``.

    Returns:
        What happened; the tables are written in ``out_dir``.

    Raises:
        ConfigError: ``out_dir`` holds another sweep, or the scheduler cannot be used.
        KeyboardInterrupt: After the tables were rebuilt from the runs finished so far.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    _make_out_dir(out)
    with _locked(out):
        _prepare(plan, out, resume)
        recorded, problems = read_journal_checked(out / JOURNAL, repair=True)
        if problems:
            shown = "\n".join(f"  {p}" for p in problems[:10])
            more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
            print(
                f"warning: {len(problems)} line(s) of {JOURNAL} cannot be used and were moved"
                f" to {out / QUARANTINE}; their runs are run again:\n{shown}{more}",
                file=sys.stderr,
            )
        if retry_failed and any(r.get("status") != "ok" for r in recorded.values()):
            # Forget the failed runs first, so that each run keeps exactly one line.
            recorded = {k: r for k, r in recorded.items() if r.get("status") == "ok"}
            atomic_write_text(out / JOURNAL, "".join(journal_line(r) for r in recorded.values()))
        done = {k for k in recorded if 0 <= k[0] < plan.n_points and 0 <= k[1] < plan.spec.seeds}
        n_skipped = len(done)
        backend = open_backend(workers, scheduler)
        bar = Progress(plan.name, plan.n_runs, unit="runs", mode=progress, done=n_skipped)
        # A function in place of the model runs in microseconds: one fsync a line would be
        # most of its time.
        journal = Journal(out / JOURNAL, sync_interval=0.5 if plan.function else 0.0)
        try:
            n_new = _execute(plan, out, backend, done, journal, bar)
        except BaseException:
            # Ctrl-C, a lost scheduler, ...: keep every finished run and stop the rest.
            bar.stop()
            backend.close(kill=True)
            journal.close()
            write_tables(plan, out)
            raise
        bar.stop()
        backend.close()
        journal.close()
        results, aggregate = write_tables(plan, out)
    n_failed = int((results["status"] != "ok").sum())
    return SweepOutcome(
        out_dir=out,
        n_runs=plan.n_runs,
        n_recorded=len(results),
        n_failed=n_failed,
        n_new=n_new,
        n_skipped=n_skipped,
        wall_time_s=time.perf_counter() - t0,
        results=results,
        aggregate=aggregate,
        backend=backend.description,
    )


def _lost_row(task: RunTask, exc: BaseException, attempts: int) -> dict[str, Any]:
    return {
        "point_id": task.point_id,
        "seed_index": task.seed_index,
        "seed": task.seed,
        "status": "failed",
        "error": (
            f"the worker running this run was lost {attempts} times (killed, out of memory or"
            f" crashed); last: {type(exc).__name__}: {exc}"
        ),
        "traceback": "".join(traceback.format_exception(exc)),
        "wall_time_s": 0.0,
        "perp_status": None,
        "invariants": None,
        "run_dir": None,
    }


def _execute(
    plan: SweepPlan,
    out: Path,
    backend: Backend,
    done: set[tuple[int, int]],
    journal: Journal,
    bar: Progress,
) -> int:
    """Submits the runs not yet done, keeping a bounded number in flight; records each."""
    out = out.resolve()
    todo: Iterator[tuple[int, int]] = (
        (p, s) for p in range(plan.n_points) for s in range(plan.spec.seeds) if (p, s) not in done
    )
    retry: deque[RunTask] = deque()
    attempts: Counter[tuple[int, int]] = Counter()
    inflight: dict[Future[dict[str, Any]], RunTask] = {}
    n_new = 0
    n_failed = 0
    exhausted = False

    def next_task() -> RunTask | None:
        nonlocal exhausted
        if retry:
            return retry.popleft()
        if exhausted:
            return None
        nxt = next(todo, None)
        if nxt is None:
            exhausted = True
            return None
        return plan.task(nxt[0], nxt[1], out)

    def settle(future: Future[dict[str, Any]]) -> bool:
        """Records a finished future's row (or retries its run); True if the pool broke."""
        nonlocal n_new, n_failed
        task = inflight.pop(future)
        exc: BaseException | None = (
            CancelledError("cancelled by the executor")
            if future.cancelled()
            else future.exception()
        )
        if exc is None:
            row = future.result()
        else:
            key = (task.point_id, task.seed_index)
            attempts[key] += 1
            if attempts[key] < MAX_ATTEMPTS:
                retry.append(task)
                return isinstance(exc, BrokenProcessPool)
            row = _lost_row(task, exc, attempts[key])
        journal.append(row)
        n_new += 1
        n_failed += int(row["status"] != "ok")
        bar.update(advance=1, status=f"[red]{n_failed} failed" if n_failed else "")
        return isinstance(exc, BrokenProcessPool)

    while True:
        broken = False
        while len(inflight) < backend.capacity():
            task = next_task()
            if task is None:
                break
            try:
                inflight[backend.executor.submit(run_task, task)] = task
            except BrokenProcessPool:
                retry.appendleft(task)
                broken = True
                break
        if not inflight and not broken:
            return n_new
        if not broken:
            finished, _ = wait(list(inflight), timeout=1.0, return_when=FIRST_COMPLETED)
            for future in finished:
                broken = settle(future) or broken
        if broken:
            # A worker process died and the pool is unusable: it fails every run it holds. Record
            # those that finished, retry the others on a new pool.
            wait(list(inflight), timeout=30.0)
            for future in [f for f in inflight if f.done()]:
                settle(future)
            retry.extend(inflight.values())
            inflight.clear()
            backend.recover()


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return "nan" if math.isnan(float(v)) else f"{float(v):,.6g}"
    return str(v)


def print_report(plan: SweepPlan, outcome: SweepOutcome, *, n: int = 5) -> None:
    """Prints the sweep's outcome and the best and worst points for the sweep's metric."""
    console = Console()
    metric = plan.spec.metric
    col = metric_column(metric)
    best, worst = rank_points(outcome.aggregate, metric, plan.spec.minimize, n)
    sense = "lower" if plan.spec.minimize else "higher"
    values = outcome.aggregate[col].dropna()
    if len(values) > 1 and values.nunique() == 1:
        console.print(f"every point has {col} = {_fmt(values.iloc[0])}: no best or worst point")
        worst = worst.iloc[0:0]
        best = best.iloc[0:0]
    short = [k.rsplit(".", 1)[-1] for k in plan.keys]
    headers = short if len(set(short)) == len(short) else list(plan.keys)
    for title, frame in (("best", best), ("worst", worst)):
        if frame.empty:
            continue
        table = Table(title=f"{title} {len(frame)} points by {col} ({sense} is better)")
        table.add_column("point", justify="right")
        for header in headers:
            table.add_column(header, justify="right")
        table.add_column(col, justify="right")
        # The safety check the shipped sweep files say to read first, whatever the ranking.
        safety = [c for c in SAFETY_COLUMNS if c != col and c in frame.columns]
        for c in safety:
            table.add_column(c, justify="right")
        table.add_column("ok/runs", justify="right")
        for _, r in frame.iterrows():
            table.add_row(
                str(int(r["point_id"])),
                *(_fmt(r[k]) for k in plan.keys),
                _fmt(r[col]),
                *(_fmt(r[c]) for c in safety),
                f"{int(r['n_ok'])}/{int(r['n_runs'])}",
            )
        console.print(table)
    seeds = plan.spec.seeds
    if seeds < FEW_SEEDS:
        console.print(
            f"note: {seeds} seed(s) per point: the tail statistics (p5/p95, VaR95, CVaR95, LaR95,"
            f" P(fund exhausted)) are rough estimates; a 95% quantile needs {FEW_SEEDS}+ seeds"
            " to be more than the largest value seen"
        )
    console.print(
        f"{outcome.n_recorded}/{outcome.n_runs} runs recorded ({outcome.n_new} now,"
        f" {outcome.n_skipped} before; {outcome.n_failed} failed) on {outcome.backend}"
        f" in {outcome.wall_time_s:,.1f} s"
    )
    console.print(f"outputs: {outcome.out_dir / RESULTS}, {outcome.out_dir / AGGREGATE}")
