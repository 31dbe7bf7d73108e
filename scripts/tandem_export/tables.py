"""Table building: union of the normalised windows, then one SQL file per analysis table.

The events build reads only the narrow keys of every window (identity, record type, pump time,
clock-change sizes), de-duplicates and places every event in time with numpy, and writes a narrow
*placement* table as the ``decoded`` output: one row per kept event, in event order, naming the
window and the row of the window that holds it, with its UTC offset and reliability.  The wide
decoded rows are never written.  ``events`` and ``raw_events`` are streamed from the windows, and
every derived table reads the view ``decoded`` (:func:`decoded_view`): the windows with the
placement applied, so each reads only the columns its SQL uses.  The placement is applied as a
few expressions of the window and row number when it changes only at few rows (the usual history:
disjoint windows, a clock change now and then), else by joining the windows to the placement
table (see :func:`_placed_view_sql`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from . import cells, decode, export, times
from .storage import atomic_path, connect, sql_str

#: Columns of raw_events and events, before ``data`` / ``properties`` / ``record``.
EVENT_KEY_COLUMNS = "pump_serial, sequence_group, seq_num, event_id, event_name, pump_time, timestamp, origin"

#: The placement table (the ``decoded`` output of :func:`place_events`), one row per kept event in
#: event order (pump_serial, sequence_group NULLS FIRST, seq_num): the window (position in the
#: window list), the row in that window's file (0-based), pump clock minus UTC, and whether the
#: time model could place the event; and the time cell of its instant (:mod:`tandem_export.cells`;
#: NO_TIME_CELL for an event without a pump time).
PLACEMENT_COLUMNS = {
    "window_index": "INTEGER",
    "file_row_number": "BIGINT",
    "utc_offset_seconds": "BIGINT",
    "time_reliable": "BOOLEAN",
    "cell": "BIGINT",
}
#: numpy types of the placement columns.
_PLACEMENT_DTYPES = {
    "window_index": np.int32,
    "file_row_number": np.int64,
    "utc_offset_seconds": np.int64,
    "time_reliable": np.bool_,
    "cell": np.int64,
}
#: The placement's ``cell`` of an event without a pump time (the cells' NO_TIME cell, last).
NO_TIME_CELL = np.iinfo(np.int64).max
#: Parquet key-value metadata of the placement table: the windows it indexes.
WINDOWS_KEY = "tandem_export.windows"
#: ... and whether DuckDB scanned those windows in list and row order when it was built ("true" or
#: "false"; the event tables trust that order only if so).
SCAN_ORDER_KEY = "tandem_export.scan_in_order"

_EPOCH_SQL = f"TIMESTAMP '{times.EPOCH:%Y-%m-%d %H:%M:%S}'"


def _metadata(source: str | None, table: str) -> dict[str, str] | None:
    """A table file's key-value metadata: that of its full-range export when the source is known."""
    return None if source is None else export.export_metadata(source, table)


def _write_parquet(con, select: str, path: str, metadata: dict[str, str] | None = None) -> int:
    """COPY ``select`` to ``path`` atomically (zstd); returns the number of rows written."""
    kv = ""
    if metadata:
        kv = ", KV_METADATA {" + ", ".join(f"{sql_str(k)}: {sql_str(v)}" for k, v in metadata.items()) + "}"
    with atomic_path(path) as tmp:
        rows = con.execute(f"COPY ({select}) TO {sql_str(str(tmp))} (FORMAT parquet, COMPRESSION zstd{kv})").fetchall()
    return int(rows[0][0]) if rows else 0


def _session(con, spill_beside: str, threads: int = 2, memory: str = "1GB") -> Path:
    """Threads, a memory limit, and a spill directory beside the outputs (removed by the caller)."""
    parent = Path(spill_beside).parent
    parent.mkdir(parents=True, exist_ok=True)
    spill = Path(tempfile.mkdtemp(prefix=".duckdb-spill-", dir=parent))
    con.sql(f"SET threads = {threads}")
    con.sql(f"SET memory_limit = {sql_str(memory)}")
    con.sql(f"SET temp_directory = {sql_str(str(spill))}")
    con.sql("SET parquet_metadata_cache = true")
    return spill


#: Memory of the writers of one job together (each of ``n`` writers gets 1/n; see :class:`_Writer`).
WRITERS_MEMORY_MB = 768


class _Writer:
    """A DuckDB database of its own that runs one statement at a time on one thread.

    Every Parquet file is written by a single-threaded writer: with more threads, where DuckDB cuts
    the row groups of a file depends on which thread finishes a batch first, so a rerun could
    write the same rows in other bytes.  Several writers can run at once (on Python threads; DuckDB
    releases the GIL) to use several cores.  ``setup(con)`` creates the views the writer reads;
    ``memory_mb`` bounds what it holds (sorts spill to disk beyond it).
    """

    def __init__(self, spill_beside: str, setup, memory_mb: int) -> None:
        self.con = connect()
        try:
            self.spill = _session(self.con, spill_beside, threads=1, memory=f"{memory_mb}MB")
            setup(self.con)
        except BaseException:
            self.con.close()
            raise

    def close(self) -> None:
        self.con.close()
        shutil.rmtree(self.spill, ignore_errors=True)


