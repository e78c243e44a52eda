"""The report's GLP vault table: per vault and for the family, from ``vaults.parquet``."""

from __future__ import annotations

from perpsim.agents.vaults.compare import vault_totals
from perpsim.plots.format import fmt_usd
from perpsim.plots.run.vaults import read_vaults
from perpsim.plots.rundata import RunData
from perpsim.report.model import Table
from perpsim.report.text import pct

__all__ = ["vault_tables"]


def vault_tables(run: RunData) -> list[Table]:
    """One table of the run's vault family (none when the run has no ``glp_vault_family``)."""
    frame = read_vaults(run)
    if frame is None or frame.empty:
        return []
    totals = vault_totals(frame)
    deltas = [c for c in totals.columns if c.startswith("peak_abs_delta_")]
    family = frame[frame["vault"] == "family"]
    rows = []
    for vault, t in totals.iterrows():
        peak = max((float(t[c]) for c in deltas), default=0.0)
        rows.append(
            [
                str(vault),
                fmt_usd(t["tvl_end"]),
                pct(t["return"]),
                fmt_usd(t["fees_mint_burn"]),
                fmt_usd(t["fees_trading"] + t["trading_impact"]),
                fmt_usd(t["fees_off_venue"]),
                fmt_usd(t["funding_paid"]),
                fmt_usd(t["total_cost"]),
                pct(peak),
            ]
        )
    note = (
        "Return: the vault's share price (the family's: PnL over its first TVL). Costs are"
        " cumulative USD; venue = the venue's fees plus price impact against spot; funding < 0"
        " was received. Peak delta: the largest |delta off target| of any asset after the first"
        f" day, as a fraction of TVL. The family's net perpetual position peaked at"
        f" {float(family['net_perp_position'].abs().max()):,.1f} contracts,"
        f" {float(family['oi_share'].max()):.1%} of open interest. Details: vaults.parquet,"
        " docs/vaults.md."
    )
    header = [
        "vault",
        "TVL at the end",
        "return",
        "mint/burn",
        "venue",
        "off-venue",
        "funding",
        "total cost",
        "peak delta",
    ]
    return [Table("GLP vaults", header, rows, note=note, numeric=set(range(1, 9)))]
