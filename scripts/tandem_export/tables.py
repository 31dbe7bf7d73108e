"""Table building: union of the normalised windows, then one SQL file per analysis table."""

from __future__ import annotations

import logging
import re
import shutil
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from . import decode, times
from .storage import atomic_path, connect, sql_str

#: Columns of raw_events and events, before ``data`` / ``properties`` / ``record``.
EVENT_KEY_COLUMNS = "pump_serial, sequence_group, seq_num, event_id, event_name, pump_time, timestamp, origin"


def _write_parquet(con, select: str, path: str) -> None:
    with atomic_path(path) as tmp:
        con.sql(f"COPY ({select}) TO {sql_str(str(tmp))} (FORMAT parquet, COMPRESSION zstd)")


def build_events(
    windows: list[str],
    outputs: dict[str, str],
    timezone: str,
    pump_clock: str,
    log: logging.Logger,
) -> None:
    """Union every normalised window, keep one row per event identity, and place every event in time.

    Identity: (pump_serial, sequence_group, seq_num).  When windows overlap, the row from the
    first window in file order is kept; rows whose contents differ for the same identity are
    counted in the log.  An event saved in both forms (26-byte records carry no sequence group)
    is recognised by (pump_serial, seq_num, event_id, pump_time) and kept once, as pump-logs.
    Times: :mod:`tandem_export.times` (model ``pump_clock``, anchor zone ``timezone``).

    ``outputs`` maps ``decoded`` (the wide internal table), ``events``, ``raw_events`` and
    ``clock_changes`` to Parquet paths; every table is ordered by (pump_serial, sequence_group,
    seq_num), clock_changes by time.
    """
    con = connect()
    con.sql("SET threads = 2")
    # Years of history do not fit in memory as wide rows: de-duplicate on narrow keys, and let
    # DuckDB spill the final sort to disk beside the outputs.
    spill = Path(outputs["decoded"]).parent / ".duckdb-spill"
    con.sql("SET memory_limit = '1GB'")
    con.sql(f"SET temp_directory = {sql_str(str(spill))}")
    files = "[" + ", ".join(sql_str(w) for w in windows) + "]"
    if windows:
        # Each window holds only the columns of the event types it has: unite by name, then give
        # every table the full, fixed column list (absent columns as typed NULLs).
        con.sql(
            f"CREATE TEMP VIEW windows AS SELECT * FROM read_parquet({files}, filename := true,"
            " file_row_number := true, union_by_name := true)"
        )
        present = {row[0] for row in con.sql("DESCRIBE windows").fetchall()}
    else:
        present = set()
        con.sql(
            f"CREATE TEMP VIEW windows AS SELECT {decode.full_select(present)}, NULL::VARCHAR AS filename,"
            " NULL::BIGINT AS file_row_number WHERE false"
        )
    change = "CAST(NULL AS BIGINT)"
    if {"time_after_ms", "time_prior_ms"} <= present:
        change = "CASE WHEN event_id = 13 THEN round((time_after_ms - time_prior_ms) / 1000) END"
    if {"date_after_days", "date_prior_days"} <= present:
        change = f"coalesce({change}, CASE WHEN event_id = 14 THEN (date_after_days - date_prior_days) * 86400 END)"
    con.sql(f"""
        CREATE TEMP TABLE keys AS
        SELECT filename, file_row_number, list_position({files}::VARCHAR[], filename) AS file_order,
               pump_serial, sequence_group, seq_num, event_id, pump_time, origin,
               hash(event_id, pump_time, properties, record) AS content,
               CAST(coalesce({change}, 0) AS BIGINT) AS change_s
        FROM windows""")
    total = con.sql("SELECT count(*) FROM keys").fetchall()[0][0]
    conflicts = con.sql("""
        SELECT count(*) FROM (
            SELECT 1 FROM keys GROUP BY pump_serial, sequence_group, seq_num HAVING count(DISTINCT content) > 1)
    """).fetchall()[0][0]
    con.sql("""
        CREATE TEMP TABLE unique_rows AS
        SELECT *, row_number() OVER (ORDER BY pump_serial, sequence_group NULLS FIRST, seq_num) AS row_id
        FROM (
            SELECT * FROM keys
            QUALIFY row_number() OVER (
                PARTITION BY pump_serial, sequence_group, seq_num ORDER BY file_order, file_row_number) = 1)
        -- The same event saved both as a 26-byte record (no sequence group) and as pump-logs JSON:
        -- same pump, sequence number, record type and pump time. Keep the pump-logs row.
        QUALIFY row_number() OVER (
            PARTITION BY pump_serial, seq_num, event_id, pump_time
            ORDER BY origin = 'pump-logs' DESC, file_order, file_row_number) = 1""")
    kept = con.sql("SELECT count(*) FROM unique_rows").fetchall()[0][0]
    log.info("%d events from %d window(s); %d after de-duplication", total, len(windows), kept)
    if conflicts:
        log.warning(
            "%d event identities appear with different contents in different windows; the first was kept", conflicts
        )
    _place_in_time(con, timezone, pump_clock, log)
    decoded = f"""
        SELECT {decode.full_select(present)}, p.utc_offset_seconds, p.time_reliable,
               timezone('UTC', w.pump_time - to_seconds(p.utc_offset_seconds)) AS timestamp
        FROM windows w
        JOIN (SELECT filename, file_row_number, row_id FROM unique_rows) u USING (filename, file_row_number)
        JOIN placed p ON p.row_id = u.row_id
        ORDER BY u.row_id"""
    _write_parquet(con, decoded, outputs["decoded"])
    con.sql(f"CREATE TEMP VIEW decoded AS SELECT * FROM read_parquet({sql_str(outputs['decoded'])})")
    keys = f"{EVENT_KEY_COLUMNS}, utc_offset_seconds // 60 AS utc_offset_minutes, time_reliable"
    _write_parquet(con, f"SELECT {keys}, {decode.data_json_expr()} AS data FROM decoded", outputs["events"])
    _write_parquet(con, f"SELECT {keys}, properties, record FROM decoded", outputs["raw_events"])
    _write_parquet(
        con,
        """SELECT timezone('UTC', c.pump_time_after - to_seconds(d.utc_offset_seconds)) AS timestamp,
                  c.pump_time_after AS pump_time, c.pump_serial, c.seq_num, c.pump_time_before, c.pump_time_after,
                  c.change_minutes, c.kind
           FROM changes c
           LEFT JOIN (SELECT DISTINCT ON (u.pump_serial, u.seq_num) u.pump_serial, u.seq_num, p.utc_offset_seconds
                      FROM unique_rows u JOIN placed p ON p.row_id = u.row_id
                      ORDER BY u.pump_serial, u.seq_num, u.sequence_group NULLS FIRST) d
           USING (pump_serial, seq_num)
           ORDER BY timestamp, pump_serial, seq_num""",
        outputs["clock_changes"],
    )
    con.close()
    shutil.rmtree(spill, ignore_errors=True)


