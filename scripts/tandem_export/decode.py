"""Decoding driven by :mod:`tandem_export.layouts`: both record forms become one typed table.

Each reader produces a *raw* table: the common columns (``COMMON_COLUMNS``) plus one column per
decoded column name holding the undecoded value (integers as BIGINT, f32 as DOUBLE, bitmasks as
the integer of their bits).  One SQL projection (:func:`decode_select`) then turns raw values into
decoded ones for both forms alike: ratios divided to the unit in the column name, enums and
dictionary ids named, bitmasks listed by bit name, 0/1 flags as BOOLEAN.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from . import layouts as L
from .dictionaries import DICTIONARIES, UNKNOWN_PREFIX

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


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _name_list(names: dict[int, str]) -> str:
    """A DuckDB list literal indexed by value + 1 (NULL where a value has no name)."""
    top = max(names) if names else -1
    return "([" + ", ".join(_sql_str(names[i]) if i in names else "NULL" for i in range(top + 1)) + "]::VARCHAR[])"


def _decode_expr(f: L.Field, raw: str) -> str:
    """SQL turning the raw value expression ``raw`` of field ``f`` into its decoded value."""
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


def decode_select(present: set[str] | None = None) -> str:
    """SELECT list (without the keyword) decoding a raw table into the normalised columns.

    ``present`` names the raw columns the raw table has (all when None); a missing one decodes to
    a typed NULL, so every normalised table has the same columns in the same order.
    """
    parts = [f"CAST({name} AS {typ}) AS {name}" for name, typ in COMMON_COLUMNS.items()]
    for column, uses in FIELDS_BY_COLUMN.items():
        f0 = uses[0][1]
        if present is not None and column not in present:
            parts.append(f"CAST(NULL AS {f0.decoded_type}) AS {column}")
            continue
        exprs = {}
        for event_id, f in uses:
            exprs.setdefault(_decode_expr(f, column), []).append(event_id)
        if len(exprs) == 1:
            expr = next(iter(exprs))
        else:
            whens = " ".join(f"WHEN event_id IN ({', '.join(map(str, ids))}) THEN {e}" for e, ids in exprs.items())
            expr = f"CASE {whens} END"
        parts.append(f"CAST({expr} AS {f0.decoded_type}) AS {column}")
    return ",\n  ".join(parts)


def data_json_expr() -> str:
    """SQL expression of the ``data`` column: a JSON object of one event's decoded fields."""
    whens = []
    for event in L.EVENTS:
        if not event.fields:
            continue
        pairs = ", ".join(f"'{c}', {c}" for c in dict.fromkeys(f.column for f in event.fields))
        whens.append(f"WHEN {event.id} THEN json_object({pairs})")
    return f"CASE event_id {' '.join(whens)} ELSE json_object() END"


def event_name_expr() -> str:
    """SQL expression naming ``event_id``: the layout name, or ``UNKNOWN_<id>``."""
    whens = " ".join(f"WHEN {e.id} THEN '{e.name}'" for e in L.EVENTS)
    return f"CASE event_id {whens} ELSE 'UNKNOWN_' || event_id END"


# --- pump-logs JSON ---------------------------------------------------------------------------


def _json_struct_spec() -> str:
    # Struct field names are case-insensitive in DuckDB, so only each field's first key goes in
    # the struct; other spellings are looked up in the JSON text itself (see _json_raw_expr).
    keys = sorted({f.json_keys[0] for uses in FIELDS_BY_COLUMN.values() for _, f in uses})
    return "{" + ", ".join(f'"{k}": "JSON"' for k in keys) + "}"


def _json_raw_expr(f: L.Field) -> str:
    value = f'p."{f.json_keys[0]}"'
    if len(f.json_keys) > 1:
        others = ", ".join(f"json_extract(properties, '$.{k}')" for k in f.json_keys[1:])
        value = f"COALESCE({value}, {others})"
    if f.kind == "bits":
        return (
            f"CASE WHEN json_type({value}) = 'ARRAY' THEN "
            f"COALESCE(list_sum(list_transform(TRY_CAST({value} AS BIGINT[]), lambda b: (1::BIGINT << b))), 0) "
            f"ELSE TRY_CAST({value} AS BIGINT) END"
        )
    return f"TRY_CAST({value} AS {f.raw_type})"


