# The glucose report: consensus metrics and figures for the configured start/end range, as one
# self-contained HTML page and as PNG files that `snakemake --report` collects.


rule report:
    # `snakemake -c1 report`: the report of every account (one, without an accounts sheet).
    input:
        [f"reports/{prefix}summary.html" for prefix in ACCOUNTS],
        ALL_FETCHED,


rule account_report:
    input:
        cgm="data/{acct}tables/cgm_readings.cells.json",
        daily="data/{acct}tables/daily_summary.cells.json",
        fetched=fetched_manifests,
    output:
        html=report(
            "reports/{acct}summary.html",
            caption="captions/summary.rst",
            category="Glucose report",
            labels={"figure": "summary page"},
        ),
        agp=report(
            "reports/{acct}agp.png",
            caption="captions/agp.rst",
            category="Glucose report",
            labels={"figure": "ambulatory glucose profile"},
        ),
        overlay=report(
            "reports/{acct}daily_glucose.png",
            caption="captions/daily_glucose.rst",
            category="Glucose report",
            labels={"figure": "daily glucose overlay"},
        ),
        ranges=report(
            "reports/{acct}time_in_ranges.png",
            caption="captions/time_in_ranges.rst",
            category="Glucose report",
            labels={"figure": "time in ranges per day"},
        ),
        insulin=report(
            "reports/{acct}daily_insulin.png",
            caption="captions/daily_insulin.rst",
            category="Glucose report",
            labels={"figure": "daily insulin and carbs"},
        ),
    log:
        "logs/{acct}report/summary.log",
    conda:
        "../envs/tandem.yaml"
    params:
        start=SETTINGS.start,
        end=SETTINGS.end,
        source=lambda wc: account(wc).source_label,
        lineage=lineage,
    script:
        "../scripts/make_report.py"
