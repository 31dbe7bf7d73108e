"""Real history-log records captured by other projects, decoded here, against the values those
projects assert.

The records are copied verbatim from the tests of jwoglom/pumpX2 (messages/src/test/java/.../
historyLog/*HistoryLogTest.java), which hold them in the pump's Bluetooth byte order
(little-endian), and of jwoglom/tconnectsync (tests/eventparser/events/test_liddailybasal.py),
which hold them as Tandem Source stores them (big-endian, this project's form).  The conversion
from pumpX2's order is written here, not taken from the package: each header field byte-reversed
and each 4-byte word of the payload byte-reversed (reference notes, "Byte order, and where public
parsers differ").  Every expected value is the one the peer's own test asserts; nothing is derived
from this package's layout table.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tandem_export.normalize import normalize_file

pytestmark = pytest.mark.fast  # the fast tier of value tests (make test-fast)

EPOCH = datetime(2008, 1, 1)


def from_little_endian(hex_le: str) -> bytes:
    """A pumpX2 record (little-endian) in the big-endian form: header fields and payload words reversed."""
    raw = bytes.fromhex(hex_le)
    assert len(raw) == 26
    head = raw[0:2][::-1] + raw[2:6][::-1] + raw[6:10][::-1]
    payload = b"".join(raw[10 + 4 * k : 14 + 4 * k][::-1] for k in range(4))
    return head + payload


def decode(tmp_path: Path, records: list[bytes]) -> list[dict]:
    raw = tmp_path / "records.bin"
    raw.write_bytes(b"".join(records))
    normalize_file(raw, "90512345", tmp_path / "out.parquet")
    return pq.read_table(tmp_path / "out.parquet").to_pylist()


# --- 81 LID_DAILY_BASAL: the last word holds the LiPo voltage (mV), the charge (%) and a flag -------

# pumpX2 DailyBasalHistoryLogTest: (record, pumpTimeSec, sequenceNum, dailyTotalBasal, lastBasalRate,
# iob, lipoMv, actualBatteryCharge, the flag) as its tests _0700, _2358 and _2340 assert them (floats
# are float32 values; the flag is true only in _2358, two minutes before midnight).
PUMPX2_DAILY_BASAL = [
    ("51000570941a0ec00200fa28b540b81e653f000000000041400f", 445935621, 180238, 5.661252, 0.895, 0.0, 3904, 65, False),
    (
        "51009e5e951a63c60200f64e7641cdcc4c3ff45b2f400137fd0e",
        445996702,
        181859,
        15.394278,
        0.8,
        2.7399874,
        3837,
        55,
        True,
    ),
    (
        "5100655a951a4ac6020088677341295c0f3e7b0e52400037f90e",
        445995621,
        181834,
        15.212776,
        0.14,
        3.2821338,
        3833,
        55,
        False,
    ),
]
# tconnectsync test_liddailybasal (big-endian already): seq 1046436, 3830 mV, 55 %; seq 1046875, 3827 mV, 54 %.
TCONNECTSYNC_DAILY_BASAL = [
    ("00511fd61467000ff7a441b2d3e23f4ccccd407ede620ef63700", 1046436, 22.3535, 0.8, 3.9823, 3830, 55, False),
    ("00511fd63c3f000ff95b400dcd7b3f9ba5e33fe39a3b0ef33600", 1046875, None, None, None, 3827, 54, False),
]


def test_daily_basal_battery_from_real_records(tmp_path):
    records = [from_little_endian(r[0]) for r in PUMPX2_DAILY_BASAL] + [
        bytes.fromhex(r[0]) for r in TCONNECTSYNC_DAILY_BASAL
    ]
    rows = sorted(decode(tmp_path, records), key=lambda r: r["seq_num"])
    by_battery = [(r["battery_lipo_mv"], r["battery_charge_percent"], r["final_event_of_day"]) for r in rows]
    expected = [(mv, pct, flag) for *_, mv, pct, flag in PUMPX2_DAILY_BASAL + TCONNECTSYNC_DAILY_BASAL]
    assert sorted(by_battery) == sorted(expected)
    for _, seconds, seq, total, last, iob, *_ in PUMPX2_DAILY_BASAL:
        row = next(r for r in rows if r["seq_num"] == seq)
        assert row["pump_time"] == EPOCH + timedelta(seconds=seconds)
        assert row["daily_total_basal_units"] == pytest.approx(total, rel=1e-7)
        assert row["last_basal_rate_units_per_hour"] == pytest.approx(last, rel=1e-7)
        assert row["iob_units"] == pytest.approx(iob, rel=1e-7, abs=1e-12)
    first = next(r for r in rows if r["seq_num"] == 1046436)
    assert (first["daily_total_basal_units"], first["last_basal_rate_units_per_hour"], first["iob_units"]) == (
        pytest.approx(22.3535, rel=1e-5),
        pytest.approx(0.8),
        pytest.approx(3.9823, rel=1e-5),
    )
    # tconnectsync's record: pump seconds 534123623 (0x1fd61467) from 2008-01-01.
    assert first["pump_time"] == EPOCH + timedelta(seconds=534_123_623)


def pumplogs(tmp_path: Path, props: dict) -> dict:
    event = {
        "eventCode": 81,
        "sequenceGroup": 1,
        "sequenceNumber": 7,
        "pumpDateTime": "2025-06-30T23:59:00",
        "eventProperties": props,
    }
    path = tmp_path / "daily.json"
    path.write_text(json.dumps({"events": [event], "clockChanges": []}))
    normalize_file(path, "90512345", tmp_path / "daily.parquet")
    return pq.read_table(tmp_path / "daily.parquet").to_pylist()[0]


def test_daily_basal_pumplogs_keyed_by_the_layout_table_names(tmp_path):
    # A pump-logs answer keyed as the layout table names the bytes of the first tconnectsync record:
    # MSB 0x0e = 14, LSB 0xf6 = 246 (the voltage, 14 x 256 + 246 = 3830 mV), and
    # "batteryLipoMilliVolts" 0x3700 = 14080 (charge 0x37 = 55 %, flag 0).
    row = pumplogs(
        tmp_path,
        {"batteryChargePercentMSBRaw": 14, "batteryChargePercentLSBRaw": 246, "batteryLipoMilliVolts": 14080},
    )
    assert (row["battery_lipo_mv"], row["battery_charge_percent"], row["final_event_of_day"]) == (3830, 55, False)


def test_daily_basal_pumplogs_keyed_by_what_the_bytes_hold(tmp_path):
    row = pumplogs(tmp_path, {"batteryLipoMilliVolts": 3827, "batteryChargePercent": 54, "finalEventForDay": 1})
    assert (row["battery_lipo_mv"], row["battery_charge_percent"], row["final_event_of_day"]) == (3827, 54, True)


# --- 279 LID_BASAL_DELIVERY: 65535 is "not set" -----------------------------------------------------

# pumpX2 BasalDeliveryHistoryLogTest: (record, source, commanded, profile, algorithm, temp) in mU/h;
# "algorithmRate=65535 (0xffff) here represents 'n/a'".
PUMPX2_BASAL = [
    ("17119bf69d22407e0700000003000000e803ffffffff00000000", "suspended", 0, 1000, None, None),
    ("1711f4d69d22e47c070003000300e803e803e803ffff00000000", "algorithm", 1000, 1000, 1000, None),
]


def units(milliunits):
    return None if milliunits is None else milliunits / 1000


def test_basal_delivery_not_set_rates_are_null(tmp_path):
    rows = sorted(decode(tmp_path, [from_little_endian(r[0]) for r in PUMPX2_BASAL]), key=lambda r: r["seq_num"])
    got = [
        (
            r["commanded_rate_source"],
            r["commanded_rate_units_per_hour"],
            r["profile_rate_units_per_hour"],
            r["algorithm_rate_units_per_hour"],
            r["temp_rate_units_per_hour"],
        )
        for r in rows
    ]
    # seq 490724 (the second record) comes first.
    want = [(s, units(c), units(p), units(a), units(t)) for _, s, c, p, a, t in reversed(PUMPX2_BASAL)]
    assert got == want


# --- 11 / 12: the insulin left in the cartridge, whole units -----------------------------------------


def test_suspend_and_resume_insulin_amount_from_real_records(tmp_path):
    # pumpX2 PumpingSuspendedHistoryLogTest (preSuspendState 106, insulinAmount 150, reason ALARM,
    # rpaTimeout 15) and PumpingResumedHistoryLogTest (preResumeState 100, insulinAmount 185, "the
    # remaining reservoir amount").
    suspend = from_little_endian("0b1009b90123765b0b006a0000009600010f0000000000000000")
    resume = from_little_endian("0c10acce2623ecf1090064000000b90000000000000000000000")
    rows = {r["event_name"]: r for r in decode(tmp_path, [suspend, resume])}
    s, r = rows["pumping_suspended"], rows["pumping_resumed"]
    assert (s["pre_suspend_state"], s["insulin_amount_units"], s["suspend_reason"], s["rpa_timeout_minutes"]) == (
        106,
        150,
        "alarm",
        15,
    )
    assert (r["pre_resume_state"], r["insulin_amount_units"]) == (100, 185)


# --- CGM, bolus, BG and fills: decoding that agrees with the peers -----------------------------------


def test_cgm_bolus_and_fill_records_from_real_captures(tmp_path):
    records = {
        # DexcomG6CGMHistoryLogTest r1: rate -2, status 0, value 112, rssi -89, egv ts 446191545, info 481
        "g6": "0001b957981a35dc0200000001fe06a77000b957981ae1010001",
        # DexcomG7CGMHistoryLogTest r1: rate 4, value 257, algorithm state 32, egv ts 566516805, info 6625
        "g7": "8f11485cc42152bb07000000010420c30101455cc421e1190000",
        # BolusDeliveryHistoryLogTest r1: id 1044, status 0, types 9, source 7, now 1001, correction 1001, total 1001
        "bolus": "1801db6d961a87cd0200140400090714e9030000e9030000e903",
        # CartridgeFilledHistoryLogTest: insulinDisplay 180, insulinActual 185.63852
        "cartridge": "2100fb59951a35c60200b400000076a339430000000000000000",
        # TubingFilledHistoryLogTest: primeSize -1.0 ("a firmware sentinel"), completion 3, position 662652
        "tubing": "3f103d4d9d22c3760700000080bf030000007c1c0a0000000000",
    }
    rows = {r["event_id"]: r for r in decode(tmp_path, [from_little_endian(h) for h in records.values()])}
    g6, g7, bolus, cartridge, tubing = (rows[e] for e in (256, 399, 280, 33, 63))
    assert (g6["rate_mg_dl_per_min"], g6["glucose_display_value_mg_dl"], g6["rssi_dbm"]) == (-0.2, 112, -89)
    assert g6["egv_timestamp_seconds"] == 446_191_545 and g6["glucose_value_status"] == "ok"
    assert (g7["rate_mg_dl_per_min"], g7["glucose_display_value_mg_dl"], g7["egv_timestamp_seconds"]) == (
        0.4,
        257,
        566_516_805,
    )
    assert g7["algorithm_state"] == "valid_egv"
    assert (bolus["bolus_id"], bolus["requested_now_units"], bolus["correction_units"]) == (1044, 1.001, 1.001)
    assert (bolus["delivered_total_units"], bolus["bolus_source"], bolus["bolus_delivery_status"]) == (
        1.001,
        "algorithm",
        "completed",
    )
    assert cartridge["insulin_volume_units"] == 180
    assert cartridge["v2_volume_units"] == pytest.approx(185.63852, rel=1e-7)
    assert (tubing["prime_size_units"], tubing["completion_status"], tubing["position_counts"]) == (
        None,
        "completed",
        662_652,
    )
