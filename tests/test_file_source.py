"""The `file` source: saved responses in every form, through the whole workflow."""

from __future__ import annotations

import base64
import datetime as dt
import json
import struct
from pathlib import Path

import pyarrow.parquet as pq
from conftest import copy_workflow, snakemake

EPOCH = dt.datetime(2008, 1, 1)


def secs(wall: str) -> int:
    return int((dt.datetime.fromisoformat(wall) - EPOCH).total_seconds())


def record(event_id: int, wall: str, seq: int, payload: bytes) -> bytes:
    assert len(payload) == 16
    return struct.pack(">HII", event_id, secs(wall), seq) + payload


def history() -> bytes:
    """A small hand-made history: two G7 readings (one backfilled), basal, one bolus."""
    return b"".join(
        [
            # 399 G7: rate -12 (-1.2 mg/dL/min), FMR, status 0, 154 mg/dL, measured 10:00:00
            record(
                399,
                "2025-01-15 10:00:04",
                500,
                struct.pack(">bBHHbBIxBH", -12, 1, 0, 154, -70, 32, secs("2025-01-15 10:00:00"), 5, 0b1100001),
            ),
            # 399 G7 backfill measured 08:55 logged 10:00:05, status 1 (high)
            record(
                399,
                "2025-01-15 10:00:05",
                501,
                struct.pack(">bBHHbBIxBH", 3, 2, 1, 400, -70, 32, secs("2025-01-15 08:55:00"), 5, 0b11),
            ),
            # 279 basal: source 3 (algorithm), profile 850, commanded 1125, temp 0, algorithm 1125 mU/h
            record(279, "2025-01-15 10:00:02", 502, struct.pack(">HHHHHH4x", 0, 3, 850, 1125, 0, 1125)),
            # 64 request: correction included, carb bolus, id 77, BG 182, 48 g, IOB 1.5, ratio 12.000
            record(64, "2025-01-15 12:00:00", 503, struct.pack(">BBHHHfI", 1, 1, 77, 182, 48, 1.5, 12000)),
            # 65: 100 %, standard, id 77, 0 min, target 110, ISF 40
            record(65, "2025-01-15 12:00:00", 504, struct.pack(">BBH2xHHHxBBB", 100, 0, 77, 0, 110, 40, 1, 0, 0)),
            # 66: id 77, food 4.0, correction 0.3 (as float32), total 4.3
            record(66, "2025-01-15 12:00:00", 505, struct.pack(">2xHfff", 77, 4.0, 0.3, 4.3)),
            # 280 completed: now|carb, id 77, 4300 mU requested, source pump GUI, delivered 4300 mU
            record(
                280, "2025-01-15 12:02:00", 506, struct.pack(">BBHHBBHHHH", 0b10001, 0, 77, 4300, 0, 1, 300, 0, 4300, 0)
            ),
            # 20 completed: id 77, status 3, IOB 5.8, delivered 4.3, requested 4.3
            record(20, "2025-01-15 12:02:01", 507, struct.pack(">HHfff", 77, 3, 5.8, 4.3, 4.3)),
        ]
    )


def pumplogs_list() -> list[dict]:
    """One more G7 reading, as the pump-logs API sends it, for a bare JSON list file."""
    return [
        {
            "deviceAssignmentId": "a",
            "eventCode": 399,
            "sequenceGroup": 9,
            "sequenceNumber": 600,
            "pumpDateTime": "2025-01-16T07:30:05",
            "estimatedDateTime": "2025-01-16T07:30:05Z",
            "eventProperties": {
                "rate": 5,
                "cgmDataType": [0],
                "glucoseValueStatus": 2,
                "currentGlucoseDisplayValue": 40,
                "egvTimeStamp": secs("2025-01-16 07:30:00"),
                "unexpectedKey": "kept in properties",
            },
        }
    ]


