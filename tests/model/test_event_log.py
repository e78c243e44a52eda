"""The columnar event log gives back exactly what it was given, and the same table as before.

:class:`~perpsim.model.EventLog` keeps numpy columns instead of the dicts it is given. These tests
hold it to the dict-based log it replaced: :meth:`~perpsim.model.EventLog.frame` must equal (values,
dtypes, missing values, parquet bytes) the table :func:`~perpsim.model.events_frame` makes of the
records, and iterating, ``records``, ``of_kind`` and ``since`` must give the records back with
their keys, key order, values and value types.
"""

from __future__ import annotations

import enum
import io
import math
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perpsim.model import EVENT_COLUMNS, EventLog, events_frame
from perpsim.model import events as events_module
from perpsim.run import PARQUET_ROW_GROUP_ROWS, _table_bytes, write_table_pieces

_TEXT = ("kind", "account", "counterparty", "side", "key", "value", "rule", "stage")


def reference_frame(events: list[dict[str, Any]]) -> pd.DataFrame:
    """``events_frame`` as it was with the dict-based log (kept verbatim to catch drift)."""
    df = pd.DataFrame(events, columns=list(EVENT_COLUMNS))
    for col in EVENT_COLUMNS:
        if col in _TEXT:
            df[col] = (
                df[col].map(lambda v: None if v is None or v != v else str(v)).astype("string")
            )
        elif col in ("time", "tick", "index_timestamp"):
            df[col] = df[col].astype("Int64")
        else:
            df[col] = df[col].astype("float64")
    df["time"] = pd.to_datetime(df["time"].astype("int64"), unit="s", utc=True)
    return df


