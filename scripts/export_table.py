"""Rules export, export_tables and export_range, and with an accounts sheet their _combined forms:
COPY each table, for one date range, to each output file (Parquet or CSV, by its extension), and
record each file for exports/MANIFEST.json (tandem_export.export_manifest)."""

from tandem_export import cells, export, export_manifest, runlog


def body(log):
    p = snakemake.params  # noqa: F821
    tables_in, outputs = snakemake.input.tables, list(snakemake.output)  # noqa: F821
    inputs = [tables_in] if isinstance(tables_in, str) else list(tables_in)
    accounts = getattr(p, "accounts", None) or [None]
    tables = getattr(p, "tables", None) or [None]
    # Inputs are table-major (each table: every account); outputs too (each table: every format).
    per_table, per_out = len(accounts), len(outputs) // len(tables)
    for i, _ in enumerate(tables):
        paths = inputs[i * per_table : (i + 1) * per_table]
        table = dict(zip(accounts, paths, strict=True)) if accounts != [None] else paths[0]
        for out in outputs[i * per_out : (i + 1) * per_out]:
            rows = export.export_table(table, out, p.start, p.end, p.source, log)
            export_manifest.record_export(
                out,
                table=cells.table_name(paths[0]),
                start=p.start,
                end=p.end,
                source=p.source,
                settings=p.lineage,
                rows=rows,
                accounts=None if accounts == [None] else accounts,
            )


runlog.run(snakemake, "export", body)  # noqa: F821
