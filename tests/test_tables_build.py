"""How the derived tables are built in one process: several tables at once (one reading the others),
by one or two writers, with the data's label in each file, and what the build logs.

Records are packed by hand as in test_tables_core (its helpers); expected rows and lines are
written out by hand.  The pump clock shows Europe/Berlin (UTC+1 in January)."""

from __future__ import annotations

import logging
import re

import pyarrow.parquet as pq
import pytest
from tandem_export import tables
from tandem_export.normalize import normalize_file
from test_tables_core import dex
from test_tables_more import BASAL, SERIAL, rec

pytestmark = pytest.mark.fast

LOG = "test-tables-build"
NAMES = ("cgm_readings", "basal_deliveries", "daily_summary")


@pytest.fixture
def placed(tmp_path, caplog):
    """Two G7 readings (100 and 30 mg/dL: 30 is below 40, so no reading) and two basal records, placed
    in time; (windows, outputs of build_events, its log lines)."""
    records = [
        dex(399, "2025-01-20 10:00:00", 7001, 100),
        dex(399, "2025-01-20 10:05:00", 7002, 30),
        rec(279, "2025-01-20 10:00:00", 7003, BASAL, 0, 1, 1200, 1200, 0, 0),
        rec(279, "2025-01-20 11:00:00", 7004, BASAL, 0, 1, 600, 600, 0, 0),
    ]
    raw = tmp_path / "history.bin"
    raw.write_bytes(b"".join(records))
    windows = [str(tmp_path / "w.parquet")]
    normalize_file(raw, SERIAL, windows[0])
    outputs = {k: str(tmp_path / f"{k}.parquet") for k in ("decoded", "events", "raw_events", "clock_changes")}
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOG):
        tables.build_events(windows, outputs, "Europe/Berlin", "recorded_changes", logging.getLogger(LOG), "demo pump")
    return windows, outputs, [r.getMessage() for r in caplog.records]


def build(placed, folder, caplog, names=NAMES, writers=2, source="demo pump"):
    windows, outputs, _ = placed
    folder.mkdir(parents=True, exist_ok=True)
    out = {name: str(folder / f"{name}.parquet") for name in names}
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOG):
        tables.build_tables(windows, outputs["decoded"], out, logging.getLogger(LOG), source, writers)
    return out, [(r.levelname, r.getMessage()) for r in caplog.records]


def test_tables_built_together_by_one_or_two_writers_equal_those_built_alone(placed, tmp_path, caplog):
    together, _ = build(placed, tmp_path / "two", caplog)
    one, _ = build(placed, tmp_path / "one", caplog, writers=1)
    alone = {name: build(placed, tmp_path / name, caplog, names=(name,))[0][name] for name in NAMES}
    for name in NAMES:
        data = open(together[name], "rb").read()
        assert data == open(one[name], "rb").read() == open(alone[name], "rb").read(), name
    # daily_summary read the other two from their files: its day is theirs (hand-computed below).
    (day,) = pq.read_table(together["daily_summary"]).to_pylist()
    assert str(day["day"]) == "2025-01-20"
    assert day["cgm_readings"] == 1  # the 30 mg/dL record is no reading
    assert day["mean_glucose_mg_dl"] == 100.0


def test_every_table_carries_the_label_of_its_data(placed, tmp_path, caplog):
    _, outputs, _ = placed
    out, _ = build(placed, tmp_path / "t", caplog)
    for name, path in [*out.items(), ("events", outputs["events"]), ("raw_events", outputs["raw_events"])]:
        meta = pq.read_metadata(path).metadata
        assert meta[b"source"] == b"demo pump" and meta[b"table"] == name.encode(), name
        assert meta[b"start"] == b"" and meta[b"end"] == b"" and meta[b"producer"] == b"tandem-export pipeline"
    unlabelled, _ = build(placed, tmp_path / "u", caplog, names=("cgm_readings",), source=None)
    assert b"source" not in (pq.read_metadata(unlabelled["cgm_readings"]).metadata or {})


def test_the_build_logs_each_table_and_the_rows_that_are_no_value(placed, tmp_path, caplog):
    out, lines = build(placed, tmp_path / "t", caplog, names=("cgm_readings", "basal_deliveries"))
    info = [m for level, m in lines if level == "INFO"]
    assert [re.sub(r"\(\d+\.\d\d s\)", "(s)", m) for m in info] == [
        "cgm_readings: 2 rows (s)",
        "basal_deliveries: 2 rows (s)",
    ]
    assert [m for level, m in lines if level == "WARNING"] == [
        "cgm_readings: 1 CGM reading(s) are 'invalid' (glucose NULL, never a reading): their value was missing or "
        "outside 40-400 mg/dL, or their measured time lies more than 25 hours before or 10 minutes after the record"
    ]
    assert pq.read_table(out["cgm_readings"]).num_rows == 2


def test_placing_events_logs_how_many_were_read_and_kept(placed):
    _, _, lines = placed
    assert "4 events from 1 window(s); 4 after de-duplication" in lines


def test_a_table_without_sql_is_refused_by_name(placed, tmp_path):
    windows, outputs, _ = placed
    out = {"cgm_readings": str(tmp_path / "c.parquet"), "nope": "x", "cgm": "y"}
    with pytest.raises(ValueError, match=r"^no SQL for table\(s\) cgm, nope$"):
        tables.build_tables(windows, outputs["decoded"], out, logging.getLogger(LOG))
    assert not (tmp_path / "c.parquet").exists()


class _Pool:
    """Stand-ins for writers: _run_concurrently only hands them to ``run``."""

    def __init__(self, n: int) -> None:
        self.writers = [f"writer-{i}" for i in range(n)]


@pytest.mark.parametrize("writers", [1, 2])
def test_jobs_run_after_the_jobs_they_need(writers):
    finished, used = [], set()

    def run(writer, name):
        used.add(writer)
        finished.append(name)

    jobs = [("summary", ["cgm", "basal"]), ("cgm", []), ("basal", ["cgm"]), ("alarms", [])]
    tables._run_concurrently(_Pool(writers).writers, jobs, run)
    assert sorted(finished) == ["alarms", "basal", "cgm", "summary"]
    assert finished.index("cgm") < finished.index("basal") < finished.index("summary")
    assert used <= set(_Pool(writers).writers)
    if writers == 1:  # one writer takes the first job that is ready, in the order given
        assert finished == ["cgm", "basal", "summary", "alarms"]


@pytest.mark.parametrize(
    ("jobs", "names"),
    [
        ([("a", ["b"]), ("b", ["a"])], "a, b"),  # a cycle
        ([("a", []), ("c", ["missing"])], "c"),  # a job never listed
    ],
)
@pytest.mark.parametrize("writers", [1, 2])
def test_jobs_that_wait_forever_are_refused_by_name(jobs, names, writers):
    with pytest.raises(ValueError, match=f"^{names}: wait\\(s\\) for tables that are never built$"):
        tables._run_concurrently(_Pool(writers).writers, jobs, lambda writer, name: None)


@pytest.mark.parametrize("writers", [1, 2])
def test_the_first_error_stops_the_jobs_and_is_raised(writers):
    started = []

    def run(writer, name):
        started.append(name)
        if name == "cgm":
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="^disk full$"):
        tables._run_concurrently(_Pool(writers).writers, [("cgm", []), ("summary", ["cgm"])], run)
    assert started == ["cgm"]  # summary needed cgm: never started