def assert_same_frame(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert list(got.dtypes) == list(want.dtypes)
    assert got.index.equals(want.index)
    assert got.equals(want)
    # The bytes perpsim run writes (pyarrow, zstd) and the CSV form.
    assert _table_bytes(got, "parquet") == _table_bytes(want, "parquet")
    assert _table_bytes(got, "csv") == _table_bytes(want, "csv")


def assert_same_records(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    """Same keys in the same order, same values of the same types (NaN equal to NaN)."""
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert list(g) == list(w)
        for key in w:
            assert type(g[key]) is type(w[key]), (key, g[key], w[key])
            assert repr(g[key]) == repr(w[key]), (key, g[key], w[key])


def filled(records: list[dict[str, Any]]) -> EventLog:
    log = EventLog()
    for r in records:
        log.append(dict(r))
    return log


def check_log(records: list[dict[str, Any]]) -> EventLog:
    """Append ``records`` and compare everything the log gives back with the records."""
    log = filled(records)
    assert len(log) == len(records)
    assert_same_records(list(log), records)
    assert_same_records(log.records, records)
    assert repr(log.records) == repr(records)
    try:
        want = reference_frame(records)
    except Exception as exc:  # the dict-based table could not be made: nor can the new one
        with pytest.raises(type(exc)):
            log.frame()
        with pytest.raises(type(exc)):
            events_frame(records)
    else:
        assert_same_frame(log.frame(), want)
        assert_same_frame(events_frame(records), want)
        n = len(records)
        # Pieces of one row and of a few, and the whole; long logs in three pieces (a row
        # group per piece costs the writer the same whatever its size).
        sizes = (1, 3, max(n, 1)) if n <= 60 else (n // 3 + 1, n)
        for rows in sizes:
            assert_same_pieces(log, want, rows)
    return log


def assert_same_pieces(log: EventLog, want: pd.DataFrame, rows: int) -> None:
    """``frames(rows)`` gives the frame's rows piece by piece, and the files written from the
    pieces are the whole table's, byte for byte (Parquet: one row group per piece)."""
    pieces = list(log.frames(rows))
    assert len(pieces) == max(1, math.ceil(len(want) / rows))
    for i, piece in enumerate(pieces):
        part = want.iloc[i * rows : (i + 1) * rows].reset_index(drop=True)
        assert list(piece.dtypes) == list(part.dtypes)
        assert piece.index.equals(part.index)
        assert piece.equals(part)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events"
        write_table_pieces(path, log.frames(rows), "csv")
        assert path.read_bytes() == _table_bytes(want, "csv")
        write_table_pieces(path, log.frames(rows), "parquet")
        buf = io.BytesIO()
        want.to_parquet(buf, index=False, engine="pyarrow", compression="zstd", row_group_size=rows)
        assert path.read_bytes() == buf.getvalue()


def trade(i: int, kind: str = "buy") -> dict[str, Any]:
    return {
        "account": f"noise-{i % 7}",
        "counterparty": "pool",
        "side": "long" if i % 3 else "short",
        "amount": 0.1 * i + 0.01,
        "price": 2280.0 + i / 3,
        "fee": 1e-3 * i,
        "kind": kind,
        "time": 1_704_067_200 + 60 * i,
        "tick": i,
    }


class Side(str, enum.Enum):  # noqa: UP042 - the mixin's str() is what this tests
    """A str mixin enum: ``str()`` of a member is ``Side.LONG``, not its value."""

    LONG = "long"


class Stage(enum.StrEnum):
    DECIDED = "decided"


# --------------------------------------------------------------------------------------------
# Round trips


def test_an_empty_log() -> None:
    log = EventLog()
    assert len(log) == 0
    assert list(log) == [] and log.records == [] and log.of_kind("buy") == []
    assert log.count("buy") == 0 and log.values("amount", "buy") == []
    assert log.sum_by("account", "amount", "deposit") == {}
    assert_same_frame(log.frame(), reference_frame([]))


def test_records_with_missing_keys_and_several_shapes() -> None:
    records: list[dict[str, Any]] = []
    for i in range(50):
        records.append(trade(i, "buy" if i % 2 else "sell"))
        if i % 5 == 0:
            records.append({"account": f"noise-{i}", "amount": 100.0, "kind": "deposit", "time": i})
        if i % 7 == 0:
            records.append(
                {"kind": "index", "time": i, "tick": i, "price": 2281.5, "index_timestamp": i - 1}
            )
        if i % 11 == 0:  # the same keys as a trade in another order: another shape
            r = trade(i)
            records.append({k: r[k] for k in reversed(list(r))})
    check_log(records)


def test_model_records_and_extra_keys() -> None:
    records: list[dict[str, Any]] = [
        {
            "kind": "governance_rule",
            "time": 10,
            "tick": 1,
            "rule": "raise_margin",
            "stage": "decided",
            "key": "maintenance_margin_rate",
            "value": repr(0.1),
            "metric_value": math.nan,
        },
        {
            "kind": "governance_rule",
            "time": 11,
            "tick": 2,
            "rule": "halt_trading",
            "stage": "applied",
            "key": "halt",
            "value": None,
            "metric_value": 0.25,
        },
        {
            "kind": "halt",
            "time": 12,
            "tick": 3,
            "key": "trading",
            "rule": "oracle_guard",
            "stage": "started",
            "value": "stale price",
        },
        {"kind": "halt", "time": 13, "tick": 4, "key": "trading", "stage": "ended", "value": None},
        # Keys outside the table's columns (d8x, predy records): kept, left out of the frame.
        {**trade(5), "product": "ETH-USD", "protocol_fee": 0.002},
        {"amount": 0.5, "price": 2300.0, "updated": True, "kind": "update_variance", "time": 14},
        {"kind": "hedge", "time": 15, "slippage": 0.1, "variance": 3, "note": None},
    ]
    check_log(records)


def test_text_columns_holding_other_values() -> None:
    # pandas reads a column by the types in it: ints with absent values become floats ("1.0"),
    # ints beside strings stay ints ("1"); bools, NaN, None, enum members each their own way.
    cases: list[list[Any]] = [
        [1, 2, None],
        [1, "x"],
        [1.5, 2],
        [True, False],
        [True, None, 1],
        [math.nan, "a"],
        [-0.0, 0.0],
        [np.float64(0.1), np.float32(0.1), 7],
        [Side.LONG, "long", Stage.DECIDED, "decided"],
        [2**70, -1],
        [(1, 2), "t"],
    ]
    for values in cases:
        for missing in (False, True):
            records = [{"kind": "x", "time": i, "value": v} for i, v in enumerate(values)]
            if missing:
                records.insert(1, {"kind": "x", "time": 99})
            check_log(records)
    # The same in "kind" itself, which the log also keeps per row to select by.
    log = check_log([{"kind": k, "time": 1} for k in (Side.LONG, "long", 3, None)])
    assert log.count("long") == 2  # Side.LONG == "long", as ``in`` compares
    assert_same_records(
        log.of_kind("long"), [{"kind": Side.LONG, "time": 1}, {"kind": "long", "time": 1}]
    )


def test_numbers_of_other_types() -> None:
    odd: list[Any] = [1, True, False, np.float64(2.5), np.float32(0.1), None, math.inf, -0.0, 2**80]
    records = [{"kind": "deposit", "time": i, "amount": v} for i, v in enumerate(odd)]
    records.append({"kind": "deposit", "time": 50, "amount": 3.25})
    records.append({"kind": "deposit", "time": 51})
    check_log(records)
    # Integer columns: numpy ints, bools, huge values (read through float64 when some are absent).
    for ints in ([np.int64(5), 6], [True, 2], [2**60 + 1, 3], [2**53 + 1, 2]):
        with_all = [{"kind": "i", "time": 1, "tick": t, "index_timestamp": t} for t in ints]
        check_log(with_all)
        check_log([*with_all, {"kind": "i", "time": 2}])


def test_nan_bit_patterns_survive() -> None:
    negative_nan = -math.nan if math.copysign(1.0, -math.nan) < 0 else math.inf - math.inf
    records = [{"kind": "x", "time": 1, "loss": negative_nan}, {"kind": "x", "time": 2}]
    log = check_log(records)
    got = log.frame()["loss"].to_numpy()
    want = reference_frame(records)["loss"].to_numpy()
    assert got.tobytes() == want.tobytes()


def test_growth_past_the_first_capacity_and_batch() -> None:
    n = 3 * events_module._BATCH_ROWS + 17
    assert n > events_module._INITIAL_CAPACITY
    records: list[dict[str, Any]] = []
    for i in range(n):
        records.append(trade(i, ("buy", "sell", "trade")[i % 3]))
        if i % 97 == 0:
            records.append({"kind": "liquidate", "time": i, "account": f"a{i}", "amount": 1.0 * i})
    log = check_log(records)
    # Reads while appending: len counts the rows not yet committed, since sees every row.
    more = EventLog()
    for i, r in enumerate(records[:5000]):
        more.append(dict(r))
        if i % 1234 == 0:
            assert len(more) == i + 1
            assert_same_records(more.since(max(0, i - 3)), records[max(0, i - 3) : i + 1])
    assert_same_records(more.since(4990, stop=4995), records[4990:4995])
    assert log.count("liquidate") == sum(1 for r in records if r["kind"] == "liquidate")


def test_the_log_copies_the_record() -> None:
    log = EventLog()
    record = trade(1)
    log.append(record)
    record["amount"] = 99.0
    record["extra"] = 1
    assert log.records[0]["amount"] == trade(1)["amount"]
    assert "extra" not in log.records[0]


def test_a_record_without_kind() -> None:
    log = filled([trade(1), {"time": 3, "amount": 1.0}])
    assert_same_records(log.records, [trade(1), {"time": 3, "amount": 1.0}])
    with pytest.raises(KeyError):
        log.of_kind("buy")
    with pytest.raises(KeyError):
        log.count("buy")
    assert_same_records(log.since(0, "buy"), [trade(1)])  # a live reader skips it


# --------------------------------------------------------------------------------------------
# Vectorised questions, against the loops over records they replace


def reference_sums(records: list[dict[str, Any]], kinds: tuple[str, ...]) -> dict[Any, Any]:
    sums: Counter[Any] = Counter()
    for e in records:
        if e["kind"] in kinds:
            sums[e["account"]] += e["amount"]
    return dict(sums)


def test_questions_match_the_loops() -> None:
    rng = np.random.default_rng(3)
    records: list[dict[str, Any]] = []
    for i in range(2000):
        kind = str(rng.choice(["deposit", "withdraw", "settle", "buy", "liquidate"]))
        r: dict[str, Any] = {
            "account": f"acc-{int(rng.integers(30))}",
            "amount": float(rng.lognormal(0, 3)) * (-1 if rng.random() < 0.1 else 1),
            "kind": kind,
            "time": i,
        }
        if kind == "liquidate":
            r["price"] = float(rng.uniform(1000, 3000))
            if rng.random() < 0.5:
                r["social_loss"] = float(rng.exponential())
        records.append(r)
    log = filled(records)
    for kinds in (("deposit",), ("withdraw", "settle"), ("buy", "liquidate"), ("nothing",)):
        chosen = [e for e in records if e["kind"] in kinds]
        assert log.count(*kinds) == len(chosen)
        assert repr(log.values("amount", *kinds)) == repr([e["amount"] for e in chosen])
        assert math.fsum(log.values("amount", *kinds)) == math.fsum(e["amount"] for e in chosen)
        got, want = log.sum_by("account", "amount", *kinds), reference_sums(records, kinds)
        assert list(got) == list(want)
        assert repr(got) == repr(want)
        assert_same_records(log.of_kind(*kinds), chosen)
    liq = [e for e in records if e["kind"] == "liquidate"]
    assert log.values("social_loss", "liquidate", default=0.0) == [
        e.get("social_loss", 0.0) for e in liq
    ]
    with pytest.raises(KeyError):
        log.values("social_loss", "liquidate")
    with pytest.raises(KeyError):
        log.values("price", "deposit", "liquidate")


def test_sum_by_with_odd_values_is_a_counter() -> None:
    records = [
        {"kind": "deposit", "account": "a", "amount": 2**53, "time": 0},
        {"kind": "deposit", "account": "a", "amount": 1, "time": 1},
        {"kind": "deposit", "account": "a", "amount": 1, "time": 2},
        {"kind": "deposit", "account": Side.LONG, "amount": 0.5, "time": 3},
        {"kind": "deposit", "account": "long", "amount": 0.25, "time": 4},
    ]
    log = filled(records)
    got = log.sum_by("account", "amount", "deposit")
    want = reference_sums(records, ("deposit",))
    assert repr(got) == repr(want)
    assert got["a"] == 2**53 + 2  # exact int sum, as the Counter makes it


# --------------------------------------------------------------------------------------------
# Random record sequences

_KEYS = (
    "kind",
    "time",
    "tick",
    "account",
    "value",
    "amount",
    "price",
    "social_loss",
    "index_timestamp",
    "slippage",
    "product",
)
_odd_number = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**62), 2**62),
    st.sampled_from([np.float64(0.5), np.float32(1.5), np.int64(-3), 2**70, -(2**64)]),
)
_odd_text = st.one_of(
    _odd_number,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([Side.LONG, Stage.DECIDED, (1, 2)]),
)
_float = st.floats(allow_nan=True, allow_infinity=True, width=64)
_text = st.sampled_from(["a", "b", "pool", "", "ünï", "long", "1.0"])


