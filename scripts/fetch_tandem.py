"""Rule fetch: bring one account's raw store up to date from Tandem Source and list its windows."""

from pathlib import Path

from tandem_export import fetch, runlog, stored, tandem
from tandem_export.errors import InputError
from tandem_export.storage import atomic_path

#: The line after the error of a fetch that could not reach Tandem Source while the raw store holds
#: a fetch that completed.
OFFLINE_HINT = "to export what is already stored, without the network: run again with --config fetch_latest=false"


def body(log):
    p = snakemake.params  # noqa: F821 - provided by Snakemake
    if p.account:
        log.info("account %s", p.account)
        credentials = tandem.account_credentials(p.account, p.credentials_file, p.email_env, p.password_env)
    else:
        credentials = tandem.load_credentials(".")
    if credentials is None:
        raise InputError(
            "no Tandem Source credentials: set TANDEM_EMAIL and TANDEM_PASSWORD or fill sensitive/credentials.toml "
            "(see the README, Your Tandem Source account)"
        )
    region = (p.region or credentials.region).upper()
    client = tandem.TandemClient(
        credentials,
        tandem.api_urls(region, p.api),
        Path(p.token_cache),
        tandem.RetryPolicy(p.retries, p.backoff_seconds, p.timeout_seconds, max_wait_seconds=p.max_wait_seconds),
        log,
    )
    try:
        manifest = fetch.fetch_account(client, Path(p.raw_root), p.pump_serial, p.start, p.end, p.refetch_days, log)
    except InputError as exc:
        if p.account and not str(exc).startswith(f"account {p.account}"):
            raise type(exc)(f"account {p.account}: {exc}") from None
        raise
    # Windows kept against a partial answer: the next run fetches again even with a closed range.
    retry = Path(p.retry_marker)
    if manifest.pop("retry"):
        retry.parent.mkdir(parents=True, exist_ok=True)
        retry.touch()
    else:
        retry.unlink(missing_ok=True)
    manifest["raw_root"] = p.raw_root
    text = stored.manifest_text(manifest)
    # First the copy no rule declares (Snakemake removes the manifest before every fetch and after a
    # failed one): what a run with fetch_latest: false exports.
    stored.write_last_fetch(Path(snakemake.output[0]).parent, text)  # noqa: F821
    with atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
        tmp.write_text(text, encoding="utf-8")


def offline_hint(exc: InputError) -> str | None:
    """After a fetch that could not reach Tandem Source (no connection, no DNS, no answer in time, an
    outage or a rate limit through every retry, a certificate that a captive portal or proxy put in
    its way), how to export what an earlier fetch stored; None otherwise."""
    if isinstance(exc, tandem.Unavailable | tandem.Unverified):
        if stored.last_fetch(Path(snakemake.output[0]).parent) is not None:  # noqa: F821
            return OFFLINE_HINT
    return None


# With an accounts sheet every console line names its account: "[fetch alice] INFO: ...".
# Every window is saved the moment it arrives, so a Ctrl-C loses none of them.
runlog.run(
    snakemake,  # noqa: F821
    f"fetch {snakemake.params.account or ''}".strip(),  # noqa: F821
    body,
    interrupted=f"{runlog.INTERRUPTED}: windows saved so far are kept",
    then=offline_hint,
)
