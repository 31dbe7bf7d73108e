# Union the windows, de-duplicate, place every event in time; then, side by side, the tables with a
# row per event and every derived table, each reading the windows through the placement.


rule place_events:
    input:
        index="data/{acct}normalized/index.json",
        fetched=fetched_manifests,
    output:
        decoded="data/{acct}tables/decoded.parquet",
        # Kept as cells (tandem_export.cells); update: the manifest stays while the job runs.
        clock_changes=update("data/{acct}tables/clock_changes.cells.json"),
    log:
        "logs/{acct}tables/place_events.log",
    # Before the event tables: everything else waits for it.
    priority: 3
    conda:
        "../envs/tandem.yaml"
    threads: 2
    params:
        timezone=lambda wc: account(wc).timezone,
        pump_clock=lambda wc: account(wc).pump_clock,
        timezone_from=lambda wc: account(wc).timezone_from,
        # Written into the clock_changes metadata, as in its export.
        source=lambda wc: account(wc).source_label,
        lineage=lineage,
        # What the cells are built with (cfg.Settings.cells_lineage: no window list).
        cells_lineage=lambda wc: account(wc).cells_lineage,
    script:
        "../scripts/place_events.py"


rule events:
    # events and raw_events: a job of their own, so that the derived tables (and their exports) do
    # not wait for them, and a run that asks for a derived table only does not write them.
    input:
        index="data/{acct}normalized/index.json",
        decoded="data/{acct}tables/decoded.parquet",
        fetched=fetched_manifests,
    output:
        events=update("data/{acct}tables/events.cells.json"),
        raw_events=update("data/{acct}tables/raw_events.cells.json"),
    log:
        "logs/{acct}tables/events.log",
    conda:
        "../envs/tandem.yaml"
    # One writer per thread, as derived_tables: one by default, so that on two cores it runs beside
    # derived_tables. Raise with --set-threads events=2.
    threads: 1
    params:
        source=lambda wc: account(wc).source_label,
        lineage=lineage,
        # What the cells are built with (cfg.Settings.cells_lineage: no window list).
        cells_lineage=lambda wc: account(wc).cells_lineage,
    script:
        "../scripts/build_events.py"


rule derived_tables:
    input:
        index="data/{acct}normalized/index.json",
        decoded="data/{acct}tables/decoded.parquet",
        fetched=fetched_manifests,
    output:
        [
            update(f"data/{{acct}}tables/{name}.cells.json")
            for name in cfg.DERIVED_TABLES
        ],
    log:
        "logs/{acct}tables/derived.log",
    # Before the exports of the event tables: the database and the derived exports wait for it.
    priority: 2
    conda:
        "../envs/tandem.yaml"
    # One writer per thread. One thread by default, so that on two cores the events job (and then the
    # export of events) runs beside it; that packs the tail of a run better than two writers first
    # and the others after. Raise with --set-threads.
    threads: 1
    params:
        names=cfg.DERIVED_TABLES,
        source=lambda wc: account(wc).source_label,
        lineage=lineage,
        # What the cells are built with (cfg.Settings.cells_lineage: no window list).
        cells_lineage=lambda wc: account(wc).cells_lineage,
    script:
        "../scripts/build_tables.py"
