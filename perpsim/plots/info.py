"""What the report shows of a figure: its file, title and caption."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FigureInfo"]


@dataclass(frozen=True)
class FigureInfo:
    """A figure's file name, title and how to read it (shown under it in the report).

    Attributes:
        file: File name inside ``plots/``.
        title: Short title.
        caption: What it shows and how to read it.
    """

    file: str
    title: str
    caption: str
