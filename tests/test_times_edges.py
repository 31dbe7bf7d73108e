"""The time model at the edges of its rules, unit level: the records of a reset that do not fit once
corrected, instants no pump clock can have logged, the anchor in a repeated hour, the fields of a
clock change, the never-changed note in awkward zones and machine zones, follows_zone over two
autumns (no record and one record: test_times_rules).

Each case calls ``times.pump_times`` on a few records (pump-clock seconds since 2008-01-01).
Expected values are literals worked out by hand from the rules in the module's docstring: the
offset of a record is the anchor's offset less the changes after it, so with the zone UTC a record
before a change of ``D`` seconds is placed at its wall time plus ``D``.
"""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from tandem_export import times

pytestmark = pytest.mark.fast  # the fast tier of value tests (make test-fast)

EPOCH = dt.datetime(2008, 1, 1)
DAY = 86_400
T = 552_182_400  # 2025-07-01 00:00:00 on the pump clock
UTC_ZONE = ZoneInfo("UTC")


def run(wall, event_id=None, change=None, zone=UTC_ZONE, mode=times.RECORDED_CHANGES):
    n = len(wall)
    event_id = np.full(n, 279) if event_id is None else np.array(event_id)
    change = np.zeros(n, dtype=np.int64) if change is None else np.array(change, dtype=np.int64)
    return times.pump_times(np.arange(n), np.array(wall, dtype=np.int64), event_id, change, zone, mode=mode)


def walls(texts: list[str]) -> list[int]:
    return [int((dt.datetime.fromisoformat(t) - EPOCH).total_seconds()) for t in texts]


# --- records logged while the clock was reset, once corrected ---------------------------------------


def reset(before: int, at: int, back_wall: int, d: int) -> tuple[list[int], list[int], list[int]]:
    """Records 0-1 at ``before`` and ``before + 300``; the clock restarts (record 2 at wall ``at``);
    the user sets the date (a 14 record, ``d`` seconds, logged 100 s later); record 4 is the first
    plausible one, at ``back_wall`` on the corrected clock.  With the zone UTC, record 2 is placed at
    ``at + d``, record 3 (the change) at its wall ``at + 100 + d`` and record 4 at ``back_wall``."""
    wall = [before, before + 300, at, at + 100 + d, back_wall]
    return wall, [279, 279, 279, 14, 279], [0, 0, 0, d, 0]


@pytest.mark.parametrize(
    ("placed_after_a", "fits"),
    [(-60, True), (-61, False), (30, True)],  # record 2 placed 60 s before record 1: still fits; 61 s: not
)
def test_a_reset_record_placed_before_the_record_before_the_reset(placed_after_a, fits):
    # Record 1 (the last before the reset) is at T + 300; record 2 is placed at T + 300 + placed_after_a.
    at = 0  # the clock restarted at 2008-01-01 00:00
    d = T + 300 + placed_after_a - at
    wall, ids, change = reset(T, at, at + 100 + d + 300, d)
    result = run(wall, ids, change)
    assert result.reliable.tolist() == [True, True, fits, True, True]
    assert (result.offset_s.tolist()) == [0, 0, -d, 0, 0]  # record 2 takes the correction's offset
    assert result.offset_s.dtype == np.int64
    misfit = [n for n in result.notes if "do not fit" in n]
    assert misfit == (
        []
        if fits
        else [
            "1 record(s) logged while the clock was reset (from sequence 2) do not fit between their neighbours "
            "once corrected; left out of the analysis tables"
        ]
    )


@pytest.mark.parametrize(("change_after_plausible", "fits"), [(60, True), (61, False)])
def test_a_reset_record_placed_after_the_first_plausible_record(change_after_plausible, fits):
    # The date change (record 3, placed at its wall time) is change_after_plausible seconds after
    # record 4, the first plausible record: 60 s fits, 61 s does not.
    at = 0
    d = T + 1000
    change_wall = at + 100 + d
    wall, ids, change = reset(T, at, change_wall - change_after_plausible, d)
    result = run(wall, ids, change)
    assert result.reliable.tolist() == [True, True, True, fits, True]


def test_misfits_of_two_resets_are_one_note():
    # Two resets, each with one record placed 61 s before the record before it.
    first, ids, change = reset(T, 0, T + 300 - 61 + 400, T + 300 - 61)
    second_before = T + 10_000
    second, ids2, change2 = reset(second_before, 0, second_before + 300 - 61 + 400, second_before + 300 - 61)
    result = run(first + second, ids + ids2, change + change2)
    assert result.reliable.tolist() == [True, True, False, True, True, True, True, False, True, True]
    assert [n for n in result.notes if "do not fit" in n] == [
        "2 record(s) logged while the clock was reset (from sequence 2, in 2 resets) do not fit between their "
        "neighbours once corrected; left out of the analysis tables"
    ]
    assert [(c.seq_num, c.kind) for c in result.changes] == [(2, "reset"), (3, "reset"), (7, "reset"), (8, "reset")]


