"""Rule place_events: union the windows, de-duplicate, place every event in time; write the
placement table (decoded) and clock_changes."""

from tandem_export import runlog, tables
from tandem_export.config import LOCAL_FROM
from tandem_export.normalize import read_index


def body(log):
    out, p = snakemake.output, snakemake.params  # noqa: F821
    outputs = {"decoded": out.decoded, "clock_changes": out.clock_changes}
    if p.timezone_from == LOCAL_FROM:  # timezone: local, this machine's zone: right only if the pump's too
        log.warning(
            "time zone %s (%s): pump times are read in this machine's zone; set the pump's zone if they differ; "
            "pump clock model %s",
            p.timezone,
            p.timezone_from,
            p.pump_clock,
        )
    else:
        log.info("time zone %s (%s); pump clock model %s", p.timezone, p.timezone_from, p.pump_clock)
    index = read_index(snakemake.input.index)  # noqa: F821
    tables.place_events(index, outputs, p.timezone, p.pump_clock, log, p.source, p.cells_lineage)


runlog.run(snakemake, "place_events", body)  # noqa: F821
