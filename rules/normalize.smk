# One job per raw window: detect its form, decode every event, write one typed table.


rule normalize:
    input:
        raw_path,
    output:
        "data/normalized/{store}/{window}.parquet",
    log:
        "logs/normalize/{store}/{window}.log",
    conda:
        "../envs/tandem.yaml"
    params:
        pump_serial=pump_serial_of,
        label=label_of,
    script:
        "../scripts/normalize_window.py"
