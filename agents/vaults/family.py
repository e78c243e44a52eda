"""A family of GLP delta-neutral vaults that hedge on the simulated perpetual.

One population of type ``glp_vault_family`` is the whole family: a USDC vault, an ETH vault and
a BTC vault (or any vaults the scenario names), each holding GLP and hedging the part of its
exposure it does not want (``spec/glp-vault.md``). Every ``rebalance_interval``, or when a
vault's delta drifts past ``delta_trigger``, it runs the seed's steps in the spec's order (see
:meth:`GLPVaultFamily.rebalance`), with each step a pure function of
:mod:`perpsim.agents.vaults.rebalance`.

The family keeps its books; the exchange keeps the hedges. With ``netting: true`` the family is
one book: its GLP changes net into one mint or burn and its hedges into one position on one venue
account (the agent's name), the matched parts settled internally as zero-sum transfers. With
``netting: false`` each vault is its own book with its own account (``<name>.<vault>``), mints,
burns and trades on its own. Hedges of the perpetual's underlying are real trades through the
venue contract (fees, price impact, funding, liquidation); hedges of the other assets are held
off-venue at ``off_venue_cost`` per unit of notional per day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from perpsim.engine.core.config import FrozenModel
from perpsim.engine.core.status import Status
from perpsim.errors import ConfigError, EngineError
from perpsim.oracle.config import SECONDS_PER_YEAR, Duration

from ..base import PerpAgent, Phase, lots, withdraw_collateral
from .glp import glp_amounts, glp_exposures, glp_price, gmx_v1_fee_rate, pool_amounts
from .rebalance import (
    buffer_topup,
    delta_fractions,
    fit_targets,
    funding_pro_rata,
    mark_to_market,
    net_glp,
    net_hedges,
    net_side_shares,
    settle_internal_hedges,
    split_fee_pro_rata,
)

if TYPE_CHECKING:
    from perpsim.model import PerpModel

__all__ = [
    "DynamicFee",
    "FlatFee",
    "FlowEvent",
    "GLPConfig",
    "GLPVaultFamily",
    "GLPVaultFamilyParams",
    "PoissonFlows",
    "VaultConfig",
]

_DAY = 86_400.0


class FlatFee(FrozenModel):
    """One mint/burn fee rate for every action."""

    kind: Literal["flat"] = "flat"
    rate: float = Field(default=0.003, ge=0.0, lt=1.0)


class DynamicFee(FrozenModel):
    """GMX v1's dynamic mint/burn fee (:func:`~perpsim.agents.vaults.glp.gmx_v1_fee_rate`).

    Attributes:
        base_fee: ``b`` for non-stable assets (30 bp).
        tax_rate: ``x`` for non-stable assets (50 bp).
        stable_base_fee: ``b`` for stables.
        stable_tax_rate: ``x`` for stables (20 bp).
        mint_asset: The asset GLP is minted with and burned into.
    """

    kind: Literal["gmx_v1_dynamic"] = "gmx_v1_dynamic"
    base_fee: float = Field(default=0.003, ge=0.0, lt=1.0)
    tax_rate: float = Field(default=0.005, ge=0.0, lt=1.0)
    stable_base_fee: float = Field(default=0.003, ge=0.0, lt=1.0)
    stable_tax_rate: float = Field(default=0.002, ge=0.0, lt=1.0)
    mint_asset: str = "USDC"


class WeightChange(FrozenModel):
    """From run time ``at`` GLP's composition is reset to ``weights`` (price unchanged)."""

    at: Duration = Field(ge=0)
    weights: dict[str, Annotated[float, Field(ge=0.0)]]


