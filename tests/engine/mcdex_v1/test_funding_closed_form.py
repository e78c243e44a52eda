"""The closed-form funding sum of seed 004 against the per-second brute force (its definition).

Regions of the funding curve, numbered as in ``perpsim.engine.venues.mcdex_v1.funding``:
0: v <= -L, 1: -L < v <= -D, 2: -D < v <= D, 3: D < v <= L, 4: v > L.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from perpsim.engine.venues.mcdex_v1.funding import (
    _crossing_time,  # private, tested directly: f is continuous, so Acc alone cannot see T's
    # inclusivity at an exact boundary (a wrong T there changes Acc by 0).
    accumulated_funding,
    ema_premium,
    funding_curve,
    funding_rate,
)
from perpsim.engine.venues.mcdex_v1.governance import FUNDING_PERIOD_SECONDS
from perpsim.errors import BadAmountError

# Seed / spec defaults: index 100 makes L = 0.5 and D = 0.05 (absolute premiums).
INDEX = 100.0
LIMIT = 0.005
DAMP = 0.0005
ALPHA = 2.0 / (600 + 1)
L_ABS = LIMIT * INDEX
D_ABS = DAMP * INDEX

ALL_PAIRS = list(itertools.product(range(5), repeat=2))

Case = tuple[int, float, float, float, float, float, float]  # n, v0, p, index, alpha, limit, damp


# --------------------------------------------------------------------------- references


def _f_ref(v: float, lim: float, damp: float) -> float:
    """The seed's curve written out from the five regions (independent of the package)."""
    if v <= -lim:
        return -lim + damp
    if v <= -damp:
        return v + damp
    if v <= damp:
        return 0.0
    if v <= lim:
        return v - damp
    return lim - damp


def _region_ref(v: float, lim: float, damp: float) -> int:
    if v <= -lim:
        return 0
    if v <= -damp:
        return 1
    if v <= damp:
        return 2
    if v <= lim:
        return 3
    return 4


def _ema_ref(i: int, v0: float, p: float, a: float) -> float:
    # v_0 is the stored EMA itself; later seconds use the seed's formula in float64.
    return v0 if i == 0 else (v0 - p) * a**i + p


def accumulated_funding_bruteforce(
    n: int,
    v0: float,
    premium: float,
    index_price: float,
    ema_alpha: float,
    mark_premium_limit: float,
    funding_dampener: float,
) -> tuple[float, float]:
    """Per-second reference: ``(v_n, fsum(f(v_i) for i in range(n)))``."""
    a = 1.0 - ema_alpha
    lim = mark_premium_limit * index_price
    damp = funding_dampener * index_price
    acc = math.fsum(_f_ref(_ema_ref(i, v0, premium, a), lim, damp) for i in range(n))
    return _ema_ref(n, v0, premium, a), acc


def _bruteforce_numpy(case: Case, chunk: int = 1_000_000) -> float:
    """Vectorised per-second reference for n ~ 1e7 (f = clip(v, ±L) - clip(v, ±D))."""
    n, v0, p, index, alpha, limit, damp = case
    a, lim, dmp = 1.0 - alpha, limit * index, damp * index
    partial = [_f_ref(v0, lim, dmp)] if n > 0 else []
    for start in range(1, n, chunk):
        i = np.arange(start, min(n, start + chunk), dtype=np.float64)
        v = (v0 - p) * np.power(a, i) + p
        partial.append(float(np.sum(np.clip(v, -lim, lim) - np.clip(v, -dmp, dmp))))
    return math.fsum(partial)


def _tol(case: Case) -> float:
    n, v0, p, index, _alpha, limit, _damp = case
    return 1e-12 * max(n, 1) * max(limit * index, abs(v0), abs(p))


def _check(case: Case) -> tuple[float, float]:
    """Closed form == brute force (vt bit for bit, acc to the scaled tolerance)."""
    vt, acc = accumulated_funding(*case)
    vt_ref, acc_ref = accumulated_funding_bruteforce(*case)
    assert vt == vt_ref
    assert abs(acc - acc_ref) <= _tol(case), (case, acc, acc_ref)
    return vt, acc


