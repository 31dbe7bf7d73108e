# Union the windows, de-duplicate, apply times; then one job per derived table.


rule events:
    input:
        normalized_files,
    output:
        decoded="data/tables/decoded.parquet",
        events="data/tables/events.parquet",
        raw_events="data/tables/raw_events.parquet",
        clock_changes="data/tables/clock_changes.parquet",
    log:
        "logs/tables/events.log",
    conda:
        "../envs/tandem.yaml"
    params:
        timezone=SETTINGS.timezone,
        pump_clock=SETTINGS.pump_clock,
        timezone_from=SETTINGS.timezone_from,
    script:
        "../scripts/build_events.py"


rule derived_table:
    input:
        "data/tables/decoded.parquet",
    output:
        "data/tables/{derived}.parquet",
    log:
        "logs/tables/{derived}.log",
    conda:
        "../envs/tandem.yaml"
    script:
        "../scripts/build_table.py"
