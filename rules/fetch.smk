# Fetch from Tandem Source (source: tandem): one job per account brings its raw store up to date
# and lists the windows in a manifest. Raw windows are written beside it, never as declared
# outputs, so Snakemake never deletes fetched data, even when a fetch fails. Each fetch holds one
# unit of the tandem_api resource: `--resources tandem_api=N` caps how many accounts fetch at once.
#
# A checkpoint: with an open range the fetch runs on every invocation, and Snakemake decides what
# else to run only once it has finished. The manifest lists every window with its checksum, and every
# job after it takes the manifest as an input (fetched_manifests in common.smk), so a fetch that
# brought nothing new leaves every later job as it was, while one that changed any window reruns
# every job built from the earlier manifest (Snakemake compares the manifest's checksum with the
# one each output was built from).
#
# With fetch_latest: false nothing is requested. An account whose manifest is what its raw store
# holds runs no fetch job: the manifest is an input as it stands, so nothing reruns. The others
# (OFFLINE_DUE in common.smk: a failed fetch removed the manifest, or nothing was fetched yet) get a
# fetch job that lists the store as it is, or fails with one line; the other accounts complete.


def fetch_retry_marker(wildcards):
    """Left by a fetch that kept a saved window against a partial answer: the next run fetches."""
    return f"data/{wildcards.acct}fetch/retry"


if SETTINGS.fetch_latest:

    checkpoint fetch:
        output:
            "data/{acct}fetch/manifest.json",
        log:
            "logs/{acct}fetch/tandem.log",
        conda:
            "../envs/tandem.yaml"
        resources:
            tandem_api=1,
        params:
            # Changes on every invocation while the range is open, so each run asks for new data.
            check=lambda wc: account(wc).fetch_check
            + (
                f" retry pending, checked at {time.time():.6f}"
                if Path(fetch_retry_marker(wc)).exists()
                else ""
            ),
            retry_marker=fetch_retry_marker,
            raw_root=lambda wc: f"data/{wc.acct}raw",
            account=lambda wc: account(wc).account,
            credentials_file=lambda wc: account(wc).credentials_file,
            email_env=lambda wc: account(wc).email_env,
            password_env=lambda wc: account(wc).password_env,
            pump_serial=lambda wc: account(wc).pump_serial,
            start=lambda wc: account(wc).start,
            end=lambda wc: account(wc).end,
            region=lambda wc: account(wc).region,
            api=lambda wc: account(wc).tandem_api,
            refetch_days=lambda wc: account(wc).fetch["refetch_days"],
            retries=lambda wc: account(wc).fetch["retries"],
            backoff_seconds=lambda wc: account(wc).fetch["backoff_seconds"],
            timeout_seconds=lambda wc: account(wc).fetch["timeout_seconds"],
            max_wait_seconds=lambda wc: account(wc).fetch["max_wait_seconds"],
            token_cache=lambda wc: account(wc).fetch["token_cache"],
        script:
            "../scripts/fetch_tandem.py"

else:

    checkpoint fetch:
        output:
            "data/{acct}fetch/manifest.json",
        log:
            "logs/{acct}fetch/stored.log",
        wildcard_constraints:
            acct=(
                "(?:" + "|".join(re.escape(p) for p in OFFLINE_DUE) + ")"
                if OFFLINE_DUE
                else "(?!)"
            ),
        conda:
            "../envs/tandem.yaml"
        params:
            # Due whenever it is in the plan: the manifest on disk, if any, is not the store's.
            check=lambda wc: f"stored, checked at {time.time():.6f}",
            account=lambda wc: account(wc).account,
            raw_root=lambda wc: f"data/{wc.acct}raw",
            pump_serial=lambda wc: account(wc).pump_serial,
            timezone=lambda wc: account(wc).timezone,
        script:
            "../scripts/fetch_stored.py"
