"""Rules export and export_range, and with an accounts sheet export_combined[_range]: COPY one table,
for one date range, to each output file (Parquet or CSV, by its extension)."""

from tandem_export import export, runlog


def body(log):
    p = snakemake.params  # noqa: F821
    inputs = list(snakemake.input)  # noqa: F821
    accounts = getattr(p, "accounts", None)
    table = dict(zip(accounts, inputs, strict=True)) if accounts else inputs[0]
    for out in snakemake.output:  # noqa: F821
        export.export_table(table, out, p.start, p.end, p.source, log)


runlog.run(snakemake, "export", body)  # noqa: F821
