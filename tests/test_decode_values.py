"""Decoded values of every documented pump history record, checked against hand-computed values.

Every record here is built byte by byte with ``struct.pack`` from the 26-byte layout (big-endian
header: uint16 event id whose top 4 bits are a source nibble, uint32 pump-clock seconds since
2008-01-01T00:00:00 wall clock, uint32 sequence number; then a 16-byte payload with the fields at
the documented payload offsets).  The pump-logs JSON form carries the same fields in
``eventProperties`` keyed in lowerCamelCase, enums as raw integers, bitmasks as lists of set bit
indices and ratios unscaled.

Every expected value is a literal worked out by hand from the layout tables: ratios scaled
(milliunits/hr / 1000 -> units/hr, CGM rate tenths / 10 -> mg/dL/min, carb ratio x0.001), enum and
dictionary ids named, bitmasks listed by bit name (lowest bit first), 0/1 flags as booleans,
float32 values as their shortest decimal.  Nothing here uses the package's encoder or its layout
tables to derive an expectation; the package is only run through ``normalize_file``.
"""

import base64
import json
import struct
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import pyarrow.parquet as pq
import pytest
from tandem_export import normalize
from tandem_export.errors import InputError
from tandem_export.layouts import COLUMNS
from tandem_export.normalize import normalize_file

pytestmark = pytest.mark.fast  # the fast tier of value tests (make test-fast)

SERIAL = "TSLIM-12345678"
ASSIGNMENT = "0f1e2d3c-4b5a-4697-8877-665544332211"
SEQUENCE_GROUP = 3

COMMON = (
    "pump_serial",
    "sequence_group",
    "seq_num",
    "event_id",
    "event_name",
    "pump_time",
    "origin",
    "properties",
    "record",
)

# Header times: pump-clock seconds since 2008-01-01T00:00:00 and the wall-clock time they denote.
# 2008-01-01 -> 2024-01-01 is 16 years with 4 leap days (2008, 2012, 2016, 2020) = 5844 days;
# + 31 (Jan) + 29 (Feb 2024) + 9 = 5913 days; 5913 * 86400 + 8*3600 + 15*60 + 30 = 510_912_930.
T1, W1 = 510_912_930, datetime(2024, 3, 10, 8, 15, 30)
# 2008 -> 2020: 12 years, 3 leap days = 4383 days; + 31 + 28 = 4442 days; 4442 * 86400 + 12*3600.
T2, W2 = 383_832_000, datetime(2020, 2, 29, 12, 0, 0)
# 2008 -> 2025: 17 years, 5 leap days = 6210 days; + 31+28+31+30+31+29 = 6390 days; + 86399 s.
T3, W3 = 552_182_399, datetime(2025, 6, 30, 23, 59, 59)


def record(event_id: int, seconds: int, seq: int, fields=(), nibble: int = 0) -> bytes:
    """One 26-byte record: header then the payload with ``(offset, struct code, value)`` fields."""
    payload = bytearray(16)
    for offset, code, value in fields:
        struct.pack_into(">" + code, payload, offset, value)
    return struct.pack(">HII", (nibble << 12) | event_id, seconds, seq) + bytes(payload)


def pumplogs_event(event_id: int, seq: int, when: datetime, props, group: int = SEQUENCE_GROUP) -> dict:
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S")
    return {
        "deviceAssignmentId": ASSIGNMENT,
        "eventCode": event_id,
        "sequenceGroup": group,
        "sequenceNumber": seq,
        "pumpDateTime": stamp,
        "estimatedDateTime": stamp + "Z",
        "eventProperties": props,
    }


def run(tmp: Path, name: str, content: bytes | str):
    """Write ``content`` to ``tmp/name``, normalise it and return (stats, rows)."""
    raw = tmp / name
    if isinstance(content, str):
        raw.write_text(content, encoding="utf-8")
    else:
        raw.write_bytes(content)
    out = tmp / (name + ".parquet")
    stats = normalize_file(raw, SERIAL, out)
    # A normalised file holds only the columns of the event types it has; the others are NULL.
    return stats, [{**dict.fromkeys(ALL_COLUMNS), **r} for r in pq.read_table(out).to_pylist()]


ALL_COLUMNS = list(COLUMNS)


def by_seq(rows) -> dict[int, dict]:
    return {r["seq_num"]: r for r in rows}


def decoded(row: dict) -> dict:
    """The decoded-field columns of a row (everything after the common columns)."""
    return {k: v for k, v in row.items() if k not in COMMON}


class Case(NamedTuple):
    event_id: int
    event_name: str
    at: tuple[int, datetime]
    seq: int
    payload: list
    expected: dict
    props: dict | None = None  # pump-logs eventProperties carrying the same values
    json_missing: tuple[str, ...] = ()  # columns the pump-logs form of this case leaves out


