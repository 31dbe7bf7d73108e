"""Tandem Source web API client: login (authorization code + PKCE), pump list, pump-logs.

Facts (URLs, client ids, the login flow, headers the data API requires, the 28-day limit, error
behaviour) come from the reference notes on the Tandem Source API (tandem-source-api.md), as of the
2026 endpoints ``bff/pumper`` and ``bff/pump-logs``.  Every URL and the client id live in
:data:`REGIONS` and can be overridden by the config key ``tandem_api``.

Secrets: the password is held only in :class:`Credentials` (whose repr hides it) and sent only in
the login request body; tokens are sent only in Authorization headers and the 0600 token cache.
No error message, log line or exception text includes either.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import errno
import hashlib
import http.client
import json
import logging
import os
import re
import secrets
import socket
import ssl
import stat
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn
from urllib.parse import parse_qs, urljoin, urlparse

import jwt
import requests
import urllib3
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from . import answers, ids
from .errors import InputError

REGIONS: dict[str, dict[str, str]] = {
    "US": {
        "login_page": "https://sso.tandemdiabetes.com/",
        "login_url": "https://tdcservices.tandemdiabetes.com/accounts/api/login",
        "authorize_url": "https://tdcservices.tandemdiabetes.com/accounts/api/connect/authorize",
        "token_url": "https://tdcservices.tandemdiabetes.com/accounts/api/connect/token",
        "issuer": "https://tdcservices.tandemdiabetes.com/accounts/api",
        "jwks_url": "https://tdcservices.tandemdiabetes.com/accounts/api/.well-known/openid-configuration/jwks",
        "client_id": "0oa4wnbvtladeyVZX4h7",
        "redirect_uri": "https://sso.tandemdiabetes.com/auth/callback",
        "source_url": "https://source.tandemdiabetes.com/",
    },
    "EU": {
        "login_page": "https://sso.tandemdiabetes.com/",
        "login_url": "https://tdcservices.eu.tandemdiabetes.com/accounts/api/login",
        "authorize_url": "https://tdcservices.eu.tandemdiabetes.com/accounts/api/connect/authorize",
        "token_url": "https://tdcservices.eu.tandemdiabetes.com/accounts/api/connect/token",
        "issuer": "https://tdcservices.eu.tandemdiabetes.com/accounts/api",
        "jwks_url": "https://tdcservices.eu.tandemdiabetes.com/accounts/api/.well-known/openid-configuration/jwks",
        "client_id": "1519e414-eeec-492e-8c5e-97bea4815a10",
        "redirect_uri": "https://source.eu.tandemdiabetes.com/authorize/callback",
        "source_url": "https://source.eu.tandemdiabetes.com/",
    },
}
API_KEYS = tuple(REGIONS["US"])
#: The keys of REGIONS (and of config ``tandem_api``) that are URLs: each must be https://.
URL_KEYS = tuple(k for k in API_KEYS if k != "client_id")
CREDENTIALS_FILE = Path("sensitive") / "credentials.toml"
TOKEN_FILE = Path("sensitive") / "token.json"
TOKEN_MARGIN = dt.timedelta(minutes=5)
#: The longest life an access token is taken to have: Tandem Source's ``expires_in`` has been seen
#: from 30 minutes to 8 hours; a larger value is cut to this (a token that ends earlier is answered
#: with 401, and the client logs in again).
MAX_TOKEN_LIFETIME = dt.timedelta(hours=24)
#: Claims the id_token must carry (PyJWT then checks exp, iat, iss and aud).
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud")
#: An access token as a Bearer header carries it (RFC 6750, section 2.1: b64token).
BEARER_TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")
#: The keys of the token cache this pipeline writes (every version has written exactly these).
TOKEN_CACHE_KEYS = frozenset({"access_token", "expires_at", "pumper_id", "email", "issuer"})
#: The most of a token cache read: the pipeline's own are a few kilobytes.
TOKEN_CACHE_MAX_BYTES = 1 << 16


class TandemError(InputError):
    """A fetch failure; the message is one line that names what failed and what to do."""


class LoginRejected(TandemError):
    """Tandem Source refused the email/password: never retried automatically."""


class ApiChanged(TandemError):
    """403/404 from the data API: the endpoints or their required headers may have changed."""


class WindowRejected(TandemError):
    """HTTP 400 for a pump-logs window (the caller splits the window)."""


class Unavailable(TandemError):
    """Tandem Source kept failing (connection errors, timeouts, 429, 5xx) through every retry, or
    asked (Retry-After) to wait longer than ``fetch.max_wait_seconds``."""


class Unverified(TandemError):
    """Tandem Source's TLS certificate could not be verified (a captive portal, a proxy, a wrong
    URL): never retried."""


class BrokenAnswer(TandemError):
    """Tandem Source kept answering with a broken body (cut short, not JSON where JSON is expected,
    or refused by the caller's check) through every retry."""


@dataclass(frozen=True)
class Credentials:
    """A Tandem Source login. ``repr`` and ``str`` never show the password."""

    email: str
    password: str = field(repr=False)
    region: str = "US"

    def __str__(self) -> str:
        return f"Credentials(email={self.email!r}, region={self.region!r})"


def credentials_file_ok(path: Path) -> None:
    """Raise InputError if ``path`` may be read by users other than its owner."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(f"{path}: readable by other users (mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}")


def load_credentials(project_dir: Path | str = ".", environ: dict | None = None) -> Credentials | None:
    """Credentials from the environment (TANDEM_EMAIL, TANDEM_PASSWORD, TANDEM_REGION), which wins
    key by key, or from ``sensitive/credentials.toml`` (table ``[tandem]``: email, password, region).

    Returns None when no email and password are found.  Raises InputError for a credentials file
    that other users can read, one that is not valid TOML, or an unknown region.
    """
    env = os.environ if environ is None else environ
    path = Path(project_dir) / CREDENTIALS_FILE
    values = _read_credentials_file(path) if path.exists() else {}
    for key in ("email", "password", "region"):
        if env.get(f"TANDEM_{key.upper()}"):
            values[key] = env[f"TANDEM_{key.upper()}"]
    if not values.get("email") or not values.get("password"):
        return None
    return _credentials(values)


def _read_credentials_file(path: Path) -> dict[str, str]:
    """email, password and region of a credentials TOML file (table ``[tandem]``) that only its owner can read."""
    credentials_file_ok(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc}); compare it with {CREDENTIALS_FILE}.template") from None
    section = data.get("tandem", {})
    return {k: str(section[k]) for k in ("email", "password", "region") if section.get(k)}


def _credentials(values: dict[str, str]) -> Credentials:
    region = values.get("region", "US").upper()
    if region not in REGIONS:
        raise InputError(f"region: {values['region']!r} is not a Tandem Source region; use US or EU")
    return Credentials(values["email"], values["password"], region)


def account_credentials(
    account: str,
    credentials_file: str | None,
    email_env: str | None,
    password_env: str | None,
    environ: dict | None = None,
) -> Credentials:
    """The credentials of one accounts-sheet row: from its TOML file, or from the two variables it names.

    Raises InputError naming the account and what to fix (never a value) when the file is missing,
    readable by others or invalid, or a variable is unset or empty.
    """
    env = os.environ if environ is None else environ
    if credentials_file:
        path = Path(credentials_file)
        if not path.is_file():
            raise InputError(
                f"account {account}: credentials file {credentials_file} does not exist or is not a file; create it "
                "(chmod 600) "
                "or fix credentials_file in the accounts sheet"
            )
        values = _read_credentials_file(path)
        if not values.get("email") or not values.get("password"):
            raise InputError(f"account {account}: {credentials_file} lacks email or password under [tandem]")
        return _credentials(values)
    values = {}
    for key, name in (("email", email_env), ("password", password_env)):
        if not name or not env.get(name):
            raise InputError(
                f"account {account}: environment variable {name} (its {key}) is not set; set it for this run "
                "or fix the accounts sheet"
            )
        values[key] = env[name]
    return _credentials(values)


def api_urls(region: str, overrides: dict | None) -> dict[str, str]:
    """The URL set and client id of ``region`` (a key of REGIONS) with the config's ``tandem_api``
    overrides applied: {key of API_KEYS: value}.

    Every URL (:data:`URL_KEYS`) must be https:// (:data:`ids.HTTPS_URL`, in full; the config
    schema refuses others first): TandemError naming the key otherwise, before any request.
    """
    urls = dict(REGIONS[region])
    urls.update({k: str(v) for k, v in (overrides or {}).items() if v})
    for key in URL_KEYS:
        if not ids.matches(ids.HTTPS_URL, urls.get(key)):
            raise TandemError(
                f"tandem_api.{key}: {_short(repr(urls.get(key)), 80)} is not an https:// URL; a plain http:// URL "
                "would send the password and tokens in clear text, so write the https:// URL"
            )
    return urls


class InsecureRedirect(requests.exceptions.RequestException):
    """A redirect to a URL that is not https:// (never followed)."""


