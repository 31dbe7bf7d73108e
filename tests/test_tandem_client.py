"""The Tandem Source client (tandem.TandemClient) against the stand-in: nothing it reads is trusted.

A network fault (an answer cut short, invalid JSON where JSON is expected, a dropped connection, a
timeout, a 429 or a 5xx) in any step of the login or the data calls is retried with the policy's
backoff and then reported as one line naming the step; a login refusal is never retried; a
Retry-After beyond fetch.max_wait_seconds stops at once; the id_token and the token cache are
checked before anything in them is used.  Waits are recorded by a fake ``time.sleep`` (the same
fake works for urllib3's own sleeps, so each test also runs against the client before issue 15);
no test measures seconds.
"""

from __future__ import annotations

import datetime as dt
import http.client
import io
import json
import logging
import re
import time
import uuid

import pytest
import requests
import urllib3
import yaml
from conftest import PROJECT, copy_workflow, snakemake
from standin import StandIn
from tandem_export import answers, config, layouts, tandem

EMAIL = "person@example.com"
PASSWORD = "correct horse battery staple"
RETRIES = 2
WHAT = "pump 1 window 2025-05-13..2025-05-15"
FIRST, LAST = dt.date(2025, 5, 13), dt.date(2025, 5, 15)
A_UUID = "0f1e2d3c-4b5a-4697-8877-665544332211"
SCHEMA = PROJECT / "schemas" / "config.schema.yaml"

#: step -> (part of the path its requests have, the name the client's messages give it)
STEPS = {
    "login": ("/accounts/api/login", "login"),
    "authorize": ("/connect/authorize", "login (authorize)"),
    "token": ("/connect/token", "login (token)"),
    "keys": ("/jwks", "login (keys)"),
    "pumper": ("/pumper/", "pump list"),
    "pump-logs": ("/pump-logs/", WHAT),
}
#: Requests of each step in a login and a data call without faults (authorize: two hops).
CLEAN = {"login": 1, "authorize": 2, "token": 1, "keys": 1, "pumper": 1, "pump-logs": 1}
#: fault kind -> (its options, a pattern of how the message words it, whether it is a broken body)
FAULTS = {
    "500": ({}, r"Tandem Source answered HTTP 500", False),
    "429": ({"retry_after": 1}, r"Tandem Source answered HTTP 429", False),
    "drop": ({}, r"could not reach Tandem Source \(ConnectionError: \w+\)", False),
    "truncated": ({}, r"Tandem Source answered with a broken body \(cut short\)", True),
    "badjson": ({}, r"Tandem Source answered with a broken body \(invalid JSON\)", True),
}
#: Combinations that are no fault: the authorize hops are redirects whose body nobody reads (and a
#: 200 there is no redirect: "no authorization code came back"); without a check, pump-logs bodies
#: are returned as they came (the check tests below cover them).
NOT_FAULTS = {("authorize", "truncated"), ("authorize", "badjson"), ("pump-logs", "badjson")}
CASES = [(step, kind) for step in STEPS for kind in FAULTS if (step, kind) not in NOT_FAULTS]


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    with StandIn(tmp_path_factory.mktemp("server"), retired_days=2, current_days=3) as s:
        yield s


@pytest.fixture
def server(standin):
    """The module's stand-in with an empty request log; faults left over are dropped afterwards."""
    standin.clear_requests()
    yield standin
    standin.clear_faults()
    assert not standin.errors


@pytest.fixture(autouse=True)
def trust_the_standin(monkeypatch, server):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_path))


