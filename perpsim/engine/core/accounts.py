"""Margin accounts of the perpetual, stored as a struct of growable numpy arrays.

Each named account is a row. Keeping the seed's ``MarginAccount storage`` fields in arrays makes
"which accounts are unsafe, and their margin balances" one vectorised expression over all rows,
while single-account operations read and write rows as plain Python floats.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from perpsim.errors import UnknownAccountError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class Side(IntEnum):
    """``PositionSide`` of the seed: Flat = 0, ShortPosition = 1, LongPosition = 2."""

    FLAT = 0
    SHORT = 1
    LONG = 2

    @property
    def opposite(self) -> Side:
        """The other side (FLAT stays FLAT)."""
        if self is Side.LONG:
            return Side.SHORT
        if self is Side.SHORT:
            return Side.LONG
        return Side.FLAT


def parse_side(value: object) -> Side:
    """Read a side given as a ``Side``, its number, or a word (long/buy, short/sell, flat).

    Raises:
        ValueError: the value names no side.
    """
    if isinstance(value, Side):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("long", "buy"):
            return Side.LONG
        if word in ("short", "sell"):
            return Side.SHORT
        if word == "flat":
            return Side.FLAT
    elif isinstance(value, int) and not isinstance(value, bool) and value in (0, 1, 2):
        return Side(value)
    raise ValueError(f"side must be long/buy, short/sell or flat, got {value!r}")


class AccountState(NamedTuple):
    """One row of the seed's ``MarginAccount storage`` as plain Python values."""

    cash_balance: float
    position_side: Side
    position_size: float
    entry_value: float
    entry_social_loss: float
    entry_funding_loss: float


FLAT_ACCOUNT = AccountState(0.0, Side.FLAT, 0.0, 0.0, 0.0, 0.0)
_SIDES = (Side.FLAT, Side.SHORT, Side.LONG)  # index = stored side code (faster than Side(i))


