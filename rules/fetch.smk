# Fetch from Tandem Source (source: tandem): a checkpoint, because the windows to decode are known
# only once the pump list has been read. Raw windows are written beside, never as declared
# outputs, so Snakemake never deletes fetched data, even when a fetch fails.


checkpoint fetch:
    output:
        "data/fetch/manifest.json",
    log:
        "logs/fetch/tandem.log",
    conda:
        "../envs/tandem.yaml"
    resources:
        tandem_api=1,
    params:
        # Changes on every invocation while the range is open, so each run asks for new data.
        check=SETTINGS.fetch_check,
        pump_serial=SETTINGS.pump_serial,
        start=SETTINGS.start,
        end=SETTINGS.end,
        region=SETTINGS.region,
        api=SETTINGS.tandem_api,
        refetch_days=SETTINGS.fetch["refetch_days"],
        retries=SETTINGS.fetch["retries"],
        backoff_seconds=SETTINGS.fetch["backoff_seconds"],
        timeout_seconds=SETTINGS.fetch["timeout_seconds"],
        token_cache=SETTINGS.fetch["token_cache"],
    script:
        "../scripts/fetch_tandem.py"
