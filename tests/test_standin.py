"""Self-tests of the Tandem Source stand-in (tests/standin.py), with plain requests and PyJWT."""

from __future__ import annotations

import re
import secrets
import threading
import time
import uuid
from datetime import date
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from standin import StandIn, s256
from tandem_export import demo

EMAIL = "person@example.com"
PASSWORD = "correct horse battery staple"
WALL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


@pytest.fixture
def server(tmp_path):
    """A stand-in with short histories: retired pump 2025-03-06..10, current pump 2025-05-06..15."""
    with StandIn(tmp_path, retired_days=5, current_days=10) as s:
        yield s
        assert s.errors == []


class Client:
    """The calls a Tandem Source client makes, written out with requests."""

    def __init__(self, server: StandIn):
        self.server = server
        self.cfg = server.api_config()
        self.session = requests.Session()
        self.token: dict = {}
        self.claims: dict = {}

    def call(self, method: str, url: str, **kwargs) -> requests.Response:
        # verify on every call: a Session.verify is overridden by REQUESTS_CA_BUNDLE.
        kwargs.setdefault("verify", str(self.server.ca_path))
        kwargs.setdefault("timeout", 10)
        return self.session.request(method, url, **kwargs)

    def login(self, email: str = EMAIL, password: str = PASSWORD, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {"Referer": self.cfg["login_page"]})
        return self.call("POST", self.cfg["login_url"], json={"username": email, "password": password}, headers=headers)

    def authorize(self, challenge: str, **kwargs) -> requests.Response:
        params = {
            "client_id": self.cfg["client_id"],
            "response_type": "code",
            "scope": "openid profile email",
            "redirect_uri": self.cfg["redirect_uri"],
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return self.call("GET", self.cfg["authorize_url"], params=params, **kwargs)

    def exchange(self, code: str, verifier: str) -> requests.Response:
        form = {
            "grant_type": "authorization_code",
            "client_id": self.cfg["client_id"],
            "code": code,
            "redirect_uri": self.cfg["redirect_uri"],
            "code_verifier": verifier,
        }
        return self.call("POST", self.cfg["token_url"], data=form)

    def sign_in(self, email: str = EMAIL, password: str = PASSWORD) -> Client:
        assert self.login(email, password).json()["status"] == "SUCCESS"
        verifier = secrets.token_urlsafe(48)
        final = self.authorize(s256(verifier))
        code = parse_qs(urlsplit(final.url).query)["code"][0]
        answer = self.exchange(code, verifier)
        assert answer.status_code == 200, answer.text
        self.token = answer.json()
        self.claims = jwt.decode(self.token["id_token"], options={"verify_signature": False})
        return self

    def headers(self, **overrides) -> dict:
        source = self.cfg["source_url"]
        h = {"Authorization": f"Bearer {self.token['access_token']}", "Origin": source.rstrip("/"), "Referer": source}
        h.update(overrides)
        return {k: v for k, v in h.items() if v is not None}

    def pumper(self, **headers) -> requests.Response:
        url = f"{self.cfg['source_url']}api/reports/bff/pumper/{self.claims['pumperId']}"
        return self.call("GET", url, headers=self.headers(**headers))

    def pump_logs(self, assignment_id: str, start: date, end: date, headers=None, **params) -> requests.Response:
        query = {
            "pumperId": self.claims["pumperId"],
            "startDate": f"{start.isoformat()}T00:00:00Z",
            "endDate": f"{end.isoformat()}T23:59:59Z",
            **params,
        }
        url = f"{self.cfg['source_url']}api/reports/bff/pump-logs/{assignment_id}"
        return self.call("GET", url, params=query, headers=self.headers(**(headers or {})))


def current(server: StandIn):
    return server.account().pumps[1]


def retired(server: StandIn):
    return server.account().pumps[0]


# --- login, OIDC, PKCE ------------------------------------------------------------------------------------


def test_login_flow_with_pkce_gives_id_token_verified_against_jwks(server):
    client = Client(server)
    login = client.login()
    assert login.status_code == 200
    assert login.json() == {"status": "SUCCESS", "redirectUrl": "/"}
    assert client.session.cookies

    verifier = secrets.token_urlsafe(48)
    final = client.authorize(s256(verifier))
    assert final.status_code == 200
    assert [r.status_code for r in final.history] == [302, 302]  # one intermediate hop
    assert final.url.startswith(client.cfg["redirect_uri"] + "?")
    code = parse_qs(urlsplit(final.url).query)["code"][0]

    answer = client.exchange(code, verifier)
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert {"access_token", "id_token", "expires_in", "token_type"} <= set(tokens)
    assert tokens["expires_in"] == 1800

    jwks = client.call("GET", client.cfg["jwks_url"]).json()
    kid = jwt.get_unverified_header(tokens["id_token"])["kid"]
    key = next(k for k in jwks["keys"] if k["kid"] == kid)
    claims = jwt.decode(
        tokens["id_token"],
        jwt.PyJWK(key).key,
        algorithms=["RS256"],
        audience=client.cfg["client_id"],
        issuer=client.cfg["issuer"],
    )
    assert claims["pumperId"] == server.account().pumper_id
    assert claims["accountId"] == server.account().account_id
    uuid.UUID(claims["pumperId"])
    uuid.UUID(claims["accountId"])
    assert claims["exp"] > time.time()
    assert client.cfg["jwks_url"] == client.cfg["issuer"] + "/.well-known/openid-configuration/jwks"

    # The code is single-use.
    again = client.exchange(code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_token_endpoint_checks_the_pkce_verifier(server):
    client = Client(server)
    client.login()
    verifier = secrets.token_urlsafe(48)
    final = client.authorize(s256(verifier))
    code = parse_qs(urlsplit(final.url).query)["code"][0]
    wrong = client.exchange(code, secrets.token_urlsafe(48))
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"


def test_authorize_checks_parameters_and_session(server):
    client = Client(server)
    # Without the session cookie the flow ends on the login page, without a code.
    final = client.authorize(s256(secrets.token_urlsafe(48)))
    assert final.url.startswith(client.cfg["login_page"])
    assert "code" not in parse_qs(urlsplit(final.url).query)
    # A plain challenge method is refused.
    client.login()
    params = {
        "client_id": client.cfg["client_id"],
        "response_type": "code",
        "scope": "openid",
        "redirect_uri": client.cfg["redirect_uri"],
        "code_challenge": s256("x" * 43),
        "code_challenge_method": "plain",
    }
    assert client.call("GET", client.cfg["authorize_url"], params=params).status_code == 400
    params.update(code_challenge_method="S256", redirect_uri="https://example.com/callback")
    assert client.call("GET", client.cfg["authorize_url"], params=params).status_code == 400


def test_wrong_password_fails_the_login(server):
    server.set_password(EMAIL, "a new password")
    client = Client(server)
    failed = client.login()
    assert failed.status_code != 200 or failed.json()["status"] != "SUCCESS"
    assert not client.session.cookies
    final = client.authorize(s256(secrets.token_urlsafe(48)))
    assert "code" not in parse_qs(urlsplit(final.url).query)
    assert client.login(password="a new password").json()["status"] == "SUCCESS"
    assert Client(server).login(email="nobody@example.com").json()["status"] != "SUCCESS"
    # The login call needs the login page as Referer.
    assert Client(server).login(headers={}).status_code == 403


# --- pumper and pump-logs ------------------------------------------------------------------------------------


def test_pumper_lists_a_retired_and_a_current_pump(tmp_path):
    with StandIn(tmp_path) as server:  # default histories
        client = Client(server).sign_in()
        answer = client.pumper()
        assert answer.status_code == 200
        body = answer.json()
        assert {
            "firstName",
            "lastName",
            "dateOfBirth",
            "lowGlucoseThreshold",
            "highGlucoseThreshold",
            "country",
        } <= set(body)
        old, new = body["pumps"]
        for pump in (old, new):
            assert re.fullmatch(r"\d{8}", pump["serialNumber"])
            uuid.UUID(pump["assignmentId"])
            for key in ("modelNumber", "modelName", "partNumber", "softwareVersion", "algorithm", "glucoseUnit"):
                assert pump[key]
            assert WALL.fullmatch(pump["availableDataRange"]["start"])
            assert WALL.fullmatch(pump["availableDataRange"]["end"])
            assert WALL.fullmatch(pump["maxDateOfEvents"])
            assert pump["lastUploadDate"].endswith("Z")
            assert pump["lastUploadClientType"]
            assert "details" in pump["settings"]
        assert old["serialNumber"] != new["serialNumber"]
        assert old["assignmentId"] != new["assignmentId"]
        assert old["availableDataRange"] == {"start": "2025-02-19T00:00:02", "end": "2025-03-10T23:55:05"}
        assert new["availableDataRange"]["start"].startswith("2025-04-01")
        assert new["maxDateOfEvents"].startswith("2025-05-15")
        # Another person's pumper id is refused.
        other = client.call(
            "GET", f"{client.cfg['source_url']}api/reports/bff/pumper/{uuid.uuid4()}", headers=client.headers()
        )
        assert other.status_code == 403
        assert server.errors == []


def test_pump_logs_28_day_window_returns_that_window_only(server):
    client = Client(server).sign_in()
    pump = current(server)
    start, end = date(2025, 5, 10), date(2025, 6, 6)  # 28 days; the history ends on 2025-05-15
    answer = client.pump_logs(pump.assignment_id, start, end)
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"events", "clockChanges"}
    assert isinstance(body["clockChanges"], list)
    events = body["events"]
    days = {date.fromisoformat(e["pumpDateTime"][:10]) for e in events}
    assert min(days) == start and max(days) == date(2025, 5, 15)
    expected = [e.seq_num for e in demo.demo_events(pump.seed, date(2025, 5, 15), 10) if e.pump_time.date() >= start]
    assert [e["sequenceNumber"] for e in events] == expected
    first = events[0]
    assert set(first) == {
        "deviceAssignmentId",
        "eventCode",
        "sequenceGroup",
        "sequenceNumber",
        "pumpDateTime",
        "estimatedDateTime",
        "eventProperties",
    }
    assert first["deviceAssignmentId"] == pump.assignment_id
    assert first["estimatedDateTime"] == first["pumpDateTime"] + "Z"


def test_pump_logs_filters_on_event_codes(server):
    client = Client(server).sign_in()
    pump = current(server)
    answer = client.pump_logs(pump.assignment_id, date(2025, 5, 14), date(2025, 5, 15), eventCodes="399,16")
    codes = {e["eventCode"] for e in answer.json()["events"]}
    assert codes and codes <= {399, 16}


def test_retired_pump_after_retirement_returns_no_events(server):
    client = Client(server).sign_in()
    pump = retired(server)
    after = client.pump_logs(pump.assignment_id, date(2025, 5, 1), date(2025, 5, 15))
    assert after.status_code == 200 and after.json()["events"] == []
    before = client.pump_logs(pump.assignment_id, date(2025, 3, 9), date(2025, 3, 10))
    assert before.json()["events"]


def test_pump_logs_rejects_29_days_and_malformed_ranges(server):
    client = Client(server).sign_in()
    pump = current(server)
    too_long = client.pump_logs(pump.assignment_id, date(2025, 5, 1), date(2025, 5, 29))
    assert too_long.status_code == 400
    assert too_long.json() == {"message": "Check input parameters."}
    reversed_range = client.pump_logs(pump.assignment_id, date(2025, 5, 10), date(2025, 5, 9))
    assert reversed_range.status_code == 400
    no_zone = client.pump_logs(pump.assignment_id, date(2025, 5, 1), date(2025, 5, 2), endDate="2025-05-02")
    assert no_zone.status_code == 400


def test_pump_logs_rejects_event_ids(server):
    client = Client(server).sign_in()
    answer = client.pump_logs(current(server).assignment_id, date(2025, 5, 1), date(2025, 5, 2), eventIds="399")
    assert answer.status_code == 400
    assert answer.json() == {"message": "Check input parameters."}


def test_data_calls_need_origin_and_referer(server):
    client = Client(server).sign_in()
    assert client.pumper(Origin=None).status_code == 403
    assert client.pumper(Referer=None).status_code == 403
    assert client.pumper(Origin="https://example.com").status_code == 403
    pump = current(server)
    assert client.pump_logs(pump.assignment_id, date(2025, 5, 1), date(2025, 5, 2), {"Origin": None}).status_code == 403
    assert client.pumper().status_code == 200


def test_missing_unknown_and_expired_tokens_get_401(server):
    client = Client(server).sign_in()
    assert client.pumper().status_code == 200
    assert client.pumper(Authorization=None).status_code == 401
    assert client.pumper(Authorization="Bearer not-a-token").status_code == 401
    server.expire_tokens()
    assert client.pumper().status_code == 401
    # Logging in again gives a working token.
    assert Client(server).sign_in().pumper().status_code == 200


def test_tokens_expire_after_expires_in(tmp_path):
    with StandIn(tmp_path, retired_days=1, current_days=1, expires_in=1) as server:
        client = Client(server).sign_in()
        assert client.token["expires_in"] == 1
        assert client.pumper().status_code == 200
        time.sleep(1.1)
        assert client.pumper().status_code == 401


# --- fault injection --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["500", "401", "403", "404"])
def test_injected_status_faults_are_consumed_once(server, kind):
    client = Client(server).sign_in()
    server.inject(kind, path_contains="/pumper/")
    assert server.faults_pending == 1
    assert client.pumper().status_code == int(kind)
    assert client.pumper().status_code == 200
    assert server.faults_pending == 0
    assert [r["fault"] for r in server.requests[-2:]] == [kind, None]


def test_injected_429_sends_retry_after(server):
    client = Client(server).sign_in()
    server.inject("429", count=2, path_contains="/pumper/", retry_after=7)
    for _ in range(2):
        answer = client.pumper()
        assert answer.status_code == 429
        assert answer.headers["Retry-After"] == "7"
    assert client.pumper().status_code == 200
    server.inject("429", path_contains="/pumper/", retry_after=3600)
    assert client.pumper().headers["Retry-After"] == "3600"


def test_injected_drop_closes_the_connection(server):
    client = Client(server).sign_in()
    server.inject("drop", path_contains="/pumper/")
    with pytest.raises(requests.ConnectionError):
        client.pumper()
    assert server.requests[-1]["status"] is None and server.requests[-1]["fault"] == "drop"
    assert client.pumper().status_code == 200


def test_injected_slow_delays_the_answer(server):
    client = Client(server).sign_in()
    # The delayed answer still comes (the server logged the fault on it), and a client that waits less
    # than the delay gives up first: a 2 s delay against a 0.2 s timeout (no wall-clock bound here).
    server.inject("slow", path_contains="/pumper/", seconds=0.4)
    assert client.pumper().status_code == 200
    assert (server.requests[-1]["fault"], server.requests[-1]["status"]) == ("slow", 200)
    server.inject("slow", path_contains="/pumper/", seconds=2)
    with pytest.raises(requests.Timeout):
        client.call("GET", f"{client.cfg['source_url']}api/reports/bff/pumper/x", headers=client.headers(), timeout=0.2)


def test_injected_empty_answers_pump_logs_without_events(server):
    client = Client(server).sign_in()
    server.inject("empty")  # matches pump-logs requests only
    assert client.pumper().status_code == 200
    pump = current(server)
    empty = client.pump_logs(pump.assignment_id, date(2025, 5, 14), date(2025, 5, 15))
    assert empty.status_code == 200 and empty.json()["events"] == []
    assert client.pump_logs(pump.assignment_id, date(2025, 5, 14), date(2025, 5, 15)).json()["events"]


def test_injected_truncated_cuts_the_body_short_and_closes(server):
    client = Client(server).sign_in()
    server.inject("truncated", path_contains="/pumper/")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        client.pumper()
    assert server.requests[-1]["status"] == 200 and server.requests[-1]["fault"] == "truncated"
    assert client.pumper().status_code == 200
    # On the token endpoint the answer is cut short after the code was used up (as a real server
    # that failed while sending would have done).
    client = Client(server)
    client.login()
    verifier = secrets.token_urlsafe(48)
    code = parse_qs(urlsplit(client.authorize(s256(verifier)).url).query)["code"][0]
    server.inject("truncated", path_contains="/connect/token")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        client.exchange(code, verifier)
    assert client.exchange(code, verifier).json()["error"] == "invalid_grant"


def test_injected_badjson_answers_200_with_text_that_is_not_json(server):
    client = Client(server)
    server.inject("badjson", path_contains="/login")
    answer = client.login()
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
    with pytest.raises(ValueError):
        answer.json()
    assert "maintenance" in answer.text
    server.inject("badjson", path_contains="/jwks", text="{")
    assert client.call("GET", client.cfg["jwks_url"]).text == "{"
    assert client.login().json()["status"] == "SUCCESS"


def test_injected_shape_answers_pump_logs_with_the_given_json(server):
    client = Client(server).sign_in()
    pump = current(server)
    server.inject("shape")  # matches pump-logs requests only
    assert client.pumper().json()["pumps"]
    odd = client.pump_logs(pump.assignment_id, date(2025, 5, 14), date(2025, 5, 15))
    assert odd.status_code == 200 and odd.json() == {"events": {"eventCode": 399}, "clockChanges": 7}
    server.inject("shape", body=[1, 2])
    assert client.pump_logs(pump.assignment_id, date(2025, 5, 14), date(2025, 5, 15)).json() == [1, 2]
    assert client.pump_logs(pump.assignment_id, date(2025, 5, 14), date(2025, 5, 15)).json()["events"]


def test_injected_pumper_overrides_one_pumps_fields(server):
    client = Client(server).sign_in()
    normal = client.pumper().json()["pumps"]
    server.inject("pumper", pump={"serialNumber": "../../../x"})
    pumps = client.pumper().json()["pumps"]
    assert pumps[0]["serialNumber"] == "../../../x" and pumps[1] == normal[1]
    assert {k: v for k, v in pumps[0].items() if k != "serialNumber"} == {
        k: v for k, v in normal[0].items() if k != "serialNumber"
    }
    server.inject("pumper", index=-1, pump={"assignmentId": "../x", "availableDataRange": {"start": "garbage"}})
    pumps = client.pumper().json()["pumps"]
    assert pumps[1]["assignmentId"] == "../x" and pumps[0] == normal[0]
    assert pumps[1]["availableDataRange"] == {"start": "garbage", "end": normal[1]["availableDataRange"]["end"]}
    assert client.pumper().json()["pumps"] == normal
    server.inject("pumper", pump={"x": 1})  # matches pumper requests only
    assert Client(server).login().json()["status"] == "SUCCESS"
    assert server.faults_pending == 1


@pytest.mark.parametrize("claim", ["exp", "iat"])
def test_injected_claims_leave_out_or_set_id_token_claims(server, claim):
    server.inject("claims", drop=[claim])
    claims = Client(server).sign_in().claims
    assert claim not in claims and {"iss", "aud", "pumperId"} <= set(claims)
    server.inject("claims", values={"pumperId": "../x"})
    assert Client(server).sign_in().claims["pumperId"] == "../x"
    assert {"exp", "iat"} <= set(Client(server).sign_in().claims)


def test_injected_500_on_the_token_endpoint(server):
    server.inject("500", count=2, path_contains="/connect/token")
    client = Client(server)
    client.login()
    verifier = secrets.token_urlsafe(48)
    code = parse_qs(urlsplit(client.authorize(s256(verifier)).url).query)["code"][0]
    assert client.exchange(code, verifier).status_code == 500
    assert client.exchange(code, verifier).status_code == 500
    assert client.exchange(code, verifier).status_code == 200  # the injected 500s did not use up the code


def test_faults_match_on_path_and_reject_unknown_kinds(server):
    client = Client(server).sign_in()
    server.inject("500", path_contains="startDate=2025-05-14")
    pump = current(server)
    assert client.pump_logs(pump.assignment_id, date(2025, 5, 1), date(2025, 5, 2)).status_code == 200
    assert client.pump_logs(pump.assignment_id, date(2025, 5, 14), date(2025, 5, 15)).status_code == 500
    with pytest.raises(ValueError):
        server.inject("418")
    with pytest.raises(TypeError):
        server.inject("500", seconds=3)


def test_concurrent_requests_consume_faults_exactly(server):
    client = Client(server).sign_in()
    server.inject("500", count=5, path_contains="/pumper/")
    statuses: list[int] = []
    lock = threading.Lock()

    def work():
        session = Client(server)
        session.token, session.claims = client.token, client.claims
        for _ in range(4):
            code = session.pumper().status_code
            with lock:
                statuses.append(code)

    threads = [threading.Thread(target=work) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 15 + [500] * 5
    assert sum(r["status"] == 500 for r in server.requests) == 5


# --- late uploads, records, shutdown ----------------------------------------------------------------------


def test_add_late_events_extends_the_history(server):
    client = Client(server).sign_in()
    pump = current(server)
    before = client.pumper().json()["pumps"][1]
    first = client.pump_logs(pump.assignment_id, date(2025, 5, 14), date(2025, 5, 20)).json()["events"]
    assert max(e["pumpDateTime"] for e in first).startswith("2025-05-15")

    added = server.add_late_events(pump.serial, days=2)
    assert added > 0
    after = client.pumper().json()["pumps"][1]
    assert before["maxDateOfEvents"].startswith("2025-05-15")
    assert after["maxDateOfEvents"].startswith("2025-05-17")
    assert after["availableDataRange"]["end"].startswith("2025-05-17")
    assert after["availableDataRange"]["start"] == before["availableDataRange"]["start"]
    assert after["lastUploadDate"] > before["lastUploadDate"]

    second = client.pump_logs(pump.assignment_id, date(2025, 5, 14), date(2025, 5, 20)).json()["events"]
    assert second[: len(first)] == first  # what was there stays the same
    new = second[len(first) :]
    assert len(new) == added
    assert new[0]["sequenceNumber"] == first[-1]["sequenceNumber"] + 1
    assert {e["pumpDateTime"][:10] for e in new} == {"2025-05-16", "2025-05-17"}
    assert len(server.events(pump.serial)) == len(server.events(pump.serial, end="2025-05-15")) + added


def test_requests_are_recorded_without_passwords(server):
    client = Client(server)
    client.login(password="a wrong guess")
    client.sign_in()
    records = server.requests
    logins = [r for r in records if r["path"] == "/accounts/api/login"]
    assert [(r["method"], r["status"]) for r in logins] == [("POST", 200), ("POST", 200)]
    assert all({"method", "path", "query", "time", "status"} <= set(r) for r in records)
    text = repr(records)
    assert PASSWORD not in text and "a wrong guess" not in text
    server.clear_requests()
    assert server.requests == []


def test_stops_cleanly_with_a_slow_request_in_flight(tmp_path):
    server = StandIn(tmp_path, retired_days=1, current_days=1).start()
    client = Client(server)
    server.inject("slow", seconds=30)
    outcome: list = []

    def slow_call():
        try:
            outcome.append(client.call("GET", server.login_page, timeout=20).status_code)
        except requests.RequestException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=slow_call, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while server.faults_pending and time.monotonic() < deadline:
        time.sleep(0.01)
    server.stop()
    # The request in flight waits 30 s; stop() ends it: the call has returned long before that.
    thread.join(timeout=15)
    assert not thread.is_alive() and outcome
    with pytest.raises(requests.ConnectionError):
        requests.get(server.login_page, verify=str(server.ca_path), timeout=2)
