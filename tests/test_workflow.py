"""The workflow end to end on the demo pump: every export, values checked against the raw store."""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import shutil
import warnings
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import copy_workflow, snakemake
from tandem_export import cells, tables

TABLES = ("raw_events", "events", "clock_changes", "cgm_readings", "basal_deliveries", "bolus_deliveries")
DEMO_ZONE = ZoneInfo("America/Chicago")
EPOCH = dt.datetime(2008, 1, 1)


def raw_events(workdir: Path) -> list[dict]:
    """Every event of the raw store, read with the json module (independent of the pipeline)."""
    out = []
    for path in sorted((workdir / "data" / "raw").rglob("*.json")):
        out.extend(json.loads(path.read_text())["events"])
    return out


def utc(wall: dt.datetime, zone: ZoneInfo = DEMO_ZONE) -> dt.datetime:
    return wall.replace(tzinfo=zone).astimezone(dt.UTC)


def rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def test_every_export_exists_and_log_says_demo(demo_run):
    for table in TABLES:
        for fmt in ("parquet", "csv"):
            assert (demo_run / "exports" / f"{table}.{fmt}").stat().st_size > 0
    log = (demo_run / "first_run.log").read_text()
    assert "DEMO pump DEMO-00000001" in log
    assert "not anyone's real history" in log
    meta = pq.read_metadata(demo_run / "exports" / "cgm_readings.parquet").metadata
    assert b"demo" in meta[b"source"]


def test_events_carry_their_utc_offset_and_reliability(demo_run):
    events = rows(demo_run / "exports" / "raw_events.parquet")
    # America/Chicago is on daylight time (UTC-5) for the whole demo (April to June 2025).
    assert {e["utc_offset_minutes"] for e in events} == {-300}
    assert all(e["time_reliable"] for e in events)
    assert all(e["timestamp"] == utc(e["pump_time"]) for e in events[:500])
    assert rows(demo_run / "exports" / "clock_changes.parquet") == []


def test_raw_store_keeps_windows_of_at_most_28_days_with_checksums(demo_run):
    files = sorted((demo_run / "data" / "raw" / "DEMO-00000001").glob("*.json"))
    assert [f.name for f in files] == [
        "2025-04-02_2025-04-29.json",
        "2025-04-30_2025-05-27.json",
        "2025-05-28_2025-06-24.json",
        "2025-06-25_2025-06-30.json",
    ]
    for f in files:
        # The recorded checksum is the SHA-256 of the bytes on disk, in sha256sum's format.
        import hashlib

        assert Path(str(f) + ".sha256").read_text() == f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}\n"


def test_cgm_readings_match_the_raw_store(demo_run):
    events = [e for e in raw_events(demo_run) if e["eventCode"] == 399]
    by_time: dict[dt.datetime, dict] = {}
    for e in sorted(events, key=lambda e: e["sequenceNumber"]):
        measured = EPOCH + dt.timedelta(seconds=e["eventProperties"]["egvTimeStamp"])
        by_time.setdefault(measured, e)  # the first logging of each measurement
    table = rows(demo_run / "exports" / "cgm_readings.parquet")
    assert len(table) == len(by_time)
    assert len(events) > len(by_time)  # the demo logs one reading twice
    status_value = {0: None, 1: 401, 2: 39}
    seen_status = set()
    for row in table:
        e = by_time[row["pump_time"]]
        p = e["eventProperties"]
        status = p["glucoseValueStatus"]
        expected = p["currentGlucoseDisplayValue"] if status == 0 else status_value[status]
        assert row["glucose_mg_dl"] == expected
        assert row["glucose_status"] == {0: "ok", 1: "high", 2: "low"}[status]
        assert row["timestamp"] == utc(row["pump_time"])
        assert row["trend_mg_dl_per_min"] == pytest.approx(p["rate"] / 10)
        assert row["backfill"] == (1 in p["cgmDataType"])
        assert row["seq_num"] == e["sequenceNumber"]
        assert row["sensor"] == "dexcom_g7"
        seen_status.add(row["glucose_status"])
    assert seen_status == {"ok", "high", "low"}
    backfilled = [r for r in table if r["backfill"]]
    delays = [r["logged_pump_time"] - r["pump_time"] for r in backfilled]
    assert len(backfilled) == 36 + 18  # two signal losses, of 3 h and 1.5 h
    assert min(delays) > dt.timedelta(0) and max(delays) > dt.timedelta(hours=2)
    times = [r["timestamp"] for r in table]
    assert times == sorted(times)