class _HttpsOnlySession(requests.Session):
    """A requests Session that follows no redirect to a URL that is not https://.

    requests follows redirects, resending the body of a 307 or 308 (the login's password) to
    wherever the Location header points; every hop passes through ``rebuild_auth``, which raises
    InsecureRedirect here before anything is sent to such a URL.
    """

    def rebuild_auth(self, prepared_request, response):
        if not ids.matches(ids.HTTPS_URL, prepared_request.url):
            raise InsecureRedirect("redirect to a URL that is not https://")
        super().rebuild_auth(prepared_request, response)


def read_token_cache(path: Path) -> dict | None:
    """The JSON object of the token cache at ``path`` when it is one this pipeline wrote, or None
    when there is no file there.

    A token cache this pipeline wrote is a regular file (not a folder, a symlink or a device) holding
    a JSON object with exactly the keys of :data:`TOKEN_CACHE_KEYS`; its values are not checked here.
    Anything else at ``path`` is someone else's file, which the login must never overwrite: raises
    TandemError (one line naming the path, what it is, and what to do).
    """
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    except OSError as exc:  # a part of the path is a file (ENOTDIR), a name too long, ...
        return _foreign_token_cache(path, f"it cannot be looked at ({exc.strerror or type(exc).__name__})")
    if stat.S_ISDIR(st.st_mode):
        return _foreign_token_cache(path, "it is a folder")
    if stat.S_ISLNK(st.st_mode):
        return _foreign_token_cache(path, "it is a symbolic link")
    if not stat.S_ISREG(st.st_mode):
        return _foreign_token_cache(path, "it is not a regular file")
    try:
        with open(path, "rb") as fh:
            body = fh.read(TOKEN_CACHE_MAX_BYTES + 1)
    except OSError as exc:
        return _foreign_token_cache(path, f"it cannot be read ({exc.strerror or type(exc).__name__})")
    if len(body) > TOKEN_CACHE_MAX_BYTES:
        return _foreign_token_cache(path, "it is larger than any token cache")
    try:
        data = answers.parse_json(body)
    except answers.AnswerError:
        return _foreign_token_cache(path, "it is not JSON")
    if not isinstance(data, dict) or set(data) != TOKEN_CACHE_KEYS:
        return _foreign_token_cache(path, "its JSON is not a token cache (other keys)")
    return data


