"""The bundled demo pump: a deterministic, seeded, realistic pump history.

Nothing here is anyone's real data.  The history is a t:slim X2 with a Dexcom G7 and Control-IQ:
5-minute CGM readings shaped by meals, insulin, exercise and a daily rhythm; sensor changes every
10 days with a 30-minute warm-up gap; signal losses whose readings arrive later as backfill (and
one reading logged twice); a few readings beyond the sensor's 40-400 mg/dL range; 5-minute basal
records from a basal profile with algorithm adjustments, one temp rate and one suspension; meal
boluses with carbs and automatic corrections, one cancelled part-way; fingerstick BGs; cartridge,
tubing and cannula fills every third day; low-insulin alerts; daily basal summaries.

The same seed, days and end date give the same events on every machine (Python's ``random``
with an explicit seed; no clock or locale is read).
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from .encode import PumpEvent, pump_seconds

DEMO_SERIAL = "DEMO-00000001"
DEMO_ASSIGNMENT_ID = "00000000-0000-4000-8000-00000000de40"
DEMO_TIMEZONE = "America/Chicago"
DEMO_SEQUENCE_GROUP = 1
DEMO_END = date(2025, 6, 30)
DEMO_DAYS = 90
MAX_WINDOW_DAYS = 28

FIVE_MIN = timedelta(minutes=5)
# Basal profile (pump wall-clock hour -> units/hour) and bolus settings of the demo person.
BASAL_PROFILE = [(0, 0.75), (4, 0.95), (9, 0.85), (15, 0.9), (21, 0.8)]
CARB_RATIO_G_PER_UNIT = 10.0
ISF_MG_DL_PER_UNIT = 45
TARGET_BG_MG_DL = 110


def meter_bg(g: float) -> int:
    """A blood glucose as a meter gives it: whole mg/dL within its 20-600 mg/dL range (layouts.BG_MG_DL)."""
    return max(20, min(600, int(round(g))))


def profile_rate(t: datetime) -> float:
    """Basal profile rate in units/hour at wall-clock time ``t``."""
    rate = BASAL_PROFILE[0][1]
    for hour, value in BASAL_PROFILE:
        if t.hour >= hour:
            rate = value
    return rate


def windows(end: date, days: int, max_days: int = MAX_WINDOW_DAYS) -> list[tuple[date, date]]:
    """Consecutive (first, last) day pairs covering ``days`` days ending on ``end``.

    Windows are at most ``max_days`` long and aligned to the first day, the way a fetch pages the
    pump-logs endpoint.
    """
    first = end - timedelta(days=days - 1)
    out = []
    while first <= end:
        last = min(first + timedelta(days=max_days - 1), end)
        out.append((first, last))
        first = last + timedelta(days=1)
    return out


@dataclass
class _Bump:
    """A glucose effect shaped like t*exp(-t/tau): amplitude mg/dL at its peak (t = tau)."""

    start: datetime
    amplitude: float
    tau_min: float

    def at(self, t: datetime) -> float:
        x = (t - self.start).total_seconds() / 60.0 / self.tau_min
        return 0.0 if x <= 0 else self.amplitude * x * math.exp(1.0 - x)


class DemoPump:
    """Generates the demo history; iterate :meth:`events` for PumpEvents in sequence order."""

    def __init__(self, seed: int = 42, end: date = DEMO_END, days: int = DEMO_DAYS):
        self.rng = random.Random(seed)
        self.end = end
        self.days = days
        self.start = datetime.combine(end - timedelta(days=days - 1), datetime.min.time())
        self.stop = datetime.combine(end + timedelta(days=1), datetime.min.time())
        self.seq = 1_000_000
        self._pending: list[tuple[datetime, int, dict]] = []
        self._plan()

    # --- planning: the day-level story --------------------------------------------------------
    def _plan(self) -> None:
        rng = self.rng
        self.meals: list[tuple[datetime, int]] = []
        self.exercise: list[tuple[datetime, int]] = []
        self.effects: list[_Bump] = []
        day = self.start
        n = 0
        while day < self.stop:
            for hour, carbs in ((7.5, 45), (12.5, 60), (19.0, 70)):
                if rng.random() < 0.06:
                    continue
                when = day + timedelta(minutes=int(hour * 60 + rng.gauss(0, 25)))
                when = when.replace(minute=when.minute - when.minute % 5, second=0)
                grams = max(10, int(rng.gauss(carbs, 12)))
                self.meals.append((when, grams))
            if rng.random() < 0.3:
                self.meals.append(
                    (day + timedelta(hours=16, minutes=rng.choice([0, 15, 30])), rng.choice([15, 20, 25]))
                )
            if n % 3 == 1:
                self.exercise.append((day + timedelta(hours=17, minutes=30), rng.choice([30, 45, 60])))
            day += timedelta(days=1)
            n += 1
        self.meals.sort()

        # Fixed story points, relative to the start: a missed bolus that runs high past the
        # sensor's range, a long run that ends low below it, a temp rate, a suspension, a
        # cancelled bolus and two signal losses recovered by backfill.
        # Story points sit at fixed fractions of the history, so any length has them.
        def d(fraction: float, hours: float = 0.0) -> datetime:
            return self.start + timedelta(days=int(self.days * fraction), hours=hours)

        self.missed_bolus_meal = d(0.22, 12.5)
        self.meals = [(t, g) for t, g in self.meals if abs((t - self.missed_bolus_meal).total_seconds()) > 3 * 3600]
        self.meals.append((self.missed_bolus_meal, 110))
        self.meals.sort()
        self.long_run = (d(0.49, 16.0), 100)
        self.exercise.append(self.long_run)
        self.temp_rate = (d(0.37, 22.0), d(0.37, 24.0), 50)  # start, end, percent
        self.suspension = (d(0.61, 9.5), d(0.61, 10.25))
        self.cancelled_meal = next((t for t, _ in self.meals if t >= d(0.68, 11.0)), None)
        self.signal_losses = [(d(0.13, 2.0), d(0.13, 5.0)), (d(0.78, 14.0), d(0.78, 15.5))]
        self.sensor_starts = [self.start + timedelta(days=k, hours=8, minutes=5) for k in range(3, self.days, 10)]
        for when, grams in self.meals:
            # A bolused meal raises glucose by about 1.7 mg/dL per gram at its peak; the missed
            # bolus, by about 3.2, which takes it past the sensor's range.
            per_gram = 3.2 if when == self.missed_bolus_meal else 1.7
            self.effects.append(_Bump(when, grams * per_gram, 55))
        for when, minutes in self.exercise:
            self.effects.append(_Bump(when, -minutes * 1.1 - (60 if (when, minutes) == self.long_run else 0), 50))
        self.effects.sort(key=lambda b: b.start)
        self._effect_starts = [b.start for b in self.effects]

    def glucose(self, t: datetime) -> float:
        """The demo person's true glucose in mg/dL at ``t`` (before sensor noise)."""
        hours = t.hour + t.minute / 60
        g = 118 + 18 * math.sin((hours - 4) / 24 * 2 * math.pi) + 12 * math.exp(-((hours - 6) ** 2) / 3)
        first = bisect.bisect_left(self._effect_starts, t - timedelta(hours=8))
        last = bisect.bisect_right(self._effect_starts, t)
        for bump in self.effects[first:last]:
            g += bump.at(t)
        return g

    # --- emission -----------------------------------------------------------------------------
    def _emit(self, event_id: int, t: datetime, values: dict) -> PumpEvent:
        self.seq += 1
        return PumpEvent(event_id, t, self.seq, values)

    def events(self) -> Iterator[PumpEvent]:
        """Every event of the history, in sequence order (which is also logging order)."""
        rng = self.rng
        meals = {t: g for t, g in self.meals}
        sensor_starts = set(self.sensor_starts)
        warmup_until = None
        noise = 0.0
        previous = None
        iob = 0.0
        backlog: list[tuple[datetime, int, int]] = []  # (measured at, value, rate) lost to signal
        logged_twice = False
        temp_start, temp_end, temp_pct = self.temp_rate
        susp_start, susp_end = self.suspension
        last_site_change = self.start - timedelta(days=1)
        self.day_basal_units = 0.0
        self.last_commanded_rate = profile_rate(self.start)
        t = self.start
        while t < self.stop:
            # Midnight: the daily basal summary of the day that ended.
            if t.hour == 0 and t.minute == 0 and t > self.start:
                yield self._emit(
                    81,
                    t,
                    {
                        # What the basal records of the day delivered: rate (U/h) x 5 minutes each.
                        "daily_total_basal_units": round(self.day_basal_units, 2),
                        "last_basal_rate_units_per_hour": self.last_commanded_rate,
                        "iob_units": round(iob, 2),
                        "battery_lipo_mv": 3830 + rng.randrange(0, 80),
                        "battery_charge_percent": rng.randrange(55, 66),
                        "final_event_of_day": 1,
                    },
                )
                self.day_basal_units = 0.0
            # Sleep mode from 22:30 to 06:30.
            if (t.hour, t.minute) in ((22, 30), (6, 30)):
                start = t.hour == 22
                yield self._emit(
                    229,
                    t,
                    {
                        "requested_action": 1 if start else 2,
                        "previous_user_mode": 0 if start else 1,
                        "current_user_mode": 1 if start else 0,
                        "active_sleep_schedule": 1,
                        "sleep_started_by_gui": 0,
                        "exercise_time_minutes": 0,
                        "exercise_choice": 0,
                        "exercise_stopped_by_timer": 0,
                        "eating_soon_stopped_by_timer": 0,
                    },
                )
            # Site change every third day at 08:00, preceded by a low-insulin alert.
            if t.hour == 7 and t.minute == 30 and (t - last_site_change) >= timedelta(days=3) - timedelta(hours=1):
                yield self._emit(
                    4, t, {"alert_id": 0, "alert_name": 0, "fault_locator_data": 0, "param1": 20, "param2": 0.0}
                )
            if t.hour == 7 and t.minute == 40 and (t - last_site_change) >= timedelta(days=3) - timedelta(hours=1):
                yield self._emit(26, t, {"alert_id": 0, "alert_name": 0, "fault_locator_data": 0})
            if t.hour == 8 and t.minute == 0 and (t - last_site_change) >= timedelta(days=3) - timedelta(hours=1):
                last_site_change = t
                yield self._emit(33, t + timedelta(seconds=40), {"insulin_volume_units": 200, "v2_volume_units": 200.0})
                yield self._emit(
                    63,
                    t + timedelta(seconds=150),
                    {
                        "prime_size_units": round(rng.uniform(9.0, 14.0), 2),
                        "completion_status": 3,
                        "position_counts": 1500,
                    },
                )
                yield self._emit(61, t + timedelta(seconds=220), {"prime_size_units": 0.3, "completion_status": 3})
            # Sensor change: stop the old session, join the new one, then a 30-minute warm-up.
            if t in sensor_starts:
                yield self._emit(
                    447,
                    t,
                    {
                        "transmitter_time_seconds": pump_seconds(t),
                        "session_start_time_seconds": pump_seconds(t - timedelta(days=10)),
                        "session_stop_time_seconds": pump_seconds(t),
                        "stop_session_code": 1,
                        "session_stop_reason_code": 0,
                        "session_duration_days": 10,
                    },
                )
                yield self._emit(
                    394,
                    t + timedelta(minutes=2),
                    {
                        "cgm_timestamp_seconds": pump_seconds(t + timedelta(minutes=2)),
                        "session_signature": rng.randrange(1, 2**31),
                    },
                )
                warmup_until = t + timedelta(minutes=30)
            # CGM reading every 5 minutes.
            true_g = self.glucose(t)
            noise = 0.7 * noise + rng.gauss(0, 3.0)
            g = true_g + noise
            lost = any(a <= t < b for a, b in self.signal_losses)
            if warmup_until is not None and t < warmup_until:
                pass
            else:
                value = int(round(g))
                # Dexcom's trend byte holds -127..126 tenths; 127 and -128 mean no rate (layouts.DEXCOM_NO_RATE).
                rate = 0 if previous is None else max(-127, min(126, int(round((g - previous) / 5 * 10))))
                previous = g
                if lost:
                    backlog.append((t, value, rate))
                else:
                    if backlog:  # signal back: the missed readings arrive now, as backfill
                        for k, (when, v, r) in enumerate(backlog):
                            yield self._cgm(t + timedelta(seconds=k + 1), when, v, r, backfill=True)
                        backlog = []
                    yield self._cgm(t + timedelta(seconds=5), t, value, rate, backfill=False)
                    if not logged_twice and t.date() == (self.start + timedelta(days=30)).date() and t.hour == 9:
                        logged_twice = True  # the pump logs the same reading a second time
                        yield self._cgm(t + timedelta(seconds=6), t, value, rate, backfill=False)
            # Fingerstick BG around breakfast on two days a week.
            if t.hour == 7 and t.minute == 0 and t.weekday() in (1, 4):
                yield self._emit(
                    16,
                    t + timedelta(seconds=30),
                    {
                        "bg_entry_type": 0,
                        "cgm_calibration": 0,
                        "bg_mg_dl": meter_bg(true_g + rng.gauss(0, 6)),
                        "iob_units": round(iob, 2),
                        "isf_mg_dl_per_unit": ISF_MG_DL_PER_UNIT,
                        "target_bg_mg_dl": TARGET_BG_MG_DL,
                        "bg_source": 0,
                        "iob_model": 1,
                    },
                )
            # Suspension and resume.
            if t == susp_start:
                yield self._emit(
                    11,
                    t + timedelta(seconds=10),
                    {
                        "pre_suspend_state": 1,
                        "rpa_timeout_minutes": 0,
                        "suspend_reason": 0,
                        "insulin_amount_units": 0,
                    },
                )
            if t == susp_end:
                yield self._emit(12, t + timedelta(seconds=10), {"pre_resume_state": 0, "insulin_amount_units": 0})
            # Basal delivery record every 5 minutes.
            yield self._basal(t, g, temp_start <= t < temp_end, temp_pct, susp_start <= t < susp_end)
            # Meal boluses and automatic corrections.
            if t in meals:
                iob_now = round(iob, 2)
                yield from self._bolus(t, meals[t], g, iob_now, cancelled=t == self.cancelled_meal)
                iob += 0 if t == self.missed_bolus_meal else meals[t] / CARB_RATIO_G_PER_UNIT
            elif g > 200 and t.minute % 60 == 0 and rng.random() < 0.5 and not (susp_start <= t < susp_end):
                yield from self._bolus(t, 0, g, round(iob, 2), automatic=True)
                iob += round((g - TARGET_BG_MG_DL) / ISF_MG_DL_PER_UNIT * 0.6, 2)
            iob *= 0.965  # roughly a 4-hour insulin action
            t += FIVE_MIN

    def _cgm(self, logged: datetime, measured: datetime, value: int, rate: int, backfill: bool) -> PumpEvent:
        status = 0
        if value > 400:
            status, value = 1, 400
        elif value < 40:
            status, value = 2, 40
        return self._emit(
            399,
            logged,
            {
                "rate_mg_dl_per_min": rate,
                "cgm_data_type": 0b10 if backfill else 0b01,
                "glucose_value_status": status,
                "glucose_display_value_mg_dl": value,
                "rssi_dbm": -60 - self.rng.randrange(0, 25),
                "algorithm_state": 32,
                "egv_timestamp_seconds": pump_seconds(measured),
                "interval": 5,
                "egv_info": (0b11 if backfill else 0b01) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8),
            },
        )

    def _basal(self, t: datetime, g: float, temp: bool, temp_pct: int, suspended: bool) -> PumpEvent:
        profile = profile_rate(t)
        temp_rate = round(profile * temp_pct / 100, 3) if temp else 0.0
        base = temp_rate if temp else profile
        if g > 180:
            algorithm = round(min(base * 2.0, base + (g - 180) / 100), 3)
        elif g < 90:
            algorithm = 0.0
        else:
            algorithm = base
        if suspended:
            source, commanded = 0, 0.0
        elif algorithm != base:
            source, commanded = (4 if temp else 3), algorithm
        else:
            source, commanded = (2 if temp else 1), base
        self.last_commanded_rate = round(commanded, 3)
        self.day_basal_units += round(commanded, 3) / 12  # a 5-minute record: rate (U/h) x 1/12 h
        return self._emit(
            279,
            t + timedelta(seconds=2),
            {
                "commanded_rate_source": source,
                "profile_rate_units_per_hour": int(round(profile * 1000)),
                "commanded_rate_units_per_hour": int(round(commanded * 1000)),
                "temp_rate_units_per_hour": int(round(temp_rate * 1000)),
                "algorithm_rate_units_per_hour": int(round((algorithm if source in (3, 4) else 0.0) * 1000)),
            },
        )

    def _bolus(self, t, carbs, g, iob, cancelled=False, automatic=False) -> Iterator[PumpEvent]:
        """Request (64, 65, 66), delivery started and completed (280) and completion (20)."""
        bolus_id = (self.seq // 7) % 65536
        bg = meter_bg(g)
        food = 0.0 if t == self.missed_bolus_meal else round(carbs / CARB_RATIO_G_PER_UNIT, 2)
        correction = max(0.0, round((bg - TARGET_BG_MG_DL) / ISF_MG_DL_PER_UNIT - iob, 2))
        if automatic:
            food, correction = 0.0, round(correction * 0.6, 2)
        if t == self.missed_bolus_meal:
            return
        total = round(food + correction, 2)
        if total <= 0:
            return
        delivered = round(total * 0.4, 2) if cancelled else total
        yield self._emit(
            64,
            t,
            {
                "correction_bolus_included": int(correction > 0),
                "bolus_request_type": 2 if automatic else 1,
                "bolus_id": bolus_id,
                "bg_mg_dl": bg,
                "carb_amount_g": carbs,
                "iob_units": iob,
                "carb_ratio_g_per_unit": int(CARB_RATIO_G_PER_UNIT * 1000),
            },
        )
        yield self._emit(
            65,
            t,
            {
                "standard_percent": 100,
                "bolus_options": 3 if automatic else 0,
                "bolus_id": bolus_id,
                "duration_minutes": 0,
                "target_bg_mg_dl": TARGET_BG_MG_DL,
                "isf_mg_dl_per_unit": ISF_MG_DL_PER_UNIT,
                "iob_model": 1,
                "declined_correction": 0,
                "user_override": 0,
            },
        )
        yield self._emit(
            66,
            t,
            {
                "bolus_id": bolus_id,
                "food_bolus_units": food,
                "correction_bolus_units": correction,
                "total_bolus_units": total,
            },
        )
        kind = (1 << 3 if correction > 0 else 0) | (1 << 4 if food > 0 else 0) | 1
        common = {
            "bolus_delivery_type": kind,
            "bolus_id": bolus_id,
            "requested_now_units": int(round(total * 1000)),
            "remote_id": 0,
            "bolus_source": 7 if automatic else 1,
            "correction_units": int(round(correction * 1000)),
            "requested_later_units": 0,
            "extended_duration_minutes": 0,
        }
        yield self._emit(
            280, t + timedelta(seconds=20), {**common, "bolus_delivery_status": 1, "delivered_total_units": 0}
        )
        seconds = 20 + int(total * 40)  # the pump delivers about 1.5 units a minute
        done = t + timedelta(seconds=seconds // 2 if cancelled else seconds)
        yield self._emit(
            280,
            done,
            {
                **common,
                "bolus_delivery_status": 0,
                "delivered_total_units": int(round(delivered * 1000)),
            },
        )
        yield self._emit(
            20,
            done + timedelta(seconds=1),
            {
                "bolus_id": bolus_id,
                "completion_status": 0 if cancelled else 3,
                "iob_units": round(iob + delivered, 2),
                "insulin_delivered_units": delivered,
                "insulin_requested_units": total,
            },
        )


def demo_events(seed: int = 42, end: date = DEMO_END, days: int = DEMO_DAYS) -> list[PumpEvent]:
    """The whole demo history, sorted by sequence number."""
    events = list(DemoPump(seed, end, days).events())
    # Events of one 5-minute step are emitted in story order with their own seconds; sequence
    # numbers follow logging time, as on a real pump.
    events.sort(key=lambda e: (e.pump_time, e.seq_num))
    return [PumpEvent(e.event_id, e.pump_time, 1_000_001 + i, e.values) for i, e in enumerate(events)]


def window_responses(seed: int = 42, end: date = DEMO_END, days: int = DEMO_DAYS) -> dict[tuple[date, date], dict]:
    """The pump-logs response for each fetch window of the demo history (see :func:`windows`).

    Each response is ``{"events": [...], "clockChanges": []}`` in the API's form, holding the events
    whose pump date lies in the window.
    """
    from .encode import to_pumplogs

    spans = windows(end, days)
    out: dict[tuple[date, date], dict] = {span: {"events": [], "clockChanges": []} for span in spans}
    for event in demo_events(seed, end, days):
        day = event.pump_time.date()
        for span in spans:
            if span[0] <= day <= span[1]:
                out[span]["events"].append(to_pumplogs(event, DEMO_ASSIGNMENT_ID, DEMO_SEQUENCE_GROUP))
                break
    return out
