"""Configuration checks run when the workflow is parsed, before any job.

Every problem stops the run with one line on stderr naming the key, the bad value and the fix.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import math
import re
import sys
import time
import zoneinfo
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import demo, ids
from .layouts import PUMP_EPOCH
from .storage import atomic_path, sha256_file

#: Tables built from the decoded events by their own SQL (see tandem_export/sql/).
DERIVED_TABLES = (
    "cgm_readings",
    "basal_deliveries",
    "bolus_deliveries",
    "bg_readings",
    "alarms",
    "suspensions",
    "site_changes",
    "cgm_sessions",
    "daily_status",
    "user_modes",
    "daily_summary",
)
#: Every exported table, in the order the README lists them.
TABLES = ("raw_events", "events", "clock_changes", *DERIVED_TABLES)
#: Tables with a row per pump event: each is exported by its own job.
EXPORTED_ALONE = ("raw_events", "events")
#: Every other table: small next to those, exported together by one job (a job costs a Python start-up).
EXPORTED_TOGETHER = tuple(t for t in TABLES if t not in EXPORTED_ALONE)
PUMP_CLOCK_MODELS = ("recorded_changes", "follows_zone")
#: The DuckDB database in exports/ holding every table (all rows).
DATABASE = "tandem.duckdb"
#: The hidden file that stands for a table's Hive-partitioned dataset exports/{table}/ (tandem_export.dataset).
DATASET_MARKER = ".dataset.json"
FORMATS = ("parquet", "csv")
#: Folder under exports/ holding the tables of every sheet account together (with an account column).
COMBINED = "combined"
#: Every folder name the single-account layout uses under data/, exports/, logs/ and reports/ (rules/*.smk,
#: the raw-store plan below, export_manifest.RECORDS).  A sheet account's files live in data/<id>/,
#: exports/<id>/, logs/<id>/ and reports/<id>/, so an account with one of these ids would mix its files
#: with the single account's (``raw`` put its tables inside data/raw/, the raw store).
LAYOUT_FOLDERS = (
    *("raw", "files", demo.DEMO_SERIAL, "fetch", "normalized", "imported", "tables", "export-records"),
    *("export", "unknown", "report", "source"),
)
#: Account ids a sheet may not use (compared without regard to case): the layout's folders, and COMBINED.
RESERVED_ACCOUNTS = (*LAYOUT_FOLDERS, COMBINED)
#: Columns of the accounts sheet (schemas/accounts.schema.yaml), in the order the README lists them.
ACCOUNT_COLUMNS = ("account", "credentials_file", "email_env", "password_env", "region", "timezone", "pump_serial")
SOURCES = ("auto", "tandem", "demo", "file")
FETCH_DEFAULTS = {
    "refetch_days": 3,
    "retries": 5,
    "backoff_seconds": 1.0,
    "timeout_seconds": 60.0,
    "max_wait_seconds": 300,
    "token_cache": "sensitive/token.json",
}
NO_CREDENTIALS_NOTICE = (
    "source: auto found no Tandem Source credentials, so this run uses the DEMO pump. To fetch your own data, "
    "copy sensitive/credentials.toml.template to sensitive/credentials.toml, fill it in and chmod 600 it, "
    "or set TANDEM_EMAIL and TANDEM_PASSWORD (see the README)"
)
_EXPORT = rf"({'|'.join(TABLES)})(_{ids.DATE.pattern}_{ids.DATE.pattern})?\.({'|'.join(FORMATS)})"


class ConfigError(ValueError):
    """A configuration problem; the message is the one line shown to the user.

    Any line break in the message (a value read from a file may hold one) becomes a space, so the
    message is always one line.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).splitlines()))


def _shown(value) -> str:
    """``value`` as a message shows it: its repr (control characters visible), at most 60 characters."""
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


@dataclass(frozen=True)
class RawFile:
    """One raw-store file the source step writes: where, from what, and for which pump."""

    store: str
    window: str
    path: str
    kind: str  # "demo" or "file"
    pump_serial: str
    origin: str | None = None  # the user's file, for kind "file"


