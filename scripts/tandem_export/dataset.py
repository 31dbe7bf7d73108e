"""A table as a Hive-partitioned Parquet dataset (``exports/{table}/``), read as one table by pandas,
polars, pyarrow and DuckDB, for histories where one file grows large.

One partition per time cell of the table (``tandem_export.cells``: 28 days of UTC instants from
2008-01-01), named ``utc_period={first day}_{last day}`` (UTC dates, inclusive; ``utc_period=no-time``
for rows without an instant), each holding one file ``part-0.parquet``: the cell's rows in export
order, every column nullable, with the key-value metadata of the Parquet exports (``source``, so
demo data stay labelled).  The partition value is text in every reader (it never parses as a date,
so pandas, polars and DuckDB all give the column ``utc_period`` as a string), and partitions sort by
name in time order, so reading the folder gives the rows in export order.  All rows, never the
configured range (as the database).

The folder also holds ``.dataset.json`` (hidden: no reader reads it), what Snakemake sees: the
format, the table, and per partition the digest of what it holds (the cell's digest, its schema,
the lineage, the source label, this module and the DuckDB version).  A partition whose digest did not change
keeps its file; others are written to a hidden temporary name and renamed over ``part-0.parquet``,
so a reader never sees a half-written file; partitions of cells that no longer exist are removed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import duckdb

from .cells import CELL_DAYS, cell_start, digest_of, files, read_manifest
from .errors import InputError
from .export import export_metadata
from .storage import atomic_path, connect, sql_str

#: The partition column.
PARTITION = "utc_period"
#: The file of each partition.
PART = "part-0.parquet"
FORMAT = "tandem_export.dataset/1"
_PERIOD = re.compile(r"\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2}|no-time")
_DIGEST = re.compile(r"[0-9a-f]{64}")


def period(cell: int | None) -> str:
    """The partition value of ``cell``: its first and last UTC day (``2025-04-01_2025-04-28`` for
    cell 225), or ``no-time`` for rows without an instant."""
    if cell is None:
        return "no-time"
    first = cell_start(cell)
    return f"{first:%Y-%m-%d}_{first + dt.timedelta(days=CELL_DAYS - 1):%Y-%m-%d}"


def partition_folder(dataset: str | Path, value: str) -> Path:
    """The folder of one partition: ``{dataset}/utc_period={value}``; ValueError for a value that
    is not a period (so that no name read back can reach outside the dataset)."""
    if not _PERIOD.fullmatch(value):
        raise ValueError(f"{value!r} is not a period of the dataset")
    return Path(dataset) / f"{PARTITION}={value}"


def _previous(marker: Path, table: str) -> dict[str, str]:
    """The partitions (value -> digest) a previous marker lists, or {} when there is none or it is
    not valid (then every partition is written again)."""
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("table") != table:
        return {}
    parts = data.get("partitions")
    if not isinstance(parts, dict):
        return {}
    return {
        k: v
        for k, v in parts.items()
        if isinstance(k, str) and _PERIOD.fullmatch(k) and isinstance(v, str) and _DIGEST.fullmatch(v)
    }


def write_dataset(manifest: str | Path, marker: str | Path, source: str, log) -> list[tuple[Path, int, bool]]:
    """Bring the dataset whose marker is ``marker`` (``exports/{table}/.dataset.json``) to the cells of
        ``manifest``; returns every partition's file, rows and whether it was written now (else kept), in
    order.

        A table without rows is one partition ``no-time`` of no rows, so that readers see its columns.
        ValueError when the manifest is not valid (:func:`tandem_export.cells.read_manifest`).
    """
    marker = Path(marker)
    root = marker.parent
    m = read_manifest(manifest)
    listed = files(manifest)  # [schema, cells...], each checked to exist
    schema, table = listed[0], m["table"]
    meta = export_metadata(source, table)
    code = digest_of(Path(__file__).read_bytes(), duckdb.__version__, json.dumps(meta, sort_keys=True))
    wanted = [(period(c["cell"]), c["digest"], c["rows"], f) for c, f in zip(m["cells"], listed[1:], strict=True)]
    if not wanted:
        wanted = [("no-time", "no rows", 0, None)]
    previous = _previous(marker, table)
    _check_folder(root, marker.name, {f"{PARTITION}={v}" for v, *_ in wanted})
    kv = ", ".join(f'"{k}": {sql_str(v)}' for k, v in meta.items())
    con = connect()
    con.sql("SET threads = 1")  # one writer thread: the same bytes on every run
    out, digests, written = [], {}, 0
    try:
        for value, cell_digest, rows, cell_file in wanted:
            digest = digests[value] = digest_of(code, m["lineage"], m["schema"], cell_digest)
            path = partition_folder(root, value) / PART
            fresh = previous.get(value) != digest or not path.is_file()
            if fresh:
                sources = [schema] + ([cell_file] if cell_file else [])
                select = f"SELECT * FROM read_parquet([{', '.join(sql_str(s) for s in sources)}])"
                with atomic_path(path) as tmp:
                    con.sql(
                        f"COPY ({select}) TO {sql_str(str(tmp))} (FORMAT parquet, COMPRESSION zstd, KV_METADATA {{{kv}}})"
                    )
                written += 1
            out.append((path, rows, fresh))
    finally:
        con.close()
    keep = {f"{PARTITION}={v}" for v, *_ in wanted}
    for entry in root.iterdir():
        if entry.name.startswith(f"{PARTITION}=") and entry.name not in keep:
            log.info("%s: %s removed (no cell holds its period now)", table, entry)
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    with atomic_path(marker) as tmp:
        tmp.write_text(
            json.dumps({"format": FORMAT, "table": table, "partitions": digests}, indent=1) + "\n", encoding="utf-8"
        )
    log.info("%s: %d partition(s) of 28 days, %d written -> %s/", table, len(wanted), written, root)
    return out


class StrayFile(InputError, ValueError):
    """A file in a dataset's folder that the pipeline did not write (readers would read it too)."""


def _check_folder(root: Path, marker: str, partitions: set[str]) -> None:
    """StrayFile (one line) for anything in the dataset folder ``root`` but the marker, hidden
    temporaries, partition folders (``utc_period=...``) and their ``part-0.parquet``: pandas, polars
    and DuckDB read every file there as part of the table, so another file breaks them or adds rows."""
    if not root.is_dir():
        return
    for entry in sorted(root.iterdir()):
        if entry.name == marker or entry.name.startswith("."):
            continue
        if entry.name.startswith(f"{PARTITION}="):
            if entry.name in partitions:
                if not entry.is_dir() or entry.is_symlink():
                    raise StrayFile(f"{entry}: not a folder the pipeline wrote; move it out of {root} and run again")
                for inner in sorted(entry.iterdir()):
                    if inner.name != PART and not inner.name.startswith("."):
                        raise StrayFile(
                            f"{inner}: not part of the dataset (readers would read it as rows); move it out of {root} and run again"
                        )
            continue  # (a period no cell holds: removed below)
        raise StrayFile(
            f"{entry}: not part of the dataset (readers would read it as rows); move it out of {root} and run again"
        )
