"""Rules export and export_range: COPY one table, for one date range, to Parquet or CSV."""

from tandem_export import export, runlog


def body(log):
    p = snakemake.params  # noqa: F821
    export.export_table(snakemake.input[0], snakemake.output[0], p.start, p.end, p.source, log)  # noqa: F821


runlog.run(snakemake, "export", body)  # noqa: F821
