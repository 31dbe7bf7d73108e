"""Small file and database helpers shared by the rule scripts."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import shutil
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


def remove_stale_temporaries(target: Path | str) -> None:
    """Remove what an earlier writer of ``target`` left beside it when it was killed: the files or
    folders named ``.<target name>.<random>.tmp`` that :func:`atomic_path` (and the database export)
    create.  A process killed outright (SIGKILL, SIGTERM, power loss) runs no clean-up; one file
    has one writer at a time (Snakemake's lock), so the next writer removes them.
    """
    target = Path(target)
    if not target.parent.is_dir():
        return
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it onto ``target``.

    On any exception the temporary file is removed and ``target`` is left as it was, so a reader
    never sees a half-written file under the final name.  Temporary files of an earlier writer
    that was killed are removed first (:func:`remove_stale_temporaries`).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
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
    """Hex SHA-256 of a file's bytes (hashlib.file_digest: read into one reused buffer)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
