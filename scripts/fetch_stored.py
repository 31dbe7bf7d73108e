"""Rule fetch with fetch_latest: false: list one account's raw store as it is, without the network.

No request of any kind is made (the Tandem Source client is not even imported): the manifest is
that of the windows on disk (tandem_export.stored), byte for byte the last fetch's while nothing was
saved since, so that the jobs after it rerun only for what changed.
"""

from pathlib import Path

from tandem_export import runlog, stored
from tandem_export.errors import InputError
from tandem_export.storage import atomic_path


def body(log):
    p = snakemake.params  # noqa: F821 - provided by Snakemake
    who = f"account {p.account}: " if p.account else ""
    out = Path(snakemake.output[0])  # noqa: F821
    try:
        manifest = stored.stored_manifest(out.parent, p.raw_root, p.pump_serial)
        line = stored.notice(stored.pump_fetches(manifest, p.raw_root), p.timezone)
    except InputError as exc:
        raise InputError(f"{who}{exc}") from None
    with atomic_path(out) as tmp:
        tmp.write_text(stored.manifest_text(manifest), encoding="utf-8")
    log.info("%s%s", who, line)


runlog.run(snakemake, f"fetch {snakemake.params.account or ''}".strip(), body)  # noqa: F821
