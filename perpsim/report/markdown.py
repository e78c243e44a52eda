"""The report as Markdown for pasting; figures are relative links to the PNGs."""

from __future__ import annotations

import os
from pathlib import Path

from perpsim.report.model import Report, Table

__all__ = ["render_markdown"]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(t: Table) -> list[str]:
    out = [f"### {t.title}", ""] if t.title else []
    if t.rows:
        out.append("| " + " | ".join(_md_cell(c) for c in t.header) + " |")
        out.append(
            "|" + "|".join("---:" if j in t.numeric else "---" for j in range(len(t.header))) + "|"
        )
        for i, row in enumerate(t.rows):
            cells = [_md_cell(c) for c in row]
            if i in t.emphasise:
                cells = [f"**{c}**" if c else c for c in cells]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    if t.note:
        out += [f"_{t.note}_", ""]
    return out


def render_markdown(report: Report, md_path: Path | None = None) -> str:
    """The report as Markdown; figures are links relative to ``md_path``'s folder."""
    lines = [f"# {report.title}", "", f"_{report.subtitle}_", ""]
    lines += [f"> **Note:** {w}" for w in report.warnings]
    if report.warnings:
        lines.append("")
    lines += ["## 1. Question", ""]
    for p in report.question:
        lines += [p, ""]
    lines += ["## 2. Parameters", ""]
    for t in report.parameters:
        lines += _md_table(t)
    lines += ["## 3. Headline risk numbers", ""]
    lines += [f"- {f}" for f in report.findings]
    lines.append("")
    for t in report.headline:
        lines += _md_table(t)
    lines += ["## 4. Figures", ""]
    base = md_path.parent if md_path is not None else None
    for i, (info, path) in enumerate(report.figures, start=1):
        rel = os.path.relpath(path, base) if base is not None else str(path)
        lines += [
            f"**Figure {i}. {info.title}.** {info.caption}",
            "",
            f"![{info.title}]({Path(rel).as_posix()})",
            "",
        ]
    lines += ["## 5. Notable events", ""]
    for n in report.event_notes:
        lines += [n, ""]
    for t in report.events:
        lines += _md_table(t)
    lines += ["## 6. Reproduce", ""]
    for what, cmd in report.commands:
        lines += [f"{what}:", "", "```", cmd, "```", ""]
    lines += _md_table(Table("Manifest", ["item", "value"], [[k, v] for k, v in report.manifest]))
    if report.resolved:
        lines += [
            "<details><summary>Resolved scenario / sweep specification (YAML)</summary>",
            "",
            "```yaml",
            report.resolved.rstrip(),
            "```",
            "",
            "</details>",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"
