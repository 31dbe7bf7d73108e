"""A local HTTPS stand-in for the Tandem Source web API, for tests.

``StandIn`` serves, on 127.0.0.1 with a throwaway CA, the pieces of the Tandem Source API a client
needs: the password login, the OIDC authorization-code flow with PKCE (S256), an RS256 id_token
with its JWKS, the pumper (account and pumps) endpoint and the pump-logs endpoint.  It enforces the
rules the real server enforces (28-day ranges, no ``eventIds``, Origin/Referer, bearer tokens),
records every request and injects faults on demand.

Pump histories come from the project's own demo generator, so nothing here is anyone's real data.
Every account has two pumps: a retired one (history ended earlier) and the current one.

Usage::

    with StandIn(tmp_path) as server:
        config = {"tandem_api": server.api_config()}
        server.inject("500", path_contains="/pump-logs/")
        ...
        assert server.requests[-1]["status"] == 200

Paths served (``server.url`` is ``https://127.0.0.1:PORT``)::

    /sso/                                                   login page (Referer of the login call)
    /sso/auth/callback                                      redirect_uri (a plain 200 page)
    /accounts/api/login                                     login API (POST JSON)
    /accounts/api/connect/authorize                         OIDC authorize (302 -> .../callback)
    /accounts/api/connect/authorize/callback                second hop (302 -> redirect_uri?code=)
    /accounts/api/connect/token                             token endpoint (POST form)
    /accounts/api/.well-known/openid-configuration          discovery document
    /accounts/api/.well-known/openid-configuration/jwks     JWKS
    /api/reports/bff/pumper/{pumperId}                      account and pumps
    /api/reports/bff/pump-logs/{assignmentId}?...           events and clockChanges

Faults (``server.inject(kind, count=1, path_contains=None, **options)``: the next ``count``
requests whose path and query contain ``path_contains`` get the fault; ``server.requests`` records
each with its ``fault``)::

    "500"        HTTP 500 (any path: "/connect/token" makes the token endpoint fail)
    "429"        HTTP 429 with ``Retry-After: <retry_after>`` (option retry_after=1; e.g. 3600)
    "drop"       the connection is closed without an answer
    "slow"       the answer waits ``seconds`` (option seconds=2.0) before it is sent
    "401", "403", "404"   that status, as the real server words it
    "truncated"  the normal answer (a 200 for data calls) whose body is cut short: Content-Length
                 announces the whole body (at least 1 byte), half of it is sent, the connection
                 closes (the request has had its effect: a token request has used up its code)
    "badjson"    a 200 claiming JSON whose body is not JSON (option text: an HTML maintenance page)
    pump-logs requests only:
    "empty"      answered normally but with no events
    "partial"    answered with every event but the middle one
    "shape"      a 200 whose body is the JSON of option body
                 (default ``{"events": {"eventCode": 399}, "clockChanges": 7}``)
    pumper requests only:
    "pumper"     the normal pump list with the fields of pump ``index`` (option index=0: the
                 retired pump, -1 the current one) overridden by option ``pump``; a value that is
                 an object is merged one level deep (``{"availableDataRange": {"start": "garbage"}}``
                 keeps ``end``), any other value replaces the field (``{"serialNumber": "../../../x"}``,
                 ``{"assignmentId": "../x"}``)
    token-endpoint requests only:
    "claims"     the id_token is issued with the claims named in option ``drop`` left out
                 (``drop=["exp"]``, ``drop=["iat"]``) and those of option ``values`` set
                 (``values={"pumperId": "../x"}``); it is signed as usual
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import random
import re
import secrets
import socket
import socketserver
import ssl
import threading
import time
import traceback
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import trustme
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

if __name__ == "__main__":  # run as a script: make the project's package importable
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from tandem_export import demo, encode  # noqa: E402

DEFAULT_ACCOUNTS: dict[str, str] = {"person@example.com": "correct horse battery staple"}
DEFAULT_CLIENT_ID = "standin-client-0001"
MAX_RANGE_DAYS = 28
CLOCK_CHANGE_CODES = (13, 14)
SESSION_COOKIE = "standin.session"
CODE_LIFETIME_SECONDS = 300
FAULT_KINDS = (
    "500",
    "429",
    "drop",
    "slow",
    "401",
    "403",
    "404",
    "empty",
    "partial",
    "truncated",
    "badjson",
    "shape",
    "pumper",
    "claims",
)
_MAINTENANCE_PAGE = "<!doctype html><html><body><h1>Down for maintenance</h1></body></html>"
_FAULT_OPTIONS = {
    "429": {"retry_after": 1},
    "slow": {"seconds": 2.0},
    "badjson": {"text": _MAINTENANCE_PAGE},
    "shape": {"body": {"events": {"eventCode": 399}, "clockChanges": 7}},
    "pumper": {"pump": {}, "index": 0},
    "claims": {"drop": (), "values": {}},
}

LOGIN_PAGE_PATH = "/sso/"
REDIRECT_PATH = "/sso/auth/callback"
ISSUER_PATH = "/accounts/api"
LOGIN_PATH = ISSUER_PATH + "/login"
AUTHORIZE_PATH = ISSUER_PATH + "/connect/authorize"
AUTHORIZE_CALLBACK_PATH = AUTHORIZE_PATH + "/callback"
TOKEN_PATH = ISSUER_PATH + "/connect/token"
DISCOVERY_PATH = ISSUER_PATH + "/.well-known/openid-configuration"
JWKS_PATH = DISCOVERY_PATH + "/jwks"
PUMPER_PREFIX = "/api/reports/bff/pumper/"
PUMP_LOGS_PREFIX = "/api/reports/bff/pump-logs/"
#: Fault kinds that only requests whose path starts with this prefix can take.
_FAULT_PATHS = {
    "empty": PUMP_LOGS_PREFIX,
    "partial": PUMP_LOGS_PREFIX,
    "shape": PUMP_LOGS_PREFIX,
    "pumper": PUMPER_PREFIX,
    "claims": TOKEN_PATH,
}

_BAD_INPUT = {"message": "Check input parameters."}
_UNAUTHORIZED = {"message": "Authorization has been denied for this request."}
_FORBIDDEN = {"message": "Forbidden"}
_NOT_FOUND = {"message": "Not Found"}
_SERVER_ERROR = {"message": "An error has occurred."}
_TOO_MANY = {"message": "Too Many Requests"}
_WALL = "%Y-%m-%dT%H:%M:%S"


# --- histories ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Chunk:
    """One generated piece of a pump's history: ``demo_events(seed, end, days)``, sequence numbers shifted."""

    seed: int
    end: date
    days: int
    seq_offset: int = 0