def _foreign_token_cache(path: Path, what: str) -> NoReturn:
    raise TandemError(
        f"token cache {path}: {what}, so it is not a token cache this pipeline wrote and is never overwritten; "
        "delete it, or set fetch.token_cache to another path"
    )


def _pkce_pair() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(48)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def write_private_json(path: Path, data: dict) -> None:
    """Write ``data`` to ``path`` atomically, created with mode 0600 (never readable by others)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@dataclass
class RetryPolicy:
    """How network faults are retried (config ``fetch``).

    ``retries``: how many retries, in all, the requests of one step get after network faults
    (the login is one step, each data call another); ``backoff_seconds``: the base of
    urllib3's exponential backoff (no wait before the first retry, then 2, 4, 8... times it, plus
    up to half of it at random, at most ``max_backoff_seconds``); ``timeout_seconds``: the
    connect and read timeout of each request; ``max_wait_seconds``: the longest Retry-After
    honoured (a longer one stops the run).  All in seconds.
    """

    retries: int = 5
    backoff_seconds: float = 1.0
    timeout_seconds: float = 60.0
    max_backoff_seconds: float = 60.0
    max_wait_seconds: float = 300.0

    def new_retry(self) -> Retry:
        """A fresh budget: a urllib3 Retry that counts every fault against ``retries`` alike and
        computes the backoff and the Retry-After wait (which is never cut short: see max_wait_seconds)."""
        return Retry(
            total=self.retries,
            connect=None,
            read=None,
            redirect=None,
            status=None,
            other=None,
            allowed_methods=None,  # every method: the client decides what is a fault
            backoff_factor=self.backoff_seconds,
            backoff_max=self.max_backoff_seconds,
            backoff_jitter=self.backoff_seconds / 2,
            respect_retry_after_header=True,
            retry_after_max=sys.maxsize,
        )


class _Budget:
    """The retries left to one step.  Every request of the step draws on it, so a fault that lasts
    costs at most ``policy.retries`` retries however many requests the step makes."""

    def __init__(self, policy: RetryPolicy):
        self.retry = policy.new_retry()


@dataclass
class _Fault:
    """One attempt that met a network fault: the words for it (``"Tandem Source answered HTTP 503"``),
    whether it is a broken body, what urllib3's Retry is told, and what the user can do."""

    text: str
    broken: bool = False
    error: BaseException | None = None
    response: requests.Response | None = None
    advice: str = "try again later"


