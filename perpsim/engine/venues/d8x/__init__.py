"""D8X: a perpetual AMM priced by its own default probability, with a default fund.

Seed 000 ("Rebalance Logic") with ``spec/d8x.md``:

- :mod:`.formulas` — every formula of the spec as a pure function under its name;
- :mod:`.hook` — the seed's order of what runs around every action, as a table;
- :mod:`.pool` — the pool engine: the AMM margin, AMM fund, LP cash, default fund, traders;
- :mod:`.governance` — the deployed parameter list with its values as defaults;
- :mod:`.venue` — the pool behind the venue contract;
- :mod:`.config` — the scenario's ``venue:`` section for ``kind: d8x``;
- :mod:`.figures` — the design's own figures; :mod:`.replay` — its replay operations.
"""

from __future__ import annotations

from types import MappingProxyType

from perpsim.engine.registry import ReplaySpec, VenueContext, VenueSpec
from perpsim.engine.venues.d8x.config import D8XConfig, D8XPoolConfig
from perpsim.engine.venues.d8x.figures import FIGURES
from perpsim.engine.venues.d8x.formulas import Collateral
from perpsim.engine.venues.d8x.governance import GOVERNANCE_KEYS, D8XGovernance
from perpsim.engine.venues.d8x.hook import HOOKS, Action, Step
from perpsim.engine.venues.d8x.pool import AMM, CollateralPrice, D8XPool
from perpsim.engine.venues.d8x.replay import (
    ACCOUNT_FIELDS,
    OPS,
    POOL_FIELDS,
    QUOTE_FIELDS,
    Replay,
    compare_ledger,
    run_replay_doc,
)
from perpsim.engine.venues.d8x.venue import D8X_COLUMNS, D8XVenue

#: Name of the account that makes the first LP deposit at the start of a run.
CREATOR = "pool_creator"


def build_pool(config: D8XConfig, context: VenueContext) -> D8XPool:
    """A pool as the scenario's section says: AMM fund, default fund, then the creator's LP
    cash (the first shares), each reported to the context's event sink."""
    p = config.pool
    collateral = Collateral(p.collateral)
    pool = D8XPool(
        config.governance,
        collateral,
        context.oracle,
        CollateralPrice(collateral, p.collateral_price, p.collateral_beta),
        context.now,
        context.capacity,
        trader_exposure_ema=p.trader_exposure_ema,
        amm_exposure_ema=p.amm_exposure_ema,
    )
    pool.event_sink = context.event_sink
    pool.fund_amm(p.amm_fund)
    if p.default_fund > 0.0:
        pool.fund_default_fund(p.default_fund)
    if p.lp_cash > 0.0:
        pool.deposit(CREATOR, p.lp_cash)
        pool.add_liquidity(CREATOR, p.lp_cash)
    return pool


def build(config: D8XConfig, context: VenueContext) -> D8XVenue:
    """The venue of :func:`build_pool`."""
    return D8XVenue(build_pool(config, context))


SPEC = VenueSpec(
    kind="d8x",
    title="D8X (AMM priced by its default probability, with a default fund)",
    config_model=D8XConfig,
    build=build,
    columns=D8X_COLUMNS,
    governance_keys=GOVERNANCE_KEYS,
    governance_defaults=MappingProxyType(D8XGovernance().model_dump()),
    replay=ReplaySpec(
        session=Replay,
        run_doc=run_replay_doc,
        compare_ledger=compare_ledger,
        operations=tuple(OPS),
        observations=(*POOL_FIELDS, *QUOTE_FIELDS, *ACCOUNT_FIELDS),
    ),
    figures=FIGURES,
    loss_funds=(
        ("d8x_lp_cash", "LP cash"),
        ("d8x_amm_fund_cash", "AMM fund"),
        ("d8x_default_fund_cash", "default fund"),
    ),
    loss_note=(
        "a bankrupt trader's loss is taken by the AMM's margin, refilled from LP cash and the"
        " AMM fund, then the default fund; no insurance fund and no social loss: beyond the"
        " funds the pool goes to EMERGENCY"
    ),
)

__all__ = [
    "AMM",
    "CREATOR",
    "GOVERNANCE_KEYS",
    "HOOKS",
    "SPEC",
    "Action",
    "Collateral",
    "CollateralPrice",
    "D8XConfig",
    "D8XGovernance",
    "D8XPool",
    "D8XPoolConfig",
    "D8XVenue",
    "Step",
    "build",
    "build_pool",
]