def _value(key: str) -> st.SearchStrategy[Any]:
    if key == "kind":
        return st.sampled_from(["buy", "sell", "deposit"])
    if key == "time":
        return st.one_of(*[st.integers(0, 4_000_000_000)] * 8, st.just(True), st.just(np.int64(7)))
    if key in ("tick", "index_timestamp"):
        # Odd but readable as integers (a NaN or 0.5 would make both tables fail).
        odd_int = st.one_of(
            st.booleans(),
            st.none(),
            st.sampled_from([np.int64(-3), 4.0, np.float64(5.0), 2**63 + 5]),
        )
        return st.one_of(*[st.integers(-(2**62), 2**62)] * 8, *[st.integers(0, 100)] * 8, odd_int)
    if key in ("account", "value", "product"):
        return st.one_of(*[_text] * 4, _odd_text)
    return st.one_of(*[_float] * 4, _odd_number)


@st.composite
def record_sequences(draw: st.DrawFn) -> list[dict[str, Any]]:
    shapes = draw(
        st.lists(
            st.lists(st.sampled_from(_KEYS), unique=True, max_size=len(_KEYS)),
            min_size=1,
            max_size=4,
        )
    )
    # Most shapes have a time (a table needs one in every record).
    shapes = [s if "time" in s or draw(st.integers(0, 9)) == 0 else ["time", *s] for s in shapes]
    records = []
    for _ in range(draw(st.integers(0, 40))):
        keys = draw(st.sampled_from(shapes))
        records.append({k: draw(_value(k)) for k in keys})
    return records


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record_sequences())
def test_random_record_sequences(records: list[dict[str, Any]]) -> None:
    log = check_log(records)
    if not all("kind" in r for r in records):
        return
    for kinds in (("buy",), ("sell", "deposit")):
        chosen = [e for e in records if e["kind"] in kinds]
        assert log.count(*kinds) == len(chosen)
        assert_same_records(log.of_kind(*kinds), chosen)
        assert repr(log.values("amount", *kinds, default=0.0)) == repr(
            [e.get("amount", 0.0) for e in chosen]
        )
        # Counter keys compare by ==, the log's table by type and repr: with str accounts alike.
        if all(type(e.get("account")) is str and "amount" in e for e in chosen):
            try:
                want = reference_sums(records, kinds)
            except TypeError:  # values a Counter cannot add
                return
            assert repr(log.sum_by("account", "amount", *kinds)) == repr(want)


