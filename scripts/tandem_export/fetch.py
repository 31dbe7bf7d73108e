"""Incremental, resumable fetching of pump-logs windows into the raw store.

Windows are cells of a fixed 28-day grid counted from the pump epoch 2008-01-01 (the store's layout
is in stored.py, which reads it without the network), so a window's name
and content never depend on the configured start: ``data/raw/{serial}/{first}_{last}.json`` holds
the answer for exactly those days.  A window wholly before the trailing re-fetch window (config
``fetch.refetch_days`` before the pump's last event day) that is already on disk is never requested
again; the others are requested every run.  A window is written (atomically, with its checksum) as
soon as it arrives and only when its bytes changed, so an interrupted run keeps what it got, and a
rerun that brings nothing new leaves every file, and so every later step, untouched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from pathlib import Path

from . import answers, ids, layouts
from .errors import InputError
from .source import checked_sha256, checksum_path, write_checksum
from .storage import atomic_path
from .stored import GRID_EPOCH, Fetched, Window, grid_windows, now_utc, saved_windows
from .tandem import BrokenAnswer, TandemClient, TandemError, WindowRejected


def pump_days(pump: dict) -> tuple[dt.date | None, dt.date | None]:
    """(first, last) day with data of a pump entry of the pumper answer (checked by
    answers.check_pumper); None for a pump that never uploaded.  Dates the pumper answer gives as
    text starting with YYYY-MM-DD; anything else counts as absent."""
    rng = pump.get("availableDataRange") or {}
    first = answers.answer_day(rng.get("start"))
    days = (answers.answer_day(rng.get("end")), answers.answer_day(pump.get("maxDateOfEvents")))
    last = max((d for d in days if d), default=None)
    return first, last


def plausible_days(first: dt.date, last: dt.date, today: dt.date, serial: str, log: logging.Logger):
    """(first, last) limited to the days a pump can have data: from the pump clock's epoch
    (2008-01-01) to tomorrow.  A placeholder date far ahead (seen in pump lists: tconnectsync
    PR #149) would make a first run ask for decades of windows, or a later run skip real days;
    it is clamped, with a warning.  Returns (None, None) when nothing is left."""
    latest = today + dt.timedelta(days=1)
    if last > latest:
        log.warning(
            "pump %s: the pump list says its data reach %s, after tomorrow; fetching up to %s", serial, last, latest
        )
        last = latest
    first = max(first, GRID_EPOCH)
    if last < first:
        return None, None
    return first, last


def select_pumps(pumps: list[dict], wanted) -> list[dict]:
    """The pumps named by config ``pump_serial`` (a serial, a list of serials, or ``all``): entries
    of ``pumps`` (the pump list's), each once, in the order the serials first appear.

    Raises InputError naming the serials the account does not have.
    """
    if wanted in (None, "all"):
        return list(pumps)
    # A serial listed twice is one pump: fetching it twice would only ask for every window again.
    wanted = list(dict.fromkeys(str(w) for w in (wanted if isinstance(wanted, list) else [wanted])))
    have = {str(p.get("serialNumber")): p for p in pumps}
    missing = [w for w in wanted if w not in have]
    if missing:
        listed = ", ".join(sorted(have)) or "none"
        raise InputError(
            f"pump_serial: {', '.join(missing)} not on this account (it has: {listed}); fix pump_serial or use all"
        )
    return [have[w] for w in wanted]


def _merge(bodies: list[bytes]) -> bytes:
    """One pump-logs answer from the answers for the halves of a split window."""
    events, changes = [], {}
    for body in bodies:
        data = json.loads(body)
        events.extend(data.get("events") or [])
        for c in data.get("clockChanges") or []:
            changes[(c.get("sequenceGroup"), c.get("sequenceNumber"))] = c
    return json.dumps({"events": events, "clockChanges": list(changes.values())}, separators=(",", ":")).encode()


def fetch_window(client: TandemClient, pump: dict, first: dt.date, last: dt.date, label: str) -> bytes:
    """The pump-logs answer for first..last, checked for shape (answers.check_pump_logs_body: an
    answer that fails is retried like a broken body, then BrokenAnswer); a 400 splits the range in
    halves, down to single days."""
    try:
        return client.pump_logs(
            pump["assignmentId"], first, last, layouts.WEB_APP_EVENT_CODES, label, check=answers.check_pump_logs_body
        )
    except WindowRejected:
        if first == last:
            raise
        middle = first + dt.timedelta(days=(last - first).days // 2)
        client.log.warning("%s: HTTP 400 for %s..%s; splitting the window in halves", label, first, last)
        return _merge(
            [
                fetch_window(client, pump, first, middle, label),
                fetch_window(client, pump, middle + dt.timedelta(days=1), last, label),
            ]
        )


def _missing_from(saved: Path, events: list) -> int:
    """How many events of the saved window ``saved`` (identity: sequenceGroup, sequenceNumber) the
    answer ``events`` lacks; 0 when there is no readable saved copy."""
    try:
        before = json.loads(saved.read_bytes()).get("events") or []
    except (OSError, ValueError, AttributeError):
        return 0
    if not isinstance(before, list):
        return 0
    now = {(e.get("sequenceGroup"), e.get("sequenceNumber")) for e in events if isinstance(e, dict)}
    return sum(
        1 for e in before if isinstance(e, dict) and (e.get("sequenceGroup"), e.get("sequenceNumber")) not in now
    )


def _checked_saved(path: Path, last: dt.date) -> Fetched | None:
    """The record of a saved window that has none (saved by an earlier version): the saved file
    checked as a pump-logs answer now, recorded so that it is checked once; None if it fails."""
    try:
        events = answers.check_pump_logs_body(path.read_bytes())
        record = Fetched(last, checked_sha256(path), events)
    except (answers.AnswerError, InputError, OSError):
        return None
    record.write(path)
    return record


def store_window(path: Path, body: bytes) -> bool:
    """Write ``body`` to ``path`` (atomically, checksum beside it) unless it is already there.

    Returns True when the file changed.
    """
    if path.exists() and checksum_path(path).exists() and path.read_bytes() == body:
        return False
    with atomic_path(path) as tmp:
        tmp.write_bytes(body)
    write_checksum(path)
    return True


def fetch_account(
    client: TandemClient,
    raw_root: Path,
    wanted,
    start: str | None,
    end: str | None,
    refetch_days: int,
    log: logging.Logger,
    today: dt.date | None = None,
) -> dict:
    """Fetch every selected pump's windows into ``raw_root/{serial}/``; return the manifest.

    The pump list is checked first (answers.check_pumper: every serial and assignment id matched in
    full against its pattern, the dates real dates); an answer that fails is refused with one line
    before anything is written.  Windows overlapping ``start``..``end`` (widened by a day each way)
    and the pump's latest window are asked for, except those saved earlier that are complete:
    ending more than ``refetch_days`` before the pump's last day, last asked for when the pump's
    data already went that far past their end, and still holding the very answer that was checked
    then (:class:`Fetched`, ``{window}.json.fetched``).  Every answer is checked for shape before it
    is saved (answers.check_pump_logs); one that still fails after the retries is never saved: a
    saved copy is kept, with a warning, and asked for again on the next run; without one the fetch
    fails naming the pump, the window and what was wrong.  A saved window is never replaced by an
    answer lacking any of its events.
    Manifest: ``{"pumps": [{"serial", "model", "assignment_id", "first_day", "last_day",
    "windows": [names], "sha256": {name: hex digest}}]}`` listing every window on disk for the
    selected pumps (also those outside the range, saved by earlier runs), each with the checksum of
    its content (``"retry"``, not part of the manifest file, lists the windows whose saved copy was
    kept against a partial or broken answer, to be asked for again): the manifest's bytes change
    when, and only when, a window or a pump's days change (the workflow reruns the jobs after the
    fetch on that).
    Raises TandemError (naming pump and window) on the first failure; windows saved before it stay.
    """
    today = today or dt.date.today()
    try:
        pumps = answers.check_pumper(client.pumper())
    except answers.AnswerError as exc:
        raise TandemError(f"pump list: Tandem Source answered with {exc}; refused, nothing was written") from None
    pumps = select_pumps(pumps, wanted)
    manifest: dict = {"pumps": [], "retry": []}
    for pump in pumps:
        serial = ids.checked(ids.SERIAL, pump.get("serialNumber"), "pump serial")
        first, last = pump_days(pump)
        if first is not None and last is not None:
            first, last = plausible_days(first, last, today, serial, log)
        if first is None or last is None:
            log.warning("pump %s: no data uploaded to Tandem Source yet; skipped", serial)
            continue
        # One day beyond each end of the range, so that an episode crossing it (a sleep, a
        # suspension) has its start and stop; the windows are whole 28-day cells anyway.
        lo = max(first, dt.date.fromisoformat(start) - dt.timedelta(days=1)) if start else first
        hi = min(last, dt.date.fromisoformat(end) + dt.timedelta(days=1)) if end else last
        trailing_from = last - dt.timedelta(days=refetch_days)
        entry = {
            "serial": serial,
            "model": pump.get("modelName") if isinstance(pump.get("modelName"), str) else None,
            "assignment_id": pump["assignmentId"],
            "first_day": str(first),
            "last_day": str(last),
            "windows": [],
            "sha256": {},
        }
        counts = {"requested": 0, "changed": 0, "kept": 0, "events": 0}
        t_pump = time.monotonic()
        # The range chooses what is asked for; the tables hold every window saved so far (the range
        # applies to the exports), so windows saved by earlier runs with another range stay listed.
        # The pump's latest window is always asked for too: the time model reads the clock at the
        # last record, so a history cut at the range's end would place every time differently.
        in_range = {w.name for w in [*grid_windows(lo, hi), *grid_windows(last, last)]}
        listed = {
            w.name: w for w in [*grid_windows(lo, hi), *grid_windows(last, last), *saved_windows(raw_root / serial)]
        }
        for window in sorted(listed.values(), key=lambda w: w.first):
            path = raw_root / serial / f"{window.name}.json"
            label = f"pump {serial} window {window.first}..{window.last}"
            asked = window.name in in_range
            if path.exists():
                kept = _kept_as_saved(path, window, asked, first, last, trailing_from, refetch_days, label, log)
                if kept is not None:
                    entry["windows"].append(window.name)
                    entry["sha256"][window.name] = kept
                    counts["kept"] += 1
                    continue
            t0 = time.monotonic()
            try:
                body = fetch_window(client, pump, window.first, window.last, label)
            except BrokenAnswer as exc:
                digest = _intact(path)
                if digest is None:
                    raise _labelled(exc, label) from None
                log.warning("%s; kept the window saved earlier, asked for again on the next run", _labelled(exc, label))
                entry["windows"].append(window.name)
                entry["sha256"][window.name] = digest
                manifest["retry"].append(label)
                counts["requested"] += 1
                continue
            except TandemError as exc:
                raise _labelled(exc, label) from None
            data = json.loads(body)  # passed answers.check_pump_logs_body
            events = data["events"]
            n = len(events)
            # A window only grows (late uploads add events); an answer that lacks events of the saved
            # copy (an empty or partial answer from a passing server fault) never replaces it.
            digest = _intact(path)
            lost = _missing_from(path, events) if digest is not None else 0
            if lost:
                log.warning(
                    "%s: the answer lacks %d of the events saved earlier (a partial or empty answer); kept the "
                    "saved window, asked for again on the next run",
                    label,
                    lost,
                )
                entry["windows"].append(window.name)
                entry["sha256"][window.name] = digest
                manifest["retry"].append(label)
                counts["requested"] += 1
                continue
            if not n and window.first <= last and window.last >= first:
                log.warning("%s: answered with no events although the pump has data up to %s", label, last)
            changed = store_window(path, body)
            body_sha256 = hashlib.sha256(body).hexdigest()
            Fetched(last, body_sha256, n + len(data.get("clockChanges", [])), now_utc()).write(path)
            counts["requested"] += 1
            counts["changed"] += changed
            counts["events"] += n
            entry["windows"].append(window.name)
            entry["sha256"][window.name] = body_sha256
            log.info("%s: %d events, %.1f s%s", label, n, time.monotonic() - t0, "" if changed else " (unchanged)")
        log.info(
            "pump %s (%s): %d window(s) requested, %d changed, %d kept from earlier runs; %d events fetched in %.1f s",
            serial,
            entry["model"] or "pump",
            counts["requested"],
            counts["changed"],
            counts["kept"],
            counts["events"],
            time.monotonic() - t_pump,
        )
        manifest["pumps"].append(entry)
    return manifest


def _labelled(exc: TandemError, label: str) -> TandemError:
    """``exc`` with its message starting with the window's label."""
    msg = str(exc)
    return type(exc)(msg if msg.startswith(label) else f"{label}: {msg}")


def _intact(path: Path) -> str | None:
    """The SHA-256 of a saved window whose checksum still matches; None when absent or damaged."""
    if not path.exists():
        return None
    try:
        return checked_sha256(path)
    except InputError:
        return None


def _kept_as_saved(
    path: Path,
    window: Window,
    asked: bool,
    first: dt.date,
    last: dt.date,
    trailing_from: dt.date,
    refetch_days: int,
    label: str,
    log: logging.Logger,
) -> str | None:
    """The SHA-256 of a saved window that is not asked for again, or None to ask for it.

    Outside the range (``asked`` false) a window is kept as saved, unless it is damaged or fails
    the shape check (saved by an earlier version without a record: checked once, here).  In the
    range it is kept when complete (see :func:`fetch_account`) and not saved empty for days the
    pump has data in (an empty answer may be a passing server fault).
    """
    try:
        digest = checked_sha256(path)
    except InputError as exc:
        log.warning("%s; fetching the window again", exc)
        return None
    record = Fetched.read(path)
    if record is not None and record.sha256 != digest:
        record = None
    if not asked:
        if record is None and _checked_saved(path, window.last) is None:
            log.warning(
                "%s: the saved window is not a pump-logs answer of the expected shape; fetching it again", label
            )
            return None
        return digest
    if record is None or window.last >= trailing_from:
        return None
    # A record later than the pump's last day now cannot be right: asked for again too.
    complete = record.last_day <= last and window.last < record.last_day - dt.timedelta(days=refetch_days)
    if not complete:
        return None
    if not record.events and window.first <= last and window.last >= first:
        log.warning("%s: saved empty although the pump has data in it; fetching it again", label)
        return None
    return digest
