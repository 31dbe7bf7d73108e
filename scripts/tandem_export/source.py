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


def write_checksum(raw: Path, digest: str | None = None) -> None:
    """Record the SHA-256 of a raw-store file beside it (``<file>.sha256``); ``digest`` if already known."""
    with atomic_path(checksum_path(raw)) as tmp:
        tmp.write_text(f"{digest or sha256_file(raw)}  {raw.name}\n", encoding="utf-8")


def checked_sha256(raw: Path) -> str:
    """The SHA-256 of a raw-store file, read once; InputError if it no longer matches the checksum
    recorded beside it when it was written (a file without one is taken as it is)."""
    digest = sha256_file(raw)
    recorded = checksum_path(raw)
    if recorded.exists() and recorded.read_text(encoding="utf-8").split()[:1] != [digest]:
        raise InputError(
            f"{raw}: the raw-store file changed since it was written (checksum mismatch); {DAMAGED_RAW_ADVICE}"
        )
    return digest


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
        try:
            if checked_sha256(target_path).startswith(named):
                return False
        except InputError:
            pass
        log.warning("%s: the raw-store copy was damaged or is not what its name says; copying %s again", target, origin)
    with atomic_path(target) as tmp:
        shutil.copyfile(origin, tmp)
        digest = sha256_file(tmp)
        if not digest.startswith(named):
            raise InputError(
                f"{origin}: the file changed after this run began (its content no longer matches the checksum "
                "taken when the run started); run again once it is no longer being written"
            )
    write_checksum(target_path, digest)
    log.info("imported %s -> %s (%d bytes)", origin, target, target_path.stat().st_size)
    return True
