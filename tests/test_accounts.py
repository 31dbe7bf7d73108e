"""Many accounts: an accounts sheet against the stand-in, run locally and under the cluster-generic executor.

Three accounts (two good, one with a wrong password) are fetched from one stand-in server.  The
expected tables are computed from the stand-in's own event lists (not from the workflow), the
failing account must be named at the end with a non-zero exit while the others complete, the
concurrency limit (``--resources tandem_api``) is read from the server's request log, and the
cluster-generic run (each job a separate process started by tests/cluster/submit.sh) must give
byte-identical exports to the plain local run.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import PROJECT, copy_workflow, snakemake
from standin import StandIn

ACCOUNTS = {
    "alice@example.com": "alice's long password",
    "bob@example.com": "bob's long password",
    "carol@example.com": "carol's long password",
}
SHEET = (
    "account\tcredentials_file\temail_env\tpassword_env\tregion\ttimezone\tpump_serial\n"
    "alice\tsensitive/alice.toml\t\t\t\tAmerica/New_York\t\n"
    "bob\t\tBOB_EMAIL\tBOB_PASSWORD\tUS\tEurope/Berlin\tall\n"
    "carol\t\tCAROL_EMAIL\tCAROL_PASSWORD\t\t\t\n"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # Short histories (two pumps of a few days each per account) keep the six workflow runs quick.
    with StandIn(tmp_path_factory.mktemp("server"), ACCOUNTS, retired_days=4, current_days=8) as s:
        yield s
        assert not s.errors


def setup(workdir: Path, server: StandIn) -> dict:
    copy_workflow(workdir)
    (workdir / "accounts.tsv").write_text(SHEET)
    (workdir / "sensitive").mkdir(exist_ok=True)
    toml = workdir / "sensitive" / "alice.toml"
    toml.write_text(f'[tandem]\nemail = "alice@example.com"\npassword = "{ACCOUNTS["alice@example.com"]}"\n')
    toml.chmod(0o600)
    settings = {
        "source": "tandem",
        "accounts": "accounts.tsv",
        "timezone": "UTC",
        "tandem_api": server.api_config(),
        "fetch": {"retries": 1, "backoff_seconds": 0.05, "timeout_seconds": 10},
    }
    (workdir / "accounts.yaml").write_text(yaml.safe_dump(settings))
    return {
        "BOB_EMAIL": "bob@example.com",
        "BOB_PASSWORD": ACCOUNTS["bob@example.com"],
        "CAROL_EMAIL": "carol@example.com",
        "CAROL_PASSWORD": "not carol's password",
        "REQUESTS_CA_BUNDLE": str(server.ca_path),
        "CURL_CA_BUNDLE": str(server.ca_path),
    }


def max_concurrent_accounts(requests: list[dict]) -> int:
    """The most accounts whose fetch sessions (first to last data request) overlap at one moment."""
    spans: dict[str, list[float]] = {}
    for r in requests:
        if r["account"]:
            lo, hi = spans.setdefault(r["account"], [r["time"], r["answered"] or r["time"]])
            spans[r["account"]] = [min(lo, r["time"]), max(hi, r.get("answered") or r["time"])]
    edges = sorted([(lo, 1) for lo, _ in spans.values()] + [(hi, -1) for _, hi in spans.values()])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def expected_cgm_count(server: StandIn, email: str) -> int:
    """CGM readings the stand-in holds for an account: its G7 EGV events (code 399), one per measurement time."""
    return sum(
        len({e["eventProperties"]["egvTimeStamp"] for e in server.events(pump.serial) if e["eventCode"] == 399})
        for pump in server.account(email).pumps
    )


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, server):
    workdir = tmp_path_factory.mktemp("local") / "wf"
    env = setup(workdir, server)
    server.clear_requests()
    proc = snakemake(
        workdir, "-c3", "all", "--configfile", "accounts.yaml", "--resources", "tandem_api=2", check=False, env=env
    )
    return workdir, proc, server.requests


def test_failing_account_is_reported_and_the_others_complete(local_run, server):
    workdir, proc, _ = local_run
    assert proc.returncode != 0
    err = proc.stderr
    assert "1 of 3 accounts did not complete:" in err, err[-3000:]
    summary = err[err.index("1 of 3 accounts did not complete:") :].splitlines()[1]
    assert summary.strip().startswith("carol:") and "rejected" in summary.lower(), summary
    for acct in ("alice", "bob"):
        folder = workdir / "exports" / acct
        names = sorted(p.name for p in folder.iterdir())
        assert len([n for n in names if n.endswith((".parquet", ".csv"))]) == 28, names
        assert "tandem.duckdb" in names
    assert not (workdir / "exports" / "carol").exists()
    # The combined exports need every account, so none is written while one failed.
    assert not (workdir / "exports" / "combined").exists()
    assert not list((workdir / "exports").glob("*.parquet"))  # no single-account exports either
    for text in [proc.stdout, proc.stderr, *(p.read_text() for p in (workdir / "logs").rglob("*.log"))]:
        for password in ACCOUNTS.values():
            assert password not in text


def test_each_account_has_its_own_pumps_times_and_rows(local_run, server):
    workdir, _, requests = local_run
    for acct, email, zone in (
        ("alice", "alice@example.com", "America/New_York"),
        ("bob", "bob@example.com", "Europe/Berlin"),
    ):
        raw = pq.read_table(workdir / "exports" / acct / "raw_events.parquet").to_pylist()
        serials = {p.serial for p in server.account(email).pumps}
        assert {r["pump_serial"] for r in raw} == serials
        # The fetch asks for the event codes the web app asks for (the query's eventCodes).
        asked = {
            int(c)
            for r in requests
            if r["account"] == email and "eventCodes" in r["query"]
            for c in r["query"]["eventCodes"].split(",")
        }
        expected = sum(1 for s in serials for e in server.events(s) if e["eventCode"] in asked)
        assert len(raw) == expected
        cgm = pq.read_table(workdir / "exports" / acct / "cgm_readings.parquet")
        assert cgm.num_rows == expected_cgm_count(server, email)
        log = (workdir / "logs" / acct / "tables" / "place_events.log").read_text()
        assert zone in log
        token = workdir / "sensitive" / "tokens" / f"{acct}.json"
        assert stat.S_IMODE(token.stat().st_mode) == 0o600


def test_fetches_stay_within_the_concurrency_limit(local_run):
    _, _, requests = local_run
    assert {r["account"] for r in requests if r["account"]} >= {"alice@example.com", "bob@example.com"}
    assert max_concurrent_accounts(requests) <= 2


def test_combined_exports_carry_the_account(tmp_path, server):
    workdir = tmp_path / "wf"
    env = setup(workdir, server)
    env["CAROL_PASSWORD"] = ACCOUNTS["carol@example.com"]
    snakemake(workdir, "-c2", "all", "--configfile", "accounts.yaml", env=env)
    combined = pq.read_table(workdir / "exports" / "combined" / "cgm_readings.parquet").to_pylist()
    assert list(combined[0])[0] == "account"
    for acct in ("alice", "bob", "carol"):
        own = pq.read_table(workdir / "exports" / acct / "cgm_readings.parquet").to_pylist()
        mine = [{k: v for k, v in r.items() if k != "account"} for r in combined if r["account"] == acct]
        assert mine == own and own
    csv = (workdir / "exports" / "combined" / "cgm_readings.csv").read_text()
    assert csv.startswith("account,")
    assert len(csv.splitlines()) == len(combined) + 1


def test_cluster_generic_executor_gives_the_same_files(tmp_path, local_run, server):
    local_dir = local_run[0]
    workdir = tmp_path / "wf"
    env = setup(workdir, server)
    server.clear_requests()
    submit = PROJECT / "tests" / "cluster" / "submit.sh"
    proc = snakemake(
        workdir,
        "--executor",
        "cluster-generic",
        "--cluster-generic-submit-cmd",
        str(submit),
        "--jobs",
        "3",
        "--resources",
        "tandem_api=1",
        "--latency-wait",
        "5",
        "--seconds-between-status-checks",
        "1",
        "all",
        "--configfile",
        "accounts.yaml",
        check=False,
        env=env,
    )
    assert proc.returncode != 0
    assert "1 of 3 accounts did not complete:" in proc.stderr
    assert "carol:" in proc.stderr
    # Every job ran as its own process, started by the submit script.
    assert len(list((workdir / ".cluster").glob("job.*.out"))) >= 2 * 4
    for acct in ("alice", "bob"):
        for path in sorted((local_dir / "exports" / acct).glob("*")):
            if path.suffix in (".parquet", ".csv"):
                assert (workdir / "exports" / acct / path.name).read_bytes() == path.read_bytes(), path
    # With a limit of one, no two accounts fetched at the same time.
    assert max_concurrent_accounts(server.requests) == 1


def test_bad_sheet_is_one_line(tmp_path, server):
    workdir = tmp_path / "wf"
    env = setup(workdir, server)
    (workdir / "accounts.tsv").write_text(SHEET + "alice\t\tX\tY\t\t\t\n")
    proc = snakemake(workdir, "-n", "all", "--configfile", "accounts.yaml", check=False, env=env)
    assert proc.returncode == 1
    assert "line 5: account 'alice' is listed twice" in proc.stderr
    (workdir / "accounts.tsv").write_text(SHEET.replace("\tUS\t", "\tMars\t"))
    proc = snakemake(workdir, "-n", "all", "--configfile", "accounts.yaml", check=False, env=env)
    assert proc.returncode == 1
    assert "line 3, column region" in proc.stderr, proc.stderr[-2000:]
    for sheet, message in (
        (SHEET.replace("Europe/Berlin", "Mars/Olympus"), "line 3, column timezone: timezone: 'Mars/Olympus' is not"),
        (SHEET + "dave\t\tX\tY\t\t\t\textra\n", "line 5"),
        ("account\taccount\n", "names column 'account' twice"),
    ):
        (workdir / "accounts.tsv").write_text(sheet)
        proc = snakemake(workdir, "-n", "all", "--configfile", "accounts.yaml", check=False, env=env)
        assert proc.returncode == 1 and message in proc.stderr, proc.stderr[-2000:]
        assert len([line for line in proc.stderr.splitlines() if "Configuration error" in line]) == 1
    # No time zone for carol, in her row or in the config: the run stops (a pump's times are its wall
    # clock, never silently this machine's zone); with one in her row it goes ahead.
    (workdir / "accounts.tsv").write_text(SHEET)
    proc = snakemake(
        workdir, "-n", "all", "--configfile", "accounts.yaml", "--config", "timezone=", check=False, env=env
    )
    lines = [line for line in proc.stderr.splitlines() if line.startswith("Configuration error:")]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr[-2000:]
    assert "line 4, column timezone: empty, and the config sets no timezone; pump times are" in lines[0]
    (workdir / "accounts.tsv").write_text(SHEET.replace("CAROL_PASSWORD\t\t\t", "CAROL_PASSWORD\t\tAsia/Tokyo\t"))
    proc = snakemake(workdir, "-n", "all", "--configfile", "accounts.yaml", "--config", "timezone=", env=env)
    assert "exports/carol/cgm_readings.csv" in proc.stdout
    # Booleans typed on the command line: without the combined exports, `all` plans none of them.
    (workdir / "accounts.tsv").write_text(SHEET)
    proc = snakemake(
        workdir, "-n", "all", "--configfile", "accounts.yaml", "--config", "combined_exports=false", env=env
    )
    assert "exports/combined/" not in proc.stdout and "exports/alice/cgm_readings.csv" in proc.stdout


def layout_folders() -> set[str]:
    """Every folder name the single-account layout uses under data/, exports/, logs/ and reports/:
    read from the quoted paths of the rules and the package, with the raw store's fixed folders."""
    import re

    from tandem_export import demo, export_manifest, ids

    texts = [p.read_text() for p in [PROJECT / "Snakefile", *(PROJECT / "rules").glob("*.smk")]]
    texts += [p.read_text() for p in (PROJECT / "scripts").rglob("*.py")]
    found = {export_manifest.RECORDS, demo.DEMO_SERIAL}  # data/<dir>/export-records/, data/raw/DEMO-00000001/
    for text in texts:
        for quoted in re.findall(r'"((?:data|exports|logs|reports)/[^"\n]*)"', text):
            for prefix in ("{{acct}}", "{acct}", "{wc.acct}", "{wildcards.acct}", "{prefix}"):
                quoted = quoted.replace(prefix, "")
            found.update(part for part in quoted.split("/")[1:-1] if ids.matches(ids.ACCOUNT, part))
    return found


