# Union the windows, de-duplicate, apply times; then every derived table in one job.


rule events:
    input:
        "data/{acct}normalized/index.json",
    output:
        decoded="data/{acct}tables/decoded.parquet",
        events="data/{acct}tables/events.parquet",
        raw_events="data/{acct}tables/raw_events.parquet",
        clock_changes="data/{acct}tables/clock_changes.parquet",
    log:
        "logs/{acct}tables/events.log",
    conda:
        "../envs/tandem.yaml"
    threads: 2
    params:
        timezone=lambda wc: account(wc).timezone,
        pump_clock=lambda wc: account(wc).pump_clock,
        timezone_from=lambda wc: account(wc).timezone_from,
        # Written into the event tables' metadata, as in their exports.
        source=lambda wc: account(wc).source_label,
        lineage=lineage,
    script:
        "../scripts/build_events.py"


rule derived_tables:
    input:
        index="data/{acct}normalized/index.json",
        decoded="data/{acct}tables/decoded.parquet",
    output:
        [f"data/{{acct}}tables/{name}.parquet" for name in cfg.DERIVED_TABLES],
    log:
        "logs/{acct}tables/derived.log",
    # Before the exports of the event tables: the database and the derived exports wait for it.
    priority: 2
    conda:
        "../envs/tandem.yaml"
    # One writer per thread. One thread by default, so that on two cores the export of events (which
    # needs only the events job) runs beside it; that packs the tail of a run better than two
    # writers first and the exports after (1M events: the tail 8.2 -> 7.4 s). Raise with --set-threads.
    threads: 1
    params:
        names=cfg.DERIVED_TABLES,
        source=lambda wc: account(wc).source_label,
        lineage=lineage,
    script:
        "../scripts/build_tables.py"