@dataclass
class Settings:
    """The checked configuration the rules use."""

    source: str
    #: The IANA zone pump times are read in (the pump clock's zone at the end of the history).
    timezone: str
    #: Where it came from: "config", LOCAL_FROM (timezone: local), "the demo pump's own zone", or
    #: "accounts sheet (<id>)"; logged by place_events and part of the lineage.
    timezone_from: str
    pump_clock: str
    start: str | None
    end: str | None
    demo_seed: int
    demo_end: str
    demo_days: int
    raw_files: dict[tuple[str, str], RawFile] = field(default_factory=dict)
    notice: str | None = None
    #: Warnings about the configuration, each one line, printed once when the workflow is parsed.
    warnings: list[str] = field(default_factory=list)
    region: str | None = None
    pump_serial: str | list[str] = "all"
    tandem_api: dict = field(default_factory=dict)
    fetch: dict = field(default_factory=lambda: dict(FETCH_DEFAULTS))
    fetch_check: str = ""
    #: False: no request of any kind; the tables are built from the raw store as it is (source tandem).
    fetch_latest: bool = True
    #: Sheet accounts only: the account id, and where its credentials come from.
    account: str = ""
    credentials_file: str | None = None
    email_env: str | None = None
    password_env: str | None = None

    @property
    def prefix(self) -> str:
        """Path prefix of this account's files: '' for the single-account setup, '<id>/' for a sheet account."""
        return f"{self.account}/" if self.account else ""

    @property
    def lineage(self) -> str:
        """A digest of every setting the account's tables are built from (a rule parameter).

        Snakemake rebuilds a missing intermediate file only when something downstream of it must run.
        A run that fails or is interrupted after a change of these settings removes the unfinished
        table files, and the exports, still present and newer than what is left, would then look up to
        date ("Nothing to be done") while holding the old rows.  Every rule from the events build to
        the exports and the report carries this digest as a parameter, so such a change keeps those
        jobs due until a run completes.  It covers: the package's code (:func:`code_version`: a new
        version rebuilds the tables, which Snakemake's own code check, limited to the rule scripts,
        would not see), the source and its raw windows (for saved files,
        names holding each file's hash), the demo generator's settings, the time zone and pump clock
        model, and for Tandem Source the account, region and pumps.  Not ``fetch_check``, nor
        ``fetch_latest`` (switching it rebuilds nothing by itself), nor the range: what a fetch
        brought is in its manifest (every window saved so far, whatever the range),
        an input of every job after it, so a fetch that brought nothing new reruns nothing.  The date
        range (``start``/``end``) is a parameter of the exports and the report only.
        """
        parts = {
            "cells": self.cells_lineage,
            "raw": sorted(
                [f.store, f.window, f.path, f.kind, f.pump_serial, f.origin or ""] for f in self.raw_files.values()
            ),
        }
        text = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    @property
    def cells_lineage(self) -> str:
        """A digest of the settings and code every table cell (tandem_export.cells) is built with:
        :attr:`lineage` without the list of raw windows.  A cell's own digest already covers the
        windows its rows come from (their content-addressed names), so a new window (a new day, a
        new saved file) leaves the cells it does not touch as they are; a change of the code, the
        source, the time zone or pump clock model, or the demo's or Tandem account's settings
        builds every cell again."""
        parts: dict = {
            "code": code_version(),
            "source": self.source,
            "timezone": self.timezone,
            "timezone_from": self.timezone_from,
            "pump_clock": self.pump_clock,
        }
        if self.source == "demo":
            parts["demo"] = [self.demo_seed, self.demo_end, self.demo_days]
        if self.source == "tandem":
            parts["tandem"] = [self.account, self.region, self.pump_serial]
        text = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    @property
    def source_label(self) -> str:
        """What exported files say about their origin (Parquet key-value metadata)."""
        if self.source == "demo":
            return "demo (generated demo pump, not real data)"
        if self.account:
            return f"{self.source} (account {self.account})"
        return self.source


def _none(value):
    return (
        None if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null", "none")) else value
    )


#: Words a --config value may use for a boolean (--config combined_exports=false gives text).
_BOOLEAN_WORDS = {"true": True, "yes": True, "false": False, "no": False}
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]{1,30}(?:\.[0-9]{0,30})?|\.[0-9]{1,30})(?:[eE][+-]?[0-9]{1,3})?")


def _as_schema_types(value, schema):
    """``value`` read as the JSON types ``schema`` allows, where YAML or --config gave another form.

    Objects are walked key by key along the schema's ``properties`` (changed in place).  A date
    (YAML reads an unquoted 2025-01-31 as one) becomes its ISO text where text is allowed; text
    that spells null, a whole number, a finite number or a boolean becomes that where the schema
    allows it (--config reads nested values, as in demo={days: 30}, as text).  Any other value,
    of any type, is returned unchanged for the schema to judge; this never raises.
    """
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        properties = schema.get("properties")
        if isinstance(properties, dict):
            for key, subschema in properties.items():
                if key in value:
                    value[key] = _as_schema_types(value[key], subschema)
        return value
    types = schema.get("type", [])
    types = {types} if isinstance(types, str) else set(types)
    if isinstance(value, dt.date) and "string" in types:  # a datetime is a date too
        return value.isoformat()
    if not isinstance(value, str):
        return value
    text = value.strip()
    if "null" in types and text.lower() in ("", "null", "none"):
        return None
    if "integer" in types and _INTEGER_TEXT.fullmatch(text):
        with contextlib.suppress(ValueError):  # more digits than Python converts
            return int(text)
    if "number" in types and _NUMBER_TEXT.fullmatch(text) and math.isfinite(float(text)):
        return float(text)
    if "boolean" in types and text.lower() in _BOOLEAN_WORDS:
        return _BOOLEAN_WORDS[text.lower()]
    return value