def test_a_corrected_reset_after_one_never_corrected_is_still_checked():
    # 2025 -> the clock restarts at 2010 and stays there (never back near 2025: never corrected) ->
    # it restarts again at 2008, and the date is set to 2010 (a correction of the second reset
    # only), placing record 4 61 s before record 3: it does not fit (every record from 2 on is
    # already left out, as the first reset was never corrected; the note says so too).
    y2010 = 2 * 365 * DAY
    d = y2010 + 300 - 61
    wall = [T, T + 300, y2010, y2010 + 300, 0, 100 + d, 500 + d]
    result = run(wall, [279, 279, 279, 279, 279, 14, 279], [0, 0, 0, 0, 0, d, 0])
    assert result.reliable.tolist() == [True, True, False, False, False, False, False]
    assert [n for n in result.notes if "do not fit" in n] == [
        "1 record(s) logged while the clock was reset (from sequence 4) do not fit between their neighbours "
        "once corrected; left out of the analysis tables"
    ]


def test_the_pump_clock_as_uint32_seconds():
    # The decoder's wall times are unsigned 32-bit: a backward jump must stay negative (a reset),
    # not wrap around to four billion seconds forward.
    wall = np.array([T, T + 300, 0, 300], dtype=np.uint32)
    n = len(wall)
    result = times.pump_times(np.arange(n), wall, np.full(n, 279), np.zeros(n, dtype=np.int64), UTC_ZONE)
    assert result.reliable.tolist() == [True, True, False, False]
    assert "clock reset at sequence 2 was never corrected: 2 record(s) cannot be placed in time" in result.notes


# --- instants no pump clock can have logged ---------------------------------------------------------


@pytest.mark.parametrize(("placed", "reliable"), [(-DAY, True), (-DAY - 1, False)])
def test_a_record_placed_a_day_before_2008_is_the_last_that_is_reliable(placed, reliable):
    # Record 0 at wall 1000, then the clock is set by placed - 1000 seconds (a 14 record): record 0
    # is placed at its wall plus the change, ``placed`` seconds from 2008-01-01 00:00 UTC.
    result = run([1000, 1300, 1600], [279, 14, 279], [0, placed - 1000, 0])
    assert result.reliable.tolist() == [reliable, True, True]
    assert result.offset_s.tolist() == [-(placed - 1000) if reliable else 0, 0, 0]
    notes = [n for n in result.notes if "2144" in n]
    assert notes == (
        []
        if reliable
        else [
            "1 record(s) would be placed before 2008 or after 2144 by their clock changes; left out of the analysis tables"
        ]
    )


@pytest.mark.parametrize(("last", "reliable"), [(2**32, True), (2**32 + 1, False)])
def test_the_pump_clock_reaches_2_to_the_32_seconds(last, reliable):
    # No change, zone UTC: every record is placed at its wall time.
    result = run([last - 300, last])
    assert result.reliable.tolist() == [True, reliable]


# --- the anchor and the fields of a change ------------------------------------------------------


def test_an_anchor_in_the_repeated_autumn_hour_is_its_first_occurrence():
    # New York, 2 November 2025: 01:00-01:59 happens first in EDT (-4 h), then in EST. A pump that
    # never changed and whose last record is at 01:30 is read as EDT.
    result = run(walls(["2025-11-02 00:50", "2025-11-02 01:30"]), zone=ZoneInfo("America/New_York"))
    assert result.offset_s.tolist() == [-14_400, -14_400]


def test_a_clock_change_keeps_the_time_before_and_after_it():
    # The time set forward by an hour (13) at wall T + 4000, and the date back by 2 days (14) at T + 9000.
    result = run([T, T + 4000, T + 9000, T + 9300], [279, 13, 14, 279], [0, 3600, -2 * DAY, 0])
    got = [(c.seq_num, c.before_s, c.after_s, c.change_s, c.kind) for c in result.changes]
    assert got == [(1, T + 400, T + 4000, 3600, "zone"), (2, T + 9000 + 2 * DAY, T + 9000, -2 * DAY, "date_correction")]


# --- follows_zone ---------------------------------------------------------------------------------


def test_follows_zone_a_clock_gone_back_in_one_autumn_does_not_make_the_next_autumn_second():
    # New York: in the 2024 repeated hour (3 November) the clock goes back 20 minutes: the records
    # from there are EST (-5 h). A year later, 2 November 2025 01:10 is the first occurrence (EDT).
    wall = walls(["2024-11-03 01:40", "2024-11-03 01:20", "2025-11-02 01:10"])
    result = run(wall, zone=ZoneInfo("America/New_York"), mode=times.FOLLOWS_ZONE)
    assert result.offset_s.tolist() == [-14_400, -18_000, -14_400]


