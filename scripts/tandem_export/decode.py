"""Decoding driven by :mod:`tandem_export.layouts`: both record forms become one typed table.

Each reader produces *raw* values: the common columns (``COMMON_COLUMNS``) and, per event type, one
raw value per decoded column (integers as int64, f32 as float64, bitmasks as the integer of their
bits).  26-byte records are read with NumPy (:class:`Records`), pump-logs JSON with one
``json_transform`` per event type in DuckDB (:func:`json_fields_select`).  One step then turns raw
values into decoded ones for both forms alike (:func:`decode_event`): ratios divided to the unit in
the column name, enums and dictionary ids named, bitmasks listed by bit name, 0/1 flags as BOOLEAN.
It works on whole NumPy columns; :func:`_decode_expr` is the same decoding written as SQL (float32
values are decoded by that very SQL, once per distinct value) and the tests hold the two equal.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from . import layouts as L
from .dictionaries import DICTIONARIES, UNKNOWN_PREFIX
from .storage import sql_str

#: name -> DuckDB type of the columns every normalised table starts with.
COMMON_COLUMNS: dict[str, str] = {
    "pump_serial": "VARCHAR",
    "sequence_group": "BIGINT",
    "seq_num": "BIGINT",
    "event_id": "INTEGER",
    "event_name": "VARCHAR",
    "pump_time": "TIMESTAMP",
    "origin": "VARCHAR",
    "properties": "JSON",
    "record": "BLOB",
}

_TYPE_BITS = {"u8": 8, "i8": 8, "u16": 16, "i16": 16, "u32": 32, "f32": 32}


def _name_list(names: dict[int, str]) -> str:
    """A DuckDB list literal indexed by value + 1 (NULL where a value has no name)."""
    top = max(names) if names else -1
    return "([" + ", ".join(sql_str(names[i]) if i in names else "NULL" for i in range(top + 1)) + "]::VARCHAR[])"


def _sql_number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(int(value))


def _decode_expr(f: L.Field, raw: str) -> str:
    """SQL turning the raw value expression ``raw`` of field ``f`` into its decoded value: NULL for
    a "no value" marker and for a value out of range (see :class:`tandem_export.layouts.Field`)."""
    lo, hi = f.raw_bounds
    fine = [f"{raw} BETWEEN {_sql_number(lo)} AND {_sql_number(hi)}"]
    if f.type == "f32":
        fine.append(f"NOT isnan({raw})")
    if f.missing:
        fine.append(f"{raw} NOT IN ({', '.join(map(_sql_number, f.missing))})")
    value = _decoded_expr(f, raw)
    if f.kind == "num" and f.valid is not None:
        fine.append(f"{value} BETWEEN {_sql_number(f.valid[0])} AND {_sql_number(f.valid[1])}")
    return f"CASE WHEN {' AND '.join(fine)} THEN {value} END"


def _decoded_expr(f: L.Field, raw: str) -> str:
    """SQL of the decoded value of a raw value that is in range."""
    if f.kind == "num":
        if f.type == "f32":
            # An f32 read from a record widens to a double such as 0.8500000238418579; printing it
            # as the shortest float32 text and reading that back gives 0.85, the value the pump
            # logged and the value pump-logs JSON carries, so both forms decode to equal doubles.
            return f"TRY_CAST(CAST(CAST({raw} AS FLOAT) AS VARCHAR) AS DOUBLE)"
        if f.divisor != 1:
            return f"({raw} / {f.divisor}.0)"
        return raw
    if f.kind == "bool":
        return f"({raw} <> 0)"
    if f.kind == "enum":
        return f"COALESCE({_name_list(L.ENUMS[f.names])}[{raw} + 1], 'unknown_' || {raw})"
    if f.kind == "dict":
        prefix = UNKNOWN_PREFIX[f.names]
        return f"COALESCE({_name_list(DICTIONARIES[f.names])}[{raw} + 1], '{prefix}_' || {raw})"
    if f.kind == "bits":
        names = L.ENUMS[f.names]
        full = {i: names.get(i, f"bit_{i}") for i in range(_TYPE_BITS[f.type])}
        picked = f"list_filter({_name_list(full)}, lambda x, i: (({raw} >> (i - 1)) & 1) = 1)"
        return f"CASE WHEN {raw} IS NULL THEN NULL ELSE {picked} END"
    raise ValueError(f"unknown field kind {f.kind!r}")


def _fields_by_column() -> dict[str, list[tuple[int, L.Field]]]:
    out: dict[str, list[tuple[int, L.Field]]] = {}
    for event in L.EVENTS:
        for f in event.fields:
            out.setdefault(f.column, []).append((event.id, f))
    return out


FIELDS_BY_COLUMN = _fields_by_column()


def _json_struct_spec_for(event: L.Event) -> str:
    keys = sorted({f.json_keys[0] for f in event.fields} | {k for f in event.fields for k in f.json_reads})
    return "{" + ", ".join(f'"{k}": "JSON"' for k in keys) + "}"


def json_fields_select(base: str, event: L.Event) -> str:
    """SQL of the raw values of ``event``'s fields in the pump-logs rows of ``base`` with that event id.

    ``base`` has ``row`` (a row number), ``event_id`` and ``properties``; the fields are read from
    ``properties`` with one ``json_transform``, each as its raw type (a value of the wrong type gives
    NULL).  The result has ``row``, one column per decoded column name and ``type_errors``: how many
    keys are present with a value that does not read as their type.  Rows come in any order (no
    sort: the caller places each row by ``row``).
    """
    raw = ", ".join(f"{_json_raw_expr(f)} AS {f.column}" for f in event_columns(event).values())
    first_use = {f.json_keys[0]: f for f in reversed(event.fields)}
    errors = " + ".join(
        f'CASE WHEN p."{k}" IS NOT NULL AND json_type(p."{k}") <> \'NULL\' AND {f.column} IS NULL THEN 1 ELSE 0 END'
        for k, f in first_use.items()
    )
    out = ", ".join(event_columns(event))
    return (
        f"SELECT row, {out}, {errors} AS type_errors FROM (SELECT row, p, {raw} FROM ("
        f"SELECT row, properties, json_transform(coalesce(properties, '{{}}'), '{_json_struct_spec_for(event)}') AS p"
        f" FROM {base} WHERE event_id = {event.id}))"
    )


def full_select(present: set[str]) -> str:
    """SELECT list giving every normalised column in a fixed order; absent ones as typed NULLs."""
    parts = [f"{c}" if c in present else f"CAST(NULL AS {t}) AS {c}" for c, t in COMMON_COLUMNS.items()]
    for column, uses in FIELDS_BY_COLUMN.items():
        typ = uses[0][1].decoded_type
        parts.append(column if column in present else f"CAST(NULL AS {typ}) AS {column}")
    return ", ".join(parts)


def data_json_expr() -> str:
    """SQL expression of the ``data`` column: a JSON object of one event's decoded fields."""
    whens = []
    for event in L.EVENTS:
        pairs = ", ".join(f"'{c}', {c}" for c in dict.fromkeys(f.column for f in event.fields))
        whens.append(f"WHEN {event.id} THEN json_object({pairs})")
    return f"CASE event_id {' '.join(whens)} ELSE json_object() END"


