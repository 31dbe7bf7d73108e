"""Tables kept as time cells: one Parquet file per cell of a fixed grid, listed by a manifest.

The grid is the raw store's: 28-day cells counted from the pump epoch 2008-01-01 (``stored``'s
window grid), here applied to each row's instant ``timestamp`` (UTC), which is the first sort key
of every table (``export.ORDER_COLUMNS``).  Rows without an instant go to a last cell, ``no-time``.
So the cells, in order, are the table in export order: a table's export is its cells one after
another, and a new day changes the last cell only, unless the time model moved earlier rows
(then the cells holding them change too, and only those).

On disk, a table ``T`` of an account is

- ``data/tables/T.cells.json``: the manifest (what Snakemake sees): the format, the table, the
  lineage (settings and code digest) it was built with, the schema file, and per cell its number,
  file, rows, digest and the earliest and latest ``pump_time`` of its rows;
- ``data/tables/T/``: the cell files ``{start date}.{16 hex digits}.parquet`` (the digits: the
  cell's digest), ``schema.{16 hex}.parquet`` (no rows: the columns, for a table without rows),
  and the CSV bodies of cells an export wrote (``{cell file stem}.{16 hex}.csv``, see
  :func:`csv_body_path`).

A cell's digest says what it holds: for the event tables, what its rows are built from (the
window files, row numbers and placement of its events, and the lineage); for derived tables, its
contents (rows, and a hash of every row).  A cell whose digest did not change keeps its file;
only the others are written.  A cell's file name carries its digest, so a new cell never
overwrites an old one: the manifest is replaced atomically at the end, and the files no manifest
lists are removed at the start of the next build (a failed build leaves the previous manifest and
all its files, and Snakemake restores that manifest: the rules declare it ``update``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading
from pathlib import Path

from .errors import InputError
from .storage import atomic_path, sql_str

#: The grid: cells of CELL_DAYS days from GRID_EPOCH (midnight UTC), as the raw windows' grid.
GRID_EPOCH = dt.datetime(2008, 1, 1, tzinfo=dt.UTC)
CELL_DAYS = 28
CELL_MICROSECONDS = CELL_DAYS * 86_400 * 1_000_000
EPOCH_US = int(GRID_EPOCH.timestamp()) * 1_000_000
#: The label of the cell of rows without an instant (always last).
NO_TIME = "no-time"
#: The suffix of a manifest; the table's cells are in the folder of the same name without it.
SUFFIX = ".cells.json"
FORMAT = "tandem_export.cells/1"

_CELL_FILE = re.compile(r"(?:\d{4}-\d{2}-\d{2}|no-time)\.[0-9a-f]{16}\.parquet")
_SCHEMA_FILE = re.compile(r"schema\.[0-9a-f]{16}\.parquet")
_BODY_FILE = re.compile(r"(?:\d{4}-\d{2}-\d{2}|no-time)\.[0-9a-f]{16}\.[0-9a-f]{16}\.csv")
_TABLE = re.compile(r"[a-z][a-z0-9_]*")
_LINEAGE = re.compile(r"[0-9A-Za-z._:-]{1,200}")
_PUMP_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,6})?")
#: Most rows a cell can hold: more than a pump logs in 28 days many times over.
MAX_CELL_ROWS = 100_000_000


class ManifestError(InputError, ValueError):
    """A manifest or its files are not what they must be: one line, saying to remove it and run again."""


def cell_sql(column: str = "timestamp") -> str:
    """SQL (BIGINT, NULL for a NULL instant) of the cell of the TIMESTAMPTZ ``column``: the floor of
    (microseconds since GRID_EPOCH) / CELL_MICROSECONDS, exact in integers (no float)."""
    x = f"(epoch_us({column}) - {EPOCH_US})"
    return f"CAST(({x} - ((({x} % {CELL_MICROSECONDS}) + {CELL_MICROSECONDS}) % {CELL_MICROSECONDS})) // {CELL_MICROSECONDS} AS BIGINT)"


def cell_start(cell: int) -> dt.datetime:
    """The first instant of ``cell`` (midnight UTC, CELL_DAYS * cell days after GRID_EPOCH)."""
    return GRID_EPOCH + dt.timedelta(days=CELL_DAYS * cell)


def cell_label(cell: int | None) -> str:
    """The cell's start date (YYYY-MM-DD, UTC), or NO_TIME for the cell of rows without an instant."""
    if cell is None:
        return NO_TIME
    return cell_start(cell).strftime("%Y-%m-%d")


