"""True times: scenario histories with hand-written expected UTC, in both record forms.

A history is a list of steps on two clocks: the true instant (UTC) and the pump's wall clock.
``tick`` logs a basal record every 5 minutes (both clocks advance), ``quiet`` advances both clocks
without records, ``set_time``/``set_date`` are the user changing the pump clock (a 13/14 record),
``restart`` is a battery failure (the wall clock restarts at 2008-01-01, no record).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import struct
from zoneinfo import ZoneInfo

import hypothesis.strategies as st
import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import examples
from hypothesis import HealthCheck, given, settings
from tandem_export import tables, times
from tandem_export.normalize import normalize_file

pytestmark = pytest.mark.fast  # the fast tier of value tests (make test-fast)

EPOCH = dt.datetime(2008, 1, 1)
UTC = dt.UTC
FIVE = dt.timedelta(minutes=5)


def secs(wall: dt.datetime) -> int:
    return int((wall - EPOCH).total_seconds())


def ms_of_day(wall: dt.datetime) -> int:
    return (wall.hour * 3600 + wall.minute * 60 + wall.second) * 1000


class History:
    """Builds one pump's records while tracking the true instant of each."""

    def __init__(self, wall: str, true_utc: str):
        self.wall = dt.datetime.fromisoformat(wall)
        self.true = dt.datetime.fromisoformat(true_utc)
        self.seq = 1000
        self.records: list[tuple[int, int, dt.datetime, dict]] = []  # (event id, seq, wall, fields)
        self.truth: dict[int, dt.datetime] = {}  # seq -> true UTC (naive)

    def _log(self, event_id: int, fields: dict) -> int:
        self.seq += 1
        self.records.append((event_id, self.seq, self.wall, fields))
        self.truth[self.seq] = self.true
        return self.seq

    def tick(self, n: int = 1) -> History:
        for _ in range(n):
            self._log(279, {})
            self.wall += FIVE
            self.true += FIVE
        return self

    def quiet(self, **delta) -> History:
        self.wall += dt.timedelta(**delta)
        self.true += dt.timedelta(**delta)
        return self

    def set_time(self, new_time: str) -> History:
        hh, mm = map(int, new_time.split(":"))
        after = self.wall.replace(hour=hh, minute=mm)
        self.records.append((13, self.seq + 1, after, {"prior": ms_of_day(self.wall), "after": ms_of_day(after)}))
        self.seq += 1
        self.truth[self.seq] = self.true
        self.wall = after
        return self

    def set_date(self, new_date: str) -> History:
        after = dt.datetime.combine(dt.date.fromisoformat(new_date), self.wall.time())
        days = lambda t: (t.date() - EPOCH.date()).days  # noqa: E731
        self.records.append((14, self.seq + 1, after, {"prior": days(self.wall), "after": days(after)}))
        self.seq += 1
        self.truth[self.seq] = self.true
        self.wall = after
        return self

    def restart(self, after_minutes: int) -> History:
        self.true += dt.timedelta(minutes=after_minutes)
        self.wall = EPOCH
        return self

    def binary(self) -> bytes:
        out = b""
        for event_id, seq, wall, f in self.records:
            if event_id == 279:
                payload = struct.pack(">HHHHHH4x", 0, 1, 800, 800, 0, 0)
            else:
                payload = struct.pack(">III4x", f["prior"], f["after"], 0)
            out += struct.pack(">HII", event_id, secs(wall), seq) + payload
        return out

    def pumplogs(self) -> dict:
        events, changes = [], []
        for event_id, seq, wall, f in self.records:
            element = {
                "deviceAssignmentId": "a",
                "eventCode": event_id,
                "sequenceGroup": 1,
                "sequenceNumber": seq,
                "pumpDateTime": wall.strftime("%Y-%m-%dT%H:%M:%S"),
                "estimatedDateTime": wall.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            if event_id == 279:
                element["eventProperties"] = {"commandedRateSource": 1, "profileBasalRate": 800, "commandedRate": 800}
                events.append(element)
            else:
                keys = ("timePrior", "timeAfter") if event_id == 13 else ("datePrior", "dateAfter")
                element["eventProperties"] = {keys[0]: f["prior"], keys[1]: f["after"], "rawRtcTime": 0}
                changes.append(element)
        return {"events": events, "clockChanges": changes}


def place(tmp_path, history: History, zone: str, form: str, pump_clock: str = "recorded_changes"):
    """Run the real normaliser and events build; return (rows by seq, clock changes, log text)."""
    raw = tmp_path / f"history.{form}"
    if form == "bin":
        raw.write_bytes(history.binary())
    else:
        raw.write_text(json.dumps(history.pumplogs()))
    normalize_file(raw, "12345678", tmp_path / "n.parquet")
    outputs = {k: str(tmp_path / f"{k}.parquet") for k in ("decoded", "events", "raw_events", "clock_changes")}
    messages: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    log = logging.getLogger(f"test-times-{id(history)}")
    log.addHandler(Keep())
    tables.build_events([str(tmp_path / "n.parquet")], outputs, zone, pump_clock, log)
    rows = {r["seq_num"]: r for r in pq.read_table(outputs["raw_events"]).to_pylist()}
    changes = pq.read_table(outputs["clock_changes"]).to_pylist()
    return rows, changes, "\n".join(messages)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def seq_at(history: History, wall: str, nth: int = 0) -> int:
    """Sequence number of the nth basal record logged at wall-clock time ``wall``."""
    hits = [seq for eid, seq, w, _ in history.records if eid == 279 and w == dt.datetime.fromisoformat(wall)]
    return hits[nth]


def assert_cadence(history: History, rows: dict) -> None:
    """UTC follows the truth for every record; consecutive basal records stay 5 minutes apart."""
    for seq, true in history.truth.items():
        assert rows[seq]["timestamp"] == true.replace(tzinfo=UTC), (seq, rows[seq]["pump_time"])
        assert rows[seq]["time_reliable"]


FORMS = ["bin", "json"]


@pytest.mark.parametrize("form", FORMS)
def test_new_york_clock_changed_by_hand_at_both_switches(tmp_path, form):
    h = History("2025-03-08 22:00", "2025-03-09 03:00")  # EST = UTC-5
    h.tick(48)  # to 02:00 EST = 07:00 UTC, when the clocks go forward
    h.set_time("03:00").tick(48)
    h.wall = dt.datetime(2025, 11, 1, 22, 0)  # months later, records resume before the autumn switch
    h.true = dt.datetime(2025, 11, 2, 2, 0)  # 22:00 EDT = 02:00 UTC
    h.tick(48)  # to 02:00 EDT = 06:00 UTC, when the clocks go back
    h.set_time("01:00").tick(48)
    rows, changes, _ = place(tmp_path, h, "America/New_York", form)
    assert rows[seq_at(h, "2025-03-09 01:55")]["timestamp"] == utc("2025-03-09 06:55")
    assert rows[seq_at(h, "2025-03-09 03:00")]["timestamp"] == utc("2025-03-09 07:00")
    assert rows[seq_at(h, "2025-11-02 01:55")]["timestamp"] == utc("2025-11-02 05:55")
    assert rows[seq_at(h, "2025-11-02 01:00", nth=1)]["timestamp"] == utc("2025-11-02 06:00")
    assert rows[seq_at(h, "2025-11-02 01:00", nth=0)]["timestamp"] == utc("2025-11-02 05:00")
    assert [(c["change_minutes"], c["kind"]) for c in changes] == [(60.0, "zone"), (-60.0, "zone")]
    assert_cadence(h, rows)


@pytest.mark.parametrize("form", FORMS)
def test_berlin_clock_changed_by_hand_at_both_switches(tmp_path, form):
    h = History("2025-03-29 22:00", "2025-03-29 21:00")  # CET = UTC+1
    h.tick(48)  # to 02:00 CET = 01:00 UTC
    h.set_time("03:00").tick(24)
    h.wall = dt.datetime(2025, 10, 26, 0, 0)
    h.true = dt.datetime(2025, 10, 25, 22, 0)  # 00:00 CEST = 22:00 UTC
    h.tick(36)  # to 03:00 CEST = 01:00 UTC
    h.set_time("02:00").tick(24)
    rows, changes, _ = place(tmp_path, h, "Europe/Berlin", form)
    assert rows[seq_at(h, "2025-03-30 01:55")]["timestamp"] == utc("2025-03-30 00:55")
    assert rows[seq_at(h, "2025-03-30 03:00")]["timestamp"] == utc("2025-03-30 01:00")
    assert rows[seq_at(h, "2025-10-26 02:55")]["timestamp"] == utc("2025-10-26 00:55")
    assert rows[seq_at(h, "2025-10-26 02:00", nth=1)]["timestamp"] == utc("2025-10-26 01:00")
    assert [c["kind"] for c in changes] == ["zone", "zone"]
    assert_cadence(h, rows)


@pytest.mark.parametrize("form", FORMS)
def test_spring_switch_done_a_day_late(tmp_path, form):
    # The clock shows EST all Sunday (the zone is already on EDT) and is put forward Monday 08:00.
    h = History("2025-03-08 20:00", "2025-03-09 01:00")
    h.tick(12 * 36)  # 36 hours, to Monday 08:00 EST wall = 13:00 UTC
    h.set_time("09:00").tick(12)
    rows, changes, _ = place(tmp_path, h, "America/New_York", form)
    assert rows[seq_at(h, "2025-03-09 12:00")]["timestamp"] == utc("2025-03-09 17:00")
    assert rows[seq_at(h, "2025-03-10 07:55")]["timestamp"] == utc("2025-03-10 12:55")
    assert rows[seq_at(h, "2025-03-10 09:00")]["timestamp"] == utc("2025-03-10 13:00")
    assert changes[0]["kind"] == "zone"
    assert_cadence(h, rows)


@pytest.mark.parametrize("form", FORMS)
def test_trip_new_york_los_angeles_new_york(tmp_path, form):
    h = History("2025-06-05 12:00", "2025-06-05 16:00")  # EDT
    h.tick(72)  # to 18:00 EDT = 22:00 UTC: landed in Los Angeles
    h.set_time("15:00").tick(12 * 24)  # PDT, for a day
    h.set_time("18:00").tick(24)  # back in New York
    rows, changes, _ = place(tmp_path, h, "America/New_York", form)
    assert rows[seq_at(h, "2025-06-05 17:55")]["timestamp"] == utc("2025-06-05 21:55")
    assert rows[seq_at(h, "2025-06-05 15:00", nth=1)]["timestamp"] == utc("2025-06-05 22:00")
    assert rows[seq_at(h, "2025-06-06 09:00")]["timestamp"] == utc("2025-06-06 16:00")
    assert rows[seq_at(h, "2025-06-06 18:00")]["timestamp"] == utc("2025-06-06 22:00")
    assert [(c["change_minutes"], c["kind"]) for c in changes] == [(-180.0, "zone"), (180.0, "zone")]
    assert_cadence(h, rows)


@pytest.mark.parametrize("form", FORMS)
def test_seven_minute_drift_correction(tmp_path, form):
    h = History("2025-06-02 10:07", "2025-06-02 14:00")  # the clock runs 7 minutes fast (EDT)
    h.tick(24)  # to 12:07 wall = 16:00 UTC
    h.set_time("12:00").tick(24)
    rows, changes, _ = place(tmp_path, h, "America/New_York", form)
    assert rows[seq_at(h, "2025-06-02 10:07")]["timestamp"] == utc("2025-06-02 14:00")
    assert rows[seq_at(h, "2025-06-02 12:00")]["timestamp"] == utc("2025-06-02 16:00")
    assert [(c["change_minutes"], c["kind"]) for c in changes] == [(-7.0, "drift")]
    assert_cadence(h, rows)


@pytest.mark.parametrize("form", FORMS)
def test_battery_reset_to_2008_then_date_and_time_corrections(tmp_path, form):
    h = History("2025-07-01 10:00", "2025-07-01 14:00")  # EDT
    h.tick(24)  # to 12:00 EDT = 16:00 UTC; the battery fails
    h.restart(after_minutes=120)  # restarts at 18:00 UTC showing 2008-01-01 00:00
    h.tick(12)  # an hour of records dated 2008
    h.set_date("2025-07-01").set_time("15:00").tick(12)  # 19:00 UTC = 15:00 EDT
    rows, changes, log = place(tmp_path, h, "America/New_York", form)
    assert rows[seq_at(h, "2025-07-01 11:55")]["timestamp"] == utc("2025-07-01 15:55")
    assert rows[seq_at(h, "2008-01-01 00:00")]["timestamp"] == utc("2025-07-01 18:00")
    assert rows[seq_at(h, "2008-01-01 00:55")]["timestamp"] == utc("2025-07-01 18:55")
    assert rows[seq_at(h, "2025-07-01 15:00")]["timestamp"] == utc("2025-07-01 19:00")
    assert [c["kind"] for c in changes] == ["reset", "reset", "reset"]
    assert_cadence(h, rows)


@pytest.mark.parametrize("form", FORMS)
def test_reset_never_corrected_is_flagged_and_left_out(tmp_path, form):
    h = History("2025-07-01 10:00", "2025-07-01 14:00")
    h.tick(24).restart(after_minutes=30).tick(6)
    rows, _, log = place(tmp_path, h, "America/New_York", form)
    flagged = [r for r in rows.values() if not r["time_reliable"]]
    assert len(flagged) == 6 and all(r["pump_time"].year == 2008 for r in flagged)
    assert rows[seq_at(h, "2025-07-01 11:55")]["timestamp"] == utc("2025-07-01 15:55")
    assert "never corrected" in log and "6 event(s) without a reliable time" in log


@pytest.mark.parametrize("form", FORMS)
def test_pump_never_changed_all_year(tmp_path, form):
    # The clock was set in January (EST) and never touched: it shows EST all year.
    h = History("2025-01-15 12:00", "2025-01-15 17:00")
    h.tick(12)
    h.wall, h.true = dt.datetime(2025, 7, 1, 12, 0), dt.datetime(2025, 7, 1, 17, 0)
    h.tick(12)
    h.wall, h.true = dt.datetime(2025, 12, 1, 12, 0), dt.datetime(2025, 12, 1, 17, 0)
    h.tick(12)
    rows, changes, log = place(tmp_path, h, "America/New_York", form)
    assert rows[seq_at(h, "2025-07-01 12:00")]["timestamp"] == utc("2025-07-01 17:00")
    assert changes == []
    assert "apparently never changed" in log and "-05:00" in log
    # New York switched on 9 March and 2 November 2025 (US rules: second Sunday of March, first of November).
    assert "2 clock switches of America/New_York (from 2025-03-09 to 2025-11-02)" in log
    assert_cadence(h, rows)


@pytest.mark.parametrize("form", FORMS)
def test_follows_zone_across_both_switches(tmp_path, form):
    h = History("2025-03-09 01:00", "2025-03-09 06:00")
    h.tick(12)  # 01:00-01:55 EST
    h.wall = dt.datetime(2025, 3, 9, 3, 0)  # the clock follows the zone: 02:00 EST is 03:00 EDT
    h.tick(12)
    h.wall, h.true = dt.datetime(2025, 11, 2, 0, 0), dt.datetime(2025, 11, 2, 4, 0)
    h.tick(24)  # 00:00-01:55 EDT
    h.wall = dt.datetime(2025, 11, 2, 1, 0)  # back to 01:00, now EST
    h.tick(24)
    rows, _, _ = place(tmp_path, h, "America/New_York", form, pump_clock="follows_zone")
    assert rows[seq_at(h, "2025-03-09 01:55")]["timestamp"] == utc("2025-03-09 06:55")
    assert rows[seq_at(h, "2025-03-09 03:00")]["timestamp"] == utc("2025-03-09 07:00")
    assert rows[seq_at(h, "2025-11-02 01:30", nth=0)]["timestamp"] == utc("2025-11-02 05:30")
    assert rows[seq_at(h, "2025-11-02 01:30", nth=1)]["timestamp"] == utc("2025-11-02 06:30")
    assert_cadence(h, rows)


# --- property: with random clock changes, UTC by sequence number never goes backwards ---------

steps = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.integers(1, 30)),
        st.tuples(st.just("time"), st.sampled_from([-180, -60, -30, 30, 60, 120, -7, 3, 11])),
        st.tuples(st.just("date"), st.sampled_from([-1, 1, 2])),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps, form=st.sampled_from(FORMS))
