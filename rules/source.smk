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


rule import_file:
    input:
        lambda wc: RAW[("files", wc.window)].origin,
    output:
        "data/raw/files/{window}.raw",
    log:
        "logs/source/files/{window}.log",
    conda:
        "../envs/tandem.yaml"
    script:
        "../scripts/import_file.py"