def strings_for_schema(config: dict, schema: dict) -> dict:
    """``config`` in the form the JSON ``schema`` describes, where YAML or --config read it otherwise.

    Pump serials read as numbers become text (ConfigError when leading zeros may have been lost,
    see :func:`_serial`), a single ``files`` path becomes a list, and every other value is read
    as the schema's types allow (:func:`_as_schema_types`: unquoted dates, 'null', numbers and
    booleans given as text).  Values of any other type are left for the schema to refuse; nothing
    here raises anything but ConfigError.  Modifies and returns ``config``.
    """
    # Pump serials are digits: YAML and --config read them as integers.
    serial = config.get("pump_serial")
    if _is_number(serial):
        config["pump_serial"] = _serial(serial, "pump_serial")
    elif isinstance(serial, list):
        config["pump_serial"] = [_serial(x, "pump_serial") if _is_number(x) else x for x in serial]
    if _is_number(config.get("file_pump_serial")):
        config["file_pump_serial"] = _serial(config["file_pump_serial"], "file_pump_serial")
    files = config.get("files")
    if isinstance(files, str):
        config["files"] = files = [files]
    for item in files if isinstance(files, list) else []:
        if isinstance(item, dict) and _is_number(item.get("pump_serial")):
            item["pump_serial"] = _serial(item["pump_serial"], "files[].pump_serial")
    return _as_schema_types(config, schema)


def _is_number(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_date(key: str, value) -> str | None:
    """``value`` as a YYYY-MM-DD string (None stays None); ConfigError if it is no real date."""
    value = _none(value)
    if value is None:
        return None
    text = str(value)
    try:
        if not ids.matches(ids.DATE, text):
            raise ValueError
        dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{key}: {text!r} is not a date; write YYYY-MM-DD (e.g. 2025-01-31) or null") from None
    return text


def check_range(start, end) -> tuple[str | None, str | None]:
    """Checked (start, end); ConfigError when end comes before start."""
    s, e = check_date("start", start), check_date("end", end)
    if s and e and e < s:
        raise ConfigError(f"end: {e} is before start {s}; swap them or change one")
    return s, e


#: ``timezone: local``: read pump times in this machine's zone, on purpose (warned about).
LOCAL = "local"
#: Settings.timezone_from of a zone given as ``local``.
LOCAL_FROM = "local (this machine's zone)"


#: Names the zone database holds that are no place's zone: ``localtime`` is whatever this machine is
#: set to (without the warning ``local`` gives), ``Factory`` and ``posixrules`` are placeholders.
NOT_A_PLACE = frozenset({"localtime", "Factory", "posixrules"})


@functools.cache
def known_zones() -> frozenset[str]:
    """The IANA zone names a ``timezone`` may give: ``zoneinfo.available_timezones()`` but
    :data:`NOT_A_PLACE`."""
    return frozenset(zoneinfo.available_timezones()) - NOT_A_PLACE


def machine_zone() -> str | None:
    """This machine's IANA zone name (tzlocal), or None when it cannot be told or is not a known zone
    (:func:`known_zones`)."""
    import tzlocal

    try:
        name = tzlocal.get_localzone_name()
        zoneinfo.ZoneInfo(name)
    except Exception:  # noqa: BLE001 - no zone configured, or one the zone database lacks
        return None
    return name if name in known_zones() else None


def timezone_not_set(where: str = "timezone: not set") -> str:
    """The one line saying how to set the zone, after ``where`` (what is missing)."""
    zone = machine_zone() or "which cannot be determined here"
    return (
        f"{where}; pump times are the pump's wall clock, so give the zone it shows, e.g. "
        f"--config timezone=Europe/Berlin (an IANA name), or timezone: local to use this machine's zone ({zone})"
    )


def check_timezone(value, source: str) -> tuple[str, str]:
    """(IANA zone name, where it came from) of a configured ``timezone`` for ``source``.

    Unset (None, '', 'null') is the demo pump's own zone for the demo, and a ConfigError for every
    other source: pump times are wall-clock times, and reading them in a zone the user never chose
    (this machine's, perhaps UTC) puts every instant hours off without a sign.  ``local`` is this
    machine's zone, chosen on purpose (where: :data:`LOCAL_FROM`).  Any other value must be one of
    :func:`known_zones` (exactly as written): ConfigError for a name the zone database lacks, and
    for ``localtime``, ``Factory`` and ``posixrules``, which name no place.
    """
    value = _none(value)
    if value is None:
        if source == "demo":
            return demo.DEMO_TIMEZONE, "the demo pump's own zone"
        raise ConfigError(timezone_not_set())
    if value == LOCAL:
        zone = machine_zone()
        if zone is None:
            raise ConfigError(
                "timezone: local, but this machine's zone cannot be determined; give the zone the pump shows, "
                "e.g. --config timezone=Europe/Berlin (an IANA name)"
            )
        return zone, LOCAL_FROM
    if str(value) not in known_zones():  # not a folder ('America'), nor a path, nor 'localtime'
        raise ConfigError(
            f"timezone: {value!r} is not a known IANA time zone; use a name like Europe/Berlin or America/New_York, "
            "or local for this machine's zone"
        )
    return str(value), "config"


def _serial(value, key: str) -> str:
    """A pump serial as text, matching :data:`ids.SERIAL` in full; ConfigError naming ``key`` otherwise.

    ``value`` is text, or a number YAML or --config read from digits: one that may have lost leading
    zeros (or was read as octal: not 8 digits) is refused.
    """
    if _is_number(value):
        if len(str(value)) != 8:
            raise ConfigError(
                f"{key}: {value} was read as a number, so leading zeros (or an octal reading) may have changed it; "
                f"write the serial in quotes in a config file (e.g. {key}: '00123456'), as --config reads digits as a number"
            )
        value = str(value)
    if not ids.matches(ids.SERIAL, value):
        raise ConfigError(
            f"{key}: {_shown(value)} is not a pump serial; write letters, digits and '-' (at most 40) in quotes, "
            "e.g. '90512345'"
        )
    return value


@functools.cache
def code_version() -> str:
    """A digest of every Python and SQL file of this package (``tandem_export``), read at parse time.

    A parameter of the normalize job and part of :attr:`Settings.lineage`: a changed decoder, time
    model, table SQL or export code makes Snakemake run the jobs from normalize on (windows whose
    decoder did not change are reused from the cache, see normalize.decoder_version).
    """
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".sql") and "__pycache__" not in p.parts):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


