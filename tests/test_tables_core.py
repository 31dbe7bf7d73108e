"""The core tables (cgm_readings, basal_deliveries, bolus_deliveries) and the edges of daily_summary,
from hand-built records, against rows written out by hand.

Records are packed with ``struct`` from the record layouts (see test_tables_more, whose helpers
normalise them, place them in time and build the tables).  The pump clock shows Europe/Berlin and
never changes unless a test logs a time change (13), so in January every instant is the pump time
less one hour.  A record logged more than a day ahead of the records on both sides is an outlier of
the time model (not reliable): every table leaves it out, and each test here logs one.  Expected
values are literals worked out by hand from the values packed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import pyarrow.parquet as pq
import pytest
from tandem_export import tables
from tandem_export.normalize import normalize_file
from test_tables_more import BASAL, SERIAL, build, rec, secs, utc, wall

pytestmark = pytest.mark.fast  # the fast tier of value tests (make test-fast)

OTHER = "90567890"  # a second pump

# --- cgm_readings --------------------------------------------------------------------------------

# Dexcom G6 (256) and G7 (399): Rate i8@0 (tenths of mg/dL/min; 127 and -128: none), CGM data type
# u8@1 (bits: 0 five-minute reading, 1 backfill), glucoseValueStatus u16@2 (0 ok, 1 high, 2 low; G7
# 6 unavailable), currentGlucoseDisplayValue u16@4 (40-400, else no value), RSSI i8@6, algorithm
# state u8@7, EGV TimeStamp u32@8 (pump-clock seconds since 2008; 0: none), Interval u8@13, EGV info
# u16@14.  Libre 2 (372) and Libre 3 (480): Rate i16@0, data type u8@2, status u8@3, then the same.
DEXCOM = "bBHHbBIxBH"
LIBRE = "hBBHbBIxBH"


def _egv(logged: str, egv) -> int:
    return secs(logged) if egv is None else egv if isinstance(egv, int) else secs(egv)


def dex(event_id, logged, seq, value, status=0, egv=None, data_type=1, rate=0):
    return rec(event_id, logged, seq, DEXCOM, rate, data_type, status, value, -70, 32, _egv(logged, egv), 5, 0)


def libre(event_id, logged, seq, value, status=0, egv=None, data_type=1, rate=0):
    return rec(event_id, logged, seq, LIBRE, rate, data_type, status, value, -70, 100, _egv(logged, egv), 1, 0)


def cgm_row(measured, glucose, status, trend, backfill, sensor, seq, logged, serial=SERIAL):
    """One expected cgm_readings row; times are pump times (the instant is one hour earlier)."""
    return {
        "timestamp": utc(measured) - dt.timedelta(hours=1),
        "pump_time": wall(measured),
        "glucose_mg_dl": glucose,
        "glucose_status": status,
        "trend_mg_dl_per_min": trend,
        "backfill": backfill,
        "sensor": sensor,
        "pump_serial": serial,
        "seq_num": seq,
        "logged_pump_time": wall(logged),
    }


def test_cgm_readings_statuses_sensors_times_and_repeats(tmp_path):
    d = "2025-01-15 "
    records = [
        dex(256, d + "08:00:00", 1000, 120, rate=5),  # G6, ok
        dex(399, d + "08:05:00", 1001, 0, status=1, egv=d + "08:04:30", rate=20),  # G7 high: 401
        libre(372, d + "08:10:00", 1002, 0, status=2, rate=-12),  # Libre 2 low: 39
        libre(480, d + "08:15:00", 1003, 250),  # Libre 3, ok
        dex(399, "2025-01-20 08:17:00", 1004, 130),  # an outlier of the time model: left out
        dex(399, d + "08:20:00", 1005, 0, status=6, rate=127),  # unavailable (no rate either)
        dex(399, d + "08:25:00", 1006, 500),  # ok, but 500 is no reading: invalid
        dex(399, d + "12:00:00", 1007, 140, egv=d + "09:00:00", data_type=2),  # backfill, 3 h late
        dex(399, d + "12:05:00", 1008, 141, egv="2025-01-14 11:05:00", data_type=2),  # 25 h before: kept
        dex(399, d + "12:10:00", 1009, 142, egv="2025-01-14 10:40:00", data_type=2),  # 25.5 h: invalid
        dex(399, d + "12:15:00", 1010, 143, egv=d + "12:25:00"),  # 10 min after the record: kept
        dex(399, d + "12:20:00", 1011, 144, egv=d + "12:30:30"),  # 10.5 min after: invalid
        dex(399, d + "12:30:00", 1012, 145, egv=1),  # measured at 2008-01-01 00:00:01: invalid
        dex(399, d + "12:35:00", 1013, 150, egv=0),  # no EGV time: the record's time
        dex(399, d + "13:00:00", 1014, 160, egv=d + "12:55:00"),
        dex(256, d + "13:00:30", 1015, 158, egv=d + "12:55:00"),  # the same time on another sensor
        dex(399, d + "13:05:00", 1016, 160, egv=d + "12:55:00", data_type=2),  # 1014 logged again
    ]
    rows = build(tmp_path, records, "cgm_readings")["cgm_readings"]
    assert rows == [
        cgm_row("2025-01-14 11:05:00", 141, "ok", 0.0, True, "dexcom_g7", 1008, d + "12:05:00"),
        cgm_row(d + "08:00:00", 120, "ok", 0.5, False, "dexcom_g6", 1000, d + "08:00:00"),
        cgm_row(d + "08:04:30", 401, "high", 2.0, False, "dexcom_g7", 1001, d + "08:05:00"),
        cgm_row(d + "08:10:00", 39, "low", -1.2, False, "libre2", 1002, d + "08:10:00"),
        cgm_row(d + "08:15:00", 250, "ok", 0.0, False, "libre3", 1003, d + "08:15:00"),
        cgm_row(d + "08:20:00", None, "unavailable", None, False, "dexcom_g7", 1005, d + "08:20:00"),
        cgm_row(d + "08:25:00", None, "invalid", 0.0, False, "dexcom_g7", 1006, d + "08:25:00"),
        cgm_row(d + "09:00:00", 140, "ok", 0.0, True, "dexcom_g7", 1007, d + "12:00:00"),
        cgm_row(d + "12:10:00", None, "invalid", 0.0, True, "dexcom_g7", 1009, d + "12:10:00"),
        cgm_row(d + "12:20:00", None, "invalid", 0.0, False, "dexcom_g7", 1011, d + "12:20:00"),
        cgm_row(d + "12:25:00", 143, "ok", 0.0, False, "dexcom_g7", 1010, d + "12:15:00"),
        cgm_row(d + "12:30:00", None, "invalid", 0.0, False, "dexcom_g7", 1012, d + "12:30:00"),
        cgm_row(d + "12:35:00", 150, "ok", 0.0, False, "dexcom_g7", 1013, d + "12:35:00"),
        cgm_row(d + "12:55:00", 160, "ok", 0.0, False, "dexcom_g7", 1014, d + "13:00:00"),
        cgm_row(d + "12:55:00", 158, "ok", 0.0, False, "dexcom_g6", 1015, d + "13:00:30"),
    ]


def test_cgm_reading_instant_uses_the_offset_of_the_record_that_logged_it(tmp_path):
    # The clock is put forward an hour at 09:00 (time changed, 13: TimePrior / TimeAfter u32, ms of
    # the day): pump clock minus UTC is 0 before the change and +1 h (Berlin in January) after it.
    records = [
        dex(399, "2025-01-15 08:00:00", 2000, 100),
        rec(13, "2025-01-15 10:00:00", 2001, "III4x", 9 * 3_600_000, 10 * 3_600_000, 0),
        # logged after the change, measured (EGV time) before it: read with the logging record's +1 h
        dex(399, "2025-01-15 10:30:00", 2002, 110, egv="2025-01-15 08:30:00", data_type=2),
        dex(399, "2025-01-15 10:35:00", 2003, 115),
    ]
    rows = build(tmp_path, records, "cgm_readings")["cgm_readings"]
    assert [(r["timestamp"], r["pump_time"], r["glucose_mg_dl"], r["seq_num"]) for r in rows] == [
        (utc("2025-01-15 07:30:00"), wall("2025-01-15 08:30:00"), 110, 2002),
        (utc("2025-01-15 08:00:00"), wall("2025-01-15 08:00:00"), 100, 2000),
        (utc("2025-01-15 09:35:00"), wall("2025-01-15 10:35:00"), 115, 2003),
    ]


# --- basal_deliveries (279) ----------------------------------------------------------------------


def test_basal_deliveries(tmp_path):
    # BASAL: commanded rate source u16@2 (0 suspended, 1 profile, 2 temp rate, 3 algorithm, 4 temp
    # rate and algorithm), profile u16@4, commanded u16@6, temp u16@8, algorithm u16@10, in mU/h
    # (0xFFFF: none).
    records = [
        rec(279, "2025-01-15 00:00:00", 3000, BASAL, 0, 1, 800, 800, 0, 0),
        rec(279, "2025-01-18 00:02:00", 3001, BASAL, 0, 1, 800, 800, 0, 0),  # outlier: left out
        rec(279, "2025-01-15 00:05:00", 3002, BASAL, 0, 2, 800, 400, 400, 0),
        rec(279, "2025-01-15 00:10:00", 3003, BASAL, 0, 3, 800, 1250, 0, 1250),
        rec(279, "2025-01-15 00:15:00", 3004, BASAL, 0, 0, 0xFFFF, 0, 0, 0),
        rec(279, "2025-01-15 00:20:00", 3005, BASAL, 0, 4, 800, 1500, 1000, 1500),
    ]
    rows = build(tmp_path, records, "basal_deliveries")["basal_deliveries"]
    got = [
        (
            r["timestamp"],
            r["pump_time"],
            r["commanded_rate_units_per_hour"],
            r["profile_rate_units_per_hour"],
            r["algorithm_rate_units_per_hour"],
            r["temp_rate_units_per_hour"],
            r["rate_source"],
            r["pump_serial"],
            r["seq_num"],
        )
        for r in rows
    ]
    assert got == [
        (utc("2025-01-14 23:00"), wall("2025-01-15 00:00"), 0.8, 0.8, 0.0, 0.0, "profile", SERIAL, 3000),
        (utc("2025-01-14 23:05"), wall("2025-01-15 00:05"), 0.4, 0.8, 0.0, 0.4, "temp_rate", SERIAL, 3002),
        (utc("2025-01-14 23:10"), wall("2025-01-15 00:10"), 1.25, 0.8, 1.25, 0.0, "algorithm", SERIAL, 3003),
        (utc("2025-01-14 23:15"), wall("2025-01-15 00:15"), 0.0, None, 0.0, 0.0, "suspended", SERIAL, 3004),
        (utc("2025-01-14 23:20"), wall("2025-01-15 00:20"), 1.5, 0.8, 1.5, 1.0, "temp_rate_and_algorithm")
        + (SERIAL, 3005),
    ]


# --- bolus_deliveries ----------------------------------------------------------------------------

# 64: CorrectionBolusIncluded u8@0, BolusType u8@1 (0 insulin, 1 carb, 2 automatic correction),
#     BolusID u16@2, BG u16@4 (0: none), CarbAmount u16@6, IOB f32@8, CarbRatio u32@12 (x0.001)
REQ1 = "BBHHHfI"
# 65: StandardPercent u8@0, Options u8@1 (0 standard, 1 extended), BolusID u16@2, Duration u16@6,
#     TargetBG u16@8, ISF u16@10, SelectedIOB u8@13, DeclinedCorrection u8@14, UserOverride u8@15
REQ2 = "BBH2xHHHxBBB"
# 66: BolusID u16@2, FoodBolusSize f32@4, CorrectionBolusSize f32@8, TotalBolusSize f32@12
REQ3 = "2xHfff"
# 280: Bolus Type u8@0 (bits), Delivery Status u8@1 (0 completed, 1 started), BolusID u16@2,
#      Requested Now u16@4 (mU), Remote ID u8@6, Bolus Source u8@7 (1 pump GUI, 7 algorithm),
#      Correction u16@8, Requested Later u16@10, Delivered Total u16@12 (mU), Extended Duration u16@14
DELIVERY = "BBHHBBHHHH"
# 20 (bolus completed) and 21 (its extended part): BolusID u16@0, CompletionStatus u16@2 (0 user
#     aborted, 3 completed), IOB f32@4, InsulinDelivered f32@8, InsulinRequested f32@12
DONE = "HHfff"

BOLUS_COLUMNS = (
    "timestamp",
    "pump_time",
    "bolus_id",
    "requested_at",
    "completed_at",
    "requested_units",
    "delivered_units",
    "food_units",
    "correction_units",
    "carbs_g",
    "bg_mg_dl",
    "iob_units",
    "bolus_type",
    "request_type",
    "bolus_source",
    "completion_status",
    "extended_duration_minutes",
    "pump_serial",
    "seq_num",
)


def test_bolus_deliveries_join_request_delivery_and_completion_by_episode(tmp_path):
    d1, d2 = "2025-01-15 ", "2025-01-16 "
    records = [
        # Bolus 7: the history starts mid-bolus, no request: a row of its own, from its first record.
        rec(280, d1 + "05:58:00", 4000, DELIVERY, 1, 1, 7, 1000, 0, 1, 0, 0, 0, 0xFFFF),
        rec(280, d1 + "06:00:00", 4001, DELIVERY, 1, 0, 7, 1000, 0, 1, 0, 0, 1000, 0xFFFF),
        rec(20, d1 + "06:00:10", 4002, DONE, 7, 3, 2.0, 1.0, 1.0),
        # Bolus 21: a standard carb bolus, 4.5 U food + 0.75 U correction.
        rec(64, d1 + "12:00:00", 4003, REQ1, 1, 1, 21, 145, 45, 1.5, 10000),
        rec(65, d1 + "12:00:00", 4004, REQ2, 100, 0, 21, 0, 110, 40, 1, 0, 0),
        rec(66, d1 + "12:00:00", 4005, REQ3, 21, 4.5, 0.75, 5.25),
        rec(280, d1 + "12:00:05", 4006, DELIVERY, 1, 1, 21, 5250, 0, 1, 750, 0, 0, 0xFFFF),
        rec(280, d1 + "12:02:00", 4007, DELIVERY, 1, 0, 21, 5250, 0, 1, 750, 0, 5250, 0xFFFF),
        rec(20, d1 + "12:02:00", 4008, DONE, 21, 3, 6.75, 5.25, 5.25),
        rec(64, "2025-01-19 12:00:00", 4009, REQ1, 0, 0, 99, 0, 0, 0.0, 0),  # outlier: left out
        # Bolus 22: extended, 2 U now (20) and 2 U over two hours (21).
        rec(64, d1 + "18:00:00", 4010, REQ1, 0, 0, 22, 0, 0, 0.5, 0),
        rec(65, d1 + "18:00:00", 4011, REQ2, 50, 1, 22, 120, 110, 40, 1, 0, 0),
        rec(66, d1 + "18:00:00", 4012, REQ3, 22, 4.0, 0.0, 4.0),
        rec(280, d1 + "18:00:05", 4013, DELIVERY, 3, 1, 22, 2000, 0, 1, 0, 2000, 0, 120),
        rec(20, d1 + "18:01:00", 4014, DONE, 22, 3, 2.5, 2.0, 2.0),
        rec(280, d1 + "20:00:00", 4015, DELIVERY, 3, 0, 22, 2000, 0, 1, 0, 2000, 4000, 120),
        rec(21, d1 + "20:00:30", 4016, DONE, 22, 3, 2.0, 2.0, 2.0),
        # Bolus id 21 again: a new request opens a new bolus; stopped by the user after 1.5 of 3 U.
        rec(64, d2 + "08:00:00", 4017, REQ1, 0, 1, 21, 120, 30, 0.0, 10000),
        rec(20, d2 + "08:01:00", 4018, DONE, 21, 0, 0.0, 1.5, 3.0),
        # Bolus 30: an automatic correction with delivery records only; the later part completes
        # with 2.5 U delivered in all; the extended duration of its start record (90 min).
        rec(64, d2 + "12:00:00", 4019, REQ1, 0, 2, 30, 0, 0, 0.25, 0),
        rec(280, d2 + "12:00:05", 4020, DELIVERY, 1, 1, 30, 1000, 0, 7, 1000, 1500, 0, 90),
        rec(280, d2 + "12:02:00", 4021, DELIVERY, 1, 0, 30, 1000, 0, 7, 1000, 1500, 1000, 0),
        rec(280, d2 + "13:30:00", 4022, DELIVERY, 2, 0, 30, 1000, 0, 7, 1000, 1500, 2500, 0),
    ]
    rows = build(tmp_path, records, "bolus_deliveries")["bolus_deliveries"]
    assert [tuple(r[c] for c in BOLUS_COLUMNS) for r in rows] == [
        (utc(d1 + "04:58"), wall(d1 + "05:58"), 7, None, utc(d1 + "05:00:10"), 1.0, 1.0, None, None)
        + (None, None, None, None, None, "pump_gui", "completed", None, SERIAL, 4000),
        (utc(d1 + "11:00"), wall(d1 + "12:00"), 21, utc(d1 + "11:00"), utc(d1 + "11:02"), 5.25, 5.25, 4.5, 0.75)
        + (45, 145, 1.5, "standard", "carb", "pump_gui", "completed", 0, SERIAL, 4003),
        (utc(d1 + "17:00"), wall(d1 + "18:00"), 22, utc(d1 + "17:00"), utc(d1 + "19:00:30"), 4.0, 4.0, 4.0, 0.0)
        + (0, None, 0.5, "extended", "insulin", "pump_gui", "completed", 120, SERIAL, 4010),
        (utc(d2 + "07:00"), wall(d2 + "08:00"), 21, utc(d2 + "07:00"), utc(d2 + "07:01"), 3.0, 1.5, None, None)
        + (30, 120, 0.0, None, "carb", None, "user_aborted", None, SERIAL, 4017),
        (utc(d2 + "11:00"), wall(d2 + "12:00"), 30, utc(d2 + "11:00"), None, None, 2.5, None, None)
        + (0, None, 0.25, None, "automatic_correction", "algorithm", None, 90, SERIAL, 4019),
    ]


def test_bolus_delivered_units_beyond_25_units_or_the_total_requested_are_null(tmp_path):
    records, seq = [], 4100
    for k, (bolus_id, total, parts) in enumerate(
        (
            (40, 25.0, (25.0,)),  # exactly the largest bolus: kept
            (41, None, (15.0, 10.5)),  # 20 + 21 make 25.5 U: no bolus delivers that, NULL
            (42, 2.0, (2.5,)),  # more than the 2 U requested: NULL
            (43, 2.0, (2.005,)),  # within the 0.005 U rounding of the total requested: kept
            (44, 2.0, (2.0,)),
        )
    ):
        at = f"2025-01-17 {10 + k:02d}:00:00"
        records.append(rec(64, at, seq, REQ1, 0, 0, bolus_id, 0, 0, 0.0, 0))
        if total is not None:
            records.append(rec(66, at, seq + 1, REQ3, bolus_id, total, 0.0, total))
        for n, part in enumerate(parts):
            records.append(
                rec(20 + n, f"2025-01-17 {10 + k:02d}:0{1 + n}:00", seq + 2 + n, DONE, bolus_id, 3, 0.0, part, part)
            )
        seq += 5
    rows = build(tmp_path, records, "bolus_deliveries")["bolus_deliveries"]
    assert [(r["bolus_id"], r["requested_units"], r["delivered_units"], r["seq_num"]) for r in rows] == [
        (40, 25.0, 25.0, 4100),
        (41, 15.0, None, 4105),
        (42, 2.0, None, 4110),
        (43, 2.0, 2.005, 4115),
        (44, 2.0, 2.0, 4120),
    ]


def test_a_bolus_takes_its_time_from_the_request_and_its_largest_completion_request(tmp_path):
    # The request (64) at 09:00:00, its details (65) two seconds later: the bolus is at 09:00:00.
    # Two completion records (20) of one bolus, asking 3.0 and 2.0 U: the larger is the request,
    # the deliveries add up (1.0 + 1.0 U).
    d = "2025-01-18 "
    records = [
        rec(64, d + "09:00:00", 4200, REQ1, 0, 0, 50, 0, 0, 0.0, 0),
        rec(65, d + "09:00:02", 4201, REQ2, 100, 0, 50, 0, 110, 40, 1, 0, 0),
        rec(20, d + "09:01:00", 4202, DONE, 50, 3, 0.0, 1.0, 2.0),
        rec(20, d + "09:02:00", 4203, DONE, 50, 3, 0.0, 1.0, 3.0),
    ]
    rows = build(tmp_path, records, "bolus_deliveries")["bolus_deliveries"]
    assert [
        (r["timestamp"], r["pump_time"], r["requested_at"], r["requested_units"], r["delivered_units"]) for r in rows
    ] == [(utc(d + "08:00"), wall(d + "09:00"), utc(d + "08:00"), 3.0, 2.0)]


def test_bolus_records_without_a_bolus_id_are_left_out(tmp_path):
    # pump-logs JSON can leave a key out: a request with no bolus id joins no bolus.
    def event(code, seq, when, props):
        stamp = f"2025-01-15T{when}"
        return {
            "deviceAssignmentId": "0f1e2d3c-4b5a-4697-8877-665544332211",
            "eventCode": code,
            "sequenceGroup": 3,
            "sequenceNumber": seq,
            "pumpDateTime": stamp,
            "estimatedDateTime": stamp + "Z",
            "eventProperties": props,
        }

    body = {
        "events": [
            event(64, 4200, "12:00:00", {"bolusType": 1, "bolusId": 50, "carbAmount": 20, "iob": 0.5, "bg": 0}),
            event(20, 4201, "12:01:00", {"bolusId": 50, "completionStatus": 3, "insulinDelivered": 2.0}),
            event(64, 4202, "13:00:00", {"bolusType": 1, "carbAmount": 10, "iob": 0.0, "bg": 0}),
        ],
        "clockChanges": [],
    }
    rows = build(tmp_path, [json.dumps(body).encode()], "bolus_deliveries")["bolus_deliveries"]
    assert [(r["timestamp"], r["bolus_id"], r["carbs_g"], r["delivered_units"], r["seq_num"]) for r in rows] == [
        (utc("2025-01-15 11:00"), 50, 20, 2.0, 4200)
    ]


# --- daily_summary: the edges ---------------------------------------------------------------------


def g7(when: str, seq: int, value: int) -> bytes:
    return dex(399, when, seq, value)


def test_daily_summary_edges(tmp_path):
    records = [g7("2025-01-20 10:00:00", 5000, 100)]  # a day with one reading and nothing else
    # 300 one-minute Libre 2 readings (data type bit 5): more than 288 five-minute slots, 100 % active
    records += [
        libre(372, f"2025-01-21 {k // 60:02d}:{k % 60:02d}:00", 5001 + k, 120, data_type=32) for k in range(300)
    ]
    # Two basal records at the same instant: the first counts no time; 1.2 U/h for 5 minutes = 0.1 U.
    records += [
        rec(279, "2025-01-22 00:00:00", 5301, BASAL, 0, 1, 3600, 3600, 0, 0),
        rec(279, "2025-01-22 00:00:00", 5302, BASAL, 0, 1, 1200, 1200, 0, 0),
        rec(279, "2025-01-22 00:05:00", 5303, BASAL, 0, 0, 1200, 0, 0, 0),
    ]
    # The clock is put forward an hour at 12:00 on 2025-01-23 (13 records the change): pump clock
    # minus UTC is 0 before it (every record above) and +1 h after it.  The day's instant takes the
    # offset of its first row (0).  0.6 U/h: 15 minutes (capped) = 0.15 U, then 5 minutes = 0.05 U.
    records += [
        rec(279, "2025-01-23 00:00:00", 5304, BASAL, 0, 1, 600, 600, 0, 0),
        rec(13, "2025-01-23 13:00:00", 5305, "III4x", 12 * 3_600_000, 13 * 3_600_000, 0),
        rec(279, "2025-01-23 13:00:00", 5306, BASAL, 0, 1, 600, 600, 0, 0),
    ]
    rows = build(tmp_path, records, "daily_summary")["daily_summary"]
    glucose = (
        "cgm_readings",
        "cgm_active_percent",
        "mean_glucose_mg_dl",
        "sd_glucose_mg_dl",
        "cv_percent",
        "time_below_54_mg_dl_percent",
        "time_54_to_69_mg_dl_percent",
        "time_70_to_180_mg_dl_percent",
        "time_181_to_250_mg_dl_percent",
        "time_above_250_mg_dl_percent",
    )
    insulin = ("basal_records", "basal_units", "boluses", "bolus_units", "total_insulin_units", "carbs_g")
    got = [
        (r["timestamp"], r["pump_time"], r["day"], r["pump_serial"])
        + tuple(r[c] for c in glucose)
        + tuple(r[c] for c in insulin)
        for r in rows
    ]
    one = 100 * 5 / 1440  # one reading: 5 of 1440 minutes
    assert got == [
        (utc("2025-01-20 00:00"), wall("2025-01-20 00:00"), dt.date(2025, 1, 20), SERIAL)
        + (1, pytest.approx(one), 100.0, None, None, 0.0, 0.0, 100.0, 0.0, 0.0)
        + (0, 0.0, 0, 0.0, 0.0, 0),
        (utc("2025-01-21 00:00"), wall("2025-01-21 00:00"), dt.date(2025, 1, 21), SERIAL)
        + (300, 100.0, 120.0, 0.0, 0.0, 0.0, 0.0, 100.0, 0.0, 0.0)
        + (0, 0.0, 0, 0.0, 0.0, 0),
        (utc("2025-01-22 00:00"), wall("2025-01-22 00:00"), dt.date(2025, 1, 22), SERIAL)
        + (0, 0.0, None, None, None, None, None, None, None, None)
        + (3, pytest.approx(0.1, abs=1e-12), 0, 0.0, pytest.approx(0.1, abs=1e-12), 0),
        (utc("2025-01-23 00:00"), wall("2025-01-23 00:00"), dt.date(2025, 1, 23), SERIAL)
        + (0, 0.0, None, None, None, None, None, None, None, None)
        + (2, pytest.approx(0.2, abs=1e-12), 0, 0.0, pytest.approx(0.2, abs=1e-12), 0),
    ]


# --- two pumps -----------------------------------------------------------------------------------


def build_pumps(tmp_path, histories: dict[str, list[bytes]], *names: str) -> dict[str, list[dict]]:
    """Like test_tables_more.build, for several pumps: one window per pump serial."""
    windows = []
    for k, (serial, records) in enumerate(histories.items()):
        raw = tmp_path / f"history{k}.bin"
        raw.write_bytes(b"".join(records))
        windows.append(str(tmp_path / f"n{k}.parquet"))
        normalize_file(raw, serial, tmp_path / f"n{k}.parquet")
    outputs = {k: str(tmp_path / f"{k}.parquet") for k in ("decoded", "events", "raw_events", "clock_changes")}
    log = logging.getLogger("test-tables-core")
    tables.build_events(windows, outputs, "Europe/Berlin", "recorded_changes", log)
    out = {}
    for name in names:
        path = tmp_path / f"{name}.parquet"
        tables.build_table(name, outputs["decoded"], str(path), log)
        out[name] = pq.read_table(path).to_pylist()
    return out


def test_two_pumps_never_mix(tmp_path):
    d = "2025-01-15 "
    alert, cleared = "IIIf", "II8x"  # 4: AlertID u32@0, ...; 26: AlertID u32@0, faultLocatorData u32@4
    first = [
        rec(279, d + "09:55:00", 10, BASAL, 0, 1, 1000, 1000, 0, 0),
        g7(d + "10:00:00", 11, 100),
        dex(399, d + "10:05:00", 12, 100, egv=d + "10:00:00", data_type=2),  # 11 logged again
        rec(4, d + "11:00:00", 13, alert, 0, 0, 20, 0.0),
        rec(26, d + "11:10:00", 14, cleared, 0, 0),
        rec(64, d + "12:00:00", 15, REQ1, 0, 1, 1, 0, 20, 0.0, 10000),
        rec(20, d + "12:01:00", 16, DONE, 1, 3, 0.0, 2.0, 2.0),
    ]
    second = [
        rec(279, d + "09:50:00", 500, BASAL, 0, 1, 2000, 2000, 0, 0),
        dex(399, d + "10:02:00", 501, 180, egv=d + "10:00:00"),  # the same time as the first pump's
        rec(4, d + "11:30:00", 502, alert, 0, 0, 10, 0.0),
        rec(26, d + "11:50:00", 503, cleared, 0, 0),
        rec(64, d + "13:00:00", 504, REQ1, 0, 0, 1, 0, 0, 0.0, 0),
        rec(20, d + "13:01:00", 505, DONE, 1, 3, 0.0, 3.0, 3.0),
    ]
    rows = build_pumps(tmp_path, {SERIAL: first, OTHER: second}, "cgm_readings", "alarms", "daily_summary")
    assert [(r["pump_serial"], r["seq_num"], r["pump_time"], r["glucose_mg_dl"]) for r in rows["cgm_readings"]] == [
        (SERIAL, 11, wall(d + "10:00"), 100),
        (OTHER, 501, wall(d + "10:00"), 180),
    ]
    assert [(r["pump_serial"], r["seq_num"], r["cleared_at"], r["duration_minutes"]) for r in rows["alarms"]] == [
        (SERIAL, 13, utc(d + "10:10"), 10.0),
        (OTHER, 502, utc(d + "10:50"), 20.0),
    ]
    got = [
        (r["pump_serial"], r["cgm_readings"], r["mean_glucose_mg_dl"], r["basal_records"], r["basal_units"])
        + (r["boluses"], r["bolus_units"], r["carbs_g"])
        for r in rows["daily_summary"]
    ]
    # Each pump's only basal record is the last of its history: 5 minutes at 1 and 2 U/h.
    assert got == [
        (SERIAL, 1, 100.0, 1, pytest.approx(1 / 12), 1, 2.0, 20),
        (OTHER, 1, 180.0, 1, pytest.approx(2 / 12), 1, 3.0, 0),
    ]
