"""The glucose report: metrics by hand, metrics of the demo pump recomputed independently, the
rendered page and its figures, and ``snakemake --report``."""

from __future__ import annotations

import base64
import datetime as dt
import io
import math
import re
import statistics

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import snakemake
from PIL import Image
from tandem_export import report

FIGURES = ("agp.png", "daily_glucose.png", "time_in_ranges.png", "daily_insulin.png")

# --- metrics on a hand-built day -----------------------------------------------------------------

# Twelve readings of one day.  Sum 1800, so the mean is 150 mg/dL.  Deviations from 150:
# -110, -97, -96, -81, -80, 0, +30, +31, +100, +101, +150, +52; their squares add up to
# 12100 + 9409 + 9216 + 6561 + 6400 + 0 + 900 + 961 + 10000 + 10201 + 22500 + 2704 = 90952,
# so the sample SD is sqrt(90952 / 11) = 90.93 mg/dL and the CV 60.62 %.
DAY = [40, 53, 54, 69, 70, 150, 180, 181, 250, 251, 300, 202]


def test_metrics_of_a_hand_built_day():
    m = report.consensus_metrics(DAY, days_in_period=1, days_covered=1)
    assert m.readings == 12
    assert m.mean_mg_dl == 150.0
    assert m.sd_mg_dl == pytest.approx(math.sqrt(90952 / 11))
    assert m.cv_percent == pytest.approx(100 * math.sqrt(90952 / 11) / 150)
    assert m.gmi_percent == pytest.approx(6.898)  # 3.31 + 0.02392 x 150 = 3.31 + 3.588
    # <54: 40, 53 | 54-69: 54, 69 | 70-180: 70, 150, 180 | 181-250: 181, 202, 250 | >250: 251, 300
    assert m.below_54_percent == pytest.approx(100 * 2 / 12)
    assert m.from_54_to_69_percent == pytest.approx(100 * 2 / 12)
    assert m.from_70_to_180_percent == 25.0
    assert m.from_181_to_250_percent == 25.0
    assert m.above_250_percent == pytest.approx(100 * 2 / 12)
    assert m.below_70_percent == pytest.approx(100 * 4 / 12)
    assert m.above_180_percent == pytest.approx(100 * 5 / 12)
    assert m.cgm_active_percent == pytest.approx(100 * 60 / 1440)  # 12 readings x 5 min of one day
    assert not m.data_sufficient
    rows = {r.label: r for r in report.metric_rows(m)}
    assert rows["TIR 70-180 mg/dL"].value == "25.0 %" and rows["TIR 70-180 mg/dL"].met is False
    assert rows["TBR <54 mg/dL"].met is False  # 16.7 % is not below 1 %
    assert rows["Glycemic variability (CV)"].value == "60.6 %" and rows["Glycemic variability (CV)"].met is False
    assert rows["Mean glucose"].value == "150 mg/dL" and rows["Mean glucose"].met is None
    assert rows["GMI (glucose management indicator)"].value == "6.9 %"


def test_band_boundaries_are_inclusive_as_written_and_missing_readings_are_left_out():
    counts = report.band_counts([53, 54, 69, 70, 180, 181, 250, 251, float("nan")])
    assert counts == {"below_54": 1, "54_69": 2, "70_180": 2, "181_250": 2, "above_250": 1}
    assert report.band_counts([39, 401]) == {"below_54": 1, "54_69": 0, "70_180": 0, "181_250": 0, "above_250": 1}
    assert math.isnan(report.band_percents([])["70_180"])
    assert math.isnan(report.mean_glucose([float("nan")]))


def test_cgm_active_percent_and_data_sufficiency():
    assert report.cgm_active_percent(288, 1) == 100.0
    assert report.cgm_active_percent(144, 2) == 25.0  # 144 x 5 min = 12 h of 48 h
    assert report.cgm_active_percent(600, 2) == 100.0  # capped
    # 70 % of 14 days is 14112 minutes: 2823 readings (14115 min) are enough, 2822 (14110 min) are not.
    assert report.data_sufficient(2823) and not report.data_sufficient(2822)


