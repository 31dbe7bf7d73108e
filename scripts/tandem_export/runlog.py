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
    """Run a rule body; an InputError becomes one logged error line and exit status 1."""
    log = open_log(snakemake.log[0], rule)
    try:
        body(log)
    except InputError as exc:
        log.error("%s", exc)
        sys.exit(1)