def test_utc_never_goes_backwards_with_random_clock_changes(tmp_path_factory, plan, form):
    h = History("2025-05-10 12:00", "2025-05-10 17:00")
    for kind, value in plan:
        if kind == "tick":
            h.tick(value)
        elif kind == "time":
            target = h.wall + dt.timedelta(minutes=value)
            if target.date() == h.wall.date():  # a time change within the day, as the pump's menu sets it
                h.set_time(target.strftime("%H:%M"))
        else:
            h.set_date(str(h.wall.date() + dt.timedelta(days=value)))
    h.tick(2)
    # Anchored in UTC, every computed instant is the true one shifted by the same constant (the
    # clock's final offset): so the order and the 5-minute cadence are exactly the truth's.
    rows, _, _ = place(tmp_path_factory.mktemp("p"), h, "UTC", form)
    shifts = {rows[seq]["timestamp"] - true.replace(tzinfo=UTC) for seq, true in h.truth.items()}
    assert shifts == {h.wall - h.true}
    ordered = [rows[s]["timestamp"] for s in sorted(rows)]
    assert all(a <= b for a, b in zip(ordered, ordered[1:], strict=False))


def test_clock_changes_that_would_place_records_outside_any_calendar_are_not_reliable():
    # 3,000 recorded date changes of +49,710 days each (the most a date-changed record can hold):
    # walking back through them puts the earlier records 408,000 years before the last one. No pump
    # clock (uint32 seconds from 2008) can have logged that: those records are not reliable and
    # carry offset 0. The last change and the last record (the anchor) have no change after them and are
    # placed normally; the change before the last would put its record 136 years later, in 2161.
    n = 3000
    seq = np.arange(n + 1)
    wall = np.full(n + 1, 552_182_400)  # 2025-07-01 00:00:00 on the pump clock
    event_id = np.array([14] * n + [279])
    change = np.array([49_710 * 86_400] * n + [0])
    result = times.pump_times(seq, wall, event_id, change, ZoneInfo("UTC"))
    assert not result.reliable[: n - 1].any() and result.reliable[n - 1 :].all()
    assert (result.offset_s == 0).all()
    assert any("before 2008 or after 2144" in note for note in result.notes)


