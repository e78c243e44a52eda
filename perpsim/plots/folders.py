"""``perpsim plot DIR``: a run folder or a sweep folder."""

from __future__ import annotations

from pathlib import Path

from perpsim.errors import ConfigError
from perpsim.plots.files import is_sweep_dir
from perpsim.plots.run import plot_run
from perpsim.plots.sweep import plot_sweep

__all__ = ["plot_dir"]


def plot_dir(
    path: Path, metric: str | None = None, x: str | None = None, y: str | None = None
) -> list[Path]:
    """Plot a run folder or a sweep folder (``perpsim plot DIR``).

    Raises:
        ConfigError: ``path`` is neither, or the options do not apply.
    """
    p = Path(path)
    if is_sweep_dir(p):
        return plot_sweep(p, metric, x, y)
    if not p.exists():
        raise ConfigError(f"{p}: no such folder")
    if not p.is_dir():
        raise ConfigError(f"{p}: not a folder (give a run folder or a sweep folder)")
    if metric is not None or x is not None or y is not None:
        raise ConfigError(f"{p}: --metric, --x and --y apply to sweep folders only")
    return plot_run(p)
