"""Rule events: events and raw_events, every kept event in the order and at the time the placement
table gives."""

from tandem_export import runlog, tables
from tandem_export.normalize import read_index


def body(log):
    inputs, out = snakemake.input, snakemake.output  # noqa: F821
    outputs = {"events": out.events, "raw_events": out.raw_events}
    # One single-threaded writer per thread the rule was given (the bytes do not depend on it).
    writers = snakemake.threads  # noqa: F821
    source = snakemake.params.source  # noqa: F821
    lineage = snakemake.params.cells_lineage  # noqa: F821
    rows = tables.build_event_tables(read_index(inputs.index), inputs.decoded, outputs, source, writers, lineage, log)
    for name, path in outputs.items():
        log.info("%s: %d rows -> %s", name, rows[name], path)


runlog.run(snakemake, "events", body)  # noqa: F821
