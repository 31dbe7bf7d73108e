"""exports/{table}/: each table as a Hive-partitioned Parquet dataset, one partition per 28-day cell.

Built from test_cells' pump histories: a dataset made from the tables without the last day and then
brought up to date must be, byte for byte, the dataset made from nothing; pandas, polars and DuckDB
must read it as the table (the rows and order of its single-file Parquet export).
"""

from __future__ import annotations

import logging
import os
import shutil

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest
from tandem_export import dataset
from test_cells import _build, _daily, _grid_cuts, _windows

pytestmark = pytest.mark.fast

LOG = logging.getLogger("test-dataset")


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dataset")
    h = _daily(60, "2025-04-02 08:00", "2025-04-02 12:00")  # 2025-04-02 .. 2025-05-31: cells 225, 226, 227
    raw = tmp / "raw"
    raw.mkdir()
    _build(_windows(raw, h, _grid_cuts(h, len(h.records) - 6)), tmp / "before")
    _build(_windows(raw, h, _grid_cuts(h)), tmp / "after")
    return tmp


def _write(folder, out, table="basal_deliveries", source="demo"):
    return dataset.write_dataset(folder / f"{table}.cells.json", out / table / ".dataset.json", source, LOG)


def _files(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        (0, "2008-01-01_2008-01-28"),  # the grid's first cell
        (225, "2025-04-01_2025-04-28"),  # 2008-01-01 + 225 * 28 days = 2025-04-01
        (226, "2025-04-29_2025-05-26"),
        (-1, "2007-12-04_2007-12-31"),
        (None, "no-time"),
    ],
)
def test_a_partition_is_named_by_its_cells_first_and_last_utc_day(cell, value):
    assert dataset.period(cell) == value


def test_a_new_day_rewrites_only_the_last_partition(builds, tmp_path):
    out = tmp_path / "inc"
    _write(builds / "before", out)
    first = {p: (os.stat(p).st_ino, os.stat(p).st_mtime_ns) for p in (out / "basal_deliveries").rglob("*.parquet")}
    written = [w for *_, w in _write(builds / "after", out)]
    assert written == [False, False, True]
    now = {p: (os.stat(p).st_ino, os.stat(p).st_mtime_ns) for p in (out / "basal_deliveries").rglob("*.parquet")}
    assert [p.parent.name for p in sorted(now)] == [
        "utc_period=2025-04-01_2025-04-28",
        "utc_period=2025-04-29_2025-05-26",
        "utc_period=2025-05-27_2025-06-23",
    ]
    assert sum(now[p] == first[p] for p in now) == 2  # the first two kept their files
    scratch = tmp_path / "scratch"
    _write(builds / "after", scratch)
    assert _files(out) == _files(scratch)
    # ... and a run with nothing new writes nothing.
    assert [w for *_, w in _write(builds / "after", out)] == [False, False, False]


@pytest.mark.parametrize("table", ["basal_deliveries", "events", "cgm_readings", "clock_changes"])
def test_pandas_polars_and_duckdb_read_it_as_the_table(builds, tmp_path, table):
    _write(builds / "after", tmp_path, table)
    root = tmp_path / table
    single = builds / "after" / "exports" / f"{table}.parquet"
    ref = pq.read_table(single)
    by_pandas = pd.read_parquet(root)
    assert list(by_pandas.columns) == [*ref.schema.names, "utc_period"]
    if ref.num_rows:
        assert by_pandas.drop(columns="utc_period").equals(ref.to_pandas())
    else:
        assert len(by_pandas) == 0
    by_polars = pl.read_parquet(f"{root}/**/*.parquet", hive_partitioning=True)
    assert by_polars.drop("utc_period").equals(pl.read_parquet(single))
    assert by_polars.schema["utc_period"] == pl.String
    con = duckdb.connect()
    got = con.sql(f"SELECT * EXCLUDE (utc_period) FROM read_parquet('{root}/**/*.parquet', hive_partitioning=true)")
    assert got.fetchall() == con.sql(f"SELECT * FROM read_parquet('{single}')").fetchall()
    assert {
        r[0] for r in con.sql(f"SELECT DISTINCT typeof(utc_period) FROM read_parquet('{root}/**/*.parquet')").fetchall()
    } <= {"VARCHAR"}


