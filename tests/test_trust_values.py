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
