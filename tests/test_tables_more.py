"""The therapy-record tables (bg_readings, alarms, suspensions, site_changes, cgm_sessions,
daily_status, user_modes, daily_summary) from hand-built records, against hand-computed rows.

Every history here is a string of 26-byte records packed with ``struct`` from the record layout
(big-endian header: uint16 event id, uint32 pump-clock seconds since 2008-01-01, uint32 sequence
number; then the 16-byte payload with its fields at the documented offsets).  The real
normaliser, ``tables.build_events`` and ``tables.build_table`` turn it into tables.  The pump clock
shows Europe/Berlin and never changes, so in January every instant is the pump time less one hour.
Expected values are literals worked out by hand (durations from the record times, percents and
sums from the values packed).  A record logged more than a day ahead of the records on both sides
is an outlier of the time model (not reliable, see times.py): every table leaves it out, and each
test logs one.
"""

from __future__ import annotations

import datetime as dt
import logging
import statistics
import struct

import pyarrow.parquet as pq
import pytest
from tandem_export import tables
from tandem_export.normalize import normalize_file

pytestmark = pytest.mark.fast  # the fast tier of value tests (make test-fast)

SERIAL = "90512345"
EPOCH = dt.datetime(2008, 1, 1)
UTC = dt.UTC


def secs(wall: str) -> int:
    return int((dt.datetime.fromisoformat(wall) - EPOCH).total_seconds())


def rec(event_id: int, wall: str, seq: int, fmt: str, *values) -> bytes:
    """One record: header, then ``values`` packed big-endian with ``fmt`` into the 16-byte payload."""
    payload = struct.pack(">" + fmt, *values)
    assert len(payload) == 16, (event_id, fmt, len(payload))
    return struct.pack(">HII", event_id, secs(wall), seq) + payload


