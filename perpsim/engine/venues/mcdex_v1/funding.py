"""Numerical core of the AMM funding step (seed 004, ``Funding()`` step 3).

Pure functions on plain floats; the AMM pool owns the state and calls them. Definitions
(spec ``mcdex-v1.md``, section "Funding"):

* Per-second EMA of the premium, with ``a = 1 - ema_alpha`` evaluated in float64::

      v_0 = v0                      (the stored EMA itself, bit for bit)
      v_i = (v0 - p) * a**i + p     for i >= 1

* The clip-and-dampen curve, with ``L = mark_premium_limit * index`` and
  ``D = funding_dampener * index`` (absolute premiums; regions numbered 0..4)::

      region 0:       v <= -L  ->  -L + D
      region 1:  -L < v <= -D  ->   v + D
      region 2:  -D < v <=  D  ->   0
      region 3:   D < v <=  L  ->   v - D
      region 4:   L < v        ->   L - D

  (equivalently ``f(v) = clip(v, -L, L) - clip(v, -D, D)``; ``f`` is continuous.)

* ``Acc = sum_{i=0}^{n-1} f(v_i)``: the first second uses the old EMA and the current second is
  excluded. The brute-force sum is the definition; the closed form below must agree with it.

Closed form. ``v_i`` moves monotonically from ``v0`` towards ``p``, so the region index is monotone
in ``i`` and the seconds ``[0, n)`` split into at most five consecutive segments, one per region
visited between the region of ``v0`` and the region of ``vt = v_n``. A segment ``[x, y)`` of
region ``r`` contributes::

      C0[x, y) = (-L + D) * (y - x)             Z2[x, y) = 0
      R1[x, y) = R(x, y) + D * (y - x)          R3[x, y) = R(x, y) - D * (y - x)
      C4[x, y) = ( L - D) * (y - x)

with ``R(x, y) = sum_{i=x}^{y-1} v_i = (v0 - p) * (a**x - a**y) / (1 - a) + p * (y - x)``. The
segment boundaries are the seed's crossing times ``T(y)``: the first whole second at which the
EMA is on the far side of boundary ``y``, i.e. ``v_t <= y`` when falling and ``v_t > y`` when
rising (the inclusivity of the regions above). This is exactly the seed's 25 branches with the
``vDampener`` terms written per segment instead of collected (``vLimit = L``,
``vDampener = D``, ``n`` = elapsed seconds; each row's ``vDampener`` total is the sum of the
per-segment ones, e.g. ``D*t1 + D*(t2-t1) - D*(n-t3) = D*(t2 - (n - t3))``).

Seed branch (crossing times named as in the seed) and the segments summed here:

v0 <= -L, with t1 = T(-L), t2 = T(-D), t3 = T(+D), t4 = T(+L):
  vt <= -L  (-vLimit + vDampener) * n
            = C0[0,n)
  vt <= -D  (-vLimit) * t1 + R(t1, n) + vDampener * n
            = C0[0,t1) R1[t1,n)
  vt <= +D  (-vLimit) * t1 + R(t1, t2) + vDampener * t2
            = C0[0,t1) R1[t1,t2) Z2[t2,n)
  vt <= +L  (-vLimit) * t1 + R(t1, t2) + R(t3, n) + vDampener * (t2 - (n - t3))
            = C0[0,t1) R1[t1,t2) Z2[t2,t3) R3[t3,n)
  else      (-vLimit) * t1 + R(t1, t2) + R(t3, t4) + vLimit * (n - t4)
              + vDampener * (t2 - (n - t3))
            = C0[0,t1) R1[t1,t2) Z2[t2,t3) R3[t3,t4) C4[t4,n)
v0 <= -D, with t2 = T(-D), t3 = T(+D), t4 = T(+L) (falling: t4 = T(-L)):
  vt <= -L  R(0, t4) + (-vLimit) * (n - t4) + vDampener * n
            = R1[0,t4) C0[t4,n)
  vt <= -D  R(0, n) + vDampener * n
            = R1[0,n)
  vt <= +D  R(0, t2) + vDampener * t2
            = R1[0,t2) Z2[t2,n)
  vt <= +L  R(0, t2) + R(t3, n) + vDampener * (t2 - (n - t3))
            = R1[0,t2) Z2[t2,t3) R3[t3,n)
  else      R(0, t2) + R(t3, t4) + vLimit * (n - t4) + vDampener * (t2 - (n - t3))
            = R1[0,t2) Z2[t2,t3) R3[t3,t4) C4[t4,n)
v0 <= +D, falling: t3 = T(-D), t4 = T(-L); rising: t3 = T(+D), t4 = T(+L):
  vt <= -L  R(t3, t4) + (-vLimit) * (n - t4) + vDampener * (n - t3)
            = Z2[0,t3) R1[t3,t4) C0[t4,n)
  vt <= -D  R(t3, n) + vDampener * (n - t3)
            = Z2[0,t3) R1[t3,n)
  vt <= +D  0
            = Z2[0,n)
  vt <= +L  R(t3, n) - vDampener * (n - t3)
            = Z2[0,t3) R3[t3,n)
  else      R(t3, t4) + vLimit * (n - t4) - vDampener * (n - t3)
            = Z2[0,t3) R3[t3,t4) C4[t4,n)
v0 <= +L, falling: t2 = T(+D), t3 = T(-D), t4 = T(-L); rising: t4 = T(+L):
  vt <= -L  R(0, t2) + R(t3, t4) + (-vLimit) * (n - t4) + vDampener * (n - t3 - t2)
            = R3[0,t2) Z2[t2,t3) R1[t3,t4) C0[t4,n)
  vt <= -D  R(0, t2) + R(t3, n) + vDampener * (n - t3 - t2)
            = R3[0,t2) Z2[t2,t3) R1[t3,n)
  vt <= +D  R(0, t2) - vDampener * t2
            = R3[0,t2) Z2[t2,n)
  vt <= +L  R(0, n) - vDampener * n
            = R3[0,n)
  else      R(0, t4) + vLimit * (n - t4) - vDampener * n
            = R3[0,t4) C4[t4,n)
v0 > +L, with t1 = T(+L), t2 = T(+D), t3 = T(-D), t4 = T(-L):
  vt <= -L  vLimit * t1 + R(t1, t2) + R(t3, t4) + (-vLimit) * (n - t4)
              + vDampener * (n - t3 - t2)
            = C4[0,t1) R3[t1,t2) Z2[t2,t3) R1[t3,t4) C0[t4,n)
  vt <= -D  vLimit * t1 + R(t1, t2) + R(t3, n) + vDampener * (n - t3 - t2)
            = C4[0,t1) R3[t1,t2) Z2[t2,t3) R1[t3,n)
  vt <= +D  vLimit * t1 + R(t1, t2) - vDampener * t2
            = C4[0,t1) R3[t1,t2) Z2[t2,n)
  vt <= +L  vLimit * t1 + R(t1, n) - vDampener * n
            = C4[0,t1) R3[t1,n)
  else      (vLimit - vDampener) * n
            = C4[0,n)

("vt <= -D" etc. mean the seed's ELSE-IF chain, i.e. the region between the previous bound and
this one.) All 25 pairs are reachable when ``0 < D < L``: a pair with the end region above the start
region only on a rising EMA (``p > v0``), below it only on a falling one, and a diagonal pair either
way or with a constant EMA. With ``D == 0`` region 2 is empty and with ``D == L`` regions 1 and 3
are empty, so the pairs touching them cannot occur (the segments simply have length 0).

Numerical decisions (the brute-force sum is the reference):

* ``T(y)``: a ``ceil(log_a((y - p) / (v0 - p)))`` estimate is clamped to the admissible range and
  then checked against the float EMA ``v_t`` at ``t - 1``, ``t`` (and ``t + 1``) with the region
  inclusivity above, falling back to a bisection on that predicate if the estimate is off by more
  than one second. So a log within rounding of an integer, an EMA landing exactly on a boundary,
  a premium exactly on a boundary (the float EMA reaches it after finitely many seconds although
  the real one never does) and crossings the log puts outside ``[0, n]`` all resolve to the second
  the brute force would switch regions.
* ``R``: ``(a**x - a**y) / alpha`` cancels catastrophically for small ``alpha * (y - x)``; it is
  computed as ``a**x * -expm1((y - x) * ln a) / (1 - a)``. The divisor is ``1 - a`` (exact in
  float64), not ``ema_alpha``: the EMA really uses the rounded ``a = 1 - ema_alpha``, and for
  ``ema_alpha = 1e-12`` the two differ by 2e-5 relative. If ``a`` rounds to 1 the EMA is constant.
* The pieces of ``Acc`` (which may cancel) are added with ``math.fsum``, so their order is moot.
"""

