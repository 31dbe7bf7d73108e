"""Bad configuration stops the run before any job, with one line naming the key and the fix."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
import shutil
import subprocess
from unittest import mock

import hypothesis.strategies as st
import pytest
import yaml
from conftest import PROJECT, copy_workflow, snakemake
from hypothesis import HealthCheck, given, settings
from tandem_export import config as cfg
from tandem_export import ids


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("cfg") / "wf")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["source=web"], "source: 'web' is not allowed; use one of auto, tandem, demo, file"),
        (["start=2025-13-01"], "start: '2025-13-01' is not a date; write YYYY-MM-DD"),
        (["end=31.01.2025"], "end: '31.01.2025' is not a date"),
        (["start=2025-05-01", "end=2025-04-01"], "end: 2025-04-01 is before start 2025-05-01"),
        (["timezone=Mars/Olympus"], "timezone: 'Mars/Olympus' is not a known IANA time zone"),
        (["source=file", "timezone=UTC"], "files: the list is empty but source is 'file'"),
        (["source=file", "timezone=UTC", "files=[no/such/file.json]"], "files: 'no/such/file.json' does not exist"),
        (["source=file", "files=[config.yaml]"], "timezone: not set; pump times are the pump's wall clock"),
        (["source=file", "timezone=", "files=[config.yaml]"], "or timezone: local to use this machine's zone ("),
        (["unknown_key=1"], "config: 'unknown_key' is not a key here; remove it or fix its spelling"),
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


# --- no input gives a traceback ---------------------------------------------------------------

#: Config files that stopped the run with a traceback, or were accepted, before the schema ran
#: first and matched serials in full; and what the one line says instead.
HOSTILE = {
    "demo-not-a-block": ("demo: x\n", "demo: 'x' is not a block of keys"),
    "demo-days-text": ("demo: {days: abc}\n", "demo.days: 'abc' is not a whole number"),
    "demo-seed-text": ("demo: {seed: abc}\n", "demo.seed: 'abc' is not a whole number"),
    "demo-before-2008": ("demo: {end_date: 0001-01-01}\n", "demo.end_date: 0001-01-01 with demo.days 90"),
    "retries-two-minus": ("fetch: {retries: '--5'}\n", "fetch.retries: '--5' is not a whole number"),
    "zone-a-folder": ("timezone: America\n", "timezone: 'America' is not a known IANA time zone"),
    "files-a-number": ("source: file\ntimezone: UTC\nfiles: 5\n", "files: 5 is not a list"),
    "file-without-path": (
        "source: file\ntimezone: UTC\nfiles: [{pump_serial: '12345678'}]\n",
        "files[0]: {'pump_serial': '12345678'} has no 'path'; add it",
    ),
    "tandem-api-http": (
        "tandem_api: {login_url: 'http://127.0.0.1:45999/accounts/api/login'}\n",
        "tandem_api.login_url: 'http://127.0.0.1:45999/accounts/api/login' is not an https:// URL",
    ),
    "serial-with-newline": (
        'source: file\ntimezone: UTC\nfiles: [config.yaml]\nfile_pump_serial: "12345678\\n"\n',
        "file_pump_serial: '12345678\\n' is not a pump serial",
    ),
}


@pytest.mark.parametrize(("text", "expected"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_config_files_stop_with_one_line(workdir, text, expected):
    (workdir / "hostile.yaml").write_text(text)
    proc = snakemake(workdir, "-n", "all", "--configfile", "hostile.yaml", check=False)
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout + proc.stderr
    # (Snakemake prints an exception raised while parsing as "... in file ..." and the frames)
    assert "Traceback" not in out and not re.search(r'^\s*File ".*", line \d+', out, re.M), out
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("Using workflow specific profile")]
    assert len(lines) == 1 and lines[0].startswith("Configuration error:") and expected in lines[0], proc.stderr
    assert not (workdir / "data").exists()


DEFAULTS = yaml.safe_load((PROJECT / "config.yaml").read_text())
SCHEMA = yaml.safe_load((PROJECT / "schemas" / "config.schema.yaml").read_text())
#: Strings a hand check or a coercion treats specially, beside arbitrary text.
TRICKY = [
    *["", " ", "null", "None", "local", "Local", "all", "UNKNOWN", "12345678", "12345678\n", " 12345678"],
    *["2025-01-01", "2025-02-30", "0001-01-01", "9999-12-31", "Europe/Berlin", "America", "UTC", "../x"],
    *["/etc/passwd", "x" * 300, "30", "-5", "--5", "\u00b2", "1e999", "nan", "inf", "true", "no", "\ud800"],
    *["saved.json", "accounts.tsv", "US", "eu", "tandem", "file", "demo", "auto", "follows_zone", "9" * 5000],
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(TRICKY)
    | st.dates()
    | st.datetimes()
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(["path", "days"]) | st.integers(), inner, max_size=3)
    ),
    max_leaves=8,
)


def either(plausible: list) -> st.SearchStrategy:
    """One of the ``plausible`` values (so that runs get past the first key), or any value at all."""
    return st.sampled_from(plausible) | values


def block(keys: dict) -> st.SearchStrategy:
    """An object with some of ``keys`` (name -> strategy) and maybe an unknown key, or any value."""
    return st.fixed_dictionaries({}, optional={**keys, "unknown": values}) | values


def _nested(name: str) -> list[str]:
    return list(SCHEMA["properties"][name]["properties"])


#: Every top-level key of the schema (and an unknown one), each with its strategy.
FIELDS = {
    "source": either(["auto", "tandem", "demo", "file"]),
    "timezone": either(["UTC", "Europe/Berlin", "local", None]),
    "files": st.lists(
        block({"path": either(["saved.json", "no/such.json"]), "pump_serial": either(["12345678", 12345678, 123])}),
        max_size=3,
    )
    | either([["saved.json"], "saved.json"]),
    "file_pump_serial": either(["12345678", 12345678, 123]),
    "pump_serial": either(["all", "12345678", ["12345678", 90512345]]),
    "region": either(["US", "eu", None]),
    "pump_clock": either(["recorded_changes", "follows_zone"]),
    "tandem_api": block({k: either(["https://example.com/x"]) for k in _nested("tandem_api")}),
    "fetch": block({k: either([v, str(v)]) for k, v in cfg.FETCH_DEFAULTS.items()}),
    "accounts": either(["accounts.tsv", None]),
    "combined_exports": either([True, "false"]),
    "fetch_latest": either([True, False, "false", "true", "no"]),
    "start": either(["2025-01-01", dt.date(2025, 1, 1), None]),
    "end": either(["2025-12-31", dt.date(2025, 12, 31), None]),
    "demo": block(
        {
            "seed": either([1, "7"]),
            "end_date": either(["2025-06-30", dt.date(2025, 6, 30)]),
            "days": either([1, 30, "30"]),
        }
    ),
    "unknown_key": values,
}
assert set(FIELDS) == {*SCHEMA["properties"], "unknown_key"}
assert set(_nested("demo")) == {"seed", "end_date", "days"}  # every nested key of demo has a strategy
overrides = st.lists(st.one_of([st.tuples(st.just(k), s) for k, s in FIELDS.items()]), max_size=4).map(dict)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A project folder with a saved file and an accounts sheet, and no credentials in the environment."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "saved.json").write_text('{"events": []}')
    (tmp_path / "accounts.tsv").write_text(
        "account\temail_env\tpassword_env\talice\tE\tP\n".replace("\talice", "\nalice")
    )
    for name in ("TANDEM_EMAIL", "TANDEM_PASSWORD", "TANDEM_REGION"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=overrides, credentials=st.booleans())
def test_any_config_value_is_accepted_or_refused_in_one_line(isolated, changes, credentials):
    """Every top-level key, and the keys of demo, fetch, files and tandem_api, holding any JSON-like
    value (or a date: YAML reads unquoted dates): the parse-time entry point returns the settings
    or raises ConfigError with a one-line message, never another exception."""
    config = copy.deepcopy(DEFAULTS)
    config.update(copy.deepcopy(changes))
    env = {"TANDEM_EMAIL": "person@example.com", "TANDEM_PASSWORD": "secret"} if credentials else {}
    with mock.patch.dict(os.environ, env):
        try:
            shared, served = cfg.load(config, str(PROJECT))
        except cfg.ConfigError as exc:
            message = str(exc)
            assert message.strip() and len(message.splitlines()) == 1, message
            return
    assert isinstance(shared, cfg.Settings) and served
    assert all(isinstance(s.timezone, str) and s.timezone for s in served.values())


# --- identifiers match in full, in the schemas too ---------------------------------------------

CONFIG_SCHEMA = PROJECT / "schemas" / "config.schema.yaml"
ACCOUNTS_SCHEMA = PROJECT / "schemas" / "accounts.schema.yaml"
#: Every place of the config schema that holds one pump serial, as a config holding ``v`` there.
SERIAL_PLACES = {
    "file_pump_serial": lambda v: {"file_pump_serial": v},
    "files[0].pump_serial": lambda v: {"files": [{"path": "saved.json", "pump_serial": v}]},
    "pump_serial[0]": lambda v: {"pump_serial": [v]},
}
AROUND = {"newline after": "12345678\n", "return after": "12345678\r", "space before": " 12345678"}


def schema_accepts(part: dict) -> bool:
    """Whether the config schema itself (jsonschema, no hand check) accepts a demo config with ``part``."""
    return cfg.schema_problem({"source": "demo", **part}, CONFIG_SCHEMA) is None


@pytest.mark.parametrize("bad", AROUND.values(), ids=AROUND.keys())
@pytest.mark.parametrize("place", [*SERIAL_PLACES, "pump_serial"])
def test_the_schema_itself_refuses_a_serial_with_anything_around_it(place, bad):
    put = SERIAL_PLACES.get(place, lambda v: {"pump_serial": v})
    assert schema_accepts(put("12345678"))
    assert not schema_accepts(put(bad))


@pytest.mark.parametrize("bad", ["{}\n", "{}\r", " {}"], ids=["newline after", "return after", "space before"])
@pytest.mark.parametrize(
    ("column", "good"),
    [("account", "alice"), ("email_env", "BOB_EMAIL"), ("region", "EU"), ("pump_serial", "12345678")],
)
def test_the_accounts_schema_itself_refuses_a_cell_with_anything_around_it(column, good, bad):
    assert cfg.schema_problem({"account": "alice", column: good}, ACCOUNTS_SCHEMA) is None
    where, _ = cfg.schema_problem({"account": "alice", column: bad.format(good)}, ACCOUNTS_SCHEMA)
    assert where == column


#: Serial-like strings on both sides of the line, beside arbitrary text.
SERIAL_CASES = [
    *["12345678", "DEMO-00000001", "UNKNOWN", "all", "a", "-1", "1-", "x" * 40, "x" * 41, "x" * 64, "x" * 65, ""],
    *["12345678\n", "12345678\r", " 12345678", "1234 5678", "ab_c", "\u0661\u0662", "\u00df", "1\n2", "a\n"],
]


@settings(max_examples=300, deadline=None)
@given(text=st.sampled_from(SERIAL_CASES) | st.text(alphabet="aZ09-_ .\n\r\t\u00df\u0661", max_size=70) | st.text())
def test_schema_patterns_accept_exactly_what_ids_does(text):
    serial = ids.matches(ids.SERIAL, text)
    for place, put in SERIAL_PLACES.items():
        assert schema_accepts(put(text)) == serial, place
    assert schema_accepts({"pump_serial": text}) == (serial or text == "all")
    account = cfg.schema_problem({"account": text}, ACCOUNTS_SCHEMA) is None
    assert account == ids.matches(ids.ACCOUNT, text)


def _patterns(schema) -> list[str]:
    """Every ``pattern`` of a JSON schema (walked through its objects and lists)."""
    if isinstance(schema, dict):
        own = [schema["pattern"]] if isinstance(schema.get("pattern"), str) else []
        return own + [p for value in schema.values() for p in _patterns(value)]
    if isinstance(schema, list):
        return [p for value in schema for p in _patterns(value)]
    return []


@pytest.mark.skipif(shutil.which("node") is None, reason="node (an ECMA-262 regex engine) is not installed")
def test_schema_patterns_mean_the_same_in_ecma_262_and_python():
    """JSON Schema patterns are ECMA-262 regexes; jsonschema runs them with Python's re.search. Every
    pattern of both schemas must give the same answer in both, on cases with and without newlines."""
    patterns = sorted(
        {p for path in (CONFIG_SCHEMA, ACCOUNTS_SCHEMA) for p in _patterns(yaml.safe_load(path.read_text()))}
    )
    assert len(patterns) >= 6
    cases = [*SERIAL_CASES, "US", "us", "US\n", "BOB_EMAIL", "BOB_EMAIL\n", "alice", "1, 2", "1, 2\n", "\n", "all\n"]
    script = (
        "const {patterns, cases} = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(patterns.map(p => cases.map(c => [new RegExp(p).test(c), new RegExp(p, 'u').test(c)]))));"
    )
    proc = subprocess.run(
        ["node", "-e", script], input=json.dumps({"patterns": patterns, "cases": cases}), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    ecma = json.loads(proc.stdout)
    for pattern, answers in zip(patterns, ecma, strict=True):
        for case, (plain, unicode) in zip(cases, answers, strict=True):
            python = re.search(pattern, case) is not None
            assert python == plain == unicode, (pattern, case, python, plain, unicode)


@pytest.mark.parametrize("serial", ["12345678\n", " 12345678", "1/2", ""])
def test_the_hand_check_of_a_saved_files_serial_matches_in_full(tmp_path, monkeypatch, serial):
    # config._file_entries is also called without the schema (tests/test_file_source.py does).
    monkeypatch.chdir(tmp_path)
    (tmp_path / "saved.json").write_text('{"events": []}')
    for config in (
        {"files": [{"path": "saved.json", "pump_serial": serial}]},
        {"files": ["saved.json"], "file_pump_serial": serial},
    ):
        with pytest.raises(cfg.ConfigError, match="is not a pump serial"):
            cfg._file_entries(config, str(PROJECT))


# --- the token cache stays inside sensitive/ ----------------------------------------------------

#: token_cache values that had the token written over them (issue 15), and others like them.
NOT_A_TOKEN_CACHE = [
    *["config.yaml", "Snakefile", "data/raw/files/x.raw", "../outside.json", "/tmp/x/token.json", "sensitive"],
    *[
        "sensitive/",
        "sensitive/../config.json",
        "sensitive/./token.json",
        "sensitive//token.json",
        "./sensitive/t.json",
    ],
    *[
        "sensitive/token.json\n",
        "sensitive/token.yaml",
        "sensitive/.token.json",
        "sensitive/a..json",
        "Sensitive/t.json",
    ],
]


@pytest.mark.parametrize("value", NOT_A_TOKEN_CACHE)
def test_a_token_cache_outside_sensitive_is_refused_in_one_line(tmp_path, monkeypatch, value):
    (tmp_path / "config.yaml").write_text("source: demo\n")
    for load in (
        lambda: settings_for(tmp_path, monkeypatch, credentials=True, timezone="UTC", fetch={"token_cache": value}),
        lambda: cfg._fetch_settings({"token_cache": value}),  # the hand check, without the schema
    ):
        with pytest.raises(cfg.ConfigError) as caught:
            load()
        message = str(caught.value)
        assert message.startswith(f"fetch.token_cache: {value!r} is not ") and "sensitive/" in message, message
        assert len(message.splitlines()) == 1
    assert (tmp_path / "config.yaml").read_text() == "source: demo\n"


@pytest.mark.parametrize("value", ["sensitive/token.json", "sensitive/a/b-c_d.e.json", "sensitive/T0.json"])
def test_a_token_cache_inside_sensitive_is_accepted_and_sheet_caches_follow_it(tmp_path, monkeypatch, value):
    (single,) = settings_for(
        tmp_path, monkeypatch, credentials=True, timezone="UTC", fetch={"token_cache": value}
    ).values()
    assert single.fetch["token_cache"] == value
    (tmp_path / "accounts.tsv").write_text("account\temail_env\tpassword_env\nalice-2\tE\tP\n")
    (alice,) = settings_for(
        tmp_path, monkeypatch, accounts="accounts.tsv", timezone="UTC", fetch={"token_cache": value}
    ).values()
    assert alice.fetch["token_cache"] == f"{value.rsplit('/', 1)[0]}/tokens/alice-2.json"
    assert ids.matches(ids.TOKEN_CACHE, alice.fetch["token_cache"])


@settings(max_examples=300, deadline=None)
@given(
    text=st.sampled_from(NOT_A_TOKEN_CACHE + ["sensitive/token.json", "sensitive/a/b.json"])
    | st.text(alphabet="sentiv/.json_-aA0\n", max_size=40)
)
def test_the_schema_token_cache_pattern_accepts_exactly_what_ids_does(text):
    assert schema_accepts({"fetch": {"token_cache": text}}) == ids.matches(ids.TOKEN_CACHE, text)


# --- no silent time zone -----------------------------------------------------------------------

NOT_SET = (
    "timezone: not set; pump times are the pump's wall clock, so give the zone it shows, e.g. "
    "--config timezone=Europe/Berlin (an IANA name), or timezone: local to use this machine's zone ("
)
CREDENTIALS = {"TANDEM_EMAIL": "person@example.com", "TANDEM_PASSWORD": "correct horse battery staple"}


@pytest.mark.parametrize("source", ["auto", "tandem"])
def test_tandem_without_a_timezone_stops_before_any_job(workdir, source):
    # source auto finds the credentials in the environment, so it is tandem.
    proc = snakemake(workdir, "-n", "all", "--config", f"source={source}", env=CREDENTIALS, check=False)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith("Configuration error:")]
    assert lines == [f"Configuration error: {NOT_SET}UTC)"], proc.stderr  # the tests run with TZ=UTC
    assert not (workdir / "data").exists()


def settings_for(tmp_path, monkeypatch, machine: str = "America/Chicago", credentials: bool = False, **config) -> dict:
    """cfg.load on the default config changed by ``config`` in ``tmp_path``, on a machine set to
    ``machine``, with Tandem Source credentials in the environment or none: {prefix: Settings}."""
    import tzlocal

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tzlocal, "get_localzone_name", lambda: machine)
    for name in ("TANDEM_EMAIL", "TANDEM_PASSWORD", "TANDEM_REGION"):
        monkeypatch.delenv(name, raising=False)
    if credentials:
        for name, value in CREDENTIALS.items():
            monkeypatch.setenv(name, value)
    (tmp_path / "saved.json").write_text('{"events": []}')
    merged = copy.deepcopy(DEFAULTS)
    merged.update(config)
    return cfg.load(merged, str(PROJECT))[1]


def test_which_sources_need_a_timezone(tmp_path, monkeypatch):
    file = {"source": "file", "files": ["saved.json"]}
    for config in (file, {**file, "timezone": "null"}, {**file, "timezone": ""}):
        with pytest.raises(cfg.ConfigError) as caught:
            settings_for(tmp_path, monkeypatch, **config)
        assert str(caught.value) == f"{NOT_SET}America/Chicago)"
    for source in ("tandem", "auto"):
        with pytest.raises(cfg.ConfigError, match="^timezone: not set"):
            settings_for(tmp_path, monkeypatch, credentials=True, source=source)
    # The demo keeps its own zone; auto without credentials is the demo.
    for source in ("demo", "auto"):
        (demo,) = settings_for(tmp_path, monkeypatch, source=source).values()
        assert (demo.source, demo.timezone, demo.timezone_from) == (
            "demo",
            "America/Chicago",
            "the demo pump's own zone",
        )
    (given,) = settings_for(tmp_path, monkeypatch, timezone="Europe/Berlin", **file).values()
    assert (given.timezone, given.timezone_from) == ("Europe/Berlin", "config")


def test_local_is_this_machines_zone_and_part_of_the_lineage(tmp_path, monkeypatch):
    file = {"source": "file", "files": ["saved.json"], "timezone": "local"}
    (here,) = settings_for(tmp_path, monkeypatch, machine="Europe/Berlin", **file).values()
    assert (here.timezone, here.timezone_from) == ("Europe/Berlin", "local (this machine's zone)")
    (there,) = settings_for(tmp_path, monkeypatch, machine="Asia/Tokyo", **file).values()
    assert there.timezone == "Asia/Tokyo" and there.lineage != here.lineage  # the tables are rebuilt
    with pytest.raises(cfg.ConfigError, match="^timezone: local, but this machine's zone cannot be determined"):
        settings_for(tmp_path, monkeypatch, machine="Not/AZone", **file)


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules", "America", "Europe/", "/etc/localtime"])
def test_a_zone_that_names_no_place_is_refused_in_one_line(tmp_path, monkeypatch, zone):
    # localtime read pump times in this machine's zone without the warning timezone: local gives.
    file = {"source": "file", "files": ["saved.json"]}
    expected = (
        f"timezone: {zone!r} is not a known IANA time zone; use a name like Europe/Berlin or America/New_York, "
        "or local for this machine's zone"
    )
    with pytest.raises(cfg.ConfigError) as caught:
        settings_for(tmp_path, monkeypatch, timezone=zone, **file)
    assert str(caught.value) == expected
    (tmp_path / "accounts.tsv").write_text(f"account\temail_env\tpassword_env\ttimezone\nalice\tE\tP\t{zone}\n")
    with pytest.raises(cfg.ConfigError) as caught:
        settings_for(tmp_path, monkeypatch, accounts="accounts.tsv")
    assert str(caught.value) == f"accounts: 'accounts.tsv' line 2, column timezone: {expected}"
    # Nor is a machine set to one of them a zone for timezone: local.
    with pytest.raises(cfg.ConfigError, match="^timezone: local, but this machine's zone cannot be determined"):
        settings_for(tmp_path, monkeypatch, machine=zone, timezone="local", **file)


@pytest.mark.parametrize("zone", ["UTC", "Etc/UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "EST5EDT"])
def test_every_zone_of_a_place_is_accepted(tmp_path, monkeypatch, zone):
    (given,) = settings_for(tmp_path, monkeypatch, timezone=zone, source="file", files=["saved.json"]).values()
    assert (given.timezone, given.timezone_from) == (zone, "config")
    (here,) = settings_for(
        tmp_path, monkeypatch, machine=zone, timezone="local", source="file", files=["saved.json"]
    ).values()
    assert here.timezone == zone


def test_every_sheet_account_needs_a_timezone(tmp_path, monkeypatch):
    (tmp_path / "accounts.tsv").write_text(
        "account\temail_env\tpassword_env\ttimezone\n"
        "alice\tA_EMAIL\tA_PASSWORD\tlocal\n"
        "bob\tB_EMAIL\tB_PASSWORD\tEurope/Berlin\n"
        "carol\tC_EMAIL\tC_PASSWORD\t\n"
    )
    with pytest.raises(cfg.ConfigError) as caught:
        settings_for(tmp_path, monkeypatch, accounts="accounts.tsv")
    message = str(caught.value)
    assert message.startswith(
        "accounts: 'accounts.tsv' line 4, column timezone: empty, and the config sets no timezone;"
    )
    assert "timezone: local to use this machine's zone (America/Chicago)" in message
    assert message.endswith("or write the zone of carol's pump in this cell")
    served = settings_for(tmp_path, monkeypatch, accounts="accounts.tsv", timezone="local")
    assert {s.account: (s.timezone, s.timezone_from) for s in served.values()} == {
        "alice": ("America/Chicago", "local (this machine's zone)"),
        "bob": ("Europe/Berlin", "accounts sheet (bob)"),
        "carol": ("America/Chicago", "local (this machine's zone)"),
    }
    (tmp_path / "accounts.tsv").write_text("account\temail_env\tpassword_env\ttimezone\nbob\tB\tP\tEurope/Berlin\n")
    (bob,) = settings_for(tmp_path, monkeypatch, accounts="accounts.tsv").values()  # no config zone needed
    assert (bob.timezone, bob.timezone_from) == ("Europe/Berlin", "accounts sheet (bob)")


def test_timezone_local_is_a_warning_at_parse_time_and_in_the_place_events_log(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    saved = tmp_path / "saved.json"
    event = {
        "eventCode": 279,
        "sequenceGroup": 1,
        "sequenceNumber": 1,
        "pumpDateTime": "2025-03-01T10:00:00",
        "eventProperties": {"commandedRateSource": 1, "profileBasalRate": 800, "commandedRate": 800},
    }
    saved.write_text(json.dumps({"events": [event]}))
    config = ["--config", "source=file", f"files=[{saved}]", "file_pump_serial=12345678", "timezone=local"]
    proc = snakemake(workdir, "-c1", "exports/basal_deliveries.csv", *config)
    warning = (
        "Warning: timezone: local reads pump times in this machine's zone, UTC; set the pump's zone if they differ"
    )
    assert proc.stderr.splitlines().count(warning) == 1, proc.stderr
    log = (workdir / "logs" / "tables" / "place_events.log").read_text()
    assert "WARNING: time zone UTC (local (this machine's zone)): pump times are read in this machine's zone" in log
    assert "2025-03-01T10:00:00Z" in (workdir / "exports" / "basal_deliveries.csv").read_text()  # UTC, as the machine


def test_a_new_saved_file_changes_the_lineage_but_not_the_cells_lineage(tmp_path, monkeypatch):
    # The cells' digests cover the windows their rows come from; their lineage leaves the list out,
    # so that a new file (a new day) keeps the cells it does not touch.  A new zone changes both.
    one = {"source": "file", "files": ["saved.json"], "timezone": "Europe/Berlin"}
    (before,) = settings_for(tmp_path, monkeypatch, **one).values()
    (tmp_path / "more.json").write_text('{"events": [], "clockChanges": []}')
    (after,) = settings_for(tmp_path, monkeypatch, **{**one, "files": ["saved.json", "more.json"]}).values()
    assert after.lineage != before.lineage and after.cells_lineage == before.cells_lineage
    (moved,) = settings_for(tmp_path, monkeypatch, **{**one, "timezone": "Asia/Tokyo"}).values()
    assert moved.cells_lineage != before.cells_lineage and moved.lineage != before.lineage