def wall(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def build(tmp_path, records: list[bytes], *names: str) -> dict[str, list[dict]]:
    """Normalise the records, build the events, then each table ``names``; rows by table."""
    raw = tmp_path / "history.bin"
    raw.write_bytes(b"".join(records))
    normalize_file(raw, SERIAL, tmp_path / "n.parquet")
    outputs = {k: str(tmp_path / f"{k}.parquet") for k in ("decoded", "events", "raw_events", "clock_changes")}
    log = logging.getLogger("test-tables-more")
    tables.build_events([str(tmp_path / "n.parquet")], outputs, "Europe/Berlin", "recorded_changes", log)
    out = {}
    for name in names:
        path = tmp_path / f"{name}.parquet"
        tables.build_table(name, outputs["decoded"], str(path), log)
        out[name] = pq.read_table(path).to_pylist()
    return out


def common(row: dict) -> tuple:
    return row["timestamp"], row["pump_time"], row["pump_serial"], row["seq_num"]


# --- bg_readings (16) ----------------------------------------------------------------------------

# BgEntryType u8@0, cgmCalibration u8@1, BG u16@2, IOB f32@4, ISF u16@8, TargetBG u16@10,
# BgSourceType u8@14, SelectedIOB u8@15.
BG = "BBHfHH2xBB"


def test_bg_readings(tmp_path):
    rows = build(
        tmp_path,
        [
            rec(16, "2025-01-15 07:00:30", 101, BG, 0, 0, 142, 1.25, 40, 110, 0, 1),
            rec(16, "2025-01-18 12:00:00", 102, BG, 0, 0, 200, 0.0, 40, 110, 0, 1),  # outlier: left out
            rec(16, "2025-01-15 19:10:00", 103, BG, 1, 1, 95, 0.5, 45, 100, 1, 0),
        ],
        "bg_readings",
    )["bg_readings"]
    assert rows == [
        {
            "timestamp": utc("2025-01-15 06:00:30"),
            "pump_time": wall("2025-01-15 07:00:30"),
            "bg_mg_dl": 142,
            "entry_type": "manual",
            "used_for_calibration": False,
            "iob_units": 1.25,
            "isf_mg_dl_per_unit": 40,
            "target_bg_mg_dl": 110,
            "bg_source": "pump",
            "iob_model": "swan_meal",
            "pump_serial": SERIAL,
            "seq_num": 101,
        },
        {
            "timestamp": utc("2025-01-15 18:10:00"),
            "pump_time": wall("2025-01-15 19:10:00"),
            "bg_mg_dl": 95,
            "entry_type": "cgm_auto_populated",
            "used_for_calibration": True,
            "iob_units": 0.5,
            "isf_mg_dl_per_unit": 45,
            "target_bg_mg_dl": 100,
            "bg_source": "remote",
            "iob_model": "mudaliar",
            "pump_serial": SERIAL,
            "seq_num": 103,
        },
    ]


# --- alarms --------------------------------------------------------------------------------------

ACTIVATED = "IIIf"  # id u32@0, faultLocatorData u32@4, param1 u32@8, param2 f32@12 (4, 5, 6, 171)
ALERT_CLEARED = "II8x"  # AlertID u32@0, faultLocatorData u32@4 (26)
CLEARED = "I12x"  # id u32@0 (28, 172)
DEX_ACTIVATED = "2xBBIIf"  # SensorType u8@2, DalertID u8@3, fault u32@4, param1 u32@8, param2 f32@12 (369)
DEX_CLEARED = "2xBB12x"  # SensorType u8@2, DalertID u8@3 (370, 461)
DEX_ACK = "2xBBI8x"  # SensorType u8@2, DalertID u8@3, AckSource u32@4 (371)


def test_alarms_pair_each_activation_with_the_next_clearing_of_its_kind_and_id(tmp_path):
    records = [
        rec(26, "2025-01-15 06:00:00", 200, ALERT_CLEARED, 0, 0),  # clears nothing: no activation yet
        rec(4, "2025-01-15 07:30:00", 201, ACTIVATED, 0, 0, 20, 0.0),  # low insulin alert
        rec(172, "2025-01-15 07:32:00", 202, CLEARED, 0),  # a CGM alert id 0: another kind
        rec(26, "2025-01-15 07:35:00", 203, ALERT_CLEARED, 1, 0),  # another alert id
        rec(26, "2025-01-15 07:40:00", 204, ALERT_CLEARED, 0, 0),  # clears 201: 10 minutes
        rec(26, "2025-01-15 07:41:00", 205, ALERT_CLEARED, 0, 0),  # a second clearing: ignored
        rec(5, "2025-01-15 08:00:00", 206, ACTIVATED, 2, 7, 0, 0.0),  # occlusion alarm
        rec(4, "2025-01-15 09:00:00", 207, ACTIVATED, 0, 0, 15, 0.0),  # low insulin again, never cleared
        rec(28, "2025-01-15 08:02:30", 208, CLEARED, 2),  # clears 206: 2.5 minutes
        rec(6, "2025-01-15 10:00:00", 209, ACTIVATED, 7, 1, 2, 1.5),  # malfunction: no clearing record
        rec(369, "2025-01-15 11:00:00", 210, DEX_ACTIVATED, 3, 13, 0, 0, 0.0),  # G7 sensor expired
        rec(371, "2025-01-15 11:01:00", 211, DEX_ACK, 3, 13, 0),  # acknowledged by the user
        rec(371, "2025-01-15 11:02:00", 212, DEX_ACK, 3, 13, 1),  # and again (software): the first counts
        rec(370, "2025-01-15 11:20:00", 213, DEX_CLEARED, 3, 13),  # cleared: 20 minutes
        rec(4, "2025-01-15 12:00:00", 214, ACTIVATED, 1, 0, 0, 0.0),  # USB alert: id 1 cleared this time
        rec(26, "2025-01-15 12:03:00", 215, ALERT_CLEARED, 1, 0),  # 3 minutes
        rec(171, "2025-01-15 12:10:00", 216, ACTIVATED, 0, 0, 0, 0.0),  # CGM alert id 0 (not alert id 0)
        rec(172, "2025-01-15 12:16:00", 217, CLEARED, 0),  # 6 minutes
        rec(460, "2025-01-15 13:00:00", 218, DEX_ACTIVATED, 2, 14, 0, 0, 0.0),  # Libre 2 out of range
        rec(4, "2025-01-19 13:02:00", 219, ACTIVATED, 3, 0, 0, 0.0),  # outlier: left out
        rec(461, "2025-01-15 13:04:00", 220, DEX_CLEARED, 2, 14),  # 4 minutes
    ]
    rows = build(tmp_path, records, "alarms")["alarms"]
    got = [
        (
            r["timestamp"],
            r["pump_time"],
            r["kind"],
            r["code"],
            r["name"],
            r["cleared_at"],
            r["cleared_pump_time"],
            r["duration_minutes"],
            r["acknowledged_at"],
            r["acknowledged_by"],
            r["event_id"],
            r["seq_num"],
        )
        for r in rows
    ]
    assert got == [
        (
            utc("2025-01-15 06:30:00"),
            wall("2025-01-15 07:30:00"),
            "alert",
            0,
            "low_insulin_alert",
            utc("2025-01-15 06:40:00"),
            wall("2025-01-15 07:40:00"),
            10.0,
            None,
            None,
            4,
            201,
        ),
        (
            utc("2025-01-15 07:00:00"),
            wall("2025-01-15 08:00:00"),
            "alarm",
            2,
            "occlusion_alarm",
            utc("2025-01-15 07:02:30"),
            wall("2025-01-15 08:02:30"),
            2.5,
            None,
            None,
            5,
            206,
        ),
        (
            utc("2025-01-15 08:00:00"),
            wall("2025-01-15 09:00:00"),
            "alert",
            0,
            "low_insulin_alert",
            None,
            None,
            None,
            None,
            None,
            4,
            207,
        ),
        (
            utc("2025-01-15 09:00:00"),
            wall("2025-01-15 10:00:00"),
            "malfunction",
            7,
            "malfunction_7",
            None,
            None,
            None,
            None,
            None,
            6,
            209,
        ),
        (
            utc("2025-01-15 10:00:00"),
            wall("2025-01-15 11:00:00"),
            "cgm_alert",
            13,
            "cgm_sensor_expired",
            utc("2025-01-15 10:20:00"),
            wall("2025-01-15 11:20:00"),
            20.0,
            utc("2025-01-15 10:01:00"),
            "user",
            369,
            210,
        ),
        (
            utc("2025-01-15 11:00:00"),
            wall("2025-01-15 12:00:00"),
            "alert",
            1,
            "usb_connection_alert",
            utc("2025-01-15 11:03:00"),
            wall("2025-01-15 12:03:00"),
            3.0,
            None,
            None,
            4,
            214,
        ),
        (
            utc("2025-01-15 11:10:00"),
            wall("2025-01-15 12:10:00"),
            "cgm_alert",
            0,
            "cgm_alert_0",
            utc("2025-01-15 11:16:00"),
            wall("2025-01-15 12:16:00"),
            6.0,
            None,
            None,
            171,
            216,
        ),
        (
            utc("2025-01-15 12:00:00"),
            wall("2025-01-15 13:00:00"),
            "cgm_alert",
            14,
            "cgm_out_of_range",
            utc("2025-01-15 12:04:00"),
            wall("2025-01-15 13:04:00"),
            4.0,
            None,
            None,
            460,
            218,
        ),
    ]
    first, _, _, malfunction, cgm, _, _, libre = rows
    assert (first["param1"], first["fault_locator_data"]) == (20, 0)
    assert (malfunction["fault_locator_data"], malfunction["param1"], malfunction["param2"]) == (1, 2, 1.5)
    assert (cgm["sensor_type"], libre["sensor_type"], rows[6]["sensor_type"]) == ("dexcom_g7", "libre2", None)
    assert {r["pump_serial"] for r in rows} == {SERIAL}


# --- suspensions (11 / 12) -----------------------------------------------------------------------

SUSPEND = "IBBH8x"  # PreSuspendState u32@0, RPATimeout u8@4, SuspendReason u8@5, InsulinAmount u16@6
RESUME = "I2xH8x"  # PreResumeState u32@0, InsulinAmount u16@6


def test_suspensions(tmp_path):
    records = [
        rec(12, "2025-01-15 06:00:00", 300, RESUME, 4, 0),  # the history starts suspended
        rec(11, "2025-01-15 08:00:00", 301, SUSPEND, 1, 0, 1, 12),  # alarm
        rec(12, "2025-01-15 08:45:30", 302, RESUME, 2, 3),  # 45.5 minutes
        rec(11, "2025-01-15 10:00:00", 303, SUSPEND, 1, 30, 6, 0),  # low glucose suspend, no resume
        rec(11, "2025-01-15 10:30:00", 304, SUSPEND, 1, 0, 0, 0),  # user
        rec(12, "2025-01-15 11:00:00", 305, RESUME, 0, 0),  # resumes 304: 30 minutes
        rec(12, "2025-01-15 11:10:00", 306, RESUME, 5, 7),  # a second resume: the first counts
        rec(11, "2025-01-20 11:30:00", 307, SUSPEND, 1, 0, 0, 0),  # outlier: left out
        rec(11, "2025-01-15 12:00:00", 308, SUSPEND, 1, 0, 2, 0),  # malfunction, still suspended
    ]
    rows = build(tmp_path, records, "suspensions")["suspensions"]
    got = [
        (
            *common(r),
            r["started_at"],
            r["resumed_at"],
            r["resumed_pump_time"],
            r["duration_minutes"],
            r["reason"],
            r["rpa_timeout_minutes"],
            r["pre_suspend_state"],
            r["pre_resume_state"],
            r["suspended_insulin_amount_units"],
            r["resumed_insulin_amount_units"],
        )
        for r in rows
    ]
    t = utc
    assert got == [
        (t("2025-01-15 05:00"), wall("2025-01-15 06:00"), SERIAL, 300)
        + (None, t("2025-01-15 05:00"), wall("2025-01-15 06:00"), None, None, None, None, 4, None, 0),
        (t("2025-01-15 07:00"), wall("2025-01-15 08:00"), SERIAL, 301)
        + (t("2025-01-15 07:00"), t("2025-01-15 07:45:30"), wall("2025-01-15 08:45:30"), 45.5, "alarm", 0, 1, 2, 12, 3),
        (t("2025-01-15 09:00"), wall("2025-01-15 10:00"), SERIAL, 303)
        + (t("2025-01-15 09:00"), None, None, None, "automatic_low_glucose_suspend", 30, 1, None, 0, None),
        (t("2025-01-15 09:30"), wall("2025-01-15 10:30"), SERIAL, 304)
        + (t("2025-01-15 09:30"), t("2025-01-15 10:00"), wall("2025-01-15 11:00"), 30.0, "user", 0, 1, 0, 0, 0),
        (t("2025-01-15 11:00"), wall("2025-01-15 12:00"), SERIAL, 308)
        + (t("2025-01-15 11:00"), None, None, None, "malfunction", 0, 1, None, 0, None),
    ]


def test_a_history_that_starts_suspended_and_resumes_twice_is_one_row_at_the_first_resume(tmp_path):
    records = [
        rec(12, "2025-01-15 06:00:00", 320, RESUME, 4, 0),
        rec(12, "2025-01-15 06:10:00", 321, RESUME, 5, 0),
    ]
    rows = build(tmp_path, records, "suspensions")["suspensions"]
    assert [(*common(r), r["started_at"], r["resumed_at"], r["pre_resume_state"]) for r in rows] == [
        (utc("2025-01-15 05:00"), wall("2025-01-15 06:00"), SERIAL, 320, None, utc("2025-01-15 05:00"), 4)
    ]


# --- site_changes (33, 61, 63) -------------------------------------------------------------------


def test_site_changes(tmp_path):
    records = [
        rec(33, "2025-01-15 08:00:40", 400, "If8x", 200, 180.5),  # InsulinVolume u32@0, V2Volume f32@4
        rec(63, "2025-01-15 08:02:30", 401, "fII4x", 12.5, 3, 1500),  # PrimeSize, CompletionStatus, Position
        rec(61, "2025-01-15 08:03:40", 402, "fI8x", 0.3, 0),  # PrimeSize, CompletionStatus: user aborted
        rec(61, "2025-01-15 08:04:10", 403, "fI8x", 0.3, 3),
        rec(33, "2025-01-18 08:00:00", 404, "If8x", 150, 0.0),  # no V2 volume: the whole-unit volume
        rec(61, "2025-01-25 08:00:00", 405, "fI8x", 0.3, 3),  # outlier: left out
        rec(33, "2025-01-18 09:00:00", 406, "If8x", 1, 0.8),  # a V2 volume under one unit
    ]
    rows = build(tmp_path, records, "site_changes")["site_changes"]
    got = [
        (
            *common(r),
            r["fill"],
            r["amount_units"],
            r["completion_status"],
            r["cartridge_volume_units"],
            r["cartridge_v2_volume_units"],
            r["prime_size_units"],
            r["tubing_position_counts"],
        )
        for r in rows
    ]
    assert got == [
        (utc("2025-01-15 07:00:40"), wall("2025-01-15 08:00:40"), SERIAL, 400)
        + ("cartridge", 180.5, None, 200, 180.5, None, None),
        (utc("2025-01-15 07:02:30"), wall("2025-01-15 08:02:30"), SERIAL, 401)
        + ("tubing", 12.5, "completed", None, None, 12.5, 1500),
        (utc("2025-01-15 07:03:40"), wall("2025-01-15 08:03:40"), SERIAL, 402)
        + ("cannula", 0.3, "user_aborted", None, None, 0.3, None),
        (utc("2025-01-15 07:04:10"), wall("2025-01-15 08:04:10"), SERIAL, 403)
        + ("cannula", 0.3, "completed", None, None, 0.3, None),
        (utc("2025-01-18 07:00:00"), wall("2025-01-18 08:00:00"), SERIAL, 404)
        + ("cartridge", 150.0, None, 150, 0.0, None, None),
        (utc("2025-01-18 08:00:00"), wall("2025-01-18 09:00:00"), SERIAL, 406)
        + ("cartridge", 0.8, None, 1, 0.8, None, None),
    ]


# --- cgm_sessions --------------------------------------------------------------------------------


def test_cgm_sessions(tmp_path):
    ten_days = 10 * 86400
    records = [
        # G6 start 212: CurrentTransmitterTime u32@0, SessionStartTime u32@4, SessionDuration u8@15
        rec(212, "2025-01-05 09:00:00", 500, "II7xB", 5000, 5000, 10),
        # G6 join 213: + SessionJoinReason u8@14 (8: new session started)
        rec(213, "2025-01-06 09:00:00", 501, "II6xBB", 91400, 5000, 8, 10),
        # G6 stop 214: SessionStopTime u32@8, SessionStopReason u8@14 (0: user), duration u8@15
        rec(214, "2025-01-15 09:00:00", 502, "III2xBB", 5000 + ten_days, 5000, 5000 + ten_days, 0, 10),
        # G7 stop 447: StopSessionCode u8@13, SessionStopReason u8@14 (a code), SessionDuration u8@15
        rec(447, "2025-01-15 09:10:00", 503, "IIIxBBB", 900, 100, 100 + 36 * 3600, 1, 2, 10),
        # G7 join 394: cgmTimestamp u32@0, sessionSignature u32@4
        rec(394, "2025-01-15 09:12:00", 504, "II8x", secs("2025-01-15 09:12:00"), 123456),
        # Libre 2 start 404: SessionStartTime u32@0, SessionDuration u8@7
        rec(404, "2025-01-15 10:00:00", 505, "I3xB8x", 7000, 14),
        # Libre 2 join 406: start u32@0, join u32@4, reason u8@10, duration u8@11
        rec(406, "2025-01-15 10:05:00", 506, "II2xBB4x", 7000, 7300, 1, 14),
        # Libre 2 stop 405: start u32@0, stop u32@4, reason u8@10, duration u8@11
        rec(405, "2025-01-15 11:00:00", 507, "II2xBB4x", 7000, 7000 + 5400, 4, 14),
        # Libre 3 join 477: start u32@0, join u32@4, duration u8@8, reason u8@9
        rec(477, "2025-01-15 12:00:00", 508, "IIBB6x", 8000, 8100, 15, 2),
        # Libre 3 stop 486: start u32@0, stop u32@4, duration u8@8, reason u8@9
        rec(486, "2025-01-15 13:00:00", 509, "IIBB6x", 8000, 8000 + 15 * 86400, 15, 5),
        # A stop time before the start time gives no length; equal times, 0 hours.
        rec(405, "2025-01-15 14:00:00", 510, "II2xBB4x", 9000, 8000, 3, 14),
        rec(212, "2025-01-21 14:30:00", 511, "II7xB", 100, 100, 10),  # outlier: left out
        rec(486, "2025-01-15 15:00:00", 512, "IIBB6x", 1, 1, 15, 6),
    ]
    rows = build(tmp_path, records, "cgm_sessions")["cgm_sessions"]
    got = [
        (
            r["pump_time"],
            r["sensor"],
            r["session_event"],
            r["reason"],
            r["reason_code"],
            r["stop_session_code"],
            r["session_duration_days"],
            r["session_length_hours"],
            r["event_id"],
            r["seq_num"],
        )
        for r in rows
    ]
    assert got == [
        (wall("2025-01-05 09:00"), "dexcom_g6", "start", None, None, None, 10, None, 212, 500),
        (wall("2025-01-06 09:00"), "dexcom_g6", "join", "new_session_started_success", None, None, 10, None, 213, 501),
        (wall("2025-01-15 09:00"), "dexcom_g6", "stop", "user", None, None, 10, 240.0, 214, 502),
        (wall("2025-01-15 09:10"), "dexcom_g7", "stop", None, 2, 1, 10, 36.0, 447, 503),
        (wall("2025-01-15 09:12"), "dexcom_g7", "join", None, None, None, None, None, 394, 504),
        (wall("2025-01-15 10:00"), "libre2", "start", None, None, None, 14, None, 404, 505),
        (wall("2025-01-15 10:05"), "libre2", "join", None, 1, None, 14, None, 406, 506),
        (wall("2025-01-15 11:00"), "libre2", "stop", None, 4, None, 14, 1.5, 405, 507),
        (wall("2025-01-15 12:00"), "libre3", "join", None, 2, None, 15, None, 477, 508),
        (wall("2025-01-15 13:00"), "libre3", "stop", None, 5, None, 15, 360.0, 486, 509),
        (wall("2025-01-15 14:00"), "libre2", "stop", None, 3, None, 14, None, 405, 510),
        (wall("2025-01-15 15:00"), "libre3", "stop", None, 6, None, 15, 0.0, 486, 512),
    ]
    assert rows[0]["timestamp"] == utc("2025-01-05 08:00")
    assert (rows[0]["session_start_time_seconds"], rows[0]["transmitter_time_seconds"]) == (5000, 5000)
    assert (rows[6]["session_join_time_seconds"], rows[4]["session_signature"]) == (7300, 123456)
    assert rows[4]["cgm_timestamp_seconds"] == secs("2025-01-15 09:12:00")


# --- daily_status (81) ---------------------------------------------------------------------------

DAILY = "fffHBB"  # dailyTotalBasal f32@0, lastBasalRate f32@4, iob f32@8, LiPo mV u16@12, charge % u8@14, flag u8@15


def test_daily_status_battery_from_the_last_word(tmp_path):
    records = [
        rec(81, "2025-01-15 00:00:00", 600, DAILY, 24.5, 0.75, 1.5, 3961, 70, 1),
        rec(81, "2025-01-18 00:00:00", 601, DAILY, 1.0, 0.8, 0.0, 4000, 90, 1),  # outlier: left out
        rec(81, "2025-01-16 00:00:00", 602, DAILY, 20.25, 0.8, 0.0, 4100, 100, 1),
        # 2,000 mV is no LiPo voltage a running pump has (3,000-4,400): NULL; 0xFF % is out of range: NULL
        rec(81, "2025-01-17 00:00:00", 603, DAILY, 18.0, 0.0, 2.25, 2000, 255, 0),
    ]
    rows = build(tmp_path, records, "daily_status")["daily_status"]
    assert [
        (
            *common(r),
            r["daily_total_basal_units"],
            r["last_basal_rate_units_per_hour"],
            r["iob_units"],
            r["battery_charge_percent"],
            r["battery_lipo_mv"],
            r["final_event_of_day"],
        )
        for r in rows
    ] == [
        (utc("2025-01-14 23:00"), wall("2025-01-15 00:00"), SERIAL, 600, 24.5, 0.75, 1.5, 70, 3961, True),
        (utc("2025-01-15 23:00"), wall("2025-01-16 00:00"), SERIAL, 602, 20.25, 0.8, 0.0, 100, 4100, True),
        (utc("2025-01-16 23:00"), wall("2025-01-17 00:00"), SERIAL, 603, 18.0, 0.0, 2.25, None, None, False),
    ]


# --- user_modes (229) ----------------------------------------------------------------------------

# RequestedAction u8@1, PreviousUserMode u8@2, CurrentUserMode u8@3, ActiveSleepSchedule u8@6,
# SleepStartedByGUI u8@7, ExerciseTime u16@8, ExerciseChoice u8@10, ExerciseStoppedByTimer u8@11,
# EatingSoonStoppedByTimer u8@15.  Modes: 0 normal, 1 sleeping, 2 exercising, 3 eating soon.
MODE = "xBBB2xBBHBB3xB"


def test_user_modes_pair_each_start_with_the_next_stop_of_the_same_mode(tmp_path):
    records = [
        rec(229, "2025-01-15 06:30:00", 700, MODE, 2, 1, 0, 1, 0, 0, 0, 0, 0),  # stop sleep: no start before
        rec(229, "2025-01-15 17:00:00", 701, MODE, 3, 0, 2, 0, 0, 60, 1, 0, 0),  # start exercise, timed 60 min
        rec(229, "2025-01-15 18:00:00", 702, MODE, 0, 2, 0, 0, 0, 60, 1, 1, 0),  # stopped by its timer
        rec(229, "2025-01-15 22:30:00", 703, MODE, 1, 0, 1, 0b10, 1, 0, 0, 0, 0),  # start sleep, schedule 2
        rec(229, "2025-01-16 02:00:00", 704, MODE, 1, 1, 1, 0b1, 1, 0, 0, 0, 0),  # still asleep: no start, no stop
        rec(229, "2025-01-16 06:00:00", 705, MODE, 3, 1, 2, 0, 0, 0, 0, 0, 0),  # sleep -> exercise
        rec(229, "2025-01-16 06:45:00", 706, MODE, 5, 2, 0, 0, 0, 0, 0, 0, 0),  # stop all
        rec(229, "2025-01-16 06:50:00", 707, MODE, 4, 2, 0, 0, 0, 0, 0, 1, 0),  # a second stop: the first counts
        rec(229, "2025-01-20 06:55:00", 708, MODE, 6, 0, 3, 0, 0, 0, 0, 0, 0),  # outlier: left out
        rec(229, "2025-01-16 07:00:00", 709, MODE, 6, 0, 3, 0, 0, 0, 0, 0, 0),  # eating soon, never stopped
    ]
    rows = build(tmp_path, records, "user_modes")["user_modes"]
    got = [
        (
            r["pump_time"],
            r["mode"],
            r["started_at"],
            r["stopped_at"],
            r["stopped_pump_time"],
            r["duration_minutes"],
            r["start_action"],
            r["stop_action"],
            r["stopped_by_timer"],
            r["sleep_schedule"],
            r["sleep_started_by_gui"],
            r["exercise_choice"],
            r["exercise_time_minutes"],
            r["seq_num"],
        )
        for r in rows
    ]
    t = utc
    assert got == [
        (wall("2025-01-15 06:30"), "sleep", None, t("2025-01-15 05:30"), wall("2025-01-15 06:30"), None)
        + (None, "stop_sleep", None, None, None, None, None, 700),
        (wall("2025-01-15 17:00"), "exercise", t("2025-01-15 16:00"), t("2025-01-15 17:00"), wall("2025-01-15 18:00"))
        + (60.0, "start_exercise", "none", True, None, None, "timed", 60, 701),
        (wall("2025-01-15 22:30"), "sleep", t("2025-01-15 21:30"), t("2025-01-16 05:00"), wall("2025-01-16 06:00"))
        + (450.0, "start_sleep", "start_exercise", None, ["schedule_2"], True, None, None, 703),
        (wall("2025-01-16 06:00"), "exercise", t("2025-01-16 05:00"), t("2025-01-16 05:45"), wall("2025-01-16 06:45"))
        + (45.0, "start_exercise", "stop_all", False, None, None, "continuous", 0, 705),
        (wall("2025-01-16 07:00"), "eating_soon", t("2025-01-16 06:00"), None, None, None)
        + ("start_eating_soon", None, None, None, None, None, None, 709),
    ]
    assert all(r["timestamp"] == (r["started_at"] or r["stopped_at"]) for r in rows)


def test_two_stops_of_a_mode_with_no_start_before_them_are_one_row_at_the_first(tmp_path):
    records = [
        rec(229, "2025-01-15 06:30:00", 720, MODE, 2, 1, 0, 1, 0, 0, 0, 0, 0),  # stop sleep
        rec(229, "2025-01-15 06:40:00", 721, MODE, 5, 1, 0, 1, 0, 0, 0, 0, 0),  # again
    ]
    rows = build(tmp_path, records, "user_modes")["user_modes"]
    assert [
        (r["pump_time"], r["mode"], r["started_at"], r["stopped_at"], r["stop_action"], r["seq_num"]) for r in rows
    ] == [(wall("2025-01-15 06:30"), "sleep", None, utc("2025-01-15 05:30"), "stop_sleep", 720)]


# --- daily_summary -------------------------------------------------------------------------------

G7 = "bBHHbBIxBH"  # rate i8@0, data type u8@1, status u16@2, value u16@4, RSSI, alg state, EGV time u32@8, ...
BASAL = "HHHHHH4x"  # (pad), source u16@2, profile u16@4, commanded u16@6, temp u16@8, algorithm u16@10 (mU/h)
REQUEST = "BBHHHfI"  # 64: correction?, type, bolus id, BG, carbs, IOB, carb ratio
COMPLETED = "HHfff"  # 20: bolus id, status, IOB, delivered, requested


def g7(wall_time: str, seq: int, value: int, status: int = 0) -> bytes:
    return rec(399, wall_time, seq, G7, 0, 1, status, value, -70, 32, secs(wall_time), 5, 0b1100001)


def test_daily_summary_from_hand_built_readings_basal_and_boluses(tmp_path):
    # Twelve readings on 2025-01-15 from 10:00 every 5 minutes; 39 is a "low" reading (status 2,
    # display value 40) and 401 a "high" one (status 1, display 400); one more reading is unavailable.
    values = [39, 50, 54, 69, 70, 100, 180, 181, 250, 251, 300, 401]
    records = []
    seq = 800
    for k, v in enumerate(values):
        status, shown = (2, 40) if v == 39 else (1, 400) if v == 401 else (0, v)
        records.append(g7(f"2025-01-15 10:{5 * k:02d}:00", seq, shown, status))
        seq += 1
    records.append(g7("2025-01-15 11:00:00", seq, 0, 6))  # unavailable: not counted
    seq += 1
    # Basal: 1.2 U/h for 5 min = 0.1 U; 0.6 U/h until 00:35, capped at 15 min = 0.15 U; 0 U/h; 2.4 U/h
    # until the next record a day later, capped at 15 min = 0.6 U.  Day 1: 0.85 U.  The last record of
    # the history (0.9 U/h on day 2) counts 5 minutes: 0.075 U.
    for when, rate in (("00:00:00", 1200), ("00:05:00", 600), ("00:35:00", 0), ("00:40:00", 2400)):
        records.append(rec(279, f"2025-01-15 {when}", seq, BASAL, 0, 1 if rate else 0, 900, rate, 0, 0))
        seq += 1
    # Boluses: 45 g and 4.5 U delivered, then a correction of 1.25 U; on day 2, 30 g and 3 U.
    for when, bolus_id, carbs, units in (
        ("2025-01-15 12:00:00", 11, 45, 4.5),
        ("2025-01-15 15:00:00", 12, 0, 1.25),
        ("2025-01-16 08:00:00", 13, 30, 3.0),
    ):
        records.append(rec(64, when, seq, REQUEST, 0, 1, bolus_id, 120, carbs, 0.0, 10000))
        records.append(rec(20, when[:-2] + "30", seq + 1, COMPLETED, bolus_id, 3, units, units, units))
        seq += 2
    records.append(rec(279, "2025-01-16 00:00:00", seq, BASAL, 0, 1, 900, 900, 0, 0))
    rows = build(tmp_path, sorted(records, key=lambda r: struct.unpack(">I", r[6:10])[0]), "daily_summary")
    day1, day2 = rows["daily_summary"]

    assert (day1["timestamp"], day1["pump_time"], day1["day"], day1["pump_serial"]) == (
        utc("2025-01-14 23:00"),
        wall("2025-01-15 00:00"),
        dt.date(2025, 1, 15),
        SERIAL,
    )
    assert day1["cgm_readings"] == 12
    assert day1["cgm_active_percent"] == pytest.approx(12 * 5 / 1440 * 100)  # 4.17 %
    assert day1["mean_glucose_mg_dl"] == pytest.approx(1945 / 12)  # the sum of the twelve values is 1945
    assert day1["sd_glucose_mg_dl"] == pytest.approx(statistics.stdev(values))
    assert day1["cv_percent"] == pytest.approx(100 * statistics.stdev(values) / (1945 / 12))
    # <54: 39, 50; 54-69: 54, 69; 70-180: 70, 100, 180; 181-250: 181, 250; >250: 251, 300, 401.
    assert day1["time_below_54_mg_dl_percent"] == pytest.approx(100 * 2 / 12)
    assert day1["time_54_to_69_mg_dl_percent"] == pytest.approx(100 * 2 / 12)
    assert day1["time_70_to_180_mg_dl_percent"] == pytest.approx(25.0)
    assert day1["time_181_to_250_mg_dl_percent"] == pytest.approx(100 * 2 / 12)
    assert day1["time_above_250_mg_dl_percent"] == pytest.approx(25.0)
    assert (day1["basal_records"], day1["boluses"], day1["carbs_g"]) == (4, 2, 45)
    assert day1["basal_units"] == pytest.approx(0.85)
    assert day1["bolus_units"] == pytest.approx(5.75)
    assert day1["total_insulin_units"] == pytest.approx(6.6)

    assert (day2["timestamp"], day2["day"]) == (utc("2025-01-15 23:00"), dt.date(2025, 1, 16))
    assert (day2["cgm_readings"], day2["cgm_active_percent"], day2["mean_glucose_mg_dl"]) == (0, 0.0, None)
    assert day2["time_70_to_180_mg_dl_percent"] is None
    assert (day2["basal_records"], day2["boluses"], day2["carbs_g"]) == (1, 1, 30)
    assert day2["basal_units"] == pytest.approx(0.075)
    assert day2["bolus_units"] == pytest.approx(3.0)
    assert day2["total_insulin_units"] == pytest.approx(3.075)


def test_every_new_table_is_typed_when_the_history_has_none_of_its_records(tmp_path):
    names = (
        "bg_readings",
        "alarms",
        "suspensions",
        "site_changes",
        "cgm_sessions",
        "daily_status",
        "user_modes",
        "daily_summary",
    )
    rows = build(tmp_path, [rec(279, "2025-01-15 00:00:00", 1, BASAL, 0, 1, 900, 900, 0, 0)], *names)
    for name in names:
        schema = pq.read_schema(tmp_path / f"{name}.parquet")
        assert {"timestamp", "pump_time", "pump_serial"} <= set(schema.names), name
        assert str(schema.field("timestamp").type) == "timestamp[us, tz=UTC]", name
        assert str(schema.field("pump_time").type) == "timestamp[us]", name
        assert rows[name] == [] or name == "daily_summary", name


def test_a_store_with_no_windows_gives_empty_typed_tables(tmp_path):
    # An account whose pumps have uploaded nothing yet: no normalised file at all.
    outputs = {k: str(tmp_path / f"{k}.parquet") for k in ("decoded", "events", "raw_events", "clock_changes")}
    log = logging.getLogger("test-tables-more")
    tables.build_events([], outputs, "Europe/Berlin", "recorded_changes", log)
    events = pq.read_table(outputs["events"])
    assert events.num_rows == 0
    assert [(n, str(events.schema.field(n).type)) for n in ("pump_serial", "seq_num", "event_id", "pump_time")] == [
        ("pump_serial", "string"),
        ("seq_num", "int64"),
        ("event_id", "int32"),
        ("pump_time", "timestamp[us]"),
    ]
    tables.build_table("cgm_readings", outputs["decoded"], str(tmp_path / "cgm.parquet"), log)
    cgm = pq.read_table(tmp_path / "cgm.parquet")
    assert cgm.num_rows == 0
    assert str(cgm.schema.field("glucose_mg_dl").type) == "int32"
    assert str(cgm.schema.field("timestamp").type) == "timestamp[us, tz=UTC]"
