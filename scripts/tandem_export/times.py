"""From the pump's wall clock to true instants (UTC).

The pump clock is a wall clock set by hand. It does not follow daylight saving time on its own;
users change it when travelling, or late after a DST switch, and after a battery failure it can
restart at 2008-01-01 until the date is set again (pump history-log layouts, notes on records 13/14
and on the clock).  Two models:

``recorded_changes`` (default)
    The offset between the pump clock and UTC is constant between recorded clock changes (time
    changed 13, date changed 14; ``clockChanges`` in the API).  Each change shifts the offset by
    its size.  The anchor: the configured zone is the zone the pump clock shows at the pump's last
    reliable record in sequence order; the offset there is that zone's UTC offset at that instant,
    and earlier offsets follow by walking back through the changes.
``follows_zone``
    The clock is assumed to have been kept in step with the zone's DST rules; every pump time is
    read in the zone, and a time in the repeated autumn hour is the first occurrence until the
    sequence shows the clock going back, the second after it.

Clock resets: a backward jump of more than a day between records with no recorded change to
explain it is the clock restarting (battery failure).  The changes that follow until the clock is
plausible again (back at or after the last time before the reset, less a day) are its correction.
Records logged while reset take the offset of the correction (the user set the right time, so the
elapsed time since the reset places them); records before the reset are read as if the reset and
its correction cancelled out.  Records so placed that do not fall between their neighbours in time,
and records of a reset never corrected, are not reliable: they stay in ``raw_events`` flagged,
and are left out of the analysis tables.

Change kinds (the ``clock_changes`` table): a time change within 2 minutes of a non-zero multiple
of 30 minutes is ``zone`` (DST or travel), any other time change is ``drift``; a date change of less
than 365 days is ``date_correction``; the unrecorded restart and every change of its correction are
``reset``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np

EPOCH = dt.datetime(2008, 1, 1)
DAY = 86_400
ZONE_TOLERANCE_S = 120
RESET_DAYS = 365
RECORDED_CHANGES = "recorded_changes"
FOLLOWS_ZONE = "follows_zone"
CLOCK_EVENT_IDS = (13, 14)
#: The pump clock counts uint32 seconds from 2008-01-01 (pump-event-layouts.md, header bytes 2-5).
PUMP_CLOCK_REACH_S = 2**32


@dataclass
class ClockChange:
    """One row of the clock_changes table (times are pump wall-clock seconds since 2008)."""

    seq_num: int
    before_s: int
    after_s: int
    change_s: int
    kind: str


@dataclass
class PumpTimes:
    """The result for one pump: per-record UTC offsets (seconds), reliability and the changes."""

    offset_s: np.ndarray
    reliable: np.ndarray
    changes: list[ClockChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def zone_offset_s(zone: ZoneInfo, wall_s: int, fold: int = 0) -> int:
    """UTC offset (seconds) of zone ``zone`` at wall-clock time ``wall_s`` (seconds since 2008)."""
    local = (EPOCH + dt.timedelta(seconds=int(wall_s))).replace(tzinfo=zone, fold=fold)
    return int(local.utcoffset().total_seconds())


def classify_time_change(change_s: int) -> str:
    """``zone`` within 2 minutes of a non-zero multiple of 30 minutes, else ``drift``."""
    k = round(change_s / 1800)
    return "zone" if k != 0 and abs(change_s - 1800 * k) <= ZONE_TOLERANCE_S else "drift"


def _changes(seq, wall, event_id, change_s) -> list[ClockChange]:
    out = []
    for i in np.flatnonzero(np.isin(event_id, CLOCK_EVENT_IDS)):
        d = int(change_s[i])
        if event_id[i] == 13:
            kind = classify_time_change(d)
        else:
            kind = "reset" if abs(d) >= RESET_DAYS * DAY else "date_correction"
        out.append(ClockChange(int(seq[i]), int(wall[i]) - d, int(wall[i]), d, kind))
    return out


def pump_times(seq, wall, event_id, change_s, zone: ZoneInfo, mode: str = RECORDED_CHANGES) -> PumpTimes:
    """UTC offsets for one pump's records.

    ``seq``, ``wall`` (pump-clock seconds since 2008-01-01), ``event_id`` and ``change_s`` (the
    size of a clock change in seconds for 13/14 records, else 0) are arrays in sequence order.
    Returns a PumpTimes whose ``offset_s[i]`` is wall - UTC for record i, in seconds.
    """
    n = len(seq)
    seq = np.asarray(seq, dtype=np.int64)
    wall = np.asarray(wall, dtype=np.int64)
    event_id = np.asarray(event_id)
    delta = np.where(np.isin(event_id, CLOCK_EVENT_IDS), np.asarray(change_s, dtype=np.int64), 0)
    result = PumpTimes(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool), _changes(seq, wall, event_id, delta))
    if n == 0:
        return result
    if mode == FOLLOWS_ZONE:
        result.offset_s = _follows_zone(wall, zone)
        return result

    # Unrecorded backward jumps of more than a day: the clock restarted.  For consecutive normal
    # records a < b, the recorded changes between them sum to suffix[a] - suffix[b] (suffix[i] = sum
    # of delta[i:]; delta[a] = 0), so the jump they leave unexplained is v[b] - v[a], v = wall + suffix.
    is_change = delta != 0
    recorded = bool(is_change.any())
    if recorded:
        normal = np.flatnonzero(~is_change)
        v = wall[normal] + np.cumsum(delta[::-1])[::-1][normal]
    else:
        normal = np.arange(n)
        v = wall
    jumps = np.diff(v)
    # A record (or a short run of them) logged more than a day ahead of the records on both sides,
    # which agree with each other, is an outlier (a mistyped or corrupted time), not a clock that
    # restarted: it alone is left out, and the records after it keep their times.
    outliers = _forward_spikes(v, jumps)
    if outliers:
        spiked = np.concatenate([normal[a : b + 1] for a, b in outliers])
        result.reliable[spiked] = False
        result.notes.append(
            f"{len(spiked)} record(s) carry a time more than a day ahead of the records around them (from "
            f"sequence {seq[spiked[0]]}); left out of the analysis tables"
        )
    ends = {b for _, b in outliers}
    pairs = [(int(normal[k]), int(normal[k + 1])) for k in np.flatnonzero(jumps < -DAY) if int(k) not in ends]
    # A smaller unrecorded backward step (over an hour, under a day) is no reset, but the records
    # around it overlap in time: say so.
    back = [int(k) for k in np.flatnonzero((jumps < -3600) & (jumps >= -DAY)) if int(k) not in ends]
    if back:
        hours = -jumps[back[0]] / 3600
        result.notes.append(
            f"the pump clock went back {len(back)} time(s) by more than an hour without a recorded change (first "
            f"by {hours:.1f} h at sequence {seq[normal[back[0] + 1]]}); the records around it overlap in time"
        )
    del normal, v, jumps
    resets = []  # (jump index, previous normal index, first plausible index or None, correction indices)
    for a, b in pairs:
        # The first normal record after b that is plausible again; the changes before it correct the reset.
        later = np.flatnonzero(~is_change[b + 1 :] & (wall[b + 1 :] >= wall[a] - DAY))
        plausible = b + 1 + int(later[0]) if later.size else None
        stop = plausible if plausible is not None else n
        corrections = (b + 1 + np.flatnonzero(is_change[b + 1 : stop])).tolist()
        resets.append((b, a, plausible, corrections))
    implicit = np.zeros(n, dtype=np.int64) if resets else None
    never: list[tuple[int, int]] = []  # (sequence number, records) of each reset never corrected
    for b, a, plausible, corrections in resets:
        implicit[b] = -int(delta[corrections].sum()) if plausible is not None else 0
        for c in result.changes:
            if c.seq_num in set(seq[corrections].tolist()):
                c.kind = "reset"
        result.changes.append(ClockChange(int(seq[b]), int(wall[a]), int(wall[b]), int(wall[b] - wall[a]), "reset"))
        stop = plausible if plausible is not None else n
        if plausible is None:
            result.reliable[b:stop] = False
            never.append((int(seq[b]), stop - b))
    if never:
        (first, count), records = never[0], never[0][1]  # each runs to the end: the first covers the others
        result.notes.append(
            f"clock reset at sequence {first} was never corrected: {count} record(s) cannot be placed in time"
            if len(never) == 1
            else f"{len(never)} clock resets were never corrected (the first at sequence {first}): {records} "
            "record(s) cannot be placed in time"
        )
    result.changes.sort(key=lambda c: c.seq_num)

    # A change at index c applies to the records before it: offset_before = offset_after - delta.
    anchor = int(np.flatnonzero(result.reliable)[-1]) if result.reliable.any() else n - 1
    anchor_offset = zone_offset_s(zone, int(wall[anchor]))
    if recorded or resets:
        total = delta + implicit if implicit is not None else delta
        after = np.cumsum(total[::-1])[::-1]
        after -= total  # sum of total[i+1:]
        after -= after[anchor]
        result.offset_s = anchor_offset - after
        del total, after
    else:
        result.offset_s = np.full(n, anchor_offset, dtype=np.int64)
    del delta

    utc = wall - result.offset_s
    misfits: list[tuple[int, int]] = []  # (sequence number of the reset, records that do not fit)
    for b, a, plausible, _ in resets:
        if plausible is None:
            continue
        seg = np.arange(b, plausible)
        outside = (utc[seg] < utc[a] - 60) | (utc[seg] > utc[plausible] + 60)
        if outside.any():
            result.reliable[seg[outside]] = False
            misfits.append((int(seq[b]), int(outside.sum())))
    if misfits:
        result.notes.append(
            f"{sum(k for _, k in misfits)} record(s) logged while the clock was reset (from sequence {misfits[0][0]}"
            f"{f', in {len(misfits)} resets' if len(misfits) > 1 else ''}) do not fit between their neighbours once "
            "corrected; left out of the analysis tables"
        )
    # An instant no pump clock can have logged (before 2008, the pump clock's epoch, less a day; or
    # beyond its reach, 2^32 seconds later) comes only from impossible clock changes: not reliable,
    # and read with offset 0, so that no later step computes an instant outside any calendar.
    impossible = (utc < -DAY) | (utc > PUMP_CLOCK_REACH_S)
    if impossible.any():
        result.reliable[impossible] = False
        result.offset_s[impossible] = 0
        result.notes.append(
            f"{int(impossible.sum())} record(s) would be placed before 2008 or after 2144 by their clock changes; "
            "left out of the analysis tables"
        )
    if not any(c.kind in ("zone", "reset") for c in result.changes):
        note = _never_changed_note(zone, utc if result.reliable.all() else utc[result.reliable], anchor_offset)
        if note:
            result.notes.append(note)
    return result


#: The longest run of records that can be taken as outliers ahead of their neighbours (a day of
#: 5-minute records).
MAX_SPIKE_RECORDS = 288


def _forward_spikes(v: np.ndarray, jumps: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) positions in ``v`` of runs of records ahead of both neighbours by over a day.

    ``v`` holds the normal records' times with the recorded changes taken out (see
    :func:`pump_times`), ``jumps`` its differences.  A run from ``j`` to ``k`` qualifies when it is
    entered by a forward jump of more than a day (``v[j] - v[j-1] > DAY``), left by a backward jump
    of more than a day (``v[k+1] - v[k] < -DAY``), every record in it is more than a day ahead of
    ``v[j-1]``, ``v[j-1]`` is not in the pump clock's first year (where a restarted clock shows), it
    is at most MAX_SPIKE_RECORDS long, and the record after it continues from the
    record before it: no earlier than a day before ``v[j-1]`` and no later than a day plus 15 minutes
    a record after it.
    """
    out = []
    forward = np.flatnonzero(jumps > DAY)
    for k in np.flatnonzero(jumps < -DAY).tolist():
        entries = forward[forward < k + 1]
        if not len(entries):
            continue
        j = int(entries[-1]) + 1  # the first record of the run
        before, after = v[j - 1], v[k + 1]
        if before < RESET_DAYS * DAY:
            continue  # the record before shows the pump clock's first year: a restarted clock, not a spike
        length = k - j + 1
        if length > MAX_SPIKE_RECORDS or np.any(v[j : k + 1] - before <= DAY):
            continue
        if before - DAY <= after <= before + DAY + 900 * (length + 1):
            out.append((j, k))
    return out


