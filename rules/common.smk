# Shared helpers: configuration checks, the raw-store plan, wildcard constraints, target lists.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from tandem_export import config as cfg  # noqa: E402

SETTINGS = cfg.check_or_exit(config, workflow.basedir)
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
    """The raw-store file of one (store, window)."""
    return RAW[(wildcards.store, wildcards.window)].path


def normalized_files():
    """Every normalised window, in a fixed order."""
    return [
        f"data/normalized/{store}/{window}.parquet" for store, window in sorted(RAW)
    ]


def all_exports():
    """exports/{table}.{fmt} for every table and format (rule all)."""
    return expand("exports/{table}.{fmt}", table=TABLES, fmt=FORMATS)
