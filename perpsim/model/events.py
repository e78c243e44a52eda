"""The event log: one record per state-changing engine operation, kept as a table.

Every venue emits flat records through its event sink; the model stamps each with its tick and
appends it here. :meth:`EventLog.frame` gives the documented columns (``docs/outputs.md``), which
``perpsim replay RUN_DIR`` reads back to rebuild the ledger.

A long run logs about a million events, so the log does not keep the dicts: it keeps columns.
Records with the same keys in the same order (a *shape*: the records of one engine operation
nearly always have one) share a block of numpy columns, one per key: float64 for numbers, int64
for ``time``, ``tick`` and ``index_timestamp``, and int32 codes into a table of distinct values
for text. Two small per-row arrays say which block holds each row and where, so a record is
rebuilt with exactly the keys it had, in its order. A value whose type the column does not keep
(an int or a bool among floats, say) is kept as it came, beside the column, so what the log gives
back equals what it was given; such rare columns take an exact, slower path in :meth:`frame`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

#: Columns of the event log, in order.
EVENT_COLUMNS: tuple[str, ...] = (
    "time",
    "tick",
    "kind",
    "account",
    "counterparty",
    "side",
    "amount",
    "price",
    "fee",
    "pool_fee",
    "dev_fee",
    "counterparty_fee",
    "penalty",
    "penalty_fund",
    "loss",
    "insurance_fund_paid",
    "social_loss",
    "bad_debt",
    "shares",
    "collateral",
    "index_timestamp",
    "key",
    "value",
    "rule",
    "stage",
    "metric_value",
)
_EVENT_TEXT = ("kind", "account", "counterparty", "side", "key", "value", "rule", "stage")
_EVENT_INT = ("time", "tick", "index_timestamp")
#: Kinds the model logs about the run itself, not engine operations: replay leaves them out.
MODEL_EVENT_KINDS: tuple[str, ...] = ("governance_rule", "halt")

# How a key's values are stored.
_FLOAT: Final = 0
_INT: Final = 1
_CODE: Final = 2

# Rows wait as value tuples and are turned into columns this many at a time: one numpy call per
# column for a batch costs far less than one per value, and a batch of tuples stays small.
_BATCH_ROWS: Final = 4096
_INITIAL_CAPACITY: Final = 256
# Records are rebuilt this many at a time when the log is iterated.
_ITER_ROWS: Final = 8192

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

Int64Array = npt.NDArray[np.int64]


def _all_of_type(values: list[Any], cls: type) -> bool:
    """Whether every value is of type ``cls`` itself (a bool is no int, a numpy float no float)."""
    return list(map(type, values)).count(cls) == len(values)


class _Missing:
    """The default of :meth:`EventLog.values` that means "the key must be there"."""

    def __repr__(self) -> str:
        return "<required>"


_REQUIRED: Final = _Missing()


@dataclass(frozen=True, slots=True)
class _ObjectKey:
    """The table key of a value that is not a ``str``.

    Values are told apart by type and repr, not by ``==``: ``1``, ``1.0`` and ``True`` are equal
    in Python but each must come back as itself, ``-0.0`` must not become ``0.0``, and every NaN
    is one entry (NaN is unequal to itself).
    """

    type_: type
    text: str


class _Table:
    """The distinct values of one dictionary-encoded key; a code is an index into ``values``."""

    __slots__ = ("_lookup", "index", "plain", "values")

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.index: dict[Any, int] = {}
        # True while every value is an exact str or None: then a value's text in the frame is the
        # value itself, with no need to ask pandas how it would have read the column.
        self.plain = True
        self._lookup: npt.NDArray[np.object_] | None = None

    def encode(self, values: list[Any]) -> npt.NDArray[np.int32]:
        """The codes of ``values``, adding the ones not seen before."""
        if _all_of_type(values, str):
            # Exact str only: a str subclass (an enum member) equal to a known str must keep its
            # own entry, so it does not get here.
            codes = list(map(self.index.get, values))
            if None not in codes:
                return np.array(codes, dtype=np.int32)
        return np.array([self.code(v) for v in values], dtype=np.int32)

    def code(self, value: Any) -> int:
        """The code of one value (added if new)."""
        key = value if type(value) is str else _ObjectKey(type(value), repr(value))
        code = self.index.get(key)
        if code is None:
            code = len(self.values)
            self.values.append(value)
            self.index[key] = code
            self._lookup = None
            if value is not None and type(value) is not str:
                self.plain = False
        return code

    def lookup(self) -> npt.NDArray[np.object_]:
        """The values as an object array, for taking many codes at once."""
        if self._lookup is None:
            arr = np.empty(len(self.values), dtype=object)
            # One by one: a slice assignment would unpack values that are sequences.
            for i, v in enumerate(self.values):
                arr[i] = v
            self._lookup = arr
        return self._lookup


class _Block:
    """The rows of one shape (one tuple of keys): a typed column per key, and its odd values."""

    __slots__ = ("data", "exotic", "getters", "id", "keys", "n", "pending", "storage", "tables")

    def __init__(
        self,
        block_id: int,
        keys: tuple[str, ...],
        storage: tuple[int, ...],
        tables: tuple[_Table | None, ...],
    ) -> None:
        self.id = block_id
        self.keys = keys
        self.storage = storage
        self.tables = tables
        self.data: list[npt.NDArray[Any]] = [
            np.empty(_INITIAL_CAPACITY, dtype=_dtype(s)) for s in storage
        ]
        # Per key: block position -> the value as given, where the column could not keep it.
        self.exotic: list[dict[int, Any]] = [{} for _ in keys]
        self.getters = tuple(map(itemgetter, range(len(keys))))
        self.n = 0
        # Value tuples of the records appended since the last commit, in order.
        self.pending: list[tuple[Any, ...]] = []

    def commit(self, exotic_keys: set[str]) -> int:
        """Move the pending rows into the columns; return the position of the first."""
        rows = self.pending
        start = self.n
        stop = start + len(rows)
        if self.data and stop > len(self.data[0]):
            self._grow(stop)
        for j, getter in enumerate(self.getters):
            # Not zip(*rows): that makes an iterator object per row, which the garbage collector
            # tracks and, caught mid-batch, moves to the old generation (full collections).
            values = list(map(getter, rows))
            storage = self.storage[j]
            col = self.data[j]
            if storage == _CODE:
                table = self.tables[j]
                assert table is not None
                col[start:stop] = table.encode(values)
                continue
            if _all_of_type(values, float if storage == _FLOAT else int):
                try:
                    col[start:stop] = values
                    continue
                except OverflowError:  # an int beyond int64
                    pass
            self._store_slowly(j, start, values)
            if self.exotic[j]:
                exotic_keys.add(self.keys[j])
        self.n = stop
        # Emptied in place: the log holds this list's bound ``append``.
        rows.clear()
        return start

    def _store_slowly(self, j: int, start: int, values: Sequence[Any]) -> None:
        col = self.data[j]
        exotic = self.exotic[j]
        is_float = self.storage[j] == _FLOAT
        for i, v in enumerate(values, start):
            fits = (
                type(v) is float if is_float else type(v) is int and _INT64_MIN <= v <= _INT64_MAX
            )
            if fits:
                col[i] = v
            else:
                col[i] = math.nan if is_float else 0
                exotic[i] = v

    def _grow(self, needed: int) -> None:
        cap = max(needed, 2 * len(self.data[0]))
        for j, col in enumerate(self.data):
            grown = np.empty(cap, dtype=col.dtype)
            grown[: self.n] = col[: self.n]
            self.data[j] = grown

    def values_at(self, j: int, positions: npt.NDArray[np.int64]) -> list[Any]:
        """The values of key ``j`` at block ``positions``, as Python objects, as given."""
        col = self.data[j]
        if self.storage[j] == _CODE:
            table = self.tables[j]
            assert table is not None
            out: list[Any] = table.lookup()[col[positions]].tolist()
            return out
        out = col[positions].tolist()
        exotic = self.exotic[j]
        if exotic:
            for i, p in enumerate(positions.tolist()):
                if p in exotic:
                    out[i] = exotic[p]
        return out


_DTYPES: Final[dict[int, np.dtype[Any]]] = {
    _FLOAT: np.dtype(np.float64),
    _INT: np.dtype(np.int64),
    _CODE: np.dtype(np.int32),
}


def _dtype(storage: int) -> np.dtype[Any]:
    return _DTYPES[storage]


class EventLog:
    """The run's events in the order they happened, stored as columns.

    It reads like the list of flat dicts it was given: ``len``, iteration, :attr:`records`,
    :meth:`of_kind` and :meth:`since` give dicts with the keys each record had, in its order, with
    its values. :meth:`frame` gives the documented table, and :meth:`count`, :meth:`values` and
    :meth:`sum_by` answer the run summary's questions without building dicts.
    """

    def __init__(self) -> None:
        self._blocks: list[_Block] = []
        # Keys of a shape -> its block id and its pending list's append.
        self._slots: dict[tuple[str, ...], tuple[int, Callable[[tuple[Any, ...]], None]]] = {}
        # Block id of each row appended since the last commit, in order.
        self._pending: list[int] = []
        self._n = 0
        self._row_block: npt.NDArray[np.int32] = np.empty(_INITIAL_CAPACITY, dtype=np.int32)
        self._row_pos: npt.NDArray[np.int32] = np.empty(_INITIAL_CAPACITY, dtype=np.int32)
        # Code of each row's kind in the "kind" table (-1: the record had no kind).
        self._row_kind: npt.NDArray[np.int32] = np.empty(_INITIAL_CAPACITY, dtype=np.int32)
        self._kindless = 0
        self._storage: dict[str, tuple[int, _Table | None]] = {}
        for col in EVENT_COLUMNS:
            if col in _EVENT_TEXT:
                self._storage[col] = (_CODE, _Table())
            else:
                self._storage[col] = (_INT if col in _EVENT_INT else _FLOAT, None)
        self._kinds = self._storage["kind"][1]
        # Keys that hold at least one value the column could not keep.
        self._exotic_keys: set[str] = set()

    # ----------------------------------------------------------------------------------------
    # Appending

    def append(self, record: dict[str, Any]) -> None:
        """Add one event record (a flat dict: its keys and values are copied, it is not kept)."""
        # The hot path, once per engine operation: the values wait in a tuple, which holds no
        # container, so the garbage collector stops tracking it at its first pass (holding the
        # dict instead would move it into the old generation and set off full collections).
        keys = tuple(record)
        slot = self._slots.get(keys)
        if slot is None:
            slot = self._new_block(keys, record)
        slot[1](tuple(record.values()))
        pending = self._pending
        pending.append(slot[0])
        if len(pending) >= _BATCH_ROWS:
            self._commit()

    def _new_block(
        self, keys: tuple[str, ...], record: dict[str, Any]
    ) -> tuple[int, Callable[[tuple[Any, ...]], None]]:
        """Make the block of records with these keys (``record`` is its first)."""
        storage: list[int] = []
        tables: list[_Table | None] = []
        for key in keys:
            spec = self._storage.get(key)
            if spec is None:
                # A key outside the documented columns: kept in the form its first value suggests.
                first = record[key]
                if type(first) is float:
                    spec = (_FLOAT, None)
                elif type(first) is int:
                    spec = (_INT, None)
                else:
                    spec = (_CODE, _Table())
                self._storage[key] = spec
            storage.append(spec[0])
            tables.append(spec[1])
        block = _Block(len(self._blocks), keys, tuple(storage), tuple(tables))
        self._blocks.append(block)
        slot = (block.id, block.pending.append)
        self._slots[keys] = slot
        return slot

    def _commit(self) -> None:
        """Turn the pending rows into columns (every read starts with this)."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        start = self._n
        stop = start + len(pending)
        if stop > len(self._row_block):
            self._grow_rows(stop)
        ids = np.array(pending, dtype=np.int32)
        self._row_block[start:stop] = ids
        # The batch's rows grouped by block, each group in row order.
        order = np.argsort(ids, kind="stable")
        counts = np.bincount(ids, minlength=len(self._blocks))
        offset = 0
        for block_id in np.flatnonzero(counts).tolist():
            block = self._blocks[block_id]
            m = int(counts[block_id])
            rows = order[offset : offset + m] + start
            offset += m
            first = block.commit(self._exotic_keys)
            self._row_pos[rows] = np.arange(first, block.n, dtype=np.int32)
            if "kind" in block.keys:
                j = block.keys.index("kind")
                self._row_kind[rows] = block.data[j][first : block.n]
            else:
                self._row_kind[rows] = -1
                self._kindless += len(rows)
        self._n = stop

    def _grow_rows(self, needed: int) -> None:
        cap = max(needed, 2 * len(self._row_block))
        for name in ("_row_block", "_row_pos", "_row_kind"):
            old = getattr(self, name)
            grown = np.empty(cap, dtype=old.dtype)
            grown[: self._n] = old[: self._n]
            setattr(self, name, grown)

    # ----------------------------------------------------------------------------------------
    # Reading records back

    def __len__(self) -> int:
        return self._n + len(self._pending)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        start = 0
        while True:
            # Rows appended while iterating are seen, as a list's iterator would.
            self._commit()
            stop = min(self._n, start + _ITER_ROWS)
            if start >= stop:
                return
            yield from self._records_at(np.arange(start, stop, dtype=np.int64))
            start = stop

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every record, in order, as a new list of new dicts (built on each call)."""
        self._commit()
        return self._records_at(np.arange(self._n, dtype=np.int64))

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        """The records of the given kinds, in order.

        Raises:
            KeyError: a record has no ``kind``.
        """
        return self._records_at(self.rows_of(*kinds))

    def since(self, start: int, *kinds: str, stop: int | None = None) -> list[dict[str, Any]]:
        """The records from row ``start`` (up to ``stop``), only those of ``kinds`` if given.

        What a live reader wants: the rows it has not seen yet, without rebuilding the others.

        Args:
            start: the first row (``len(log)`` when last read).
            *kinds: only records of these kinds (a record without a ``kind`` is left out).
            stop: the row to stop before (default: the end).
        """
        self._commit()
        end = self._n if stop is None else min(stop, self._n)
        rows = np.arange(start, end, dtype=np.int64)
        if kinds and rows.size:
            rows = rows[np.isin(self._row_kind[start:end], self._kind_codes(kinds))]
        return self._records_at(rows)

    def _records_at(self, rows: Int64Array) -> list[dict[str, Any]]:
        """The records at ``rows`` (row numbers, increasing), rebuilt."""
        if rows.size == 0:
            return []
        block_ids = self._row_block[rows]
        positions = self._row_pos[rows].astype(np.int64)
        out: list[Any] = [None] * rows.size
        present = np.unique(block_ids).tolist()
        for block_id in present:
            block = self._blocks[block_id]
            if len(present) == 1:
                where = None
                pos = positions
            else:
                where = np.flatnonzero(block_ids == block_id)
                pos = positions[where]
            keys = block.keys
            if keys:
                columns = [block.values_at(j, pos) for j in range(len(keys))]
                made = [
                    dict(zip(keys, values, strict=True)) for values in zip(*columns, strict=True)
                ]
            else:
                made = [{} for _ in range(pos.size)]
            if where is None:
                return made
            for i, record in zip(where.tolist(), made, strict=True):
                out[i] = record
        return out

    # ----------------------------------------------------------------------------------------
    # Vectorised questions

    def rows_of(self, *kinds: str) -> Int64Array:
        """Row numbers of the records of ``kinds``, increasing.

        Raises:
            KeyError: a record has no ``kind`` (as ``record["kind"]`` would).
        """
        self._commit()
        if self._kindless:
            raise KeyError("kind")
        codes = self._kind_codes(kinds)
        kind = self._row_kind[: self._n]
        if len(codes) == 1:
            return np.flatnonzero(kind == codes[0])
        return np.flatnonzero(np.isin(kind, codes))

    def count(self, *kinds: str) -> int:
        """How many records are of ``kinds``."""
        return int(self.rows_of(*kinds).size)

    def values(self, key: str, *kinds: str, default: Any = _REQUIRED) -> list[Any]:
        """The values of ``key`` in the records of ``kinds``, in order, as they were given.

        ``[e[key] for e in log.of_kind(*kinds)]``, or ``e.get(key, default)`` with a default,
        without building the records.

        Args:
            key: the record key (a column of the table or another key the records have).
            *kinds: the kinds of the records to read.
            default: the value for a record without ``key`` (none: such a record is an error).

        Raises:
            KeyError: a record of those kinds has no ``key`` and there is no default.
        """
        return self._gather(key, self.rows_of(*kinds), default)

    def sum_by(self, group: str, value: str, *kinds: str) -> dict[Any, float]:
        """Sums of ``value`` by ``group`` over the records of ``kinds``.

        The same floats as adding up a ``Counter`` in event order (``c[e[group]] += e[value]``,
        from 0), keyed in order of first appearance.

        Args:
            group: the key to group by (``account``).
            value: the key to add up (``amount``).
            *kinds: the kinds of the records to add up.

        Raises:
            KeyError: a record of those kinds has no ``group`` or no ``value``.
        """
        rows = self.rows_of(*kinds)
        group_spec = self._storage.get(group)
        value_spec = self._storage.get(value)
        fast = (
            group_spec is not None
            and group_spec[0] == _CODE
            and group_spec[1] is not None
            and group_spec[1].plain
            and value_spec is not None
            and value_spec[0] == _FLOAT
            and value not in self._exotic_keys
        )
        if not fast:
            sums: Counter[Any] = Counter()
            groups = self._gather(group, rows, _REQUIRED)
            for g, v in zip(groups, self._gather(value, rows, _REQUIRED), strict=True):
                sums[g] += v
            return dict(sums)
        assert group_spec is not None and group_spec[1] is not None
        codes = self._gather_array(group, rows)
        amounts = self._gather_array(value, rows)
        unique, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        totals = np.zeros(unique.size, dtype=np.float64)
        # ufunc.at adds unbuffered, one index after another in the order given: for each group
        # that is the event-order running sum a Counter makes, so the floats are the same.
        np.add.at(totals, inverse, amounts)
        table_values = group_spec[1].values
        order = np.argsort(first, kind="stable")
        return {
            table_values[c]: t
            for c, t in zip(unique[order].tolist(), totals[order].tolist(), strict=True)
        }

    def _kind_codes(self, kinds: Iterable[str]) -> list[int]:
        assert self._kinds is not None
        wanted = tuple(kinds)
        # ``record["kind"] in kinds`` for every distinct kind the log has seen.
        return [code for code, kind in enumerate(self._kinds.values) if kind in wanted]

    def _gather(self, key: str, rows: Int64Array, default: Any) -> list[Any]:
        """The values of ``key`` at ``rows`` as given (``default`` where a record lacks it)."""
        spec = self._storage.get(key)
        if spec is not None and key not in self._exotic_keys and spec[0] != _CODE:
            try:
                out: list[Any] = self._gather_array(key, rows).tolist()
                return out
            except _Absent:
                if default is _REQUIRED:
                    raise KeyError(key) from None
        result: list[Any] = [default] * rows.size
        for where, block, j, pos in self._parts(key, rows, default):
            if j is None:
                continue
            for i, v in zip(where.tolist(), block.values_at(j, pos), strict=True):
                result[i] = v
        return result

    def _gather_array(self, key: str, rows: Int64Array) -> npt.NDArray[Any]:
        """The stored numbers (or codes) of ``key`` at ``rows`` (:class:`_Absent`: one lacks it)."""
        spec = self._storage[key]
        out = np.empty(rows.size, dtype=_dtype(spec[0]))
        for where, block, j, pos in self._parts(key, rows, None):
            if j is None:
                raise _Absent
            out[where] = block.data[j][pos]
        return out

    def _parts(
        self, key: str, rows: Int64Array, default: Any
    ) -> Iterator[tuple[Int64Array, _Block, int | None, Int64Array]]:
        """Per block of ``rows``: where in ``rows``, the block, the key's index there, positions.

        Raises:
            KeyError: a block lacks the key and ``default`` is required.
        """
        if rows.size == 0:
            return
        block_ids = self._row_block[rows]
        positions = self._row_pos[rows].astype(np.int64)
        for block_id in np.unique(block_ids).tolist():
            block = self._blocks[block_id]
            where = np.flatnonzero(block_ids == block_id)
            if key in block.keys:
                yield where, block, block.keys.index(key), positions[where]
            elif default is _REQUIRED:
                raise KeyError(key)
            else:
                yield where, block, None, positions[where]

    # ----------------------------------------------------------------------------------------
    # The table

    def frame(self) -> pd.DataFrame:
        """The log as a DataFrame with :data:`EVENT_COLUMNS` (missing values empty).

        Equal, dtypes and missing values included, to :func:`events_frame` of the records.
        """
        self._commit()
        if self._n == 0:
            return events_frame([])
        return self._frame_of(0, self._n, self._column_context())

    def frames(self, rows: int) -> Iterator[pd.DataFrame]:
        """The log's :meth:`frame` in consecutive pieces of ``rows`` rows (the last shorter).

        Each piece equals the same rows of :meth:`frame` (values, dtypes and texts: a value's
        text is decided over the whole log, as there), with its own index from 0; the whole
        frame is never built, so writing a long run's events costs one piece of memory.

        Raises:
            ValueError: ``rows`` is not positive.
        """
        if rows <= 0:
            raise ValueError(f"rows must be positive, got {rows}")
        self._commit()
        n = self._n
        if n == 0:
            yield events_frame([])
            return
        context = self._column_context()
        for start in range(0, n, rows):
            yield self._frame_of(start, min(n, start + rows), context)

    def _column_context(self) -> _FrameContext:
        """What every piece of the frame shares: each row's block and position, each key's
        blocks, the frame's texts and the whole columns of keys with odd values."""
        n = self._n
        row_block = self._row_block[:n]
        # Each block's rows, in order: its positions 0..m-1 are these rows one for one.
        order = np.argsort(row_block, kind="stable")
        bounds = np.cumsum(np.bincount(row_block, minlength=len(self._blocks)))
        block_rows = np.split(order, bounds[:-1])
        parts: dict[str, list[tuple[Int64Array, _Block, int]]] = {}
        lookups: dict[str, npt.NDArray[np.object_]] = {}
        whole: dict[str, pd.Series] = {}
        complete: set[str] = set()
        for col in EVENT_COLUMNS:
            cols = [(block_rows[b.id], b, b.keys.index(col)) for b in self._blocks if col in b.keys]
            parts[col] = cols
            present = sum(r.size for r, _, _ in cols)
            if present == n:
                complete.add(col)
            storage, table = self._storage[col]
            if col in self._exotic_keys:
                whole[col] = self._exotic_column(col, n, cols)
            elif storage == _CODE:
                assert table is not None
                texts = _texts(col, table, has_missing=present < n)
                lookup = np.empty(len(texts) + 1, dtype=object)
                lookup[:-1] = texts
                lookup[-1] = None  # code -1: the record had no such key
                lookups[col] = lookup
        return _FrameContext(parts, lookups, whole, frozenset(complete))

    def _frame_of(self, start: int, stop: int, context: _FrameContext) -> pd.DataFrame:
        data: dict[str, Any] = {}
        for col in EVENT_COLUMNS:
            if col in context.whole:
                piece = context.whole[col].iloc[start:stop]
                data[col] = piece.reset_index(drop=True)
                continue
            # The rows of each block that fall in [start, stop), and their block positions
            # (a block's rows are increasing, so both are one contiguous range).
            parts = []
            for rows, block, j in context.parts[col]:
                lo, hi = np.searchsorted(rows, (start, stop)).tolist()
                if hi > lo:
                    parts.append((rows[lo:hi] - start, block, j, lo, hi))
            data[col] = self._frame_column(col, stop - start, parts, context)
        df = pd.DataFrame(data, columns=list(EVENT_COLUMNS))
        df["time"] = pd.to_datetime(df["time"].astype("int64"), unit="s", utc=True)
        return df

    def _exotic_column(
        self, col: str, n: int, parts: list[tuple[Int64Array, _Block, int]]
    ) -> pd.Series:
        # Some value is not of the column's type: let pandas read the column as it reads the
        # records (a column of objects, NaN where a record lacks the key), over the whole log.
        objects: list[Any] = [math.nan] * n
        for rows, block, j in parts:
            values = block.values_at(j, np.arange(rows.size, dtype=np.int64))
            for i, v in zip(rows.tolist(), values, strict=True):
                objects[i] = v
        return _legacy_column(col, objects)

    def _frame_column(
        self,
        col: str,
        n: int,
        parts: list[tuple[Int64Array, _Block, int, int, int]],
        context: _FrameContext,
    ) -> pd.Series:
        """Column ``col`` of ``n`` rows from ``parts``: (the rows, block, key index, first and
        last + 1 block position)."""
        storage, _ = self._storage[col]
        if storage == _CODE:
            codes = np.full(n, -1, dtype=np.int32)
            for rows, block, j, lo, hi in parts:
                codes[rows] = block.data[j][lo:hi]
            # Already str or None: what the records' column gives after _text, so only the
            # conversion to the string dtype is left.
            return pd.Series(context.lookups[col][codes], dtype=object).astype("string")
        # Whether every record of the whole log has the key, not only this piece's: ints some
        # records lack go through float64, in every piece as in the whole frame.
        if storage == _INT and col in context.complete:
            ints = np.empty(n, dtype=np.int64)
            for rows, block, j, lo, hi in parts:
                ints[rows] = block.data[j][lo:hi]
            return pd.Series(ints).astype("Int64")
        # Floats, or ints some records lack: pandas reads the latter as float64 with NaN too.
        floats = np.full(n, np.nan, dtype=np.float64)
        for rows, block, j, lo, hi in parts:
            floats[rows] = block.data[j][lo:hi]
        if storage == _INT:
            return pd.Series(floats).astype("Int64")
        return pd.Series(floats)