# fmt: off
CASES = [
    Case(3, "basal_rate_change", (T1, W1), 1003,
         [(0, "f", 0.85), (4, "f", 0.9), (8, "f", 3.0), (13, "B", 0b1000_0101), (14, "H", 2)],
         {"commanded_basal_rate_units_per_hour": 0.85, "base_basal_rate_units_per_hour": 0.9,
          "max_basal_rate_units_per_hour": 3.0,
          "change_type": ["timed_segment", "temp_rate_start", "basal_limit"], "idp": 2},
         {"commandedBasalRate": 0.85, "baseBasalRate": 0.9, "maxBasalRate": 3.0, "changeType": [0, 2, 7], "idp": 2}),
    Case(4, "alert_activated", (T1, W1), 1004,
         [(0, "I", 18), (4, "I", 0xDEADBEEF), (8, "I", 7), (12, "f", 2.5)],
         {"alert_id": 18, "alert_name": "max_basal_alert", "fault_locator_data": 3_735_928_559,
          "param1": 7, "param2": 2.5},
         {"alertId": 18, "faultLocatorData": 3_735_928_559, "param1": 7, "param2": 2.5}),
    Case(5, "alarm_activated", (T2, W2), 1005,
         [(0, "I", 2), (4, "I", 1234), (8, "I", 0), (12, "f", 0.1)],
         {"alarm_id": 2, "alarm_name": "occlusion_alarm", "fault_locator_data": 1234, "param1": 0, "param2": 0.1},
         {"alarmId": 2, "faultLocatorData": 1234, "param1": 0, "param2": 0.1}),
    Case(6, "malfunction_activated", (T2, W2), 1006,
         [(0, "I", 17), (4, "I", 0x0001_0002), (8, "I", 42), (12, "f", -1.5)],
         {"malfunction_id": 17, "malfunction_name": "malfunction_17", "fault_locator_data": 65_538,
          "param1": 42, "param2": -1.5},
         {"malfId": 17, "faultLocatorData": 65538, "param1": 42, "param2": -1.5}),
    Case(11, "pumping_suspended", (T1, W1), 1011,
         [(0, "I", 3), (4, "B", 30), (5, "B", 6), (6, "H", 150)],
         {"pre_suspend_state": 3, "rpa_timeout_minutes": 30, "suspend_reason": "automatic_low_glucose_suspend",
          "insulin_amount_units": 150},
         {"preSuspendState": 3, "suspendReason": 6, "insulinAmount": 150},
         json_missing=("rpa_timeout_minutes",)),  # key spelling: see test_pumplogs_leading_acronym_keys
    Case(12, "pumping_resumed", (T1, W1), 1012,
         [(0, "I", 5), (6, "H", 148)],
         {"pre_resume_state": 5, "insulin_amount_units": 148},
         {"preResumeState": 5, "insulinAmount": 148}),
    Case(13, "time_changed", (T3, W3), 1013,
         # 08:15:30 = 29_730_000 ms since midnight; 09:15:30 = 33_330_000 ms
         [(0, "I", 29_730_000), (4, "I", 33_330_000), (8, "I", 123_456_789)],
         {"time_prior_ms": 29_730_000, "time_after_ms": 33_330_000, "raw_rtc_time_ms": 123_456_789}),
    Case(14, "date_changed", (T3, W3), 1014,
         # day 0 = 2008-01-01 (clock reset), day 5913 = 2024-03-10
         [(0, "I", 0), (4, "I", 5913), (8, "I", 987_654)],
         {"date_prior_days": 0, "date_after_days": 5913, "raw_rtc_time_ms": 987_654}),
    Case(16, "bg_reading_taken", (T1, W1), 1016,
         [(0, "B", 1), (1, "B", 1), (2, "H", 142), (4, "f", 1.25), (8, "H", 45), (10, "H", 110),
          (14, "B", 1), (15, "B", 1)],
         {"bg_entry_type": "cgm_auto_populated", "cgm_calibration": True, "bg_mg_dl": 142, "iob_units": 1.25,
          "isf_mg_dl_per_unit": 45, "target_bg_mg_dl": 110, "bg_source": "remote", "iob_model": "swan_meal"},
         {"bgEntryType": 1, "cgmCalibration": 1, "bg": 142, "iob": 1.25, "isf": 45, "targetBg": 110,
          "bgSourceType": 1, "selectedIob": 1}),
    Case(20, "bolus_completed", (T1, W1), 1020,
         [(0, "H", 4321), (2, "H", 3), (4, "f", 3.35), (8, "f", 2.4), (12, "f", 2.4)],
         {"bolus_id": 4321, "completion_status": "completed", "iob_units": 3.35,
          "insulin_delivered_units": 2.4, "insulin_requested_units": 2.4},
         {"completionStatus": 3, "bolusId": 4321, "iob": 3.35, "insulinDelivered": 2.4, "insulinRequested": 2.4}),
    Case(21, "bolex_completed", (T2, W2), 1021,
         [(0, "H", 4322), (2, "H", 6), (4, "f", 1.0), (8, "f", 0.75), (12, "f", 1.5)],
         {"bolus_id": 4322, "completion_status": "aborted_by_plgs", "iob_units": 1.0,
          "insulin_delivered_units": 0.75, "insulin_requested_units": 1.5},
         {"bolusId": 4322, "completionStatus": 6, "iob": 1.0, "insulinDelivered": 0.75, "insulinRequested": 1.5}),
    Case(26, "alert_cleared", (T1, W1), 1026,
         # alert id 31 has no name in the alert dictionary: fallback name alert_31
         [(0, "I", 31), (4, "I", 99)],
         {"alert_id": 31, "alert_name": "alert_31", "fault_locator_data": 99},
         {"alertId": 31, "faultLocatorData": 99}),
    Case(28, "alarm_cleared", (T2, W2), 1028,
         [(0, "I", 25)],
         {"alarm_id": 25, "alarm_name": "cartridge_removed_alarm"},
         {"alarmId": 25}),
    Case(33, "cartridge_filled", (T1, W1), 1033,
         [(0, "I", 200), (4, "f", 185.5)],
         {"insulin_volume_units": 200, "v2_volume_units": 185.5},
         {"insulinVolume": 200, "v2Volume": 185.5}),
    Case(36, "usb_connected", (T3, W3), 1036, [(0, "f", 500.0)], {"negotiated_current_ma": 500.0}),
    Case(37, "usb_disconnected", (T3, W3), 1037, [(0, "f", 100.0)], {"negotiated_current_ma": 100.0}),
    Case(48, "carbs_entered", (T1, W1), 1048, [(0, "f", 37.5)], {"carbs_g": 37.5}),
    Case(53, "shelf_mode", (T2, W2), 1053,
         [(0, "I", 3_600_000), (4, "B", 87), (5, "B", 85), (6, "h", -250), (8, "I", 1234), (12, "I", 3987)],
         {"ms_since_reset": 3_600_000, "lipo_ibc_percent": 87, "lipo_abc_percent": 85, "lipo_current_ma": -250,
          "lipo_remaining_capacity_mah": 1234, "lipo_mv": 3987}),
    Case(55, "bolus_activated", (T1, W1), 1055,
         [(1, "B", 0), (2, "H", 4321), (4, "f", 0.6), (8, "f", 4.55)],
         {"iob_model": "mudaliar", "bolus_id": 4321, "iob_units": 0.6, "bolus_size_units": 4.55},
         {"bolusId": 4321, "selectedIob": 0, "spareA3": 0, "iob": 0.6, "bolusSize": 4.55}),
    Case(59, "bolex_activated", (T2, W2), 1059,
         [(1, "B", 1), (2, "H", 4322), (4, "f", 1.2), (8, "f", 2.25)],
         {"iob_model": "swan_meal", "bolus_id": 4322, "iob_units": 1.2, "bolex_size_units": 2.25}),
    Case(60, "data_log_corruption", (T3, W3), 1060,
         [(0, "I", 77), (7, "B", 3)],
         {"block": 77, "reason": 3}),
    Case(61, "cannula_filled", (T1, W1), 1061,
         [(0, "f", 0.3), (4, "I", 3)],
         {"prime_size_units": 0.3, "completion_status": "completed"},
         {"primeSize": 0.3, "completionStatus": 3, "infusionSetType": 0}),
    Case(63, "tubing_filled", (T1, W1), 1063,
         [(0, "f", 12.6), (4, "I", 0), (8, "I", 5120)],
         {"prime_size_units": 12.6, "completion_status": "user_aborted", "position_counts": 5120},
         {"primeSize": 12.6, "completionStatus": 0, "position": 5120}),
    Case(64, "bolus_requested_msg1", (T1, W1), 1064,
         # carb ratio 12500 x 0.001 = 12.5 g/unit
         [(0, "B", 1), (1, "B", 1), (2, "H", 4321), (4, "H", 182), (6, "H", 60), (8, "f", 0.45), (12, "I", 12_500)],
         {"correction_bolus_included": True, "bolus_request_type": "carb", "bolus_id": 4321, "bg_mg_dl": 182,
          "carb_amount_g": 60, "iob_units": 0.45, "carb_ratio_g_per_unit": 12.5},
         {"bolusId": 4321, "bolusType": 1, "correctionBolusIncluded": 1, "carbAmount": 60, "bg": 182,
          "iob": 0.45, "carbRatio": 12_500}),
    Case(65, "bolus_requested_msg2", (T1, W1), 1065,
         [(0, "B", 60), (1, "B", 1), (2, "H", 4321), (6, "H", 120), (8, "H", 110), (10, "H", 45),
          (13, "B", 0), (14, "B", 0), (15, "B", 1)],
         {"standard_percent": 60, "bolus_options": "extended", "bolus_id": 4321, "duration_minutes": 120,
          "target_bg_mg_dl": 110, "isf_mg_dl_per_unit": 45, "iob_model": "mudaliar",
          "declined_correction": False, "user_override": True},
         {"bolusId": 4321, "options": 1, "standardPercent": 60, "duration": 120, "spareB6": 0, "isf": 45,
          "targetBg": 110, "userOverride": 1, "declinedCorrection": 0, "selectedIob": 0}),
    Case(66, "bolus_requested_msg3", (T1, W1), 1066,
         [(2, "H", 4321), (4, "f", 4.8), (8, "f", 1.6), (12, "f", 6.4)],
         {"bolus_id": 4321, "food_bolus_units": 4.8, "correction_bolus_units": 1.6, "total_bolus_units": 6.4},
         {"bolusId": 4321, "spareA2": 0, "foodBolusSize": 4.8, "correctionBolusSize": 1.6, "totalBolusSize": 6.4}),
    Case(81, "daily_basal", (T3, W3), 1081,
         # the last word: LiPo mV u16 @12, charge % u8 @14, final-event-of-day flag u8 @15
         [(0, "f", 18.35), (4, "f", 0.8), (8, "f", 0.25), (12, "H", 3950), (14, "B", 61), (15, "B", 1)],
         {"daily_total_basal_units": 18.35, "last_basal_rate_units_per_hour": 0.8, "iob_units": 0.25,
          "battery_lipo_mv": 3950, "battery_charge_percent": 61, "final_event_of_day": True},
         {"dailyTotalBasal": 18.35, "lastBasalRate": 0.8, "iob": 0.25, "batteryLipoMilliVolts": 3950, "batteryChargePercent": 61, "finalEventForDay": 1}),
    Case(90, "new_day", (T3, W3), 1090,
         [(0, "f", 0.75), (4, "I", 0x8000_0001), (8, "I", 1)],
         {"commanded_basal_rate_units_per_hour": 0.75, "features_bitmask": 2_147_483_649, "feature_bitmask_index": 1}),
    Case(99, "arm_init", (T2, W2), 1099,
         [(0, "I", 7), (4, "I", 0xFFFF), (8, "I", 0xFFFF_FFFF), (12, "I", 90_000)],
         {"version": 7, "config_a_bits": 65_535, "config_b_bits": 4_294_967_295, "num_log_entries": 90_000}),
    Case(140, "plgs_periodic", (T1, W1), 1140,
         # rule state bits 0, 2; status bits 1, 4, 13 = 2 + 16 + 8192 = 8210
         [(0, "I", 510_912_600), (4, "H", 78), (6, "H", 85), (8, "B", 1), (9, "B", 0b101), (10, "B", 1),
          (11, "B", 6), (12, "I", 8210)],
         {"plgs_timestamp_seconds": 510_912_600, "pgv_mg_dl": 78, "fmr_mg_dl": 85, "plgs_state": "on_suspended",
          "plgs_rule_state": ["suspend_rule", "unavailable_rule"], "pgv_valid": True, "fmr_status": "pumping_event",
          "plgs_status": ["suspend_current", "resume_egv_rise", "unavailable_no_current"]}),
    Case(171, "cgm_alert_activated", (T1, W1), 1171,
         [(0, "I", 11), (4, "I", 5), (8, "I", 6), (12, "f", 0.5)],
         {"cgm_alert_id": 11, "cgm_alert_name": "cgm_sensor_fail", "fault_locator_data": 5, "param1": 6,
          "param2": 0.5},
         {"dalertId": 11, "faultLocatorData": 5, "param1": 6, "param2": 0.5}),
    Case(172, "cgm_alert_cleared", (T1, W1), 1172,
         [(0, "I", 40)],
         {"cgm_alert_id": 40, "cgm_alert_name": "pump_bluetooth_error"},
         {"dalertId": 40}),
    Case(191, "version_info", (T2, W2), 1191,
         [(0, "I", 3), (4, "I", 17), (8, "I", 34), (14, "H", 0xBEEF)],
         {"version": 3, "config_a_bits": 17, "config_b_bits": 34, "arm_crc": 48_879}),
    Case(203, "update_status", (T2, W2), 1203,
         [(0, "H", 1), (2, "H", 2), (4, "H", 3), (6, "H", 4), (9, "B", 1), (10, "H", 5), (12, "I", 1_008_400)],
         {"metadata_and_version_status": 1, "sw_update_status": 2, "file_download_and_sideload_status": 3,
          "full_download_and_crc_status": 4, "update_successful": True, "external_flash_status": 5,
          "sw_part_number": 1_008_400}),
    Case(212, "cgm_start_session_gx", (T1, W1), 1212,
         [(0, "I", 864_000), (4, "I", 863_000), (15, "B", 10)],
         {"transmitter_time_seconds": 864_000, "session_start_time_seconds": 863_000, "session_duration_days": 10},
         {"currentTransmitterTime": 864000, "sessionStartTime": 863000, "sessionDuration": 10}),
    Case(213, "cgm_join_session_gx", (T1, W1), 1213,
         [(0, "I", 864_500), (4, "I", 863_000), (14, "B", 8), (15, "B", 10)],
         {"transmitter_time_seconds": 864_500, "session_start_time_seconds": 863_000,
          "session_join_reason": "new_session_started_success", "session_duration_days": 10},
         {"currentTransmitterTime": 864500, "sessionStartTime": 863000, "sessionJoinReason": 8, "sessionDuration": 10}),
    Case(214, "cgm_stop_session_gx", (T1, W1), 1214,
         [(0, "I", 1_727_100), (4, "I", 863_000), (8, "I", 1_727_000), (14, "B", 5), (15, "B", 10)],
         {"transmitter_time_seconds": 1_727_100, "session_start_time_seconds": 863_000,
          "session_stop_time_seconds": 1_727_000, "session_stop_reason": "session_stop_success",
          "session_duration_days": 10},
         {"currentTransmitterTime": 1727100, "sessionStartTime": 863000, "sessionStopTime": 1727000, "sessionStopReason": 5, "sessionDuration": 10}),
    Case(229, "aa_user_mode_change", (T1, W1), 1229,
         # sleep schedule bits 1 and 3
         [(1, "B", 3), (2, "B", 1), (3, "B", 2), (6, "B", 0b1010), (7, "B", 1), (8, "H", 60), (10, "B", 1),
          (11, "B", 0), (15, "B", 1)],
         {"requested_action": "start_exercise", "previous_user_mode": "sleeping", "current_user_mode": "exercising",
          "active_sleep_schedule": ["schedule_2", "schedule_4"], "sleep_started_by_gui": True,
          "exercise_time_minutes": 60, "exercise_choice": "timed", "exercise_stopped_by_timer": False,
          "eating_soon_stopped_by_timer": True},
         {"currentUserMode": 2, "previousUserMode": 1, "requestedAction": 3, "spareA3": 0, "sleepStartedByGui": 1,
          "activeSleepSchedule": [1, 3], "spareB6": 0, "exerciseStoppedByTimer": 0, "exerciseChoice": 1,
          "exerciseTime": 60, "eatingSoonStoppedByTimer": 1}),
    Case(230, "aa_pcm_change", (T1, W1), 1230,
         [(0, "B", 1), (1, "B", 0), (2, "B", 1), (3, "B", 3), (5, "B", 1), (6, "B", 1), (7, "B", 0)],
         {"calculation_available": True, "pump_suspended": False, "previous_pump_control": "open_loop",
          "current_pump_control": "closed_loop", "sufficient_closed_loop_params": True,
          "closed_loop_preferred": True, "cgm_available": False}),
    Case(256, "cgm_data_gxb", (T1, W1), 1256,
         # rate -12 tenths = -1.2 mg/dL/min; EGV info bits 1, 5, 6, 7, 8 = 2 + 32 + 64 + 128 + 256 = 482
         [(0, "b", -12), (1, "B", 0b10), (2, "H", 1), (4, "H", 400), (6, "b", -85), (7, "B", 6),
          (8, "I", 510_900_000), (13, "B", 5), (14, "H", 482)],
         {"rate_mg_dl_per_min": -1.2, "cgm_data_type": ["backfill"], "glucose_value_status": "high",
          "glucose_display_value_mg_dl": 400, "rssi_dbm": -85, "algorithm_state_code": 6,
          "egv_timestamp_seconds": 510_900_000, "interval": 5,
          "egv_info": ["backfill", "valid_timestamp", "valid_egv", "valid_algorithm_state", "added_to_cgm_array"]},
         {"rate": -12, "cgmDataType": [1], "glucoseValueStatus": 1, "currentGlucoseDisplayValue": 400, "rssi": -85,
          "algorithmState": 6, "egvTimeStamp": 510_900_000, "interval": 5, "egvInfoBitmask": [1, 5, 6, 7, 8]}),
    Case(279, "basal_delivery", (T1, W1), 1279,
         # 850 mU/h = 0.85 U/h, 1250 mU/h = 1.25 U/h
         [(2, "H", 3), (4, "H", 850), (6, "H", 1250), (8, "H", 0), (10, "H", 1250)],
         {"commanded_rate_source": "algorithm", "profile_rate_units_per_hour": 0.85,
          "commanded_rate_units_per_hour": 1.25, "temp_rate_units_per_hour": 0.0,
          "algorithm_rate_units_per_hour": 1.25},
         {"commandedRateSource": 3, "reservedA2": 3, "spareA3": 0, "commandedRate": 1250, "profileBasalRate": 850,
          "algorithmRate": 1250, "tempRate": 0}),
    Case(280, "bolus_delivery", (T1, W1), 1280,
         # bolus type bits 0, 3, 4 = 1 + 8 + 16 = 25; milliunits / 1000
         [(0, "B", 25), (1, "B", 0), (2, "H", 4321), (4, "H", 4800), (6, "B", 47), (7, "B", 1), (8, "H", 1600),
          (10, "H", 2000), (12, "H", 6400), (14, "H", 120)],
         {"bolus_delivery_type": ["now", "correction", "carb"], "bolus_delivery_status": "completed",
          "bolus_id": 4321, "requested_now_units": 4.8, "remote_id": 47, "bolus_source": "pump_gui",
          "correction_units": 1.6, "requested_later_units": 2.0, "delivered_total_units": 6.4,
          "extended_duration_minutes": 120},
         {"bolusId": 4321, "bolusDeliveryStatus": 0, "bolusType": [0, 3, 4], "bolusSource": 1, "remoteId": 47,
          "requestedNow": 4800, "requestedLater": 2000, "correction": 1600, "extendedDurationRequested": 120,
          "deliveredTotal": 6400}),
    Case(307, "versions_a", (T2, W2), 1307,
         [(0, "I", 1_008_400), (4, "I", 7_060_200), (8, "I", 1_009_300), (12, "I", 20_100)],
         {"arm_part_number": 1_008_400, "arm_sw_version": 7_060_200, "ble_part_number": 1_009_300,
          "ble_sw_version": 20_100}),
    Case(313, "aa_daily_status", (T3, W3), 1313,
         [(1, "B", 3), (2, "B", 1), (3, "B", 3)],
         {"cgm_sensor_type": "dexcom_g7", "user_mode": "sleeping", "pump_control_state": "closed_loop"}),
    Case(369, "cgm_alert_activated_dex", (T1, W1), 1369,
         [(2, "B", 3), (3, "B", 13), (4, "I", 1), (8, "I", 2), (12, "f", 0.25)],
         {"sensor_type": "dexcom_g7", "cgm_alert_id": 13, "cgm_alert_name": "cgm_sensor_expired",
          "fault_locator_data": 1, "param1": 2, "param2": 0.25},
         {"sensorType": 3, "dalertId": 13, "faultLocatorData": 1, "param1": 2, "param2": 0.25}),
    Case(370, "cgm_alert_cleared_dex", (T1, W1), 1370,
         [(2, "B", 1), (3, "B", 14)],
         {"sensor_type": "dexcom_g6", "cgm_alert_id": 14, "cgm_alert_name": "cgm_out_of_range"},
         {"sensorType": 1, "dalertId": 14}),
    Case(371, "cgm_alert_ack_dex", (T1, W1), 1371,
         [(2, "B", 3), (3, "B", 20), (4, "I", 1)],
         {"sensor_type": "dexcom_g7", "cgm_alert_id": 20, "cgm_alert_name": "cgm_transmitter_error",
          "ack_source": "software"},
         {"sensorType": 3, "dalertId": 20, "ackSource": 1}),
    Case(372, "cgm_data_fsl2", (T1, W1), 1372,
         # rate -25 tenths = -2.5; data type bits 5, 6 = 96; EGV info bits 5, 9, 10 = 32 + 512 + 1024 = 1568
         [(0, "h", -25), (2, "B", 96), (3, "B", 2), (4, "H", 40), (6, "b", -60), (7, "B", 100),
          (8, "I", 510_912_880), (13, "B", 1), (14, "H", 1568)],
         {"rate_mg_dl_per_min": -2.5, "cgm_data_type": ["one_minute_reading", "real_time"],
          "glucose_value_status": "low", "glucose_display_value_mg_dl": 40, "rssi_dbm": -60, "algorithm_state": "ok",
          "egv_timestamp_seconds": 510_912_880, "interval": 1,
          "egv_info": ["valid_timestamp", "one_minute_reading", "nfc_real_time"]},
         {"rate": -25, "cgmDataType": [5, 6], "glucoseValueStatus": 2, "currentGlucoseDisplayValue": 40, "rssi": -60,
          "algorithmState": 100, "egvTimeStamp": 510_912_880, "interval": 1, "egvInfoBitmask": [5, 9, 10]}),
    Case(394, "cgm_join_session_g7", (T1, W1), 1394,
         [(0, "I", 1_000_000), (4, "I", 3_000_000_000)],
         {"cgm_timestamp_seconds": 1_000_000, "session_signature": 3_000_000_000},
         {"cgmTimestamp": 1000000, "sessionSignature": 3000000000}),
    Case(399, "cgm_data_g7", (T1, W1), 4_000_000_399,
         # rate 15 tenths = 1.5; EGV info bits 0, 5, 6, 7, 8 = 1 + 32 + 64 + 128 + 256 = 481
         [(0, "b", 15), (1, "B", 1), (2, "H", 0), (4, "H", 123), (6, "b", -70), (7, "B", 32),
          (8, "I", 510_912_900), (13, "B", 0), (14, "H", 481)],
         {"rate_mg_dl_per_min": 1.5, "cgm_data_type": ["five_minute_reading"], "glucose_value_status": "ok",
          "glucose_display_value_mg_dl": 123, "rssi_dbm": -70, "algorithm_state": "valid_egv",
          "egv_timestamp_seconds": 510_912_900, "interval": 0,
          "egv_info": ["five_minute_reading", "valid_timestamp", "valid_egv", "valid_algorithm_state",
                       "added_to_cgm_array"]},
         {"glucoseValueStatus": 0, "cgmDataType": [0], "rate": 15, "algorithmState": 32, "rssi": -70,
          "currentGlucoseDisplayValue": 123, "egvTimeStamp": 510_912_900, "egvInfoBitmask": [0, 5, 6, 7, 8],
          "interval": 0, "reservedD15": 0}),
    Case(404, "cgm_start_session_fsl2", (T2, W2), 1404,
         [(0, "I", 510_000_000), (7, "B", 14)],
         {"session_start_time_seconds": 510_000_000, "session_duration_days": 14},
         {"sessionStartTime": 510000000, "sessionDuration": 14}),
    Case(405, "cgm_stop_session_fsl2", (T2, W2), 1405,
         [(0, "I", 510_000_000), (4, "I", 511_209_600), (10, "B", 2), (11, "B", 14)],
         {"session_start_time_seconds": 510_000_000, "session_stop_time_seconds": 511_209_600,
          "session_stop_reason_code": 2, "session_duration_days": 14},
         {"sessionStartTime": 510000000, "sessionStopTime": 511209600, "sessionStopReason": 2, "sessionDuration": 14}),
    Case(406, "cgm_join_session_fsl2", (T2, W2), 1406,
         [(0, "I", 510_000_000), (4, "I", 510_100_000), (10, "B", 1), (11, "B", 14)],
         {"session_start_time_seconds": 510_000_000, "session_join_time_seconds": 510_100_000,
          "session_join_reason_code": 1, "session_duration_days": 14},
         {"sessionStartTime": 510000000, "sessionJoinTime": 510100000, "sessionJoinReason": 1, "sessionDuration": 14}),
    Case(447, "cgm_stop_session_g7", (T1, W1), 1447,
         [(0, "I", 864_100), (4, "I", 863_000), (8, "I", 864_000), (13, "B", 4), (14, "B", 7), (15, "B", 10)],
         {"transmitter_time_seconds": 864_100, "session_start_time_seconds": 863_000,
          "session_stop_time_seconds": 864_000, "stop_session_code": 4, "session_stop_reason_code": 7,
          "session_duration_days": 10},
         {"currentTransmitterTime": 864100, "sessionStartTime": 863000, "sessionStopTime": 864000, "stopSessionCode": 4, "sessionStopReason": 7, "sessionDuration": 10}),
    Case(460, "cgm_alert_activated_fsl2", (T3, W3), 1460,
         [(2, "B", 2), (3, "B", 26), (4, "I", 8), (8, "I", 9), (12, "f", 1.75)],
         {"sensor_type": "libre2", "cgm_alert_id": 26, "cgm_alert_name": "cgm_temperature",
          "fault_locator_data": 8, "param1": 9, "param2": 1.75},
         {"sensorType": 2, "dalertId": 26, "faultLocatorData": 8, "param1": 9, "param2": 1.75}),
    Case(461, "cgm_alert_cleared_fsl2", (T3, W3), 1461,
         # CGM alert id 99 has no name: fallback cgm_alert_99
         [(2, "B", 0), (3, "B", 99)],
         {"sensor_type": "invalid", "cgm_alert_id": 99, "cgm_alert_name": "cgm_alert_99"},
         {"sensorType": 0, "dalertId": 99}),
    Case(477, "cgm_join_session_fsl3", (T3, W3), 1477,
         [(0, "I", 511_000_000), (4, "I", 511_000_600), (8, "B", 15), (9, "B", 0)],
         {"session_start_time_seconds": 511_000_000, "session_join_time_seconds": 511_000_600,
          "session_duration_days": 15, "session_join_reason_code": 0},
         {"sessionStartTime": 511000000, "sessionJoinTime": 511000600, "sessionDuration": 15, "sessionJoinReason": 0}),
    Case(480, "cgm_data_fsl3", (T3, W3), 1480,
         # rate 7 tenths = 0.7; data type bits 0, 5 = 33; EGV info bits 0, 6, 11, 13 = 1 + 64 + 2048 + 8192
         [(0, "h", 7), (2, "B", 33), (3, "B", 0), (4, "H", 250), (6, "b", -55), (7, "B", 100),
          (8, "I", 510_912_870), (13, "B", 1), (14, "H", 10_305)],
         {"rate_mg_dl_per_min": 0.7, "cgm_data_type": ["five_minute_reading", "one_minute_reading"],
          "glucose_value_status": "ok", "glucose_display_value_mg_dl": 250, "rssi_dbm": -55, "algorithm_state": "ok",
          "egv_timestamp_seconds": 510_912_870, "interval": 1,
          "egv_info": ["five_minute_reading", "valid_egv", "sensor_type_bit_0", "sensor_type_bit_2"]},
         {"rate": 7, "cgmDataType": [0, 5], "glucoseValueStatus": 0, "currentGlucoseDisplayValue": 250, "rssi": -55,
          "algorithmState": 100, "egvTimeStamp": 510_912_870, "interval": 1, "egvInfoBitmask": [0, 6, 11, 13]}),
    Case(486, "cgm_stop_session_fsl3", (T3, W3), 1486,
         [(0, "I", 511_000_000), (4, "I", 512_296_000), (8, "B", 15), (9, "B", 3)],
         {"session_start_time_seconds": 511_000_000, "session_stop_time_seconds": 512_296_000,
          "session_duration_days": 15, "session_stop_reason_code": 3},
         {"sessionStartTime": 511000000, "sessionStopTime": 512296000, "sessionDuration": 15, "sessionStopReason": 3}),
    # More value names of the CGM records.
    Case(399, "cgm_data_g7", (T1, W1), 2399,
         # status 6 = do not show; data type bit 4 = none; EGV info bit 4 = NO_EGV message; display
         # value 0 is "no value" (HIGH/LOW and not-shown readings carry 0): NULL
         [(0, "b", 0), (1, "B", 0b1_0000), (2, "H", 6), (4, "H", 0), (6, "b", -90), (7, "B", 34),
          (8, "I", 510_912_000), (13, "B", 0), (14, "H", 0b1_0000)],
         {"rate_mg_dl_per_min": 0.0, "cgm_data_type": ["none"], "glucose_value_status": "unavailable",
          "glucose_display_value_mg_dl": None, "rssi_dbm": -90, "algorithm_state": "stopped_end_of_session",
          "egv_timestamp_seconds": 510_912_000, "interval": 0, "egv_info": ["no_egv"]},
         {"rate": 0, "cgmDataType": [4], "glucoseValueStatus": 6, "currentGlucoseDisplayValue": 0, "rssi": -90,
          "algorithmState": 34, "egvTimeStamp": 510_912_000, "interval": 0, "egvInfoBitmask": [4]}),
    Case(256, "cgm_data_gxb", (T2, W2), 2256,
         # rate -128 is Dexcom's "no rate" (NULL); -127 tenths would be -12.7; data type bit 3 =
         # calibration; EGV info bits 2, 3 = 12
         [(0, "b", -128), (1, "B", 0b1000), (2, "H", 2), (4, "H", 40), (6, "b", -100), (7, "B", 7),
          (8, "I", 383_831_700), (13, "B", 0), (14, "H", 12)],
         {"rate_mg_dl_per_min": None, "cgm_data_type": ["calibration"], "glucose_value_status": "low",
          "glucose_display_value_mg_dl": 40, "rssi_dbm": -100, "algorithm_state_code": 7,
          "egv_timestamp_seconds": 383_831_700, "interval": 0, "egv_info": ["immediate_match", "calibration_result"]}),
    Case(11, "pumping_suspended", (T2, W2), 2011,
         [(0, "I", 1), (4, "B", 0), (5, "B", 0), (6, "H", 0)],
         {"pre_suspend_state": 1, "rpa_timeout_minutes": 0, "suspend_reason": "user", "insulin_amount_units": 0},
         {"preSuspendState": 1, "suspendReason": 0, "insulinAmount": 0},
         json_missing=("rpa_timeout_minutes",)),
]

