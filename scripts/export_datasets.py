"""Rule export_datasets: every table as a Hive-partitioned Parquet dataset (exports/{table}/, all
rows; tandem_export.dataset), each part recorded for exports/MANIFEST.json
(tandem_export.export_manifest)."""

from pathlib import Path

from tandem_export import cells, dataset, export_manifest, runlog


def body(log):
    p = snakemake.params  # noqa: F821
    for manifest, marker in zip(snakemake.input.tables, snakemake.output, strict=True):  # noqa: F821
        table = cells.table_name(manifest)
        if Path(marker).parent.name != table:
            raise ValueError(f"{marker}: not the dataset of {table}")
        # Every part is recorded again, kept or not: its record names the current settings.
        for part, rows, _ in dataset.write_dataset(manifest, marker, p.source, log):
            export_manifest.record_export(
                part, table=table, start=None, end=None, source=p.source, settings=p.lineage, rows=rows
            )


runlog.run(snakemake, "export_datasets", body)  # noqa: F821
