"""The source step: put what a source gives into the raw store, unchanged, with a checksum."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from pathlib import Path

from . import demo
from .errors import InputError
from .storage import atomic_path, sha256_file

#: What to do about a raw-store file whose checksum no longer matches: deleting it is not enough on
#: its own (the exports built before are still up to date for Snakemake), so the rules that bring it
#: back are forced (only those of the configured source are in the run).
DAMAGED_RAW_ADVICE = (
    "restore it from a backup, or delete it and its .sha256 and run again with "
    "--forcerun fetch import_files normalize to fetch, import or generate it again"
)


def checksum_path(raw: Path | str) -> Path:
    """The ``.sha256`` file recorded beside a raw-store file."""
    return Path(str(raw) + ".sha256")


def write_checksum(raw: Path) -> None:
    """Record the SHA-256 of a raw-store file beside it (``<file>.sha256``)."""
    with atomic_path(checksum_path(raw)) as tmp:
        tmp.write_text(f"{sha256_file(raw)}  {raw.name}\n", encoding="utf-8")


def verify_checksum(raw: Path) -> None:
    """Raise InputError if ``raw`` no longer matches the checksum recorded when it was written."""
    recorded = checksum_path(raw)
    if not recorded.exists():
        return
    expected = recorded.read_text(encoding="utf-8").split()[0]
    if sha256_file(raw) != expected:
        raise InputError(
            f"{raw}: the raw-store file changed since it was written (checksum mismatch); {DAMAGED_RAW_ADVICE}"
        )


def write_demo(
    outputs: list[str], window_names: list[str], seed: int, end: str, days: int, log: logging.Logger
) -> None:
    """Write the demo pump's pump-logs responses, one JSON file per window in ``window_names``."""
    responses = demo.window_responses(seed, dt.date.fromisoformat(end), days)
    by_name = {f"{a}_{b}": body for (a, b), body in responses.items()}
    for path, name in zip(outputs, window_names, strict=True):
        body = by_name[name]
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(body, separators=(",", ":")), encoding="utf-8")
        write_checksum(Path(path))
        log.info("demo window %s: %d events -> %s", name, len(body["events"]), path)


def import_file(origin: str, target: str, log: logging.Logger) -> bool:
    """Copy the user's saved file unchanged into the raw store and record its checksum.

    ``target`` is named ``<stem>-<first 12 hex digits of the SHA-256>.raw`` with the hash taken when
    the workflow was parsed (config._file_entries).  A copy already in the store whose checksum still
    matches is kept (same name, same content) and False is returned; otherwise the file is copied
    to a temporary name, its bytes are checked against the hash in the name, and it is renamed: True
    is returned.  A file that changed after the run began (edited while the run was starting) raises
    InputError and leaves no copy, so content is never stored under another content's name.
    """
    target_path = Path(target)
    named = target_path.stem.rsplit("-", 1)[-1]
    if target_path.exists() and checksum_path(target_path).exists():
        recorded = checksum_path(target_path).read_text(encoding="utf-8").split()[:1]
        actual = sha256_file(target_path)
        if recorded == [actual] and actual.startswith(named):
            return False
        log.warning("%s: the raw-store copy was damaged or is not what its name says; copying %s again", target, origin)
    with atomic_path(target) as tmp:
        shutil.copyfile(origin, tmp)
        digest = sha256_file(tmp)
        if not digest.startswith(named):
            raise InputError(
                f"{origin}: the file changed after this run began (its content no longer matches the checksum "
                "taken when the run started); run again once it is no longer being written"
            )
    with atomic_path(checksum_path(target_path)) as tmp:
        tmp.write_text(f"{digest}  {target_path.name}\n", encoding="utf-8")
    log.info("imported %s -> %s (%d bytes)", origin, target, target_path.stat().st_size)
    return True