LAYOUT_IDS = [3, 4, 5, 6, 11, 12, 13, 14, 16, 20, 21, 26, 28, 33, 36, 37, 48, 53, 55, 59, 60, 61, 63, 64, 65, 66, 81,
              90, 99, 140, 171, 172, 191, 203, 212, 213, 214, 229, 230, 256, 279, 280, 307, 313, 369, 370, 371, 372,
              394, 399, 404, 405, 406, 447, 460, 461, 477, 480, 486]
# fmt: on
JSON_CASES = [c for c in CASES if c.props is not None]


def case_id(c: Case) -> str:
    return f"{c.event_id}-{c.event_name}-seq{c.seq}"


def binary_of(cases) -> bytes:
    return b"".join(record(c.event_id, c.at[0], c.seq, c.payload) for c in cases)


def pumplogs_of(cases) -> list[dict]:
    return [pumplogs_event(c.event_id, c.seq, c.at[1], c.props) for c in cases]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("decode_values")


@pytest.fixture(scope="module")
def binary_run(workdir):
    # Written in reverse order: the output must still come sorted by sequence number.
    return run(workdir, "all_records.bin", binary_of(reversed(CASES)))


@pytest.fixture(scope="module")
def pumplogs_run(workdir):
    body = {"events": pumplogs_of(reversed(JSON_CASES)), "clockChanges": []}
    return run(workdir, "all_events.json", json.dumps(body, indent=1))


