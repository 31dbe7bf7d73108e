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
import hashlib
import json
import logging
import os
import secrets
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlparse

import jwt
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

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
CREDENTIALS_FILE = Path("sensitive") / "credentials.toml"
TOKEN_FILE = Path("sensitive") / "token.json"
TOKEN_MARGIN = dt.timedelta(minutes=5)


class TandemError(InputError):
    """A fetch failure; the message is one line that names what failed and what to do."""


class LoginRejected(TandemError):
    """Tandem Source refused the email/password: never retried automatically."""


class ApiChanged(TandemError):
    """403/404 from the data API: the endpoints or their required headers may have changed."""


class WindowRejected(TandemError):
    """HTTP 400 for a pump-logs window (the caller splits the window)."""


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
    """The URL set and client id of ``region`` with the config's ``tandem_api`` overrides applied."""
    urls = dict(REGIONS[region])
    urls.update({k: str(v) for k, v in (overrides or {}).items() if v})
    return urls


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
    """Retries of connection errors, timeouts, 429 and 5xx: count, backoff base and request timeout."""

    retries: int = 5
    backoff_seconds: float = 1.0
    timeout_seconds: float = 60.0
    max_backoff_seconds: float = 60.0


class TandemClient:
    """One logged-in session with Tandem Source.

    Transient failures (connection errors, timeouts, 429 honouring Retry-After, 500/502/503/504)
    are retried by urllib3's Retry with exponential backoff and jitter, up to ``policy.retries``;
    a 401 on a data call triggers one new login; the login itself is never retried on a refusal.
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
        self.session = requests.Session()
        retry = Retry(
            total=policy.retries,
            connect=policy.retries,
            read=policy.retries,
            status=policy.retries,
            other=0,
            backoff_factor=policy.backoff_seconds,
            backoff_max=policy.max_backoff_seconds,
            backoff_jitter=policy.backoff_seconds / 2,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.access_token: str | None = None
        self.expires_at: dt.datetime | None = None
        self.pumper_id: str | None = None

    # --- login -------------------------------------------------------------------------------
    def _request(self, method: str, url: str, what: str, **kwargs) -> requests.Response:
        try:
            return self.session.request(method, url, timeout=self.policy.timeout_seconds, **kwargs)
        except requests.exceptions.RetryError as exc:
            raise TandemError(
                f"{what}: Tandem Source kept failing after {self.policy.retries} retries ({_reason(exc)})"
            ) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise TandemError(
                f"{what}: could not reach Tandem Source after {self.policy.retries} retries ({_reason(exc)})"
            ) from None

    def login(self) -> None:
        """Log in (password, then authorization code with PKCE) and verify the id_token.

        Raises LoginRejected when the credentials are refused, TandemError for anything else.
        """
        u = self.urls
        response = self._request(
            "POST",
            u["login_url"],
            "login",
            json={"username": self.credentials.email, "password": self.credentials.password},
            headers={"Referer": u["login_page"]},
        )
        status = None
        with contextlib.suppress(ValueError):
            status = response.json().get("status")
        if response.status_code != 200 or status != "SUCCESS":
            raise LoginRejected(
                f"login: Tandem Source rejected the login for {self.credentials.email} (HTTP {response.status_code}"
                f"{', status ' + str(status) if status else ''}); check the email, password and region "
                "(not retried, so the account is not locked out)"
            )
        verifier, challenge = _pkce_pair()
        params = {
            "client_id": u["client_id"],
            "response_type": "code",
            "scope": "openid profile email",
            "redirect_uri": u["redirect_uri"],
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        code = self._authorization_code(params)
        response = self._request(
            "POST",
            u["token_url"],
            "login (token)",
            data={
                "grant_type": "authorization_code",
                "client_id": u["client_id"],
                "code": code,
                "redirect_uri": u["redirect_uri"],
                "code_verifier": verifier,
            },
        )
        if response.status_code != 200:
            raise TandemError(
                f"login (token): HTTP {response.status_code} from the token endpoint; the login flow may have changed"
            )
        tokens = response.json()
        claims = self._verify_id_token(tokens.get("id_token", ""))
        self.access_token = tokens["access_token"]
        self.expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=int(tokens.get("expires_in", 1800)))
        self.pumper_id = claims.get("pumperId")
        if not self.pumper_id:
            raise TandemError("login: the id_token carries no pumperId; the login flow may have changed")
        if self.token_cache:
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

    def _authorization_code(self, params: dict) -> str:
        """Follow the authorize redirects in the cookie session until the redirect_uri carries ``code``.

        The redirect_uri itself is never requested: the code is read from its query string.
        """
        url, query = self.urls["authorize_url"], params
        for _ in range(10):
            response = self._request("GET", url, "login (authorize)", params=query, allow_redirects=False)
            query = None
            location = response.headers.get("Location")
            if response.status_code not in (301, 302, 303, 307, 308) or not location:
                break
            url = urljoin(response.url, location)
            code = parse_qs(urlparse(url).query).get("code")
            if code and url.startswith(self.urls["redirect_uri"]):
                return code[0]
        raise TandemError("login (authorize): no authorization code came back; the login flow may have changed")

    def _verify_id_token(self, id_token: str) -> dict:
        """Claims of the RS256 id_token, verified against the issuer's JWKS, issuer and audience."""
        response = self._request("GET", self.urls["jwks_url"], "login (keys)")
        if response.status_code != 200:
            raise TandemError(
                f"login (keys): HTTP {response.status_code} for the JWKS; the login flow may have changed"
            )
        try:
            keys = jwt.PyJWKSet.from_dict(response.json())
            kid = jwt.get_unverified_header(id_token).get("kid")
            key = next((k for k in keys.keys if k.key_id == kid), None) or keys.keys[0]
            return jwt.decode(
                id_token, key.key, algorithms=["RS256"], audience=self.urls["client_id"], issuer=self.urls["issuer"]
            )
        except (jwt.PyJWTError, ValueError, IndexError) as exc:
            raise TandemError(
                f"login: the id_token failed verification ({type(exc).__name__}); refusing to continue"
            ) from None

    def ensure_login(self) -> None:
        """Reuse the cached token while more than 5 minutes remain, else log in."""
        if self.access_token and self.expires_at and self.expires_at - dt.datetime.now(dt.UTC) > TOKEN_MARGIN:
            return
        if self.token_cache and self.token_cache.exists():
            with contextlib.suppress(ValueError, KeyError, OSError):
                cached = json.loads(self.token_cache.read_text(encoding="utf-8"))
                expires = dt.datetime.fromisoformat(cached["expires_at"])
                if (
                    cached.get("email") == self.credentials.email
                    and cached.get("issuer") == self.urls["issuer"]
                    and expires - dt.datetime.now(dt.UTC) > TOKEN_MARGIN
                ):
                    self.access_token, self.expires_at, self.pumper_id = (
                        cached["access_token"],
                        expires,
                        cached["pumper_id"],
                    )
                    self.log.info(
                        "reusing the cached Tandem Source token (valid until %s)", expires.strftime("%H:%M UTC")
                    )
                    return
        self.login()

    # --- data --------------------------------------------------------------------------------
    def _data_get(self, path: str, what: str, params: dict | None = None) -> requests.Response:
        self.ensure_login()
        source = self.urls["source_url"]
        url = urljoin(source, path)
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.access_token}", "Origin": source.rstrip("/"), "Referer": source}
            response = self._request("GET", url, what, params=params, headers=headers)
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
            raise TandemError(f"{what}: HTTP {response.status_code} from Tandem Source after retries")
        return response

    def pumper(self) -> dict:
        """The account and its pumps (``GET api/reports/bff/pumper/{pumperId}``)."""
        self.ensure_login()
        response = self._data_get(f"api/reports/bff/pumper/{self.pumper_id}", "pump list")
        try:
            return response.json()
        except ValueError:
            raise TandemError("pump list: the answer is not JSON; the API may have changed") from None

    def pump_logs(
        self, assignment_id: str, first: dt.date, last: dt.date, event_codes: tuple[int, ...], what: str
    ) -> bytes:
        """The raw body of ``GET api/reports/bff/pump-logs/{assignmentId}`` for days first..last.

        Raises WindowRejected on HTTP 400 (the caller may split the window), TandemError otherwise.
        """
        params = {
            "pumperId": self.pumper_id,
            "startDate": f"{first.isoformat()}T00:00:00Z",
            "endDate": f"{last.isoformat()}T23:59:59Z",
            "eventCodes": ",".join(map(str, event_codes)),
        }
        return self._data_get(f"api/reports/bff/pump-logs/{assignment_id}", what, params).content


def _reason(exc: Exception) -> str:
    """A short, secret-free description of a transport error (no URLs with query strings)."""
    text = type(exc).__name__
    inner = getattr(exc, "args", [None])[0]
    reason = getattr(inner, "reason", None)
    if reason is not None:
        text = f"{text}: {type(reason).__name__}"
    return text


def _short(text: str) -> str:
    return " ".join(text.split())[:120]
