"""D8X's reference simulator: its first trade on a fresh pool (the shipped replays
``d8x_reference_first_trade.yaml`` and ``d8x_whitepaper_table1.yaml`` run in tests/replay).

The expected numbers are the output of D8X's public simulator (D8-X/perpetual-simulation:
``Perpetual.trade`` on a pool made by ``AMM.add_perpetual``) with the parameters of its default
perpetual, ``data/params/BTCUSD-MATICPerpetual.json``, for one trader's first trade at S2 =
23,000 USD (S3 = 0.9 USD for the quanto pool), in each collateral type, with a well-funded and a
thin AMM fund. They were produced once by running that code; they are not recomputed here.

perpsim agrees on the price (both sides), the trader's booking and the AMM's margin in every
case. With a thin fund and no DF the funds agree too. With a well-funded DF the simulator
throttles DF → AMM-fund transfers (none in the trade's own block) where perpsim tops the fund up
at once, as the spec orders: only the split between AMM fund and DF differs, not the total.
"""

from __future__ import annotations

from typing import Any

import pytest

from perpsim.engine.venues.d8x import formulas as f
from perpsim.replay import run_replay_doc

#: BTCUSD-MATICPerpetual.json in perpsim's keys (pricing capital as the simulator's, P = 0).
SIMULATOR_GOVERNANCE: dict[str, Any] = {
    "initial_margin_rate_alpha": 0.05,
    "margin_rate_beta": 0.0,
    "initial_margin_rate_cap": 0.05,
    "maintenance_margin_rate_alpha": 0.03,
    "treasury_fee_rate": 0.000075,
    "lp_fee_rate": 0.000025,
    "liquidation_penalty_rate": 0.01,
    "minimal_spread": 0.00005,
    "minimal_spread_in_stress": 0.00005,
    "incentive_spread": 0.00015,
    "lot_size": 0.0001,
    "sigma2": 0.08,
    "sigma3": 0.12,
    "rho23": 0.25,
    "stress_return_s2_down": -0.15,
    "stress_return_s2_up": 0.15,
    "stress_return_s3_down": -0.20,
    "stress_return_s3_up": -0.10,
    "cover_n_rate": 0.05,
    "df_lambda_slow": 0.9995,
    "df_lambda_fast": 0.97,
    "amm_target_dd_baseline": -3.719016482,
    "amm_target_dd_stress": -3.4316144,
    "amm_min_size": 100_000.0,
    "minimal_trader_exposure_ema": 2.0,
    "minimal_amm_exposure_ema": 5.0,
    "pricing_capital": "pool",
    "pricing_lp_share": 0.0,
}

# name: (collateral, S2, S3, AMM fund, DF, trader cash, k, AMM fund minimum) and the simulator's
# (p(k), p(−k), trader cash after, locked-in after, AMM margin cash after, AMM fund, DF).
CASES: dict[str, tuple[tuple[Any, ...], tuple[float, ...]]] = {
    "quanto": (
        ("quanto", 23_000.0, 0.9, 100_000.0, 1e6, 20_000.0, 0.5, 100_000.0),
        (
            23002.659375000003,
            22997.340624999997,
            19997.244791666664,
            11500.0,
            638.8888888888871,
            99363.86631944445,
            1e6,
        ),
    ),
    "quanto_short": (
        ("quanto", 23_000.0, 0.9, 100_000.0, 1e6, 20_000.0, -0.5, 100_000.0),
        (
            22997.340624999997,
            23002.659375000003,
            19997.244791666664,
            -11500.0,
            638.8888888888907,
            99363.86631944445,
            1e6,
        ),
    ),
    "base": (
        ("base", 23_000.0, 23_000.0, 5.0, 50.0, 1.0, 0.5, 5.0),
        (23002.659375000003, 22997.340625, 0.9998921875, 11500.0, 0.025, 4.9751078125, 50.0),
    ),
    "quote": (
        ("quote", 23_000.0, 1.0, 100_000.0, 1e6, 20_000.0, 0.5, 100_000.0),
        (
            23002.659375000003,
            22997.340625,
            19997.520312499997,
            11500.0,
            575.0,
            99427.47968749999,
            1e6,
        ),
    ),
    "quanto_thin": (
        ("quanto", 23_000.0, 0.9, 2_000.0, 0.0, 20_000.0, 0.5, 100_000.0),
        (
            23505.499562034125,
            22178.153138620317,
            19717.889132203265,
            11500.0,
            638.8888888888871,
            1643.221978907849,
            0.0,
        ),
    ),
    "base_thin": (
        ("base", 23_000.0, 23_000.0, 0.1, 0.0, 1.0, 0.5, 5.0),
        (
            23056.307754551442,
            22708.062149952046,
            0.9987259183793165,
            11500.0,
            0.025,
            0.07627408162068353,
            0.0,
        ),
    ),
    "quote_thin": (
        ("quote", 23_000.0, 1.0, 2_000.0, 0.0, 20_000.0, 0.5, 100_000.0),
        (
            23473.30360528371,
            22780.39459554813,
            19762.198197358142,
            11500.0,
            575.0,
            1662.8018026418545,
            0.0,
        ),
    ),
}

