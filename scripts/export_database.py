"""Rule database: every table, all rows, in one DuckDB file (exports/tandem.duckdb), recorded for
exports/MANIFEST.json (tandem_export.export_manifest)."""

from tandem_export import cells, database, export_manifest, runlog


def body(log):
    paths, p, out = snakemake.input.tables, snakemake.params, snakemake.output[0]  # noqa: F821
    tables = {cells.table_name(path): path for path in ([paths] if isinstance(paths, str) else paths)}
    counts = database.export_database(tables, out, p.source, log)
    export_manifest.record_export(
        out,
        table=None,
        start=None,
        end=None,
        source=p.source,
        settings=p.lineage,
        rows=sum(counts.values()),
        tables=counts,
    )


runlog.run(snakemake, "database", body)  # noqa: F821
