"""D8X's trade probe compiled (numba): the price after a whole trade, in a fraction of the time.

An arbitrageur sizing a trade (:meth:`~perpsim.engine.venues.d8x.venue.D8XVenue.size_for_price`)
asks for the price after a trade of ``k`` about 18 times per decision, and each answer books the
whole trade on a working copy: the booking, the AMM fund target, the fees, the rebalance, the
funding rate and the default fund target, then the price of the next trade
(``D8XPool.trade_probe``). In Python that was about half of a D8X run's time.

:func:`probe_price` does the same float operations, in the same order, on the few numbers the
answer depends on, and gives the same float. It leaves out what the answer does not read (the
mark premium's EMA, the funding rate, k*'s update, the fees' total, the trace). Where the Python
code would raise (a division by zero, an overflowing ``exp``, a quanto default probability with
no quanto capital, a square root of a negative number, a withdrawal larger than the pots), it
answers :data:`FALL_BACK` instead, and the pool runs the Python probe, which raises as before
(the probe's caller counts such a trade as past its target). The Python probe is kept as the
reference: the tests compare the two over random pools and trades, bit for bit.

:func:`rebalance` is the pool's ``_rebalance`` (equalise the AMM margin, top up the AMM fund,
the mid price and k* of the mark update) by the same rule, for every action that rebalances
(trades' before- and after-hooks, LP deposits and withdrawals); an EMERGENCY, which the Python
rebalance records, is left to it.

Compiled once per machine and Python version: numba caches the machine code next to this file
(or in its user cache when that is not writable), so a fresh process loads it instead of
compiling. This module is imported by the first probe only: ``import perpsim`` does not load
numba.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

from perpsim.engine.venues.d8x import formulas as f

__all__ = ["FALL_BACK", "INPUTS", "OK", "probe_price", "rebalance"]

#: :func:`probe_price` answered.
OK = 0
#: The Python probe must answer (it raises where this probe stopped).
FALL_BACK = 1

#: The probe's inputs, in the order of its input array (names of the pool's state, its AMM
#: row and its governance, as in ``D8XPool``).
INPUTS: tuple[str, ...] = (
    "collateral",  # 0 quote, 1 base, 2 quanto
    "s2",
    "s3",
    "amm_fund_cash",
    "lp_cash",
    "default_fund_cash",
    "default_fund_target",
    "default_fund_target_due",  # 1.0 when the default fund target is updated after a trade
    "unit_accumulated_funding_now",
    "k_star",
    "trader_exposure_ema",
    "amm_exposure_ema_short",
    "amm_exposure_ema_long",
    "amm_position",
    "amm_locked_in",
    "amm_cash",
    "amm_funding_start",
    "pricing_capital_pool",  # 1.0 when the pricing capital is the pool's
    "pricing_lp_share",
    "minimal_spread",
    "minimal_spread_in_stress",
    "incentive_spread",
    "sigma2",
    "sigma3",
    "rho23",
    "lot_size",
    "df_lambda_slow",
    "df_lambda_fast",
    "minimal_amm_exposure_ema",
    "minimal_trader_exposure_ema",
    "amm_target_dd_baseline",
    "amm_target_dd_stress",
    "amm_min_size",
    "treasury_fee_rate",
    "lp_fee_rate",
    "initial_margin_rate_alpha",
    "margin_rate_beta",
    "initial_margin_rate_cap",
    "stress_return_s2_down",
    "stress_return_s2_up",
    "stress_return_s3_down",
    "stress_return_s3_up",
    "cover_n",
    "mark_price_ema_lambda",
)

_QUOTE, _BASE = 0, 1
_SQRT2 = math.sqrt(2.0)
_DD_BOUND = f.DD_BOUND
_CEIL_PNL_SHARE = f.CEIL_PNL_SHARE
_CEIL_AMT_FUND_WITHDRAWAL = f.CEIL_AMT_FUND_WITHDRAWAL
_MAX_DRAW_FROM_POOLS = f.MAX_DRAW_FROM_POOLS
_NAN = math.nan


@njit(cache=True)
def _pmax(a: float, b: float) -> float:
    # Python's max(a, b): the first unless the second is greater (NaN and -0.0 as in Python).
    return b if b > a else a


@njit(cache=True)
def _pmin(a: float, b: float) -> float:
    return b if b < a else a


@njit(cache=True)
def _exp(x: float) -> tuple[float, bool]:
    """math.exp, and whether Python's would have raised (OverflowError)."""
    r = math.exp(x)
    return r, math.isinf(r) and not math.isinf(x)


