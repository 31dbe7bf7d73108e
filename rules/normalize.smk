# One job per account: detect each raw window's form and decode every event into one typed table
# per window. A window's table is named by the hash of its raw content and the decoder, so an
# unchanged window is decoded once and reused; the job writes the list of current tables.


rule normalize:
    input:
        normalize_inputs,
    output:
        "data/{acct}normalized/index.json",
    log:
        "logs/{acct}normalize.log",
    conda:
        "../envs/tandem.yaml"
    threads: 2
    params:
        source=lambda wc: account(wc).source,
        windows=raw_windows,
        out_root=lambda wc: f"data/{wc.acct}normalized",
        raw_root=lambda wc: f"data/{wc.acct}raw",
        # A new version of the package's code runs this job and the ones after it.
        code=cfg.code_version(),
    script:
        "../scripts/normalize_account.py"
