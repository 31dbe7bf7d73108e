"""The DuckDB database export (``exports/tandem.duckdb``): every table, all rows, updated in place.

A database built from nothing is written in a temporary folder beside its final name and renamed
(so it is either complete or absent).  After that, a run updates it in place, in one transaction:
for each table whose cells (``tandem_export.cells``) changed, the rows of the first changed cell
and of every cell after it are deleted and the new cells' rows inserted, so the table's rows stay
in export order (``SELECT *`` without ``ORDER BY`` returns them as a database built from nothing
would).  A new day changes the last cell only, so a daily update rewrites about 28 days of rows,
not the history.  A table whose lineage (settings, code) or columns changed is dropped and created
again within the same transaction.  DuckDB's transaction is atomic: a failed or killed update
leaves the previous database as it was (and Snakemake restores its copy of an ``update`` output).

The database records what it holds in two bookkeeping tables beside ``export_info``:
``export_tables`` (``table_name``, ``lineage``, ``schema_file``, ``rows``) and ``export_cells``
(``table_name``, ``cell``, ``cell_start``, ``digest``, ``rows``: one row per cell, in order).  They
are read back as untrusted: a database whose bookkeeping is not of the expected shape, names a
table outside the expected pattern, or whose tables' row counts disagree with it, is not updated
but built again from nothing.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import duckdb

from .cells import _LINEAGE, cell_label, cell_start, files, is_manifest, read_manifest, source_sql
from .errors import InputError
from .export import PRODUCER, order_columns, stored_in_order
from .storage import remove_stale_temporaries, sql_str

#: ``export_info``'s ``format``: the layout of the bookkeeping tables (a database of another
#: format is rebuilt).
FORMAT = "tandem_export.database/2"
_TABLE = re.compile(r"[a-z][a-z0-9_]{0,62}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_SCHEMA = re.compile(r"[^\x00-\x1f]{1,4096}")  # a cells schema file's name, or a single file's path
_BOOKKEEPING = ("export_info", "export_tables", "export_cells")


class DatabaseInUse(InputError, ValueError):
    """The database is open (locked) in another program."""


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path), config={"autoinstall_known_extensions": False, "threads": 1})
    con.sql("SET TimeZone = 'UTC'")
    con.sql("SET preserve_insertion_order = true")
    con.sql("SET memory_limit = '1GB'")  # sorts spill to disk beside the database
    con.sql("SET enable_progress_bar = false")
    # Text columns compressed with zstd rather than DuckDB's choice of dictionary/FSST: at 1M
    # events the database is built in 2.9 s instead of 3.7 s and is 92 MB instead of 110 MB
    # (the JSON text of events and raw_events is most of it); numbers keep their own methods.
    con.sql("SET force_compression = 'zstd'")
    return con


def _wanted(tables: dict[str, str]) -> dict[str, dict]:
    """Per table: its lineage, schema file and cells (``[(cell, digest, rows, file)]``) as the
    manifests give them; a single Parquet file is one table with no cells (always rebuilt)."""
    out = {}
    for name, path in tables.items():
        if not _TABLE.fullmatch(name):
            raise ValueError(f"table name {name!r} is not valid")
        if is_manifest(path):
            m = read_manifest(path)
            listed = files(path)  # checked to exist: [schema, cell files...]
            cells = [(c["cell"], c["digest"], c["rows"], f) for c, f in zip(m["cells"], listed[1:], strict=True)]
            out[name] = {"lineage": m["lineage"], "schema": m["schema"], "cells": cells, "schema_path": listed[0]}
        else:
            out[name] = {"lineage": "single-file", "schema": str(path), "cells": None, "schema_path": str(path)}
    return out


def _held(con, source: str) -> tuple[dict[str, dict] | None, str]:
    """What an existing database says it holds (table -> {"lineage", "schema", "rows", "cells":
    [(cell, digest, rows)]}), or None and the reason it cannot be updated in place."""
    names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if not set(_BOOKKEEPING) <= names:
        return None, "it has no bookkeeping tables"
    try:
        info = dict(con.execute("SELECT key, value FROM export_info").fetchall())
        tables = con.execute("SELECT table_name, lineage, schema_file, rows FROM export_tables").fetchall()
        cells = con.execute(
            "SELECT table_name, cell, cell_start, digest, rows FROM export_cells ORDER BY table_name, position"
        ).fetchall()
    except duckdb.Error as exc:
        return None, f"its bookkeeping tables cannot be read ({type(exc).__name__})"
    if info.get("format") != FORMAT or info.get("producer") != PRODUCER or info.get("source") != source:
        return None, "it is of another format, producer or source"
    held: dict[str, dict] = {}
    for name, lineage, schema, rows in tables:
        if not (
            isinstance(name, str)
            and _TABLE.fullmatch(name)
            and name not in _BOOKKEEPING
            and isinstance(lineage, str)
            and _LINEAGE.fullmatch(lineage)
            and isinstance(schema, str)
            and _SCHEMA.fullmatch(schema)
            and type(rows) is int
            and rows >= 0
            and name not in held
            and name in names
        ):
            return None, "its table list is not valid"
        held[name] = {"lineage": lineage, "schema": schema, "rows": rows, "cells": []}
    for name, cell, start, digest, rows in cells:
        entry = held.get(name)
        if (
            entry is None
            or not (cell is None or (type(cell) is int and -(10**6) <= cell <= 10**6))
            or start != cell_label(cell)
            or not (isinstance(digest, str) and _DIGEST.fullmatch(digest))
            or not (type(rows) is int and rows > 0)
        ):
            return None, "its cell list is not valid"
        entry["cells"].append((cell, digest, rows))
    for name, entry in held.items():
        ordered = [(c is None, c or 0) for c, _, _ in entry["cells"]]
        if ordered != sorted(set(ordered)) or sum(r for _, _, r in entry["cells"]) != entry["rows"]:
            return None, f"the cells of {name} are not in order or do not add up"
        if con.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0] != entry["rows"]:
            return None, f"{name} does not hold the rows its cells say"
    return held, ""


def _same(wanted: dict[str, dict], held: dict[str, dict]) -> bool:
    """Whether the database already holds exactly the wanted tables and cells (nothing to write)."""
    return list(wanted) == list(held) and all(
        w["cells"] is not None
        and (w["lineage"], w["schema"]) == (held[n]["lineage"], held[n]["schema"])
        and [(c, d, r) for c, d, r, _ in w["cells"]] == held[n]["cells"]
        for n, w in wanted.items()
    )


def _from_cell_sql(cell: int | None) -> str:
    """A WHERE condition selecting the rows of ``cell`` and of every cell after it (NULL instants last)."""
    if cell is None:
        return "timestamp IS NULL"
    start = cell_start(cell)
    return f"timestamp >= TIMESTAMPTZ '{start:%Y-%m-%d %H:%M:%S}+00' OR timestamp IS NULL"


def _create(con, name: str, path: str) -> None:
    rows_sql = source_sql(path)
    names = [c[0] for c in con.sql(f"DESCRIBE SELECT * FROM {rows_sql}").fetchall()]
    keys = order_columns(names)
    # Cells are in export order by construction; a single file is checked.
    in_order = is_manifest(path) or stored_in_order(path, keys)
    order = "" if in_order else f" ORDER BY {', '.join(keys)}"
    con.sql(f'CREATE TABLE "{name}" AS SELECT * FROM {rows_sql}{order}')


def _write_bookkeeping(con, wanted: dict[str, dict], source: str, counts: dict[str, int]) -> None:
    for name in _BOOKKEEPING:
        con.execute(f"DROP TABLE IF EXISTS {name}")
    con.execute("CREATE TABLE export_info (key VARCHAR, value VARCHAR)")
    con.executemany(
        "INSERT INTO export_info VALUES (?, ?)",
        [["source", source], ["producer", PRODUCER], ["tables", ", ".join(wanted)], ["format", FORMAT]],
    )
    con.execute("CREATE TABLE export_tables (table_name VARCHAR, lineage VARCHAR, schema_file VARCHAR, rows BIGINT)")
    con.executemany(
        "INSERT INTO export_tables VALUES (?, ?, ?, ?)",
        [[n, w["lineage"], w["schema"], counts[n]] for n, w in wanted.items()],
    )
    con.execute(
        "CREATE TABLE export_cells"
        " (table_name VARCHAR, position INTEGER, cell BIGINT, cell_start VARCHAR, digest VARCHAR, rows BIGINT)"
    )
    rows = [
        [n, i, cell, cell_label(cell), digest, r]
        for n, w in wanted.items()
        for i, (cell, digest, r, _) in enumerate(w["cells"] or [])
    ]
    if rows:
        con.executemany("INSERT INTO export_cells VALUES (?, ?, ?, ?, ?, ?)", rows)


def _update(con, wanted: dict[str, dict], held: dict[str, dict], tables: dict[str, str], log) -> dict[str, int]:
    """Bring every table of ``con`` to ``wanted`` (within the caller's transaction); the rows of each."""
    counts: dict[str, int] = {}
    for name, want in wanted.items():
        have = held.get(name)
        if (
            want["cells"] is None
            or have is None
            or (have["lineage"], have["schema"]) != (want["lineage"], want["schema"])
        ):
            con.execute(f'DROP TABLE IF EXISTS "{name}"')
            _create(con, name, tables[name])
            log.info("%s: created again", name)
        else:
            old, new = have["cells"], [(c, d, r) for c, d, r, _ in want["cells"]]
            i = 0
            while i < min(len(old), len(new)) and old[i] == new[i]:
                i += 1
            if i < len(old):
                con.execute(f'DELETE FROM "{name}" WHERE {_from_cell_sql(old[i][0])}')
            if i < len(new):
                listed = ", ".join(sql_str(f) for f in [want["schema_path"], *(c[3] for c in want["cells"][i:])])
                con.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM read_parquet([{listed}])')
            if i < max(len(old), len(new)):
                log.info("%s: %d of %d cell(s) written again", name, len(new) - i, len(new))
        rows = counts[name] = con.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0]
        if want["cells"] is not None and rows != sum(c[2] for c in want["cells"]):
            raise RuntimeError(
                f"{name}: {rows} rows in the database, its cells list {sum(c[2] for c in want['cells'])}"
            )
    for name in held:
        if name not in wanted:
            con.execute(f'DROP TABLE IF EXISTS "{name}"')
            log.info("%s: dropped (no longer exported)", name)
    return counts


