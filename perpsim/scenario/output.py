"""The ``output:`` section: what a run writes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Strict

from perpsim.engine.core.config import FrozenModel, StrictBool

__all__ = ["OutputConfig"]


class OutputConfig(FrozenModel):
    """What a run writes.

    Attributes:
        record_every: Ticks between two rows of the time series.
        format: ``parquet`` or ``csv``.
        keep_events: Whether to write the event log.
    """

    record_every: Annotated[int, Strict(), Field(ge=1)] = 1
    format: Literal["parquet", "csv"] = "parquet"
    keep_events: StrictBool = True