def test_every_saved_form_through_the_workflow(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    saved = tmp_path / "saved"
    saved.mkdir()
    buf = history()
    (saved / "records.bin").write_bytes(buf + b"\x00\x01\x02")  # 3 trailing bytes
    (saved / "body.json").write_text(json.dumps(base64.b64encode(buf).decode()))
    (saved / "plain.txt").write_text(base64.b64encode(buf).decode())
    (saved / "list.json").write_text(json.dumps(pumplogs_list()))
    files = ",".join(str(p) for p in sorted(saved.iterdir()))
    proc = snakemake(
        workdir,
        "-c2",
        "all",
        "--config",
        "source=file",
        f"files=[{files}]",
        "timezone=Europe/Berlin",
        "file_pump_serial=12345678",
    )
    assert "3 trailing byte(s)" in proc.stderr
    raw = list((workdir / "data" / "raw" / "files").glob("*.raw"))
    assert sorted(p.read_bytes() for p in raw) == sorted(p.read_bytes() for p in saved.iterdir())  # copied unchanged

    events = pq.read_table(workdir / "exports" / "raw_events.parquet").to_pylist()
    assert len(events) == 8 + 1  # the three copies of the records collapse on their identity
    assert {e["origin"] for e in events} == {"legacy-binary", "pump-logs"}
    assert {e["pump_serial"] for e in events} == {"12345678"}
    listed = next(e for e in events if e["origin"] == "pump-logs")
    assert json.loads(listed["properties"])["unexpectedKey"] == "kept in properties"

    cgm = pq.read_table(workdir / "exports" / "cgm_readings.parquet").to_pylist()
    assert [
        (r["pump_time"], r["glucose_mg_dl"], r["glucose_status"], r["trend_mg_dl_per_min"], r["backfill"]) for r in cgm
    ] == [
        (dt.datetime(2025, 1, 15, 8, 55), 401, "high", 0.3, True),
        (dt.datetime(2025, 1, 15, 10, 0), 154, "ok", -1.2, False),
        (dt.datetime(2025, 1, 16, 7, 30), 39, "low", 0.5, False),
    ]
    # Berlin is UTC+1 in January.
    assert cgm[1]["timestamp"] == dt.datetime(2025, 1, 15, 9, 0, tzinfo=dt.UTC)

    basal = pq.read_table(workdir / "exports" / "basal_deliveries.parquet").to_pylist()
    assert len(basal) == 1
    b = basal[0]
    assert (
        b["commanded_rate_units_per_hour"],
        b["profile_rate_units_per_hour"],
        b["algorithm_rate_units_per_hour"],
    ) == (1.125, 0.85, 1.125)
    assert b["rate_source"] == "algorithm"

    bolus = pq.read_table(workdir / "exports" / "bolus_deliveries.parquet").to_pylist()
    assert len(bolus) == 1
    r = bolus[0]
    assert r["bolus_id"] == 77 and r["carbs_g"] == 48 and r["bg_mg_dl"] == 182 and r["iob_units"] == 1.5
    assert (r["requested_units"], r["delivered_units"], r["food_units"], r["correction_units"]) == (4.3, 4.3, 4.0, 0.3)
    assert r["completion_status"] == "completed" and r["bolus_type"] == "standard" and r["bolus_source"] == "pump_gui"
    assert r["requested_at"] == dt.datetime(2025, 1, 15, 11, 0, tzinfo=dt.UTC)
    assert r["completed_at"] == dt.datetime(2025, 1, 15, 11, 2, 1, tzinfo=dt.UTC)


def test_unknown_content_is_refused_naming_the_file(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    page = tmp_path / "saved.html"
    page.write_text("<html><body>502 Bad Gateway</body></html>")
    proc = snakemake(workdir, "-c1", "all", "--config", "source=file", f"files=[{page}]", "timezone=UTC", check=False)
    assert proc.returncode != 0
    assert "HTML page" in proc.stderr and "saved" in proc.stderr
    assert not (workdir / "exports").exists() or not any((workdir / "exports").iterdir())


def test_empty_history_gives_every_table_with_zero_rows(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"events": [], "clockChanges": []}))
    snakemake(workdir, "-c1", "all", "--config", "source=file", f"files=[{empty}]", "timezone=UTC")
    for table, column in (
        ("cgm_readings", "glucose_mg_dl"),
        ("bolus_deliveries", "delivered_units"),
        ("events", "data"),
    ):
        t = pq.read_table(workdir / "exports" / f"{table}.parquet")
        assert t.num_rows == 0 and column in t.column_names
        header = (workdir / "exports" / f"{table}.csv").read_text().splitlines()[0]
        assert column in header