def test_agp_percentiles_per_15_minute_bin():
    minutes = [0, 3, 7, 10, 14.9, 1439]
    values = [140, 100, 130, 110, 120, 200]
    starts, p = report.agp_percentiles(minutes, values)
    assert len(starts) == 96 and starts[1] == 15 and starts[-1] == 1425
    # Bin 0 sorted: 100 110 120 130 140; linear interpolation at rank q x (5 - 1).
    assert p[:, 0] == pytest.approx([102.0, 110.0, 120.0, 130.0, 138.0])
    assert p[:, 95] == pytest.approx([200.0] * 5)
    assert np.isnan(p[:, 1:95]).all()
    assert report.minutes_of_day(np.array(["2025-01-01T07:30:30"], dtype="datetime64[s]"))[0] == 450.5


# --- the demo pump -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_report(demo_run):
    """The demo workflow after ``snakemake -c1 report`` (the whole history)."""
    proc = snakemake(demo_run, "-c1", "report")
    (demo_run / "report_run.log").write_text(proc.stdout + proc.stderr)
    return demo_run


def independent_metrics(path) -> dict:
    """The consensus metrics of the exported readings, in plain Python from the formulas."""
    rows = pq.read_table(path, columns=["pump_time", "glucose_mg_dl"]).to_pylist()
    g = [r["glucose_mg_dl"] for r in rows if r["glucose_mg_dl"] is not None]
    n = len(g)
    mean = sum(g) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in g) / (n - 1))
    days = {r["pump_time"].date() for r in rows if r["glucose_mg_dl"] is not None}
    period = (max(days) - min(days)).days + 1
    return {
        "n": n,
        "mean": mean,
        "sd": sd,
        "cv": 100 * sd / mean,
        "gmi": 3.31 + 0.02392 * mean,
        "below_54": 100 * sum(1 for x in g if x < 54) / n,
        "54_69": 100 * sum(1 for x in g if 54 <= x <= 69) / n,
        "70_180": 100 * sum(1 for x in g if 70 <= x <= 180) / n,
        "181_250": 100 * sum(1 for x in g if 181 <= x <= 250) / n,
        "above_250": 100 * sum(1 for x in g if x > 250) / n,
        "days": len(days),
        "period": period,
        "active": min(100.0, 100 * n * 5 / (period * 1440)),
    }


def test_demo_metrics_match_an_independent_computation(demo_report):
    exp = independent_metrics(demo_report / "exports" / "cgm_readings.parquet")
    tables = demo_report / "data" / "tables"
    data = report.load(str(tables / "cgm_readings.cells.json"), str(tables / "daily_summary.cells.json"), None, None)
    m = report.consensus_metrics(data.glucose, data.days_in_period, data.days_covered)
    assert (m.readings, m.days_covered, m.days_in_period) == (exp["n"], exp["days"], exp["period"])
    assert exp["days"] == exp["period"] == 90
    assert m.mean_mg_dl == pytest.approx(exp["mean"])
    assert m.sd_mg_dl == pytest.approx(exp["sd"])
    assert m.cv_percent == pytest.approx(exp["cv"])
    assert m.gmi_percent == pytest.approx(exp["gmi"])
    assert m.cgm_active_percent == pytest.approx(exp["active"])
    assert m.below_54_percent == pytest.approx(exp["below_54"])
    assert m.from_54_to_69_percent == pytest.approx(exp["54_69"])
    assert m.from_70_to_180_percent == pytest.approx(exp["70_180"])
    assert m.from_181_to_250_percent == pytest.approx(exp["181_250"])
    assert m.above_250_percent == pytest.approx(exp["above_250"])
    assert m.data_sufficient
    # The demo has readings in every band (highs above 400 and lows below 40 among them).
    assert all(exp[k] > 0 for k in ("below_54", "54_69", "70_180", "181_250", "above_250"))


