"""Reliability and security: bad input, faults and interruptions never lose data or leak secrets."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import random
import re
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import hypothesis.strategies as st
import pyarrow.parquet as pq
import pytest
from conftest import PROJECT, copy_workflow, snakemake
from hypothesis import HealthCheck, given, settings
from tandem_export.errors import InputError
from tandem_export.normalize import normalize_file

EPOCH = dt.datetime(2008, 1, 1)


def basal(seq: int, wall: str, rate_mu: int = 800, group: int = 1) -> dict:
    return {
        "eventCode": 279,
        "sequenceGroup": group,
        "sequenceNumber": seq,
        "pumpDateTime": wall,
        "eventProperties": {"commandedRateSource": 1, "profileBasalRate": rate_mu, "commandedRate": rate_mu},
    }


# --- decoders never crash: they decode or report ------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=26 * 12))
def test_arbitrary_bytes_decode_or_are_reported(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("b")
    raw = tmp / "saved.bin"
    raw.write_bytes(data)
    try:
        stats = normalize_file(raw, "12345678", tmp / "out.parquet")
    except InputError as exc:
        assert "saved.bin" in str(exc)
        assert not (tmp / "out.parquet").exists()
        return
    assert stats.events == pq.read_metadata(tmp / "out.parquet").num_rows


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
events = st.fixed_dictionaries(
    {},
    optional={
        "eventCode": st.sampled_from([279, 399, 64, 20, 13, 14, 9999]) | json_values,
        "sequenceGroup": st.integers(0, 5) | json_values,
        "sequenceNumber": st.integers(0, 10**9) | json_values,
        "pumpDateTime": st.sampled_from(["2025-01-01T10:00:00", "1999-01-01T00:00:00", "x"]) | json_values,
        "eventProperties": st.dictionaries(
            st.sampled_from(["commandedRate", "rate", "cgmDataType", "bolusId", "egvTimeStamp", "other"]), json_values
        )
        | json_values,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.fixed_dictionaries({"events": st.lists(events, max_size=6)}), st.lists(events, max_size=6), json_values
    )
)
def test_arbitrary_json_decodes_or_is_reported(tmp_path_factory, body):
    tmp = tmp_path_factory.mktemp("j")
    raw = tmp / "saved.json"
    raw.write_text(json.dumps(body))
    try:
        stats = normalize_file(raw, "12345678", tmp / "out.parquet")
    except InputError as exc:
        assert "saved.json" in str(exc)
        assert not (tmp / "out.parquet").exists()
        return
    # Decoded: every event is kept or left out and counted, and each kept row has its identity.
    # (JSON that is neither an object nor a list reads as base64 text: no whole record, no event.)
    listed = body["events"] if isinstance(body, dict) else body if isinstance(body, list) else []
    rows = pq.read_table(tmp / "out.parquet").to_pylist()
    assert len(rows) == stats.events and stats.events + stats.dropped_without_identity == len(listed)
    assert all(r["seq_num"] is not None and r["event_id"] is not None and r["pump_time"] is not None for r in rows)


def test_wrongly_typed_and_missing_properties_are_null_and_counted(tmp_path):
    good = basal(1, "2025-01-01T10:00:00")
    wrong = basal(2, "2025-01-01T10:05:00")
    wrong["eventProperties"] = {"commandedRateSource": "profile?", "profileBasalRate": [1, 2], "commandedRate": 900}
    missing = basal(3, "2025-01-01T10:10:00")
    missing["eventProperties"] = {"commandedRate": 700, "extraKey": 5}
    raw = tmp_path / "typed.json"
    raw.write_text(json.dumps({"events": [good, wrong, missing]}))
    stats = normalize_file(raw, "12345678", tmp_path / "out.parquet")
    rows = {r["seq_num"]: r for r in pq.read_table(tmp_path / "out.parquet").to_pylist()}
    assert rows[2]["commanded_rate_units_per_hour"] == 0.9 and rows[2]["commanded_rate_source"] is None
    assert rows[2]["profile_rate_units_per_hour"] is None
    assert rows[3]["commanded_rate_units_per_hour"] == 0.7 and rows[3]["profile_rate_units_per_hour"] is None
    assert stats.type_errors == 2
    assert any("2 value(s) of the wrong type" in w for w in stats.warnings("typed.json"))


def test_times_before_2008_and_far_future_are_reported(tmp_path):
    raw = tmp_path / "times.json"
    events = [basal(i, "2025-01-01T10:00:00") for i in range(1, 5)]
    events.append(basal(5, "2001-01-01T10:00:00"))
    events.append(basal(6, "2099-01-01T10:00:00"))
    raw.write_text(json.dumps({"events": events}))
    stats = normalize_file(raw, "12345678", tmp_path / "out.parquet")
    warnings = "\n".join(stats.warnings("times.json"))
    assert "1 event(s) carry a pump time before 2008" in warnings
    assert "1 event(s) carry a pump time more than a year in the future" in warnings


def test_all_zero_records_are_reported_not_silently_used(tmp_path):
    raw = tmp_path / "zeros.bin"
    raw.write_bytes(bytes(26 * 10))
    with pytest.raises(InputError, match="zeros.bin: does not look like pump history"):
        normalize_file(raw, "12345678", tmp_path / "out.parquet")


def _records(count: int, event_id: int, when: str, first_seq: int) -> bytes:
    """``count`` 26-byte records (big-endian header: uint16 id, uint32 seconds since 2008-01-01,
    uint32 sequence number; a zero payload)."""
    seconds = int((dt.datetime.fromisoformat(when) - dt.datetime(2008, 1, 1)).total_seconds())
    return b"".join(struct.pack(">HII", event_id, seconds, first_seq + i) + bytes(16) for i in range(count))


@pytest.mark.parametrize(("bad", "refused"), [(30, False), (50, False), (51, True)])
def test_records_that_are_unknown_and_in_the_future_count_once_against_the_file(tmp_path, bad, refused):
    """A records file is refused as "not pump history" when more than half its records have an
    unknown id or a time over a year ahead; a record with both is one bad record, not two."""
    raw = tmp_path / "mixed.bin"
    # 279 is a basal delivery; 4000 is no record type; 2100 is far in the future.
    raw.write_bytes(
        _records(100 - bad, 279, "2025-01-01T10:00:00", 1) + _records(bad, 4000, "2100-01-01T00:00:00", 1000)
    )
    if refused:
        with pytest.raises(InputError, match=rf"mixed.bin: does not look like pump history records \({bad} of 100 "):
            normalize_file(raw, "12345678", tmp_path / "out.parquet")
        return
    stats = normalize_file(raw, "12345678", tmp_path / "out.parquet")
    assert (stats.events, stats.future_times, stats.unknown_ids) == (100, bad, {4000: bad})
    assert pq.read_table(tmp_path / "out.parquet").num_rows == 100


def test_random_bytes_are_refused_with_a_count_no_larger_than_the_file(tmp_path):
    raw = tmp_path / "noise.bin"
    raw.write_bytes(random.Random(11).randbytes(26 * 100))
    with pytest.raises(InputError, match="noise.bin: does not look like pump history") as caught:
        normalize_file(raw, "12345678", tmp_path / "out.parquet")
    bad, total = map(int, re.search(r"\((\d+) of (\d+) have", str(caught.value)).groups())
    assert total == 100 and 50 < bad <= 100


# --- the workflow under faults ------------------------------------------------------------------


def _file_workflow(tmp_path, events: list[dict], name: str = "saved.json") -> tuple[Path, list[str]]:
    workdir = copy_workflow(tmp_path / "wf")
    saved = tmp_path / name
    saved.write_text(json.dumps({"events": events}))
    return workdir, ["--config", "source=file", f"files=[{saved}]", "file_pump_serial=12345678", "timezone=UTC"]


@pytest.mark.parametrize("order", ["ab", "ba"])
def test_repeated_sequence_numbers_keep_the_first_listed_and_report(tmp_path, order):
    # b.json comes first in the raw store's name order; the files are listed a, b or b, a: the
    # event seq 2 (800 mU/h in a.json, 1500 in b.json) is kept from the file listed first.
    workdir = copy_workflow(tmp_path / "wf")
    saved = {
        "a": tmp_path / "z-a.json",
        "b": tmp_path / "b.json",
    }
    saved["a"].write_text(
        json.dumps({"events": [basal(1, "2025-01-01T10:00:00", 800), basal(2, "2025-01-01T10:05:00", 800)]})
    )
    saved["b"].write_text(
        json.dumps({"events": [basal(2, "2025-01-01T10:05:00", 1500), basal(3, "2025-01-01T10:10:00", 800)]})
    )
    files = "files=[" + ",".join(str(saved[k]) for k in order) + "]"
    proc = snakemake(
        workdir, "-c1", "all", "--config", "source=file", files, "file_pump_serial=12345678", "timezone=UTC"
    )
    first, other = ("z-a", "b") if order == "ab" else ("b", "z-a")
    assert "1 event identities appear with different contents in different windows; the window listed first" in (
        proc.stderr
    )
    assert f"1 of {first}-" in proc.stderr and f"kept over {other}-" in proc.stderr
    rows = pq.read_table(workdir / "exports" / "basal_deliveries.parquet").to_pylist()
    assert [r["seq_num"] for r in rows] == [1, 2, 3]
    kept = next(r["commanded_rate_units_per_hour"] for r in rows if r["seq_num"] == 2)
    assert kept == (0.8 if order == "ab" else 1.5)


def test_damaged_raw_store_file_is_detected_by_name(tmp_path):
    workdir, config = _file_workflow(tmp_path, [basal(i, f"2025-01-01T10:{i:02d}:00") for i in range(1, 6)])
    snakemake(workdir, "-c1", "all", *config)
    raw = next((workdir / "data" / "raw" / "files").glob("*.raw"))
    raw.write_bytes(raw.read_bytes()[:-40])  # truncated on disk
    (workdir / "data" / "normalized").rename(workdir / "normalized.old")  # no cached tables
    before = (workdir / "exports" / "basal_deliveries.csv").read_bytes()
    proc = snakemake(workdir, "-c1", "all", "--forcerun", "normalize", *config, check=False)
    assert proc.returncode != 0
    assert (
        f"{raw.relative_to(workdir)}: the raw-store file changed since it was written (checksum mismatch)"
        in proc.stderr
    )
    assert (workdir / "exports" / "basal_deliveries.csv").read_bytes() == before  # earlier exports intact


def test_export_failure_leaves_no_partial_file(tmp_path, monkeypatch):
    # An export that fails half-way (here: the disk refuses the rename) leaves the old file as it was.
    from tandem_export import storage

    target = tmp_path / "exports" / "t.csv"
    target.parent.mkdir()
    target.write_text("old complete file\n")

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"), storage.atomic_path(target) as tmp:
        tmp.write_text("new half")
    assert target.read_text() == "old complete file\n"
    assert [p.name for p in target.parent.iterdir()] == ["t.csv"]


def test_interrupted_run_completes_on_the_next_run_with_identical_results(tmp_path):
    reference = copy_workflow(tmp_path / "reference")
    snakemake(reference, "-c1", "all")
    workdir = copy_workflow(tmp_path / "wf")
    exe = Path(sys.executable).with_name("snakemake")
    proc = subprocess.Popen(
        [str(exe), "-c1", "all"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not (workdir / "data" / "tables" / "decoded.parquet").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)
    exports = workdir / "exports"
    leftovers = [p.name for p in exports.iterdir()] if exports.exists() else []
    # The first run was interrupted: it failed, and it had not written every export.
    assert proc.returncode != 0
    assert not all((exports / p.name).exists() for p in (reference / "exports").iterdir()), leftovers
    assert not [n for n in leftovers if n.endswith(".tmp")], leftovers
    snakemake(workdir, "-c1", "all")
    for path in (reference / "exports").iterdir():
        if path.suffix in (".parquet", ".csv"):
            assert (exports / path.name).read_bytes() == path.read_bytes(), path.name


def test_a_failed_run_after_a_settings_change_is_not_followed_by_nothing_to_be_done(tmp_path):
    # Snakemake removes the outputs of a job that fails or is interrupted; the exports, older but
    # still present, must not then look up to date while they hold rows built with the old settings.
    workdir = copy_workflow(tmp_path / "wf")
    snakemake(workdir, "-c1", "all")
    script = workdir / "scripts" / "place_events.py"
    original = script.read_text()
    script.write_text(original + '\nraise SystemExit("simulated interruption")\n')
    failed = snakemake(workdir, "-c1", "all", "--config", "timezone=Europe/Berlin", check=False)
    assert failed.returncode != 0
    assert not (workdir / "data" / "tables" / "decoded.parquet").exists()
    script.write_text(original)
    again = snakemake(workdir, "-c1", "all", "--config", "timezone=Europe/Berlin")
    assert "Nothing to be done" not in again.stdout + again.stderr
    with open(workdir / "exports" / "cgm_readings.csv", newline="") as fh:
        first = next(csv.DictReader(fh))
    wall = dt.datetime.fromisoformat(first["pump_time"])
    want = wall.replace(tzinfo=ZoneInfo("Europe/Berlin")).astimezone(dt.UTC)
    assert first["timestamp"] == want.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_second_invocation_at_once_is_refused_by_the_lock(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    # The first run holds the lock for at least 20 s: its place_events job waits before it works.
    script = workdir / "scripts" / "place_events.py"
    original = script.read_text()
    script.write_text("import time\ntime.sleep(20)\n" + original)
    exe = Path(sys.executable).with_name("snakemake")
    first = subprocess.Popen(
        [str(exe), "-c1", "all"], cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    locks = workdir / ".snakemake" / "locks"
    while not (locks.exists() and any(locks.glob("*"))):
        assert time.monotonic() < deadline, "the first run never took its lock"
        time.sleep(0.05)
    second = snakemake(workdir, "-c1", "all", check=False)
    assert first.poll() is None, "the second run started while the first still ran"
    first.wait(timeout=300)
    assert first.returncode == 0
    assert second.returncode != 0
    assert "LockException" in second.stderr or "locked" in second.stderr.lower()
    script.write_text(original)
    snakemake(workdir, "-c1", "all")  # and the result is whole
    assert pq.read_metadata(workdir / "exports" / "cgm_readings.parquet").num_rows > 0


# --- security ---------------------------------------------------------------------------------


def test_tls_verification_is_never_turned_off():
    code = "\n".join(p.read_text() for p in (PROJECT / "scripts").rglob("*.py"))
    assert not re.search(r"verify\s*=\s*False", code)
    assert "CERT_NONE" not in code and "_create_unverified_context" not in code


@pytest.mark.parametrize(
    "target",
    [
        "exports/../Snakefile.csv",
        "exports/cgm_readings_2025-01-01_2025-01-02');DROP TABLE t;--.csv",
        "exports/cgm_readings.csv;rm -rf data",
    ],
)
def test_targets_cannot_escape_or_inject(tmp_path, target):
    workdir = copy_workflow(tmp_path / "wf")
    proc = snakemake(workdir, "-c1", target, check=False)
    assert proc.returncode != 0
    assert not (workdir / "data").exists()


@pytest.mark.parametrize(
    "setting",
    ["file_pump_serial=x';DROP TABLE t;--", "start=2025-01-01';--", "timezone=../../etc/passwd", "pump_serial=../x"],
)
def test_config_values_cannot_inject_sql_or_paths(tmp_path, setting):
    workdir = copy_workflow(tmp_path / "wf")
    proc = snakemake(workdir, "-c1", "all", "--config", setting, check=False)
    assert proc.returncode != 0
    assert "Configuration error:" in proc.stderr
    assert not (workdir / "data").exists()


def test_a_failed_write_is_one_clear_line_and_exit_1(tmp_path, capsys):
    from types import SimpleNamespace

    from tandem_export import runlog

    def body(log):
        raise OSError(28, "No space left on device", str(tmp_path / "exports" / "t.csv"))

    with pytest.raises(SystemExit) as stop:
        runlog.run(SimpleNamespace(log=[str(tmp_path / "rule.log")]), "export", body)
    assert stop.value.code == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("[export] ERROR: could not read or write") and "No space left on device" in line
    assert "t.csv" in (tmp_path / "rule.log").read_text()


def test_a_failed_duckdb_write_is_one_clear_line_and_other_errors_are_not_hidden(tmp_path, capsys):
    from types import SimpleNamespace

    import duckdb
    from tandem_export import runlog

    logs = SimpleNamespace(log=[str(tmp_path / "rule.log")])

    def copy_into_missing_folder(log):
        duckdb.sql(f"COPY (SELECT 1 AS x) TO '{tmp_path / 'missing' / 'x.parquet'}' (FORMAT parquet)")

    def database_on_a_full_disk(log):  # how DuckDB reported it when the disk filled during a commit
        raise duckdb.TransactionException(
            'TransactionContext Error: Failed to commit: Could not write file "exports/.tandem.duckdb.x.tmp/'
            'tandem.duckdb.wal": No space left on device'
        )

    for body, expect in ((copy_into_missing_folder, "x.parquet"), (database_on_a_full_disk, "No space left")):
        with pytest.raises(SystemExit) as stop:
            runlog.run(logs, "export", body)
        assert stop.value.code == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("[export] ERROR: could not read or write a file: "), lines
        assert expect in lines[0]

    def a_bug(log):
        duckdb.sql("SELECT no_such_column FROM (SELECT 1 AS x)")

    with pytest.raises(duckdb.BinderException):
        runlog.run(logs, "export", a_bug)


def test_a_new_version_of_the_code_rebuilds_the_tables(tmp_path):
    # Snakemake's own code check covers the rule scripts, not the package they import.
    workdir = copy_workflow(tmp_path / "wf")
    snakemake(workdir, "-c1", "all")
    before = {p.name: p.read_bytes() for p in (workdir / "exports").iterdir() if p.suffix in (".csv", ".parquet")}
    assert "Nothing to be done" in snakemake(workdir, "-n", "-c1", "all").stdout
    tables_py = workdir / "scripts" / "tandem_export" / "tables.py"
    tables_py.write_text(tables_py.read_text() + "\n# a new version\n")
    proc = snakemake(workdir, "-c1", "all")
    out = proc.stdout + proc.stderr
    assert "Nothing to be done" not in out
    for rule in ("normalize", "events", "derived_tables", "export", "export_tables", "database"):
        assert re.search(rf"^(local)?rule {rule}:", out, re.M), rule
    assert "unchanged, reused" in (workdir / "logs" / "normalize.log").read_text()  # the decoder did not change
    after = {p.name: p.read_bytes() for p in (workdir / "exports").iterdir() if p.suffix in (".csv", ".parquet")}
    assert after == before
