"""Rule report: consensus glucose metrics and figures for the configured range, as HTML and PNG."""

from tandem_export import report, runlog


def body(log):
    i, o, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    outputs = {"html": o.html, "agp": o.agp, "overlay": o.overlay, "ranges": o.ranges, "insulin": o.insulin}
    report.make_report(i.cgm, i.daily, outputs, p.start, p.end, p.source, log)


runlog.run(snakemake, "report", body)  # noqa: F821
