"""Predy's power-perpetual pool: the seed "Power Perpetuals AMM" with ``spec/predy.md``.

Two products on one pool, ``future`` (index S) and ``squared`` (index S² / 10,000):

- :mod:`.formulas` — every formula of the spec as a pure function, under its name;
- :mod:`.pool` — the pool (PerpetualMarketCore), LP tokens and the cross-margin trader vaults;
- :mod:`.venue` — both behind the venue contract, one view per product;
- :mod:`.config` — the parameters (mainnet values) and the scenario's ``venue:`` section;
- :mod:`.figures` — the design's own figures; :mod:`.replay` — its replay operations.
"""

from __future__ import annotations

from types import MappingProxyType

from perpsim.engine.registry import ReplaySpec, VenueContext, VenueSpec
from perpsim.engine.venues.predy.config import GOVERNANCE_KEYS, PredyConfig, PredyParams
from perpsim.engine.venues.predy.figures import FIGURES
from perpsim.engine.venues.predy.formulas import PRODUCTS
from perpsim.engine.venues.predy.pool import POOL, PredyMarket
from perpsim.engine.venues.predy.replay import (
    OBSERVATIONS,
    OPS,
    PredyReplay,
    compare_ledger,
    run_replay_doc,
)
from perpsim.engine.venues.predy.venue import PREDY_COLUMNS, PredyVenue

#: The first LP, who initialises the pool at the start of a run.
CREATOR = "pool_creator"


def build(config: PredyConfig, context: VenueContext) -> PredyVenue:
    """A market whose first LP has initialised the pool with ``pool.initial_liquidity`` at
    ``pool.initial_variance`` (from its vault, funded with that plus ``creator_cash``)."""
    venue = PredyVenue.build(
        config.governance,
        context.oracle,
        funding_formula=config.funding_formula,
        capacity=context.capacity,
    )
    market = venue.market
    market.event_sink = context.event_sink
    market.set_time(context.now)
    amount = float(config.pool.initial_liquidity)
    market.deposit_margin(CREATOR, amount + float(config.creator_cash))
    market.initialize(CREATOR, amount, float(config.pool.initial_variance), from_vault=True)
    return venue


SPEC = VenueSpec(
    kind="predy",
    title="Predy (power perpetuals: future + squared on one pool)",
    config_model=PredyConfig,
    build=build,
    columns=PREDY_COLUMNS,
    governance_keys=GOVERNANCE_KEYS,
    governance_defaults=MappingProxyType(PredyParams().model_dump()),
    replay=ReplaySpec(
        session=PredyReplay,
        run_doc=run_replay_doc,
        compare_ledger=compare_ledger,
        operations=tuple(OPS),
        observations=OBSERVATIONS,
    ),
    figures=FIGURES,
    products=PRODUCTS,
    loss_note=(
        "no insurance fund: an insolvent vault's shortfall falls on the LPs (the pool's equity"
        " pays it; the run's social loss counts it)"
    ),
)

__all__ = [
    "CREATOR",
    "GOVERNANCE_KEYS",
    "POOL",
    "SPEC",
    "PredyConfig",
    "PredyMarket",
    "PredyParams",
    "PredyVenue",
    "build",
]
