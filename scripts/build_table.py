"""Rule derived_table: build one analysis table from the decoded events with its SQL file."""

from tandem_export import runlog, tables


def body(log):
    name = snakemake.wildcards.derived  # noqa: F821
    tables.build_table(name, snakemake.input[0], snakemake.output[0], log)  # noqa: F821


runlog.run(snakemake, "derived_table", body)  # noqa: F821