@pytest.fixture(autouse=True)
def sleeps(monkeypatch):
    """Every wait asked for, in seconds; nothing really sleeps."""
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    return waits


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def make_client(server, tmp_path, *, retries=RETRIES, max_wait=300, timeout=5.0, password=PASSWORD, cache=None):
    log = logging.getLogger(f"test_tandem_client.{uuid.uuid4().hex}")
    log.propagate = False
    log.setLevel(logging.INFO)
    lines = Lines()
    log.addHandler(lines)
    policy = tandem.RetryPolicy(retries, 0.5, timeout)
    policy.max_wait_seconds = max_wait  # an attribute, so that the old RetryPolicy takes it too
    client = tandem.TandemClient(
        tandem.Credentials(EMAIL, password),
        tandem.api_urls("US", server.api_config()),
        cache or tmp_path / "token.json",
        policy,
        log,
    )
    client.test_lines = lines.lines
    return client


def hits(server, part: str) -> int:
    return sum(part in r["path"] for r in server.requests)


def current(server):
    return server.account().pumps[1]


def do_step(client, server, step):
    if step == "pumper":
        return client.pumper()
    if step == "pump-logs":
        return client.pump_logs(current(server).assignment_id, FIRST, LAST, layouts.WEB_APP_EVENT_CODES, WHAT)
    return client.login()


def assert_one_clean_line(message: str, server, client=None):
    """One line, no disk advice, and no secret: not the password, not any token the server issued."""
    assert "\n" not in message and "free space" not in message
    texts = [message, *(client.test_lines if client else [])]
    for secret in [PASSWORD, *server.issued_tokens]:
        assert not any(secret in text for text in texts)


# --- network faults: retried in every step, then one line ---------------------------------------


@pytest.mark.parametrize(("step", "kind"), CASES)
def test_one_fault_in_any_step_is_retried(server, tmp_path, sleeps, step, kind):
    options = FAULTS[kind][0]
    server.inject(kind, path_contains=STEPS[step][0], **options)
    client = make_client(server, tmp_path)
    answer = do_step(client, server, step)
    assert hits(server, STEPS[step][0]) == CLEAN[step] + 1
    assert server.faults_pending == 0
    # urllib3's backoff retries the first time at once; a 429 waits its Retry-After instead.
    assert sleeps == ([1] if kind == "429" else [])
    if step == "pumper":
        assert answer["pumps"]
    elif step == "pump-logs":
        assert answers.check_pump_logs_body(answer) > 0
    else:
        assert client.access_token and client.pumper()["pumps"]


@pytest.mark.parametrize(("step", "kind"), CASES)
def test_a_fault_that_lasts_is_retried_then_one_line_naming_the_step(server, tmp_path, sleeps, step, kind):
    options, wording, broken = FAULTS[kind]
    path, name = STEPS[step]
    client = make_client(server, tmp_path)
    if step in ("pumper", "pump-logs"):
        client.login()
    server.clear_requests()
    server.inject(kind, count=RETRIES + 1, path_contains=path, **options)
    with pytest.raises(tandem.TandemError) as caught:
        do_step(client, server, step)
    assert hits(server, path) == RETRIES + 1 and server.faults_pending == 0
    message = str(caught.value)
    assert re.fullmatch(f"{re.escape(name)}: {wording} after {RETRIES} retries; try again later", message), message
    assert type(caught.value).__name__ == ("BrokenAnswer" if broken else "Unavailable")
    # The same exponential backoff with jitter as before: 0 (not slept), then 0.5 * 2 + up to 0.25.
    if kind == "429":
        assert sleeps == [1, 1]
    else:
        assert len(sleeps) == RETRIES - 1 and all(1.0 <= s <= 1.25 for s in sleeps)
    assert_one_clean_line(message, server, client)
    if step not in ("pumper", "pump-logs"):
        assert not (tmp_path / "token.json").exists()


def test_a_token_answer_cut_short_is_retried_with_a_new_code(server, tmp_path):
    # The server may have used the code up before the answer broke; a code is never sent twice.
    server.inject("truncated", path_contains="/connect/token")
    client = make_client(server, tmp_path)
    client.login()
    assert (
        hits(server, "/accounts/api/login"),
        hits(server, "/connect/authorize"),
        hits(server, "/connect/token"),
    ) == (
        1,
        4,
        2,
    )
    assert client.pumper()["pumps"]