@lru_cache(maxsize=64)
def _chunk_days(chunk: _Chunk) -> dict[date, tuple[encode.PumpEvent, ...]]:
    """The chunk's PumpEvents grouped by pump date (cached; do not mutate)."""
    by_day: dict[date, list[encode.PumpEvent]] = {}
    for e in demo.demo_events(chunk.seed, chunk.end, chunk.days):
        if chunk.seq_offset:
            e = encode.PumpEvent(e.event_id, e.pump_time, e.seq_num + chunk.seq_offset, e.values)
        by_day.setdefault(e.pump_time.date(), []).append(e)
    return {day: tuple(events) for day, events in by_day.items()}


_ENCODED: dict[tuple, tuple[dict, ...]] = {}
_ENCODED_LOCK = threading.Lock()


def _encoded_day(chunk: _Chunk, day: date, assignment_id: str, group: int) -> tuple[dict, ...]:
    """The pump-logs elements of one day of a chunk (encoded lazily, cached across servers)."""
    key = (chunk, day, assignment_id, group)
    with _ENCODED_LOCK:
        hit = _ENCODED.get(key)
    if hit is None:
        hit = tuple(encode.to_pumplogs(e, assignment_id, group) for e in _chunk_days(chunk).get(day, ()))
        with _ENCODED_LOCK:
            hit = _ENCODED.setdefault(key, hit)
    return hit


def _settings(retired: bool) -> dict:
    """Pump settings in the spirit of the pumper answer: profiles plus ``details``."""
    segments = [
        {
            "startTime": f"{hour:02d}:00",
            "basalRate": rate,
            "carbRatio": demo.CARB_RATIO_G_PER_UNIT,
            "correctionFactor": demo.ISF_MG_DL_PER_UNIT,
            "targetBg": demo.TARGET_BG_MG_DL,
        }
        for hour, rate in demo.BASAL_PROFILE
    ]
    return {
        "activeProfile": "Standard",
        "profiles": [{"name": "Standard", "insulinDuration": 300, "carbEntry": True, "segments": segments}],
        "details": {
            "maxBolus": 25.0,
            "basalLimit": 3.0,
            "controlIQ": {"enabled": True, "weight": 70, "totalDailyInsulin": 40},
            "cgm": {"type": "G6" if retired else "G7", "highAlert": 250, "lowAlert": 70},
        },
    }