# --- pump-logs JSON ---------------------------------------------------------------------------


def _json_raw_expr(f: L.Field) -> str:
    if f.json_sql is not None:
        return f.json_sql
    value = f'p."{f.json_keys[0]}"'
    if len(f.json_keys) > 1:
        others = ", ".join(f"json_extract(properties, '$.{k}')" for k in f.json_keys[1:])
        value = f"COALESCE({value}, {others})"
    if f.kind == "bits":
        # A list of set bit indices: OR of 1 << index; a list holding anything but integer bit
        # indices within the field's width is out of range (-1, refused by the field's range).
        width = 8 * L.TYPE_SIZES[f.type]
        items = f"TRY_CAST({value} AS JSON[])"
        bad = f"NOT ({_JSON_INTEGER.format(v='b')}) OR TRY_CAST(b AS BIGINT) NOT BETWEEN 0 AND {width - 1}"
        return (
            f"CASE WHEN json_type({value}) = 'ARRAY' THEN CASE"
            f" WHEN list_bool_or(list_transform({items}, lambda b: {bad})) THEN -1 WHEN len({items}) = 0 THEN 0"
            f" ELSE list_reduce(list_transform({items}, lambda b: (1::BIGINT << TRY_CAST(b AS BIGINT))),"
            f" lambda a, b: a | b) END"
            f" ELSE {_json_integer(value)} END"
        )
    if f.raw_type == "DOUBLE":
        return f"CASE WHEN json_type({value}) IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN TRY_CAST({value} AS DOUBLE) END"
    return _json_integer(value)