# --- 1. every documented record type from 26-byte binary records --------------------------------------------------


def test_cases_cover_every_documented_record_type():
    # Every record type the decoder knows has a case with hand-computed values here (a type added to
    # the layout table without one fails this test), and the cases are the documented types.
    from tandem_export.layouts import EVENTS_BY_ID

    assert sorted({c.event_id for c in CASES}) == LAYOUT_IDS == sorted(EVENTS_BY_ID)
    assert len({c.seq for c in CASES}) == len(CASES)


def test_binary_file_stats(binary_run):
    stats, rows = binary_run
    assert stats.form == normalize.FORM_RECORDS
    assert stats.events == len(CASES) == len(rows)
    assert stats.trailing_bytes == 0
    assert stats.unknown_ids == {}
    assert [r["seq_num"] for r in rows] == sorted(c.seq for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_binary_record_decodes_to_hand_computed_values(binary_run, case):
    _, rows = binary_run
    row = by_seq(rows)[case.seq]
    assert row["pump_serial"] == SERIAL
    assert row["sequence_group"] is None
    assert row["event_id"] == case.event_id
    assert row["event_name"] == case.event_name
    assert row["pump_time"] == case.at[1]
    assert row["origin"] == "legacy-binary"
    assert row["properties"] is None
    assert row["record"] == record(case.event_id, case.at[0], case.seq, case.payload)
    values = decoded(row)
    missing = set(case.expected) - set(values)
    assert not missing, f"no such columns: {missing}"
    assert {k: values[k] for k in case.expected} == case.expected
    # Every column the record does not have stays NULL (a field decoded at a wrong place would show here).
    assert {k: v for k, v in values.items() if k not in case.expected and v is not None} == {}


def test_float32_fields_are_the_shortest_decimal_not_the_widened_double(binary_run):
    rows = by_seq(binary_run[1])
    # 0.85 as float32 widens to 0.8500000238418579; 3.35 to 3.3499999046325684.
    assert rows[1003]["commanded_basal_rate_units_per_hour"] == 0.85
    assert rows[1003]["commanded_basal_rate_units_per_hour"] != struct.unpack(">f", struct.pack(">f", 0.85))[0]
    assert rows[1020]["iob_units"] == 3.35
    assert rows[1081]["daily_total_basal_units"] == 18.35


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, datetime(2008, 1, 1, 0, 0, 0)),  # clock restarted after a battery failure
        (86_399, datetime(2008, 1, 1, 23, 59, 59)),
        (5_184_000, datetime(2008, 3, 1, 0, 0, 0)),  # (31 + 29) days * 86400: 2008 is a leap year
        (T2, W2),
        (T1, W1),
        (T3, W3),
        # 2**32 - 1 s = 49710 days 6:28:15; 2008-01-01 + 49710 days = 2144-02-07
        (4_294_967_295, datetime(2144, 2, 7, 6, 28, 15)),
    ],
)
def test_pump_time_is_the_wall_clock_from_the_2008_epoch(tmp_path, seconds, expected):
    # Two ordinary records beside it: a file of only far-future times is refused as not pump history.
    ordinary = record(48, T1, 78, [(0, "f", 1.0)]) + record(48, T1, 79, [(0, "f", 1.0)])
    _, rows = run(tmp_path, "clock.bin", record(48, seconds, 77, [(0, "f", 1.0)]) + ordinary)
    assert rows[0]["seq_num"] == 77
    assert rows[0]["pump_time"] == expected
    assert rows[0]["pump_time"].tzinfo is None