def test_every_part_is_labelled_and_every_column_nullable(builds, tmp_path):
    parts = _write(builds / "after", tmp_path, "basal_deliveries", source="demo (generated demo pump, not real data)")
    for path, rows, _ in parts:
        meta = pq.read_metadata(path)
        assert meta.num_rows == rows > 0
        assert meta.metadata[b"source"] == b"demo (generated demo pump, not real data)"
        assert meta.metadata[b"table"] == b"basal_deliveries"
        assert all(f.nullable for f in pq.read_schema(path)), path


def test_a_table_without_rows_is_one_empty_partition_with_its_columns(builds, tmp_path):
    parts = _write(builds / "after", tmp_path, "clock_changes")
    assert [(p.parent.name, rows) for p, rows, _ in parts] == [("utc_period=no-time", 0)]
    assert (
        pq.read_schema(parts[0][0]).names
        == pq.read_schema(builds / "after" / "exports" / "clock_changes.parquet").names
    )


@pytest.mark.parametrize(
    "marker",
    [
        "not json",
        '{"format": "tandem_export.dataset/0", "table": "basal_deliveries", "partitions": {}}',
        '{"format": "tandem_export.dataset/1", "table": "events", "partitions": {}}',
        '{"format": "tandem_export.dataset/1", "table": "basal_deliveries", "partitions": []}',
    ],
)
def test_a_marker_that_is_not_valid_writes_every_partition_again(builds, tmp_path, marker):
    _write(builds / "after", tmp_path)
    (tmp_path / "basal_deliveries" / ".dataset.json").write_text(marker)
    assert [w for *_, w in _write(builds / "after", tmp_path)] == [True, True, True]


def test_a_marker_naming_a_path_outside_is_not_followed_and_stray_partitions_go(builds, tmp_path):
    _write(builds / "after", tmp_path)
    root = tmp_path / "basal_deliveries"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    marker = root / ".dataset.json"
    marker.write_text(
        marker.read_text().replace('"partitions": {', '"partitions": {"../../outside": "' + "0" * 64 + '", ')
    )
    (root / "utc_period=2020-01-01_2020-01-28").mkdir()  # a partition no cell holds
    (root / "utc_period=2020-01-01_2020-01-28" / "part-0.parquet").write_bytes(b"old")
    (root / "utc_period=2019-01-01_2019-01-28").symlink_to(outside)  # a link: removed, not followed
    assert [w for *_, w in _write(builds / "after", tmp_path)] == [False, False, False]
    assert sorted(p.name for p in root.iterdir()) == [
        ".dataset.json",
        "utc_period=2025-04-01_2025-04-28",
        "utc_period=2025-04-29_2025-05-26",
        "utc_period=2025-05-27_2025-06-23",
    ]
    assert (outside / "keep.txt").read_text() == "mine"
    assert "outside" not in marker.read_text()


def test_a_period_read_back_must_be_a_period():
    for bad in ("../x", "2025-04-01", "no-time/..", ""):
        with pytest.raises(ValueError, match="is not a period"):
            dataset.partition_folder("exports/t", bad)


@pytest.mark.parametrize(
    "stray",
    ["notes.txt", "old_backup/part-0.parquet", "utc_period=2025-04-01_2025-04-28/part-1.parquet", "link"],
)
def test_a_file_the_pipeline_did_not_write_stops_it_with_one_line(builds, tmp_path, stray):
    _write(builds / "after", tmp_path)
    root = tmp_path / "basal_deliveries"
    if stray == "link":  # a wanted period that is a link to elsewhere: never written through
        (tmp_path / "elsewhere").mkdir()
        shutil.rmtree(root / "utc_period=2025-05-27_2025-06-23")
        (root / "utc_period=2025-05-27_2025-06-23").symlink_to(tmp_path / "elsewhere")
        before = _files(root)
        stray = "utc_period=2025-05-27_2025-06-23"
    else:
        (root / stray).parent.mkdir(parents=True, exist_ok=True)
        (root / stray).write_bytes(b"PAR1 not ours")
        before = _files(root)
    with pytest.raises(dataset.StrayFile, match=r"not .*; move it out of .* and run again$"):
        _write(builds / "before", tmp_path)
    assert _files(root) == before  # nothing written or removed
    assert not list((tmp_path / "elsewhere").iterdir()) if (tmp_path / "elsewhere").exists() else True
