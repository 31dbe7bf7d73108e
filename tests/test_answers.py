"""The shape checks of pump-logs events: the fetch's (Python, answers.py) and the saved files' (SQL in
the normaliser) give the same verdict, and each case the trust issue found is refused.

An event is ``{"eventCode", "sequenceGroup", "sequenceNumber", "pumpDateTime", "eventProperties"}``
(tandem-source-api.md): integers in range (event codes are 12-bit, sequence numbers uint32),
a wall-clock date and time without offset, an object of properties.
"""

from __future__ import annotations

import json

import hypothesis.strategies as st
import pyarrow.parquet as pq
import pytest
from conftest import examples
from hypothesis import HealthCheck, given, settings
from tandem_export import answers
from tandem_export.normalize import normalize_file

pytestmark = pytest.mark.fast  # the fast tier of value tests (make test-fast)

GOOD = {
    "eventCode": 279,
    "sequenceGroup": 4,
    "sequenceNumber": 12,
    "pumpDateTime": "2025-06-01T10:00:00",
    "eventProperties": {"commandedRate": 800},
}

CASES = [
    ({}, None),
    ({"sequenceNumber": -1}, "sequenceNumber"),
    ({"sequenceNumber": 2**63}, "sequenceNumber"),
    ({"sequenceNumber": 2**32}, "sequenceNumber"),
    ({"sequenceNumber": 2**32 - 1}, None),
    ({"sequenceNumber": 12.0}, "sequenceNumber"),
    ({"sequenceNumber": "12"}, "sequenceNumber"),
    ({"sequenceGroup": "4"}, "sequenceGroup"),
    ({"sequenceGroup": -4}, "sequenceGroup"),
    ({"eventCode": 4096}, "eventCode"),
    ({"eventCode": "279"}, "eventCode"),
    ({"eventCode": True}, "eventCode"),
    ({"eventProperties": [1]}, "eventProperties"),
    ({"eventProperties": "x"}, "eventProperties"),
    ({"eventProperties": None}, "eventProperties"),
    ({"pumpDateTime": "2025-06-01"}, "pumpDateTime"),
    ({"pumpDateTime": "2025-06-01T10:00:00+02:00"}, "pumpDateTime"),
    ({"pumpDateTime": "2025-06-01T10:00:00Z"}, "pumpDateTime"),
    ({"pumpDateTime": "2025-02-30T10:00:00"}, "pumpDateTime"),
    ({"pumpDateTime": "2025-06-01T24:00:00"}, "pumpDateTime"),
    ({"pumpDateTime": "2025-06-01 10:00:00"}, None),
    ({"pumpDateTime": "2025-06-01T10:00:00.250"}, None),
    ({"pumpDateTime": "２０２５-06-01T10:00:00"}, "pumpDateTime"),
    ({"pumpDateTime": 20250601}, "pumpDateTime"),
]


@pytest.mark.parametrize(("change", "wrong"), CASES, ids=[json.dumps(c) for c, _ in CASES])
def test_fetch_check_names_what_is_wrong(change, wrong):
    problem = answers.event_problem({**GOOD, **change})
    assert (problem is None) == (wrong is None), problem
    if wrong is not None:
        assert wrong in problem


def saved_verdicts(tmp_path, events: list) -> dict[int, int]:
    """How many events a saved pump-logs file keeps, and why the others were left out (normaliser)."""
    path = tmp_path / "saved.json"
    path.write_text(json.dumps({"events": events, "clockChanges": []}))
    stats = normalize_file(path, "90512345", tmp_path / "out.parquet")
    kept = pq.read_table(tmp_path / "out.parquet").num_rows
    left_out = {answers.PROBLEMS.index(reason) + 1: n for reason, n in stats.left_out.items()}
    return {0: kept, **left_out}


def test_saved_files_leave_out_the_same_events(tmp_path):
    events = [{**GOOD, "sequenceNumber": GOOD["sequenceNumber"] + i, **c} for i, (c, _) in enumerate(CASES)]
    # Group optional in saved files: an event without one is kept.
    events.append({k: v for k, v in {**GOOD, "sequenceNumber": 99}.items() if k != "sequenceGroup"})
    want: dict[int, int] = {}
    for e in events:
        n = answers.problem_number(e, group_required=False)
        want[n] = want.get(n, 0) + 1
    assert saved_verdicts(tmp_path, events) == want
    assert want[0] == 5  # the good event, group absent, the upper sequence number and two time forms


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**65), max_value=2**65),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
TIMES = st.one_of(
    VALUES,
    st.builds("{:04d}-{:02d}-{:02d}{}{:02d}:{:02d}:{:02d}{}".format, st.integers(0, 3000), st.integers(0, 13),
              st.integers(0, 32), st.sampled_from(["T", " ", "t", "_"]), st.integers(0, 25), st.integers(0, 61),
              st.integers(0, 61), st.sampled_from(["", ".5", ".123456", ".1234567", "Z", "+01:00", "\n"])),
)  # fmt: skip


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "eventCode": st.one_of(VALUES, st.integers(-2, 4100)),
                "sequenceGroup": VALUES,
                "sequenceNumber": st.one_of(VALUES, st.integers(-1, 2**32 + 1)),
                "pumpDateTime": TIMES,
                "eventProperties": VALUES,
            },
        ),
        min_size=1,
        max_size=12,
    )
)
def test_the_two_checks_agree_on_arbitrary_events(tmp_path, events):
    events = [
        {**e, "sequenceNumber": e.get("sequenceNumber", i)} if "sequenceNumber" not in e else e
        for i, e in enumerate(events)
    ]
    want: dict[int, int] = {}
    for e in events:
        n = answers.problem_number(e, group_required=False)
        want[n] = want.get(n, 0) + 1
    try:
        got = saved_verdicts(tmp_path, events)
    except Exception as exc:  # noqa: BLE001 - a file none of whose events has identity is refused by name
        assert "saved.json" in str(exc) and not want.get(0), exc
        return
    # Kept events are de-duplicated by identity only later: the normaliser keeps every valid event.
    assert got == want


def test_a_saved_file_with_two_pump_assignments_is_refused(tmp_path):
    events = [{**GOOD, "sequenceNumber": i, "deviceAssignmentId": a} for i, a in enumerate("aab")]
    path = tmp_path / "twopumps.json"
    path.write_text(json.dumps({"events": events}))
    with pytest.raises(Exception, match=r"twopumps.json: holds the events of 2 pump assignments"):
        normalize_file(path, "90512345", tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_unknown_ids_are_counted_among_the_events_kept(tmp_path):
    # eventCode -399 and 399.5 are left out (not an integer 0-4095); 4000 is kept as UNKNOWN_4000.
    events = [{**GOOD, "sequenceNumber": i, "eventCode": c} for i, c in enumerate([-399, 399.5, 4000, 279])]
    path = tmp_path / "ids.json"
    path.write_text(json.dumps({"events": events}))
    stats = normalize_file(path, "90512345", tmp_path / "out.parquet")
    assert stats.unknown_ids == {4000: 1}
    assert stats.left_out == {answers.PROBLEMS[0]: 2}
