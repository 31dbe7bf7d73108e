"""The raw store of fetched windows, read without the network.

Its layout: windows are cells of a fixed 28-day grid counted from the pump epoch 2008-01-01, saved
as ``data/{acct}raw/{serial}/{first}_{last}.json`` with a checksum (``.sha256``) and the record of
their last fetch (``.fetched``, :class:`Fetched`) beside them.  The fetch job lists the windows in
its manifest (``data/{acct}fetch/manifest.json``, an output Snakemake removes before every fetch
and after a failed one) and keeps a copy of it, ``last-fetch.json``, that no rule declares.

With ``fetch_latest: false`` nothing is requested: :func:`stored_manifest` gives the manifest of
the store as it is (the pumps of the last completed fetch, every window on disk with its
checksum), which is byte for byte the manifest of the last fetch while nothing was saved since, and
:func:`pump_fetches` says what each pump's data reach and when they were fetched.  Nothing here
imports the Tandem Source client.  Everything read is checked (identifiers matched in full, dates
real and in range); a file that fails is an :class:`InputError` naming it, never a guess.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

from . import ids
from .errors import InputError
from .source import checked_sha256, checksum_path
from .storage import atomic_path

GRID_EPOCH = dt.date(2008, 1, 1)
WINDOW_DAYS = 28
#: The fetch folder's files: the manifest (the fetch rule's output) and the copy no rule declares.
MANIFEST = "manifest.json"
LAST_FETCH = "last-fetch.json"
#: A fetch time as :class:`Fetched` records it: UTC, to the second.
FETCHED_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
SHA256 = re.compile(r"[0-9a-f]{64}")
#: A pump's last day may lie this far after the (UTC) day of the fetch that reported it: the fetch
#: clamps it to the day after this machine's date (fetch.plausible_days), a day ahead of UTC at most.
LAST_DAY_AFTER_FETCH = dt.timedelta(days=2)
#: How far ahead of this machine's clock a recorded fetch time may be (clocks differ a little).
FETCH_CLOCK_SLACK = dt.timedelta(days=1)
#: What the fetch hint and every offline line advise when the store holds nothing usable.
FETCH_ONCE = "run once with fetch_latest: true (the default)"


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


def grid_window(name) -> Window | None:
    """The grid cell named ``name`` (``{first}_{last}``), or None when it names none."""
    if not ids.matches(ids.GRID_WINDOW, name):
        return None
    try:
        first, last = (dt.date.fromisoformat(part) for part in name.split("_"))
    except ValueError:
        return None
    cell = grid_windows(first, first)
    return cell[0] if cell and cell[0] == Window(first, last) else None


def saved_windows(folder: Path) -> list[Window]:
    """The grid cells saved in ``folder`` (``{first}_{last}.json`` files), in order; other files are ignored."""
    cells = (grid_window(path.stem) for path in folder.glob("*_*.json"))
    return sorted((c for c in cells if c is not None), key=lambda w: w.first)


def fetched_path(path: Path) -> Path:
    """Beside a saved window: the record of its last fetch (see :class:`Fetched`)."""
    return Path(str(path) + ".fetched")


class BadRecord(ValueError):
    """A ``.fetched`` file that is not a record this pipeline wrote; the message says what is wrong."""


@dataclass(frozen=True)
class Fetched:
    """What is known of a saved window from its last fetch: the pump's last day with data when it
    was asked for, the SHA-256 of the answer saved (which passed the shape check of
    answers.check_pump_logs), its number of events and when it was fetched (UTC, ``FETCHED_AT``;
    None in records of earlier versions, and in the record of a window checked, not fetched).  A
    saved window counts as complete only while its bytes still have that SHA-256."""

    last_day: dt.date
    sha256: str
    events: int
    fetched_at: str | None = None

    @classmethod
    def read(cls, path: Path) -> Fetched | None:
        """The record beside the saved window ``path``; None when absent or not one written by
        :meth:`write` (a record of an earlier version holds a date only: the window is asked for
        once more)."""
        try:
            return cls.load(path)
        except (BadRecord, OSError):
            return None

    @classmethod
    def load(cls, path: Path, now: dt.datetime | None = None) -> Fetched | None:
        """The record beside the saved window ``path``, checked in full; None when there is none, or
        only the bare date an earlier version wrote.  Raises BadRecord saying what is wrong: not
        JSON, other keys, a last day that is no date from 2008-01-01 on, a SHA-256 that is not 64
        hex digits, an event count that is not a whole number from 0, a fetch time that is not
        ``YYYY-MM-DDTHH:MM:SSZ`` from 2008 to this machine's clock (``now``, UTC) plus a day, or a
        last day more than two days after the day of the fetch."""
        try:
            text = fetched_path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except UnicodeDecodeError:
            raise BadRecord("not text") from None
        if ids.matches(ids.DATE, text.strip()):
            return None  # written by an earlier version: the pump's last day only
        try:
            data = json.loads(text)
        except ValueError:
            raise BadRecord("not JSON") from None
        if not isinstance(data, dict) or not {"last_day", "sha256", "events"} <= set(data) <= {
            "last_day",
            "sha256",
            "events",
            "fetched_at",
        }:
            raise BadRecord("not an object of last_day, sha256, events and fetched_at")
        try:
            last_day = ids.checked_date(data["last_day"], "last_day")
        except ids.BadIdentifier as exc:
            raise BadRecord(str(exc)) from None
        if last_day < GRID_EPOCH:
            raise BadRecord(f"last_day {last_day} is before {GRID_EPOCH}, when pump clocks start")
        if not ids.matches(SHA256, data["sha256"]):
            raise BadRecord(f"sha256 {_shown(data['sha256'])} is not 64 hex digits")
        events = data["events"]
        if not isinstance(events, int) or isinstance(events, bool) or events < 0:
            raise BadRecord(f"events {_shown(events)} is not a whole number from 0")
        fetched_at = data.get("fetched_at")
        if fetched_at is not None:
            when = fetch_time(fetched_at, now)
            if last_day > when.date() + LAST_DAY_AFTER_FETCH:
                raise BadRecord(f"last_day {last_day} is after the day of the fetch, {when.date()}")
        return cls(last_day, data["sha256"], events, fetched_at)

    def write(self, path: Path) -> None:
        """Write the record beside the saved window ``path`` (atomically)."""
        record = {"last_day": str(self.last_day), "sha256": self.sha256, "events": self.events}
        if self.fetched_at is not None:
            record["fetched_at"] = self.fetched_at
        with atomic_path(fetched_path(path)) as tmp:
            tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")


def now_utc() -> str:
    """This moment as :class:`Fetched` records a fetch time."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fetch_time(value, now: dt.datetime | None = None) -> dt.datetime:
    """A recorded fetch time (``YYYY-MM-DDTHH:MM:SSZ``) as an aware UTC datetime; BadRecord when it
    is not one, or lies before 2008 or more than a day after ``now`` (this machine's clock)."""
    if not ids.matches(FETCHED_AT, value):
        raise BadRecord(f"fetched_at {_shown(value)} is not a time YYYY-MM-DDTHH:MM:SSZ")
    try:
        when = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise BadRecord(f"fetched_at {value!r} is not a real time") from None
    now = now or dt.datetime.now(dt.UTC)
    if when.date() < GRID_EPOCH or when > now + FETCH_CLOCK_SLACK:
        raise BadRecord(f"fetched_at {value} is not between {GRID_EPOCH} and now")
    return when


