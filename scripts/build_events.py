"""Rule events: union the windows, de-duplicate, apply times; write decoded, events, raw_events."""

from tandem_export import runlog, tables
from tandem_export.normalize import read_index


def body(log):
    out = snakemake.output  # noqa: F821
    outputs = {k: getattr(out, k) for k in ("decoded", "events", "raw_events", "clock_changes")}
    p = snakemake.params  # noqa: F821
    log.info("time zone %s (%s); pump clock model %s", p.timezone, p.timezone_from, p.pump_clock)
    tables.build_events(read_index(snakemake.input[0]), outputs, p.timezone, p.pump_clock, log, p.source)  # noqa: F821


runlog.run(snakemake, "events", body)  # noqa: F821
