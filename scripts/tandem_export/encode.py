"""Write events in either record form, driven by :mod:`tandem_export.layouts`.

Used by the demo pump and the benchmark to produce pump-logs JSON and 26-byte records from one
description of each event.  An event here is a :class:`PumpEvent`: raw (undecoded) values keyed
by decoded column name, exactly as the pump stores them (milliunits, tenths, enum integers,
bitmask integers, float32 values).
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from . import layouts as L

PUMP_EPOCH = datetime.fromisoformat(L.PUMP_EPOCH)
_STRUCT = {"u8": "B", "i8": "b", "u16": "H", "i16": "h", "u32": "I", "f32": "f"}


@dataclass(frozen=True)
class PumpEvent:
    """One history-log event: id, pump wall-clock time, sequence number and raw field values."""

    event_id: int
    pump_time: datetime
    seq_num: int
    values: dict[str, int | float]


def pump_seconds(t: datetime) -> int:
    """Seconds since the pump epoch 2008-01-01T00:00:00 (wall clock) of a naive datetime."""
    return int((t - PUMP_EPOCH).total_seconds())


def to_record(event: PumpEvent, source_nibble: int = 0) -> bytes:
    """The 26-byte big-endian record of ``event``; fields it has no value for are zero."""
    payload = bytearray(L.PAYLOAD_SIZE)
    for f in L.EVENTS_BY_ID[event.event_id].fields:
        if f.column in event.values:
            struct.pack_into(">" + _STRUCT[f.type], payload, f.offset, event.values[f.column])
    header = struct.pack(">HII", (source_nibble << 12) | event.event_id, pump_seconds(event.pump_time), event.seq_num)
    return header + bytes(payload)


def to_pumplogs(event: PumpEvent, assignment_id: str, sequence_group: int) -> dict:
    """The pump-logs API element of ``event`` (eventProperties keyed in lowerCamelCase).

    Bitmasks become lists of set bit indices and float32 values their shortest decimal text, as
    the API sends them.
    """
    props = {}
    for f in L.EVENTS_BY_ID[event.event_id].fields:
        if f.column not in event.values or f.json_keys[0] in props:
            continue
        value = event.values[f.column]
        if f.kind == "bits":
            value = [i for i in range(32) if int(value) >> i & 1]
        elif f.type == "f32":
            value = _f32(value)
        props[f.json_keys[0]] = value
    stamp = event.pump_time.strftime("%Y-%m-%dT%H:%M:%S")
    return {
        "deviceAssignmentId": assignment_id,
        "eventCode": event.event_id,
        "sequenceGroup": sequence_group,
        "sequenceNumber": event.seq_num,
        "pumpDateTime": stamp,
        "estimatedDateTime": stamp + "Z",
        "eventProperties": props,
    }


@functools.lru_cache(maxsize=65536)
def _f32(value: float) -> float:
    """The shortest decimal that reads back as the same float32 (what the API prints)."""
    return float(np.format_float_positional(np.float32(value), unique=True, trim="-"))
