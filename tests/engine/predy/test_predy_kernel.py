"""The compiled liquidation price is the Python bisection's float, bit for bit.

``PredyVenue._liquidation_price`` runs ``perpsim.engine.venues.predy.kernel`` unless
``compiled_liquidation_prices`` is false, when it runs the Python gap functions and bisection.
Both are asked about random vaults (signed zeros, one product or both, positions far inside and
far outside their margin), funding rates and funding (huge, infinite and NaN among them),
parameters and spots; the answers must have the same bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpsim.engine.core.index import SettableOracle
from perpsim.engine.venues.predy import kernel
from perpsim.engine.venues.predy.config import PredyParams
from perpsim.engine.venues.predy.pool import PredyMarket, VaultRow
from perpsim.engine.venues.predy.venue import PredyVenue

T0 = 1_700_000_000


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


@contextmanager
def python_path() -> Iterator[None]:
    PredyVenue.compiled_liquidation_prices = False
    try:
        yield
    finally:
        PredyVenue.compiled_liquidation_prices = True


def venue(alpha: float, floor: float, product: str) -> PredyVenue:
    m = PredyMarket(
        PredyParams(vault_risk_param=alpha, min_margin=floor), SettableOracle(1000.0, T0)
    )
    return PredyVenue(m, product)


sizes = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-9, 150.0]),
    st.floats(-500.0, 500.0, allow_nan=False),
)
amounts = st.one_of(st.sampled_from([0.0, -0.0]), st.floats(-1e7, 1e7, allow_nan=False))
prices = st.floats(1.0, 1e5, allow_nan=False)
rates = st.one_of(
    st.floats(-0.01, 0.01, allow_nan=False),
    st.sampled_from([0.0, -0.0, -1.0, 1e300, float("inf"), float("nan")]),
)


@settings(max_examples=600, deadline=None)
@given(
    usdc=amounts,
    q=st.tuples(sizes, sizes),
    entry=st.tuples(prices, prices),
    funding=st.tuples(amounts, amounts),
    entry_funding=st.tuples(amounts, amounts),
    r=st.tuples(rates, rates),
    alpha=st.floats(0.001, 0.49),
    floor=st.sampled_from([0.0, 200.0, 5_000.0]),
    spot=prices,
    product=st.sampled_from(["future", "squared"]),
)
def test_the_compiled_liquidation_price_is_the_python_one(
    usdc: float,
    q: tuple[float, float],
    entry: tuple[float, float],
    funding: tuple[float, float],
    entry_funding: tuple[float, float],
    r: tuple[float, float],
    alpha: float,
    floor: float,
    spot: float,
    product: str,
) -> None:
    v = venue(alpha, floor, product)
    row = VaultRow(usdc, q, entry, entry_funding)
    compiled = v._liquidation_price(row, spot, r, funding)
    with python_path():
        python = v._liquidation_price(row, spot, r, funding)
    assert bits(compiled) == bits(python)


def test_every_outcome_of_the_bisection_is_reached() -> None:
    """Below at the spot, found below it, found above it, and none (the test has teeth only if
    the compiled code meets each branch)."""
    v = venue(0.05, 200.0, "future")
    cases = {
        kernel.BELOW: VaultRow(0.0, (10.0, 0.0), (1000.0, 0.0), (0.0, 0.0)),
        kernel.FOUND: VaultRow(2_000.0, (10.0, 0.0), (1000.0, 0.0), (0.0, 0.0)),
        kernel.NONE: VaultRow(1e9, (1.0, 0.0), (1000.0, 0.0), (0.0, 0.0)),
    }
    seen = {}
    for outcome, row in cases.items():
        found, _ = kernel.liquidation_index(
            row.usdc, *row.position, *row.entry, 0.0, 0.0, 0.0, 0.0, 0.05, 200.0, 10_000.0, 1000.0
        )
        seen[outcome] = found
        compiled = v._liquidation_price(row, 1000.0, (0.0, 0.0), (0.0, 0.0))
        with python_path():
            assert bits(compiled) == bits(v._liquidation_price(row, 1000.0, (0.0, 0.0), (0.0, 0.0)))
    assert seen == {k: k for k in cases}
    short = VaultRow(2_000.0, (-10.0, 0.0), (1000.0, 0.0), (0.0, 0.0))  # found above the spot
    assert v._liquidation_price(short, 1000.0, (0.0, 0.0), (0.0, 0.0)) > 1000.0


@pytest.mark.parametrize("product", ["future", "squared"])
def test_account_views_use_the_compiled_price(
    product: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = PredyMarket(PredyParams(), SettableOracle(1000.0, T0))
    m.set_time(T0)
    m.initialize("lp", 5_000_000.0, 0.0016, from_vault=False)
    m.deposit_margin("t", 3_000.0)
    m.trade("t", (5.0, 0.0) if product == "future" else (0.0, 5.0))
    calls: list[int] = []
    inner = kernel.liquidation_index

    def counting(*args: float) -> tuple[int, float]:
        calls.append(1)
        return inner(*args)  # type: ignore[no-any-return]

    monkeypatch.setattr(kernel, "liquidation_index", counting)
    view = PredyVenue(m, product).account("t")
    assert calls == [1]
    with python_path():
        assert PredyVenue(m, product).account("t") == view
    assert calls == [1]
