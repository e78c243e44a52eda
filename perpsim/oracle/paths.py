"""Price-path generators: the "market" price that arbitrageurs see.

Every path is generated up front, vectorised, at the run's tick times:

* ``times`` are **run times**: int64 seconds since the start of the run, non-decreasing and
  non-negative. Synthetic paths start at their initial price at run time 0 (so if the first tick
  is later than 0, its price already carries the move from 0 to that tick).
* Historical paths map run time ``t`` to the absolute time ``start_time + t`` (Unix seconds);
  :func:`path_start_time` gives the natural start (the first data row of the window).
* Randomness comes only from the ``rng`` passed in (the model spawns one per component from the
  run's ``SeedSequence``): the same seed gives the identical array.
* Shocks are applied last, multiplicatively, and never draw random numbers, so adding a shock
  changes a path by exactly the shock's factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from perpsim.errors import ConfigError
from perpsim.oracle.config import (
    MAX_PRICE,
    MIN_PRICE,
    SECONDS_PER_YEAR,
    BootstrapPath,
    ConstantPath,
    GBMPath,
    HistoricalPath,
    JumpDiffusionPath,
    PricePathConfig,
    RegimeSwitchingPath,
    Shock,
)
from perpsim.oracle.data import PriceSeries, format_time, load_price_series, resolve_data_file

__all__ = [
    "Bars",
    "RegimeSwitchingResult",
    "apply_shocks",
    "bar_points",
    "bridge_interpolate",
    "build_path",
    "check_price_range",
    "load_bars",
    "load_path_data",
    "path_start_time",
    "regime_switching_path",
    "resample",
    "within_bars",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class RegimeSwitchingResult:
    """A regime-switching path with the regime history that produced it.

    Attributes:
        prices: Market price at each tick.
        regime: Index of the regime in force at each tick.
        switch_times: Run times (seconds, float) at which the chain changed regime.
        states: Regime in force from run time 0 (``states[0]``) and after each switch
            (``states[k + 1]`` from ``switch_times[k]``).
    """

    prices: FloatArray
    regime: IntArray
    switch_times: FloatArray
    states: IntArray


def build_path(
    config: PricePathConfig,
    times: npt.ArrayLike,
    rng: np.random.Generator,
    base_dir: Path | None = None,
    start_time: int | None = None,
) -> FloatArray:
    """Generates the market price at each tick.

    Args:
        config: The price path.
        times: Run times of the ticks: int64 seconds since the start of the run, non-decreasing
            and non-negative.
        rng: The path's random stream (unused by constant and linear/previous historical paths).
        base_dir: Folder against which a relative data ``file`` resolves (the scenario's).
        start_time: Unix seconds of run time 0. Only historical paths use it; ``None`` means the
            first data row of the window (:func:`path_start_time`).

    Returns:
        float64 prices, one per tick.

    Raises:
        ValueError: If ``times`` is not a non-decreasing, non-negative 1-D integer array.
        ConfigError: If a data file is invalid or does not cover the ticks.
    """
    ticks = _check_times(times)
    # An extreme path overflows quietly here and is refused by the range check below.
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if isinstance(config, ConstantPath):
            prices = np.full(ticks.shape, float(config.price))
        elif isinstance(config, GBMPath):
            prices = _gbm(config, ticks, rng)
        elif isinstance(config, JumpDiffusionPath):
            prices = _jump_diffusion(config, ticks, rng)
        elif isinstance(config, RegimeSwitchingPath):
            prices = regime_switching_path(config, ticks, rng).prices
        elif isinstance(config, HistoricalPath):
            prices = _historical(config, ticks, rng, base_dir, start_time)
        elif isinstance(config, BootstrapPath):
            prices = _bootstrap(config, ticks, rng, base_dir)
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"unknown price path config {type(config).__name__}")
        prices = apply_shocks(prices, ticks, config.shocks)
    check_price_range(prices, ticks, config.kind)
    return prices


def check_price_range(prices: FloatArray, ticks: IntArray, kind: str) -> None:
    """Refuse a path that leaves the prices the engine can carry (:data:`MIN_PRICE` ...).

    Raises:
        ConfigError: naming the first tick out of range and what to change.
    """
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(prices) & (prices >= MIN_PRICE) & (prices <= MAX_PRICE))
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0])
    raise ConfigError(
        f"price_path: the {kind} path reaches {float(prices[i]):.6g} at run time"
        f" {int(ticks[i])} s (tick {i}), outside the prices a run can carry"
        f" [{MIN_PRICE:g}, {MAX_PRICE:g}]; lower its volatility or drift, shorten the run, or"
        " soften its shocks"
    )


def path_start_time(config: PricePathConfig, base_dir: Path | None = None) -> int | None:
    """Returns the absolute start a path implies, if any.

    Args:
        config: The price path.
        base_dir: Folder against which a relative data ``file`` resolves.

    Returns:
        For a historical path, the Unix time of the first data row of its window; ``None`` for
        every other kind (their absolute time is arbitrary).
    """
    if isinstance(config, HistoricalPath):
        return int(load_path_data(config, base_dir).times[0])
    return None


def load_path_data(config: HistoricalPath | BootstrapPath, base_dir: Path | None) -> PriceSeries:
    """Loads and validates the data series of a historical or bootstrap path.

    Args:
        config: The path.
        base_dir: Folder against which a relative ``file`` resolves.

    Returns:
        The validated series of the path's window.

    Raises:
        ConfigError: If the file is missing or its data is invalid.
    """
    if isinstance(config, HistoricalPath) and config.bars is not None:
        bars = load_bars(config, base_dir)
        times, prices = bar_points(bars)
        return PriceSeries(times=times, prices=prices, source=bars.source)
    return _load_column(config, base_dir, config.price_column)


def _load_column(
    config: HistoricalPath | BootstrapPath, base_dir: Path | None, column: str
) -> PriceSeries:
    return load_price_series(
        resolve_data_file(config.file, base_dir),
        time_column=config.time_column,
        price_column=column,
        filter=config.filter,
        start=config.start,
        end=config.end,
        gap_tolerance=config.gap_tolerance,
    )


@dataclass(frozen=True)
class Bars:
    """Price bars: open, high, low and close at each bar's start time.

    Attributes:
        times: Unix seconds of each bar's start, strictly increasing.
        open: Each bar's first price.
        high: Each bar's highest price.
        low: Each bar's lowest price.
        close: Each bar's last price.
        length: Each bar's length in seconds (the next bar's start; the last bar: the median).
        source: The file.
    """

    times: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    length: IntArray
    source: Path


def load_bars(config: HistoricalPath, base_dir: Path | None) -> Bars:
    """The bars of a historical path with ``bars:`` (each column validated like the prices).

    Raises:
        ConfigError: A column is missing or invalid, a bar's high or low does not contain its
            open and close, or bars are shorter than 3 s (their points would coincide).
    """
    columns = config.bars
    if columns is None:
        raise ValueError("the path has no bars: section")
    o = _load_column(config, base_dir, config.price_column)
    loaded = []
    for name in ("high", "low", "close"):
        column = getattr(columns, name)
        try:
            loaded.append(_load_column(config, base_dir, column).prices)
        except ConfigError as exc:
            text = str(exc).replace(f"price_column {column!r}", f"column {column!r}")
            raise ConfigError(f"bars.{name}: {text}") from None
    h, lo, c = loaded
    times = o.times
    length = np.diff(times)
    length = np.append(length, int(np.median(length)) if length.size else 0)
    src = o.source
    where = f"bars: {src}"
    top = np.maximum(o.prices, c)
    bottom = np.minimum(o.prices, c)
    for bad, what in (
        (h < top, "high is below its open or close"),
        (lo > bottom, "low is above its open or close"),
    ):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ConfigError(
                f"{where}: the bar at {format_time(int(times[i]))} has open {o.prices[i]:g},"
                f" high {h[i]:g}, low {lo[i]:g}, close {c[i]:g}: its {what}"
                f" ({int(bad.sum())} such bar(s)); check the column names"
            )
    if length.min() < 3:
        raise ConfigError(f"{where}: bars {int(length.min())} s apart are too short (3 s or more)")
    return Bars(times, o.prices, h, lo, c, length.astype(np.int64), src)


def bar_points(bars: Bars) -> tuple[IntArray, FloatArray]:
    """The points a path through ``bars`` visits (see :class:`~perpsim.oracle.config.BarColumns`).

    Returns:
        Strictly increasing Unix times and their prices: per bar its open, its first and its
        second extreme at a third and two thirds of the bar; then the last bar's close at its
        end.
    """
    falling = bars.close < bars.open
    first = np.where(falling, bars.high, bars.low)
    second = np.where(falling, bars.low, bars.high)
    third = bars.length // 3
    times = np.stack((bars.times, bars.times + third, bars.times + 2 * third), axis=1).ravel()
    prices = np.stack((bars.open, first, second), axis=1).ravel()
    times = np.append(times, bars.times[-1] + bars.length[-1])
    prices = np.append(prices, bars.close[-1])
    return times.astype(np.int64), prices.astype(np.float64)


def within_bars(bars: Bars, absolute: IntArray, prices: FloatArray) -> FloatArray:
    """``prices`` at Unix times ``absolute`` kept within the ``[low, high]`` of their bar."""
    k = np.clip(np.searchsorted(bars.times, absolute, side="right") - 1, 0, bars.times.size - 1)
    return np.asarray(np.clip(prices, bars.low[k], bars.high[k]), dtype=np.float64)


def apply_shocks(prices: FloatArray, times: npt.ArrayLike, shocks: tuple[Shock, ...]) -> FloatArray:
    """Multiplies a path by its scheduled shocks.

    Each shock multiplies the price by ``(1 + change) ** ramp`` where ``ramp`` rises linearly
    from 0 at ``at`` to 1 at ``at + over`` and stays at 1 (a step at ``at`` when ``over`` is 0).

    Args:
        prices: The unshocked path.
        times: Run times of the ticks (seconds).
        shocks: The shocks; they compose by multiplication.

    Returns:
        A new array with the shocks applied (the input is not modified).
    """
    out = np.array(prices, dtype=np.float64, copy=True)
    if not shocks:
        return out
    t = np.asarray(times, dtype=np.float64)
    log_shift = np.zeros_like(out)
    for shock in shocks:
        if shock.over > 0:
            ramp = np.clip((t - shock.at) / shock.over, 0.0, 1.0)
        else:
            ramp = (t >= shock.at).astype(np.float64)
        log_shift += math.log1p(shock.change) * ramp
    return np.asarray(out * np.exp(log_shift), dtype=np.float64)


def regime_switching_path(
    config: RegimeSwitchingPath, times: npt.ArrayLike, rng: np.random.Generator
) -> RegimeSwitchingResult:
    """Generates a regime-switching path and returns it with its regime history.

    :func:`build_path` calls this and keeps the prices, so both give the same prices for the
    same seed (shocks aside).

    Args:
        config: The path.
        times: Run times of the ticks (see :func:`build_path`).
        rng: The path's random stream.

    Returns:
        Prices, the regime at each tick, and the switch times and states of the chain.
    """
    ticks = _check_times(times)
    n_regimes = len(config.regimes)
    horizon = float(ticks[-1]) if ticks.size else 0.0
    sigma2 = np.array([r.sigma**2 for r in config.regimes])
    durations = np.array([float(r.mean_duration) for r in config.regimes])

    # Chain: next state = current + U{1..n-1} (mod n), holding time ~ Exp(mean_duration[state]).
    states = np.array([config.initial_regime], dtype=np.int64)
    ends = np.zeros(0)
    if n_regimes > 1:
        batch = int(horizon / durations.mean() * 1.25) + 16
        state_parts = [states]
        end_parts: list[FloatArray] = []
        elapsed = 0.0
        last = config.initial_regime
        while elapsed <= horizon:
            steps = rng.integers(1, n_regimes, size=batch)
            holds = rng.standard_exponential(size=batch)
            seq = (last + np.concatenate(([0], np.cumsum(steps)))) % n_regimes
            block_ends = elapsed + np.cumsum(holds * durations[seq[:-1]])
            state_parts.append(seq[1:])
            end_parts.append(block_ends)
            elapsed = float(block_ends[-1])
            last = int(seq[-1])
        states = np.concatenate(state_parts)
        ends = np.concatenate(end_parts)
        n_used = int(np.searchsorted(ends, horizon, side="right")) + 1
        ends = ends[: n_used - 1]
        states = states[:n_used]

    bounds = np.concatenate(([0.0], ends))
    # Cumulative variance (in annualised units × years) at each boundary; linear in between.
    seg_var = sigma2[states[:-1]] * np.diff(bounds) / SECONDS_PER_YEAR
    cum_var = np.concatenate(([0.0], np.cumsum(seg_var)))
    t = ticks.astype(np.float64)
    last_bound = bounds[-1]
    var_at = np.interp(t, bounds, cum_var) + np.where(
        t > last_bound, sigma2[states[-1]] * (t - last_bound) / SECONDS_PER_YEAR, 0.0
    )
    d_var = np.diff(np.concatenate(([0.0], var_at)))
    d_var = np.maximum(d_var, 0.0)
    dt = _dt_years(ticks)
    z = rng.standard_normal(ticks.size)
    log_inc = config.mu * dt - 0.5 * d_var + np.sqrt(d_var) * z
    prices = config.s0 * np.exp(np.cumsum(log_inc))
    regime = states[np.searchsorted(bounds, t, side="right") - 1]
    return RegimeSwitchingResult(
        prices=np.asarray(prices, dtype=np.float64),
        regime=np.asarray(regime, dtype=np.int64),
        switch_times=np.asarray(ends, dtype=np.float64),
        states=np.asarray(states, dtype=np.int64),
    )


def resample(
    data_times: npt.ArrayLike,
    data_prices: npt.ArrayLike,
    ticks: npt.ArrayLike,
    method: str,
    rng: np.random.Generator | None = None,
    bridge_window: int = 24,
) -> FloatArray:
    """Resamples a price series to tick times.

    Args:
        data_times: Strictly increasing times of the data (any consistent unit, e.g. seconds).
        data_prices: Positive prices at ``data_times``.
        ticks: Times to resample to, within ``[data_times[0], data_times[-1]]``.
        method: ``"linear"`` (in price), ``"previous"`` (last data price at or before the tick)
            or ``"bridge"`` (see :func:`bridge_interpolate`).
        rng: Random stream, needed by ``"bridge"`` only.
        bridge_window: Window of the bridge's volatility estimate (data returns).

    Returns:
        Prices at the ticks; at a tick equal to a data time, exactly the data price.

    Raises:
        ValueError: If ``method`` is unknown or ``"bridge"`` has no ``rng``.
    """
    t_data = np.asarray(data_times, dtype=np.int64)
    p_data = np.asarray(data_prices, dtype=np.float64)
    t = np.asarray(ticks, dtype=np.int64)
    if method == "linear":
        out = np.interp(t.astype(np.float64), t_data.astype(np.float64), p_data)
        return np.asarray(out, dtype=np.float64)
    if method == "previous":
        idx = np.searchsorted(t_data, t, side="right") - 1
        return np.asarray(p_data[np.clip(idx, 0, p_data.size - 1)], dtype=np.float64)
    if method == "bridge":
        if rng is None:
            raise ValueError("bridge interpolation needs a random generator")
        return bridge_interpolate(t_data, p_data, t, rng, window=bridge_window)
    raise ValueError(f"unknown interpolation {method!r}: use 'linear', 'previous' or 'bridge'")


def bridge_interpolate(
    data_times: npt.ArrayLike,
    data_prices: npt.ArrayLike,
    ticks: npt.ArrayLike,
    rng: np.random.Generator,
    window: int = 24,
    variance_rate: FloatArray | None = None,
) -> FloatArray:
    """Fills in a coarse price series with a log-price Brownian bridge.

    Between two data points the log-price is the straight line between them plus a Brownian
    bridge (zero at both data points). The bridge's variance rate on each interval is a local,
    jump-robust estimate from the data: the median realized variance (MedRV) of the data
    log-returns over a centred window of ``window`` intervals (see
    :func:`_local_variance_rate`). A Brownian path with that volatility, conditioned on the data
    points, is exactly such a bridge, so the
    result has realistic intra-interval volatility, equals the data at the data's times and
    keeps the data's coarse returns. A large move in one interval (a jump) is kept as the
    bridge's drift across that interval rather than spread as extra volatility.

    Args:
        data_times: Strictly increasing integer times of the data.
        data_prices: Positive prices at ``data_times``.
        ticks: Integer times to fill in, within ``[data_times[0], data_times[-1]]``.
        rng: Random stream; one standard normal per tick strictly between two data times plus
            one per such interval.
        window: Number of data returns in the volatility estimate (at least 2).
        variance_rate: The bridge's variance per time unit on each data interval, instead of
            the estimate from the data (a path through bars' extremes takes it from the opens:
            the swings to a high and a low are not independent returns).

    Returns:
        Prices at the ticks.
    """
    t_data = np.asarray(data_times, dtype=np.int64)
    x_data = np.log(np.asarray(data_prices, dtype=np.float64))
    t = np.asarray(ticks, dtype=np.int64)
    n_int = t_data.size - 1
    dt_data = np.diff(t_data).astype(np.float64)
    if variance_rate is None:
        rate = _local_variance_rate(np.diff(x_data), dt_data, window)
    else:
        rate = np.asarray(variance_rate, dtype=np.float64)
        if rate.shape != dt_data.shape:
            raise ValueError(f"variance_rate needs {dt_data.size} values, got {rate.size}")

    j = np.clip(np.searchsorted(t_data, t, side="right") - 1, 0, n_int - 1)
    frac = (t - t_data[j]).astype(np.float64) / dt_data[j]
    x = x_data[j] + (x_data[j + 1] - x_data[j]) * frac
    inside = (t > t_data[j]) & (t < t_data[j + 1])
    if inside.any():
        ti = t[inside]
        ji = j[inside]
        ends_j = np.unique(ji)
        node_t = np.concatenate((ti, t_data[ends_j + 1]))
        node_j = np.concatenate((ji, ends_j))
        is_end = np.concatenate((np.zeros(ti.size, bool), np.ones(ends_j.size, bool)))
        order = np.lexsort((node_t, node_j))
        node_t, node_j, is_end = node_t[order], node_j[order], is_end[order]
        first = np.ones(node_t.size, bool)
        first[1:] = node_j[1:] != node_j[:-1]
        prev_t = np.where(first, t_data[node_j], np.roll(node_t, 1))
        d_w = np.sqrt(rate[node_j] * (node_t - prev_t)) * rng.standard_normal(node_t.size)
        cum = np.cumsum(d_w)
        group_start = np.maximum.accumulate(np.where(first, np.arange(node_t.size), 0))
        w = cum - cum[group_start] + d_w[group_start]
        w_end = w[is_end]  # one per interval, in the order of ends_j
        end_of = np.searchsorted(ends_j, node_j)
        node_frac = (node_t - t_data[node_j]) / dt_data[node_j]
        bridge = w - node_frac * w_end[end_of]
        # Nodes that are ticks, in the original tick order (ticks are sorted; ties keep order).
        tick_nodes = bridge[~is_end]
        x[np.flatnonzero(inside)] += tick_nodes
    out = np.exp(x)
    at_data = (t == t_data[j]) | (t == t_data[j + 1])
    exact_idx = np.where(t == t_data[j + 1], j + 1, j)
    out[at_data] = np.asarray(data_prices, dtype=np.float64)[exact_idx[at_data]]
    return np.asarray(out, dtype=np.float64)


#: Scale of MedRV (Andersen, Dobrev & Schaumburg 2012): E[median(|Z1|,|Z2|,|Z3|)²] = 1 / this.
_MEDRV_SCALE = math.pi / (6.0 - 4.0 * math.sqrt(3.0) + math.pi)


def _local_variance_rate(returns: FloatArray, dt: FloatArray, window: int) -> FloatArray:
    """Local diffusive variance per time unit of each data interval (median realized variance).

    Each interval gets ``c · median(a_{i-1}, a_i, a_{i+1})²`` with ``a = |r| / √Δt`` and ``c``
    the MedRV constant (Andersen, Dobrev & Schaumburg 2012), which makes it unbiased for a
    Brownian path; these are averaged over a centred window of ``window`` intervals. The median
    of three neighbouring returns ignores an isolated jump, so one crash hour does not inflate
    the bridge's volatility in the hours around it (with a plain mean of ``r²`` it would, and the
    bridge would then zigzag through the threshold of a deviation-triggered oracle far more
    often than the real market did).
    """
    n = returns.size
    scaled = np.abs(returns) / np.sqrt(dt)
    if n < 3:
        return np.full(n, float(np.mean(scaled**2)))
    triples = np.stack((scaled[:-2], scaled[1:-1], scaled[2:]))
    med = _MEDRV_SCALE * np.median(triples, axis=0) ** 2
    per_interval = np.concatenate((med[:1], med, med[-1:]))
    if n <= window:
        return np.full(n, float(per_interval.mean()))
    csum = np.concatenate(([0.0], np.cumsum(per_interval)))
    lo = np.clip(np.arange(n) - window // 2, 0, n - window)
    return np.asarray((csum[lo + window] - csum[lo]) / window, dtype=np.float64)


def _check_times(times: npt.ArrayLike) -> IntArray:
    arr = np.asarray(times)
    if arr.ndim != 1:
        raise ValueError(f"tick times must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(arr.dtype, np.integer) and (
        not np.issubdtype(arr.dtype, np.floating) or not np.all(arr == np.floor(arr))
    ):
        raise ValueError("tick times must be whole seconds (an integer array)")
    ticks = arr.astype(np.int64)
    if ticks[0] < 0:
        raise ValueError(f"tick times are seconds since the run start and must be >= 0: {ticks[0]}")
    if np.any(np.diff(ticks) < 0):
        raise ValueError("tick times must be non-decreasing")
    return ticks


def _dt_years(ticks: IntArray) -> FloatArray:
    return np.diff(np.concatenate(([0], ticks))).astype(np.float64) / SECONDS_PER_YEAR


def _gbm(config: GBMPath, ticks: IntArray, rng: np.random.Generator) -> FloatArray:
    dt = _dt_years(ticks)
    z = rng.standard_normal(ticks.size)
    log_inc = (config.mu - 0.5 * config.sigma**2) * dt + config.sigma * np.sqrt(dt) * z
    return np.asarray(config.s0 * np.exp(np.cumsum(log_inc)), dtype=np.float64)


def _jump_diffusion(
    config: JumpDiffusionPath, ticks: IntArray, rng: np.random.Generator
) -> FloatArray:
    dt = _dt_years(ticks)
    z = rng.standard_normal(ticks.size)
    counts = rng.poisson(config.jump_intensity * dt)
    z_jump = rng.standard_normal(ticks.size)
    jumps = counts * config.jump_mean + np.sqrt(counts) * config.jump_std * z_jump
    kappa = math.expm1(config.jump_mean + 0.5 * config.jump_std**2)
    drift = config.mu - 0.5 * config.sigma**2 - config.jump_intensity * kappa
    log_inc = drift * dt + config.sigma * np.sqrt(dt) * z + jumps
    return np.asarray(config.s0 * np.exp(np.cumsum(log_inc)), dtype=np.float64)


def _historical(
    config: HistoricalPath,
    ticks: IntArray,
    rng: np.random.Generator,
    base_dir: Path | None,
    start_time: int | None,
) -> FloatArray:
    series = load_path_data(config, base_dir)
    origin = int(series.times[0]) if start_time is None else int(start_time)
    if ticks.size == 0:
        return np.zeros(0)
    absolute = origin + ticks
    if absolute[0] < series.times[0] or absolute[-1] > series.times[-1]:
        raise ConfigError(
            f"{series.source}: the run's ticks span {format_time(int(absolute[0]))} to "
            f"{format_time(int(absolute[-1]))} but the data (after filter/start/end) only covers "
            f"{format_time(int(series.times[0]))} to {format_time(int(series.times[-1]))}; "
            "shorten the run or move its start time"
        )
    if config.bars is None:
        return resample(
            series.times, series.prices, absolute, config.interpolation, rng, config.bridge_window
        )
    bars = load_bars(config, base_dir)
    if config.interpolation == "bridge":
        # The bridge's volatility is the opens' (as without bars), one rate per bar for its
        # three intervals: the swings through a bar's high and low are its range, not returns.
        per_bar = _local_variance_rate(
            np.diff(np.log(bars.open)) if bars.open.size > 1 else np.zeros(1),
            bars.length[:-1].astype(np.float64) if bars.open.size > 1 else np.ones(1),
            config.bridge_window,
        )
        per_bar = np.append(per_bar, per_bar[-1])[: bars.open.size]
        prices = bridge_interpolate(
            series.times, series.prices, absolute, rng, variance_rate=np.repeat(per_bar, 3)
        )
    else:
        prices = resample(series.times, series.prices, absolute, config.interpolation)
    # Between its points the bridge (and the line to the next open) may leave the bar's range.
    return within_bars(bars, absolute, prices)


def _bootstrap(
    config: BootstrapPath, ticks: IntArray, rng: np.random.Generator, base_dir: Path | None
) -> FloatArray:
    series = load_path_data(config, base_dir)
    spacing = series.spacing
    returns = series.log_returns
    block = max(1, round(config.block_length / spacing))
    if block > returns.size:
        raise ConfigError(
            f"{series.source}: block_length {config.block_length} s is {block} data steps of "
            f"{spacing} s but the window has only {returns.size} returns"
        )
    s0 = float(series.prices[0]) if config.s0 is None else float(config.s0)
    if ticks.size == 0:
        return np.zeros(0)
    n_steps = max(1, math.ceil(int(ticks[-1]) / spacing))
    n_blocks = math.ceil(n_steps / block)
    starts = rng.integers(0, returns.size - block + 1, size=n_blocks)
    idx = (starts[:, None] + np.arange(block)[None, :]).ravel()[:n_steps]
    synth = s0 * np.exp(np.concatenate(([0.0], np.cumsum(returns[idx]))))
    synth_times = np.arange(n_steps + 1, dtype=np.int64) * spacing
    return resample(synth_times, synth, ticks, config.interpolation, rng, config.bridge_window)
