"""How the derived tables are built in one process: several tables at once (one reading the others),
by one or two writers, with the data's label in each file, and what the build logs.

Records are packed by hand as in test_tables_core (its helpers); expected rows and lines are
written out by hand.  The pump clock shows Europe/Berlin (UTC+1 in January)."""

from __future__ import annotations

import json
import logging
import re
import struct
from datetime import datetime

import duckdb
import numpy as np
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
    outputs = _event_outputs(tmp_path)
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


def basal(seq: int, when: str, milliunits: int = 800) -> bytes:
    """A basal rate change record (279) at pump time ``when``, its rates in milliunits per hour."""
    return rec(279, when, seq, BASAL, 0, 1, milliunits, milliunits, 0, 0)


def _windows_of(folder, parts: dict[str, list[bytes]], serials: dict[str, str] | None = None) -> list[str]:
    """Each list of records normalised as one raw-store window named by its key (of the pump in
    ``serials``, else SERIAL); the paths in order.  An empty list is an answer of the pump-logs API
    without events."""
    windows = []
    for name, records in parts.items():
        raw = folder / f"{name}.bin"
        raw.write_bytes(b"".join(records) or b'{"events": []}')
        windows.append(str(folder / f"{name}.0123456789abcdef.parquet"))
        normalize_file(raw, (serials or {}).get(name, SERIAL), windows[-1])
    return windows


def _event_outputs(folder) -> dict[str, str]:
    """The outputs of build_events in ``folder``."""
    return {k: str(folder / f"{k}.parquet") for k in ("decoded", "events", "raw_events", "clock_changes")}


def _basal_rows(windows: list[str], outputs: dict[str, str], folder) -> list[dict]:
    """basal_deliveries built from the placed windows, as rows."""
    out = {"basal_deliveries": str(folder / "basal.parquet")}
    tables.build_tables(windows, outputs["decoded"], out, logging.getLogger(LOG))
    return pq.read_table(out["basal_deliveries"]).to_pylist()


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
    event_tables = [(name, outputs[name]) for name in ("events", "raw_events", "clock_changes")]
    for name, path in [*out.items(), *event_tables]:
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
    assert lines == [
        "4 events from 1 window(s); 4 after de-duplication",
        f"pump {SERIAL}: times read with pump_clock recorded_changes in Europe/Berlin; 0 clock change(s)",
    ]


def test_conflicts_in_more_than_three_pairs_of_windows_are_summed_up(tmp_path, caplog):
    # seq 1 in five windows, each with another rate: the first window's copy is kept over each of the
    # four others; the warning names three pairs and counts the fourth.
    windows = _windows_of(
        tmp_path, {f"2025-0{i + 1}-01_x": [basal(1, "2025-01-20 10:00:00", 500 + i)] for i in range(5)}
    )
    outputs = _event_outputs(tmp_path)
    with caplog.at_level(logging.INFO, logger=LOG):
        tables.build_events(windows, outputs, "UTC", "recorded_changes", logging.getLogger(LOG))
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "5 events from 5 window(s); 1 after de-duplication"
    assert lines[1] == (
        "1 event identities appear with different contents in different windows; the window listed first was kept: "
        "1 of 2025-01-01_x kept over 2025-02-01_x; 1 of 2025-01-01_x kept over 2025-03-01_x; "
        "1 of 2025-01-01_x kept over 2025-04-01_x (and 1 more pairs of windows)"
    )
    (row,) = _basal_rows(windows, outputs, tmp_path)
    assert row["commanded_rate_units_per_hour"] == 0.5  # the first window's 500 milliunits per hour


def test_a_clock_change_in_utc_is_placed_at_its_new_pump_time(tmp_path):
    # Pump clock in UTC, set from 10:10 to 12:10 (+2 h) between 5-minute basal records: the anchor is
    # the last record, so the change's own record has offset 0 and its instant is its new pump time.
    change = struct.pack(">HII", 13, _secs("2025-01-20 12:10:00"), 3) + struct.pack(">III4x", 36_600_000, 43_800_000, 0)
    windows = _windows_of(
        tmp_path,
        {
            "w": [
                basal(1, "2025-01-20 10:00:00"),
                basal(2, "2025-01-20 10:05:00"),
                change,
                basal(4, "2025-01-20 12:15:00"),
            ]
        },
    )
    outputs = _event_outputs(tmp_path)
    tables.build_events(windows, outputs, "UTC", "recorded_changes", logging.getLogger(LOG))
    (row,) = pq.read_table(outputs["clock_changes"]).to_pylist()
    assert str(row["timestamp"]) == "2025-01-20 12:10:00+00:00"
    assert (
        str(row["pump_time_before"]) == "2025-01-20 10:10:00" and str(row["pump_time_after"]) == "2025-01-20 12:10:00"
    )
    assert row["change_minutes"] == 120.0 and row["seq_num"] == 3


