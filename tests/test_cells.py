"""Tables kept as time cells: a build after new data equals a build from nothing, byte for byte.

Each scenario builds a pump history (test_times.History: basal records and the user's clock
changes, with the true instant of each), cuts it into raw windows, builds every table and export
from the first windows, then again after the new windows arrive (in the same folder: the
incremental build), and from nothing with every window (another folder).  The two must hold the
same manifests, the same cell files and the same exports, byte for byte; and a cell that nothing
changed must keep its file.  Cell numbers are hand-computed from the grid: 28-day cells from
2008-01-01 UTC (2025-04-01 = 6300 days later = cell 225).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
from pathlib import Path

import duckdb
import pytest
from tandem_export import cells, database, export, tables
from tandem_export.config import DERIVED_TABLES, TABLES
from tandem_export.normalize import normalize_file
from test_times import History

pytestmark = pytest.mark.fast

LOG = logging.getLogger("test-cells")
SERIAL = "12345678"
ZONE = "America/New_York"
LINEAGE = "lineage-1"


def _cell_of(text: str) -> int:
    con = duckdb.connect()
    return con.sql(f"SELECT {cells.cell_sql('t')} FROM (SELECT TIMESTAMPTZ '{text}' AS t)").fetchall()[0][0]


@pytest.mark.parametrize(
    ("instant", "cell"),
    [
        ("2008-01-01 00:00:00+00", 0),
        ("2008-01-28 23:59:59.999999+00", 0),
        ("2008-01-29 00:00:00+00", 1),
        ("2007-12-31 23:59:59+00", -1),
        ("2007-12-04 00:00:00+00", -1),
        ("2007-12-03 23:59:59+00", -2),
        ("2025-04-01 00:00:00+00", 225),  # 17 years (6210 days) + 90 days = 6300 = 225 * 28
        ("2025-03-31 23:59:59+00", 224),
        ("2025-04-01 03:00:00+05", 224),  # 2025-03-31 22:00 UTC
    ],
)
def test_the_cell_of_an_instant_is_its_28_day_period_from_2008_in_utc(instant, cell):
    assert _cell_of(instant) == cell
    assert cells.cell_label(225) == "2025-04-01" and cells.cell_label(-1) == "2007-12-04"
    assert cells.cell_label(None) == "no-time"


# --- scenarios ------------------------------------------------------------------------------------


def _windows(folder: Path, history: History, cuts: list[tuple[str, int, int]]) -> list[str]:
    """Raw windows of ``history``: (name, first, end) slices of its records, each normalised into a
    file named by its content (as the normaliser's cache names them), in the order given."""
    out = []
    for name, lo, hi in cuts:
        part = copy.copy(history)
        part.records = history.records[lo:hi]
        raw = part.binary()
        key = hashlib.sha256(raw).hexdigest()[:16]
        path = folder / f"{name}.{key}.parquet"
        if not path.exists():
            (folder / f"{name}.{key}.bin").write_bytes(raw)
            normalize_file(folder / f"{name}.{key}.bin", SERIAL, path)
        out.append(str(path))
    return out


def _build(windows: list[str], out: Path) -> list[str]:
    """Every table as cells in ``out``, and every table's full-range CSV and Parquet exports in
    ``out/exports``; returns the events build's log lines."""
    out.mkdir(parents=True, exist_ok=True)
    outputs = {"decoded": str(out / "decoded.parquet")}
    outputs.update({k: str(out / f"{k}.cells.json") for k in ("clock_changes", "events", "raw_events")})
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Keep()
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    try:
        tables.build_events(windows, outputs, ZONE, "recorded_changes", LOG, "demo", 1, LINEAGE)
        derived = {name: str(out / f"{name}.cells.json") for name in DERIVED_TABLES}
        tables.build_tables(windows, outputs["decoded"], derived, LOG, "demo", 2, LINEAGE)
        for name in TABLES:
            for fmt in ("csv", "parquet"):
                export.export_table(
                    str(out / f"{name}.cells.json"), str(out / "exports" / f"{name}.{fmt}"), None, None, "demo", LOG
                )
        database.export_database(
            {n: str(out / f"{n}.cells.json") for n in TABLES}, str(out / "tandem.duckdb"), "demo", LOG
        )
    finally:
        LOG.removeHandler(handler)
    return lines


def _snapshot(out: Path) -> dict[str, bytes]:
    """The manifests, the files they list and the exports of a build: relative path -> bytes."""
    files = {}
    for name in TABLES:
        manifest = out / f"{name}.cells.json"
        files[manifest.name] = manifest.read_bytes()
        for path in cells.files(manifest):
            files[str(Path(path).relative_to(out))] = Path(path).read_bytes()
    for path in sorted((out / "exports").iterdir()):
        files[f"exports/{path.name}"] = path.read_bytes()
    files["tandem.duckdb"] = _database_dump(out / "tandem.duckdb")
    return files


def _database_dump(path: Path) -> bytes:
    """Every table of a database (bookkeeping included): its columns and types, then its rows in the
    order ``SELECT *`` returns them (DuckDB stamps each new file with a random id, so not its bytes)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = []
        for (name,) in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall():
            out.append(repr((name, con.execute(f'DESCRIBE "{name}"').fetchall())))
            out.extend(repr(row) for row in con.execute(f'SELECT * FROM "{name}"').fetchall())
        return "\n".join(out).encode()
    finally:
        con.close()


def _cell_files(out: Path, table: str) -> dict[str, tuple[int, int]]:
    """Cell file name -> (inode, modification time in ns) of a table's cells."""
    return {
        c["file"]: (
            os.stat(cells.folder(out / f"{table}.cells.json") / c["file"]).st_ino,
            os.stat(cells.folder(out / f"{table}.cells.json") / c["file"]).st_mtime_ns,
        )
        for c in cells.read_manifest(out / f"{table}.cells.json")["cells"]
    }


def _assert_incremental_equals_scratch(tmp_path, history, before, after) -> tuple[Path, list[str]]:
    raw = tmp_path / "raw"
    raw.mkdir(parents=True)
    inc = tmp_path / "incremental"
    _build(_windows(raw, history, before), inc)
    lines = _build(_windows(raw, history, after), inc)
    scratch = tmp_path / "scratch"
    _build(_windows(raw, history, after), scratch)
    a, b = _snapshot(inc), _snapshot(scratch)
    assert sorted(a) == sorted(b)
    for path in a:
        assert a[path] == b[path], path
    return inc, lines


def _daily(days: int, start: str = "2025-01-02 08:00", true: str = "2025-01-02 13:00") -> History:
    """A pump that logs a basal record every 4 hours for ``days`` days (EST, never changed).  From
    2025-01-02: cells 221 (from 2024-12-10), 222 (2025-01-07), 223 (2025-02-04), 224 (2025-03-04)."""
    h = History(start, true)
    for _ in range(days * 6):
        h.tick(1).quiet(hours=3, minutes=55)
    return h


def _grid_cuts(h: History, upto: int | None = None) -> list[tuple[str, int, int]]:
    """The records (the first ``upto``) cut into windows at every 28th day of the wall clock."""
    records = h.records[:upto]
    cuts, lo = [], 0
    for i in range(1, len(records) + 1):
        if i == len(records) or (records[i][2].date() - records[lo][2].date()).days >= 28:
            cuts.append((f"w{len(cuts)}", lo, i))
            lo = i
    return cuts


def test_a_new_day_rewrites_only_the_last_cell(tmp_path):
    # 2025-04-02 .. 2025-06-30, EDT all along: cells 225 (2025-04-01), 226, 227, 228 (2025-06-24).
    h = _daily(90, "2025-04-02 08:00", "2025-04-02 12:00")
    n = len(h.records)
    raw = tmp_path / "raw"
    raw.mkdir()
    inc = tmp_path / "incremental"
    _build(_windows(raw, h, _grid_cuts(h, n - 6)), inc)
    kept = {t: _cell_files(inc, t) for t in ("events", "raw_events", "basal_deliveries")}
    lines = _build(_windows(raw, h, _grid_cuts(h)), inc)
    assert "4 cell(s) of 28 days; written again: events 1, raw_events 1" in lines
    # The database was updated in place: the last cell of each event table deleted and inserted.
    assert "events: 1 of 4 cell(s) written again" in lines and "raw_events: 1 of 4 cell(s) written again" in lines
    assert any(line.endswith("tables updated in place -> " + str(inc / "tandem.duckdb")) for line in lines), lines
    for table, before in kept.items():
        now = _cell_files(inc, table)
        assert [c["cell"] for c in cells.read_manifest(inc / f"{table}.cells.json")["cells"]] == [225, 226, 227, 228]
        unchanged = {f: v for f, v in now.items() if f in before}
        assert len(unchanged) == 3, table  # the first three cells kept their files (not rewritten)
        assert all(before[f] == v for f, v in unchanged.items()), table
    scratch = tmp_path / "scratch"
    _build(_windows(raw, h, _grid_cuts(h)), scratch)
    a, b = _snapshot(inc), _snapshot(scratch)
    assert a == b


def test_a_summer_time_change_by_hand_on_the_new_day(tmp_path):
    h = _daily(65)  # to 2025-03-08 08:00 EST
    h.quiet(hours=14).tick(2)  # 2025-03-09 02:00 .. 02:05 EST
    h.set_time("03:05").tick(6)  # the user moves the clock to summer time (EDT)
    n = len(h.records)
    _assert_incremental_equals_scratch(tmp_path, h, _grid_cuts(h, n - 9), _grid_cuts(h))


def test_a_reset_corrected_in_a_later_upload(tmp_path):
    h = _daily(40)
    h.tick(3).restart(after_minutes=120).tick(12)  # records dated 2008: no time until corrected
    uncorrected = len(h.records)
    h.set_date("2025-02-11").set_time("14:00").tick(12)
    inc, _ = _assert_incremental_equals_scratch(
        tmp_path, h, [("a", 0, uncorrected)], [("a", 0, uncorrected), ("b", uncorrected, len(h.records))]
    )
    # The records dated 2008 were first placed in 2008 (cell 0); once corrected they moved to 2025.
    first = tmp_path / "first"
    _build(_windows(tmp_path / "raw", h, [("a", 0, uncorrected)]), first)
    assert [c["cell"] for c in cells.read_manifest(first / "events.cells.json")["cells"]] == [0, 221, 222, 223]
    assert [c["cell"] for c in cells.read_manifest(inc / "events.cells.json")["cells"]] == [221, 222, 223]


def test_a_late_upload_fills_an_old_window(tmp_path):
    h = _daily(80)
    cuts = _grid_cuts(h)
    name, lo, hi = cuts[0]
    gap = [(name, lo, lo + 20), *cuts[1:]]  # the first window first came with 20 of its records
    inc, lines = _assert_incremental_equals_scratch(tmp_path, h, gap, cuts)
    # The first window's days are in cells 221 (to 2025-01-06) and 222: those two only are written.
    assert "4 cell(s) of 28 days; written again: events 2, raw_events 2" in lines, lines
    # In the database every cell from the first changed one on is written again, to keep its order.
    assert "events: 4 of 4 cell(s) written again" in lines, lines


def test_a_duplicate_arriving_in_a_new_window(tmp_path):
    h = _daily(60)
    cuts = _grid_cuts(h)
    last, lo, hi = cuts[-1]
    again = [*cuts, ("extra", lo + 5, hi)]  # a new window repeating records already in the last one
    _assert_incremental_equals_scratch(tmp_path, h, cuts, again)
    # ... and the other way round: the repeated records come first, in a window listed before.
    _assert_incremental_equals_scratch(tmp_path / "2", h, cuts, [("extra", lo + 5, hi), *cuts])


def test_a_changed_lineage_rewrites_every_cell(tmp_path):
    h = _daily(60)
    raw = tmp_path / "raw"
    raw.mkdir()
    windows = _windows(raw, h, _grid_cuts(h))
    _build(windows, tmp_path / "t")
    before = _cell_files(tmp_path / "t", "events")
    outputs = {"decoded": str(tmp_path / "t" / "decoded.parquet"), "events": str(tmp_path / "t" / "events.cells.json")}
    tables.build_event_tables(windows, outputs["decoded"], {"events": outputs["events"]}, None, 1, "lineage-2", LOG)
    after = _cell_files(tmp_path / "t", "events")
    assert not set(before) & set(after) and len(after) == len(before) == 3


# --- cells against the single-file tables ---------------------------------------------------------


def test_cells_hold_the_rows_of_the_single_file_tables_in_export_order(tmp_path):
    h = _daily(60)
    h.tick(3).restart(after_minutes=120).tick(12)  # a reset never corrected: rows without a reliable time
    raw = tmp_path / "raw"
    raw.mkdir()
    windows = _windows(raw, h, _grid_cuts(h))
    _build(windows, tmp_path / "cells")
    whole = tmp_path / "whole"
    whole.mkdir()
    outputs = {k: str(whole / f"{k}.parquet") for k in ("decoded", "events", "raw_events", "clock_changes")}
    tables.build_events(windows, outputs, ZONE, "recorded_changes", LOG, "demo", 1)
    derived = {name: str(whole / f"{name}.parquet") for name in DERIVED_TABLES}
    tables.build_tables(windows, outputs["decoded"], derived, LOG, "demo", 1)
    for name in TABLES:
        for fmt in ("csv", "parquet"):
            single = str(whole / f"{name}.{fmt}")
            export.export_table(str(whole / f"{name}.parquet"), single, None, None, "demo", LOG)
            from_cells = tmp_path / "cells" / "exports" / f"{name}.{fmt}"
            if fmt == "csv":
                assert from_cells.read_bytes() == Path(single).read_bytes(), name
            else:
                con = duckdb.connect()
                rows = [con.sql(f"SELECT * FROM read_parquet('{p}')").fetchall() for p in (single, from_cells)]
                assert rows[0] == rows[1], name
                meta = [
                    con.sql(f"SELECT key, value FROM parquet_kv_metadata('{p}')").fetchall()
                    for p in (single, from_cells)
                ]
                assert meta[0] == meta[1], name
        for start, end in [("2025-01-20", "2025-02-10"), ("2025-02-01", None), (None, "2025-01-02")]:
            a, b = tmp_path / f"a_{name}.csv", tmp_path / f"b_{name}.csv"
            export.export_table(str(whole / f"{name}.parquet"), str(a), start, end, "demo", LOG)
            export.export_table(str(tmp_path / "cells" / f"{name}.cells.json"), str(b), start, end, "demo", LOG)
            assert a.read_bytes() == b.read_bytes(), (name, start, end)
    events = cells.read_manifest(tmp_path / "cells" / "events.cells.json")["cells"]
    # The records dated 2008 are placed in 2008 (their time not reliable): cell 0.
    assert [c["cell"] for c in events] == [0, 221, 222, 223]
    assert events[0]["rows"] == 12 and events[0]["pump_time_min"] == "2008-01-01 00:00:00"


# --- manifests read back --------------------------------------------------------------------------


def _manifest(tmp_path) -> Path:
    h = _daily(30)
    raw = tmp_path / "raw"
    raw.mkdir()
    _build(_windows(raw, h, _grid_cuts(h)), tmp_path / "t")
    return tmp_path / "t" / "events.cells.json"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["cells"][0].update(file="../../../etc/passwd"), "is not that of cell"),
        (
            lambda m: m["cells"][0].update(file="2024-12-10.0000000000000000.parquet"),
            "is not the file's sha-256 digest",
        ),
        (lambda m: m["cells"][0].update(rows=0), "is not a count from 1"),
        (lambda m: m["cells"][0].update(rows=True), "is not a count from 1"),
        (lambda m: m["cells"][0].update(cell="219"), "is not an integer in range"),
        (lambda m: m["cells"].reverse(), "not in grid order"),
        (lambda m: m["cells"][0].update(pump_time_min="yesterday"), "is not a 'YYYY-MM-DD HH:MM:SS' time"),
        (lambda m: m["cells"][0].update(extra=1), "six cell fields"),
        (lambda m: m.update(schema="../schema.parquet"), "schema file"),
        (lambda m: m.update(table="events; DROP"), "table name"),
        (lambda m: m.update(format="other"), "not a cells manifest"),
        (lambda m: m.update(cells={}), "'cells' is not a list"),
    ],
)
def test_a_tampered_manifest_is_refused_with_what_to_do(tmp_path, change, message):
    path = _manifest(tmp_path)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message) as err:
        cells.files(path)
    assert "remove it and run again" in str(err.value)
    # A build reading it starts from nothing instead, and removes no file outside the table's folder.
    outside = tmp_path / "t" / "keep.txt"
    outside.write_text("x")
    store = cells.CellStore(path, "events", LINEAGE)
    assert store.previous == {} and outside.exists()


def test_a_missing_cell_file_is_named(tmp_path):
    path = _manifest(tmp_path)
    first = cells.read_manifest(path)["cells"][0]["file"]
    (cells.folder(path) / first).unlink()
    with pytest.raises(ValueError, match=f"cell file\\(s\\) missing \\({first}\\)"):
        cells.files(path)
    store = cells.CellStore(path, "events", LINEAGE)
    assert None not in store.previous and 219 not in store.previous and len(store.previous) == 1


def test_files_no_manifest_lists_are_removed_by_the_next_build(tmp_path):
    path = _manifest(tmp_path)
    folder = cells.folder(path)
    stray = [folder / "2020-01-01.0123456789abcdef.parquet", folder / "schema.0123456789abcdef.parquet"]
    for p in stray:
        p.write_bytes(b"left by a failed build")
    other = folder / "notes.txt"
    other.write_text("not ours")
    cells.CellStore(path, "events", LINEAGE)
    assert not any(p.exists() for p in stray) and other.exists()
    assert all(Path(f).exists() for f in cells.files(path))