def test_cgm_warmup_gap_after_sensor_change(demo_run):
    table = rows(demo_run / "exports" / "cgm_readings.parquet")
    gaps = [(b["pump_time"] - a["pump_time"]) for a, b in zip(table, table[1:], strict=False)]
    # 9 sensor changes in 90 days, each leaving a 30-minute warm-up without readings (35 min gap).
    assert sum(1 for g in gaps if g == dt.timedelta(minutes=35)) == 9
    assert max(gaps) == dt.timedelta(minutes=35)


def test_basal_deliveries_match_the_raw_store(demo_run):
    events = {e["sequenceNumber"]: e for e in raw_events(demo_run) if e["eventCode"] == 279}
    table = rows(demo_run / "exports" / "basal_deliveries.parquet")
    assert len(table) == len(events) == 90 * 288
    sources = {0: "suspended", 1: "profile", 2: "temp_rate", 3: "algorithm", 4: "temp_rate_and_algorithm"}
    for row in table:
        p = events[row["seq_num"]]["eventProperties"]
        assert row["commanded_rate_units_per_hour"] == p["commandedRate"] / 1000
        assert row["profile_rate_units_per_hour"] == p["profileBasalRate"] / 1000
        assert row["temp_rate_units_per_hour"] == p["tempRate"] / 1000
        assert row["algorithm_rate_units_per_hour"] == p["algorithmRate"] / 1000
        assert row["rate_source"] == sources[p["commandedRateSource"]]
    suspended = [r for r in table if r["rate_source"] == "suspended"]
    assert len(suspended) == 9 and all(r["commanded_rate_units_per_hour"] == 0 for r in suspended)
    assert any(r["rate_source"] == "temp_rate" for r in table)


def test_bolus_deliveries_join_request_delivery_and_completion(demo_run):
    events = sorted(raw_events(demo_run), key=lambda e: e["sequenceNumber"])
    expected = []
    for i, e in enumerate(events):
        if e["eventCode"] != 64:
            continue
        bolus_id = (
            e["eventProperties"]["bolusId"] if "bolusId" in e["eventProperties"] else e["eventProperties"]["bolusID"]
        )
        following = [
            x
            for x in events[i + 1 : i + 400]
            if x["eventProperties"].get("bolusID", x["eventProperties"].get("bolusId")) == bolus_id
        ]
        msg3 = next(x for x in following if x["eventCode"] == 66)["eventProperties"]
        done = next(x for x in following if x["eventCode"] == 20)
        expected.append(
            {
                "seq_num": e["sequenceNumber"],
                "carbs_g": e["eventProperties"]["carbAmount"],
                "bg_mg_dl": e["eventProperties"]["bg"],
                "requested_units": msg3["totalBolusSize"],
                "food_units": msg3["foodBolusSize"],
                "correction_units": msg3["correctionBolusSize"],
                "delivered_units": done["eventProperties"]["insulinDelivered"],
                "completion_status": {0: "user_aborted", 3: "completed"}[done["eventProperties"]["completionStatus"]],
                "completed_at": utc(dt.datetime.fromisoformat(done["pumpDateTime"])),
            }
        )
    table = {r["seq_num"]: r for r in rows(demo_run / "exports" / "bolus_deliveries.parquet")}
    assert len(table) == len(expected) > 250  # about three meals a day for 90 days, plus corrections
    for exp in expected:
        row = table[exp["seq_num"]]
        for key, value in exp.items():
            assert row[key] == value, (key, row)
    cancelled = [r for r in table.values() if r["completion_status"] == "user_aborted"]
    assert len(cancelled) == 1 and cancelled[0]["delivered_units"] < cancelled[0]["requested_units"]


