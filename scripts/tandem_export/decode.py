"""Decoding driven by :mod:`tandem_export.layouts`: both record forms become one typed table.

Each reader produces a *raw* table: the common columns (``COMMON_COLUMNS``) plus one column per
decoded column name holding the undecoded value (integers as BIGINT, f32 as DOUBLE, bitmasks as
the integer of their bits).  One SQL projection (:func:`decode_union`) then turns raw values into
decoded ones for both forms alike: ratios divided to the unit in the column name, enums and
dictionary ids named, bitmasks listed by bit name, 0/1 flags as BOOLEAN.
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


_COMMON_SOURCE = ("pump_serial", "sequence_group", "seq_num", "event_id", "pump_time", "origin", "properties", "record")


def _json_struct_spec_for(event: L.Event) -> str:
    keys = sorted({f.json_keys[0] for f in event.fields})
    return "{" + ", ".join(f'"{k}": "JSON"' for k in keys) + "}"


def decode_union(base: str, event_ids: list[int], json_source: bool) -> str:
    """SQL decoding the raw table ``base`` one event type at a time.

    ``base`` has the common source columns (``_COMMON_SOURCE``), ``src_pos`` (the position in the
    file, kept so the caller can restore file order) and, for 26-byte records
    (``json_source`` false), one raw column per field of the event types present; for pump-logs,
    the fields are read from ``properties`` with one ``json_transform`` per event type.  Each
    branch evaluates only its own event's fields (every other column is absent and is added as a
    typed NULL when windows are united), so the cost per event is that of its own fields.  Event ids
    not in the layout table are kept with ``event_name`` ``UNKNOWN_<id>`` and no fields.
    """
    common = ", ".join(f"CAST({c} AS {COMMON_COLUMNS[c]}) AS {c}" for c in _COMMON_SOURCE) + ", src_pos"
    branches = []
    known = [e for e in event_ids if e in L.EVENTS_BY_ID]
    for eid in sorted(known):
        event = L.EVENTS_BY_ID[eid]
        if json_source:
            raw = ", ".join(f"{_json_raw_expr(f)} AS {f.column}" for f in event.fields)
            # A key that is present with a value that does not read as its type is a type error.
            first_use = {f.json_keys[0]: f for f in reversed(event.fields)}
            errors = " + ".join(
                f'CASE WHEN p."{k}" IS NOT NULL AND json_type(p."{k}") <> \'NULL\' AND {f.column} IS NULL THEN 1 ELSE 0 END'
                for k, f in first_use.items()
            )
            inner = (
                f"SELECT *, {errors} AS type_errors FROM (SELECT *, {raw} FROM (SELECT *, json_transform("
                f"coalesce(properties, '{{}}'), '{_json_struct_spec_for(event)}') AS p FROM {base} WHERE event_id = {eid}))"
            )
        else:
            inner = f"SELECT *, 0 AS type_errors FROM {base} WHERE event_id = {eid}"
        fields = ", ".join(
            f"CAST({_decode_expr(f, f.column)} AS {f.decoded_type}) AS {f.column}"
            for f in {f.column: f for f in event.fields}.values()
        )
        branches.append(f"SELECT {common}, type_errors, '{event.name}' AS event_name, {fields} FROM ({inner})")
    others = f"event_id IS NULL OR event_id NOT IN ({', '.join(map(str, known))})" if known else "true"
    branches.append(
        f"SELECT {common}, 0 AS type_errors, 'UNKNOWN_' || CAST(event_id AS VARCHAR) AS event_name FROM {base} WHERE {others}"
    )
    return "\nUNION ALL BY NAME\n".join(branches)


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
        if not event.fields:
            continue
        pairs = ", ".join(f"'{c}', {c}" for c in dict.fromkeys(f.column for f in event.fields))
        whens.append(f"WHEN {event.id} THEN json_object({pairs})")
    return f"CASE event_id {' '.join(whens)} ELSE json_object() END"


# --- pump-logs JSON ---------------------------------------------------------------------------


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
_PUMP_EPOCH_US = np.datetime64(L.PUMP_EPOCH.replace(" ", "T"), "us")


def records_to_arrow(buf: bytes) -> tuple[pa.Table, int]:
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
    # pump_serial, sequence_group, origin and properties are constants added in SQL.
    columns: dict[str, pa.Array] = {
        "src_pos": pa.array(np.arange(1, n + 1, dtype=np.int64)),
        "seq_num": pa.array(rec["seq"].astype(np.int64)),
        "event_id": pa.array(event_id),
        "pump_time": pa.array(pump_time, pa.timestamp("us")),
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
