"""The venue contract suite's harness: a ready venue of any registered kind, and its books.

Every kind the registry knows, plus the test-only constant-product venue
(:mod:`cpmm_venue`, registered for the test and removed after it), is built through its spec
exactly as the model builds it: ``spec.build(config, VenueContext(...))`` with a settable oracle
and an event sink that records every event.

A design takes part in the suite by adding its :class:`Profile` to :data:`PROFILES` (a default
``venue:`` section and one governance change the venue's ``rules`` must show); a registered kind
without one fails :func:`test_every_kind_has_a_profile` instead of being skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import cpmm_venue
import pytest

from perpsim.engine.core.index import SettableOracle
from perpsim.engine.registry import (
    VenueContext,
    VenueSpec,
    venue_kinds,
    venue_spec,
)
from perpsim.engine.venue import Venue
from perpsim.errors import EngineError

#: The start of every contract case (unix seconds) and the index price there.
START = 1_700_000_000
INDEX = 1000.0

#: Funds that are a claim of LP share holders, already held in the pool's own margin account
#: (and so already in the sum of margin balances): counting them again would count them twice.
FUNDS_IN_ACCOUNTS = frozenset({"lp_capital"})

#: Every kind the suite runs on: the registered ones, then the test-only venue.
KINDS: tuple[str, ...] = (*(k for k in venue_kinds() if k != cpmm_venue.KIND), cpmm_venue.KIND)


@dataclass(frozen=True)
class Profile:
    """What the suite needs to know about one design.

    Attributes:
        config: its default ``venue:`` section (validated by ``spec.config_model``).
        governance_change: ``(key, value, rules field, expected value)``: after
            ``set_governance(key, value)`` the venue's ``rules`` shows ``expected`` in ``field``.
        bad_governance: ``(key, value)`` the design's validation refuses.
        price_move: the relative move of the pool's price ``size_for_price`` is asked for (a
            design whose price stays near the index, such as Predy's, needs a small one).
    """

    config: Mapping[str, Any]
    governance_change: tuple[str, Any, str, float]
    bad_governance: tuple[str, Any] = field(default=("maintenance_margin_rate", 5.0))
    price_move: float = 0.02


PROFILES: dict[str, Profile] = {
    "mcdex_v1": Profile(
        config={
            "kind": "mcdex_v1",
            "governance": {
                "initial_margin_rate": 0.10,
                "maintenance_margin_rate": 0.075,
                "liquidation_penalty_rate": 0.005,
                "penalty_fund_rate": 0.005,
                "taker_dev_fee_rate": 0.00075,
                "maker_dev_fee_rate": -0.00025,
                "lot_size": 0.001,
                "trading_lot_size": 0.01,
                "pool_fee_rate": 0.000375,
                "pool_dev_fee_rate": 0.000375,
                "update_index_prize": 5.0,
                "mark_premium_limit": 0.005,
                "funding_dampener": 0.0005,
            },
            "pool": {"initial_liquidity": 2000},
            "insurance_fund": 20_000,
            "dev_balance": 5_000,
        },
        governance_change=("maintenance_margin_rate", 0.06, "maintenance_margin_rate", 0.06),
    ),
    # The mainnet funding formula: its signed margins let the pool's price go below the index
    # when the pool is long (the seed's funding never does, so a sale could not lower it).
    "predy": Profile(
        config={
            "kind": "predy",
            "funding_formula": "mainnet",
            "pool": {"initial_liquidity": 200_000, "initial_variance": 0.0016},
        },
        governance_change=("vault_risk_param", 0.06, "maintenance_margin_rate", 0.06),
        bad_governance=("trade_fee_rate", 5.0),
        price_move=0.001,
    ),
    # A quote pool with the deployed parameters, a small AMM fund (its price, the AMM's default
    # probability, moves with the traders' exposure) and a minimal spread of 1e-7 (size_for_price
    # moves the pool's ask or bid to the target, the mid price plus or minus the spread).
    "d8x": Profile(
        config={
            "kind": "d8x",
            "governance": {"minimal_spread": 1e-7, "minimal_spread_in_stress": 1e-7},
            "pool": {
                "collateral": "quote",
                "amm_fund": 5_000,
                "lp_cash": 400_000,
                "default_fund": 20_000,
            },
        },
        governance_change=("initial_margin_rate_cap", 0.12, "initial_margin_rate", 0.12),
        bad_governance=("maintenance_margin_rate_alpha", 5.0),
        price_move=0.00001,
    ),
    cpmm_venue.KIND: Profile(
        config={
            "kind": cpmm_venue.KIND,
            "governance": {"initial_margin_rate": 0.10, "maintenance_margin_rate": 0.075},
            "pool": {"initial_liquidity": 4_000_000},
            "insurance_fund": 20_000,
        },
        governance_change=("fee_rate", 0.002, "trade_fee_rate", 0.002),
    ),
}


def build_config(spec: VenueSpec, raw: Mapping[str, Any]) -> Any:
    """A design's ``venue:`` section, validated by its own model (as a scenario would)."""
    return spec.config_model.model_validate(dict(raw))


