"""Glycemic report: consensus CGM metrics, the ambulatory glucose profile and daily figures.

Metrics follow the International Consensus on Time in Range (Battelino et al., Diabetes Care
2019;42:1593-1603).  Every metric here is a pure function over arrays of CGM readings and is
**reading-count based**: a percent of time is the share of readings, each reading standing for
the same 5 minutes.  Readings are glucose values in mg/dL as ``cgm_readings`` gives them: ``high``
readings count as 401 and ``low`` readings as 39; readings without a value (``unavailable``, NaN
here) are left out before anything is counted.

Bands, boundaries inclusive as written (for the whole mg/dL values a CGM reports):

* ``<54``      g < 54                (time below range, level 2)
* ``54-69``    54 <= g <= 69         (time below range, level 1)
* ``70-180``   70 <= g <= 180        (time in range)
* ``181-250``  181 <= g <= 250       (time above range, level 1)
* ``>250``     g > 250               (time above range, level 2)

A value between two whole numbers (never from a CGM) goes to the band below 70, 180 or 250 only
when it is below 70, at most 180 or at most 250, so the five bands always add up to 100 %.

Times of day are pump-clock times (``pump_time``), the clock the person lived by.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

#: Minutes one CGM reading stands for.
READING_MINUTES = 5
#: Data sufficiency (consensus): at least 70 % of 14 days of readings.
SUFFICIENT_DAYS = 14
SUFFICIENT_SHARE = 0.70
#: Percentiles of the ambulatory glucose profile, and the width of its time-of-day bins.
AGP_PERCENTILES = (5, 25, 50, 75, 95)
AGP_BIN_MINUTES = 15
#: (key, label, colour) of the five consensus bands, lowest first.
BANDS = (
    ("below_54", "<54 mg/dL", "#8b0000"),
    ("54_69", "54-69 mg/dL", "#e53935"),
    ("70_180", "70-180 mg/dL", "#43a047"),
    ("181_250", "181-250 mg/dL", "#fbc02d"),
    ("above_250", ">250 mg/dL", "#ef6c00"),
)


# --- metrics: pure functions over arrays --------------------------------------------------------


def readings_of(values) -> np.ndarray:
    """The readings as a float array with the missing ones (NaN, None) left out."""
    g = np.asarray(values, dtype=float).ravel()
    return g[~np.isnan(g)]


def band_counts(values) -> dict[str, int]:
    """Number of readings in each consensus band (keys of :data:`BANDS`)."""
    g = readings_of(values)
    return {
        "below_54": int(np.count_nonzero(g < 54)),
        "54_69": int(np.count_nonzero((g >= 54) & (g < 70))),
        "70_180": int(np.count_nonzero((g >= 70) & (g <= 180))),
        "181_250": int(np.count_nonzero((g > 180) & (g <= 250))),
        "above_250": int(np.count_nonzero(g > 250)),
    }


def band_percents(values) -> dict[str, float]:
    """Percent of readings in each band: 100 x readings in the band / all readings (NaN if none)."""
    counts = band_counts(values)
    n = sum(counts.values())
    return {k: (100.0 * c / n if n else math.nan) for k, c in counts.items()}


def mean_glucose(values) -> float:
    """Arithmetic mean of the readings, mg/dL (NaN when there are none)."""
    g = readings_of(values)
    return float(g.mean()) if g.size else math.nan


def sd_glucose(values) -> float:
    """Sample standard deviation of the readings (divisor n - 1), mg/dL; NaN for fewer than 2."""
    g = readings_of(values)
    return float(g.std(ddof=1)) if g.size >= 2 else math.nan


def cv_percent(values) -> float:
    """Coefficient of variation: 100 x SD / mean, percent."""
    mean = mean_glucose(values)
    return 100.0 * sd_glucose(values) / mean if mean else math.nan


def gmi_percent(mean_mg_dl: float) -> float:
    """Glucose management indicator, percent: 3.31 + 0.02392 x mean glucose in mg/dL."""
    return 3.31 + 0.02392 * mean_mg_dl


def cgm_active_percent(readings: int, days: int) -> float:
    """Percent of the period with CGM data: readings x 5 min / (days x 1440 min) x 100, at most 100."""
    return min(100.0, 100.0 * readings * READING_MINUTES / (days * 1440)) if days > 0 else math.nan


def data_sufficient(readings: int) -> bool:
    """Whether the readings cover at least 70 % of 14 days (readings x 5 min >= 0.7 x 14 x 1440 min)."""
    return readings * READING_MINUTES >= SUFFICIENT_SHARE * SUFFICIENT_DAYS * 1440


@dataclass(frozen=True)
class Metrics:
    """The consensus metrics of one period (percents are percent of readings, see the module doc)."""

    days_in_period: int
    days_covered: int
    readings: int
    cgm_active_percent: float
    mean_mg_dl: float
    gmi_percent: float
    sd_mg_dl: float
    cv_percent: float
    below_54_percent: float
    from_54_to_69_percent: float
    from_70_to_180_percent: float
    from_181_to_250_percent: float
    above_250_percent: float
    below_70_percent: float
    above_180_percent: float
    data_sufficient: bool


def consensus_metrics(values, days_in_period: int, days_covered: int) -> Metrics:
    """Every consensus metric of the readings ``values`` of a period of ``days_in_period`` days,
    ``days_covered`` of which have at least one reading."""
    g = readings_of(values)
    counts = band_counts(g)
    n = int(g.size)
    pct = band_percents(g)
    mean = mean_glucose(g)
    return Metrics(
        days_in_period=days_in_period,
        days_covered=days_covered,
        readings=n,
        cgm_active_percent=cgm_active_percent(n, days_in_period),
        mean_mg_dl=mean,
        gmi_percent=gmi_percent(mean),
        sd_mg_dl=sd_glucose(g),
        cv_percent=cv_percent(g),
        below_54_percent=pct["below_54"],
        from_54_to_69_percent=pct["54_69"],
        from_70_to_180_percent=pct["70_180"],
        from_181_to_250_percent=pct["181_250"],
        above_250_percent=pct["above_250"],
        below_70_percent=100.0 * (counts["below_54"] + counts["54_69"]) / n if n else math.nan,
        above_180_percent=100.0 * (counts["181_250"] + counts["above_250"]) / n if n else math.nan,
        data_sufficient=data_sufficient(n),
    )


@dataclass(frozen=True)
class Row:
    """One line of the metrics table: label, value text, consensus target text, met (None: no target)."""

    label: str
    value: str
    target: str
    met: bool | None


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.1f} %"


def _met(ok: bool, x: float) -> bool | None:
    return None if math.isnan(x) else bool(ok)


def metric_rows(m: Metrics) -> list[Row]:
    """The metrics table: every metric beside its consensus target and whether it is met."""
    mg = "n/a" if math.isnan(m.mean_mg_dl) else f"{m.mean_mg_dl:.0f} mg/dL"
    return [
        Row("Days covered", f"{m.days_covered} of {m.days_in_period}", "≥14 days", m.days_covered >= SUFFICIENT_DAYS),
        Row(
            "Time CGM active",
            _pct(m.cgm_active_percent),
            "≥70 %",
            _met(m.cgm_active_percent >= 70, m.cgm_active_percent),
        ),
        Row("Mean glucose", mg, "", None),
        Row("GMI (glucose management indicator)", _pct(m.gmi_percent), "", None),
        Row("Standard deviation (SD)", "n/a" if math.isnan(m.sd_mg_dl) else f"{m.sd_mg_dl:.1f} mg/dL", "", None),
        Row("Glycemic variability (CV)", _pct(m.cv_percent), "≤36 %", _met(m.cv_percent <= 36, m.cv_percent)),
        Row("TBR <54 mg/dL", _pct(m.below_54_percent), "<1 %", _met(m.below_54_percent < 1, m.below_54_percent)),
        Row(
            "TBR 54-69 mg/dL",
            _pct(m.from_54_to_69_percent),
            f"<4 % with <54 (TBR <70: {_pct(m.below_70_percent)})",
            _met(m.below_70_percent < 4, m.below_70_percent),
        ),
        Row(
            "TIR 70-180 mg/dL",
            _pct(m.from_70_to_180_percent),
            ">70 %",
            _met(m.from_70_to_180_percent > 70, m.from_70_to_180_percent),
        ),
        Row(
            "TAR 181-250 mg/dL",
            _pct(m.from_181_to_250_percent),
            f"<25 % with >250 (TAR >180: {_pct(m.above_180_percent)})",
            _met(m.above_180_percent < 25, m.above_180_percent),
        ),
        Row("TAR >250 mg/dL", _pct(m.above_250_percent), "<5 %", _met(m.above_250_percent < 5, m.above_250_percent)),
    ]


def minutes_of_day(pump_times) -> np.ndarray:
    """Minutes since the pump-clock midnight of each time (datetime64 array or datetimes)."""
    t = np.asarray(pump_times, dtype="datetime64[s]")
    return (t - t.astype("datetime64[D]")).astype(np.int64) / 60.0


def agp_percentiles(
    minute_of_day, values, bin_minutes: int = AGP_BIN_MINUTES, percentiles=AGP_PERCENTILES
) -> tuple[np.ndarray, np.ndarray]:
    """The ambulatory glucose profile: percentiles of the readings per time-of-day bin.

    Bin k holds the readings with k x ``bin_minutes`` <= minute of day < (k + 1) x ``bin_minutes``
    (all days pooled, no smoothing).  Percentiles use linear interpolation between the sorted
    readings of a bin (numpy's default, Hyndman and Fan type 7).  Returns (bin start minutes, an
    array of shape (len(percentiles), bins)), NaN for a bin without readings.
    """
    m = np.asarray(minute_of_day, dtype=float)
    g = np.asarray(values, dtype=float)
    keep = ~np.isnan(g)
    m, g = m[keep], g[keep]
    bins = 1440 // bin_minutes
    index = np.minimum((m // bin_minutes).astype(np.int64), bins - 1)
    out = np.full((len(percentiles), bins), np.nan)
    for k in range(bins):
        in_bin = g[index == k]
        if in_bin.size:
            out[:, k] = np.percentile(in_bin, percentiles)
    return np.arange(bins) * bin_minutes, out


# --- the period and its data ---------------------------------------------------------------------


@dataclass
class ReportData:
    """What the report shows: the period, its CGM readings and its daily insulin and carbs."""

    first_day: dt.date | None
    last_day: dt.date | None
    pump_time: np.ndarray  # datetime64[us] of each reading with a value
    glucose: np.ndarray  # mg/dL, float
    days: list[dt.date]  # every day of the period
    basal_units: np.ndarray  # per day of ``days``
    bolus_units: np.ndarray
    carbs_g: np.ndarray
    pumps: list[str]

    @property
    def days_in_period(self) -> int:
        return len(self.days)

    @property
    def days_covered(self) -> int:
        return len(np.unique(self.pump_time.astype("datetime64[D]"))) if self.pump_time.size else 0


def load(cgm: str, daily: str, start: str | None, end: str | None) -> ReportData:
    """Read the readings and daily totals of the period.

    The period is the configured ``start``..``end`` (inclusive pump-calendar days) clipped to the
    days the history covers (the first to the last day of ``daily_summary``, i.e. days with any
    CGM, basal or bolus record); with no range, the whole history.
    """
    from . import cells
    from .storage import connect

    con = connect()
    con.sql(f"CREATE VIEW cgm AS SELECT * FROM {cells.source_sql(cgm)}")
    con.sql(f"CREATE VIEW daily AS SELECT * FROM {cells.source_sql(daily)}")
    first, last = con.sql("SELECT min(day), max(day) FROM daily").fetchall()[0]
    if start and first is not None:
        first = max(first, dt.date.fromisoformat(start))
    if end and last is not None:
        last = min(last, dt.date.fromisoformat(end))
    if first is None or last is None or last < first:
        con.close()
        empty = np.array([], dtype="datetime64[us]")
        return ReportData(None, None, empty, np.array([]), [], np.array([]), np.array([]), np.array([]), [])
    where = f"CAST(pump_time AS DATE) BETWEEN DATE '{first}' AND DATE '{last}'"
    r = con.sql(
        f"SELECT pump_time, glucose_mg_dl FROM cgm WHERE glucose_mg_dl IS NOT NULL AND {where} "
        "ORDER BY pump_time, pump_serial, seq_num"
    ).fetchnumpy()
    d = con.sql(
        f"SELECT day, sum(basal_units) AS basal, sum(bolus_units) AS bolus, sum(carbs_g) AS carbs FROM daily "
        f"WHERE day BETWEEN DATE '{first}' AND DATE '{last}' GROUP BY day"
    ).fetchall()
    pumps = [p for (p,) in con.sql(f"SELECT DISTINCT pump_serial FROM daily WHERE {where} ORDER BY 1").fetchall()]
    con.close()
    days = [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]
    by_day = {row[0]: row[1:] for row in d}
    totals = np.array([by_day.get(day, (0.0, 0.0, 0)) for day in days], dtype=float).reshape(len(days), 3)
    return ReportData(
        first,
        last,
        np.asarray(r["pump_time"], dtype="datetime64[us]"),
        np.asarray(r["glucose_mg_dl"], dtype=float),
        days,
        totals[:, 0],
        totals[:, 1],
        totals[:, 2],
        pumps,
    )


# --- figures -------------------------------------------------------------------------------------


def _figure(width: float = 10.0, height: float = 4.5) -> Figure:
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _no_data(fig: Figure, title: str) -> Figure:
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.text(0.5, 0.5, "No CGM data in this period", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def _time_axis(ax) -> None:
    ax.set_xlim(0, 1440)
    ax.set_xticks(range(0, 1441, 180), [f"{h:02d}:00" for h in range(0, 25, 3)])
    ax.set_xlabel("time of day (pump clock)")


def _glucose_axis(ax, top: float) -> None:
    ax.axhspan(70, 180, color="#43a047", alpha=0.12, label="70-180 mg/dL")
    for level, style in ((54, ":"), (70, "--"), (180, "--"), (250, ":")):
        ax.axhline(level, color="#555555", linewidth=0.8, linestyle=style)
    ax.set_ylim(0, max(300, top))
    ax.set_ylabel("glucose (mg/dL)")


def agp_figure(minute_of_day, values, title: str) -> Figure:
    """The AGP: median, 25-75 % and 5-95 % bands of glucose by 15-minute bin of pump time of day."""
    fig = _figure()
    if np.asarray(values).size == 0:
        return _no_data(fig, title)
    starts, p = agp_percentiles(minute_of_day, values)
    x = starts + AGP_BIN_MINUTES / 2
    ax = fig.add_subplot()
    _glucose_axis(ax, np.nanmax(p) + 20)
    ax.fill_between(x, p[0], p[4], color="#1e88e5", alpha=0.18, linewidth=0, label="5-95 %")
    ax.fill_between(x, p[1], p[3], color="#1e88e5", alpha=0.40, linewidth=0, label="25-75 %")
    ax.plot(x, p[2], color="#0d47a1", linewidth=2, label="median")
    _time_axis(ax)
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8, ncols=4)
    return fig


def overlay_figure(pump_time, values, title: str) -> Figure:
    """Every day's glucose trace over the time of day, lines broken at gaps longer than 15 minutes."""
    fig = _figure()
    if np.asarray(values).size == 0:
        return _no_data(fig, title)
    t = np.asarray(pump_time, dtype="datetime64[s]")
    g = np.asarray(values, dtype=float)
    day = t.astype("datetime64[D]")
    minute = minutes_of_day(t)
    ax = fig.add_subplot()
    _glucose_axis(ax, g.max() + 20)
    days = np.unique(day)
    alpha = max(0.08, min(0.6, 6.0 / len(days)))
    for d in days:
        sel = day == d
        m, v = minute[sel], g[sel]
        breaks = np.flatnonzero(np.diff(m) > 15) + 1
        m = np.insert(m, breaks, np.nan)
        v = np.insert(v, breaks, np.nan)
        ax.plot(m, v, color="#37474f", linewidth=0.7, alpha=alpha)
    _time_axis(ax)
    ax.set_title(title)
    return fig