def test_csv_equals_parquet_and_is_rfc4180(demo_run):
    for table in ("cgm_readings", "bolus_deliveries", "events"):
        parquet = rows(demo_run / "exports" / f"{table}.parquet")
        raw = (demo_run / "exports" / f"{table}.csv").read_bytes()
        assert raw.count(b"\r\n") == len(parquet) + 1
        with open(demo_run / "exports" / f"{table}.csv", newline="", encoding="utf-8") as fh:
            records = list(csv.DictReader(fh))
        assert len(records) == len(parquet)
        first, last = records[0], parquet[0]
        assert first["timestamp"] == last["timestamp"].astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert first["pump_time"] == last["pump_time"].strftime("%Y-%m-%d %H:%M:%S")
        assert first["seq_num"] == str(last["seq_num"])
    events = list(csv.DictReader(open(demo_run / "exports" / "events.csv", newline="", encoding="utf-8")))
    assert json.loads(events[0]["data"])  # the JSON column survives quoting


def test_parquet_loads_in_pandas_and_polars_without_warnings(demo_run):
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    for table in TABLES:
        path = demo_run / "exports" / f"{table}.parquet"
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            frame = pd.read_parquet(path)
            pframe = pl.read_parquet(path)
        assert len(frame) == len(pframe) and (len(frame) > 0 or table == "clock_changes")
        assert str(frame["timestamp"].dtype).startswith("datetime64") and "UTC" in str(frame["timestamp"].dtype)
        assert str(frame["pump_time"].dtype).startswith("datetime64") and frame["pump_time"].dt.tz is None