def export_database(tables: dict[str, str], out: str, source: str, log: logging.Logger) -> dict[str, int]:
    """Bring the DuckDB database ``out`` to every table of ``tables`` (name -> cells manifest or
    Parquet file), all rows; return the rows of each table (name -> rows, in the order of ``tables``).

    Each table keeps its name, column names and types, with rows in the export order; the table
    ``export_info`` (key, value) says where the data came from (``source``), so demo data stays
    labelled.  An existing database of the same format and source is updated in place in one
    transaction (see the module's docstring); any other is built again from nothing in a
    temporary folder beside ``out`` under its final file name (DuckDB records the name inside the
    file) and renamed, so ``out`` is either complete or absent.  DuckDB gives every new file a
    random identifier, so a rebuild has the same contents but not the same bytes.

    ValueError (one line, what to do) when ``out`` is open in another program, or a manifest is not
    valid (from :func:`tandem_export.cells.read_manifest`).
    """
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    wanted = _wanted(tables)
    if target.is_file():
        try:
            con = _connect(target)
        except duckdb.Error as exc:
            if "lock" in str(exc).lower():
                raise DatabaseInUse(f"{out} is open in another program; close it there and run again") from None
            log.info("%s is not a DuckDB database this pipeline can update; built again from nothing", out)
        else:
            try:
                held, why = _held(con, source)
                if held is not None and _same(wanted, held):
                    log.info("%d tables already up to date in %s", len(tables), out)
                    return {name: held[name]["rows"] for name in wanted}
                if held is not None:
                    con.begin()
                    try:
                        counts = _update(con, wanted, held, tables, log)
                        _write_bookkeeping(con, wanted, source, counts)
                        con.commit()
                    except BaseException:
                        con.rollback()
                        raise
                    con.execute("CHECKPOINT")
                    log.info("%d tables updated in place -> %s", len(tables), out)
                    return counts
                log.info("%s is not updated in place (%s); built again from nothing", out, why)
            finally:
                con.close()
    return _build(wanted, tables, target, source, log)


def _build(wanted: dict[str, dict], tables: dict[str, str], target: Path, source: str, log) -> dict[str, int]:
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    counts: dict[str, int] = {}
    try:
        tmp = folder / target.name
        con = _connect(tmp)
        try:
            for name, path in tables.items():
                _create(con, name, path)
                rows = counts[name] = con.sql(f'SELECT count(*) FROM "{name}"').fetchall()[0][0]
                log.info("%s: %d rows", name, rows)
            _write_bookkeeping(con, wanted, source, counts)
            con.sql("CHECKPOINT")
        finally:
            con.close()
        os.replace(tmp, target)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    log.info("%d tables -> %s", len(tables), target)
    return counts
