"""Logging for rule scripts: every line to the rule's log file and to the console."""

from __future__ import annotations

import logging
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


def run(snakemake, rule: str, body: Callable[[logging.Logger], None]) -> None:
    """Run a rule body; bad input or a failed write becomes one logged error line and exit status 1.

    A write that fails (disk full, read-only directory) leaves the earlier file in place, because
    every output is written under a temporary name and renamed (storage.atomic_path).
    """
    log = open_log(snakemake.log[0], rule)
    try:
        body(log)
    except InputError as exc:
        log.error("%s", exc)
        sys.exit(1)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        log.error(
            "could not read or write%s: %s; free space or fix permissions, then run again", where, exc.strerror or exc
        )
        sys.exit(1)