#: The most characters of a saved file's name kept in its raw-store copy's name ``{stem}-{12 hex digits}``.
STEM_CHARACTERS = 100
#: Where the SHA-256 of each saved file is remembered between runs, beside Snakemake's own state.
DIGEST_CACHE = Path(".snakemake") / "tandem_export" / "saved-file-digests.json"


class _Digests:
    """SHA-256 of saved files, remembered with each file's size, times and inode.

    Naming a saved file's raw copy needs the hash of its bytes at every parse (every run, every
    job); years of saved responses are gigabytes.  A file whose size, mtime, ctime, inode and device
    are all unchanged is not read again (ctime cannot be set back by hand, so an edit in place is
    always seen).  The cache is advisory: unreadable, it is rebuilt; unwritable, nothing is kept.
    """

    def __init__(self, path: Path) -> None:
        self.path, self.known, self.used = path, {}, {}
        with contextlib.suppress(OSError, ValueError):
            known = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(known, dict):
                self.known = known

    def sha256(self, full: Path) -> str:
        st = full.stat()
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
        hit = self.known.get(str(full))
        if isinstance(hit, dict) and hit.get("stat") == stamp and isinstance(hit.get("sha256"), str):
            with open(full, "rb"):  # still readable (permissions may have changed since)
                digest = hit["sha256"]
        else:
            digest = sha256_file(full)
        self.used[str(full)] = {"stat": stamp, "sha256": digest}
        return digest

    def save(self) -> None:
        if self.used == self.known:
            return
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.path) as tmp:
                tmp.write_text(json.dumps(self.used, sort_keys=True), encoding="utf-8")


def _file_entries(config: dict, basedir: str, warnings: list[str] | None = None) -> dict[tuple[str, str], RawFile]:
    """{("files", window): RawFile} of every saved file of config ``files``, in the order listed.

    Each file is one pump's history, named by its content (``{stem}-{12 hex digits of its
    SHA-256}``).  The same content listed again (the same file by another path, or a copy) with
    the same pump serial is read once, with one line appended to ``warnings`` naming every path
    it was listed as; with another serial it is a ConfigError naming both paths.  ConfigError also
    for an empty list, a path that is no readable file, or a serial that is not one.
    """
    entries = config.get("files") or []
    if isinstance(entries, str):
        entries = [entries]
    if not entries:
        raise ConfigError(
            "files: the list is empty but source is 'file'; list the saved responses to read, or set source: demo"
        )
    default_serial = _serial(config.get("file_pump_serial", "UNKNOWN"), "file_pump_serial")
    out = {}
    listed_as: dict[str, list[str]] = {}  # SHA-256 -> every path it was listed as, as the user wrote them
    entry_of: dict[str, RawFile] = {}  # SHA-256 -> its entry
    digests = _Digests(Path.cwd() / DIGEST_CACHE)
    for item in entries:
        path = item if isinstance(item, str) else item["path"]
        serial = default_serial
        if isinstance(item, dict) and "pump_serial" in item:
            serial = _serial(item["pump_serial"], "files[].pump_serial")
        full = Path(path) if Path(path).is_absolute() else Path.cwd() / path
        try:
            is_file = full.is_file()
        except OSError as exc:  # a name too long for the file system, say
            raise ConfigError(f"files: {path!r} cannot be read ({exc.strerror}); fix the path") from None
        if not is_file:
            raise ConfigError(f"files: {path!r} does not exist or is not a file; fix the path or remove the entry")
        try:
            digest = digests.sha256(full)
        except OSError as exc:
            raise ConfigError(f"files: {path!r} cannot be read ({exc.strerror}); fix its permissions") from None
        # At most STEM_CHARACTERS of the name: with the hash and ".raw.sha256" the raw-store names stay
        # far below the 255 bytes a file system allows (a longer saved-file name is valid, its copy not).
        # A raw-store name starts with a letter or digit (ids.WINDOW): leading '_' and '-' are dropped.
        stem = re.sub(r"[^A-Za-z0-9_-]+", "-", full.stem).strip("-_")[:STEM_CHARACTERS].rstrip("-_") or "file"
        # The content's hash is part of the name: a saved file that changes becomes a new raw-store
        # entry, and the copy imported before is never overwritten.
        window = f"{stem}-{digest[:12]}"
        earlier = entry_of.get(digest)
        if earlier is not None:
            # The same bytes twice (one file listed twice, or a copy): one pump's history. Under two
            # serials it would silently become two pumps (or drop one's events); under one, it is read once.
            first = listed_as[digest][0]
            if earlier.pump_serial != serial:
                same = Path(earlier.origin).resolve() == full.resolve()
                what = "is listed twice" if same else f"holds the same content as {first!r}"
                raise ConfigError(
                    f"files: {path!r} {what}, with pump serials {earlier.pump_serial!r} and {serial!r}"
                    f"{f' (first as {first!r})' if same else ''}; a saved file is one pump's history: list it once, "
                    "with its pump's serial"
                )
            listed_as[digest].append(str(path))
            continue
        out[("files", window)] = RawFile("files", window, f"data/raw/files/{window}.raw", "file", serial, str(full))
        entry_of[digest], listed_as[digest] = out[("files", window)], [str(path)]
    digests.save()
    for paths in listed_as.values():
        if len(paths) > 1 and warnings is not None:
            times = "twice" if len(paths) == 2 else f"{len(paths)} times"
            named = ", ".join(repr(p) for p in paths[:-1]) + f" and {paths[-1]!r}"
            warnings.append(f"files: {named} hold the same content (listed {times}); read once")
    return out


