"""Exports: one table, one date range, Parquet or CSV, through DuckDB COPY; and every table in one DuckDB file."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .cells import csv_body_path, digest_of, files, folder, is_manifest, read_manifest, source_sql, table_name
from .storage import atomic_path, connect, sql_str

#: Written into every exported Parquet file's key-value metadata.
PRODUCER = "tandem-export pipeline"

#: The row order of every export and database table: the first of these columns a table has, in turn.
ORDER_COLUMNS = ("timestamp", "pump_serial", "sequence_group", "seq_num", "bolus_id")


def export_metadata(source: str, table: str, start: str | None = None, end: str | None = None) -> dict[str, str]:
    """The key-value metadata of an exported Parquet file (and of a table file written to match).

    ``source`` labels where the rows came from (demo data stays labelled), ``table`` is the table
    name, ``start``/``end`` the inclusive date range ("" when unbounded).
    """
    return {"source": source, "table": table, "start": start or "", "end": end or "", "producer": PRODUCER}


def order_columns(names: list[str], account: bool = False) -> list[str]:
    """The columns (of ``names``) an export is sorted by: ``account`` first when asked, then ORDER_COLUMNS."""
    return [c for c in (("account",) if account else ()) + ORDER_COLUMNS if c in names]


def stored_in_order(path: str | Path, columns: list[str]) -> bool:
    """Whether the rows of the Parquet file ``path`` are already sorted by ``columns`` (ascending,
    NULLs last, as DuckDB's ORDER BY), in file order.

    Reads only those columns and compares each row with the next, key by key (vectorised in
    Arrow): the file is in order when no row is greater than the one after it.  The table builders
    write the tables in this order, so an export can stream the rows instead of sorting years of
    wide rows again.
    """
    if not columns:
        return True
    keys = pq.ParquetFile(path).read(columns=columns)  # (pq.read_table would import pyarrow.dataset: 0.2 s)
    n = keys.num_rows
    if n < 2:
        return True
    tied = None  # rows equal to the next on every key so far
    for name in columns:
        col = keys.column(name).combine_chunks()
        a, b = col.slice(0, n - 1), col.slice(1)
        a_null, b_null = pc.is_null(a), pc.is_null(b)
        # a > b with NULLs last: a NULL before a value, or both values and a greater
        greater = pc.or_(pc.and_(a_null, pc.invert(b_null)), _null_as_false(pc.greater(a, b)))
        equal = pc.or_(pc.and_(a_null, b_null), _null_as_false(pc.equal(a, b)))
        if pc.any(greater if tied is None else pc.and_(tied, greater)).as_py():
            return False
        tied = equal if tied is None else pc.and_(tied, equal)
    return True


def _null_as_false(mask):
    """A boolean array with NULL read as false (Kleene AND with "is valid"; a Python ``False``
    given to ``fill_null`` would make pyarrow import pandas, 0.2 s)."""
    return pc.and_kleene(pc.is_valid(mask), mask)


def _file_metadata(path: str | Path) -> dict[str, str]:
    """The key-value metadata of a Parquet file, decoded (empty when it has none)."""
    kv = pq.read_metadata(path).metadata or {}
    return {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in kv.items()}


#: First characters that make a spreadsheet read a CSV cell as a formula (OWASP, "CSV Injection"):
#: a text cell starting with one of them is written with a leading single quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _defused(text_sql: str) -> str:
    """SQL of the text expression ``text_sql`` with a ``'`` put before a value starting as a formula."""
    starts = ", ".join(f"chr({ord(c)})" for c in FORMULA_STARTS)
    return f"CASE WHEN left({text_sql}, 1) IN ({starts}) THEN chr(39) || {text_sql} ELSE {text_sql} END"


def _csv_column(name: str, typ: str) -> str:
    """How a column is written to CSV: ISO 8601 times, lists and JSON as JSON text, BLOB as hex.

    Text (VARCHAR, and the text of JSON, which may be a bare number such as ``-2``) starting with a
    character of FORMULA_STARTS gets a leading ``'`` (OWASP's CSV-injection rule), so a spreadsheet
    shows it as text instead of running it; other text is written unchanged.  The JSON of a list
    always starts with ``[``, hex with a digit or A-F, and numbers, booleans, dates and times are
    not text, so these are never changed.
    """
    q = f'"{name}"'
    if typ == "TIMESTAMP WITH TIME ZONE":
        return f"strftime({q}, '%Y-%m-%dT%H:%M:%SZ') AS {q}"
    if typ == "TIMESTAMP":
        return f"strftime({q}, '%Y-%m-%d %H:%M:%S') AS {q}"
    if typ.endswith("[]"):
        return f"CAST(to_json({q}) AS VARCHAR) AS {q}"
    if typ == "BLOB":
        return f"hex({q}) AS {q}"
    if typ == "VARCHAR":
        return f"{_defused(q)} AS {q}"
    if typ == "JSON":
        return f"{_defused(f'CAST({q} AS VARCHAR)')} AS {q}"
    return q


def _code_digest() -> str:
    """16 hex digits naming the code that renders CSV: this module and the DuckDB version (a cell's
    cached CSV body is reused only under the same)."""
    return digest_of(Path(__file__).read_bytes(), duckdb.__version__)[:16]


def _date_of(pump_time: str | None) -> str | None:
    return None if pump_time is None else pump_time[:10]


def _cells_in_range(manifest: str, start: str | None, end: str | None) -> list[tuple[dict, bool]]:
    """The cells of a table with rows in [start, end] (pump-calendar dates, inclusive; None: open),
    each with whether every row of it is inside (else the range's condition must be applied)."""
    out = []
    for cell in read_manifest(manifest)["cells"]:
        low, high = _date_of(cell["pump_time_min"]), _date_of(cell["pump_time_max"])
        if low is None:  # rows without a pump time: outside every bounded range
            if not start and not end:
                out.append((cell, True))
            continue
        if (start and high < start) or (end and low > end):
            continue
        out.append((cell, (not start or low >= start) and (not end or high <= end)))
    return out


def export_table(
    table: str | dict[str, str],
    out: str,
    start: str | None,
    end: str | None,
    source: str,
    log: logging.Logger,
) -> int:
    """Write the rows of ``table`` whose pump-calendar date lies in [start, end]; return how many
    rows were written.

    ``table`` is one table (a cells manifest, see :mod:`tandem_export.cells`, or one Parquet file),
    or for the combined exports a mapping account id -> table: the rows of every account together,
    with a first column ``account`` (VARCHAR) and sorted by account first.  ``start``/``end`` are
    inclusive YYYY-MM-DD dates or None (unbounded), applied to each row's ``pump_time``.  Rows are
    sorted by ORDER_COLUMNS.  The output format follows the extension of ``out``; the file is
    written to a temporary name and renamed, so ``out`` is either complete or absent.  Parquet files
    carry ``source``, ``table`` and the range in their key-value metadata.

    A table kept as cells is already in export order, cell after cell: its Parquet export is a copy
    of the rows of the cells in the range, and its CSV export is the header followed by each cell's
    CSV body, kept beside the cell (:func:`tandem_export.cells.csv_body_path`) and reused while the
    cell and this code are unchanged (a cell only partly in the range is written filtered).  So the
    file is the same bytes as one COPY of the whole table would write.
    """
    con = connect()
    con.sql("SET threads = 1")  # one writer thread: identical bytes on every run
    # Years of events do not fit in memory while sorted: sort within 1 GB, spilling beside the input
    # table (data/..., so that exports/ holds only exports).
    first = next(iter(table.values())) if isinstance(table, dict) else table
    con.sql("SET memory_limit = '1GB'")
    con.sql(f"SET temp_directory = {sql_str(str(Path(first).parent / '.duckdb-spill'))}")
    name = table_name(first)
    cells_in: list[tuple[dict, bool]] | None = None
    if isinstance(table, dict):
        parts = [f"SELECT {sql_str(a)} AS account, * FROM {source_sql(p)}" for a, p in table.items()]
        con.sql(f"CREATE VIEW t AS {' UNION ALL BY NAME '.join(parts)}")
    elif is_manifest(table):
        cells_in = _cells_in_range(table, start, end)
        listed = files(table)  # checks that every cell file is there
        base = folder(table)
        kept = [listed[0], *(str(base / c["file"]) for c, _ in cells_in)]
        con.sql(f"CREATE VIEW t AS SELECT * FROM read_parquet([{', '.join(sql_str(f) for f in kept)}])")
    else:
        con.sql(f"CREATE VIEW t AS SELECT * FROM read_parquet({sql_str(table)})")
    where = []
    if start:
        where.append(f"CAST(pump_time AS DATE) >= DATE {sql_str(start)}")
    if end:
        where.append(f"CAST(pump_time AS DATE) <= DATE {sql_str(end)}")
    cond = " AND ".join(where) or "true"
    columns = con.sql("DESCRIBE SELECT * FROM t").fetchall()
    names = [c[0] for c in columns]
    keys = order_columns(names, account=True)
    # One table already in export order (cells always are; a single file usually is) is streamed as
    # stored: with one thread and insertion order kept, DuckDB writes the rows in file order.
    sort = isinstance(table, dict) or (cells_in is None and not stored_in_order(table, keys))
    order = f" ORDER BY {', '.join(keys)}" if sort else ""
    fmt = Path(out).suffix.lstrip(".")
    meta = export_metadata(source, name, start, end)
    # A single table file may already be this export: every row, in export order, written by the
    # same DuckDB Parquet writer with the same metadata (the table builders write it so).  Then it is copied.
    as_written = fmt == "parquet" and cells_in is None and not sort and not where and _file_metadata(table) == meta
    csv_options = "FORMAT csv, DELIMITER ',', QUOTE '\"', ESCAPE '\"', NEW_LINE '\\r\\n'"
    if fmt == "parquet":
        select = f"SELECT * FROM t WHERE {cond}{order}"
        kv = ", ".join(f'"{k}": {sql_str(v)}' for k, v in meta.items())
        options = f"FORMAT parquet, COMPRESSION zstd, KV_METADATA {{{kv}}}"
    elif fmt == "csv":
        cols = ", ".join(_csv_column(n, t) for n, t, *_ in columns)
        select = f"SELECT {cols} FROM t WHERE {cond}{order}"
        options = f"{csv_options}, HEADER true"
    else:
        raise ValueError(f"unknown export format {fmt!r}")
    rows = con.sql(f"SELECT count(*) FROM t WHERE {cond}").fetchall()[0][0]
    with atomic_path(out) as tmp:
        if as_written:
            shutil.copyfile(table, tmp)
        elif fmt == "csv" and cells_in is not None:
            _csv_from_cells(con, table, cells_in, cols, cond, csv_options, tmp)
        else:
            con.sql(f"COPY ({select}) TO {sql_str(str(tmp))} ({options})")
    log.info("%s: %d rows (%s to %s) -> %s", name, rows, start or "first day", end or "last day", out)
    if not rows and name != "clock_changes":  # a pump whose clock never changed is normal
        log.warning(
            "%s: no rows for %s to %s; %s holds only the column names",
            name,
            start or "the first day",
            end or "the last day",
            out,
        )
    con.close()
    return rows


def _csv_from_cells(con, manifest: str, cells_in, cols: str, cond: str, options: str, out: Path) -> None:
    """The CSV export of a table kept as cells: the header, then each cell's body (the cached one
    for a cell wholly in the range, else the cell's rows in the range, written now)."""
    base, code = folder(manifest), _code_digest()
    schema = files(manifest)[0]

    def copy(select: str, path: Path, header: bool) -> None:
        con.sql(f"COPY ({select}) TO {sql_str(str(path))} ({options}, HEADER {'true' if header else 'false'})")

    with open(out, "wb") as sink:
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=".csv-parts-") as parts:
            head = Path(parts) / "header.csv"
            copy(f"SELECT {cols} FROM read_parquet({sql_str(schema)})", head, True)
            sink.write(head.read_bytes())
            for i, (cell, whole) in enumerate(cells_in):
                source = f"read_parquet({sql_str(str(base / cell['file']))})"
                if whole:
                    body = csv_body_path(manifest, cell["file"], code)
                    if not body.is_file():
                        with atomic_path(body) as tmp:
                            copy(f"SELECT {cols} FROM {source}", tmp, False)
                else:
                    body = Path(parts) / f"{i}.csv"
                    copy(f"SELECT {cols} FROM {source} WHERE {cond}", body, False)
                with open(body, "rb") as fh:
                    shutil.copyfileobj(fh, sink, 1 << 20)