from __future__ import annotations

import math
import numbers

from perpsim.errors import BadAmountError

__all__ = [
    "accumulated_funding",
    "ema_premium",
    "funding_curve",
    "funding_rate",
]


def _finite(name: str, value: object) -> float:
    # bool is an int subclass; a True premium is a bug upstream, not the number 1.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadAmountError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise BadAmountError(f"{name} must be finite, got {value!r}")
    return v


def _seconds(n: object) -> int:
    # Time is integer seconds; a float n would silently change the crossing arithmetic.
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise BadAmountError(f"n must be an int number of seconds, got {n!r}")
    k = int(n)
    if k < 0:
        raise BadAmountError(f"n must be >= 0 seconds, got {k}")
    return k


def _check_band(limit: float, dampener: float, what: str) -> None:
    if limit < 0.0:
        raise BadAmountError(f"{what} limit must be >= 0, got {limit}")
    if not 0.0 <= dampener <= limit:
        raise BadAmountError(
            f"{what} dampener must satisfy 0 <= dampener <= limit ({limit}), got {dampener}"
        )


def _region(v: float, lim: float, damp: float) -> int:
    """Region index 0..4 of ``v`` with the seed's inclusivity (upper bounds inclusive)."""
    if v <= -lim:
        return 0
    if v <= -damp:
        return 1
    if v <= damp:
        return 2
    if v <= lim:
        return 3
    return 4


