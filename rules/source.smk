# The source step: copy what the source gives, unchanged, into the raw store (data/raw/).


rule demo_source:
    output:
        [RAW[key].path for key in sorted(RAW) if RAW[key].kind == "demo"],
    log:
        "logs/source/demo.log",
    conda:
        "../envs/tandem.yaml"
    params:
        seed=SETTINGS.demo_seed,
        end_date=SETTINGS.demo_end,
        days=SETTINGS.demo_days,
        windows=[RAW[key].window for key in sorted(RAW) if RAW[key].kind == "demo"],
    script:
        "../scripts/demo_source.py"


rule import_files:
    # One job for every saved file: each is copied once, under a name holding its content's hash,
    # beside the declared output (so Snakemake never deletes a copy); later runs copy only new files.
    input:
        [RAW[key].origin for key in sorted(RAW) if RAW[key].kind == "file"],
    output:
        "data/imported/files.json",
    log:
        "logs/source/files.log",
    conda:
        "../envs/tandem.yaml"
    params:
        copies=[
            (RAW[key].origin, RAW[key].path)
            for key in sorted(RAW)
            if RAW[key].kind == "file"
        ],
    script:
        "../scripts/import_files.py"