class GLPConfig(FrozenModel):
    """The GLP basket.

    Attributes:
        weights: Target value share of each asset (sum 1); stables are priced at 1.
        stables: The names among ``weights`` that are stablecoins.
        price0: GLP's price at the start (USD).
        schedule: Weight changes over the run.
        fee: The mint/burn fee (``flat`` or ``gmx_v1_dynamic``).
        pool_aum: USD size of the whole GLP pool (the dynamic fee reads its amounts).
        fee_apr: Fee yield GLP accrues (as more of every asset per token), a year's rate.
    """

    weights: dict[str, Annotated[float, Field(ge=0.0)]] = Field(
        default_factory=lambda: {"USDC": 0.5, "ETH": 0.25, "BTC": 0.25}
    )
    stables: tuple[str, ...] = ("USDC",)
    price0: float = Field(default=1.0, gt=0.0)
    schedule: tuple[WeightChange, ...] = ()
    fee: Annotated[FlatFee | DynamicFee, Field(discriminator="kind")] = FlatFee()
    pool_aum: float = Field(default=400e6, gt=0.0)
    fee_apr: float = Field(default=0.0, ge=0.0, le=10.0)

    @model_validator(mode="after")
    def _weights_sum_to_one(self) -> GLPConfig:
        for where, weights in [("weights", self.weights)] + [
            (f"schedule.{i}.weights", w.weights) for i, w in enumerate(self.schedule)
        ]:
            total = math.fsum(weights.values())
            if abs(total - 1.0) > 1e-9:
                raise ValueError(f"{where} must sum to 1, got {total:g}")
            if set(weights) != set(self.weights):
                raise ValueError(f"{where} must name the same assets as weights")
        if isinstance(self.fee, DynamicFee) and self.fee.mint_asset not in self.weights:
            raise ValueError(f"fee.mint_asset {self.fee.mint_asset!r} is not one of weights")
        return self


class VaultConfig(FrozenModel):
    """One vault of the family.

    Attributes:
        tvl: USD deposited at the start.
        target: Target delta per asset, a fraction of TVL (USDC vault: none; ETH vault:
            ``{ETH: 1}``, long ETH equal to its TVL).
        scaling: Share of the TVL after the buffer put into GLP; the rest backs the hedges.
        buffer: Cash kept out of positions, a fraction of TVL (deposits land there).
        buffer_threshold: The buffer tops up positions while it holds more than this fraction.
    """

    tvl: float = Field(gt=0.0)
    target: dict[str, float] = Field(default_factory=dict)
    scaling: float = Field(default=0.8, gt=0.0, le=1.0)
    buffer: float = Field(default=0.05, ge=0.0, lt=1.0)
    buffer_threshold: float = Field(default=0.02, ge=0.0, lt=1.0)


class FlowEvent(FrozenModel):
    """A scheduled deposit (``amount`` > 0), withdrawal (< 0) or fractional withdrawal."""

    at: Duration = Field(ge=0)
    vault: str
    amount: float = 0.0
    withdraw_fraction: float = Field(default=0.0, ge=0.0, le=1.0)


class PoissonFlows(FrozenModel):
    """Depositors who arrive and leave as Poisson processes (sizes exponential).

    Attributes:
        deposit_rate: Deposits per day.
        deposit_size: Mean USD of a deposit.
        withdrawal_rate: Withdrawals per day.
        withdrawal_size: Mean USD of a withdrawal.
    """

    deposit_rate: float = Field(default=0.0, ge=0.0)
    deposit_size: float = Field(default=0.0, ge=0.0)
    withdrawal_rate: float = Field(default=0.0, ge=0.0)
    withdrawal_size: float = Field(default=0.0, ge=0.0)


def _default_vaults() -> dict[str, VaultConfig]:
    return {
        "USDC": VaultConfig(tvl=1e6, scaling=0.8),
        "ETH": VaultConfig(tvl=1e6, target={"ETH": 1.0}, scaling=0.5),
        "BTC": VaultConfig(tvl=1e6, target={"BTC": 1.0}, scaling=0.5),
    }


