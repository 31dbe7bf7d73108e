"""Read one raw-store file in whichever form it holds and write its normalised events table."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from . import decode
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
_TEXT_CONTROL_OK = frozenset(b"\t\r\n")


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

    def warnings(self, name: str) -> list[str]:
        """One line per thing the user should know about this file."""
        out = []
        if self.trailing_bytes:
            out.append(
                f"{name}: {self.trailing_bytes} trailing byte(s) after the last whole 26-byte record were skipped"
            )
        if self.dropped_without_identity:
            out.append(
                f"{name}: {self.dropped_without_identity} event(s) without an event code, sequence number or "
                "readable pump time were left out"
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
            ids = ", ".join(f"{k} (x{v})" for k, v in sorted(self.unknown_ids.items()))
            out.append(f"{name}: event ids this version does not decode, kept as UNKNOWN_<id>: {ids}")
        return out


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        if exc.start < len(head) - 3:
            return False
        text = head[: exc.start].decode("utf-8")
    return all(ord(c) >= 32 or ord(c) in _TEXT_CONTROL_OK for c in text)


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


def _records_relation(con, buf: bytes, serial: str, stats: Stats) -> str:
    table, stats.trailing_bytes = decode.records_to_arrow(buf)
    con.register("raw_arrow", table)
    con.sql(
        f"CREATE TEMP VIEW raw_records AS SELECT {sql_str(serial)} AS pump_serial, NULL::BIGINT AS sequence_group, "
        "'legacy-binary' AS origin, NULL::JSON AS properties, * FROM raw_arrow"
    )
    return "raw_records"


def _json_relation(con, path: Path, form: str, serial: str) -> str:
    options = f"maximum_object_size := {path.stat().st_size + 1024}"
    if form == FORM_PUMP_LOGS:
        # Time-changed (13) and date-changed (14) records come only in clockChanges, whose
        # elements have the same shape as events.
        source = (
            f"(SELECT unnest(list_concat(coalesce(events, []), coalesce(clockChanges, [])), max_depth := 2)"
            f" FROM read_json({sql_str(str(path))}, {options}, format := 'unstructured',"
            f" columns := {{'events': '{_EVENT_STRUCT}[]', 'clockChanges': '{_EVENT_STRUCT}[]'}}))"
        )
    else:
        source = (
            f"(SELECT unnest(e, max_depth := 2) FROM read_json({sql_str(str(path))}, {options},"
            f" format := 'unstructured', columns := {{'e': '{_EVENT_STRUCT}[]'}}, records := false))"
        )
    con.sql(f"CREATE TEMP TABLE raw_json AS {decode.pumplogs_base_select(source, sql_str(serial))}")
    if form == FORM_PUMP_LOGS and not con.sql("SELECT count(*) FROM raw_json").fetchall()[0][0]:
        # No rows: an empty history, or a JSON object that is no pump-logs answer at all.
        has_events, message = con.sql(
            f"SELECT events IS NOT NULL OR clockChanges IS NOT NULL, message FROM read_json({sql_str(str(path))},"
            f" {options}, format := 'unstructured', columns := {{'events': 'JSON', 'clockChanges': 'JSON', 'message': 'VARCHAR'}})"
        ).fetchall()[0]
        if not has_events:
            what = f"a saved error response ({message!r})" if message else "JSON without an 'events' list"
            raise InputError(f"{path}: {what}, not pump history; re-save the pump-logs response or remove the file")
    return "raw_json"


#: A records file in which more than this share of records have unknown ids or impossible
#: times is not pump history (random bytes, a compressed or unrelated file) and is refused.
MAX_IMPLAUSIBLE_SHARE = 0.5


def normalize_file(raw: Path, pump_serial: str, out: Path, label: str | None = None) -> Stats:
    """Decode one raw-store file into ``out`` (Parquet: the common columns and the decoded columns of
    the event types present, see :func:`decode.decode_union`).

    The file is never modified.  Events without an identity (event code, sequence number, pump
    time) are left out and counted.  Rows come in (sequence_group, seq_num) order, ties in file order.
    Raises InputError naming the file (``label``, e.g. the user's own file, else ``raw``) for
    content that is no known form, malformed JSON, invalid base64, or records that are mostly
    not pump history.
    """
    try:
        return _normalize(raw, pump_serial, out)
    except InputError as exc:
        if label and str(exc).startswith(str(raw)):
            raise InputError(label + str(exc)[len(str(raw)) :]) from None
        raise


def _normalize(raw: Path, pump_serial: str, out: Path) -> Stats:
    stats = Stats(form=detect_form(raw))
    con = connect()
    try:
        if stats.form in (FORM_PUMP_LOGS, FORM_EVENT_LIST):
            try:
                relation = _json_relation(con, raw, stats.form, pump_serial)
            except duckdb.Error as exc:
                first = str(exc).strip().splitlines()[0][:200]
                raise InputError(f"{raw}: not a readable pump-logs response ({first})") from None
            except UnicodeDecodeError:
                raise InputError(f"{raw}: not a readable pump-logs response (text that is not valid UTF-8)") from None
        else:
            if stats.form == FORM_RECORDS:
                buf = raw.read_bytes()
            elif stats.form == FORM_LEGACY_JSON:
                try:
                    body = json.loads(raw.read_text(encoding="utf-8-sig"))
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise InputError(f"{raw}: malformed JSON ({exc})") from None
                if not isinstance(body, str):
                    raise InputError(f"{raw}: JSON of an unknown form (expected a pump-logs object or a base64 string)")
                buf = _b64(body, raw)
            else:
                buf = _b64(raw.read_text(encoding="utf-8-sig"), raw)
            relation = _records_relation(con, buf, pump_serial, stats)
        ids = [r[0] for r in con.sql(f"SELECT DISTINCT event_id FROM {relation} WHERE event_id IS NOT NULL").fetchall()]
        con.sql(f"CREATE TEMP TABLE decoded_all AS {decode.decode_union(relation, ids, relation == 'raw_json')}")
        total, no_identity, unknown, future, early, type_errors = con.sql(
            """SELECT count(*),
                      count(*) FILTER (WHERE event_id IS NULL OR seq_num IS NULL OR pump_time IS NULL),
                      count(*) FILTER (WHERE event_name LIKE 'UNKNOWN_%'),
                      count(*) FILTER (WHERE pump_time > now()::TIMESTAMP + INTERVAL 366 DAY),
                      count(*) FILTER (WHERE pump_time < TIMESTAMP '2008-01-01'),
                      coalesce(sum(type_errors), 0)
               FROM decoded_all"""
        ).fetchall()[0]
        implausible = total and (unknown + future) / total > MAX_IMPLAUSIBLE_SHARE
        if stats.form in (FORM_RECORDS, FORM_BASE64, FORM_LEGACY_JSON) and implausible:
            raise InputError(
                f"{raw}: does not look like pump history records ({unknown + future} of {total} have unknown record "
                "types or impossible times); check that this is the saved pumpevents data, uncompressed"
            )
        if total and no_identity == total:
            raise InputError(
                f"{raw}: none of its {total} events has an event code, sequence number and pump time; "
                "it is not a pump-logs response"
            )
        stats.dropped_without_identity = no_identity
        stats.future_times = future
        stats.early_times = early
        stats.type_errors = int(type_errors)
        stats.events = total - no_identity
        stats.unknown_ids = dict(
            con.sql(
                "SELECT event_id, count(*) FROM decoded_all WHERE event_name LIKE 'UNKNOWN_%' GROUP BY 1"
            ).fetchall()
        )
        keep = (
            "SELECT * EXCLUDE (src_pos, type_errors) FROM decoded_all"
            " WHERE event_id IS NOT NULL AND seq_num IS NOT NULL AND pump_time IS NOT NULL"
            " ORDER BY sequence_group NULLS FIRST, seq_num, src_pos"
        )
        with atomic_path(out) as tmp:
            con.sql(f"COPY ({keep}) TO {sql_str(str(tmp))} (FORMAT parquet, COMPRESSION snappy)")
    finally:
        con.close()
    return stats