@contextlib.contextmanager
def _writers(count: int, spill_beside: str, setup) -> Iterator[list[_Writer]]:
    """``count`` writers sharing :data:`WRITERS_MEMORY_MB`, closed (and their spill directories
    removed) on the way out."""
    writers: list[_Writer] = []
    try:
        for _ in range(count):
            writers.append(_Writer(spill_beside, setup, WRITERS_MEMORY_MB // count))
        yield writers
    finally:
        for writer in writers:
            writer.close()


def _run_concurrently(writers: list[_Writer], jobs: list, run) -> None:
    """Run ``run(writer, job)`` for every job, each writer taking the next job that is ready.

    ``jobs`` are (job, needs) pairs in order of preference; a job waits until the jobs it needs
    are done.  The first error stops the remaining jobs and is raised; jobs that wait for jobs
    never run (a cycle, or a job not listed) raise ValueError naming them instead of waiting forever.
    """
    pending = list(jobs)
    done: set = set()
    errors: list[BaseException] = []
    running = [0]  # jobs started and not finished
    ready = threading.Condition()

    def work(writer: _Writer) -> None:
        while True:
            with ready:
                while True:
                    if errors or not pending:
                        return
                    job = next((j for j in pending if set(j[1]) <= done), None)
                    if job is not None:
                        pending.remove(job)
                        running[0] += 1
                        break
                    if not running[0]:  # nothing can finish: what is left waits forever
                        names = ", ".join(str(j[0]) for j in pending)
                        errors.append(ValueError(f"{names}: wait(s) for tables that are never built"))
                        ready.notify_all()
                        return
                    ready.wait()
            try:
                run(writer, job[0])
            except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                with ready:
                    running[0] -= 1
                    errors.append(exc)
                    ready.notify_all()
                return
            with ready:
                running[0] -= 1
                done.add(job[0])
                ready.notify_all()

    threads = [threading.Thread(target=work, args=(w,)) for w in writers[1:]]
    for t in threads:
        t.start()
    try:
        work(writers[0])
    finally:
        for t in threads:
            t.join()
    if errors:
        raise errors[0]


def _files(windows: list[str]) -> str:
    return "[" + ", ".join(sql_str(str(w)) for w in windows) + "]"


def _create_windows_view(con, windows: list[str], present: set[str] | None = None) -> set[str]:
    """View ``windows``: every normalised column in the fixed order (absent ones as typed NULLs,
    see :func:`decode.full_select`), plus ``window_index`` (position in the list) and ``file_row_number``.

    Each window holds only the columns of the event types it has; they are united by name.
    Returns the set of columns present in at least one window.
    """
    if windows:
        source = f"read_parquet({_files(windows)}, union_by_name := true)"
        if present is None:
            present = {row[0] for row in con.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        con.sql(
            f"CREATE OR REPLACE TEMP VIEW windows AS SELECT {decode.full_select(present)},"
            f" CAST(file_index AS INTEGER) AS window_index, file_row_number FROM {source}"
        )
    else:
        present = set()
        con.sql(
            f"CREATE OR REPLACE TEMP VIEW windows AS SELECT {decode.full_select(present)},"
            " NULL::INTEGER AS window_index, NULL::BIGINT AS file_row_number WHERE false"
        )
    return present


def _window_fingerprint(con, windows: list[str]) -> list[list]:
    """[path, rows, bytes] of every window, in list order (from the Parquet footers)."""
    if not windows:
        return []
    listed = con.sql(f"SELECT file_name, num_rows FROM parquet_file_metadata({_files(windows)})").fetchall()
    if [name for name, _ in listed] != windows:
        raise ValueError("the Parquet footers of the windows did not come back in list order")
    return [[w, int(rows), os.path.getsize(w)] for w, (_, rows) in zip(windows, listed, strict=True)]


# --- events ---------------------------------------------------------------------------------------


def build_events(
    windows: list[str],
    outputs: dict[str, str],
    timezone: str,
    pump_clock: str,
    log: logging.Logger,
    source: str | None = None,
    writers: int = 2,
    lineage: str | None = None,
) -> None:
    """:func:`place_events`, then :func:`build_event_tables` from the placement table it wrote.

    ``outputs`` maps ``decoded`` and ``clock_changes`` (see :func:`place_events`) and, optionally,
    ``events`` and ``raw_events`` (see :func:`build_event_tables`) to Parquet paths (or, for the
    tables, cells manifests: then ``lineage`` is needed).
    """
    place_events(windows, outputs, timezone, pump_clock, log, source, lineage)
    tables = {k: outputs[k] for k in EVENT_TABLES if k in outputs}
    if tables:
        build_event_tables(windows, outputs["decoded"], tables, source, writers, lineage, log)


#: The tables with a row per kept event that :func:`build_event_tables` writes.
EVENT_TABLES = ("events", "raw_events")


def place_events(
    windows: list[str],
    outputs: dict[str, str],
    timezone: str,
    pump_clock: str,
    log: logging.Logger,
    source: str | None = None,
    lineage: str | None = None,
) -> None:
    """Union every normalised window, keep one row per event identity, and place every event in time.

    Identity: (pump_serial, sequence_group, seq_num).  When windows overlap, the row from the
    first window in file order is kept; rows whose contents differ for the same identity are
    counted in the log.  An event saved in both forms (26-byte records carry no sequence group)
    is recognised by (pump_serial, seq_num, event_id, pump_time) and kept once, as pump-logs.
    Times: :mod:`tandem_export.times` (model ``pump_clock``, anchor zone ``timezone``).

    ``outputs`` maps ``decoded`` (the placement table, :data:`PLACEMENT_COLUMNS`, one row per kept
    event in order of (pump_serial, sequence_group, seq_num); the derived tables read it through
    :func:`decoded_view`, the event tables through :func:`build_event_tables`) and
    ``clock_changes`` (ordered by time) to Parquet paths.  With ``source`` (the data's label),
    clock_changes carries the key-value metadata of its full-range export
    (:func:`tandem_export.export.export_metadata`).
    """
    windows = [str(w) for w in windows]
    con = connect()
    spill = _session(con, outputs["decoded"])
    try:
        present = _create_windows_view(con, windows)
        fingerprint = _window_fingerprint(con, windows)
        total = sum(f[1] for f in fingerprint)
        keys, serial_names, scan_in_order = _read_keys(con, present, total)
        kept, duplicated = _deduplicate(keys)
        log.info(
            "%d events from %d window(s); %d after de-duplication",
            total,
            len(windows),
            total if kept is None else len(kept),
        )
        conflicts, pairs = _count_conflicts(con, keys, duplicated)
        if conflicts:
            shown = "; ".join(
                f"{n} of {_window_name(windows[a])} kept over {_window_name(windows[b])}" for a, b, n in pairs[:3]
            )
            more = f" (and {len(pairs) - 3} more pairs of windows)" if len(pairs) > 3 else ""
            log.warning(
                "%d event identities appear with different contents in different windows; the window listed first "
                "was kept: %s%s",
                conflicts,
                shown,
                more,
            )
        offset, reliable, changes = _place_in_time(keys, kept, serial_names, timezone, pump_clock, log)

        placement = {
            "window_index": _take(keys["window"], kept),
            "file_row_number": _take(keys["row"], kept),
            "utc_offset_seconds": offset,
            "time_reliable": reliable,
            "cell": _cells_of(_take(keys["pump_us"], kept), offset),
        }
        change_offsets = _change_offsets(keys, kept, offset, changes)
        del keys, kept, offset, reliable
        # Every Parquet file is written single-threaded (see _Writer).
        con.sql("SET threads = 1")
        con.register("placement_rows", placement)
        _write_parquet(
            con,
            "SELECT "
            + ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in PLACEMENT_COLUMNS.items())
            + " FROM placement_rows",
            outputs["decoded"],
            {WINDOWS_KEY: json.dumps(fingerprint), SCAN_ORDER_KEY: json.dumps(scan_in_order)},
        )
        con.unregister("placement_rows")
        _write_clock_changes(
            con,
            changes,
            change_offsets,
            serial_names,
            outputs["clock_changes"],
            _metadata(source, "clock_changes"),
            lineage,
        )
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def build_event_tables(
    windows: list[str],
    decoded: str,
    outputs: dict[str, str],
    source: str | None = None,
    writers: int = 2,
    lineage: str | None = None,
    log: logging.Logger | None = None,
) -> dict[str, int]:
    """events and raw_events: every event the placement table ``decoded`` (:func:`place_events`)
    keeps, in its order (pump_serial, sequence_group, seq_num), with its time.

    ``outputs`` maps ``events`` (the key columns, :data:`EVENT_KEY_COLUMNS`, ``utc_offset_minutes``,
    ``time_reliable`` and ``data``, a JSON object of the decoded fields) and/or ``raw_events`` (the
    key columns with the raw ``properties`` / ``record``) to Parquet paths.  ``writers``
    single-threaded writers (:class:`_Writer`, at least one) write them; the bytes do not depend on
    their number.  With ``source``, each carries the key-value metadata of its full-range export.
    The windows must be those the placement table was built from, else ValueError.  Returns the
    rows written to each table.

    Paths ending ``.cells.json`` keep the tables as time cells instead (:mod:`tandem_export.cells`,
    :func:`_write_event_cells`): only the cells whose events or placement changed since the
    manifests there were written (with the same ``lineage``) are written again.
    """
    unknown = sorted(set(outputs) - set(EVENT_TABLES))
    if unknown:
        raise ValueError(f"not an event table: {', '.join(unknown)}")
    windows = [str(w) for w in windows]
    con = connect()
    spill = _session(con, decoded)
    try:
        fingerprint, placement, meta = _read_placement(con, windows, decoded)
        present = _create_windows_view(con, windows)
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    scan_in_order = json.loads(meta.get(SCAN_ORDER_KEY, "false")) is True
    if all(cells.is_manifest(p) for p in outputs.values()):
        if lineage is None:
            raise ValueError("event tables kept as cells need the lineage they are built with")
        return _write_event_cells(windows, fingerprint, placement, outputs, lineage, writers, log)
    if any(cells.is_manifest(p) for p in outputs.values()):
        raise ValueError("events and raw_events are either both cells or both single files")
    return _write_event_tables(
        windows, present, [f[1] for f in fingerprint], placement, outputs, scan_in_order, source, writers
    )


#: The narrow keys read from every window row: name -> numpy dtype.
_KEY_DTYPES = {
    "window": np.int32,
    "row": np.int64,
    "serial": np.int32,
    "group": np.int64,
    "group_set": np.bool_,
    "seq": np.int64,
    "event_id": np.int32,
    "pump_us": np.int64,
    "pumplogs": np.bool_,
    "wall_s": np.int64,
    "change_s": np.int64,
}


def _numpy(array: pa.Array, dtype) -> np.ndarray:
    """A pyarrow array without NULLs as numpy, read from its buffers (pyarrow's own conversions
    import pandas, a third of a second)."""
    if array.null_count:
        raise ValueError("unexpected NULL in a key column")
    n, offset, data = len(array), array.offset, array.buffers()[1]
    if pa.types.is_boolean(array.type):
        bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), count=offset + n, bitorder="little")
        return bits[offset:].view(np.bool_)
    dtype = np.dtype(dtype)
    if array.type.bit_width != dtype.itemsize * 8:
        raise TypeError(f"{array.type} read as {dtype}")
    return np.frombuffer(data, dtype=dtype, count=n, offset=offset * dtype.itemsize)


