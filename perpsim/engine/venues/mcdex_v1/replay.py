"""MCDEX v1 replay: the operations of the perpetual and the AMM on named accounts.

A replay file's ``ops`` are run on a fresh perpetual (``venue: perpetual``, with a settable mark
price) or perpetual + pool (``venue: amm``, with a settable index); ``observe`` reads any stored or
computed value. :func:`events_to_ops` turns a run's event log into the same operations, and
:func:`compare_ledger` checks a replayed ledger against the run's final accounts. See
``docs/replay.md`` for every operation and observation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

import pandas as pd

from perpsim.engine.core.index import SettableOracle
from perpsim.engine.core.replay import ReplayRunner, Value, check_ops, check_top_level
from perpsim.engine.venue import AccountView
from perpsim.engine.venues.mcdex_v1.amm import AMMPool
from perpsim.engine.venues.mcdex_v1.governance import (
    AMM_GOVERNANCE_KEYS,
    GOVERNANCE_KEYS,
    AMMGovernance,
    PerpetualGovernance,
    split_governance,
)
from perpsim.engine.venues.mcdex_v1.perpetual import ExternalPriceSource, Perpetual
from perpsim.errors import ConfigError, GovernanceError, InvalidOperationError

# op name -> (required args, optional args)
PERPETUAL_OPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "deposit": (("account", "amount"), ()),
    "withdraw": (("account", "amount"), ()),
    "trade": (("taker", "maker", "side", "price", "amount"), ()),
    "liquidate": (("liquidator", "trader", "max_amount"), ()),
    "remargin": (("account",), ()),
    "set_mark_price": (("price",), ()),
    "set_accumulated_funding": (("value",), ()),
    "set_time": (("time",), ()),
    "set_governance": (("key", "value"), ()),
    "begin_global_settlement": (("price",), ()),
    "global_settled": ((), ()),
    "settle": (("account",), ()),
    "deposit_insurance_fund": (("amount",), ()),
    "increase_cash_balance": (("account", "amount"), ()),
    "decrease_cash_balance": (("account", "amount"), ()),
    "set_social_loss_per_contract": (("side", "value"), ("setup",)),
    "open_position": (("account", "side", "price", "amount"), ()),
    "observe": (("names",), ("expect", "rel_tol", "abs_tol")),
    "check_invariants": ((), ()),
}
AMM_OPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "set_index": (("price",), ("timestamp",)),
    "create_pool": (("account", "amount"), ()),
    "buy": (("account", "amount"), ("limit_price", "deadline")),
    "sell": (("account", "amount"), ("limit_price", "deadline")),
    "add_liquidity": (("account", "amount"), ()),
    "remove_liquidity": (("account", "shares"), ()),
    "transfer_shares": (("from", "to", "shares"), ()),
    "update_index": (("caller",), ()),
    "settle_share": (("account", "shares"), ()),
}
ALL_OPS = {**PERPETUAL_OPS, **AMM_OPS}

PERP_FIELDS = (
    "status",
    "mark_price",
    "insurance_fund",
    "total_size_long",
    "total_size_short",
    "social_loss_per_contract_long",
    "social_loss_per_contract_short",
    "accumulated_funding_per_contract",
    "settlement_price",
    "bad_debt",
    "time",
)
AMM_FIELDS = (
    "index_price",
    "index_timestamp",
    "last_index_price",
    "fair_price",
    "mark_price",
    "last_premium",
    "last_ema_premium",
    "premium_rate",
    "funding_rate",
    "accumulated_funding_per_contract",
    "available_margin",
    "position_size",
    "total_supply",
    "last_funding_time",
    "share_price",
    "premium",
)
ACCOUNT_FIELDS = (*AccountView.__dataclass_fields__.keys(), "share_balance")
#: Account fields the contract stores: observable at any time, before any mark price exists.
STORED_FIELDS = (
    "cash_balance",
    "position_side",
    "position_size",
    "entry_value",
    "entry_social_loss",
    "entry_funding_loss",
)
#: The AMM governance key of the contracts' EMERGENCY setter of accumulated funding.
ACCUMULATED_FUNDING_KEY = "accumulated_funding_per_contract"


class Replay(ReplayRunner):
    """Runs replay operations against a fresh perpetual (and pool, when the file uses one).

    Args:
        doc: the parsed file: ``ops`` (list), optional ``governance`` (flat mapping of
            governance keys), ``venue`` (``perpetual`` or ``amm``; inferred from the ops if
            omitted), ``check_invariants`` (bool: check the accounting after every op).
        source: a name for messages (the file path).

    Raises:
        ConfigError: the document is malformed; every problem is listed.
    """

    def __init__(self, doc: Mapping[str, Any], source: str = "<replay>") -> None:
        self.source = source
        problems = check_top_level(doc)
        self.ops, op_problems = check_ops(doc, ALL_OPS, _extra_op_problems)
        problems += op_problems
        uses_amm = any(op.get("op") in AMM_OPS for op in self.ops)
        venue = doc.get("venue")
        if venue is None:
            venue = "amm" if uses_amm else "perpetual"
        elif venue not in ("perpetual", "amm"):
            problems.append(f"venue: must be 'perpetual' or 'amm', got {venue!r}")
        elif venue == "perpetual" and uses_amm:
            problems.append("venue: 'perpetual' has no AMM pool, but the ops use AMM operations")
        self.venue = str(venue)
        self.report_venue = self.venue
        gov = doc.get("governance") or {}
        perp_gov = PerpetualGovernance()
        amm_gov = AMMGovernance()
        if not isinstance(gov, dict):
            problems.append("governance: must be a mapping of governance keys to values")
        else:
            try:
                perp_part, amm_part = split_governance(gov)
                perp_gov = PerpetualGovernance(**perp_part)
                amm_gov = AMMGovernance(**amm_part)
            except GovernanceError as exc:
                problems.append(f"governance: {exc}")
        self.check_each = bool(doc.get("check_invariants", False))
        if problems:
            raise ConfigError("\n".join(f"{source}: {p}" for p in problems))
        self.perp = Perpetual(perp_gov)
        self.pool: AMMPool | None = None
        self.oracle = SettableOracle()
        self.external: ExternalPriceSource | None = None
        if self.venue == "amm":
            self.pool = AMMPool(self.perp, amm_gov, self.oracle)
        else:
            self.external = ExternalPriceSource()
            self.perp.price_source = self.external

    # ----------------------------------------------------------------------------------------

    def _snapshot(self) -> tuple[Any, ...]:
        p = self.perp
        arrays = tuple(v.tobytes() for v in p.accounts.snapshot().values())
        scalars = (
            p.status,
            p.settlement_price,
            p.social_loss_per_contract_long,
            p.social_loss_per_contract_short,
            p.insurance_fund,
            p.bad_debt,
            p.total_size_long,
            p.total_size_short,
            p.now,
            p.governance,
            p.total_deposits,
            p.total_withdrawals,
            tuple(p.accounts.names),
        )
        pool: tuple[Any, ...] = ()
        if self.pool is not None:
            pool = (
                self.pool.funding_state,
                self.pool.total_supply,
                tuple(sorted(self.pool.share_balances.items())),
                self.pool.created,
                self.pool.dead,
                self.pool.governance,
            )
        return arrays, scalars, pool

    def _invariant_problems(self, required: bool) -> list[str]:
        return self.perp.check_invariants(raise_on_violation=False)

    def _set_time(self, t: Any) -> None:
        self.perp.set_time(t)

    def _need_pool(self, name: str) -> AMMPool:
        # The constructor refuses AMM ops without a pool, so this only guards the type.
        assert self.pool is not None, name
        return self.pool

    def _dispatch(self, name: str, op: dict[str, Any]) -> Any:
        p = self.perp
        handlers: dict[str, Callable[[], Any]] = {
            "deposit": lambda: p.deposit(op["account"], op["amount"]),
            "withdraw": lambda: p.withdraw(op["account"], op["amount"]),
            "trade": lambda: asdict(
                p.trade(op["taker"], op["maker"], op["side"], op["price"], op["amount"])
            ),
            "liquidate": lambda: asdict(
                p.liquidate(op["liquidator"], op["trader"], op["max_amount"])
            ),
            "remargin": lambda: p.remargin(op["account"]),
            "set_mark_price": lambda: self._set_mark_price(op["price"]),
            "set_accumulated_funding": lambda: self._set_acc(op["value"]),
            "set_time": lambda: self._set_time(op["time"]),
            "set_governance": lambda: self._set_governance(op["key"], op["value"]),
            "begin_global_settlement": lambda: p.begin_global_settlement(op["price"]),
            "global_settled": p.global_settled,
            "settle": lambda: p.settle(op["account"]),
            "deposit_insurance_fund": lambda: p.deposit_insurance_fund(op["amount"]),
            "increase_cash_balance": lambda: p.increase_cash_balance(op["account"], op["amount"]),
            "decrease_cash_balance": lambda: p.decrease_cash_balance(op["account"], op["amount"]),
            # The admin setter checks EMERGENCY as the contract does; ``setup: true`` lifts the
            # check to reproduce a known state.
            "set_social_loss_per_contract": lambda: p.set_social_loss_per_contract(
                op["side"], op["value"], setup=bool(op.get("setup", False))
            ),
            "open_position": lambda: p.open_position(
                op["account"], op["side"], op["price"], op["amount"]
            ),
        }
        if name in handlers:
            return handlers[name]()
        pool = self._need_pool(name)
        amm_handlers: dict[str, Callable[[], Any]] = {
            "set_index": lambda: self.oracle.set(op["price"], op.get("timestamp", p.now)),
            "create_pool": lambda: pool.create_pool(op["account"], op["amount"]),
            "buy": lambda: pool.buy(
                op["account"], op["amount"], op.get("limit_price"), op.get("deadline")
            ),
            "sell": lambda: pool.sell(
                op["account"], op["amount"], op.get("limit_price"), op.get("deadline")
            ),
            "add_liquidity": lambda: pool.add_liquidity(op["account"], op["amount"]),
            "remove_liquidity": lambda: pool.remove_liquidity(op["account"], op["shares"]),
            "transfer_shares": lambda: pool.transfer_shares(op["from"], op["to"], op["shares"]),
            "update_index": lambda: pool.update_index(op["caller"]),
            "settle_share": lambda: pool.settle_share(op["account"], op["shares"]),
        }
        return amm_handlers[name]()

    def _set_mark_price(self, price: Any) -> None:
        if self.external is None:
            raise InvalidOperationError(
                "set_mark_price: the mark price comes from the AMM pool in this replay"
            )
        self.external.set_mark_price(price)

    def _set_acc(self, value: Any) -> None:
        if self.external is None:
            # With a pool, funding is the pool's: only the admin's EMERGENCY setter changes it.
            self.perp.set_accumulated_funding_per_contract(value)
            return
        self.external.set_accumulated_funding(value)

    def _set_governance(self, key: str, value: Any) -> None:
        if key == ACCUMULATED_FUNDING_KEY:
            # The contracts' AMM governance key accumulatedFundingPerContract (EMERGENCY only).
            self._set_acc(value)
        elif key in AMM_GOVERNANCE_KEYS:
            pool = self.pool
            if pool is None:
                # A perpetual-only replay has no pool; still validate the value.
                AMMGovernance().with_changes(**{key: value})
                return
            pool.change_governance(key, value)
        elif key in GOVERNANCE_KEYS:
            self.perp.set_governance(key, value)
        else:
            raise GovernanceError(f"unknown governance key {key!r}; allowed: {GOVERNANCE_KEYS}")

    # ----------------------------------------------------------------------------------------
    # Observation

    def value(self, name: str) -> Value:
        """The value of one observation name (see the module docs for the names).

        Raises:
            KeyError: unknown name.
            EngineError: the value does not exist now (e.g. no mark price yet).
        """
        target, _, fld = name.partition(".")
        if not fld:
            raise KeyError(f"observation {name!r} must look like <account|perp|amm>.<field>")
        price: float | None = None
        if "@" in fld:
            fld, _, ptxt = fld.partition("@")
            try:
                price = float(ptxt)
            except ValueError:
                raise KeyError(f"bad price in {name!r}") from None
        if target == "perp" and price is None:
            return self._perp_value(fld)
        if target == "amm" and price is None:
            return self._amm_value(fld)
        if fld not in ACCOUNT_FIELDS:
            raise KeyError(f"unknown account field {fld!r} in {name!r}; allowed: {ACCOUNT_FIELDS}")
        if fld == "share_balance":
            return self.pool.share_balance(target) if self.pool is not None else 0.0
        # Every address has an account (an untouched one is empty), as in the contract.
        if fld in STORED_FIELDS:
            st = self.perp.state(target)
            stored: Value = getattr(st, fld)
            return st.position_side.name.lower() if fld == "position_side" else stored
        view = self.perp.view(target, price)
        v: Value = getattr(view, fld)
        return v

    def _perp_value(self, fld: str) -> Value:
        p = self.perp
        if fld not in PERP_FIELDS:
            raise KeyError(f"unknown perp field {fld!r}; allowed: {PERP_FIELDS}")
        if fld == "status":
            return p.status.value
        if fld == "time":
            return p.now
        if fld == "mark_price":
            return p.mark_price
        if fld == "accumulated_funding_per_contract":
            return p.accumulated_funding_per_contract
        v: Value = getattr(p, fld)
        return v

    def _amm_value(self, fld: str) -> Value:
        if fld not in AMM_FIELDS:
            raise KeyError(f"unknown amm field {fld!r}; allowed: {AMM_FIELDS}")
        pool = self.pool
        if pool is None:
            raise KeyError("this replay has no AMM pool (use an AMM op such as set_index)")
        fs = pool.current_funding_state()
        simple: dict[str, Callable[[], Value]] = {
            "index_price": pool.index_price,
            "index_timestamp": pool.index_timestamp,
            "last_index_price": lambda: fs.last_index_price,
            "fair_price": pool.fair_price,
            "mark_price": pool.mark_price,
            "last_premium": lambda: fs.last_premium,
            "last_ema_premium": lambda: fs.last_ema_premium,
            "premium_rate": pool.premium_rate,
            "funding_rate": pool.funding_rate,
            "accumulated_funding_per_contract": lambda: fs.accumulated_funding_per_contract,
            "available_margin": pool.available_margin,
            "position_size": pool.position_size,
            "total_supply": lambda: pool.total_supply,
            "last_funding_time": lambda: fs.last_funding_time,
            "share_price": pool.share_price,
            "premium": pool.premium,
        }
        return simple[fld]()


#: Account fields compared between a run's final ledger and its replay.
LEDGER_FIELDS = (
    "cash_balance",
    "position_size",
    "entry_value",
    "entry_social_loss",
    "entry_funding_loss",
)


_ACCOUNT_AMOUNT_OPS = (
    "deposit",
    "withdraw",
    "create_pool",
    "buy",
    "sell",
    "add_liquidity",
    "increase_cash_balance",
    "decrease_cash_balance",
)


def _extra_op_problems(i: int, op: dict[str, Any]) -> list[str]:
    if "setup" in op and not isinstance(op["setup"], bool):
        return [f"ops[{i}] ({op['op']}): setup must be true or false"]
    return []


def governance_value(text: str) -> float | str:
    """A governance value as the event log holds it (text): a number, or a name such as
    ``opposite`` for ``social_loss_side``."""
    try:
        return float(text)
    except ValueError:
        return text


def _num(v: Any) -> float:
    return float(v)


def events_to_ops(events: Any) -> list[dict[str, Any]]:
    """Turn a run's event log (``events.parquet`` as a DataFrame) into replay operations.

    Every state-changing engine operation of the run becomes the same operation at the same
    time; the oracle's readable index becomes ``set_index`` with its timestamp. Replaying
    them on a fresh exchange with the run's governance rebuilds the run's ledger.
    """
    ops: list[dict[str, Any]] = []
    for rec in events.to_dict("records"):
        kind = rec["kind"]
        t = int(rec["time"].timestamp()) if hasattr(rec["time"], "timestamp") else int(rec["time"])
        op: dict[str, Any] | None
        acct, cp = rec.get("account"), rec.get("counterparty")
        if kind == "index":
            op = {
                "op": "set_index",
                "price": _num(rec["price"]),
                "timestamp": int(rec["index_timestamp"]),
            }
        elif kind in _ACCOUNT_AMOUNT_OPS:
            op = {"op": kind, "account": acct, "amount": _num(rec["amount"])}
        elif kind == "deposit_insurance_fund":
            op = {"op": kind, "amount": _num(rec["amount"])}
        elif kind == "trade":
            op = {
                "op": "trade",
                "taker": acct,
                "maker": cp,
                "side": rec["side"],
                "price": _num(rec["price"]),
                "amount": _num(rec["amount"]),
            }
        elif kind == "liquidate":
            op = {
                "op": "liquidate",
                "liquidator": cp,
                "trader": acct,
                "max_amount": _num(rec["amount"]),
            }
        elif kind == "remove_liquidity":
            op = {"op": kind, "account": acct, "shares": _num(rec["shares"])}
        elif kind == "transfer_shares":
            op = {"op": kind, "from": acct, "to": cp, "shares": _num(rec["shares"])}
        elif kind == "update_index":
            op = {"op": kind, "caller": acct}
        elif kind == "set_governance":
            op = {"op": kind, "key": rec["key"], "value": governance_value(str(rec["value"]))}
        elif kind == "begin_global_settlement":
            op = {"op": kind, "price": _num(rec["price"])}
        elif kind == "global_settled":
            op = {"op": kind}
        elif kind in ("settle", "remargin"):
            op = {"op": kind, "account": acct}
        elif kind == "settle_share":
            op = {"op": kind, "account": acct, "shares": _num(rec["shares"])}
        elif kind == "set_social_loss_per_contract":
            op = {"op": kind, "side": rec["side"], "value": _num(rec["price"])}
        elif kind == "set_accumulated_funding_per_contract":
            op = {"op": "set_accumulated_funding", "value": _num(rec["price"])}
        else:
            raise ConfigError(f"event log: cannot replay an event of kind {kind!r}")
        op["at_time"] = t
        ops.append(op)
    return ops


def run_replay_doc(venue_section: Mapping[str, Any], events: pd.DataFrame) -> dict[str, Any]:
    """The replay document (governance + ops) that rebuilds a run's ledger.

    Args:
        venue_section: the run's resolved ``venue:`` section (from its manifest).
        events: the run's event log.
    """
    return {
        "venue": "amm",
        "governance": dict(venue_section.get("governance") or {}),
        "ops": events_to_ops(events),
    }


def compare_ledger(replay: Replay, accounts: pd.DataFrame) -> dict[str, Any]:
    """Compare a replayed ledger with a run's final accounts.

    Returns:
        ``accounts`` compared, ``mismatches`` (account, field, run value, replayed value),
        ``max_abs_diff``, and the replayed funds and social loss per contract.
    """
    perp = replay.perp
    mismatches: list[dict[str, Any]] = []
    max_diff = 0.0
    for rec in accounts.to_dict("records"):
        name = rec["account"]
        if name not in perp.accounts:
            mismatches.append({"account": name, "field": "*", "run": "exists", "replay": None})
            continue
        st = perp.state(name)
        for fld in LEDGER_FIELDS:
            a, b = float(rec[fld]), float(getattr(st, fld))
            diff = abs(a - b)
            max_diff = max(max_diff, diff)
            if diff > 1e-9 * max(1.0, abs(a)):
                mismatches.append({"account": name, "field": fld, "run": a, "replay": b})
        if str(rec["position_side"]) != st.position_side.name.lower():
            mismatches.append(
                {
                    "account": name,
                    "field": "position_side",
                    "run": rec["position_side"],
                    "replay": st.position_side.name.lower(),
                }
            )
    extra = set(perp.accounts.names) - set(accounts["account"])
    for name in sorted(extra):
        mismatches.append({"account": name, "field": "*", "run": None, "replay": "exists"})
    return {
        "accounts": len(accounts),
        "mismatches": mismatches,
        "max_abs_diff": max_diff,
        "insurance_fund": perp.insurance_fund,
        "bad_debt": perp.bad_debt,
        "social_loss_per_contract_long": perp.social_loss_per_contract_long,
        "social_loss_per_contract_short": perp.social_loss_per_contract_short,
    }
