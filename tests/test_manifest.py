"""exports/MANIFEST.json describes every export, checked against the files themselves; a failed run
after a change of settings ends with one line naming the exports still built from the old ones."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import copy_workflow, snakemake

RANGE_EXPORT = "cgm_readings_2025-06-01_2025-06-07.csv"
STALE_PREFIX = "exports older than the current settings (not rebuilt because the run failed): "


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """A demo workflow copy after ``snakemake -c2 all`` and one range export."""
    workdir = copy_workflow(tmp_path_factory.mktemp("manifest") / "wf")
    snakemake(workdir, "-c2", "all", f"exports/{RANGE_EXPORT}")
    return workdir


def manifest(workdir: Path) -> dict:
    return json.loads((workdir / "exports" / "MANIFEST.json").read_text(encoding="utf-8"))


def files_under(folder: Path) -> list[str]:
    """Every file under ``folder`` but the manifest, relative, "/" separated (read independently)."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name != "MANIFEST.json" and not p.name.startswith(".")  # (hidden: .dataset.json)
    )


def rows_of(path: Path) -> int:
    """Rows read without the pipeline: a Parquet footer, CSV records after the header, database tables."""
    if path.suffix == ".parquet":
        return pq.read_metadata(path).num_rows
    if path.suffix == ".csv":
        data = path.read_bytes()
        with open(path, newline="", encoding="utf-8") as fh:
            records = sum(1 for _ in csv.reader(fh)) - 1
        assert data.count(b"\r\n") - 1 == records  # no record spans lines in the demo
        return records
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [
            r[0]
            for r in con.sql("SHOW TABLES").fetchall()
            if r[0] not in ("export_info", "export_tables", "export_cells")
        ]
        return sum(con.sql(f'SELECT count(*) FROM "{n}"').fetchall()[0][0] for n in names)
    finally:
        con.close()


def test_manifest_lists_every_export_with_its_rows_and_sha256(demo):
    m = manifest(demo)
    exports = demo / "exports"
    assert [f["path"] for f in m["files"]] == files_under(exports)
    assert len(m["files"]) == 14 * 2 + 1 + 1  # every table in both formats, the database, the range
    assert m["run"] == "complete" and list(m["settings"]) == [""]
    for entry in m["files"]:
        path = exports / entry["path"]
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest(), entry["path"]
        assert entry["rows"] == rows_of(path), entry["path"]
        assert entry["settings"] == m["settings"][""]
        assert "demo" in entry["source"] and "account" not in entry
        if entry["path"] == "tandem.duckdb":
            assert entry["table"] is None and sum(entry["tables"].values()) == entry["rows"]
        elif "/" in entry["path"]:  # exports/{table}/utc_period=.../part-0.parquet
            assert entry["table"] == entry["path"].split("/")[0] and entry["start"] is None
        else:
            assert entry["table"] == entry["path"].split(".")[0].split("_2025")[0]
    # (MANIFEST.json itself is the only file the manifest adds under exports/; records live in data/)
    # (and the datasets' hidden markers, which only Snakemake reads)
    assert not [
        p for p in exports.rglob("*") if p.name.endswith(".json") and p.name not in ("MANIFEST.json", ".dataset.json")
    ]


def test_a_range_export_is_recorded_with_its_range(demo):
    entry = next(f for f in manifest(demo)["files"] if f["path"] == RANGE_EXPORT)
    assert (entry["table"], entry["start"], entry["end"]) == ("cgm_readings", "2025-06-01", "2025-06-07")
    full = pq.read_table(demo / "exports" / "cgm_readings.parquet", columns=["pump_time"]).column(0).to_pylist()
    in_range = [t for t in full if dt.date(2025, 6, 1) <= t.date() <= dt.date(2025, 6, 7)]
    assert entry["rows"] == len(in_range) > 0
    whole = next(f for f in manifest(demo)["files"] if f["path"] == "cgm_readings.csv")
    assert (whole["start"], whole["end"]) == (None, None) and whole["rows"] == len(full)


def test_a_rerun_is_nothing_to_be_done_and_leaves_the_manifest_byte_identical(demo):
    target = demo / "exports" / "MANIFEST.json"
    before, stamp = target.read_bytes(), target.stat().st_mtime_ns
    proc = snakemake(demo, "-c1", "all")
    assert "Nothing to be done" in proc.stdout + proc.stderr
    assert target.read_bytes() == before and target.stat().st_mtime_ns == stamp
    # Rewriting exports with the same bytes (new files, new inodes) gives the same manifest, untouched.
    exports = {p: p.read_bytes() for p in (demo / "exports").glob("*.csv")}
    snakemake(demo, "-c1", "all", "--forcerun", "export_tables")
    assert {p: p.read_bytes() for p in exports} == exports
    assert target.read_bytes() == before and target.stat().st_mtime_ns == stamp
    assert "Nothing to be done" in (snakemake(demo, "-c1", "all").stderr)


def last_line(proc) -> str:
    return [line for line in proc.stderr.splitlines() if line.strip()][-1]


