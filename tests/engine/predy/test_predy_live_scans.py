"""The per-tick scans of a Predy market read the live vaults only, with the whole scans' floats.

Every vault an agent ever opened keeps its row; most of a long run's vaults are flat and empty
(a noise trader withdraws everything after each close). The unsafe set, the recorded counts,
open interest and the accounting check between full ones used to scan every row each tick, so
a tick cost more the longer the run had gone on (the 30-day benchmark ran 10 times slower per
tick at its end than at its start). These tests count rows and calls, not seconds.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpsim.engine.core.index import SettableOracle
from perpsim.engine.venue import IncrementalAccounting, supports
from perpsim.engine.venues.predy.config import PredyParams
from perpsim.engine.venues.predy.pool import PredyMarket, VaultRow, Vaults
from perpsim.engine.venues.predy.venue import PredyVenue
from perpsim.model import PerpModel
from perpsim.model.model import FULL_CHECK_EVERY
from perpsim.scenario import load_scenario

T0 = 1_700_000_000


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def whole_live_rows(v: Vaults) -> list[int]:
    usdc, pos, _, _ = v.view()
    return np.flatnonzero((usdc != 0.0) | (pos != 0.0).any(axis=1)).tolist()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 7),
            st.sampled_from([0.0, -0.0, 1.5, -2.0]),
            st.sampled_from([0.0, -0.0, 3.0]),
            st.sampled_from([0.0, -0.0, -1.0]),
        ),
        max_size=40,
    )
)
def test_live_rows_are_the_vaults_holding_usdc_or_a_position(
    writes: list[tuple[int, float, float, float]],
) -> None:
    v = Vaults(2)  # the rows beyond the second grow the arrays
    for k in range(8):
        v.add(f"v{k}")
    for row, cash, q0, q1 in writes:
        v.write(row, VaultRow(cash, (q0, q1), (1000.0, 0.0), (0.5, 0.0)))
        assert v.live_rows().tolist() == whole_live_rows(v)
    rows, usdc_l, pos_l, entry_l, efund_l = v.live_view()
    usdc, pos, entry, efund = v.view()
    assert rows.dtype == np.int64
    for got, whole in ((usdc_l, usdc), (pos_l, pos), (entry_l, entry), (efund_l, efund)):
        assert got.tobytes() == whole[rows].tobytes()


def crowded_market(n: int = 400, seed: int = 3) -> tuple[PredyMarket, SettableOracle]:
    """A market where ``n`` vaults have traded: about a quarter still hold a position, some
    hold only USDC, the rest closed and withdrew everything."""
    rng = np.random.default_rng(seed)
    oracle = SettableOracle(1000.0, T0)
    m = PredyMarket(PredyParams(), oracle, capacity=8)
    m.set_time(T0)
    m.initialize("lp", 50_000_000.0, 0.0016, from_vault=False)
    for k in range(n):
        name = f"t{k}"
        m.deposit_margin(name, 2_000.0)
        size = float(rng.integers(1, 20)) * (1.0 if rng.random() < 0.5 else -1.0)
        product = (size, 0.0) if rng.random() < 0.7 else (0.0, size)
        m.trade(name, product)
        fate = rng.random()
        if fate < 0.75:
            m.trade(name, (-product[0], -product[1]))
            if fate < 0.65:
                usdc = m.vaults.read(m.vaults.row(name)).usdc
                m.withdraw_margin(name, usdc)
        if k % 50 == 0:
            m.set_time(m.now + 600)
            oracle.set(1000.0 * (1.0 + 0.01 * rng.standard_normal()), m.now)
    m.set_time(m.now + 3_600)
    oracle.set(800.0, m.now)  # some holders are now unsafe
    return m, oracle


def test_the_live_scans_give_the_whole_scans_floats() -> None:
    m, _ = crowded_market()
    live = m.vaults.live_rows()
    assert 0 < len(live) < len(m.vaults) // 2  # most vaults are flat and empty
    values, mcs = m.values_and_min_collaterals()
    rows, lv, lmc, has = m.live_values_and_min_collaterals()
    assert rows.tolist() == live.tolist()
    assert lv.tobytes() == values[rows].tobytes() and lmc.tobytes() == mcs[rows].tobytes()
    dead = np.setdiff1d(np.arange(len(m.vaults)), rows)
    assert (values[dead] == 0.0).all()
    _, pos, _, _ = m.vaults.view()
    assert has.tolist() == (pos[rows] != 0.0).any(axis=1).tolist()

    for product in ("future", "squared"):
        venue = PredyVenue(m, product)
        unsafe = np.flatnonzero((values < mcs) & (pos != 0.0).any(axis=1))
        assert unsafe.size > 0
        assert venue.liquidatable_accounts().tolist() == unsafe.tolist()
        col = pos[:, venue.i]
        assert bits(venue.open_interest()) == bits(float(col[col > 0.0].sum()))
        seen = venue.observe()
        assert seen["unsafe_accounts"] == unsafe.size
        assert seen["bankrupt_accounts"] == int(np.count_nonzero(values < 0.0))
    assert bits(m.total_value(full=False)) == bits(m.total_value())
    assert m.check_invariants(full=False) == m.check_invariants() == []


def test_the_per_tick_scans_never_read_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    m, _ = crowded_market()
    scanned: list[int] = []
    inner = PredyMarket._values_and_mcs_at

    def counting(self: PredyMarket, usdc: np.ndarray, *rest: np.ndarray) -> object:
        scanned.append(len(usdc))
        return inner(self, usdc, *rest)

    def whole_view(self: Vaults) -> object:
        raise AssertionError("a per-tick scan read every vault")

    monkeypatch.setattr(PredyMarket, "_values_and_mcs_at", counting)
    monkeypatch.setattr(Vaults, "view", whole_view)
    venue = PredyVenue(m)
    venue.liquidatable_accounts()
    venue.observe()
    venue.open_interest()
    assert venue.check_changed_invariants() == []
    assert supports(venue, IncrementalAccounting)
    assert scanned and set(scanned) == {len(m.vaults.live_rows())}


SCENARIO = """
name: predy_live_scans
seed: 11
clock: {start: "2024-01-01T00:00:00Z", tick: 5m, duration: 1d}
price_path: {kind: gbm, s0: 2280, mu: 0.0, sigma: 0.6}
oracle: {heartbeat: 24h, deviation_threshold: 0.0005, latency: 0}
venue:
  kind: predy
  funding_formula: seed
  pool: {initial_liquidity: 20000000, initial_variance: 0.000986}
  governance: {}
