"""A consistency check, not a value test: the fast store normaliser against a plain per-record
decoder written here.

Both read the layout facts (offsets, types, divisors, ranges, value names) from
``tandem_export.layouts``, so this file cannot see a wrong layout: it shows that the vectorised,
batched, cached decoding gives what a plain one-record-at-a-time reading of the same layout table
gives.  Whether the layouts themselves are right is checked independently, by hand-computed bytes
(test_decode_values.py) and by real records captured by other projects with the values they assert
(test_peer_vectors.py).

``normalize_store`` decodes many windows per query and 26-byte records as whole NumPy columns; the
reference below reads one record at a time with ``struct.unpack``, taking from
``tandem_export.layouts`` only the layout facts (offsets, types, divisors, value names) and decoding
them its own way.  A generated history (the demo pump's events and hand-made records of every
documented type with arbitrary payloads) goes through both, split into several windows of both
forms, in one batch and in batches of one file, and on a second, cached run: every column of
every row must be identical.  Further tests cover the cache (an unchanged window is not decoded
again, a changed one is, a decoder change invalidates every table) and failures (no index, nothing
deleted).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import random
import struct
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
from tandem_export import decode, demo, encode, normalize
from tandem_export import layouts as L
from tandem_export.dictionaries import DICTIONARIES, UNKNOWN_PREFIX
from tandem_export.errors import InputError
from tandem_export.storage import sha256_file

pytestmark = pytest.mark.fast  # the fast tier of value tests (make test-fast)

SERIAL = "90512345"
EPOCH = dt.datetime(2008, 1, 1)
CODES = {"u8": "B", "i8": "b", "u16": "H", "i16": "h", "u32": "I", "f32": "f"}
WIDTH = {"u8": 8, "i8": 8, "u16": 16, "i16": 16, "u32": 32, "f32": 32}
COMMON = ["pump_serial", "sequence_group", "seq_num", "event_id", "pump_time", "origin", "properties", "record"]


# --- the plain decoder: one record at a time ------------------------------------------------


def shortest_f32(value: float) -> float:
    """The shortest decimal that reads back as the same float32, as a double (0.85, not 0.850000023...).

    (For float32 values whose exact decimal has at most 9 digits but a shorter one reads back the
    same, e.g. 246254.125, the decoder, like DuckDB's text of a FLOAT, gives the exact value; the
    history here has values as pumps log them, a few decimals, for which both agree.)
    """
    bits = struct.pack(">f", value)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if struct.pack(">f", float(text)) == bits:
            return float(text)
    raise AssertionError(value)


def decode_value(f: L.Field, raw):
    """One field's decoded value from its raw value (an int, or a float for f32); None for a "no
    value" marker or a value out of range (the field's raw range, then its decoded range)."""
    if (f.type == "f32" and math.isnan(raw)) or raw in f.missing:
        return None
    lo, hi = f.raw_bounds
    if not lo <= raw <= hi:
        return None
    if f.kind == "num":
        value = shortest_f32(raw) if f.type == "f32" else raw / f.divisor if f.divisor != 1 else raw
        if f.valid is not None and not f.valid[0] <= value <= f.valid[1]:
            return None
        return value
    if f.kind == "bool":
        return raw == 1
    if f.kind == "enum":
        return L.ENUMS[f.names].get(raw, f"unknown_{raw}")
    if f.kind == "dict":
        return DICTIONARIES[f.names].get(raw, f"{UNKNOWN_PREFIX[f.names]}_{raw}")
    if f.kind == "bits":
        names = L.ENUMS[f.names]
        return [names.get(bit, f"bit_{bit}") for bit in range(WIDTH[f.type]) if raw >> bit & 1]
    raise AssertionError(f.kind)


def fields_of(event_id: int, read) -> dict:
    """The decoded columns of one event, ``read(field)`` giving each field's raw value or None."""
    event = L.EVENTS_BY_ID.get(event_id)
    out: dict = {}
    for f in event.fields if event else ():
        raw = read(f)
        out[f.column] = None if raw is None else decode_value(f, raw)
    return out


def columns_of(event_ids: set[int]) -> list[str]:
    """The decoded columns a window's table has: those of its event types, by event id."""
    out: list[str] = []
    for eid in sorted(e for e in event_ids if e in L.EVENTS_BY_ID):
        out += [f.column for f in L.EVENTS_BY_ID[eid].fields if f.column not in out]
    return out