def test_frames_rejects_a_size_below_one() -> None:
    with pytest.raises(ValueError, match="rows must be positive"):
        next(filled([trade(1)]).frames(0))


def test_pieces_of_the_row_group_size_are_the_whole_table_file(tmp_path: Path) -> None:
    """pyarrow cuts a whole table into row groups of PARQUET_ROW_GROUP_ROWS: so do the pieces.

    A table one row longer than a row group is written whole (as ``perpsim run`` wrote
    ``events.parquet`` before it wrote the log in pieces) and in pieces: the same bytes.
    """
    n = PARQUET_ROW_GROUP_ROWS + 1
    log = EventLog()
    kinds = ("buy", "sell", "deposit")
    # Two shapes, so that the pieces take rows of several blocks.
    for i in range(n):
        if i % 5:
            log.append(
                {"kind": kinds[i % 3], "time": 1_700_000_000 + i, "tick": i, "amount": i / 8}
            )
        else:
            log.append({"kind": "halt", "time": 1_700_000_000 + i, "tick": i, "key": "x"})
    whole = _table_bytes(log.frame(), "parquet")
    path = tmp_path / "events.parquet"
    write_table_pieces(path, log.frames(PARQUET_ROW_GROUP_ROWS), "parquet")
    assert path.read_bytes() == whole
    import pyarrow.parquet as pq

    assert pq.ParquetFile(path).num_row_groups == 2
