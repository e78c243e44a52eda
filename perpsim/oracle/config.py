"""Configuration of price paths and of the oracle feed.

Every model is a frozen pydantic v2 model that forbids unknown keys, so a scenario file with a
typo or a bad value is rejected by pydantic with the field's name.

Conventions:

* **Run times** (``Shock.at``, ``Outage.start``, ``Manipulation.start``, ...) are integer seconds
  from the start of the run. **Durations** are integer seconds. Both also accept duration strings
  such as ``"90s"``, ``"30m"``, ``"2h"``, ``"1d"``, ``"1w"`` or ``"1h30m"`` (see
  :func:`parse_duration`).
* **Absolute times** (``HistoricalPath.start`` / ``end``) are Unix seconds (UTC) or ISO 8601
  strings such as ``"2020-03-12"`` or ``"2020-03-12T10:00:00Z"`` (see :func:`parse_timestamp`).
* A **year** is 365 days (:data:`SECONDS_PER_YEAR`) for annualised drifts, volatilities and jump
  intensities.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

__all__ = [
    "MAX_DRIFT",
    "MAX_PRICE",
    "MAX_SIGMA",
    "MIN_PRICE",
    "SECONDS_PER_YEAR",
    "BarColumns",
    "BootstrapPath",
    "ConstantPath",
    "Duration",
    "GBMPath",
    "HistoricalPath",
    "JumpDiffusionPath",
    "Manipulation",
    "OracleEma",
    "OracleFeedConfig",
    "OracleGuard",
    "Outage",
    "PricePathConfig",
    "Regime",
    "RegimeSwitchingPath",
    "Shock",
    "Timestamp",
    "parse_duration",
    "parse_timestamp",
]

#: Seconds in the 365-day year used to annualise drift, volatility and jump intensity.
SECONDS_PER_YEAR = 365 * 86_400

#: The prices a run can carry. The engine's accounting is float64 and checked to a relative
#: tolerance: a margin balance is price × position + cash, so at 1e300 a position's value
#: overflows and below 1e-8 a lot's value vanishes next to a fee. Every price path (generated,
#: read from a file, after shocks) must stay within these bounds, which hold any real asset.
MIN_PRICE = 1e-8
MAX_PRICE = 1e12
#: The largest annualised volatility a path accepts (10 = 1,000% a year; Bitcoin's worst year
#: was about 1.5). Larger values are typing errors, and overflow the path's exponent.
MAX_SIGMA = 10.0
#: The largest annualised drift (in absolute value) a path accepts: e**10 a year.
MAX_DRIFT = 10.0

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}
_DURATION_PART = re.compile(r"(\d+)\s*([smhdw])")
_DURATION_FULL = re.compile(r"\s*(?:\d+\s*[smhdw]\s*)+")


def parse_duration(value: object) -> int:
    """Parses a duration or run-time offset into whole seconds.

    Accepted forms: an integer (seconds), a float with an integral value, a string of digits
    (seconds) or a string of ``<number><unit>`` parts with units ``s``, ``m``, ``h``, ``d``
    (24 h) and ``w`` (7 d), e.g. ``"30m"``, ``"2h"``, ``"1d"``, ``"1h30m"``. Negative values are
    returned as they are; range checks belong to the field that uses the value.

    Args:
        value: The value from a configuration file or from code.

    Returns:
        The duration in seconds.

    Raises:
        ValueError: If the value is not one of the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError(f"a duration must be seconds or a string like '2h', got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise ValueError(f"a duration must be a whole number of seconds, got {value!r}")
    if isinstance(value, str):
        text = value.strip().lower()
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        if text and _DURATION_FULL.fullmatch(text):
            return sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
        raise ValueError(
            f"cannot read duration {value!r}: use seconds (e.g. 3600) or a number with a unit "
            "s, m, h, d or w (e.g. '90s', '30m', '2h', '1d', '1h30m')"
        )
    raise ValueError(
        f"a duration must be seconds or a string like '2h', got {type(value).__name__} {value!r}"
    )


def parse_timestamp(value: object) -> int:
    """Parses an absolute time into Unix seconds (UTC).

    Args:
        value: Unix seconds (an int, or a float with an integral value) or an ISO 8601 date or
            date-time string; a string without a time zone is taken as UTC.

    Returns:
        The time in whole Unix seconds.

    Raises:
        ValueError: If the value cannot be read as a time or is not a whole second.
    """
    if isinstance(value, bool):
        raise ValueError(f"a time must be Unix seconds or an ISO 8601 string, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise ValueError(f"a time must be a whole number of Unix seconds, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        try:
            # ISO 8601 only (Python's parser is strict: "1h" or "yesterday" are not times).
            stamp = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(
                f"cannot read time {value!r}: use Unix seconds or ISO 8601 such as "
                "'2020-03-12' or '2020-03-12T10:00:00Z'"
            ) from exc
        stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
        if stamp.microsecond:
            raise ValueError(f"time {value!r} is not a whole second")
        return int(stamp.timestamp())
    raise ValueError(
        f"a time must be Unix seconds or an ISO 8601 string, got {type(value).__name__} {value!r}"
    )


#: Integer seconds; also accepts strings such as ``"2h"`` (see :func:`parse_duration`).
Duration = Annotated[int, BeforeValidator(parse_duration)]
#: Unix seconds; also accepts ISO 8601 strings (see :func:`parse_timestamp`).
Timestamp = Annotated[int, BeforeValidator(parse_timestamp)]

_FilterValue = str | int | float


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Shock(_Frozen):
    """A scheduled fall or rise applied multiplicatively on top of any price path.

    The log-price is shifted by ``log(1 + change)`` ramped linearly from ``at`` to
    ``at + over`` and the shift stays afterwards. With ``over = 0`` the shift is a step at
    ``at`` (the tick at ``at`` already has it).

    Attributes:
        at: Run time (seconds from the start) at which the shock starts.
        change: Relative change once complete, e.g. ``-0.3`` for a 30% fall; must be > -1.
        over: Duration of the ramp in seconds (0 for an instantaneous jump).
    """

    at: Duration = Field(ge=0)
    change: float = Field(gt=-1.0)
    over: Duration = Field(default=0, ge=0)


class _PathBase(_Frozen):
    """Fields shared by every price path."""

    shocks: tuple[Shock, ...] = ()


class ConstantPath(_PathBase):
    """A constant market price (shocks still apply).

    Attributes:
        price: The price.
    """

    kind: Literal["constant"] = "constant"
    price: float = Field(ge=MIN_PRICE, le=MAX_PRICE)


class GBMPath(_PathBase):
    """Geometric Brownian motion ``dS/S = mu dt + sigma dW``.

    The log-price increment over ``dt`` years is ``(mu - sigma²/2) dt + sigma √dt Z``, so
    ``E[S_t] = s0 · exp(mu t)``.

    Attributes:
        s0: Price at run time 0.
        mu: Annualised drift.
        sigma: Annualised volatility.
    """

    kind: Literal["gbm"] = "gbm"
    s0: float = Field(ge=MIN_PRICE, le=MAX_PRICE)
    mu: float = Field(default=0.0, ge=-MAX_DRIFT, le=MAX_DRIFT)
    sigma: float = Field(ge=0.0, le=MAX_SIGMA)


class JumpDiffusionPath(_PathBase):
    """Merton jump-diffusion: GBM plus compound-Poisson jumps of the log-price.

    Log jumps are ``Normal(jump_mean, jump_std²)`` and arrive at ``jump_intensity`` per year.
    The drift is compensated (Merton 1976) so that ``E[S_t] = s0 · exp(mu t)`` as for GBM: the
    diffusive log drift is ``mu - sigma²/2 - jump_intensity · k`` with
    ``k = exp(jump_mean + jump_std²/2) - 1``.

    Attributes:
        s0: Price at run time 0.
        mu: Annualised expected total return.
        sigma: Annualised volatility of the diffusive part.
        jump_intensity: Expected number of jumps per year.
        jump_mean: Mean of the log jump (e.g. -0.1 for jumps of about -9.5%).
        jump_std: Standard deviation of the log jump.
    """

    kind: Literal["jump_diffusion"] = "jump_diffusion"
    s0: float = Field(ge=MIN_PRICE, le=MAX_PRICE)
    mu: float = Field(default=0.0, ge=-MAX_DRIFT, le=MAX_DRIFT)
    sigma: float = Field(ge=0.0, le=MAX_SIGMA)
    # Up to one jump a minute on average; a log jump of ±5 is a factor of 150.
    jump_intensity: float = Field(ge=0.0, le=SECONDS_PER_YEAR / 60)
    jump_mean: float = Field(default=0.0, ge=-5.0, le=5.0)
    jump_std: float = Field(default=0.0, ge=0.0, le=5.0)


class Regime(_Frozen):
    """One volatility regime of :class:`RegimeSwitchingPath`.

    Attributes:
        sigma: Annualised volatility while in this regime.
        mean_duration: Mean time spent in the regime per visit, in seconds (exponentially
            distributed).
    """

    sigma: float = Field(ge=0.0, le=MAX_SIGMA)
    mean_duration: Duration = Field(gt=0)


class RegimeSwitchingPath(_PathBase):
    """GBM whose volatility follows a continuous-time Markov chain over ``regimes``.

    The chain leaves regime ``i`` at rate ``1 / mean_duration_i`` and jumps to one of the other
    regimes chosen uniformly at random. The long-run share of time in regime ``i`` is therefore
    ``mean_duration_i / Σ_j mean_duration_j``. Switches happen in continuous time; the log-price
    increment between two ticks is Gaussian with the variance integrated over the regimes in
    force between them, plus the drift ``mu dt - ½ · variance``.

    Attributes:
        s0: Price at run time 0.
        mu: Annualised drift (the same in every regime).
        regimes: The regimes; at least one.
        initial_regime: Index of the regime in force at run time 0.
    """

    kind: Literal["regime_switching"] = "regime_switching"
    s0: float = Field(ge=MIN_PRICE, le=MAX_PRICE)
    mu: float = Field(default=0.0, ge=-MAX_DRIFT, le=MAX_DRIFT)
    regimes: tuple[Regime, ...] = Field(min_length=1)
    initial_regime: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _check_initial_regime(self) -> RegimeSwitchingPath:
        if self.initial_regime >= len(self.regimes):
            raise ValueError(
                f"initial_regime {self.initial_regime} is out of range: there are "
                f"{len(self.regimes)} regimes (indices 0 to {len(self.regimes) - 1})"
            )
        return self


class _DataPathBase(_PathBase):
    """Fields shared by the paths that read a CSV price file."""

    file: str = Field(min_length=1)
    time_column: str = "timestamp"
    price_column: str = "open"
    filter: dict[str, _FilterValue] | None = None
    start: Timestamp | None = None
    end: Timestamp | None = None
    interpolation: Literal["linear", "previous", "bridge"] = "linear"
    gap_tolerance: float = Field(default=1.5, gt=1.0)
    bridge_window: int = Field(default=24, ge=2)

    @model_validator(mode="after")
    def _check_window(self) -> _DataPathBase:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self


class BarColumns(_Frozen):
    """The columns of each bar's high, low and close (``HistoricalPath.bars``).

    With them, the path goes through every bar's extremes instead of only its open: each bar
    of length Δ starting at ``t`` gives the points open (at ``t``), its first extreme (at
    ``t + Δ/3``) and its second extreme (at ``t + 2Δ/3``), then the next bar's open (the last
    bar ends at its close, at ``t + Δ``). A bar that closed below its open is taken to have
    made its high first and then its low; any other bar its low first. The interpolated path
    is then kept within each bar's ``[low, high]``.

    Attributes:
        high: Column of each bar's highest price.
        low: Column of each bar's lowest price.
        close: Column of each bar's last price (it says which extreme came first).
    """

    high: str = Field(default="high", min_length=1)
    low: str = Field(default="low", min_length=1)
    close: str = Field(default="close", min_length=1)


class HistoricalPath(_DataPathBase):
    """Replay of a real price series from a CSV file, resampled to the ticks.

    Run time ``t`` maps to the absolute time ``start_time + t``; when the run gives no start
    time, it starts at the first data row of the window (see
    :func:`perpsim.oracle.paths.path_start_time`).

    Attributes:
        file: CSV file; a relative path resolves against the scenario file's folder.
        time_column: Column of times: Unix seconds, or ISO 8601 strings (UTC if no zone).
        price_column: Column of prices. In the shipped files ``timestamp`` is the bar's open, so
            ``open`` is the price at exactly that time (the default).
        filter: Keep only rows where each column equals the value (compared as text), e.g.
            ``{"event": "black_thursday_2020", "market": "binance_spot_ETHUSDT"}``.
        start: Keep rows at or after this absolute time (Unix seconds or ISO 8601).
        end: Keep rows at or before this absolute time.
        interpolation: ``"linear"`` (in price; the path equals the data at the data's times),
            ``"previous"`` (the last data price at or before the tick) or ``"bridge"`` (a
            log-price Brownian bridge through the data points, with volatility estimated from
            the data; seeded from the path's random stream).
        gap_tolerance: A spacing larger than this multiple of the median spacing is a gap and
            rejects the data.
        bridge_window: Number of data returns in the centred window used to estimate the local
            volatility of the ``"bridge"`` interpolation.
        bars: The rows are bars (``price_column`` their open): route the path through each
            bar's high and low (see :class:`BarColumns`). Without it the path only goes
            through the opens, and an hourly file's lows are lost (Black Thursday's 86 USD
            low came inside an hour that opened at 96.5 and closed at 111).
    """

    kind: Literal["historical"] = "historical"
    bars: BarColumns | None = None


class BootstrapPath(_DataPathBase):
    """Moving-block bootstrap of the log-returns of a CSV price series.

    Blocks of ``block_length`` seconds of consecutive data returns are drawn with replacement
    (start uniform over the data) and chained from ``s0`` at the data's spacing; the synthetic
    series is then resampled to the ticks with ``interpolation``. The data rules (columns,
    filter, window, gaps) are those of :class:`HistoricalPath`.

    Attributes:
        block_length: Block length in seconds; rounded to a whole number (at least 1) of data
            steps.
        s0: Price at run time 0; defaults to the first price of the data window.
    """

    kind: Literal["bootstrap"] = "bootstrap"
    block_length: Duration = Field(default=86_400, gt=0)
    s0: float | None = Field(default=None, ge=MIN_PRICE, le=MAX_PRICE)


#: Any price path; the ``kind`` field selects the model.
PricePathConfig = Annotated[
    ConstantPath
    | GBMPath
    | JumpDiffusionPath
    | RegimeSwitchingPath
    | HistoricalPath
    | BootstrapPath,
    Field(discriminator="kind"),
]


class Outage(_Frozen):
    """A window in which the oracle publishes nothing (heartbeat included).

    Attributes:
        start: Run time (seconds from the start) at which the outage begins.
        duration: Length of the outage in seconds; the window is ``[start, start + duration)``.
    """

    start: Duration = Field(ge=0)
    duration: Duration = Field(gt=0)


class Manipulation(_Frozen):
    """A window in which the published price is the market price times ``1 + spike``.

    Attributes:
        start: Run time (seconds from the start) at which the manipulation begins.
        duration: Length in seconds; the window is ``[start, start + duration)``.
        spike: Relative distortion, e.g. ``0.1`` for +10% or ``-0.2`` for -20%; must be > -1.
    """

    start: Duration = Field(ge=0)
    duration: Duration = Field(gt=0)
    spike: float = Field(gt=-1.0)


class OracleGuard(_Frozen):
    """The venue's guard on the index it reads: when to stop trading or liquidating.

    The guard is on while the index is older than ``max_age`` or at or beyond
    ``min_price`` / ``max_price`` (the venue's own plausible range, set inside the feed's
    ``min_answer`` / ``max_answer`` so that a feed frozen near its bound trips it). While it is
    on, the venue refuses what ``stops`` names; it ends when a fresh, plausible index arrives.

    Attributes:
        max_age: Largest index age in seconds the venue accepts (null: no staleness limit).
        min_price: The index must stay above this (null: no bound).
        max_price: The index must stay below this (null: no bound).
        stops: ``trading``, ``liquidation``, ``both`` (trading and liquidation) or ``all``
            (withdrawals too: a pumped index lets an account withdraw a paper gain).
    """

    max_age: Duration | None = Field(default=None, gt=0)
    min_price: float | None = Field(default=None, gt=0.0)
    max_price: float | None = Field(default=None, gt=0.0)
    stops: Literal["trading", "liquidation", "both", "all"] = "both"

    def halts(self) -> tuple[str, ...]:
        """What the venue refuses while the guard is on."""
        return {
            "trading": ("trading",),
            "liquidation": ("liquidation",),
            "both": ("trading", "liquidation"),
            "all": ("trading", "liquidation", "withdrawal"),
        }[self.stops]

    @model_validator(mode="after")
    def _check(self) -> OracleGuard:
        if self.max_age is None and self.min_price is None and self.max_price is None:
            raise ValueError("a guard needs max_age, min_price or max_price")
        lo, hi = self.min_price, self.max_price
        if lo is not None and hi is not None and not lo < hi:
            raise ValueError(f"min_price ({lo}) must be below max_price ({hi})")
        return self

    def trips(self, price: float, age: int) -> str | None:
        """Why the guard is on for an index ``price`` of age ``age`` s (None: it is off)."""
        if self.max_age is not None and age > self.max_age:
            return f"the index is {age} s old (limit {self.max_age} s)"
        if self.min_price is not None and price <= self.min_price:
            return f"the index {price:g} is at or below the guard's min_price {self.min_price:g}"
        if self.max_price is not None and price >= self.max_price:
            return f"the index {price:g} is at or above the guard's max_price {self.max_price:g}"
        return None


class OracleEma(_Frozen):
    """An exponential moving average of the observed source price as the feed's answer.

    Pyth publishes such an EMA price next to its spot price, and TWAP oracles (Uniswap v3, the
    marks of several perpetual venues) are the same idea: a pump of minutes moves the answer
    only by a part of the pump. The average is time-weighted: each observation is taken to have
    held since the previous tick, so over a gap of ``dt`` seconds the previous average keeps
    the weight ``2^(-dt / half_life)`` and a step in the source reaches the fraction
    ``1 - 2^(-t / half_life)`` of its size ``t`` seconds after the last tick before it.

    Attributes:
        half_life: Seconds after which a step in the source is half in the answer (> 0).
    """

    half_life: Duration = Field(gt=0)


class OracleFeedConfig(_Frozen):
    """A heartbeat-and-deviation price feed in the manner of Chainlink.

    The defaults reproduce the Chainlink ETH/USD feed on Ethereum mainnet (2023-04 to 2024-01,
    see ``scenarios/data/README.md``): a 0.5% deviation threshold, an hourly heartbeat on a
    fixed clock (that feed publishes every hour at about minute 55 whether or not a deviation
    update came in between) and a 36 s publication latency (the median delay of those hourly
    rounds after minute 55, three 12-second blocks).

    Attributes:
        heartbeat: Maximum age of the index in seconds: the feed publishes at least this often.
        heartbeat_mode: ``"clock"``: heartbeats at run times ``k · heartbeat`` whatever the
            deviation updates in between (as observed on Chainlink ETH/USD); ``"since_last"``:
            a heartbeat ``heartbeat`` seconds after the last update of any kind (the textbook
            rule).
        deviation_threshold: Publish when the observed price differs from the last published
            one by at least this fraction.
        latency: Seconds between the observation of the market and the moment the exchange can
            read the update; the price readable at ``t`` is the market price at ``t - latency``.
        outages: Windows (in the exchange's time) with no update.
        manipulations: Windows (in the exchange's time) whose published prices are distorted.
        min_answer: The aggregator's smallest accepted answer (Chainlink's ``minAnswer``): an
            observation below it is refused, like an outage, so the feed freezes at its last
            answer above it (LUNA/USD stayed at 0.107 with a minimum of 0.1 while the market
            traded near 0.01). Null: no bound.
        max_answer: The largest accepted answer (``maxAnswer``), the same way up.
        ema: Publish an EMA of the observed source price instead of the observation itself
            (see :class:`OracleEma` and :mod:`perpsim.oracle.feed` for how it composes with the
            other rules). Null: the observation (the default).
        guard: What the venue does about a stale or implausible index (null: nothing).
    """

    heartbeat: Duration = Field(default=3_600, gt=0)
    heartbeat_mode: Literal["clock", "since_last"] = "clock"
    deviation_threshold: float = Field(default=0.005, gt=0.0)
    latency: Duration = Field(default=36, ge=0)
    outages: tuple[Outage, ...] = ()
    manipulations: tuple[Manipulation, ...] = ()
    min_answer: float | None = Field(default=None, gt=0.0)
    max_answer: float | None = Field(default=None, gt=0.0)
    ema: OracleEma | None = None
    guard: OracleGuard | None = None

    @model_validator(mode="after")
    def _check_answers(self) -> OracleFeedConfig:
        lo, hi = self.min_answer, self.max_answer
        if lo is not None and hi is not None and not lo < hi:
            raise ValueError(f"min_answer ({lo}) must be below max_answer ({hi})")
        return self