def _demo_entries(settings: Settings) -> dict[tuple[str, str], RawFile]:
    out = {}
    for first, last in demo.windows(dt.date.fromisoformat(settings.demo_end), settings.demo_days):
        window = f"{first}_{last}"
        store = demo.DEMO_SERIAL
        out[(store, window)] = RawFile(store, window, f"data/raw/{store}/{window}.json", "demo", demo.DEMO_SERIAL)
    return out


def resolve_source(source: str, project_dir: str | Path = ".", fetch_latest: bool = True) -> tuple[str, str | None]:
    """The source to use (``auto`` becomes tandem or demo) and a notice for the user, if any.

    ``source: tandem`` with ``fetch_latest`` false needs no credentials: nothing is requested.
    """
    if source not in ("auto", "tandem") or (source == "tandem" and not fetch_latest):
        return source, None
    from .errors import InputError
    from .tandem import load_credentials

    try:
        found = load_credentials(project_dir) is not None
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    if source == "tandem" and not found:
        raise ConfigError(
            "source: tandem needs credentials; fill sensitive/credentials.toml (chmod 600) or set TANDEM_EMAIL "
            "and TANDEM_PASSWORD, or use source: demo"
        )
    if found:
        return "tandem", None
    return "demo", NO_CREDENTIALS_NOTICE


def _fetch_check(end: str | None, refetch_days: int) -> str:
    """A value that differs on every invocation unless the range ended more than ``refetch_days``
    ago (late uploads of its last days may still arrive until then)."""
    if end and dt.date.fromisoformat(end) < dt.date.today() - dt.timedelta(days=int(refetch_days)):
        return f"closed range ending {end}"
    return f"open range, checked at {time.time():.6f}"


#: The demo history's days must lie within these (the pump clock counts from 2008-01-01).
DEMO_EARLIEST = dt.date.fromisoformat(PUMP_EPOCH[:10])
DEMO_LATEST = dt.date(2099, 12, 31)


def check(config: dict, basedir: str) -> Settings:
    """Check the whole configuration and plan the raw store; ConfigError on the first problem.

    ``config`` is Snakemake's merged config (changed in place: see :func:`strings_for_schema`);
    ``basedir`` is the workflow folder holding ``schemas/config.schema.yaml``.  The JSON schema
    runs first, so the checks written here see only values of the types it describes.  With an
    accounts sheet (``accounts``) the result holds the settings every account shares;
    :func:`accounts` gives each account's own.  Every problem, whatever the value and its type,
    is a ConfigError whose message is one line naming the key, the value and the fix.
    """
    schema = Path(basedir) / "schemas" / "config.schema.yaml"
    strings_for_schema(config, _schema(schema))
    validate(config, schema)
    source = config.get("source", "auto")
    if _none(config.get("accounts")) is not None:
        if source not in ("auto", "tandem"):
            raise ConfigError(
                f"accounts: a sheet lists Tandem Source accounts, but source is {source!r}; "
                "set source: tandem (or auto), or remove accounts"
            )
        source, notice = "tandem", None  # each account's credentials are read by its own fetch job
    else:
        source, notice = resolve_source(source, fetch_latest=config.get("fetch_latest", True))
    start, end = check_range(config.get("start"), config.get("end"))
    if _none(config.get("accounts")) is not None and _none(config.get("timezone")) is None:
        tz, tz_from = "", "each account's row of the accounts sheet"  # accounts() checks every row has one
    else:
        tz, tz_from = check_timezone(config.get("timezone"), source)
    d = config.get("demo") or {}
    demo_days = int(d.get("days", demo.DEMO_DAYS))
    demo_end = check_date("demo.end_date", d.get("end_date")) or demo.DEMO_END.isoformat()
    last = dt.date.fromisoformat(demo_end)
    if last > DEMO_LATEST or last.toordinal() - (demo_days - 1) < DEMO_EARLIEST.toordinal():
        earliest = DEMO_EARLIEST + dt.timedelta(days=demo_days - 1)
        raise ConfigError(
            f"demo.end_date: {demo_end} with demo.days {demo_days} puts the demo history outside "
            f"{DEMO_EARLIEST} to {DEMO_LATEST} (the pump clock starts in 2008); use an end date from {earliest} "
            f"to {DEMO_LATEST}"
        )
    settings = Settings(
        source=source,
        timezone=tz,
        timezone_from=tz_from,
        pump_clock=config.get("pump_clock") or "recorded_changes",
        start=start,
        end=end,
        demo_seed=int(d.get("seed", 42)),
        demo_end=demo_end,
        demo_days=demo_days,
    )
    settings.notice = notice
    settings.fetch_latest = config.get("fetch_latest", True)
    if source == "demo":
        settings.raw_files = _demo_entries(settings)
    elif source == "file":
        settings.raw_files = _file_entries(config, basedir, settings.warnings)
    else:
        region = _none(config.get("region"))
        if region is not None and str(region).upper() not in ("US", "EU"):
            raise ConfigError(f"region: {region!r} is not a Tandem Source region; use US or EU")
        settings.region = str(region).upper() if region else None
        settings.pump_serial = config.get("pump_serial", "all")
        for serial in [settings.pump_serial] if isinstance(settings.pump_serial, str) else settings.pump_serial:
            if serial != "all":
                _serial(serial, "pump_serial")
        settings.tandem_api = dict(config.get("tandem_api") or {})
        settings.fetch = _fetch_settings(config.get("fetch") or {})
        settings.fetch_check = _fetch_check(end, settings.fetch["refetch_days"])
    return settings