def _fetch_numpy(relation, dtypes: dict, total: int) -> dict[str, np.ndarray]:
    """The ``total`` rows of a DuckDB relation (columns named as ``dtypes``, no NULLs) as numpy
    arrays, streamed in batches into arrays allocated once."""
    out = {name: np.empty(total, dtype=dtype) for name, dtype in dtypes.items()}
    at = 0
    for batch in relation.to_arrow_reader(1 << 20):
        m = batch.num_rows
        if at + m > total:
            raise ValueError("more rows than the Parquet footers say")
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            out[name][at : at + m] = _numpy(column, dtypes[name])
        at += m
    if at != total:
        raise ValueError("fewer rows than the Parquet footers say")
    return out


def _read_keys(con, present: set[str], total: int) -> tuple[dict[str, np.ndarray], list[str | None], bool]:
    """The narrow keys of all ``total`` window rows, in window order then row order, as numpy arrays
    (streamed batch by batch into arrays of :data:`_KEY_DTYPES`); the serials by rank; and whether
    the scan returned the rows in that order.

    ``serial`` holds the rank of pump_serial in sort order (NULL last); ``serial_names`` maps a
    rank back to the serial.  ``group`` / ``group_set``: sequence_group, 0 / False where NULL.
    NULL seq_num, event_id or pump_time (never written by the normaliser) read as the largest
    value: last in order, and one group.
    """
    change = "CAST(NULL AS BIGINT)"
    if {"time_after_ms", "time_prior_ms"} <= present:
        change = "CASE WHEN event_id = 13 THEN round((time_after_ms - time_prior_ms) / 1000) END"
    if {"date_after_days", "date_prior_days"} <= present:
        change = f"coalesce({change}, CASE WHEN event_id = 14 THEN (date_after_days - date_prior_days) * 86400 END)"
    # Serials in sort order (VARCHAR order is code point order); each row gets its serial's rank.
    names: list[str | None] = sorted(
        row[0] for row in con.sql("SELECT DISTINCT pump_serial FROM windows WHERE pump_serial IS NOT NULL").fetchall()
    )
    rank = "0"
    if names:
        members = ", ".join(sql_str(name) for name in names)
        rank = f"coalesce(CAST(enum_code(CAST(pump_serial AS ENUM({members}))) AS INTEGER), {len(names)})"
    names.append(None)
    big = np.iinfo(np.int64).max
    reader = con.sql(f"""
        SELECT CAST(window_index AS INTEGER) AS "window", CAST(file_row_number AS BIGINT) AS "row",
               CAST({rank} AS INTEGER) AS serial, CAST(coalesce(sequence_group, 0) AS BIGINT) AS "group",
               sequence_group IS NOT NULL AS group_set, CAST(coalesce(seq_num, {big}) AS BIGINT) AS seq,
               CAST(coalesce(event_id, {np.iinfo(np.int32).max}) AS INTEGER) AS event_id,
               coalesce(epoch_us(pump_time), {big}) AS pump_us, coalesce(origin = 'pump-logs', false) AS pumplogs,
               coalesce(CAST(epoch(pump_time) - epoch({_EPOCH_SQL}) AS BIGINT), 0) AS wall_s,
               CAST(coalesce({change}, 0) AS BIGINT) AS change_s
        FROM windows""")
    keys = _fetch_numpy(reader, _KEY_DTYPES, total)
    # The scan returns the windows in list order and each file in row order (insertion order is
    # preserved); should it ever not, sort here, and do not trust that order when writing.
    scan_in_order = _increasing([keys["window"], keys["row"]], strict=True)
    if not scan_in_order:
        order = np.lexsort((keys["row"], keys["window"]))
        keys = {k: v[order] for k, v in keys.items()}
    return keys, names, scan_in_order