def test_daily_summary_of_the_demo_matches_the_exports(demo_report):
    exports = demo_report / "exports"
    summary = pq.read_table(exports / "daily_summary.parquet").to_pylist()
    assert len(summary) == 90
    readings = pq.read_table(exports / "cgm_readings.parquet").to_pylist()
    by_day: dict[dt.date, list[int]] = {}
    for r in readings:
        if r["glucose_mg_dl"] is not None:
            by_day.setdefault(r["pump_time"].date(), []).append(r["glucose_mg_dl"])
    # Basal recomputed: rate x time to the next record (at most 15 min; the last record 5 min).
    basal = pq.read_table(exports / "basal_deliveries.parquet").to_pylist()
    basal.sort(key=lambda r: r["seq_num"])
    units: dict[dt.date, float] = {}
    for a, b in zip(basal, basal[1:] + [None], strict=True):
        minutes = 5.0 if b is None else min(15.0, (b["timestamp"] - a["timestamp"]).total_seconds() / 60)
        day = a["pump_time"].date()
        units[day] = units.get(day, 0.0) + a["commanded_rate_units_per_hour"] * minutes / 60
    boluses = pq.read_table(exports / "bolus_deliveries.parquet").to_pylist()
    # The pump's own daily total (81, logged at midnight for the day that ended).
    pump_total = {
        r["pump_time"].date() - dt.timedelta(days=1): r["daily_total_basal_units"]
        for r in pq.read_table(exports / "daily_status.parquet").to_pylist()
    }
    for row in summary:
        day = row["day"]
        g = by_day[day]
        assert row["cgm_readings"] == len(g)
        assert row["mean_glucose_mg_dl"] == pytest.approx(statistics.fmean(g))
        assert row["sd_glucose_mg_dl"] == pytest.approx(statistics.stdev(g))
        assert row["time_70_to_180_mg_dl_percent"] == pytest.approx(100 * sum(70 <= x <= 180 for x in g) / len(g))
        assert row["time_below_54_mg_dl_percent"] == pytest.approx(100 * sum(x < 54 for x in g) / len(g))
        assert row["basal_units"] == pytest.approx(units[day])
        if day in pump_total:
            assert row["basal_units"] == pytest.approx(pump_total[day], abs=0.006)
        todays = [b for b in boluses if b["pump_time"].date() == day]
        assert row["bolus_units"] == pytest.approx(sum(b["delivered_units"] or 0 for b in todays))
        assert row["carbs_g"] == sum(b["carbs_g"] or 0 for b in todays)
        assert row["total_insulin_units"] == pytest.approx(row["basal_units"] + row["bolus_units"])
    assert len(pump_total) == 89


