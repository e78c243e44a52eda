"""Named assets: several price paths in one run, optionally correlated.

A run simulates one perpetual, but a basket such as GLP holds several assets. The scenario's
``assets:`` section names each asset and gives it a price path (any :data:`PricePathConfig`
kind); one asset may be the perpetual's ``underlying``, whose path is then the market path.

Correlation is a one-factor model, chosen so that adding an asset changes no existing path:
the standard normal of asset ``i`` at each tick is

    z_i = loading_i × f + √(1 − loading_i²) × e_i

with ``f`` from the stream ``asset_factor`` and ``e_i`` from the stream ``asset:<name>``; the
correlation of two assets' diffusive returns is ``loading_i × loading_j``. Only GBM and
jump-diffusion paths take a loading (their jumps are the asset's own, from its own stream);
data paths replay their files together, their correlation being the data's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from perpsim.oracle.config import (
    SECONDS_PER_YEAR,
    GBMPath,
    JumpDiffusionPath,
    PricePathConfig,
    _Frozen,
)
from perpsim.oracle.paths import apply_shocks, build_path, check_price_range

__all__ = [
    "FACTOR_STREAM",
    "AssetConfig",
    "asset_stream",
    "build_asset_paths",
    "correlated_normals",
]

FloatArray = npt.NDArray[np.float64]

#: The stream of the common factor ``f`` of every correlated asset.
FACTOR_STREAM = "asset_factor"


def asset_stream(name: str) -> str:
    """The name of asset ``name``'s own random stream."""
    return f"asset:{name}"


class AssetConfig(_Frozen):
    """One named asset of the scenario's ``assets:`` section.

    Attributes:
        path: Its price path (any kind of ``price_path``).
        underlying: Whether it is the perpetual's underlying: its path becomes the market path
            (``price_path`` must then be left out). At most one asset has it.
        factor_loading: Its loading on the common factor (−1 to 1); two assets' diffusive
            returns have correlation ``loading_i × loading_j``. Only for ``gbm`` and
            ``jump_diffusion`` paths.
    """

    path: PricePathConfig
    underlying: bool = False
    factor_loading: float = Field(default=0.0, ge=-1.0, le=1.0)

    @model_validator(mode="after")
    def _loading_needs_diffusion(self) -> AssetConfig:
        if self.factor_loading != 0.0 and not isinstance(self.path, GBMPath | JumpDiffusionPath):
            raise ValueError(
                f"factor_loading applies to gbm and jump_diffusion paths only, not to a"
                f" {self.path.kind!r} path (a data path keeps the data's own correlation)"
            )
        return self


def correlated_normals(
    loading: float, factor: FloatArray, own: FloatArray
) -> npt.NDArray[np.float64]:
    """``loading × factor + √(1 − loading²) × own`` (standard normal if both inputs are)."""
    return np.asarray(loading * factor + math.sqrt(max(0.0, 1.0 - loading**2)) * own)


def _dt_years(ticks: npt.NDArray[np.int64]) -> FloatArray:
    return np.diff(np.concatenate(([0], ticks))).astype(np.float64) / SECONDS_PER_YEAR


def _correlated_path(
    config: GBMPath | JumpDiffusionPath,
    ticks: npt.NDArray[np.int64],
    z: FloatArray,
    rng: np.random.Generator,
) -> FloatArray:
    """GBM or Merton jump-diffusion driven by the given normals (same formulas as the paths)."""
    dt = _dt_years(ticks)
    if isinstance(config, GBMPath):
        log_inc = (config.mu - 0.5 * config.sigma**2) * dt + config.sigma * np.sqrt(dt) * z
    else:
        counts = rng.poisson(config.jump_intensity * dt)
        z_jump = rng.standard_normal(ticks.size)
        jumps = counts * config.jump_mean + np.sqrt(counts) * config.jump_std * z_jump
        kappa = math.expm1(config.jump_mean + 0.5 * config.jump_std**2)
        drift = config.mu - 0.5 * config.sigma**2 - config.jump_intensity * kappa
        log_inc = drift * dt + config.sigma * np.sqrt(dt) * z + jumps
    return np.asarray(config.s0 * np.exp(np.cumsum(log_inc)), dtype=np.float64)


def build_asset_paths(
    assets: Mapping[str, AssetConfig],
    times: npt.ArrayLike,
    generator: Callable[[str], np.random.Generator],
    base_dir: Path | None = None,
    start_time: int | None = None,
    *,
    without_shocks: frozenset[str] = frozenset(),
) -> dict[str, FloatArray]:
    """Every asset's price at each tick.

    Args:
        assets: The scenario's ``assets:`` section.
        times: Run times of the ticks (seconds from the start).
        generator: Makes the random generator of a named stream (the run's ``Streams``).
        base_dir: Folder that relative data files resolve against.
        start_time: Unix seconds of run time 0 (for data paths).
        without_shocks: Assets whose own ``shocks`` are left out (the underlying's are the
            scenario's ``price_shock`` events, applied by the model).

    Returns:
        Prices per asset name, in the order of ``assets``.

    Raises:
        ConfigError: a data file is invalid or a path leaves the prices a run can carry.
    """
    ticks = np.asarray(times, dtype=np.int64)
    factor: FloatArray | None = None
    out: dict[str, FloatArray] = {}
    for name, asset in assets.items():
        path = asset.path
        if name in without_shocks:
            path = path.model_copy(update={"shocks": ()})
        rng = generator(asset_stream(name))
        if isinstance(path, GBMPath | JumpDiffusionPath):
            if asset.factor_loading != 0.0 and factor is None:
                factor = generator(FACTOR_STREAM).standard_normal(ticks.size)
            own = rng.standard_normal(ticks.size)
            z = own if factor is None else correlated_normals(asset.factor_loading, factor, own)
            with np.errstate(over="ignore", under="ignore", invalid="ignore"):
                prices = _correlated_path(path, ticks, z, rng)
                if path.shocks:
                    prices = apply_shocks(prices, ticks, path.shocks)
            check_price_range(prices, ticks, f"assets.{name} {path.kind}")
        else:
            prices = build_path(path, ticks, rng, base_dir, start_time=start_time)
        out[name] = prices
    return out