def _place_in_time(con, timezone: str, pump_clock: str, log: logging.Logger) -> None:
    """Create tables ``placed`` (row_id, utc_offset_seconds, time_reliable) and ``changes``."""
    zone = ZoneInfo(timezone)
    rows = con.sql(f"""
        SELECT row_id, pump_serial, seq_num, event_id, change_s,
               CAST(epoch(pump_time) - epoch(TIMESTAMP '{times.EPOCH:%Y-%m-%d %H:%M:%S}') AS BIGINT) AS wall_s
        FROM unique_rows ORDER BY row_id""").fetchnumpy()
    n = len(rows["seq_num"])
    offset = np.zeros(n, dtype=np.int64)
    reliable = np.ones(n, dtype=bool)
    serials = np.asarray(rows["pump_serial"], dtype=object)
    changes: dict[str, list] = {k: [] for k in ("pump_serial", "seq_num", "before", "after", "minutes", "kind")}
    bounds = np.flatnonzero(np.concatenate([[True], serials[1:] != serials[:-1], [True]])) if n else []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=False):
        serial = serials[lo]
        result = times.pump_times(
            rows["seq_num"][lo:hi],
            rows["wall_s"][lo:hi],
            rows["event_id"][lo:hi],
            rows["change_s"][lo:hi],
            zone,
            pump_clock,
        )
        offset[lo:hi] = result.offset_s
        reliable[lo:hi] = result.reliable
        for note in result.notes:
            log.warning("pump %s: %s", serial, note)
        unreliable = int((~result.reliable).sum())
        if unreliable:
            log.warning(
                "pump %s: %d event(s) without a reliable time are left out of the analysis tables", serial, unreliable
            )
        for c in result.changes:
            changes["pump_serial"].append(serial)
            changes["seq_num"].append(c.seq_num)
            changes["before"].append(c.before_s)
            changes["after"].append(c.after_s)
            changes["minutes"].append(c.change_s / 60)
            changes["kind"].append(c.kind)
        log.info(
            "pump %s: times read with pump_clock %s in %s; %d clock change(s)",
            serial,
            pump_clock,
            timezone,
            len(result.changes),
        )
    placed = pa.table(
        {"row_id": np.asarray(rows["row_id"], dtype=np.int64), "utc_offset_seconds": offset, "time_reliable": reliable}
    )
    con.register("placed_arrow", placed)
    con.sql("CREATE TEMP TABLE placed AS SELECT * FROM placed_arrow")
    con.register(
        "changes_arrow",
        pa.table(
            {
                "pump_serial": pa.array(changes["pump_serial"], pa.string()),
                "seq_num": pa.array(changes["seq_num"], pa.int64()),
                "before_s": pa.array(changes["before"], pa.int64()),
                "after_s": pa.array(changes["after"], pa.int64()),
                "change_minutes": pa.array(changes["minutes"], pa.float64()),
                "kind": pa.array(changes["kind"], pa.string()),
            }
        ),
    )
    epoch = f"TIMESTAMP '{times.EPOCH:%Y-%m-%d %H:%M:%S}'"
    con.sql(f"""
        CREATE TEMP TABLE changes AS
        SELECT pump_serial, seq_num, {epoch} + to_seconds(before_s) AS pump_time_before,
               {epoch} + to_seconds(after_s) AS pump_time_after, change_minutes, kind
        FROM changes_arrow""")