class Harness:
    """A venue of one kind with its oracle, its events and the collateral that crossed it.

    Args:
        kind: the registry kind.
        config: the ``venue:`` section (the kind's profile if omitted).
    """

    def __init__(self, kind: str, config: Mapping[str, Any] | None = None) -> None:
        self.kind = kind
        self.spec = venue_spec(kind)
        self.profile = PROFILES[kind]
        self.oracle = SettableOracle(INDEX, START)
        self.events: list[dict[str, Any]] = []
        raw = self.profile.config if config is None else config
        self.venue: Venue = self.spec.build(
            build_config(self.spec, raw),
            VenueContext(oracle=self.oracle, now=START, capacity=8, event_sink=self.events.append),
        )
        # What the venue held once built: the set-up's deposits, whatever the design.
        self.initial = self.held()
        self.deposited = 0.0
        self.withdrawn = 0.0
        # Negative balances no one was paid for at settlement (not a pay-out, not held).
        self.written_off = 0.0

    # -- what the venue holds ------------------------------------------------------------------

    def held(self) -> float:
        """Σ margin balances of every account + the funds held outside the accounts."""
        v = self.venue
        accounts = sum(v.account(r.account).margin_balance for r in v.account_records())
        funds = sum(x for name, x in v.funds().items() if name not in FUNDS_IN_ACCOUNTS)
        return float(accounts + funds)

    def scale(self) -> float:
        """A size of the books, for tolerances."""
        return self.initial + self.deposited + self.withdrawn + 1.0

    def conservation_gap(self) -> float:
        """What the venue holds minus what crossed its boundary (and the bad debt written off)."""
        expected = (
            self.initial
            + self.deposited
            - self.withdrawn
            + self.written_off
            + self.venue.bad_debt()
        )
        return self.held() - expected

    def assert_books_balance(self) -> None:
        """``check_invariants()`` is empty and collateral is conserved."""
        assert self.venue.check_invariants() == []
        gap = self.conservation_gap()
        assert abs(gap) <= 1e-9 * self.scale(), f"collateral not conserved: gap {gap!r}"

    # -- operations that move collateral across the boundary ------------------------------------

    def do(self, op: Callable[..., Any], *args: Any) -> Any:
        """Run an operation that must succeed: it reports an event and the books balance."""
        n = len(self.events)
        result = op(*args)
        assert len(self.events) > n, f"{op.__name__}{args!r} reported no event"
        self.assert_books_balance()
        return result

    def deposit(self, account: str, amount: float) -> None:
        """Deposit and count it."""
        self.venue.deposit(account, amount)
        self.deposited += amount

    def withdraw(self, account: str, amount: float) -> None:
        """Withdraw and count it."""
        self.venue.withdraw(account, amount)
        self.withdrawn += amount

    def settle(self, account: str | int) -> float:
        """Settle an account and count the payout (a negative balance is written off)."""
        owed = self.venue.account(account).margin_balance
        paid = self.venue.settle(account)
        assert paid == pytest.approx(max(owed, 0.0), rel=1e-12, abs=1e-9)
        self.withdrawn += paid
        self.written_off += paid - owed
        return paid

    # -- the market ------------------------------------------------------------------------------

    def advance(self, seconds: int) -> None:
        """Let time pass."""
        self.venue.set_time(self.venue.now + seconds)

    def set_index(self, price: float) -> None:
        """Publish a new index now."""
        self.oracle.set(price, self.venue.now)

    def open_position(self, account: str, cash: float, leverage: float, side: float) -> float:
        """Deposit ``cash`` and open about ``leverage`` × cash of notional on ``side`` (±1).

        The size is halved until the venue accepts it (the pool's price impact counts against
        the margin at once); every refusal on the way must leave the state unchanged.

        Returns:
            The signed size opened.
        """
        self.deposit(account, cash)
        size = self.lots(leverage * cash / self.venue.index_price())
        while abs(size) >= self.venue.rules.trading_lot_size:
            before = self.snapshot()
            try:
                self.do(self.venue.trade, account, side * size)
            except EngineError:
                assert self.snapshot() == before
                size = self.lots(size / 2.0)
                continue
            return side * size
        raise AssertionError(f"{self.kind}: no position could be opened with {cash}")

    def lots(self, size: float) -> float:
        """``size`` rounded towards zero to the trading lot grid."""
        lot = self.venue.rules.trading_lot_size
        return float(int(size / lot)) * lot

    # -- state, for "a rejected call changes nothing" -------------------------------------------

    def snapshot(self) -> str:
        """Everything the contract shows, exactly (``repr`` keeps every bit of every float)."""
        v = self.venue
        return repr(
            (
                v.account_records(),
                v.observe(),
                dict(v.funds()),
                dict(v.share_holders()),
                v.rules,
                v.status,
                v.now,
                v.bad_debt(),
                len(self.events),
            )
        )

    def assert_rejected(self, op: Callable[..., Any], *args: Any) -> EngineError:
        """``op(*args)`` raises an EngineError and leaves the state bit-identical."""
        before = self.snapshot()
        with pytest.raises(EngineError) as info:
            op(*args)
        assert self.snapshot() == before, f"{op.__name__}{args!r} was rejected but changed state"
        return info.value