@njit(cache=True)
def _expm1(x: float) -> tuple[float, bool]:
    r = math.expm1(x)
    return r, math.isinf(r) and not math.isinf(x)


@njit(cache=True)
def _price_ks(
    k: float,
    coll: int,
    s2: float,
    s3: float,
    amm_fund_cash: float,
    lp_cash: float,
    calm: bool,
    pi: float,
    amm_pos: float,
    amm_lock: float,
    amm_cash: float,
    x: npt.NDArray[np.float64],
) -> tuple[float, float, bool]:
    """``D8XPool._price_ks``: (price, k*, whether Python would raise) (``prob_default_any``,
    ``k_star``, ``perp_price``)."""
    k2 = -amm_pos
    l1 = -amm_lock
    m = amm_fund_cash
    if x[17] != 0.0:
        m += amm_cash + x[18] * lp_cash
    m1 = m2 = m3 = 0.0
    if coll == _QUOTE:
        m1 = m
    elif coll == _BASE:
        m2 = m
    else:
        m3 = m
    sigma2, sigma3, rho = x[22], x[23], x[24]
    # k_star
    ks = m2 - k2
    if m3 != 0.0:
        if s2 == 0.0:
            return _NAN, _NAN, True
        e1, bad1 = _expm1(rho * sigma2 * sigma3)
        e2, bad2 = _expm1(sigma2 * sigma2)
        if bad1 or bad2 or e2 == 0.0:
            return _NAN, _NAN, True
        ks += (s3 / s2) * e1 / e2 * m3
    spread = x[19] if calm else x[20]
    # prob_default_any of the post-trade state
    kk = k2 + k
    ll = l1 + k * s2
    if m3 != 0.0:
        if not m3 > 0.0:
            return _NAN, _NAN, True
        denom = m3 * s3
        if denom == 0.0:
            return _NAN, _NAN, True
        c3 = s2 * (m2 - kk) / denom
        a1, b1 = _expm1(sigma2 * sigma2)
        a2, b2 = _expm1(rho * sigma2 * sigma3)
        a3, b3 = _expm1(sigma3 * sigma3)
        if b1 or b2 or b3:
            return _NAN, _NAN, True
        var_z = a1 * c3 * c3 + 2.0 * a2 * c3 + a3
        if var_z < 0.0:
            return _NAN, _NAN, True
        root = math.sqrt(var_z)
        if root == 0.0:
            return _NAN, _NAN, True
        dd = ((-ll - m1) / denom - (1.0 + c3)) / root
        q = 0.5 * math.erfc(-dd / _SQRT2)
    else:
        numerator = -ll - m1
        denominator = (m2 - kk) * s2
        thresh = numerator / denominator if denominator != 0.0 else 0.0
        if thresh <= 0.0:
            q = 0.0 if numerator <= 0.0 or (thresh == 0.0 and denominator > 0.0) else 1.0
        else:
            if sigma2 == 0.0:
                return _NAN, _NAN, True
            dd = (math.log(thresh) + 0.5 * sigma2 * sigma2) / sigma2
            if denominator < 0.0:
                dd = -dd
            q = 0.5 * math.erfc(-dd / _SQRT2)
    # perp_price
    premium = q if k >= ks else -q
    sp = 0.0 if k == 0.0 else (spread if k > 0.0 else -spread)
    incentive = 0.0
    iota = x[21]
    if iota != 0.0 and k != 0.0:
        if pi == 0.0:
            return _NAN, _NAN, True
        r = k / pi
        if r >= 1.0:
            shape = 1.0
        elif r <= -1.0:
            shape = -1.0
        else:
            bump = 1.0 - (1.0 - abs(r)) ** 2
            shape = bump if r >= 0.0 else -bump
        incentive = iota * shape
    return s2 * (1.0 + premium + sp + incentive), ks, False