def test_one_record_dated_far_ahead_is_an_outlier_not_a_clock_reset(tmp_path):
    # A day of 5-minute records in Berlin summer time (UTC+2), one of which carries 2026-01-10 (a
    # corrupted or mistyped time, no recorded change). Only that record is left out; every other
    # keeps its true instant (the anchor is the last record, in June: offset +120 minutes).
    history = History("2025-06-10 00:00:00", "2025-06-09 22:00:00").tick(150)
    _, seq_out, _, fields = history.records[100]
    history.records[100] = (279, seq_out, dt.datetime(2026, 1, 10), fields)
    for form in ("bin", "json"):
        (tmp_path / form).mkdir()
        rows, _, log = place(tmp_path / form, history, "Europe/Berlin", form)
        reliable = {s for s, r in rows.items() if r["time_reliable"]}
        assert reliable == set(history.truth) - {seq_out}
        for s in reliable:
            assert rows[s]["timestamp"].replace(tzinfo=None) == history.truth[s], s
        assert "1 record(s) carry a time more than a day ahead of the records around them" in log
        assert "clock reset" not in log
        assert log.splitlines() == [  # the warnings (place() keeps no INFO lines)
            "pump 12345678: 1 record(s) carry a time more than a day ahead of the records around them (from "
            f"sequence {seq_out}); left out of the analysis tables",
            "pump 12345678: 1 event(s) without a reliable time are left out of the analysis tables",
        ]


