"""Hostile saved files through the whole workflow (property-based, hypothesis).

Arbitrary pump-logs JSON (well-formed events of the record types the tables read, with values of any
size and type, and malformed elements among them) and arbitrary 26-byte records (the same types with
random payloads, and random bytes) are listed as saved files and run with ``snakemake`` in a fresh
copy of the project.  Whatever they hold:

* the run exits 0, or exits 1 with exactly one error line that names the saved file;
* no traceback reaches the console;
* nothing is written outside the project folder;
* no exported glucose lies outside 39..401 mg/dL, no basal rate outside 0..15 U/h (the pump's
  maximum: "the maximum allowable basal rate of 15 units/hr", Tandem support), no bolus delivers
  more than 25 U (the largest Max Bolus) and no pump day has more basal than 15 U/h for 25 hours.

Each example costs a workflow run (a few seconds), so the number of examples is small and the
examples are derandomised: the same inputs on every machine and every CI run.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import hypothesis.strategies as st
import pyarrow.parquet as pq
from conftest import copy_workflow, snakemake
from hypothesis import HealthCheck, given, settings
from tandem_export import cells

TARGETS = ["exports/cgm_readings.parquet", "exports/events.parquet"]
SETTINGS = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: Values at and around the edges that matter: the limits of the record types and of the valid ranges.
EDGES = [-(2**63), -(2**31), -1, 0, 1, 19, 20, 39, 40, 400, 401, 600, 601, 15_000, 15_001, 25_000, 25_001]
EDGES += [65_535, 65_536, 2**31, 2**32 - 1, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64]
NUMBERS = st.one_of(
    st.sampled_from(EDGES),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([-1.0, 0.0, 15.0, 15.000001, 25.0, 25.5, 1e38, 3.5e38, -1e300]),
)
ANY = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=8)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
#: eventProperties keys of the records the tables read (pump-logs API names: the layout table's
#: field names in lowerCamelCase, tandem-source-api.md), written out here.
KEYS = {
    399: ["currentGlucoseDisplayValue", "glucoseValueStatus", "egvTimeStamp", "rate", "cgmDataType"],
    256: ["currentGlucoseDisplayValue", "glucoseValueStatus", "egvTimeStamp", "rate"],
    372: ["currentGlucoseDisplayValue", "glucoseValueStatus", "egvTimeStamp", "rate"],
    279: ["commandedRate", "profileBasalRate", "tempRate", "algorithmRate", "commandedRateSource"],
    280: ["bolusId", "deliveredTotal", "requestedNow", "requestedLater", "bolusDeliveryStatus", "bolusType"],
    20: ["bolusId", "insulinDelivered", "insulinRequested", "completionStatus"],
    21: ["bolusId", "insulinDelivered", "insulinRequested"],
    64: ["bolusId", "bg", "carbAmount", "carbRatio", "iob"],
    66: ["bolusId", "totalBolusSize", "foodBolusSize", "correctionBolusSize"],
    13: ["timePrior", "timeAfter"],
    14: ["datePrior", "dateAfter"],
    11: ["insulinAmount", "suspendReason"],
    12: ["insulinAmount"],
    81: ["dailyTotalBasal", "batteryLipoMilliVolts", "batteryChargePercent"],
    33: ["insulinVolume", "v2Volume"],
}
TIMES = st.one_of(
    st.builds(
        "2025-06-{:02d}T{:02d}:{:02d}:00".format,
        st.integers(1, 28),
        st.integers(0, 23),
        st.integers(0, 59),
    ),
    st.sampled_from(["2025-06-01", "2025-06-01T10:00:00+02:00", "2025-06-01T10:00:00Z", "2025-13-01T00:00:00", ""]),
)


@st.composite
def events(draw) -> list:
    out = []
    for seq in range(draw(st.integers(1, 30))):
        code = draw(st.sampled_from(sorted(KEYS)))
        props = {k: draw(NUMBERS if draw(st.integers(0, 3)) else ANY) for k in KEYS[code] if draw(st.integers(0, 3))}
        event = {
            "eventCode": code,
            "sequenceGroup": 1,
            "sequenceNumber": 1000 + seq,
            "pumpDateTime": draw(TIMES),
            "eventProperties": props,
        }
        if draw(st.integers(0, 9)) == 0:  # now and then an event of the wrong shape
            key = draw(st.sampled_from(sorted(event)))
            event[key] = draw(ANY)
        out.append(event)
    if draw(st.integers(0, 9)) == 0:
        out.append(draw(ANY))
    return out


def document(events: list, draw_shape: int) -> str:
    if draw_shape == 0:
        return json.dumps({"events": events, "clockChanges": 7})
    if draw_shape == 1:
        return json.dumps(events)
    return json.dumps({"events": events, "clockChanges": []})


#: 26-byte records of the types the tables read, with arbitrary payloads (layout: big-endian header,
#: id u16, pump seconds since 2008 u32, sequence number u32, then 16 payload bytes).
RECORD_IDS = [399, 256, 372, 480, 279, 280, 20, 21, 64, 65, 66, 11, 12, 13, 14, 81, 33, 16]


@st.composite
def records(draw) -> bytes:
    out = []
    for seq in range(draw(st.integers(1, 40))):
        seconds = 551_000_000 + 300 * seq + draw(st.integers(0, 299))  # June 2025
        payload = draw(st.binary(min_size=16, max_size=16))
        out.append(struct.pack(">HII", draw(st.sampled_from(RECORD_IDS)), seconds, 5000 + seq) + payload)
    return b"".join(out) + draw(st.binary(max_size=30))


def run_saved(tmp_path: Path, content: bytes, name: str):
    """The workflow on one saved file; the checks every hostile input must pass."""
    project = tmp_path / "project"
    workdir = copy_workflow(project / "wf")
    saved = project / name
    saved.write_bytes(content)
    outside = {p for p in tmp_path.rglob("*")}
    proc = snakemake(
        workdir,
        "-c1",
        *TARGETS,
        "--config",
        "source=file",
        f"files=[{saved}]",
        "file_pump_serial=12345678",
        "timezone=UTC",
        check=False,
    )
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text and 'File "' not in proc.stderr, text[-3000:]
    new = {p for p in tmp_path.rglob("*")} - outside
    assert all(p.is_relative_to(workdir) for p in new), sorted(
        map(str, new - {p for p in new if p.is_relative_to(workdir)})
    )
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if "ERROR:" in line or "Configuration error:" in line]
        assert proc.returncode == 1 and len(errors) == 1 and name in errors[0], text[-3000:]
        return None
    return workdir


def check_values(workdir: Path) -> None:
    """The exported values within what the pump and the sensors can record."""
    tables = {
        t: [
            r
            for f in cells.files(workdir / "data" / "tables" / f"{t}.cells.json")
            for r in pq.read_table(f).to_pylist()
        ]
        for t in ("cgm_readings", "basal_deliveries", "bolus_deliveries", "daily_summary")
    }
    for r in tables["cgm_readings"]:
        assert r["glucose_mg_dl"] is None or 39 <= r["glucose_mg_dl"] <= 401, r
        assert r["glucose_status"] != "ok" or 40 <= r["glucose_mg_dl"] <= 400, r
    for r in tables["basal_deliveries"]:
        for c in ("commanded_rate_units_per_hour", "profile_rate_units_per_hour", "temp_rate_units_per_hour"):
            assert r[c] is None or 0 <= r[c] <= 15, r
    for r in tables["bolus_deliveries"]:
        assert r["delivered_units"] is None or 0 <= r["delivered_units"] <= 25, r
    for r in tables["daily_summary"]:
        assert 0 <= r["basal_units"] <= 15 * 25, r
        assert r["mean_glucose_mg_dl"] is None or 39 <= r["mean_glucose_mg_dl"] <= 401, r


@SETTINGS
@given(evs=events(), shape=st.integers(0, 5))
def test_arbitrary_pumplogs_json_through_the_workflow(tmp_path_factory, evs, shape):
    tmp_path = tmp_path_factory.mktemp("json")
    workdir = run_saved(tmp_path, document(evs, shape).encode(), "saved.json")
    if workdir is not None:
        check_values(workdir)


@SETTINGS
@given(content=records())
def test_arbitrary_records_through_the_workflow(tmp_path_factory, content):
    tmp_path = tmp_path_factory.mktemp("records")
    workdir = run_saved(tmp_path, content, "saved.bin")
    if workdir is not None:
        check_values(workdir)


@SETTINGS
@given(content=st.binary(max_size=26 * 8))
def test_arbitrary_bytes_through_the_workflow(tmp_path_factory, content):
    tmp_path = tmp_path_factory.mktemp("bytes")
    run_saved(tmp_path, content, "saved.bin")