#: SQL: whether the JSON value ``{v}`` is a JSON integer (not text, not a fraction).
_JSON_INTEGER = "coalesce(json_type({v}) IN ('UBIGINT', 'BIGINT'), false)"


def _json_integer(value: str) -> str:
    """SQL of a JSON value as the integer it is: a JSON integer, or a number with no fraction
    (``120.0``); anything else (text such as ``"120"`` or ``"0x78"``, a fraction such as 39.6, which
    no integer field can hold) is NULL, a value of the wrong type."""
    number = f"TRY_CAST({value} AS DOUBLE)"
    return (
        f"CASE WHEN {_JSON_INTEGER.format(v=value)} THEN TRY_CAST({value} AS BIGINT)"
        f" WHEN json_type({value}) = 'DOUBLE' AND {number} = trunc({number}) THEN TRY_CAST({number} AS BIGINT) END"
    )


def pumplogs_base_select(events_relation: str, pump_serial_sql: str) -> str:
    """SQL of the base table of pump-logs events (common columns; fields stay in ``properties``).

    ``events_relation`` has the API's event fields (eventCode, sequenceGroup, sequenceNumber,
    pumpDateTime, eventProperties as JSON).  A value of the wrong type gives NULL.
    """
    return f"""
SELECT
    {pump_serial_sql} AS pump_serial,
    TRY_CAST(sequenceGroup AS BIGINT) AS sequence_group,
    TRY_CAST(sequenceNumber AS BIGINT) AS seq_num,
    TRY_CAST(eventCode AS INTEGER) AS event_id,
    TRY_CAST(replace(left(json_extract_string(CAST(pumpDateTime AS JSON), '$'), 19), 'T', ' ') AS TIMESTAMP) AS pump_time,
    'pump-logs' AS origin,
    CAST(eventProperties AS JSON) AS properties,
    NULL::BLOB AS record,
    row_number() OVER () AS src_pos
FROM {events_relation}"""


# --- 26-byte records ---------------------------------------------------------------------------

_HEADER = np.dtype([("id", ">u2"), ("seconds", ">u4"), ("seq", ">u4"), ("payload", "V16")])
_PUMP_EPOCH_US = int(np.datetime64(L.PUMP_EPOCH.replace(" ", "T"), "us").astype(np.int64))