def test_a_timeout_is_retried_then_named(server, tmp_path):
    # The stand-in's "slow" answer beyond fetch.timeout_seconds: a read timeout.
    client = make_client(server, tmp_path, retries=1, timeout=0.3)
    client.login()
    server.inject("slow", count=2, path_contains="/pumper/", seconds=1.0)
    with pytest.raises(tandem.TandemError) as caught:
        client.pumper()
    assert hits(server, "/pumper/") == 2
    assert str(caught.value) == (
        "pump list: Tandem Source did not answer within 0.3 s after 1 retry; try again later, "
        "or raise fetch.timeout_seconds"
    )


def closed_port() -> int:
    """A port of 127.0.0.1 where nothing listens (bound, then closed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


REFUSED = (
    "could not connect to Tandem Source (connection refused) after 1 retry; check the tandem_api URLs and this "
    "machine's network connection, or try again later"
)


@pytest.mark.parametrize("step", ["login", "pump list"])
def test_a_connection_refused_is_named_so_not_a_timeout(server, tmp_path, sleeps, step):
    # urllib3's NewConnectionError subclasses ConnectTimeoutError: every refusal was "did not answer within 60 s".
    nothing = f"https://127.0.0.1:{closed_port()}/"
    client = make_client(server, tmp_path, retries=1, timeout=5.0)
    if step == "login":
        client.urls = {**client.urls, "login_url": nothing + "accounts/api/login"}
    else:
        client.login()
        client.urls = {**client.urls, "source_url": nothing}
    with pytest.raises(tandem.Unavailable) as caught:
        client.login() if step == "login" else client.pumper()
    assert str(caught.value) == f"{step}: {REFUSED}"
    assert_one_clean_line(str(caught.value), server, client)


def test_a_failed_name_lookup_is_named_so(server, tmp_path, monkeypatch, sleeps):
    import socket

    def no_such_name(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    client = make_client(server, tmp_path, retries=1)
    client.urls = {**client.urls, "login_url": "https://tandem.invalid/accounts/api/login"}
    with pytest.raises(tandem.Unavailable) as caught:
        client.login()
    assert str(caught.value) == (
        "login: the address of Tandem Source could not be looked up (DNS) after 1 retry; check this machine's "
        "network connection and the tandem_api URLs, or try again later"
    )


def test_a_connect_that_times_out_is_still_a_timeout(server, tmp_path, monkeypatch, sleeps):
    import urllib3.util.connection

    def no_answer(*args, **kwargs):
        raise TimeoutError("timed out")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", no_answer)
    client = make_client(server, tmp_path, retries=1, timeout=0.3)
    with pytest.raises(tandem.Unavailable) as caught:
        client.login()
    assert str(caught.value) == (
        "login: Tandem Source did not answer within 0.3 s after 1 retry; try again later, or raise "
        "fetch.timeout_seconds"
    )


def _every_requests_exception() -> list[BaseException]:
    out = []
    for _, cls in sorted(vars(requests.exceptions).items()):
        if isinstance(cls, type) and issubclass(cls, requests.exceptions.RequestException):
            try:
                out.append(cls("boom"))
            except TypeError:  # JSONDecodeError wants (message, document, position)
                out.append(cls("boom", "", 0))
    return [
        *out,
        OSError("Could not find a suitable TLS CA certificate bundle, invalid path: /nowhere"),
        urllib3.exceptions.ProtocolError("Connection aborted."),
        http.client.IncompleteRead(b""),
    ]


@pytest.mark.parametrize("error", _every_requests_exception(), ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("call", ["login", "pumper"])
def test_no_requests_exception_escapes_the_client(server, tmp_path, monkeypatch, error, call):
    client = make_client(server, tmp_path)
    if call == "pumper":
        client.login()
    calls = []

    def fail(self, method, url, **kwargs):
        calls.append(url)
        raise error

    monkeypatch.setattr(requests.Session, "request", fail)
    with pytest.raises(tandem.TandemError) as caught:
        client.login() if call == "login" else client.pumper()
    # Not an OSError: runlog would call it a disk problem ("free space or fix permissions").
    assert not isinstance(caught.value, OSError)
    assert 1 <= len(calls) <= RETRIES + 1
    assert str(caught.value).startswith("login: " if call == "login" else "pump list: ")
    assert_one_clean_line(str(caught.value), server, client)


def test_a_certificate_that_cannot_be_verified_is_not_retried(server, tmp_path, monkeypatch, sleeps):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    calls = []
    request = requests.Session.request

    def counted(self, *args, **kwargs):
        calls.append(args)
        return request(self, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", counted)
    client = make_client(server, tmp_path)
    with pytest.raises(tandem.TandemError) as caught:
        client.login()
    message = str(caught.value)
    assert message.startswith("login: ") and "certificate" in message and "REQUESTS_CA_BUNDLE" in message
    assert len(calls) == 1 and sleeps == []


# --- a login refusal is never retried --------------------------------------------------------------


@pytest.mark.parametrize("fault", [None, "401", "403"])
def test_a_login_refusal_is_never_retried(server, tmp_path, sleeps, fault):
    if fault:
        server.inject(fault, count=5, path_contains="/accounts/api/login")
    client = make_client(server, tmp_path, password=PASSWORD if fault else "a wrong guess")
    with pytest.raises(tandem.LoginRejected) as caught:
        client.login()
    assert hits(server, "/accounts/api/login") == 1 and hits(server, "/connect/") == 0 and sleeps == []
    message = str(caught.value)
    assert message.startswith(f"login: Tandem Source rejected the login for {EMAIL} (HTTP ")
    assert "not retried" in message and "a wrong guess" not in message
    assert_one_clean_line(message, server, client)


# --- Retry-After ------------------------------------------------------------------------------------


@pytest.mark.parametrize("step", ["token", "pumper"])
def test_a_retry_after_beyond_max_wait_stops_at_once(server, tmp_path, sleeps, step):
    path, name = STEPS[step]
    client = make_client(server, tmp_path)
    if step == "pumper":
        client.login()
    server.clear_requests()
    server.inject("429", count=10, path_contains=path, retry_after=3600)
    with pytest.raises(tandem.TandemError) as caught:
        do_step(client, server, step)
    assert str(caught.value) == (
        f"{name}: Tandem Source asked to wait 3600 s before trying again (Retry-After), more than "
        "fetch.max_wait_seconds (300 s); try again later, or raise fetch.max_wait_seconds"
    )
    assert hits(server, path) == 1 and sleeps == []


def test_a_retry_after_within_max_wait_is_honoured(server, tmp_path, sleeps):
    client = make_client(server, tmp_path, max_wait=10)
    client.login()
    server.inject("429", path_contains="/pumper/", retry_after=10)
    assert client.pumper()["pumps"]
    assert sleeps == [10] and hits(server, "/pumper/") == 2
    server.inject("429", path_contains="/pumper/", retry_after=11)
    with pytest.raises(tandem.TandemError, match=r"asked to wait 11 s .* \(10 s\)"):
        client.pumper()


# --- the id_token and the token cache ---------------------------------------------------------------


@pytest.mark.parametrize("claim", ["exp", "iat"])
def test_an_id_token_without_exp_or_iat_is_refused(server, tmp_path, claim):
    server.inject("claims", drop=[claim])
    client = make_client(server, tmp_path)
    with pytest.raises(tandem.TandemError) as caught:
        client.login()
    assert str(caught.value) == (
        f"login: the id_token carries no '{claim}' claim; refusing it (the login flow may have changed)"
    )
    assert hits(server, "/connect/token") == 1 and client.access_token is None
    assert not (tmp_path / "token.json").exists()
    assert_one_clean_line(str(caught.value), server, client)


@pytest.mark.parametrize("value", ["../x", f"{A_UUID}\n", f"{A_UUID}/../x", 42, None])
def test_a_pumper_id_that_is_not_a_uuid_is_refused(server, tmp_path, value):
    server.inject("claims", values={"pumperId": value})
    client = make_client(server, tmp_path)
    with pytest.raises(tandem.TandemError) as caught:
        client.pumper()
    message = str(caught.value)
    assert message.startswith("login: the id_token's pumperId ") and "UUID" in message
    assert message.endswith("; refusing it (the login flow may have changed)")
    assert hits(server, "/pumper/") == 0 and not (tmp_path / "token.json").exists()
    assert_one_clean_line(message, server, client)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"access_token": None}, "the answer carries no usable access_token"),
        ({"access_token": "two words"}, "the answer carries no usable access_token"),
        ({"id_token": ""}, "the answer carries no id_token"),
        ({"expires_in": "1800"}, "expires_in is not a positive number of seconds"),
        ({"expires_in": -5}, "expires_in is not a positive number of seconds"),
        ({"expires_in": True}, "expires_in is not a positive number of seconds"),
    ],
)
def test_a_token_answer_of_the_wrong_form_is_refused(server, tmp_path, monkeypatch, change, message):
    changed_token_answers(monkeypatch, change)
    client = make_client(server, tmp_path)
    with pytest.raises(tandem.TandemError) as caught:
        client.login()
    assert str(caught.value) == f"login (token): {message}; the login flow may have changed"
    assert hits(server, "/connect/token") == 1 and client.access_token is None
    assert not (tmp_path / "token.json").exists()
    assert_one_clean_line(str(caught.value), server, client)


def test_a_token_lifetime_beyond_a_day_is_taken_as_a_day(server, tmp_path, monkeypatch):
    changed_token_answers(monkeypatch, {"expires_in": 1e300})
    client = make_client(server, tmp_path)
    client.login()
    assert client.expires_at - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=24)


def changed_token_answers(monkeypatch, change: dict) -> None:
    """Token-endpoint answers (200) reach the client with the fields of ``change`` replaced."""
    request = requests.Session.request

    def changed(self, method, url, **kwargs):
        response = request(self, method, url, **kwargs)
        if url.endswith("/connect/token") and response.status_code == 200:
            response._content = json.dumps({**response.json(), **change}).encode()
        return response

    monkeypatch.setattr(requests.Session, "request", changed)


def _saved_cache(server, tmp_path) -> dict:
    make_client(server, tmp_path / "first").login()
    return json.loads((tmp_path / "first" / "token.json").read_text())


def test_a_good_token_cache_is_reused(server, tmp_path):
    cache = tmp_path / "token.json"
    cache.write_text(json.dumps(_saved_cache(server, tmp_path)))
    server.clear_requests()
    client = make_client(server, tmp_path, cache=cache)
    assert client.pumper()["pumps"]
    assert hits(server, "/accounts/api/login") == 0
    assert any("reusing the cached Tandem Source token" in line for line in client.test_lines)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"pumper_id": "../x"}, "pumper_id is not a UUID"),
        ({"pumper_id": None}, "pumper_id is not a UUID"),
        ({"expires_at": "2099-01-01T00:00:00"}, "expires_at is not a date and time with a zone"),
        ({"expires_at": "soon"}, "expires_at is not a date and time with a zone"),
        ({"expires_at": 4102444800}, "expires_at is not a date and time with a zone"),
        ({"access_token": ""}, "access_token is not a bearer token"),
        ({"access_token": 17}, "access_token is not a bearer token"),
        ({"access_token": "abc\r\nX-Injected: 1"}, "access_token is not a bearer token"),
    ],
)
def test_a_token_cache_that_fails_its_checks_is_ignored(server, tmp_path, change, reason):
    # A cache this pipeline wrote (its keys) with a value that fails: ignored, and replaced.
    cache = tmp_path / "token.json"
    saved = _saved_cache(server, tmp_path)
    cache.write_text(json.dumps({**saved, **change}))
    server.clear_requests()
    client = make_client(server, tmp_path, cache=cache)
    assert client.pumper()["pumps"]
    assert hits(server, "/accounts/api/login") == 1, "logged in again"
    notes = [line for line in client.test_lines if "token cache" in line]
    assert notes == [f"{cache}: the Tandem Source token cache is not usable ({reason}); logging in again"]
    assert saved["access_token"] not in "\n".join(client.test_lines)
    assert_one_clean_line(notes[0], server, client)


#: Files a token cache path may meet that this pipeline did not write (issue 15: config.yaml,
#: the Snakefile, a raw-store file and JSON of others were overwritten with the token), each with
#: how the message words it.
FOREIGN_CACHES = {
    "config.yaml": (b"source: tandem\ntimezone: Europe/Berlin\n", "it is not JSON"),
    "Snakefile": (b'configfile: "config.yaml"\n', "it is not JSON"),
    "raw": (bytes(range(256)) * 4, "it is not JSON"),
    "other JSON": (b'{"events": []}', "its JSON is not a token cache (other keys)"),
    "a list": (b"[1, 2]", "its JSON is not a token cache (other keys)"),
    "more keys": (None, "its JSON is not a token cache (other keys)"),
    "empty": (b"", "it is not JSON"),
    "a folder": ("folder", "it is a folder"),
    "a symlink": ("symlink", "it is a symbolic link"),
}


@pytest.mark.parametrize("step", ["login", "cached"])
@pytest.mark.parametrize("kind", FOREIGN_CACHES, ids=FOREIGN_CACHES.keys())
def test_a_file_that_is_no_token_cache_is_never_overwritten(server, tmp_path, kind, step):
    content, what = FOREIGN_CACHES[kind]
    cache = tmp_path / "sensitive" / "token.json"
    cache.parent.mkdir()
    target = tmp_path / "config.yaml"
    target.write_text("source: demo\n")
    if content == "folder":
        cache.mkdir()
    elif content == "symlink":
        cache.symlink_to(target)
    elif content is None:
        cache.write_text(json.dumps({**_saved_cache(server, tmp_path), "comment": "mine"}))
    else:
        cache.write_bytes(content)
    before = cache.read_bytes() if cache.is_file() else None
    server.clear_requests()
    client = make_client(server, tmp_path, cache=cache)
    with pytest.raises(tandem.TandemError) as caught:
        client.login() if step == "login" else client.pumper()
    message = str(caught.value)
    assert message == (
        f"token cache {cache}: {what}, so it is not a token cache this pipeline wrote and is never overwritten; "
        "delete it, or set fetch.token_cache to another path"
    )
    assert server.requests == [], "stopped before the password was sent"
    assert (cache.read_bytes() if cache.is_file() else None) == before
    assert target.read_text() == "source: demo\n"
    assert not isinstance(caught.value, OSError)
    assert_one_clean_line(message, server, client)


# --- pump-logs: the caller's check, the assignment id ------------------------------------------------


def test_an_answer_failing_the_check_is_retried_then_a_broken_answer(server, tmp_path, sleeps):
    client = make_client(server, tmp_path)
    client.login()
    aid = current(server).assignment_id
    codes = layouts.WEB_APP_EVENT_CODES
    check = answers.check_pump_logs_body

    server.inject("shape")
    assert answers.check_pump_logs_body(client.pump_logs(aid, FIRST, LAST, codes, WHAT, check=check)) > 0
    assert hits(server, "/pump-logs/") == 2

    server.inject("shape", count=RETRIES + 1)
    with pytest.raises(tandem.BrokenAnswer) as caught:
        client.pump_logs(aid, FIRST, LAST, codes, WHAT, check=check)
    assert str(caught.value) == (
        f"{WHAT}: Tandem Source answered with a broken body ('events' is not a list) after {RETRIES} retries; "
        "try again later"
    )
    assert hits(server, "/pump-logs/") == 2 + RETRIES + 1

    server.inject("badjson", count=RETRIES + 1)
    with pytest.raises(tandem.BrokenAnswer, match=r"broken body \(the answer is not valid JSON .*\) after 2 retries"):
        client.pump_logs(aid, FIRST, LAST, codes, WHAT, check=check)

    # Without a check, the body comes back as it was answered.
    server.inject("shape")
    assert json.loads(client.pump_logs(aid, FIRST, LAST, codes, WHAT)) == {
        "events": {"eventCode": 399},
        "clockChanges": 7,
    }


@pytest.mark.parametrize("bad", ["../x", f"{A_UUID}/../../pumper", f"{A_UUID}\n", "", None])
def test_an_assignment_id_that_is_not_a_uuid_never_reaches_a_url(server, tmp_path, bad):
    client = make_client(server, tmp_path)
    client.login()
    with pytest.raises(tandem.TandemError) as caught:
        client.pump_logs(bad, FIRST, LAST, layouts.WEB_APP_EVENT_CODES, WHAT)
    message = str(caught.value)
    assert message.startswith(f"{WHAT}: assignmentId ") and "UUID" in message
    assert hits(server, "/pump-logs/") == 0
    assert_one_clean_line(message, server, client)


# --- https only -------------------------------------------------------------------------------------


class PlainListener:
    """A plain TCP socket on 127.0.0.1 that counts the connections made to it (and what they sent)."""

    def __init__(self):
        import socket
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    self.received.append(conn.recv(65536))
                except OSError:
                    self.received.append(b"")

    def close(self):
        self.stopped.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def plain():
    listener = PlainListener()
    yield listener
    listener.close()


#: The URLs the client sends requests to (login_page is a Referer, issuer and redirect_uri are compared).
REQUESTED = ("login_url", "authorize_url", "token_url", "jwks_url", "source_url")


#: Every URL of tandem_api (all its keys but client_id).
URL_KEYS = ("login_page", "login_url", "authorize_url", "token_url", "issuer", "jwks_url", "redirect_uri", "source_url")


@pytest.mark.parametrize("key", URL_KEYS)
def test_a_tandem_api_url_that_is_not_https_is_refused_and_nothing_is_sent(server, tmp_path, plain, key):
    http = f"http://127.0.0.1:{plain.port}/accounts/api/login"
    with pytest.raises(tandem.TandemError) as caught:
        tandem.api_urls("US", {**server.api_config(), key: http})
    assert str(caught.value) == (
        f"tandem_api.{key}: {http!r} is not an https:// URL; a plain http:// URL would send the password and "
        "tokens in clear text, so write the https:// URL"
    )
    if key in REQUESTED:  # the client itself sends nothing to such a URL, however it got one
        client = make_client(server, tmp_path)
        client.urls = {**client.urls, key: http}
        with pytest.raises(tandem.TandemError) as caught:
            client.pumper()
        assert str(caught.value).endswith(
            ": refusing a request to a URL that is not https:// (it would send secrets in clear text); "
            "check the tandem_api URLs"
        )
        assert not isinstance(caught.value, OSError)
        assert_one_clean_line(str(caught.value), server, client)
    assert plain.received == []
    # The config schema refuses it first, naming the key.
    problem = config.schema_problem({"source": "tandem", "tandem_api": {key: http}}, SCHEMA)
    assert problem == (
        f"tandem_api.{key}",
        f"{http!r} is not an https:// URL (printable characters, no spaces): "
        "plain http:// would send the password in clear text",
    )
    assert config.schema_problem({"source": "tandem", "tandem_api": {key: server.api_config()[key]}}, SCHEMA) is None


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_to_a_url_that_is_not_https_is_not_followed(server, tmp_path, plain, status):
    """requests follows redirects, and resends a 307/308's body (the password) to the new place."""
    http = f"http://127.0.0.1:{plain.port}/steal"

    class Redirecting(requests.adapters.HTTPAdapter):
        def send(self, request, **kwargs):
            if "/accounts/api/login" not in request.url:
                return super().send(request, **kwargs)
            response = requests.Response()
            response.status_code, response.url, response.request = status, request.url, request
            response.headers["Location"] = http
            response.raw = io.BytesIO(b"")
            return response

    client = make_client(server, tmp_path)
    client.session.mount("https://", Redirecting())
    with pytest.raises(tandem.TandemError) as caught:
        client.login()
    assert str(caught.value) == (
        "login: Tandem Source redirected to a URL that is not https://; not followed (it would send secrets in "
        "clear text); check the tandem_api URLs"
    )
    assert plain.received == [] and client.access_token is None
    assert_one_clean_line(str(caught.value), server, client)


