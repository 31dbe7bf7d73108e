"""Small file and database helpers shared by the rule scripts."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import duckdb


def sql_str(text: str) -> str:
    """A SQL string literal of ``text`` (single quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection set up for deterministic output.

    Session time zone UTC (so TIMESTAMPTZ values print and export as UTC), insertion order kept,
    no progress bar, and extensions never fetched (everything needed is built in).
    """
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": True})
    con.sql("SET TimeZone = 'UTC'")
    con.sql("SET preserve_insertion_order = true")
    con.sql("SET enable_progress_bar = false")
    return con


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it onto ``target``.

    On any exception the temporary file is removed and ``target`` is left as it was, so a reader
    never sees a half-written file under the final name.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def sha256_file(path: Path | str) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
