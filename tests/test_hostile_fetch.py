"""A hostile Tandem Source: what it answers never writes outside the project, never reaches a table
as a wrong value and never loses a window without a word (the whole workflow, against the stand-in).

Each case here got through on the code before issue 15: a serial from the pump list went into
paths unchecked, a malformed 200 answer for a window was saved and marked complete, and a placeholder
date far ahead made the first run plan decades of windows.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from standin import StandIn
from test_fetch import pump_logs_requests, run, setup_workdir

RETRIES = 2  # setup_workdir's fetch settings get retries=2 here: a fault costs 3 requests


@pytest.fixture
def server(tmp_path):
    with StandIn(tmp_path / "server") as s:
        yield s
        assert not s.errors


def files_outside(root: Path, inside: list[Path]) -> set[str]:
    """Every file under ``root`` that is not under one of ``inside``."""
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not any(p.is_relative_to(folder) for folder in inside)
    }


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "ERROR:" in line]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("serialNumber", "../../../x"),
        ("serialNumber", "=1+1"),
        ("serialNumber", "12345678\n"),
        ("assignmentId", "../x"),
        ("availableDataRange", {"start": "garbage"}),
    ],
)
def test_a_pump_list_with_a_bad_identifier_is_refused_before_anything_is_written(tmp_path, server, field, value):
    workdir, env = setup_workdir(tmp_path, server, retries=RETRIES)
    before = files_outside(tmp_path, [workdir, tmp_path / "server"])
    server.inject("pumper", count=10, pump={field: value}, index=-1)
    proc = run(workdir, env, check=False)
    assert proc.returncode != 0
    errors = error_lines(proc.stderr)
    assert len(errors) == 1, proc.stderr
    shown = repr(value["start"] if isinstance(value, dict) else value)
    assert "pump list" in errors[0] and shown in errors[0], errors[0]
    assert "Traceback" not in proc.stderr
    assert not (workdir / "data" / "raw").exists() or not any((workdir / "data" / "raw").rglob("*"))
    assert not pump_logs_requests(server), "no window is asked for"
    assert files_outside(tmp_path, [workdir, tmp_path / "server"]) == before
    assert not (workdir / "exports").exists()


def old_window(server: StandIn) -> tuple[str, str]:
    """(serial, window name) of the current pump's first window (far from its last day)."""
    pump = server.pumps[-1]
    first = pump.first_time.date()
    k = (first - dt.date(2008, 1, 1)).days // 28
    start = dt.date(2008, 1, 1) + dt.timedelta(days=28 * k)
    return pump.serial, f"{start}_{start + dt.timedelta(days=27)}"


def test_a_malformed_answer_is_never_saved_and_is_asked_for_again(tmp_path, server):
    workdir, env = setup_workdir(tmp_path, server, retries=RETRIES)
    serial, window = old_window(server)
    server.inject("shape", count=RETRIES + 1, path_contains=f"startDate={window[:10]}")
    failed = run(workdir, env, check=False)
    assert failed.returncode != 0
    errors = error_lines(failed.stderr)
    assert len(errors) == 1, failed.stderr
    assert f"pump {serial} window {window.replace('_', '..')}" in errors[0]
    assert "'events' is not a list" in errors[0] and "free space" not in failed.stderr
    asked = [r for r in pump_logs_requests(server) if r["query"]["startDate"].startswith(window[:10])]
    assert len(asked) == RETRIES + 1, "retried like a broken body"
    assert not (workdir / "data" / "raw" / serial / f"{window}.json").exists(), "never saved"
    assert not server.faults_pending
    # The next run asks for it again and the exports hold its days.
    server.clear_requests()
    run(workdir, env)
    assert any(r["query"]["startDate"].startswith(window[:10]) for r in pump_logs_requests(server))
    saved = json.loads((workdir / "data" / "raw" / serial / f"{window}.json").read_text())
    assert isinstance(saved["events"], list) and saved["events"]


def test_a_malformed_answer_for_a_saved_window_keeps_the_saved_copy(tmp_path, server):
    workdir, env = setup_workdir(tmp_path, server, retries=RETRIES)
    run(workdir, env)
    pump = server.pumps[-1]
    last = pump.last_time.date()
    k = (last - dt.date(2008, 1, 1)).days // 28
    start = dt.date(2008, 1, 1) + dt.timedelta(days=28 * k)
    window = f"{start}_{start + dt.timedelta(days=27)}"
    path = workdir / "data" / "raw" / pump.serial / f"{window}.json"
    saved = path.read_bytes()
    server.inject("shape", count=RETRIES + 1, path_contains=f"startDate={start}", body={"events": "x"})
    proc = run(workdir, env)
    assert path.read_bytes() == saved
    assert f"pump {pump.serial} window {start}..{start + dt.timedelta(days=27)}" in proc.stderr
    assert "kept the window saved earlier, asked for again on the next run" in proc.stderr
    assert (workdir / "data" / "fetch" / "retry").exists()


def test_a_last_day_far_ahead_is_clamped_to_tomorrow(tmp_path, server):
    workdir, env = setup_workdir(tmp_path, server, retries=RETRIES)
    server.inject("pumper", count=10, pump={"maxDateOfEvents": "2999-12-31T00:00:00"}, index=-1)
    proc = run(workdir, env)
    serial = server.pumps[-1].serial
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    assert (
        f"pump {serial}: the pump list says its data reach 2999-12-31, after tomorrow; fetching up to {tomorrow}"
        in (proc.stderr)
    )
    last_asked = max(dt.date.fromisoformat(r["query"]["endDate"][:10]) for r in pump_logs_requests(server))
    assert last_asked <= tomorrow + dt.timedelta(days=27)
    manifest = json.loads((workdir / "data" / "fetch" / "manifest.json").read_text())
    assert {p["serial"]: p["last_day"] for p in manifest["pumps"]}[serial] == str(tomorrow)