# --- configuration ----------------------------------------------------------------------------------


def test_fetch_max_wait_seconds_is_a_config_key_with_default_300():
    schema = PROJECT / "schemas" / "config.schema.yaml"
    declared = yaml.safe_load(schema.read_text())["properties"]["fetch"]["properties"]["max_wait_seconds"]
    assert declared["default"] == 300 == config.FETCH_DEFAULTS["max_wait_seconds"]
    assert tandem.RetryPolicy().max_wait_seconds == 300
    for good in (0, 12.5, 300):
        assert config.schema_problem({"source": "demo", "fetch": {"max_wait_seconds": good}}, schema) is None
    for bad in (-1, "long"):
        problem = config.schema_problem({"source": "demo", "fetch": {"max_wait_seconds": bad}}, schema)
        assert problem is not None and problem[0] == "fetch.max_wait_seconds"


# --- the whole workflow -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "options", "fetch", "expected"),
    [
        (
            "truncated",
            {"count": 50, "path_contains": "/pump-logs/"},
            {},
            r"pump \d+ window \S+: Tandem Source answered with a broken body \(cut short\) after 2 retries; "
            r"try again later$",
        ),
        (
            "429",
            {"count": 50, "path_contains": "/pumper/", "retry_after": 600},
            {"max_wait_seconds": 60},
            r"pump list: Tandem Source asked to wait 600 s before trying again \(Retry-After\), more than "
            r"fetch\.max_wait_seconds \(60 s\); try again later, or raise fetch\.max_wait_seconds$",
        ),
    ],
)
def test_workflow_fault_is_one_error_line_naming_the_step_and_exit_1(tmp_path, server, fault, options, fetch, expected):
    workdir = copy_workflow(tmp_path / "wf")
    settings = {
        "source": "tandem",
        "timezone": "America/New_York",
        "tandem_api": server.api_config(),
        "fetch": {"retries": 2, "backoff_seconds": 0.01, "timeout_seconds": 5, **fetch},
    }
    (workdir / "tandem.yaml").write_text(yaml.safe_dump(settings))
    env = {"TANDEM_EMAIL": EMAIL, "TANDEM_PASSWORD": PASSWORD, "REQUESTS_CA_BUNDLE": str(server.ca_path)}
    server.inject(fault, **options)
    proc = snakemake(workdir, "-c1", "all", "--configfile", "tandem.yaml", check=False, env=env)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "ERROR:" in line]
    assert len(errors) == 1, proc.stderr
    assert re.search(r"\[fetch\] ERROR: " + expected, errors[0]), errors[0]
    log = (workdir / "logs" / "fetch" / "tandem.log").read_text().splitlines()
    assert [line for line in log if "ERROR:" in line] == errors
    path = options["path_contains"]
    assert hits(server, path) == (3 if fault == "truncated" else 1)
    assert "free space" not in proc.stdout + proc.stderr
    for secret in [PASSWORD, *server.issued_tokens]:
        assert secret not in proc.stdout + proc.stderr
    assert not (workdir / "exports").exists() or not list((workdir / "exports").iterdir())