@njit(cache=True)
def _fund_target(
    coll: int,
    k2: float,
    l1: float,
    pi: float,
    k_star: float,
    s2: float,
    s3: float,
    dd: float,
    x: npt.NDArray[np.float64],
) -> tuple[float, bool]:
    """``formulas.amm_fund_target``."""
    sigma2, sigma3, rho, minimum = x[22], x[23], x[24], x[32]
    side = 1.0 if k_star > 0.0 else -1.0
    k = k2 - side * pi
    lock = l1 - side * pi * s2
    if coll == _BASE:
        if k == 0.0 or lock == 0.0:
            target = minimum
        else:
            scaled = sigma2 * dd if lock < 0.0 else -sigma2 * dd
            e, bad = _exp(-0.5 * sigma2 * sigma2 + scaled)
            if bad or e * s2 == 0.0:
                return _NAN, True
            target = k - lock / (e * s2)
    elif coll == _QUOTE:
        if k == 0.0:
            target = minimum
        else:
            scaled = sigma2 * dd if k < 0.0 else -sigma2 * dd
            e, bad = _exp(-0.5 * sigma2 * sigma2 + scaled)
            if bad:
                return _NAN, True
            target = k * s2 * e - lock
    else:
        if k == 0.0:
            target = minimum
        else:
            if s2 == 0.0:
                return _NAN, True
            dd2 = dd * dd
            v = -s3 / s2 / k
            kappa = lock / s2 / k
            e3, b3 = _expm1(sigma3 * sigma3)
            e23, b23 = _expm1(sigma2 * sigma3 * rho)
            e2, b2 = _expm1(sigma2 * sigma2)
            if b3 or b23 or b2:
                return _NAN, True
            a = (e3 * dd2 - 1.0) * v * v
            b = (2.0 * e23 * dd2 - 2.0 + 2.0 * kappa) * v
            c = e2 * dd2 - kappa * kappa + 2.0 * kappa - 1.0
            disc = b * b - 4.0 * a * c
            if disc < 0.0 or 2.0 * a == 0.0:
                return _NAN, True
            root = math.sqrt(disc)
            target = _pmax((-b + root) / (2.0 * a), (-b - root) / (2.0 * a))
    return _pmax(target, minimum), False


@njit(cache=True)
def _exposure_ema(
    previous: float, observation: float, lam_slow: float, lam_fast: float, floor: float
) -> tuple[float, bool]:
    """``formulas.exposure_ema`` (and whether its ``ema`` would raise)."""
    lam = lam_fast if abs(observation) > abs(previous) else lam_slow
    if abs(observation) < floor:
        observation = -floor if observation < 0.0 else floor
    if not 0.0 < lam < 1.0:
        return _NAN, True
    return lam * previous + (1.0 - lam) * observation, False


@njit(cache=True)
def _split(
    lp_cash: float, amm_fund_cash: float, amount: float, is_withdrawn: bool
) -> tuple[float, float, bool]:
    """``formulas.split_amount`` (and whether it would raise)."""
    if amount == 0.0:
        return 0.0, 0.0, False
    if amount < 0.0:
        return _NAN, _NAN, True
    avail = lp_cash + amm_fund_cash
    if is_withdrawn and avail < amount:
        return _NAN, _NAN, True
    w = _pmin(lp_cash / avail, _CEIL_PNL_SHARE) if avail > 0.0 else 0.0
    to_lp = w * amount
    to_amm = amount - to_lp
    if is_withdrawn:
        spill = lp_cash - to_lp
        if spill < 0.0:
            to_lp += spill
            to_amm -= spill
        spill = amm_fund_cash - to_amm
        if spill < 0.0:
            to_amm += spill
            to_lp -= spill
    return to_lp, to_amm, False


