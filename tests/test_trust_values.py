"""Impossible values and vanishing events in saved files, through the whole workflow.

The cases are those found on main by the trust issue: from a saved pump-logs file, glucose -1 and
9000 mg/dL and basal -5 U/h and 4,294,967 U/h were exported as valid readings and deliveries, a day's
daily_summary showed 357,534 U of insulin, glucose 2147483648 crashed the table job, a "not set"
temp rate (65535 milliunits/h) became 65.535 U/h, and a saved file replaced by a shorter download
dropped events from every table without a word.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from conftest import copy_workflow, snakemake


def event(code: int, seq: int, when: str, props: dict) -> dict:
    return {
        "eventCode": code,
        "sequenceGroup": 2,
        "sequenceNumber": seq,
        "pumpDateTime": when,
        "eventProperties": props,
    }


def cgm(seq: int, minute: int, value, status: int = 0) -> dict:
    # egvTimeStamp: pump seconds since 2008 of 2025-06-01 10:MM (6361 days: 17 years with 5 leap days
    # = 6210, + 151 days of January-May 2025; 549_590_400 s at 00:00, + 10 h).
    stamp = 549_590_400 + 36_000 + 60 * minute
    props = {"currentGlucoseDisplayValue": value, "glucoseValueStatus": status, "egvTimeStamp": stamp, "rate": 1}
    return event(399, seq, f"2025-06-01T10:{minute:02d}:05", props)


def basal(seq: int, minute: int, commanded, temp=0) -> dict:
    props = {"commandedRateSource": 1, "profileBasalRate": 800, "commandedRate": commanded, "tempRate": temp}
    return event(279, seq, f"2025-06-01T10:{minute:02d}:00", props)


def run(tmp_path: Path, files: list[Path], *targets: str, check: bool = True):
    workdir = tmp_path / "wf"
    if not workdir.exists():
        copy_workflow(workdir)
    listing = "[" + ",".join(str(f) for f in files) + "]"
    return workdir, snakemake(
        workdir,
        "-c1",
        *(targets or ("exports/cgm_readings.parquet",)),
        "--config",
        "source=file",
        f"files={listing}",
        "file_pump_serial=90512345",
        "timezone=UTC",
        check=check,
    )


def table(workdir: Path, name: str) -> list[dict]:
    return pq.read_table(workdir / "exports" / f"{name}.parquet").to_pylist()


def test_impossible_values_are_null_counted_and_never_readings_or_insulin(tmp_path):
    events = [
        cgm(1, 0, 120),
        cgm(2, 5, -1),
        cgm(3, 10, 9000),
        cgm(4, 15, 2_147_483_648),
        cgm(5, 20, 0, status=1),  # HIGH: display value 0 is "no value", the row is a high reading
        basal(6, 0, 800),
        basal(7, 5, -5000),
        basal(8, 10, 4_294_967_295),
        basal(9, 15, 800, temp=65_535),  # no temp rate active
        basal(10, 20, 800),
    ]
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps({"events": events, "clockChanges": []}))
    workdir, proc = run(tmp_path, [saved], "exports/cgm_readings.parquet", "exports/daily_summary.parquet")
    assert "Traceback" not in proc.stderr

    rows = {r["seq_num"]: r for r in table(workdir, "cgm_readings")}
    assert [(rows[s]["glucose_mg_dl"], rows[s]["glucose_status"]) for s in (1, 2, 3, 4, 5)] == [
        (120, "ok"),
        (None, "invalid"),
        (None, "invalid"),
        (None, "invalid"),
        (401, "high"),
    ]
    rates = {r["seq_num"]: r for r in table(workdir, "basal_deliveries")}
    assert [rates[s]["commanded_rate_units_per_hour"] for s in (6, 7, 8, 9, 10)] == [0.8, None, None, 0.8, 0.8]
    assert rates[9]["temp_rate_units_per_hour"] is None
    day = table(workdir, "daily_summary")[0]
    assert day["cgm_readings"] == 2  # 120 and the HIGH reading (401)
    assert day["mean_glucose_mg_dl"] == (120 + 401) / 2
    # 0.8 U/h for 5 minutes (6 -> 7), nothing for the two refused rates, 0.8 U/h for 5 minutes (9 -> 10)
    # and the last record's 5 minutes: 3 x 0.8 / 12 = 0.2 U.
    assert abs(day["basal_units"] - 0.2) < 1e-12

    # One warning per field (in event id order), on the console: how many, the range, the first pump
    # time and seq_num.
    lines = [line for line in proc.stderr.splitlines() if "were read as NULL" in line]
    assert len(lines) == 2, proc.stderr
    assert (
        "3 cgm_data_g7 value(s) of glucose_display_value_mg_dl outside 40 to 400 were read as NULL "
        "(the events are kept; the first at pump time 2025-06-01 10:05:05, seq_num 2)"
    ) in lines[1]
    assert (
        "2 basal_delivery value(s) of commanded_rate_units_per_hour outside 0 to 15 were read as NULL "
        "(the events are kept; the first at pump time 2025-06-01 10:05:00, seq_num 7)"
    ) in lines[0]
    assert "temp_rate" not in proc.stderr, "a 'no value' marker is not a warning"


def test_a_saved_file_that_lost_events_says_so_and_how_to_keep_them(tmp_path):
    saved = tmp_path / "export.json"
    early = [cgm(seq, 5 * (seq - 1), 100 + seq) for seq in range(1, 7)]
    saved.write_text(json.dumps({"events": early, "clockChanges": []}))
    workdir, _ = run(tmp_path, [saved])
    earlier_copy = next((workdir / "data" / "raw" / "files").glob("export-*.raw"))
    # A newer download of the same file holds only the last three of them, and one new reading.
    later = early[3:] + [cgm(7, 30, 140)]
    saved.write_text(json.dumps({"events": later, "clockChanges": []}))
    _, proc = run(tmp_path, [saved])
    warning = [line for line in proc.stderr.splitlines() if "lacks" in line]
    assert warning == [
        f"[normalize] WARNING: {saved}: its new content lacks 3 event(s) of the copy imported earlier "
        f"(2025-06-01 to 2025-06-01), which are no longer in the tables; to keep them, list the earlier copy too: "
        f"{earlier_copy.relative_to(workdir)}"
    ]
    assert sorted(r["seq_num"] for r in table(workdir, "cgm_readings")) == [4, 5, 6, 7]
    # Listed together, the earlier copy and the new file give every reading once.
    _, proc = run(tmp_path, [saved, earlier_copy])
    assert sorted(r["seq_num"] for r in table(workdir, "cgm_readings")) == [1, 2, 3, 4, 5, 6, 7]
    assert "lacks" not in proc.stderr


def test_a_bolus_whose_parts_add_up_to_more_than_the_max_bolus_is_no_delivery(tmp_path):
    # A bolus (id 7) completed with 20 U now (20) and 10 U extended (21): 30 U, more than any bolus
    # can deliver (25 U); a second bolus (id 8) with 3 + 2 U is delivered as 5 U.
    def completed(code, seq, minute, bolus_id, units):
        props = {"bolusId": bolus_id, "completionStatus": 3, "insulinDelivered": units, "insulinRequested": units}
        return event(code, seq, f"2025-06-01T11:{minute:02d}:00", props)

    events = [completed(20, 1, 0, 7, 20.0), completed(21, 2, 30, 7, 10.0)]
    events += [completed(20, 3, 40, 8, 3.0), completed(21, 4, 50, 8, 2.0)]
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps({"events": events, "clockChanges": []}))
    workdir, _ = run(tmp_path, [saved], "exports/bolus_deliveries.parquet", "exports/daily_summary.parquet")
    assert {r["bolus_id"]: r["delivered_units"] for r in table(workdir, "bolus_deliveries")} == {7: None, 8: 5.0}
    assert table(workdir, "daily_summary")[0]["bolus_units"] == 5.0


def test_a_replayed_stretch_of_history_is_not_basal_twice(tmp_path):
    # Twelve basal records at 0.8 U/h, 10:00-10:55, then the same twelve again under new sequence
    # numbers (the clock went back 55 minutes without a recorded change): the pump delivered each
    # instant once, 0.8 U/h for 12 x 5 minutes = 0.8 U, not 1.6 U; the console says the clock went back.
    first = [basal(1 + i, 5 * i, 800) for i in range(12)]
    replay = [basal(13 + i, 5 * i, 800) for i in range(12)]
    saved = tmp_path / "replay.json"
    saved.write_text(json.dumps({"events": first + replay, "clockChanges": []}))
    workdir, proc = run(tmp_path, [saved], "exports/daily_summary.parquet")
    day = table(workdir, "daily_summary")[0]
    assert day["basal_records"] == 24
    assert abs(day["basal_units"] - 0.8) < 1e-12
    assert "the pump clock went back 1 time(s) by more than an hour" not in proc.stderr  # 55 minutes: under an hour


def test_a_measured_time_that_cannot_be_the_readings_time_is_invalid(tmp_path):
    # Readings logged on 2025-06-01 at 10:MM:05 whose EGV time is the logged time less 125 s
    # (fine), 20 hours (a backfill: fine), 400 days later, ten years earlier, 1 s after 2008-01-01 and
    # the last second the pump clock can count: the last four are no reading, at the logged time.
    logged = 549_590_400 + 36_000  # 2025-06-01 10:00:00 in pump seconds (see cgm())
    offsets = [-125, -20 * 3600, 400 * 86_400, -3652 * 86_400]  # from each record's own time, 10:MM:05
    stamps = [logged + 5 * seq * 60 + 5 + o for seq, o in enumerate(offsets, start=1)] + [1, 0xFFFF_FFFE]
    events = []
    for seq, stamp in enumerate(stamps, start=1):
        reading = cgm(seq, 5 * seq, 150)
        reading["eventProperties"]["egvTimeStamp"] = stamp
        events.append(reading)
    saved = tmp_path / "egv.json"
    saved.write_text(json.dumps({"events": events, "clockChanges": []}))
    workdir, proc = run(tmp_path, [saved])
    rows = {r["seq_num"]: r for r in table(workdir, "cgm_readings")}
    assert [(rows[s]["glucose_mg_dl"], rows[s]["glucose_status"]) for s in range(1, 7)] == [(150, "ok")] * 2 + [
        (None, "invalid")
    ] * 4
    assert str(rows[1]["pump_time"]) == "2025-06-01 10:03:00"  # 125 s before 10:05:05
    assert str(rows[2]["pump_time"]) == "2025-05-31 14:10:05"  # 20 hours before 10:10:05
    for s in range(3, 7):
        assert rows[s]["pump_time"] == rows[s]["logged_pump_time"]
    assert "cgm_readings: 4 CGM reading(s) are 'invalid'" in proc.stderr


def test_a_bolus_that_delivered_more_than_it_requested_is_no_delivery(tmp_path):
    # Bolus 108: the calculator's total is 5 U (66), the completion says 24.9 U delivered (20): no
    # delivery can exceed its request. Bolus 109: 3 U requested, 3 U delivered.
    def bolus(bolus_id, seq, total, delivered):
        request = event(66, seq, "2025-06-01T12:00:00", {"bolusId": bolus_id, "totalBolusSize": total})
        opened = event(64, seq - 1, "2025-06-01T12:00:00", {"bolusId": bolus_id, "carbAmount": 30})
        done = event(20, seq + 1, "2025-06-01T12:05:00",
                     {"bolusId": bolus_id, "completionStatus": 3, "insulinDelivered": delivered})  # fmt: skip
        return [opened, request, done]

    saved = tmp_path / "bolus.json"
    saved.write_text(json.dumps({"events": bolus(108, 2, 5.0, 24.9) + bolus(109, 12, 3.0, 3.0), "clockChanges": []}))
    workdir, proc = run(tmp_path, [saved], "exports/bolus_deliveries.parquet")
    got = {r["bolus_id"]: (r["requested_units"], r["delivered_units"]) for r in table(workdir, "bolus_deliveries")}
    assert got == {108: (5.0, None), 109: (3.0, 3.0)}
    assert "bolus_deliveries: 1 completed bolus(es) carry no delivered amount" in proc.stderr