OBSERVED = [
    "t.cash_balance",
    "t.locked_in_value",
    "pool.amm_cash",
    "pool.amm_fund_cash",
    "pool.default_fund_cash",
]


def _first_trade(setup: tuple[Any, ...]) -> tuple[dict[str, float], dict[str, float]]:
    collateral, s2, s3, amm_fund, df, cash, k, min_size = setup
    ops: list[dict[str, Any]] = [{"op": "set_time", "time": 1000}, {"op": "set_index", "price": s2}]
    if collateral == "quanto":
        ops.append({"op": "set_collateral_price", "price": s3})
    pool: dict[str, Any] = {"op": "create_pool", "collateral": collateral, "amm_fund": amm_fund}
    if df:
        pool["default_fund"] = df
    ops += [
        pool,
        {"op": "deposit", "account": "t", "amount": cash},
        {"op": "observe", "names": [f"quote@{k}.price", f"quote@{-k}.price"]},
        {"op": "trade", "account": "t", "amount": k},
        {"op": "observe", "names": OBSERVED},
        {"op": "check_invariants"},
    ]
    governance = {**SIMULATOR_GOVERNANCE, "amm_min_size": min_size}
    report = run_replay_doc({"kind": "d8x", "governance": governance, "ops": ops})
    assert report.ok, (report.failures, report.errors)
    return report.observations[0]["values"], report.observations[1]["values"]


@pytest.mark.parametrize("name", list(CASES))
def test_the_first_trade_of_the_reference_simulator(name: str) -> None:
    setup, expected = CASES[name]
    k = setup[6]
    price, opposite, cash, locked, amm_cash, amm_fund, df = expected
    quotes, after = _first_trade(setup)
    assert quotes[f"quote@{k}.price"] == pytest.approx(price, rel=1e-12)
    assert quotes[f"quote@{-k}.price"] == pytest.approx(opposite, rel=1e-12)
    assert after["t.cash_balance"] == pytest.approx(cash, rel=1e-12)
    assert after["t.locked_in_value"] == pytest.approx(locked, rel=1e-12)
    assert after["pool.amm_cash"] == pytest.approx(amm_cash, rel=1e-9)
    funds = after["pool.amm_fund_cash"] + after["pool.default_fund_cash"]
    assert funds == pytest.approx(amm_fund + df, rel=1e-12)
    if df == 0.0:
        assert after["pool.amm_fund_cash"] == pytest.approx(amm_fund, rel=1e-12)