@njit(cache=True)
def _update_target(
    coll: int,
    amm_fund_cash: float,
    amm_pos: float,
    amm_lock: float,
    pi: float,
    k_star: float,
    s2: float,
    s3: float,
    x: npt.NDArray[np.float64],
) -> tuple[float, float, bool]:
    """``D8XPool._update_amm_fund_target``: (target set, stress target or NaN)."""
    baseline, bad = _fund_target(coll, -amm_pos, -amm_lock, pi, k_star, s2, s3, x[30], x)
    if bad:
        return _NAN, _NAN, True
    if amm_fund_cash > baseline:
        return baseline, _NAN, False
    stress, bad = _fund_target(coll, -amm_pos, -amm_lock, pi, k_star, s2, s3, x[31], x)
    if bad:
        return _NAN, _NAN, True
    return (baseline if amm_fund_cash > stress else stress), stress, False


@njit(cache=True)
def _equalise_and_top_up(
    coll: int,
    s2: float,
    s3: float,
    amf: float,
    lp: float,
    dfc: float,
    amm_target: float,
    pi: float,
    k_star: float,
    amm_pos: float,
    amm_lock: float,
    amm_cash: float,
    amm_fs: float,
    uaf: float,
    x: npt.NDArray[np.float64],
) -> tuple[bool, bool, float, float, float, float, float]:
    """``_equalise_amm_margin`` then ``_rebalance_to_target`` (NORMAL): whether Python would
    raise, whether the default fund could not cover the AMM margin (EMERGENCY), then the AMM
    cash, LP cash, AMM fund cash, DF cash and AMM fund target after them."""
    nan = _NAN
    c2q = 1.0 if coll == _QUOTE else (s2 if coll == _BASE else s3)
    if c2q == 0.0:
        return True, False, nan, nan, nan, nan, nan
    b2c = s2 if coll == _QUOTE else (s2 / s2 if coll == _BASE else s2 / s3)
    emergency = False
    cash = amm_cash - amm_pos * (uaf - amm_fs)
    rate = _pmin(x[35] + x[36] * abs(amm_pos), x[37])
    mb = amm_pos * b2c + cash - amm_lock / c2q
    im = abs(amm_pos * b2c * rate)
    excess = mb - im
    if excess > 0.0:
        amm_cash -= excess
        to_lp, to_amm, bad = _split(lp, amf, excess, False)
        if bad:
            return True, False, nan, nan, nan, nan, nan
        lp += to_lp
        contribution = _pmin(amm_target - amf, to_amm)
        amf += contribution
        dfc += to_amm - contribution
    elif excess < 0.0:
        need = -excess
        cap = _MAX_DRAW_FROM_POOLS * (lp + amf)
        from_df = 0.0
        if need > cap:
            from_df = need - cap
            need = cap
            if from_df > dfc:
                from_df = dfc
                emergency = True
            dfc -= from_df
        to_lp, to_amm, bad = _split(lp, amf, need, True)
        if bad:
            return True, False, nan, nan, nan, nan, nan
        amf -= to_amm
        lp -= to_lp
        amm_cash += need + from_df
    amm_target, stress, bad = _update_target(coll, amf, amm_pos, amm_lock, pi, k_star, s2, s3, x)
    if bad:
        return True, False, nan, nan, nan, nan, nan
    if not (math.isnan(stress) or amm_target != stress):
        gap = stress - amf
        from_df = _pmin(gap, dfc * _CEIL_AMT_FUND_WITHDRAWAL)
        gap -= from_df
        from_lp = _pmin(gap, lp * _CEIL_AMT_FUND_WITHDRAWAL)
        from_lp = _pmax(from_lp, 0.0)
        lp -= from_lp
        dfc -= from_df
        amf += from_lp + from_df
    return False, emergency, amm_cash, lp, amf, dfc, amm_target


