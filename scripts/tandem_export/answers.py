"""Shape checks of what Tandem Source answers, applied before anything is saved.

A pump-logs answer (``GET api/reports/bff/pump-logs/{assignmentId}``) is
``{"events": [...], "clockChanges": [...]}``, each element an object with ``eventCode``,
``sequenceGroup``, ``sequenceNumber`` (integers), ``pumpDateTime`` (the pump's wall clock, a date
and time without zone) and ``eventProperties`` (an object of the record's decoded fields)
(tandem-source-api.md, "Current data endpoints").  The ranges: an event code is the 12-bit event
id of a history-log record; a sequence number is the record's uint32 sequence number
(pump-event-layouts.md, header bytes 0-1 and 6-9); the sequence group is taken to the same
uint32 range.

The same rules guard saved files in the normaliser (:mod:`tandem_export.normalize`, written there
as SQL over the whole file): :data:`PUMP_DATE_TIME`, :data:`EVENT_CODES`, :data:`SEQUENCE_NUMBERS`
and :data:`SEQUENCE_GROUPS` are read by both, and a test holds the two verdicts equal.
"""

from __future__ import annotations

import datetime as dt
import json
import re

from . import ids

#: pumpDateTime: a date and a time (seconds, optionally a fraction), no zone or offset; the
#: fields in their ranges (written out so that Python's re and DuckDB's RE2 agree: ASCII digits).
PUMP_DATE_TIME = re.compile(
    r"[12][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[T ](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(?:\.[0-9]{1,6})?"
)
#: Inclusive ranges of the identity integers.
EVENT_CODES = (0, 0x0FFF)
SEQUENCE_NUMBERS = (0, 0xFFFF_FFFF)
SEQUENCE_GROUPS = (0, 0xFFFF_FFFF)


class AnswerError(ValueError):
    """An answer of the wrong shape; the message says what is wrong, in a few words."""


def _integer(value, bounds: tuple[int, int]) -> bool:
    return type(value) is int and bounds[0] <= value <= bounds[1]


def pump_time_ok(value) -> bool:
    """Whether ``value`` is a pumpDateTime: :data:`PUMP_DATE_TIME` and a real date and time."""
    if not isinstance(value, str) or not PUMP_DATE_TIME.fullmatch(value):
        return False
    try:
        dt.datetime.fromisoformat(value[:19].replace(" ", "T"))
    except ValueError:
        return False
    return True


#: What can be wrong with one event, in the order checked; the normaliser counts events left out
#: by these numbers (1-based: 0 is an event without a problem).
PROBLEMS = (
    f"an eventCode that is not an integer {EVENT_CODES[0]}-{EVENT_CODES[1]}",
    f"a sequenceNumber that is not an integer {SEQUENCE_NUMBERS[0]}-{SEQUENCE_NUMBERS[1]}",
    f"a sequenceGroup that is not an integer {SEQUENCE_GROUPS[0]}-{SEQUENCE_GROUPS[1]}",
    "a pumpDateTime that is not a date and time without offset (YYYY-MM-DDTHH:MM:SS)",
    "eventProperties that are not an object",
)
NOT_AN_OBJECT = "an element that is not an object"


def problem_number(event, group_required: bool = True) -> int:
    """The number (1-based, in :data:`PROBLEMS`) of the first problem of ``event``, 0 for none;
    an element that is not an object has no eventCode (1)."""
    if not isinstance(event, dict) or not _integer(event.get("eventCode"), EVENT_CODES):
        return 1
    if not _integer(event.get("sequenceNumber"), SEQUENCE_NUMBERS):
        return 2
    group = event.get("sequenceGroup")
    if (group is not None or group_required) and not _integer(group, SEQUENCE_GROUPS):
        return 3
    if not pump_time_ok(event.get("pumpDateTime")):
        return 4
    if not isinstance(event.get("eventProperties"), dict):
        return 5
    return 0


def event_problem(event, group_required: bool = True) -> str | None:
    """Why ``event`` (one element of ``events`` or ``clockChanges``) is not a pump-logs event, or None.

    With ``group_required`` false (saved files from other tools) ``sequenceGroup`` may be absent
    or null; when present it must be an integer in range.
    """
    if not isinstance(event, dict):
        return NOT_AN_OBJECT
    number = problem_number(event, group_required)
    return PROBLEMS[number - 1] if number else None