def test_the_incentive_spread_has_the_simulators_shape() -> None:
    assert [f.incentive_shape(x) for x in (-2.0, -1.0, -0.25, 0.0, 0.25, 1.0, 3.0)] == [
        -1.0,
        -1.0,
        -0.4375,
        0.0,
        0.4375,
        1.0,
        1.0,
    ]
    # The mid price carries no incentive; a trade carries ι × shape(k / Π̄).
    assert f.perp_price(0.0, 0.0, 100.0, 0.0, 0.001, 0.01, 2.0) == 100.0
    assert f.perp_price(1.0, 0.0, 100.0, 0.0, 0.0, 0.01, 2.0) == pytest.approx(100.75)
    assert f.perp_price(1.0, 0.02, 100.0, 0.0, 0.001, 0.0) == pytest.approx(102.1)


def test_the_amms_pnl_is_what_the_traders_lose() -> None:
    """``pool.amm_pnl`` ignores LP deposits and withdrawals and mirrors the traders' P&L."""
    ops: list[dict[str, Any]] = [
        {"op": "set_time", "time": 1000},
        {"op": "set_index", "price": 1000.0},
        {"op": "create_pool", "amm_fund": 500.0, "default_fund": 1000.0},
        {"op": "deposit", "account": "lp", "amount": 3000.0},
        {"op": "add_liquidity", "account": "lp", "amount": 2000.0},
        {"op": "observe", "names": ["pool.amm_pnl"], "expect": {"pool.amm_pnl": 0.0}},
        {"op": "deposit", "account": "a", "amount": 400.0},
        {"op": "deposit", "account": "b", "amount": 400.0},
        {"op": "trade", "account": "a", "amount": 1.0},
        {"op": "trade", "account": "b", "amount": -0.4, "at_time": 1600},
        {"op": "set_index", "price": 1030.0, "timestamp": 4000},
        {"op": "remove_liquidity", "account": "lp", "shares": 0.5},
        {"op": "observe", "names": ["pool.amm_pnl", "a.margin_balance", "b.margin_balance"]},
    ]
    report = run_replay_doc({"kind": "d8x", "ops": ops, "check_invariants": True})
    assert report.ok, (report.failures, report.errors)
    values = report.observations[-1]["values"]
    traders = values["a.margin_balance"] + values["b.margin_balance"] - 800.0
    assert values["pool.amm_pnl"] != 0.0
    assert values["pool.amm_pnl"] == pytest.approx(-traders, abs=1e-9)


def test_quanto_targets_out_of_reach_are_refused_up_front() -> None:
    """With σ3 this large no quanto AMM fund reaches the target DD (the contracts revert)."""
    from perpsim.engine.venues.d8x.config import D8XConfig
    from perpsim.errors import GovernanceError

    assert f.quanto_target_reachable(0.37, -2.5828074520)
    assert not f.quanto_target_reachable(0.38, -2.5828074520)
    with pytest.raises(ValueError, match="no quanto AMM fund reaches"):
        f.target_collateral_m3(1.0, 1000.0, 1000.0, 1.0, 0.05, 0.8, 0.1, -2.58)
    with pytest.raises(ValueError, match=r"keep sigma3 below 0\.3737"):
        D8XConfig.model_validate({"pool": {"collateral": "quanto"}, "governance": {"sigma3": 0.6}})
    # The same σ3 is harmless for quote collateral, and a quanto change at run time is refused.
    D8XConfig.model_validate({"pool": {"collateral": "quote"}, "governance": {"sigma3": 0.6}})
    config = D8XConfig.model_validate({"pool": {"collateral": "quanto"}})
    with pytest.raises(GovernanceError, match="too large for amm_target_dd_baseline"):
        config.with_governance("sigma3", 0.6)
    report = run_replay_doc(
        {
            "kind": "d8x",
            "ops": [
                {"op": "set_index", "price": 1000.0},
                {"op": "set_collateral_price", "price": 2.0},
                {"op": "create_pool", "collateral": "quanto", "amm_fund": 100.0},
                {
                    "op": "set_governance",
                    "key": "sigma3",
                    "value": 0.6,
                    "expect_error": "too large",
                },
                {"op": "observe", "names": ["pool.k_star"]},
            ],
        }
    )
    assert report.ok, report.failures
