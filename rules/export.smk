# Exports: DuckDB COPY of one table for one date range, written to a temp file then renamed;
# and every table in one DuckDB database file.


rule export_range:
    input:
        "data/tables/{table}.parquet",
    output:
        "exports/{table}_{start}_{end}.{fmt}",
    log:
        "logs/export/{table}_{start}_{end}.{fmt}.log",
    conda:
        "../envs/tandem.yaml"
    params:
        start=lambda wc: cfg.check_date_or_exit("start (in the file name)", wc.start),
        end=lambda wc: cfg.check_range_or_exit(wc.start, wc.end),
        source=SETTINGS.source_label,
    script:
        "../scripts/export_table.py"


rule export:
    input:
        "data/tables/{table}.parquet",
    output:
        "exports/{table}.{fmt}",
    log:
        "logs/export/{table}.{fmt}.log",
    conda:
        "../envs/tandem.yaml"
    params:
        start=SETTINGS.start,
        end=SETTINGS.end,
        source=SETTINGS.source_label,
    script:
        "../scripts/export_table.py"


rule database:
    # Every table, all rows (never the date range), in one DuckDB file for SQL users.
    input:
        expand("data/tables/{table}.parquet", table=TABLES),
    output:
        f"exports/{cfg.DATABASE}",
    log:
        f"logs/export/{cfg.DATABASE}.log",
    conda:
        "../envs/tandem.yaml"
    params:
        source=SETTINGS.source_label,
    script:
        "../scripts/export_database.py"


rule unknown_export:
    # Matches only names no rule above can build, and stops with the valid names.
    output:
        "exports/{anything}",
    log:
        "logs/export/unknown/{anything}.log",
    wildcard_constraints:
        anything=cfg.NOT_AN_EXPORT_REGEX,
    conda:
        "../envs/tandem.yaml"
    params:
        why=lambda wc: cfg.unknown_target_or_exit(wc.anything),
    shell:
        "false"
