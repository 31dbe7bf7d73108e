"""fetch_latest: false exports what the raw store holds, without the network.

Against the stand-in: one account fetched once (two pumps: the retired one's data end 2025-03-10,
the stand-in's default, in the window 2025-03-04..03-31; the current one's 30 days end 2025-05-15,
in the windows 2025-04-01..04-28 and 2025-04-29..05-26), then runs without the network that must
make no connection (the stand-in, restarted on the same port, counts every TCP connection it
accepts), give byte-identical exports, say once what they hold, and fail with one line, never a
traceback or a wrong notice, when the store holds nothing or a record in it was tampered with.
"""

from __future__ import annotations

import ast
import copy
import datetime as dt
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
import trustme
import yaml
from conftest import PROJECT, copy_workflow, snakemake
from standin import StandIn
from tandem_export import config as cfg
from tandem_export import stored
from test_fetch import EMAIL, PASSWORD, jobs_run

ZONE = "America/New_York"
RETIRED_UP_TO, CURRENT_UP_TO = "2025-03-10", "2025-05-15"
OFFLINE = ("--config", "fetch_latest=false")
HINT = "[fetch] INFO: to export what is already stored, without the network: run again with --config fetch_latest=false"
NOTHING_YET = "nothing fetched yet; run once with fetch_latest: true (the default)"
DEFAULTS = yaml.safe_load((PROJECT / "config.yaml").read_text())


def defaults(**changes) -> dict:
    """config.yaml with ``changes`` (a copy: the checks change a config in place)."""
    return {**copy.deepcopy(DEFAULTS), **changes}


def today_in_zone() -> dt.date:
    return dt.datetime.now(ZoneInfo(ZONE)).date()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with StandIn(tmp_path_factory.mktemp("server"), retired_days=4, current_days=30) as s:
        yield s
        assert not s.errors


def write_config(workdir: Path, server: StandIn, **extra) -> None:
    settings = {
        "source": "tandem",
        "timezone": ZONE,
        "tandem_api": server.api_config(),
        "fetch": {"retries": 1, "backoff_seconds": 0.05, "timeout_seconds": 5},
        **extra,
    }
    (workdir / "tandem.yaml").write_text(yaml.safe_dump(settings))


def env_for(server: StandIn, credentials: bool = True) -> dict:
    env = {"REQUESTS_CA_BUNDLE": str(server.ca_path), "CURL_CA_BUNDLE": str(server.ca_path)}
    return {**env, "TANDEM_EMAIL": EMAIL, "TANDEM_PASSWORD": PASSWORD} if credentials else env


def run(workdir: Path, env: dict, *args: str, check: bool = True):
    return snakemake(workdir, "-c2", "all", "--configfile", "tandem.yaml", *args, check=check, env=env)


def files(folder: Path, manifest: bool = False) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path: bytes); MANIFEST.json too when ``manifest``."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and (manifest or p.name != "MANIFEST.json")
    }


