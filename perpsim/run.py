"""Run one scenario and write its outputs (``perpsim run``).

A run folder holds ``timeseries.parquet`` (one row per recorded tick), ``events.parquet``
(every state-changing operation, enough for ``perpsim replay RUN_DIR`` to rebuild the ledger),
``accounts.parquet`` (the final ledger, one row per account), ``summary.json`` (scalar risk
metrics) and ``manifest.json`` (resolved scenario, seed, versions, commit, wall time). With
``--format csv`` the tables are CSV. Every file is written atomically; the same scenario and
seed give byte-identical tables.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import os
import platform
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from perpsim import __version__
from perpsim.errors import ConfigError, InvariantViolation
from perpsim.io import atomic_write_bytes, atomic_write_text, atomic_writer
from perpsim.metrics import DEFAULT_PRICE_IMPACT_SIZE, format_metric, metric_label, run_summary
from perpsim.model import EventLog, PerpModel

if TYPE_CHECKING:
    from perpsim.scenario import Scenario

Keep = Literal["summary", "timeseries", "all"]


@dataclass
class RunResult:
    """What one run produced (in memory), whether or not it was written to disk."""

    summary: dict[str, Any]
    manifest: dict[str, Any]
    timeseries: pd.DataFrame
    #: The run's events as the model logged them (columns): :attr:`events` is their table.
    event_log: EventLog
    accounts: pd.DataFrame
    out_dir: Path | None = None
    #: Agents' own tables by file name (``vaults``: the GLP vault family's rows), if any.
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    error: str | None = None
    files: list[Path] = field(default_factory=list)

    @functools.cached_property
    def events(self) -> pd.DataFrame:
        """The event table (``events.parquet``), built when first asked for.

        A long run's table is large (a million events take ~400 MB as a DataFrame, against
        ~30 MB in the log): :func:`write_outputs` writes it from the log in pieces instead, and
        a sweep that keeps only summaries never builds it.
        """
        return self.event_log.frame()


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


def _package_dirs() -> list[Path]:
    import perpsim.agents

    return [Path(__file__).resolve().parent, Path(perpsim.agents.__file__).resolve().parent]


@functools.cache
def source_sha256() -> str:
    """SHA-256 of perpsim's Python sources (the package and its agents), by relative path.

    A development checkout changes without its version changing; this names the code that
    produced a number (in a sweep's fingerprint and a run's manifest).
    """
    digest = hashlib.sha256()
    for i, root in enumerate(_package_dirs()):
        for f in sorted(root.rglob("*.py")):
            if i == 0 and "agents" in f.relative_to(root).parts[:1]:
                continue
            digest.update(f"{i}/{f.relative_to(root).as_posix()}\0".encode())
            digest.update(f.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def versions() -> dict[str, str]:
    """Versions of perpsim and the libraries that shape its numbers."""
    import mesa
    import pyarrow

    return {
        "perpsim": __version__,
        "perpsim_source_sha256": source_sha256(),
        "python": platform.python_version(),
        "mesa": mesa.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pyarrow": pyarrow.__version__,
    }


def _portable_path(path: str, base: Path) -> str:
    """``path`` relative to ``base`` (posix), or as given when it is on another drive."""
    try:
        return Path(os.path.relpath(Path(path).resolve(), base.resolve())).as_posix()
    except ValueError:  # another drive (Windows)
        return Path(path).as_posix()


def portable_scenario(
    scenario: Scenario, base_dir: Path | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The resolved scenario as the manifest records it, and its data files with their hashes.

    Data files are named relative to the scenario's folder (``base_dir``), not by this
    machine's absolute path, so the record and the report's re-run recipe work elsewhere; the
    SHA-256 of each says whether a copy is the same data.
    """
    resolved: dict[str, Any] = json.loads(scenario.model_dump_json())
    base = Path.cwd() if base_dir is None else Path(base_dir)
    files: list[dict[str, Any]] = []
    paths = [("price_path", resolved.get("price_path"))] + [
        (f"assets.{name}.path", asset.get("path"))
        for name, asset in (resolved.get("assets") or {}).items()
    ]
    for key, path in paths:
        if not (isinstance(path, dict) and isinstance(path.get("file"), str)):
            continue
        file = Path(path["file"]).expanduser()
        actual = file if file.is_absolute() else base / file
        name = _portable_path(str(actual), base)
        path["file"] = name
        record: dict[str, Any] = {"key": f"{key}.file", "file": name}
        if actual.is_file():
            record["sha256"] = file_sha256(actual)
            record["bytes"] = actual.stat().st_size
        files.append(record)
    return resolved, files