def funding_curve(v: float, limit: float, dampener: float) -> float:
    """The seed's clip-and-dampen funding curve ``f(v)`` for one second.

    Args:
        v: EMA premium (absolute, same unit as the index price).
        limit: ``L`` = mark premium limit × index (absolute premium, >= 0).
        dampener: ``D`` = funding dampener × index (absolute premium, ``0 <= D <= L``).

    Returns:
        ``-L + D`` for ``v <= -L``; ``v + D`` for ``-L < v <= -D``; ``0`` for ``-D < v <= D``;
        ``v - D`` for ``D < v <= L``; ``L - D`` for ``v > L``.

    Raises:
        BadAmountError: a non-finite input, ``L < 0`` or ``D`` outside ``[0, L]``.
    """
    v = _finite("v", v)
    lim = _finite("limit", limit)
    damp = _finite("dampener", dampener)
    _check_band(lim, damp, "funding curve")
    r = _region(v, lim, damp)
    if r == 0:
        return -lim + damp
    if r == 1:
        return v + damp
    if r == 2:
        return 0.0
    if r == 3:
        return v - damp
    return lim - damp


def ema_premium(v0: float, premium: float, alpha2: float, n: int) -> float:
    """The per-second premium EMA after ``n`` whole seconds.

    Args:
        v0: the stored EMA premium (``LastEMAPremium``).
        premium: the premium it converges to (``LastPremium`` = fair price − index).
        alpha2: ``GovEMAAlpha2`` = 1 − ema_alpha, in ``(0, 1]`` (1 when a tiny alpha rounds away).
        n: elapsed whole seconds, >= 0.

    Returns:
        ``(v0 - premium) * alpha2**n + premium``; exactly ``v0`` for ``n == 0`` (the formula can
        be one ulp off there, and the stored EMA must not drift when no time passed).

    Raises:
        BadAmountError: a non-finite input, ``alpha2`` outside ``(0, 1]``, or a bad ``n``.
    """
    k = _seconds(n)
    v0 = _finite("v0", v0)
    p = _finite("premium", premium)
    a = _finite("alpha2", alpha2)
    if not 0.0 < a <= 1.0:
        raise BadAmountError(f"alpha2 must be in (0, 1], got {alpha2}")
    if k == 0:
        return v0
    return (v0 - p) * a**k + p