class GLPVaultFamilyParams(FrozenModel):
    """Parameters of a ``glp_vault_family`` population (``count`` must be 1).

    Attributes:
        vaults: The vaults by name.
        glp: The GLP basket.
        netting: Net GLP changes and hedges across vaults (false: each vault on its own).
        rebalance_interval: Seconds between two scheduled rebalances.
        check_interval: Seconds between two looks at the deltas (and rows of ``vaults``).
        delta_trigger: Rebalance early when a vault's delta is off target by more than this
            fraction of its TVL.
        hedge_margin: Margin kept on the venue per unit of the venue hedge's notional (at
            least 1.05 × the venue's initial margin rate, so the trade is accepted).
        off_venue_cost: Cost of off-venue hedges per unit of notional per day.
        flows: Scheduled deposits and withdrawals.
        poisson_flows: Poisson depositors per vault.
        max_trade: Most contracts one hedge trade sends to the venue (0: no limit); the rest
            waits for the next look, when the delta trigger sends it (a simple TWAP).
        underlying: The asset the market price is, when no asset of the scenario's
            ``assets:`` is marked ``underlying`` (then every other risky asset of the basket
            needs an entry there).
    """

    vaults: dict[str, VaultConfig] = Field(default_factory=_default_vaults, min_length=1)
    glp: GLPConfig = GLPConfig()
    netting: bool = True
    rebalance_interval: Duration = Field(default=86_400, gt=0)
    check_interval: Duration = Field(default=3_600, gt=0)
    delta_trigger: float = Field(default=0.05, gt=0.0)
    hedge_margin: float = Field(default=0.25, gt=0.0, le=1.0)
    off_venue_cost: float = Field(default=0.0002, ge=0.0, lt=0.1)
    flows: tuple[FlowEvent, ...] = ()
    poisson_flows: dict[str, PoissonFlows] = Field(default_factory=dict)
    max_trade: float = Field(default=0.0, ge=0.0)
    underlying: str = "ETH"

    @model_validator(mode="after")
    def _names(self) -> GLPVaultFamilyParams:
        for i, flow in enumerate(self.flows):
            if flow.vault not in self.vaults:
                raise ValueError(f"flows.{i}.vault {flow.vault!r} is not one of vaults")
        for name in self.poisson_flows:
            if name not in self.vaults:
                raise ValueError(f"poisson_flows.{name} is not one of vaults")
        for name, vault in self.vaults.items():
            for asset in vault.target:
                if asset not in self.glp.weights or asset in self.glp.stables:
                    raise ValueError(
                        f"vaults.{name}.target.{asset}: not a risky asset of glp.weights"
                    )
        return self


@dataclass
class Vault:
    """One vault's books (claims on the family's GLP, cash and hedge accounts)."""

    name: str
    config: VaultConfig
    glp_units: float = 0.0
    buffer: float = 0.0
    #: Everything of its TVL that is neither GLP nor buffer: its claim on the hedge accounts
    #: and the book's cash.
    claim: float = 0.0
    fitted: float = 0.0
    hedge_units: dict[str, float] = field(default_factory=dict)
    pending_deposit: float = 0.0
    pending_withdrawal: float = 0.0
    pending_fraction: float = 0.0
    fees_mint_burn: float = 0.0
    fees_trading: float = 0.0
    trading_impact: float = 0.0
    fees_off_venue: float = 0.0
    funding_paid: float = 0.0
    deposits: float = 0.0
    withdrawals: float = 0.0
    rebalances: int = 0
    internal_transfers: float = 0.0
    #: Depositors' shares: deposits and withdrawals at the share price, so the share price
    #: is the vault's time-weighted return whatever the flows.
    shares: float = 0.0

    def tvl(self, glp_px: float) -> float:
        """Its TVL at GLP price ``glp_px``."""
        return self.glp_units * glp_px + self.buffer + self.claim


@dataclass
class Book:
    """What trades with the outside: one book per family (netting) or per vault."""

    account: str
    vaults: list[str]
    cash: float = 0.0
    payout_due: float = 0.0
    position: float = 0.0
    margin: float = 0.0
    acc_funding: float = 0.0
    off_units: dict[str, float] = field(default_factory=dict)


def _deposit(venue: Any, account: str, amount: float) -> bool:
    """Deposit and report success (``PerpAgent.attempt`` returns None on a rejection)."""
    venue.deposit(account, amount)
    return True