def test_source_nibble_is_not_part_of_the_event_id(tmp_path):
    payload = [(0, "b", 15), (4, "H", 123), (7, "B", 32)]
    stats, rows = run(tmp_path, "nibble.bin", record(399, T1, 5, payload, nibble=0xA) + record(279, T1, 6, nibble=0x3))
    assert stats.unknown_ids == {}
    assert [(r["event_id"], r["event_name"]) for r in rows] == [(399, "cgm_data_g7"), (279, "basal_delivery")]
    assert rows[0]["glucose_display_value_mg_dl"] == 123
    assert rows[0]["algorithm_state"] == "valid_egv"
    assert rows[0]["rate_mg_dl_per_min"] == 1.5


# --- 2. the pump-logs JSON form decodes to the same values ------------------------------------------------------


def test_pumplogs_cases_cover_the_required_records():
    # Every record type a derived table reads (the event ids its SQL names) has a pump-logs case.
    import re
    from importlib import resources

    sql = "".join(p.read_text() for p in resources.files("tandem_export").joinpath("sql").iterdir())
    read = {
        int(n)
        for group in re.findall(r"event_id\s*(?:=|IN\s*\(|WHEN)\s*([\d, ]+)", sql)
        for n in re.findall(r"\d+", group)
    }
    read |= {int(n) for n in re.findall(r"WHEN (\d+) THEN", sql)}
    assert {399, 279, 280, 20, 64} <= read  # the parse found the main tables' records
    assert read <= {c.event_id for c in JSON_CASES}, sorted(read - {c.event_id for c in JSON_CASES})