def ranges_figure(days: list[dt.date], pump_time, values, title: str) -> Figure:
    """One stacked bar per day: percent of that day's readings in each consensus band."""
    fig = _figure()
    if np.asarray(values).size == 0:
        return _no_data(fig, title)
    t = np.asarray(pump_time, dtype="datetime64[D]")
    g = np.asarray(values, dtype=float)
    ax = fig.add_subplot()
    x = np.arange(len(days))
    per_day = [band_percents(g[t == np.datetime64(d)]) for d in days]
    bottom = np.zeros(len(days))
    for key, label, colour in BANDS:
        h = np.nan_to_num([p[key] for p in per_day])
        ax.bar(x, h, bottom=bottom, color=colour, width=0.85, label=label)
        bottom += h
    ax.axhline(70, color="black", linewidth=0.8, linestyle="--")
    ax.set_ylim(0, 100)
    ax.set_ylabel("percent of readings")
    _day_ticks(ax, days)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, reverse=True)
    return fig


def insulin_figure(days: list[dt.date], basal, bolus, carbs, title: str) -> Figure:
    """Daily insulin (basal and bolus stacked, units) with the day's carbohydrate (grams)."""
    fig = _figure()
    ax = fig.add_subplot()
    x = np.arange(len(days))
    ax.bar(x, basal, color="#5c6bc0", width=0.85, label="basal (U)")
    ax.bar(x, bolus, bottom=basal, color="#26a69a", width=0.85, label="bolus (U)")
    ax.set_ylabel("insulin (units)")
    right = ax.twinx()
    right.plot(x, carbs, color="#d84315", marker="o", markersize=3, linewidth=1, label="carbs (g)")
    right.set_ylabel("carbohydrate (g)")
    right.set_ylim(0, max(50.0, float(np.max(carbs, initial=0)) * 1.15))
    ax.set_ylim(0, max(5.0, float(np.max(np.asarray(basal) + np.asarray(bolus), initial=0)) * 1.15))
    _day_ticks(ax, days)
    ax.set_title(title)
    handles = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left", fontsize=8, ncols=3)
    return fig


