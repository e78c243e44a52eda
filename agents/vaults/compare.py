"""Compare the vault families of two runs: what netting saves.

``python -m perpsim.agents.vaults.compare RUN_DIR_A RUN_DIR_B`` reads each run's
``vaults.parquet`` and prints, per vault and for the family, the PnL (final TVL + withdrawals −
deposits), its return on the first TVL, every cost (mint/burn fees, trading fees, price impact
against spot, off-venue carry, funding) and the peak delta off target, side by side with the
difference B − A. Run it on ``glp_vaults_2022`` and ``glp_vaults_2022_no_netting`` with the
same seed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

__all__ = ["COST_COLUMNS", "compare", "main", "vault_totals"]

#: Rows of the first day are left out of the peak deltas (the set-up's hedges are still being
#: built when ``max_trade`` splits them).
SETUP_SECONDS = 86_400

#: The cost columns of ``vaults.parquet`` (cumulative USD; funding > 0 is paid).
COST_COLUMNS: tuple[str, ...] = (
    "fees_mint_burn",
    "fees_trading",
    "trading_impact",
    "fees_off_venue",
    "funding_paid",
)


def vault_totals(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per vault (and the family): PnL, return, costs, peak |delta| per asset.

    The return of a vault is its share price's (time-weighted); the family's is its PnL over
    its first TVL.

    Args:
        frame: A run's ``vaults`` table.
    """
    deltas = [c for c in frame.columns if c.startswith("delta_")]
    rows = []
    for vault, rows_v in frame.groupby("vault", sort=False):
        first, last = rows_v.iloc[0], rows_v.iloc[-1]
        pnl = float(last["tvl"] + last["withdrawals"] - last["deposits"])
        row: dict[str, object] = {"vault": vault, "tvl_end": float(last["tvl"]), "pnl": pnl}
        # Time-weighted: the share price's change since the deposits of the start (one share per
        # USD, so it starts at 1); flows buy and sell shares at its price.
        row["return"] = (
            float(last["share_price"]) - 1.0 if vault != "family" else pnl / float(first["tvl"])
        )
        for c in COST_COLUMNS:
            row[c] = float(last[c])
        row["total_cost"] = float(sum(float(last[c]) for c in COST_COLUMNS))
        # After the set-up day: the first hedges are built over a few trades (max_trade).
        start = frame["time"].min()
        cutoff = (
            start + pd.Timedelta(seconds=SETUP_SECONDS)
            if isinstance(start, pd.Timestamp)
            else start + SETUP_SECONDS
        )
        settled = frame[frame["time"] >= cutoff]
        if vault == "family":
            # The family's deltas are its vaults' (its own rows carry none).
            members = settled[settled["vault"] != "family"]
        else:
            members = settled[settled["vault"] == vault]
        for c in deltas:
            row[f"peak_abs_{c}"] = float(members[c].abs().max())
        rows.append(row)
    return pd.DataFrame(rows).set_index("vault")


def compare(a: Path, b: Path) -> pd.DataFrame:
    """The totals of run folders ``a`` and ``b`` and their difference (b − a), long format."""
    ta = vault_totals(pd.read_parquet(Path(a) / "vaults.parquet"))
    tb = vault_totals(pd.read_parquet(Path(b) / "vaults.parquet"))
    out = pd.concat({"a": ta.stack(), "b": tb.stack()}, axis=1)
    out["b - a"] = out["b"] - out["a"]
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the comparison of two run folders; exit 2 on bad input."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m perpsim.agents.vaults.compare RUN_DIR_A RUN_DIR_B", file=sys.stderr)
        return 2
    for arg in args:
        if not (Path(arg) / "vaults.parquet").is_file():
            print(f"{arg}: no vaults.parquet (not a run with a glp_vault_family)", file=sys.stderr)
            return 2
    table = compare(Path(args[0]), Path(args[1]))
    with pd.option_context("display.float_format", "{:,.4f}".format, "display.max_rows", 500):
        print(f"a = {args[0]}\nb = {args[1]}")
        print(table.to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