def read(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def test_the_same_content_listed_with_two_pump_serials_is_refused(tmp_path, monkeypatch):
    import hashlib

    import pytest
    from tandem_export import config

    saved = tmp_path / "saved.json"
    saved.write_text('{"events": []}')
    monkeypatch.chdir(tmp_path)
    twice = {"files": [{"path": str(saved), "pump_serial": "111"}, {"path": "saved.json", "pump_serial": "222"}]}
    with pytest.raises(config.ConfigError, match="'saved.json' is listed twice, with pump serials '111' and '222'"):
        config._file_entries(twice, str(tmp_path))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "saved.json").write_bytes(saved.read_bytes())  # a copy with the same name
    copies = {"files": [{"path": "saved.json", "pump_serial": "111"}, {"path": "b/saved.json", "pump_serial": "222"}]}
    with pytest.raises(config.ConfigError, match="'b/saved.json' holds the same content as 'saved.json', with pump"):
        config._file_entries(copies, str(tmp_path))
    same = {"files": [str(saved), str(saved)], "file_pump_serial": "111"}
    (entry,) = config._file_entries(same, str(tmp_path)).values()
    assert entry.window == f"saved-{hashlib.sha256(saved.read_bytes()).hexdigest()[:12]}"


def test_a_file_that_changed_after_the_run_began_is_not_stored_under_the_old_name(tmp_path):
    import hashlib
    import logging

    import pytest
    from tandem_export import source
    from tandem_export.errors import InputError

    log = logging.getLogger("test")
    origin = tmp_path / "saved.json"
    origin.write_text('{"events": [1]}')
    named = hashlib.sha256(b'{"events": [0]}').hexdigest()[:12]  # the content when the run began
    target = tmp_path / "raw" / f"saved-{named}.raw"
    with pytest.raises(InputError, match="changed after this run began"):
        source.import_file(str(origin), str(target), log)
    assert not target.exists() and not source.checksum_path(target).exists()
    assert [p for p in target.parent.iterdir()] == []  # no temporary file left either
    # The content the name says is imported; a copy whose bytes and checksum disagree with its
    # name (written by an older version) is replaced.
    origin.write_text('{"events": [0]}')
    target.write_text('{"events": [9]}')
    source.write_checksum(target)
    assert source.import_file(str(origin), str(target), log) is True
    assert target.read_text() == '{"events": [0]}'
    assert source.checksum_path(target).read_text().split()[0] == hashlib.sha256(b'{"events": [0]}').hexdigest()
    assert source.import_file(str(origin), str(target), log) is False