def _json_body(body: bytes):
    """The JSON value of an answer; AnswerError("invalid JSON") for anything else (answers.parse_json)."""
    try:
        return answers.parse_json(body)
    except answers.AnswerError:
        raise answers.AnswerError("invalid JSON") from None


def _bearer_token(value) -> bool:
    return isinstance(value, str) and BEARER_TOKEN.fullmatch(value) is not None


def _aware_datetime(value) -> dt.datetime | None:
    """``value`` as a datetime when it is ISO 8601 text with a zone or offset, else None."""
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.utcoffset() is not None else None


def _checked_id(value, what: str) -> str:
    """``value`` when it is a UUID (ids.UUID, in full), else TandemError with the ids message."""
    try:
        return ids.checked(ids.UUID, value, what)
    except ids.BadIdentifier as exc:
        raise TandemError(str(exc)) from None


class TandemClient:
    """One logged-in session with Tandem Source.

    Every request goes through one retry layer, this client's (requests' adapters retry nothing):
    a network fault (connection error, timeout, an answer cut short, invalid JSON where JSON is
    expected, HTTP 429 or 5xx) in any step of the login or of a data call is retried with
    urllib3's exponential backoff and jitter, or after the Retry-After the server asks for, up to
    ``policy.retries`` times per step; then :class:`Unavailable` or :class:`BrokenAnswer` names
    the step in one line.  A Retry-After beyond ``policy.max_wait_seconds`` stops at once
    (Unavailable).  A login refusal is never retried (:class:`LoginRejected`); a 401 on a data
    call triggers one new login.  No requests or urllib3 exception leaves the client: every one
    becomes a TandemError.
    """

    def __init__(
        self,
        credentials: Credentials,
        urls: dict[str, str],
        token_cache: Path | None,
        policy: RetryPolicy,
        log: logging.Logger,
    ):
        self.credentials = credentials
        self.urls = urls
        self.token_cache = token_cache
        self.policy = policy
        self.log = log
        # The default adapters retry nothing (Retry(0, read=False)): every retry is counted here.
        self.session = _HttpsOnlySession()
        self.access_token: str | None = None
        self.expires_at: dt.datetime | None = None
        self.pumper_id: str | None = None

    # --- requests and retries --------------------------------------------------------------------
    def _attempt(self, method: str, url: str, what: str, check: Callable | None, **kwargs):
        """One request: ``(response, check(body))`` (None without a check, or for a status other
        than 200), or the :class:`_Fault` it met.

        Raises TandemError for what no retry mends: a URL that is not https:// (nothing is sent), a
        redirect to one, a certificate that cannot be verified, a URL or header that cannot be sent,
        a CA bundle that cannot be read.
        """
        if not ids.matches(ids.HTTPS_URL, url):  # never the URL itself: a redirect's may carry a code
            raise TandemError(
                f"{what}: refusing a request to a URL that is not https:// (it would send secrets in clear text); "
                "check the tandem_api URLs"
            )
        try:
            response = self.session.request(method, url, timeout=self.policy.timeout_seconds, **kwargs)
        except requests.exceptions.RequestException as exc:
            return self._transport_fault(exc, what)
        except (urllib3.exceptions.HTTPError, http.client.HTTPException) as exc:
            return _Fault(f"could not reach Tandem Source ({_reason(exc)})", error=exc)
        except OSError as exc:  # requests' own: the CA bundle (REQUESTS_CA_BUNDLE) cannot be read
            raise TandemError(
                f"{what}: no request could be made ({_reason(exc)}: {_short(str(exc))}); check REQUESTS_CA_BUNDLE "
                "and the proxy settings"
            ) from None
        status = response.status_code
        if status == 429 or 500 <= status <= 599:
            return _Fault(f"Tandem Source answered HTTP {status}", response=response)
        if check is None or status != 200:
            return response, None
        try:
            return response, check(response.content)
        except answers.AnswerError as exc:
            return _Fault(f"Tandem Source answered with a broken body ({_short(str(exc), 200)})", True, exc)

    def _transport_fault(self, exc: requests.exceptions.RequestException, what: str) -> _Fault:
        """The fault a requests exception stands for, or TandemError when retrying cannot help."""
        errors = requests.exceptions
        causes = list(_causes(exc))
        if isinstance(exc, InsecureRedirect):
            raise TandemError(
                f"{what}: Tandem Source redirected to a URL that is not https://; not followed (it would send "
                "secrets in clear text); check the tandem_api URLs"
            ) from None
        if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
            raise Unverified(
                f"{what}: the TLS certificate of Tandem Source could not be verified; check the tandem_api URLs and "
                "this machine's CA certificates (REQUESTS_CA_BUNDLE)"
            ) from None
        if isinstance(exc, (errors.InvalidURL, errors.MissingSchema, errors.InvalidSchema, errors.URLRequired)):
            raise TandemError(
                f"{what}: the request could not be sent ({type(exc).__name__}); check the tandem_api URLs in the "
                "config and the proxy settings (HTTPS_PROXY)"
            ) from None
        if isinstance(
            exc,
            (errors.InvalidHeader, errors.InvalidJSONError, errors.StreamConsumedError, errors.UnrewindableBodyError),
        ):
            raise TandemError(
                f"{what}: the request could not be sent ({type(exc).__name__}); check the tandem_api values in the "
                "config, else report this as a bug of tandem-export"
            ) from None
        # No connection was made: urllib3's NewConnectionError (and NameResolutionError, its subclass)
        # subclasses ConnectTimeoutError for old callers, but it is a refusal or a failed lookup, not a
        # timeout (a connect that times out is a ConnectTimeoutError alone).
        if any(isinstance(c, urllib3.exceptions.NewConnectionError) for c in causes):
            if any(isinstance(c, (urllib3.exceptions.NameResolutionError, socket.gaierror)) for c in causes):
                return _Fault(
                    "the address of Tandem Source could not be looked up (DNS)",
                    error=exc,
                    advice="check this machine's network connection and the tandem_api URLs, or try again later",
                )
            code = next((c.errno for c in causes if isinstance(c, OSError) and c.errno), None)
            words = "connection refused" if code == errno.ECONNREFUSED else (os.strerror(code) if code else "")
            return _Fault(
                f"could not connect to Tandem Source ({words[:1].lower() + words[1:] or _reason(exc)})",
                error=exc,
                advice="check the tandem_api URLs and this machine's network connection, or try again later",
            )
        if isinstance(exc, errors.Timeout) or any(
            isinstance(c, (urllib3.exceptions.TimeoutError, TimeoutError)) for c in causes
        ):
            return _Fault(
                f"Tandem Source did not answer within {self.policy.timeout_seconds:g} s",
                error=exc,
                advice="try again later, or raise fetch.timeout_seconds",
            )
        if isinstance(exc, errors.ChunkedEncodingError):
            return _Fault("Tandem Source answered with a broken body (cut short)", True, exc)
        if isinstance(exc, errors.ContentDecodingError):
            return _Fault("Tandem Source answered with a broken body (not decodable)", True, exc)
        return _Fault(f"could not reach Tandem Source ({_reason(exc)})", error=exc)

    def _next_try(self, budget: _Budget, fault: _Fault, method: str, url: str, what: str) -> None:
        """Count ``fault`` against ``budget`` and wait before the next try (urllib3's backoff, or the
        server's Retry-After on 413, 429 or 503).

        Raises Unavailable (BrokenAnswer for a broken body) naming ``what`` once the budget is
        spent, and Unavailable at once for a Retry-After beyond ``policy.max_wait_seconds``.
        """
        raw = fault.response.raw if fault.response is not None else None
        try:
            budget.retry = budget.retry.increment(method, url, response=raw, error=fault.error)
        except MaxRetryError:
            n = self.policy.retries
            cls = BrokenAnswer if fault.broken else Unavailable
            raise cls(f"{what}: {fault.text} after {n} {'retry' if n == 1 else 'retries'}; {fault.advice}") from None
        wait = budget.retry.get_backoff_time()
        asked = self._retry_after(budget.retry, fault.response)
        if asked is not None:
            limit = self.policy.max_wait_seconds
            if asked > limit:
                raise Unavailable(
                    f"{what}: Tandem Source asked to wait {asked:g} s before trying again (Retry-After), more than "
                    f"fetch.max_wait_seconds ({limit:g} s); try again later, or raise fetch.max_wait_seconds"
                )
            wait = asked
        if wait > 0:
            time.sleep(wait)

    @staticmethod
    def _retry_after(retry: Retry, response: requests.Response | None) -> float | None:
        """Seconds to wait that the answer asks for (Retry-After on 413, 429 or 503, as urllib3
        honours it), or None (no such header, 0, or a value that is neither seconds nor a date)."""
        if response is None or response.status_code not in Retry.RETRY_AFTER_STATUS_CODES:
            return None
        value = response.headers.get("Retry-After")
        if value is None:
            return None
        try:
            seconds = retry.parse_retry_after(value)
        except (urllib3.exceptions.InvalidHeader, ValueError, OverflowError, IndexError, TypeError):
            return None
        return seconds or None

    def _call(self, method: str, url: str, what: str, budget: _Budget | None = None, check=None, **kwargs):
        """``(response, check(body))`` of a request tried until it meets no network fault (see _attempt
        and _next_try); ``budget`` is the step's (a new one by default)."""
        budget = budget or _Budget(self.policy)
        while True:
            outcome = self._attempt(method, url, what, check, **kwargs)
            if not isinstance(outcome, _Fault):
                return outcome
            self._next_try(budget, outcome, method, url, what)

    # --- login -------------------------------------------------------------------------------
    def login(self) -> None:
        """Log in (password, then authorization code with PKCE) and verify the id_token.

        The whole login is one step with one retry budget.  Raises LoginRejected when Tandem Source
        refuses the credentials (HTTP 200 with a status other than SUCCESS, or 400, 401 or 403;
        never retried), Unavailable or BrokenAnswer after the retries, TandemError for an answer
        of the wrong form (an id_token without exp or iat, a pumperId that is not a UUID...).
        Sets access_token, expires_at and pumper_id and writes the token cache only once every
        check has passed.
        """
        u = self.urls
        if self.token_cache:
            read_token_cache(self.token_cache)  # someone else's file there: stop before the password is sent
        budget = _Budget(self.policy)
        response, answer = self._call(
            "POST",
            u["login_url"],
            "login",
            budget,
            _json_body,
            json={"username": self.credentials.email, "password": self.credentials.password},
            headers={"Referer": u["login_page"]},
        )
        code = response.status_code
        status = answer.get("status") if isinstance(answer, dict) else None
        if code in (400, 401, 403) or (code == 200 and status != "SUCCESS"):
            raise LoginRejected(
                f"login: Tandem Source rejected the login for {self.credentials.email} (HTTP {code}"
                f"{', status ' + _short(str(status), 40) if status else ''}); check the email, password and region "
                "(not retried, so the account is not locked out)"
            )
        if code != 200:
            raise TandemError(
                f"login: HTTP {code} from the login endpoint; the login flow may have changed (see tandem_api in "
                "the README)"
            )
        access_token, id_token, lifetime = self._tokens(budget)
        claims = self._verify_id_token(id_token, budget)
        try:
            pumper_id = ids.checked(ids.UUID, claims.get("pumperId"), "login: the id_token's pumperId")
        except ids.BadIdentifier as exc:
            raise TandemError(f"{exc}; refusing it (the login flow may have changed)") from None
        self.access_token, self.pumper_id = access_token, pumper_id
        self.expires_at = dt.datetime.now(dt.UTC) + lifetime
        if self.token_cache:
            read_token_cache(self.token_cache)  # still none, or ours
            write_private_json(
                self.token_cache,
                {
                    "access_token": self.access_token,
                    "expires_at": self.expires_at.isoformat(),
                    "pumper_id": self.pumper_id,
                    "email": self.credentials.email,
                    "issuer": u["issuer"],
                },
            )
        self.log.info("logged in to Tandem Source as %s", self.credentials.email)

    def _tokens(self, budget: _Budget) -> tuple[str, str, dt.timedelta]:
        """(access_token, id_token, lifetime) from the token endpoint, each checked.

        Every try asks for a new authorization code first: the server may have used a code up
        before its answer broke, and a code sent twice must be refused (RFC 6749, 4.1.2).
        """
        u = self.urls
        while True:
            verifier, challenge = _pkce_pair()
            params = {
                "client_id": u["client_id"],
                "response_type": "code",
                "scope": "openid profile email",
                "redirect_uri": u["redirect_uri"],
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
            code = self._authorization_code(params, budget)
            form = {
                "grant_type": "authorization_code",
                "client_id": u["client_id"],
                "code": code,
                "redirect_uri": u["redirect_uri"],
                "code_verifier": verifier,
            }
            outcome = self._attempt("POST", u["token_url"], "login (token)", _json_body, data=form)
            if not isinstance(outcome, _Fault):
                break
            self._next_try(budget, outcome, "POST", u["token_url"], "login (token)")
        response, tokens = outcome
        if response.status_code != 200:
            raise TandemError(
                f"login (token): HTTP {response.status_code} from the token endpoint; the login flow may have changed"
            )
        if not isinstance(tokens, dict):
            raise TandemError("login (token): the answer is not a JSON object; the login flow may have changed")
        if not _bearer_token(tokens.get("access_token")):
            raise TandemError(
                "login (token): the answer carries no usable access_token; the login flow may have changed"
            )
        if not isinstance(tokens.get("id_token"), str) or not tokens["id_token"]:
            raise TandemError("login (token): the answer carries no id_token; the login flow may have changed")
        seconds = tokens.get("expires_in", 1800)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
            raise TandemError(
                "login (token): expires_in is not a positive number of seconds; the login flow may have changed"
            )
        lifetime = dt.timedelta(seconds=min(seconds, MAX_TOKEN_LIFETIME.total_seconds()))
        return tokens["access_token"], tokens["id_token"], lifetime

    def _authorization_code(self, params: dict, budget: _Budget) -> str:
        """Follow the authorize redirects in the cookie session until the redirect_uri carries ``code``.

        The redirect_uri itself is never requested: the code is read from its query string.
        """
        url, query = self.urls["authorize_url"], params
        for _ in range(10):
            response, _ = self._call("GET", url, "login (authorize)", budget, params=query, allow_redirects=False)
            query = None
            location = response.headers.get("Location")
            if response.status_code not in (301, 302, 303, 307, 308) or not location:
                break
            url = urljoin(response.url, location)
            code = parse_qs(urlparse(url).query).get("code")
            if code and url.startswith(self.urls["redirect_uri"]):
                return code[0]
        raise TandemError("login (authorize): no authorization code came back; the login flow may have changed")

    def _verify_id_token(self, id_token: str, budget: _Budget) -> dict:
        """Claims of the RS256 id_token, verified against the issuer's JWKS, issuer and audience; it
        must carry :data:`REQUIRED_CLAIMS`.  TandemError (one line, never the token) otherwise."""
        response, keys = self._call("GET", self.urls["jwks_url"], "login (keys)", budget, _json_body)
        if response.status_code != 200:
            raise TandemError(
                f"login (keys): HTTP {response.status_code} for the JWKS; the login flow may have changed"
            )
        try:
            keyset = jwt.PyJWKSet.from_dict(keys)
            kid = jwt.get_unverified_header(id_token).get("kid")
            key = next((k for k in keyset.keys if k.key_id == kid), None) or keyset.keys[0]
            return jwt.decode(
                id_token,
                key.key,
                algorithms=["RS256"],
                audience=self.urls["client_id"],
                issuer=self.urls["issuer"],
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise TandemError(
                f"login: the id_token carries no {exc.claim!r} claim; refusing it (the login flow may have changed)"
            ) from None
        except (jwt.PyJWTError, ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
            raise TandemError(
                f"login: the id_token failed verification ({type(exc).__name__}); refusing to continue"
            ) from None

    def ensure_login(self) -> None:
        """Reuse the token in memory or in the token cache while more than 5 minutes of it remain,
        else log in (see login for the errors raised)."""
        if self.access_token and self.expires_at and self.expires_at - dt.datetime.now(dt.UTC) > TOKEN_MARGIN:
            return
        cached = self._cached_token()
        if cached is not None:
            self.access_token, self.expires_at, self.pumper_id = cached
            self.log.info("reusing the cached Tandem Source token (valid until %s)", cached[1].strftime("%H:%M UTC"))
            return
        self.login()

    def _cached_token(self) -> tuple[str, dt.datetime, str] | None:
        """(access_token, expires_at, pumper_id) of the token cache when it is this login's, passes
        every check and lasts more than TOKEN_MARGIN, else None.

        The file is read as untrusted.  A file that is not a token cache this pipeline wrote (see
        :func:`read_token_cache`) raises TandemError: it is never overwritten.  A cache of this
        pipeline must hold an access_token that is a bearer token, an expires_at that is a date and
        time with a zone and a pumper_id that is a UUID; one that fails is ignored (and replaced by
        the next login) with an INFO line giving the reason, never a value read from the file.
        """
        if not self.token_cache:
            return None
        data = read_token_cache(self.token_cache)
        if data is None:
            return None
        if data.get("email") != self.credentials.email or data.get("issuer") != self.urls["issuer"]:
            return None  # another login's token
        if not _bearer_token(data.get("access_token")):
            return self._unusable_cache("access_token is not a bearer token")
        expires = _aware_datetime(data.get("expires_at"))
        if expires is None:
            return self._unusable_cache("expires_at is not a date and time with a zone")
        if not ids.matches(ids.UUID, data.get("pumper_id")):
            return self._unusable_cache("pumper_id is not a UUID")
        if expires - dt.datetime.now(dt.UTC) <= TOKEN_MARGIN:
            return None
        return data["access_token"], expires, data["pumper_id"]

    def _unusable_cache(self, reason: str) -> None:
        self.log.info(
            "%s: the Tandem Source token cache is not usable (%s); logging in again", self.token_cache, reason
        )

    # --- data --------------------------------------------------------------------------------
    def _data_get(
        self, path: str, what: str, params: dict | None = None, check=None
    ) -> tuple[requests.Response, object]:
        """``(response, check(body))`` of a 200 for ``GET source_url + path`` (one step, one budget).

        A 401 logs in once more and repeats the request.  Raises ApiChanged on 403/404,
        WindowRejected on 400, Unavailable or BrokenAnswer after the retries, TandemError otherwise.
        """
        self.ensure_login()
        source = self.urls["source_url"]
        url = urljoin(source, path)
        budget = _Budget(self.policy)
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.access_token}", "Origin": source.rstrip("/"), "Referer": source}
            response, value = self._call("GET", url, what, budget, check, params=params, headers=headers)
            if response.status_code == 401 and attempt == 1:
                self.log.info("%s: token expired (HTTP 401); logging in again", what)
                self.access_token = None
                self.login()
                continue
            break
        if response.status_code == 401:
            raise TandemError(
                f"{what}: still HTTP 401 after logging in again; check the account's access to Tandem Source"
            )
        if response.status_code in (403, 404):
            raise ApiChanged(
                f"{what}: HTTP {response.status_code} from Tandem Source; the API or its required headers may have "
                "changed (see tandem_api in the README)"
            )
        if response.status_code == 400:
            raise WindowRejected(f"{what}: HTTP 400 ({_short(response.text)})")
        if response.status_code != 200:
            raise TandemError(
                f"{what}: unexpected HTTP {response.status_code} from Tandem Source; the API may have changed "
                "(see tandem_api in the README)"
            )
        return response, value

    def pumper(self):
        """The parsed JSON of ``GET api/reports/bff/pumper/{pumperId}``: the account and its pumps.

        Any JSON value is returned as it came (check it with answers.check_pumper); an answer that
        is not JSON is a broken body, retried.  Raises as _data_get.
        """
        self.ensure_login()
        pumper_id = _checked_id(self.pumper_id, "pump list: pumperId")
        return self._data_get(f"api/reports/bff/pumper/{pumper_id}", "pump list", check=_json_body)[1]

    def pump_logs(
        self,
        assignment_id: str,
        first: dt.date,
        last: dt.date,
        event_codes: tuple[int, ...],
        what: str,
        check: Callable[[bytes], object] | None = None,
    ) -> bytes:
        """The raw body of ``GET api/reports/bff/pump-logs/{assignmentId}`` for days first..last.

        ``assignment_id`` must be a UUID (ids.UUID, in full; else TandemError, no request made).
        ``check``, when given, is applied to the body of a 200: an answers.AnswerError from it makes
        the answer a broken body, retried like any network fault; after the retries BrokenAnswer
        names ``what`` and the AnswerError text.  Raises WindowRejected on HTTP 400 (the caller may
        split the window), ApiChanged on 403/404, Unavailable after the retries, TandemError otherwise.
        """
        try:
            aid = _checked_id(assignment_id, f"{what}: assignmentId")
        except TandemError as exc:
            raise TandemError(f"{exc}; refusing it (the pump list may be damaged, or its form changed)") from None
        self.ensure_login()  # the pumperId comes with the login
        params = {
            "pumperId": _checked_id(self.pumper_id, f"{what}: pumperId"),
            "startDate": f"{first.isoformat()}T00:00:00Z",
            "endDate": f"{last.isoformat()}T23:59:59Z",
            "eventCodes": ",".join(map(str, event_codes)),
        }
        return self._data_get(f"api/reports/bff/pump-logs/{aid}", what, params, check)[0].content


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (``reason``, ``args``, ``__cause__``, ``__context__``), outermost first."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [getattr(current, "reason", None), *current.args, current.__cause__, current.__context__]
        todo.extend(e for e in inner if isinstance(e, BaseException))


def _reason(exc: BaseException) -> str:
    """A short, secret-free description of a transport error: its type and the innermost one it
    wraps (``ConnectionError: RemoteDisconnected``); never a message, which may hold a URL."""
    names = [type(e).__name__ for e in _causes(exc)]
    return names[0] if names[-1] == names[0] else f"{names[0]}: {names[-1]}"


def _short(text: str, limit: int = 120) -> str:
    """``text`` on one line (whitespace collapsed, other unprintable characters as '?'), at most ``limit`` characters."""
    line = "".join(c if c.isprintable() else "?" for c in " ".join(text.split()))
    return line[:limit]
