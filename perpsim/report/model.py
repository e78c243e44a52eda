"""The report as data, independent of its format: sections, tables, figures, provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from perpsim.plots import (
    FigureInfo,
)

__all__ = ["SECTIONS", "Report", "Table"]


#: The sections of every report: (anchor, heading).
SECTIONS: Final = (
    ("question", "Question"),
    ("parameters", "Parameters"),
    ("headline", "Headline risk numbers"),
    ("figures", "Figures"),
    ("events", "Notable events"),
    ("reproduce", "Reproduce"),
)


@dataclass
class Table:
    """A table of text cells.

    Attributes:
        title: Heading above the table.
        header: Column names.
        rows: Cells, already formatted.
        note: A sentence under the table.
        numeric: Indexes of right-aligned columns.
        emphasise: Indexes of rows to highlight (e.g. the worst point).
    """

    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""
    numeric: set[int] = field(default_factory=set)
    emphasise: set[int] = field(default_factory=set)


@dataclass
class Report:
    """The content of a report, independent of its format.

    Attributes:
        title: Main heading.
        subtitle: One line under it (folder, seed, dates).
        question: Paragraphs of the question.
        parameters: Parameter tables.
        findings: Headline sentences.
        headline: Headline tables.
        figures: (info, PNG path) of every figure.
        events: Notable-event tables.
        event_notes: Sentences of the notable-events section.
        commands: (what, command) pairs to reproduce.
        manifest: Versions, seed, commit and other provenance as (name, value) pairs.
        manifest_json: The manifest as JSON text (without the resolved scenario).
        resolved: The resolved scenario (or sweep file) as YAML text, if known.
        warnings: Caveats shown at the top (failed runs, dirty checkout, ...).
    """

    title: str
    subtitle: str
    question: list[str]
    parameters: list[Table]
    findings: list[str]
    headline: list[Table]
    figures: list[tuple[FigureInfo, Path]]
    events: list[Table]
    event_notes: list[str]
    commands: list[tuple[str, str]]
    manifest: list[tuple[str, str]]
    manifest_json: str
    resolved: str | None = None
    warnings: list[str] = field(default_factory=list)
