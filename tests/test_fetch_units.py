"""Fetch planning, window splitting, pump selection and credentials, without a server."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
from tandem_export import fetch, tandem
from tandem_export.errors import InputError


def test_grid_windows_are_28_day_cells_from_2008():
    # 2025-04-01 is day 6300 after 2008-01-01 = 225 cells * 28; so a cell starts there.
    assert (dt.date(2025, 4, 1) - dt.date(2008, 1, 1)).days == 225 * 28
    cells = fetch.grid_windows(dt.date(2025, 4, 10), dt.date(2025, 5, 15))
    assert [(w.first, w.last) for w in cells] == [
        (dt.date(2025, 4, 1), dt.date(2025, 4, 28)),
        (dt.date(2025, 4, 29), dt.date(2025, 5, 26)),
    ]
    assert cells[0].name == "2025-04-01_2025-04-28"
    assert fetch.grid_windows(dt.date(2025, 5, 2), dt.date(2025, 5, 1)) == []


class FakeClient:
    """pump_logs that rejects ranges longer than ``limit`` days with HTTP 400."""

    def __init__(self, limit: int, reject_day: dt.date | None = None):
        self.limit = limit
        self.reject_day = reject_day
        self.calls: list[tuple[dt.date, dt.date]] = []
        self.log = logging.getLogger("test")

    def pump_logs(self, assignment_id, first, last, codes, what, check=None):
        self.calls.append((first, last))
        if (last - first).days + 1 > self.limit or (self.reject_day and first <= self.reject_day <= last):
            raise tandem.WindowRejected(f"{what}: HTTP 400 (Check input parameters.)")
        days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
        events = [event(279, d.toordinal(), f"{d}T00:00:00") for d in days]
        body = json.dumps({"events": events, "clockChanges": [event(13, 1, f"{first}T00:00:00")]}).encode()
        if check is not None:
            check(body)
        return body


def event(code: int, seq: int, when: str) -> dict:
    return {"eventCode": code, "sequenceGroup": 1, "sequenceNumber": seq, "pumpDateTime": when, "eventProperties": {}}


def test_a_rejected_window_is_split_in_halves_and_merged():
    client = FakeClient(limit=7)
    first, last = dt.date(2025, 4, 1), dt.date(2025, 4, 28)
    body = json.loads(fetch.fetch_window(client, {"assignmentId": "a"}, first, last, "pump 1 window"))
    assert sorted(e["sequenceNumber"] for e in body["events"]) == [first.toordinal() + i for i in range(28)]
    assert len(body["clockChanges"]) == 1  # the same clock change from every half, once
    # 28 days rejected -> two 14-day halves rejected -> four 7-day quarters answered.
    assert client.calls[0] == (first, last)
    assert sorted((b - a).days + 1 for a, b in client.calls) == [7, 7, 7, 7, 14, 14, 28]


def test_a_single_rejected_day_gives_up_naming_the_window():
    client = FakeClient(limit=28, reject_day=dt.date(2025, 4, 9))
    with pytest.raises(tandem.WindowRejected, match="pump 1 window"):
        fetch.fetch_window(client, {"assignmentId": "a"}, dt.date(2025, 4, 1), dt.date(2025, 4, 28), "pump 1 window")
    assert (dt.date(2025, 4, 9), dt.date(2025, 4, 9)) in client.calls


def test_pump_selection():
    pumps = [{"serialNumber": "11111111"}, {"serialNumber": "22222222"}]
    assert fetch.select_pumps(pumps, "all") == pumps
    assert fetch.select_pumps(pumps, "22222222") == [pumps[1]]
    assert fetch.select_pumps(pumps, ["22222222", "11111111"]) == [pumps[1], pumps[0]]
    with pytest.raises(InputError, match="33333333 not on this account .*11111111, 22222222"):
        fetch.select_pumps(pumps, ["33333333"])


def test_a_serial_listed_twice_is_one_pump():
    pumps = [{"serialNumber": "11111111"}, {"serialNumber": "52999763"}]
    assert fetch.select_pumps(pumps, ["52999763", "52999763"]) == [pumps[1]]
    assert fetch.select_pumps(pumps, ["52999763", "11111111", "52999763", "11111111"]) == [pumps[1], pumps[0]]
    with pytest.raises(InputError, match="^pump_serial: 33333333 not on this account"):
        fetch.select_pumps(pumps, ["33333333", "33333333"])


def test_pump_days_from_the_pumper_answer():
    pump = {
        "availableDataRange": {"start": "2025-01-02T00:00:00", "end": "2025-03-01T10:00:00"},
        "maxDateOfEvents": "2025-03-04T08:00:00",
    }
    assert fetch.pump_days(pump) == (dt.date(2025, 1, 2), dt.date(2025, 3, 4))
    assert fetch.pump_days({"availableDataRange": None, "maxDateOfEvents": None}) == (None, None)


def test_credentials_environment_wins_and_password_is_hidden(tmp_path):
    (tmp_path / "sensitive").mkdir()
    path = tmp_path / "sensitive" / "credentials.toml"
    path.write_text('[tandem]\nemail = "file@example.com"\npassword = "from-file"\nregion = "EU"\n')
    path.chmod(0o600)
    creds = tandem.load_credentials(tmp_path, {})
    assert (creds.email, creds.password, creds.region) == ("file@example.com", "from-file", "EU")
    creds = tandem.load_credentials(tmp_path, {"TANDEM_PASSWORD": "from-env", "TANDEM_REGION": "us"})
    assert (creds.email, creds.password, creds.region) == ("file@example.com", "from-env", "US")
    assert "from-env" not in repr(creds) and "from-env" not in str(creds)
    assert tandem.load_credentials(tmp_path / "nowhere", {}) is None
    path.chmod(0o640)
    with pytest.raises(InputError, match="chmod 600"):
        tandem.load_credentials(tmp_path, {})
    path.chmod(0o600)
    with pytest.raises(InputError, match="region: 'XX'"):
        tandem.load_credentials(tmp_path, {"TANDEM_REGION": "XX"})


def test_api_urls_take_overrides():
    urls = tandem.api_urls("EU", {"source_url": "https://proxy.example/"})
    assert urls["source_url"] == "https://proxy.example/"
    assert urls["client_id"] == tandem.REGIONS["EU"]["client_id"]


def test_token_cache_is_created_0600(tmp_path):
    path = tmp_path / "sensitive" / "token.json"
    tandem.write_private_json(path, {"access_token": "t"})
    assert path.stat().st_mode & 0o777 == 0o600