@njit(cache=True)
def probe_price(k: float, next_trade: float, x: npt.NDArray[np.float64]) -> tuple[int, float]:
    """The price of ``next_trade`` after a trade of ``k`` by a well-funded trader.

    Args:
        k: the probed trade (signed, base).
        next_trade: the trade priced afterwards (0: the mid price).
        x: the inputs, in the order of :data:`INPUTS` (the prepared working copy's state after
            the trade's before-hook, in NORMAL).

    Returns:
        ``(OK, price)``, or ``(FALL_BACK, nan)`` where the Python probe raises.
    """
    coll = int(x[0])
    s2, s3 = x[1], x[2]
    amf, lp, dfc, dft = x[3], x[4], x[5], x[6]
    uaf = x[8]
    k_star, pi = x[9], x[10]
    ema_short, ema_long = x[11], x[12]
    amm_pos, amm_lock, amm_cash, amm_fs = x[13], x[14], x[15], x[16]
    normal = True

    # The trade at its price (_book, is_close False), the trader well funded.
    price, _, bad = _price_ks(
        k, coll, s2, s3, amf, lp, dfc > dft, pi, amm_pos, amm_lock, amm_cash, x
    )
    if bad:
        return FALL_BACK, _NAN
    c2q = 1.0 if coll == _QUOTE else (s2 if coll == _BASE else s3)
    if c2q == 0.0:
        return FALL_BACK, _NAN
    q2c = 1.0 / c2q
    delta_cash = -k * (price - s2) * q2c
    delta_locked = k * s2
    amm_cash -= amm_pos * (uaf - amm_fs)
    amm_fs = uaf
    amm_pos += -1.0 * k
    amm_cash += -1.0 * delta_cash
    amm_lock += -1.0 * delta_locked
    trader_cash = 1e300 - 0.0 * (uaf - 0.0)
    trader_pos = 0.0 + 1.0 * k
    trader_cash += 1.0 * delta_cash
    trader_lock = 0.0 + 1.0 * delta_locked
    if abs(trader_pos) < x[25] * 1e-9:
        amm_pos += trader_pos
        amm_lock += trader_lock
        trader_pos = trader_lock = 0.0
    if trader_cash < 0.0:
        amm_cash -= -trader_cash
        trader_cash = 0.0
    k2 = -amm_pos
    if k2 > 0.0:
        ema_long, bad = _exposure_ema(ema_long, k2, x[26], x[27], x[28])
    else:
        ema_short, bad = _exposure_ema(ema_short, k2, x[26], x[27], x[28])
    if bad:
        return FALL_BACK, _NAN
    pi, bad = _exposure_ema(pi, abs(trader_pos), x[26], x[27], x[29])
    if bad:
        return FALL_BACK, _NAN

    # UPDATE_AMM_FUND_TARGET
    amm_target, _, bad = _update_target(coll, amf, amm_pos, amm_lock, pi, k_star, s2, s3, x)
    if bad:
        return FALL_BACK, _NAN

    # DISTRIBUTE_FEES (_distribute_fees with the trade's fees)
    b2c_index = s2 if coll == _QUOTE else (s2 / s2 if coll == _BASE else s2 / s3)
    notional = abs(abs(k) * b2c_index)
    treasury = notional * x[33]
    lp_fee = notional * x[34]
    new_cash = amf + treasury
    if new_cash > amm_target:
        to_amm, to_df = treasury, 0.0
    else:
        df_gap = dft - dfc
        if df_gap > 0.0:
            to_amm, to_df = treasury, 0.0
        else:
            from_df = _pmin(amm_target - new_cash, -df_gap)
            to_amm, to_df = treasury + from_df, -from_df
    if lp != 0.0:
        lp += lp_fee
    else:
        to_amm += lp_fee
    dfc += to_df
    amf += to_amm

    # REBALANCE: equalise the AMM margin and top up the AMM fund ...
    bad, emergency, amm_cash, lp, amf, dfc, _ = _equalise_and_top_up(
        coll,
        s2,
        s3,
        amf,
        lp,
        dfc,
        amm_target,
        pi,
        k_star,
        amm_pos,
        amm_lock,
        amm_cash,
        amm_fs,
        uaf,
        x,
    )
    if bad:
        return FALL_BACK, _NAN
    normal = not emergency  # EMERGENCY: the steps after the rebalance do nothing
    # ... and the mark price's mid (its value is not read here, but where it raises, so does
    # the Python probe).
    _, _, bad = _price_ks(0.0, coll, s2, s3, amf, lp, dfc > dft, pi, amm_pos, amm_lock, amm_cash, x)
    if bad or s2 == 0.0 or not 0.0 < x[43] < 1.0:
        return FALL_BACK, _NAN

    # UPDATE_FUNDING_RATE sets nothing the price reads; UPDATE_DEFAULT_FUND_TARGET does.
    if normal and x[7] != 0.0:
        n = x[42]
        down_e, b1 = _expm1(x[38])
        up_e, b2 = _expm1(x[39])
        if b1 or b2:
            return FALL_BACK, _NAN
        down = (abs(ema_short) + pi * n) * -down_e
        up = (abs(ema_long) + pi * n) * up_e
        if coll == _BASE:
            e_down, b1 = _exp(x[38])
            e_up, b2 = _exp(x[39])
            if b1 or b2 or e_down == 0.0 or e_up == 0.0:
                return FALL_BACK, _NAN
            dft = _pmax(down / e_down, up / e_up)
        elif coll == _QUOTE:
            dft = _pmax(down, up) * s2
        else:
            e_down, b1 = _exp(x[40])
            e_up, b2 = _exp(x[41])
            if b1 or b2 or e_down == 0.0 or e_up == 0.0 or s3 == 0.0:
                return FALL_BACK, _NAN
            dft = _pmax(down / e_down, up / e_up) * (s2 / s3)

    price, _, bad = _price_ks(
        next_trade, coll, s2, s3, amf, lp, dfc > dft, pi, amm_pos, amm_lock, amm_cash, x
    )
    if bad:
        return FALL_BACK, _NAN
    return OK, price


