"""The bounds of the clock-reset and outlier rules of ``times.pump_times``, on small hand-made histories.

Every expected value is worked out by hand from the rules in the docstrings of ``tandem_export.times``
(clock resets, their correction, the first plausible record, records never corrected, the outlier
rule of ``_forward_spikes``).  Unless a test says otherwise the zone is UTC and no change is recorded,
so every offset is 0 and ``v`` (the times with the recorded changes taken out) is the wall clock itself.
Sequence numbers are 100 + the record's index, so that a note naming a sequence number tells the two apart.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pytest
from tandem_export import times

pytestmark = pytest.mark.fast  # the fast tier of value tests (make test-fast)

D = 86_400  # a day
W = 552_182_400  # 2025-07-01 00:00:00 on the pump clock (6,391 days after 2008-01-01)
YEAR = 365 * D  # the pump clock's first year ends here (2008-12-31 00:00:00)
BASAL, DATE, TIME = 279, 14, 13


def run(wall, event_id=None, change_s=None, zone: str = "UTC") -> times.PumpTimes:
    n = len(wall)
    event_id = np.full(n, BASAL) if event_id is None else np.array(event_id)
    change_s = np.zeros(n, dtype=np.int64) if change_s is None else np.array(change_s, dtype=np.int64)
    return times.pump_times(np.arange(100, 100 + n), np.array(wall, dtype=np.int64), event_id, change_s, ZoneInfo(zone))


def changes(result: times.PumpTimes) -> list[tuple]:
    return [(c.seq_num, c.before_s, c.after_s, c.change_s, c.kind) for c in result.changes]


def check(result, *, reliable, notes, clock_changes=(), offsets=None):
    assert result.reliable.tolist() == reliable
    assert result.notes == notes
    assert changes(result) == list(clock_changes)
    n = len(reliable)
    assert result.offset_s.tolist() == (offsets if offsets is not None else [0] * n)


def spike_note(count: int, seq: int) -> str:
    return (
        f"{count} record(s) carry a time more than a day ahead of the records around them (from sequence {seq}); "
        "left out of the analysis tables"
    )


def never_note(seq: int, count: int) -> str:
    return f"clock reset at sequence {seq} was never corrected: {count} record(s) cannot be placed in time"


def misfit_note(count: int, seq: int) -> str:
    return (
        f"{count} record(s) logged while the clock was reset (from sequence {seq}) do not fit between their "
        "neighbours once corrected; left out of the analysis tables"
    )


def back_note(hours: str, seq: int) -> str:
    return (
        f"the pump clock went back 1 time(s) by more than an hour without a recorded change (first by {hours} h at "
        f"sequence {seq}); the records around it overlap in time"
    )


# --- no records, one record -------------------------------------------------------------------------


def test_no_records_and_a_single_record():
    # One record at 2025-07-01 00:00 in Berlin: it is the anchor, read in summer time, UTC+2 (7,200 s).
    check(run([W], zone="Europe/Berlin"), reliable=[True], notes=[], offsets=[7200])
    # No records: nothing, and no error.
    empty = run([])
    assert empty.offset_s.tolist() == [] and empty.reliable.tolist() == []
    assert empty.offset_s.dtype == np.int64
    assert empty.changes == [] and empty.notes == []


# --- unrecorded backward steps: a reset beyond a day, a note beyond an hour ----------------------------


def test_a_step_back_of_exactly_a_day_is_no_reset_but_is_noted():
    # Back by exactly 86,400 s between records 101 and 102: a reset needs more than a day, so no reset
    # change and every record reliable; but it is over an hour (and at most a day): the note, 24.0 h.
    result = run([W, W + 300, W + 300 - D, W + 600 - D])
    check(result, reliable=[True] * 4, notes=[back_note("24.0", 102)])


@pytest.mark.parametrize(
    ("step", "notes"),
    [
        (3600, []),  # exactly an hour back: the note needs more than an hour
        (3601, [back_note("1.0", 102)]),  # 3601/3600 = 1.0003 h
        (3781, [back_note("1.1", 102)]),  # 3781/3600 = 1.0503 h, which rounds up to 1.1
    ],
    ids=["1 h", "1 h 1 s", "1 h 3 min 1 s"],
)
def test_a_step_back_is_noted_beyond_an_hour_with_its_size_in_hours(step, notes):
    check(run([W, W + 300, W + 300 - step, W + 600 - step]), reliable=[True] * 4, notes=notes)


# --- a reset corrected by the user -----------------------------------------------------------------


def test_a_corrected_reset_takes_only_the_changes_before_the_first_plausible_record():
    # Zone Etc/GMT-1 (UTC+1 all year).  True UTC of record i in brackets.
    #   100 [W-300]  101 [W]  wall = UTC (offset 0, as the zone change below shows)
    #   102 [W+300]  103 [W+600]  the clock restarted at 2008-01-01 00:00 (wall 0, 300): a jump back of W
    #   104 date change of +W (wall 600 -> W+600) [W+900], 105 time change +300 (W+600 -> W+900) [W+900]
    #   106 [W+1200]  the first normal record at or after wall[101] - a day: plausible again
    #   107 time change +3600 (W+1500 -> W+5100) [W+1500]: the user moves to UTC+1, after the correction
    #   108 [W+1800]  109 [W+2100]  the anchor, read in Etc/GMT-1: offset 3600
    # The correction is 104 and 105 only (they become "reset"); 107 stays a zone change.  The reset
    # itself is 102: from wall W (101) to 0, change 0 - W.  Offsets, walking back from 3600 at 109:
    # 3600 down to 107; 0 before it (the zone change); 105 and 106: 0; 104: -300 (before the time
    # change); 102, 103: -300 - W (before the date change), wall - offset = their true UTC; before
    # the reset (100, 101) the reset and its correction cancel: 0.
    wall = [W - 300, W, 0, 300, W + 600, W + 900, W + 1200, W + 5100, W + 5400, W + 5700]
    event = [BASAL] * 4 + [DATE, TIME, BASAL, TIME, BASAL, BASAL]
    change = [0, 0, 0, 0, W, 300, 0, 3600, 0, 0]
    check(
        run(wall, event, change, zone="Etc/GMT-1"),
        reliable=[True] * 10,
        notes=[],
        clock_changes=[
            (102, W, 0, -W, "reset"),
            (104, 600, W + 600, W, "reset"),
            (105, W + 600, W + 900, 300, "reset"),
            (107, W + 1500, W + 5100, 3600, "zone"),
        ],
        offsets=[0, 0, -W - 300, -W - 300, -300, 0, 0, 3600, 3600, 3600],
    )


def test_the_records_while_reset_are_checked_against_the_first_plausible_record():
    # 100 [W-300], 101 [W]; 102 restarted at wall 0 [W+300]; 103 date change +(W+300) (wall 300 ->
    # W+600) [W+600]; 104 [W+900] is plausible again; 105 logged 5 minutes behind (wall W+600, no
    # recorded change, too small for a note), 106 W+900.  Offsets: 0 except 102 (before the
    # correction, after the reset): -(W+300), so utc 102 = W+300.  The records 102-103 fall between
    # 101 (W) and 104 (W+900): all reliable (105 is after 104 and not checked against it).
    wall = [W - 300, W, 0, W + 600, W + 900, W + 600, W + 900]
    event = [BASAL, BASAL, BASAL, DATE, BASAL, BASAL, BASAL]
    change = [0, 0, 0, W + 300, 0, 0, 0]
    check(
        run(wall, event, change),
        reliable=[True] * 7,
        notes=[],
        clock_changes=[(102, W, 0, -W, "reset"), (103, 300, W + 600, W + 300, "reset")],
        offsets=[0, 0, -W - 300, 0, 0, 0, 0],
    )


def test_a_record_exactly_a_day_before_the_last_time_before_the_reset_is_plausible_again():
    # 101 at W, reset to 0 at 102, 103 at 300; 104 a date change of +(W - D - 600) (wall 600 ->
    # W - D), 105 at exactly W - D = wall[101] less a day: plausible again, so 104 is the correction.
    # Offsets: 102, 103 (before the change) -(W - D - 600); the rest 0.  Placed so, 102-104 fall at
    # W-D-600, W-D-300, W-D: before 101 (W) by more than 60 s: the three do not fit, not reliable.
    dd = W - D - 600
    wall = [W - 300, W, 0, 300, W - D, W - D]
    event = [BASAL] * 4 + [DATE, BASAL]
    change = [0, 0, 0, 0, dd, 0]
    check(
        run(wall, event, change),
        reliable=[True, True, False, False, False, True],
        notes=[misfit_note(3, 102)],
        clock_changes=[(102, W, 0, -W, "reset"), (104, 600, W - D, dd, "reset")],
        offsets=[0, 0, -dd, -dd, 0, 0],
    )


# --- a reset never corrected -------------------------------------------------------------------------


def test_a_reset_never_corrected_keeps_its_records_on_the_anchor_before_it():
    # 101 at W, reset to 0 at 102, 103 at 300; 104 a date change of +30 days (wall 600 -> 600+30d) that
    # never brings the clock back to W less a day (105 at 900+30d): never corrected.  102-105 are
    # not reliable (4 records), 104 is part of the reset ("reset", not "date_correction").  The
    # anchor is 101 (the last reliable record), offset 0; the never-corrected reset adds no change
    # of its own, so the offsets are 0 up to the date change and 30 days after it.
    month = 30 * D
    wall = [W - 300, W, 0, 300, 600 + month, 900 + month]
    event = [BASAL] * 4 + [DATE, BASAL]
    change = [0, 0, 0, 0, month, 0]
    check(
        run(wall, event, change),
        reliable=[True, True, False, False, False, False],
        notes=[never_note(102, 4)],
        clock_changes=[(102, W, 0, -W, "reset"), (104, 600, 600 + month, month, "reset")],
        offsets=[0, 0, 0, 0, month, month],
    )


# --- the outlier rule (_forward_spikes) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "spike"),
    [
        (W + D + 1800, True),  # a day plus 15 minutes a record after the record before (one record): still a spike
        (W + D + 1801, False),  # a second later: no spike
        (W - D, True),  # exactly a day before the record before: still a spike
    ],
    ids=["a day and 15 min after", "a day, 15 min and 1 s after", "a day before"],
)
def test_the_record_after_a_spike_must_continue_from_the_record_before(after, spike):
    # 100 at W-300, 101 at W, 102 ten days ahead (W + 10d), then 103 at ``after`` and 104 five minutes later.
    wall = [W - 300, W, W + 10 * D, after, after + 300]
    result = run(wall)
    if spike:
        check(result, reliable=[True, True, False, True, True], notes=[spike_note(1, 102)])
    else:
        # No outlier: the jump back from 102 is a reset, never corrected (nothing after is at or
        # after W + 9d): 103 and 104 are not reliable; the anchor is 102.
        check(
            result,
            reliable=[True, True, True, False, False],
            notes=[never_note(103, 2)],
            clock_changes=[(103, W + 10 * D, after, after - W - 10 * D, "reset")],
        )


@pytest.mark.parametrize("before", [YEAR, YEAR - 1], ids=["365 days", "365 days less 1 s"])
def test_a_spike_after_the_pump_clocks_first_year_only(before):
    # 101 at ``before``, 102 ten days ahead, 103 five minutes after 101.  The record before in the
    # first year (before 365 days) shows a restarted clock: no spike, the jump back is a reset never
    # corrected.  At exactly 365 days it is a spike.
    wall = [before - 300, before, before + 10 * D, before + 300, before + 600]
    result = run(wall)
    if before >= YEAR:
        check(result, reliable=[True, True, False, True, True], notes=[spike_note(1, 102)])
    else:
        check(
            result,
            reliable=[True, True, True, False, False],
            notes=[never_note(103, 2)],
            clock_changes=[(103, before + 10 * D, before + 300, 300 - 10 * D, "reset")],
        )


@pytest.mark.parametrize("length", [288, 289])
def test_a_spike_is_at_most_288_records(length):
    # 101 at W, then ``length`` 5-minute records ten days ahead (102 ...), then 5 minutes after 101.
    run_ = [W + 10 * D + 300 * i for i in range(length)]
    wall = [W - 300, W, *run_, W + 300, W + 600]
    result = run(wall)
    n = len(wall)
    if length == 288:
        check(result, reliable=[True, True] + [False] * 288 + [True, True], notes=[spike_note(288, 102)])
    else:
        # 289 records: no spike; the jump back after the last of them (index 290, at W + 10d + 288 * 300
        # = W + 11d) is a reset never corrected: the two records after it (sequence 391, 392).
        check(
            result,
            reliable=[True] * (n - 2) + [False, False],
            notes=[never_note(391, 2)],
            clock_changes=[(391, W + 11 * D, W + 300, 300 - 11 * D, "reset")],
        )


def test_a_run_with_a_record_only_a_day_ahead_is_no_spike():
    # 101 at W; 102 at W + d + 1 h; 103 at exactly W + d (back an hour: not over an hour, no note);
    # 104 back to W - 300.  103 is not more than a day ahead of 101: 102-103 are no spike, and the jump
    # back from 103 is a reset (104 at W-300); 105 at W+300 is plausible again (at or after W + d less
    # a day), no change corrects it, and 104 (at W-300, before 103) does not fit: not reliable.
    # Later, 107 (W + 20d) is a spike between 106 (W+600) and 108 (W+900).
    wall = [W - 300, W, W + D + 3600, W + D, W - 300, W + 300, W + 600, W + 20 * D, W + 900, W + 1200]
    check(
        run(wall),
        reliable=[True, True, True, True, False, True, True, False, True, True],
        notes=[spike_note(1, 107), misfit_note(1, 104)],
        clock_changes=[(104, W + D, W - 300, -D - 300, "reset")],
    )


def test_the_entry_of_a_spike_is_a_jump_of_more_than_a_day():
    # 101 at W, 102 at W + 2d, 103 exactly a day later (W + 3d), 104 back to W + 300: 102-103 are one
    # run (the step of exactly a day into 103 is no new entry), both over a day ahead of 101: a spike of 2.
    wall = [W - 300, W, W + 2 * D, W + 3 * D, W + 300, W + 600]
    check(run(wall), reliable=[True, True, False, False, True, True], notes=[spike_note(2, 102)])


def test_the_exit_of_a_spike_is_a_jump_back_of_more_than_a_day():
    # 102 at W + d + 1 h, then 103 back by exactly a day (W + 1 h): no exit, so no spike; but a step
    # back of over an hour: the note, 24.0 h at sequence 103.
    wall = [W - 300, W, W + D + 3600, W + 3600, W + 3900]
    check(run(wall), reliable=[True] * 5, notes=[back_note("24.0", 103)])


def test_a_reset_before_a_spike_does_not_hide_it():
    # 100, 101 at W + 100d; 102 jumps back to W (no forward jump before it: a reset, never corrected,
    # since nothing after is at or after W + 99d): 102-106 not reliable.  Within it, 104 (W + 20d)
    # is still a spike between 103 (W+300) and 105 (W+600), and is noted.
    wall = [W + 100 * D - 300, W + 100 * D, W, W + 300, W + 20 * D, W + 600, W + 900]
    check(
        run(wall),
        reliable=[True, True, False, False, False, False, False],
        notes=[spike_note(1, 104), never_note(102, 5)],
        clock_changes=[(102, W + 100 * D, W, -100 * D, "reset")],
    )


def test_a_first_year_run_ahead_does_not_hide_a_later_spike():
    # 100, 101 in the first year (300, 600); 102 ten days ahead; 103, 104 back (900, 1200): 101 is in
    # the first year, so 102 is no spike: the jump back from 102 is a reset, plausible again at 105
    # (wall W, unrecorded jump forward, at or after 600 + 9d); no change corrects it, so 103 and 104
    # (before 102) do not fit.  Then 107 (W + 10d) is a spike between 106 (W+300) and 108 (W+600).
    wall = [300, 600, 600 + 10 * D, 900, 1200, W, W + 300, W + 10 * D, W + 600, W + 900]
    check(
        run(wall),
        reliable=[True, True, True, False, False, True, True, False, True, True],
        notes=[spike_note(1, 107), misfit_note(2, 103)],
        clock_changes=[(103, 600 + 10 * D, 900, 300 - 10 * D, "reset")],
    )


def test_a_spike_is_entered_before_it_is_left():
    # 102 (W + 20d) is a spike between 101 (W) and 103 (W+300).  Then 105 dips 100 days back (no
    # recorded change) and 106 is back at W+900: the dip is a reset (the jump forward after it enters
    # no spike), plausible again at 106, and 105 (before 104) does not fit.
    wall = [W - 300, W, W + 20 * D, W + 300, W + 600, W - 100 * D, W + 900, W + 1200]
    check(
        run(wall),
        reliable=[True, True, False, True, True, False, True, True],
        notes=[spike_note(1, 102), misfit_note(1, 105)],
        clock_changes=[(105, W + 600, W - 100 * D, -100 * D - 600, "reset")],
    )
