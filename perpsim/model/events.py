"""The event log: one record per state-changing engine operation, kept as a table.

Every venue emits flat records through its event sink; the model stamps each with its tick and
appends it here. :meth:`EventLog.frame` gives the documented columns (``docs/outputs.md``), which
``perpsim replay RUN_DIR`` reads back to rebuild the ledger.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd

#: Columns of the event log, in order.
EVENT_COLUMNS: tuple[str, ...] = (
    "time",
    "tick",
    "kind",
    "account",
    "counterparty",
    "side",
    "amount",
    "price",
    "fee",
    "pool_fee",
    "dev_fee",
    "counterparty_fee",
    "penalty",
    "penalty_fund",
    "loss",
    "insurance_fund_paid",
    "social_loss",
    "bad_debt",
    "shares",
    "collateral",
    "index_timestamp",
    "key",
    "value",
    "rule",
    "stage",
    "metric_value",
)
_EVENT_TEXT = ("kind", "account", "counterparty", "side", "key", "value", "rule", "stage")
#: Kinds the model logs about the run itself, not engine operations: replay leaves them out.
MODEL_EVENT_KINDS: tuple[str, ...] = ("governance_rule", "halt")


class EventLog:
    """The run's events in the order they happened (records are plain dicts)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def append(self, record: dict[str, Any]) -> None:
        """Add one event record."""
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        """The records of the given kinds, in order."""
        return [e for e in self.records if e["kind"] in kinds]

    def frame(self) -> pd.DataFrame:
        """The log as a DataFrame with :data:`EVENT_COLUMNS` (missing values empty)."""
        return events_frame(self.records)


def events_frame(events: list[dict[str, Any]]) -> pd.DataFrame:
    """The event log as a DataFrame with the documented columns (missing values empty)."""
    df = pd.DataFrame(events, columns=list(EVENT_COLUMNS))
    for col in EVENT_COLUMNS:
        if col in _EVENT_TEXT:
            df[col] = (
                df[col].map(lambda v: None if v is None or v != v else str(v)).astype("string")
            )
        elif col in ("time", "tick", "index_timestamp"):
            df[col] = df[col].astype("Int64")
        else:
            df[col] = df[col].astype("float64")
    df["time"] = pd.to_datetime(df["time"].astype("int64"), unit="s", utc=True)
    return df