def pumplogs_raw_select(events_relation: str, pump_serial_sql: str) -> str:
    """SQL reading pump-logs events into a raw table.

    ``events_relation`` must have the API's event fields (eventCode, sequenceGroup,
    sequenceNumber, pumpDateTime, eventProperties as JSON).  Keys are looked up by the layout
    field name in lowerCamelCase (:attr:`layouts.Field.json_keys`); a missing key or a value of the
    wrong type gives NULL.  Unknown keys stay in ``properties``.
    """
    cols = []
    for column, uses in FIELDS_BY_COLUMN.items():
        whens = " ".join(f"WHEN {eid} THEN {_json_raw_expr(f)}" for eid, f in uses)
        cols.append(f"CASE event_id {whens} END AS {column}")
    raw_cols = ",\n    ".join(cols)
    return f"""
SELECT
    {pump_serial_sql} AS pump_serial,
    sequence_group, seq_num, event_id,
    NULL::VARCHAR AS event_name,
    pump_time, 'pump-logs' AS origin, properties, NULL::BLOB AS record,
    {raw_cols}
FROM (
    SELECT
        TRY_CAST(sequenceGroup AS BIGINT) AS sequence_group,
        TRY_CAST(sequenceNumber AS BIGINT) AS seq_num,
        TRY_CAST(eventCode AS INTEGER) AS event_id,
        TRY_CAST(replace(left(CAST(pumpDateTime AS VARCHAR), 19), 'T', ' ') AS TIMESTAMP) AS pump_time,
        CAST(eventProperties AS JSON) AS properties,
        json_transform(COALESCE(CAST(eventProperties AS JSON), '{{}}'), '{_json_struct_spec()}') AS p
    FROM {events_relation}
)"""


# --- 26-byte records ---------------------------------------------------------------------------

_HEADER = np.dtype([("id", ">u2"), ("seconds", ">u4"), ("seq", ">u4"), ("payload", "V16")])
_PUMP_EPOCH_US = np.datetime64(L.PUMP_EPOCH.replace(" ", "T"), "us")


def records_to_arrow(buf: bytes, pump_serial: str) -> tuple[pa.Table, int]:
    """Decode concatenated 26-byte records into a raw table (see module doc).

    Returns the table (one row per whole record, in file order) and the number of trailing bytes
    that did not make a whole record.  Only raw columns of event ids present are included.
    Layout: header and payload offsets from :mod:`tandem_export.layouts`; every value big-endian.
    """
    n = len(buf) // L.RECORD_SIZE
    trailing = len(buf) - n * L.RECORD_SIZE
    rec = np.frombuffer(buf, dtype=_HEADER, count=n)
    raw = np.frombuffer(buf, dtype=np.uint8, count=n * L.RECORD_SIZE).reshape(n, L.RECORD_SIZE)
    event_id = (rec["id"] & 0x0FFF).astype(np.int32)
    pump_time = _PUMP_EPOCH_US + rec["seconds"].astype("timedelta64[s]").astype("timedelta64[us]")
    record_arr = pa.FixedSizeBinaryArray.from_buffers(pa.binary(L.RECORD_SIZE), n, [None, pa.py_buffer(raw.tobytes())])
    columns: dict[str, pa.Array] = {
        "pump_serial": pa.array(np.full(n, pump_serial, dtype=object), pa.string()),
        "sequence_group": pa.nulls(n, pa.int64()),
        "seq_num": pa.array(rec["seq"].astype(np.int64)),
        "event_id": pa.array(event_id),
        "event_name": pa.nulls(n, pa.string()),
        "pump_time": pa.array(pump_time, pa.timestamp("us")),
        "origin": pa.array(np.full(n, "legacy-binary", dtype=object), pa.string()),
        "properties": pa.nulls(n, pa.string()),
        "record": record_arr.cast(pa.binary()),
    }
    values: dict[str, np.ndarray] = {}
    valid: dict[str, np.ndarray] = {}
    payload = raw[:, L.PAYLOAD_OFFSET :]
    for eid in np.unique(event_id):
        event = L.EVENTS_BY_ID.get(int(eid))
        if event is None:
            continue
        rows = np.flatnonzero(event_id == eid)
        block = np.ascontiguousarray(payload[rows])
        for f in event.fields:
            dtype = np.dtype(L.NUMPY_TYPES[f.type])
            width = dtype.itemsize
            col = block[:, f.offset : f.offset + width].copy().view(dtype).reshape(-1)
            kind = np.float64 if f.type == "f32" else np.int64
            if f.column not in values:
                values[f.column] = np.zeros(n, dtype=kind)
                valid[f.column] = np.zeros(n, dtype=bool)
            values[f.column][rows] = col.astype(kind)
            valid[f.column][rows] = True
    for name in values:
        columns[name] = pa.array(values[name], mask=~valid[name])
    return pa.table(columns), trailing
