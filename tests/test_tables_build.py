"""How the derived tables are built in one process: several tables at once (one reading the others),
by one or two writers, with the data's label in each file, and what the build logs.

Records are packed by hand as in test_tables_core (its helpers); expected rows and lines are
written out by hand.  The pump clock shows Europe/Berlin (UTC+1 in January)."""

from __future__ import annotations

import json
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


def test_events_in_two_windows_are_kept_once_the_first_windows_copy(tmp_path, caplog):
    # Window A holds seq 1-3, window B seq 2-4; B's seq 3 says 0.9 U/h where A's says 0.6 U/h.
    def basal(seq, when, milliunits):
        return rec(279, when, seq, BASAL, 0, 1, milliunits, milliunits, 0, 0)

    a = [
        basal(1, "2025-01-20 10:00:00", 500),
        basal(2, "2025-01-20 11:00:00", 700),
        basal(3, "2025-01-20 12:00:00", 600),
    ]
    b = [a[1], basal(3, "2025-01-20 12:00:00", 900), basal(4, "2025-01-20 13:00:00", 800)]
    windows = []
    for name, records in (("2025-01-01_2025-01-28", a), ("2025-01-15_2025-02-11", b)):
        raw = tmp_path / f"{name}.bin"
        raw.write_bytes(b"".join(records))
        windows.append(str(tmp_path / f"{name}.0123456789abcdef.parquet"))
        normalize_file(raw, SERIAL, windows[-1])
    outputs = {k: str(tmp_path / f"{k}.parquet") for k in ("decoded", "events", "raw_events", "clock_changes")}
    with caplog.at_level(logging.INFO, logger=LOG):
        tables.build_events(windows, outputs, "Europe/Berlin", "recorded_changes", logging.getLogger(LOG))
    lines = [r.getMessage() for r in caplog.records]
    assert "6 events from 2 window(s); 4 after de-duplication" in lines
    assert (
        "1 event identities appear with different contents in different windows; the window listed first was kept: "
        "1 of 2025-01-01_2025-01-28 kept over 2025-01-15_2025-02-11"
    ) in lines
    events = pq.read_table(outputs["events"]).to_pylist()
    assert [e["seq_num"] for e in events] == [1, 2, 3, 4]
    out = {"basal_deliveries": str(tmp_path / "basal.parquet")}
    tables.build_tables(windows, outputs["decoded"], out, logging.getLogger(LOG))
    rows = pq.read_table(out["basal_deliveries"]).to_pylist()
    # Pump time 10:00 in Berlin (UTC+1) is 09:00 UTC; seq 3 keeps window A's 0.6 U/h.
    assert [(r["seq_num"], str(r["timestamp"])[:19], r["commanded_rate_units_per_hour"]) for r in rows] == [
        (1, "2025-01-20 09:00:00", 0.5),
        (2, "2025-01-20 10:00:00", 0.7),
        (3, "2025-01-20 11:00:00", 0.6),
        (4, "2025-01-20 12:00:00", 0.8),
    ]


def test_an_event_saved_in_both_forms_is_kept_once_as_its_pump_logs_copy(tmp_path):
    # Records carry no sequence group, pump-logs answers do: the same event (serial, seq, record type,
    # pump time) from both is kept once, the pump-logs copy, whichever window comes first.
    raw = tmp_path / "a.bin"
    raw.write_bytes(
        rec(279, "2025-01-20 10:00:00", 1, BASAL, 0, 1, 500, 500, 0, 0)
        + rec(279, "2025-01-20 11:00:00", 2, BASAL, 0, 1, 750, 750, 0, 0)
    )
    windows = [str(tmp_path / "a.0123456789abcdef.parquet"), str(tmp_path / "b.0123456789abcdef.parquet")]
    normalize_file(raw, SERIAL, windows[0])
    answer = tmp_path / "b.json"
    props = {"commandedRateSource": 1, "profileBasalRate": 700, "commandedRate": 700}
    answer.write_text(
        json.dumps(
            {
                "events": [
                    {"eventCode": 279, "sequenceGroup": 3, "sequenceNumber": 2, "pumpDateTime": "2025-01-20T11:00:00",
                     "eventProperties": props},
                    {"eventCode": 279, "sequenceGroup": 3, "sequenceNumber": 3, "pumpDateTime": "2025-01-20T12:00:00",
                     "eventProperties": props},
                ]
            }
        )
    )  # fmt: skip
    normalize_file(answer, SERIAL, windows[1])
    outputs = {k: str(tmp_path / f"{k}.parquet") for k in ("decoded", "events", "raw_events", "clock_changes")}
    tables.build_events(windows, outputs, "Europe/Berlin", "recorded_changes", logging.getLogger(LOG))
    events = pq.read_table(outputs["events"]).to_pylist()
    assert [(e["seq_num"], e["sequence_group"], e["origin"]) for e in events] == [
        (1, None, "legacy-binary"),
        (2, 3, "pump-logs"),
        (3, 3, "pump-logs"),
    ]
    out = {"basal_deliveries": str(tmp_path / "basal.parquet")}
    tables.build_tables(windows, outputs["decoded"], out, logging.getLogger(LOG))
    rates = [
        (r["seq_num"], r["commanded_rate_units_per_hour"]) for r in pq.read_table(out["basal_deliveries"]).to_pylist()
    ]
    assert rates == [(1, 0.5), (2, 0.7), (3, 0.7)]