def test_pumplogs_file_stats(pumplogs_run):
    stats, rows = pumplogs_run
    assert stats.form == normalize.FORM_PUMP_LOGS
    assert stats.events == len(JSON_CASES) == len(rows)
    assert stats.unknown_ids == {}
    assert [r["seq_num"] for r in rows] == sorted(c.seq for c in JSON_CASES)


@pytest.mark.parametrize("case", JSON_CASES, ids=case_id)
def test_pumplogs_event_decodes_to_hand_computed_values(pumplogs_run, case):
    _, rows = pumplogs_run
    row = by_seq(rows)[case.seq]
    assert row["pump_serial"] == SERIAL
    assert row["sequence_group"] == SEQUENCE_GROUP
    assert row["event_id"] == case.event_id
    assert row["event_name"] == case.event_name
    assert row["pump_time"] == case.at[1]
    assert row["origin"] == "pump-logs"
    assert row["record"] is None
    assert json.loads(row["properties"]) == case.props  # as received, unknown keys included
    expected = {**case.expected, **dict.fromkeys(case.json_missing)}
    values = decoded(row)
    assert {k: values[k] for k in expected} == expected
    assert {k: v for k, v in values.items() if k not in expected and v is not None} == {}


@pytest.mark.parametrize("case", JSON_CASES, ids=case_id)
def test_pumplogs_and_binary_forms_agree(binary_run, pumplogs_run, case):
    from_binary = decoded(by_seq(binary_run[1])[case.seq])
    from_json = decoded(by_seq(pumplogs_run[1])[case.seq])
    for column in case.json_missing:
        from_binary.pop(column)
        from_json.pop(column)
    assert from_json == from_binary
    for column in ("pump_serial", "seq_num", "event_id", "event_name", "pump_time"):
        assert by_seq(pumplogs_run[1])[case.seq][column] == by_seq(binary_run[1])[case.seq][column]


