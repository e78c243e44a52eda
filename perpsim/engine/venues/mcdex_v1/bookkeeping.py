"""Per-tick bookkeeping of the MCDEX v1 perpetual at the cost of the accounts that changed.

Two questions are asked of every account after every tick: is anyone unsafe (the liquidation
scan, and the time series' unsafe / bankrupt counts), and do the books balance (the accounting
check). Both used to be whole-array passes; these classes answer them from the rows written
since they last looked (:attr:`~perpsim.engine.core.accounts.AccountStore.written_since_scan`,
``written_since_check``), exactly:

- :class:`LiquidationBounds` keeps, per position, the part of its liquidation price that only a
  write can change. With the funding and the social loss per contract (the same for every
  account of a side) added back, the long closest to liquidation and the short closest to it
  say whether any account can be unsafe at a price; only then does the caller scan.
- :class:`AccountingSums` keeps the sums the conservation check needs (Σ cash, Σ signed size,
  ...) up to date from the written rows and checks each written row's own invariants (sign
  rules, side and size agreement). A row nobody wrote cannot have changed, so checking the
  written ones finds every per-row violation at the tick it happens; the sums give Σ margin
  balances at any price without a pass over the arrays.
"""

from __future__ import annotations

import math

import numpy as np

from perpsim.engine.core.accounts import FLAT_ACCOUNT, AccountState, AccountStore, Side

#: Relative margin under which the bound test defers to the exact scan (rounding of the two
#: computations differs by ~1e-15 relative; this is far above it and far below any real gap).
BOUND_RTOL = 1e-9


def liquidation_offsets(st: AccountState) -> tuple[float, float]:
    """The write-dependent parts ``(u, v)`` of an account's liquidation price.

    A long is unsafe at ``p`` iff ``p·(1 − mm_rate) < u + social_loss_per_contract_long +
    accumulated_funding``, with ``u = (entry_value − cash − entry_social_loss −
    entry_funding_loss) / size``; a short iff ``p·(1 + mm_rate) > v −
    social_loss_per_contract_short + accumulated_funding``, with ``v = (cash + entry_value +
    entry_social_loss − entry_funding_loss) / size`` (both from ``MarginBalance <
    MaintenanceMargin``). ``u`` is −inf for a non-long, ``v`` +inf for a non-short.
    """
    side = st.position_side
    size = st.position_size
    if side is Side.LONG and size > 0.0:
        u = (st.entry_value - st.cash_balance - st.entry_social_loss - st.entry_funding_loss) / size
        return u, math.inf
    if side is Side.SHORT and size > 0.0:
        v = (st.cash_balance + st.entry_value + st.entry_social_loss - st.entry_funding_loss) / size
        return -math.inf, v
    return -math.inf, math.inf


class LiquidationBounds:
    """The long and the short nearest to liquidation, kept up to date from written rows."""

    def __init__(self, accounts: AccountStore) -> None:
        self.accounts = accounts
        self._u = np.full(max(len(accounts), 64), -math.inf)
        self._v = np.full(len(self._u), math.inf)
        self._n = 0
        self._u_max = -math.inf
        self._v_min = math.inf
        self._stale = False
        #: Rows whose margin balance is not given by the bounds: flat with negative cash
        #: (unsafe at any price), or a position of size ≤ 0 (an invariant violation).
        self._irregular: set[int] = set()

    def _sync(self) -> None:
        a = self.accounts
        n = len(a)
        if len(self._u) < n:
            grown_u = np.full(max(n, 2 * len(self._u)), -math.inf)
            grown_v = np.full(len(grown_u), math.inf)
            grown_u[: self._n] = self._u[: self._n]
            grown_v[: self._n] = self._v[: self._n]
            self._u, self._v = grown_u, grown_v
        if n < self._n:  # rows dropped (a rejected first touch): they held nothing
            self._u[n : self._n] = -math.inf
            self._v[n : self._n] = math.inf
            self._irregular = {r for r in self._irregular if r < n}
            self._stale = True
        self._n = n
        written = a.written_since_scan
        if not written:
            return
        u_arr, v_arr = self._u, self._v
        u_max, v_min = self._u_max, self._v_min
        stale = self._stale
        irregular = self._irregular
        for row in written:
            st = a.read(row)
            u, v = liquidation_offsets(st)
            old_u, old_v = u_arr.item(row), v_arr.item(row)
            u_arr[row] = u
            v_arr[row] = v
            if u > u_max:
                u_max = u
            elif old_u == u_max and u < old_u:
                stale = True
            if v < v_min:
                v_min = v
            elif old_v == v_min and v > old_v:
                stale = True
            side = st.position_side
            if (side is Side.FLAT and st.cash_balance < 0.0) or (
                side is not Side.FLAT and not st.position_size > 0.0
            ):
                irregular.add(row)
            else:
                irregular.discard(row)
        written.clear()
        self._u_max, self._v_min, self._stale = u_max, v_min, stale

    def nobody_unsafe(
        self, price: float, acc: float, slpc_long: float, slpc_short: float, mm_rate: float
    ) -> bool:
        """True when no account can be unsafe at ``price`` (False: scan to find out).

        Args:
            price: the price margins are measured at.
            acc: the accumulated funding per contract.
            slpc_long: the long social loss per contract.
            slpc_short: the short social loss per contract.
            mm_rate: the maintenance margin rate.
        """
        self._sync()
        if self._irregular:
            return False
        n = self._n
        if self._stale:
            self._u_max = float(self._u[:n].max()) if n else -math.inf
            self._v_min = float(self._v[:n].min()) if n else math.inf
            self._stale = False
        u_max, v_min = self._u_max, self._v_min
        if u_max != -math.inf:
            lhs = price * (1.0 - mm_rate)
            rhs = u_max + slpc_long + acc
            tol = BOUND_RTOL * (abs(lhs) + abs(u_max) + abs(slpc_long) + abs(acc))
            if not lhs > rhs + tol:
                return False
        if v_min != math.inf:
            lhs = price * (1.0 + mm_rate)
            rhs = v_min - slpc_short + acc
            tol = BOUND_RTOL * (abs(lhs) + abs(v_min) + abs(slpc_short) + abs(acc))
            if not lhs < rhs - tol:
                return False
        return math.isfinite(price)