def test_an_unrecorded_step_back_of_hours_is_reported():
    # The clock goes back 23 h 55 min between two records with no recorded change: not a reset (under
    # a day), but the records around it overlap in time, and the run says so.
    seq = np.arange(6)
    wall = np.array([0, 300, 600, 600 - 86_100, 900 - 86_100, 1200 - 86_100]) + 552_182_400
    result = times.pump_times(seq, wall, np.full(6, 279), np.zeros(6, dtype=np.int64), ZoneInfo("UTC"))
    assert result.reliable.all()
    assert any(
        "went back 1 time(s) by more than an hour without a recorded change (first by 23.9 h at sequence 3)" in note
        for note in result.notes
    ), result.notes


def test_many_resets_never_corrected_are_one_line():
    # The clock jumps back by years three times (2025 -> 2020 -> 2015 -> 2010) with no recorded
    # change and never comes back: three resets never corrected, one note, not three.
    year = 365 * 86_400
    t = [552_182_400, 552_182_400 - 5 * year, 552_182_400 - 10 * year, 552_182_400 - 15 * year]
    wall = np.array([t[0], t[1], t[1] + 300, t[2], t[2] + 300, t[3], t[3] + 300])
    result = times.pump_times(np.arange(7), wall, np.full(7, 279), np.zeros(7, dtype=np.int64), ZoneInfo("UTC"))
    resets = [note for note in result.notes if "never corrected" in note]
    assert resets == [
        "3 clock resets were never corrected (the first at sequence 1): 6 record(s) cannot be placed in time"
    ]


