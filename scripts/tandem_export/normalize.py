"""Read raw-store files in whichever form they hold and write their normalised events tables.

:func:`normalize_store` decodes every window of one store in one process, many files per query,
and keeps each window's table under a name derived from its raw content and this decoder, so an
unchanged window is decoded once; :func:`normalize_file` decodes one file.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import functools
import hashlib
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import answers, decode, ids, source
from . import layouts as L
from .errors import InputError
from .storage import atomic_path, connect, sql_str

FORM_PUMP_LOGS = "pump-logs"
FORM_EVENT_LIST = "pump-logs-event-list"
FORM_LEGACY_JSON = "legacy-pumpevents-json"
FORM_BASE64 = "base64"
FORM_RECORDS = "records"

# Every field is read as JSON and converted with TRY_CAST, so one event with a field of the wrong
# type becomes NULLs (and is left out and counted) instead of making the whole file unreadable.
_EVENT_STRUCT = (
    "STRUCT(deviceAssignmentId JSON, eventCode JSON, sequenceGroup JSON, sequenceNumber JSON,"
    " pumpDateTime JSON, estimatedDateTime JSON, eventProperties JSON)"
)
_BASE64_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \t\r\n")
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")


@dataclass
class Stats:
    """What normalising one file found: counts for the log and the console."""

    form: str = ""
    events: int = 0
    trailing_bytes: int = 0
    unknown_ids: dict[int, int] = field(default_factory=dict)
    dropped_without_identity: int = 0
    future_times: int = 0
    early_times: int = 0
    type_errors: int = 0
    #: "event id.column" -> [values out of range (read as NULL), first pump time, its seq_num]
    out_of_range: dict[str, list] = field(default_factory=dict)
    #: why events were left out (pump-logs): reason -> count (their sum is dropped_without_identity)
    left_out: dict[str, int] = field(default_factory=dict)
    #: every event read, with or without identity (not stored: events + dropped_without_identity)
    total: int = field(default=0, repr=False, compare=False)

    def to_json(self) -> str:
        """The stats as JSON (kept in a table's metadata so a reused table logs the same)."""
        data = asdict(self)
        data.pop("total")
        data["unknown_ids"] = {str(k): v for k, v in self.unknown_ids.items()}
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Stats:
        data = json.loads(text)
        data["unknown_ids"] = {int(k): int(v) for k, v in data["unknown_ids"].items()}
        stats = cls(**data)
        stats.total = stats.events + stats.dropped_without_identity
        return stats

    def warnings(self, name: str) -> list[str]:
        """One line per thing the user should know about this file."""
        out = []
        if self.trailing_bytes:
            out.append(
                f"{name}: {self.trailing_bytes} trailing byte(s) after the last whole 26-byte record were skipped"
            )
        if self.dropped_without_identity:
            why = "; ".join(f"{count} with {reason}" for reason, count in sorted(self.left_out.items()))
            out.append(
                f"{name}: {self.dropped_without_identity} event(s) were left out"
                + (f" ({why})" if why else " (without an event code, sequence number or readable pump time)")
            )
        if self.type_errors:
            out.append(
                f"{name}: {self.type_errors} value(s) of the wrong type were read as NULL (raw values stay in properties)"
            )
        if self.early_times:
            out.append(
                f"{name}: {self.early_times} event(s) carry a pump time before 2008, before the pump clock's epoch"
            )
        if self.future_times:
            out.append(f"{name}: {self.future_times} event(s) carry a pump time more than a year in the future")
        if self.unknown_ids:
            listed = ", ".join(f"{k} (x{v})" for k, v in sorted(self.unknown_ids.items()))
            out.append(f"{name}: event ids this version does not decode, kept as UNKNOWN_<id>: {listed}")
        return out


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        if exc.start < len(head) - 3:
            return False
        head = head[: exc.start]
    # Control characters other than tab and line ends are not text (in UTF-8 they are single bytes).
    return _CONTROL.search(head) is None


def detect_form(path: Path) -> str:
    """The form of a saved response, from its content (never its name).

    Text is JSON (pump-logs object, bare event list, or a legacy pumpevents body: a JSON string of
    base64) or base64 text; only content that is not text is read as 26-byte records.

    Raises InputError naming the file for empty files, HTML pages and any other text.
    """
    with open(path, "rb") as fh:
        head = fh.read(65536)
    head = head.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark (Windows tools) is not content
    if not head.strip():
        raise InputError(f"{path}: the file is empty; it holds no pump history")
    if not _is_text(head):
        return FORM_RECORDS
    first = head.lstrip()[:1]
    if first == b"{":
        return FORM_PUMP_LOGS
    if first == b"[":
        return FORM_EVENT_LIST
    if first == b'"':
        return FORM_LEGACY_JSON
    if first == b"<":
        raise InputError(
            f"{path}: this is an HTML page (an error or login page saved by mistake), not a saved API response"
        )
    # Base64 text: one token, possibly wrapped over lines; words separated by spaces are not.
    if set(head) <= _BASE64_CHARS and not re.search(rb"[^\s][ \t]+[^\s]", head.strip()):
        return FORM_BASE64
    raise InputError(
        f"{path}: not a known response form (pump-logs JSON, a legacy pumpevents body, base64 text or 26-byte records)"
    )


def _b64(text: str, path: Path) -> bytes:
    compact = "".join(text.split())
    try:
        if "-" in compact or "_" in compact:
            return base64.urlsafe_b64decode(compact)
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"{path}: invalid base64 ({exc}); re-save the response or remove the file") from None


#: A records file in which more than this share of records have unknown ids or impossible
#: times is not pump history (random bytes, a compressed or unrelated file) and is refused.
MAX_IMPLAUSIBLE_SHARE = 0.5