def _shown(value) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


# --- the manifest -------------------------------------------------------------------------------------

#: The keys of a pump's entry in the manifest (fetch.fetch_account writes them).
PUMP_KEYS = frozenset({"serial", "model", "assignment_id", "first_day", "last_day", "windows", "sha256"})


def manifest_text(manifest: dict) -> str:
    """The text of the manifest file (the fetch job's and the offline job's alike)."""
    return json.dumps(manifest, indent=1, sort_keys=True)


def write_last_fetch(fetch_dir: Path | str, text: str) -> None:
    """Keep the manifest ``text`` of a fetch that completed as ``last-fetch.json`` (atomically)."""
    with atomic_path(Path(fetch_dir) / LAST_FETCH) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_manifest(path: Path, raw_root: str) -> dict:
    """The manifest (or its copy) at ``path``, checked in full against what the fetch writes: every
    serial (:data:`ids.SERIAL`), assignment id (:data:`ids.UUID`), date (a real day from
    2008-01-01, the first not after the last) and window name (a grid cell) matched, each pump and
    window listed once, every window with a 64-hex-digit SHA-256, ``raw_root`` the account's.
    Raises InputError naming the file and what is wrong."""

    def bad(what: str) -> InputError:
        return InputError(
            f"{path}: not a record of a fetch this pipeline wrote ({what}); {FETCH_ONCE}, which writes it again"
        )

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise bad("not text") from None
    except ValueError:
        raise bad("not JSON") from None
    if not isinstance(data, dict) or set(data) != {"pumps", "raw_root"} or not isinstance(data["pumps"], list):
        raise bad("not an object of pumps and raw_root")
    if data["raw_root"] != raw_root:
        raise bad(f"raw_root {_shown(data['raw_root'])} is not {raw_root}")
    serials = set()
    for pump in data["pumps"]:
        if not isinstance(pump, dict) or set(pump) != PUMP_KEYS:
            raise bad(f"a pump is not an object of {', '.join(sorted(PUMP_KEYS))}")
        try:
            serial = ids.checked(ids.SERIAL, pump["serial"], "pump serial")
            ids.checked(ids.UUID, pump["assignment_id"], f"pump {serial} assignment id")
            first = ids.checked_date(pump["first_day"], f"pump {serial} first_day")
            last = ids.checked_date(pump["last_day"], f"pump {serial} last_day")
        except ids.BadIdentifier as exc:
            raise bad(str(exc)) from None
        latest = dt.datetime.now(dt.UTC).date() + FETCH_CLOCK_SLACK + LAST_DAY_AFTER_FETCH
        if first < GRID_EPOCH or last < first or last > latest:
            raise bad(f"pump {serial}: its days {first}..{last} are not days from {GRID_EPOCH} to {latest}")
        if serial in serials:
            raise bad(f"pump {serial} is listed twice")
        serials.add(serial)
        if pump["model"] is not None and not isinstance(pump["model"], str):
            raise bad(f"pump {serial}: model {_shown(pump['model'])} is not text")
        windows, digests = pump["windows"], pump["sha256"]
        if not isinstance(windows, list) or not isinstance(digests, dict):
            raise bad(f"pump {serial}: windows is not a list, or sha256 not an object")
        cells = [grid_window(w) for w in windows]
        if None in cells:
            name = windows[cells.index(None)]
            raise bad(f"pump {serial}: window {_shown(name)} is not a cell of the 28-day grid")
        if windows != sorted(set(windows)) or set(digests) != set(windows):
            raise bad(f"pump {serial}: windows not listed once each in order, each with its sha256")
        if not all(ids.matches(SHA256, d) for d in digests.values()):
            raise bad(f"pump {serial}: a window's sha256 is not 64 hex digits")
    return data