def _increasing(columns: list[np.ndarray], strict: bool) -> bool:
    """Whether the rows (tuples of ``columns``, most significant first) are in ascending order."""
    n = len(columns[0])
    if n < 2:
        return True
    tied = np.ones(n - 1, dtype=bool)  # pairs equal on every column so far
    for col in columns:
        a, b = col[:-1], col[1:]
        if np.any(tied & (b < a)):
            return False
        tied &= b == a
    return not (strict and tied.any())


def _identity(keys: dict[str, np.ndarray], idx: np.ndarray | None = None) -> list[np.ndarray]:
    """Identity columns in event order: pump_serial, sequence_group NULLS FIRST, seq_num."""
    cols = [keys["serial"], keys["group_set"].astype(np.int8), keys["group"], keys["seq"]]
    return cols if idx is None else [c[idx] for c in cols]


def _runs(sorted_cols: list[np.ndarray]) -> np.ndarray:
    """Boolean array: True where a row starts a new run of equal tuples."""
    n = len(sorted_cols[0])
    start = np.ones(n, dtype=bool)
    if n > 1:
        same = np.ones(n - 1, dtype=bool)
        for col in sorted_cols:
            same &= col[1:] == col[:-1]
        start[1:] = ~same
    return start


def _take(values: np.ndarray, kept: np.ndarray | None) -> np.ndarray:
    """``values`` of the kept rows (``kept`` None: every row, in window order)."""
    return values if kept is None else values[kept]


def _deduplicate(keys: dict[str, np.ndarray]) -> tuple[np.ndarray | None, tuple[np.ndarray, np.ndarray]]:
    """Indices of the rows kept, in event order (None: every row, window order being event order);
    and the rows of identities seen more than once with an identity number each (for counting
    conflicts).

    1. One row per identity (pump_serial, sequence_group, seq_num): the first in window order.
    2. Then one per (pump_serial, seq_num, event_id, pump_time): pump-logs first, then window order.
    """
    empty = (np.array([], np.int64), np.array([], np.int64))
    if _increasing(_identity(keys), strict=True):
        # Window order is already event order and no identity repeats: nothing to sort.
        kept, duplicated = None, empty
    else:
        order = np.lexsort((keys["row"], keys["window"], *reversed(_identity(keys))))
        start = _runs(_identity(keys, order))
        kept = order[start]
        group = np.cumsum(start) - 1
        multi = np.bincount(group)[group] > 1
        duplicated = (order[multi], group[multi])
        del order, start, group, multi
    serial, seq = _take(keys["serial"], kept), _take(keys["seq"], kept)
    if not _increasing([serial, seq], strict=True):
        if kept is None:
            kept = np.arange(len(seq), dtype=np.int64)
        by = [serial, seq, keys["event_id"][kept], keys["pump_us"][kept]]
        order = np.lexsort((keys["row"][kept], keys["window"][kept], ~keys["pumplogs"][kept], *reversed(by)))
        start = _runs([c[order] for c in by])
        kept = kept[np.sort(order[start])]
    return kept, duplicated


def _count_conflicts(
    con, keys: dict[str, np.ndarray], duplicated: tuple[np.ndarray, np.ndarray]
) -> tuple[int, list[tuple[int, int, int]]]:
    """Identities seen more than once whose rows differ in content (record type, time, payload):
    their number, and (kept window, other window, identities) for each pair of windows involved,
    most identities first (the kept row is the one of the first window listed)."""
    rows, group = duplicated
    if not len(rows):
        return 0, []
    con.register(
        "duplicated_rows",
        {"window_index": keys["window"][rows], "file_row_number": keys["row"][rows], "identity": group},
    )
    pairs = con.sql("""
        WITH d AS (
            SELECT d.identity, w.window_index, hash(w.event_id, w.pump_time, w.properties, w.record) AS content
            FROM windows w JOIN duplicated_rows d USING (window_index, file_row_number)
        ),
        conflicting AS (
            SELECT identity, min(window_index) AS kept FROM d GROUP BY identity HAVING count(DISTINCT content) > 1
        )
        SELECT c.kept, d.window_index, count(DISTINCT c.identity) AS n
        FROM conflicting c JOIN d USING (identity) WHERE d.window_index <> c.kept
        GROUP BY ALL ORDER BY n DESC, c.kept, d.window_index
        """).fetchall()
    count = con.sql("""
        SELECT count(*) FROM (
            SELECT d.identity FROM windows w JOIN duplicated_rows d USING (window_index, file_row_number)
            GROUP BY d.identity HAVING count(DISTINCT hash(w.event_id, w.pump_time, w.properties, w.record)) > 1)
        """).fetchall()[0][0]
    con.unregister("duplicated_rows")
    return int(count), [(int(a), int(b), int(n)) for a, b, n in pairs]


def _window_name(path: str) -> str:
    """The raw-store window a normalised table holds (``{window}.{key}.parquet``)."""
    return Path(path).name.split(".")[0]


def _place_in_time(keys, kept, serial_names, timezone: str, pump_clock: str, log: logging.Logger):
    """UTC offsets and reliability of the kept rows (event order), and the clock changes per pump."""
    zone = ZoneInfo(timezone)
    serials = _take(keys["serial"], kept)
    n = len(serials)
    offset = np.zeros(n, dtype=np.int64)
    reliable = np.ones(n, dtype=bool)
    seq, wall, event_id, change_s = (_take(keys[k], kept) for k in ("seq", "wall_s", "event_id", "change_s"))
    changes: list[tuple[int, times.ClockChange]] = []  # (serial rank, change)
    bounds = np.flatnonzero(np.concatenate([[True], serials[1:] != serials[:-1], [True]])) if n else []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=False):
        serial = serial_names[serials[lo]]
        result = times.pump_times(seq[lo:hi], wall[lo:hi], event_id[lo:hi], change_s[lo:hi], zone, pump_clock)
        offset[lo:hi] = result.offset_s
        reliable[lo:hi] = result.reliable
        for note in result.notes:
            log.warning("pump %s: %s", serial, note)
        unreliable = int((~result.reliable).sum())
        if unreliable:
            log.warning(
                "pump %s: %d event(s) without a reliable time are left out of the analysis tables", serial, unreliable
            )
        changes.extend((int(serials[lo]), c) for c in result.changes)
        log.info(
            "pump %s: times read with pump_clock %s in %s; %d clock change(s)",
            serial,
            pump_clock,
            timezone,
            len(result.changes),
        )
    return offset, reliable, changes


#: Most changes of placement inside windows that :func:`_placed_view_sql` writes as expressions;
#: beyond that, the windows are joined to the placement table.
MAX_INNER_RUNS = 256


