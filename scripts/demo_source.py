"""Rule demo_source: write the demo pump's pump-logs responses into the raw store."""

from tandem_export import demo, runlog, source


def body(log):
    log.warning(
        "source: demo - this is the bundled DEMO pump %s, generated data, not anyone's real history", demo.DEMO_SERIAL
    )
    p = snakemake.params  # noqa: F821 - provided by Snakemake
    source.write_demo(list(snakemake.output), p.windows, p.seed, p.end_date, p.days, log)  # noqa: F821


runlog.run(snakemake, "demo_source", body)  # noqa: F821