def _recorded_digest(path: Path) -> str | None:
    """The SHA-256 recorded beside a raw-store file when it was written, without reading the file;
    None when there is none that reads as one."""
    try:
        digest = checksum_path(path).read_text(encoding="utf-8").split()[:1]
    except (OSError, UnicodeDecodeError):
        return None
    return digest[0] if digest and ids.matches(SHA256, digest[0]) else None


def last_fetch(fetch_dir: Path) -> Path | None:
    """The record of the account's last completed fetch: ``last-fetch.json``, else (a store fetched
    by an earlier version, which kept no copy) the manifest; None when there is neither."""
    for name in (LAST_FETCH, MANIFEST):
        if (fetch_dir / name).is_file():
            return fetch_dir / name
    return None


def stored_manifest(fetch_dir: Path, raw_root: str, wanted, hash_windows: bool = True) -> dict | None:
    """The manifest of the raw store ``raw_root`` as it is: the pumps of the last completed fetch
    (:func:`last_fetch`, checked by :func:`read_manifest`) that config ``pump_serial`` (``wanted``)
    names, each with every grid window saved on disk and its SHA-256.  While nothing was saved since
    that fetch, this is its manifest byte for byte (:func:`manifest_text`).

    ``hash_windows``: each window's bytes are hashed and must match the checksum beside it; otherwise the
    checksum recorded beside it is taken as it stands (a quick look: None when a window has none).
    Raises InputError when nothing was fetched yet, the record fails its checks, a serial ``wanted``
    is not in it, a window it lists is gone, or (``hash_windows``) a window is damaged.
    """
    record = last_fetch(fetch_dir)
    if record is None:
        windows = any(p.is_dir() and saved_windows(p) for p in Path(raw_root).glob("*"))
        raise InputError(
            "nothing fetched yet"
            + (f" by a fetch that completed ({fetch_dir / LAST_FETCH} is absent)" if windows else "")
            + f"; {FETCH_ONCE}"
        )
    base = read_manifest(record, raw_root)
    pumps = {p["serial"]: p for p in base["pumps"]}
    if wanted not in (None, "all"):
        names = list(dict.fromkeys(str(w) for w in (wanted if isinstance(wanted, list) else [wanted])))
        missing = [s for s in names if s not in pumps]
        if missing:
            raise InputError(
                f"pump_serial: {', '.join(missing)} not in the last fetch (it has: {', '.join(pumps) or 'none'}); "
                f"fix pump_serial, or {FETCH_ONCE}"
            )
        pumps = {s: pumps[s] for s in names}
    out = []
    for serial, pump in pumps.items():
        folder = Path(raw_root) / serial
        on_disk = [w.name for w in saved_windows(folder)]
        gone = sorted(set(pump["windows"]) - set(on_disk))
        if gone:
            raise InputError(
                f"{folder / (gone[0] + '.json')}: listed by the last fetch but missing from the raw store; restore it, "
                f"or {FETCH_ONCE} to fetch it again"
            )
        digests = {}
        for name in on_disk:
            path = folder / f"{name}.json"
            digest = checked_sha256(path) if hash_windows else _recorded_digest(path)
            if digest is None:
                return None
            if hash_windows and _recorded_digest(path) is None and digest != pump["sha256"].get(name, digest):
                # Its checksum file is gone, but the last fetch recorded what it held.
                raise InputError(
                    f"{path}: changed since the last fetch (its SHA-256 is not the one that fetch recorded, and its "
                    f"checksum file is gone); restore it, or {FETCH_ONCE} to fetch it again"
                )
            digests[name] = digest
        out.append({**pump, "windows": on_disk, "sha256": digests})
    return {"pumps": out, "raw_root": raw_root}