def test_a_table_without_sql_is_refused_by_name(placed, tmp_path):
    windows, outputs, _ = placed
    out = {"cgm_readings": str(tmp_path / "c.parquet"), "nope": str(tmp_path / "x"), "cgm": str(tmp_path / "y")}
    with pytest.raises(ValueError, match=r"^no SQL for table\(s\) cgm, nope$"):
        tables.build_tables(windows, outputs["decoded"], out, logging.getLogger(LOG))
    assert not (tmp_path / "c.parquet").exists()


def _secs(when: str) -> int:
    """Seconds of a pump time since the pump's epoch, 2008-01-01 00:00."""
    return int((datetime.fromisoformat(when) - datetime(2008, 1, 1)).total_seconds())


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
    a = [
        basal(1, "2025-01-20 10:00:00", 500),
        basal(2, "2025-01-20 11:00:00", 700),
        basal(3, "2025-01-20 12:00:00", 600),
    ]
    b = [a[1], basal(3, "2025-01-20 12:00:00", 900), basal(4, "2025-01-20 13:00:00", 800)]
    windows = _windows_of(tmp_path, {"2025-01-01_2025-01-28": a, "2025-01-15_2025-02-11": b})
    outputs = _event_outputs(tmp_path)
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
    rows = _basal_rows(windows, outputs, tmp_path)
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
    outputs = _event_outputs(tmp_path)
    tables.build_events(windows, outputs, "Europe/Berlin", "recorded_changes", logging.getLogger(LOG))
    events = pq.read_table(outputs["events"]).to_pylist()
    assert [(e["seq_num"], e["sequence_group"], e["origin"]) for e in events] == [
        (1, None, "legacy-binary"),
        (2, 3, "pump-logs"),
        (3, 3, "pump-logs"),
    ]
    rates = [(r["seq_num"], r["commanded_rate_units_per_hour"]) for r in _basal_rows(windows, outputs, tmp_path)]
    assert rates == [(1, 0.5), (2, 0.7), (3, 0.7)]


def _time_change(seq: int, prior: str, after: str) -> bytes:
    """A time change record (13): logged at its new pump time; prior and after as ms of the day."""
    ms = lambda hhmm: (int(hhmm[:2]) * 60 + int(hhmm[3:])) * 60_000  # noqa: E731
    day = "2025-03-30"
    return struct.pack(">HII", 13, _secs(f"{day} {after}:00"), seq) + struct.pack(">III4x", ms(prior), ms(after), 0)


def test_a_summer_time_change_by_hand_places_every_window_at_its_offset(tmp_path):
    # Berlin, pump clock moved by hand from 09:00 to 10:00 on 2025-03-30 (the day summer time began):
    # before it the pump shows UTC+1, after it UTC+2. Window A is all before, window B holds the
    # change, window C is all after (so the windows differ in their first offset, and B changes inside).
    windows = _windows_of(
        tmp_path,
        {
            "2025-03-01_2025-03-28": [basal(1, "2025-03-29 10:00:00"), basal(2, "2025-03-30 01:00:00")],
            "2025-03-29_2025-04-25": [basal(3, "2025-03-30 08:55:00"), _time_change(4, "09:00", "10:00"),
                                      basal(5, "2025-03-30 10:05:00")],
            "2025-04-26_2025-05-23": [basal(6, "2025-04-02 12:00:00"), basal(7, "2025-04-02 12:05:00")],
        },
    )  # fmt: skip
    outputs = _event_outputs(tmp_path)
    tables.build_events(windows, outputs, "Europe/Berlin", "recorded_changes", logging.getLogger(LOG))
    rows = _basal_rows(windows, outputs, tmp_path)
    assert [(r["seq_num"], str(r["timestamp"])[:16]) for r in rows] == [
        (1, "2025-03-29 09:00"),
        (2, "2025-03-30 00:00"),
        (3, "2025-03-30 07:55"),
        (5, "2025-03-30 08:05"),
        (6, "2025-04-02 10:00"),
        (7, "2025-04-02 10:05"),
    ]
    events = pq.read_table(outputs["events"]).to_pylist()
    assert [(e["seq_num"], e["utc_offset_minutes"]) for e in events] == [
        (1, 60), (2, 60), (3, 60), (4, 120), (5, 120), (6, 120), (7, 120)
    ]  # fmt: skip
    (change,) = pq.read_table(outputs["clock_changes"]).to_pylist()
    assert str(change["timestamp"]) == "2025-03-30 08:00:00+00:00" and change["change_minutes"] == 60.0