def _day_ticks(ax, days: list[dt.date]) -> None:
    step = max(1, math.ceil(len(days) / 15))
    ticks = list(range(0, len(days), step))
    ax.set_xticks(ticks, [days[k].strftime("%m-%d") for k in ticks], fontsize=8)
    ax.set_xlim(-0.6, len(days) - 0.4)
    ax.set_xlabel("day (pump calendar)")


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes (no timestamp or software metadata, so reruns give the same bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


# --- the HTML page -------------------------------------------------------------------------------

#: How each number is computed; shown in the report's footer (and the README says the same).
METHODS = (
    "All metrics count CGM readings (each stands for 5 minutes): a percent of time is 100 x readings in the "
    "band / readings with a value. High readings count as 401 mg/dL and low readings as 39 mg/dL; readings "
    "without a value are left out.",
    "Bands, boundaries inclusive as written: TBR <54 (g < 54), TBR 54-69 (54 ≤ g ≤ 69), TIR 70-180 "
    "(70 ≤ g ≤ 180), TAR 181-250 (181 ≤ g ≤ 250), TAR >250 (g > 250) mg/dL. TBR <70 = TBR <54 + TBR 54-69; "
    "TAR >180 = TAR 181-250 + TAR >250.",
    "Period: the configured start and end dates (pump calendar, inclusive), clipped to the first and last day "
    "with any pump record. Days covered: days of the period with at least one reading. Time CGM active: "
    "min(100, readings x 5 min / (days in period x 1440 min) x 100).",
    "Mean glucose: arithmetic mean of the readings. SD: sample standard deviation (divisor n - 1). "
    "CV: 100 x SD / mean. GMI (%): 3.31 + 0.02392 x mean glucose in mg/dL.",
    "Targets (International Consensus on Time in Range, Battelino et al., Diabetes Care 2019): TIR >70 %, "
    "TBR <70 <4 %, TBR <54 <1 %, TAR >180 <25 %, TAR >250 <5 %, CV ≤36 %, CGM active ≥70 % over 14 days. "
    "Data are called sufficient when readings x 5 min reach 70 % of 14 days (9.8 days of readings).",
    "AGP: all days pooled into 15-minute bins of the pump-clock time of day; in each bin the 5th, 25th, 50th, "
    "75th and 95th percentiles of the readings (linear interpolation, numpy's default), no smoothing.",
    "Daily figures use pump-calendar days. Basal (U): each basal record's commanded rate times the time until "
    "the next basal record, at most 15 minutes (the last record of a history: 5 minutes), counted on the day of "
    "the record. Bolus (U): units delivered for the boluses requested that day. Carbs (g): grams entered in "
    "the day's bolus requests.",
)

_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 2em auto; max-width: 1040px;
       color: #212121; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
.sub { color: #616161; margin-top: 0; }
.banner { padding: 0.6em 1em; border-radius: 6px; margin: 1em 0; }
.demo { background: #fff3e0; border: 1px solid #ef6c00; }
.warn { background: #ffebee; border: 1px solid #c62828; }
table { border-collapse: collapse; margin: 1em 0; min-width: 640px; }
th, td { border-bottom: 1px solid #e0e0e0; padding: 0.35em 0.8em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.met { color: #2e7d32; font-weight: 600; }
.notmet { color: #c62828; font-weight: 600; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0 1.5em; }
footer { margin-top: 2em; border-top: 1px solid #bdbdbd; color: #424242; font-size: 0.9em; }
"""


def _status(met: bool | None) -> str:
    if met is None:
        return ""
    return '<span class="met">✓ met</span>' if met else '<span class="notmet">✗ not met</span>'


def render_html(
    metrics: Metrics | None, data: ReportData, figures: dict[str, tuple[str, bytes]], source: str, start, end
) -> str:
    """The self-contained page: metrics beside their targets, the figures inline (base64 PNG), methods."""
    e = html.escape
    period = (
        f"{data.first_day} to {data.last_day} ({data.days_in_period} days)" if data.first_day else "no data in range"
    )
    asked = f"{start or 'first day'} to {end or 'last day'}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Glucose report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Glucose report</h1>",
        f'<p class="sub">Period {e(period)}, pump calendar (configured range: {e(asked)}). '
        f"Pump(s): {e(', '.join(data.pumps) or 'none')}. Source: {e(source)}.</p>",
    ]
    if source.startswith("demo"):
        parts.append(
            '<div class="banner demo"><strong>Demo data.</strong> This report shows the bundled demo pump, '
            "a generated history that is not anyone's real data.</div>"
        )
    if metrics is None or metrics.readings == 0:
        parts.append('<div class="banner warn"><strong>No CGM readings in this period.</strong></div>')
    else:
        if not metrics.data_sufficient:
            days = metrics.readings * READING_MINUTES / 1440
            parts.append(
                '<div class="banner warn"><strong>Warning: insufficient data.</strong> The readings cover '
                f"{days:.1f} days, less than 70 % of 14 days (9.8 days); the consensus metrics may not represent "
                "this person's glucose.</div>"
            )
        parts.append("<h2>Glucose metrics and consensus targets</h2>")
        parts.append("<table><tr><th>metric</th><th>value</th><th>consensus target</th><th>status</th></tr>")
        for row in metric_rows(metrics):
            parts.append(
                f'<tr><td>{e(row.label)}</td><td class="num">{e(row.value)}</td>'
                f"<td>{e(row.target)}</td><td>{_status(row.met)}</td></tr>"
            )
        parts.append("</table>")
        parts.append(f"<p>{metrics.readings} CGM readings. Times of day are the pump clock's.</p>")
    for _key, (title, png) in figures.items():
        parts.append(f"<h2>{e(title)}</h2>")
        parts.append(f'<img alt="{e(title)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">')
    parts.append("<footer><h2>How each number is computed</h2><ul>")
    parts.extend(f"<li>{e(text)}</li>" for text in METHODS)
    parts.append("</ul></footer></body></html>")
    return "\n".join(parts) + "\n"


#: Output key -> figure title, in page order.
FIGURES = {
    "agp": "Ambulatory glucose profile (AGP)",
    "overlay": "Daily glucose overlay",
    "ranges": "Time in ranges per day",
    "insulin": "Daily insulin and carbohydrate",
}


def period_words(start: str | None, end: str | None) -> str:
    """The configured range as words: "from 2025-05-01 to 2025-05-07", "from 2025-05-01 on",
    "up to 2025-05-07", or "in the whole history" when unbounded."""
    if start and end:
        return f"from {start} to {end}"
    if start:
        return f"from {start} on"
    if end:
        return f"up to {end}"
    return "in the whole history"


def make_report(
    cgm: str,
    daily: str,
    outputs: dict[str, str],
    start: str | None,
    end: str | None,
    source: str,
    log: logging.Logger,
) -> Metrics | None:
    """Write the report for ``start``..``end`` (inclusive YYYY-MM-DD or None) from the ``cgm`` and
    ``daily`` (daily_summary) Parquet tables: ``outputs`` maps ``html`` and each key of
    :data:`FIGURES` to a path.  Returns the metrics, None without CGM readings (a warning says so,
    as the page does); a period with too few readings is warned about too.
    """
    data = load(cgm, daily, start, end)
    metrics = None
    if data.glucose.size:
        metrics = consensus_metrics(data.glucose, data.days_in_period, data.days_covered)
    span = f"{data.first_day} to {data.last_day}" if data.first_day else "no data"
    figures = {
        "agp": agp_figure(minutes_of_day(data.pump_time), data.glucose, f"{FIGURES['agp']}, {span}"),
        "overlay": overlay_figure(data.pump_time, data.glucose, f"{FIGURES['overlay']}, {span}"),
        "ranges": ranges_figure(data.days, data.pump_time, data.glucose, f"{FIGURES['ranges']}, {span}"),
        "insulin": insulin_figure(
            data.days, data.basal_units, data.bolus_units, data.carbs_g, f"{FIGURES['insulin']}, {span}"
        ),
    }
    pngs = {}
    for key, fig in figures.items():
        png = png_bytes(fig)
        Path(outputs[key]).parent.mkdir(parents=True, exist_ok=True)
        Path(outputs[key]).write_bytes(png)
        pngs[key] = (FIGURES[key], png)
    page = render_html(metrics, data, pngs, source, start, end)
    Path(outputs["html"]).parent.mkdir(parents=True, exist_ok=True)
    Path(outputs["html"]).write_text(page, encoding="utf-8")
    if metrics is None:
        if data.first_day:
            where = f"from {data.first_day} to {data.last_day}"
        else:
            where = f"(no pump records {period_words(start, end)})"
        log.warning("no CGM readings %s; the report says so", where)
    else:
        log.info(
            "%s: %d readings over %d day(s); mean %.0f mg/dL, TIR %.1f %%, TBR<70 %.1f %%, TAR>180 %.1f %%, CV %.1f %%",
            span,
            metrics.readings,
            metrics.days_in_period,
            metrics.mean_mg_dl,
            metrics.from_70_to_180_percent,
            metrics.below_70_percent,
            metrics.above_180_percent,
            metrics.cv_percent,
        )
        if not metrics.data_sufficient:
            log.warning("the readings cover less than 70 % of 14 days; the report warns about it")
    log.info("report -> %s", outputs["html"])
    return metrics