def check_pump_logs(data) -> int:
    """Check a parsed pump-logs answer; return its number of events (``events`` and ``clockChanges``).

    Raises AnswerError naming the first problem: not an object, ``events`` missing or not a list,
    ``clockChanges`` not a list (it may be absent), or an element that fails :func:`event_problem`
    (with its position).
    """
    if not isinstance(data, dict):
        raise AnswerError("the answer is not a JSON object")
    if not isinstance(data.get("events"), list):
        raise AnswerError("'events' is missing or not a list" if "events" not in data else "'events' is not a list")
    changes = data.get("clockChanges", [])
    if not isinstance(changes, list):
        raise AnswerError("'clockChanges' is not a list")
    for key, elements in (("events", data["events"]), ("clockChanges", changes)):
        for position, event in enumerate(elements):
            problem = event_problem(event)
            if problem:
                raise AnswerError(f"{key}[{position}] has {problem}")
    return len(data["events"]) + len(changes)


def _no_constant(name: str):
    raise AnswerError(f"the answer holds {name}, which is not JSON")


def parse_json(body: bytes):
    """The JSON value of ``body``; AnswerError for bytes that are not UTF-8 JSON (NaN and
    Infinity, which Python's reader would accept, are refused)."""
    try:
        return json.loads(body, parse_constant=_no_constant)
    except AnswerError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise AnswerError(f"the answer is not valid JSON ({type(exc).__name__} at byte {_position(exc)})") from None
    except RecursionError:
        raise AnswerError("the answer is JSON nested too deeply") from None


def _position(exc: Exception) -> int | str:
    return getattr(exc, "pos", None) or getattr(exc, "start", None) or "?"


def check_pump_logs_body(body: bytes) -> int:
    """:func:`parse_json` then :func:`check_pump_logs`; the number of events."""
    return check_pump_logs(parse_json(body))


def check_pumper(data) -> list[dict]:
    """The pumps of a pumper answer (``GET api/reports/bff/pumper/{pumperId}``), each checked.

    Every pump must be an object whose ``serialNumber`` matches :data:`ids.SERIAL` and whose
    ``assignmentId`` matches :data:`ids.UUID` (both reach paths and URLs), and whose date fields
    (``availableDataRange.start``/``end``, ``maxDateOfEvents``) are null or start with a real
    YYYY-MM-DD date.  Raises AnswerError naming the first bad value (never more than 60
    characters of it).
    """
    if not isinstance(data, dict):
        raise AnswerError("the pump list is not a JSON object")
    pumps = data.get("pumps")
    if pumps is None:
        return []
    if not isinstance(pumps, list):
        raise AnswerError("'pumps' is not a list")
    for position, pump in enumerate(pumps):
        if not isinstance(pump, dict):
            raise AnswerError(f"pumps[{position}] is not an object")
        try:
            ids.checked(ids.SERIAL, pump.get("serialNumber"), f"pumps[{position}].serialNumber")
            ids.checked(ids.UUID, pump.get("assignmentId"), f"pumps[{position}].assignmentId")
        except ids.BadIdentifier as exc:
            raise AnswerError(str(exc)) from None
        rng = pump.get("availableDataRange")
        if rng is not None and not isinstance(rng, dict):
            raise AnswerError(f"pumps[{position}].availableDataRange is not an object")
        for name, value in (
            ("availableDataRange.start", (rng or {}).get("start")),
            ("availableDataRange.end", (rng or {}).get("end")),
            ("maxDateOfEvents", pump.get("maxDateOfEvents")),
        ):
            if value is not None and answer_day(value) is None:
                shown = repr(value)[:60]
                raise AnswerError(f"pumps[{position}].{name} {shown} is not a date")
    return pumps


def answer_day(value) -> dt.date | None:
    """The date a pumper date field starts with (``2025-06-30``, ``2025-06-30T12:00:00``), or None."""
    if not isinstance(value, str) or not ids.DATE.fullmatch(value[:10]):
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None
