"""Runs on this machine: in this process (one worker) or in a pool of worker processes."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Final, ParamSpec, TypeVar

__all__ = ["InlineExecutor", "LocalBackend", "default_workers"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: Modules the fork server imports once, so that new workers start at once.
_PRELOAD: Final = ("perpsim.sweep", "perpsim.run", "perpsim.scenario")


class InlineExecutor(Executor):
    """Runs each submitted call at once, in this process (the one-worker executor).

    The returned futures are already done, so the sweep's loop is the same as with a pool.
    ``KeyboardInterrupt`` propagates from :meth:`submit`.
    """

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Calls ``fn(*args, **kwargs)`` now; returns a finished future."""
        future: Future[_T] = Future()
        future.set_running_or_notify_cancel()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future


def _exit_when_gone(sweep_pid: int) -> None:
    """Ends this worker once the sweep process is gone (checked every second)."""
    while True:
        time.sleep(1.0)
        try:
            os.kill(sweep_pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # the pid exists (signalling it is not allowed): keep going
            pass


def _init_worker(sweep_pid: int) -> None:
    """Prepares a pool worker.

    Workers leave Ctrl-C to the sweep, which stops them cleanly. They also watch the sweep: a
    pool worker waits for work on a queue it holds both ends of, so when the sweep is killed
    (``kill -9``, out of memory) nothing would ever wake it and it would live on.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(
        target=_exit_when_gone, args=(sweep_pid,), name="perpsim-sweep-watch", daemon=True
    ).start()


def default_workers() -> int:
    """The number of cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _mp_context() -> multiprocessing.context.BaseContext:
    """A fork server that has imported perpsim (safe with threads, fast to start workers).

    Where there is no fork server (Windows) workers are spawned: each starts a fresh
    interpreter.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(list(_PRELOAD))
        return ctx
    return multiprocessing.get_context("spawn")


class LocalBackend:
    """In-process for one worker, else a process pool that is replaced if a worker dies.

    Attributes:
        workers: The number of worker processes (1: this process).
        executor: An :class:`InlineExecutor` or a :class:`~concurrent.futures.ProcessPoolExecutor`.
        description: ``1 worker (in-process)`` or ``N local worker processes``.
    """

    def __init__(self, workers: int | None) -> None:
        self.workers = workers or default_workers()
        self.executor: Executor
        if self.workers <= 1:
            self.executor = InlineExecutor()
            self.description = "1 worker (in-process)"
        else:
            self.executor = self._pool()
            self.description = f"{self.workers} local worker processes"

    def _pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=_mp_context(),
            initializer=_init_worker,
            initargs=(os.getpid(),),
        )

    def capacity(self) -> int:
        """How many runs to keep submitted at once (two per worker keep every worker busy)."""
        return 1 if self.workers <= 1 else 2 * self.workers

    def recover(self) -> None:
        """Replaces a broken pool (a worker process died) by a new one."""
        if isinstance(self.executor, ProcessPoolExecutor):
            with contextlib.suppress(Exception):
                self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = self._pool()

    def close(self, *, kill: bool = False) -> None:
        """Shuts down: with ``kill`` the worker processes are terminated, not waited for."""
        ex = self.executor
        if isinstance(ex, ProcessPoolExecutor) and kill:
            # The pool has no public way to stop a running call: terminate its processes.
            processes = list(getattr(ex, "_processes", {}).values())
            ex.shutdown(wait=False, cancel_futures=True)
            for p in processes:
                with contextlib.suppress(Exception):
                    p.terminate()
            for p in processes:
                with contextlib.suppress(Exception):
                    p.join(timeout=5)
        else:
            with contextlib.suppress(Exception):
                ex.shutdown(wait=not kill)