def test_pumplogs_pump_time_is_pump_date_time_not_estimated(tmp_path):
    event = pumplogs_event(279, 9, datetime(2024, 3, 10, 8, 15, 30), {"commandedRateSource": 1, "commandedRate": 800})
    event["estimatedDateTime"] = "2024-03-10T13:15:30Z"
    _, rows = run(tmp_path, "times.json", json.dumps({"events": [event], "clockChanges": []}))
    assert rows[0]["pump_time"] == datetime(2024, 3, 10, 8, 15, 30)
    assert rows[0]["commanded_rate_units_per_hour"] == 0.8
    assert rows[0]["commanded_rate_source"] == "profile"


def test_pumplogs_missing_fields_are_null_and_the_event_is_kept(tmp_path):
    events = [
        pumplogs_event(399, 1, W1, {"currentGlucoseDisplayValue": 187, "futureField": "x"}),
        pumplogs_event(279, 2, W1, {}),
        pumplogs_event(279, 3, W1, None),  # eventProperties must be an object: left out and counted
    ]
    stats, rows = run(tmp_path, "sparse.json", json.dumps({"events": events, "clockChanges": []}))
    assert stats.dropped_without_identity == 1
    assert stats.left_out == {"eventProperties that are not an object": 1}
    first, second = rows
    assert first["event_name"] == "cgm_data_g7"
    assert first["glucose_display_value_mg_dl"] == 187
    assert json.loads(first["properties"]) == {"currentGlucoseDisplayValue": 187, "futureField": "x"}
    assert {k: v for k, v in decoded(first).items() if v is not None} == {"glucose_display_value_mg_dl": 187}
    assert second["event_name"] == "basal_delivery"
    assert {k: v for k, v in decoded(second).items() if v is not None} == {}


def test_pumplogs_alternative_id_spelling(tmp_path):
    # The layout name BolusID in lowerCamelCase is bolusID; captured responses spell it bolusId.
    events = [
        pumplogs_event(20, 1, W1, {"bolusID": 17, "completionStatus": 3}),
        pumplogs_event(20, 2, W1, {"bolusId": 18, "completionStatus": 0}),
    ]
    _, rows = run(tmp_path, "ids.json", json.dumps({"events": events, "clockChanges": []}))
    assert [(r["bolus_id"], r["completion_status"]) for r in rows] == [(17, "completed"), (18, "user_aborted")]


@pytest.mark.parametrize(
    ("event_id", "props", "column", "expected"),
    [
        (
            11,
            {"preSuspendState": 3, "rpaTimeout": 30, "suspendReason": 6, "insulinAmount": 150},
            "rpa_timeout_minutes",
            30,
        ),
        (140, {"pgvValid": 1, "hoMinState": 1}, "pgv_valid", True),
        (140, {"fmrStatus": 6, "hoMinState": 1}, "fmr_status", "pumping_event"),
    ],
    ids=["rpaTimeout", "pgvValid", "fmrStatus"],
)
def test_pumplogs_leading_acronym_keys(tmp_path, event_id, props, column, expected):
    _, rows = run(tmp_path, "acronym.json", json.dumps({"events": [pumplogs_event(event_id, 1, W1, props)]}))
    assert rows[0][column] == expected