def _ema_at(t: int, v0: float, d: float, p: float, a: float) -> float:
    # The same float expression as ema_premium / the brute force, so regions agree bit for bit.
    return v0 if t == 0 else d * a**t + p


def _crossing_time(
    bound: float,
    rising: bool,
    v0: float,
    d: float,
    p: float,
    a: float,
    ln_a: float,
    lo: int,
    hi: int,
) -> int:
    """Seed's ``T(bound)``: the first ``t`` in ``[lo, hi]`` with ``v_t`` past ``bound``.

    "Past" is ``v_t > bound`` on a rising EMA and ``v_t <= bound`` on a falling one (the regions'
    upper bounds are inclusive). The caller guarantees ``v_hi`` is past ``bound`` and that no
    ``t < lo`` is, so the answer exists; the float EMA is monotone, so the predicate is too.
    """

    def past(t: int) -> bool:
        v = _ema_at(t, v0, d, p, a)
        return v > bound if rising else v <= bound

    # Estimate ceil(log_a((bound - p) / (v0 - p))), then clamp: rounding can push the real-valued
    # crossing outside [lo, hi] (or to infinity when p sits exactly on the bound).
    ratio = (bound - p) / d
    if ratio >= 1.0 or ln_a == 0.0:
        guess = lo
    elif ratio > 0.0:
        x = math.log(ratio) / ln_a
        guess = hi if x >= hi else max(lo, math.ceil(x))
    else:
        guess = hi
    # Resolve the ceiling on the float EMA itself: when the log lands (within rounding) on an
    # integer, only v_t at the neighbouring seconds can say on which side of the bound it is.
    if past(guess):
        if guess == lo or not past(guess - 1):
            return guess
        hi = guess - 1
    else:
        # guess < hi because past(hi) holds.
        if past(guess + 1):
            return guess + 1
        lo = guess + 2
    # Off by more than one second (only in degenerate float cases): bisect the predicate.
    while lo < hi:
        mid = (lo + hi) // 2
        if past(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def accumulated_funding(
    n: int,
    v0: float,
    premium: float,
    index_price: float,
    ema_alpha: float,
    mark_premium_limit: float,
    funding_dampener: float,
) -> tuple[float, float]:
    """The seed's ``Acc`` over ``n`` seconds and the EMA premium after them (closed form).

    ``Acc = sum_{i=0}^{n-1} f(v_i)`` with ``v_i`` the per-second EMA (``v_0 = v0``) and ``f`` the
    funding curve with ``L = mark_premium_limit * index_price`` and
    ``D = funding_dampener * index_price``; see the module docstring for the 25-case table. Cost
    is O(1) pow/log evaluations (a handful per region crossed), independent of ``n``.

    Args:
        n: elapsed whole seconds since the last funding (>= 0).
        v0: ``LastEMAPremium``.
        premium: ``LastPremium`` (fair price − last index).
        index_price: ``LastIndexPrice`` (> 0).
        ema_alpha: ``GovEMAAlpha`` in ``(0, 1)``.
        mark_premium_limit: ``GovMarkPremiumLimit`` (rate, >= 0).
        funding_dampener: ``GovFundingDampener`` (rate, ``0 <= d <= mark_premium_limit``).

    Returns:
        ``(vt, acc)``: the new ``LastEMAPremium`` (``ema_premium(v0, premium, 1 - ema_alpha, n)``)
        and ``Acc`` in premium × seconds. The caller divides ``acc`` by
        ``FUNDING_PERIOD_SECONDS`` (28,800) to get the funding per contract; ``(v0, 0.0)`` for
        ``n == 0``.

    Raises:
        BadAmountError: a non-finite input, a bad ``n``, ``index_price <= 0``, ``ema_alpha``
            outside ``(0, 1)``, or a limit/dampener pair outside ``0 <= d <= limit``.
    """
    k = _seconds(n)
    v0 = _finite("v0", v0)
    p = _finite("premium", premium)
    index = _finite("index_price", index_price)
    alpha = _finite("ema_alpha", ema_alpha)
    limit_rate = _finite("mark_premium_limit", mark_premium_limit)
    damp_rate = _finite("funding_dampener", funding_dampener)
    if index <= 0.0:
        raise BadAmountError(f"index_price must be > 0, got {index_price}")
    if not 0.0 < alpha < 1.0:
        raise BadAmountError(f"ema_alpha must be in (0, 1), got {ema_alpha}")
    _check_band(limit_rate, damp_rate, "premium")
    if k == 0:
        return v0, 0.0

    a = 1.0 - alpha
    lim = limit_rate * index
    damp = damp_rate * index
    d = v0 - p
    vt = d * a**k + p
    r0 = _region(v0, lim, damp)
    rt = _region(vt, lim, damp)
    # 1 - a is exact in float64 (Sterbenz); it, not ema_alpha, is the ratio the EMA really uses.
    one_minus_a = 1.0 - a
    ln_a = math.log1p(-one_minus_a)
    terms: list[float] = []

    def add_segment(region: int, x: int, y: int) -> None:
        length = y - x
        if length == 0 or region == 2:
            return  # empty segment, or the dead band Z2 (f = 0)
        if region == 0:
            terms.append((-lim + damp) * length)  # C0: clipped at -L, dampened
            return
        if region == 4:
            terms.append((lim - damp) * length)  # C4: clipped at +L, dampened
            return
        # R1 / R3: R(x, y) = (v0 - p) * sum_{i=x}^{y-1} a**i + p * (y - x), then -+ D per second.
        if one_minus_a == 0.0:
            geometric = float(length)  # a rounded to 1: the float EMA is constant
        else:
            geometric = a**x * -math.expm1(length * ln_a) / one_minus_a
        terms.append(d * geometric)
        terms.append(p * length)
        terms.append(damp * length if region == 1 else -damp * length)

    if r0 == rt:
        # Diagonal cases (the seed's "v0 <= X, vt <= X" rows): one segment over [0, n).
        add_segment(r0, 0, k)
    else:
        # The bounds between region r and r + 1 are bounds[r]: -L, -D, +D, +L.
        bounds = (-lim, -damp, damp, lim)
        rising = rt > r0
        step = 1 if rising else -1
        start = 0
        r = r0
        while r != rt:
            bound = bounds[r] if rising else bounds[r - 1]
            # Crossings are ordered, so the next one is searched from the previous one; two
            # bounds can be crossed in the same second (then the middle segment is empty).
            t = _crossing_time(bound, rising, v0, d, p, a, ln_a, start, k)
            add_segment(r, start, t)
            start = t
            r += step
        add_segment(rt, start, k)
    return vt, math.fsum(terms)


def funding_rate(premium_rate: float, funding_dampener: float) -> float:
    """The seed's 8-hour funding rate from a (mark-clamped) premium rate.

    The caller clamps the premium rate to ``± mark_premium_limit`` through the mark price first;
    this function only applies the dampener.

    Args:
        premium_rate: ``(mark − index) / index``.
        funding_dampener: ``GovFundingDampener`` ``d`` (>= 0).

    Returns:
        ``max(premium_rate, d) + min(premium_rate, -d)``: 0 inside ``[-d, d]``, otherwise the
        premium rate moved ``d`` towards 0.

    Raises:
        BadAmountError: a non-finite input or a negative dampener.
    """
    rate = _finite("premium_rate", premium_rate)
    d = _finite("funding_dampener", funding_dampener)
    if d < 0.0:
        raise BadAmountError(f"funding_dampener must be >= 0, got {funding_dampener}")
    return max(rate, d) + min(rate, -d)
