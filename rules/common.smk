# Shared helpers: configuration checks, the raw-store plan, wildcard constraints, target lists.
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from tandem_export import config as cfg  # noqa: E402

SETTINGS = cfg.check_or_exit(config, workflow.basedir)
if SETTINGS.notice:
    print(f"Notice: {SETTINGS.notice}", file=sys.stderr)
cfg.validate_or_exit(config, Path(workflow.basedir) / "schemas" / "config.schema.yaml")
TABLES = cfg.TABLES
FORMATS = cfg.FORMATS
RAW = SETTINGS.raw_files  # {(store, window): RawFile}


wildcard_constraints:
    store=r"[A-Za-z0-9][A-Za-z0-9-]*",
    window=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    table="|".join(TABLES),
    derived="|".join(cfg.DERIVED_TABLES),
    fmt="|".join(FORMATS),
    start=r"\d{4}-\d{2}-\d{2}",
    end=r"\d{4}-\d{2}-\d{2}",


def raw_path(wildcards):
    """The raw-store file of one (store, window); fetched windows are JSON."""
    key = (wildcards.store, wildcards.window)
    return RAW[key].path if key in RAW else f"data/raw/{key[0]}/{key[1]}.json"


def pump_serial_of(wildcards):
    """The serial for the events of one raw window (a fetched window's store is its serial)."""
    key = (wildcards.store, wildcards.window)
    return RAW[key].pump_serial if key in RAW else wildcards.store


def label_of(wildcards):
    """How messages name a raw window: the user's own file for the file source."""
    key = (wildcards.store, wildcards.window)
    return RAW[key].origin if key in RAW and RAW[key].origin else raw_path(wildcards)


def normalized_files(wildcards):
    """Every normalised window, in a fixed order; for tandem, those the fetch listed."""
    if SETTINGS.source == "tandem":
        manifest = json.loads(Path(checkpoints.fetch.get().output[0]).read_text())
        keys = [(p["serial"], w) for p in manifest["pumps"] for w in p["windows"]]
    else:
        keys = sorted(RAW)
    return [f"data/normalized/{store}/{window}.parquet" for store, window in keys]


def all_exports():
    """exports/{table}.{fmt} for every table and format, and the DuckDB database (rule all)."""
    tables = expand("exports/{table}.{fmt}", table=TABLES, fmt=FORMATS)
    return tables + [f"exports/{cfg.DATABASE}"]