def _p_for_target(v0: float, target: float, n: int, alpha: float) -> float:
    """The premium that makes the EMA go from v0 to ``target`` in n seconds."""
    an = (1.0 - alpha) ** n
    return (target - v0 * an) / (1.0 - an)


def _regions_visited(case: Case) -> set[int]:
    n, v0, p, index, alpha, limit, damp = case
    a, lim, dmp = 1.0 - alpha, limit * index, damp * index
    return {_region_ref(_ema_ref(i, v0, p, a), lim, dmp) for i in range(n + 1)}


# --------------------------------------------------------------------------- the 25 cases

# A point inside each region for the defaults (L = 0.5, D = 0.05).
_INSIDE = {0: -0.8, 1: -0.3, 2: 0.01, 3: 0.3, 4: 0.8}
# For a moving EMA that stays in one region: a second point of the same region.
_INSIDE_2 = {0: -0.6, 1: -0.2, 2: -0.03, 3: 0.4, 4: 0.6}


def _explicit_case(r0: int, rt: int) -> Case:
    n = 400
    target = _INSIDE[rt] if r0 != rt else _INSIDE_2[rt]
    p = _p_for_target(_INSIDE[r0], target, n, ALPHA)
    return (n, _INSIDE[r0], p, INDEX, ALPHA, LIMIT, DAMP)


@pytest.mark.parametrize(("r0", "rt"), ALL_PAIRS)
def test_explicit_transition(r0: int, rt: int) -> None:
    case = _explicit_case(r0, rt)
    n, v0, p = case[0], case[1], case[2]
    vt, _ = _check(case)
    assert _region_ref(v0, L_ABS, D_ABS) == r0
    assert _region_ref(vt, L_ABS, D_ABS) == rt
    # The example spends at least one second in every region between start and end, so every
    # segment of the seed's branch is non-empty.
    lo, hi = min(r0, rt), max(r0, rt)
    a = 1.0 - ALPHA
    seconds = [_region_ref(_ema_ref(i, v0, p, a), L_ABS, D_ABS) for i in range(n)]
    assert set(seconds) == set(range(lo, hi + 1))


@pytest.mark.parametrize("r", range(5))
def test_explicit_constant_ema_in_each_region(r: int) -> None:
    v = _INSIDE[r]
    vt, acc = _check((1000, v, v, INDEX, ALPHA, LIMIT, DAMP))
    assert vt == v
    assert acc == pytest.approx(1000 * _f_ref(v, L_ABS, D_ABS), rel=1e-14, abs=0.0)


def test_transition_reachability() -> None:
    """All 25 pairs are reachable for 0 < D < L: off-diagonal ones rising (end above start) or
    falling (end below start), diagonal ones both ways. That the other direction can never reach
    an off-diagonal pair is test_end_region_lies_between_start_and_premium.
    """
    reached: dict[tuple[int, int], set[str]] = {}
    for r0, rt in ALL_PAIRS:
        case = _explicit_case(r0, rt)
        vt, _ = accumulated_funding(*case)
        pair = (_region_ref(case[1], L_ABS, D_ABS), _region_ref(vt, L_ABS, D_ABS))
        reached.setdefault(pair, set()).add("rising" if case[2] > case[1] else "falling")
    # Diagonal pairs: both directions (and the constant EMA, tested above).
    for r in range(5):
        v = _INSIDE[r]
        for p in (v - 1e-3, v + 1e-3):
            vt, _ = accumulated_funding(10, v, p, INDEX, ALPHA, LIMIT, DAMP)
            assert _region_ref(vt, L_ABS, D_ABS) == r
            reached.setdefault((r, r), set()).add("rising" if p > v else "falling")
    assert set(reached) == set(ALL_PAIRS)
    for (r0, rt), directions in reached.items():
        if r0 < rt:
            assert directions == {"rising"}
        elif r0 > rt:
            assert directions == {"falling"}
        else:
            assert directions == {"rising", "falling"}


def _in_region(draw: st.DrawFn, r: int, lim: float, damp: float) -> float:
    # Upper bounds are inclusive, so u = 0 hits the inclusive edge of regions 0..3.
    u = draw(st.floats(0.0, 1.0, exclude_max=True))
    if r == 0:
        return -lim - u * 2.0 * lim
    if r == 1:
        return -damp - u * (lim - damp)
    if r == 2:
        return damp - u * 2.0 * damp
    if r == 3:
        return lim - u * (lim - damp)
    return lim + (1.0 - u) * 2.0 * lim


