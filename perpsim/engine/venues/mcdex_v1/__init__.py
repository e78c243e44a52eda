"""MCDEX v1: the perpetual of seed 002 and the AMM pool of seed 004, with ``spec/mcdex-v1.md``.

- :mod:`.perpetual` — margin accounts, trades, liquidation, insurance fund, social loss,
  global settlement;
- :mod:`.amm` — the pool account, share tokens, funding (:mod:`.funding` is its closed form);
- :mod:`.governance` — both governance sets, validated;
- :mod:`.venue` — both behind the venue contract;
- :mod:`.config` — the scenario's ``venue:`` section for ``kind: mcdex_v1``;
- :mod:`.figures` — the design's own figures; :mod:`.replay` — its replay operations.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from perpsim.engine.registry import ReplaySpec, VenueContext, VenueSpec
from perpsim.engine.venues.mcdex_v1.amm import AMMPool, FundingState
from perpsim.engine.venues.mcdex_v1.config import MCDEXV1Config
from perpsim.engine.venues.mcdex_v1.figures import FIGURES
from perpsim.engine.venues.mcdex_v1.governance import (
    AMM_GOVERNANCE_KEYS,
    GOVERNANCE_KEYS,
    PERPETUAL_GOVERNANCE_KEYS,
    AMMGovernance,
    PerpetualGovernance,
)
from perpsim.engine.venues.mcdex_v1.perpetual import (
    ExternalPriceSource,
    Perpetual,
    PriceSource,
    TradeFill,
)
from perpsim.engine.venues.mcdex_v1.replay import (
    ACCOUNT_FIELDS,
    ALL_OPS,
    AMM_FIELDS,
    PERP_FIELDS,
    Replay,
    compare_ledger,
    run_replay_doc,
)
from perpsim.engine.venues.mcdex_v1.venue import MCDEX_V1_COLUMNS, MCDEXVenue

#: Name of the account that creates the pool at the start of a run.
CREATOR = "pool_creator"


def build(config: MCDEXV1Config, context: VenueContext) -> MCDEXVenue:
    """A perpetual and its pool, funded and created as the scenario's section says.

    The dev account is funded first (it pays the update-index prize), then the insurance fund;
    the creator deposits ``pool.creator_cash`` (by default 3 × index × amount: the 2 × index ×
    amount the pool takes, the short's initial margin, and room for a rally) and creates the
    pool at the index readable at the start.
    """
    venue = MCDEXVenue.build(
        config.perpetual_governance,
        config.amm_governance,
        context.oracle,
        capacity=context.capacity,
    )
    perp = venue.perpetual
    perp.event_sink = context.event_sink
    perp.set_time(context.now)
    index, _ = context.oracle.index(context.now)
    if config.dev_balance > 0:
        perp.deposit("dev", float(config.dev_balance))
    if config.insurance_fund > 0:
        perp.deposit_insurance_fund(float(config.insurance_fund))
    amount = float(config.pool.initial_liquidity)
    cash = config.pool.creator_cash
    if cash is None:
        cash = 3.0 * index * amount
    perp.deposit(CREATOR, float(cash))
    venue.pool.create_pool(CREATOR, amount)
    return venue


SPEC = VenueSpec(
    kind="mcdex_v1",
    title="MCDEX v1 (perpetual + AMM pool)",
    config_model=MCDEXV1Config,
    build=build,
    columns=MCDEX_V1_COLUMNS,
    governance_keys=GOVERNANCE_KEYS,
    governance_defaults=MappingProxyType(
        {**dataclasses.asdict(PerpetualGovernance()), **dataclasses.asdict(AMMGovernance())}
    ),
    replay=ReplaySpec(
        session=Replay,
        run_doc=run_replay_doc,
        compare_ledger=compare_ledger,
        operations=tuple(ALL_OPS),
        observations=tuple(dict.fromkeys((*PERP_FIELDS, *AMM_FIELDS, *ACCOUNT_FIELDS))),
    ),
    figures=FIGURES,
    loss_funds=(("insurance_fund", "insurance fund"),),
    loss_note=(
        "a bankrupt trader's loss is paid by the insurance fund; beyond it, it is socialised"
        " to the opposite side's holders (social loss)"
    ),
)

__all__ = [
    "AMM_GOVERNANCE_KEYS",
    "CREATOR",
    "GOVERNANCE_KEYS",
    "PERPETUAL_GOVERNANCE_KEYS",
    "SPEC",
    "AMMGovernance",
    "AMMPool",
    "ExternalPriceSource",
    "FundingState",
    "MCDEXV1Config",
    "MCDEXVenue",
    "Perpetual",
    "PerpetualGovernance",
    "PriceSource",
    "TradeFill",
    "build",
]