def _attribute_sql(values: np.ndarray, starts: np.ndarray, sql_type: str, literal) -> str | None:
    """SQL of a per-row attribute (``values``, one per window row, windows one after another) from
    ``window_index`` and ``file_row_number``: a list of per-window values, and a CASE on the row
    number for the windows in which the value changes.  None when it changes too often."""
    total, nwin = len(values), len(starts) - 1
    change = np.flatnonzero(values[1:] != values[:-1]) + 1 if total > 1 else np.array([], np.int64)
    inner = change[~np.isin(change, starts)]
    if len(inner) > MAX_INNER_RUNS:
        return None
    first = [values[starts[k]] if starts[k] < starts[k + 1] else values[0] if total else 0 for k in range(nwin)]
    if len(set(first)) <= 1 and not len(inner):
        return f"CAST({literal(first[0] if first else 0)} AS {sql_type})"
    base = f"CAST([{', '.join(literal(v) for v in first)}] AS {sql_type}[])[window_index + 1]"
    if not len(inner):
        return base
    whens = []
    owner = np.searchsorted(starts, inner, side="right") - 1
    for k in np.unique(owner).tolist():
        points = inner[owner == k]
        parts = [f"WHEN file_row_number < {int(points[0] - starts[k])} THEN {literal(first[k])}"]
        parts += [
            f"WHEN file_row_number < {int(b - starts[k])} THEN {literal(values[a])}"
            for a, b in zip(points[:-1], points[1:], strict=True)
        ]
        whens.append(f"WHEN {k} THEN CAST(CASE {' '.join(parts)} ELSE {literal(values[points[-1]])} END AS {sql_type})")
    return f"CASE window_index {' '.join(whens)} ELSE {base} END"


def _sql_int(v) -> str:
    return str(int(v))


def _sql_bool(v) -> str:
    return "true" if v else "false"


def _placed_view_sql(
    counts: list[int],
    placement: dict[str, np.ndarray],
    placement_sql: str,
    ordered: bool,
    scan_in_order: bool = True,
) -> tuple[str, str]:
    """The SELECT of a view over the view ``windows``: the kept window rows with
    ``utc_offset_seconds``, ``time_reliable`` and ``timestamp`` (the instant, UTC); and, with
    ``ordered``, the ORDER BY clause that puts its rows in event order ("" when the windows are read
    in event order already).

    ``placement`` holds the placement table's columns (event order); ``counts`` the rows of each
    window.  When the placement changes only at few rows of the windows (the usual history:
    disjoint windows, a clock change now and then), it becomes expressions of the window and row
    number, so the windows are scanned without a join, in window order; otherwise the windows are
    joined to ``placement_sql`` (window_index, file_row_number, utc_offset_seconds, time_reliable,
    and with ``ordered`` ``position``, the row's place in event order, which the view then has).
    """
    window, row = placement["window_index"], placement["file_row_number"]
    starts = np.concatenate([[0], np.cumsum(np.asarray(counts, dtype=np.int64))]).astype(np.int64)
    total = int(starts[-1])
    exprs = None
    in_order = scan_in_order and _increasing([window, row], strict=True)  # window order is event order
    if total and in_order and len(window) == total:
        # Every window row is kept, in window order: the placement is already one value per row.
        exprs = (
            "CAST(true AS BOOLEAN)",
            _attribute_sql(placement["utc_offset_seconds"], starts, "BIGINT", _sql_int),
            _attribute_sql(placement["time_reliable"], starts, "BOOLEAN", _sql_bool),
        )
    elif total:
        pos = starts[window] + row  # each kept row's place among all window rows
        kept = np.zeros(total, dtype=bool)
        kept[pos] = True
        # A row not kept takes the placement of the kept row before it, so that it adds no change.
        before = np.zeros(total, dtype=np.int64)
        before[pos] = np.arange(len(pos), dtype=np.int64)
        if not kept.all():
            last = np.where(kept, np.arange(total), 0)
            np.maximum.accumulate(last, out=last)
            before = before[last]
        exprs = (
            _attribute_sql(kept, starts, "BOOLEAN", _sql_bool),
            _attribute_sql(placement["utc_offset_seconds"][before], starts, "BIGINT", _sql_int),
            _attribute_sql(placement["time_reliable"][before], starts, "BOOLEAN", _sql_bool),
        )
    if exprs is not None and None not in exprs and (in_order or not ordered):
        keep, off, rel = exprs
        where = "" if keep == "CAST(true AS BOOLEAN)" else f" WHERE {keep}"
        logging.getLogger(__name__).debug("placement as expressions (%d characters)", len(keep + off + rel))
        return (
            f"""SELECT * EXCLUDE (window_index, file_row_number),
                   timezone('UTC', pump_time - to_seconds(utc_offset_seconds)) AS timestamp
            FROM (SELECT *, {off} AS utc_offset_seconds, {rel} AS time_reliable FROM windows{where})""",
            "",
        )
    logging.getLogger(__name__).debug("windows joined to the placement%s", ", sorted" if ordered else "")
    # A hash join keeps the order of neither side: sort whenever the order matters.
    return (
        f"""SELECT w.* EXCLUDE (window_index, file_row_number), p.utc_offset_seconds, p.time_reliable,
               timezone('UTC', w.pump_time - to_seconds(p.utc_offset_seconds)) AS timestamp{", p.position" if ordered else ""}
        FROM windows w JOIN ({placement_sql}) p USING (window_index, file_row_number)""",
        " ORDER BY position" if ordered else "",
    )


def _write_event_tables(
    windows: list[str],
    present: set[str],
    counts: list[int],
    placement: dict[str, np.ndarray],
    outputs: dict[str, str],
    scan_in_order: bool,
    source: str | None,
    writers: int,
) -> dict[str, int]:
    """events and/or raw_events (the keys of ``outputs``), streamed from the windows in event order
    (sorted only when window order is not event order, or the windows were not scanned in window
    order), by ``writers`` single-threaded writers (at most one per table)."""
    rows = {**placement, "position": np.arange(len(placement["window_index"]), dtype=np.int64)}
    view, order = _placed_view_sql(counts, placement, "SELECT * FROM placement_rows", True, scan_in_order)

    def setup(c) -> None:
        _create_windows_view(c, windows, present)
        c.register("placement_rows", rows)
        c.sql(f"CREATE OR REPLACE TEMP VIEW placed AS {view}")

    keys_sql = f"{EVENT_KEY_COLUMNS}, utc_offset_seconds // 60 AS utc_offset_minutes, time_reliable"
    selects = {
        "events": f"SELECT {keys_sql}, {decode.data_json_expr()} AS data FROM placed{order}",
        "raw_events": f"SELECT {keys_sql}, properties, record FROM placed{order}",
    }
    selects = {name: sql for name, sql in selects.items() if name in outputs}
    count = max(1, min(int(writers), len(selects)))
    written: dict[str, int] = {}

    def run(writer: _Writer, name: str) -> None:
        written[name] = _write_parquet(writer.con, selects[name], outputs[name], _metadata(source, name))

    with _writers(count, next(iter(outputs.values())), setup) as pool:
        _run_concurrently(pool, [(name, ()) for name in selects], run)
    return {name: written[name] for name in selects}