@st.composite
def _transition_cases(draw: st.DrawFn, r0: int, rt: int) -> Case:
    index = draw(st.floats(1.0, 1e5))
    limit = draw(st.floats(1e-3, 0.05))
    damp = limit * draw(st.floats(0.05, 0.95))
    alpha = draw(st.floats(1e-5, 0.3))
    n = draw(st.integers(1, 2000))
    lim, dmp = limit * index, damp * index
    v0 = _in_region(draw, r0, lim, dmp)
    target = _in_region(draw, rt, lim, dmp)
    if r0 == rt and draw(st.booleans()):
        target = v0  # the constant EMA
    p = v0 if target == v0 else _p_for_target(v0, target, n, alpha)
    assume(math.isfinite(p))
    case = (n, v0, p, index, alpha, limit, damp)
    vt = accumulated_funding_bruteforce(*case)[0]
    assume(_region_ref(v0, lim, dmp) == r0 and _region_ref(vt, lim, dmp) == rt)
    return case


@pytest.mark.parametrize(("r0", "rt"), ALL_PAIRS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_hypothesis_transition(r0: int, rt: int, data: st.DataObject) -> None:
    case = data.draw(_transition_cases(r0, rt))
    _n, v0, _p, index, _alpha, limit, damp = case
    vt, _ = _check(case)
    lim, dmp = limit * index, damp * index
    assert (_region_ref(v0, lim, dmp), _region_ref(vt, lim, dmp)) == (r0, rt)


# --------------------------------------------------------------------------- random inputs


@st.composite
def _random_cases(draw: st.DrawFn, max_n: int = 20_000) -> Case:
    index = draw(st.floats(1e-2, 1e6))
    limit = draw(st.one_of(st.just(0.0), st.floats(1e-4, 0.1)))
    damp = limit * draw(st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0)))
    alpha = draw(st.one_of(st.just(ALPHA), st.floats(-9.0, -0.001).map(lambda e: 10.0**e)))
    n = draw(st.integers(0, max_n))
    lim, dmp = limit * index, damp * index
    special = [0.0, lim, -lim, dmp, -dmp, 2.0 * lim, -2.0 * lim]
    premiums = st.one_of(st.sampled_from(special), st.floats(-0.2, 0.2).map(lambda r: r * index))
    return (n, draw(premiums), draw(premiums), index, alpha, limit, damp)


@settings(max_examples=150, deadline=None)
@given(case=_random_cases())
def test_hypothesis_random(case: Case) -> None:
    _check(case)


@settings(max_examples=200, deadline=None)
@given(case=_random_cases(max_n=3000))
def test_end_region_lies_between_start_and_premium(case: Case) -> None:
    """Unreachable pairs: the EMA is monotone towards p, so vt's region is between v0's and p's.

    Hence (start above end) never happens on a rising EMA and (start below end) never on a
    falling one. (Intermediate regions can be jumped over within one second by a large alpha, or
    be empty for D == 0 or D == L; the closed form then gives them zero-length segments.)
    """
    _n, v0, p, index, _alpha, limit, damp = case
    lim, dmp = limit * index, damp * index
    vt, _ = accumulated_funding(*case)
    r0, rt, rp = (_region_ref(x, lim, dmp) for x in (v0, vt, p))
    assert min(r0, rp) <= rt <= max(r0, rp)
    if rt > r0:
        assert p > v0
    if rt < r0:
        assert p < v0


@pytest.mark.parametrize("damp_fraction", [0.0, 1.0])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_degenerate_band_has_unreachable_regions(damp_fraction: float, data: st.DataObject) -> None:
    """D == 0 empties region 2 and D == L empties regions 1 and 3; the closed form still holds."""
    n = data.draw(st.integers(0, 2000))
    v0 = data.draw(st.floats(-1.5, 1.5))
    p = data.draw(st.floats(-1.5, 1.5))
    case = (n, v0, p, INDEX, ALPHA, LIMIT, LIMIT * damp_fraction)
    empty = {2} if damp_fraction == 0.0 else {1, 3}
    assert not _regions_visited(case) & empty
    _check(case)


