"""When a process starts using its compiled kernels: once they have paid for their loading.

A design's compiled kernels (numba: D8X's trade probe and rebalance, Predy's liquidation price)
give the same floats as the Python code they replace, bit for bit, so which of the two answers a
call changes no output, only the time. Using them has a fixed price per process: importing numba
and loading the cached machine code, about 0.3 s of CPU for the first kernel and a little more
for each further one, against about 3 to 23 µs saved per call. A short run (a test, a 3-day
market, one scenario of a small sweep) makes too few calls to win that back.

:data:`BUDGET` keeps, for the whole process, the time the calls answered in Python so far would
have saved compiled; the kernels are loaded once that reaches :data:`LOAD_COST_US`, and used from
then on. This is the rent-or-buy rule: a run that needs the kernels for long pays at most one
extra load's worth of Python first; a run that never makes enough calls never loads numba.
The budget belongs to the process, not to a run: a sweep worker that runs many scenarios pays the
load once, in its first runs.
"""

from __future__ import annotations

__all__ = ["BUDGET", "LOAD_COST_US", "KernelBudget"]

#: What loading numba and the kernels costs a process, µs of CPU (docs/performance.md).
LOAD_COST_US = 350_000.0


class KernelBudget:
    """The Python time a process's compiled kernels would have saved so far.

    Args:
        load_cost_us: what the saving must reach before the kernels are loaded (µs).
    """

    __slots__ = ("load_cost_us", "saved_us")

    def __init__(self, load_cost_us: float = LOAD_COST_US) -> None:
        self.load_cost_us = load_cost_us
        self.saved_us = 0.0

    def paid(self) -> bool:
        """Whether the kernels have paid for their loading (calls run compiled from now on)."""
        return self.saved_us >= self.load_cost_us

    def count(self, saving_us: float) -> None:
        """Count a call answered in Python that would have saved ``saving_us`` µs compiled."""
        self.saved_us += saving_us

    def compiled(self, saving_us: float) -> bool:
        """Whether a call should run compiled; counts it as a Python call if not.

        Args:
            saving_us: what the compiled kernel saves on this call, µs of CPU.
        """
        if self.saved_us >= self.load_cost_us:
            return True
        self.saved_us += saving_us
        return False

    def pay_now(self) -> None:
        """Use the kernels from the next call on (the tests of the kernels, warm processes)."""
        self.saved_us = self.load_cost_us

    def reset(self) -> None:
        """Count from zero again, as a fresh process does."""
        self.saved_us = 0.0


#: The process's budget, shared by every design's kernels (numba is imported once a process).
BUDGET = KernelBudget()