def _cells_of(pump_us: np.ndarray, offset_s: np.ndarray) -> np.ndarray:
    """The time cell (:mod:`tandem_export.cells`) of each event's instant: pump time (microseconds
    since 1970, as if UTC; the largest int64 where there is none) minus the UTC offset, floor-divided
    by the cell length from the grid's epoch; NO_TIME_CELL where there is no pump time."""
    missing = pump_us == np.iinfo(np.int64).max
    instant = np.where(missing, 0, pump_us) - offset_s * 1_000_000
    cell = np.floor_divide(instant - cells.EPOCH_US, cells.CELL_MICROSECONDS)
    cell[missing] = NO_TIME_CELL
    return cell


def _cell_runs(cell: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows of each cell: (order, cell numbers, bounds) where ``order`` lists the rows cell by
    cell (event order kept within a cell), and the rows of cell ``cells[i]`` are
    ``order[bounds[i]:bounds[i + 1]]``."""
    order = np.argsort(cell, kind="stable")
    ordered = cell[order]
    starts = (
        np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
        if len(ordered)
        else np.array([], np.int64)
    )
    return order, ordered[starts], np.concatenate([starts, [len(ordered)]]).astype(np.int64)


#: Versions the digest of an event cell: bump when what a cell's rows are made of changes in a way
#: the lineage (the package's code digest among them) would not show.
EVENT_CELLS_VERSION = "event-cells/1"


def _event_cell_digests(windows: list[str], placement: dict[str, np.ndarray], lineage: str):
    """Per cell of the placement: (cell or None, rows of the placement in event order, digest).

    The digest covers what the cell's rows are built from: the lineage, and of each event (in event
    order) its window file's name (content-addressed: it changes with the window's contents or the
    decoder), its row there, its UTC offset and its reliability.  Equal digests, equal rows."""
    names = np.array(
        [int.from_bytes(hashlib.sha256(Path(w).name.encode()).digest()[:8], "little", signed=True) for w in windows]
        or [0],
        dtype=np.int64,
    )
    order, numbers, bounds = _cell_runs(placement["cell"])
    out = []
    for i, number in enumerate(numbers.tolist()):
        rows = order[bounds[i] : bounds[i + 1]]
        w = placement["window_index"][rows]
        parts = [names[w], placement["file_row_number"][rows], placement["utc_offset_seconds"][rows]]
        digest = cells.digest_of(
            EVENT_CELLS_VERSION,
            lineage,
            *(np.ascontiguousarray(p, dtype=np.int64).tobytes() for p in parts),
            np.ascontiguousarray(placement["time_reliable"][rows], dtype=np.bool_).tobytes(),
        )
        out.append((None if number == NO_TIME_CELL else int(number), rows, digest))
    return out


def _write_event_cells(
    windows: list[str],
    fingerprint: list[list],
    placement: dict[str, np.ndarray],
    manifests: dict[str, str],
    lineage: str,
    writers: int,
    log: logging.Logger | None,
) -> dict[str, int]:
    """events and/or raw_events as time cells (the keys of ``manifests``, manifest paths): each cell
    whose digest (:func:`_event_cell_digests`) is that of the previous build keeps its file; each
    other is built from the windows that hold its events, joined to its placement rows, sorted in
    export order (timestamp, pump_serial, sequence_group, seq_num).  Returns the rows of each table."""
    digests = _event_cell_digests(windows, placement, lineage)
    stores = {name: cells.CellStore(path, name, lineage) for name, path in manifests.items()}
    keys_sql = f"{EVENT_KEY_COLUMNS}, utc_offset_seconds // 60 AS utc_offset_minutes, time_reliable"
    columns = {
        "events": f"{keys_sql}, data",
        "raw_events": f"{keys_sql}, properties, record",
    }
    jobs = []  # (tables to write, cell, placement rows, digest): both tables of a cell in one job
    for cell, rows, digest in digests:
        names = [name for name, store in stores.items() if not store.keep(cell, digest)]
        if names:
            jobs.append((names, cell, rows, digest))
    if log is not None:
        log.info(
            "%d cell(s) of %d days; written again: %s",
            len(digests),
            cells.CELL_DAYS,
            ", ".join(f"{n} {sum(1 for j in jobs if n in j[0])}" for n in stores) or "none",
        )
    order = "ORDER BY timestamp, pump_serial, sequence_group, seq_num"

    def placed(con, rows: np.ndarray) -> str:
        """SQL of the events of ``rows`` (placement rows) with their time, from their windows only."""
        used = np.unique(placement["window_index"][rows]).tolist()
        paths = [windows[i] for i in used]
        source = f"read_parquet({_files(paths)}, union_by_name := true)"
        present = {r[0] for r in con.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        index = f"CAST([{', '.join(map(str, used))}] AS INTEGER[])[CAST(file_index AS BIGINT) + 1]"
        con.register("cell_placement", {k: placement[k][rows] for k in PLACEMENT_COLUMNS})
        return f"""SELECT w.*, p.utc_offset_seconds, p.time_reliable,
                   timezone('UTC', w.pump_time - to_seconds(p.utc_offset_seconds)) AS timestamp
            FROM (SELECT {decode.full_select(present)}, {index} AS window_index, file_row_number FROM {source}) w
            JOIN cell_placement p USING (window_index, file_row_number)"""

    def narrow(body: str, names: list[str]) -> str:
        """The columns of ``body`` (placed events) that ``names`` write: the decoded fields are many,
        and events keep only their JSON."""
        kept = [EVENT_KEY_COLUMNS, "utc_offset_seconds", "time_reliable"]
        if "raw_events" in names:
            kept.append("properties, record")
        if "events" in names:
            kept.append(f"{decode.data_json_expr()} AS data")
        return f"SELECT {', '.join(kept)} FROM ({body})"

    def run(writer: _Writer, i: int) -> None:
        names, cell, rows, digest = jobs[i]
        con = writer.con
        # The cell's events are read and placed once (a temporary table, in export order), then
        # each table needing it is written from them.
        con.execute(f"CREATE OR REPLACE TEMP TABLE cell_events AS {narrow(placed(con, rows), names)} {order}")
        con.unregister("cell_placement")
        try:
            count, low, high = con.execute(
                "SELECT count(*), CAST(min(pump_time) AS VARCHAR), CAST(max(pump_time) AS VARCHAR) FROM cell_events"
            ).fetchall()[0]
            if count != len(rows):
                raise ValueError(f"cell {cells.cell_label(cell)} has {count} events, its placement {len(rows)}")
            for name in names:
                select = f"SELECT {columns[name]} FROM cell_events ORDER BY rowid"
                stores[name].write(con, cell, digest, select, (int(count), low, high))
        finally:
            con.execute("DROP TABLE IF EXISTS cell_events")

    def setup(c) -> None:
        """Nothing: each job reads the windows of its own cell."""

    count = max(1, min(int(writers), len(jobs)))
    with _writers(count, next(iter(manifests.values())), setup) as pool:
        con = pool[0].con
        _create_windows_view(con, windows)
        con.register("cell_placement", {k: placement[k][:0] for k in PLACEMENT_COLUMNS})
        for name, store in stores.items():
            empty = """SELECT w.* EXCLUDE (window_index, file_row_number), p.utc_offset_seconds, p.time_reliable,
                    timezone('UTC', w.pump_time - to_seconds(p.utc_offset_seconds)) AS timestamp
                FROM windows w JOIN cell_placement p USING (window_index, file_row_number)"""
            store.write_schema(con, f"SELECT {columns[name]} FROM ({narrow(empty, [name])})")
        con.unregister("cell_placement")
        _run_concurrently(pool, [(i, ()) for i in range(len(jobs))], run)
    counts = {}
    for name, store in stores.items():
        store.commit()
        counts[name] = sum(c["rows"] for c in store.written())
    return counts


def _change_offsets(keys, kept, offset, changes) -> list[int | None]:
    """The UTC offset of each clock change's own record: the kept row of its pump and sequence
    number, the one with the lowest sequence_group (NULL first) when there are several."""
    if not changes:
        return []
    serial, seq = _take(keys["serial"], kept), _take(keys["seq"], kept)
    group_set, group = _take(keys["group_set"], kept), _take(keys["group"], kept)
    wanted = {(s, c.seq_num) for s, c in changes}
    best: dict[tuple[int, int], tuple[tuple[int, int], int]] = {}
    for i in np.flatnonzero(np.isin(seq, np.array(sorted({c.seq_num for _, c in changes}), dtype=np.int64))).tolist():
        key = (int(serial[i]), int(seq[i]))
        if key not in wanted:
            continue
        rank = (int(group_set[i]), int(group[i]))
        if key not in best or rank < best[key][0]:
            best[key] = (rank, int(offset[i]))
    return [best[(s, c.seq_num)][1] if (s, c.seq_num) in best else None for s, c in changes]


def _write_clock_changes(
    con, changes, change_offsets, serial_names, path: str, metadata, lineage: str | None = None
) -> None:
    """clock_changes: each change with the UTC offset of its record, ordered by time."""
    found = [o is not None for o in change_offsets]
    con.register(
        "changes_rows",
        {
            "pump_serial": np.array([serial_names[s] for s, _ in changes], dtype=object),
            "seq_num": np.array([c.seq_num for _, c in changes], dtype=np.int64),
            "before_s": np.array([c.before_s for _, c in changes], dtype=np.int64),
            "after_s": np.array([c.after_s for _, c in changes], dtype=np.int64),
            "change_minutes": np.array([c.change_s / 60 for _, c in changes], dtype=np.float64),
            "kind": np.array([c.kind for _, c in changes], dtype=object),
            "offset_s": np.array([o or 0 for o in change_offsets], dtype=np.int64),
            "found": np.array(found, dtype=bool),
        },
    )
    _write_table(
        con,
        f"""SELECT timezone('UTC', pump_time_after - to_seconds(utc_offset_seconds)) AS timestamp,
                  pump_time_after AS pump_time, pump_serial, seq_num, pump_time_before, pump_time_after,
                  change_minutes, kind
           FROM (SELECT CAST(pump_serial AS VARCHAR) AS pump_serial, seq_num,
                        {_EPOCH_SQL} + to_seconds(before_s) AS pump_time_before,
                        {_EPOCH_SQL} + to_seconds(after_s) AS pump_time_after, change_minutes,
                        CAST(kind AS VARCHAR) AS kind, CASE WHEN found THEN offset_s END AS utc_offset_seconds
                 FROM changes_rows)
           ORDER BY timestamp, pump_serial, seq_num""",
        path,
        metadata,
        lineage,
    )
    con.unregister("changes_rows")


def _write_table(con, select: str, path: str, metadata: dict[str, str] | None, lineage: str | None) -> int:
    """Write the rows of ``select`` to ``path``: time cells when it names a manifest (``.cells.json``;
    then ``lineage`` is needed), else one Parquet file carrying ``metadata``.  Returns the rows."""
    if not cells.is_manifest(path):
        return _write_parquet(con, select, path, metadata)
    if lineage is None:
        raise ValueError(f"{path}: a table kept as cells needs the lineage it is built with")
    name = cells.table_name(path)
    store = cells.CellStore(path, name, lineage)
    rows = cells.write_from_select(con, select, store, export.order_columns(_columns(con, select)))
    store.commit()
    return rows


# --- derived tables -------------------------------------------------------------------------------


def table_sql(name: str) -> str:
    """The SQL of a derived table (``tandem_export/sql/<name>.sql``)."""
    return resources.files(__package__).joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


def _reads(sql: str, other: str) -> bool:
    return re.search(rf"\b(FROM|JOIN)\s+{other}\b", sql, re.IGNORECASE) is not None


def _table_names() -> list[str]:
    return sorted(p.name.removesuffix(".sql") for p in resources.files(__package__).joinpath("sql").iterdir())


def _create_table_views(con, sql: str, own: str, done: set[str]) -> None:
    """A view for each other derived table that ``sql`` reads (``FROM``/``JOIN`` its name), built by
    that table's own SQL from ``decoded``; the tables those views read are created first."""
    for other in _table_names():
        if other == own or other in done or not _reads(sql, other):
            continue
        done.add(other)
        text = table_sql(other)
        _create_table_views(con, text, other, done)
        con.sql(f"CREATE OR REPLACE TEMP VIEW {other} AS {text}")


