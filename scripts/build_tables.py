"""Rule derived_tables: build every analysis table from the decoded events, each with its SQL file."""

from tandem_export import runlog, tables
from tandem_export.normalize import read_index


def body(log):
    inputs, params = snakemake.input, snakemake.params  # noqa: F821
    outputs = dict(zip(params.names, snakemake.output, strict=True))  # noqa: F821
    # One single-threaded writer per thread the rule was given (the bytes do not depend on it).
    writers = snakemake.threads  # noqa: F821
    tables.build_tables(
        read_index(inputs.index), inputs.decoded, outputs, log, params.source, writers, params.cells_lineage
    )


runlog.run(snakemake, "derived_tables", body)  # noqa: F821