class GLPVaultFamily(PerpAgent):
    """The USDC / ETH / BTC GLP vaults: hedge, net, rebalance (see the module docstring)."""

    agent_type: ClassVar[str] = "glp_vault_family"
    Params: ClassVar[type[FrozenModel]] = GLPVaultFamilyParams
    phase: ClassVar[Phase] = Phase.TRADER

    def __init__(
        self,
        model: PerpModel,
        name: str,
        population: str,
        params: dict[str, Any],
        rng: np.random.Generator,
    ) -> None:
        super().__init__(model, name, population, params, rng)
        cfg = GLPVaultFamilyParams.model_validate(params)
        self.cfg = cfg
        self.vaults = {n: Vault(n, v) for n, v in cfg.vaults.items()}
        if cfg.netting:
            self.books = [Book(name, list(self.vaults))]
        else:
            self.books = [Book(f"{name}.{v}", [v]) for v in self.vaults]
        self.book_of = {v: b for b in self.books for v in b.vaults}
        self.stables = set(cfg.glp.stables)
        self.risky = [a for a in cfg.glp.weights if a not in self.stables]
        #: The asset the perpetual trades: the scenario's underlying asset, else the name the
        #: family gives the market price (``underlying``).
        self.underlying: str = model.underlying_asset or cfg.underlying
        self.units: dict[str, float] = {}
        self.pool_supply = 0.0
        self.last_prices: dict[str, float] = {}
        self.last_rebalance = 0
        self.last_check = 0
        self._schedule = sorted(cfg.glp.schedule, key=lambda w: w.at)
        self._flows = sorted(cfg.flows, key=lambda f: f.at)
        self.rows: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.trades = 0
        self.trade_rejections = 0

    @property
    def account_names(self) -> tuple[str, ...]:
        """The venue accounts of this family (one with netting, one per vault without)."""
        return tuple(b.account for b in self.books)

    # -- prices ---------------------------------------------------------------------------

    def prices(self) -> dict[str, float]:
        """USD price of every GLP asset now (stables 1; the underlying at the market)."""
        out: dict[str, float] = {}
        for a in self.cfg.glp.weights:
            if a in self.stables:
                out[a] = 1.0
            elif a == self.underlying:
                out[a] = self.model.market_price()
            else:
                out[a] = self.model.asset_price(a)
        return out

    def glp_px(self, prices: dict[str, float]) -> float:
        """GLP's price at ``prices``."""
        return glp_price(self.units, prices)

    # -- set-up ---------------------------------------------------------------------------

    def start(self) -> None:
        """Check the assets, buy the first GLP and hedges, then look every check_interval."""
        missing = [
            a for a in self.risky if a not in self.model.asset_prices and a != self.underlying
        ]
        if missing:
            raise ConfigError(
                f"agents.{self.population}: glp.weights names {', '.join(missing)}, which the"
                " scenario's assets: section does not define (each risky asset needs a price"
                " path)"
            )
        prices = self.prices()
        self.units = glp_amounts(self.cfg.glp.weights, prices, self.cfg.glp.price0)
        self.pool_supply = self.cfg.glp.pool_aum / self.cfg.glp.price0
        self.last_prices = prices
        for v in self.vaults.values():
            v.claim = v.config.tvl
            v.deposits = v.config.tvl
            v.shares = v.config.tvl
            v.pending_deposit = 0.0
        for book in self.books:
            book.cash = math.fsum(self.vaults[v].config.tvl for v in book.vaults)
        self.last_rebalance = self.now
        self.last_check = self.now
        self._rebalance_all(prices, first=True)
        self._record(prices)
        self.wake_in(self.cfg.check_interval)

    # -- the loop ---------------------------------------------------------------------------

    def step(self) -> None:
        """Accrue GLP's yield, take flows, record; rebalance when due or off target."""
        self.wake_in(self.cfg.check_interval)
        dt = self.now - self.last_check
        self.last_check = self.now
        if self.cfg.glp.fee_apr > 0 and dt > 0:
            grow = (1.0 + self.cfg.glp.fee_apr) ** (dt / SECONDS_PER_YEAR)
            self.units = {a: u * grow for a, u in self.units.items()}
        prices = self.prices()
        self._reset_weights(prices)
        self._take_flows(dt)
        due = self.now - self.last_rebalance >= self.cfg.rebalance_interval
        for book in self.books:
            self._sync_position(book)
        can_trade = self.venue.status is Status.NORMAL and not self.is_down()
        if can_trade and (due or self._drifted(prices)):
            self._rebalance_all(prices)
            self.last_rebalance = self.now
        self._record(prices)

    def _reset_weights(self, prices: dict[str, float]) -> None:
        while self._schedule and self.model.start_time + self._schedule[0].at <= self.now:
            change = self._schedule.pop(0)
            self.units = glp_amounts(change.weights, prices, self.glp_px(prices))

    def _take_flows(self, dt: float) -> None:
        while self._flows and self.model.start_time + self._flows[0].at <= self.now:
            flow = self._flows.pop(0)
            v = self.vaults[flow.vault]
            if flow.amount > 0:
                v.pending_deposit += flow.amount
            elif flow.amount < 0:
                v.pending_withdrawal += -flow.amount
            v.pending_fraction = min(1.0, v.pending_fraction + flow.withdraw_fraction)
        for name, p in self.cfg.poisson_flows.items():
            v = self.vaults[name]
            days = dt / _DAY
            n_dep = int(self.rng.poisson(p.deposit_rate * days))
            n_wd = int(self.rng.poisson(p.withdrawal_rate * days))
            if n_dep and p.deposit_size > 0:
                v.pending_deposit += float(self.rng.exponential(p.deposit_size, n_dep).sum())
            if n_wd and p.withdrawal_size > 0:
                v.pending_withdrawal += float(self.rng.exponential(p.withdrawal_size, n_wd).sum())

    def _drifted(self, prices: dict[str, float]) -> bool:
        px = self.glp_px(prices)
        exposures = glp_exposures({a: self.units[a] for a in self.risky}, prices)
        for v in self.vaults.values():
            tvl = v.tvl(px)
            hedges = {a: u * prices[a] for a, u in v.hedge_units.items()}
            deltas = delta_fractions(tvl, v.glp_units, exposures, hedges, v.config.target)
            if any(abs(d) > self.cfg.delta_trigger for d in deltas.values()):
                return True
        return False

    # -- one rebalance --------------------------------------------------------------------

    def _rebalance_all(self, prices: dict[str, float], first: bool = False) -> None:
        for book in self.books:
            self.rebalance(book, prices, first=first)
        self.last_prices = prices

    def rebalance(self, book: Book, prices: dict[str, float], *, first: bool = False) -> None:
        """One rebalance of ``book``: the seed's steps in the spec's order.

        1. record (the previous hedges, GLP units and TVLs are the books as they stand);
        2. mark the hedges to market from the price change;
        3. charge the venue's realised funding pro rata;
        4. re-mark GLP and the hedges (TVLs at the latest prices);
        5. settle the internal hedges as zero-sum transfers;
        6. deposits and withdrawals through the buffer, with top-up;
        7. fit the new targets;
        8. one net GLP mint or burn, its fee split pro rata;
        9. the net hedge's residual as one trade through the venue;
        10. the hedge account's margin topped up (or its excess withdrawn), withdrawals paid.
        """
        vaults = [self.vaults[n] for n in book.vaults]
        prev = self.last_prices
        under = self.underlying
        # 1. record: the hedges as they stood, in USD at the previous prices.
        before = {v.name: {a: u * prev[a] for a, u in v.hedge_units.items()} for v in vaults}
        tvl_before = {v.name: v.tvl(self.glp_px(prev)) for v in vaults}
        if not first:
            # 2.-3. the venue account's change since the last rebalance: mark and funding.
            venue_notional = {v.name: before[v.name].get(under, 0.0) for v in vaults}
            margin_now = self._margin(book)
            acc = self.venue.accumulated_funding_per_contract()
            funding = book.position * (acc - book.acc_funding)
            pnl = (margin_now - book.margin) + funding
            shares = self._shares(net_side_shares(venue_notional), vaults, tvl_before)
            cost = funding_pro_rata(funding, venue_notional)
            if not any(cost.values()) and funding:
                cost = {n: s * funding for n, s in shares.items()}
            for v in vaults:
                v.claim += shares[v.name] * pnl - cost[v.name]
                v.funding_paid += cost[v.name]
            book.margin = margin_now
            book.acc_funding = acc
            book.position = self._position(book)
            # 2. off-venue hedges: exact marks, and their carry cost per day.
            days = (self.now - self.last_rebalance) / _DAY
            for a, q in book.off_units.items():
                notional = {v.name: before[v.name].get(a, 0.0) for v in vaults}
                off_pnl = mark_to_market(q * prev[a], prev[a], prices[a])
                carry = self.cfg.off_venue_cost * abs(q * prev[a]) * days
                book.cash += off_pnl - carry
                s = self._shares(net_side_shares(notional), vaults, tvl_before)
                for v in vaults:
                    v.claim += s[v.name] * (off_pnl - carry)
                    v.fees_off_venue += s[v.name] * carry
            # 5. internal hedges: zero-sum transfers (asserted inside).
            # In first-seen order, not a set's (which follows the hash seed): the claims are
            # float sums, so the order must not change from one process to the next.
            for a in dict.fromkeys(a for h in before.values() for a in h):
                notional = {v.name: before[v.name].get(a, 0.0) for v in vaults}
                for n, t in settle_internal_hedges(notional, prev[a], prices[a]).items():
                    self.vaults[n].claim += t
                    self.vaults[n].internal_transfers += t
        # 4. re-mark at the latest prices.
        px = self.glp_px(prices)
        exposures = glp_exposures({a: self.units[a] for a in self.risky}, prices)
        # 6. flows through the buffer, top-up; 7. fit.
        fits = {}
        for v in vaults:
            tvl = v.tvl(px)
            pay = min(tvl, v.pending_withdrawal + v.pending_fraction * tvl)
            if not first and tvl > 0:
                v.shares += (v.pending_deposit - pay) * v.shares / tvl
            v.deposits += v.pending_deposit if not first else 0.0
            v.withdrawals += pay
            v.buffer += v.pending_deposit - pay
            book.cash += v.pending_deposit
            book.payout_due += pay
            v.pending_deposit = v.pending_withdrawal = v.pending_fraction = 0.0
            tvl = v.tvl(px)
            invested = tvl - max(v.buffer, 0.0)
            buffer = max(v.buffer, 0.0)
            threshold = v.config.buffer_threshold * tvl
            top = buffer_topup(v.fitted, invested, buffer, threshold)
            invested += top
            buffer -= top
            target_buffer = v.config.buffer * tvl
            if first or buffer > 2.0 * target_buffer or buffer < threshold:
                # Refill or drain the buffer to its target at a rebalance (the first fills it).
                invested += buffer - target_buffer
                buffer = target_buffer
            v.buffer = buffer
            v.claim = tvl - buffer - v.glp_units * px
            v.fitted = invested
            fits[v.name] = fit_targets(invested, v.config.scaling, px, exposures, v.config.target)
        # 8. one net GLP mint or burn; its fee to the vaults on the net's side.
        changes = {v.name: fits[v.name].glp_units - v.glp_units for v in vaults}
        net = net_glp(changes)
        fee = abs(net) * px * self._fee_rate(net * px, prices)
        split = split_fee_pro_rata(changes, fee)
        book.cash -= net * px + fee
        self.pool_supply += net
        for v in vaults:
            v.glp_units = fits[v.name].glp_units
            v.claim -= changes[v.name] * px + split[v.name]
            v.fees_mint_burn += split[v.name]
        # 9. net the hedges; only the residual of the underlying trades on the venue.
        targets = {v.name: fits[v.name].hedges for v in vaults}
        net_h = net_hedges(targets)
        hedge_changes = {
            v.name: targets[v.name].get(under, 0.0)
            - before[v.name].get(under, 0.0) * (prices[under] / prev[under])
            for v in vaults
        }
        self._trade_residual(
            book,
            net_h.get(under, 0.0) / prices[under],
            hedge_changes,
            {v.name: targets[v.name].get(under, 0.0) for v in vaults},
            vaults,
        )
        for a in self.risky:
            if a != under:
                book.off_units[a] = net_h.get(a, 0.0) / prices[a]
        for v in vaults:
            v.hedge_units = {a: h / prices[a] for a, h in targets[v.name].items()}
            v.rebalances += 1
        # What the venue did not fill (lots, max_trade, a refusal, a halt) stays unhedged with
        # the vaults on the net's side, so their deltas show it and the trigger sends the rest.
        self._sync_position(book)
        # 10. margin after the trade, then the withdrawals are paid.
        self._fit_margin(book)
        paid = min(max(book.cash, 0.0), book.payout_due)
        book.cash -= paid
        book.payout_due -= paid
        self._check_book(book, px)

    def _sync_position(self, book: Book) -> None:
        """Give the gap between the vaults' venue hedges and the account's position (an unfilled
        trade, a liquidation) to the vaults on the net's side, pro rata."""
        under = self.underlying
        vaults = [self.vaults[n] for n in book.vaults]
        gap = math.fsum(v.hedge_units.get(under, 0.0) for v in vaults) - self._position(book)
        if abs(gap) < 1e-12:
            return
        held = {v.name: v.hedge_units.get(under, 0.0) for v in vaults}
        holders = self._shares(net_side_shares(held), vaults, {v.name: 1.0 for v in vaults})
        for v in vaults:
            v.hedge_units[under] = held[v.name] - holders[v.name] * gap

    def _shares(
        self, shares: dict[str, float], vaults: list[Vault], tvl: dict[str, float]
    ) -> dict[str, float]:
        """The net side's shares, or TVL shares when the hedges net to zero."""
        if any(shares.values()):
            return shares
        total = math.fsum(max(t, 0.0) for t in tvl.values())
        if total <= 0:
            return {v.name: 1.0 / len(vaults) for v in vaults}
        return {v.name: max(tvl[v.name], 0.0) / total for v in vaults}

    def _fee_rate(self, change_usd: float, prices: dict[str, float]) -> float:
        fee = self.cfg.glp.fee
        if isinstance(fee, FlatFee):
            return fee.rate
        aum = self.pool_supply * self.glp_px(prices)
        amounts = pool_amounts(aum, self.units, prices)
        asset = fee.mint_asset
        target = aum * self.cfg.glp.weights[asset]
        stable = asset in self.stables
        return gmx_v1_fee_rate(
            amounts[asset],
            target,
            change_usd,
            fee.stable_base_fee if stable else fee.base_fee,
            fee.stable_tax_rate if stable else fee.tax_rate,
        )

    def _move_margin(self, book: Book, amount: float) -> None:
        """Deposit (> 0) or withdraw (< 0) margin; what else the venue settles on the way
        (funding a design settles on any action) goes to the vaults holding the hedge."""
        before = self._margin(book)
        if amount > 0:
            done = self.attempt("hedge_margin", _deposit, self.venue, book.account, amount)
        else:
            done = self.attempt(
                "hedge_margin", withdraw_collateral, self.venue, book.account, -amount
            )
        if not done:
            return
        book.cash -= amount
        extra = (self._margin(book) - before) - amount
        if extra:
            vaults = [self.vaults[n] for n in book.vaults]
            under = self.underlying
            held = {v.name: v.hedge_units.get(under, 0.0) for v in vaults}
            shares = self._shares(net_side_shares(held), vaults, {v.name: 1.0 for v in vaults})
            for v in vaults:
                v.claim += shares[v.name] * extra

    def _margin(self, book: Book) -> float:
        """The book's margin balance on the venue (0 before its account exists)."""
        try:
            return self.venue.account(book.account).margin_balance
        except EngineError:
            return 0.0

    def _position(self, book: Book) -> float:
        """The book's signed position on the venue (0 before its account exists)."""
        try:
            view = self.venue.account(book.account)
        except EngineError:
            return 0.0
        return view.position_size if view.position_side == "long" else -view.position_size

    def _trade_residual(
        self,
        book: Book,
        target: float,
        changes: dict[str, float],
        targets: dict[str, float],
        vaults: list[Vault],
    ) -> None:
        """Send target − held contracts to the venue; its cost to the net's side."""
        venue = self.venue
        rules = venue.rules
        held = self._position(book)
        residual = target - held
        wanted = abs(residual)
        if self.cfg.max_trade > 0:
            wanted = min(wanted, self.cfg.max_trade)
        size = math.copysign(lots(wanted, rules.trading_lot_size), residual)
        if size == 0.0:
            return
        # Enough margin first, so an increase is not refused; step 10 sets the rest.
        need = (
            abs(target)
            * venue.mark_price()
            * max(self.cfg.hedge_margin, 1.05 * rules.initial_margin_rate)
        )
        margin = self._margin(book)
        if need > margin and book.cash > 0:
            self._move_margin(book, min(need - margin, book.cash))
        margin = self._margin(book)
        fill = self.attempt("hedge", venue.trade, book.account, size)
        if fill is None:
            self.trade_rejections += 1
            return
        self.trades += 1
        after = self._margin(book)
        # What the trade cost against the spot price the hedges are marked at (fees and
        # price impact) goes to the vaults whose hedges changed on the trade's side; the rest
        # of the margin's change is the venue's mark on the new position, which belongs to
        # the vaults that hold it and reverses as the mark returns to the index.
        impact = fill.size * (fill.price - self.model.market_price())
        cost = fill.fee + impact
        mark = (after - margin) + cost
        ones = {v.name: 1.0 for v in vaults}
        shares = self._shares(net_side_shares(changes), vaults, ones)
        holders = self._shares(net_side_shares(targets), vaults, ones)
        for v in vaults:
            v.claim += holders[v.name] * mark - shares[v.name] * cost
            v.fees_trading += shares[v.name] * fill.fee
            v.trading_impact += shares[v.name] * impact
        book.margin = after
        book.position = self._position(book)
        book.acc_funding = venue.accumulated_funding_per_contract()

    def _fit_margin(self, book: Book) -> None:
        """Step 10: the hedge account holds ``hedge_margin`` × its notional (cash permitting)."""
        venue = self.venue
        want = (
            abs(book.position)
            * venue.mark_price()
            * max(self.cfg.hedge_margin, 1.05 * venue.rules.initial_margin_rate)
        )
        have = self._margin(book)
        if have < want and book.cash > 0:
            self._move_margin(book, min(want - have, book.cash))
        elif have > 1.25 * want + 1.0:
            amount = min(have - want, venue.account(book.account).withdrawable_balance)
            if amount > 0:
                self._move_margin(book, -amount)
        book.margin = self._margin(book)
        book.acc_funding = venue.accumulated_funding_per_contract()

    def _check_book(self, book: Book, px: float) -> None:
        """The vaults' claims add up to the book's cash and margin (less what it owes)."""
        claims = math.fsum(self.vaults[n].claim + self.vaults[n].buffer for n in book.vaults)
        held = book.cash + book.margin - book.payout_due
        if abs(claims - held) > 1e-6 * max(1.0, abs(held)):
            self.problems.append(
                f"{book.account} at {self.now}: claims {claims:.6f} != cash + margin − due"
                f" {held:.6f}"
            )

    # -- outputs --------------------------------------------------------------------------

    def _record(self, prices: dict[str, float]) -> None:
        px = self.glp_px(prices)
        exposures = glp_exposures({a: self.units[a] for a in self.risky}, prices)
        now = self.now
        total_tvl = 0.0
        for v in self.vaults.values():
            tvl = v.tvl(px)
            total_tvl += tvl
            hedges = {a: u * prices[a] for a, u in v.hedge_units.items()}
            deltas = delta_fractions(tvl, v.glp_units, exposures, hedges, v.config.target)
            row: dict[str, Any] = {
                "time": now,
                "vault": v.name,
                "tvl": tvl,
                "glp_units": v.glp_units,
                "glp_value": v.glp_units * px,
                "buffer": v.buffer,
                "share_price": tvl / v.shares if v.shares > 0 else float("nan"),
            }
            for a in self.risky:
                row[f"hedge_notional_{a}"] = hedges.get(a, 0.0)
            for a in self.risky:
                row[f"delta_{a}"] = deltas.get(a, 0.0)
            row.update(
                fees_mint_burn=v.fees_mint_burn,
                fees_trading=v.fees_trading,
                trading_impact=v.trading_impact,
                fees_off_venue=v.fees_off_venue,
                funding_paid=v.funding_paid,
                deposits=v.deposits,
                withdrawals=v.withdrawals,
                rebalances=v.rebalances,
                net_perp_position=float("nan"),
                oi_share=float("nan"),
                glp_price=px,
            )
            self.rows.append(row)
        position = math.fsum(self._position(b) for b in self.books) if self.rows else 0.0
        oi = self.venue.open_interest()
        family: dict[str, Any] = {
            "time": now,
            "vault": "family",
            "tvl": total_tvl,
            "glp_units": math.fsum(v.glp_units for v in self.vaults.values()),
            "glp_value": math.fsum(v.glp_units for v in self.vaults.values()) * px,
            "buffer": math.fsum(v.buffer for v in self.vaults.values()),
            "share_price": float("nan"),
        }
        for a in self.risky:
            family[f"hedge_notional_{a}"] = (
                position * prices[a]
                if a == self.underlying
                else math.fsum(b.off_units.get(a, 0.0) for b in self.books) * prices[a]
            )
        for a in self.risky:
            family[f"delta_{a}"] = float("nan")
        for key in (
            "fees_mint_burn",
            "fees_trading",
            "trading_impact",
            "fees_off_venue",
            "funding_paid",
        ):
            family[key] = math.fsum(getattr(v, key) for v in self.vaults.values())
        family["deposits"] = math.fsum(v.deposits for v in self.vaults.values())
        family["withdrawals"] = math.fsum(v.withdrawals for v in self.vaults.values())
        family["rebalances"] = max(v.rebalances for v in self.vaults.values())
        family["net_perp_position"] = position
        family["oi_share"] = abs(position) / oi if oi > 0 else 0.0
        family["glp_price"] = px
        self.rows.append(family)

    def output_tables(self) -> dict[str, list[dict[str, Any]]]:
        """The ``vaults`` table: one row per vault and one for the family per check."""
        return {"vaults": [{"population": self.population, **r} for r in self.rows]}