# --- the bounds of the rules, one by one (unit level) ---------------------------------------------

WALL_2025 = 552_182_400  # 2025-07-01 00:00:00 on the pump clock (6,391 days after 2008-01-01)


@pytest.mark.parametrize(
    ("change_s", "kind"),
    [
        (0, "drift"),
        (60, "drift"),  # a 1-minute change is no time zone
        (-119, "drift"),
        (1800, "zone"),  # 30 minutes (India/Newfoundland-style half hours)
        (1920, "zone"),  # 2 minutes off 30 minutes: still a zone change
        (1921, "drift"),  # 2 minutes 1 second off
        (1680, "zone"),
        (1679, "drift"),
        (3480, "zone"),  # 58 minutes: 1 h less 120 s
        (3479, "drift"),
        (-3540, "zone"),  # -59 minutes
        (5340, "zone"),  # +89 minutes: 1.5 h less 60 s
        (3661, "zone"),  # 1 h 1 min 1 s: 61 s off an hour, within the 2 minutes
        (3721, "drift"),  # 121 s off an hour
        (-3600, "zone"),
        (86_400, "zone"),  # 48 half hours
    ],
)
def test_time_changes_are_zone_within_2_minutes_of_half_hours(change_s, kind):
    assert times.classify_time_change(change_s) == kind


