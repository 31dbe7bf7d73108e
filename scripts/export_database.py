"""Rule database: every table, all rows, in one DuckDB file (exports/tandem.duckdb)."""

from pathlib import Path

from tandem_export import export, runlog


def body(log):
    paths = snakemake.input.tables  # noqa: F821
    tables = {Path(path).stem: path for path in ([paths] if isinstance(paths, str) else paths)}
    export.export_database(tables, snakemake.output[0], snakemake.params.source, log)  # noqa: F821


runlog.run(snakemake, "database", body)  # noqa: F821