# --------------------------------------------------------------------------- boundaries

_EDGES = [-L_ABS, -D_ABS, D_ABS, L_ABS]


@pytest.mark.parametrize("v0", _EDGES)
@pytest.mark.parametrize("p", [*_EDGES, 0.0, -2 * L_ABS, 2 * L_ABS])
@pytest.mark.parametrize("n", [0, 1, 2, 50, 1000])
def test_start_or_premium_on_boundary(v0: float, p: float, n: int) -> None:
    _check((n, v0, p, INDEX, ALPHA, LIMIT, DAMP))
    _check((n, p, v0, INDEX, ALPHA, LIMIT, DAMP))


@pytest.mark.parametrize("v0", [-1.0, -0.3, 0.0, 0.3, 1.0])
def test_n_zero_and_one(v0: float) -> None:
    assert accumulated_funding(0, v0, 0.7, INDEX, ALPHA, LIMIT, DAMP) == (v0, 0.0)
    vt, acc = _check((1, v0, 0.7, INDEX, ALPHA, LIMIT, DAMP))
    # One second: only the old EMA counts.
    assert acc == pytest.approx(_f_ref(v0, L_ABS, D_ABS), rel=1e-13, abs=0.0)
    assert vt == (v0 - 0.7) * (1.0 - ALPHA) + 0.7


def _T(bound: float, v0: float, p: float, alpha: float, n: int) -> int:
    a = 1.0 - alpha
    return _crossing_time(bound, p > v0, v0, v0 - p, p, a, math.log1p(-(1.0 - a)), 0, n)


def _T_ref(bound: float, v0: float, p: float, alpha: float, n: int) -> int:
    a = 1.0 - alpha
    for t in range(n + 1):
        v = _ema_ref(t, v0, p, a)
        if (v > bound) if p > v0 else (v <= bound):
            return t
    raise AssertionError("no crossing within n")


@pytest.mark.parametrize(
    ("bound", "v0", "expected"),
    [
        # alpha = 1/2, p = 0: v_3 = v0 / 8 exactly (0.8 / 8 == 0.1 in float64).
        (0.1, 0.8, 3),  # falling: v_3 <= 0.1 holds at equality -> crossed at 3
        (0.05, 0.8, 4),
        (-0.1, -0.8, 4),  # rising: v_3 == -0.1 is not > -0.1 -> crossed at 4
        (-0.05, -0.8, 5),
    ],
)
def test_crossing_time_exact_boundary(bound: float, v0: float, expected: int) -> None:
    assert 0.8 / 8 == 0.1  # the premise of these examples
    assert _T(bound, v0, 0.0, 0.5, 10) == expected == _T_ref(bound, v0, 0.0, 0.5, 10)
    lim, damp = abs(bound), abs(bound) / 2
    _check((10, v0, 0.0, 1.0, 0.5, lim, damp))


@pytest.mark.parametrize("edge", _EDGES)
def test_premium_exactly_on_boundary_falling(edge: float) -> None:
    """The real EMA never reaches p; the float one rounds onto it (after ~57 s here).

    Falling onto an inclusive upper bound is a crossing (v_t <= edge), so T(edge) must be found
    inside [0, n] although the log says "never".
    """
    v0, n = edge + 0.35, 200
    vt, _ = _check((n, v0, edge, INDEX, 0.5, LIMIT, DAMP))
    assert vt == edge
    t = _T(edge, v0, edge, 0.5, n)
    assert t == _T_ref(edge, v0, edge, 0.5, n)
    assert 0 < t < n


@pytest.mark.parametrize("edge", _EDGES)
def test_premium_exactly_on_boundary_rising(edge: float) -> None:
    """Rising onto an inclusive upper bound never crosses it (v_t > edge never holds)."""
    v0, n = edge - 0.35, 200
    vt, _ = _check((n, v0, edge, INDEX, 0.5, LIMIT, DAMP))
    assert vt == edge
    a = 0.5
    assert all(_ema_ref(i, v0, edge, a) <= edge for i in range(n + 1))
    assert _region_ref(vt, L_ABS, D_ABS) == _region_ref(edge, L_ABS, D_ABS)


