"""Runs on a Dask cluster (``perpsim sweep --scheduler tcp://host:8786``).

``dask.distributed`` is an optional dependency (``pip install 'perpsim[dask]'``): it is imported
only when a scheduler is given, and its absence is a clear error then.
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import Executor
from typing import Any

from perpsim import __version__
from perpsim.errors import ConfigError

__all__ = ["DaskBackend", "perpsim_version"]


def perpsim_version() -> str:
    """perpsim's version in this process (checked on Dask workers)."""
    return __version__


class DaskBackend:
    """A Dask scheduler's workers, after checking that they run this perpsim version.

    Attributes:
        scheduler: The scheduler's address.
        executor: The client's executor.
        description: ``Dask scheduler ADDRESS``.
    """

    def __init__(self, scheduler: str) -> None:
        self.scheduler = scheduler
        self._threads = 1
        self._checked_at = 0.0
        self._client = self._connect(scheduler)
        self.executor: Executor = self._client.get_executor(pure=False)
        self.description = f"Dask scheduler {scheduler}"

    def _connect(self, address: str) -> Any:
        try:
            from distributed import Client  # optional: only a sweep on a cluster needs it
        except ImportError:
            raise ConfigError(
                "--scheduler needs dask.distributed: pip install 'perpsim[dask]'"
            ) from None
        try:
            client: Any = Client(address, timeout="20s")  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"--scheduler {address}: cannot connect: {exc}") from None
        try:
            found = client.run(perpsim_version)
        except Exception as exc:
            client.close()
            raise ConfigError(
                f"--scheduler {address}: the workers cannot import perpsim ({exc}); install"
                " perpsim (the same version) on every worker machine"
            ) from None
        wrong = {w: v for w, v in found.items() if v != __version__}
        if wrong:
            client.close()
            raise ConfigError(
                f"--scheduler {address}: workers run another perpsim version than {__version__}:"
                f" {wrong}"
            )
        self._refresh_threads(client)
        return client

    def _refresh_threads(self, client: Any) -> None:
        try:
            self._threads = max(1, sum(client.nthreads().values()))
        except Exception:  # a busy scheduler: keep the last count
            self._threads = max(self._threads, 1)
        self._checked_at = time.monotonic()

    def capacity(self) -> int:
        """How many runs to keep submitted at once (follows workers joining or leaving)."""
        if time.monotonic() - self._checked_at > 10.0:
            self._refresh_threads(self._client)
        return 2 * self._threads + 2

    def recover(self) -> None:
        """Nothing to replace: the scheduler reschedules the runs of a lost worker itself."""

    def close(self, *, kill: bool = False) -> None:
        """Shuts down the executor (cancelling its runs with ``kill``) and the client."""
        with contextlib.suppress(Exception):
            self.executor.shutdown(wait=not kill)
        with contextlib.suppress(Exception):
            self._client.close()