def _fetch_settings(given: dict) -> dict:
    """FETCH_DEFAULTS overridden by the config's ``fetch`` block (which passed the schema).

    A number must be finite (YAML reads .inf and .nan, which the schema's bounds let through); a
    key whose default is a whole number gets one (the schema takes 3.0 as an integer).
    ``token_cache`` must match :data:`ids.TOKEN_CACHE` in full (a relative path inside
    ``sensitive/`` ending in ``.json``: the access token is written there, so it must never name the
    config, the workflow, the raw store or a file outside the project).  Raises ConfigError.
    """
    fetch = {**FETCH_DEFAULTS, **given}
    check_token_cache("fetch.token_cache", fetch["token_cache"])
    for key, default in FETCH_DEFAULTS.items():
        value = fetch[key]
        if isinstance(default, int | float) and not isinstance(value, bool) and isinstance(value, int | float):
            if not math.isfinite(value):
                raise ConfigError(f"fetch.{key}: {value} is not a finite number; give a number such as {default}")
            if isinstance(default, int):
                fetch[key] = int(value)
    return fetch


def check_token_cache(key: str, value) -> str:
    """``value`` when it is a token-cache path (:data:`ids.TOKEN_CACHE`, in full), else ConfigError
    naming ``key``, the value and the fix."""
    if not ids.matches(ids.TOKEN_CACHE, value):
        raise ConfigError(
            f"{key}: {_shown(value)} is not a relative path inside sensitive/ ending in .json; the access token is "
            "written there, so write e.g. sensitive/token.json"
        )
    return value


def _sheet_serials(value: str, where: str) -> str | list[str]:
    items = [x for x in re.split(r"[\s,;]+", value.strip()) if x]
    if not items or items == ["all"]:
        return "all"
    for item in items:
        if not ids.matches(ids.SERIAL, item):
            raise ConfigError(f"{where}: {item!r} is not a pump serial; write all, or serials separated by commas")
    return items