def _few_ulps_case(edge: float, ulps: int, rising: bool) -> tuple[float, float, float, int]:
    p = edge
    for _ in range(ulps):
        p = math.nextafter(p, math.inf if rising else -math.inf)
    v0 = edge - 0.45 if rising else edge + 0.45
    return v0, p, 0.1, 3000


_FEW_ULPS = list(itertools.product(_EDGES, [1, 2, 3], [True, False]))


@pytest.mark.parametrize(("edge", "ulps", "rising"), _FEW_ULPS)
def test_premium_a_few_ulps_past_boundary(edge: float, ulps: int, rising: bool) -> None:
    """p just past a bound: the float EMA crosses seconds away from where the log says."""
    v0, p, alpha, n = _few_ulps_case(edge, ulps, rising)
    _check((n, v0, p, INDEX, alpha, LIMIT, DAMP))
    assert _T(edge, v0, p, alpha, n) == _T_ref(edge, v0, p, alpha, n)


def test_few_ulps_cases_defeat_the_log_estimate() -> None:
    """The cases above are worth having: the ceil(log) estimate misses by 2+ seconds both ways."""
    misses = set()
    for edge, ulps, rising in _FEW_ULPS:
        v0, p, alpha, n = _few_ulps_case(edge, ulps, rising)
        estimate = math.ceil(math.log((edge - p) / (v0 - p)) / math.log(1.0 - alpha))
        miss = _T_ref(edge, v0, p, alpha, n) - estimate
        if abs(miss) >= 2:
            misses.add("late" if miss > 0 else "early")
    assert misses == {"late", "early"}


@pytest.mark.parametrize("bound", _EDGES)
@pytest.mark.parametrize("alpha", [0.5, ALPHA, 1e-3])
@pytest.mark.parametrize("v0", [-0.9, -0.2, 0.0, 0.2, 0.9])
def test_crossing_time_matches_first_second(bound: float, alpha: float, v0: float) -> None:
    p = bound - 0.7 if v0 > bound else bound + 0.7  # the EMA must cross `bound`
    n = 3000
    a = 1.0 - alpha
    rising = p > v0
    vn = _ema_ref(n, v0, p, a)
    assert (vn > bound) if rising else (vn <= bound)
    assert _T(bound, v0, p, alpha, n) == _T_ref(bound, v0, p, alpha, n)
    _check((n, v0, p, INDEX, alpha, LIMIT, DAMP))


@pytest.mark.parametrize("alpha", [1e-9, 1e-12, 1e-15])
def test_small_alpha_slow_drift(alpha: float) -> None:
    """alpha * n tiny: the seed's (a**x - a**y) / alpha would cancel to ~1e-4 absolute here."""
    _check((20_000, 0.3, 1.0, INDEX, alpha, LIMIT, DAMP))
    _check((20_000, -0.3, -1.0, INDEX, alpha, LIMIT, DAMP))


# --------------------------------------------------------------------------- extreme inputs


@pytest.mark.parametrize("alpha", [1e-9, 1e-12, 1e-15, 1e-17])
def test_very_small_alpha(alpha: float) -> None:
    n = 20_000
    # p far outside the band so the slow EMA still sweeps all five regions within n seconds.
    p = _p_for_target(-0.8, 0.8, n, alpha) if 1.0 - alpha < 1.0 else 1e6
    case = (n, -0.8, p, INDEX, alpha, LIMIT, DAMP)
    _check(case)
    if 1.0 - alpha < 1.0:
        assert _regions_visited(case) == set(range(5))
        assert abs(p) > 1e3 * L_ABS


def test_alpha_rounding_to_one_is_a_constant_ema() -> None:
    # 1 - 1e-17 == 1.0: the float EMA never moves, whatever p is.
    vt, acc = _check((5000, 0.3, -7.0, INDEX, 1e-17, LIMIT, DAMP))
    assert vt == (0.3 + 7.0) - 7.0
    assert acc == pytest.approx(5000 * (vt - D_ABS), rel=1e-14)