@njit(cache=True)
def rebalance(
    coll: int,
    s2: float,
    s3: float,
    amm_fund_cash: float,
    lp_cash: float,
    default_fund_cash: float,
    default_fund_target: float,
    amm_fund_target: float,
    pi: float,
    k_star: float,
    amm_pos: float,
    amm_lock: float,
    amm_cash: float,
    amm_fs: float,
    uaf: float,
    x: npt.NDArray[np.float64],
) -> tuple[int, float, float, float, float, float, float, float]:
    """``D8XPool._rebalance`` in NORMAL: equalise the AMM margin, top up the AMM fund below its
    stress target, and the mid price and k* the mark update uses.

    Args:
        coll: the collateral's code.
        s2: the index.
        s3: the collateral's price.
        amm_fund_cash: the state's, and the other state fields likewise.
        lp_cash: see ``amm_fund_cash``.
        default_fund_cash: see ``amm_fund_cash``.
        default_fund_target: see ``amm_fund_cash``.
        amm_fund_target: see ``amm_fund_cash``.
        pi: the trader exposure EMA.
        k_star: the state's k* (the AMM fund target's side).
        amm_pos: the AMM's row, and its other fields likewise.
        amm_lock: see ``amm_pos``.
        amm_cash: see ``amm_pos``.
        amm_fs: see ``amm_pos``.
        uaf: the unit accumulated funding now (``D8XPool._uaf_now``).
        x: the governance, laid out as :data:`INPUTS` (its state entries are not read).

    Returns:
        ``(OK, AMM cash, LP cash, AMM fund cash, DF cash, AMM fund target, mid price, k*)``,
        or ``(FALL_BACK, ...)`` where the Python rebalance raises or the default fund cannot
        cover the AMM margin (EMERGENCY: the Python rebalance records it).
    """
    nan = _NAN
    bad, emergency, amm_cash, lp, amf, dfc, amm_target = _equalise_and_top_up(
        coll,
        s2,
        s3,
        amm_fund_cash,
        lp_cash,
        default_fund_cash,
        amm_fund_target,
        pi,
        k_star,
        amm_pos,
        amm_lock,
        amm_cash,
        amm_fs,
        uaf,
        x,
    )
    if bad or emergency:
        return FALL_BACK, nan, nan, nan, nan, nan, nan, nan
    mid, ks, bad = _price_ks(
        0.0, coll, s2, s3, amf, lp, dfc > default_fund_target, pi, amm_pos, amm_lock, amm_cash, x
    )
    if bad:
        return FALL_BACK, nan, nan, nan, nan, nan, nan, nan
    return OK, amm_cash, lp, amf, dfc, amm_target, mid, ks
