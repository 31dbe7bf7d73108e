"""Fetching from Tandem Source: the whole workflow against the local HTTPS stand-in."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import copy_workflow, snakemake
from standin import StandIn

EMAIL = "person@example.com"
PASSWORD = "correct horse battery staple"
GRID_EPOCH = dt.date(2008, 1, 1)


def grid(first: dt.date, last: dt.date) -> list[str]:
    """28-day cells counted from 2008-01-01 covering first..last (computed here, not by the pipeline)."""
    k = (first - GRID_EPOCH).days // 28
    out = []
    while GRID_EPOCH + dt.timedelta(days=28 * k) <= last:
        a = GRID_EPOCH + dt.timedelta(days=28 * k)
        out.append(f"{a}_{a + dt.timedelta(days=27)}")
        k += 1
    return out


@pytest.fixture
def server(tmp_path):
    with StandIn(tmp_path / "server") as s:
        yield s
        assert not s.errors


def setup_workdir(tmp_path: Path, server: StandIn, **fetch) -> tuple[Path, dict]:
    workdir = copy_workflow(tmp_path / "wf")
    settings = {
        "source": "tandem",
        "timezone": "America/New_York",
        "tandem_api": server.api_config(),
        "fetch": {"retries": 4, "backoff_seconds": 0.05, "timeout_seconds": 5, **fetch},
    }
    (workdir / "tandem.yaml").write_text(yaml.safe_dump(settings))
    env = {
        "TANDEM_EMAIL": EMAIL,
        "TANDEM_PASSWORD": PASSWORD,
        "REQUESTS_CA_BUNDLE": str(server.ca_path),
        "CURL_CA_BUNDLE": str(server.ca_path),
    }
    return workdir, env


def run(workdir: Path, env: dict, *targets: str, check: bool = True):
    return snakemake(workdir, "-c1", *(targets or ("all",)), "--configfile", "tandem.yaml", check=check, env=env)


def pump_logs_requests(server: StandIn) -> list[dict]:
    return [r for r in server.requests if "/pump-logs/" in r["path"]]


def expected_windows(server: StandIn) -> dict[str, list[str]]:
    return {p.serial: grid(p.first_time.date(), p.last_time.date()) for p in server.pumps}


def tables(workdir: Path) -> dict[str, list[dict]]:
    return {
        t: pq.read_table(workdir / "exports" / f"{t}.parquet").to_pylist()
        for t in ("raw_events", "cgm_readings", "basal_deliveries", "bolus_deliveries")
    }


def test_first_fetch_then_only_the_trailing_windows(tmp_path, server):
    workdir, env = setup_workdir(tmp_path, server)
    proc = run(workdir, env, "exports/cgm_readings.parquet")
    windows = expected_windows(server)
    for serial, names in windows.items():
        on_disk = sorted(p.name for p in (workdir / "data" / "raw" / serial).glob("*.json"))
        assert on_disk == [f"{n}.json" for n in names]
    assert len(pump_logs_requests(server)) == sum(len(v) for v in windows.values())
    for r in pump_logs_requests(server):
        first = dt.date.fromisoformat(r["query"]["startDate"][:10])
        last = dt.date.fromisoformat(r["query"]["endDate"][:10])
        assert (last - first).days == 27 and "eventIds" not in r["query"]
    # One line per window and a summary per pump.
    assert proc.stderr.count("events, ") >= sum(len(v) for v in windows.values())
    assert all(f"pump {serial} (" in proc.stderr for serial in windows)

    cgm = pq.read_table(workdir / "exports" / "cgm_readings.parquet").to_pylist()
    served = {p.serial: [e for e in server.events(p.serial) if e["eventCode"] == 399] for p in server.pumps}
    assert {r["pump_serial"] for r in cgm} == set(served)
    for serial, events in served.items():
        measured = {e["eventProperties"]["egvTimeStamp"] for e in events}
        assert sum(1 for r in cgm if r["pump_serial"] == serial) == len(measured)

    logins_before = sum(1 for r in server.requests if r["path"].endswith("/login"))
    server.clear_requests()
    run(workdir, env, "exports/cgm_readings.parquet")
    again = pump_logs_requests(server)
    trailing = {}
    for p in server.pumps:
        last = p.last_time.date()
        trailing[p.serial] = [
            w for w in windows[p.serial] if dt.date.fromisoformat(w[11:]) >= last - dt.timedelta(days=3)
        ]
    assert len(again) == sum(len(v) for v in trailing.values())
    assert {r["query"]["startDate"][:10] for r in again} == {w[:10] for v in trailing.values() for w in v}
    assert not any(r["path"].endswith("/login") for r in server.requests), "the cached token is reused"
    assert logins_before == 1
    token_file = workdir / "sensitive" / "token.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert PASSWORD not in token_file.read_text()


def test_faults_are_survived_with_the_same_tables(tmp_path, server):
    clean_dir, env = setup_workdir(tmp_path / "clean", server)
    run(clean_dir, env)
    clean = tables(clean_dir)

    workdir, env = setup_workdir(tmp_path / "faulty", server, timeout_seconds=1, retries=8)
    current = next(p for p in server.pumps if not p.retired)
    first_window = expected_windows(server)[current.serial][0]
    server.inject("500", path_contains="/pumper/")
    server.inject("500", count=2, path_contains="/pump-logs/")
    server.inject("429", path_contains="/pump-logs/", retry_after=1)
    server.inject("drop", path_contains="/pump-logs/")
    server.inject("slow", path_contains="/pump-logs/", seconds=3)
    server.inject("empty", path_contains=f"startDate={first_window[:10]}")
    proc = run(workdir, env)
    assert server.faults_pending == 0
    # A window answered empty although the pump has data there is kept but asked for again.
    assert len(tables(workdir)["raw_events"]) < len(clean["raw_events"])
    server.expire_tokens()
    server.clear_requests()
    proc = run(workdir, env)
    assert "logging in again" in proc.stderr
    assert any(r["query"].get("startDate", "").startswith(first_window[:10]) for r in pump_logs_requests(server))
    assert tables(workdir) == clean


def test_late_upload_is_picked_up(tmp_path, server):
    workdir, env = setup_workdir(tmp_path, server)
    run(workdir, env)
    before = len(pq.read_table(workdir / "exports" / "cgm_readings.parquet"))
    current = next(p for p in server.pumps if not p.retired)
    added = server.add_late_events(current.serial, days=2)
    assert added > 0
    run(workdir, env)
    after = pq.read_table(workdir / "exports" / "cgm_readings.parquet").to_pylist()
    assert len(after) == before + 2 * 288
    assert max(r["pump_time"] for r in after).date() == current.last_time.date()


def jobs_run(proc) -> list[str]:
    """The rules of the jobs a Snakemake run started, from its log lines ("localrule NAME:")."""
    out = proc.stdout + proc.stderr
    return sorted(
        line.split()[1].rstrip(":")
        for line in out.splitlines()
        if line.startswith(("rule ", "localrule ", "checkpoint ", "localcheckpoint "))
    )


def test_a_fetch_that_brings_nothing_new_reruns_nothing_else(tmp_path, server):
    workdir, env = setup_workdir(tmp_path, server)
    run(workdir, env)
    made = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (workdir / "exports").rglob("*") if p.is_file()}
    server.clear_requests()
    proc = run(workdir, env)
    # The range is open: the trailing windows are asked for again, and nothing else runs.
    assert pump_logs_requests(server)
    assert jobs_run(proc) == ["fetch"], proc.stderr
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (workdir / "exports").rglob("*") if p.is_file()} == made
    # New data: every job after the fetch runs again and the exports hold it.
    current = next(p for p in server.pumps if not p.retired)
    before = pq.read_table(workdir / "exports" / "cgm_readings.parquet").num_rows
    server.add_late_events(current.serial, days=1)
    proc = run(workdir, env)
    assert {"normalize", "place_events", "derived_tables", "export_tables", "database"} <= set(jobs_run(proc))
    assert pq.read_table(workdir / "exports" / "cgm_readings.parquet").num_rows == before + 288


def test_new_data_then_a_failed_run_is_not_followed_by_stale_exports(tmp_path, server):
    # A fetch brings new data, then a later job fails (Snakemake removes its outputs). The next fetch
    # brings nothing newer; every export still holding the old rows must be rebuilt all the same.
    workdir, env = setup_workdir(tmp_path, server)
    run(workdir, env)
    before = pq.read_table(workdir / "exports" / "cgm_readings.parquet").num_rows
    current = next(p for p in server.pumps if not p.retired)
    server.add_late_events(current.serial, days=1)
    script = workdir / "scripts" / "build_tables.py"
    original = script.read_text()
    script.write_text(original + '\nraise SystemExit("simulated interruption")\n')
    assert run(workdir, env, check=False).returncode != 0
    script.write_text(original)
    proc = run(workdir, env)
    assert "derived_tables" in jobs_run(proc)
    assert pq.read_table(workdir / "exports" / "cgm_readings.parquet").num_rows == before + 288
    again = run(workdir, env)
    assert jobs_run(again) == ["fetch"], again.stderr


@pytest.mark.parametrize("fault", ["empty", "partial"])
def test_an_answer_lacking_saved_events_never_replaces_the_saved_window(tmp_path, server, fault):
    workdir, env = setup_workdir(tmp_path, server)
    run(workdir, env)
    current = next(p for p in server.pumps if not p.retired)
    last_window = expected_windows(server)[current.serial][-1]
    saved = workdir / "data" / "raw" / current.serial / f"{last_window}.json"
    good = saved.read_bytes()
    rows = pq.read_table(workdir / "exports" / "cgm_readings.parquet").num_rows
    server.inject(fault, path_contains=f"startDate={last_window[:10]}")
    proc = run(workdir, env)
    assert server.faults_pending == 0
    lacking = 1 if fault == "partial" else len(json.loads(good)["events"])
    assert f"window {last_window[:10]}..{last_window[11:]}: the answer lacks {lacking} of the events" in proc.stderr
    assert saved.read_bytes() == good
    assert pq.read_table(workdir / "exports" / "cgm_readings.parquet").num_rows == rows
    # The next answer is whole again: the window is asked for again and nothing was lost.
    run(workdir, env)
    assert saved.read_bytes() == good


def test_the_range_chooses_what_is_fetched_and_exported_never_what_the_tables_hold(tmp_path, server):
    current = next(p for p in server.pumps if not p.retired)
    cells = expected_windows(server)[current.serial]
    # A range on the edges of a 28-day cell: episodes that cross them (sleep) must keep both ends.
    first, last = cells[1][:10], cells[1][11:]
    clean_dir, env = setup_workdir(tmp_path / "clean", server)
    run(clean_dir, env)
    workdir, env = setup_workdir(tmp_path / "ranged", server)
    run(workdir, env, "all", "--config", f"start={first}", f"end={last}")
    # Then the whole history: the windows saved for the range stay, the others are added.
    proc = run(workdir, env)
    assert "normalize" in jobs_run(proc)
    for path in (clean_dir / "exports").iterdir():
        if path.suffix in (".parquet", ".csv"):
            assert (workdir / "exports" / path.name).read_bytes() == path.read_bytes(), path.name
    # The range again: only the fetch and the exports run; the database keeps every row.
    proc = run(workdir, env, "all", "--config", f"start={first}", f"end={last}")
    assert set(jobs_run(proc)) - {"all"} == {"fetch", "export", "export_tables"}, proc.stderr
    lo, hi = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    for table in ("cgm_readings", "basal_deliveries", "bolus_deliveries", "user_modes", "suspensions", "alarms"):
        whole = pq.read_table(clean_dir / "exports" / f"{table}.parquet").to_pylist()
        ranged = pq.read_table(workdir / "exports" / f"{table}.parquet").to_pylist()
        assert ranged == [r for r in whole if lo <= r["pump_time"].date() <= hi], table
        assert ranged or table in ("suspensions", "alarms"), table


def test_a_window_saved_before_its_days_were_all_uploaded_is_asked_for_again(tmp_path, server):
    # The trailing window is saved while the pump's days still arrive; weeks later (no run in
    # between) it ends well before the pump's last day, yet it must be asked for again.
    workdir, env = setup_workdir(tmp_path / "late", server)
    run(workdir, env)
    current = next(p for p in server.pumps if not p.retired)
    # A record that cannot be right (after the pump's last day) is not trusted either.
    windows = expected_windows(server)[current.serial]
    (workdir / "data" / "raw" / current.serial / f"{windows[-1]}.json.fetched").write_text("2099-01-01\n")
    server.add_late_events(current.serial, days=23)
    run(workdir, env)
    clean_dir, env = setup_workdir(tmp_path / "clean", server)
    run(clean_dir, env)
    for path in (clean_dir / "exports").iterdir():
        if path.suffix in (".parquet", ".csv"):
            assert (workdir / "exports" / path.name).read_bytes() == path.read_bytes(), path.name
    days = {r["pump_time"].date() for r in pq.read_table(workdir / "exports" / "cgm_readings.parquet").to_pylist()}
    first = min(d for d in days if d > current.first_time.date())
    assert set(days) >= {first + dt.timedelta(days=i) for i in range((current.last_time.date() - first).days + 1)}


def test_a_range_gives_the_times_of_the_whole_history(tmp_path, server):
    # The time model reads the pump clock at its last record: a first fetch cut at the range's end
    # (before a DST switch) must still place every event as the whole history does.
    retired = next(p for p in server.pumps if p.retired)
    first = retired.first_time.date()
    start, end = str(first), str(first + dt.timedelta(days=10))
    clean_dir, env = setup_workdir(tmp_path / "clean", server)
    run(clean_dir, env)
    workdir, env = setup_workdir(tmp_path / "ranged", server)
    run(workdir, env, "all", "--config", f"start={start}", f"end={end}")
    lo, hi = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    for table in ("cgm_readings", "basal_deliveries", "bolus_deliveries"):
        whole = pq.read_table(clean_dir / "exports" / f"{table}.parquet").to_pylist()
        ranged = pq.read_table(workdir / "exports" / f"{table}.parquet").to_pylist()
        assert ranged and ranged == [r for r in whole if lo <= r["pump_time"].date() <= hi], table


def test_a_partial_answer_in_a_closed_range_is_asked_for_again(tmp_path, server):
    workdir, env = setup_workdir(tmp_path, server)
    current = next(p for p in server.pumps if not p.retired)
    end = str(current.last_time.date())  # in the past: a closed range
    run(workdir, env, "all", "--config", f"end={end}")
    assert jobs_run(run(workdir, env, "all", "--config", f"end={end}")) == [], "a closed range is not fetched again"
    last_window = expected_windows(server)[current.serial][-1]
    saved = workdir / "data" / "raw" / current.serial / f"{last_window}.json"
    (workdir / "data" / "raw" / current.serial / f"{last_window}.json.fetched").unlink()  # as if never complete
    server.inject("partial", path_contains=f"startDate={last_window[:10]}")
    good = saved.read_bytes()
    proc = run(workdir, env, "all", "--config", f"end={end}", "--forcerun", "fetch")
    assert "the answer lacks 1 of the events" in proc.stderr
    proc = run(workdir, env, "all", "--config", f"end={end}")
    assert "fetch" in jobs_run(proc), "the window kept against a partial answer is asked for again"
    assert saved.read_bytes() == good
    # Settled: once more, the fetch alone, for its changed check value (no retry pending any more),
    # then nothing at all.
    assert jobs_run(run(workdir, env, "all", "--config", f"end={end}")) == ["fetch"]
    assert jobs_run(run(workdir, env, "all", "--config", f"end={end}")) == []


def test_killed_fetch_resumes_without_asking_again(tmp_path, server):
    workdir, env = setup_workdir(tmp_path, server, timeout_seconds=60)
    windows = expected_windows(server)
    current = next(p for p in server.pumps if not p.retired)
    slow_window = windows[current.serial][1]
    server.inject("slow", path_contains=f"startDate={slow_window[:10]}", seconds=30)
    exe = Path(sys.executable).with_name("snakemake")
    proc = subprocess.Popen(
        [str(exe), "-c1", "all", "--configfile", "tandem.yaml"],
        cwd=workdir,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    saved_first = workdir / "data" / "raw" / current.serial / f"{windows[current.serial][0]}.json"
    deadline = time.monotonic() + 60
    while not saved_first.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert saved_first.exists()
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in the terminal does
    output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode != 0
    # The fetch says so in one line, without a Python traceback (Snakemake adds its own lines, on
    # the same terminal: "Terminating processes on user request" may end without a line break).
    interrupted = "[fetch] ERROR: interrupted; run again to resume: windows saved so far are kept"
    assert output.count(interrupted) == 1 and f"{interrupted}\n" in output, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert (workdir / "logs" / "fetch" / "tandem.log").read_text().splitlines()[-1] == interrupted
    assert not (workdir / "exports").exists() or not list((workdir / "exports").glob("*"))
    saved = {(p.parent.name, p.name) for p in (workdir / "data" / "raw").rglob("*.json")}
    assert (current.serial, f"{windows[current.serial][0]}.json") in saved
    assert (current.serial, f"{slow_window}.json") not in saved

    server.clear_requests()
    run(workdir, env)
    by_assignment = {p.assignment_id: p for p in server.pumps}
    asked = {
        (by_assignment[r["path"].rsplit("/", 1)[1]].serial, r["query"]["startDate"][:10])
        for r in pump_logs_requests(server)
    }
    assert (current.serial, slow_window[:10]) in asked
    for serial, name in saved:
        last = server.pump(serial).last_time.date()
        if dt.date.fromisoformat(name[11:21]) < last - dt.timedelta(days=3):
            assert (serial, name[:10]) not in asked, f"{serial}/{name} was fetched again"
    assert (workdir / "exports" / "cgm_readings.parquet").exists()


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("wrong_password", "rejected the login"),
        ("403", "the API or its required headers may have changed"),
        ("404", "the API or its required headers may have changed"),
    ],
)
def test_fatal_errors_stop_with_one_line_and_no_export(tmp_path, server, fault, message):
    workdir, env = setup_workdir(tmp_path, server)
    if fault == "wrong_password":
        server.set_password(EMAIL, "something else entirely")
    else:
        server.inject(fault, count=50, path_contains="/pump-logs/")
    proc = run(workdir, env, check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "ERROR:" in line]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    if fault != "wrong_password":
        assert "pump " in errors[0] and "window " in errors[0]
    logins = [r for r in server.requests if r["path"].endswith("/login")]
    assert len(logins) == 1, "a rejected login is never retried"
    assert not (workdir / "exports").exists() or not list((workdir / "exports").iterdir())
    assert PASSWORD not in proc.stdout + proc.stderr


def test_no_secret_in_any_file_or_log(tmp_path, server):
    workdir, env = setup_workdir(tmp_path, server)
    server.inject("500", path_contains="/pump-logs/")
    proc = run(workdir, env)
    server.expire_tokens()
    proc2 = run(workdir, env)
    token = json.loads((workdir / "sensitive" / "token.json").read_text())["access_token"]
    secrets = [PASSWORD.encode(), token.encode()]
    console = (proc.stdout + proc.stderr + proc2.stdout + proc2.stderr).encode()
    assert not any(s in console for s in secrets)
    for path in workdir.rglob("*"):
        if path.is_file() and "sensitive" not in path.parts:
            data = path.read_bytes()
            assert not any(s in data for s in secrets), path


def test_credentials_file_readable_by_others_is_refused(tmp_path, server):
    workdir, env = setup_workdir(tmp_path, server)
    creds = workdir / "sensitive" / "credentials.toml"
    creds.parent.mkdir(exist_ok=True)
    creds.write_text(f'[tandem]\nemail = "{EMAIL}"\npassword = "{PASSWORD}"\nregion = "US"\n')
    creds.chmod(0o644)
    no_env = {k: v for k, v in env.items() if not k.startswith("TANDEM_")}
    proc = run(workdir, no_env, check=False)
    assert proc.returncode != 0
    assert f"chmod 600 {Path('sensitive/credentials.toml')}" in proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr
    creds.chmod(0o600)
    run(workdir, no_env)
    assert (workdir / "exports" / "cgm_readings.parquet").exists()


def test_damaged_window_on_disk_is_fetched_again(tmp_path, server):
    workdir, env = setup_workdir(tmp_path, server)
    run(workdir, env, "exports/cgm_readings.parquet")
    current = next(p for p in server.pumps if not p.retired)
    first_window = expected_windows(server)[current.serial][0]
    path = workdir / "data" / "raw" / current.serial / f"{first_window}.json"
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # damaged on disk
    server.clear_requests()
    proc = run(workdir, env, "exports/cgm_readings.parquet")
    assert "checksum mismatch" in proc.stderr and "fetching the window again" in proc.stderr
    assert any(r["query"].get("startDate", "").startswith(first_window[:10]) for r in pump_logs_requests(server))
    assert path.read_bytes() == good