# --- the never-changed note ---------------------------------------------------------------------------


def notes(texts: list[str], zone: str, event_id=None, change=None) -> list[str]:
    return [n for n in run(walls(texts), event_id, change, zone=ZoneInfo(zone)).notes if "never" in n]


def note_text(spans: str, offset: str) -> str:
    return (
        f"the history spans {spans}, but the pump clock apparently never changed; every time was read with "
        f"UTC offset {offset}, the offset at the last record"
    )


@pytest.fixture
def machine_zone(monkeypatch):
    """Set this process's local zone (naive datetimes read as local would shift the note)."""

    def set_zone(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("machine", ["Pacific/Pago_Pago", "Pacific/Kiritimati", "UTC"])
def test_the_note_is_the_same_on_a_machine_in_any_zone(machine_zone, machine):
    machine_zone(machine)  # UTC-11 and UTC+14
    # London's autumn switch: 26 October 2025 01:00 UTC. Records daily at 02:00 UTC, the first 23 h
    # before the switch; the last record is after it (GMT, +00:00), so wall = UTC.
    assert notes(["2025-10-25 02:00", "2025-10-27 02:00"], "Europe/London") == [
        note_text("the clock switch of Europe/London on 2025-10-26", "+00:00")
    ]
    # The first record 5 hours before the switch.
    assert notes(["2025-10-25 20:00", "2025-10-27 20:00"], "Europe/London") == [
        note_text("the clock switch of Europe/London on 2025-10-26", "+00:00")
    ]


def test_the_note_for_a_history_shorter_than_a_day_and_one_ending_before_the_switch():
    # 15 hours across London's switch: the note.
    assert notes(["2025-10-25 12:00", "2025-10-26 03:00"], "Europe/London") == [
        note_text("the clock switch of Europe/London on 2025-10-26", "+00:00")
    ]
    # 24 October 02:00 UTC to 25 October 23:00 UTC (BST, wall one hour later): it ends two hours
    # before the switch, so no note.
    assert notes(["2025-10-24 03:00", "2025-10-26 00:00"], "Europe/London") == []


def test_the_note_names_the_local_date_of_a_switch_at_midnight():
    # Santiago (Chile), 2025: at 2025-04-06 00:00 -03 (03:00 UTC) the clock goes back to 23:00 on
    # 5 April (-04). Records daily at 22:30 on the pump clock (-04 at the last record: 02:30 UTC):
    # the switch's local date is 5 April.
    assert notes(["2025-04-04 22:30", "2025-04-08 22:30"], "America/Santiago") == [
        note_text("the clock switch of America/Santiago on 2025-04-05", "-04:00")
    ]


def test_the_note_names_the_first_and_the_last_of_three_switches():
    assert notes(["2025-03-01 12:00", "2026-04-01 12:00"], "Europe/Berlin") == [
        note_text("3 clock switches of Europe/Berlin (from 2025-03-30 to 2026-03-29)", "+02:00")
    ]


def test_a_drift_correction_does_not_stop_the_note():
    # The clock corrected by 7 minutes (drift, 13) in a history across London's switch: it still
    # never followed the switch. Last record GMT: offset +00:00.
    wall = ["2025-10-20 12:00", "2025-10-21 12:07", "2025-10-27 12:00"]
    assert notes(wall, "Europe/London", [279, 13, 279], [0, 420, 0]) == [
        note_text("the clock switch of Europe/London on 2025-10-26", "+00:00")
    ]


def test_no_note_when_the_pump_followed_the_switch():
    # London's autumn switch (26 October 2025 01:00 UTC): the user set the clock back an hour (a 13
    # record of -3600 s, a zone change), so the pump followed the zone and there is no note; the
    # same history without the change gets it (last record GMT, +00:00).
    wall = ["2025-10-25 12:00", "2025-10-26 08:00", "2025-10-26 07:01", "2025-10-27 12:00"]
    assert notes(wall, "Europe/London", [279, 279, 13, 279], [0, 0, -3600, 0]) == []
    assert notes(["2025-10-25 12:00", "2025-10-27 12:00"], "Europe/London") == [
        note_text("the clock switch of Europe/London on 2025-10-26", "+00:00")
    ]


def test_no_note_when_the_clock_was_reset():
    # The clock restarted at 2008-01-01 (a reset) and was set to the date again, in a history across
    # London's autumn switch: its times come from a reset, not from a clock that never changed.
    before = walls(["2025-10-25 12:00"])[0]
    back = walls(["2025-10-27 12:00"])[0]
    wall, event_id, change = reset(before, 0, back, before + 600)
    result = run(wall, event_id, change, zone=ZoneInfo("Europe/London"))
    assert [c.kind for c in result.changes] == ["reset", "reset"]  # the restart and the date set
    assert [n for n in result.notes if "never" in n] == []
