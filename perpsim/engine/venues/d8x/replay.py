"""D8X replay: the pool's operations on named accounts, and what can be observed.

A replay file (``kind: d8x``) holds ``governance`` (any parameter of :class:`D8XGovernance`;
the deployed values otherwise) and ``ops``. ``set_index`` (and ``set_collateral_price`` for a
quanto pool) come first, then ``create_pool``; every other operation runs inside the seed's
hook exactly as in a simulation. ``observe`` reads ``pool.<field>``, ``quote@<k>.<field>`` (the
AMM's price and default probability for a trade of ``k`` in the state as it is, without the
before-hook a trade would run first) and ``<account>.<field>``. See ``docs/venues/d8x.md``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

import pandas as pd

from perpsim.engine.core.index import SettableOracle
from perpsim.engine.core.numbers import check_price, check_time
from perpsim.engine.core.replay import (
    ReplayRunner,
    Value,
    check_ops,
    check_top_level,
)
from perpsim.engine.core.status import Status
from perpsim.engine.venue import AccountView
from perpsim.engine.venues.d8x.formulas import Collateral
from perpsim.engine.venues.d8x.governance import GOVERNANCE_KEYS, D8XGovernance
from perpsim.engine.venues.d8x.pool import AMM, CollateralPrice, D8XPool
from perpsim.engine.venues.d8x.venue import D8XVenue
from perpsim.errors import ConfigError, EngineError, GovernanceError, InvalidOperationError

__all__ = [
    "ACCOUNT_FIELDS",
    "LEDGER_FIELDS",
    "OPS",
    "POOL_FIELDS",
    "QUOTE_FIELDS",
    "Replay",
    "compare_ledger",
    "events_to_ops",
    "run_replay_doc",
]

# op name -> (required args, optional args)
OPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "set_index": (("price",), ("timestamp",)),
    "set_collateral_price": (("price",), ()),
    "set_time": (("time",), ()),
    "create_pool": (
        (),
        (
            "collateral",
            "amm_fund",
            "default_fund",
            "lp_account",
            "lp_cash",
            "collateral_beta",
            "trader_exposure_ema",
            "amm_exposure_ema",
        ),
    ),
    "fund_amm": (("amount",), ()),
    "fund_default_fund": (("amount",), ()),
    "add_liquidity": (("account", "amount"), ()),
    "remove_liquidity": (("account", "shares"), ()),
    "deposit": (("account", "amount"), ()),
    "withdraw": (("account", "amount"), ()),
    "trade": (("account", "amount"), ("limit_price",)),
    "liquidate": (("liquidator", "account"), ("max_amount",)),
    "rebalance": ((), ()),
    "set_governance": (("key", "value"), ()),
    "begin_global_settlement": (("price",), ()),
    "global_settled": ((), ()),
    "settle": (("account",), ()),
    "settle_share": (("account", "shares"), ()),
    "observe": (("names",), ("expect", "rel_tol", "abs_tol")),
    "check_invariants": ((), ()),
}

#: ``pool.<field>`` observations.
POOL_FIELDS: tuple[str, ...] = (
    "pool.k2",
    "pool.l1",
    "pool.amm_fund_cash",
    "pool.amm_fund_target",
    "pool.amm_fund_stress_target",
    "pool.amm_fund_baseline_target",
    "pool.default_fund_cash",
    "pool.default_fund_target",
    "pool.lp_cash",
    "pool.share_supply",
    "pool.share_price",
    "pool.k_star",
    "pool.premium_rate",
    "pool.mark_premium_ema",
    "pool.mark_premium_rate",
    "pool.mark_price",
    "pool.index_price",
    "pool.collateral_price",
    "pool.mid_price",
    "pool.funding_rate",
    "pool.unit_accumulated_funding",
    "pool.trader_exposure_ema",
    "pool.amm_exposure_ema_short",
    "pool.amm_exposure_ema_long",
    "pool.amm_margin_balance",
    "pool.amm_cash",
    "pool.amm_pnl",
    "pool.emergency_shortfall",
    "pool.bad_debt",
    "pool.status",
    "pool.time",
)
#: ``quote@<k>.<field>`` observations.
QUOTE_FIELDS: tuple[str, ...] = ("quote@<k>.price", "quote@<k>.pd", "quote@<k>.dd")
#: ``<account>.<field>`` observations.
ACCOUNT_FIELDS: tuple[str, ...] = (
    *AccountView.__dataclass_fields__.keys(),
    "position",
    "locked_in_value",
    "share_balance",
)


class Replay(ReplayRunner):
    """Runs replay operations against a fresh D8X pool.

    Args:
        doc: the parsed file: ``ops``, optional ``governance``, ``check_invariants`` (bool:
            check the accounting after every op), ``kind``, ``name``, ``description``.
        source: a name for messages (the file path).

    Raises:
        ConfigError: the document is malformed; every problem is listed.
    """

    def __init__(self, doc: Mapping[str, Any], source: str = "<replay>") -> None:
        self.source = source
        problems = check_top_level(doc)
        if doc.get("venue", "d8x") != "d8x":
            problems.append(f"venue: must be 'd8x' in a D8X replay, got {doc.get('venue')!r}")
        self.ops, op_problems = check_ops(doc, OPS, _extra_op_problems)
        problems += op_problems
        gov = doc.get("governance") or {}
        self.governance = D8XGovernance()
        if not isinstance(gov, dict):
            problems.append("governance: must be a mapping of D8X parameters to values")
        else:
            try:
                self.governance = D8XGovernance().with_changes(**gov)
            except GovernanceError as exc:
                problems.append(f"governance: {exc}")
        self.check_each = bool(doc.get("check_invariants", False))
        if problems:
            raise ConfigError("\n".join(f"{source}: {p}" for p in problems))
        self.oracle = SettableOracle()
        self.collateral_price: float | None = None
        self.now = 0
        self.pool: D8XPool | None = None
        self.venue: D8XVenue | None = None

    # ----------------------------------------------------------------------------------------

    report_venue = "d8x"
    observe_errors = (EngineError, KeyError, ValueError, ZeroDivisionError)

    def _snapshot(self) -> tuple[Any, ...]:
        pool = self.pool
        if pool is None:
            return (self.now, self.collateral_price)
        n = len(pool.names)
        return (
            repr(pool.state),
            pool._pos[:n].tobytes(),
            pool._cash[:n].tobytes(),
            pool._locked[:n].tobytes(),
            pool._fstart[:n].tobytes(),
            tuple(pool.names),
            tuple(sorted(pool.shares.items())),
        )

    def _invariant_problems(self, required: bool) -> list[str]:
        if required:
            return self._need_pool("check_invariants").check_invariants()
        return self.pool.check_invariants() if self.pool is not None else []

    def _set_time(self, t: Any) -> None:
        if self.pool is not None:
            self.pool.set_time(t)
            self.now = self.pool.state.now
        else:
            self.now = check_time(t)

    def _need_pool(self, name: str) -> D8XPool:
        if self.pool is None:
            raise InvalidOperationError(f"{name}: there is no pool yet (create_pool first)")
        return self.pool

    def _need_venue(self, name: str) -> D8XVenue:
        self._need_pool(name)
        assert self.venue is not None
        return self.venue

    def _create_pool(self, op: dict[str, Any]) -> dict[str, Any]:
        if self.pool is not None:
            raise InvalidOperationError("create_pool: the pool exists already")
        try:
            collateral = Collateral(op.get("collateral", "quote"))
        except ValueError:
            raise InvalidOperationError(
                f"create_pool: collateral must be quote, base or quanto, got"
                f" {op.get('collateral')!r}"
            ) from None
        if collateral is Collateral.QUANTO and self.collateral_price is None:
            raise InvalidOperationError(
                "create_pool: a quanto pool needs set_collateral_price (S3) first"
            )
        source = CollateralPrice(
            collateral, self.collateral_price or 1.0, float(op.get("collateral_beta", 0.0))
        )
        if collateral is Collateral.QUANTO and "collateral_beta" not in op:
            source.set(self.collateral_price or 1.0)
        pool = D8XPool(
            self.governance,
            collateral,
            self.oracle,
            source,
            self.now,
            trader_exposure_ema=op.get("trader_exposure_ema"),
            amm_exposure_ema=op.get("amm_exposure_ema"),
        )
        if op.get("amm_fund"):
            pool.fund_amm(op["amm_fund"])
        if op.get("default_fund"):
            pool.fund_default_fund(op["default_fund"])
        if op.get("lp_cash"):
            lp = str(op.get("lp_account", "lp"))
            pool.deposit(lp, op["lp_cash"])
            pool.add_liquidity(lp, op["lp_cash"])
        self.pool, self.venue = pool, D8XVenue(pool)
        return {"collateral": collateral.value}

    def _dispatch(self, name: str, op: dict[str, Any]) -> Any:
        if name == "set_index":
            self.oracle.set(op["price"], op.get("timestamp", self.now))
            return None
        if name == "set_collateral_price":
            if self.pool is None:
                self.collateral_price = check_price(op["price"], "collateral price")
            else:
                self.pool.collateral_price.set(op["price"])
            return None
        if name == "set_time":
            self._set_time(op["time"])
            return None
        if name == "create_pool":
            return self._create_pool(op)
        pool = self._need_pool(name)
        venue = self._need_venue(name)
        handlers: dict[str, Callable[[], Any]] = {
            "fund_amm": lambda: pool.fund_amm(op["amount"]),
            "fund_default_fund": lambda: pool.fund_default_fund(op["amount"]),
            "add_liquidity": lambda: {"shares": pool.add_liquidity(op["account"], op["amount"])},
            "remove_liquidity": lambda: {
                "collateral": pool.remove_liquidity(op["account"], op["shares"])
            },
            "deposit": lambda: pool.deposit(op["account"], op["amount"]),
            "withdraw": lambda: pool.withdraw(op["account"], op["amount"]),
            "trade": lambda: asdict(
                venue.trade(op["account"], op["amount"], op.get("limit_price"))
            ),
            "liquidate": lambda: self._liquidate(venue, op),
            "rebalance": pool.update,
            "set_governance": lambda: pool.set_governance(op["key"], op["value"]),
            "begin_global_settlement": lambda: pool.begin_global_settlement(op["price"]),
            "global_settled": pool.global_settled,
            "settle": lambda: pool.settle(op["account"]),
            "settle_share": lambda: pool.settle_shares(op["account"], op["shares"]),
        }
        return handlers[name]()

    @staticmethod
    def _liquidate(venue: D8XVenue, op: dict[str, Any]) -> dict[str, Any]:
        amount = op.get("max_amount")
        if amount is None:
            view = venue.account(op["account"])
            amount = view.liquidation_amount or view.position_size
        return asdict(venue.liquidate(op["liquidator"], op["account"], amount))

    # ----------------------------------------------------------------------------------------
    # Observation

    def value(self, name: str) -> Value:
        """The value of one observation name.

        Raises:
            KeyError: an unknown name.
            EngineError: the value does not exist now (no pool yet).
        """
        if name.startswith("quote@"):
            head, _, fld = name.rpartition(".")
            try:
                k = float(head[len("quote@") :])
            except ValueError:
                raise KeyError(f"bad trade size in {name!r} (quote@<k>.<field>)") from None
            return self._quote_value(k, fld, name)
        target, _, fld = name.partition(".")
        if not fld:
            raise KeyError(f"observation {name!r} must look like pool.<field> or <account>.<field>")
        pool = self._need_pool("observe")
        if target == "pool":
            return self._pool_value(pool, fld, name)
        if fld not in ACCOUNT_FIELDS:
            raise KeyError(f"unknown account field {fld!r} in {name!r}; allowed: {ACCOUNT_FIELDS}")
        if target not in pool.index:
            raise KeyError(f"unknown account {target!r} in {name!r}")
        if fld == "share_balance":
            return pool.shares.get(target, 0.0)
        m = pool.margin(pool.row(target))
        if fld == "position":
            return m.position
        if fld == "locked_in_value":
            return m.locked_in
        assert self.venue is not None
        v: Value = getattr(self.venue.account(target), fld)
        return v

    def _quote_value(self, k: float, fld: str, name: str) -> Value:
        pool = self._need_pool("observe")
        if fld not in ("price", "pd", "dd"):
            raise KeyError(f"unknown quote field {fld!r} in {name!r}; allowed: price, pd, dd")
        txn = pool.view_txn()
        if fld == "price":
            return pool._price(txn, k)
        pd = pool._pd(txn, k)
        return pd.q if fld == "pd" else pd.dd

    def _pool_value(self, pool: D8XPool, fld: str, name: str) -> Value:
        st = pool.view_state()
        g = st.governance
        key = f"pool.{fld}"
        if key not in POOL_FIELDS:
            raise KeyError(f"unknown pool field {fld!r} in {name!r}; allowed: {POOL_FIELDS}")
        k2, l1, _, _ = pool.pricing()
        s2, s3, mark = pool._prices(st)
        simple: dict[str, Callable[[], Value]] = {
            "k2": lambda: k2,
            "l1": lambda: l1,
            "amm_fund_cash": lambda: st.amm_fund_cash,
            "amm_fund_target": lambda: st.amm_fund_target,
            "amm_fund_stress_target": lambda: pool._target(pool.view_txn(), g.amm_target_dd_stress),
            "amm_fund_baseline_target": lambda: pool._target(
                pool.view_txn(), g.amm_target_dd_baseline
            ),
            "default_fund_cash": lambda: st.default_fund_cash,
            "default_fund_target": lambda: st.default_fund_target,
            "lp_cash": lambda: st.lp_cash,
            "share_supply": lambda: st.share_supply,
            "share_price": lambda: st.lp_cash / st.share_supply if st.share_supply else 0.0,
            "k_star": lambda: st.k_star,
            "premium_rate": lambda: st.premium_rate,
            "mark_premium_ema": lambda: st.mark_premium_ema,
            "mark_premium_rate": lambda: st.mark_premium_rate,
            "mark_price": lambda: mark,
            "index_price": lambda: s2,
            "collateral_price": lambda: s3,
            "mid_price": pool.mid_price,
            "funding_rate": lambda: st.funding_rate if st.status is Status.NORMAL else 0.0,
            "unit_accumulated_funding": lambda: pool._uaf_now(st),
            "trader_exposure_ema": lambda: st.trader_exposure_ema,
            "amm_exposure_ema_short": lambda: st.amm_exposure_ema_short,
            "amm_exposure_ema_long": lambda: st.amm_exposure_ema_long,
            "amm_margin_balance": pool.amm_margin_balance,
            "amm_cash": lambda: pool.margin(0).cash,
            "amm_pnl": pool.amm_pnl,
            "emergency_shortfall": lambda: st.emergency_shortfall,
            "bad_debt": lambda: st.bad_debt,
            "status": lambda: st.status.value,
            "time": lambda: st.now,
        }
        return simple[fld]()


def _extra_op_problems(i: int, op: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    name = op.get("op")
    if name == "set_governance" and op.get("key") not in GOVERNANCE_KEYS:
        problems.append(f"ops[{i}] (set_governance): unknown D8X parameter {op.get('key')!r}")
    return problems


# -- a run's event log as replay operations -------------------------------------------------------


def _num(v: Any) -> float:
    return float(v)


def events_to_ops(events: pd.DataFrame, pool_section: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A run's event log as replay operations (the pool created after the first index).

    Raises:
        ConfigError: an event of a kind the replay cannot run.
    """
    ops: list[dict[str, Any]] = []
    created = False
    create = {
        "op": "create_pool",
        "collateral": pool_section.get("collateral", "quote"),
        "collateral_beta": float(pool_section.get("collateral_beta", 0.0)),
    }
    for key in ("trader_exposure_ema", "amm_exposure_ema"):
        if pool_section.get(key) is not None:
            create[key] = float(pool_section[key])
    for rec in events.to_dict("records"):
        kind = rec["kind"]
        t = int(rec["time"].timestamp()) if hasattr(rec["time"], "timestamp") else int(rec["time"])
        acct, cp = rec.get("account"), rec.get("counterparty")
        op: dict[str, Any] | None
        if kind == "index":
            op = {"op": "set_index", "price": _num(rec["price"])}
            if not math.isnan(_num(rec.get("index_timestamp", math.nan))):
                op["timestamp"] = int(rec["index_timestamp"])
        elif kind in ("deposit", "withdraw"):
            op = {"op": kind, "account": acct, "amount": _num(rec["amount"])}
        elif kind in ("fund_amm", "fund_default_fund"):
            op = {"op": kind, "amount": _num(rec["amount"])}
        elif kind in ("buy", "sell"):
            sign = 1.0 if kind == "buy" else -1.0
            op = {"op": "trade", "account": acct, "amount": sign * _num(rec["amount"])}
        elif kind == "liquidate":
            op = {
                "op": "liquidate",
                "liquidator": cp,
                "account": acct,
                "max_amount": _num(rec["amount"]),
            }
        elif kind == "add_liquidity":
            op = {"op": kind, "account": acct, "amount": _num(rec["collateral"])}
        elif kind == "remove_liquidity":
            op = {"op": kind, "account": acct, "shares": _num(rec["shares"])}
        elif kind == "update_index":
            op = {"op": "rebalance"}
        elif kind == "set_governance":
            value: Any = str(rec["value"])
            with contextlib.suppress(ValueError):
                value = float(value)
            op = {"op": kind, "key": rec["key"], "value": value}
        elif kind == "begin_global_settlement":
            op = {"op": kind, "price": _num(rec["price"])}
        elif kind == "global_settled":
            op = {"op": kind}
        elif kind == "settle":
            op = {"op": kind, "account": acct}
        elif kind == "settle_share":
            op = {"op": kind, "account": acct, "shares": _num(rec["shares"])}
        elif kind == "emergency":
            op = None  # follows from the operations themselves
        else:
            raise ConfigError(f"event log: cannot replay an event of kind {kind!r}")
        if op is None:
            continue
        op["at_time"] = t
        ops.append(op)
        if not created and kind == "index":
            ops.append({**create, "at_time": t})
            created = True
    if not created:
        ops.insert(0, create)
    return ops