def recorded_command(argv: list[str]) -> str:
    """The command line as a user would type it again: ``perpsim ...``, paths made relative.

    The first word is the console script's absolute path (``/home/me/.venv/bin/perpsim``);
    paths under the working directory are written relative to it.
    """
    if not argv:
        return ""
    cwd = Path.cwd().resolve()
    words = ["perpsim"]
    for arg in argv[1:]:
        p = Path(arg)
        if p.is_absolute() and p.resolve().is_relative_to(cwd):
            arg = p.resolve().relative_to(cwd).as_posix() or "."
        words.append(shlex.quote(arg))
    return " ".join(words)


def timeseries_frame(model: PerpModel) -> pd.DataFrame:
    """The recorded rows as a DataFrame with the documented columns and a UTC ``time``."""
    df = model.recorder.get_model_vars_dataframe()
    df["time"] = pd.to_datetime(df["time"].astype("int64"), unit="s", utc=True)
    return df


#: The memory a run may be estimated to need before it is refused (``--max-memory``, or the
#: ``PERPSIM_MAX_MEMORY`` environment variable, raise it).
DEFAULT_MAX_MEMORY = 4 * 1024**3
#: Measured costs (``docs/outputs.md``): every tick keeps its times, prices and oracle state;
#: every recorded cell is a Python value in a row, then in the DataFrame; every agent its
#: account, its state and its share of the event log.
BYTES_PER_TICK = 300
BYTES_PER_RECORDED_CELL = 100
BYTES_PER_AGENT = 20_000

_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def parse_memory(text: str, what: str = "--max-memory") -> int:
    """Bytes from ``"8GB"``, ``"512M"``, ``"1.5g"`` or a plain number of bytes.

    Raises:
        ConfigError: ``text`` is not a size.
    """
    m = _SIZE.match(str(text))
    if m is None or float(m.group(1)) <= 0:
        raise ConfigError(f"{what}: cannot read {text!r} as a memory size (e.g. 8GB or 512MB)")
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


def memory_limit(text: str | None = None) -> int:
    """The limit of :func:`check_run_size`: ``text``, else ``PERPSIM_MAX_MEMORY``, else 4 GB."""
    if text is not None:
        return parse_memory(text)
    env = os.environ.get("PERPSIM_MAX_MEMORY")
    if env:
        return parse_memory(env, "PERPSIM_MAX_MEMORY")
    return DEFAULT_MAX_MEMORY


def estimate_run_bytes(scenario: Scenario) -> int:
    """About how much memory a run of ``scenario`` needs (ticks, recorded cells, agents)."""
    from perpsim.engine.registry import venue_spec
    from perpsim.model.recorder import timeseries_columns

    n_ticks = int(scenario.clock.n_ticks)
    n_rows = n_ticks // int(scenario.output.record_every) + 2
    n_columns = len(timeseries_columns(venue_spec(scenario.venue.kind).columns))
    n_agents = sum(int(p.count) for p in scenario.agents)
    return (
        n_ticks * BYTES_PER_TICK
        + n_rows * n_columns * BYTES_PER_RECORDED_CELL
        + n_agents * BYTES_PER_AGENT
    )


def _gb(n: float) -> str:
    return f"{n / 1024**3:,.1f} GB" if n >= 1024**3 / 10 else f"{n / 1024**2:,.0f} MB"


def check_run_size(scenario: Scenario, limit: int | None = None) -> None:
    """Refuse a run estimated to need more memory than ``limit`` before anything is built.

    Raises:
        ConfigError: the estimate, what it is made of, and the ways out.
    """
    limit = memory_limit() if limit is None else limit
    need = estimate_run_bytes(scenario)
    if need <= limit:
        return
    clock = scenario.clock
    n_rows = clock.n_ticks // scenario.output.record_every + 1
    raise ConfigError(
        f"{scenario.name}: the run needs about {_gb(need)} of memory ({clock.n_ticks:,} ticks,"
        f" {n_rows:,} recorded rows, {sum(p.count for p in scenario.agents):,} agents), above"
        f" the limit of {_gb(limit)}. Shorten clock.duration, lengthen clock.tick, record less"
        " often (output.record_every), or raise the limit with --max-memory (or"
        " PERPSIM_MAX_MEMORY)"
    )