@dataclass
class Pump:
    """One pump of an account: identity, history chunks and the pumper-answer description."""

    serial: str
    assignment_id: str
    seed: int
    retired: bool
    chunks: list[_Chunk]
    sequence_group: int = 1
    model_number: str = "1006180"
    model_name: str = "t:slim X2"
    part_number: str = "1011284"
    software_version: str = "7.8.1.2"
    algorithm: str = "Control-IQ+"
    glucose_unit: str = "mg/dL"
    upload_client: str = "MobileApp"

    @property
    def first_event(self) -> encode.PumpEvent:
        days = _chunk_days(self.chunks[0])
        return days[min(days)][0]

    @property
    def last_event(self) -> encode.PumpEvent:
        days = _chunk_days(self.chunks[-1])
        return days[max(days)][-1]

    @property
    def first_time(self) -> datetime:
        """Pump wall-clock time of the first event."""
        return self.first_event.pump_time

    @property
    def last_time(self) -> datetime:
        """Pump wall-clock time of the last event."""
        return self.last_event.pump_time

    def elements(self, start: date, end: date, codes: set[int] | None = None) -> list[dict]:
        """The pump-logs ``events`` of pump dates ``start``..``end`` (shared dicts: do not mutate)."""
        out: list[dict] = []
        chunks = list(self.chunks)  # a snapshot: add_late_events may append meanwhile
        first_days, last_days = _chunk_days(chunks[0]), _chunk_days(chunks[-1])
        day = max(start, min(first_days))
        last = min(end, max(last_days))
        while day <= last:
            for chunk in chunks:
                for element in _encoded_day(chunk, day, self.assignment_id, self.sequence_group):
                    code = element["eventCode"]
                    if code in CLOCK_CHANGE_CODES or (codes and code not in codes):
                        continue
                    out.append(element)
            day += timedelta(days=1)
        out.sort(key=lambda e: e["sequenceNumber"])
        return out

    def clock_changes(self) -> list[dict]:
        """Time- and date-change elements (13, 14) over the whole history."""
        out = []
        for chunk in list(self.chunks):
            for events in _chunk_days(chunk).values():
                for e in events:
                    if e.event_id in CLOCK_CHANGE_CODES:
                        out.append(encode.to_pumplogs(e, self.assignment_id, self.sequence_group))
        return out

    def describe(self) -> dict:
        """The pump's entry in the pumper answer."""
        first, last = self.first_time, self.last_time
        upload = last + timedelta(hours=2, minutes=17)
        return {
            "assignmentId": self.assignment_id,
            "serialNumber": self.serial,
            "modelNumber": self.model_number,
            "modelName": self.model_name,
            "partNumber": self.part_number,
            "softwareVersion": self.software_version,
            "algorithm": self.algorithm,
            "glucoseUnit": self.glucose_unit,
            "availableDataRange": {"start": first.strftime(_WALL), "end": last.strftime(_WALL)},
            "maxDateOfEvents": last.strftime(_WALL),
            "lastUploadDate": upload.strftime(_WALL) + "Z",
            "lastUploadClientType": self.upload_client,
            "settings": _settings(self.retired),
        }


@dataclass
class Account:
    """A Tandem Source account: login, OIDC claims, person fields and pumps (retired first)."""

    email: str
    password: str
    pumper_id: str
    account_id: str
    first_name: str
    last_name: str
    pumps: list[Pump] = field(default_factory=list)

    def describe(self) -> dict:
        """The pumper answer."""
        return {
            "firstName": self.first_name,
            "lastName": self.last_name,
            "dateOfBirth": "1984-02-29",
            "lowGlucoseThreshold": 70,
            "highGlucoseThreshold": 180,
            "country": "US",
            "pumps": [p.describe() for p in self.pumps],
        }


# --- small helpers ----------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_int(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of ``verifier``."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


_BOUND = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})Z")


def _parse_bound(value: str | None, clock: str) -> date | None:
    """The date of ``YYYY-MM-DDT<clock>Z``, or None if ``value`` is not exactly that form."""
    match = _BOUND.fullmatch(value or "")
    if not match or match[2] != clock:
        return None
    try:
        return date.fromisoformat(match[1])
    except ValueError:
        return None


@dataclass
class _Resp:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def _json(status: int, obj: Any, headers: Iterable[tuple[str, str]] = ()) -> _Resp:
    body = json.dumps(obj, separators=(",", ":")).encode("utf-8")
    return _Resp(status, body, [("Content-Type", "application/json; charset=utf-8"), *headers])


def _html(text: str) -> _Resp:
    body = f"<!doctype html><html><body><p>{text}</p></body></html>".encode()
    return _Resp(200, body, [("Content-Type", "text/html; charset=utf-8")])


def _redirect(location: str, headers: Iterable[tuple[str, str]] = ()) -> _Resp:
    return _Resp(302, b"", [("Location", location), *headers])


@dataclass
class _Fault:
    kind: str
    remaining: int
    path_contains: str | None
    options: dict


