"""Rule import_files: copy every saved response, unchanged, into the raw store (new ones only)."""

import json

from tandem_export import runlog, source
from tandem_export.storage import atomic_path


def body(log):
    copies = snakemake.params.copies  # noqa: F821
    new = sum(source.import_file(origin, target, log) for origin, target in copies)
    log.info("%d saved file(s): %d copied, %d already in the raw store", len(copies), new, len(copies) - new)
    with atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
        tmp.write_text(json.dumps([target for _, target in copies], indent=1), encoding="utf-8")


runlog.run(snakemake, "import_files", body)  # noqa: F821
