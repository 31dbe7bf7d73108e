"""Exports stream a table already in export order, sort one that is not, and copy a full-range
table file that carries its export's metadata; saved-file checksums are remembered between runs."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import itertools
import logging
import random
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from tandem_export import config, database, export, storage  # noqa: E402

LOG = logging.getLogger("test")
UTC = dt.UTC


def _key(row: dict, columns: list[str]):
    """Sort key with NULLs last (DuckDB's default), written out by hand for the test."""
    return tuple((row[c] is None, row[c] if row[c] is not None else 0) for c in columns)


def _rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    base = dt.datetime(2025, 3, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        when = base + dt.timedelta(hours=6, minutes=rng.randrange(0, 20))
        rows.append(
            {
                "timestamp": when,
                "pump_time": when.replace(tzinfo=None) - dt.timedelta(hours=6),
                "pump_serial": rng.choice(["111", "222"]),
                "seq_num": rng.choice([None, *range(5)]),
                "value": i,
            }
        )
    return rows


def _write(rows: list[dict], path: Path, metadata: dict | None = None) -> None:
    schema = pa.schema(
        [
            ("timestamp", pa.timestamp("us", tz="UTC")),
            ("pump_time", pa.timestamp("us")),
            ("pump_serial", pa.string()),
            ("seq_num", pa.int64()),
            ("value", pa.int64()),
        ]
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    if metadata is None:
        # Small row groups: the order check must see across row-group boundaries too.
        pq.write_table(table, path, row_group_size=7)
        return
    # As the table builders write: DuckDB COPY with the export's key-value metadata.
    con = storage.connect()
    con.register("rows", table)
    kv = ", ".join(f"{storage.sql_str(k)}: {storage.sql_str(v)}" for k, v in metadata.items())
    con.sql(f"COPY rows TO {storage.sql_str(str(path))} (FORMAT parquet, COMPRESSION zstd, KV_METADATA {{{kv}}})")
    con.close()


@pytest.mark.parametrize("seed", range(25))
def test_stored_in_order_agrees_with_a_plain_sort(tmp_path, seed):
    columns = ["timestamp", "pump_serial", "seq_num"]
    rows = _rows(40, seed)
    if seed % 2:
        rows.sort(key=functools.partial(_key, columns=columns))
        if seed % 4 == 3:  # one adjacent swap of two rows that differ: no longer in order
            i = next(i for i in range(len(rows) - 1) if _key(rows[i], columns) != _key(rows[i + 1], columns))
            rows[i], rows[i + 1] = rows[i + 1], rows[i]
    path = tmp_path / "t.parquet"
    _write(rows, path)
    want = all(_key(a, columns) <= _key(b, columns) for a, b in itertools.pairwise(rows))
    assert export.stored_in_order(path, columns) is want


def test_nulls_sort_last_and_ties_are_in_order(tmp_path):
    t, p = dt.datetime(2025, 3, 1, tzinfo=UTC), dt.datetime(2025, 3, 1)
    rows = [
        {"timestamp": t, "pump_time": p, "pump_serial": "1", "seq_num": 1, "value": 0},
        {"timestamp": t, "pump_time": p, "pump_serial": "1", "seq_num": 1, "value": 1},  # tie: fine
        {"timestamp": t, "pump_time": p, "pump_serial": "1", "seq_num": None, "value": 2},  # NULL after values
    ]
    path = tmp_path / "t.parquet"
    _write(rows, path)
    assert export.stored_in_order(path, ["timestamp", "pump_serial", "seq_num"])
    _write([rows[2], rows[0]], path)  # NULL before a value: out of order
    assert not export.stored_in_order(path, ["timestamp", "pump_serial", "seq_num"])


def _csv_values(path: Path) -> list[int]:
    with open(path, newline="") as fh:
        return [int(r["value"]) for r in csv.DictReader(fh)]


def test_an_unsorted_table_is_sorted_and_a_sorted_one_streamed(tmp_path):
    columns = ["timestamp", "pump_serial", "seq_num"]
    rows = _rows(200, 7)
    want = [r["value"] for r in sorted(rows, key=functools.partial(_key, columns=columns))]
    shuffled, ordered = tmp_path / "shuffled" / "t.parquet", tmp_path / "ordered" / "t.parquet"
    for path, data in ((shuffled, rows), (ordered, sorted(rows, key=functools.partial(_key, columns=columns)))):
        path.parent.mkdir()
        _write(data, path)
    for path in (shuffled, ordered):
        for fmt in ("csv", "parquet"):
            out = path.parent / f"out.{fmt}"
            export.export_table(str(path), str(out), None, None, "test", LOG)
            got = _csv_values(out) if fmt == "csv" else pq.read_table(out).column("value").to_pylist()
            # Ties on every key may come in either order; compare the keys' order and the rows.
            assert sorted(got) == sorted(want)
            by_value = {r["value"]: r for r in rows}
            keys = [_key(by_value[v], columns) for v in got]
            assert keys == sorted(keys), (path, fmt)


def test_a_full_range_table_with_its_export_metadata_is_copied(tmp_path):
    rows = sorted(_rows(50, 3), key=functools.partial(_key, columns=["timestamp", "pump_serial", "seq_num"]))
    table = tmp_path / "cgm_readings.parquet"
    meta = export.export_metadata("demo (not your data)", "cgm_readings")
    _write(rows, table, meta)
    out = tmp_path / "exports" / "cgm_readings.parquet"
    export.export_table(str(table), str(out), None, None, "demo (not your data)", LOG)
    assert out.read_bytes() == table.read_bytes()
    # Another source label, or a date range: written by COPY, with that export's own metadata.
    export.export_table(str(table), str(out), None, None, "file", LOG)
    assert out.read_bytes() != table.read_bytes()
    assert pq.read_metadata(out).metadata[b"source"] == b"file"
    assert pq.read_table(out).column("value").to_pylist() == [r["value"] for r in rows]
    export.export_table(str(table), str(out), "2025-03-01", "2025-03-01", "demo (not your data)", LOG)
    assert pq.read_metadata(out).metadata[b"start"] == b"2025-03-01"
    assert pq.read_table(out).num_rows == len(rows)  # every row is on 2025-03-01 by the pump's clock
    export.export_table(str(table), str(out), "2025-03-02", None, "demo (not your data)", LOG)
    assert pq.read_table(out).num_rows == 0


def test_database_tables_keep_export_order(tmp_path):
    columns = ["timestamp", "pump_serial", "seq_num"]
    rows = _rows(120, 11)
    table = tmp_path / "cgm_readings.parquet"
    _write(rows, table)  # not in order: the database sorts it
    out = tmp_path / "tandem.duckdb"
    database.export_database({"cgm_readings": str(table)}, str(out), "test", LOG)
    con = duckdb.connect(str(out), read_only=True)
    got = [v for (v,) in con.sql("SELECT value FROM cgm_readings").fetchall()]
    con.close()
    by_value = {r["value"]: r for r in rows}
    keys = [_key(by_value[v], columns) for v in got]
    assert keys == sorted(keys) and sorted(got) == list(range(120))


def test_saved_file_checksums_are_remembered_until_the_file_changes(tmp_path, monkeypatch):
    saved = tmp_path / "saved.json"
    saved.write_text('{"events": []}')
    monkeypatch.chdir(tmp_path)
    reads = []
    real = config.sha256_file
    monkeypatch.setattr(config, "sha256_file", lambda p: reads.append(Path(p).name) or real(p))
    cfg = {"files": [str(saved)], "file_pump_serial": "12345678"}
    first = config._file_entries(cfg, str(tmp_path))
    again = config._file_entries(cfg, str(tmp_path))
    assert reads == ["saved.json"] and first == again
    (window,) = [k[1] for k in first]
    assert window == f"saved-{storage.sha256_file(saved)[:12]}"
    # Edited in place to the same size: the new bytes are hashed and named.
    saved.write_text('{"events":[] }')
    assert saved.stat().st_size == len('{"events": []}')
    changed = config._file_entries(cfg, str(tmp_path))
    assert reads == ["saved.json", "saved.json"]
    assert [k[1] for k in changed] == [f"saved-{storage.sha256_file(saved)[:12]}"] != [window]

    # A file that can no longer be read is refused, cached or not (a permission error is simulated:
    # these tests may run as root, who reads every file).
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(config, "open", denied, raising=False)
    with pytest.raises(config.ConfigError, match="cannot be read"):
        config._file_entries(cfg, str(tmp_path))
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    # A damaged cache is ignored, not trusted.
    (tmp_path / config.DIGEST_CACHE).write_text("{not json")
    assert config._file_entries(cfg, str(tmp_path)) == changed


def test_temporaries_of_a_killed_writer_are_removed_by_the_next_one(tmp_path):
    rows = sorted(_rows(20, 5), key=functools.partial(_key, columns=["timestamp", "pump_serial", "seq_num"]))
    table = tmp_path / "data" / "cgm_readings.parquet"
    table.parent.mkdir()
    _write(rows, table)
    exports = tmp_path / "exports"
    exports.mkdir()
    # What a writer killed outright leaves: its temporary file, or the database's temporary folder.
    (exports / ".cgm_readings.csv.k1ll3d.tmp").write_text("half a file")
    (exports / ".tandem.duckdb.k1ll3d.tmp").mkdir()
    (exports / ".tandem.duckdb.k1ll3d.tmp" / "tandem.duckdb.wal").write_bytes(b"\0" * 100)
    other = exports / ".cgm_readings.parquet.k1ll3d.tmp"  # another target's: left to its own writer
    other.write_text("x")
    export.export_table(str(table), str(exports / "cgm_readings.csv"), None, None, "test", LOG)
    database.export_database({"cgm_readings": str(table)}, str(exports / "tandem.duckdb"), "test", LOG)
    assert sorted(p.name for p in exports.iterdir()) == [other.name, "cgm_readings.csv", "tandem.duckdb"]