class AccountingSums:
    """Sums of the account fields the conservation check needs, and per-row checks.

    The sums follow the written rows (``Σ new − Σ old`` per row), so they drift from an exact
    pass by rounding only (~1e-16 relative per write); the accounting check's tolerance is
    1e-9 relative, and a full check re-computes them exactly.
    """

    def __init__(self, accounts: AccountStore) -> None:
        self.accounts = accounts
        self._seen: list[AccountState] = []
        self.cash = 0.0
        self.abs_cash = 0.0
        self.abs_entry_value = 0.0
        self.signed_size = 0.0
        self.signed_entry_value = 0.0
        self.long_size = 0.0
        self.short_size = 0.0
        self.entry_social_loss = 0.0
        self.signed_entry_funding_loss = 0.0

    def resync(self) -> None:
        """Recompute every sum exactly from the arrays (after a full check)."""
        a = self.accounts
        a.written_since_check.clear()
        self._seen = [a.read(r) for r in range(len(a))]
        sign, size = a.sign, a.position_size
        self.cash = float(a.cash_balance.sum())
        self.abs_cash = float(np.abs(a.cash_balance).sum())
        self.abs_entry_value = float(np.abs(a.entry_value).sum())
        self.signed_size = float((sign * size).sum())
        self.signed_entry_value = float((sign * a.entry_value).sum())
        self.long_size = float(size[a.position_side == Side.LONG].sum())
        self.short_size = float(size[a.position_side == Side.SHORT].sum())
        self.entry_social_loss = float(a.entry_social_loss.sum())
        self.signed_entry_funding_loss = float((sign * a.entry_funding_loss).sum())

    def take_written(self) -> list[tuple[int, AccountState]]:
        """Fold the rows written since the last call into the sums; return them (row order)."""
        a = self.accounts
        n = len(a)
        seen = self._seen
        if len(seen) > n:  # rows dropped by a rejected first touch (they held nothing)
            del seen[n:]
        while len(seen) < n:
            seen.append(FLAT_ACCOUNT)
        rows = sorted(r for r in a.written_since_check if r < n)
        a.written_since_check.clear()
        out = []
        for row in rows:
            new = a.read(row)
            old = seen[row]
            seen[row] = new
            out.append((row, new))
            if new is old:
                continue
            self._add(old, -1.0)
            self._add(new, 1.0)
        return out

    def _add(self, st: AccountState, k: float) -> None:
        cash, side, size, ev, esl, efl = st
        self.cash += k * cash
        self.abs_cash += k * abs(cash)
        self.abs_entry_value += k * abs(ev)
        self.entry_social_loss += k * esl
        if side is Side.LONG:
            self.signed_size += k * size
            self.signed_entry_value += k * ev
            self.long_size += k * size
            self.signed_entry_funding_loss += k * efl
        elif side is Side.SHORT:
            self.signed_size -= k * size
            self.signed_entry_value -= k * ev
            self.short_size += k * size
            self.signed_entry_funding_loss -= k * efl

    def margin_balance_sum(
        self, price: float, acc: float, slpc_long: float, slpc_short: float
    ) -> float:
        """Σ MarginBalance at ``price`` from the sums (the per-account formula, summed)."""
        return (
            self.cash
            + price * self.signed_size
            - self.signed_entry_value
            - slpc_long * self.long_size
            - slpc_short * self.short_size
            + self.entry_social_loss
            - acc * self.signed_size
            + self.signed_entry_funding_loss
        )