def reference_records(buf: bytes) -> tuple[list[str], list[dict]]:
    """(column names, rows) of a 26-byte records window, decoded record by record."""
    rows, ids = [], set()
    for position in range(len(buf) // 26):
        record = buf[position * 26 : position * 26 + 26]
        head, seconds, seq = struct.unpack(">HII", record[:10])
        event_id = head & 0x0FFF
        ids.add(event_id)
        payload = record[10:]
        row = {
            "pump_serial": SERIAL,
            "sequence_group": None,
            "seq_num": seq,
            "event_id": event_id,
            "pump_time": EPOCH + dt.timedelta(seconds=seconds),
            "origin": "legacy-binary",
            "properties": None,
            "record": record,
            "event_name": L.event_name(event_id),
            **fields_of(event_id, lambda f, p=payload: struct.unpack_from(">" + CODES[f.type], p, f.offset)[0]),
        }
        rows.append((seq, position, row))
    rows.sort(key=lambda r: r[:2])
    return COMMON + ["event_name"] + columns_of(ids), [r[2] for r in rows]


def reference_pumplogs(body: dict) -> tuple[list[str], list[dict]]:
    """(column names, rows) of a pump-logs window, decoded event by event from ``json.loads``."""
    rows, ids = [], set()
    for position, e in enumerate(body["events"] + body.get("clockChanges", [])):
        props = e["eventProperties"]
        ids.add(e["eventCode"])

        def read(f, props=props):
            value = next((props[k] for k in f.json_keys if k in props), None)
            if f.kind == "bits" and isinstance(value, list):
                return sum(1 << b for b in value)
            return value

        row = {
            "pump_serial": SERIAL,
            "sequence_group": e["sequenceGroup"],
            "seq_num": e["sequenceNumber"],
            "event_id": e["eventCode"],
            "pump_time": dt.datetime.fromisoformat(e["pumpDateTime"]),
            "origin": "pump-logs",
            "properties": props,
            "record": None,
            "event_name": L.event_name(e["eventCode"]),
            **fields_of(e["eventCode"], read),
        }
        rows.append((e["sequenceGroup"], e["sequenceNumber"], position, row))
    rows.sort(key=lambda r: r[:3])
    return COMMON + ["event_name"] + columns_of(ids), [r[3] for r in rows]


# --- a history in both forms ----------------------------------------------------------------------


def every_type_records(seed: int) -> bytes:
    """Records of every documented type with arbitrary payloads, plus unknown ids, out of seq order."""
    rnd = random.Random(seed)
    out = []
    seqs = rnd.sample(range(5_000_000, 5_000_400), 3 * len(L.EVENTS) + 3)
    for i, seq in enumerate(seqs):
        event_id = L.EVENTS[i % len(L.EVENTS)].id if i < 3 * len(L.EVENTS) else rnd.choice([1, 999, 4000])
        payload = bytearray(rnd.randbytes(16))
        for f in L.EVENTS_BY_ID[event_id].fields if event_id in L.EVENTS_BY_ID else ():
            if f.type == "f32":  # as pumps log them: a few decimals
                value = (
                    rnd.choice([0.85, 1.5, -2.25, 0.1, 3.0e-5])
                    if rnd.random() < 0.5
                    else round(rnd.uniform(-999, 999), 2)
                )
                struct.pack_into(">f", payload, f.offset, value)
            elif rnd.random() < 0.5:  # small values, so that names and bits are hit, not only fallbacks
                struct.pack_into(">" + CODES[f.type], payload, f.offset, rnd.randint(0, 9))
        nibble = rnd.randint(0, 15)
        seconds = rnd.randint(500_000_000, 560_000_000)
        out.append(struct.pack(">HII", nibble << 12 | event_id, seconds, seq) + bytes(payload))
    return b"".join(out)


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> dict:
    """Raw windows of one pump in both forms, and the reference tables of each."""
    root = tmp_path_factory.mktemp("history")
    events = demo.demo_events(3, dt.date(2025, 3, 31), 24)
    spans = [(dt.date(2025, 3, 8), dt.date(2025, 3, 15)), (dt.date(2025, 3, 16), dt.date(2025, 3, 23))]
    spans.append((dt.date(2025, 3, 24), dt.date(2025, 3, 31)))
    windows = {"json": [], "bin": []}
    for first, last in spans:
        chunk = [e for e in events if first <= e.pump_time.date() <= last]
        name = f"{first}_{last}"
        clock = [e for e in chunk if e.event_id in (13, 14)]
        body = {
            "events": [encode.to_pumplogs(e, "a", 1) for e in chunk if e not in clock],
            "clockChanges": [encode.to_pumplogs(e, "a", 1) for e in clock],
        }
        (root / f"{name}.json").write_text(json.dumps(body, separators=(",", ":")))
        (root / f"{name}.bin").write_bytes(b"".join(encode.to_record(e) for e in chunk))
        windows["json"].append((name, root / f"{name}.json", reference_pumplogs(body)))
        windows["bin"].append((name, root / f"{name}.bin", reference_records((root / f"{name}.bin").read_bytes())))
    for i, seed in enumerate((11, 12)):
        raw = root / f"every-type-{i}.bin"
        raw.write_bytes(every_type_records(seed))
        windows["bin"].append((f"every-type-{i}", raw, reference_records(raw.read_bytes())))
    # The same events as pump-logs, decoded from their raw values (bitmasks as lists of bits).
    for i, seed in enumerate((21, 22)):
        buf = every_type_records(seed)
        body = {"events": [], "clockChanges": []}
        for k in range(len(buf) // 26):
            record = buf[k * 26 : k * 26 + 26]
            head, seconds, seq = struct.unpack(">HII", record[:10])
            event_id = head & 0x0FFF
            values = {}
            for f in L.EVENTS_BY_ID[event_id].fields if event_id in L.EVENTS_BY_ID else ():
                values[f.column] = struct.unpack_from(">" + CODES[f.type], record[10:], f.offset)[0]
            if event_id in L.EVENTS_BY_ID:
                when = EPOCH + dt.timedelta(seconds=seconds)
                element = encode.to_pumplogs(encode.PumpEvent(event_id, when, seq, values), "a", 2)
                body["clockChanges" if event_id in (13, 14) else "events"].append(element)
        raw = root / f"every-type-{i}.json"
        raw.write_text(json.dumps(body))
        windows["json"].append((f"every-type-{i}", raw, reference_pumplogs(body)))
    return windows


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def assert_table(parquet: str, expected: tuple[list[str], list[dict]]) -> None:
    columns, rows = expected
    table = pq.read_table(parquet)
    assert table.column_names == columns
    got = table.to_pylist()
    assert len(got) == len(rows)
    for g, want in zip(got, rows, strict=True):
        if g["properties"] is not None:
            g["properties"] = json.loads(g["properties"])
        diff = {c: (g[c], want.get(c)) for c in columns if not same(g[c], want.get(c))}
        assert not diff, f"{parquet} seq {want['seq_num']}: {diff}"


def run_store(windows, out_dir: Path, log=None) -> list[normalize.Stats]:
    specs = [normalize.WindowSpec(name, raw, SERIAL, f"window {name}") for name, raw, _ in windows]
    return normalize.normalize_store(specs, out_dir, out_dir / "index.json", log or logging.getLogger("t"))


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", ["one-query", "one-file-at-a-time"])
@pytest.mark.parametrize("form", ["json", "bin"])
def test_store_tables_equal_the_reference_decoder(history, tmp_path, monkeypatch, form, batch):
    if batch == "one-file-at-a-time":
        monkeypatch.setattr(normalize, "JSON_BATCH_BYTES", 1)
        monkeypatch.setattr(normalize, "RECORDS_BATCH", 1)
    windows = history[form]
    out = tmp_path / "normalized" / "store-1"
    stats = run_store(windows, out)
    parquets = normalize.read_index(out / "index.json")
    assert len(parquets) == len(windows) == len(stats)
    for (name, _, expected), parquet, st in zip(windows, parquets, stats, strict=True):
        assert Path(parquet).name.startswith(f"{name}.") and Path(parquet).parent == out
        assert st.events == len(expected[1])
        assert_table(parquet, expected)
    # A second run reuses every table and gives the same tables and stats.
    again = run_store(windows, out)
    assert normalize.read_index(out / "index.json") == parquets
    assert [s.to_json() for s in again] == [s.to_json() for s in stats]
    for (_, _, expected), parquet in zip(windows, parquets, strict=True):
        assert_table(parquet, expected)


def test_cache_reuses_unchanged_windows_and_decodes_changed_ones(history, tmp_path, monkeypatch, caplog):
    windows = [(name, tmp_path / raw.name, ref) for name, raw, ref in history["bin"][:3]]
    for (_, copy, _), (_, raw, _) in zip(windows, history["bin"], strict=False):
        copy.write_bytes(raw.read_bytes())
        (tmp_path / (copy.name + ".sha256")).write_text(f"{sha256_file(copy)}  {copy.name}\n")
    out = tmp_path / "normalized"
    decoded: list[Path] = []
    real = normalize._Decoder.run_store

    def spy(self, items, done):
        decoded.extend(item.raw for item in items.values())
        return real(self, items, done)

    monkeypatch.setattr(normalize._Decoder, "run_store", spy)
    with caplog.at_level(logging.INFO):
        first = run_store(windows, out, logging.getLogger("cache"))
    warnings_first = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sorted(decoded) == sorted(raw for _, raw, _ in windows)
    parquets = normalize.read_index(out / "index.json")
    mtimes = {p: Path(p).stat().st_mtime_ns for p in parquets}

    decoded.clear()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        second = run_store(windows, out, logging.getLogger("cache"))
    assert decoded == []  # nothing decoded: every table reused
    assert {p: Path(p).stat().st_mtime_ns for p in parquets} == mtimes
    assert [s.to_json() for s in second] == [s.to_json() for s in first]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == warnings_first

    # One window changes (an event appended, checksum recorded again): only it is decoded again, and
    # its old table is deleted once the new index is written.
    name, changed, _ = windows[1]
    extra = encode.to_record(encode.PumpEvent(279, dt.datetime(2025, 3, 23, 23, 59), 9_999_999, {}))
    changed.write_bytes(changed.read_bytes() + extra)
    (tmp_path / (changed.name + ".sha256")).write_text(f"{sha256_file(changed)}  {changed.name}\n")
    decoded.clear()
    third = run_store(windows, out)
    assert decoded == [changed]
    now = normalize.read_index(out / "index.json")
    assert now[0] == parquets[0] and now[2] == parquets[2] and now[1] != parquets[1]
    assert not Path(parquets[1]).exists() and sorted(p.name for p in out.glob("*.parquet")) == sorted(
        Path(p).name for p in now
    )
    assert third[1].events == first[1].events + 1
    assert_table(now[1], reference_records(changed.read_bytes()))

    # A new decoder version names every table anew: all are decoded again.
    monkeypatch.setattr(normalize, "decoder_version", lambda folder=None: "another-version")
    decoded.clear()
    run_store(windows, out)
    assert sorted(decoded) == sorted(raw for _, raw, _ in windows)
    assert not set(normalize.read_index(out / "index.json")) & set(now)


def test_a_failing_window_leaves_no_index_and_deletes_nothing(history, tmp_path):
    windows = [(name, tmp_path / raw.name, ref) for name, raw, ref in history["json"][:3]]
    for (_, copy, _), (_, raw, _) in zip(windows, history["json"], strict=False):
        copy.write_bytes(raw.read_bytes())
    out = tmp_path / "normalized"
    run_store(windows, out)
    before = sorted(out.glob("*.parquet"))
    (out / "stale.0123456789abcdef.parquet").write_bytes(b"old")  # would be deleted by a successful run
    name, broken, _ = windows[2]
    broken.write_text("<html><body>Service Unavailable</body></html>")
    with pytest.raises(InputError, match=f"window {name}: this is an HTML page"):
        run_store(windows, out)
    assert not (out / "index.json").exists()
    assert set(before) <= set(out.glob("*.parquet")) and (out / "stale.0123456789abcdef.parquet").exists()

    # A raw file that no longer matches its recorded checksum is refused by its raw-store name.
    broken.write_bytes(windows[0][1].read_bytes())
    (tmp_path / (broken.name + ".sha256")).write_text("0" * 64 + f"  {broken.name}\n")
    with pytest.raises(InputError, match="checksum mismatch") as err:
        run_store(windows, out)
    assert str(broken) in str(err.value)
    assert not (out / "index.json").exists()


def test_a_broken_file_among_others_is_named_and_the_others_are_decoded(history, tmp_path):
    # Files are read many per query; one that DuckDB cannot read is then found by reading one at a time.
    windows = [(name, tmp_path / raw.name, ref) for name, raw, ref in history["json"]]
    for (_, copy, _), (_, raw, _) in zip(windows, history["json"], strict=True):
        copy.write_bytes(raw.read_bytes())
    name, broken, _ = windows[1]
    broken.write_text('{"events": [{"eventCode": 279, "sequenceNumber": ')
    out = tmp_path / "normalized"
    with pytest.raises(InputError, match=f"window {name}: not a readable pump-logs response"):
        run_store(windows, out)
    written = {p.name.split(".")[0] for p in out.glob("*.parquet")}
    assert written == {w[0] for w in windows} - {name}
    for other, _, expected in [w for w in windows if w[0] != name]:
        assert_table(str(next(out.glob(f"{other}.*.parquet"))), expected)


@pytest.mark.parametrize(
    ("field", "values"),
    [
        (
            L.Field("x", 0, "u8", "suspend_reason", "enum", "suspend_reason"),
            [0, 1, 2, 3, 6, 7, 255, -1, -2, -7, -8, 10**12],
        ),
        (L.Field("x", 0, "u32", "alert_name", "dict", "ALERTS"), [0, 31, 63, 64, 2**32 - 1, -1, -2, -64, -65]),
        (L.Field("x", 0, "u32", "malfunction_name", "dict", "MALFUNCTIONS"), [0, 5, -1, -3]),
        (
            L.Field("x", 0, "u16", "egv_info", "bits", "egv_info_dexcom"),
            [0, 1, 0b1_1110_0001, 65535, -1, -6, 2**40 + 3],
        ),
        (L.Field("x", 0, "u32", "plgs_status", "bits", "plgs_status"), [0, 2**31, 2**32 - 1, -(2**40)]),
        (L.Field("x", 0, "u8", "pgv_valid", "bool"), [0, 1, 2, -1]),
        (L.Field("x", 0, "u16", "commanded_rate_units_per_hour", divisor=1000), [0, 750, 65535, -3, 2**53 + 1]),
        (L.Field("x", 0, "i8", "rssi_dbm"), [-128, 0, 127, 2**62]),
        (L.Field("x", 0, "f32", "iob_units"), [0.85, 0.1, -0.0, 1e-45, 3.4028234663852886e38, 16777217.0, 1 / 3]),
        # "No value" markers and a valid range (a glucose field: 0 and 65535 are no value, 40-400 valid)
        (
            L.Field("x", 0, "u16", "glucose_mg_dl", valid=(40, 400), missing=(0, 65535)),
            [0, 39, 40, 120, 400, 401, 65535, 65536, -1],
        ),
        (L.Field("x", 0, "u16", "commanded_rate_units_per_hour", divisor=1000, valid=(0, 15)), [0, 15000, 15001]),
        (L.Field("x", 0, "f32", "iob_units", valid=(0, 100)), [float("nan"), -0.5, 0.0, 100.0, 100.5, 2.5]),
        # A bound with a fraction (12.5 U/h): 12.4 and 12.5 in range, 12.6 out
        (L.Field("x", 0, "u16", "commanded_rate_units_per_hour", divisor=10, valid=(0, 12.5)), [124, 125, 126]),
    ],
    ids=lambda v: v.kind + "-" + v.type if isinstance(v, L.Field) else None,
)
def test_vectorised_decoding_matches_the_sql_of_each_field_kind(field, values):
    """The NumPy decoding of raw values (any BIGINT from pump-logs JSON) equals the SQL of decode._decode_expr."""
    con = duckdb.connect()
    kind = np.float64 if field.type == "f32" else np.int64
    raw = np.array(values + [0], dtype=kind)
    valid = np.array([True] * len(values) + [False])
    got = decode.decode_field(field, raw, valid, decode.F32(con)).to_arrow(decode.ARROW_TYPES[field.decoded_type])
    literal = ", ".join(f"('{v!r}'::{'DOUBLE' if field.type == 'f32' else 'BIGINT'})" for v in values)
    sql = f"SELECT CAST({decode._decode_expr(field, 'v')} AS {field.decoded_type}) FROM (VALUES {literal}, (NULL)) t(v)"
    want = [r[0] for r in con.sql(sql).fetchall()]
    assert all(same(a, b) for a, b in zip(got.to_pylist(), want, strict=True)), (got.to_pylist(), want)


def test_float32_values_learnt_over_several_calls_decode_to_their_own_values():
    # One value learnt first, then larger and smaller ones (the cache of decoded values grows
    # between calls): each decodes to the float32 value it holds, exactly.

    f32 = decode.F32(duckdb.connect())
    for batch in ([1.5], [2.25, 1.5], [0.5, 3.0, -4.0, 2.25]):
        values = np.array(batch, dtype=np.float32).astype(np.float64)
        out, ok = f32(values, np.ones(len(values), dtype=bool))
        assert out.tolist() == batch and ok.all()
