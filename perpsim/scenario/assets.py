"""The scenario's ``assets:`` section: named price paths, one of them the perpetual's underlying.

.. code-block:: yaml

    assets:
      ETH: {underlying: true, factor_loading: 0.92, path: {kind: gbm, s0: 3000, sigma: 0.8}}
      BTC: {factor_loading: 0.92, path: {kind: gbm, s0: 45000, sigma: 0.65}}

The underlying's path is the market path, so a scenario with an underlying leaves out
``price_path`` (it is filled in from the asset, and every reader of ``price_path`` sees it).
The paths themselves are built by :func:`perpsim.oracle.assets.build_asset_paths`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from perpsim.engine.core.config import Problem
from perpsim.oracle.assets import AssetConfig
from perpsim.oracle.config import BootstrapPath, HistoricalPath

__all__ = ["check_assets", "fill_underlying_path", "underlying_of"]


def underlying_of(assets: Mapping[str, AssetConfig]) -> str | None:
    """The name of the asset marked ``underlying: true``, if any."""
    return next((name for name, a in assets.items() if a.underlying), None)


def fill_underlying_path(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``price_path`` from the underlying asset's ``path`` when the file gives no price_path.

    A file that gives both is left as it is: :func:`check_assets` reports it.
    """
    assets = data.get("assets")
    if not isinstance(assets, Mapping) or "price_path" in data:
        return data
    for asset in assets.values():
        if isinstance(asset, Mapping) and asset.get("underlying") is True and "path" in asset:
            return {**data, "price_path": asset["path"]}
    return data


def check_assets(
    assets: Mapping[str, AssetConfig], price_path: Any, given_path: bool
) -> list[Problem]:
    """Problems of the ``assets:`` section (one underlying; data files exist).

    Args:
        assets: The section.
        price_path: The scenario's (possibly filled-in) price path.
        given_path: Whether the file itself gave ``price_path``.
    """
    problems: list[Problem] = []
    marked = [name for name, a in assets.items() if a.underlying]
    if len(marked) > 1:
        problems.append(
            Problem(
                ("assets", marked[1], "underlying"),
                f"only one asset can be the perpetual's underlying (already {marked[0]!r})",
                got=True,
                allowed="underlying: true on one asset",
            )
        )
    if marked and given_path and price_path != assets[marked[0]].path:
        problems.append(
            Problem(
                ("price_path",),
                f"the market path is the underlying asset {marked[0]!r}'s path: leave out"
                " price_path, or drop underlying: true",
                related=(("assets", marked[0], "path"),),
            )
        )
    for name, asset in assets.items():
        path = asset.path
        if (
            isinstance(path, HistoricalPath | BootstrapPath)
            and not Path(path.file).expanduser().is_file()
        ):
            problems.append(
                Problem(("assets", name, "path", "file"), "file not found", got=path.file)
            )
    return problems