def placement_windows(decoded: str) -> list[str]:
    """The windows a placement table (the ``decoded`` output of :func:`place_events`) indexes."""
    con = connect()
    try:
        meta = _kv_metadata(con, decoded)
    finally:
        con.close()
    if WINDOWS_KEY not in meta:
        raise ValueError(f"{decoded}: not a placement table written by place_events (no window list)")
    return [entry[0] for entry in json.loads(meta[WINDOWS_KEY])]


def _kv_metadata(con, path: str) -> dict[str, str]:
    """A Parquet file's key-value metadata."""
    rows = con.sql(f"SELECT key, value FROM parquet_kv_metadata({sql_str(str(path))})").fetchall()
    return {bytes(k).decode(): bytes(v).decode() for k, v in rows}


def _read_placement(con, windows: list[str], decoded: str) -> tuple[list[list], dict[str, np.ndarray], dict]:
    """The windows' fingerprint, the placement table's columns as numpy arrays (event order) and its
    key-value metadata (str -> str).  ValueError unless ``decoded`` was built from ``windows`` as
    they are now (path, rows and size of each, as its metadata records)."""
    meta = _kv_metadata(con, decoded)
    fingerprint = _window_fingerprint(con, windows)
    if WINDOWS_KEY not in meta or json.loads(meta[WINDOWS_KEY]) != fingerprint:
        raise ValueError(
            f"{decoded} was not built from these {len(windows)} window(s) (another list, or windows changed since); "
            "build the placement table again"
        )
    source = f"read_parquet({sql_str(str(decoded))})"
    count = con.sql(f"SELECT count(*) FROM {source}").fetchall()[0][0]
    placement = _fetch_numpy(con.sql(f"SELECT {', '.join(PLACEMENT_COLUMNS)} FROM {source}"), _PLACEMENT_DTYPES, count)
    return fingerprint, placement, meta


