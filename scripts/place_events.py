"""Rule place_events: union the windows, de-duplicate, place every event in time; write the
placement table (decoded) and clock_changes."""

from tandem_export import runlog, tables
from tandem_export.normalize import read_index


def body(log):
    out, p = snakemake.output, snakemake.params  # noqa: F821
    outputs = {"decoded": out.decoded, "clock_changes": out.clock_changes}
    log.info("time zone %s (%s); pump clock model %s", p.timezone, p.timezone_from, p.pump_clock)
    tables.place_events(read_index(snakemake.input.index), outputs, p.timezone, p.pump_clock, log, p.source)  # noqa: F821


runlog.run(snakemake, "place_events", body)  # noqa: F821
