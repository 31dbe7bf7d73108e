"""Bad configuration stops the run before any job, with one line naming the key and the fix."""

from __future__ import annotations

import pytest
from conftest import copy_workflow, snakemake


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("cfg") / "wf")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["source=web"], "source: 'web' is not a source; use one of auto, tandem, demo, file"),
        (["start=2025-13-01"], "start: '2025-13-01' is not a date; write YYYY-MM-DD"),
        (["end=31.01.2025"], "end: '31.01.2025' is not a date"),
        (["start=2025-05-01", "end=2025-04-01"], "end: 2025-04-01 is before start 2025-05-01"),
        (["timezone=Mars/Olympus"], "timezone: 'Mars/Olympus' is not a known IANA time zone"),
        (["source=file"], "files: the list is empty but source is 'file'"),
        (["source=file", "files=[no/such/file.json]"], "files: 'no/such/file.json' does not exist"),
        (["unknown_key=1"], "Additional properties are not allowed ('unknown_key' was unexpected)"),
    ],
)
def test_bad_config_stops_before_any_job(workdir, args, expected):
    proc = snakemake(workdir, "-c1", "all", "--config", *args, check=False)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("Configuration error:")]
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert not (workdir / "data").exists()


@pytest.mark.parametrize(
    "target",
    ["exports/cgm.parquet", "exports/cgm_readings.xlsx", "exports/cgm_readings_2025-01-01.csv"],
)
def test_unknown_target_lists_tables_and_formats(workdir, target):
    proc = snakemake(workdir, "-c1", target, check=False)
    assert proc.returncode != 0
    assert "not an export this workflow builds" in proc.stderr
    assert "cgm_readings" in proc.stderr and "basal_deliveries" in proc.stderr and "parquet, csv" in proc.stderr
    assert not (workdir / "data").exists()


def test_range_in_a_target_name_is_checked(workdir):
    proc = snakemake(workdir, "-c1", "exports/cgm_readings_2025-05-01_2025-04-01.csv", check=False)
    assert proc.returncode != 0
    assert "end: 2025-04-01 is before start 2025-05-01" in proc.stderr
    proc = snakemake(workdir, "-c1", "exports/cgm_readings_2025-02-30_2025-03-01.csv", check=False)
    assert proc.returncode != 0 and "is not a date" in proc.stderr
