"""A self-contained report of a run or a sweep (``perpsim report DIR``).

``report.html`` is one file a governance forum can take as it is: inline CSS, the figures
embedded as base64 PNGs, no scripts, fonts, links or images from elsewhere. It is rendered from
the jinja2 template ``templates/report.html.j2`` (:mod:`.html`); the content is assembled as
data first (:mod:`.run`, :mod:`.sweep`, :mod:`.tables`). Its sections:

1. **Question** — the scenario's (or sweep's) description: what the run asks.
2. **Parameters** — governance in force (scenario value or engine default), market, oracle,
   pool, insurance fund, agent populations; for a sweep, the varied keys and their values.
3. **Headline risk numbers** — a few sentences, then the insurance fund (minimum, drawdown),
   socialised loss, bad debt, VaR95 / CVaR95 / LaR95 and the probability that the insurance fund
   is exhausted (across seeds for a sweep), liquidations, funding, LP and trader outcomes.
4. **Figures** — every figure of ``perpsim plot`` with how to read it.
5. **Notable events** — the largest liquidations, emergency and settlement, scheduled events,
   governance changes, rejected actions; for a sweep, the worst and the failed runs.
6. **Reproduce** — the commands, versions, seed and commit of the manifest, and the resolved
   scenario.

``report.md`` (next to the HTML, same stem) holds the same text as Markdown for pasting
(:mod:`.markdown`); its figures are links to the PNGs in ``plots/``.
"""

from __future__ import annotations

from perpsim.report.build import build_report, write_report
from perpsim.report.html import render_html
from perpsim.report.markdown import render_markdown
from perpsim.report.model import SECTIONS, Report, Table

__all__ = [
    "SECTIONS",
    "Report",
    "Table",
    "build_report",
    "render_html",
    "render_markdown",
    "write_report",
]
