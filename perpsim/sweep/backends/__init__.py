"""Where the runs of a sweep execute: this process, a local process pool, or a Dask cluster.

Every backend hands the runner a :class:`concurrent.futures.Executor`, so the runner's loop is the
same everywhere; the backend decides how many runs to keep in flight, how to recover from a lost
worker process and how to shut down.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Protocol

from perpsim.sweep.backends.dask import DaskBackend
from perpsim.sweep.backends.local import InlineExecutor, LocalBackend, default_workers

__all__ = [
    "Backend",
    "DaskBackend",
    "InlineExecutor",
    "LocalBackend",
    "default_workers",
    "open_backend",
]


class Backend(Protocol):
    """What the runner needs from a backend.

    Attributes:
        executor: Where runs are submitted.
        description: Where the runs execute, for the user (``4 local worker processes``).
    """

    executor: Executor
    description: str

    def capacity(self) -> int:
        """How many runs to keep submitted at once."""
        ...

    def recover(self) -> None:
        """Makes the executor usable again after a worker process died."""
        ...

    def close(self, *, kill: bool = False) -> None:
        """Shuts down; with ``kill``, without waiting for the runs in flight."""
        ...


def open_backend(workers: int | None, scheduler: str | None) -> Backend:
    """The backend of a sweep.

    Args:
        workers: Local worker processes (default: the number of cores); 1 runs in-process.
        scheduler: A Dask scheduler address; overrides ``workers``.

    Returns:
        The backend, ready to take runs.

    Raises:
        ConfigError: The scheduler cannot be used.
    """
    if scheduler is not None:
        return DaskBackend(scheduler)
    return LocalBackend(workers)
