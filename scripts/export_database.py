"""Rule database: every table, all rows, in one DuckDB file (exports/tandem.duckdb)."""

from pathlib import Path

from tandem_export import export, runlog


def body(log):
    tables = {Path(path).stem: path for path in snakemake.input}  # noqa: F821
    export.export_database(tables, snakemake.output[0], snakemake.params.source, log)  # noqa: F821


runlog.run(snakemake, "database", body)  # noqa: F821