# --- the HTTP server ----------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    standin: StandIn

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (slow without DNS); skip that.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def get_request(self):
        # Every TCP connection accepted, before any TLS handshake or request: a client that connects
        # and sends nothing (or fails the handshake) is counted too.
        request = super().get_request()
        self.standin._count_connection()
        return request

    def handle_error(self, request, client_address) -> None:
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TandemStandIn/1"
    timeout = 15
    server: _Server

    def setup(self) -> None:
        super().setup()
        self._usable = True
        # Headers and body go out in separate writes; without this, Nagle + delayed ACK add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.standin._track(self.connection, True)
        try:
            self.connection.do_handshake()
        except (OSError, ssl.SSLError):
            self._usable = False

    def handle(self) -> None:
        if self._usable:
            super().handle()

    def finish(self) -> None:
        self.server.standin._track(self.connection, False)
        try:
            super().finish()
        except OSError:
            pass

    def _any(self) -> None:
        self.server.standin._handle(self, self.command)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _any

    def log_message(self, format, *args) -> None:
        pass


# --- the stand-in -------------------------------------------------------------------------------------


class StandIn:
    """A local HTTPS Tandem Source; see the module docstring for the paths it serves."""

    def __init__(
        self,
        directory: Path | str,
        accounts: Mapping[str, str] | None = None,
        *,
        seed: int = 42,
        retired_end: date | str = date(2025, 3, 10),
        retired_days: int = 20,
        current_end: date | str = date(2025, 5, 15),
        current_days: int = 45,
        expires_in: int = 1800,
        client_id: str = DEFAULT_CLIENT_ID,
    ):
        self.directory = Path(directory)
        self.ca_path = self.directory / "standin-ca.pem"
        self.client_id = client_id
        self.expires_in = int(expires_in)
        self.url: str | None = None
        self.port: int | None = None
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set = set()
        self._accepted = 0
        self._requests: list[dict] = []
        self._errors: list[str] = []
        self._faults: list[_Fault] = []
        self._sessions: dict[str, str] = {}
        self._codes: dict[str, dict] = {}
        self._tokens: dict[str, tuple[str, float]] = {}
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)
        retired_end, current_end = _as_date(retired_end), _as_date(current_end)
        if retired_days < 1 or current_days < 1:
            raise ValueError("retired_days and current_days must be at least 1")
        self.accounts: dict[str, Account] = {}
        serials: set[str] = set()
        for index, (email, password) in enumerate((DEFAULT_ACCOUNTS if accounts is None else accounts).items()):
            rng = random.Random(f"standin:{seed}:{email}")

            def new_uuid(rng: random.Random = rng) -> str:
                return str(uuid.UUID(int=rng.getrandbits(128), version=4))

            def new_serial(rng: random.Random = rng) -> str:
                while (serial := str(rng.randrange(10_000_000, 100_000_000))) in serials:
                    pass
                serials.add(serial)
                return serial

            account = Account(email, password, new_uuid(), new_uuid(), "Demo", f"Person {index + 1}")
            retired = Pump(
                new_serial(),
                new_uuid(),
                seed + 2 * index + 1,
                True,
                [_Chunk(seed + 2 * index + 1, retired_end, retired_days)],
                software_version="7.6.0.1",
                algorithm="Control-IQ",
                upload_client="USB",
            )
            current = Pump(
                new_serial(), new_uuid(), seed + 2 * index, False, [_Chunk(seed + 2 * index, current_end, current_days)]
            )
            account.pumps = [retired, current]
            self.accounts[email.lower()] = account

    # --- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, port: int = 0) -> StandIn:
        """Write the CA, bind ``port`` on 127.0.0.1 (0: a free one) and serve from a daemon thread.

        After :meth:`stop`, ``start(port=s.port)`` serves again on the same port (with a new CA), so
        that a client configured with the old URLs reaches it; the accounts, pumps, requests and the
        count of connections are kept.
        """
        if self._httpd is not None:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.ca_path))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        httpd = _Server(("127.0.0.1", port), _Handler)
        httpd.standin = self
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.port = httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self._stopping.clear()
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut down: wake slow requests, stop serving, close the socket and open connections, join."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted since the stand-in was made, over every start (before any TLS
        handshake: a connection that sends no request counts too)."""
        with self._lock:
            return self._accepted

    def _count_connection(self) -> None:
        with self._lock:
            self._accepted += 1

    def _track(self, conn, opened: bool) -> None:
        with self._lock:
            if opened:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    # --- URLs ------------------------------------------------------------------------------------------
    def _at(self, path: str) -> str:
        if self.url is None:
            raise RuntimeError("the stand-in is not running (use it as a context manager or call start())")
        return self.url + path

    @property
    def login_page(self) -> str:
        return self._at(LOGIN_PAGE_PATH)

    @property
    def issuer(self) -> str:
        return self._at(ISSUER_PATH)

    @property
    def redirect_uri(self) -> str:
        return self._at(REDIRECT_PATH)

    @property
    def source_url(self) -> str:
        return self._at("/")

    def api_config(self) -> dict[str, str]:
        """The pipeline's ``tandem_api`` config pointing at this stand-in."""
        return {
            "login_page": self.login_page,
            "login_url": self._at(LOGIN_PATH),
            "authorize_url": self._at(AUTHORIZE_PATH),
            "token_url": self._at(TOKEN_PATH),
            "issuer": self.issuer,
            "jwks_url": self._at(JWKS_PATH),
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "source_url": self.source_url,
        }

    # --- data and controls for tests ----------------------------------------------------------------------
    def account(self, email: str | None = None) -> Account:
        """The account of ``email`` (default: the first account)."""
        if email is None:
            return next(iter(self.accounts.values()))
        return self.accounts[email.lower()]

    @property
    def pumps(self) -> list[Pump]:
        """Every pump of every account."""
        return [p for a in self.accounts.values() for p in a.pumps]

    def pump(self, serial: str) -> Pump:
        """The pump with serial number ``serial``."""
        for p in self.pumps:
            if p.serial == serial:
                return p
        raise KeyError(serial)

    def events(self, serial: str, start: date | str | None = None, end: date | str | None = None) -> list[dict]:
        """Copies of the pump-logs elements the server holds for a pump (whole history by default)."""
        p = self.pump(serial)
        first = _as_date(start) if start is not None else date.min
        last = _as_date(end) if end is not None else date.max
        return copy.deepcopy(p.elements(first, last))

    @property
    def requests(self) -> list[dict]:
        """Snapshot of the requests in order of arrival: method, path, query, time, status, fault,
        answered (time the answer was ready) and for requests with a known access token the email of its account (``account``).

        ``status`` is None for a dropped connection (and while an answer is still being prepared).
        """
        with self._lock:
            return [dict(r, query=dict(r["query"])) for r in self._requests]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    @property
    def errors(self) -> list[str]:
        """Tracebacks of internal stand-in errors (each answered 500); empty when all is well."""
        with self._lock:
            return list(self._errors)

    @property
    def faults_pending(self) -> int:
        """How many injected faults have not been consumed yet."""
        with self._lock:
            return sum(f.remaining for f in self._faults)

    def inject(self, kind: str | int, count: int = 1, path_contains: str | None = None, **options: Any) -> None:
        """Make the next ``count`` requests whose path+query contains ``path_contains`` (any if None) fail.

        Kinds: "500", "429" (retry_after=1), "drop", "slow" (seconds=2.0), "401", "403", "404",
        "truncated", "badjson" (text=<an HTML page>); for pump-logs requests only "empty",
        "partial" and "shape" (body=<JSON>); for pumper requests only "pumper" (pump={fields},
        index=0); for token requests only "claims" (drop=[names], values={claims}).  The module
        docstring says what each one answers.  ValueError for an unknown kind, TypeError for an
        option the kind does not take.
        """
        kind = str(kind)
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        defaults = _FAULT_OPTIONS.get(kind, {})
        unknown = set(options) - set(defaults)
        if unknown:
            raise TypeError(f"fault {kind!r} takes no option(s) {', '.join(sorted(unknown))}")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._faults.append(_Fault(kind, int(count), path_contains, {**defaults, **options}))

    @property
    def issued_tokens(self) -> list[str]:
        """Every access token issued and not expired with :meth:`expire_tokens` (to check none leaks)."""
        with self._lock:
            return list(self._tokens)

    def clear_faults(self) -> None:
        """Forget every injected fault not consumed yet."""
        with self._lock:
            self._faults.clear()

    def expire_tokens(self) -> None:
        """Every access token issued so far becomes invalid (401)."""
        with self._lock:
            self._tokens.clear()

    def set_password(self, email: str, password: str) -> None:
        """Change an account's password (KeyError for an unknown account)."""
        with self._lock:
            self.accounts[email.lower()].password = password

    def add_late_events(self, serial: str, days: int = 1) -> int:
        """Append ``days`` more days of history after the pump's last day (a late upload).

        The new events continue the sequence numbers; the pumper answer's ranges follow.
        Returns the number of events added.
        """
        if days < 1:
            raise ValueError("days must be at least 1")
        with self._lock:
            p = self.pump(serial)
            last = p.last_event
            chunk = _Chunk(
                p.seed + 1000 * len(p.chunks),
                last.pump_time.date() + timedelta(days=days),
                days,
                last.seq_num - 1_000_000,
            )
            p.chunks.append(chunk)
            return sum(len(events) for events in _chunk_days(chunk).values())

    # --- request handling ------------------------------------------------------------------------------
    def _take_fault(self, target: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path_contains is not None and fault.path_contains not in target:
                    continue
                if fault.kind in _FAULT_PATHS and not path.startswith(_FAULT_PATHS[fault.kind]):
                    continue
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return _Fault(fault.kind, 1, fault.path_contains, copy.deepcopy(fault.options))
        return None

    def _handle(self, handler: _Handler, method: str) -> None:
        received = time.time()
        target = handler.path
        parts = urlsplit(target)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length > 0 else b""
        fault = self._take_fault(target, path)
        # Bodies are never recorded (the login carries the password, the token call the verifier).
        # Entries are listed in order of arrival; the status is filled in before the answer is sent.
        auth = handler.headers.get("Authorization") or ""
        with self._lock:
            grant = self._tokens.get(auth[len("Bearer ") :].strip()) if auth.startswith("Bearer ") else None
        entry = {
            "method": method,
            "path": path,
            "query": query,
            "time": received,
            "status": None,
            "fault": fault.kind if fault else None,
            "account": grant[0] if grant else None,  # the email a data request's token belongs to
        }
        with self._lock:
            self._requests.append(entry)
        if fault is not None and fault.kind == "drop":
            handler.close_connection = True
            return
        if fault is not None and fault.kind == "slow":
            self._stopping.wait(float(fault.options["seconds"]))
        resp = self._fault_response(fault)
        if resp is None:
            try:
                resp = self._route(method, path, query, handler.headers, body, fault)
            except Exception:
                with self._lock:
                    self._errors.append(traceback.format_exc())
                resp = _json(500, _SERVER_ERROR)
        with self._lock:
            entry["status"] = resp.status
            entry["answered"] = time.time()
        handler.send_response(resp.status)
        for name, value in resp.headers:
            handler.send_header(name, value)
        if fault is not None and fault.kind == "truncated":
            # Announce the whole body (at least one byte), send half of it, close the connection.
            handler.send_header("Content-Length", str(max(len(resp.body), 1)))
            handler.end_headers()
            handler.wfile.write(resp.body[: len(resp.body) // 2])
            handler.close_connection = True
            return
        handler.send_header("Content-Length", str(len(resp.body)))
        handler.end_headers()
        if method != "HEAD":
            handler.wfile.write(resp.body)

    def _fault_response(self, fault: _Fault | None) -> _Resp | None:
        if fault is None:
            return None
        if fault.kind == "500":
            return _json(500, _SERVER_ERROR)
        if fault.kind == "429":
            return _json(429, _TOO_MANY, [("Retry-After", str(fault.options["retry_after"]))])
        if fault.kind == "401":
            return self._unauthorized()
        if fault.kind == "403":
            return _json(403, _FORBIDDEN)
        if fault.kind == "404":
            return _json(404, _NOT_FOUND)
        if fault.kind == "badjson":
            body = str(fault.options["text"]).encode("utf-8")
            return _Resp(200, body, [("Content-Type", "application/json; charset=utf-8")])
        if fault.kind == "shape":
            return _json(200, fault.options["body"])
        return None

    def _route(self, method: str, path: str, query: dict, headers, body: bytes, fault: _Fault | None) -> _Resp:
        routes = {
            LOGIN_PAGE_PATH: ("GET", lambda: _html("Tandem Source stand-in: sign in")),
            REDIRECT_PATH: ("GET", lambda: _html("Tandem Source stand-in: signed in")),
            LOGIN_PATH: ("POST", lambda: self._login(headers, body)),
            AUTHORIZE_PATH: ("GET", lambda: self._authorize(query)),
            AUTHORIZE_CALLBACK_PATH: ("GET", lambda: self._authorize_callback(query, headers)),
            TOKEN_PATH: ("POST", lambda: self._token(headers, body, fault)),
            DISCOVERY_PATH: ("GET", self._discovery),
            JWKS_PATH: ("GET", lambda: _json(200, {"keys": [self._jwk()]})),
        }
        if path in routes:
            allowed, action = routes[path]
        elif path.startswith(PUMPER_PREFIX):
            changed = fault.options if fault is not None and fault.kind == "pumper" else None
            allowed, action = "GET", lambda: self._pumper(path[len(PUMPER_PREFIX) :], headers, changed)
        elif path.startswith(PUMP_LOGS_PREFIX):
            cut = fault.kind if fault is not None and fault.kind in ("empty", "partial") else None
            allowed, action = "GET", lambda: self._pump_logs(path[len(PUMP_LOGS_PREFIX) :], query, headers, cut)
        else:
            return _json(404, _NOT_FOUND)
        if method not in (allowed, "HEAD" if allowed == "GET" else allowed):
            return _json(405, {"message": "Method Not Allowed"}, [("Allow", allowed)])
        return action()

    # --- login and OIDC ----------------------------------------------------------------------------------
    def _login(self, headers, body: bytes) -> _Resp:
        if not (headers.get("Referer") or "").startswith(self.login_page):
            return _json(403, _FORBIDDEN)
        try:
            data = json.loads(body)
            username, password = data["username"], data["password"]
            if not isinstance(username, str) or not isinstance(password, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return _json(400, {"status": "FAILED", "message": "Invalid request."})
        with self._lock:
            account = self.accounts.get(username.lower())
            ok = account is not None and secrets.compare_digest(password.encode(), account.password.encode())
            if not ok:
                return _json(200, {"status": "FAILED", "message": "Invalid username or password."})
            session = secrets.token_urlsafe(24)
            self._sessions[session] = account.email.lower()
        cookie = f"{SESSION_COOKIE}={session}; Path=/; Secure; HttpOnly; SameSite=None"
        return _json(200, {"status": "SUCCESS", "redirectUrl": "/"}, [("Set-Cookie", cookie)])

    def _authorize_error(self, query: dict) -> str | None:
        if query.get("client_id") != self.client_id:
            return "unauthorized_client"
        if query.get("response_type") != "code":
            return "unsupported_response_type"
        if "openid" not in (query.get("scope") or "").split():
            return "invalid_scope"
        if query.get("redirect_uri") != self.redirect_uri:
            return "invalid_request: redirect_uri"
        if query.get("code_challenge_method") != "S256":
            return "invalid_request: code_challenge_method"
        if not re.fullmatch(r"[A-Za-z0-9_-]{43}", query.get("code_challenge") or ""):
            return "invalid_request: code_challenge"
        return None

    def _authorize(self, query: dict) -> _Resp:
        error = self._authorize_error(query)
        if error:
            return _json(400, {"error": error.split(":")[0], "error_description": error})
        return _redirect(self._at(AUTHORIZE_CALLBACK_PATH) + "?" + urlencode(query))

    def _authorize_callback(self, query: dict, headers) -> _Resp:
        error = self._authorize_error(query)
        if error:
            return _json(400, {"error": error.split(":")[0], "error_description": error})
        try:
            cookies = SimpleCookie(headers.get("Cookie") or "")
        except CookieError:
            cookies = SimpleCookie()
        session = cookies[SESSION_COOKIE].value if SESSION_COOKIE in cookies else ""
        with self._lock:
            email = self._sessions.get(session)
            if email is None:
                back = AUTHORIZE_CALLBACK_PATH + "?" + urlencode(query)
                return _redirect(self.login_page + "?" + urlencode({"ReturnUrl": back}))
            code = secrets.token_urlsafe(32)
            self._codes[code] = {
                "email": email,
                "challenge": query["code_challenge"],
                "redirect_uri": query["redirect_uri"],
                "expires": time.time() + CODE_LIFETIME_SECONDS,
            }
        answer = {"code": code, "scope": query["scope"]}
        if "state" in query:
            answer["state"] = query["state"]
        answer["session_state"] = secrets.token_urlsafe(16)
        return _redirect(query["redirect_uri"] + "?" + urlencode(answer))

    def _token(self, headers, body: bytes, fault: _Fault | None = None) -> _Resp:
        no_store = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
        if not (headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            return _json(400, {"error": "invalid_request"}, no_store)
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if form.get("grant_type") != "authorization_code":
            return _json(400, {"error": "unsupported_grant_type"}, no_store)
        if form.get("client_id") != self.client_id:
            return _json(400, {"error": "invalid_client"}, no_store)
        verifier = form.get("code_verifier") or ""
        with self._lock:
            grant = self._codes.pop(form.get("code") or "", None)  # single use, even when refused
            if (
                grant is None
                or grant["expires"] < time.time()
                or form.get("redirect_uri") != grant["redirect_uri"]
                or not re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", verifier)
                or not secrets.compare_digest(s256(verifier), grant["challenge"])
            ):
                return _json(400, {"error": "invalid_grant"}, no_store)
            account = self.accounts[grant["email"]]
            now = int(time.time())
            access_token = secrets.token_urlsafe(32)
            self._tokens[access_token] = (account.email.lower(), time.time() + self.expires_in)
        claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": account.account_id,
            "iat": now,
            "nbf": now,
            "auth_time": now,
            "exp": now + self.expires_in,
            "email": account.email,
            "given_name": account.first_name,
            "family_name": account.last_name,
            "pumperId": account.pumper_id,
            "accountId": account.account_id,
        }
        if fault is not None and fault.kind == "claims":
            for name in fault.options["drop"]:
                claims.pop(name, None)
            claims.update(fault.options["values"])
        answer = {
            "access_token": access_token,
            "id_token": self._sign(claims),
            "expires_in": self.expires_in,
            "token_type": "Bearer",
            "scope": "openid profile email",
        }
        return _json(200, answer, no_store)

    def _sign(self, claims: dict) -> str:
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        signing_input = ".".join(_b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims))
        signature = self._key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)

    def _jwk(self) -> dict:
        numbers = self._key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _b64url_int(numbers.n),
            "e": _b64url_int(numbers.e),
        }

    def _discovery(self) -> _Resp:
        return _json(
            200,
            {
                "issuer": self.issuer,
                "authorization_endpoint": self._at(AUTHORIZE_PATH),
                "token_endpoint": self._at(TOKEN_PATH),
                "jwks_uri": self._at(JWKS_PATH),
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "profile", "email"],
            },
        )

    # --- data API --------------------------------------------------------------------------------------
    def _unauthorized(self) -> _Resp:
        return _json(401, _UNAUTHORIZED, [("WWW-Authenticate", 'Bearer error="invalid_token"')])

    def _caller(self, headers) -> Account | _Resp:
        """The account of a data call, or the 403/401 answer it gets."""
        source = self.source_url
        if headers.get("Origin") != source.rstrip("/") or not (headers.get("Referer") or "").startswith(source):
            return _json(403, _FORBIDDEN)
        auth = headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            return self._unauthorized()
        with self._lock:
            grant = self._tokens.get(auth[len("Bearer ") :].strip())
            if grant is None or grant[1] <= time.time():
                return self._unauthorized()
            return self.accounts[grant[0]]

    def _pumper(self, pumper_id: str, headers, changed: dict | None = None) -> _Resp:
        account = self._caller(headers)
        if isinstance(account, _Resp):
            return account
        if pumper_id != account.pumper_id:
            return _json(403, _FORBIDDEN)
        with self._lock:
            answer = account.describe()
        if changed is not None:
            pump = answer["pumps"][int(changed["index"])]
            for key, value in changed["pump"].items():
                if isinstance(value, dict) and isinstance(pump.get(key), dict):
                    pump[key] = {**pump[key], **value}
                else:
                    pump[key] = value
        return _json(200, answer)

    def _pump_logs(self, assignment_id: str, query: dict, headers, cut: str | None = None) -> _Resp:
        account = self._caller(headers)
        if isinstance(account, _Resp):
            return account
        if "eventIds" in query or not query.get("pumperId"):
            return _json(400, _BAD_INPUT)
        if query["pumperId"] != account.pumper_id:
            return _json(403, _FORBIDDEN)
        start = _parse_bound(query.get("startDate"), "00:00:00")
        end = _parse_bound(query.get("endDate"), "23:59:59")
        if start is None or end is None or end < start or (end - start).days + 1 > MAX_RANGE_DAYS:
            return _json(400, _BAD_INPUT)
        codes: set[int] | None = None
        if query.get("eventCodes"):
            try:
                codes = {int(c) for c in query["eventCodes"].split(",") if c.strip()}
            except ValueError:
                return _json(400, _BAD_INPUT)
        pump = next((p for p in account.pumps if p.assignment_id == assignment_id), None)
        if pump is None:
            return _json(404, _NOT_FOUND)
        events = [] if cut == "empty" else pump.elements(start, end, codes)
        if cut == "partial" and events:
            del events[len(events) // 2]
        return _json(200, {"events": events, "clockChanges": pump.clock_changes()})


def main() -> None:
    """Serve the stand-in until Ctrl-C and print how to point the workflow at it.

    Run from the project root: ``python3 tests/standin.py``.  Writes ``standin.yaml`` (a config
    file for ``--configfile``) and the CA certificate into ``.standin/``.
    """
    import yaml

    directory = Path(".standin")
    directory.mkdir(exist_ok=True)
    with StandIn(directory) as server:
        config = {"source": "tandem", "timezone": "America/New_York", "tandem_api": server.api_config()}
        (directory / "standin.yaml").write_text(yaml.safe_dump(config))
        email, password = next(iter(DEFAULT_ACCOUNTS.items()))
        print(f"Tandem Source stand-in serving at {server.url} (Ctrl-C to stop). In another shell:\n")
        print(f"  export REQUESTS_CA_BUNDLE={server.ca_path.resolve()}")
        print(f"  export TANDEM_EMAIL={email} TANDEM_PASSWORD='{password}'")
        print("  snakemake -c1 all --configfile .standin/standin.yaml\n", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