@pytest.mark.parametrize(
    ("days", "kind"),
    [(1, "date_correction"), (30, "date_correction"), (364, "date_correction"), (365, "reset"), (-30, "date_correction"),
     (-364, "date_correction"), (-365, "reset"), (-6000, "reset")],
)  # fmt: skip
def test_date_changes_of_a_year_or_more_are_resets(days, kind):
    # Three records; the middle one is the date change (14) of ``days`` days.
    wall = np.array([WALL_2025, WALL_2025 + days * 86_400 + 300, WALL_2025 + days * 86_400 + 600])
    result = times.pump_times(
        np.arange(3), wall, np.array([279, 14, 279]), np.array([0, days * 86_400, 0]), ZoneInfo("UTC")
    )
    assert [(c.seq_num, c.kind, c.change_s) for c in result.changes] == [(1, kind, days * 86_400)]


def follows(walls: list[str], zone: str = "America/New_York") -> list[int]:
    """UTC offsets (minutes) that follows_zone gives records logged at these wall times, in order."""
    wall = np.array([int((dt.datetime.fromisoformat(w) - EPOCH).total_seconds()) for w in walls])
    n = len(wall)
    result = times.pump_times(np.arange(n), wall, np.full(n, 279), np.zeros(n, dtype=np.int64), ZoneInfo(zone),
                              mode=times.FOLLOWS_ZONE)  # fmt: skip
    return (result.offset_s // 60).tolist()


def test_follows_zone_in_the_repeated_hour():
    # New York, 2 November 2025: 01:00-01:59 happens twice, first in EDT (-240), then in EST (-300).
    # A history that starts inside the repeated hour starts in the first occurrence.
    assert follows(["2025-11-02 01:10", "2025-11-02 01:20"]) == [-240, -240]
    # The clock goes back by exactly 10 minutes within the hour: from that record on, the second.
    assert follows(["2025-11-02 01:40", "2025-11-02 01:50", "2025-11-02 01:40", "2025-11-02 01:45"]) == [
        -240, -240, -300, -300,
    ]  # fmt: skip
    # Back by 9 minutes only: still the first occurrence.
    assert follows(["2025-11-02 01:40", "2025-11-02 01:50", "2025-11-02 01:41"]) == [-240, -240, -240]
    # Outside the repeated hour, each time is read in the zone (01:30 on 1 November is EDT, on 3 November EST).
    assert follows(["2025-11-01 01:30", "2025-11-03 01:30"]) == [-240, -300]
    # The clock going back outside the repeated hour does not make a later repeated hour the second.
    assert follows(["2025-11-01 12:00", "2025-11-01 11:00", "2025-11-02 01:30"]) == [-240, -240, -240]


def note_for(walls: list[str], zone: str) -> list[str]:
    wall = np.array([int((dt.datetime.fromisoformat(w) - EPOCH).total_seconds()) for w in walls])
    n = len(wall)
    return times.pump_times(np.arange(n), wall, np.full(n, 279), np.zeros(n, dtype=np.int64), ZoneInfo(zone)).notes


def test_the_never_changed_note_names_the_switches_and_the_offset(monkeypatch):
    # The note must not depend on this machine's zone (naive times read as local would shift it).
    monkeypatch.setenv("TZ", "Australia/Lord_Howe")
    import time

    time.tzset()
    try:
        # Two records across London's autumn switch (26 October 2025): the last is in GMT, +00:00.
        (note,) = note_for(["2025-10-25 12:00", "2025-10-27 12:00"], "Europe/London")
        assert note == (
            "the history spans the clock switch of Europe/London on 2025-10-26, but the pump clock apparently never "
            "changed; every time was read with UTC offset +00:00, the offset at the last record"
        )
        # Berlin, from March to November 2025: two switches (30 March, 26 October); last offset +01:00.
        (note,) = note_for(["2025-03-01 12:00", "2025-11-01 12:00"], "Europe/Berlin")
        assert "2 clock switches of Europe/Berlin (from 2025-03-30 to 2025-10-26)" in note
        assert note.endswith("UTC offset +01:00, the offset at the last record")
        # A history that ends on the day of the switch, after it.
        (note,) = note_for(["2025-10-20 12:00", "2025-10-26 03:00"], "Europe/London")
        assert "on 2025-10-26" in note
        # New York in winter: -05:00.
        (note,) = note_for(["2025-10-01 12:00", "2025-11-10 12:00"], "America/New_York")
        assert note.endswith("UTC offset -05:00, the offset at the last record")
        # One record, or no switch in the span: no note.
        assert note_for(["2025-10-25 12:00"], "Europe/London") == []
        assert note_for(["2025-06-01 12:00", "2025-06-30 12:00"], "Europe/London") == []
    finally:
        monkeypatch.undo()
        time.tzset()
