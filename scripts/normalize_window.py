"""Rule normalize: decode one raw window into the normalised events table."""

from pathlib import Path

from tandem_export import runlog, source
from tandem_export.normalize import normalize_file


def body(log):
    raw = Path(snakemake.input[0])  # noqa: F821
    source.verify_checksum(raw)
    stats = normalize_file(raw, snakemake.params.pump_serial, Path(snakemake.output[0]))  # noqa: F821
    log.info("%s: %s form, %d events", raw, stats.form, stats.events)
    for line in stats.warnings(str(raw)):
        log.warning("%s", line)


runlog.run(snakemake, "normalize", body)  # noqa: F821