#: Decoding a store reads pump-logs files in batches of about this many bytes (bounds memory).
JSON_BATCH_BYTES = 128 << 20
#: ... and 26-byte records in batches of about this many records.
RECORDS_BATCH = 1 << 17

_JSON_FORMS = (FORM_PUMP_LOGS, FORM_EVENT_LIST)
_EARLIEST_US = int(np.datetime64("2008-01-01T00:00:00", "us").astype(np.int64))
_STATS_KEY = b"tandem_export.stats"
_DECODER_SOURCES = ("normalize.py", "decode.py", "layouts.py", "dictionaries.py")


def decoder_version(folder: Path | None = None) -> str:
    """16 hex digits of a hash of the decoder's own source (:data:`_DECODER_SOURCES` in ``folder``,
    default this package): a changed decoder decodes every window again.  Computed once per folder."""
    return _decoder_version(Path(__file__).parent if folder is None else Path(folder))


@functools.cache
def _decoder_version(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in _DECODER_SOURCES:
        digest.update(name.encode() + b"\0" + (folder / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class WindowSpec:
    """One raw-store window of a store: its name, raw file, the pump serial of its events and the
    label messages name it by (the user's own file for the file source)."""

    window: str
    raw: Path
    pump_serial: str
    label: str


@dataclass
class _Item:
    """One raw file being decoded: what it is, and what decoding it gave (a table or an error)."""

    raw: Path
    pump_serial: str
    stats: Stats = field(default_factory=Stats)
    buf: bytes | None = None
    table: pa.Table | None = None
    error: InputError | None = None


# --- the public entry points -------------------------------------------------------------------


def normalize_file(raw: Path, pump_serial: str, out: Path, label: str | None = None) -> Stats:
    """Decode one raw-store file into ``out`` (Parquet: the common columns and the decoded columns of
    the event types present, see :func:`_tables`).

    The file is never modified.  Events without an identity (event code, sequence number, pump
    time) are left out and counted.  Rows come in (sequence_group, seq_num) order, ties in file order.
    Raises InputError naming the file (``label``, e.g. the user's own file, else ``raw``) for
    content that is no known form, malformed JSON, invalid base64, or records that are mostly
    not pump history.
    """
    item = _Item(Path(raw), pump_serial)
    with _Decoder(threads=2) as decoder:
        decoder.run([item])
    if item.error is not None:
        raise _relabel(item.error, item.raw, label) from None
    _write(item.table, item.stats, Path(out))
    return item.stats


def normalize_store(
    windows: list[WindowSpec], out_dir: Path, index_out: Path, log: logging.Logger, threads: int = 2
) -> list[Stats]:
    """Normalise every window of one store in this process: one Parquet file per window.

    A window's table is ``out_dir/{window}.{key}.parquet``, ``key`` a hash of the raw file's
    SHA-256, the pump serial and :func:`decoder_version`; a table already there is reused without
    decoding (its stats are kept in the file's metadata, so the log says the same).  Raw files are
    checked against their ``.sha256`` (InputError naming the raw file on a mismatch).  Then
    ``index_out`` lists the windows in the order given (see :func:`read_index`) and tables in
    ``out_dir`` that the index does not list are deleted.  If any window fails, the InputError of
    the first failing window (in the order given) is raised naming its label; no index is left and
    nothing is deleted.  Returns the stats of every window, in order.
    """
    out_dir = Path(out_dir)
    index_out = Path(index_out)
    with contextlib.suppress(FileNotFoundError):
        index_out.unlink()  # a failed run must not leave the previous run's list behind
    threads = max(1, int(threads))
    targets: list[Path | None] = [None] * len(windows)
    stats: list[Stats | None] = [None] * len(windows)
    errors: dict[int, InputError] = {}
    decoded: set[int] = set()
    # Checksums are computed in the pool, in order; each run of windows is decoded as soon as its
    # checksums are known (the next ones are computed meanwhile), and its tables written in the pool.
    with ThreadPoolExecutor(threads) as pool, contextlib.ExitStack() as stack:
        keys = [pool.submit(_cache_key, spec) for spec in windows]
        writes = []
        decoder: _Decoder | None = None

        def done(i: int, item: _Item) -> None:
            if item.error is not None:
                errors[i] = _relabel(item.error, item.raw, windows[i].label)
                return
            stats[i] = item.stats
            writes.append(pool.submit(_write, item.table, item.stats, targets[i]))
            item.table = None

        for run in _batches([(i, windows[i]) for i in range(len(windows))], _raw_size, JSON_BATCH_BYTES):
            items = {}
            for i, spec in run:
                key = keys[i].result()
                if isinstance(key, InputError):
                    errors[i] = key
                    continue
                targets[i] = out_dir / f"{spec.window}.{key}.parquet"
                if (cached := _cached_stats(targets[i])) is not None:
                    stats[i] = cached
                else:
                    items[i] = _Item(spec.raw, spec.pump_serial)
            if items:
                if decoder is None:
                    decoder = stack.enter_context(_Decoder(threads))
                decoder.run_store(items, done)
                decoded.update(items)
        for w in writes:
            w.result()
    for i, spec in enumerate(windows):
        if i in errors:
            continue
        what = "decoded" if i in decoded else "unchanged, reused"
        log.info("%s: %s form, %d events (raw copy %s; %s)", spec.label, stats[i].form, stats[i].events, spec.raw, what)
        for line in stats[i].warnings(spec.label):
            log.warning("%s", line)
    where = "saved files" if out_dir.name == "files" else f"pump {out_dir.name}"
    for line in out_of_range_warnings(where, [st for i, st in enumerate(stats) if i not in errors]):
        log.warning("%s", line)
    if errors:
        raise errors[min(errors)]
    index = {
        "store": out_dir.name,
        "windows": [
            {"window": s.window, "label": s.label, "parquet": str(t), "events": st.events, "form": st.form}
            for s, t, st in zip(windows, targets, stats, strict=True)
        ],
    }
    with atomic_path(index_out) as tmp:
        tmp.write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    for line in _shrunk_saved_files(out_dir, windows, targets):
        log.warning("%s", line)
    _remove_stale_tables(out_dir, {t.name for t in targets})
    return stats  # type: ignore[return-value]


_SAVED_COPY = re.compile(r"(?P<stem>.+)-(?P<hash>[0-9a-f]{12})")


def _shrunk_saved_files(out_dir: Path, windows: list[WindowSpec], targets: list[Path]) -> list[str]:
    """One line per saved file whose new content lacks events of its earlier copy.

    A saved file's raw copy is named ``{stem}-{12 hex digits of its hash}`` (config._file_entries), so
    a file that changed has a new window and its earlier copy's table is stale here.  The events of
    that earlier copy (identity: sequence_group, seq_num) that the new one lacks would drop out of
    every table without a word; the line gives their number and dates, and how to keep them.
    """
    current = {t.name for t in targets}
    stale: dict[str, list[Path]] = {}
    for table in out_dir.glob("*.parquet"):
        match = ids.WINDOW_TABLE.fullmatch(table.name)
        copy = _SAVED_COPY.fullmatch(match["window"]) if match else None
        if copy and table.name not in current:
            stale.setdefault(copy["stem"], []).append(table)
    by_stem: dict[str, list[tuple[WindowSpec, Path]]] = {}
    for spec, target in zip(windows, targets, strict=True):
        copy = _SAVED_COPY.fullmatch(spec.window)
        if copy is not None and stale.get(copy["stem"]):
            by_stem.setdefault(copy["stem"], []).append((spec, target))
    out = []
    for stem, now in by_stem.items():
        have: set = set()
        for _, target in now:
            table = pq.read_table(target, columns=["sequence_group", "seq_num"])
            have |= set(zip(table["sequence_group"].to_pylist(), table["seq_num"].to_pylist(), strict=True))
        names = {spec.window for spec, _ in now}
        spec = now[0][0]
        for earlier in sorted(stale[stem]):
            old_window = ids.WINDOW_TABLE.fullmatch(earlier.name)["window"]
            if old_window in names:
                continue  # the same content, decoded by another version of the decoder
            before = pq.read_table(earlier, columns=["sequence_group", "seq_num", "pump_time"]).to_pylist()
            lost = [r for r in before if (r["sequence_group"], r["seq_num"]) not in have]
            if lost:
                days = sorted(r["pump_time"].date() for r in lost)
                out.append(
                    f"{spec.label}: its new content lacks {len(lost)} event(s) of the copy imported earlier "
                    f"({days[0]} to {days[-1]}), which are no longer in the tables; to keep them, list the earlier "
                    f"copy too: {spec.raw.parent / (old_window + spec.raw.suffix)}"
                )
    return out


def _remove_stale_tables(out_dir: Path, keep: set[str]) -> None:
    """Delete the window tables in ``out_dir`` that the index does not list: only files this step
    writes, recognised by their exact name (``{window}.{16 hex digits}.parquet``, ids.WINDOW_TABLE);
    anything else in the folder (a user's file, a link) is left alone."""
    for old in out_dir.iterdir():
        if old.name in keep or not ids.matches(ids.WINDOW_TABLE, old.name):
            continue
        if old.is_file() and not old.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                old.unlink()


def out_of_range_warnings(where: str, stats: list[Stats]) -> list[str]:
    """One line per field with values out of range in any of ``stats`` (one store's windows): how
    many were read as NULL, the field's range, and the first by pump time with its seq_num."""
    total: dict[str, list] = {}
    for st in stats:
        for key, (count, first, seq) in st.out_of_range.items():
            seen = total.setdefault(key, [0, first, seq])
            seen[0] += count
            if (first, seq) < (seen[1], seen[2]):
                seen[1:] = [first, seq]
    out = []
    for key, (count, first, seq) in sorted(total.items(), key=lambda kv: (int(kv[0].split(".")[0]), kv[0])):
        event_id, column = key.split(".", 1)
        field = next(f for f in L.EVENTS_BY_ID[int(event_id)].fields if f.column == column)
        lo, hi = field.bounds if field.kind == "num" else field.raw_bounds
        out.append(
            f"{where}: {count} {L.event_name(int(event_id))} value(s) of {column} outside {lo:g} to {hi:g} were read "
            f"as NULL (the events are kept; the first at pump time {first}, seq_num {seq})"
        )
    return out


def read_index(path: Path | str) -> list[str]:
    """The Parquet paths an index written by :func:`normalize_store` lists, in order."""
    index = json.loads(Path(path).read_text(encoding="utf-8"))
    return [w["parquet"] for w in index["windows"]]


# --- cache ---------------------------------------------------------------------------------------


def _cache_key(spec: WindowSpec) -> str | InputError:
    """The table name's key of a window; InputError if its raw file no longer matches its checksum."""
    try:
        digest = source.checked_sha256(spec.raw)
    except InputError as exc:
        return exc
    except OSError as exc:
        return InputError(f"{spec.label}: cannot read the raw-store file {spec.raw} ({exc.strerror or exc})")
    key = hashlib.sha256(f"{digest}\0{spec.pump_serial}\0{decoder_version()}".encode())
    return key.hexdigest()[:16]


def _cached_stats(target: Path) -> Stats | None:
    """The stats recorded in an existing table, or None when there is no usable one."""
    try:
        meta = pq.read_metadata(target).metadata or {}
        return Stats.from_json(meta[_STATS_KEY].decode())
    except (FileNotFoundError, KeyError, ValueError, TypeError, OSError, pa.ArrowException):
        return None


def _write(table: pa.Table, stats: Stats, out: Path) -> None:
    """Write a window's table (names dictionary-encoded in memory are plain strings in the file, as
    DuckDB writes them; no Arrow schema is stored) with its stats in the key-value metadata."""
    with atomic_path(out) as tmp:
        with pq.ParquetWriter(tmp, table.schema, compression="snappy", store_schema=False) as writer:
            writer.write_table(table)
            writer.add_key_value_metadata({_STATS_KEY.decode(): stats.to_json()})


def _relabel(error: InputError, raw: Path, label: str | None) -> InputError:
    if label and str(error).startswith(str(raw)):
        return InputError(label + str(error)[len(str(raw)) :])
    return error


# --- decoding ------------------------------------------------------------------------------------


class _Decoder:
    """Decodes raw files many at a time: pump-logs JSON in a few DuckDB queries per batch of files,
    26-byte records with NumPy; both through the same raw-to-decoded step (:mod:`decode`)."""

    def __init__(self, threads: int) -> None:
        self.con = connect()
        self.con.sql(f"SET threads = {max(1, int(threads))}")
        self.aux = self.con.cursor()  # for work while the connection reads the next batch
        self.f32 = decode.F32(self.aux)

    def __enter__(self) -> _Decoder:
        return self

    def __exit__(self, *exc) -> None:
        self.aux.close()
        self.con.close()

    def run(self, items: list[_Item]) -> None:
        """Decode ``items``; each gets its table and stats, or its error."""
        self.run_store(dict(enumerate(items)), lambda i, item: None)

    def run_store(self, items: dict[int, _Item], done) -> None:
        """Decode ``items``, calling ``done(key, item)`` for each as soon as it is finished."""
        json_items: list[tuple[int, _Item]] = []
        binary_items: list[tuple[int, _Item]] = []
        for key, item in items.items():
            try:
                item.stats.form = detect_form(item.raw)
                if item.stats.form in _JSON_FORMS:
                    json_items.append((key, item))
                    continue
                item.buf = _binary_content(item.raw, item.stats.form)
                binary_items.append((key, item))
            except InputError as exc:
                item.error = exc
                done(key, item)
            except OSError as exc:
                item.error = InputError(f"{item.raw}: cannot read the file ({exc.strerror or exc})")
                done(key, item)
        for batch in _batches(binary_items, lambda it: len(it.buf) // L.RECORD_SIZE, RECORDS_BATCH):
            self._checked([it for _, it in batch], self._records)
            for key, item in batch:
                item.buf = None
                done(key, item)
        # pump-logs: DuckDB reads the next batch (in a thread) while this one is decoded and assembled.
        batches = [
            (form, batch)
            for form in _JSON_FORMS
            for batch in _batches(
                [(k, it) for k, it in json_items if it.stats.form == form],
                lambda it: it.raw.stat().st_size,
                JSON_BATCH_BYTES,
            )
        ]
        with ThreadPoolExecutor(1) as reader:

            def read(b: int):
                form, batch = batches[b]
                try:
                    return self._json_read([it for _, it in batch], form) if len(batch) > 1 else None
                except (duckdb.Error, InputError, OverflowError, UnicodeDecodeError):
                    return None  # decoded one file at a time below

            ahead = reader.submit(read, 0) if batches else None
            for b, (form, batch) in enumerate(batches):
                state = ahead.result()
                ahead = reader.submit(read, b + 1) if b + 1 < len(batches) else None
                items_of = [it for _, it in batch]
                try:
                    if state is None:
                        raise InputError("read one file at a time")
                    self._json_finish(state)
                except (duckdb.Error, InputError, OverflowError, UnicodeDecodeError):
                    if ahead is not None:
                        ahead.result()  # the connection is free again
                    for it in items_of:
                        it.table, it.error = None, None
                    self._checked(items_of, lambda its, form=form: self._json(its, form), together=False)
                for key, item in batch:
                    done(key, item)

    def _checked(self, items: list[_Item], step, together: bool = True) -> None:
        """Run ``step`` on all ``items`` at once; if that fails, on one at a time to tell which failed."""
        if together and len(items) > 1:
            try:
                step(items)
                return
            except (duckdb.Error, InputError, OverflowError, UnicodeDecodeError):
                for item in items:
                    item.table, item.error = None, None
        for item in items:
            try:
                step([item])
            except InputError as exc:
                item.error = exc
            except (duckdb.Error, OverflowError) as exc:
                first = str(exc).strip().splitlines()[0][:200]
                what = "not a readable pump-logs response" if item.stats.form in _JSON_FORMS else "cannot be decoded"
                item.error = InputError(f"{item.raw}: {what} ({first})")
            except UnicodeDecodeError:
                item.error = InputError(f"{item.raw}: not a readable pump-logs response (text that is not valid UTF-8)")

    def _decode(self, raws: dict) -> dict:
        """event id -> (rows, raw values per column) to event id -> (rows, decoded pieces per column)."""
        self.f32.prefetch([c for e, (_, raw) in raws.items() for c in decode.f32_columns(L.EVENTS_BY_ID[e], raw)])
        return {e: (rows, decode.decode_event(L.EVENTS_BY_ID[e], raw, self.f32)) for e, (rows, raw) in raws.items()}

    # --- 26-byte records

    def _records(self, items: list[_Item]) -> None:
        counts = [len(it.buf) // L.RECORD_SIZE for it in items]
        for it, n in zip(items, counts, strict=True):
            it.stats.trailing_bytes = len(it.buf) - n * L.RECORD_SIZE
        if len(items) == 1:
            rec = decode.Records(items[0].buf)
        else:
            rec = decode.Records(
                np.concatenate(
                    [np.frombuffer(it.buf, np.uint8, n * L.RECORD_SIZE) for it, n in zip(items, counts, strict=True)]
                )
            )
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        win = np.repeat(np.arange(len(items)), counts)
        # Rows in (seq_num, file order) within each file: usually they are already.
        seq = rec.seq_num
        if len(seq) > 1 and not np.all((seq[1:] >= seq[:-1]) | (win[1:] != win[:-1])):
            order = np.lexsort((np.arange(len(seq)), seq, win))
            rec = decode.Records(np.ascontiguousarray(rec.rows[order]).reshape(-1))
        n = len(rec)
        ok = np.ones(n, dtype=bool)
        implausible = _count(items, win, rec.event_id, ok, rec.pump_time_us, ok, ok, np.zeros(len(items), np.int64))
        for it, bad in zip(items, implausible.tolist(), strict=True):
            if it.stats.total and bad / it.stats.total > MAX_IMPLAUSIBLE_SHARE:
                raise InputError(
                    f"{it.raw}: does not look like pump history records ({bad} of "
                    f"{it.stats.total} have unknown record types or impossible times); check that this is the saved "
                    "pumpevents data, uncompressed"
                )
        base = {
            "sequence_group": pa.nulls(n, pa.int64()),
            "seq_num": rec.seq_num,
            "event_id": rec.event_id,
            "pump_time": rec.pump_time_us,
            "properties": pa.nulls(n, pa.json_(pa.string())),
            "record": pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(L.RECORD_SIZE), n, [None, pa.py_buffer(np.ascontiguousarray(rec.rows))]
            ).cast(pa.binary()),
        }
        raws = {}
        for eid in np.flatnonzero(np.bincount(rec.event_id, minlength=4096)).tolist():
            event = L.EVENTS_BY_ID.get(eid)
            if event is not None:
                rows = np.flatnonzero(rec.event_id == eid)
                raws[eid] = (rows, rec.fields(event, rows))
        parts = self._decode(raws)
        _tables(base, parts, starts, items, "legacy-binary")

    # --- pump-logs JSON

    def _json(self, items: list[_Item], form: str) -> None:
        self._json_finish(self._json_read(items, form))

    def _json_read(self, items: list[_Item], form: str) -> dict:
        """The DuckDB part of decoding pump-logs files: their rows and the raw values of every field."""
        con = self.con
        listing = "[" + ", ".join(sql_str(str(it.raw)) for it in items) + "]"
        size = max(it.raw.stat().st_size for it in items) + 1024
        spec = "[" + _EVENT_SPEC + "]" if form == FORM_EVENT_LIST else _DOC_SPEC
        events = "t" if form == FORM_EVENT_LIST else "list_concat(coalesce(t.events, []), coalesce(t.clockChanges, []))"
        # Several files: one document each (checked below), read in one pass.  One file may hold
        # several documents, numbered in the order read.
        obj = "row_number() OVER ()" if len(items) == 1 else "1"
        con.sql(
            f"CREATE OR REPLACE TEMP TABLE jdocs AS SELECT list_position({listing}, filename) AS w, {obj} AS obj,"
            f" json_transform(json, '{spec}') AS t FROM read_json_objects({listing}, format := 'unstructured',"
            f" filename := true, maximum_object_size := {size})"
        )
        if form == FORM_PUMP_LOGS:
            self._document_shape_check(items, size)
        # Each event's first problem (0: none), as answers.event_problem (sequenceGroup optional).
        con.sql(
            "CREATE OR REPLACE TEMP TABLE jraw AS SELECT w, obj, pos,"
            " TRY_CAST(e.sequenceGroup AS BIGINT) AS sequence_group, TRY_CAST(e.sequenceNumber AS BIGINT) AS seq_num,"
            " TRY_CAST(e.eventCode AS INTEGER) AS event_id,"
            " epoch_us(TRY_CAST(replace(left(json_extract_string(CAST(e.pumpDateTime AS JSON), '$'), 19), 'T', ' ')"
            f" AS TIMESTAMP)) AS pump_time, CAST(e.eventProperties AS JSON) AS properties, {_event_problem()} AS problem,"
            " CAST(e.deviceAssignmentId AS VARCHAR) AS assignment"
            f" FROM (SELECT w, obj, unnest(generate_series(1, len(l))) AS pos, unnest(l) AS e FROM ("
            f"SELECT w, obj, {events} AS l FROM jdocs))"
        )
        con.sql("DROP TABLE jdocs")
        # One saved file is one pump's history (one serial): events of several pump assignments in
        # one file would be merged under one serial and misplaced in time.
        mixed = con.sql(
            "SELECT w, count(DISTINCT assignment) FROM jraw WHERE assignment IS NOT NULL AND assignment <> 'null'"
            " GROUP BY w HAVING count(DISTINCT assignment) > 1 ORDER BY w"
        ).fetchall()
        if mixed:
            w, n = mixed[0]
            raise InputError(
                f"{items[w - 1].raw}: holds the events of {n} pump assignments (deviceAssignmentId); a saved file is "
                "one pump's history: save each pump's events in a file of its own and give each its pump_serial"
            )
        got = con.sql(
            "SELECT rowid AS row, w, obj, pos, sequence_group, seq_num, event_id, pump_time, properties, problem"
            " FROM jraw"
        ).to_arrow_table()
        n = got.num_rows
        rowid = _numpy(got["row"])[0]
        win = _numpy(got["w"])[0].astype(np.int64) - 1
        obj, pos = _numpy(got["obj"])[0], _numpy(got["pos"])[0]
        counts = np.bincount(win, minlength=len(items))
        if len(items) > 1 and n and np.any(np.bincount(win, weights=pos == 1, minlength=len(items)) > 1):
            raise InputError("a file holds more than one JSON document")  # then decoded one file at a time
        group, group_ok = _numpy(got["sequence_group"])
        seq, seq_ok = _numpy(got["seq_num"])
        eid, eid_ok = _numpy(got["event_id"])
        when, when_ok = _numpy(got["pump_time"])
        problem = _numpy(got["problem"])[0]
        identity = eid_ok & seq_ok & when_ok & (problem == 0)
        # Kept rows first, grouped by file, each file in (sequence_group NULLS FIRST, seq_num, file order).
        keys = (pos, obj, seq, group, group_ok, win, ~identity)
        same = _ascending(keys)  # as read: usually so
        order = np.arange(n) if same else np.lexsort(keys)
        kept = int(np.count_nonzero(identity))
        new_id = order.copy() if same else np.empty(n, dtype=np.int64)
        if not same:
            new_id[order] = np.arange(n)
        at = np.empty(n, dtype=np.int64)  # rowid -> position in ``got``
        at[rowid] = np.arange(n)
        type_errors = np.zeros(len(items), dtype=np.int64)
        raws, present = {}, {}
        for e in [e for e in decode.distinct(eid[eid_ok]).tolist() if e in L.EVENTS_BY_ID]:
            event = L.EVENTS_BY_ID[e]
            t = con.sql(decode.json_fields_select("(SELECT rowid AS row, event_id, properties FROM jraw)", event))
            t = t.to_arrow_table()
            where = at[_numpy(t["row"])[0]]
            errors = _numpy(t["type_errors"])[0]
            type_errors += np.bincount(win[where], weights=errors, minlength=len(items)).astype(np.int64)
            # A file has the columns of every event type it holds, also of events left out.
            present[e] = np.bincount(win[where], minlength=len(items))
            rows = new_id[where]
            keep = np.flatnonzero(rows < kept)
            if len(keep) > 1 and not np.all(rows[keep][1:] > rows[keep][:-1]):
                keep = keep[np.argsort(rows[keep], kind="stable")]
            raws[e] = (rows[keep], {c: tuple(a[keep] for a in _numpy(t[c])) for c in decode.event_columns(event)})
        con.sql("DROP TABLE jraw")
        return {
            "items": items,
            "form": form,
            "raws": raws,
            "present": present,
            "got": got,
            "win": win,
            "eid": eid,
            "eid_ok": eid_ok,
            "when": when,
            "when_ok": when_ok,
            "identity": identity,
            "problem": problem,
            "type_errors": type_errors,
            "same": same,
            "order": order,
            "kept": kept,
            "group": group,
            "group_ok": group_ok,
            "seq": seq,
            "counts": counts,
        }

    def _json_finish(self, state: dict) -> None:
        """Decode what :meth:`_json_read` read and give every item its table."""
        items, form, raws, present, got = (state[k] for k in ("items", "form", "raws", "present", "got"))
        win, eid, eid_ok, when, when_ok = (state[k] for k in ("win", "eid", "eid_ok", "when", "when_ok"))
        identity, type_errors, same, order, kept = (
            state[k] for k in ("identity", "type_errors", "same", "order", "kept")
        )
        group, group_ok, seq, counts = (state[k] for k in ("group", "group_ok", "seq", "counts"))
        parts = self._decode(raws)
        _count(items, win, eid, eid_ok, when, when_ok, identity, type_errors)
        problem = np.where(identity, 0, np.maximum(state["problem"], 1))
        by_reason = np.bincount(win * 8 + problem, minlength=8 * len(items)).reshape(len(items), 8)
        for it, counts_of in zip(items, by_reason, strict=True):
            it.stats.left_out = {answers.PROBLEMS[k - 1]: int(c) for k, c in enumerate(counts_of.tolist()) if k and c}
        for it in items:
            if form == FORM_PUMP_LOGS and not it.stats.total:
                self._empty_pumplogs_check(it)
            if it.stats.total and it.stats.dropped_without_identity == it.stats.total:
                raise InputError(
                    f"{it.raw}: none of its {it.stats.total} events has an event code, sequence number and pump time; "
                    "it is not a pump-logs response"
                )
        first = slice(0, kept) if same else order[:kept]
        properties = got["properties"]
        if properties.type != pa.string():
            properties = properties.cast(pa.string())
        properties = properties.slice(0, kept) if same else properties.take(decode.numbers(first, pa.int64()))
        base = {
            "sequence_group": (group[first], group_ok[first]),
            "seq_num": seq[first],
            "event_id": eid[first].astype(np.int32),
            "pump_time": when[first],
            "properties": pa.chunked_array(
                [pa.ExtensionArray.from_storage(pa.json_(pa.string()), c) for c in properties.chunks],
                pa.json_(pa.string()),
            ),
            "record": pa.nulls(kept, pa.binary()),
        }
        starts = np.concatenate([[0], np.cumsum(counts - np.array([s.stats.dropped_without_identity for s in items]))])
        _tables(base, parts, starts.astype(np.int64), items, "pump-logs", present)

    def _document_shape_check(self, items: list[_Item], size: int) -> None:
        """Refuse a pump-logs file whose ``events`` or ``clockChanges`` is there but not a list (it
        would read as no events): InputError naming the file.  Only documents where one of the two
        did not read as a list are looked at again."""
        suspect = self.con.sql("SELECT DISTINCT w FROM jdocs WHERE t.events IS NULL OR t.clockChanges IS NULL")
        for (w,) in suspect.fetchall():
            path = str(items[w - 1].raw)
            rows = self.con.sql(
                "SELECT json_type(json, '$.events'), json_type(json, '$.clockChanges') FROM "
                f"read_json_objects({sql_str(path)}, format := 'unstructured', maximum_object_size := {size})"
            ).fetchall()
            for events, changes in rows:
                for key, found in (("events", events), ("clockChanges", changes)):
                    if found not in (None, "NULL", "ARRAY"):
                        raise InputError(
                            f"{path}: '{key}' is {found.lower()} JSON, not a list; this is not a pump-logs response "
                            "of the expected shape (re-save it, or remove the file)"
                        )

    def _empty_pumplogs_check(self, it: _Item) -> None:
        """No rows: an empty history, or a JSON object that is no pump-logs answer at all."""
        path = str(it.raw)
        has_events, message = self.aux.sql(
            f"SELECT events IS NOT NULL OR clockChanges IS NOT NULL, message FROM read_json({sql_str(path)},"
            f" maximum_object_size := {it.raw.stat().st_size + 1024}, format := 'unstructured',"
            " columns := {'events': 'JSON', 'clockChanges': 'JSON', 'message': 'VARCHAR'})"
        ).fetchall()[0]
        if not has_events:
            what = f"a saved error response ({message!r})" if message else "JSON without an 'events' list"
            raise InputError(f"{path}: {what}, not pump history; re-save the pump-logs response or remove the file")


def _integer_sql(value: str, bounds: tuple[int, int]) -> str:
    """SQL: whether the JSON ``value`` is an integer (not text, not a fraction) within ``bounds``."""
    return (
        f"coalesce(json_type({value}) IN ('UBIGINT', 'BIGINT') AND TRY_CAST({value} AS BIGINT)"
        f" BETWEEN {bounds[0]} AND {bounds[1]}, false)"
    )


def _event_problem_sql(e: str) -> str:
    """SQL of answers.problem_number for the struct ``e`` of an event's JSON fields (sequenceGroup
    optional, as for saved files)."""
    text = f"json_extract_string({e}.pumpDateTime, '$')"
    time_ok = (
        f"coalesce(json_type({e}.pumpDateTime) = 'VARCHAR'"
        f" AND regexp_full_match({text}, {sql_str(answers.PUMP_DATE_TIME.pattern)})"
        f" AND TRY_CAST(replace(left({text}, 19), 'T', ' ') AS TIMESTAMP) IS NOT NULL, false)"
    )
    group_absent = f"coalesce(json_type({e}.sequenceGroup), 'NULL') = 'NULL'"
    return (
        f"CASE WHEN NOT {_integer_sql(f'{e}.eventCode', answers.EVENT_CODES)} THEN 1"
        f" WHEN NOT {_integer_sql(f'{e}.sequenceNumber', answers.SEQUENCE_NUMBERS)} THEN 2"
        f" WHEN NOT ({group_absent} OR {_integer_sql(f'{e}.sequenceGroup', answers.SEQUENCE_GROUPS)}) THEN 3"
        f" WHEN NOT {time_ok} THEN 4"
        f" WHEN coalesce(json_type({e}.eventProperties), '') <> 'OBJECT' THEN 5 ELSE 0 END"
    )


@functools.cache
def _event_problem() -> str:
    """:func:`_event_problem_sql` of the struct ``e`` that :meth:`_Decoder._json_read` reads."""
    return _event_problem_sql("e")


_EVENT_SPEC = (
    '{"eventCode": "JSON", "sequenceGroup": "JSON", "sequenceNumber": "JSON", "pumpDateTime": "JSON",'
    ' "eventProperties": "JSON", "deviceAssignmentId": "JSON"}'
)
_DOC_SPEC = '{"events": [' + _EVENT_SPEC + '], "clockChanges": [' + _EVENT_SPEC + "]}"


def _binary_content(raw: Path, form: str) -> bytes:
    """The record bytes of a records, base64 or legacy pumpevents file."""
    if form == FORM_RECORDS:
        return raw.read_bytes()
    if form == FORM_LEGACY_JSON:
        try:
            body = json.loads(raw.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{raw}: malformed JSON ({exc})") from None
        if not isinstance(body, str):
            raise InputError(f"{raw}: JSON of an unknown form (expected a pump-logs object or a base64 string)")
        return _b64(body, raw)
    try:
        return _b64(raw.read_text(encoding="utf-8-sig"), raw)
    except UnicodeDecodeError:
        raise InputError(f"{raw}: invalid base64 (text that is not valid UTF-8)") from None


def _raw_size(spec: WindowSpec) -> int:
    try:
        return spec.raw.stat().st_size
    except OSError:
        return 0


def _batches(items: list, size, limit: int):
    """``items`` in runs whose ``size`` sums to about ``limit``, no file twice in one run."""
    batch, total, seen = [], 0, set()
    for key, item in items:
        if batch and (total + size(item) > limit or item.raw in seen):
            yield batch
            batch, total, seen = [], 0, set()
        batch.append((key, item))
        total += size(item)
        seen.add(item.raw)
    if batch:
        yield batch


def _numpy(column) -> tuple[np.ndarray, np.ndarray]:
    """A numeric Arrow column as NumPy (values, validity); values under NULLs are arbitrary."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        arr = arr.cast(pa.int64())
    validity, data = arr.buffers()[:2]  # a numeric array always has a data buffer (also when all NULL)
    n, offset = len(arr), arr.offset
    values = np.frombuffer(data, dtype=arr.type.to_pandas_dtype(), count=n + offset)[offset:]
    if arr.null_count == 0 or validity is None:
        return values, np.ones(n, dtype=bool)
    bits = np.unpackbits(np.frombuffer(validity, np.uint8), count=n + offset, bitorder="little")[offset:]
    return values, bits.view(bool)


def _ascending(keys: tuple[np.ndarray, ...]) -> bool:
    """Whether rows are already in the order ``np.lexsort(keys)`` gives (the last key first)."""
    if len(keys[0]) < 2:
        return True
    before = np.zeros(len(keys[0]) - 1, dtype=bool)  # row i sorts strictly before row i + 1
    tied = np.ones(len(keys[0]) - 1, dtype=bool)
    for key in reversed(keys):
        a, b = key[:-1], key[1:]
        before |= tied & (a < b)
        tied &= a == b
    return bool(np.all(before | tied))


def _count(items, win, eid, eid_ok, when, when_ok, identity, type_errors) -> np.ndarray:
    """Fill every item's counts from the batch's rows (all of them, with or without identity; unknown
    ids and times far off are counted among the rows with identity, which are kept).

    Returns, per item, how many rows have an unknown event id or a pump time more than a year in
    the future (or both: each row counted once), the measure of a file that is not pump history.
    """
    k = len(items)
    total = np.bincount(win, minlength=k)
    with_identity = np.bincount(win[identity], minlength=k)
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(days=366)
    limit = int(np.datetime64(now, "us").astype(np.int64))
    # Counted among the events that are kept: those left out are counted by their reason.
    in_future = identity & when_ok & (when > limit)
    future = np.bincount(win[in_future], minlength=k)
    early = np.bincount(win[identity & when_ok & (when < _EARLIEST_US)], minlength=k)
    known = np.zeros(4096, dtype=bool)
    known[[e for e in L.EVENTS_BY_ID if e < 4096]] = True
    small = (eid >= 0) & (eid < 4096)
    unknown = identity & eid_ok & ~(small & known[np.where(small, eid, 0)])  # only events that are kept
    for it in items:
        it.stats.unknown_ids = {}
    for w, e in zip(win[unknown].tolist(), eid[unknown].tolist(), strict=True):
        ids = items[w].stats.unknown_ids
        ids[e] = ids.get(e, 0) + 1
    for i, it in enumerate(items):
        it.stats.total = int(total[i])
        it.stats.dropped_without_identity = int(total[i] - with_identity[i])
        it.stats.events = int(with_identity[i])
        it.stats.future_times = int(future[i])
        it.stats.early_times = int(early[i])
        it.stats.type_errors = int(type_errors[i])
    return np.bincount(win[unknown | in_future], minlength=k)


_EVENT_NAMES = [L.event_name(i) for i in range(4096)]


def _count_out_of_range(items: list[_Item], starts: np.ndarray, rows: np.ndarray, key: str, base: dict) -> None:
    """Record in each item's stats how many of ``rows`` (positions in the batch, sorted) it holds
    for the field ``key`` ("event id.column"), and the first by pump time (its time and seq_num)."""
    owner = np.searchsorted(starts, rows, side="right") - 1
    when, seq = np.asarray(base["pump_time"]), np.asarray(base["seq_num"])
    for i in np.unique(owner).tolist():
        mine = rows[owner == i]
        first = mine[np.lexsort((seq[mine], when[mine]))[0]]
        stamp = (np.datetime64(int(when[first]), "us")).astype("datetime64[s]").astype(str).replace("T", " ")
        items[i].stats.out_of_range[key] = [int(len(mine)), stamp, int(seq[first])]


def _dictionary(codes: np.ndarray, labels: list[str]) -> pa.Array:
    return pa.DictionaryArray.from_arrays(decode.numbers(codes, pa.int32()), decode.strings(labels))


def _tables(
    base: dict, parts: dict, starts: np.ndarray, items: list[_Item], origin: str, present: dict | None = None
) -> None:
    """Give every item its table: rows ``starts[i]:starts[i + 1]`` of the batch (already in order).

    ``base`` holds the batch's common columns, ``parts`` maps each known event id to its rows (sorted)
    and their decoded :class:`decode.Piece` per column; ``present`` (default: from ``parts``) how many
    events of each type each item holds.  A table has the common columns,
    ``event_name``, then the decoded columns of the event types its rows have, in event id order
    (each column once, where it first appears), as the per-event-type union of earlier versions had.
    """
    n = int(starts[-1])
    ids = base["event_id"]
    uniq, inverse = decode._small_unique(ids)
    names = [_EVENT_NAMES[i] if 0 <= i < 4096 else L.event_name(i) for i in uniq.tolist()]
    group = base["sequence_group"]
    common = {
        "sequence_group": group if isinstance(group, pa.Array) else decode.Column(pa.int64(), n).filled(*group),
        "seq_num": decode.numbers(base["seq_num"], pa.int64()),
        "event_id": decode.numbers(ids, pa.int32()),
        "pump_time": decode.numbers(base["pump_time"], pa.int64()).view(pa.timestamp("us")),
        "properties": base["properties"],
        "record": base["record"],
        "event_name": _dictionary(inverse, names),
    }
    columns: dict[str, decode.Column] = {}
    present = {} if present is None else present  # event id -> events in each item
    for it in items:
        it.stats.out_of_range = {}
    for e in sorted(parts):
        rows, pieces = parts[e]
        present.setdefault(e, np.diff(np.searchsorted(rows, starts)))
        for name, piece in pieces.items():
            if piece.bad is not None and piece.bad.any():
                _count_out_of_range(items, starts, rows[piece.bad], f"{e}.{name}", base)
            if name not in columns:
                columns[name] = decode.Column(decode.ARROW_TYPES[L.COLUMNS[name].decoded_type], n)
            columns[name].put(rows, piece)
    arrays = {name: column.array() for name, column in columns.items()}
    for i, it in enumerate(items):
        s, k = int(starts[i]), int(starts[i + 1] - starts[i])
        constant = np.zeros(k, dtype=np.int32)
        table = {
            "pump_serial": _dictionary(constant, [it.pump_serial]),
            **{c: common[c].slice(s, k) for c in ("sequence_group", "seq_num", "event_id", "pump_time")},
            "origin": _dictionary(constant, [origin]),
            **{c: common[c].slice(s, k) for c in ("properties", "record", "event_name")},
        }
        for e in sorted(parts):
            if present[e][i]:
                for name in parts[e][1]:
                    if name not in table:
                        table[name] = arrays[name].slice(s, k)
        it.table = pa.table(table)