agents:
  - name: noise
    type: noise_trader
    count: 300
    params:
      arrival_rate: 0.5
      size: {dist: lognormal, median: 1, sigma: 0.8, high: 20}
      leverage: {dist: uniform, low: 1, high: 8}
      holding_time: {dist: lognormal, median: 30m, sigma: 0.5}
      initial_cash: {dist: lognormal, median: 5000, sigma: 0.7}
  - {name: arb, type: arbitrageur, count: 2}
  - {name: lp, type: liquidity_provider, count: 2}
  - {name: liquidator, type: liquidator, count: 1}
  - {name: keeper, type: keeper, count: 1, params: {gas_cost: 0.0}}
  - {name: hedger, type: predy_hedger, params: {interval: 1h, threshold: 1.0}}
output: {record_every: 1}
"""


def test_a_tick_costs_the_live_vaults_not_every_vault_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "predy_live_scans.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    model = PerpModel(load_scenario(path), base_dir=tmp_path)
    venue = model.venue
    assert isinstance(venue, PredyVenue)
    market = venue.market
    scanned: list[int] = []
    whole: list[int] = []
    inner_scan = PredyMarket._values_and_mcs_at
    inner_view = Vaults.view

    def counting_scan(self: PredyMarket, usdc: np.ndarray, *rest: np.ndarray) -> object:
        scanned.append(len(usdc))
        return inner_scan(self, usdc, *rest)

    def counting_view(self: Vaults) -> object:
        whole.append(len(self))
        return inner_view(self)

    monkeypatch.setattr(PredyMarket, "_values_and_mcs_at", counting_scan)
    monkeypatch.setattr(Vaults, "view", counting_view)
    most_live = 0
    while model.running:
        scanned.clear()
        whole.clear()
        model.step()
        live = len(market.vaults.live_rows())
        most_live = max(most_live, live)
        if model.tick % FULL_CHECK_EVERY and model.tick < model.n_ticks:
            assert whole == [], f"tick {model.tick} read every vault"
            # The unsafe set, the check and the row: at most three scans of (at most) the live
            # vaults (one when nothing was written between them: the answer is kept).
            assert len(scanned) <= 3 and max(scanned, default=0) <= most_live
    opened = len(market.vaults)
    # The test has teeth: most vaults opened in the run are flat and empty at the end.
    assert opened > 250 and len(market.vaults.live_rows()) < opened // 2
    assert most_live < opened * 2 // 3