def cell_bounds_sql(cell: int | None, column: str = "timestamp") -> str:
    """A WHERE condition selecting the rows of ``cell`` by their instant ``column``."""
    if cell is None:
        return f"{column} IS NULL"
    start = cell_start(cell)
    end = start + dt.timedelta(days=CELL_DAYS)
    return f"{column} >= TIMESTAMPTZ '{start:%Y-%m-%d %H:%M:%S}+00' AND {column} < TIMESTAMPTZ '{end:%Y-%m-%d %H:%M:%S}+00'"


def is_manifest(path: str | Path) -> bool:
    """Whether ``path`` names a cells manifest (``*.cells.json``) rather than one Parquet file."""
    return str(path).endswith(SUFFIX)


def folder(manifest: str | Path) -> Path:
    """The folder of a table's cells: the manifest's path without ``.cells.json``."""
    return Path(str(manifest)[: -len(SUFFIX)])


def table_name(path: str | Path) -> str:
    """The table a manifest (``T.cells.json``) or a Parquet file (``T.parquet``) holds."""
    name = Path(path).name
    return name[: -len(SUFFIX)] if is_manifest(name) else Path(name).stem


def _check_pump_time(value, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _PUMP_TIME.fullmatch(value):
        raise ManifestError(
            f"{where}: pump_time bound {value!r} is not a 'YYYY-MM-DD HH:MM:SS' time; remove it and run again"
        )
    return value


def read_manifest(path: str | Path) -> dict:
    """A manifest, checked: ValueError (saying what is wrong, and to rebuild) unless every field has
    its shape and every file name matches its pattern in full (so that no name read from it can
    reach outside the table's folder).

    Returns {"table", "lineage", "schema", "cells": [{"cell": int | None, "file", "rows",
    "digest", "pump_time_min", "pump_time_max"}, ...]} with cells in grid order, NO_TIME last.
    """
    where = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{where}: not a readable cells manifest ({exc}); remove it and run again") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ManifestError(f"{where}: not a cells manifest of format {FORMAT}; remove it and run again")
    table, lineage, schema, cells = (data.get(k) for k in ("table", "lineage", "schema", "cells"))
    if not isinstance(table, str) or not _TABLE.fullmatch(table):
        raise ManifestError(f"{where}: table name {table!r} is not valid; remove it and run again")
    if not isinstance(lineage, str) or not _LINEAGE.fullmatch(lineage):
        raise ManifestError(f"{where}: lineage {lineage!r} is not valid; remove it and run again")
    if not isinstance(schema, str) or not _SCHEMA_FILE.fullmatch(schema):
        raise ManifestError(f"{where}: schema file {schema!r} is not valid; remove it and run again")
    if not isinstance(cells, list):
        raise ManifestError(f"{where}: 'cells' is not a list; remove it and run again")
    out, last = [], None
    for i, entry in enumerate(cells):
        at = f"{where}: cell {i + 1}"
        if not isinstance(entry, dict) or set(entry) != {
            "cell",
            "file",
            "rows",
            "digest",
            "pump_time_min",
            "pump_time_max",
        }:
            raise ManifestError(f"{at} is not an object with the six cell fields; remove it and run again")
        cell, name, rows, digest = entry["cell"], entry["file"], entry["rows"], entry["digest"]
        if cell is not None and (type(cell) is not int or not -(10**6) <= cell <= 10**6):
            raise ManifestError(f"{at}: cell number {cell!r} is not an integer in range; remove it and run again")
        if last is not None and (last[0] is None or (cell is not None and cell <= last[1])):
            raise ManifestError(f"{at}: cells are not in grid order; remove it and run again")
        if not isinstance(name, str) or not _CELL_FILE.fullmatch(name) or not name.startswith(cell_label(cell) + "."):
            raise ManifestError(
                f"{at}: file name {name!r} is not that of cell {cell_label(cell)}; remove it and run again"
            )
        if type(rows) is not int or not 0 < rows <= MAX_CELL_ROWS:
            raise ManifestError(
                f"{at}: rows {rows!r} is not a count from 1 to {MAX_CELL_ROWS}; remove it and run again"
            )
        if (
            not isinstance(digest, str)
            or not re.fullmatch(r"[0-9a-f]{64}", digest)
            or not name.split(".")[1] == digest[:16]
        ):
            raise ManifestError(f"{at}: digest {digest!r} is not the file's sha-256 digest; remove it and run again")
        low = _check_pump_time(entry["pump_time_min"], at)
        high = _check_pump_time(entry["pump_time_max"], at)
        if (low is None) != (high is None) or (low is not None and low > high):
            raise ManifestError(f"{at}: pump_time bounds {low!r} .. {high!r} are not a range; remove it and run again")
        out.append(dict(entry))
        last = (cell, cell)
    return {"table": table, "lineage": lineage, "schema": schema, "cells": out}


def files(path: str | Path) -> list[str]:
    """The Parquet files of a table, in order: for a manifest, its schema file then its cells (every
    one checked to exist); for a Parquet file, itself.  ValueError when a manifest is not valid or a
    file it lists is missing."""
    if not is_manifest(path):
        return [str(path)]
    manifest = read_manifest(path)
    base = folder(path)
    listed = [base / manifest["schema"], *(base / c["file"] for c in manifest["cells"])]
    missing = [p.name for p in listed if not p.is_file()]
    if missing:
        raise ManifestError(f"{path}: cell file(s) missing ({', '.join(missing[:3])}); remove it and run again")
    return [str(p) for p in listed]


def source_sql(path: str | Path) -> str:
    """``read_parquet([...])`` of a table's files (see :func:`files`), for a FROM clause."""
    return "read_parquet([" + ", ".join(sql_str(f) for f in files(path)) + "])"


def csv_body_path(manifest: str | Path, cell_file: str, code: str) -> Path:
    """Where an export keeps the CSV body (rows without the header) of a cell file: beside it,
    named after it and ``code`` (16 hex digits of the export code's digest), so a changed cell
    or changed CSV code never reads an old body."""
    if not _CELL_FILE.fullmatch(cell_file) or not re.fullmatch(r"[0-9a-f]{16}", code):
        raise ValueError(f"not a cell file and code digest: {cell_file!r}, {code!r}")
    return folder(manifest) / f"{cell_file.removesuffix('.parquet')}.{code}.csv"


def digest_of(*parts: bytes | str) -> str:
    """SHA-256 (hex) of ``parts``, each length-prefixed (so no two lists of parts give one input)."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else bytes(part)
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


class CellStore:
    """The cells of one table being built: those kept from the previous build and those written now.

    ``manifest`` is the table's manifest path; the previous manifest there (if valid and of the
    same ``lineage``) says which cells exist.  Files of the folder that it does not list (left by
    a build that failed) are removed now.  Call :meth:`keep` for a cell whose digest may be
    unchanged, :meth:`write` for one to write, :meth:`write_schema` once, and :meth:`commit` at
    the end.  Safe to use from several threads.
    """

    def __init__(self, manifest: str | Path, table: str, lineage: str) -> None:
        if not _TABLE.fullmatch(table) or not _LINEAGE.fullmatch(lineage):
            raise ValueError(f"not a table name and lineage: {table!r}, {lineage!r}")
        self.manifest, self.table, self.lineage = Path(manifest), table, lineage
        self.folder = folder(manifest)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.previous: dict = {}
        self.previous_schema: str | None = None
        listed: set[str] = set()
        try:
            old = read_manifest(self.manifest) if self.manifest.exists() else None
        except ValueError:
            old = None  # rebuilt from nothing
        if old is not None:
            listed = {old["schema"], *(c["file"] for c in old["cells"])}
            if old["table"] == table and old["lineage"] == lineage:
                self.previous = {c["cell"]: c for c in old["cells"] if (self.folder / c["file"]).is_file()}
                self.previous_schema = old["schema"]
        keep_bodies = {Path(n).stem for n in listed}
        for entry in self.folder.iterdir():
            name = entry.name
            ours = _CELL_FILE.fullmatch(name) or _SCHEMA_FILE.fullmatch(name) or _BODY_FILE.fullmatch(name)
            if not ours or name in listed or (_BODY_FILE.fullmatch(name) and name.rsplit(".", 2)[0] in keep_bodies):
                continue
            entry.unlink(missing_ok=True)
        self.cells: dict = {}
        self.schema: str | None = None
        self._lock = threading.Lock()

    def keep(self, cell: int | None, digest: str) -> bool:
        """Keep the previous file of ``cell`` if its digest was ``digest``; whether it was kept."""
        old = self.previous.get(cell)
        if old is None or old["digest"] != digest:
            return False
        with self._lock:
            self.cells[cell] = old
        return True

    def write(self, con, cell: int | None, digest: str, select: str, stats: tuple | None = None) -> int:
        """COPY ``select`` (the cell's rows, in order) to the cell's file; returns its rows (a cell of
        no rows is not listed).  ``stats`` is (rows, earliest, latest pump_time as text) when the
        caller knows them; else they are read back from the file written."""
        name = f"{cell_label(cell)}.{digest[:16]}.parquet"
        path = self.folder / name
        with atomic_path(path) as tmp:
            con.execute(f"COPY ({select}) TO {sql_str(str(tmp))} (FORMAT parquet, COMPRESSION zstd)")
            rows, low, high = (
                stats
                or con.execute(
                    f"SELECT count(*), CAST(min(pump_time) AS VARCHAR), CAST(max(pump_time) AS VARCHAR)"
                    f" FROM read_parquet({sql_str(str(tmp))})"
                ).fetchall()[0]
            )
        if rows:
            entry = {
                "cell": cell,
                "file": name,
                "rows": int(rows),
                "digest": digest,
                "pump_time_min": low,
                "pump_time_max": high,
            }
            with self._lock:
                self.cells[cell] = entry
        else:
            path.unlink()
        return int(rows)

    def write_schema(self, con, select: str) -> None:
        """The table's schema file: ``select`` with no rows (kept when its columns did not change)."""
        columns = con.execute(f"DESCRIBE {select}").fetchall()
        name = f"schema.{digest_of(json.dumps([list(c[:2]) for c in columns]))[:16]}.parquet"
        if name != self.previous_schema or not (self.folder / name).is_file():
            with atomic_path(self.folder / name) as tmp:
                con.execute(
                    f"COPY (SELECT * FROM ({select}) LIMIT 0) TO {sql_str(str(tmp))} (FORMAT parquet, COMPRESSION zstd)"
                )
        self.schema = name

    def written(self) -> list[dict]:
        """The cells listed so far, in grid order (NO_TIME last)."""
        with self._lock:
            return [self.cells[c] for c in sorted(self.cells, key=lambda c: (c is None, c or 0))]

    def files(self) -> list[str]:
        """The table's files as they stand (schema, then the cells in order), before :meth:`commit`."""
        if self.schema is None:
            raise ValueError(f"{self.table}: no schema written yet")
        return [str(self.folder / self.schema), *(str(self.folder / c["file"]) for c in self.written())]

    def commit(self) -> dict:
        """Write the manifest (atomically) listing the schema and every cell kept or written."""
        if self.schema is None:
            raise ValueError(f"{self.table}: no schema written")
        data = {
            "format": FORMAT,
            "table": self.table,
            "lineage": self.lineage,
            "schema": self.schema,
            "cells": self.written(),
        }
        with atomic_path(self.manifest) as tmp:
            tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        return data


def write_from_select(con, select: str, store: CellStore, order: list[str]) -> int:
    """Split the rows of ``select`` (a table's SQL; it has a ``timestamp`` column) into ``store``'s
    cells: each cell's digest is of its contents (the schema, its rows, and the sum of a hash of
    each row); a cell of the previous digest keeps its file, every other is written with its rows
    sorted by ``order`` (then by their place in ``select``'s result).  Returns the table's rows.

    The rows are computed once into a temporary table of ``con`` (spilled to disk beyond its memory
    limit).  ValueError when ``select`` has no ``timestamp`` column.
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE cell_rows AS SELECT *, {cell_sql()} AS cell_number FROM ({select})")
    try:
        names = [r[0] for r in con.execute("DESCRIBE SELECT * FROM cell_rows").fetchall()]
        if "timestamp" not in names:
            raise ValueError(f"{store.table}: no timestamp column to place its rows in time cells")
        store.write_schema(con, "SELECT * EXCLUDE (cell_number) FROM cell_rows")
        stats = con.execute(
            "SELECT cell_number, count(*), CAST(sum(hash(r)) AS VARCHAR),"
            " CAST(min(pump_time) AS VARCHAR), CAST(max(pump_time) AS VARCHAR)"
            " FROM cell_rows r GROUP BY cell_number ORDER BY 1"
        ).fetchall()
        keys = ", ".join([*(f'"{k}"' for k in order), "rowid"])
        total, changed = 0, []
        for cell, rows, hashed, low, high in stats:
            digest = digest_of("content/1", store.schema or "", str(rows), hashed)
            total += int(rows)
            if not store.keep(cell, digest):
                changed.append((cell, digest, (int(rows), low, high)))
        # Few cells (a new day): each is sorted on its own.  Many (a build from nothing): the rows are
        # sorted once, cell by cell, and each cell read in that order (its row groups found by
        # their min/max of cell_number) rather than the whole table scanned and a cell sorted 60 times.
        source, sort = "cell_rows", f" ORDER BY {keys}"
        if len(changed) > 2:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE cell_sorted AS SELECT * FROM cell_rows ORDER BY cell_number, {keys}"
            )
            source, sort = "cell_sorted", ""
        for cell, digest, cell_stats in changed:
            where = "cell_number IS NULL" if cell is None else f"cell_number = {int(cell)}"
            store.write(
                con, cell, digest, f"SELECT * EXCLUDE (cell_number) FROM {source} WHERE {where}{sort}", cell_stats
            )
        return total
    finally:
        con.execute("DROP TABLE IF EXISTS cell_rows")
        con.execute("DROP TABLE IF EXISTS cell_sorted")