def test_tables_from_windows_other_than_the_placed_ones_are_refused(placed, tmp_path):
    windows, outputs, _ = placed
    other = _windows_of(
        tmp_path, {"2025-02-01_2025-02-28": [rec(279, "2025-02-01 10:00:00", 9, BASAL, 0, 1, 1, 1, 0, 0)]}
    )
    out = {"basal_deliveries": str(tmp_path / "b.parquet")}
    message = (
        rf"^{re.escape(outputs['decoded'])} was not built from these 2 window\(s\) \(another list, or windows "
        r"changed since\); build the placement table again$"
    )
    with pytest.raises(ValueError, match=message):
        tables.build_tables([*windows, *other], outputs["decoded"], out, logging.getLogger(LOG))
    with pytest.raises(ValueError, match=message):
        tables.build_event_tables([*windows, *other], outputs["decoded"], {"events": str(tmp_path / "e.parquet")})
    assert not (tmp_path / "b.parquet").exists() and not (tmp_path / "e.parquet").exists()


def test_an_output_that_is_not_an_event_table_is_refused(placed, tmp_path):
    windows, outputs, _ = placed
    with pytest.raises(ValueError, match=r"^not an event table: cgm_readings, zz$"):
        tables.build_event_tables(
            windows,
            outputs["decoded"],
            {n: str(tmp_path / "o" / f"{n}.parquet") for n in ("zz", "events", "cgm_readings")},
        )
    assert not (tmp_path / "o").exists()


def test_tables_are_written_into_folders_not_made_yet(placed, tmp_path):
    windows, outputs, _ = placed
    out = {"cgm_readings": str(tmp_path / "new" / "deeper" / "cgm_readings.parquet")}
    tables.build_tables(windows, outputs["decoded"], out, logging.getLogger(LOG))
    assert [r["glucose_mg_dl"] for r in pq.read_table(out["cgm_readings"]).to_pylist()] == [100, None]
    assert [p.name for p in (tmp_path / "new" / "deeper").iterdir()] == ["cgm_readings.parquet"]  # no spill left


@pytest.mark.parametrize("empty_at", [0, 1, 2])
def test_a_window_without_events_changes_nothing(tmp_path, empty_at):
    # A 28-day window in which the pump uploaded nothing (an empty answer) first, between or last.
    parts = {
        "2025-01-01_a": [basal(1, "2025-01-20 10:00:00", 500)],
        "2025-02-01_b": [basal(2, "2025-02-20 10:00:00", 900)],
    }
    names = list(parts)
    names.insert(empty_at, "2025-03-01_empty")
    windows = _windows_of(tmp_path, {name: parts.get(name, []) for name in names})
    outputs = _event_outputs(tmp_path)
    tables.build_events(windows, outputs, "Europe/Berlin", "recorded_changes", logging.getLogger(LOG))
    rows = _basal_rows(windows, outputs, tmp_path)
    assert [(r["seq_num"], str(r["timestamp"])[:16], r["commanded_rate_units_per_hour"]) for r in rows] == [
        (1, "2025-01-20 09:00", 0.5),
        (2, "2025-02-20 09:00", 0.9),
    ]
    assert [e["seq_num"] for e in pq.read_table(outputs["events"]).to_pylist()] == [1, 2]


@pytest.mark.parametrize("per_window", [1, 3])
def test_events_are_in_pump_then_sequence_order_whatever_the_window_order(tmp_path, per_window):
    # A user went back to an older pump: the later window holds the pump whose serial sorts first.
    # Event order is (pump_serial, sequence_group, seq_num), so the second window's events come first.
    parts = {name: [basal(first + i, f"2025-01-20 1{i}:00:00", 700) for i in range(per_window)]
             for name, first in (("2025-01-01_a", 500), ("2025-02-01_b", 100))}  # fmt: skip
    windows = _windows_of(tmp_path, parts, {"2025-01-01_a": "22222222", "2025-02-01_b": "11111111"})
    outputs = _event_outputs(tmp_path)
    tables.build_events(windows, outputs, "UTC", "recorded_changes", logging.getLogger(LOG))
    expected = [("11111111", 100 + i) for i in range(per_window)] + [("22222222", 500 + i) for i in range(per_window)]
    for name in ("events", "raw_events"):
        got = [(e["pump_serial"], e["seq_num"]) for e in pq.read_table(outputs[name]).to_pylist()]
        assert got == expected, name


