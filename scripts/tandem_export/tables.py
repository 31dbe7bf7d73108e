"""Table building: union of the normalised windows, then one SQL file per analysis table."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

from . import decode
from .storage import atomic_path, connect, sql_str

#: Columns of raw_events and events, before ``data`` / ``properties`` / ``record``.
EVENT_KEY_COLUMNS = "pump_serial, sequence_group, seq_num, event_id, event_name, pump_time, timestamp, origin"


def timestamp_expr(pump_time: str, timezone: str) -> str:
    """SQL for the instant (TIMESTAMPTZ) of a pump wall-clock TIMESTAMP read in ``timezone``.

    DuckDB's ICU rules: a wall time in the spring-forward gap is read with the offset in force
    before the switch (02:30 -> 03:30 daylight time); a wall time in the repeated autumn hour is
    read as the second occurrence (standard time).
    """
    return f"timezone({sql_str(timezone)}, {pump_time})"


def _write_parquet(con, select: str, path: str) -> None:
    with atomic_path(path) as tmp:
        con.sql(f"COPY ({select}) TO {sql_str(str(tmp))} (FORMAT parquet, COMPRESSION zstd)")


def build_events(
    windows: list[str], decoded_out: str, events_out: str, raw_out: str, timezone: str, log: logging.Logger
) -> None:
    """Union every normalised window and keep one row per event identity.

    Identity: (pump_serial, sequence_group, seq_num).  When windows overlap, the row from the
    first window in file order is kept; rows whose contents differ for the same identity are
    counted in the log.  An event saved in both forms (26-byte records carry no sequence group)
    is recognised by (pump_serial, seq_num, event_id, pump_time) and kept once, as pump-logs.  Writes the wide ``decoded`` table (internal) and the ``events`` and
    ``raw_events`` tables, all ordered by (pump_serial, sequence_group, seq_num).
    """
    con = connect()
    con.sql("SET threads = 2")
    files = "[" + ", ".join(sql_str(w) for w in windows) + "]"
    empty = f"SELECT {decode.decode_select(set())} FROM (SELECT {', '.join(f'NULL AS {c}' for c in decode.COMMON_COLUMNS)}) WHERE false"
    source = (
        f"SELECT * FROM read_parquet({files}, filename := true)"
        if windows
        else f"SELECT *, NULL::VARCHAR AS filename FROM ({empty})"
    )
    con.sql(f"""
        CREATE TEMP TABLE all_rows AS
        SELECT *, list_position({files}::VARCHAR[], filename) AS file_order,
               row_number() OVER () AS file_row
        FROM ({source})""")
    total = con.sql("SELECT count(*) FROM all_rows").fetchall()[0][0]
    conflicts = con.sql("""
        SELECT count(*) FROM (
            SELECT pump_serial, sequence_group, seq_num
            FROM all_rows GROUP BY ALL
            HAVING count(DISTINCT (event_id, pump_time, coalesce(properties::VARCHAR, ''), coalesce(record, ''::BLOB))) > 1)
    """).fetchall()[0][0]
    con.sql(f"""
        CREATE TEMP TABLE decoded AS
        SELECT * EXCLUDE (filename, file_order, file_row),
               {timestamp_expr("pump_time", timezone)} AS timestamp
        FROM (
            SELECT * FROM all_rows
            QUALIFY row_number() OVER (
                PARTITION BY pump_serial, sequence_group, seq_num ORDER BY file_order, file_row) = 1)
        -- The same event saved both as a 26-byte record (no sequence group) and as pump-logs JSON:
        -- same pump, sequence number, record type and pump time. Keep the pump-logs row.
        QUALIFY row_number() OVER (
            PARTITION BY pump_serial, seq_num, event_id, pump_time
            ORDER BY origin = 'pump-logs' DESC, file_order, file_row) = 1
        ORDER BY pump_serial, sequence_group NULLS FIRST, seq_num""")
    kept = con.sql("SELECT count(*) FROM decoded").fetchall()[0][0]
    log.info(
        "%d events from %d window(s); %d after de-duplication; times read in %s", total, len(windows), kept, timezone
    )
    if conflicts:
        log.warning(
            "%d event identities appear with different contents in different windows; the first was kept", conflicts
        )
    _write_parquet(con, "SELECT * FROM decoded", decoded_out)
    _write_parquet(con, f"SELECT {EVENT_KEY_COLUMNS}, {decode.data_json_expr()} AS data FROM decoded", events_out)
    _write_parquet(con, f"SELECT {EVENT_KEY_COLUMNS}, properties, record FROM decoded", raw_out)
    con.close()


def table_sql(name: str) -> str:
    """The SQL of a derived table (``tandem_export/sql/<name>.sql``)."""
    return resources.files(__package__).joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


def build_table(name: str, decoded: str, out: str, timezone: str, log: logging.Logger) -> None:
    """Build derived table ``name`` from the decoded events; its SQL reads the view ``decoded``.

    ``$tz`` in the SQL is replaced by the zone literal, so times a table computes itself (the CGM
    EGV time) are converted exactly like event times.
    """
    con = connect()
    con.sql("SET threads = 2")
    con.sql(f"CREATE VIEW decoded AS SELECT * FROM read_parquet({sql_str(str(Path(decoded)))})")
    sql = table_sql(name).replace("$tz", sql_str(timezone))
    con.sql(f"CREATE TEMP TABLE result AS {sql}")
    rows = con.sql("SELECT count(*) FROM result").fetchall()[0][0]
    _write_parquet(con, "SELECT * FROM result", out)
    log.info("%s: %d rows", name, rows)
    con.close()
