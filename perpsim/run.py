"""Run one scenario and write its outputs (``perpsim run``).

A run folder holds ``timeseries.parquet`` (one row per recorded tick), ``events.parquet``
(every state-changing operation, enough for ``perpsim replay RUN_DIR`` to rebuild the ledger),
``accounts.parquet`` (the final ledger, one row per account), ``summary.json`` (scalar risk
metrics) and ``manifest.json`` (resolved scenario, seed, versions, commit, wall time). With
``--format csv`` the tables are CSV. Every file is written atomically; the same scenario and
seed give byte-identical tables.
"""

from __future__ import annotations

import io
import json
import math
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from perpsim import __version__
from perpsim.errors import InvariantViolation
from perpsim.io import atomic_write_bytes, atomic_write_text
from perpsim.metrics import run_summary
from perpsim.model import PerpModel

if TYPE_CHECKING:
    from perpsim.scenario import Scenario

Keep = Literal["summary", "timeseries", "all"]


@dataclass
class RunResult:
    """What one run produced (in memory), whether or not it was written to disk."""

    summary: dict[str, Any]
    manifest: dict[str, Any]
    timeseries: pd.DataFrame
    events: pd.DataFrame
    accounts: pd.DataFrame
    out_dir: Path | None = None
    error: str | None = None
    files: list[Path] = field(default_factory=list)


def git_commit(path: Path | None = None) -> str | None:
    """The checkout's commit (with ``-dirty`` if modified), or None outside git."""
    cwd = path or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    """Versions of perpsim and the libraries that shape its numbers."""
    import mesa
    import pyarrow

    return {
        "perpsim": __version__,
        "python": platform.python_version(),
        "mesa": mesa.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pyarrow": pyarrow.__version__,
    }


def timeseries_frame(model: PerpModel) -> pd.DataFrame:
    """The recorded rows as a DataFrame with the documented columns and a UTC ``time``."""
    df = model.recorder.get_model_vars_dataframe()
    df["time"] = pd.to_datetime(df["time"].astype("int64"), unit="s", utc=True)
    return df


def run_scenario(
    scenario: Scenario,
    seed: int | None = None,
    *,
    base_dir: Path | None = None,
    check_invariants: bool = True,
    progress: Callable[[PerpModel], None] | None = None,
) -> RunResult:
    """Build the model, run every tick, and collect outputs in memory.

    An invariant violation stops the run: the result then holds the outputs up to that tick
    and ``error`` says what broke.
    """
    t0 = time.perf_counter()
    model = PerpModel(scenario, seed, check_invariants=check_invariants, base_dir=base_dir)
    error = None
    try:
        if progress is None:
            model.run()
        else:
            model.run(lambda _tick: progress(model))
    except InvariantViolation as exc:
        error = str(exc)
    wall = time.perf_counter() - t0
    accounts = model.account_table()
    summary = run_summary(model, accounts)
    summary["wall_time_s"] = wall
    if error is not None:
        summary["invariants"] = error
    manifest = {
        "scenario": scenario.name,
        "seed": model.run_seed,
        "resolved_scenario": json.loads(scenario.model_dump_json()),
        "versions": versions(),
        "git_commit": git_commit(),
        "command": " ".join(sys.argv),
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_time_s": wall,
        "ticks_run": model.tick,
        "error": error,
    }
    return RunResult(
        summary=summary,
        manifest=manifest,
        timeseries=timeseries_frame(model),
        events=model.event_log.frame(),
        accounts=pd.DataFrame(model.account_table()),
        error=error,
    )


def _table_bytes(df: pd.DataFrame, fmt: str) -> bytes:
    if fmt == "csv":
        return df.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%SZ").encode("utf-8")
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, engine="pyarrow", compression="zstd")
    return buf.getvalue()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def json_text(doc: Any) -> str:
    """JSON with non-finite floats written as null (strict JSON readers accept it)."""

    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v

    return json.dumps(clean(doc), indent=2, default=_json_default) + "\n"


def write_outputs(
    result: RunResult, out_dir: Path, fmt: str = "parquet", keep: Keep = "all"
) -> list[Path]:
    """Write a run's files into ``out_dir`` (each atomically); return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ext = "csv" if fmt == "csv" else "parquet"
    written: list[Path] = []
    tables: list[tuple[str, pd.DataFrame]] = []
    if keep in ("timeseries", "all"):
        tables.append(("timeseries", result.timeseries))
    if keep == "all":
        tables.append(("events", result.events))
        tables.append(("accounts", result.accounts))
    for name, df in tables:
        path = out_dir / f"{name}.{ext}"
        atomic_write_bytes(path, _table_bytes(df, fmt))
        written.append(path)
    for name, doc in (("summary", result.summary), ("manifest", result.manifest)):
        path = out_dir / f"{name}.json"
        atomic_write_text(path, json_text(doc))
        written.append(path)
    result.out_dir = out_dir
    result.files = written
    return written


def default_out_dir(scenario_name: str, seed: int, root: Path = Path("outputs")) -> Path:
    """``outputs/<scenario>/<UTC timestamp>-<seed>/``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in scenario_name)
    return root / safe / f"{stamp}-{seed}"