def run_scenario(
    scenario: Scenario,
    seed: int | None = None,
    *,
    base_dir: Path | None = None,
    check_invariants: bool = True,
    progress: Callable[[PerpModel], None] | None = None,
    max_memory: int | None = None,
) -> RunResult:
    """Build the model, run every tick, and collect outputs in memory.

    An invariant violation stops the run: the result then holds the outputs up to that tick
    and ``error`` says what broke.

    Raises:
        ConfigError: the run is estimated to need more than ``max_memory`` bytes (default:
            :func:`memory_limit`), or its price path cannot be built.
    """
    check_run_size(scenario, max_memory)
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
    resolved, data_files = portable_scenario(scenario, base_dir)
    manifest = {
        "scenario": scenario.name,
        "seed": model.run_seed,
        "resolved_scenario": resolved,
        "data_files": data_files,
        "versions": versions(),
        "git_commit": git_commit(),
        "command": recorded_command(sys.argv),
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_time_s": wall,
        "ticks_run": model.tick,
        "error": error,
    }
    result = RunResult(
        summary=summary,
        manifest=manifest,
        timeseries=timeseries_frame(model),
        event_log=model.event_log,
        accounts=pd.DataFrame(accounts),
        error=error,
        tables=agent_tables(model),
    )
    release_model(model)
    return result


