"""The Mesa model: an exchange (a venue from the registry), a market, an oracle, and agents.

``PerpModel`` builds everything from a validated :class:`~perpsim.scenario.Scenario` and runs
each tick as the phases of :data:`PHASES`, in order (``spec/architecture.md``):

1. time advances; the price path gives the market price; the oracle may publish an index;
   the oracle guard (``oracle.guard``) starts or ends its halts;
2. keepers may call ``update_index`` (prize, funding); scheduled events fire; the governance
   rules (``governance_rules:``) measure, decide, apply and expire; the admin acts;
3. trading agents whose turn it is act (wake-ups, not a loop over every agent);
4. liquidators take the vectorised unsafe set and liquidate within their capacity;
5. liquidity providers add or remove liquidity;
6. the accounting is checked and one row of model-level series is recorded.

The venue is whatever design the scenario's ``venue.kind`` names, built through
:mod:`perpsim.engine.registry`; the model and the agents use only the venue contract.
It owns the random streams (one per named component, see :mod:`perpsim.model.streams`), so the
same scenario and seed give the same outputs whatever machine or worker runs them.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import mesa
import numpy as np
import numpy.typing as npt

from perpsim.agents import REGISTRY as AGENT_TYPES
from perpsim.agents import PerpAgent, Phase
from perpsim.engine.core.guard import GuardedVenue, Halts
from perpsim.engine.core.status import Status
from perpsim.engine.registry import VenueContext, venue_spec
from perpsim.engine.venue import IncrementalAccounting, supports
from perpsim.errors import EngineError, InvariantViolation
from perpsim.model.events import EventLog
from perpsim.model.recorder import Recorder
from perpsim.model.rules import HALT_OF_ACTION, RuleBook
from perpsim.model.streams import Streams
from perpsim.oracle.assets import build_asset_paths
from perpsim.oracle.config import Shock
from perpsim.oracle.feed import FeedUpdates, OracleFeed
from perpsim.oracle.paths import apply_shocks, build_path, check_price_range

if TYPE_CHECKING:
    from perpsim.engine.venue import Venue
    from perpsim.scenario import Scenario


@dataclass(frozen=True, slots=True)
class TickPhase:
    """One step of a tick.

    Attributes:
        name: what happens (also the name of the model method ``phase_<name>``, if any).
        agents: the agent phase whose due agents act here, if any.
    """

    name: str
    agents: Phase | None = None


#: The order of one tick (see the module docstring).
PHASES: tuple[TickPhase, ...] = (
    TickPhase("advance_time"),
    TickPhase("oracle_guard"),
    TickPhase("keepers", Phase.KEEPER),
    TickPhase("scheduled_events"),
    TickPhase("governance_rules"),
    TickPhase("admin", Phase.ADMIN),
    TickPhase("traders", Phase.TRADER),
    TickPhase("scan_unsafe"),
    TickPhase("liquidators", Phase.LIQUIDATOR),
    TickPhase("liquidity", Phase.LP),
    TickPhase("accounting"),
    TickPhase("record"),
)

#: Ticks between two full accounting checks (the ones between check what changed).
FULL_CHECK_EVERY = 100

#: Number of agent phase buckets per tick (phases are 1-based IntEnum values).
_BUCKETS = max(p.value for p in Phase) + 1


class TickOracle:
    """The feed's index as the engine reads it, remembered for the current second.

    The engine reads the index on every mark-price query; within one tick the answer cannot
    change, so one search per tick is enough.
    """

    def __init__(self, feed: FeedUpdates) -> None:
        self.feed = feed
        self._now: int | None = None
        self._value: tuple[float, int] = (0.0, 0)

    def index(self, now: int) -> tuple[float, int]:
        """``(price, timestamp)`` of the latest update readable at ``now``."""
        if now != self._now:
            self._value = self.feed.index(now)
            self._now = now
        return self._value


#: The agent type each outage event takes down.
OUTAGE_AGENT_TYPES: dict[str, str] = {
    "keeper_outage": "keeper",
    "liquidator_outage": "liquidator",
    "hedger_outage": "predy_hedger",
}


@dataclass(frozen=True, slots=True)
class DownWindow:
    """An outage of agents of one type (optionally one population), in unix seconds."""

    start: int
    end: int
    agent_type: str
    population: str | None


def market_path(
    scenario: Scenario,
    streams: Streams,
    offsets: npt.NDArray[np.int64],
    base_dir: Path | None = None,
) -> npt.NDArray[np.float64]:
    """The market price at each tick: the price path, then the ``price_shock`` events.

    Raises:
        ConfigError: a data file is invalid, or the shocked path leaves the prices a run can
            carry (``perpsim validate`` calls this too, so such a scenario fails there).
    """
    underlying = scenario.underlying_asset
    if underlying is None:
        path_rng = streams.generator("price_path")
        prices = build_path(
            scenario.price_path, offsets, path_rng, base_dir, start_time=int(scenario.clock.start)
        )
    else:
        # The underlying asset's path (correlated with the other assets); its shocks are the
        # scenario's price_shock events, applied below.
        prices = asset_paths(scenario, streams, offsets, base_dir)[underlying]
    shocks = tuple(
        Shock(at=int(e.at), change=float(e.change), over=int(e.over))
        for e in scenario.events
        if e.kind == "price_shock"
    )
    if shocks:
        with np.errstate(over="ignore", under="ignore"):
            prices = apply_shocks(prices, offsets, shocks)
        check_price_range(prices, offsets, scenario.price_path.kind)
    return np.asarray(prices, dtype=np.float64)


def asset_paths(
    scenario: Scenario,
    streams: Streams,
    offsets: npt.NDArray[np.int64],
    base_dir: Path | None = None,
) -> dict[str, npt.NDArray[np.float64]]:
    """Every named asset's price at each tick (the underlying's without its shocks)."""
    underlying = scenario.underlying_asset
    return build_asset_paths(
        scenario.assets,
        offsets,
        streams.generator,
        base_dir,
        int(scenario.clock.start),
        without_shocks=frozenset(() if underlying is None else (underlying,)),
    )


class PerpModel(mesa.Model):  # type: ignore[misc]
    """One simulation run of a scenario.

    Args:
        scenario: the validated scenario.
        seed: the run's root seed (the scenario's seed if omitted).
        check_invariants: check the venue's accounting after every tick; a violation raises
            :class:`~perpsim.errors.InvariantViolation` naming the tick and the numbers.
        base_dir: folder that relative data files resolve against (the scenario's folder).

    Attributes:
        config: the scenario (not ``scenario``: Mesa 3.5 reserves that attribute).
        venue: the exchange agents trade on (the design ``config.venue.kind`` names).
        venue_spec: its registry spec.
        now: current time, unix seconds.
        tick: current tick index (0 is the set-up state).
        running: True until the last tick has run (Mesa's convention).
        market_prices: the market price at every tick (index = tick).
        feed: the oracle's index updates.
        event_log: the event log (one record per state-changing engine operation).
        recorder: the recorded time series (``recorder.rows``, one dict per recorded tick).
    """

    def __init__(
        self,
        scenario: Scenario,
        seed: int | None = None,
        *,
        check_invariants: bool = True,
        base_dir: Path | None = None,
    ) -> None:
        self.config = scenario
        self.run_seed = int(scenario.seed if seed is None else seed)
        self.streams = Streams(self.run_seed)
        super().__init__(rng=int(self.streams.seed_sequence("mesa").generate_state(1)[0]))
        self.order_rng = self.streams.generator("order")
        self.check_each_tick = check_invariants

        clock = scenario.clock
        self.start_time = int(clock.start)
        self.tick_seconds = int(clock.tick)
        self.n_ticks = int(clock.n_ticks)
        self.offsets: npt.NDArray[np.int64] = np.arange(self.n_ticks + 1, dtype=np.int64) * (
            self.tick_seconds
        )
        self.times = self.offsets + self.start_time

        # 1. The world: market price path (with scheduled shocks) and the oracle feed.
        prices = market_path(scenario, self.streams, self.offsets, base_dir)
        self.market_prices: npt.NDArray[np.float64] = np.asarray(prices, dtype=np.float64)
        feed = OracleFeed(scenario.oracle, start_time=self.start_time)
        for e in scenario.events:
            if e.kind == "oracle_outage":
                feed = feed.with_outage(int(e.at), int(e.duration))
            elif e.kind == "oracle_manipulation":
                feed = feed.with_manipulation(int(e.at), int(e.duration), float(e.spike))
        self.feed: FeedUpdates = feed.publish(self.offsets, self.market_prices)
        #: The scenario's named assets (``assets:``): the underlying's name and every path.
        self.underlying_asset = scenario.underlying_asset
        self.asset_prices: dict[str, npt.NDArray[np.float64]] = (
            asset_paths(scenario, self.streams, self.offsets, base_dir) if scenario.assets else {}
        )

        # 2. The exchange, built by its design's spec; its set-up is logged like any event.
        self.event_log = EventLog()
        self._counters: Counter[str] = Counter()
        self.social_loss_total = 0.0
        #: Trades so far (for progress displays; the time series counts them per row).
        self.trades_total = 0
        self.tick = 0
        self.now = self.start_time
        self._last_logged_index: tuple[float, int] | None = None
        self._log_index()
        n_agents = sum(p.count for p in scenario.agents)
        self.venue_spec = venue_spec(scenario.venue.kind)
        self.venue = self.venue_spec.build(
            scenario.venue,
            VenueContext(
                oracle=TickOracle(self.feed),
                now=self.now,
                capacity=max(64, 2 * n_agents + 8),
                event_sink=self._on_event,
            ),
        )

        # Halts (the oracle guard, governance rules' pauses) wrap the design's venue, so every
        # design gets them through the contract alone; agents bind the wrapped venue.
        self.halts: Halts | None = None
        self._guard = scenario.oracle.guard
        self._guard_on = False
        if self._guard is not None or any(
            r.enabled and r.action.kind in HALT_OF_ACTION for r in scenario.governance_rules
        ):
            guarded = GuardedVenue(self.venue)
            self.halts = guarded.halts
            self.venue = cast("Venue", guarded)

        # 3. Agents and their schedule.
        self._wake: dict[int, list[list[PerpAgent]]] = defaultdict(
            lambda: [[] for _ in range(_BUCKETS)]
        )
        self._wake_tick: dict[int, int] = {}
        self.rejections: Counter[str] = Counter()
        self.down_windows = self._down_windows()
        self.agents_by_population: dict[str, list[PerpAgent]] = {}
        self._build_agents()
        self._events_by_tick: dict[int, list[Any]] = defaultdict(list)
        for e in scenario.events:
            if e.kind in ("set_governance", "liquidity_withdrawal", "begin_global_settlement"):
                self._events_by_tick[self._tick_of(self.start_time + int(e.at))].append(e)
        self.unsafe_since: dict[int, int] = {}
        self.unsafe_rows: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self.invariant_problems: list[str] = []
        # Whole-run accumulators for the summary (exact at tick resolution).
        self.funding_paid_by_longs = 0.0
        self.funding_paid_by_shorts = 0.0
        self.time_with_unsafe_accounts_s = 0
        self.time_in_emergency_s = 0
        # Counted when liquidators take the unsafe set (before they act), whole run and since
        # the last recorded row; the venue's own unsafe / bankrupt columns are end of tick.
        self.max_unsafe_accounts_before_liquidation = 0
        self.max_bankrupt_accounts_before_liquidation = 0
        self._row_unsafe_before = 0
        self._row_bankrupt_before = 0
        self._last_acc = self.venue.accumulated_funding_per_contract()
        self._incremental_checks = supports(self.venue, IncrementalAccounting)
        self._buckets: list[list[PerpAgent]] | None = None
        self._phase_steps: tuple[Callable[[], None], ...] = tuple(
            self._phase_step(phase) for phase in PHASES
        )
        self.rules = RuleBook(
            self,
            scenario.governance_rules,
            scenario.rule_base_values(),
            self.set_halt,
            self.event_log.append,
        )
        self.recorder = Recorder(
            self.venue,
            self.venue_spec.columns,
            self._clock_columns,
            self._take_counts,
            price_impact_size=scenario.output.price_impact_size,
        )
        self.recorder.record()
        self.running = self.n_ticks > 0
        for agent in self._every_agent():
            agent.start()

    # ----------------------------------------------------------------------------------------
    # Set-up

    def venue_for(self, population: str) -> Venue:
        """The venue as the population trades it (bound to its ``product:``, if it names one)."""
        return self._population_venues.get(population, self.venue)

    def _build_agents(self) -> None:
        self._population_venues: dict[str, Venue] = {
            pop.name: self.venue.product(pop.product)
            for pop in self.config.agents
            if pop.product is not None
        }
        for pop in self.config.agents:
            cls = AGENT_TYPES[pop.type]
            rng = self.streams.generator(f"population:{pop.name}")
            per_agent = _sample_params(pop.params, rng, pop.count)
            members: list[PerpAgent] = []
            for i in range(pop.count):
                name = f"{pop.name}-{i}" if pop.count > 1 else pop.name
                members.append(cls(self, name, pop.name, per_agent[i], rng))
            self.agents_by_population[pop.name] = members

    def _every_agent(self) -> list[PerpAgent]:
        return [a for members in self.agents_by_population.values() for a in members]

    def _down_windows(self) -> list[DownWindow]:
        out = []
        for e in self.config.events:
            if e.kind in ("keeper_outage", "liquidator_outage", "hedger_outage"):
                kind = OUTAGE_AGENT_TYPES[e.kind]
                start = self.start_time + int(e.at)
                out.append(DownWindow(start, start + int(e.duration), kind, e.population))
        return out

    def _phase_step(self, phase: TickPhase) -> Callable[[], None]:
        if phase.agents is not None:
            bucket = int(phase.agents)
            return lambda: self._run_agents(bucket)
        step: Callable[[], None] = getattr(self, f"phase_{phase.name}")
        return step

    # ----------------------------------------------------------------------------------------
    # Services for agents

    def _tick_of(self, time: float) -> int:
        return math.ceil((float(time) - self.start_time) / self.tick_seconds - 1e-9)

    def wake(self, agent: PerpAgent, time: float) -> None:
        """Schedule ``agent.step()`` at the first tick at or after ``time`` (after now)."""
        # _tick_of written out: this runs at every wake-up of every agent.
        k = math.ceil((float(time) - self.start_time) / self.tick_seconds - 1e-9)
        if k <= self.tick:
            k = self.tick + 1
        if k > self.n_ticks:
            self._wake_tick.pop(agent.unique_id, None)
            return
        self._wake_tick[agent.unique_id] = k
        self._wake[k][agent.phase].append(agent)

    def is_down(self, agent: PerpAgent) -> bool:
        """Whether an outage event covers this agent now."""
        kind = getattr(agent, "agent_type", "")
        for w in self.down_windows:
            if (
                w.start <= self.now < w.end
                and w.agent_type == kind
                and (w.population is None or w.population == agent.population)
            ):
                return True
        return False

    def next_oracle_update_after(self, time: int) -> int | None:
        """Unix time of the first index update readable strictly after ``time``."""
        i = int(np.searchsorted(self.feed.time, time, side="right"))
        return int(self.feed.time[i]) if i < len(self.feed.time) else None

    def asset_price(self, name: str) -> float:
        """Asset ``name``'s price now (the underlying's is the market price, shocks included).

        Raises:
            KeyError: the scenario has no asset ``name``.
        """
        if name == self.underlying_asset:
            return float(self.market_prices[self.tick])
        return float(self.asset_prices[name][self.tick])

    def market_price(self) -> float:
        """The market price now."""
        return float(self.market_prices[self.tick])

    def market_history(self, seconds: float) -> npt.NDArray[np.float64]:
        """Market prices of the ticks within the last ``seconds`` (oldest first, now last)."""
        k = max(0, self.tick - math.ceil(seconds / self.tick_seconds))
        return self.market_prices[k : self.tick + 1]

    def liquidatable(self, latency: float = 0.0) -> npt.NDArray[np.int64]:
        """Rows that are unsafe now and have been for at least ``latency`` seconds."""
        if latency <= 0:
            return self.unsafe_rows
        rows = [r for r in self.unsafe_rows.tolist() if self.now - self.unsafe_since[r] >= latency]
        return np.asarray(rows, dtype=np.int64)

    def count_rejection(self, agent: PerpAgent, action: str, exc: EngineError) -> None:
        """Count a rejected agent action by (action, error type)."""
        self.rejections[f"{action}:{type(exc).__name__}"] += 1

    # ----------------------------------------------------------------------------------------
    # The tick

    def step(self) -> None:
        """Advance one tick: every phase of :data:`PHASES`, in order."""
        if self.tick >= self.n_ticks:
            self.running = False
            return
        for run_phase in self._phase_steps:
            run_phase()
        self._buckets = None
        if self.tick >= self.n_ticks:
            self.running = False

    def run(self, progress: Callable[[int], None] | None = None) -> None:
        """Run every remaining tick; ``progress(tick)`` is called after each."""
        while self.tick < self.n_ticks:
            self.step()
            if progress is not None:
                progress(self.tick)

    def phase_advance_time(self) -> None:
        """Time, market price and the oracle's readable index; take the agents due now."""
        self.tick += 1
        self.now = int(self.times[self.tick])
        self.venue.set_time(self.now)
        self._log_index()
        self._buckets = self._wake.pop(self.tick, None)

    def set_halt(self, what: str, source: str, reason: str | None) -> bool:
        """Start (``reason``) or end (None) a halt asked for by ``source``; log a change.

        Returns:
            Whether the halt in force changed.
        """
        if self.halts is None:
            raise ValueError("this run has no halts (no oracle guard, no halting rule)")
        changed = self.halts.set(what, source, reason)
        if changed:
            self.event_log.append(
                {
                    "kind": "halt",
                    "time": self.now,
                    "tick": self.tick,
                    "key": what,
                    "rule": source,
                    "stage": "started" if reason is not None else "ended",
                    "value": reason,
                }
            )
        return changed

    def phase_oracle_guard(self) -> None:
        """Start or end the oracle guard's halts from the index the venue reads now."""
        guard = self._guard
        if guard is None:
            return
        price, stamp = self.feed.index(self.now)
        reason = guard.trips(price, self.now - stamp)
        if (reason is not None) == self._guard_on:
            return
        self._guard_on = reason is not None
        text = None if reason is None else f"oracle guard: {reason}"
        for what in guard.halts():
            self.set_halt(what, "oracle_guard", text)

    def phase_governance_rules(self) -> None:
        """Measure, decide, apply and expire the scenario's governance rules."""
        if self.rules:
            self.rules.step()

    def phase_scheduled_events(self) -> None:
        """Fire the scenario's events due at this tick (governance, withdrawals, settlement)."""
        for e in self._events_by_tick.pop(self.tick, ()):
            self._fire(e)

    def _run_agents(self, phase: int) -> None:
        buckets = self._buckets
        if not buckets or not buckets[phase]:
            return
        agents = buckets[phase]
        if len(agents) > 1:
            agents = [agents[i] for i in self.order_rng.permutation(len(agents)).tolist()]
        wake_tick, tick = self._wake_tick, self.tick
        for agent in agents:
            uid = agent.unique_id
            if wake_tick.get(uid) != tick:
                continue  # rescheduled since: a stale entry
            del wake_tick[uid]
            agent.step()

    def phase_scan_unsafe(self) -> None:
        """The vectorised unsafe set liquidators work from, with the time each became unsafe."""
        rows = self.venue.liquidatable_accounts()
        if rows.size == 0:
            self.unsafe_since.clear()
            self.unsafe_rows = rows
            return
        since = {}
        for r in rows.tolist():
            since[r] = self.unsafe_since.get(r, self.now)
        self.unsafe_since = since
        self.unsafe_rows = rows
        venue = self.venue
        n_bankrupt = sum(1 for r in rows.tolist() if venue.account(r).is_bankrupt)
        n_unsafe = int(rows.size)
        self._row_unsafe_before = max(self._row_unsafe_before, n_unsafe)
        self._row_bankrupt_before = max(self._row_bankrupt_before, n_bankrupt)
        self.max_unsafe_accounts_before_liquidation = max(
            self.max_unsafe_accounts_before_liquidation, n_unsafe
        )
        self.max_bankrupt_accounts_before_liquidation = max(
            self.max_bankrupt_accounts_before_liquidation, n_bankrupt
        )

    def phase_accounting(self) -> None:
        """Whole-run accumulators, then the venue's accounting check (unless switched off)."""
        # Funding: Δ(accumulated funding per contract) × open interest; > 0 means longs paid.
        venue = self.venue
        acc = venue.accumulated_funding_per_contract()
        paid = (acc - self._last_acc) * venue.open_interest()
        if paid > 0:
            self.funding_paid_by_longs += paid
        else:
            self.funding_paid_by_shorts -= paid
        self._last_acc = acc
        if self.unsafe_rows.size:
            self.time_with_unsafe_accounts_s += self.tick_seconds
        if venue.status is Status.EMERGENCY:
            self.time_in_emergency_s += self.tick_seconds
        if self.check_each_tick:
            self._check()

    def phase_record(self) -> None:
        """One row of the time series every ``output.record_every`` ticks and at the end."""
        every = self.config.output.record_every
        if self.tick % every == 0 or self.tick == self.n_ticks:
            self.recorder.record()

    def _fire(self, event: Any) -> None:
        kind = event.kind
        if kind == "set_governance":
            try:
                self.venue.set_governance(event.key, event.value)
                self.rules.note_set(event.key, event.value)
            except EngineError as exc:
                self.rejections[f"event:set_governance:{type(exc).__name__}"] += 1
        elif kind == "liquidity_withdrawal":
            for pop, members in self.agents_by_population.items():
                if event.population not in (None, pop):
                    continue
                for agent in members:
                    withdraw = getattr(agent, "withdraw_liquidity", None)
                    if withdraw is not None:
                        withdraw(float(event.fraction))
        elif kind == "begin_global_settlement":
            price = event.price
            if price is None:
                # The admin's rule for the price when there is one (mark or index).
                admin = next(
                    (a for a in self._every_agent() if getattr(a, "agent_type", "") == "admin"),
                    None,
                )
                use_mark = admin is not None and admin.params.get("settlement_price") == "mark"
                price = self.venue.mark_price() if use_mark else self.venue.index_price()
            try:
                self.venue.begin_global_settlement(float(price))
            except EngineError as exc:
                self.rejections[f"event:begin_global_settlement:{type(exc).__name__}"] += 1

    def _check(self) -> None:
        # Every FULL_CHECK_EVERY ticks and at the last one, every account with whole-array
        # passes; between, a design may check what changed (exact: see check_invariants).
        full = self.tick % FULL_CHECK_EVERY == 0 or self.tick >= self.n_ticks
        if not full and self._incremental_checks:
            problems = cast("IncrementalAccounting", self.venue).check_changed_invariants()
        else:
            problems = self.venue.check_invariants()
        if problems:
            self.invariant_problems = problems
            raise InvariantViolation(
                f"accounting invariants violated at tick {self.tick}"
                f" ({self.config.clock.iso(int(self.offsets[self.tick]))}): " + "; ".join(problems)
            )

    # ----------------------------------------------------------------------------------------
    # Event log and time series

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The recorded time series (one dict per recorded tick)."""
        return self.recorder.rows

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event["kind"]
        event["tick"] = self.tick
        self.event_log.append(event)
        if kind in ("buy", "sell", "trade"):
            self.trades_total += 1
            self._counters["trades"] += 1
            self._counters["volume"] += event["amount"]
        elif kind == "liquidate":
            self._counters["liquidations"] += 1
            self._counters["liquidation_volume"] += event["amount"]
            self.social_loss_total += event.get("social_loss", 0.0)

    def _log_index(self) -> None:
        """Log the index the exchange can read now when it changed (for replay)."""
        current = self.feed.index(self.now)
        if current != self._last_logged_index:
            self._last_logged_index = current
            self.event_log.append(
                {
                    "kind": "index",
                    "time": self.now,
                    "tick": self.tick,
                    "price": current[0],
                    "index_timestamp": current[1],
                }
            )

    def _clock_columns(self) -> dict[str, Any]:
        index, index_ts = self.feed.index(self.now)
        return {
            "time": self.now,
            "tick": self.tick,
            "market_price": float(self.market_prices[self.tick]),
            "index_price": index,
            "index_age_s": self.now - index_ts,
        }

    def _take_counts(self) -> dict[str, Any]:
        c = self._counters
        counts = {
            "social_loss_total": self.social_loss_total,
            "liquidations": c["liquidations"],
            "liquidation_volume": float(c["liquidation_volume"]),
            "trades": c["trades"],
            "volume": float(c["volume"]),
            "unsafe_accounts_before_liquidation": self._row_unsafe_before,
            "bankrupt_accounts_before_liquidation": self._row_bankrupt_before,
        }
        self._counters = Counter()
        self._row_unsafe_before = self._row_bankrupt_before = 0
        return counts

    # ----------------------------------------------------------------------------------------
    # Results

    def account_table(self) -> list[dict[str, Any]]:
        """One record per account: owner, deposits, withdrawals, the venue's fields, PnL."""
        # Summed over the log's columns in event order: the floats a Counter loop over the
        # records gives, without rebuilding every record.
        dep = self.event_log.sum_by("account", "amount", "deposit")
        wd = self.event_log.sum_by("account", "amount", "withdraw", "settle")
        owner: dict[str, tuple[str, str]] = {}
        for pop, members in self.agents_by_population.items():
            for a in members:
                owner[a.name] = (pop, getattr(a, "agent_type", type(a).__name__))
                for extra in getattr(a, "account_names", ()):
                    owner[extra] = owner[a.name]
        out = []
        for record in self.venue.account_records():
            name = record.account
            pop, kind = owner.get(name, ("", name if name in ("dev", "pool") else "system"))
            deposits = float(dep.get(name, 0.0))
            withdrawals = float(wd.get(name, 0.0))
            out.append(
                {
                    "account": name,
                    "population": pop,
                    "agent_type": kind,
                    "deposits": deposits,
                    "withdrawals": withdrawals,
                    **record.fields,
                    "final_value": record.value,
                    "pnl": record.value + withdrawals - deposits,
                }
            )
        return out


def _sample_params(params: Any, rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    """Turn a population's params (numbers or distributions) into one dict per agent."""
    fields = params.model_dump() if hasattr(params, "model_dump") else dict(params)
    per_agent: list[dict[str, Any]] = [{} for _ in range(n)]
    for key in sorted(fields):
        value = getattr(params, key, fields[key])
        if hasattr(value, "sample"):
            draws = value.sample(rng, n)
            for i in range(n):
                per_agent[i][key] = float(draws[i])
        else:
            plain = fields[key]
            for i in range(n):
                per_agent[i][key] = plain
    return per_agent