def test_the_reserved_ids_are_every_folder_of_the_layout():
    from tandem_export import config

    found = layout_folders()
    assert {"raw", "files", "fetch", "normalized", "imported", "tables", "export-records"} <= found
    assert found <= set(config.LAYOUT_FOLDERS), found - set(config.LAYOUT_FOLDERS)
    assert set(config.RESERVED_ACCOUNTS) == set(config.LAYOUT_FOLDERS) | {config.COMBINED}


REPORTED = ["raw", "tables", "fetch", "normalized", "imported", "files", "export-records", "combined"]


@pytest.mark.parametrize("ident", [*REPORTED, "RAW", "Tables", "Export-Records", "demo-00000001", "export", "report"])
def test_an_account_id_that_is_a_folder_of_the_layout_is_refused(tmp_path, monkeypatch, ident):
    from tandem_export import config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "accounts.tsv").write_text(f"account\temail_env\tpassword_env\nalice\tA\tB\n{ident}\tE\tP\n")
    merged = {**yaml.safe_load((PROJECT / "config.yaml").read_text()), "accounts": "accounts.tsv", "timezone": "UTC"}
    with pytest.raises(config.ConfigError) as caught:
        config.load(merged, str(PROJECT))
    message = str(caught.value)
    assert message.startswith("accounts: 'accounts.tsv' line 3") and repr(ident) in message, message
    assert "choose another id" in message and len(message.splitlines()) == 1
    assert not (tmp_path / "data").exists()
    # An id that merely contains one is fine.
    (tmp_path / "accounts.tsv").write_text(f"account\temail_env\tpassword_env\n{ident}2\tE\tP\n")
    (served,) = config.load(merged, str(PROJECT))[1].values()
    assert served.account == f"{ident}2"
