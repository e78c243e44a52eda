"""Cases from the tests of Predy's contracts (predyprotocol/v2-contracts, v2.0.2), in floats.

The contracts count in 1e8 fixed point; each case converts the raw integers (noted beside it)
and compares at 1e-6. Those tests deploy the pool with the constructor's parameters, not the
mainnet ones: a squared multiplier of 5.5, a future max rate of 0.22%, hedge slippage 0.4%–0.8%
over a 2.5% move. Cases whose positions are so small that the contracts' integer truncation
decides the result (1e-5 contracts) are left out.
"""

from __future__ import annotations

import math

import pytest

from perpsim.engine.core.index import SettableOracle
from perpsim.engine.venues.predy import formulas as fx
from perpsim.engine.venues.predy.config import PredyParams
from perpsim.engine.venues.predy.formulas import FUTURE, SQUARED
from perpsim.engine.venues.predy.pool import PredyMarket

REL = 1e-6

#: PerpetualMarketCore's constructor values, which the contracts' tests run with.
CONTRACT_TEST_PARAMS = PredyParams(
    squared_perp_funding_multiplier=5.5,
    perp_future_max_funding_rate=0.0022,
    min_slippage_tolerance_of_hedge=0.004,
    max_slippage_tolerance_of_hedge=0.008,
    hedge_rate_of_return_threshold=0.025,
    spread_window=0.0,
)


def core(liquidity: float, spot: float = 1000.0) -> tuple[PredyMarket, SettableOracle]:
    oracle = SettableOracle(spot, 0)
    m = PredyMarket(CONTRACT_TEST_PARAMS, oracle, funding_formula="mainnet")
    m.initialize("lp", liquidity, 0.005, from_vault=False)  # scaledBN(5, 5) = 0.005
    return m, oracle


def pool_trade(m: PredyMarket, amounts: tuple[float, float]) -> None:
    """updatePoolPositions, as the core's tests call it (no vault)."""
    st = m.state.copy()
    m._update_positions(st, amounts, m.spot())
    m.state = st


def test_funding_rate_formula_grid() -> None:
    """PoolMath.test.ts: (3·I1 + 7·I3) / 10 over m, dm, L, dL; the test's own JavaScript
    formula, with I1 from ln(L + dL) − ln L."""

    def expected(m: float, dm: float, liq: float, dl: float) -> float:
        i1 = (
            (m + dm / 2) / liq
            if dl == 0
            else (m + dm / 2) * (math.log(liq + dl) - math.log(liq)) / dl
        )
        poly = m**3 + 3 * m * m * dm / 2 + m * dm * dm + dm**3 / 4
        i3 = poly * (liq + dl / 2) / (liq * liq * (liq + dl) * (liq + dl))
        return (3 * i1 + 7 * i3) / 10

    liquidities = [(500, 0), (500, 10), (500, 20), (500, -10), (500, -20)]
    margins = [(20, 380), (20, 40), (20, 20), (20, 0), (20, -10), (20, -20), (20, -30), (20, -100)]
    margins += [(-m, -dm) for m, dm in margins]
    for liq, dl in liquidities:
        for m, dm in margins:
            got = fx.funding_formula(m, dm, liq, dl, "mainnet")
            assert got == pytest.approx(expected(m, dm, liq, dl), rel=1e-9, abs=1e-15)


def test_required_margin_cases() -> None:
    """NettingLib.test.ts getRequiredMargin (raw values × 1e-8)."""
    # Short squared: gamma1 −2, delta1 −2000, S 1000 → 3,920,000.
    assert fx.required_margin(SQUARED, 0.0, -2000e-8, -2e-8, 1000.0, 0.4) == pytest.approx(
        3_920_000e-8, rel=REL
    )
    # Short future: delta0 −10 → 14,000.
    assert fx.required_margin(FUTURE, -10e-8, 0.0, 0.0, 1000.0, 0.4) == pytest.approx(
        14_000e-8, rel=REL
    )
    assert fx.required_margin(SQUARED, 0.0, 0.0, 0.0, 1000.0, 0.4) == 0.0