def test_a_long_saved_file_name_gets_a_raw_store_name_the_file_system_takes(tmp_path, monkeypatch):
    import hashlib
    import re

    from tandem_export import config

    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "saved").mkdir()
    saved = workdir / "saved" / ("a" * 239 + ".json")  # 244 characters: a valid name
    saved.write_bytes(history())
    digest = hashlib.sha256(saved.read_bytes()).hexdigest()[:12]
    monkeypatch.chdir(workdir)
    (entry,) = config._file_entries({"files": [f"saved/{saved.name}"]}, str(workdir)).values()
    assert entry.window == "a" * 100 + f"-{digest}"
    # A cut that ends in a separator drops it; the hash suffix stays.
    dashed = workdir / "saved" / ("b" * 99 + "-" + "c" * 140 + ".json")
    dashed.write_bytes(b'{"events": []}')
    (other,) = config._file_entries({"files": [f"saved/{dashed.name}"]}, str(workdir)).values()
    assert re.fullmatch("b" * 99 + "-[0-9a-f]{12}", other.window), other.window
    # A name starting with '_' (or '-') gets a raw-store name starting with a letter or digit.
    under = workdir / "saved" / "__saved.json"
    under.write_bytes(b'{"events": [1]}')
    (third,) = config._file_entries({"files": [f"saved/{under.name}"]}, str(workdir)).values()
    assert re.fullmatch("saved-[0-9a-f]{12}", third.window), third.window
    monkeypatch.undo()
    proc = snakemake(
        workdir,
        "-c1",
        "exports/cgm_readings.csv",
        "--config",
        "source=file",
        f"files=[saved/{saved.name}]",
        "file_pump_serial=12345678",
        "timezone=UTC",
    )
    assert (workdir / "data" / "raw" / "files" / f"{entry.window}.raw").read_bytes() == saved.read_bytes()
    assert len((workdir / "exports" / "cgm_readings.csv").read_text().splitlines()) == 3  # header, two readings
    assert "free space" not in proc.stderr


def test_the_same_content_under_other_names_and_serials_is_refused_naming_both_paths(tmp_path, monkeypatch):
    import pytest
    from tandem_export import config

    monkeypatch.chdir(tmp_path)
    for name in ("a.raw", "b.raw", "c.raw", "d.raw"):  # four copies: once silently four pumps
        (tmp_path / name).write_bytes(history())
    four = {
        "files": [
            {"path": n, "pump_serial": s} for n, s in zip(["a.raw", "b.raw", "c.raw", "d.raw"], "1234", strict=True)
        ]
    }
    with pytest.raises(config.ConfigError) as caught:
        config._file_entries(four, str(tmp_path))
    assert str(caught.value) == (
        "files: 'b.raw' holds the same content as 'a.raw', with pump serials '1' and '2'; a saved file is one "
        "pump's history: list it once, with its pump's serial"
    )
    (tmp_path / "sub").mkdir()
    twice = {"files": [{"path": "a.raw", "pump_serial": "1"}, {"path": "sub/../a.raw", "pump_serial": "2"}]}
    with pytest.raises(config.ConfigError) as caught:
        config._file_entries(twice, str(tmp_path))
    assert str(caught.value) == (
        "files: 'sub/../a.raw' is listed twice, with pump serials '1' and '2' (first as 'a.raw'); a saved file is "
        "one pump's history: list it once, with its pump's serial"
    )


def test_the_same_content_listed_again_with_its_serial_is_read_once_with_one_warning(tmp_path, monkeypatch):
    from tandem_export import config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.raw").write_bytes(history())
    (tmp_path / "copy.raw").write_bytes(history())
    (tmp_path / "other.raw").write_bytes(history()[:26])
    warnings: list[str] = []
    listed = {"files": ["a.raw", "other.raw", "./a.raw", str(tmp_path / "sub/../a.raw"), "copy.raw"]}
    entries = config._file_entries(listed, str(tmp_path), warnings)
    assert [e.origin for e in entries.values()] == [str(tmp_path / "a.raw"), str(tmp_path / "other.raw")]
    assert warnings == [
        f"files: 'a.raw', './a.raw', '{tmp_path}/sub/../a.raw' and 'copy.raw' hold the same content (listed 4 times); "
        "read once"
    ]
    # At parse time: one line, and the run plans one copy.
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "saved.raw").write_bytes(history())
    proc = snakemake(
        workdir,
        "-n",
        "all",
        "--config",
        "source=file",
        "files=[saved.raw,./saved.raw]",
        "timezone=UTC",
        "file_pump_serial=12345678",
    )
    warned = [line for line in proc.stderr.splitlines() if line.startswith("Warning:")]
    assert warned == ["Warning: files: 'saved.raw' and './saved.raw' hold the same content (listed twice); read once"]
