"""The report as one self-contained HTML page, rendered from ``templates/report.html.j2``.

The template is autoescaped: every string of the :class:`~perpsim.report.model.Report` is text.
The page carries its CSS inline and its figures as base64 PNGs, and has no scripts, fonts,
links or images from elsewhere, so a governance forum can take it as it is.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

import jinja2

from perpsim import __version__
from perpsim.report.model import SECTIONS, Report, Table

__all__ = ["render_html"]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("perpsim.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class _Figure:
    """A figure as the page embeds it."""

    title: str
    caption: str
    png_base64: str


def render_html(report: Report) -> str:
    """The report as one self-contained HTML document (figures embedded as base64 PNGs)."""
    figures = [
        _Figure(info.title, info.caption, base64.b64encode(path.read_bytes()).decode("ascii"))
        for info, path in report.figures
    ]
    manifest = Table("Manifest", ["item", "value"], [[k, v] for k, v in report.manifest])
    return _ENV.get_template("report.html.j2").render(
        report=report,
        sections=SECTIONS,
        figures=figures,
        manifest=manifest,
        version=__version__,
        stamp=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
