"""Rule normalize: decode one raw window into the normalised events table."""

from pathlib import Path

from tandem_export import runlog, source
from tandem_export.normalize import normalize_file


def body(log):
    raw = Path(snakemake.input[0])  # noqa: F821
    params = snakemake.params  # noqa: F821
    source.verify_checksum(raw)
    stats = normalize_file(raw, params.pump_serial, Path(snakemake.output[0]), params.label)  # noqa: F821
    log.info("%s: %s form, %d events (raw copy %s)", params.label, stats.form, stats.events, raw)
    for line in stats.warnings(params.label):
        log.warning("%s", line)
    if params.pump_serial == "UNKNOWN" and stats.events:
        log.warning(
            "%s: no pump serial known for these events (labelled UNKNOWN); set pump_serial for this file, or "
            "file_pump_serial, so that files of different pumps are not merged",
            params.label,
        )


runlog.run(snakemake, "normalize", body)  # noqa: F821