class Records:
    """The whole 26-byte records of a buffer: ``rows`` is an (n, 26) uint8 view of them.

    Header values (layout in :mod:`tandem_export.layouts`, big-endian): ``event_id`` the low 12
    bits of bytes 0-1, ``pump_time_us`` the pump wall clock in microseconds since 1970 (bytes 2-5
    count seconds from the pump epoch), ``seq_num`` bytes 6-9.  Bytes after the last whole record
    are left out (the caller counts them).
    """

    def __init__(self, buf) -> None:
        data = np.frombuffer(buf, dtype=np.uint8)
        n = len(data) // L.RECORD_SIZE
        self.rows = data[: n * L.RECORD_SIZE].reshape(n, L.RECORD_SIZE)
        head = np.frombuffer(data, dtype=_HEADER, count=n)
        self.event_id = (head["id"] & 0x0FFF).astype(np.int32)
        self.pump_time_us = head["seconds"].astype(np.int64) * 1_000_000 + _PUMP_EPOCH_US
        self.seq_num = head["seq"].astype(np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def fields(self, event: L.Event, rows: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Raw values (int64, or float64 for f32) and validity of ``event``'s fields in ``rows``."""
        block = np.ascontiguousarray(self.rows[rows, L.PAYLOAD_OFFSET :])
        valid = np.ones(len(rows), dtype=bool)
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for f in event.fields:  # a later field of the same column wins, as in event_columns
            dtype = np.dtype(L.NUMPY_TYPES[f.type])
            col = block[:, f.offset : f.offset + dtype.itemsize].copy().view(dtype).reshape(-1)
            out[f.column] = (col.astype(np.float64 if f.type == "f32" else np.int64), valid)
        return out


# --- raw values to decoded values, for both forms ----------------------------------------------
#
# The SQL of :func:`_decode_expr` says what each field kind decodes to; the functions below do the
# same on whole NumPy columns (checked against that SQL in tests/test_decoder_consistency.py), so that
# decoding costs no query planning per file.  float32 values go through that very SQL once per
# distinct value.

#: DuckDB type of a decoded column -> its Arrow type.
ARROW_TYPES = {
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "VARCHAR": pa.string(),
    "VARCHAR[]": pa.list_(pa.string()),
}


def event_columns(event: L.Event) -> dict[str, L.Field]:
    """The decoded columns of ``event`` in table order (a later field of the same column wins)."""
    return {f.column: f for f in event.fields}


class F32:
    """Decoded doubles of float32 raw values: the SQL of an ``f32`` field, once per distinct value.

    Values are told apart by their bits (so -0.0 and NaNs are kept as they are); the decoded ones
    are kept, sorted by those bits, for the next call.
    """

    def __init__(self, con) -> None:
        self.con = con
        self.sql = _decoded_expr(L.Field("f32", 0, "f32", "v"), "v")
        self.keys = np.zeros(0, dtype=np.uint64)
        self.values = np.zeros(0, dtype=np.float64)
        self.valid = np.zeros(0, dtype=bool)

    def prefetch(self, columns: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Decode the distinct values of all these (values, valid) columns in one query."""
        if columns:
            self._learn(np.concatenate([_bits(v)[ok] for v, ok in columns]))

    def _learn(self, bits: np.ndarray) -> None:
        bits = distinct(bits)
        at = np.minimum(np.searchsorted(self.keys, bits), max(len(self.keys) - 1, 0))
        new = bits[~(self.keys[at] == bits)] if len(self.keys) else bits
        if not len(new):
            return
        # One list parameter (no registered table: that would import pandas); bits are kept.
        got = self.con.sql(
            f"SELECT list_transform($1::DOUBLE[], lambda v: {self.sql})", params=[new.view(np.float64).tolist()]
        ).fetchall()[0][0]
        keys = np.concatenate([self.keys, new])
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        decoded = np.array([0.0 if g is None else g for g in got], dtype=np.float64)
        self.values = np.concatenate([self.values, decoded])[order]
        self.valid = np.concatenate([self.valid, np.array([g is not None for g in got], dtype=bool)])[order]

    def __call__(self, values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bits = _bits(values)
        self._learn(bits[valid])
        at = np.searchsorted(self.keys, bits[valid])
        out = np.zeros(len(values), dtype=np.float64)
        out_valid = np.zeros(len(values), dtype=bool)
        out[valid] = self.values[at]
        out_valid[valid] = self.valid[at]
        return out, out_valid


def distinct(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values (``np.unique`` without its masked-array check, which imports numpy.ma)."""
    values = np.sort(values)
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if len(values) else values


def _bits(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)


def numbers(values: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
    """A NumPy array of ``arrow_type``'s width as an Arrow array without NULLs (``pa.array`` on NumPy
    input would import pandas, which costs more than decoding a window)."""
    values = np.ascontiguousarray(values, dtype=np.dtype(arrow_type.to_pandas_dtype()))
    return pa.Array.from_buffers(arrow_type, len(values), [None, pa.py_buffer(values)])


def strings(labels: list[str]) -> pa.Array:
    """A list of strings as an Arrow string array (without ``pa.array``: see :func:`numbers`)."""
    encoded = [label.encode("utf-8") for label in labels]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return pa.Array.from_buffers(
        pa.string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    )


def bitmap(valid: np.ndarray) -> tuple[pa.Buffer | None, int]:
    """The Arrow validity bitmap of a boolean mask and its null count (no bitmap when none is NULL)."""
    nulls = len(valid) - int(np.count_nonzero(valid))
    return (pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None), nulls


def _small_unique(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)``, without sorting when the values are small."""
    if len(values) and 0 <= values.min() and values.max() < 1 << 20:
        uniq = np.flatnonzero(np.bincount(values))
        lut = np.zeros(int(uniq[-1]) + 1, dtype=np.int32)
        lut[uniq] = np.arange(len(uniq), dtype=np.int32)
        return uniq, lut[values]
    uniq, inverse = np.unique(values, return_inverse=True)
    return uniq, inverse.astype(np.int32)


class Piece:
    """Decoded values of one column in some rows, with ``valid`` marking the non-NULL ones.

    Numbers: ``values`` (NumPy).  Names: ``values`` are int32 indexes into ``labels``.  Lists of
    names: ``counts`` per row and ``values`` (the indexes into ``labels`` of every row, one after the
    other).
    """

    __slots__ = ("values", "valid", "labels", "counts", "bad")

    def __init__(self, values, valid, labels=None, counts=None) -> None:
        self.values, self.valid, self.labels, self.counts = values, valid, labels, counts
        #: Rows whose raw value was out of range (read as NULL and counted); None: none checked.
        self.bad: np.ndarray | None = None

    def to_arrow(self, arrow_type: pa.DataType) -> pa.Array:
        """The values as Arrow (names as plain strings)."""
        column = Column(arrow_type, len(self.valid))
        column.put(np.arange(len(self.valid)), self)
        arr = column.array()
        if pa.types.is_dictionary(arr.type):
            return arr.cast(pa.string())
        if pa.types.is_list(arr.type):
            return arr.cast(pa.list_(pa.string()))
        return arr


def _pick_names(values: np.ndarray, valid: np.ndarray, names: dict[int, str], fallback: str) -> Piece:
    """``COALESCE(names_list[raw + 1], fallback || raw)`` on a column (DuckDB list indexing: 1-based,
    0 gives NULL, a negative index counts from the end)."""
    size = max(names) + 1 if names else 0
    uniq, inverse = _small_unique(values[valid])
    labels = []
    for raw in uniq.tolist():
        if raw == np.iinfo(np.int64).max:
            raise OverflowError(f"enum value {raw} is out of range")
        index = raw + 1
        slot = index - 1 if index > 0 else size + index if index < 0 else -1
        name = names.get(slot) if 0 <= slot < size else None
        labels.append(name if name is not None else f"{fallback}{raw}")
    codes = np.full(len(values), -1, dtype=np.int32)
    codes[valid] = inverse
    return Piece(codes, valid, labels)


def _bit_names(values: np.ndarray, valid: np.ndarray, width: int, names: dict[int, str]) -> Piece:
    """The names of the set bits (lowest first) among the low ``width`` bits; NULL where invalid."""
    labels = [names.get(i, f"bit_{i}") for i in range(width)]
    # The bits of each distinct value (a bitmask column holds few), then each row's from its value's.
    uniq, inverse = _small_unique(np.where(valid, values, 0).astype(np.int64))
    bits = ((uniq[:, None] >> np.arange(width, dtype=np.int64)) & 1).astype(bool)
    own = bits.sum(axis=1, dtype=np.int32)
    counts = own[inverse]
    total = int(counts.sum(dtype=np.int64))
    if total == 0:
        return Piece(np.zeros(0, dtype=np.int32), valid, labels, counts)
    first = np.zeros(len(uniq), dtype=np.int64)  # where each distinct value's bits start in ``flat``
    np.cumsum(own[:-1], out=first[1:])
    flat = np.nonzero(bits)[1].astype(np.int32)
    starts = np.cumsum(counts, dtype=np.int64) - counts  # where each row's bits start in the result
    within = np.arange(total, dtype=np.int64) - np.repeat(starts, counts)
    return Piece(flat[np.repeat(first[inverse], counts) + within], valid, labels, counts)


def raw_validity(f: L.Field, values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(valid, out of range) masks of raw values of field ``f``: a "no value" marker (``f.missing``,
    a float32 NaN) is no longer valid; a value beyond ``f.raw_bounds`` is neither valid nor missing
    but out of range.  Values under ``~valid`` are ignored."""
    lo, hi = f.raw_bounds
    if f.type == "f32":
        marker = np.isnan(values)
        if f.missing:
            marker |= np.isin(values, np.array(f.missing, dtype=values.dtype))
    elif f.missing:
        marker = np.isin(values, np.array(f.missing, dtype=values.dtype))
    else:
        marker = np.zeros(len(values), dtype=bool)
    with np.errstate(invalid="ignore"):
        outside = (values < lo) | (values > hi)
    present = valid & ~marker
    return present & ~outside, present & outside


def decode_field(f: L.Field, values: np.ndarray, valid: np.ndarray, f32: F32) -> Piece:
    """The decoded values of field ``f`` from its raw values (int64, or float64 for f32).

    A marker of "no value" is NULL; a value out of range (:func:`raw_validity`, then a decoded
    number outside ``f.valid``) is NULL and marked in the piece's ``bad`` mask, for the counts.
    This is the SQL of :func:`_decode_expr`, vectorised (the tests hold the two equal).
    """
    valid, bad = raw_validity(f, values, valid)
    piece = _decode_valid(f, values, valid, f32)
    if f.kind == "num" and f.valid is not None:
        with np.errstate(invalid="ignore"):
            outside = piece.valid & ~((piece.values >= f.valid[0]) & (piece.values <= f.valid[1]))
        if outside.any():
            piece.valid = piece.valid & ~outside
            bad = bad | outside
    piece.bad = bad
    return piece


def _decode_valid(f: L.Field, values: np.ndarray, valid: np.ndarray, f32: F32) -> Piece:
    """The decoded values of raw values that are in range (see :func:`decode_field`)."""
    if f.kind == "num":
        if f.type == "f32":
            return Piece(*f32(values, valid))
        if f.divisor != 1:
            return Piece(values.astype(np.float64) / float(f.divisor), valid)
        return Piece(values.astype(np.int64, copy=False), valid)
    if f.type == "f32":
        raise ValueError(f"{f.column}: float32 fields are numbers")
    values = values.astype(np.int64, copy=False)
    if f.kind == "bool":
        return Piece(values != 0, valid)
    if f.kind == "enum":
        return _pick_names(values, valid, L.ENUMS[f.names], "unknown_")
    if f.kind == "dict":
        return _pick_names(values, valid, DICTIONARIES[f.names], UNKNOWN_PREFIX[f.names] + "_")
    if f.kind == "bits":
        return _bit_names(values, valid, _TYPE_BITS[f.type], L.ENUMS[f.names])
    raise ValueError(f"unknown field kind {f.kind!r}")


def f32_columns(event: L.Event, raw: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The raw (values, valid) of ``event``'s float32 fields (see :meth:`F32.prefetch`)."""
    return [raw[c] for c, f in event_columns(event).items() if f.kind == "num" and f.type == "f32"]


def decode_event(event: L.Event, raw: dict[str, tuple[np.ndarray, np.ndarray]], f32: F32) -> dict[str, Piece]:
    """Every decoded column of ``event`` from the raw values of its fields (see :func:`decode_field`)."""
    return {column: decode_field(f, *raw[column], f32) for column, f in event_columns(event).items()}


class Column:
    """One decoded column of ``n`` rows, put together from the pieces of several event types."""

    def __init__(self, arrow_type: pa.DataType, n: int) -> None:
        self.type, self.n = arrow_type, n
        self.values: np.ndarray | None = None
        self.valid = np.zeros(n, dtype=bool)
        self.labels: dict[str, int] | None = None
        self.lists: list[tuple[np.ndarray, Piece, np.ndarray]] = []

    def put(self, rows: np.ndarray, piece: Piece) -> None:
        """Place ``piece``: the values of the rows ``rows``, in that order."""
        self.valid[rows] = piece.valid
        if piece.labels is not None:
            if self.labels is None:
                self.labels = {}
                if piece.counts is None:
                    self.values = np.full(self.n, -1, dtype=np.int32)
            lut = np.array([self.labels.setdefault(x, len(self.labels)) for x in piece.labels] + [-1], np.int32)
            if piece.counts is not None:
                self.lists.append((rows, piece, lut))
            else:
                self.values[rows] = lut[piece.values]  # -1 (NULL) picks the appended -1
            return
        if self.values is None:
            self.values = np.zeros(self.n, dtype=piece.values.dtype)
        self.values[rows] = piece.values

    def filled(self, values: np.ndarray, valid: np.ndarray) -> pa.Array:
        """A column of numbers (all rows at once) as Arrow."""
        self.values, self.valid = values, valid
        return self.array()

    def array(self) -> pa.Array:
        """The column as Arrow (names dictionary-encoded; NULL where no piece had a value)."""
        validity, nulls = bitmap(self.valid)
        if self.lists:
            counts = np.zeros(self.n, dtype=np.int32)
            for rows, piece, _ in self.lists:
                counts[rows] = piece.counts
            offsets = np.zeros(self.n + 1, dtype=np.int32)
            np.cumsum(counts, out=offsets[1:])
            flat = np.empty(int(offsets[-1]), dtype=np.int32)
            for rows, piece, lut in self.lists:
                own = np.zeros(len(rows) + 1, dtype=np.int64)
                np.cumsum(piece.counts, out=own[1:])
                within = np.arange(int(own[-1]), dtype=np.int64) - np.repeat(own[:-1], piece.counts)
                flat[np.repeat(offsets[:-1][rows], piece.counts) + within] = lut[piece.values]
            child = pa.DictionaryArray.from_arrays(numbers(flat, pa.int32()), strings(list(self.labels)))
            return pa.Array.from_buffers(
                pa.list_(child.type), self.n, [validity, pa.py_buffer(offsets)], nulls, children=[child]
            )
        if self.labels is not None:
            index = np.where(self.values < 0, 0, self.values)
            codes = pa.Array.from_buffers(pa.int32(), self.n, [validity, pa.py_buffer(index)], nulls)
            return pa.DictionaryArray.from_arrays(codes, strings(list(self.labels)))
        if self.values is None:
            return pa.nulls(self.n, self.type)
        data = np.packbits(self.values, bitorder="little") if self.values.dtype == bool else self.values
        return pa.Array.from_buffers(self.type, self.n, [validity, pa.py_buffer(data)], nulls)
