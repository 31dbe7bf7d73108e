"""Incremental, resumable fetching of pump-logs windows into the raw store.

Windows are cells of a fixed 28-day grid counted from the pump epoch 2008-01-01, so a window's name
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
from dataclasses import dataclass
from pathlib import Path

from . import layouts
from .errors import InputError
from .source import checked_sha256, checksum_path, write_checksum
from .storage import atomic_path
from .tandem import TandemClient, TandemError, WindowRejected

GRID_EPOCH = dt.date(2008, 1, 1)
WINDOW_DAYS = 28


@dataclass(frozen=True)
class Window:
    """One grid cell of days, inclusive."""

    first: dt.date
    last: dt.date

    @property
    def name(self) -> str:
        return f"{self.first}_{self.last}"


def grid_windows(first: dt.date, last: dt.date) -> list[Window]:
    """The 28-day grid cells (from 2008-01-01) that cover the days first..last, in order."""
    if last < first:
        return []
    k = (first - GRID_EPOCH).days // WINDOW_DAYS
    out = []
    while True:
        start = GRID_EPOCH + dt.timedelta(days=k * WINDOW_DAYS)
        if start > last:
            return out
        out.append(Window(start, start + dt.timedelta(days=WINDOW_DAYS - 1)))
        k += 1


def saved_windows(folder: Path) -> list[Window]:
    """The grid cells saved in ``folder`` (``{first}_{last}.json`` files), in order; other files are ignored."""
    out = []
    for path in folder.glob("*_*.json"):
        try:
            first, last = (dt.date.fromisoformat(part) for part in path.stem.split("_"))
        except ValueError:
            continue
        cell = grid_windows(first, first)
        if cell and cell[0] == Window(first, last):
            out.append(cell[0])
    return sorted(out, key=lambda w: w.first)


def _day(value) -> dt.date | None:
    if not value:
        return None
    return dt.date.fromisoformat(str(value)[:10])


def pump_days(pump: dict) -> tuple[dt.date | None, dt.date | None]:
    """(first, last) day with data of a pump entry of the pumper answer; None for a pump that never uploaded."""
    rng = pump.get("availableDataRange") or {}
    first = _day(rng.get("start"))
    last = max((d for d in (_day(rng.get("end")), _day(pump.get("maxDateOfEvents"))) if d), default=None)
    return first, last


def select_pumps(pumps: list[dict], wanted) -> list[dict]:
    """The pumps named by config ``pump_serial`` (a serial, a list of serials, or ``all``).

    Raises InputError naming the serials the account does not have.
    """
    if wanted in (None, "all"):
        return list(pumps)
    wanted = [str(w) for w in (wanted if isinstance(wanted, list) else [wanted])]
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
    """The pump-logs answer for first..last; a 400 splits the range in halves, down to single days."""
    try:
        return client.pump_logs(pump["assignmentId"], first, last, layouts.WEB_APP_EVENT_CODES, label)
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


def _events(body: bytes) -> list:
    try:
        return json.loads(body).get("events") or []
    except (ValueError, AttributeError):
        raise TandemError("the pump-logs answer is not pump-logs JSON; the API may have changed") from None


def _missing_from(saved: Path, events: list) -> int:
    """How many events of the saved window ``saved`` (identity: sequenceGroup, sequenceNumber) the
    answer ``events`` lacks; 0 when there is no readable saved copy."""
    try:
        before = json.loads(saved.read_bytes()).get("events") or []
    except (OSError, ValueError, AttributeError):
        return 0
    now = {(e.get("sequenceGroup"), e.get("sequenceNumber")) for e in events if isinstance(e, dict)}
    return sum(
        1 for e in before if isinstance(e, dict) and (e.get("sequenceGroup"), e.get("sequenceNumber")) not in now
    )


def fetched_path(path: Path) -> Path:
    """Beside a saved window: the pump's last day with data when the window was last asked for."""
    return Path(str(path) + ".fetched")