def accounts(config: dict, shared: Settings, basedir: str | Path) -> dict[str, Settings]:
    """Every account the workflow serves: path prefix ('' or '<id>/') -> that account's Settings.

    Without ``accounts`` in the config this is the single-account setup, ``{"": shared}``.
    Otherwise ``accounts`` names a tab-separated sheet (columns: ACCOUNT_COLUMNS; only ``account``
    is required), validated against ``schemas/accounts.schema.yaml`` as the snakemake-workflows
    projects validate their samples sheet.  Each account takes the shared settings and overrides
    them with its row: region, timezone (empty: config ``timezone``; both empty is a ConfigError),
    pump_serial (empty or ``all``: every pump; else serials separated by commas) and its own
    token cache ``<fetch.token_cache folder>/tokens/<id>.json``.  Credentials come from the
    row's ``credentials_file`` (TOML like sensitive/credentials.toml, 0600) or from the
    environment variables the row names (``email_env``, ``password_env``); they are read by that
    account's fetch job, never here, so one account's missing credentials fail only that account.

    Raises ConfigError (one line naming the sheet, row and column) for a missing or invalid sheet,
    a duplicate or reserved id (:data:`RESERVED_ACCOUNTS`, in any case), or a row with no or two
    credential sources.
    """
    sheet = _none(config.get("accounts"))
    if sheet is None:
        return {"": shared}
    path = Path(str(sheet))
    if not path.is_absolute():
        path = Path.cwd() / path
    if not path.is_file():
        raise ConfigError(
            f"accounts: {sheet!r} does not exist or is not a file; give the path of the accounts sheet (TSV)"
        )
    import pandas as pd

    try:
        header = path.read_text(encoding="utf-8-sig").splitlines()[:1]
        names = [c.strip() for c in header[0].split("\t")] if header else []
        repeated = sorted({c for c in names if names.count(c) > 1})
        if repeated:
            raise ConfigError(f"accounts: {sheet!r} names column {repeated[0]!r} twice; name every column once")
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment="#", index_col=False)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"accounts: {sheet!r} cannot be read as a tab-separated sheet ({str(exc).strip()})") from None
    table.columns = [str(c).strip() for c in table.columns]
    table = table.apply(lambda col: col.str.strip())
    if "account" not in table.columns:
        raise ConfigError(f"accounts: {sheet!r} has no 'account' column; the first line must name the columns")
    unknown = [c for c in table.columns if c not in ACCOUNT_COLUMNS]
    if unknown:
        raise ConfigError(f"accounts: {sheet!r} has unknown column {unknown[0]!r}; use {', '.join(ACCOUNT_COLUMNS)}")
    if table.empty:
        raise ConfigError(f"accounts: {sheet!r} lists no accounts; add one row per account")
    for column in ACCOUNT_COLUMNS:
        if column not in table.columns:
            table[column] = ""
    schema = Path(basedir) / "schemas" / "accounts.schema.yaml"
    for number, row in enumerate(table.to_dict("records"), start=2):
        problem = schema_problem(row, schema)
        if problem:
            column, message = problem
            raise ConfigError(f"accounts: {sheet!r} line {number}, column {column or 'row'}: {message}")
    out: dict[str, Settings] = {}
    seen: set[str] = set()
    for number, row in enumerate(table.to_dict("records"), start=2):
        where = f"accounts: {sheet!r} line {number}"
        ident = row["account"]
        if not ids.matches(ids.ACCOUNT, ident):
            raise ConfigError(
                f"{where}, column account: {_shown(ident)} is not an account id; write letters, digits, '-' and '_' "
                "(at most 64)"
            )
        if ident.lower() in seen:
            raise ConfigError(f"{where}: account {ident!r} is listed twice; give every account its own id")
        if ident.lower() == COMBINED:
            raise ConfigError(f"{where}: {COMBINED!r} is reserved for the combined exports; choose another id")
        if ident.lower() in {r.lower() for r in RESERVED_ACCOUNTS}:
            raise ConfigError(
                f"{where}, column account: {ident!r} is the name of a folder the pipeline's own files use under "
                f"data/, exports/, logs/ or reports/, so its files would mix with them; choose another id (not "
                f"{', '.join(RESERVED_ACCOUNTS)})"
            )
        seen.add(ident.lower())
        by_file = bool(row["credentials_file"])
        by_env = bool(row["email_env"] or row["password_env"])
        if by_file == by_env or (by_env and not (row["email_env"] and row["password_env"])):
            raise ConfigError(
                f"{where}: give either credentials_file, or both email_env and password_env, for account {ident!r}"
            )
        if row["timezone"]:
            try:
                tz, tz_from = check_timezone(row["timezone"], "tandem")
            except ConfigError as exc:
                raise ConfigError(f"{where}, column timezone: {exc}") from None
            tz_from = tz_from if tz_from == LOCAL_FROM else f"accounts sheet ({ident})"
        elif shared.timezone:
            tz, tz_from = shared.timezone, shared.timezone_from
        else:
            raise ConfigError(
                timezone_not_set(f"{where}, column timezone: empty, and the config sets no timezone")
                + f"; or write the zone of {ident}'s pump in this cell"
            )
        # The shared settings, with this row's own values (dataclasses.replace copies the rest).
        cache = check_token_cache(
            f"{where}, its token cache",
            (Path(shared.fetch["token_cache"]).parent / "tokens" / f"{ident}.json").as_posix(),
        )
        settings = replace(
            shared,
            timezone=tz,
            timezone_from=tz_from,
            region=row["region"].upper() if row["region"] else shared.region,
            pump_serial=_sheet_serials(row["pump_serial"], f"{where}, pump_serial")
            if row["pump_serial"]
            else shared.pump_serial,
            tandem_api=dict(shared.tandem_api),
            fetch={**shared.fetch, "token_cache": cache},
            account=ident,
            credentials_file=row["credentials_file"] or None,
            email_env=row["email_env"] or None,
            password_env=row["password_env"] or None,
        )
        out[settings.prefix] = settings
    return out


def not_an_export_regex(prefixes: list[str]) -> str:
    """A regex for names under exports/ that no export rule can build, given the account prefixes.

    With sheet accounts, every account's own folder and the combined folder (tables only) are valid.
    """
    own = "|".join(re.escape(p) for p in prefixes)
    valid = f"(?:{own})({_EXPORT}|{re.escape(DATABASE)}|({'|'.join(TABLES)})/{re.escape(DATASET_MARKER)})"
    if any(prefixes):
        valid += f"|{re.escape(COMBINED)}/{_EXPORT}"
    return rf"(?!({valid})$).+"


def _exit(exc: ConfigError):
    print(f"Configuration error: {exc}", file=sys.stderr)
    sys.exit(1)


def load(config: dict, basedir: str | Path) -> tuple[Settings, dict[str, Settings]]:
    """The configuration as the workflow uses it, read when the workflow is parsed (rules/common.smk).

    Returns (shared settings, {path prefix: Settings of each account}) from :func:`check` and then
    :func:`accounts`; raises ConfigError (a one-line message) for any problem, whatever the config
    holds, and no other exception.
    """
    shared = check(config, basedir)
    return shared, accounts(config, shared, basedir)


