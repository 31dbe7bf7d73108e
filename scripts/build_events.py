"""Rule events: union the windows, de-duplicate, apply times; write decoded, events, raw_events."""

from tandem_export import runlog, tables


def body(log):
    out = snakemake.output  # noqa: F821
    tables.build_events(list(snakemake.input), out.decoded, out.events, out.raw_events, snakemake.params.timezone, log)  # noqa: F821


runlog.run(snakemake, "events", body)  # noqa: F821