def agent_tables(model: PerpModel) -> dict[str, pd.DataFrame]:
    """The tables agents keep of their own (``output_tables()``), rows of one name joined."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for members in model.agents_by_population.values():
        for agent in members:
            tables = getattr(agent, "output_tables", None)
            if tables is None:
                continue
            for name, table in tables().items():
                rows.setdefault(name, []).extend(table)
    out = {name: pd.DataFrame(table) for name, table in rows.items()}
    for df in out.values():
        if "time" in df.columns:
            df["time"] = pd.to_datetime(df["time"].astype("int64"), unit="s", utc=True)
    return out


def release_model(model: PerpModel) -> None:
    """Let a finished model be freed: Mesa 3.3 keeps every model as a key of ``Agent._ids``.

    That class-level counter of agent ids is a ``defaultdict`` keyed by the model, so without
    this a process that runs many models (a sweep worker, a notebook, the test suite) keeps
    each one, agents and event log included, until it exits. Later Mesa versions that count
    ids elsewhere have nothing to release.
    """
    import mesa

    ids = getattr(mesa.Agent, "_ids", None)
    if isinstance(ids, dict):
        ids.pop(model, None)


#: Rows of a Parquet row group: pyarrow's default (``pyarrow.parquet.write_table`` with no
#: ``row_group_size``), so that a table written in pieces of this many rows is the same file,
#: byte for byte, as the whole table written at once.
PARQUET_ROW_GROUP_ROWS = 1024 * 1024


def _table_bytes(df: pd.DataFrame, fmt: str) -> bytes:
    if fmt == "csv":
        return df.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%SZ").encode("utf-8")
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, engine="pyarrow", compression="zstd")
    return buf.getvalue()


def write_table_pieces(path: Path, pieces: Iterable[pd.DataFrame], fmt: str) -> None:
    """Write a table given as consecutive pieces to ``path`` atomically, one piece in memory.

    The file is the one :func:`_table_bytes` makes of the pieces put together, byte for byte,
    when every piece but the last has :data:`PARQUET_ROW_GROUP_ROWS` rows (Parquet: each
    piece is one row group, as pyarrow cuts a whole table; CSV: the header once, then rows).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    with atomic_writer(path) as fh:
        if fmt == "csv":
            for i, piece in enumerate(pieces):
                text = piece.to_csv(index=False, header=i == 0, date_format="%Y-%m-%dT%H:%M:%SZ")
                fh.write(text.encode("utf-8"))
            return
        writer: pq.ParquetWriter | None = None
        try:
            for piece in pieces:
                table = pa.Table.from_pandas(piece, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(fh, table.schema, compression="zstd")
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()


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


#: ``manifest.json``'s key that says the folder is whole: True only in the manifest written last,
#: after every table and figure (see :func:`write_outputs` and :func:`publish_run_dir`).
COMPLETE_KEY = "complete"


def write_outputs(
    result: RunResult,
    out_dir: Path,
    fmt: str = "parquet",
    keep: Keep = "all",
    *,
    complete: bool = True,
) -> list[Path]:
    """Write a run's files into ``out_dir`` (each atomically); return the paths written.

    ``manifest.json`` is written last and lists the files. With ``complete=False`` it says the
    folder is not finished yet (figures still to be drawn): :func:`mark_complete` then rewrites
    it once everything is there.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    ext = "csv" if fmt == "csv" else "parquet"
    written: list[Path] = []
    tables: list[tuple[str, pd.DataFrame | None]] = []
    if keep in ("timeseries", "all"):
        tables.append(("timeseries", result.timeseries))
    if keep == "all":
        tables.append(("events", None))  # from the log, in pieces
        tables.append(("accounts", result.accounts))
        tables.extend(result.tables.items())
    for name, df in tables:
        path = out_dir / f"{name}.{ext}"
        if df is None:
            pieces = result.event_log.frames(PARQUET_ROW_GROUP_ROWS)
            write_table_pieces(path, pieces, fmt)
        else:
            atomic_write_bytes(path, _table_bytes(df, fmt))
        written.append(path)
    path = out_dir / "summary.json"
    atomic_write_text(path, json_text(result.summary))
    written.append(path)
    written.append(out_dir / "manifest.json")
    result.out_dir = out_dir
    result.files = written
    mark_complete(result, out_dir, complete=complete)
    return written


def mark_complete(
    result: RunResult, out_dir: Path, extra: list[Path] | None = None, *, complete: bool = True
) -> None:
    """(Re)write ``manifest.json`` last, listing the folder's files and whether it is whole."""
    files = [*result.files, *(extra or [])]
    manifest = dict(result.manifest)
    manifest[COMPLETE_KEY] = complete
    manifest["files"] = sorted({p.relative_to(out_dir).as_posix() for p in files})
    atomic_write_text(out_dir / "manifest.json", json_text(manifest))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_run_folder(path: Path) -> bool:
    return (path / "manifest.json").is_file() or (path / "summary.json").is_file()


def not_a_folder(path: Path) -> str:
    """``is a file, not a folder`` (or a broken link, or a device...) for an ``--out``."""
    if path.is_symlink() and not path.exists():
        return f"is a broken symbolic link (to {os.readlink(path)}), not a folder"
    if path.is_file():
        return "is a file, not a folder"
    return "is not a folder (a device, a socket or a pipe)"


def prepare_run_dir(out: Path, *, overwrite: bool = False) -> Path:
    """Check ``--out`` before a run starts; create and return the folder the run is written into.

    The run is written into a hidden sibling folder (``.<name>.partial-<pid>-<random>``) that
    :func:`publish_run_dir` renames to ``out`` once every file is written, so a folder at
    ``out`` is always one whole run. Partial folders of killed runs into the same ``out`` are
    removed.

    Args:
        out: The run folder to be.
        overwrite: Replace ``out`` if it already holds a run (``--overwrite``).

    Raises:
        ConfigError: ``out`` is a file, lies under one, already holds files (without
            ``overwrite``; with it, files that are not a run's), or cannot be written.
    """
    out = Path(out)
    where = f"--out {out}"
    for parent in (out, *out.parents):
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                what = not_a_folder(parent)
                what = what if parent == out else f"lies under {parent}, which {what}"
                raise ConfigError(f"{where}: {what}")
            break
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"{where}: already holds files (a previous run?); add --overwrite to replace"
                " them, or choose another folder"
            )
        if not _is_run_folder(out):
            raise ConfigError(
                f"{where}: holds files that are not a perpsim run (no manifest.json or"
                " summary.json); --overwrite replaces run folders only"
            )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot create {out.parent}: {exc.strerror}") from None
    for stale in out.parent.glob(f".{out.name}.partial-*"):
        pid = stale.name.rsplit(".partial-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        staging.mkdir()
        probe = staging / ".probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ConfigError(f"{where}: cannot write in {out.parent}: {exc.strerror}") from None
    return staging


def publish_run_dir(staging: Path, out: Path) -> None:
    """Rename the finished ``staging`` folder to ``out`` (replacing a run there, if any)."""
    out = Path(out)
    old: Path | None = None
    if out.is_dir() and any(out.iterdir()):
        old = out.parent / f".{out.name}.replaced-{os.getpid()}-{secrets.token_hex(4)}"
        os.replace(out, old)
    os.replace(staging, out)  # onto nothing, or onto an empty folder
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def check_run_dir(path: Path) -> str | None:
    """Refuse a run folder that is not whole; warn about one that cannot say.

    Returns:
        A warning for a folder written before run folders recorded completeness (None when
        the folder is whole, or is not a run folder at all: the caller says what it needs).

    Raises:
        ConfigError: the folder is a run that did not finish writing (killed while writing
            its files or drawing its figures), or misses a file its manifest lists.
    """
    p = Path(path)
    manifest_path = p / "manifest.json"
    has_tables = any((p / f"timeseries.{ext}").is_file() for ext in ("parquet", "csv"))
    if not manifest_path.is_file():
        if has_tables or (p / "summary.json").is_file():
            raise ConfigError(
                f"{p}: incomplete run folder: no manifest.json (the run was stopped while"
                " writing its files); run it again"
            )
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{manifest_path}: cannot read the run's manifest: {exc}") from None
    if not isinstance(manifest, dict):
        raise ConfigError(f"{manifest_path}: not a run manifest (a JSON object)")
    if COMPLETE_KEY not in manifest:
        return (
            f"{p}: the manifest does not say whether the run folder is complete (written by an"
            " older perpsim): its files may be from different runs"
        )
    if manifest[COMPLETE_KEY] is not True:
        raise ConfigError(
            f"{p}: incomplete run folder: the run was stopped before it finished writing"
            " (figures or tables are missing); run it again"
        )
    missing = [f for f in manifest.get("files", []) if not (p / str(f)).is_file()]
    if missing:
        raise ConfigError(f"{p}: incomplete run folder: missing {', '.join(missing)}")
    return None


#: The metrics every terminal summary shows (after the scenario's ``output.headline``).
SUMMARY_TABLE_METRICS: tuple[str, ...] = (
    "insurance_fund_initial",
    "insurance_fund_min",
    "insurance_fund_final",
    "insurance_fund_drawdown",
    "social_loss_total",
    "bad_debt",
    "liquidation_count",
    "liquidated_value",
    "liquidation_loss_total",
    "insurance_fund_paid_total",
    "max_unsafe_accounts_before_liquidation",
    "funding_paid_by_longs",
    "funding_paid_by_shorts",
    "lp_return",
    "trader_pnl_p50",
    "trades",
    "rejections_total",
)


@dataclass(frozen=True)
class SummaryRows:
    """The terminal summary of a run, as text: the headline first, then the usual metrics.

    Attributes:
        title: ``NAME · seed N``.
        headline: ``(label, value)`` of the scenario's ``output.headline`` metrics, in order.
        rows: ``(label, value)`` of :data:`SUMMARY_TABLE_METRICS` not in the headline, then
            status, invariants and wall time.
    """

    title: str
    headline: list[tuple[str, str]]
    rows: list[tuple[str, str]]


def summary_rows(result: RunResult) -> SummaryRows:
    """The labelled, unit-formatted rows of ``result``'s terminal summary."""
    summary, manifest = result.summary, result.manifest
    output = (manifest.get("resolved_scenario") or {}).get("output") or {}
    headline = [str(m) for m in output.get("headline") or () if m in summary]

    size = float(output.get("price_impact_size") or DEFAULT_PRICE_IMPACT_SIZE)

    def row(name: str) -> tuple[str, str]:
        return metric_label(name, size), format_metric(name, summary.get(name))

    rows = [row(m) for m in SUMMARY_TABLE_METRICS if m not in headline and m in summary]
    invariants = summary.get("invariants")
    rows += [
        ("status at the end", str(summary.get("status", "—"))),
        ("accounting invariants", "ok" if invariants == "ok" else f"FAILED: {invariants}"),
        ("wall time", f"{float(summary.get('wall_time_s', math.nan)):,.1f} s"),
    ]
    return SummaryRows(
        title=f"{manifest.get('scenario', '?')} · seed {manifest.get('seed', '?')}",
        headline=[row(m) for m in headline],
        rows=rows,
    )


def default_out_dir(scenario_name: str, seed: int, root: Path = Path("outputs")) -> Path:
    """``outputs/<scenario>/<UTC timestamp>-<seed>/``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in scenario_name)
    return root / safe / f"{stamp}-{seed}"