def load_or_exit(config: dict, basedir: str | Path) -> tuple[Settings, dict[str, Settings]]:
    """:func:`load`, printing one line (``Configuration error: ...``) and exiting with status 1 on a problem.

    The source notice, if any, the configuration's warnings (Settings.warnings) and a warning when
    an account reads pump times in this machine's zone (``timezone: local``) are printed to stderr,
    once.
    """
    try:
        shared, served = load(config, basedir)
    except ConfigError as exc:
        _exit(exc)
    if shared.notice:
        print(f"Notice: {shared.notice}", file=sys.stderr)
    for warning in shared.warnings:
        print(f"Warning: {warning}", file=sys.stderr)
    local = next((s.timezone for s in served.values() if s.timezone_from == LOCAL_FROM), None)
    if local:
        print(
            f"Warning: timezone: local reads pump times in this machine's zone, {local}; "
            "set the pump's zone if they differ",
            file=sys.stderr,
        )
    return shared, served


@functools.cache
def _schema(path: Path) -> dict:
    import yaml

    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def schema_problem(data: dict, schema: Path) -> tuple[str, str] | None:
    """(where, message) of the most relevant way ``data`` breaks the JSON schema at ``schema``, or None.

    ``where`` is the key path as the README writes it ("fetch.retries", "files[0].pump_serial"), empty
    for the whole object;
    ``message`` is one line naming the bad value (its repr, shortened) and what to write instead.
    The schema is a JSON Schema (draft 2020-12) checked by jsonschema, as snakemake.utils.validate
    does (jsonschema matches ``pattern`` with Python's re.search).
    """
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(_schema(Path(schema))).iter_errors(data))
    if error is None:
        return None
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    return where, _schema_message(error)


#: How a message names each JSON type.
_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a block of keys",
    "array": "a list",
    "null": "null",
}


def _schema_message(error) -> str:
    """One line for a jsonschema ValidationError: the value, what is wrong and what to write."""
    kind, arg, value, sub = error.validator, error.validator_value, error.instance, error.schema
    described = sub.get("description") if isinstance(sub, dict) else None
    if kind == "additionalProperties" and isinstance(value, dict) and isinstance(sub, dict):
        known = list(sub.get("properties") or {})
        extra = next((k for k in value if k not in known), None)
        return f"{_shown(extra)} is not a key here; remove it or fix its spelling (the keys are {', '.join(known)})"
    if kind == "type":
        types = [arg] if isinstance(arg, str) else list(arg)
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in types)
        what = f": {described}" if described else ""
        where = ", in a config file passed with --configfile" if "object" in types else ""
        return f"{_shown(value)} is not {words}; write {words}{what}{where}"
    if kind == "required" and isinstance(value, dict):
        missing = next((k for k in arg if k not in value), None)
        return f"{_shown(value)} has no {_shown(missing)}; add it"
    if kind == "enum":
        return f"{_shown(value)} is not allowed; use one of {', '.join(str(x) for x in arg)}"
    if kind in ("pattern", "oneOf", "anyOf") and described:
        return f"{_shown(value)} is not {described}"
    if kind == "minimum":
        return f"{_shown(value)} is less than {arg}; use {arg} or more"
    if kind == "maximum":
        return f"{_shown(value)} is more than {arg}; use {arg} or less"
    if kind == "exclusiveMinimum":
        return f"{_shown(value)} is not more than {arg}; use a number above {arg}"
    if kind == "minLength":
        return f"{_shown(value)} is empty; give a value"
    if kind == "minItems":
        return f"{_shown(value)} is an empty list; list at least one"
    message = " ".join(str(error.message).split())
    if len(message) > 200:
        message = message[:197] + "..."
    return f"{message}; see the Configuration section of the README"


def validate(config: dict, schema: Path) -> None:
    """ConfigError when ``config`` breaks the JSON schema at ``schema``: one line with the key path
    (``config`` for the whole), the value and the fix (:func:`schema_problem`)."""
    problem = schema_problem(config, schema)
    if problem:
        raise ConfigError(f"{problem[0] or 'config'}: {problem[1]}")


def check_date_or_exit(key: str, value: str) -> str:
    """:func:`check_date` for a date in a target name, exiting on a problem."""
    try:
        return check_date(key, value)
    except ConfigError as exc:
        _exit(exc)


def check_range_or_exit(start: str, end: str) -> str:
    """The checked end date of a target name's range, exiting when it is before the start."""
    try:
        return check_range(start, end)[1]
    except ConfigError as exc:
        _exit(exc)


def unknown_target_or_exit(name: str, account_ids: list[str] | None = None):
    """Stop with the list of valid tables and formats for an export name no rule can build."""
    ids = [a for a in (account_ids or []) if a]
    where = "ACCOUNT/" if ids else ""
    accounts_note = (
        f"; ACCOUNT is one of {', '.join(ids)}, or {COMBINED} for every account's rows together (tables only)"
        if ids
        else ""
    )
    _exit(
        ConfigError(
            f"exports/{name}: not an export this workflow builds; use exports/{where}TABLE.FORMAT or "
            f"exports/{where}TABLE_YYYY-MM-DD_YYYY-MM-DD.FORMAT with TABLE one of {', '.join(TABLES)} "
            f"and FORMAT one of {', '.join(FORMATS)}, exports/{where}TABLE/{DATASET_MARKER} (the table's "
            f"Hive-partitioned dataset), or exports/{where}{DATABASE}{accounts_note}"
        )
    )