@pytest.mark.parametrize(
    "case",
    [
        (10**7, -0.8, 1.0, INDEX, 1e-7, LIMIT, DAMP),  # sweeps all five regions
        (10**7, 0.9, -0.9, INDEX, 1e-7, LIMIT, DAMP),
        (10**7, -0.8, 0.02, INDEX, ALPHA, LIMIT, DAMP),  # converges in seconds, then constant
    ],
)
def test_huge_n_against_vectorised_bruteforce(case: Case) -> None:
    vt, acc = accumulated_funding(*case)
    ref = _bruteforce_numpy(case)
    assert abs(acc - ref) <= _tol(case)
    assert vt == _ema_ref(case[0], case[1], case[2], 1.0 - case[4])


@settings(max_examples=100, deadline=None)
@given(case=_random_cases(max_n=10**7), split=st.floats(0.0, 1.0))
def test_splitting_the_interval_adds_up(case: Case, split: float) -> None:
    """Acc over n == Acc over k then over n - k from v_k (any n, including 1e7)."""
    n, v0, p, *gov = case
    k = int(n * split)
    vk, acc1 = accumulated_funding(k, v0, p, *gov)
    _, acc2 = accumulated_funding(n - k, vk, p, *gov)
    _, acc = accumulated_funding(n, v0, p, *gov)
    assert abs(acc - (acc1 + acc2)) <= _tol(case)


# --------------------------------------------------------------------------- spec examples


@pytest.mark.parametrize(
    ("premium_rate", "expected"),
    [(0.0003, 0.0), (-0.0003, 0.0), (0.003, 0.0025), (-0.003, -0.0025)],
)
def test_documented_funding_rates(premium_rate: float, expected: float) -> None:
    assert funding_rate(premium_rate, DAMP) == pytest.approx(expected, rel=1e-12, abs=0.0)


def test_one_percent_premium_is_clipped_by_the_mark_price() -> None:
    # The mark price clamps the premium rate to ±0.5% before the dampener applies.
    clamped = min(max(0.01, -LIMIT), LIMIT)
    assert clamped == 0.005
    # 0.005 - 0.0005 is 0.0045000000000000005 in float64, hence approx rather than ==.
    assert funding_rate(clamped, DAMP) == pytest.approx(0.0045, rel=1e-15)
    assert funding_rate(-clamped, DAMP) == pytest.approx(-0.0045, rel=1e-15)


@pytest.mark.parametrize(
    ("premium_rate", "expected_8h_rate"),
    [(0.0003, 0.0), (0.003, 0.0025), (0.01, 0.0045), (-0.003, -0.0025), (-0.01, -0.0045)],
)
def test_constant_premium_over_one_period(premium_rate: float, expected_8h_rate: float) -> None:
    index = 1234.5
    p = premium_rate * index
    vt, acc = accumulated_funding(FUNDING_PERIOD_SECONDS, p, p, index, ALPHA, LIMIT, DAMP)
    assert vt == p
    per_contract = acc / FUNDING_PERIOD_SECONDS
    assert per_contract / index == pytest.approx(expected_8h_rate, rel=1e-12, abs=1e-18)
    clamped_rate = min(max(premium_rate, -LIMIT), LIMIT)
    assert per_contract / index == pytest.approx(
        funding_rate(clamped_rate, DAMP), rel=1e-12, abs=1e-18
    )


# --------------------------------------------------------------------------- curve, EMA, rate


@pytest.mark.parametrize(
    ("v", "expected"),
    [
        (-0.8, -0.45),
        (-L_ABS, -L_ABS + D_ABS),
        (-0.3, -0.25),
        (-D_ABS, 0.0),
        (0.0, 0.0),
        (D_ABS, 0.0),
        (0.3, 0.25),
        (L_ABS, L_ABS - D_ABS),
        (0.8, 0.45),
    ],
)
def test_funding_curve_points(v: float, expected: float) -> None:
    assert funding_curve(v, L_ABS, D_ABS) == pytest.approx(expected, rel=1e-14, abs=1e-17)