def test_no_spill_folder_is_left_beside_the_outputs(placed, tmp_path, caplog):
    windows, outputs, _ = placed
    assert not list(tmp_path.glob(".duckdb-spill-*"))  # build_events: placement and event tables
    tables.build_event_tables(windows, outputs["decoded"], {"events": str(tmp_path / "again" / "events.parquet")})
    build(placed, tmp_path / "t", caplog)
    assert not list(tmp_path.rglob(".duckdb-spill-*"))
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == ["events.parquet"]


def test_asking_for_no_table_writes_nothing(placed, tmp_path, caplog):
    windows, outputs, _ = placed
    before = sorted(p.name for p in tmp_path.iterdir())
    with caplog.at_level(logging.INFO, logger=LOG):
        tables.build_tables(windows, outputs["decoded"], {}, logging.getLogger(LOG))
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert [r.getMessage() for r in caplog.records] == []


@pytest.mark.parametrize(
    ("sql", "reads"),
    [
        ("SELECT * FROM cgm_readings", True),
        ("select day from cgm_readings c join basal_deliveries b using (day)", True),
        ("SELECT 1 FROM\n  cgm_readings", True),
        ("SELECT * FROM cgm_readings_2", False),
        ("SELECT cgm_readings FROM decoded", False),
    ],
)
def test_a_table_reads_another_when_its_sql_selects_from_or_joins_it(sql, reads):
    assert tables._reads(sql, "cgm_readings") is reads


@pytest.mark.parametrize(
    ("total", "message"),
    [(3, "more rows than the Parquet footers say"), (7, "fewer rows than the Parquet footers say")],
)
def test_rows_other_than_the_footers_say_are_refused(total, message):
    # A window that changed between reading its footer and scanning it: 5 rows where 3 or 7 were said.
    con = duckdb.connect()
    with pytest.raises(ValueError, match=f"^{message}$"):
        tables._fetch_numpy(con.sql("SELECT range AS x FROM range(5)"), {"x": np.int64}, total)
    got = tables._fetch_numpy(con.sql("SELECT range AS x FROM range(5)"), {"x": np.int64}, 5)
    assert got["x"].tolist() == [0, 1, 2, 3, 4]


def _placement_paths(caplog) -> list[str]:
    return [r.getMessage().split(" (")[0] for r in caplog.records if r.name == "tandem_export.tables"]


def test_windows_in_event_order_are_placed_by_expressions_without_a_join(placed, tmp_path, caplog):
    # The usual history (disjoint windows in time order, few clock changes): the windows are scanned
    # in order and the placement written as expressions of window and row number (tables._placed_view_sql).
    windows, outputs, _ = placed
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="tandem_export.tables"):
        tables.build_event_tables(windows, outputs["decoded"], {"events": str(tmp_path / "e" / "events.parquet")})
        tables.build_tables(
            windows, outputs["decoded"], {"cgm_readings": str(tmp_path / "c.parquet")}, logging.getLogger(LOG)
        )
    assert _placement_paths(caplog) == ["placement as expressions", "placement as expressions"]

    # One event in each of three windows (row 0 of each): still in order.
    parts = {f"2025-0{i}-01_w": [basal(i, f"2025-0{i}-02 10:00:00", 700)] for i in (1, 2, 3)}
    (tmp_path / "three").mkdir()
    three = _windows_of(tmp_path / "three", parts)
    out = _event_outputs(tmp_path / "three")
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="tandem_export.tables"):
        tables.build_events(three, out, "UTC", "recorded_changes", logging.getLogger(LOG))
    assert _placement_paths(caplog) == ["placement as expressions"]


def test_windows_out_of_event_order_are_joined_and_sorted_for_the_event_tables(tmp_path, caplog):
    parts = {name: [basal(5, "2025-01-20 10:00:00", 700)] for name in ("2025-01-01_a", "2025-02-01_b")}
    windows = _windows_of(tmp_path, parts, {"2025-01-01_a": "22222222", "2025-02-01_b": "11111111"})
    outputs = _event_outputs(tmp_path)
    with caplog.at_level(logging.DEBUG, logger="tandem_export.tables"):
        tables.build_events(windows, outputs, "UTC", "recorded_changes", logging.getLogger(LOG))
        caplog.clear()
        tables.build_tables(
            windows, outputs["decoded"], {"basal_deliveries": str(tmp_path / "b.parquet")}, logging.getLogger(LOG)
        )
    # The derived tables need no order: their view is still expressions.
    assert _placement_paths(caplog) == ["placement as expressions"]
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="tandem_export.tables"):
        tables.build_events(windows, outputs, "UTC", "recorded_changes", logging.getLogger(LOG))
    assert _placement_paths(caplog) == ["windows joined to the placement, sorted"]