def _fetched_last_day(path: Path) -> dt.date | None:
    try:
        return dt.date.fromisoformat(fetched_path(path).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def _record_fetched(path: Path, last: dt.date) -> None:
    with atomic_path(fetched_path(path)) as tmp:
        tmp.write_text(f"{last}\n", encoding="utf-8")


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

    Windows overlapping ``start``..``end`` (widened by a day each way) and the pump's latest window
    are asked for, except those saved earlier that are complete: ending more than ``refetch_days``
    before the pump's last day, and last asked for when the pump's data already went that far past
    their end (recorded in ``{window}.json.fetched``).  A saved window is never replaced by an answer
    lacking any of its events.
    Manifest: ``{"pumps": [{"serial", "model", "assignment_id", "first_day", "last_day",
    "windows": [names], "sha256": {name: hex digest}}]}`` listing every window on disk for the
    selected pumps (also those outside the range, saved by earlier runs), each with the checksum of
    its content (``"retry"``, not part of the manifest file, lists the windows whose saved copy was
    kept against a partial answer, to be asked for again): the manifest's bytes change
    when, and only when, a window or a pump's days change (the workflow reruns the jobs after the
    fetch on that).
    Raises TandemError (naming pump and window) on the first failure; windows saved before it stay.
    """
    today = today or dt.date.today()
    pumper = client.pumper()
    pumps = select_pumps(pumper.get("pumps") or [], wanted)
    manifest: dict = {"pumps": [], "retry": []}
    for pump in pumps:
        serial = str(pump.get("serialNumber"))
        first, last = pump_days(pump)
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
            "model": pump.get("modelName"),
            "assignment_id": pump.get("assignmentId"),
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
            # Complete: last asked for when the pump's data already went refetch_days past its end
            # (a window saved while its days were still arriving is asked for again). A record
            # later than the pump's last day now cannot be right: asked for again too.
            fetched_last = _fetched_last_day(path)
            complete = (
                fetched_last is not None
                and fetched_last <= last
                and window.last < fetched_last - dt.timedelta(days=refetch_days)
            )
            if path.exists() and ((window.last < trailing_from and complete) or not asked):
                try:
                    digest = checked_sha256(path)
                    # An empty answer for days the pump says it has data for may be a passing
                    # server fault: keep it, but ask again (a cheap byte search, not a parse).
                    # Outside the range a window is kept as saved (asked for again only if damaged).
                    if not asked or b'"eventCode"' in path.read_bytes():
                        entry["windows"].append(window.name)
                        entry["sha256"][window.name] = digest
                        counts["kept"] += 1
                        continue
                    log.warning("%s: saved empty although the pump has data in it; fetching it again", label)
                except InputError as exc:
                    log.warning("%s; fetching the window again", exc)
            t0 = time.monotonic()
            try:
                body = fetch_window(client, pump, window.first, window.last, label)
            except TandemError as exc:
                msg = str(exc)
                raise type(exc)(msg if msg.startswith(label) else f"{label}: {msg}") from None
            events = _events(body)
            n = len(events)
            # A window only grows (late uploads add events); an answer that lacks events of the saved
            # copy (an empty or partial answer from a passing server fault) never replaces it.
            lost, digest = 0, None
            if path.exists():
                try:
                    digest = checked_sha256(path)
                    lost = _missing_from(path, events)
                except InputError:
                    pass  # a damaged saved copy is replaced
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
            _record_fetched(path, last)
            counts["requested"] += 1
            counts["changed"] += changed
            counts["events"] += n
            entry["windows"].append(window.name)
            entry["sha256"][window.name] = hashlib.sha256(body).hexdigest()
            log.info("%s: %d events, %.1f s%s", label, n, time.monotonic() - t0, "" if changed else " (unchanged)")
        log.info(
            "pump %s (%s): %d window(s) requested, %d changed, %d kept from earlier runs; %d events fetched in %.1f s",
            serial,
            pump.get("modelName") or "pump",
            counts["requested"],
            counts["changed"],
            counts["kept"],
            counts["events"],
            time.monotonic() - t_pump,
        )
        manifest["pumps"].append(entry)
    return manifest
