"""The one place where identifiers that reach a path, a URL or a file name are defined.

Every name that comes from outside (the Tandem Source answers, a saved token cache or manifest,
the config, the accounts sheet) is matched *in full* (``re.fullmatch``, so a trailing newline or
any other character after a valid name is refused) against one pattern here before it is used
to build a path, a URL or a file name.  Nothing else in the package writes these patterns.

Facts: pump serials are the printed serial numbers (digits on real pumps, e.g. ``90512345``; the
demo pump is ``DEMO-00000001``; saved files without one are ``UNKNOWN``); Tandem Source's
``assignmentId``, ``pumperId`` and ``accountId`` are UUID strings (tandem-source-api.md, "Login
flow" and "Current data endpoints").
"""

from __future__ import annotations

import datetime as dt
import re

#: A pump serial: a letter or digit, then letters, digits or '-' (at most 40 characters).
SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,39}")
#: Tandem Source ids (assignmentId, pumperId, accountId): a UUID, 8-4-4-4-12 hex digits.
UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
#: An accounts-sheet id: a letter or digit, then letters, digits, '-' or '_' (at most 64).
ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
#: A calendar date as written in config values, target names and window names.
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: A fetched window: a cell of the 28-day grid, ``{first}_{last}``.
GRID_WINDOW = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}_[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: A raw-store window name of any source: a grid cell, or a saved file's ``{stem}-{12 hex digits}``.
WINDOW = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
#: A normalised window table written by the normalize step: ``{window}.{16 hex digits}.parquet``.
WINDOW_TABLE = re.compile(r"(?P<window>[A-Za-z0-9][A-Za-z0-9_.-]{0,199})\.(?P<key>[0-9a-f]{16})\.parquet")
#: A Tandem Source URL (config ``tandem_api``, and every URL the client requests or is redirected
#: to): ``https://`` and printable ASCII without spaces.  A plain ``http://`` URL would send the
#: password and tokens in clear text.
HTTPS_URL = re.compile(r"https://[!-~]+")
#: The token cache (config ``fetch.token_cache``, a sheet account's ``<folder>/tokens/<id>.json``): a
#: relative path inside ``sensitive/`` ending in ``.json``.  Each part starts with a letter or digit
#: and holds letters, digits, '_', '-' and single dots between them, so no part is ``.`` or ``..``,
#: and no part is empty (no ``//``).
TOKEN_CACHE = re.compile(
    r"sensitive/(?:[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*/)*[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*\.json"
)


class BadIdentifier(ValueError):
    """An identifier that does not match its pattern; the message names what and the value."""


def checked(pattern: re.Pattern, value, what: str) -> str:
    """``value`` when it is a string matching ``pattern`` in full, else BadIdentifier.

    ``what`` names the value for the message ("pump serial from the pump list"); the value is
    shown with ``repr`` (at most 60 characters), so that control characters are visible.
    """
    if isinstance(value, str) and pattern.fullmatch(value):
        return value
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    raise BadIdentifier(f"{what} {shown} is not a valid identifier (expected {_described(pattern)})")


def matches(pattern: re.Pattern, value) -> bool:
    """Whether ``value`` is a string matching ``pattern`` in full."""
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def checked_date(value, what: str) -> dt.date:
    """A YYYY-MM-DD string (a real date) as a date, else BadIdentifier naming ``what``."""
    text = checked(DATE, value, what)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise BadIdentifier(f"{what} {text!r} is not a real date") from None


_DESCRIPTIONS = {
    SERIAL.pattern: "letters, digits and '-', at most 40",
    UUID.pattern: "a UUID such as 0f1e2d3c-4b5a-4697-8877-665544332211",
    ACCOUNT.pattern: "letters, digits, '-' and '_', at most 64",
    DATE.pattern: "YYYY-MM-DD",
    GRID_WINDOW.pattern: "YYYY-MM-DD_YYYY-MM-DD",
    WINDOW.pattern: "letters, digits, '_', '.' and '-'",
    HTTPS_URL.pattern: "an https:// URL",
    TOKEN_CACHE.pattern: "a relative path inside sensitive/ ending in .json, e.g. sensitive/token.json",
}


def _described(pattern: re.Pattern) -> str:
    return _DESCRIPTIONS.get(pattern.pattern, f"the pattern {pattern.pattern}")
