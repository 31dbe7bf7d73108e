"""Input that is not pump history is refused by name; odd but real input is read correctly."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
import struct

import pyarrow.parquet as pq
import pytest
from conftest import copy_workflow, snakemake
from tandem_export.errors import InputError
from tandem_export.normalize import normalize_file

EPOCH = dt.datetime(2008, 1, 1)


def secs(wall: str) -> int:
    return int((dt.datetime.fromisoformat(wall) - EPOCH).total_seconds())


def basal_record(seq: int, wall: str, commanded_mu: int) -> bytes:
    """A 279 basal record: source 1 (profile), profile = commanded milliunits/hour."""
    return struct.pack(">HII", 279, secs(wall), seq) + struct.pack(">HHHHHH4x", 0, 1, commanded_mu, commanded_mu, 0, 0)


def basal_event(seq: int, wall: str, commanded_mu: int) -> dict:
    return {
        "deviceAssignmentId": "x",
        "eventCode": 279,
        "sequenceGroup": 3,
        "sequenceNumber": seq,
        "pumpDateTime": wall.replace(" ", "T"),
        "estimatedDateTime": wall.replace(" ", "T") + "Z",
        "eventProperties": {"commandedRateSource": 1, "profileBasalRate": commanded_mu, "commandedRate": commanded_mu},
    }


@pytest.mark.fast
@pytest.mark.parametrize(
    "content",
    [
        pytest.param(random.Random(7).randbytes(26 * 40), id="random-bytes"),
        pytest.param(
            gzip.compress(json.dumps({"events": [basal_event(1, "2025-01-01 00:00:00", 800)]}).encode() * 20, mtime=0),
            id="gzip",
        ),
        pytest.param(b"%PDF-1.7\n" + random.Random(8).randbytes(600), id="pdf"),
        pytest.param(b"0123456789abcdef" * 8, id="hex-text"),
    ],
)
def test_content_that_is_not_pump_history_is_refused(tmp_path, content):
    path = tmp_path / "saved.dat"
    path.write_bytes(content)
    with pytest.raises(InputError, match="saved.dat") as err:
        normalize_file(path, "12345678", tmp_path / "out.parquet")
    assert "pump" in str(err.value)
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.fast
def test_events_without_identity_are_left_out_and_counted(tmp_path):
    good = [basal_event(10, "2025-01-01 00:00:00", 800), basal_event(11, "2025-01-01 00:05:00", 850)]
    bad = [{"foo": 1}, {**basal_event(12, "2025-01-01 00:10:00", 900), "pumpDateTime": "not a time"}]
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps({"events": good + bad, "clockChanges": []}))
    stats = normalize_file(path, "12345678", tmp_path / "out.parquet")
    assert stats.events == 2 and stats.dropped_without_identity == 2
    assert any(
        "2 event(s) were left out (1 with a pumpDateTime that is not a date and time" in w
        for w in stats.warnings("mixed.json")
    )
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [(r["seq_num"], r["commanded_rate_units_per_hour"]) for r in rows] == [(10, 0.8), (11, 0.85)]

    only_bad = tmp_path / "bad.json"
    only_bad.write_text(json.dumps({"events": bad}))
    with pytest.raises(InputError, match="bad.json: none of its 2 events"):
        normalize_file(only_bad, "12345678", tmp_path / "out2.parquet")


@pytest.mark.fast
def test_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"events": [basal_event(5, "2025-02-01 08:00:00", 1000)]}).encode())
    stats = normalize_file(path, "12345678", tmp_path / "out.parquet")
    assert stats.events == 1
    assert pq.read_table(tmp_path / "out.parquet").to_pylist()[0]["commanded_rate_units_per_hour"] == 1.0


def test_workflow_dedups_across_forms_keeps_raw_copies_and_names_the_users_file(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    saved = tmp_path / "saved"
    saved.mkdir()
    walls = ["2025-03-01 10:00:00", "2025-03-01 10:05:00", "2025-03-01 10:10:00"]
    (saved / "same.json").write_text(
        json.dumps({"events": [basal_event(100 + i, w, 700) for i, w in enumerate(walls)]})
    )
    (saved / "same.bin").write_bytes(b"".join(basal_record(100 + i, w, 700) for i, w in enumerate(walls)))
    files = f"files=[{saved / 'same.json'},{saved / 'same.bin'}]"
    snakemake(workdir, "-c1", "all", "--config", "source=file", files, "file_pump_serial=90512345", "timezone=UTC")
    basal = pq.read_table(workdir / "exports" / "basal_deliveries.parquet").to_pylist()
    assert [r["seq_num"] for r in basal] == [100, 101, 102]  # once each, not twice
    events = pq.read_table(workdir / "exports" / "raw_events.parquet").to_pylist()
    assert {e["origin"] for e in events} == {"pump-logs"}

    raw_before = {p.name: p.read_bytes() for p in (workdir / "data" / "raw" / "files").iterdir()}
    (saved / "same.json").write_text("<html><body>Service Unavailable</body></html>")
    proc = snakemake(
        workdir,
        "-c1",
        "all",
        "--config",
        "source=file",
        files,
        "file_pump_serial=90512345",
        "timezone=UTC",
        check=False,
    )
    assert proc.returncode != 0
    assert f"{saved / 'same.json'}: this is an HTML page" in proc.stderr  # the user's file, not the raw copy
    raw_after = {p.name: p.read_bytes() for p in (workdir / "data" / "raw" / "files").iterdir()}
    assert all(raw_after[name] == data for name, data in raw_before.items())  # nothing imported earlier is lost


def test_serials_and_single_file_paths(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    saved = tmp_path / "one.json"
    saved.write_text(json.dumps({"events": [basal_event(1, "2025-03-01 10:00:00", 700)]}))
    proc = snakemake(
        workdir, "-c1", "all", "--config", "source=file", f"files={saved}", "file_pump_serial=00123456", check=False
    )
    assert proc.returncode != 0
    assert "file_pump_serial: 123456 was read as a number" in proc.stderr and "'00123456'" in proc.stderr
    (workdir / "mine.yaml").write_text(f"source: file\nfiles: [{saved}]\nfile_pump_serial: '00123456'\ntimezone: UTC\n")
    snakemake(workdir, "-c1", "all", "--configfile", "mine.yaml")
    rows = pq.read_table(workdir / "exports" / "basal_deliveries.parquet").to_pylist()
    assert [r["pump_serial"] for r in rows] == ["00123456"]


def test_empty_range_export_warns(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    proc = snakemake(workdir, "-c1", "exports/cgm_readings_2020-01-01_2020-01-31.csv")
    assert "no rows for 2020-01-01 to 2020-01-31" in proc.stderr
    assert (workdir / "exports" / "cgm_readings_2020-01-01_2020-01-31.csv").read_text().startswith("timestamp,")