def test_a_failed_run_after_a_settings_change_ends_naming_the_exports_left_older(demo, tmp_path):
    workdir = tmp_path / "wf"
    shutil.copytree(demo, workdir, symlinks=True)
    script = workdir / "scripts" / "build_events.py"
    original = script.read_text()
    script.write_text(original + '\nraise SystemExit("simulated failure")\n')
    # The events job fails: events, raw_events and the database keep the old settings' rows; every
    # other table is rebuilt (keep-going); the range export is not part of all.
    failed = snakemake(workdir, "-c1", "all", "--config", "timezone=Europe/Berlin", check=False)
    assert failed.returncode != 0
    stale = [
        f"exports/{RANGE_EXPORT}",
        "exports/events.csv",
        "exports/events.parquet",
        "exports/raw_events.csv",
        "exports/raw_events.parquet",
        "exports/tandem.duckdb",
    ]
    want = STALE_PREFIX + ", ".join(stale[:3]) + " (+3 more); run again once the error above is fixed"
    assert last_line(failed) == want, failed.stderr[-2000:]
    m = manifest(workdir)
    assert m["run"] == "failed"
    older = sorted(f"exports/{f['path']}" for f in m["files"] if f["settings"] != m["settings"][""])
    assert older == stale
    # Fixed and run again: nothing is older except the range export (not asked for), and a failure
    # with unchanged settings names nothing.
    script.write_text(original)
    snakemake(workdir, "-c1", "all", "--config", "timezone=Europe/Berlin")
    m = manifest(workdir)
    assert m["run"] == "complete"
    assert [f["path"] for f in m["files"] if f["settings"] != m["settings"][""]] == [RANGE_EXPORT]
    snakemake(workdir, "-c1", f"exports/{RANGE_EXPORT}", "--config", "timezone=Europe/Berlin")
    script.write_text(original + '\nraise SystemExit("simulated failure")\n')
    again = snakemake(workdir, "-c1", "all", "--config", "timezone=Europe/Berlin", "--forcerun", "events", check=False)
    assert again.returncode != 0
    assert STALE_PREFIX not in again.stderr
    assert last_line(again) == "At least one job did not complete successfully."


def test_the_datasets_target_writes_every_tables_partitions_recorded_in_the_manifest(demo, tmp_path):
    workdir = tmp_path / "wf"
    shutil.copytree(demo, workdir, symlinks=True)
    proc = snakemake(workdir, "-c1", "datasets")
    assert "export_datasets" in proc.stderr
    m = manifest(workdir)
    parts = [f for f in m["files"] if "/" in f["path"]]
    # The 90 demo days (2025-04-02 .. 2025-06-30) lie in four 28-day cells from 2008-01-01 (from
    # 2025-04-01, 04-29, 05-27 and 06-24) for twelve tables; the one suspension lies in one, and the
    # table without rows (clock_changes) has one empty part that gives its columns.
    periods = ["2025-04-01_2025-04-28", "2025-04-29_2025-05-26", "2025-05-27_2025-06-23", "2025-06-24_2025-07-21"]
    assert len(parts) == 12 * 4 + 1 + 1
    assert {f["path"] for f in parts if f["table"] == "cgm_readings"} == {
        f"cgm_readings/utc_period={p}/part-0.parquet" for p in periods
    }
    assert [f["path"] for f in parts if f["table"] == "clock_changes"] == [
        "clock_changes/utc_period=no-time/part-0.parquet"
    ]
    whole = {f["path"]: f["rows"] for f in m["files"] if "/" not in f["path"]}
    for table in {f["table"] for f in parts}:
        assert sum(f["rows"] for f in parts if f["table"] == table) == whole[f"{table}.parquet"], table
    for f in parts:
        assert f["settings"] == m["settings"][""] and "demo" in f["source"] and "account" not in f
        assert f["rows"] == pq.read_metadata(workdir / "exports" / f["path"]).num_rows
    assert "Nothing to be done" in snakemake(workdir, "-c1", "datasets").stderr


def test_a_tampered_database_and_dataset_marker_are_rebuilt_by_the_workflow(demo, tmp_path):
    workdir = tmp_path / "wf"
    shutil.copytree(demo, workdir, symlinks=True)
    snakemake(workdir, "-c1", "datasets")
    exports = workdir / "exports"
    rows = {t: pq.read_metadata(exports / f"{t}.parquet").num_rows for t in ("cgm_readings", "events")}
    con = duckdb.connect(str(exports / "tandem.duckdb"))
    con.execute("UPDATE export_tables SET table_name = 'x\"; DROP TABLE events; --' WHERE table_name = 'events'")
    con.execute("DELETE FROM cgm_readings WHERE rowid < 10")  # rows edited by hand
    con.close()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    marker = exports / "cgm_readings" / ".dataset.json"
    marker.write_text(
        '{"format": "tandem_export.dataset/1", "table": "cgm_readings", "partitions": {"../../../outside": "x"}}'
    )
    proc = snakemake(workdir, "-c1", "all", "datasets", "--forcerun", "database", "export_datasets")
    assert proc.returncode == 0
    log = (workdir / "logs" / "export" / "tandem.duckdb.log").read_text()
    assert "built again from nothing" in log and "its table list is not valid" in log, log
    con = duckdb.connect(str(exports / "tandem.duckdb"), read_only=True)
    try:
        assert {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in rows} == rows
    finally:
        con.close()
    assert (outside / "keep.txt").read_text() == "mine" and "outside" not in marker.read_text()
    parts = sorted((exports / "cgm_readings").glob("utc_period=*/part-0.parquet"))
    assert len(parts) == 4 and sum(pq.read_metadata(p).num_rows for p in parts) == rows["cgm_readings"]