def embedded_pngs(page: str) -> list[bytes]:
    return [base64.b64decode(x) for x in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_report_page_has_every_metric_beside_its_target(demo_report):
    page = (demo_report / "reports" / "summary.html").read_text(encoding="utf-8")
    exp = independent_metrics(demo_report / "exports" / "cgm_readings.parquet")
    for label, value, target in (
        ("Days covered", "90 of 90", "≥14 days"),
        ("Standard deviation (SD)", f"{exp['sd']:.1f} mg/dL", ""),
        ("Time CGM active", f"{exp['active']:.1f} %", "≥70 %"),
        ("Mean glucose", f"{exp['mean']:.0f} mg/dL", ""),
        ("GMI (glucose management indicator)", f"{exp['gmi']:.1f} %", ""),
        ("Glycemic variability (CV)", f"{exp['cv']:.1f} %", "≤36 %"),
        ("TBR &lt;54 mg/dL", f"{exp['below_54']:.1f} %", "&lt;1 %"),
        ("TBR 54-69 mg/dL", f"{exp['54_69']:.1f} %", "&lt;4 % with &lt;54"),
        ("TIR 70-180 mg/dL", f"{exp['70_180']:.1f} %", "&gt;70 %"),
        ("TAR 181-250 mg/dL", f"{exp['181_250']:.1f} %", "&lt;25 % with &gt;250"),
        ("TAR &gt;250 mg/dL", f"{exp['above_250']:.1f} %", "&lt;5 %"),
    ):
        row = re.search(rf"<tr><td>{re.escape(label)}</td><td class=\"num\">([^<]*)</td><td>([^<]*)</td>", page)
        assert row, label
        assert row[1] == value and row[2].startswith(target), (label, row.groups())
    tir_met = exp["70_180"] > 70
    tir_row = re.search(r"<tr><td>TIR 70-180 mg/dL</td>.*?</tr>", page)[0]
    assert ("✓ met" in tir_row) == tir_met and ("✗ not met" in tir_row) == (not tir_met)
    assert "Demo data." in page
    assert "insufficient data" not in page
    # The methods footer documents each metric.
    footer = page[page.index("<footer>") :]
    for words in ("3.31 + 0.02392", "sample standard deviation", "54 ≤ g ≤ 69", "15-minute bins", "at most 15 minutes"):
        assert words in footer, words
    assert "<script" not in page and not re.search(r'(src|href)="(?!data:)', page)  # self-contained


def test_report_figures_are_valid_pngs_of_sensible_size_and_embedded(demo_report):
    page = (demo_report / "reports" / "summary.html").read_text(encoding="utf-8")
    embedded = embedded_pngs(page)
    assert len(embedded) == len(FIGURES)
    for name in FIGURES:
        data = (demo_report / "reports" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        image = Image.open(io.BytesIO(data))
        image.verify()
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG"
        assert 800 <= image.width <= 2000 and 350 <= image.height <= 1200, (name, image.size)
        assert 10_000 < len(data) < 2_000_000, name
        # Not a blank canvas: the figure draws in more than a handful of colours.
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is None or len(colours) > 20, name
        assert data in embedded, name


def test_snakemake_report_collects_the_figures(demo_report, tmp_path):
    out = tmp_path / "snakemake-report.zip"
    snakemake(demo_report, "report", "--report", str(out))
    import zipfile

    names = zipfile.ZipFile(out).namelist()
    for name in (*FIGURES, "summary.html"):
        assert any(n.endswith(name) for n in names), (name, names)


def test_report_for_a_short_range_warns_about_data_sufficiency(demo_report):
    snakemake(demo_report, "-c1", "report", "--config", "start=2025-05-01", "end=2025-05-07")
    page = (demo_report / "reports" / "summary.html").read_text(encoding="utf-8")
    assert "Period 2025-05-01 to 2025-05-07 (7 days)" in page
    assert "insufficient data" in page
    assert re.search(r"<tr><td>Days covered</td><td class=\"num\">7 of 7</td>", page)
    # Back to the whole history for the tests that follow.
    snakemake(demo_report, "-c1", "report")


# --- what the report step says --------------------------------------------------------------------


def report_lines(tmp_path, readings: int, records: bool, start=None, end=None) -> list[str]:
    """The WARNING lines of report.make_report for a history of ``readings`` CGM readings (5 minutes
    apart from 2025-05-01 00:00) and, with ``records``, a daily_summary row for 2025-05-01..2025-05-07."""
    import logging

    import duckdb

    tmp_path.mkdir()
    cgm, daily = tmp_path / "cgm.parquet", tmp_path / "daily.parquet"
    duckdb.sql(
        f"COPY (SELECT TIMESTAMP '2025-05-01' + INTERVAL 5 MINUTE * i AS pump_time, 120::INTEGER AS glucose_mg_dl, "
        f"'12345678' AS pump_serial, i::BIGINT AS seq_num FROM range({readings}) t(i)) TO '{cgm}' (FORMAT parquet)"
    )
    duckdb.sql(
        "COPY (SELECT DATE '2025-05-01' + i::INTEGER AS day, TIMESTAMP '2025-05-01' + INTERVAL 1 DAY * i AS pump_time, "
        "1.0 AS basal_units, 0.0 AS bolus_units, 0::BIGINT AS carbs_g, '12345678' AS pump_serial "
        f"FROM range({7 if records else 0}) t(i)) TO '{daily}' (FORMAT parquet)"
    )
    lines: list[str] = []

    class Lines(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.WARNING:
                lines.append(record.getMessage())

    log = logging.getLogger(f"test_report.{tmp_path.name}")
    log.propagate = False
    log.addHandler(Lines())
    outputs = {"html": str(tmp_path / "summary.html"), **{k: str(tmp_path / f"{k}.png") for k in report.FIGURES}}
    report.make_report(str(cgm), str(daily), outputs, start, end, "test", log)
    return lines


def test_the_report_step_warns_in_plain_sentences(tmp_path):
    assert report_lines(tmp_path / "a", 100, True) == [
        "the readings cover less than 70 % of 14 days; the report warns about it"
    ]
    assert report_lines(tmp_path / "b", 0, True) == [
        "no CGM readings from 2025-05-01 to 2025-05-07; the report says so"
    ]
    assert report_lines(tmp_path / "c", 0, False) == [
        "no CGM readings (no pump records in the whole history); the report says so"
    ]
    assert report_lines(tmp_path / "d", 0, False, "2025-06-01", "2025-06-30") == [
        "no CGM readings (no pump records from 2025-06-01 to 2025-06-30); the report says so"
    ]
    assert report_lines(tmp_path / "e", 0, True, "2025-06-01") == [
        "no CGM readings (no pump records from 2025-06-01 on); the report says so"
    ]
    assert report_lines(tmp_path / "f", 0, True, None, "2025-04-30") == [
        "no CGM readings (no pump records up to 2025-04-30); the report says so"
    ]