@dataclass(frozen=True)
class _FrameContext:
    """What the pieces of one :meth:`EventLog.frames` share (see ``_column_context``)."""

    parts: dict[str, list[tuple[Int64Array, _Block, int]]]
    lookups: dict[str, npt.NDArray[np.object_]]
    whole: dict[str, pd.Series]
    #: Keys every record of the log has.
    complete: frozenset[str]


class _Absent(Exception):
    """Some record lacks the key asked for."""


def _text(v: Any) -> str | None:
    return None if v is None or v != v else str(v)


def _as_text(s: pd.Series) -> pd.Series:
    return s.map(_text).astype("string")


def _convert(col: str, s: pd.Series) -> pd.Series:
    """One column of the frame, from the column pandas read from the records."""
    if col in _EVENT_TEXT:
        return _as_text(s)
    if col in _EVENT_INT:
        return s.astype("Int64")
    return s.astype("float64")


def _legacy_column(col: str, objects: list[Any]) -> pd.Series:
    """``col`` as :func:`events_frame` makes it from these values (NaN: the key was absent).

    A list of one-item lists reaches the same per-column type inference as a list of dicts.
    """
    read = pd.DataFrame([[v] for v in objects], columns=[col])[col]
    return _convert(col, read)


def _texts(col: str, table: _Table, *, has_missing: bool) -> list[str | None]:
    """The frame's text of each value of ``table`` (None: missing)."""
    if table.plain:
        return list(table.values)
    # pandas reads a column of values by their types (ints and NaN become floats, so 1 reads
    # "1.0"); which types are there, not how often or in what order, decides it, so reading the
    # distinct values (and a NaN for absent keys) gives each value's text as the whole column.
    sample = [*table.values, math.nan] if has_missing else list(table.values)
    texts = _legacy_column(col, sample).tolist()
    return [None if t is pd.NA else t for t in texts[: len(table.values)]]


def events_frame(events: list[dict[str, Any]]) -> pd.DataFrame:
    """The event log as a DataFrame with the documented columns (missing values empty)."""
    df = pd.DataFrame(events, columns=list(EVENT_COLUMNS))
    for col in EVENT_COLUMNS:
        df[col] = _convert(col, df[col])
    df["time"] = pd.to_datetime(df["time"].astype("int64"), unit="s", utc=True)
    return df
