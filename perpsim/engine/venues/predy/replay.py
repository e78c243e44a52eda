"""Predy replay: the pool's and the vaults' operations on named accounts (``kind: predy``).

A replay file's ``ops`` run on a fresh market (the parameters from ``governance``, the
formula from ``funding_formula``) whose spot price is set by ``set_spot``; ``observe`` reads
the pool (``pool.<field>``), a quote (``quote.<product>@<amount>.<field>``) or a vault
(``<vault>.<field>``). LP operations move USDC from and to the LP's wallet unless they say
``from: vault``. :func:`run_replay_doc` turns a run's event log into the same operations and
:func:`compare_ledger` checks the rebuilt vaults against the run's. See ``docs/venues/predy.md``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from perpsim.engine.core.index import SettableOracle
from perpsim.engine.core.replay import ReplayRunner, Value, check_ops, check_top_level
from perpsim.engine.venues.predy import formulas as fx
from perpsim.engine.venues.predy.config import PredyParams, changed_params
from perpsim.engine.venues.predy.formulas import FUTURE, PRODUCTS, SQUARED
from perpsim.engine.venues.predy.pool import PredyMarket, product_id
from perpsim.errors import ConfigError, EngineError, GovernanceError, InvalidOperationError

__all__ = ["OBSERVATIONS", "OPS", "PredyReplay", "compare_ledger", "run_replay_doc"]

# op name -> (required args, optional args)
OPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "initialize": (("account", "amount", "variance"), ("from",)),
    "add_liquidity": (("account", "amount"), ("from",)),
    "remove_liquidity": (("account", "amount"), ("to",)),
    "set_spot": (("price",), ()),
    "set_time": (("time",), ()),
    "trade": (("account", "product", "amount"), ("limit",)),
    "deposit_margin": (("account", "amount"), ()),
    "withdraw_margin": (("account", "amount"), ()),
    "liquidate": (("account",), ("liquidator",)),
    "update_variance": ((), ()),
    "hedge": ((), ("caller",)),
    "rebalance": ((), ()),
    "accrue_funding": ((), ()),
    "set_governance": (("key", "value"), ()),
    "begin_global_settlement": (("price",), ()),
    "global_settled": ((), ()),
    "settle": (("account",), ()),
    "settle_share": (("account", "shares"), ()),
    "observe": (("names",), ("expect", "rel_tol", "abs_tol")),
    "check_invariants": ((), ()),
}

PER_PRODUCT = (
    "locked_margin",
    "position",
    "entry_price",
    "funding_rate",
    "funding_paid",
    "amounts_usdc",
)
POOL_FIELDS: tuple[str, ...] = (
    "amount_liquidity",
    *(f"{f}_{p}" for f in PER_PRODUCT for p in PRODUCTS),
    "lp_token_price",
    "total_supply",
    "variance",
    "hedge_usdc",
    "hedge_underlying",
    "hedge_value",
    "utilization_ratio",
    "available_liquidity",
    "protocol_fees",
    "insolvent_loss",
    "last_hedge_spot",
    "snapshot_price",
    "snapshot_time",
    "spot",
    "time",
    "status",
)
QUOTE_FIELDS: tuple[str, ...] = (
    "trade_price",
    "index_price",
    "funding_rate",
    "funding_fee",
    "trade_fee",
    "protocol_fee",
    "estimated_funding_rate",
)
HEDGE_FIELDS: tuple[str, ...] = ("is_long", "amount_underlying", "amount_usdc", "slippage")
VAULT_FIELDS: tuple[str, ...] = (
    "value",
    "min_collateral",
    "usdc",
    "withdrawable",
    "lp_tokens",
    *(f"{f}_{p}" for f in ("position", "entry_price", "entry_funding") for p in PRODUCTS),
)
#: Every observation name pattern (for the registry and the docs).
OBSERVATIONS: tuple[str, ...] = (
    *(f"pool.{f}" for f in POOL_FIELDS),
    "pool.lp_token_price@<delta_liquidity>",
    *(f"quote.<product>@<amount>.{f}" for f in QUOTE_FIELDS),
    *(f"hedge.{f}" for f in HEDGE_FIELDS),
    *(f"<vault>.{f}" for f in VAULT_FIELDS),
)

_QUOTE_A = re.compile(r"^(future|squared)@([^@]+)\.([a-z_]+)$")
_QUOTE_B = re.compile(r"^([a-z_]+)\.(future|squared)@([^@]+)$")


def _wallet_flag(op: Mapping[str, Any], key: str) -> bool:
    """True when an LP op moves USDC through the vault (``from``/``to: vault``)."""
    where = op.get(key, "wallet")
    if where not in ("wallet", "vault"):
        raise InvalidOperationError(f"{key} must be 'wallet' or 'vault', got {where!r}")
    return bool(where == "vault")


class PredyReplay(ReplayRunner):
    """Runs replay operations on a fresh Predy market.

    Args:
        doc: the parsed file: ``ops``, optional ``governance`` (Predy's parameters),
            ``funding_formula`` (``seed`` or ``mainnet``), ``check_invariants``.
        source: a name for messages.

    Raises:
        ConfigError: the document is malformed; every problem is listed.
    """

    def __init__(self, doc: Mapping[str, Any], source: str = "<replay>") -> None:
        self.source = source
        problems = check_top_level(doc, ("funding_formula",))
        if doc.get("venue", "predy") != "predy":
            problems.append(f"venue: a Predy replay has one venue, 'predy'; got {doc['venue']!r}")
        self.ops, op_problems = check_ops(doc, OPS, _extra_op_problems)
        problems += op_problems
        formula = doc.get("funding_formula", "seed")
        if formula not in ("seed", "mainnet"):
            problems.append(f"funding_formula: must be 'seed' or 'mainnet', got {formula!r}")
            formula = "seed"
        params = PredyParams()
        gov = doc.get("governance") or {}
        if not isinstance(gov, dict):
            problems.append("governance: must be a mapping of Predy's parameters to values")
        else:
            for key, value in gov.items():
                try:
                    params = changed_params(params, str(key), value)
                except GovernanceError as exc:
                    problems.append(f"governance.{key}: {exc}")
        self.check_each = bool(doc.get("check_invariants", False))
        if problems:
            raise ConfigError("\n".join(f"{source}: {p}" for p in problems))
        self.oracle = SettableOracle()
        self.market = PredyMarket(params, self.oracle, funding_formula=str(formula))
        self.venue = "predy"

    # -- running ---------------------------------------------------------------------------------

    report_venue = "predy"

    def _snapshot(self) -> tuple[Any, ...]:
        m = self.market
        arrays = tuple(a.tobytes() for a in m.vaults.view())
        return (
            repr(m.state),
            arrays,
            tuple(m.vaults.names),
            tuple(sorted(m.shares.items())),
            m.params,
            m.now,
            m.status,
            repr(m.flows),
            m.initialized,
            m.settled_equity,
            self.oracle.index(m.now) if self._has_spot() else None,
        )

    def _has_spot(self) -> bool:
        try:
            self.oracle.index(0)
        except EngineError:
            return False
        else:
            return True

    def _set_time(self, t: Any) -> None:
        self.market.set_time(t)

    def _invariant_problems(self, required: bool) -> list[str]:
        return self.market.check_invariants()

    def _ensure_vault(self, name: Any) -> str:
        m = self.market
        if not isinstance(name, str) or not name:
            raise InvalidOperationError(f"a vault name must be a non-empty string, got {name!r}")
        if name not in m.vaults:
            m.vaults.add(name)
        return name

    def _trade(self, op: dict[str, Any]) -> dict[str, Any]:
        i = product_id(op["product"])
        amount = op["amount"]
        amounts = (amount, 0.0) if i == FUTURE else (0.0, amount)
        limit = op.get("limit")
        limits = (limit, None) if i == FUTURE else (None, limit)
        fills = self.market.trade(op["account"], amounts, limits)
        f = fills[0]
        return {
            "product": PRODUCTS[f.product],
            "amount": f.amount,
            "trade_price": f.trade_price,
            "index_price": f.index_price,
            "funding_rate": f.funding_rate,
            "trade_fee": f.trade_fee,
            "protocol_fee": f.protocol_fee,
        }

    def _dispatch(self, name: str, op: dict[str, Any]) -> Any:
        m = self.market
        handlers: dict[str, Callable[[], Any]] = {
            "initialize": lambda: m.initialize(
                op["account"], op["amount"], op["variance"], from_vault=_wallet_flag(op, "from")
            ),
            "add_liquidity": lambda: m.add_liquidity(
                op["account"], op["amount"], from_vault=_wallet_flag(op, "from")
            ),
            "remove_liquidity": lambda: m.remove_liquidity(
                op["account"], op["amount"], to_vault=_wallet_flag(op, "to")
            ),
            "set_spot": lambda: self.oracle.set(op["price"], m.now),
            "set_time": lambda: m.set_time(op["time"]),
            "trade": lambda: self._trade(op),
            "deposit_margin": lambda: m.deposit_margin(op["account"], op["amount"]),
            "withdraw_margin": lambda: m.withdraw_margin(op["account"], op["amount"]),
            "liquidate": lambda: m.liquidate(
                self._ensure_vault(op.get("liquidator", "liquidator")), op["account"]
            ),
            "update_variance": m.update_variance,
            "hedge": lambda: m.hedge(str(op.get("caller", "hedger")))._asdict(),
            "rebalance": self._rebalance,
            "accrue_funding": lambda: list(m.accrue_funding()),
            "set_governance": lambda: m.set_params(str(op["key"]), op["value"]),
            "begin_global_settlement": lambda: m.begin_global_settlement(op["price"]),
            "global_settled": m.global_settled,
            "settle": lambda: m.settle(op["account"]),
            "settle_share": lambda: m.settle_shares(op["account"], op["shares"]),
        }
        return handlers[name]()

    def _rebalance(self) -> None:
        m = self.market
        m._require("rebalance", m.status.NORMAL)
        m._require_initialized("rebalance")
        st = m.state.copy()
        m._rebalance(st, m.spot())
        m.state = st

    # -- observation -----------------------------------------------------------------------------

    def value(self, name: str) -> Value:
        """The value of one observation name (see :data:`OBSERVATIONS`).

        Raises:
            KeyError: an unknown name.
            EngineError: the value does not exist now (no spot price, no LP tokens, ...).
        """
        target, _, rest = name.partition(".")
        if not rest:
            raise KeyError(f"observation {name!r} must look like <pool|quote|hedge|vault>.<field>")
        if target == "pool":
            return self._pool_value(rest)
        if target == "quote":
            return self._quote_value(name, rest)
        if target == "hedge":
            if rest not in HEDGE_FIELDS:
                raise KeyError(f"unknown hedge field {rest!r}; allowed: {HEDGE_FIELDS}")
            plan = self.market.hedge_plan()
            st = self.market.state
            slip = fx.slippage_tolerance(
                self.market.spot(),
                st.last_hedge_spot,
                self.market.params.min_slippage_tolerance_of_hedge,
                self.market.params.max_slippage_tolerance_of_hedge,
                self.market.params.hedge_rate_of_return_threshold,
            )
            got: Value = slip if rest == "slippage" else getattr(plan, rest)
            return got
        return self._vault_value(target, rest, name)

    def _pool_value(self, fld: str) -> Value:
        m = self.market
        st = m.state
        if fld.startswith("lp_token_price@"):
            try:
                delta = float(fld.partition("@")[2])
            except ValueError:
                raise KeyError(f"bad ΔL in pool.{fld}") from None
            return m.lp_token_price(delta)
        if fld not in POOL_FIELDS:
            raise KeyError(f"unknown pool field {fld!r}; allowed: {POOL_FIELDS}")
        for prefix in PER_PRODUCT:
            if fld.startswith(prefix + "_") and fld[len(prefix) + 1 :] in PRODUCTS:
                i = PRODUCTS.index(fld[len(prefix) + 1 :])
                if prefix == "funding_rate":
                    return m.current_rate(i)
                pairs = {
                    "locked_margin": st.locked,
                    "position": st.position,
                    "entry_price": st.entry,
                    "funding_paid": st.funding_paid,
                    "amounts_usdc": st.amounts_usdc,
                }
                return pairs[prefix][i]
        simple: dict[str, Callable[[], Value]] = {
            "amount_liquidity": lambda: st.amount_liquidity,
            "lp_token_price": lambda: m.lp_token_price(0.0),
            "total_supply": lambda: st.supply,
            "variance": lambda: st.variance,
            "hedge_usdc": lambda: st.amounts_usdc[0] + st.amounts_usdc[1],
            "hedge_underlying": lambda: st.amount_underlying,
            "hedge_value": lambda: m.hedge_value(st, m.spot()),
            "utilization_ratio": lambda: fx.utilization_ratio(st.amount_liquidity, st.locked),
            "available_liquidity": lambda: fx.available_liquidity(
                st.amount_liquidity, st.locked, st.amounts_usdc
            ),
            "protocol_fees": lambda: st.protocol_fees,
            "insolvent_loss": lambda: st.insolvent_loss,
            "last_hedge_spot": lambda: st.last_hedge_spot,
            "snapshot_price": lambda: st.snapshot_price,
            "snapshot_time": lambda: st.snapshot_time,
            "spot": m.spot,
            "time": lambda: m.now,
            "status": lambda: m.status.value,
        }
        return simple[fld]()

    def _quote_value(self, name: str, rest: str) -> Value:
        a = _QUOTE_A.match(rest)
        b = _QUOTE_B.match(rest) if a is None else None
        if a is not None:
            product, amount_text, fld = a.group(1), a.group(2), a.group(3)
        elif b is not None:
            fld, product, amount_text = b.group(1), b.group(2), b.group(3)
        else:
            raise KeyError(f"observation {name!r} must look like quote.<product>@<amount>.<field>")
        if fld not in QUOTE_FIELDS:
            raise KeyError(f"unknown quote field {fld!r}; allowed: {QUOTE_FIELDS}")
        try:
            amount = float(amount_text)
        except ValueError:
            raise KeyError(f"bad amount in {name!r}") from None
        i = PRODUCTS.index(product)
        if fld == "estimated_funding_rate":
            return self.market.post_trade_rate(i, amount)
        fill = self.market.quote(i, amount)
        fields: dict[str, float] = {
            "trade_price": fill.trade_price,
            "index_price": fill.index_price,
            "funding_rate": fill.funding_rate,
            "funding_fee": fill.index_price * fill.funding_rate,
            "trade_fee": fill.trade_fee,
            "protocol_fee": fill.protocol_fee,
        }
        return fields[fld]

    def _vault_value(self, target: str, fld: str, name: str) -> Value:
        m = self.market
        if fld not in VAULT_FIELDS:
            raise KeyError(f"unknown vault field {fld!r} in {name!r}; allowed: {VAULT_FIELDS}")
        if fld == "lp_tokens":
            return m.shares.get(target, 0.0)
        if target not in m.vaults:
            raise KeyError(f"unknown vault {target!r} in {name!r}")
        v = m.vaults.read(m.vaults.row(target))
        if fld == "value":
            return m.vault_value(v, m.marks(), m.funding_now())
        if fld == "min_collateral":
            return m.vault_min_collateral(v)
        if fld == "usdc":
            return v.usdc
        if fld == "withdrawable":
            return m.withdrawable(v)
        what, _, product = fld.rpartition("_")
        i = PRODUCTS.index(product)
        return {"position": v.position, "entry_price": v.entry, "entry_funding": v.entry_funding}[
            what
        ][i]


# -- a run's ledger ---------------------------------------------------------------------------


def _extra_op_problems(i: int, op: dict[str, Any]) -> list[str]:
    if op["op"] == "trade" and "product" in op and op["product"] not in PRODUCTS:
        return [f"ops[{i}] (trade): product must be 'future' or 'squared', got {op['product']!r}"]
    return []


def _num(v: Any) -> float:
    return float(v)


def events_to_ops(events: pd.DataFrame) -> list[dict[str, Any]]:
    """A run's event log as Predy replay operations (the same operations at the same times)."""
    ops: list[dict[str, Any]] = []
    for rec in events.to_dict("records"):
        kind = rec["kind"]
        t = int(rec["time"].timestamp()) if hasattr(rec["time"], "timestamp") else int(rec["time"])
        acct = rec.get("account")
        op: dict[str, Any] | None
        if kind == "index":
            op = {"op": "set_spot", "price": _num(rec["price"])}
        elif kind == "deposit":
            op = {"op": "deposit_margin", "account": acct, "amount": _num(rec["amount"])}
        elif kind == "withdraw":
            op = {"op": "withdraw_margin", "account": acct, "amount": _num(rec["amount"])}
        elif kind == "initialize":
            op = {
                "op": "initialize",
                "account": acct,
                "amount": _num(rec["amount"]),
                "variance": _num(rec.get("variance", rec.get("value"))),
                "from": "vault",
            }
        elif kind == "add_liquidity":
            op = {"op": kind, "account": acct, "amount": _num(rec["amount"]), "from": "vault"}
        elif kind == "remove_liquidity":
            op = {"op": kind, "account": acct, "amount": _num(rec["amount"]), "to": "vault"}
        elif kind in ("buy", "sell"):
            sign = 1.0 if kind == "buy" else -1.0
            op = {
                "op": "trade",
                "account": acct,
                "product": rec.get("product", rec.get("key")),
                "amount": sign * _num(rec["amount"]),
            }
        elif kind == "liquidate":
            op = {"op": "liquidate", "account": acct, "liquidator": rec["counterparty"]}
        elif kind == "hedge":
            op = {"op": "hedge", "caller": acct}
        elif kind in ("accrue_funding", "update_variance", "global_settled"):
            op = {"op": kind}
        elif kind == "set_governance":
            value = rec["value"]
            with contextlib.suppress(TypeError, ValueError):
                value = float(value)
            op = {"op": kind, "key": rec["key"], "value": value}
        elif kind == "begin_global_settlement":
            op = {"op": kind, "price": _num(rec["price"])}
        elif kind == "settle":
            op = {"op": kind, "account": acct}
        elif kind == "settle_share":
            op = {"op": kind, "account": acct, "shares": _num(rec["shares"])}
        else:
            raise ConfigError(f"event log: cannot replay a Predy event of kind {kind!r}")
        op["at_time"] = t
        ops.append(op)
    return ops


def run_replay_doc(venue_section: Mapping[str, Any], events: pd.DataFrame) -> dict[str, Any]:
    """The replay document that rebuilds a run's ledger from its ``venue:`` and event log."""
    return {
        "governance": dict(venue_section.get("governance") or {}),
        "funding_formula": venue_section.get("funding_formula", "seed"),
        "ops": events_to_ops(events),
    }


#: Vault fields compared between a run's final ledger and its replay.
LEDGER_FIELDS = (
    "usdc",
    "position_future",
    "position_squared",
    "entry_price_future",
    "entry_price_squared",
)


def compare_ledger(replay: PredyReplay, accounts: pd.DataFrame) -> dict[str, Any]:
    """Compare the replayed vaults with a run's final accounts table."""
    m = replay.market
    mismatches: list[dict[str, Any]] = []
    max_diff = 0.0
    for rec in accounts.to_dict("records"):
        name = rec["account"]
        if name == "pool":
            continue
        if name not in m.vaults:
            mismatches.append({"account": name, "field": "*", "run": "exists", "replay": None})
            continue
        v = m.vaults.read(m.vaults.row(name))
        got = {
            "usdc": v.usdc,
            "position_future": v.position[FUTURE],
            "position_squared": v.position[SQUARED],
            "entry_price_future": v.entry[FUTURE],
            "entry_price_squared": v.entry[SQUARED],
        }
        for fld in LEDGER_FIELDS:
            a, b = float(rec[fld]), float(got[fld])
            diff = abs(a - b)
            max_diff = max(max_diff, diff)
            if diff > 1e-9 * max(1.0, abs(a)):
                mismatches.append({"account": name, "field": fld, "run": a, "replay": b})
    extra = set(m.vaults.names) - set(accounts["account"])
    for name in sorted(extra):
        mismatches.append({"account": name, "field": "*", "run": None, "replay": "exists"})
    return {
        "accounts": len(accounts),
        "mismatches": mismatches,
        "max_abs_diff": max_diff,
        "amount_liquidity": m.state.amount_liquidity,
        "lp_token_supply": m.state.supply,
    }
