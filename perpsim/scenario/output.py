"""The ``output:`` section: what a run writes, and which metrics its summary puts first."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, Strict, field_validator

from perpsim.engine.core.config import FrozenModel, StrictBool, unknown_name_message
from perpsim.metrics import DEFAULT_PRICE_IMPACT_SIZE, METRICS

__all__ = ["OutputConfig"]


def _known_metric(name: str) -> str:
    if name not in METRICS:
        raise ValueError(
            unknown_name_message("summary metric", name, list(METRICS))
            + "; valid: "
            + ", ".join(METRICS)
        )
    return name


class OutputConfig(FrozenModel):
    """What a run writes.

    Attributes:
        record_every: Ticks between two rows of the time series.
        format: ``parquet`` or ``csv``.
        keep_events: Whether to write the event log.
        headline: The summary metrics that answer the scenario's question, in order: the
            terminal summary and the report show them first (names of
            :data:`perpsim.metrics.METRICS`).
        price_impact_size: The buy (contracts) whose price impact the time series records at
            each row (``price_impact``) and the summary follows (``price_impact_*``).
    """

    record_every: Annotated[int, Strict(), Field(ge=1)] = 1
    format: Literal["parquet", "csv"] = "parquet"
    keep_events: StrictBool = True
    headline: tuple[Annotated[str, AfterValidator(_known_metric)], ...] = ()
    price_impact_size: Annotated[float, Field(gt=0.0, le=1e12)] = DEFAULT_PRICE_IMPACT_SIZE

    @field_validator("headline")
    @classmethod
    def _listed_once(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"lists {', '.join(map(repr, twice))} more than once")
        return names
