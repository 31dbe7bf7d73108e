"""exports/MANIFEST.json: every file under exports/ with its table, range, source, settings, rows and SHA-256.

Each export job records what it wrote, beside the data and never under exports/: the export
``exports/<dir>/<name>`` has its record in ``data/<dir>/export-records/<name>.json`` (``<dir>`` is
empty, an account id or ``combined``), holding the manifest entry and the file's size, times,
inode and device when it was recorded.  After a run (Snakemake's onsuccess and onerror handlers),
:func:`write_manifest` lists every file under exports/, taking each entry from its record while
the file is still the one recorded (no file is read then, so a run that wrote nothing costs a
``stat`` per file), and otherwise reading the file itself: the SHA-256 and rows are computed, and
what only the writing job knew (source, settings) is null.  :func:`stale_exports` names the
exports built from other settings than the current ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from .storage import atomic_path, sha256_file

#: The manifest's name, under exports/.
MANIFEST = "MANIFEST.json"
#: The folder of an export folder's records, under data/<dir>/.
RECORDS = "export-records"
#: Written into the manifest (as in every exported Parquet file's metadata).
PRODUCER = "tandem-export pipeline"
#: The order of an entry's keys in MANIFEST.json.
ENTRY_KEYS = ("path", "account", "accounts", "table", "tables", "start", "end", "source", "settings", "rows", "sha256")
_RANGE = re.compile(r"^(?P<table>.+)_(?P<start>\d{4}-\d{2}-\d{2})_(?P<end>\d{4}-\d{2}-\d{2})$")
#: A file of a table's Hive-partitioned dataset (tandem_export.dataset): [account/]table/utc_period=P/part-0.parquet.
_DATASET_PART = re.compile(
    r"^(?:(?P<account>[^/]+)/)?(?P<table>[a-z][a-z0-9_]*)/utc_period=(?P<period>[0-9a-z_-]+)/part-0\.parquet$"
)


def combined_settings(lineages: list[str]) -> str:
    """The settings digest of a combined export (every account's rows): 16 hex digits of the SHA-256
    of the accounts' own digests (cfg.Settings.lineage), in the order given."""
    return hashlib.sha256("\n".join(lineages).encode("utf-8")).hexdigest()[:16]


def record_path(relative: str | Path, data: str | Path = "data") -> Path:
    """Where the record of the export ``exports/<relative>`` is kept: ``data/<dir>/export-records/<name>.json``."""
    relative = Path(relative)
    part = _DATASET_PART.match(relative.as_posix())
    if part:  # data/[account/]export-records/{table}/utc_period=P/part-0.parquet.json
        folder = Path(data) / (part["account"] or "") / RECORDS / part["table"] / f"utc_period={part['period']}"
        return folder / f"{relative.name}.json"
    return Path(data) / relative.parent / RECORDS / f"{relative.name}.json"


def _stamp(st: os.stat_result) -> list[int]:
    """What tells that a file is unchanged: size, mtime, ctime (never set back by hand), inode, device."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def record_export(
    out: str | Path,
    *,
    table: str | None,
    start: str | None,
    end: str | None,
    source: str,
    settings: str | list[str],
    rows: int,
    tables: dict[str, int] | None = None,
    accounts: list[str] | None = None,
    exports: str | Path = "exports",
    data: str | Path = "data",
) -> dict:
    """Record the export ``out`` (a path under ``exports``), just written by the calling job.

    ``table`` is the table's name (None for the database, whose ``tables`` maps each table to its
    rows), ``start``/``end`` the inclusive YYYY-MM-DD range (None: unbounded), ``source`` the
    source label, ``settings`` the account's cfg.Settings.lineage (for a combined export the list of
    every account's, recorded as :func:`combined_settings`), ``rows`` the rows written (for the
    database: of every table), ``accounts`` the account ids of a combined export.  Reads ``out`` once for its SHA-256 and writes the record atomically;
    returns the manifest entry.  Raises OSError when ``out`` cannot be read or the record written.
    """
    out = Path(out)
    relative = out.relative_to(exports)
    entry = {
        "path": relative.as_posix(),
        "accounts": list(accounts) if accounts else None,
        "table": table,
        "tables": tables,
        "start": start or None,
        "end": end or None,
        "source": source,
        "settings": settings if isinstance(settings, str) else combined_settings(list(settings)),
        "rows": int(rows),
        "sha256": sha256_file(out),
    }
    _write_record(record_path(relative, data), entry, os.stat(out), by="export")
    return _entry(entry, relative)


def _write_record(path: Path, entry: dict, st: os.stat_result, by: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"entry": entry, "stat": _stamp(st), "by": by}, indent=1) + "\n")


def _read_record(path: Path) -> dict | None:
    """A record, or None when it is absent or unreadable (then the file is read instead)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("entry"), dict):
        return None
    return record