def table_sql(name: str) -> str:
    """The SQL of a derived table (``tandem_export/sql/<name>.sql``)."""
    return resources.files(__package__).joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


def _create_table_views(con, sql: str, own: str, done: set[str]) -> None:
    """A view for each other derived table that ``sql`` reads (``FROM``/``JOIN`` its name), built by
    that table's own SQL from ``decoded``; the tables those views read are created first."""
    for path in sorted(resources.files(__package__).joinpath("sql").iterdir(), key=lambda p: p.name):
        other = path.name.removesuffix(".sql")
        if other == own or other in done or not re.search(rf"\b(FROM|JOIN)\s+{other}\b", sql, re.IGNORECASE):
            continue
        done.add(other)
        text = table_sql(other)
        _create_table_views(con, text, other, done)
        con.sql(f"CREATE VIEW {other} AS {text}")


def build_table(name: str, decoded: str, out: str, log: logging.Logger) -> None:
    """Build derived table ``name`` from the decoded events; its SQL reads the view ``decoded``.

    Each event carries ``utc_offset_seconds`` (pump clock minus UTC, from the time model) and
    ``time_reliable``; analysis tables keep only reliable events, and times a table computes
    itself (the CGM EGV time) use the offset of the record that logged them.  A table built on
    other derived tables (daily_summary) reads them as views computed by their own SQL files.
    """
    con = connect()
    con.sql("SET threads = 2")
    con.sql(f"CREATE VIEW decoded AS SELECT * FROM read_parquet({sql_str(str(Path(decoded)))})")
    _create_table_views(con, table_sql(name), name, set())
    con.sql(f"CREATE TEMP TABLE result AS {table_sql(name)}")
    rows = con.sql("SELECT count(*) FROM result").fetchall()[0][0]
    _write_parquet(con, "SELECT * FROM result", out)
    log.info("%s: %d rows", name, rows)
    con.close()
