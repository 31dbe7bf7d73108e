# Exports: DuckDB COPY of one table for one date range, written to a temp file then renamed;
# every table in one DuckDB database file; with an accounts sheet, every account's rows together.


rule export_range:
    input:
        tables="data/{acct}tables/{table}.cells.json",
        fetched=fetched_manifests,
    output:
        "exports/{acct}{table}_{start}_{end}.{fmt}",
    log:
        "logs/{acct}export/{table}_{start}_{end}.{fmt}.log",
    conda:
        "../envs/tandem.yaml"
    params:
        start=lambda wc: cfg.check_date_or_exit("start (in the file name)", wc.start),
        end=lambda wc: cfg.check_range_or_exit(wc.start, wc.end),
        source=lambda wc: account(wc).source_label,
        lineage=lineage,
    script:
        "../scripts/export_table.py"


rule export:
    # Both formats of a table with a row per event in one job (the configured range, as a pair).
    input:
        tables="data/{acct}tables/{table}.cells.json",
        fetched=fetched_manifests,
    output:
        parquet="exports/{acct}{table}.parquet",
        csv="exports/{acct}{table}.csv",
    log:
        "logs/{acct}export/{table}.log",
    wildcard_constraints:
        table="|".join(cfg.EXPORTED_ALONE),
    conda:
        "../envs/tandem.yaml"
    params:
        start=SETTINGS.start,
        end=SETTINGS.end,
        source=lambda wc: account(wc).source_label,
        lineage=lineage,
    script:
        "../scripts/export_table.py"


rule export_tables:
    # Every other table, both formats, the configured range, in one job: each is small next to the
    # events, and a job costs a Python start-up.
    input:
        tables=expand(
            "data/{{acct}}tables/{table}.cells.json", table=cfg.EXPORTED_TOGETHER
        ),
        fetched=fetched_manifests,
    output:
        expand(
            "exports/{{acct}}{table}.{fmt}", table=cfg.EXPORTED_TOGETHER, fmt=FORMATS
        ),
    log:
        "logs/{acct}export/tables.log",
    conda:
        "../envs/tandem.yaml"
    params:
        start=SETTINGS.start,
        end=SETTINGS.end,
        source=lambda wc: account(wc).source_label,
        lineage=lineage,
        tables=cfg.EXPORTED_TOGETHER,
    script:
        "../scripts/export_table.py"


if SHEET:
    # Every account's rows in one file, with an account column first: the export rules above,
    # reading every account's table.

    use rule export_range as export_combined_range with:
        input:
            tables=[f"data/{prefix}tables/{{table}}.cells.json" for prefix in ACCOUNTS],
            fetched=ALL_FETCHED,
        output:
            f"exports/{cfg.COMBINED}/{{table}}_{{start}}_{{end}}.{{fmt}}",
        log:
            f"logs/{cfg.COMBINED}/export/{{table}}_{{start}}_{{end}}.{{fmt}}.log",
        params:
            start=lambda wc: cfg.check_date_or_exit(
                "start (in the file name)", wc.start
            ),
            end=lambda wc: cfg.check_range_or_exit(wc.start, wc.end),
            source=f"tandem ({cfg.COMBINED}: every account)",
            accounts=[s.account for s in ACCOUNTS.values()],
            lineage=ALL_LINEAGES,

    use rule export as export_combined with:
        input:
            tables=[f"data/{prefix}tables/{{table}}.cells.json" for prefix in ACCOUNTS],
            fetched=ALL_FETCHED,
        output:
            parquet=f"exports/{cfg.COMBINED}/{{table}}.parquet",
            csv=f"exports/{cfg.COMBINED}/{{table}}.csv",
        log:
            f"logs/{cfg.COMBINED}/export/{{table}}.log",
        params:
            start=SETTINGS.start,
            end=SETTINGS.end,
            source=f"tandem ({cfg.COMBINED}: every account)",
            accounts=[s.account for s in ACCOUNTS.values()],
            lineage=ALL_LINEAGES,

    use rule export_tables as export_tables_combined with:
        input:
            tables=[
                f"data/{prefix}tables/{table}.cells.json"
                for table in cfg.EXPORTED_TOGETHER
                for prefix in ACCOUNTS
            ],
            fetched=ALL_FETCHED,
        output:
            expand(
                "exports/{combined}/{table}.{fmt}",
                combined=cfg.COMBINED,
                table=cfg.EXPORTED_TOGETHER,
                fmt=FORMATS,
            ),
        log:
            f"logs/{cfg.COMBINED}/export/tables.log",
        params:
            start=SETTINGS.start,
            end=SETTINGS.end,
            source=f"tandem ({cfg.COMBINED}: every account)",
            tables=cfg.EXPORTED_TOGETHER,
            accounts=[s.account for s in ACCOUNTS.values()],
            lineage=ALL_LINEAGES,


rule database:
    # Every table, all rows (never the date range), in one DuckDB file for SQL users.
    input:
        tables=expand("data/{{acct}}tables/{table}.cells.json", table=TABLES),
        fetched=fetched_manifests,
    output:
        # Updated in place (tandem_export.database); Snakemake restores it if the job fails.
        update(f"exports/{{acct}}{cfg.DATABASE}"),
    log:
        f"logs/{{acct}}export/{cfg.DATABASE}.log",
    # The longest single-threaded job: started as soon as every table exists.
    priority: 1
    conda:
        "../envs/tandem.yaml"
    params:
        source=lambda wc: account(wc).source_label,
        lineage=lineage,
    script:
        "../scripts/export_database.py"


rule datasets:
    # `snakemake -c1 datasets`: every table of every account as a Hive-partitioned Parquet dataset.
    input:
        [
            f"exports/{prefix}{table}/{cfg.DATASET_MARKER}"
            for prefix in ACCOUNTS
            for table in TABLES
        ],
        ALL_FETCHED,


rule export_datasets:
    # Every table's dataset exports/{table}/ (tandem_export.dataset), all rows, in one job; only the
    # partitions of changed cells are written. Each marker is updated in place.
    input:
        tables=expand("data/{{acct}}tables/{table}.cells.json", table=TABLES),
        fetched=fetched_manifests,
    output:
        [update(f"exports/{{acct}}{table}/{cfg.DATASET_MARKER}") for table in TABLES],
    log:
        "logs/{acct}export/datasets.log",
    conda:
        "../envs/tandem.yaml"
    params:
        source=lambda wc: account(wc).source_label,
        lineage=lineage,
    script:
        "../scripts/export_datasets.py"


rule unknown_export:
    # Matches only names no rule above can build, and stops with the valid names.
    output:
        "exports/{anything}",
    log:
        "logs/export/unknown/{anything}.log",
    wildcard_constraints:
        anything=cfg.not_an_export_regex(list(ACCOUNTS)),
    conda:
        "../envs/tandem.yaml"
    params:
        why=lambda wc: cfg.unknown_target_or_exit(
            wc.anything, [s.account for s in ACCOUNTS.values()]
        ),
    shell:
        "false"