def run_replay_doc(venue_section: Mapping[str, Any], events: pd.DataFrame) -> dict[str, Any]:
    """The replay document (governance + ops) that rebuilds a run's ledger.

    Args:
        venue_section: the run's resolved ``venue:`` section (from its manifest).
        events: the run's event log.
    """
    pool = dict(venue_section.get("pool") or {})
    ops = events_to_ops(events, pool)
    if pool.get("collateral") == "quanto":
        first = next(i for i, op in enumerate(ops) if op["op"] == "create_pool")
        ops.insert(first, {"op": "set_collateral_price", "price": float(pool["collateral_price"])})
    return {"governance": dict(venue_section.get("governance") or {}), "ops": ops}


#: Account fields compared between a run's final ledger and its replay.
LEDGER_FIELDS = ("cash_balance", "position", "locked_in_value", "funding_start")


def compare_ledger(replay: Replay, accounts: pd.DataFrame) -> dict[str, Any]:
    """Compare a replayed ledger with a run's final accounts.

    Returns:
        ``accounts`` compared, ``mismatches`` and ``max_abs_diff``, and the replayed funds.
    """
    pool = replay.pool
    mismatches: list[dict[str, Any]] = []
    max_diff = 0.0
    if pool is None:
        return {"accounts": len(accounts), "mismatches": [{"account": "*"}], "max_abs_diff": 0.0}
    for rec in accounts.to_dict("records"):
        name = rec["account"]
        if name not in pool.index:
            mismatches.append({"account": name, "field": "*", "run": "exists", "replay": None})
            continue
        m = pool.margin(pool.row(name))
        got = {
            "cash_balance": m.cash,
            "position": m.position,
            "locked_in_value": m.locked_in,
            "funding_start": m.funding_start,
        }
        for fld in LEDGER_FIELDS:
            a, b = float(rec[fld]), float(got[fld])
            diff = abs(a - b)
            max_diff = max(max_diff, diff)
            if diff > 1e-9 * max(1.0, abs(a)):
                mismatches.append({"account": name, "field": fld, "run": a, "replay": b})
    extra = set(pool.names) - set(accounts["account"]) - {AMM}
    for name in sorted(extra):
        mismatches.append({"account": name, "field": "*", "run": None, "replay": "exists"})
    st = pool.state
    return {
        "accounts": len(accounts),
        "mismatches": mismatches,
        "max_abs_diff": max_diff,
        "insurance_fund": st.default_fund_cash,
        "amm_fund": st.amm_fund_cash,
        "lp_cash": st.lp_cash,
        "bad_debt": st.bad_debt,
    }