@settings(max_examples=300, deadline=None)
@given(
    rate=st.floats(-0.05, 0.05),
    limit=st.floats(0.0, 0.02),
    frac=st.floats(0.0, 1.0),
    index=st.floats(1.0, 1e5),
)
def test_curve_matches_reference_and_funding_rate(
    rate: float, limit: float, frac: float, index: float
) -> None:
    damp = limit * frac
    lim_abs, damp_abs = limit * index, damp * index
    v = rate * index
    value = funding_curve(v, lim_abs, damp_abs)
    assert value == _f_ref(v, lim_abs, damp_abs)
    # Per unit of index, the curve is the funding rate of the mark-clamped premium rate.
    clamped = min(max(rate, -limit), limit)
    assert value / index == pytest.approx(funding_rate(clamped, damp), rel=1e-9, abs=1e-15)


def test_ema_premium() -> None:
    # (0.1 - 3) + 3 is one ulp above 0.1: n == 0 must return the stored EMA itself.
    assert (0.1 - 3.0) + 3.0 != 0.1
    assert ema_premium(0.1, 3.0, 1.0 - ALPHA, 0) == 0.1
    for n in (1, 7, 600, 10**7):
        expected = (0.1 - 3.0) * (1.0 - ALPHA) ** n + 3.0
        assert ema_premium(0.1, 3.0, 1.0 - ALPHA, n) == expected
        assert accumulated_funding(n, 0.1, 3.0, INDEX, ALPHA, LIMIT, DAMP)[0] == expected
    assert ema_premium(0.1, 3.0, 1.0, 50) == (0.1 - 3.0) + 3.0


# --------------------------------------------------------------------------- bad input

_GOOD: dict[str, Any] = {
    "n": 10,
    "v0": 0.1,
    "premium": 0.2,
    "index_price": INDEX,
    "ema_alpha": ALPHA,
    "mark_premium_limit": LIMIT,
    "funding_dampener": DAMP,
}
_BAD_ACC = [
    ("n", -1),
    ("n", 1.0),
    ("n", 1.5),
    ("n", True),
    ("n", "3"),
    ("v0", math.nan),
    ("v0", math.inf),
    ("premium", -math.inf),
    ("premium", "0.1"),
    ("index_price", math.nan),
    ("index_price", 0.0),
    ("index_price", -100.0),
    ("ema_alpha", 0.0),
    ("ema_alpha", 1.0),
    ("ema_alpha", math.nan),
    ("mark_premium_limit", -0.005),
    ("mark_premium_limit", math.inf),
    ("funding_dampener", -0.0005),
    ("funding_dampener", 0.006),
    ("funding_dampener", math.nan),
]


def test_good_keyword_arguments_accepted() -> None:
    _check(tuple(_GOOD.values()))


@pytest.mark.parametrize(("name", "value"), _BAD_ACC)
def test_accumulated_funding_rejects(name: str, value: object) -> None:
    with pytest.raises(BadAmountError):
        accumulated_funding(**{**_GOOD, name: value})


@pytest.mark.parametrize(
    "args",
    [
        (math.nan, 0.5, 0.05),
        (0.1, math.inf, 0.05),
        (0.1, 0.5, math.nan),
        (0.1, -0.5, 0.0),
        (0.1, 0.5, 0.6),
        (0.1, 0.5, -0.05),
        (True, 0.5, 0.05),
    ],
)
def test_funding_curve_rejects(args: tuple[Any, ...]) -> None:
    with pytest.raises(BadAmountError):
        funding_curve(*args)


@pytest.mark.parametrize(
    "args",
    [
        (math.nan, 0.5, 0.99, 1),
        (0.1, math.inf, 0.99, 1),
        (0.1, 0.5, 0.0, 1),
        (0.1, 0.5, 1.5, 1),
        (0.1, 0.5, math.nan, 1),
        (0.1, 0.5, 0.99, -1),
        (0.1, 0.5, 0.99, 2.0),
    ],
)
def test_ema_premium_rejects(args: tuple[Any, ...]) -> None:
    with pytest.raises(BadAmountError):
        ema_premium(*args)


@pytest.mark.parametrize(
    "args", [(math.nan, 0.0005), (0.001, math.inf), (0.001, -0.0005), ("0.001", 0.0005)]
)
def test_funding_rate_rejects(args: tuple[Any, ...]) -> None:
    with pytest.raises(BadAmountError):
        funding_rate(*args)
