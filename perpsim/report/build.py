"""``perpsim report DIR``: draw the figures, assemble the report, write HTML and Markdown."""

from __future__ import annotations

from pathlib import Path

from perpsim.errors import ConfigError
from perpsim.io import atomic_write_text
from perpsim.plots import (
    is_run_dir,
    is_sweep_dir,
    load_run,
    plot_run,
    plot_sweep,
    read_sweep_dir,
)
from perpsim.report.analysis import ANALYSIS_SUMMARIES, analysis_kind, analysis_report
from perpsim.report.html import render_html
from perpsim.report.markdown import render_markdown
from perpsim.report.model import Report
from perpsim.report.run import run_report
from perpsim.report.sweep import sweep_report

__all__ = ["build_report", "write_report"]


def build_report(path: Path) -> Report:
    """Draw the figures of a run or sweep folder and assemble its report; read an analysis
    folder's (``perpsim sensitivity``, ``stress``, ``compare``) numbers and figures into one.

    Raises:
        ConfigError: ``path`` is not a run, sweep or analysis folder.
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: no such folder")
    if not p.is_dir():
        raise ConfigError(f"{p}: not a folder (give a run folder or a sweep folder)")
    if is_sweep_dir(p):
        return sweep_report(read_sweep_dir(p), plot_sweep(p))
    if is_run_dir(p):
        return run_report(load_run(p), plot_run(p))
    if analysis_kind(p) is not None:
        return analysis_report(p)
    raise ConfigError(
        f"{p}: neither a run folder (timeseries.parquet, summary.json, manifest.json), a"
        " sweep folder (results.parquet) nor an analysis folder"
        f" ({', '.join(ANALYSIS_SUMMARIES.values())})"
    )


def write_report(path: Path, out: Path | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` (default ``<path>/report.html``; ``<path>/<kind>_report.html`` for
    an analysis folder) and the Markdown next to it.

    Returns:
        The HTML and Markdown paths.

    Raises:
        ConfigError: ``path`` is not a run or sweep folder, or ``out`` is not an .html file.
    """
    kind = analysis_kind(Path(path))
    # An analysis folder keeps its own report.md (the section its command wrote).
    default = f"{kind}_report.html" if kind is not None else "report.html"
    html_path = Path(out) if out is not None else Path(path) / default
    if html_path.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--out {html_path}: the report is HTML; name it *.html")
    report = build_report(Path(path))
    md_path = html_path.with_suffix(".md")
    atomic_write_text(html_path, render_html(report))
    atomic_write_text(md_path, render_markdown(report, md_path))
    return html_path, md_path