def _follows_zone(wall: np.ndarray, zone: ZoneInfo) -> np.ndarray:
    """Offsets by the zone's own rules, looked up once per 15-minute bucket of wall time.

    In a repeated autumn hour (fold 0 and fold 1 differ, the first being daylight time) records are
    the first occurrence until, in sequence order, the clock goes back by 10 minutes or more within
    that hour; from that record on they are the second occurrence.
    """
    buckets, inverse = np.unique(wall // 900, return_inverse=True)
    first = np.array([zone_offset_s(zone, int(b) * 900, 0) for b in buckets], dtype=np.int64)[inverse]
    second = np.array([zone_offset_s(zone, int(b) * 900, 1) for b in buckets], dtype=np.int64)[inverse]
    out = first.copy()
    repeated = np.flatnonzero(first > second)
    if repeated.size:
        went_back = np.concatenate([[False], np.maximum.accumulate(wall)[:-1] - wall[1:] >= 600])
        day = wall[repeated] // DAY
        for d in np.unique(day):
            idx = repeated[day == d]
            back = idx[went_back[idx]]
            if back.size:
                later = idx[idx >= back[0]]
                out[later] = second[later]
    return out


def _never_changed_note(zone: ZoneInfo, utc: np.ndarray, offset: int) -> str | None:
    """A warning when the history spans clock switches of ``zone`` (DST) though the pump clock never
    changed; it names how many and the local dates of the first and last.  None otherwise."""
    if len(utc) < 2:
        return None
    first = EPOCH + dt.timedelta(seconds=int(utc.min()))
    last = EPOCH + dt.timedelta(seconds=int(utc.max()))
    step = dt.timedelta(days=1)
    before = first.replace(tzinfo=dt.UTC).astimezone(zone).utcoffset()
    days = []
    # Daily points from the first instant, and the last instant itself (a switch after the last
    # whole day is found too).
    points = [first + k * step for k in range(int((last - first) / step) + 1)]
    if points[-1] < last:
        points.append(last)
    for previous, t in zip(points, points[1:], strict=False):
        now = t.replace(tzinfo=dt.UTC).astimezone(zone).utcoffset()
        if now != before:
            # The switch lies between the two points: find its hour, and name its local date.
            switch = previous
            while switch.replace(tzinfo=dt.UTC).astimezone(zone).utcoffset() == before:
                switch += dt.timedelta(hours=1)
            days.append(switch.replace(tzinfo=dt.UTC).astimezone(zone).date())
            before = now
    if not days:
        return None
    sign = "-" if offset < 0 else "+"
    hh, mm = divmod(abs(offset) // 60, 60)
    spans = f"the clock switch of {zone.key} on {days[0]}"
    if len(days) > 1:
        spans = f"{len(days)} clock switches of {zone.key} (from {days[0]} to {days[-1]})"
    return (
        f"the history spans {spans}, but the pump clock apparently never "
        f"changed; every time was read with UTC offset {sign}{hh:02d}:{mm:02d}, the offset at the last record"
    )