class AccountStore:
    """Growable struct-of-arrays of margin accounts with names mapped to rows.

    The arrays returned by the properties are views of the live rows (length ``len(store)``);
    callers must treat them as read-only. Only the engine writes, through :meth:`write`.
    """

    _FIELDS = (
        "cash_balance",
        "position_size",
        "entry_value",
        "entry_social_loss",
        "entry_funding_loss",
    )

    def __init__(self, capacity: int = 64) -> None:
        capacity = max(int(capacity), 1)
        self._n = 0
        self._cash = np.zeros(capacity)
        self._side = np.zeros(capacity, dtype=np.int8)
        self._size = np.zeros(capacity)
        self._ev = np.zeros(capacity)
        self._esl = np.zeros(capacity)
        self._efl = np.zeros(capacity)
        # Derived from position_side, kept in step so scans need no per-call conversion:
        # +1 long, -1 short, 0 flat; and "is long".
        self._sign = np.zeros(capacity)
        self._long = np.zeros(capacity, dtype=bool)
        # Scratch buffers for vectorised scans (never exposed).
        self._work = np.zeros((3, capacity))
        self._mask = np.zeros(capacity, dtype=bool)
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        # Each live row's fields as the tuple last written: single-account reads (several per
        # trade) return it instead of converting six array items.
        self._states: list[AccountState] = []
        #: Rows written since the accounting check / the unsafe scan last took them: what
        #: those need to look at again (every change of a row goes through :meth:`write`).
        self.written_since_check: set[int] = set()
        self.written_since_scan: set[int] = set()
        # Rows whose tuple is newer than the arrays: the arrays are brought up to date when a
        # vectorised reader asks for them (the pool's row is written by every trade; the arrays
        # are read a few times a tick).
        self._unflushed: set[int] = set()
        #: Incremented by every write: lets readers cache values derived from the rows.
        self.version = 0

    def __len__(self) -> int:
        return self._n

    def __contains__(self, name: object) -> bool:
        return name in self.index

    def _flush(self) -> None:
        states = self._states
        cash, side_a, sign, long_a = self._cash, self._side, self._sign, self._long
        size, ev, esl, efl = self._size, self._ev, self._esl, self._efl
        for row in self._unflushed:
            st = states[row]
            side = st.position_side
            cash[row] = st.cash_balance
            side_a[row] = side
            sign[row] = 1.0 if side is Side.LONG else (-1.0 if side is Side.SHORT else 0.0)
            long_a[row] = side is Side.LONG
            size[row] = st.position_size
            ev[row] = st.entry_value
            esl[row] = st.entry_social_loss
            efl[row] = st.entry_funding_loss
        self._unflushed.clear()

    def _grow(self) -> None:
        if self._unflushed:
            self._flush()
        cap = len(self._cash) * 2
        for attr in ("_cash", "_side", "_size", "_ev", "_esl", "_efl", "_sign", "_long"):
            old = getattr(self, attr)
            new = np.zeros(cap, dtype=old.dtype)
            new[: self._n] = old[: self._n]
            setattr(self, attr, new)
        self._work = np.zeros((3, cap))
        self._mask = np.zeros(cap, dtype=bool)

    def add(self, name: str) -> int:
        """Create a flat account with zero cash and return its row.

        Raises:
            ValueError: the name is empty or already taken.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"account name must be a non-empty string, got {name!r}")
        if name in self.index:
            raise ValueError(f"account {name!r} already exists")
        if self._n == len(self._cash):
            self._grow()
        row = self._n
        self._n += 1
        self.names.append(name)
        self.index[name] = row
        self._states.append(FLAT_ACCOUNT)
        return row

    def truncate(self, n: int) -> None:
        """Drop the accounts added after the first ``n`` (undoing a rejected first touch).

        Raises:
            ValueError: ``n`` is negative or more than the accounts there are.
        """
        if not 0 <= n <= self._n:
            raise ValueError(f"cannot truncate {self._n} accounts to {n}")
        if n == self._n:
            return
        for name in self.names[n:]:
            del self.index[name]
        del self.names[n:]
        del self._states[n:]
        for written in (self.written_since_check, self.written_since_scan, self._unflushed):
            written.difference_update(range(n, self._n))
        for arr in (self._cash, self._side, self._size, self._ev, self._esl, self._efl, self._sign):
            arr[n : self._n] = 0
        self._long[n : self._n] = False
        # No version bump: flat empty rows contribute nothing to any value derived from the
        # rows, so whatever a reader cached while they existed is still right.
        self._n = n

    def row(self, account: str | int) -> int:
        """Return the row of an account given by name or row number.

        Raises:
            UnknownAccountError: no such account.
        """
        if isinstance(account, str):
            try:
                return self.index[account]
            except KeyError:
                raise UnknownAccountError(f"unknown account {account!r}") from None
        if (
            isinstance(account, (int, np.integer))
            and not isinstance(account, bool)
            and 0 <= account < self._n
        ):
            return int(account)
        raise UnknownAccountError(f"unknown account {account!r}")

    def size_of(self, row: int) -> float:
        """One account's position size."""
        return self._states[row].position_size

    def read(self, row: int) -> AccountState:
        """Return one account's stored fields as Python values."""
        return self._states[row]

    def write(self, row: int, state: AccountState) -> None:
        """Store one account's fields (engine use only: callers validate first)."""
        self.version += 1
        # As Python floats and a Side, exactly what reading the arrays back would give.
        cash, side, size, ev, esl, efl = state
        side = _SIDES[side]
        state = AccountState(float(cash), side, float(size), float(ev), float(esl), float(efl))
        self._states[row] = state
        self.written_since_check.add(row)
        self.written_since_scan.add(row)
        self._unflushed.add(row)

    # Read-only views of the live rows, for vectorised scans.
    @property
    def cash_balance(self) -> FloatArray:
        """``CashBalance`` of every account."""
        if self._unflushed:
            self._flush()
        return self._cash[: self._n]

    @property
    def position_side(self) -> npt.NDArray[np.int8]:
        """``PositionSide`` of every account (0 flat, 1 short, 2 long)."""
        if self._unflushed:
            self._flush()
        return self._side[: self._n]

    @property
    def position_size(self) -> FloatArray:
        """``PositionSize`` of every account."""
        if self._unflushed:
            self._flush()
        return self._size[: self._n]

    @property
    def entry_value(self) -> FloatArray:
        """``EntryValue`` of every account."""
        if self._unflushed:
            self._flush()
        return self._ev[: self._n]

    @property
    def entry_social_loss(self) -> FloatArray:
        """``EntrySocialLoss`` of every account."""
        if self._unflushed:
            self._flush()
        return self._esl[: self._n]

    @property
    def entry_funding_loss(self) -> FloatArray:
        """``EntryFundingLoss`` of every account."""
        if self._unflushed:
            self._flush()
        return self._efl[: self._n]

    @property
    def sign(self) -> FloatArray:
        """+1 for long, −1 for short, 0 for flat accounts (derived from position_side)."""
        if self._unflushed:
            self._flush()
        return self._sign[: self._n]

    @property
    def is_long(self) -> npt.NDArray[np.bool_]:
        """Whether each account is long."""
        if self._unflushed:
            self._flush()
        return self._long[: self._n]

    def work(self) -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_]]:
        """Scratch buffers of the live length for in-place vectorised scans (engine use)."""
        if self._unflushed:
            self._flush()
        n = self._n
        return self._work[0, :n], self._work[1, :n], self._work[2, :n], self._mask[:n]

    def snapshot(self) -> dict[str, FloatArray | npt.NDArray[np.int8]]:
        """Copies of all live arrays (for tests that check a rejected call changed nothing)."""
        return {
            "cash_balance": self.cash_balance.copy(),
            "position_side": self.position_side.copy(),
            "position_size": self.position_size.copy(),
            "entry_value": self.entry_value.copy(),
            "entry_social_loss": self.entry_social_loss.copy(),
            "entry_funding_loss": self.entry_funding_loss.copy(),
        }