def _decoded_view_setup(con, windows: list[str], decoded: str):
    """A function creating the view ``decoded`` (see :func:`decoded_view`) in a connection; the
    checks, the schema of the windows and the placement are read once, here, with ``con``."""
    windows = [str(w) for w in windows]
    source = f"read_parquet({sql_str(str(decoded))})"
    fingerprint, placement, _ = _read_placement(con, windows, decoded)
    present = _create_windows_view(con, windows)
    view, _ = _placed_view_sql([f[1] for f in fingerprint], placement, f"SELECT * FROM {source}", ordered=False)

    def setup(c) -> None:
        _create_windows_view(c, windows, present)
        c.sql(f"CREATE OR REPLACE TEMP VIEW decoded AS {view}")

    return setup


def decoded_view(con, windows: list[str], decoded: str) -> None:
    """Create the view ``decoded``: every kept event with every decoded column, ``utc_offset_seconds``,
    ``time_reliable`` and ``timestamp`` (the instant, UTC), from the windows placed by the placement
    table ``decoded`` (see :func:`_placed_view_sql`; rows in no particular order).

    The windows must be those the placement table was built from (path, rows and size of each, as
    recorded in its metadata), else ValueError.
    """
    _decoded_view_setup(con, windows, decoded)(con)


def build_tables(
    windows: list[str],
    decoded: str,
    outputs: dict[str, str],
    log: logging.Logger,
    source: str | None = None,
    writers: int = 2,
    lineage: str | None = None,
) -> None:
    """Build every derived table named in ``outputs`` (name -> Parquet path) in one process.

    Each table's SQL (``sql/<name>.sql``) reads the view ``decoded`` (:func:`decoded_view`): the
    windows placed by the placement table that :func:`place_events` wrote.  Each event carries
    ``utc_offset_seconds`` (pump clock minus UTC, from the time model) and ``time_reliable``;
    analysis tables keep only reliable events, and times a table computes itself (the CGM EGV
    time) use the offset of the record that logged them.  A table built on other derived tables
    (daily_summary) reads those written in this call from their files, and computes any other as a
    view by its own SQL file.  ``writers`` single-threaded writers (see :class:`_Writer`; at least
    one) build the tables side by side; every file is written atomically, and the bytes do not
    depend on the number of writers.  With ``source`` (the data's label), each table
    carries the key-value metadata of its full-range export.

    An output path ending ``.cells.json`` keeps that table as time cells (:mod:`tandem_export.cells`,
    :func:`tandem_export.cells.write_from_select`): only the cells whose contents changed since the
    manifest there was written (with the same ``lineage``) are written again.
    """
    if lineage is None and any(cells.is_manifest(p) for p in outputs.values()):
        raise ValueError("tables kept as cells need the lineage they are built with")
    known = _table_names()
    unknown = sorted(set(outputs) - set(known))
    if unknown:
        raise ValueError(f"no SQL for table(s) {', '.join(unknown)}")
    beside = next(iter(outputs.values()), decoded)
    con = connect()
    spill = _session(con, beside)
    try:
        setup = _decoded_view_setup(con, windows, decoded)
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    # A table read by others goes first; a table waits for the tables it reads.
    needs = {name: [o for o in outputs if o != name and _reads(table_sql(name), o)] for name in outputs}
    wanted = {o for n in needs.values() for o in n}
    jobs = sorted(((name, needs[name]) for name in outputs), key=lambda job: job[0] not in wanted)
    rows: dict[str, int] = {}
    seconds: dict[str, float] = {}

    def run(writer: _Writer, name: str) -> None:
        began = time.perf_counter()
        sql = table_sql(name)
        for other in needs[name]:
            writer.con.sql(f"CREATE OR REPLACE TEMP VIEW {other} AS SELECT * FROM {cells.source_sql(outputs[other])}")
        _create_table_views(writer.con, sql, name, set(needs[name]))
        rows[name] = _write_table(writer.con, sql, outputs[name], _metadata(source, name), lineage)
        seconds[name] = time.perf_counter() - began

    with _writers(max(1, int(writers)), beside, setup) as pool:
        _run_concurrently(pool, jobs, run)
    for name in outputs:
        log.info("%s: %d rows (%.2f s)", name, rows[name], seconds[name])
    for line in table_warnings(outputs):
        log.warning("%s", line)


#: Rows a derived table keeps but marks as no reading or no delivery: (table, SQL count, message).
_REFUSED_ROWS = (
    (
        "cgm_readings",
        "glucose_status = 'invalid'",
        "{n} CGM reading(s) are 'invalid' (glucose NULL, never a reading): their value was missing or outside "
        "40-400 mg/dL, or their measured time lies more than 25 hours before or 10 minutes after the record",
    ),
    (
        "bolus_deliveries",
        "delivered_units IS NULL AND completion_status = 'completed'",
        "{n} completed bolus(es) carry no delivered amount (NULL, never insulin): their parts add up to more than "
        "25 U or to more than the total requested",
    ),
)


def _columns(con, select: str) -> list[str]:
    """The column names of ``select``."""
    return [row[0] for row in con.sql(f"DESCRIBE {select}").fetchall()]


def table_warnings(outputs: dict[str, str]) -> list[str]:
    """One line per kind of row a derived table just written (name -> Parquet path) keeps only as
    "no value" (see _REFUSED_ROWS), with how many."""
    out = []
    con = connect()
    try:
        for name, where, message in _REFUSED_ROWS:
            if name in outputs:
                n = con.sql(f"SELECT count(*) FROM {cells.source_sql(outputs[name])} WHERE {where}").fetchall()
                if n[0][0]:
                    out.append(f"{name}: " + message.format(n=n[0][0]))
    finally:
        con.close()
    return out


def build_table(name: str, decoded: str, out: str, log: logging.Logger) -> None:
    """Build one derived table (see :func:`build_tables`); the windows are those ``decoded`` indexes."""
    build_tables(placement_windows(decoded), decoded, {name: out}, log)