def database_rows(path: Path) -> dict[str, list]:
    """Every table of an exported database, all rows in their order (read without the pipeline)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = sorted(r[0] for r in con.sql("SHOW TABLES").fetchall())
        return {n: con.sql(f'SELECT * FROM "{n}"').fetchall() for n in names}
    finally:
        con.close()


@pytest.fixture(scope="module")
def fetched(tmp_path_factory, server):
    """A workflow copy after one online run of ``all``, the days it ran (in the account's zone) and
    its exports."""
    workdir = copy_workflow(tmp_path_factory.mktemp("fetched") / "wf")
    write_config(workdir, server)
    before = today_in_zone()
    run(workdir, env_for(server))
    days = {before, today_in_zone()}
    return workdir, days, files(workdir / "exports", manifest=True)


def without_manifest(exports: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in exports.items() if k != "MANIFEST.json"}


def clone(fetched, tmp_path: Path) -> Path:
    """A copy of the fetched workflow (raw store, exports and Snakemake's records) to change."""
    workdir = tmp_path / "wf"
    shutil.copytree(fetched[0], workdir, symlinks=True)
    return workdir


def serials(server: StandIn) -> tuple[str, str]:
    retired = next(p.serial for p in server.pumps if p.retired)
    current = next(p.serial for p in server.pumps if not p.retired)
    return retired, current


def notice(server: StandIn, day: dt.date, account: str = "") -> str:
    retired, current = serials(server)
    return (
        f"{account}not fetched (fetch_latest: false): pump {retired} has data up to {RETIRED_UP_TO}, fetched {day}; "
        f"pump {current} has data up to {CURRENT_UP_TO}, fetched {day}"
    )


def restarted(server: StandIn) -> int:
    """Stop the stand-in and serve again on the same port: the connections it has accepted so far."""
    port = server.port
    server.stop()
    server.start(port=port)
    return server.connections_accepted


def test_switching_to_false_with_nothing_new_is_nothing_to_be_done_without_a_connection(fetched, server, tmp_path):
    workdir = clone(fetched, tmp_path)
    accepted = restarted(server)
    proc = run(workdir, env_for(server, credentials=False), *OFFLINE)
    assert "Nothing to be done" in proc.stderr, proc.stderr
    assert server.connections_accepted == accepted
    assert files(workdir / "exports", manifest=True) == fetched[2]
    notices = [line for line in proc.stderr.splitlines() if "not fetched" in line]
    assert notices in ([f"Notice: {notice(server, day)}"] for day in fetched[1]), proc.stderr
    # Back to true: the fetch asks Tandem Source (the counter sees it), and nothing else runs.
    proc = run(workdir, env_for(server))
    assert jobs_run(proc) == ["fetch"], proc.stderr
    assert server.connections_accepted > accepted
    assert files(workdir / "exports") == without_manifest(fetched[2])


def test_deleted_exports_are_rebuilt_identical_without_a_connection(fetched, server, tmp_path):
    workdir = clone(fetched, tmp_path)
    shutil.rmtree(workdir / "exports")
    accepted = restarted(server)
    proc = run(workdir, env_for(server, credentials=False), *OFFLINE)
    assert server.connections_accepted == accepted
    assert "fetch" not in jobs_run(proc) and "export_tables" in jobs_run(proc)
    now = files(workdir / "exports", manifest=True)
    # tandem.duckdb: the same tables and rows (DuckDB stamps each new file with a random id).
    skip = {"MANIFEST.json", "tandem.duckdb"}
    assert {k: v for k, v in now.items() if k not in skip} == {k: v for k, v in fetched[2].items() if k not in skip}
    original = fetched[0] / "exports" / "tandem.duckdb"
    assert database_rows(workdir / "exports" / "tandem.duckdb") == database_rows(original)
    entry = json.loads(now["MANIFEST.json"])["fetch"]
    assert list(entry) == [""] and entry[""]["fetch_latest"] is False
    retired, current = serials(server)
    assert entry[""]["pumps"] == [
        {"serial": retired, "data_up_to": RETIRED_UP_TO},
        {"serial": current, "data_up_to": CURRENT_UP_TO},
    ]
    # The online run's manifest recorded its fetch too.
    assert json.loads(fetched[2]["MANIFEST.json"])["fetch"][""]["fetch_latest"] is True


@pytest.fixture
def listening_socket():
    """A TCP port that accepts connections (the kernel's backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


@pytest.mark.parametrize("fault", ["refused", "dns", "timeout", "certificate"])
def test_a_fetch_that_cannot_reach_tandem_source_says_how_to_export_what_is_stored(
    fetched, server, tmp_path, fault, request
):
    workdir = clone(fetched, tmp_path)
    port = server.port
    env = env_for(server)
    if fault == "refused":
        server.stop()
        expected = (
            "[fetch] ERROR: pump list: could not connect to Tandem Source (connection refused) after 1 retry; "
            "check the tandem_api URLs and this machine's network connection, or try again later"
        )
    elif fault == "certificate":  # as behind a captive portal: another CA's certificate
        trustme.CA().cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))
        env = {**env, "REQUESTS_CA_BUNDLE": str(tmp_path / "other-ca.pem")}
        expected = (
            "[fetch] ERROR: pump list: the TLS certificate of Tandem Source could not be verified; check the "
            "tandem_api URLs and this machine's CA certificates (REQUESTS_CA_BUNDLE)"
        )
    else:
        where = (
            "tandem-source.invalid" if fault == "dns" else f"127.0.0.1:{request.getfixturevalue('listening_socket')}"
        )
        api = {k: v.replace(f"127.0.0.1:{port}", where) for k, v in server.api_config().items()}
        write_config(
            workdir, server, tandem_api=api, fetch={"retries": 1, "backoff_seconds": 0.05, "timeout_seconds": 0.5}
        )
        # (other URLs: the cached token is another issuer's, so the login comes first)
        expected = {
            "dns": "[fetch] ERROR: login: the address of Tandem Source could not be looked up (DNS) after 1 retry; "
            "check this machine's network connection and the tandem_api URLs, or try again later",
            "timeout": "[fetch] ERROR: login: Tandem Source did not answer within 0.5 s after 1 retry; try again "
            "later, or raise fetch.timeout_seconds",
        }[fault]
    try:
        proc = run(workdir, env, check=False)
    finally:
        server.start(port=port)
    assert proc.returncode != 0
    lines = proc.stderr.splitlines()
    errors = [i for i, line in enumerate(lines) if "ERROR:" in line]
    assert [lines[i] for i in errors] == [expected], proc.stderr
    assert lines[errors[0] + 1] == HINT
    assert "Traceback" not in proc.stderr
    # Snakemake removed the failed fetch's manifest; without the network the store is exported as
    # it was: the offline job puts back the same manifest, and nothing after it runs.
    assert not (workdir / "data" / "fetch" / "manifest.json").exists()
    accepted = server.connections_accepted
    write_config(workdir, server)
    proc = run(workdir, env_for(server, credentials=False), *OFFLINE)
    assert jobs_run(proc) == ["fetch"], proc.stderr
    assert files(workdir / "exports") == without_manifest(fetched[2])
    assert (workdir / "data" / "fetch" / "manifest.json").read_bytes() == (
        fetched[0] / "data" / "fetch" / "manifest.json"
    ).read_bytes()
    notices = [line for line in proc.stderr.splitlines() if "not fetched" in line]
    assert notices in ([f"[fetch] INFO: {notice(server, day)}"] for day in fetched[1]), proc.stderr
    assert "Nothing to be done" in run(workdir, env_for(server, credentials=False), *OFFLINE).stderr
    assert server.connections_accepted == accepted


def test_a_fetch_that_fails_with_nothing_stored_gives_no_hint(server, tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    write_config(workdir, server)
    port = server.port
    server.stop()
    try:
        proc = run(workdir, env_for(server), check=False)
    finally:
        server.start(port=port)
    assert proc.returncode != 0 and "could not connect to Tandem Source" in proc.stderr
    assert "fetch_latest" not in proc.stderr


def test_nothing_fetched_yet_is_one_line_and_writes_nothing(server, tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    write_config(workdir, server)
    accepted = server.connections_accepted
    # No credentials anywhere: source tandem needs none without the network.
    proc = run(workdir, env_for(server, credentials=False), *OFFLINE, check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "ERROR:" in line]
    assert errors == [f"[fetch] ERROR: {NOTHING_YET}"], proc.stderr
    assert "Traceback" not in proc.stderr and "not fetched (" not in proc.stderr
    assert not (workdir / "exports").exists()
    assert not [p for p in (workdir / "data").rglob("*") if p.is_file()]
    assert server.connections_accepted == accepted


SHEET = "account\temail_env\tpassword_env\ttimezone\nalice\tALICE_EMAIL\tALICE_PASSWORD\t{zone}\n"


def test_a_sheet_exports_the_fetched_account_and_names_the_one_never_fetched(tmp_path):
    with StandIn(
        tmp_path / "server", {"alice@example.com": "alice's long password"}, retired_days=3, current_days=4
    ) as s:
        workdir = copy_workflow(tmp_path / "wf")
        (workdir / "accounts.tsv").write_text(SHEET.format(zone=ZONE))
        write_config(workdir, s, accounts="accounts.tsv")
        env = {**env_for(s, credentials=False), "ALICE_EMAIL": "alice@example.com"}
        before = today_in_zone()
        run(workdir, {**env, "ALICE_PASSWORD": "alice's long password"})
        days = {before, today_in_zone()}
        alice = files(workdir / "exports" / "alice")
        combined = files(workdir / "exports" / "combined")
        # bob is added, never fetched; nobody's credentials are set.
        (workdir / "accounts.tsv").write_text(SHEET.format(zone=ZONE) + f"bob\tBOB_EMAIL\tBOB_PASSWORD\t{ZONE}\n")
        accepted = restarted(s)
        proc = run(workdir, env, *OFFLINE, check=False)
        assert s.connections_accepted == accepted
        retired = next(p.serial for p in s.pumps if p.retired)
        current = next(p.serial for p in s.pumps if not p.retired)
    assert proc.returncode != 0
    err = proc.stderr
    summary = err[err.index("1 of 2 accounts did not complete:") :].splitlines()
    assert summary[1] == (
        f"  bob: [fetch bob] ERROR: account bob: {NOTHING_YET} (log: {Path('logs/bob/fetch/stored.log')})"
    ), err[-3000:]
    assert files(workdir / "exports" / "alice") == alice
    assert not (workdir / "exports" / "bob").exists()
    # The combined exports need every account: those of the fetched one alone stay as they were.
    assert files(workdir / "exports" / "combined") == combined
    lines = [line for line in err.splitlines() if "not fetched (" in line]
    want = [
        f"Notice: account alice: not fetched (fetch_latest: false): pump {retired} has data up to 2025-03-10, "
        f"fetched {day}; pump {current} has data up to 2025-05-15, fetched {day}"
        for day in days
    ]
    assert len(lines) == 1 and lines[0] in want, err
    assert "Traceback" not in err


def rewrite_records(workdir: Path, serial: str, change) -> None:
    """Rewrite the .fetched record of each of a pump's windows: ``change(window name, record dict)``."""
    for path in sorted((workdir / "data" / "raw" / serial).glob("*.json.fetched")):
        record = json.loads(path.read_text())
        path.write_text(json.dumps(change(path.name[:21], record)) + "\n")


def test_the_notice_gives_the_latest_fetch_in_the_account_zone(fetched, server, tmp_path):
    workdir = clone(fetched, tmp_path)
    retired, current = serials(server)
    # The latest fetch is that of the earlier window: its record gives the pump's last day.
    older = {
        "2025-04-01_2025-04-28": {"fetched_at": "2025-06-01T03:30:00Z", "last_day": "2025-05-15"},
        "2025-04-29_2025-05-26": {"fetched_at": "2025-05-20T10:00:00Z", "last_day": "2025-05-10"},
    }
    rewrite_records(workdir, current, lambda name, record: {**record, **older[name]})
    # A record of an earlier version (a bare date) tells no fetch time.
    (workdir / "data" / "raw" / retired / "2025-03-04_2025-03-31.json.fetched").write_text("2025-03-10\n")
    proc = run(workdir, env_for(server, credentials=False), *OFFLINE)
    assert "Nothing to be done" in proc.stderr
    # 2025-06-01T03:30:00Z is 2025-05-31 23:30 in New York (EDT, UTC-4).
    assert (
        f"Notice: not fetched (fetch_latest: false): pump {retired} has data up to 2025-03-10, fetch time not recorded; "
        f"pump {current} has data up to 2025-05-15, fetched 2025-05-31"
    ) in proc.stderr.splitlines(), proc.stderr


def _record(**changes):
    return lambda name, record: {**record, **changes}


TAMPERED_RECORDS = {
    "not JSON": (lambda path: path.write_text("{'last_day': 2025-05-15"), "(not JSON)"),
    "last day after the fetch": (
        _record(last_day="2099-01-01", fetched_at="2025-06-01T00:00:00Z"),
        "(last_day 2099-01-01 is after the day of the fetch, 2025-06-01)",
    ),
    "last day before 2008": (_record(last_day="2007-12-31"), "(last_day 2007-12-31 is before 2008-01-01"),
    "fetched in the future": (
        _record(fetched_at="2999-01-01T00:00:00Z"),
        "(fetched_at 2999-01-01T00:00:00Z is not between 2008-01-01 and now)",
    ),
    "fetch time not a time": (
        _record(fetched_at="2025-06-01 00:00:00"),
        "(fetched_at '2025-06-01 00:00:00' is not a time YYYY-MM-DDTHH:MM:SSZ)",
    ),
    "events negative": (_record(events=-1), "(events -1 is not a whole number from 0)"),
}
TAMPERED_FETCHES = {
    "bad serial": (lambda m: m["pumps"][0].update(serial="../x"), "(pump serial '../x' is not a valid identifier"),
    "not JSON": (None, "(not JSON)"),
    "first day before 2008": (
        lambda m: m["pumps"][1].update(first_day="2007-12-31"),
        "are not days from 2008-01-01 to",
    ),
    "a window off the grid": (
        lambda m: m["pumps"][1]["windows"].append("2025-05-18_2025-06-14"),
        "window '2025-05-18_2025-06-14' is not a cell of the 28-day grid",
    ),
}


def tampered_run(workdir: Path, server: StandIn, offending: Path, reason: str):
    accepted = server.connections_accepted
    proc = run(workdir, env_for(server, credentials=False), *OFFLINE, check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "ERROR:" in line]
    assert len(errors) == 1 and errors[0].startswith(f"[fetch] ERROR: {offending.relative_to(workdir)}: "), proc.stderr
    assert reason in errors[0] and errors[0].endswith(
        "; run once with fetch_latest: true (the default), which writes it again"
    )
    assert "Traceback" not in proc.stderr and "not fetched (" not in proc.stderr, proc.stderr
    assert server.connections_accepted == accepted
    return proc


@pytest.mark.parametrize("case", TAMPERED_RECORDS, ids=TAMPERED_RECORDS.keys())
def test_a_tampered_window_record_is_one_error_line_never_a_notice(fetched, server, tmp_path, case):
    workdir = clone(fetched, tmp_path)
    change, reason = TAMPERED_RECORDS[case]
    _, current = serials(server)
    path = sorted((workdir / "data" / "raw" / current).glob("*.json.fetched"))[-1]
    if case == "not JSON":
        change(path)
    else:
        path.write_text(json.dumps(change(path.name, json.loads(path.read_text()))))
    tampered_run(workdir, server, path, reason)
    assert files(workdir / "exports") == without_manifest(fetched[2])


@pytest.mark.parametrize("case", TAMPERED_FETCHES, ids=TAMPERED_FETCHES.keys())
def test_a_tampered_record_of_the_last_fetch_is_one_error_line(fetched, server, tmp_path, case):
    workdir = clone(fetched, tmp_path)
    change, reason = TAMPERED_FETCHES[case]
    path = workdir / "data" / "fetch" / "last-fetch.json"
    if change is None:
        path.write_text(path.read_text()[:-5])
    else:
        record = json.loads(path.read_text())
        change(record)
        path.write_text(json.dumps(record))
    tampered_run(workdir, server, path, reason)
    # Nothing was built from it: the manifest of the fetch is gone (the failed job's output), the
    # exports are those of the fetch.
    assert not (workdir / "data" / "fetch" / "manifest.json").exists()
    assert files(workdir / "exports") == without_manifest(fetched[2])


def test_a_window_the_last_fetch_listed_missing_from_the_store_is_named(fetched, server, tmp_path):
    workdir = clone(fetched, tmp_path)
    _, current = serials(server)
    window = sorted((workdir / "data" / "raw" / current).glob("*_*.json"))[0]
    window.unlink()
    proc = run(workdir, env_for(server, credentials=False), *OFFLINE, check=False)
    errors = [line for line in proc.stderr.splitlines() if "ERROR:" in line]
    assert errors == [
        f"[fetch] ERROR: {window.relative_to(workdir)}: listed by the last fetch but missing from the raw store; "
        "restore it, or run once with fetch_latest: true (the default) to fetch it again"
    ], proc.stderr
    assert proc.returncode != 0


def test_a_window_changed_with_its_checksum_file_gone_is_named(fetched, server, tmp_path):
    # The last fetch recorded the window's SHA-256: without the checksum beside it, that record
    # still tells the changed bytes from the fetched ones.
    workdir = clone(fetched, tmp_path)
    _, current = serials(server)
    window = sorted((workdir / "data" / "raw" / current).glob("*_*.json"))[0]
    Path(f"{window}.sha256").unlink()
    window.write_bytes(window.read_bytes() + b" ")  # still the same JSON, not the same bytes
    proc = run(workdir, env_for(server, credentials=False), *OFFLINE, check=False)
    errors = [line for line in proc.stderr.splitlines() if "ERROR:" in line]
    assert errors == [
        f"[fetch] ERROR: {window.relative_to(workdir)}: changed since the last fetch (its SHA-256 is not the one that "
        "fetch recorded, and its checksum file is gone); restore it, or run once with fetch_latest: true (the default) "
        "to fetch it again"
    ], proc.stderr
    assert proc.returncode != 0
    assert files(workdir / "exports") == without_manifest(fetched[2])


# --- the config key ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "want"), [("false", False), ("true", True), ("no", False), (False, False)])
def test_fetch_latest_from_the_command_line(given, want, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("TANDEM_EMAIL", "TANDEM_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    tandem = defaults(source="tandem", timezone="UTC", fetch_latest=given)
    if want:
        with pytest.raises(cfg.ConfigError, match="source: tandem needs credentials"):
            cfg.load(tandem, str(PROJECT))
    else:
        shared, served = cfg.load(tandem, str(PROJECT))
        assert shared.source == "tandem" and shared.fetch_latest is False and served[""].fetch_latest is False
    # auto without credentials is the demo pump, whatever fetch_latest says.
    assert cfg.load(defaults(timezone="UTC", fetch_latest=given), str(PROJECT))[0].source == "demo"


def test_fetch_latest_that_is_no_boolean_is_one_line():
    config = defaults(source="demo", fetch_latest="maybe")
    with pytest.raises(cfg.ConfigError) as caught:
        cfg.load(config, str(PROJECT))
    assert str(caught.value) == (
        "fetch_latest: 'maybe' is not true or false; write true or false: whether to ask Tandem Source for new data "
        "first (false: export what the raw store holds, without the network)"
    )


def test_switching_fetch_latest_changes_no_lineage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TANDEM_EMAIL", "a@example.com")
    monkeypatch.setenv("TANDEM_PASSWORD", "a password")
    online = cfg.load(defaults(source="tandem", timezone="UTC", fetch_latest=True), str(PROJECT))[0]
    offline = cfg.load(defaults(source="tandem", timezone="UTC", fetch_latest=False), str(PROJECT))[0]
    assert (online.fetch_latest, offline.fetch_latest) == (True, False)
    assert online.lineage == offline.lineage


def test_the_offline_job_imports_no_http_client():
    # Every module the offline job's script imports, imported in a fresh interpreter: no HTTP library.
    tree = ast.parse((PROJECT / "scripts" / "fetch_stored.py").read_text())
    modules = sorted(
        {
            f"{n.module}.{a.name}" if n.module == "tandem_export" else n.module
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom)
            for a in n.names
        }
        | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    )
    assert "tandem_export.stored" in modules and "tandem_export.tandem" not in modules, modules
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    code += (
        "print(sorted(m for m in ('requests', 'urllib3', 'http.client', 'tandem_export.tandem') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT / "scripts", capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
    assert stored.FETCH_ONCE in NOTHING_YET