# --- what the exports hold ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PumpFetch:
    """One pump of the store: the last day with data its last fetch reported, and when (UTC; None
    when no record of that fetch holds the time)."""

    serial: str
    data_up_to: dt.date
    fetched_at: dt.datetime | None

    def entry(self) -> dict:
        """As exports/MANIFEST.json records it: not the fetch time, which changes on every fetch,
        so that a fetch that brought nothing new leaves the manifest as it was, as every export."""
        return {"serial": self.serial, "data_up_to": str(self.data_up_to)}


def pump_fetches(manifest: dict, raw_root: str, now: dt.datetime | None = None) -> list[PumpFetch]:
    """Each pump of ``manifest`` (checked: :func:`read_manifest` or :func:`stored_manifest`) with
    its last fetch, from the records beside its windows (:meth:`Fetched.load`): the latest fetch
    time, and the pump's last day that fetch reported.  Records whose SHA-256 is not their
    window's describe other bytes and are passed over; without any record holding a time, the
    manifest's last day.  Raises InputError naming a record that fails its checks."""
    out = []
    for pump in manifest["pumps"]:
        latest = None
        for name in pump["windows"]:
            path = Path(raw_root) / pump["serial"] / f"{name}.json"
            try:
                record = Fetched.load(path, now)
            except (BadRecord, OSError) as exc:
                raise InputError(
                    f"{fetched_path(path)}: not a record of a fetch this pipeline wrote ({exc}); {FETCH_ONCE}, which "
                    "writes it again"
                ) from None
            if record is None or record.fetched_at is None or record.sha256 != pump["sha256"][name]:
                continue
            if latest is None or record.fetched_at > latest.fetched_at:
                latest = record
        if latest is None:
            out.append(PumpFetch(pump["serial"], dt.date.fromisoformat(pump["last_day"]), None))
        else:
            out.append(PumpFetch(pump["serial"], latest.last_day, fetch_time(latest.fetched_at, now)))
    return out


def notice(fetches: list[PumpFetch], timezone: str) -> str:
    """The line saying what the exports hold when nothing was fetched: each pump's last day with
    data and the day (in ``timezone``, the account's) it was fetched."""
    zone = zoneinfo.ZoneInfo(timezone)
    pumps = [
        f"pump {f.serial} has data up to {f.data_up_to}, "
        + (f"fetched {f.fetched_at.astimezone(zone).date()}" if f.fetched_at else "fetch time not recorded")
        for f in fetches
    ]
    return "not fetched (fetch_latest: false): " + ("; ".join(pumps) or "no pump with data")


def offline_state(fetch_dir: Path, raw_root: str, wanted, timezone: str) -> str | None:
    """The notice of an account whose manifest is already what its store gives (nothing to run),
    or None when the offline job must run: to write the manifest, or to say what is wrong.  Never
    raises: a problem is for that job to report."""
    try:
        manifest = stored_manifest(fetch_dir, raw_root, wanted, hash_windows=False)
        if manifest is None or (fetch_dir / MANIFEST).read_text(encoding="utf-8") != manifest_text(manifest):
            return None
        return notice(pump_fetches(manifest, raw_root), timezone)
    except (InputError, OSError, ValueError):
        return None


def fetch_entry(fetch_dir: Path, raw_root: str, fetch_latest: bool) -> dict:
    """exports/MANIFEST.json's ``fetch`` entry of an account: whether the run asked for new data
    (``fetch_latest``) and each pump of its last fetch (the manifest, else its copy) with its last
    day with data; ``pumps`` is empty when nothing was fetched, null when a record fails its
    checks.  Never raises."""
    entry: dict = {"fetch_latest": fetch_latest, "pumps": []}
    path = fetch_dir / MANIFEST if (fetch_dir / MANIFEST).is_file() else last_fetch(fetch_dir)
    if path is None:
        return entry
    try:
        entry["pumps"] = [f.entry() for f in pump_fetches(read_manifest(path, raw_root), raw_root)]
    except (InputError, OSError, ValueError):
        entry["pumps"] = None
    return entry
