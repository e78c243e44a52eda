"""What runs around every action of the D8X pool: seed 000, as data.

The seed ("Rebalance Logic") is the order of what runs before and after each kind of action;
here it is one table, :data:`HOOKS`, which the pool's runners (``D8XPool._run``,
``D8XPool._run_trade_like``) walk step by step and which nothing else orders, so the order is
visible in one place and a test can observe it (``D8XPool.hook_listener``).

- Before every trade, liquidation, trader deposit or withdrawal and LP deposit or withdrawal
  (seed step 1, ``updateFundingAndPricesBefore``): accrue funding, update the oracle, and
  rebalance if the index (or S3) moved more than the threshold.
- The action itself (seed step 3: book the trade, or "do deposit stuff").
- After a trade or liquidation (seed steps 4–6): update the AMM fund target (stress or
  baseline), distribute fees, rebalance.
- After an LP deposit or withdrawal (seed step 4): rebalance.
- Last, for every action, the deployed contracts' ``updateFundingAndPricesAfter``: the funding
  rate is recomputed from the premium EMA the action left; after a trade or liquidation the
  default fund target is recomputed when its interval has passed (``updateDefaultFundTargetSize``
  at the end of ``_trade``). Neither is in the seed; both come after its steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["HOOKS", "Action", "Hook", "Step"]


class Action(StrEnum):
    """The kinds of action the seed lists (and the keeper's index update)."""

    TRADE = "trade"
    LIQUIDATE = "liquidate"
    TRADER_DEPOSIT = "trader_deposit"
    TRADER_WITHDRAW = "trader_withdraw"
    LP_DEPOSIT = "lp_deposit"
    LP_WITHDRAW = "lp_withdraw"
    UPDATE = "update"


class Step(StrEnum):
    """One step of a hook (the names the trace reports)."""

    ACCRUE_FUNDING = "accrue_funding"
    UPDATE_ORACLE = "update_oracle"
    REBALANCE_ON_PRICE_MOVE = "rebalance_on_price_move"
    ACTION = "action"
    UPDATE_AMM_FUND_TARGET = "update_amm_fund_target"
    DISTRIBUTE_FEES = "distribute_fees"
    REBALANCE = "rebalance"
    UPDATE_FUNDING_RATE = "update_funding_rate"
    UPDATE_DEFAULT_FUND_TARGET = "update_default_fund_target"


@dataclass(frozen=True)
class Hook:
    """The steps before and after one kind of action, in order."""

    before: tuple[Step, ...]
    after: tuple[Step, ...]


#: Seed step 1 of every action.
BEFORE: tuple[Step, ...] = (
    Step.ACCRUE_FUNDING,
    Step.UPDATE_ORACLE,
    Step.REBALANCE_ON_PRICE_MOVE,
)
#: Seed steps 4–6 of a trade and a liquidation, then the contracts' after-steps.
AFTER_TRADE: tuple[Step, ...] = (
    Step.UPDATE_AMM_FUND_TARGET,
    Step.DISTRIBUTE_FEES,
    Step.REBALANCE,
    Step.UPDATE_FUNDING_RATE,
    Step.UPDATE_DEFAULT_FUND_TARGET,
)

#: The seed, as a table: each action's hook.
HOOKS: dict[Action, Hook] = {
    Action.TRADE: Hook(BEFORE, AFTER_TRADE),
    Action.LIQUIDATE: Hook(BEFORE, AFTER_TRADE),
    Action.TRADER_DEPOSIT: Hook(BEFORE, (Step.UPDATE_FUNDING_RATE,)),
    Action.TRADER_WITHDRAW: Hook(BEFORE, (Step.UPDATE_FUNDING_RATE,)),
    Action.LP_DEPOSIT: Hook(BEFORE, (Step.REBALANCE, Step.UPDATE_FUNDING_RATE)),
    Action.LP_WITHDRAW: Hook(BEFORE, (Step.REBALANCE, Step.UPDATE_FUNDING_RATE)),
    Action.UPDATE: Hook(BEFORE, (Step.UPDATE_FUNDING_RATE,)),
}