def test_add_margin_and_hedge_cases() -> None:
    """NettingLib.test.ts addMargin: a future delta of −100 locks 140,000; hedging it buys 100
    of underlying for 100,000 (no slippage in the library), leaving 40,000; when the delta
    falls to −90 the required margin is 126,000 and the hedge is worth 140,000: −14,000."""
    rm = fx.required_margin(FUTURE, -100e-8, 0.0, 0.0, 1000.0, 0.4)
    assert rm == pytest.approx(140_000e-8, rel=REL)
    plan = fx.hedge_amounts(0.0, -100e-8, 0.0, 1000.0)
    assert plan.is_long and plan.amount_underlying == pytest.approx(100e-8, rel=REL)
    assert plan.amount_usdc == pytest.approx(100_000e-8, rel=REL)
    usdc = rm - plan.amount_usdc
    assert usdc == pytest.approx(40_000e-8, rel=REL)
    hv = fx.hedge_position_value(FUTURE, usdc, plan.amount_underlying, 1000.0, -90e-8, 0.0)
    rm2 = fx.required_margin(FUTURE, -90e-8, 0.0, 0.0, 1000.0, 0.4)
    assert usdc + (rm2 - hv) == pytest.approx(26_000e-8, rel=REL)


def test_utilization_ratio_case() -> None:
    """PerpetualMarketCore.test.ts: 10 USDC of liquidity, the pool short 0.02 squared
    (2,000,000 raw) → utilisation 78,403,136 (× 1e-8)."""
    m, _ = core(10.0)
    pool_trade(m, (0.0, 0.02))
    assert fx.utilization_ratio(m.state.amount_liquidity, m.state.locked) == pytest.approx(
        0.78403136, rel=REL
    )


@pytest.mark.parametrize(
    ("hedge_spot", "usdc"), [(1000.0, 0.2008), (980.0, 0.20144)], ids=["no move", "2% move"]
)
def test_token_amounts_for_hedging(hedge_spot: float, usdc: float) -> None:
    """getTokenAmountForHedging: 2,000 USDC, the pool short 0.001 squared (1e5 raw) at 1000:
    buy 0.0002 underlying (20,000 raw) for 0.2008 (min 0.4%) or 0.20144 (last hedge at 980:
    0.4% + floor(40 × 2.04% / 2.5%) bp = 0.72%)."""
    m, oracle = core(2000.0, hedge_spot)
    oracle.set(1000.0, 0)
    pool_trade(m, (0.0, 0.001))
    plan = m.hedge_plan()
    assert plan.is_long
    assert plan.amount_underlying == pytest.approx(0.0002, rel=REL)
    assert plan.amount_usdc == pytest.approx(usdc, rel=REL)


@pytest.mark.parametrize(
    ("hedge_spot", "usdc", "underlying"),
    [(1000.0, 0.1992, 0.0002), (980.0, 0.1945888, 0.000196)],
    ids=["no move", "2% move"],
)
def test_token_amounts_for_unwinding_a_hedge(
    hedge_spot: float, usdc: float, underlying: float
) -> None:
    """The hedge bought at ``hedge_spot``, then the position closes at 1000: sell it all for
    0.1992 (0.4% less) or, bought at 980 (0.000196), for 0.196 × (1 − 0.72%) = 0.1945888."""
    m, oracle = core(2000.0)
    pool_trade(m, (0.0, 0.001))
    oracle.set(hedge_spot, 0)
    m.hedge("hedger")
    oracle.set(1000.0, 0)
    pool_trade(m, (0.0, -0.001))
    plan = m.hedge_plan()
    assert not plan.is_long
    assert plan.amount_underlying == pytest.approx(underlying, rel=REL)
    assert plan.amount_usdc == pytest.approx(usdc, rel=REL)
