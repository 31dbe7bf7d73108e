"""Logging for rule scripts: every line to the rule's log file and to the console."""

from __future__ import annotations

import errno
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path

from .errors import InputError


def open_log(path: str | Path, rule: str) -> logging.Logger:
    """A logger writing ``[rule] message`` lines to ``path`` and to stderr (the console)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    log = logging.getLogger(f"tandem_export.{rule}")
    log.setLevel(logging.INFO)
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
    fmt = logging.Formatter(f"[{rule}] %(levelname)s: %(message)s")
    for handler in (logging.FileHandler(path, mode="w", encoding="utf-8"), logging.StreamHandler(sys.stderr)):
        handler.setFormatter(fmt)
        log.addHandler(handler)
    return log


#: How DuckDB words a failed read or write of a file (it raises its own exception types for them).
_DUCKDB_IO = re.compile(
    r"No space left on device|Could not (?:write|read|open) file|Permission denied|Read-only file system"
)


def _duckdb_io_error(exc: BaseException) -> str | None:
    """The first line of a DuckDB error that is a failed file read or write, else None."""
    if not type(exc).__module__.startswith(("duckdb", "_duckdb")):
        return None
    text = str(exc).strip()
    if type(exc).__name__ == "IOException" or _DUCKDB_IO.search(text):
        return text.splitlines()[0][:300] if text else type(exc).__name__
    return None


#: Failed reads and writes that free space or other permissions cannot mend: what to do instead.
_NOT_DISK_OR_PERMISSIONS = {
    errno.ENAMETOOLONG: "the name is too long for the file system; shorten it (or the folders above it)",
    errno.EISDIR: "a folder is where a file is expected; remove or rename that folder",
    errno.ENOTDIR: "a part of the path is a file where a folder is expected; remove or rename that file",
}


def os_error_line(exc: OSError) -> str:
    """The one line for a failed read or write: the file, the system's words, and what to do.

    "free space or fix permissions" only where that can help: a name too long for the file system,
    a folder where a file belongs and a file where a folder belongs say what they are instead.
    """
    where = f" {exc.filename}" if exc.filename else ""
    advice = _NOT_DISK_OR_PERMISSIONS.get(exc.errno, "free space or fix permissions")
    return f"could not read or write{where}: {exc.strerror or exc}; {advice}, then run again"


#: What an interrupted rule (Ctrl-C) says: its outputs are written under temporary names and renamed,
#: so nothing half-written is left, and the next run does what is left.
INTERRUPTED = "interrupted; run again to resume"
#: The exit status of a process ended by SIGINT, as shells report it (128 + 2).
INTERRUPTED_EXIT = 130


def run(
    snakemake,
    rule: str,
    body: Callable[[logging.Logger], None],
    interrupted: str = INTERRUPTED,
    then: Callable[[InputError], str | None] | None = None,
) -> None:
    """Run a rule body; bad input or a failed read or write becomes one logged error line and exit 1.

    Every output is written under a temporary name and renamed (storage.atomic_path), so a file
    under its final name is complete.  (Snakemake itself removes a job's earlier outputs before it
    runs the job, so an output being rebuilt is absent after a failed write, never half written.)
    ``snakemake`` is the rule's snakemake object (only ``log[0]`` is used), ``body`` gets the logger.
    Exits (SystemExit) with 1 for InputError, an OSError (:func:`os_error_line`) or a DuckDB read
    or write error, and with 130 after the line ``interrupted`` for KeyboardInterrupt (Ctrl-C: no
    traceback); any other exception is raised as it is (a bug).  ``then`` gives, for an InputError,
    the line to log after its error line (what to do instead), or None.
    """
    log = open_log(snakemake.log[0], rule)
    try:
        body(log)
    except KeyboardInterrupt:
        log.error("%s", interrupted)
        sys.exit(INTERRUPTED_EXIT)
    except InputError as exc:
        log.error("%s", exc)
        advice = then(exc) if then is not None else None
        if advice:
            log.info("%s", advice)
        sys.exit(1)
    except OSError as exc:
        log.error("%s", os_error_line(exc))
        sys.exit(1)
    except Exception as exc:
        first = _duckdb_io_error(exc)
        if first is None:
            raise
        log.error("could not read or write a file: %s; free space or fix permissions, then run again", first)
        sys.exit(1)