def test_rerun_says_nothing_to_be_done_and_rebuild_is_byte_identical(demo_run):
    # -X importtime lists every module imported: Snakemake's params check must not import pandas
    # (its param records are the same text without it, so "Nothing to be done" still holds).
    proc = snakemake(demo_run, "-c1", "all", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert "Nothing to be done" in proc.stdout + proc.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "snakemake.persistence" in imported and "pandas" not in imported
    exports = demo_run / "exports"
    before = {p.relative_to(exports).as_posix(): p.read_bytes() for p in exports.rglob("*") if p.is_file()}
    shutil.rmtree(exports)
    snakemake(demo_run, "-c2", "all")
    after = {p.relative_to(exports).as_posix(): p.read_bytes() for p in exports.rglob("*") if p.is_file()}
    assert before.keys() == after.keys()
    for name in before:
        if name in ("tandem.duckdb", "MANIFEST.json"):
            continue  # DuckDB gives each new file a random id; its tables: test_tables_more.py
        assert before[name] == after[name], name
    # The manifest too, but for the database's SHA-256.
    manifests = [json.loads(m["MANIFEST.json"]) for m in (before, after)]
    for m in manifests:
        next(f for f in m["files"] if f["path"] == "tandem.duckdb")["sha256"] = "(random)"
    assert manifests[0] == manifests[1]


def test_date_range_export_holds_exactly_the_rows_of_those_days(demo_run):
    snakemake(
        demo_run,
        "-c1",
        "exports/cgm_readings_2025-05-01_2025-05-03.csv",
        "exports/bolus_deliveries_2025-05-01_2025-05-03.parquet",
    )
    full = rows(demo_run / "exports" / "cgm_readings.parquet")
    want = [r["seq_num"] for r in full if dt.date(2025, 5, 1) <= r["pump_time"].date() <= dt.date(2025, 5, 3)]
    with open(demo_run / "exports" / "cgm_readings_2025-05-01_2025-05-03.csv", newline="") as fh:
        got = [int(r["seq_num"]) for r in csv.DictReader(fh)]
    assert got == want and len(got) == 3 * 288
    boluses = rows(demo_run / "exports" / "bolus_deliveries_2025-05-01_2025-05-03.parquet")
    assert boluses and all(dt.date(2025, 5, 1) <= r["pump_time"].date() <= dt.date(2025, 5, 3) for r in boluses)


def test_changing_the_range_reruns_only_exports(demo_run):
    proc = snakemake(demo_run, "-n", "-c1", "all", "--config", "start=2025-05-01", "end=2025-05-31")
    out = proc.stdout + proc.stderr
    job_lines = [
        line.split()
        for line in out.splitlines()
        if line.strip().startswith(("export", "events", "place_events", "normalize", "derived_table", "demo_source"))
    ]
    rules = {parts[0] for parts in job_lines if len(parts) >= 2 and parts[1].isdigit()}
    assert rules == {"export", "export_tables"}, out


def test_configured_range_applies_to_every_table(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    snakemake(workdir, "-c2", "all", "--config", "start=2025-06-01", "end=2025-06-02")
    for table in TABLES:
        table_rows = rows(workdir / "exports" / f"{table}.parquet")
        assert table_rows or table == "clock_changes", table
        assert {r["pump_time"].date() for r in table_rows} <= {dt.date(2025, 6, 1), dt.date(2025, 6, 2)}


# --- exports/tandem.duckdb -----------------------------------------------------------------------


def test_duckdb_database_holds_every_table_with_all_rows(demo_run):
    import duckdb
    from tandem_export.config import TABLES

    path = demo_run / "exports" / "tandem.duckdb"
    assert not list((demo_run / "exports").glob(".tandem.duckdb*"))  # no temporary left behind
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.sql("SET TimeZone = 'UTC'")
        names = {name for (name,) in con.sql("SELECT table_name FROM information_schema.tables").fetchall()}
        assert names == {*TABLES, "export_info", "export_tables", "export_cells"}
        info = dict(con.sql("SELECT key, value FROM export_info").fetchall())
        assert "demo" in info["source"]
        for table in TABLES:
            parquet = pq.read_table(demo_run / "exports" / f"{table}.parquet")  # the whole history
            db = con.sql(f'SELECT * FROM "{table}"').to_arrow_table()
            assert db.schema.names == parquet.schema.names, table
            assert db.num_rows == parquet.num_rows, table
            assert db.to_pylist()[:50] == parquet.to_pylist()[:50], table
        assert con.sql("SELECT count(*) FROM daily_summary").fetchall() == [(90,)]
    finally:
        con.close()


def test_derived_tables_are_the_same_bytes_with_one_writer_or_three(demo_run, tmp_path, monkeypatch):
    """The derived_tables rule runs one writer per thread it is given (one by default); the files must
    not depend on that: each is written by one single-threaded writer, whichever one takes it."""
    from tandem_export.config import DERIVED_TABLES
    from tandem_export.normalize import read_index

    monkeypatch.chdir(demo_run)  # the placement table lists the windows as the workflow named them
    windows = read_index("data/normalized/index.json")
    decoded = "data/tables/decoded.parquet"
    log = logging.getLogger("test-workflow")
    files = {}
    for writers in (1, 3):
        outputs = {name: str(tmp_path / str(writers) / f"{name}.parquet") for name in DERIVED_TABLES}
        tables.build_tables(windows, decoded, outputs, log, "demo", writers)
        files[writers] = {name: open(path, "rb").read() for name, path in outputs.items()}
    for name in DERIVED_TABLES:
        assert files[1][name] == files[3][name], name
        # ... and hold the rows the workflow built (metadata aside: the source label given here differs).
        # (the schema's metadata aside: the cells' files carry none)
        cell_files = cells.files(demo_run / "data" / "tables" / f"{name}.cells.json")
        # (nor the nullability DuckDB records for a cell whose column has no NULL)
        single = pq.read_table(tmp_path / "1" / f"{name}.parquet").replace_schema_metadata(None)
        built = pa.concat_tables([pq.read_table(f).cast(single.schema) for f in cell_files])
        assert single.equals(built), name
    assert len(pq.read_table(tmp_path / "1" / "cgm_readings.parquet")) > 20_000  # the 90 demo days
