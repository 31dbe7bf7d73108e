"""Rule import_file: copy one saved response, unchanged, into the raw store."""

from tandem_export import runlog, source


def body(log):
    source.import_file(snakemake.input[0], snakemake.output[0], log)  # noqa: F821


runlog.run(snakemake, "import_file", body)  # noqa: F821