def test_pumplogs_clock_changes_are_events(tmp_path):
    body = {
        "events": [
            pumplogs_event(279, 500, W1, {"commandedRateSource": 1, "profileBasalRate": 800, "commandedRate": 800})
        ],
        "clockChanges": [
            pumplogs_event(13, 498, W3, {"timePrior": 29_730_000, "timeAfter": 33_330_000, "rawRtcTime": 123_456_789}),
            pumplogs_event(14, 499, W3, {"datePrior": 0, "dateAfter": 5913, "rawRtcTime": 987_654}),
        ],
    }
    stats, rows = run(tmp_path, "clock.json", json.dumps(body))
    assert stats.events == 3
    rows = by_seq(rows)
    assert rows[498]["event_name"] == "time_changed"
    assert (rows[498]["time_prior_ms"], rows[498]["time_after_ms"], rows[498]["raw_rtc_time_ms"]) == (
        29_730_000,
        33_330_000,
        123_456_789,
    )
    assert rows[499]["event_name"] == "date_changed"
    assert (rows[499]["date_prior_days"], rows[499]["date_after_days"]) == (0, 5913)
    assert rows[500]["profile_rate_units_per_hour"] == 0.8


# --- 3. form detection ------------------------------------------------------------------------------------------


def b64_wrapped(buf: bytes) -> str:
    return base64.encodebytes(buf).decode("ascii")  # MIME style: 76-character lines


@pytest.mark.parametrize(
    ("name", "to_text", "form"),
    [
        ("records.b64", lambda buf: base64.b64encode(buf).decode("ascii"), normalize.FORM_BASE64),
        ("records_wrapped.txt", b64_wrapped, normalize.FORM_BASE64),
        (
            "records_urlsafe.txt",
            lambda buf: base64.urlsafe_b64encode(buf).decode("ascii") + "\n",
            normalize.FORM_BASE64,
        ),
        ("legacy.json", lambda buf: json.dumps(base64.b64encode(buf).decode("ascii")), normalize.FORM_LEGACY_JSON),
    ],
)
def test_base64_forms_decode_like_the_binary_records(tmp_path, binary_run, name, to_text, form):
    buf = binary_of(CASES)
    assert b"+" in base64.b64encode(buf) or b"/" in base64.b64encode(buf)  # so the url-safe variant differs
    stats, rows = run(tmp_path, name, to_text(buf))
    assert stats.form == form
    assert stats.events == len(CASES)
    assert stats.trailing_bytes == 0
    assert rows == binary_run[1]


def test_bare_event_list_decodes_like_the_pumplogs_object(tmp_path, pumplogs_run):
    stats, rows = run(tmp_path, "list.json", json.dumps(pumplogs_of(reversed(JSON_CASES))))
    assert stats.form == normalize.FORM_EVENT_LIST
    assert stats.events == len(JSON_CASES)
    assert rows == pumplogs_run[1]


@pytest.mark.parametrize("encode", [bytes, lambda b: base64.b64encode(b).decode("ascii")], ids=["binary", "base64"])
def test_trailing_bytes_after_the_last_whole_record(tmp_path, encode):
    buf = (
        record(279, T1, 10, [(2, "H", 1), (4, "H", 900), (6, "H", 900)])
        + record(399, T1, 11, [(0, "b", -3), (4, "H", 101), (7, "B", 32)])
        + bytes([1, 143, 30, 115, 233, 162, 0])  # 7 bytes of a cut-off record
    )
    stats, rows = run(tmp_path, "cut.dat", encode(buf))
    assert stats.events == 2
    assert stats.trailing_bytes == 7
    assert [r["seq_num"] for r in rows] == [10, 11]
    assert rows[0]["profile_rate_units_per_hour"] == 0.9
    assert rows[0]["commanded_rate_source"] == "profile"
    assert rows[1]["glucose_display_value_mg_dl"] == 101
    assert rows[1]["rate_mg_dl_per_min"] == -0.3
    assert all(len(r["record"]) == 26 for r in rows)


def test_unknown_binary_event_ids_are_kept(tmp_path):
    unknown = record(999, T1, 21, [(0, "I", 0x01020304)])
    buf = record(999, T1, 20) + unknown + record(4095, T2, 22, nibble=0xF) + record(48, T1, 23, [(0, "f", 15.0)])
    # Known records beside them: a file that is mostly unknown ids is refused as not pump history.
    buf += b"".join(record(48, T1, seq, [(0, "f", 1.0)]) for seq in (24, 25, 26))
    stats, rows = run(tmp_path, "unknown.bin", buf)
    assert stats.events == 7
    assert stats.unknown_ids == {999: 2, 4095: 1}
    assert [(r["event_id"], r["event_name"]) for r in rows] == [
        (999, "UNKNOWN_999"),
        (999, "UNKNOWN_999"),
        (4095, "UNKNOWN_4095"),
        (48, "carbs_entered"),
    ] + [(48, "carbs_entered")] * 3
    assert rows[1]["record"] == unknown
    assert rows[2]["pump_time"] == W2
    assert all(v is None for r in rows[:3] for v in decoded(r).values())
    assert rows[3]["carbs_g"] == 15.0


def test_unknown_pumplogs_event_code_is_kept(tmp_path):
    events = [pumplogs_event(1234, 30, W1, {"mystery": 7}), pumplogs_event(48, 31, W1, {"carbs": 22.5})]
    stats, rows = run(tmp_path, "unknown.json", json.dumps({"events": events, "clockChanges": []}))
    assert stats.unknown_ids == {1234: 1}
    assert [(r["event_id"], r["event_name"]) for r in rows] == [(1234, "UNKNOWN_1234"), (48, "carbs_entered")]
    assert json.loads(rows[0]["properties"]) == {"mystery": 7}
    assert rows[1]["carbs_g"] == 22.5


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("login_page.json", "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Tandem</body></html>\n"),
        ("error_page.bin", "\n   <html><body><h1>502 Bad Gateway</h1></body></html>"),
        ("empty.json", b""),
        ("empty.bin", b""),
        ("notes.txt", "Meeting notes: call the clinic, order sensors!\n"),
        ("random.txt", "lorem ipsum? dolor sit amet; 42 % 7\n"),
        ("broken.json", '{"events": [{"eventCode": 399, '),
        ("bad_legacy.json", '"this is not base64 @@@"'),
        ("number.json", "42"),
    ],
)
def test_unreadable_files_raise_input_error_naming_the_file(tmp_path, name, content):
    with pytest.raises(InputError) as err:
        run(tmp_path, name, content)
    assert name in str(err.value)
    assert not (tmp_path / (name + ".parquet")).exists()


@pytest.mark.parametrize(
    "content",
    [
        "pump data todo list\n",  # 16 letters -> 12 bytes: 0 events, 12 trailing bytes
        "the quick brown fox jumps over the lazy dog again and again\n",  # 48 letters -> 1 garbage record
    ],
    ids=["zero-events", "garbage-event"],
)
def test_plain_word_text_raises_input_error(tmp_path, content):
    with pytest.raises(InputError) as err:
        run(tmp_path, "words.txt", content)
    assert "words.txt" in str(err.value)


def test_whitespace_only_file_raises_input_error(tmp_path):
    with pytest.raises(InputError) as err:
        run(tmp_path, "blank.json", " \n\n")
    assert "blank.json" in str(err.value)


def test_json_object_without_events_raises_input_error(tmp_path):
    with pytest.raises(InputError) as err:
        run(tmp_path, "error_body.json", json.dumps({"message": "Check input parameters."}))
    assert "error_body.json" in str(err.value)
