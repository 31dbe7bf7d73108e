"""The one description of the pump's history-log records.

Every reader (26-byte binary records, pump-logs JSON) and every decoder is driven by the
tables in this module, so a field's offset, type, unit, scale and value names live in one place.

Facts (record ids, names, payload offsets, types, units, scales and value meanings) come from
the Tandem history-log record layouts: every record is 26 bytes, big-endian; bytes 0-1 hold a
uint16 whose low 12 bits are the event id; bytes 2-5 a uint32 of pump-clock seconds since
2008-01-01T00:00:00 (wall clock, no zone); bytes 6-9 the uint32 sequence number; bytes 10-25 the
16-byte payload in which the offsets below are counted.

The current pump-logs API delivers the same fields decoded in ``eventProperties``, keyed by the
layout's field name in lowerCamelCase, with enum and dictionary fields as raw integers, bitmasks
as lists of set bit indices and ratio fields unscaled.  ``Field.json_keys`` gives the keys read.

Column names are snake_case and carry their unit (``glucose``-like values in ``_mg_dl``, insulin
in ``_units``, rates in ``_units_per_hour``); values are scaled to that unit when decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .dictionaries import DICTIONARIES

RECORD_SIZE = 26
PAYLOAD_OFFSET = 10
PAYLOAD_SIZE = 16
#: Pump clock epoch: record times count seconds from this wall-clock instant.
PUMP_EPOCH = "2008-01-01 00:00:00"

#: struct/NumPy type codes, all big-endian in the record.
NUMPY_TYPES = {
    "u8": "u1",
    "i8": "i1",
    "u16": ">u2",
    "i16": ">i2",
    "u32": ">u4",
    "f32": ">f4",
}
TYPE_SIZES = {"u8": 1, "i8": 1, "u16": 2, "i16": 2, "u32": 4, "f32": 4}
#: The values each raw type can hold (inclusive); f32: the finite float32 values.
TYPE_BOUNDS: dict[str, tuple[float, float]] = {
    "u8": (0, 0xFF),
    "i8": (-0x80, 0x7F),
    "u16": (0, 0xFFFF),
    "i16": (-0x8000, 0x7FFF),
    "u32": (0, 0xFFFF_FFFF),
    "f32": (-3.4028234663852886e38, 3.4028234663852886e38),
}
#: The all-ones "not set" value of each unsigned integer type (see :attr:`Field.missing`).
ALL_ONES = {"u8": 0xFF, "u16": 0xFFFF, "u32": 0xFFFF_FFFF}


# --- value names (enums and bitmasks), written for this project from the layout tables ---------

COMPLETION = {0: "user_aborted", 1: "terminated_by_alarm", 2: "terminated_by_malfunction", 3: "completed"}
BOLUS_COMPLETION = {
    **COMPLETION,
    4: "reserved_4",
    5: "rejected",
    6: "aborted_by_plgs",
    7: "reserved_7",
    8: "reserved_8",
}
IOB_MODEL = {0: "mudaliar", 1: "swan_meal"}
USER_MODE = {0: "normal", 1: "sleeping", 2: "exercising", 3: "eating_soon"}
PUMP_CONTROL = {0: "no_control", 1: "open_loop", 2: "pining", 3: "closed_loop"}
DEXCOM_SESSION_REASON = {
    0: "user",
    1: "unknown",
    2: "reserved_2",
    3: "transmitter_end_of_life",
    4: "transmitter_error",
    5: "session_stop_success",
    6: "transmitter_not_in_session",
    7: "reserved_7",
    8: "new_session_started_success",
    9: "session_started_in_progress",
    10: "transmitter_in_session",
    11: "blestack_invalid",
    12: "new_autocal_session_started_success",
    13: "no_autocal_session_in_progress",
}
DEXCOM_SENSOR = {0: "invalid", 1: "dexcom_g6", 3: "dexcom_g7"}
LIBRE_SENSOR = {0: "invalid", 2: "libre2"}
EGV_INFO_BITS = {
    0: "five_minute_reading",
    1: "backfill",
    2: "immediate_match",
    3: "calibration_result",
    4: "no_egv",
    5: "valid_timestamp",
    6: "valid_egv",
    7: "valid_algorithm_state",
    8: "added_to_cgm_array",
}
GLUCOSE_STATUS = {0: "ok", 1: "high", 2: "low"}

ENUMS: dict[str, dict[int, str]] = {
    "basal_change_type": {
        0: "timed_segment",
        1: "new_profile",
        2: "temp_rate_start",
        3: "temp_rate_end",
        4: "pump_suspended",
        5: "pump_resumed",
        6: "pump_shut_down",
        7: "basal_limit",
    },
    "suspend_reason": {0: "user", 1: "alarm", 2: "malfunction", 6: "automatic_low_glucose_suspend"},
    "bg_entry_type": {0: "manual", 1: "cgm_auto_populated"},
    "bg_source": {0: "pump", 1: "remote"},
    "iob_model": IOB_MODEL,
    "bolus_completion": BOLUS_COMPLETION,
    "fill_completion": COMPLETION,
    "bolus_request_type": {0: "insulin", 1: "carb", 2: "automatic_correction", 3: "remote"},
    "bolus_options": {
        0: "standard",
        1: "extended",
        2: "quick",
        3: "automatic",
        4: "ble_standard",
        5: "ble_extended",
        6: "eating_soon_automatic",
        7: "late",
    },
    "plgs_state": {0: "on_available", 1: "on_suspended", 2: "off", 3: "on_not_available"},
    "plgs_rule_state": {0: "suspend_rule", 1: "recovery_rule", 2: "unavailable_rule"},
    "plgs_fmr_status": {
        0: "no_fmr",
        1: "periodic_reading",
        2: "calibration_response",
        3: "sensor_session_stopped",
        4: "sensor_session_started",
        5: "calibration_entered",
        6: "pumping_event",
    },
    "plgs_status": {
        0: "suspend_predicted",
        1: "suspend_current",
        2: "unused_2",
        3: "unused_3",
        4: "resume_egv_rise",
        5: "unused_5",
        6: "resume_nadir_lock",
        7: "unavailable_time_small",
        8: "unavailable_suspend_override",
        9: "unavailable_cgm_off",
        10: "unavailable_high_egv",
        11: "unavailable_not_therapy",
        12: "unavailable_bolus_active",
        13: "unavailable_no_current",
    },
    "dexcom_session_reason": DEXCOM_SESSION_REASON,
    "user_action": {
        0: "none",
        1: "start_sleep",
        2: "stop_sleep",
        3: "start_exercise",
        4: "stop_exercise",
        5: "stop_all",
        6: "start_eating_soon",
        7: "stop_eating_soon",
    },
    "user_mode": USER_MODE,
    "sleep_schedule": {0: "schedule_1", 1: "schedule_2", 2: "schedule_3", 3: "schedule_4"},
    "exercise_choice": {0: "continuous", 1: "timed"},
    "pump_control": PUMP_CONTROL,
    "cgm_data_type_dexcom": {
        0: "five_minute_reading",
        1: "backfill",
        2: "immediate_match",
        3: "calibration",
        4: "none",
    },
    "cgm_data_type_libre2": {
        0: "five_minute_reading",
        1: "backfill",
        4: "none",
        5: "one_minute_reading",
        6: "real_time",
    },
    "cgm_data_type_libre3": {0: "five_minute_reading", 1: "backfill", 4: "none", 5: "one_minute_reading"},
    "glucose_status": GLUCOSE_STATUS,
    "glucose_status_g7": {**GLUCOSE_STATUS, 6: "unavailable"},
    "egv_info_dexcom": EGV_INFO_BITS,
    "egv_info_libre2": {**EGV_INFO_BITS, 9: "one_minute_reading", 10: "nfc_real_time"},
    "egv_info_libre3": {
        **{k: v for k, v in EGV_INFO_BITS.items() if k not in (2, 3)},
        9: "one_minute_reading",
        11: "sensor_type_bit_0",
        12: "sensor_type_bit_1",
        13: "sensor_type_bit_2",
    },
    "g7_algorithm_state": {
        2: "warmup",
        30: "electronics_wakeup",
        31: "detecting_deployment",
        32: "valid_egv",
        33: "invalid_egv",
        34: "stopped_end_of_session",
        35: "stopped_algorithm_failure",
        36: "stopped_manual",
        37: "stopped_transmitter_failure",
        38: "stopped_siv_failure",
        39: "stopped_out_of_range",
    },
    "libre2_algorithm_state": {
        2: "warmup",
        100: "ok",
        101: "rf_error",
        102: "signal_low",
        103: "temperature_high",
        104: "temperature_low",
        105: "invalid_data",
        106: "other",
    },
    "libre3_algorithm_state": {100: "ok"},
    "cgm_sensor_type": {0: "none", 1: "dexcom_g6", 2: "libre2", 3: "dexcom_g7"},
    "dexcom_sensor": DEXCOM_SENSOR,
    "libre_sensor": LIBRE_SENSOR,
    "ack_source": {0: "user", 1: "software"},
    "basal_rate_source": {0: "suspended", 1: "profile", 2: "temp_rate", 3: "algorithm", 4: "temp_rate_and_algorithm"},
    "bolus_delivery_type": {0: "now", 1: "later", 2: "override", 3: "correction", 4: "carb", 5: "eating_soon"},
    "bolus_delivery_status": {0: "completed", 1: "started"},
    "bolus_source": {
        0: "pump_button",
        1: "pump_gui",
        2: "reserved_2",
        3: "reserved_3",
        4: "reserved_4",
        5: "remote",
        6: "reserved_6",
        7: "algorithm",
        8: "ble",
        9: "eating_soon",
    },
    "daily_status_user_mode": {0: "normal", 1: "sleeping", 2: "exercising"},
}


@dataclass(frozen=True)
class Field:
    """One payload field.

    ``layout_name`` is the name in the layout table, ``offset`` counts bytes from the payload
    start, ``type`` is a key of :data:`NUMPY_TYPES`, ``column`` the decoded column name (snake
    case, unit suffix).  ``kind`` is ``num`` (number; divided by ``divisor`` when decoded),
    ``bool`` (0/1), ``enum`` (value names in ``ENUMS[names]``), ``bits`` (bitmask, bit names in
    ``ENUMS[names]``) or ``dict`` (ids named by ``DICTIONARIES[names]``).

    Validity: a raw value in ``missing`` (or a float32 NaN) is "no value" and decodes to NULL; a
    raw value the type cannot hold (pump-logs JSON can carry any number), a flag other than 0/1, a
    bit index beyond the field's width, or a decoded number outside ``valid`` is out of range:
    NULL too, and counted (the normaliser warns once per field), the event is kept.
    """

    layout_name: str
    offset: int
    type: str
    column: str
    kind: str = "num"
    names: str | None = None
    divisor: int = 1
    #: Inclusive range of the decoded value (in the column's unit); None: what the raw type holds.
    valid: tuple[float, float] | None = None
    #: Raw values that mean "no value" (read as NULL without a warning). A float32 NaN always does.
    missing: tuple[float, ...] = ()
    #: pump-logs JSON only: SQL of the raw value over ``p`` (the struct of ``json_reads``, each a
    #: JSON value), for a field the API may key in another way than the layout name says.
    json_sql: str | None = None
    json_reads: tuple[str, ...] = ()

    @property
    def json_keys(self) -> tuple[str, ...]:
        """Keys this field may have in pump-logs ``eventProperties``, most likely first.

        The API writes abbreviations inside a name with one capital (``bolusId``, ``targetBg``,
        ``selectedIob``); the strict lowerCamelCase of the layout name (``bolusID``) is read too.
        """
        strict = lower_camel(self.layout_name)
        folded = re.sub(r"([A-Z])([A-Z]+)(?=[A-Z][a-z]|[0-9]|$)", lambda m: m[1] + m[2].lower(), strict)
        return (folded,) if folded == strict else (folded, strict)

    @property
    def decoded_type(self) -> str:
        """DuckDB type of the decoded column."""
        if self.kind in ("enum", "dict"):
            return "VARCHAR"
        if self.kind == "bits":
            return "VARCHAR[]"
        if self.kind == "bool":
            return "BOOLEAN"
        if self.type == "f32" or self.divisor != 1:
            return "DOUBLE"
        return "BIGINT"

    @property
    def raw_type(self) -> str:
        """DuckDB type of the raw (undecoded) value."""
        return "DOUBLE" if self.type == "f32" else "BIGINT"

    @property
    def raw_bounds(self) -> tuple[float, float]:
        """Inclusive range of the raw value: the type's, 0..1 for flags, the width's bits for bitmasks."""
        if self.kind == "bool":
            return (0, 1)
        if self.kind == "bits":
            return (0, (1 << (8 * TYPE_SIZES[self.type])) - 1)
        return TYPE_BOUNDS[self.type]

    @property
    def bounds(self) -> tuple[float, float]:
        """Inclusive range of the decoded number (``valid``, else the raw range scaled); numbers only."""
        if self.valid is not None:
            return self.valid
        lo, hi = self.raw_bounds
        return (lo / self.divisor, hi / self.divisor) if self.divisor != 1 else (lo, hi)


@dataclass(frozen=True)
class Event:
    """One history-log record type: its id, snake_case name and payload fields."""

    id: int
    name: str
    fields: tuple[Field, ...] = field(default_factory=tuple)


def lower_camel(name: str) -> str:
    """lowerCamelCase of a layout field name, as the pump-logs API keys it.

    'EGV TimeStamp' -> 'egvTimeStamp', 'Commanded Rate Source' -> 'commandedRateSource',
    'CommandedBasalRate' -> 'commandedBasalRate', 'BG' -> 'bg', 'RPATimeout' -> 'rpaTimeout',
    'BolusID' -> 'bolusID'.
    """
    words = [w for w in re.split(r"[ _]+", name.strip()) if w]
    out = []
    for i, word in enumerate(words):
        if i == 0:
            if word.isupper():
                out.append(word.lower())
            else:
                # Lower the leading capitals, but keep the one that starts the next word.
                lead = re.match(r"[A-Z]+", word)
                n = len(lead[0]) if lead else 0
                n = n - 1 if n > 1 and n < len(word) and word[n].islower() else n
                out.append(word[:n].lower() + word[n:])
        else:
            out.append(word[0].upper() + word[1:])
    return "".join(out)


def _f(name, offset, typ, column, kind="num", names=None, divisor=1, valid=None, missing=(), json_sql=None, reads=()):
    return Field(name, offset, typ, column, kind, names, divisor, valid, tuple(missing), json_sql, tuple(reads))


def _alert(dict_name: str, id_field: str, id_offset: int = 0, id_type: str = "u32", extra=()):
    """An alert-like id field read twice: the raw id (``<kind>_id``) and its name (``<kind>_name``)."""
    kind = _ALERT_COLUMNS[dict_name]
    return (
        _f(id_field, id_offset, id_type, f"{kind}_id"),
        _f(id_field, id_offset, id_type, f"{kind}_name", "dict", dict_name),
    ) + tuple(extra)


_ALERT_COLUMNS = {
    "ALERTS": "alert",
    "ALARMS": "alarm",
    "MALFUNCTIONS": "malfunction",
    "CGM_ALERTS": "cgm_alert",
}

# --- valid ranges (in the decoded unit) and "no value" markers ------------------------------
# A value outside its range is impossible for the pump that logged it: it is read as NULL, counted
# and warned about, and never reaches a table as a reading, a delivery or insulin (see Field).

#: Every basal rate the pump can deliver or command: 0 to 15 U/h.  "If you program a Temp Rate
#: more than the maximum allowable basal rate of 15 units/hr, you will be notified that the
#: selected rate is too high and that it will be set to the maximum allowable rate for delivery"
#: (Tandem support, "How to set a Temporary Basal Rate on your Tandem insulin pump"); profile rates
#: 0.1-15 U/h (a segment may be 0), Control-IQ is capped by the same maximum.  Rates below 0.1 U/h
#: occur (suspended, reduced by Control-IQ) and are valid.
BASAL_U_PER_H = (0.0, 15.0)
#: Basal of one pump day: the maximum rate for 25 hours (the day a clock goes back an hour).
DAILY_BASAL_U = (0.0, 375.0)
#: One bolus: at most 25 U, the largest Max Bolus the t:slim X2 and Mobi allow (user guides,
#: Personal Profiles > Max Bolus, 1-25 units).  Delivered and per-part amounts are bounded by it.
BOLUS_U = (0.0, 25.0)
#: Insulin the pump can hold or have on board: one cartridge, "The total amount of insulin added to
#: each cartridge should never exceed 300 units" (Tandem support, t:slim X2 cartridge article;
#: Mobi cartridges hold 200 U).  Fills, cartridge amounts and insulin on board.
CARTRIDGE_U = (0.0, 300.0)
#: The bolus calculator's parts of one bolus are parts of at most one Max Bolus; a correction can
#: be negative (BG below target lowers the food part).
CORRECTION_U = (-25.0, 25.0)
#: Extended bolus duration: "part of the bolus slowly over a period of up to 8 hours" (Tandem
#: support, "How to deliver an extended bolus").
EXTENDED_MINUTES = (0, 480)
#: CGM glucose as a number: 40-400 mg/dL; beyond it the sensor reports HIGH or LOW by status
#: (Dexcom: "The system only reports glucose information between 40-400 mg/dL", G4 user guide, and
#: LoopKit CGMBLEKit GlucoseLimits 40/400 for G6/G7; FreeStyle Libre: "Sensor glucose reading
#: range 40 to 400 mg/dL", Abbott system specifications).  HIGH/LOW records carry the display
#: value 0 (tidepool uploader, tandemDriver.js: "HI/LO values are 0"), and 0xFFFF is the sensor's
#: "no glucose" (G7SensorKit): both are "no value".
CGM_MG_DL = (40, 400)
CGM_NO_VALUE = (0, 0xFFFF)
#: Dexcom's trend byte: 127 and -128 mean "no rate" (CGMBLEKit Glucose.swift: trend < Int8.max
#: && trend > Int8.min; G7SensorKit: 0x7f is no trend).
DEXCOM_NO_RATE = (0x7F, -0x80)
#: A blood glucose entered on the pump (meter range 20-600 mg/dL); 0: none entered.
BG_MG_DL = (20, 600)
#: Bolus calculator settings as the pump allows them (user guides, Personal Profiles): carb ratio
#: 1-300 g/U, correction factor 1-600 mg/dL/U, target BG 70-250 mg/dL; 0 where a record has none.
CARB_RATIO_G_PER_U = (0.0, 300.0)
ISF_MG_DL_PER_U = (0, 600)
TARGET_BG_MG_DL = (0, 250)
#: Carbohydrates of one entry: 0-999 g (the calculator's carb entry).
CARBS_G = (0, 999)
#: Sensor/transmitter times and EGV timestamps: 0 and all ones mean "not set" (the CGM SQL reads
#: an EGV timestamp of 0 as absent).
TIMESTAMP_NO_VALUE = (0, 0xFFFF_FFFF)
#: Time changed (13) carries milliseconds since midnight; date changed (14) days since 2008-01-01,
#: at most the pump clock's reach (2^32 seconds from 2008: 49,710 days).
MS_OF_DAY = (0, 86_399_999)
PUMP_DAYS = (0, 49_710)
#: Percentages.
PERCENT = (0, 100)

#: The LiPo battery of the pump: a cell between 3.0 and 4.4 V while the pump runs (tconnectsync's
#: daily basal test bounds, and pumpX2's Mobi captures 3,774-4,174 mV); 0 and all ones: no value.
LIPO_MV = (3000, 4400)

#: pump-logs keys of the daily basal's last word: the layout table's names for its bytes
#: (batteryChargePercentMSBRaw = the voltage's high byte, ...LSBRaw its low byte,
#: batteryLipoMilliVolts = charge << 8 | flag), or the names of what they hold.
_DAILY_BASAL_KEYS = (
    "batteryChargePercentMSBRaw",
    "batteryChargePercentLSBRaw",
    "batteryLipoMilliVolts",
    "batteryChargePercent",
    "finalEventForDay",
)
_BYTE = "CASE WHEN TRY_CAST({k} AS BIGINT) BETWEEN 0 AND 255 THEN TRY_CAST({k} AS BIGINT) ELSE -1 END"
_WORD = "CASE WHEN TRY_CAST({k} AS BIGINT) BETWEEN 0 AND 65535 THEN TRY_CAST({k} AS BIGINT) ELSE -1 END"
_MSB, _LSB = (_BYTE.format(k=f'p."{k}"') for k in _DAILY_BASAL_KEYS[:2])
_OLD_WORD = _WORD.format(k='p."batteryLipoMilliVolts"')
_BY_LAYOUT_NAMES = 'p."batteryChargePercentMSBRaw" IS NOT NULL'
_DAILY_BASAL_JSON = {
    "battery_lipo_mv": f"CASE WHEN {_BY_LAYOUT_NAMES} THEN CASE WHEN {_MSB} < 0 OR {_LSB} < 0 THEN -1 ELSE {_MSB} * 256"
    f' + {_LSB} END ELSE TRY_CAST(p."batteryLipoMilliVolts" AS BIGINT) END',
    "battery_charge_percent": f"CASE WHEN {_BY_LAYOUT_NAMES} THEN CASE WHEN {_OLD_WORD} < 0 THEN -1 ELSE {_OLD_WORD} >> 8"
    ' END ELSE TRY_CAST(p."batteryChargePercent" AS BIGINT) END',
    "final_event_of_day": f"CASE WHEN {_BY_LAYOUT_NAMES} THEN CASE WHEN {_OLD_WORD} < 0 THEN -1 ELSE {_OLD_WORD} & 255"
    ' END ELSE TRY_CAST(p."finalEventForDay" AS BIGINT) END',
}

_FAULT = (
    _f("faultLocatorData", 4, "u32", "fault_locator_data"),
    _f("param1", 8, "u32", "param1"),
    _f("param2", 12, "f32", "param2"),
)
_CGM_DEX_HEAD = (_f("SensorType", 2, "u8", "sensor_type", "enum", "dexcom_sensor"),)
_CGM_LIBRE_HEAD = (_f("SensorType", 2, "u8", "sensor_type", "enum", "libre_sensor"),)


def _cgm(rate_type: str, data_type_at: int, status_at: int, status_type: str, names: dict[str, str]):
    """The common shape of the four CGM reading records (256, 399, 372, 480)."""
    no_rate = DEXCOM_NO_RATE if rate_type == "i8" else ()
    return (
        _f("Rate", 0, rate_type, "rate_mg_dl_per_min", divisor=10, missing=no_rate),
        _f("CGM Data Type", data_type_at, "u8", "cgm_data_type", "bits", names["data_type"]),
        _f("glucoseValueStatus", status_at, status_type, "glucose_value_status", "enum", names["status"]),
        _f(
            "currentGlucoseDisplayValue", 4, "u16", "glucose_display_value_mg_dl", valid=CGM_MG_DL, missing=CGM_NO_VALUE
        ),
        _f("RSSI", 6, "i8", "rssi_dbm"),
        _f(
            "AlgorithmState",
            7,
            "u8",
            "algorithm_state" if names["algorithm"] else "algorithm_state_code",
            *names["algorithm"],
        ),
        _f("EGV TimeStamp", 8, "u32", "egv_timestamp_seconds", missing=TIMESTAMP_NO_VALUE),
        _f("Interval", 13, "u8", "interval"),
        _f("EGV Info Bitmask", 14, "u16", "egv_info", "bits", names["info"]),
    )


_BOLUS_COMPLETED = (
    _f("BolusID", 0, "u16", "bolus_id"),
    _f("CompletionStatus", 2, "u16", "completion_status", "enum", "bolus_completion"),
    _f("IOB", 4, "f32", "iob_units", valid=CARTRIDGE_U),
    _f("InsulinDelivered", 8, "f32", "insulin_delivered_units", valid=BOLUS_U),
    _f("InsulinRequested", 12, "f32", "insulin_requested_units", valid=BOLUS_U),
)

_SESSION_GX = (
    _f("CurrentTransmitterTime", 0, "u32", "transmitter_time_seconds", missing=TIMESTAMP_NO_VALUE),
    _f("SessionStartTime", 4, "u32", "session_start_time_seconds", missing=TIMESTAMP_NO_VALUE),
)

EVENTS: tuple[Event, ...] = (
    Event(
        3,
        "basal_rate_change",
        (
            _f("CommandedBasalRate", 0, "f32", "commanded_basal_rate_units_per_hour", valid=BASAL_U_PER_H),
            _f("BaseBasalRate", 4, "f32", "base_basal_rate_units_per_hour", valid=BASAL_U_PER_H),
            _f("maxBasalRate", 8, "f32", "max_basal_rate_units_per_hour", valid=BASAL_U_PER_H),
            _f("ChangeType", 13, "u8", "change_type", "bits", "basal_change_type"),
            _f("IDP", 14, "u16", "idp"),
        ),
    ),
    Event(4, "alert_activated", _alert("ALERTS", "AlertID", extra=_FAULT)),
    Event(5, "alarm_activated", _alert("ALARMS", "AlarmID", extra=_FAULT)),
    Event(6, "malfunction_activated", _alert("MALFUNCTIONS", "MalfID", extra=_FAULT)),
    # 11/12: InsulinAmount is the insulin left in the cartridge, whole units (pumpX2's tests: "the
    # remaining reservoir amount", e.g. 185 after a 185 U fill).
    Event(
        11,
        "pumping_suspended",
        (
            _f("PreSuspendState", 0, "u32", "pre_suspend_state"),
            _f("RPATimeout", 4, "u8", "rpa_timeout_minutes"),
            _f("SuspendReason", 5, "u8", "suspend_reason", "enum", "suspend_reason"),
            _f("InsulinAmount", 6, "u16", "insulin_amount_units", valid=CARTRIDGE_U),
        ),
    ),
    Event(
        12,
        "pumping_resumed",
        (
            _f("PreResumeState", 0, "u32", "pre_resume_state"),
            _f("InsulinAmount", 6, "u16", "insulin_amount_units", valid=CARTRIDGE_U),
        ),
    ),
    Event(
        13,
        "time_changed",
        (
            _f("TimePrior", 0, "u32", "time_prior_ms", valid=MS_OF_DAY),
            _f("TimeAfter", 4, "u32", "time_after_ms", valid=MS_OF_DAY),
            _f("RawRTCTime", 8, "u32", "raw_rtc_time_ms"),
        ),
    ),
    Event(
        14,
        "date_changed",
        (
            _f("DatePrior", 0, "u32", "date_prior_days", valid=PUMP_DAYS),
            _f("DateAfter", 4, "u32", "date_after_days", valid=PUMP_DAYS),
            _f("RawRTCTime", 8, "u32", "raw_rtc_time_ms"),
        ),
    ),
    Event(
        16,
        "bg_reading_taken",
        (
            _f("BgEntryType", 0, "u8", "bg_entry_type", "enum", "bg_entry_type"),
            _f("cgmCalibration", 1, "u8", "cgm_calibration", "bool"),
            _f("BG", 2, "u16", "bg_mg_dl", valid=BG_MG_DL, missing=(0,)),
            _f("IOB", 4, "f32", "iob_units", valid=CARTRIDGE_U),
            _f("ISF", 8, "u16", "isf_mg_dl_per_unit", valid=ISF_MG_DL_PER_U),
            _f("TargetBG", 10, "u16", "target_bg_mg_dl", valid=TARGET_BG_MG_DL),
            _f("BgSourceType", 14, "u8", "bg_source", "enum", "bg_source"),
            _f("SelectedIOB", 15, "u8", "iob_model", "enum", "iob_model"),
        ),
    ),
    Event(20, "bolus_completed", _BOLUS_COMPLETED),
    Event(21, "bolex_completed", _BOLUS_COMPLETED),
    Event(26, "alert_cleared", _alert("ALERTS", "AlertID", extra=(_FAULT[0],))),
    Event(28, "alarm_cleared", _alert("ALARMS", "AlarmID")),
    Event(
        33,
        "cartridge_filled",
        (
            _f("InsulinVolume", 0, "u32", "insulin_volume_units", valid=CARTRIDGE_U),
            _f("V2Volume", 4, "f32", "v2_volume_units", valid=CARTRIDGE_U),
        ),
    ),
    Event(36, "usb_connected", (_f("negotiatedCurrent", 0, "f32", "negotiated_current_ma"),)),
    Event(37, "usb_disconnected", (_f("negotiatedCurrent", 0, "f32", "negotiated_current_ma"),)),
    Event(48, "carbs_entered", (_f("carbs", 0, "f32", "carbs_g", valid=CARBS_G),)),
    Event(
        53,
        "shelf_mode",
        (
            _f("msecSinceReset", 0, "u32", "ms_since_reset"),
            _f("LiPo_IBC", 4, "u8", "lipo_ibc_percent", valid=PERCENT),
            _f("LiPo_ABC", 5, "u8", "lipo_abc_percent", valid=PERCENT),
            _f("LiPoCurrent", 6, "i16", "lipo_current_ma"),
            _f("LiPo_RemCap", 8, "u32", "lipo_remaining_capacity_mah"),
            _f("LiPo_mV", 12, "u32", "lipo_mv"),
        ),
    ),
    Event(
        55,
        "bolus_activated",
        (
            _f("SelectedIOB", 1, "u8", "iob_model", "enum", "iob_model"),
            _f("BolusID", 2, "u16", "bolus_id"),
            _f("IOB", 4, "f32", "iob_units", valid=CARTRIDGE_U),
            _f("BolusSize", 8, "f32", "bolus_size_units", valid=BOLUS_U),
        ),
    ),
    Event(
        59,
        "bolex_activated",
        (
            _f("SelectedIOB", 1, "u8", "iob_model", "enum", "iob_model"),
            _f("BolusID", 2, "u16", "bolus_id"),
            _f("IOB", 4, "f32", "iob_units", valid=CARTRIDGE_U),
            _f("BolexSize", 8, "f32", "bolex_size_units", valid=BOLUS_U),
        ),
    ),
    Event(
        60,
        "data_log_corruption",
        (
            _f("Block", 0, "u32", "block"),
            _f("Reason", 7, "u8", "reason"),
        ),
    ),
    Event(
        61,
        "cannula_filled",
        (
            _f("PrimeSize", 0, "f32", "prime_size_units", valid=CARTRIDGE_U),
            _f("CompletionStatus", 4, "u32", "completion_status", "enum", "fill_completion"),
        ),
    ),
    Event(
        63,
        "tubing_filled",
        (
            # Every captured tubing fill carries PrimeSize -1.0 "alongside completionStatus == COMPLETED
            # (3); this looks like a firmware sentinel" (pumpX2 TubingFilledHistoryLogTest): no value.
            _f("PrimeSize", 0, "f32", "prime_size_units", valid=CARTRIDGE_U, missing=(-1.0,)),
            _f("CompletionStatus", 4, "u32", "completion_status", "enum", "fill_completion"),
            _f("Position", 8, "u32", "position_counts"),
        ),
    ),
    Event(
        64,
        "bolus_requested_msg1",
        (
            _f("CorrectionBolusIncluded", 0, "u8", "correction_bolus_included", "bool"),
            _f("BolusType", 1, "u8", "bolus_request_type", "enum", "bolus_request_type"),
            _f("BolusID", 2, "u16", "bolus_id"),
            _f("BG", 4, "u16", "bg_mg_dl", valid=BG_MG_DL, missing=(0,)),
            _f("CarbAmount", 6, "u16", "carb_amount_g", valid=CARBS_G),
            _f("IOB", 8, "f32", "iob_units", valid=CARTRIDGE_U),
            _f("CarbRatio", 12, "u32", "carb_ratio_g_per_unit", divisor=1000, valid=CARB_RATIO_G_PER_U),
        ),
    ),
    Event(
        65,
        "bolus_requested_msg2",
        (
            _f("StandardPercent", 0, "u8", "standard_percent", valid=PERCENT),
            _f("Options", 1, "u8", "bolus_options", "enum", "bolus_options"),
            _f("BolusID", 2, "u16", "bolus_id"),
            _f("Duration", 6, "u16", "duration_minutes", valid=EXTENDED_MINUTES),
            _f("TargetBG", 8, "u16", "target_bg_mg_dl", valid=TARGET_BG_MG_DL),
            _f("ISF", 10, "u16", "isf_mg_dl_per_unit", valid=ISF_MG_DL_PER_U),
            _f("SelectedIOB", 13, "u8", "iob_model", "enum", "iob_model"),
            _f("DeclinedCorrection", 14, "u8", "declined_correction", "bool"),
            _f("UserOverride", 15, "u8", "user_override", "bool"),
        ),
    ),
    Event(
        66,
        "bolus_requested_msg3",
        (
            _f("BolusID", 2, "u16", "bolus_id"),
            _f("FoodBolusSize", 4, "f32", "food_bolus_units", valid=BOLUS_U),
            _f("CorrectionBolusSize", 8, "f32", "correction_bolus_units", valid=CORRECTION_U),
            _f("TotalBolusSize", 12, "f32", "total_bolus_units", valid=BOLUS_U),
        ),
    ),
    Event(
        81,
        "daily_basal",
        (
            _f("dailyTotalBasal", 0, "f32", "daily_total_basal_units", valid=DAILY_BASAL_U),
            _f("lastBasalRate", 4, "f32", "last_basal_rate_units_per_hour", valid=BASAL_U_PER_H),
            _f("iob", 8, "f32", "iob_units", valid=CARTRIDGE_U),
            # The last word is the LiPo battery voltage (u16, mV), the charge (u8, %) and the "final
            # event of the day" flag: pumpX2 DailyBasalHistoryLog (lipoMv, batteryChargeRaw,
            # finalEventForDay; 12 real records of its tests give 3,832-3,904 mV and 55-65 %) and
            # tconnectsync's test_liddailybasal (3,830 mV / 55 %).  The layout table names these bytes
            # batteryChargePercentMSBRaw/LSBRaw and batteryLipoMilliVolts; a pump-logs answer keyed
            # by those names is read from the same bytes under them (see _DAILY_BASAL_JSON).
            _f(
                "batteryLipoMilliVolts",
                12,
                "u16",
                "battery_lipo_mv",
                valid=LIPO_MV,
                missing=(0, 0xFFFF),
                json_sql=_DAILY_BASAL_JSON["battery_lipo_mv"],
                reads=_DAILY_BASAL_KEYS,
            ),
            _f(
                "batteryChargePercent",
                14,
                "u8",
                "battery_charge_percent",
                valid=PERCENT,
                json_sql=_DAILY_BASAL_JSON["battery_charge_percent"],
                reads=_DAILY_BASAL_KEYS,
            ),
            _f(
                "finalEventForDay",
                15,
                "u8",
                "final_event_of_day",
                "bool",
                json_sql=_DAILY_BASAL_JSON["final_event_of_day"],
                reads=_DAILY_BASAL_KEYS,
            ),
        ),
    ),
    Event(
        90,
        "new_day",
        (
            _f("CommandedBasalRate", 0, "f32", "commanded_basal_rate_units_per_hour", valid=BASAL_U_PER_H),
            _f("FeaturesBitmask", 4, "u32", "features_bitmask"),
            _f("FeatureBitmaskIndex", 8, "u32", "feature_bitmask_index"),
        ),
    ),
    Event(
        99,
        "arm_init",
        (
            _f("Version", 0, "u32", "version"),
            _f("ConfigABits", 4, "u32", "config_a_bits"),
            _f("ConfigBBits", 8, "u32", "config_b_bits"),
            _f("NumLogEntries", 12, "u32", "num_log_entries"),
        ),
    ),
    Event(
        140,
        "plgs_periodic",
        (
            _f("Timestamp", 0, "u32", "plgs_timestamp_seconds"),
            _f("PGV", 4, "u16", "pgv_mg_dl", missing=(0xFFFF,)),
            _f("FMR", 6, "u16", "fmr_mg_dl", missing=(0xFFFF,)),
            _f("HoMinState", 8, "u8", "plgs_state", "enum", "plgs_state"),
            _f("RuleState", 9, "u8", "plgs_rule_state", "bits", "plgs_rule_state"),
            _f("PGVValid", 10, "u8", "pgv_valid", "bool"),
            _f("FMRStatus", 11, "u8", "fmr_status", "enum", "plgs_fmr_status"),
            _f("Status", 12, "u32", "plgs_status", "bits", "plgs_status"),
        ),
    ),
    Event(171, "cgm_alert_activated", _alert("CGM_ALERTS", "DalertID", extra=_FAULT)),
    Event(172, "cgm_alert_cleared", _alert("CGM_ALERTS", "DalertID")),
    Event(
        191,
        "version_info",
        (
            _f("Version", 0, "u32", "version"),
            _f("ConfigABits", 4, "u32", "config_a_bits"),
            _f("ConfigBBits", 8, "u32", "config_b_bits"),
            _f("ArmCRC", 14, "u16", "arm_crc"),
        ),
    ),
    Event(
        203,
        "update_status",
        (
            _f("MetadataAndVersionStatus", 0, "u16", "metadata_and_version_status"),
            _f("SwUpdateStatus", 2, "u16", "sw_update_status"),
            _f("FileDlAndSideloadStatus", 4, "u16", "file_download_and_sideload_status"),
            _f("FullDlAndCrcStatus", 6, "u16", "full_download_and_crc_status"),
            _f("UpdateSuccessful", 9, "u8", "update_successful", "bool"),
            _f("ExternalFlashStatus", 10, "u16", "external_flash_status"),
            _f("SwPartNum", 12, "u32", "sw_part_number"),
        ),
    ),
    Event(212, "cgm_start_session_gx", _SESSION_GX + (_f("SessionDuration", 15, "u8", "session_duration_days"),)),
    Event(
        213,
        "cgm_join_session_gx",
        _SESSION_GX
        + (
            _f("SessionJoinReason", 14, "u8", "session_join_reason", "enum", "dexcom_session_reason"),
            _f("SessionDuration", 15, "u8", "session_duration_days"),
        ),
    ),
    Event(
        214,
        "cgm_stop_session_gx",
        _SESSION_GX
        + (
            _f("SessionStopTime", 8, "u32", "session_stop_time_seconds", missing=TIMESTAMP_NO_VALUE),
            _f("SessionStopReason", 14, "u8", "session_stop_reason", "enum", "dexcom_session_reason"),
            _f("SessionDuration", 15, "u8", "session_duration_days"),
        ),
    ),
    Event(
        229,
        "aa_user_mode_change",
        (
            _f("RequestedAction", 1, "u8", "requested_action", "enum", "user_action"),
            _f("PreviousUserMode", 2, "u8", "previous_user_mode", "enum", "user_mode"),
            _f("CurrentUserMode", 3, "u8", "current_user_mode", "enum", "user_mode"),
            _f("ActiveSleepSchedule", 6, "u8", "active_sleep_schedule", "bits", "sleep_schedule"),
            _f("SleepStartedByGUI", 7, "u8", "sleep_started_by_gui", "bool"),
            _f("ExerciseTime", 8, "u16", "exercise_time_minutes"),
            _f("ExerciseChoice", 10, "u8", "exercise_choice", "enum", "exercise_choice"),
            _f("ExerciseStoppedByTimer", 11, "u8", "exercise_stopped_by_timer", "bool"),
            _f("EatingSoonStoppedByTimer", 15, "u8", "eating_soon_stopped_by_timer", "bool"),
        ),
    ),
    Event(
        230,
        "aa_pcm_change",
        (
            _f("CalculationAvailable", 0, "u8", "calculation_available", "bool"),
            _f("PumpSuspended", 1, "u8", "pump_suspended", "bool"),
            _f("PreviousPCM", 2, "u8", "previous_pump_control", "enum", "pump_control"),
            _f("CurrentPCM", 3, "u8", "current_pump_control", "enum", "pump_control"),
            _f("SufficientClosedLoopParams", 5, "u8", "sufficient_closed_loop_params", "bool"),
            _f("ClosedLoopPreferred", 6, "u8", "closed_loop_preferred", "bool"),
            _f("CgmAvailable", 7, "u8", "cgm_available", "bool"),
        ),
    ),
    Event(
        256,
        "cgm_data_gxb",
        _cgm(
            "i8",
            1,
            2,
            "u16",
            {
                "data_type": "cgm_data_type_dexcom",
                "status": "glucose_status",
                "algorithm": (),
                "info": "egv_info_dexcom",
            },
        ),
    ),
    Event(
        279,
        "basal_delivery",
        (
            _f("Commanded Rate Source", 2, "u16", "commanded_rate_source", "enum", "basal_rate_source"),
            _f(
                "Profile Basal Rate",
                4,
                "u16",
                "profile_rate_units_per_hour",
                divisor=1000,
                valid=BASAL_U_PER_H,
                missing=(0xFFFF,),
            ),
            _f(
                "Commanded Rate",
                6,
                "u16",
                "commanded_rate_units_per_hour",
                divisor=1000,
                valid=BASAL_U_PER_H,
                missing=(0xFFFF,),
            ),
            _f("Temp Rate", 8, "u16", "temp_rate_units_per_hour", divisor=1000, valid=BASAL_U_PER_H, missing=(0xFFFF,)),
            _f(
                "Algorithm Rate",
                10,
                "u16",
                "algorithm_rate_units_per_hour",
                divisor=1000,
                valid=BASAL_U_PER_H,
                missing=(0xFFFF,),
            ),
        ),
    ),
    Event(
        280,
        "bolus_delivery",
        (
            _f("Bolus Type", 0, "u8", "bolus_delivery_type", "bits", "bolus_delivery_type"),
            _f("Bolus Delivery Status", 1, "u8", "bolus_delivery_status", "enum", "bolus_delivery_status"),
            _f("BolusID", 2, "u16", "bolus_id"),
            _f("Requested Now", 4, "u16", "requested_now_units", divisor=1000, valid=BOLUS_U, missing=(0xFFFF,)),
            _f("Remote ID", 6, "u8", "remote_id"),
            _f("Bolus Source", 7, "u8", "bolus_source", "enum", "bolus_source"),
            _f("Correction", 8, "u16", "correction_units", divisor=1000, valid=BOLUS_U, missing=(0xFFFF,)),
            _f("Requested Later", 10, "u16", "requested_later_units", divisor=1000, valid=BOLUS_U, missing=(0xFFFF,)),
            _f("Delivered Total", 12, "u16", "delivered_total_units", divisor=1000, valid=BOLUS_U, missing=(0xFFFF,)),
            _f(
                "Extended Duration Requested",
                14,
                "u16",
                "extended_duration_minutes",
                valid=EXTENDED_MINUTES,
                missing=(0xFFFF,),
            ),
        ),
    ),
    Event(
        307,
        "versions_a",
        (
            _f("ArmPartNumber", 0, "u32", "arm_part_number"),
            _f("ArmSwVersion", 4, "u32", "arm_sw_version"),
            _f("BlePartNumber", 8, "u32", "ble_part_number"),
            _f("BleSwVersion", 12, "u32", "ble_sw_version"),
        ),
    ),
    Event(
        313,
        "aa_daily_status",
        (
            _f("SensorType", 1, "u8", "cgm_sensor_type", "enum", "cgm_sensor_type"),
            _f("usermode", 2, "u8", "user_mode", "enum", "daily_status_user_mode"),
            _f("PumpControlState", 3, "u8", "pump_control_state", "enum", "pump_control"),
        ),
    ),
    Event(369, "cgm_alert_activated_dex", _CGM_DEX_HEAD + _alert("CGM_ALERTS", "DalertID", 3, "u8", _FAULT)),
    Event(370, "cgm_alert_cleared_dex", _CGM_DEX_HEAD + _alert("CGM_ALERTS", "DalertID", 3, "u8")),
    Event(
        371,
        "cgm_alert_ack_dex",
        _CGM_DEX_HEAD
        + _alert("CGM_ALERTS", "DalertID", 3, "u8", (_f("AckSource", 4, "u32", "ack_source", "enum", "ack_source"),)),
    ),
    Event(
        372,
        "cgm_data_fsl2",
        _cgm(
            "i16",
            2,
            3,
            "u8",
            {
                "data_type": "cgm_data_type_libre2",
                "status": "glucose_status",
                "algorithm": ("enum", "libre2_algorithm_state"),
                "info": "egv_info_libre2",
            },
        ),
    ),
    Event(
        394,
        "cgm_join_session_g7",
        (
            _f("cgmTimestamp", 0, "u32", "cgm_timestamp_seconds", missing=TIMESTAMP_NO_VALUE),
            _f("sessionSignature", 4, "u32", "session_signature"),
        ),
    ),
    Event(
        399,
        "cgm_data_g7",
        _cgm(
            "i8",
            1,
            2,
            "u16",
            {
                "data_type": "cgm_data_type_dexcom",
                "status": "glucose_status_g7",
                "algorithm": ("enum", "g7_algorithm_state"),
                "info": "egv_info_dexcom",
            },
        ),
    ),
    Event(
        404,
        "cgm_start_session_fsl2",
        (
            _f("SessionStartTime", 0, "u32", "session_start_time_seconds", missing=TIMESTAMP_NO_VALUE),
            _f("SessionDuration", 7, "u8", "session_duration_days"),
        ),
    ),
    Event(
        405,
        "cgm_stop_session_fsl2",
        (
            _f("SessionStartTime", 0, "u32", "session_start_time_seconds", missing=TIMESTAMP_NO_VALUE),
            _f("SessionStopTime", 4, "u32", "session_stop_time_seconds", missing=TIMESTAMP_NO_VALUE),
            _f("SessionStopReason", 10, "u8", "session_stop_reason_code"),
            _f("SessionDuration", 11, "u8", "session_duration_days"),
        ),
    ),
    Event(
        406,
        "cgm_join_session_fsl2",
        (
            _f("SessionStartTime", 0, "u32", "session_start_time_seconds", missing=TIMESTAMP_NO_VALUE),
            _f("SessionJoinTime", 4, "u32", "session_join_time_seconds", missing=TIMESTAMP_NO_VALUE),
            _f("SessionJoinReason", 10, "u8", "session_join_reason_code"),
            _f("SessionDuration", 11, "u8", "session_duration_days"),
        ),
    ),
    # 447: pumpX2's CgmStopSessionG7HistoryLog reads the code, reason and duration at our 14, 13 and 12;
    # no captured record settles it (pumpX2's older G6 parsers made the same shift, which real G6
    # records refuted), so the layout table's offsets are kept.
    Event(
        447,
        "cgm_stop_session_g7",
        _SESSION_GX
        + (
            _f("SessionStopTime", 8, "u32", "session_stop_time_seconds", missing=TIMESTAMP_NO_VALUE),
            _f("StopSessionCode", 13, "u8", "stop_session_code"),
            _f("SessionStopReason", 14, "u8", "session_stop_reason_code"),
            _f("SessionDuration", 15, "u8", "session_duration_days"),
        ),
    ),
    Event(460, "cgm_alert_activated_fsl2", _CGM_LIBRE_HEAD + _alert("CGM_ALERTS", "DalertID", 3, "u8", _FAULT)),
    Event(461, "cgm_alert_cleared_fsl2", _CGM_LIBRE_HEAD + _alert("CGM_ALERTS", "DalertID", 3, "u8")),
    # 477 and 486: pumpX2 puts the duration and reason at our 11 and 10 and a u32 duration in
    # seconds at 12; neither side has a captured record, so the layout table's offsets are kept.
    Event(
        477,
        "cgm_join_session_fsl3",
        (
            _f("SessionStartTime", 0, "u32", "session_start_time_seconds", missing=TIMESTAMP_NO_VALUE),
            _f("SessionJoinTime", 4, "u32", "session_join_time_seconds", missing=TIMESTAMP_NO_VALUE),
            _f("SessionDuration", 8, "u8", "session_duration_days"),
            _f("SessionJoinReason", 9, "u8", "session_join_reason_code"),
        ),
    ),
    Event(
        480,
        "cgm_data_fsl3",
        _cgm(
            "i16",
            2,
            3,
            "u8",
            {
                "data_type": "cgm_data_type_libre3",
                "status": "glucose_status",
                "algorithm": ("enum", "libre3_algorithm_state"),
                "info": "egv_info_libre3",
            },
        ),
    ),
    Event(
        486,
        "cgm_stop_session_fsl3",
        (
            _f("SessionStartTime", 0, "u32", "session_start_time_seconds", missing=TIMESTAMP_NO_VALUE),
            _f("SessionStopTime", 4, "u32", "session_stop_time_seconds", missing=TIMESTAMP_NO_VALUE),
            _f("SessionDuration", 8, "u8", "session_duration_days"),
            _f("SessionStopReason", 9, "u8", "session_stop_reason_code"),
        ),
    ),
)

EVENTS_BY_ID: dict[int, Event] = {e.id: e for e in EVENTS}

#: Event codes the Tandem Source web app asks pump-logs for (reference: tandem-source-api.md).
WEB_APP_EVENT_CODES: tuple[int, ...] = (
    229,
    5,
    28,
    4,
    26,
    99,
    279,
    3,
    16,
    59,
    21,
    55,
    20,
    280,
    64,
    65,
    66,
    61,
    33,
    371,
    171,
    369,
    460,
    172,
    370,
    461,
    372,
    480,
    399,
    256,
    213,
    406,
    477,
    394,
    212,
    404,
    214,
    405,
    486,
    447,
    313,
    60,
    14,
    6,
    90,
    230,
    140,
    12,
    11,
    53,
    13,
    63,
    203,
    307,
    191,
)


def _columns() -> dict[str, Field]:
    """Every decoded column once, checking that events sharing a column agree on its types."""
    columns: dict[str, Field] = {}
    for event in EVENTS:
        ends = []
        for f in event.fields:
            assert 0 <= f.offset and f.offset + TYPE_SIZES[f.type] <= PAYLOAD_SIZE, (event.id, f)
            ends.append((f.offset, f.offset + TYPE_SIZES[f.type]))
            if f.kind in ("enum", "bits"):
                assert f.names in ENUMS, f.names
            if f.kind == "dict":
                assert f.names in DICTIONARIES, f.names
            assert f.valid is None or (f.kind == "num" and f.valid[0] <= f.valid[1]), (event.id, f)
            lo, hi = f.raw_bounds
            assert all(lo <= m <= hi for m in f.missing), (event.id, f)
            seen = columns.setdefault(f.column, f)
            assert (seen.decoded_type, seen.raw_type) == (f.decoded_type, f.raw_type), (event.id, f)
        ends = sorted(set(ends))
        assert all(a[1] <= b[0] for a, b in zip(ends, ends[1:], strict=False)), f"overlapping fields in {event.id}"
    return columns


#: column name -> a representative Field (types agree for every event that has the column).
COLUMNS: dict[str, Field] = _columns()


def event_name(event_id: int) -> str:
    """The snake_case name of an event id, ``UNKNOWN_<id>`` for ids this table does not describe."""
    event = EVENTS_BY_ID.get(event_id)
    return event.name if event else f"UNKNOWN_{event_id}"