def _entry(entry: dict, relative: Path) -> dict:
    """An entry in manifest order.  ``path`` and ``account`` come from the path (a file in a folder
    of exports/ has that folder as its account: a sheet account's id, or ``combined``); the rest is
    as recorded.  ``account``, ``accounts`` (the accounts of a combined export) and ``tables`` (the
    database's rows per table) appear only when they apply."""
    part = _DATASET_PART.match(relative.as_posix())
    if part:
        account = part["account"]
    else:
        account = relative.parts[0] if len(relative.parts) > 1 else None
    full = {**entry, "path": relative.as_posix(), "account": account}
    out = {k: full.get(k) for k in ENTRY_KEYS}
    for optional in ("account", "accounts", "tables"):
        if out[optional] is None:
            del out[optional]
    return out


def _rows_of(path: Path) -> tuple[int | None, dict[str, int] | None]:
    """Rows of a file no record describes: a Parquet file's footer, a CSV file's records after the
    header, a DuckDB database's tables (then also rows per table); (None, None) for anything else."""
    suffix = path.suffix
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows, None
        if suffix == ".csv":
            import csv

            with open(path, newline="", encoding="utf-8", errors="replace") as fh:
                return max(sum(1 for _ in csv.reader(fh)) - 1, 0), None
        if suffix == ".duckdb":
            import duckdb

            con = duckdb.connect(str(path), read_only=True)
            try:
                names = [r[0] for r in con.sql("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
                tables = {n: con.sql(f'SELECT count(*) FROM "{n}"').fetchall()[0][0] for n in names}
            finally:
                con.close()
            for bookkeeping in ("export_info", "export_tables", "export_cells"):  # (tandem_export.database)
                tables.pop(bookkeeping, None)
            return sum(tables.values()), tables
    except Exception:  # noqa: BLE001 - not readable as its name says: listed without rows
        return None, None
    return None, None


def _unrecorded(path: Path, relative: Path, digest: str) -> dict:
    """The entry of a file no valid record describes: what its name and bytes tell, settings unknown."""
    stem = relative.name.split(".", 1)[0]
    match = _RANGE.match(stem)
    part = _DATASET_PART.match(relative.as_posix())
    if part:
        stem = part["table"]
    rows, tables = _rows_of(path)
    return {
        "table": None if tables is not None else (match["table"] if match else stem),
        "tables": tables,
        "start": match["start"] if match else None,
        "end": match["end"] if match else None,
        "source": None,
        "settings": None,
        "rows": rows,
        "sha256": digest,
    }


def describe(exports: str | Path = "exports", data: str | Path = "data") -> list[dict]:
    """The manifest entries of every file under ``exports`` (recursively, sorted by path; not the
    manifest itself, nor hidden files such as a writer's temporaries).

    A file whose size, times, inode and device match its record is described by the record without
    being read.  Any other file is hashed: when its bytes are still those recorded (it was only
    touched) the record stands; otherwise it is described by its name and bytes alone, with
    ``source`` and ``settings`` null.  Either way the record is renewed, so the file is not read
    again on the next run.  Each entry: path (relative to ``exports``, "/" separated), account (files
    in a folder: the account id, or ``combined``, whose entries add accounts: the account ids), table
    (None for the database, with tables: rows per table), start and end (YYYY-MM-DD or None), source, settings (digest or None),
    rows (None when unknown) and sha256 (hex).
    """
    root = Path(exports)
    if not root.is_dir():
        return []
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            path = Path(dirpath) / name
            relative = path.relative_to(root)
            if name.startswith(".") or relative == Path(MANIFEST) or not path.is_file():
                continue
            record_file = record_path(relative, data)
            record = _read_record(record_file)
            st = path.stat()
            if record is not None and record.get("stat") == _stamp(st):
                entries.append(_entry(record["entry"], relative))
                continue
            digest = sha256_file(path)
            if record is not None and record["entry"].get("sha256") == digest:
                entry, by = record["entry"], record.get("by", "export")
            else:
                entry, by = _unrecorded(path, relative, digest), "manifest"
            try:
                _write_record(record_file, entry, st, by=by)
            except OSError:
                pass  # advisory: the file is read again next time
            entries.append(_entry(entry, relative))
    return sorted(entries, key=lambda e: e["path"])


def write_manifest(
    current: dict[str, str],
    complete: bool,
    exports: str | Path = "exports",
    data: str | Path = "data",
    entries: list[dict] | None = None,
    fetch: dict[str, dict] | None = None,
) -> list[dict]:
    """Write ``exports/MANIFEST.json`` describing every file under ``exports`` (``entries``, by
    default :func:`describe`).

    ``current`` maps each account's folder under exports/ ('' for the single-account files,
    'combined' for the combined ones) to its current settings digest; ``complete`` says whether the
    run that writes it completed; ``fetch`` maps the folder of each Tandem Source account to its
    fetch entry (stored.fetch_entry), left out when empty.  The file is written atomically, and
    only when its text changes (a run that changed nothing leaves it as it was, to the byte and the
    mtime).  Returns the entries.  Raises OSError when it cannot be written.
    """
    if entries is None:
        entries = describe(exports, data)
    body = {
        "producer": PRODUCER,
        "run": "complete" if complete else "failed",
        "settings": {k: current[k] for k in sorted(current)},
        **({"fetch": {k: fetch[k] for k in sorted(fetch)}} if fetch else {}),
        "files": entries,
    }
    text = json.dumps(body, indent=1, ensure_ascii=False) + "\n"
    target = Path(exports) / MANIFEST
    try:
        if target.read_text(encoding="utf-8") == text:
            return entries
    except (OSError, UnicodeDecodeError):
        pass
    if entries or target.exists():
        with atomic_path(target) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return entries


def _folder(path: str) -> str:
    part = _DATASET_PART.match(path)
    if part:
        return part["account"] or ""
    return path.split("/", 1)[0] if "/" in path else ""


def is_export_name(name: str, tables: tuple[str, ...], formats: tuple[str, ...], database: str) -> bool:
    """Whether ``name`` (a file name) is one the export rules write: ``{table}.{fmt}``,
    ``{table}_{start}_{end}.{fmt}`` or the database."""
    if name == database:
        return True
    stem, _, fmt = name.rpartition(".")
    match = _RANGE.match(stem)
    return fmt in formats and (match["table"] if match else stem) in tables


def stale_exports(entries: list[dict], current: dict[str, str], is_export) -> list[str]:
    """``exports/<path>`` of every export of ``entries`` (:func:`describe`) in a folder of ``current``
    (folder -> current settings digest) whose recorded settings differ from the current ones or are
    unknown, sorted.  Files whose name ``is_export`` rejects, and folders of no current account,
    are left out."""
    stale = []
    for e in entries:
        folder = _folder(e["path"])
        export = is_export(e["path"].rsplit("/", 1)[-1]) or _DATASET_PART.match(e["path"])
        if folder in current and export and e["settings"] != current[folder]:
            stale.append(f"exports/{e['path']}")
    return sorted(stale)


def stale_line(stale: list[str], shown: int = 3) -> str | None:
    """The console line naming the exports a failed run left older than the current settings
    (at most ``shown`` by name, then how many more), or None when there are none."""
    if not stale:
        return None
    more = f" (+{len(stale) - shown} more)" if len(stale) > shown else ""
    return (
        "exports older than the current settings (not rebuilt because the run failed): "
        f"{', '.join(stale[:shown])}{more}; run again once the error above is fixed"
    )
