# The glucose report: consensus metrics and figures for the configured start/end range, as one
# self-contained HTML page and as PNG files that `snakemake --report` collects.


rule report:
    input:
        cgm="data/tables/cgm_readings.parquet",
        daily="data/tables/daily_summary.parquet",
    output:
        html=report(
            "reports/summary.html",
            caption="captions/summary.rst",
            category="Glucose report",
            labels={"figure": "summary page"},
        ),
        agp=report(
            "reports/agp.png",
            caption="captions/agp.rst",
            category="Glucose report",
            labels={"figure": "ambulatory glucose profile"},
        ),
        overlay=report(
            "reports/daily_glucose.png",
            caption="captions/daily_glucose.rst",
            category="Glucose report",
            labels={"figure": "daily glucose overlay"},
        ),
        ranges=report(
            "reports/time_in_ranges.png",
            caption="captions/time_in_ranges.rst",
            category="Glucose report",
            labels={"figure": "time in ranges per day"},
        ),
        insulin=report(
            "reports/daily_insulin.png",
            caption="captions/daily_insulin.rst",
            category="Glucose report",
            labels={"figure": "daily insulin and carbs"},
        ),
    log:
        "logs/report/summary.log",
    conda:
        "../envs/tandem.yaml"
    params:
        start=SETTINGS.start,
        end=SETTINGS.end,
        source=SETTINGS.source_label,
    script:
        "../scripts/make_report.py"
