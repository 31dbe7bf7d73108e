# Tandem pump history -> raw store -> decoded tables -> Parquet/CSV/DuckDB exports; glucose report.
# Rules live in rules/*.smk; shared helpers and wildcard constraints in rules/common.smk.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/source.smk"
include: "rules/fetch.smk"
include: "rules/normalize.smk"
include: "rules/tables.smk"
include: "rules/export.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        all_exports(),
        # (see fetched_manifests: without it, a fetch that brought nothing new lists this rule as run)
        ALL_FETCHED,


onsuccess:
    release_exit()
    # exports/MANIFEST.json: every file under exports/ (a run with "Nothing to be done" runs no
    # handler: the manifest stays as the last run wrote it, and so do the files).
    write_manifest(complete=True)


onerror:
    release_exit()
    # The manifest too (Snakemake has removed the outputs of the failed jobs), and, as the last
    # console line, the exports still built from other settings than the current ones.
    print_stale_exports_last(write_manifest(complete=False))
    # With an accounts sheet, name every account that did not complete and its first error; the
    # other accounts' jobs have run to the end (profiles/default sets keep-going).
    if SHEET:
        lines = failed_accounts()
        if lines:
            print(
                f"{len(lines)} of {len(ACCOUNTS)} accounts did not complete:",
                *lines,
                sep="\n",
                file=sys.stderr,
            )
