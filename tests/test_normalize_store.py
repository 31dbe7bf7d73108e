"""normalize's store-level checks, in-process: a saved file whose new content lost events, answers
that are no pump history, base64 forms, the decoder version and the index.  Inputs are hand-written
JSON and hand-packed bytes; expected values are read off them by hand."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import shutil
import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tandem_export import normalize
from tandem_export.errors import InputError

pytestmark = pytest.mark.fast

SERIAL = "90512345"


def basal(seq: int, wall: str, rate_mu: int, group: int | None = 3) -> dict:
    """A 279 (basal rate change) event of a pump-logs answer, rate in milliunits per hour."""
    event = {
        "eventCode": 279,
        "sequenceNumber": seq,
        "pumpDateTime": wall,
        "eventProperties": {"commandedRateSource": 1, "profileBasalRate": rate_mu, "commandedRate": rate_mu},
    }
    if group is not None:
        event["sequenceGroup"] = group
    return event


def saved(folder: Path, window: str, events: list[dict]) -> normalize.WindowSpec:
    """A saved file's raw copy ``{window}.json`` (a pump-logs answer) and its spec; its label is the
    user's file ``mine.json`` (as config names the copies of one saved file)."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = folder / f"{window}.json"
    raw.write_text(json.dumps({"events": events, "clockChanges": []}), encoding="utf-8")
    return normalize.WindowSpec(window, raw, SERIAL, "mine.json")


def store(specs, out: Path, caplog) -> list[str]:
    """normalize_store into ``out``; the warning lines it logged."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="t"):
        normalize.normalize_store(specs, out, out / "index.json", logging.getLogger("t"))
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


THREE = [
    basal(1, "2025-01-01T08:00:00", 800),
    basal(2, "2025-01-02T08:00:00", 900),
    basal(3, "2025-01-03T08:00:00", 1000),
]


def test_a_saved_file_whose_new_content_lost_events_is_named_with_the_earlier_copy(tmp_path, caplog):
    raw, out = tmp_path / "raw", tmp_path / "normalized" / "files"
    assert store([saved(raw, "mine-aaaaaaaaaaaa", THREE)], out, caplog) == []
    # The user's file changed: seq 1 and 3 are gone, seq 2 is still there, seq 4 is new.
    later = [THREE[1], basal(4, "2025-01-04T08:00:00", 700)]
    lines = store([saved(raw, "mine-bbbbbbbbbbbb", later)], out, caplog)
    assert lines == [
        "mine.json: its new content lacks 2 event(s) of the copy imported earlier (2025-01-01 to 2025-01-03), "
        "which are no longer in the tables; to keep them, list the earlier copy too: "
        f"{raw / 'mine-aaaaaaaaaaaa.json'}"
    ]
    # The earlier copy's table is gone once the index no longer lists it: the warning is given once.
    assert [p.name.split(".")[0] for p in out.glob("*.parquet")] == ["mine-bbbbbbbbbbbb"]
    assert store([saved(raw, "mine-bbbbbbbbbbbb", later)], out, caplog) == []


def test_an_event_is_lost_when_its_sequence_group_changed(tmp_path, caplog):
    # The identity of an event is (sequence_group, seq_num): seq 1 of group 3 is not seq 1 of group 4.
    raw, out = tmp_path / "raw", tmp_path / "normalized" / "files"
    store([saved(raw, "mine-aaaaaaaaaaaa", [basal(1, "2025-03-05T10:00:00", 800, group=3)])], out, caplog)
    lines = store([saved(raw, "mine-bbbbbbbbbbbb", [basal(1, "2025-03-05T10:00:00", 800, group=4)])], out, caplog)
    assert len(lines) == 1 and "lacks 1 event(s) of the copy imported earlier (2025-03-05 to 2025-03-05)" in lines[0]


def test_the_lost_events_dates_run_from_the_earliest_whatever_their_order(tmp_path, caplog):
    # seq 1 was logged before the pump clock was set back: its pump time is later than seq 2's.
    raw, out = tmp_path / "raw", tmp_path / "normalized" / "files"
    earlier = [basal(1, "2025-01-05T08:00:00", 800), basal(2, "2025-01-02T08:00:00", 900), THREE[2]]
    store([saved(raw, "mine-aaaaaaaaaaaa", earlier)], out, caplog)
    lines = store([saved(raw, "mine-bbbbbbbbbbbb", [THREE[2]])], out, caplog)
    assert len(lines) == 1 and "lacks 2 event(s) of the copy imported earlier (2025-01-02 to 2025-01-05)" in lines[0]


def test_no_warning_when_nothing_was_lost_or_the_earlier_copy_is_still_listed(tmp_path, caplog):
    raw, out = tmp_path / "raw", tmp_path / "normalized" / "files"
    first = saved(raw, "mine-aaaaaaaaaaaa", THREE[:2])
    store([first], out, caplog)
    # Still listed beside the new copy: nothing drops out.
    assert store([first, saved(raw, "mine-bbbbbbbbbbbb", THREE[2:])], out, caplog) == []
    # A new copy with every earlier event and one more: nothing lost.
    store([first], out, caplog)
    assert store([saved(raw, "mine-cccccccccccc", THREE)], out, caplog) == []


def test_the_same_content_decoded_by_another_decoder_version_is_not_a_loss(tmp_path, caplog):
    raw, out = tmp_path / "raw", tmp_path / "normalized" / "files"
    spec = saved(raw, "mine-aaaaaaaaaaaa", THREE)
    store([spec], out, caplog)
    (table,) = out.glob("*.parquet")
    # The table an earlier decoder wrote for the same window (another key), and one of the same stem
    # whose events are all still there: neither is a loss.
    shutil.copy(table, out / "mine-aaaaaaaaaaaa.0123456789abcdef.parquet")
    fewer = saved(raw, "mine-dddddddddddd", THREE[:1])
    store([fewer], out, caplog)
    for old in out.glob("mine-dddddddddddd.*.parquet"):
        shutil.copy(old, out / "mine-eeeeeeeeeeee.0123456789abcdef.parquet")
    lines = store([spec], out, caplog)
    assert lines == []


def test_a_loss_is_found_after_a_table_of_another_decoder_version(tmp_path, caplog):
    # Two stale tables of mine.json: first (in name order) one an earlier decoder wrote for the
    # window still listed, then the earlier copy whose events the new one lacks: the loss is named.
    raw, out = tmp_path / "raw", tmp_path / "normalized" / "files"
    store([saved(raw, "mine-ffffffffffff", THREE)], out, caplog)
    (table,) = out.glob("*.parquet")
    shutil.copy(table, out / "mine-000000000000.0123456789abcdef.parquet")
    lines = store([saved(raw, "mine-000000000000", THREE[1:2])], out, caplog)
    assert lines == [
        "mine.json: its new content lacks 2 event(s) of the copy imported earlier (2025-01-01 to 2025-01-03), "
        "which are no longer in the tables; to keep them, list the earlier copy too: "
        f"{raw / 'mine-ffffffffffff.json'}"
    ]


def test_stale_tables_of_other_names_are_not_compared(tmp_path, caplog):
    raw, out = tmp_path / "raw", tmp_path / "normalized" / "files"
    store([saved(raw, "other-aaaaaaaaaaaa", THREE)], out, caplog)
    # A grid window and a file of another stem: their stale tables say nothing about mine.json.
    grid = saved(raw, "2025-01-01_2025-01-28", THREE)
    store([grid], out, caplog)
    assert store([saved(raw, "mine-bbbbbbbbbbbb", THREE[:1])], out, caplog) == []
    # Files that are not window tables stay.
    (out / "notes.parquet").write_bytes(b"mine")
    store([saved(raw, "mine-bbbbbbbbbbbb", THREE[:1])], out, caplog)
    assert (out / "notes.parquet").read_bytes() == b"mine"


def test_each_lost_copy_gets_its_own_line(tmp_path, caplog):
    raw, out = tmp_path / "raw", tmp_path / "normalized" / "files"
    store([saved(raw, "mine-aaaaaaaaaaaa", THREE[:1]), saved(raw, "mine-bbbbbbbbbbbb", THREE[1:2])], out, caplog)
    lines = store([saved(raw, "mine-cccccccccccc", THREE[2:])], out, caplog)
    assert [line.split("too: ")[1] for line in lines] == [
        str(raw / "mine-aaaaaaaaaaaa.json"),
        str(raw / "mine-bbbbbbbbbbbb.json"),
    ]
    assert "(2025-01-01 to 2025-01-01)" in lines[0] and "(2025-01-02 to 2025-01-02)" in lines[1]


# --- answers that are no pump history -----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"message": "Unauthorized"}, "a saved error response ('Unauthorized'), not pump history"),
        ({"status": 500}, "JSON without an 'events' list, not pump history"),
        ({"events": None}, "JSON without an 'events' list, not pump history"),
    ],
)
def test_a_json_object_without_events_is_refused_by_name(tmp_path, body, message):
    path = tmp_path / "answer.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    with pytest.raises(InputError) as err:
        normalize.normalize_file(path, SERIAL, tmp_path / "out.parquet")
    assert str(err.value) == f"{path}: {message}; re-save the pump-logs response or remove the file"
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize("body", [{"events": []}, {"clockChanges": []}, {"events": [], "clockChanges": []}])
def test_an_empty_history_is_read_as_no_events(tmp_path, body):
    path = tmp_path / "answer.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    stats = normalize.normalize_file(path, SERIAL, tmp_path / "out.parquet")
    assert (stats.events, stats.dropped_without_identity, stats.form) == (0, 0, "pump-logs")


@pytest.mark.parametrize(
    ("body", "key", "kind"),
    [
        ({"events": {"a": 1}}, "events", "object"),
        ({"events": [], "clockChanges": "none"}, "clockChanges", "varchar"),
        ({"events": 5}, "events", "ubigint"),
    ],
)
def test_events_that_are_not_a_list_are_refused(tmp_path, body, key, kind):
    path = tmp_path / "answer.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    with pytest.raises(InputError) as err:
        normalize.normalize_file(path, SERIAL, tmp_path / "out.parquet")
    assert str(err.value).startswith(f"{path}: '{key}' is {kind} JSON, not a list;")


# --- base64 forms -------------------------------------------------------------------------------

# One 26-byte record, packed by hand: 279 (basal rate change) at 2025-01-01 08:00:00 pump time
# (6210 days = 17 years with 5 leap days, + 8 h = 536_572_800 s after 2008-01-01), seq 7, commanded 0.8 U/h (800 mU/h), source 1 (profile).
RECORD = struct.pack(">HII", 279, 536_572_800, 7) + struct.pack(">HHHHHH4x", 0, 1, 800, 800, 0, 0)


# The same record at 18:00:00 (536_572_800 + 36_000 s): its URL-safe base64 holds '_' and no '-'.
EVENING = struct.pack(">HII", 279, 536_608_800, 7) + RECORD[10:]


@pytest.mark.parametrize(
    ("text", "wall"),
    [
        (base64.b64encode(RECORD).decode(), "2025-01-01 08:00:00"),
        (base64.urlsafe_b64encode(RECORD).decode(), "2025-01-01 08:00:00"),  # '-' for '+'
        (base64.urlsafe_b64encode(EVENING).decode(), "2025-01-01 18:00:00"),  # '_' for '/'
        ("\n".join(base64.b64encode(RECORD).decode()[i : i + 8] for i in range(0, 36, 8)), "2025-01-01 08:00:00"),
    ],
)
def test_base64_text_decodes_to_its_records(tmp_path, text, wall):
    path = tmp_path / "events.b64"
    path.write_text(text, encoding="utf-8")
    stats = normalize.normalize_file(path, SERIAL, tmp_path / "out.parquet")
    assert (stats.form, stats.events, stats.trailing_bytes) == ("base64", 1, 0)
    (row,) = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert (row["seq_num"], str(row["pump_time"]), row["commanded_rate_units_per_hour"]) == (7, wall, 0.8)


def test_the_url_safe_texts_hold_the_characters_they_stand_for():
    assert base64.b64encode(RECORD).decode().startswith("ARcf+")
    assert "-" in base64.urlsafe_b64encode(RECORD).decode() and "_" not in base64.urlsafe_b64encode(RECORD).decode()
    assert "_" in base64.urlsafe_b64encode(EVENING).decode() and "-" not in base64.urlsafe_b64encode(EVENING).decode()


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("QUJD=REVG", "invalid base64"),  # padding in the middle
        ("QUJDRA", "invalid base64"),  # 6 characters: not a multiple of 4
        ('"QUJD%%%"', "invalid base64"),  # legacy pumpevents body whose string is not base64
    ],
)
def test_invalid_base64_is_refused_by_name(tmp_path, text, detail):
    path = tmp_path / "events.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        normalize.normalize_file(path, SERIAL, tmp_path / "out.parquet")
    assert str(err.value).startswith(f"{path}: {detail}") and "re-save the response or remove the file" in str(
        err.value
    )


# --- the decoder version and the index ----------------------------------------------------------


def test_the_decoder_version_follows_each_decoder_source_and_no_other(tmp_path):
    package = Path(normalize.__file__).parent
    names = ("normalize.py", "decode.py", "layouts.py", "dictionaries.py", "tables.py")
    for name in names:
        shutil.copy(package / name, tmp_path / name)
    first = normalize.decoder_version(tmp_path / ".")
    assert first == normalize.decoder_version() and len(first) == 16 and int(first, 16) >= 0
    seen = {first}
    for name in names:
        changed = tmp_path / f"v-{name}"
        shutil.copytree(tmp_path, changed, ignore=shutil.ignore_patterns("v-*"))
        (changed / name).write_bytes((changed / name).read_bytes() + b"\n# changed\n")
        version = normalize.decoder_version(changed)
        if name == "tables.py":
            assert version == first  # not a decoder source: the windows are not decoded again
        else:
            assert version not in seen
            seen.add(version)


def test_the_index_lists_windows_in_the_order_given(tmp_path, caplog):
    raw, out = tmp_path / "raw", tmp_path / "normalized" / "store"
    specs = [
        saved(raw, "2025-02-01_2025-02-28", THREE[2:]),
        saved(raw, "2025-01-01_2025-01-28", THREE[:2]),
    ]
    store(specs, out, caplog)
    index = json.loads((out / "index.json").read_text(encoding="utf-8"))
    assert index["store"] == "store"
    assert [(w["window"], w["events"], w["form"], w["label"]) for w in index["windows"]] == [
        ("2025-02-01_2025-02-28", 1, "pump-logs", "mine.json"),
        ("2025-01-01_2025-01-28", 2, "pump-logs", "mine.json"),
    ]
    assert normalize.read_index(out / "index.json") == [w["parquet"] for w in index["windows"]]
    assert [Path(p).name.split(".")[0] for p in normalize.read_index(out / "index.json")] == [
        "2025-02-01_2025-02-28",
        "2025-01-01_2025-01-28",
    ]


def test_a_reused_table_gives_the_same_stats_and_warnings(tmp_path, caplog):
    raw, out = tmp_path / "raw", tmp_path / "normalized" / "store"
    events = [*THREE, {"eventCode": "279", "sequenceNumber": 9, "pumpDateTime": "2025-01-05T00:00:00"}]
    spec = saved(raw, "2025-01-01_2025-01-28", events)
    first = normalize.normalize_store([spec], out, out / "index.json", logging.getLogger("t"))
    again = normalize.normalize_store([spec], out, out / "index.json", logging.getLogger("t"))
    assert first == again
    assert (again[0].events, again[0].dropped_without_identity, again[0].total) == (3, 1, 4)
    assert again[0].left_out == {"an eventCode that is not an integer 0-4095": 1}


# --- what the log says --------------------------------------------------------------------------


def logged(specs, out: Path, caplog) -> list[tuple[str, str]]:
    """normalize_store into ``out``; (level, message) of every line it logged."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="t"):
        normalize.normalize_store(specs, out, out / "index.json", logging.getLogger("t"))
    return [(r.levelname, r.getMessage()) for r in caplog.records]


def test_the_log_names_each_window_its_events_and_the_values_read_as_null(tmp_path, caplog):
    # 20 and 16 U/h are above the pump's 15 U/h basal limit: read as NULL, counted, the events kept.
    # seq 2 has the earlier pump time: it is "the first".
    events = [
        basal(1, "2025-01-02T09:30:00", 20000),
        basal(2, "2025-01-01T07:15:00", 16000),
        basal(3, "2025-01-01T08:00:00", 900),
        {"eventCode": 279.5, "sequenceNumber": 4, "pumpDateTime": "2025-01-01T09:00:00", "eventProperties": {}},
    ]
    raw = tmp_path / "raw"
    spec = saved(raw, "2025-01-01_2025-01-28", events)
    nulls = [
        f"pump store-1: 2 basal_delivery value(s) of {column} outside 0 to 15 were read as NULL (the events are kept; "
        "the first at pump time 2025-01-01 07:15:00, seq_num 2)"
        for column in ("commanded_rate_units_per_hour", "profile_rate_units_per_hour")
    ]
    left_out = "mine.json: 1 event(s) were left out (1 with an eventCode that is not an integer 0-4095)"
    out = tmp_path / "normalized" / "store-1"
    for what in ("decoded", "unchanged, reused"):
        assert logged([spec], out, caplog) == [
            ("INFO", f"mine.json: pump-logs form, 3 events (raw copy {spec.raw}; {what})"),
            ("WARNING", left_out),
            ("WARNING", nulls[0]),
            ("WARNING", nulls[1]),
        ]
    files = logged([spec], tmp_path / "normalized" / "files", caplog)
    assert [m for _, m in files][2:] == [line.replace("pump store-1:", "saved files:") for line in nulls]


def test_a_raw_file_that_cannot_be_read_is_named(tmp_path):
    raw = tmp_path / "raw" / "2025-01-01_2025-01-28.json"
    raw.mkdir(parents=True)  # a folder where the file should be
    spec = normalize.WindowSpec("2025-01-01_2025-01-28", raw, SERIAL, "window 2025-01-01_2025-01-28")
    out = tmp_path / "normalized" / "store-1"
    with pytest.raises(InputError) as err:
        normalize.normalize_store([spec], out, out / "index.json", logging.getLogger("t"))
    assert str(err.value) == f"window 2025-01-01_2025-01-28: cannot read the raw-store file {raw} (Is a directory)"
    assert not (out / "index.json").exists()


def test_a_file_of_events_without_identity_is_refused_in_full(tmp_path):
    path = tmp_path / "answer.json"
    path.write_text(json.dumps({"events": [{"eventCode": 279}, {"sequenceNumber": 2}]}), encoding="utf-8")
    with pytest.raises(InputError) as err:
        normalize.normalize_file(path, SERIAL, tmp_path / "out.parquet")
    assert str(err.value) == (
        f"{path}: none of its 2 events has an event code, sequence number and pump time; it is not a pump-logs response"
    )


# --- Arrow columns as NumPy, and the order of rows --------------------------------------------


@pytest.mark.parametrize(
    ("column", "values", "valid"),
    [
        (pa.chunked_array([pa.array([1, None, 3]), pa.array([4])]), [1, 3, 4], [True, False, True, True]),
        (pa.array([5, None, 7, 8]).slice(1), [7, 8], [False, True, True]),  # an offset into the buffers
        (pa.chunked_array([pa.array([True, False, None])]), [1, 0], [True, True, False]),  # bool: as 0/1
        (pa.nulls(2), [], [False, False]),  # the null type: no values
        (pa.chunked_array([], pa.int64()), [], []),
    ],
)
def test_an_arrow_column_as_values_and_validity(column, values, valid):
    got, ok = normalize._numpy(column)
    assert ok.dtype == bool and ok.tolist() == valid
    assert got[ok].tolist() == values and len(got) == len(valid)


def test_duplicates_in_a_file_of_several_documents_keep_the_documents_order(tmp_path):
    # Two JSON documents in one file (as some tools append answers): seq 5 in both, with 0.5 U/h in
    # the first (its second event) and 0.7 U/h in the second (its first event). Rows of one identity
    # come in file order: the first document's first.
    first = {"events": [basal(4, "2025-01-01T08:00:00", 400), basal(5, "2025-01-01T08:05:00", 500)]}
    second = {"events": [basal(5, "2025-01-01T08:05:00", 700)]}
    path = tmp_path / "appended.json"
    path.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n", encoding="utf-8")
    stats = normalize.normalize_file(path, SERIAL, tmp_path / "out.parquet")
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert stats.events == 3
    assert [(r["seq_num"], r["commanded_rate_units_per_hour"]) for r in rows] == [(4, 0.4), (5, 0.5), (5, 0.7)]


# --- forms and batches --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "form"),
    [
        # 65536 bytes are sampled. A 4-byte character cut after its 3rd byte (at 65533) is still text
        # (text of no known form: refused) ...
        (b"A" * 65533 + "\N{GRINNING FACE}".encode(), None),
        # ... a byte that is no UTF-8 at 65532 (4 before the end of the sample) is not.
        (b"A" * 65532 + b"\xff" + b"A" * 10, "records"),
        (b"A" * 65536 + b"\xff", "base64"),  # after the sample: not looked at
    ],
)
def test_text_is_told_from_bytes_on_the_sample_of_its_start(tmp_path, content, form):
    path = tmp_path / "saved"
    path.write_bytes(content)
    if form is None:
        with pytest.raises(InputError, match="saved: not a known response form"):
            normalize.detect_form(path)
    else:
        assert normalize.detect_form(path) == form


def test_a_legacy_pumpevents_body_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "pumpevents.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(base64.b64encode(RECORD).decode()).encode())
    stats = normalize.normalize_file(path, SERIAL, tmp_path / "out.parquet")
    (row,) = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert (stats.form, row["seq_num"], row["commanded_rate_units_per_hour"]) == ("legacy-pumpevents-json", 7, 0.8)


def test_a_window_table_holds_its_stats_and_no_arrow_schema(tmp_path):
    out = tmp_path / "out.parquet"
    normalize.normalize_file(saved(tmp_path, "w", THREE).raw, SERIAL, out)
    assert set(pq.read_metadata(out).metadata) == {b"tandem_export.stats"}


def test_records_that_are_mostly_not_pump_history_are_refused_in_full(tmp_path):
    path = tmp_path / "saved.dat"
    path.write_bytes(struct.pack(">HII", 4000, 536_572_800, 1) + bytes(16) + RECORD + bytes(26))
    with pytest.raises(InputError) as err:
        normalize.normalize_file(path, SERIAL, tmp_path / "out.parquet")
    # Ids 4000 and 0 (the all-zero record) are record types this decoder does not know: 2 of 3 is more
    # than half.
    assert str(err.value) == (
        f"{path}: does not look like pump history records (2 of 3 have unknown record types or impossible "
        "times); check that this is the saved pumpevents data, uncompressed"
    )


def test_one_run_of_both_json_forms_and_several_documents(tmp_path, caplog):
    # One batch per form: the second is read while the first is decoded. A file of two documents
    # among several files is decoded on its own, its rows in file order.
    raw, out = tmp_path / "raw", tmp_path / "normalized" / "store"
    docs = raw / "2025-02-01_2025-02-28.json"
    specs = [saved(raw, "2025-01-01_2025-01-28", THREE[:1])]
    (raw / "2025-03-01_2025-03-28.json").write_text(json.dumps(THREE[1:]), encoding="utf-8")
    docs.write_text(
        json.dumps({"events": [basal(4, "2025-02-01T08:00:00", 400), basal(5, "2025-02-01T08:05:00", 500)]})
        + json.dumps({"events": [basal(5, "2025-02-01T08:05:00", 700)]}),
        encoding="utf-8",
    )
    specs += [
        normalize.WindowSpec("2025-02-01_2025-02-28", docs, SERIAL, "docs"),
        normalize.WindowSpec("2025-03-01_2025-03-28", raw / "2025-03-01_2025-03-28.json", SERIAL, "list"),
    ]
    stats = normalize.normalize_store(specs, out, out / "index.json", logging.getLogger("t"))
    assert [(s.form, s.events) for s in stats] == [("pump-logs", 1), ("pump-logs", 3), ("pump-logs-event-list", 2)]
    tables = [pq.read_table(p).to_pylist() for p in normalize.read_index(out / "index.json")]
    rates = [[(r["seq_num"], r["commanded_rate_units_per_hour"]) for r in t] for t in tables]
    assert rates == [[(1, 0.8)], [(4, 0.4), (5, 0.5), (5, 0.7)], [(2, 0.9), (3, 1.0)]]


def test_rows_out_of_order_keep_their_own_values(tmp_path):
    # File order seq 3, 1, 2: sorting is a rotation (not its own inverse), so each value must follow
    # its row through the permutation.
    events = [
        basal(3, "2025-01-03T08:00:00", 300),
        basal(1, "2025-01-01T08:00:00", 100),
        basal(2, "2025-01-02T08:00:00", 200),
    ]
    spec = saved(tmp_path, "w", events)
    normalize.normalize_file(spec.raw, SERIAL, tmp_path / "out.parquet")
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [(r["seq_num"], str(r["pump_time"]), r["commanded_rate_units_per_hour"]) for r in rows] == [
        (1, "2025-01-01 08:00:00", 0.1),
        (2, "2025-01-02 08:00:00", 0.2),
        (3, "2025-01-03 08:00:00", 0.3),
    ]


def test_the_file_with_two_pump_assignments_is_the_one_named(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "normalized" / "files"
    good = saved(raw, "a-aaaaaaaaaaaa", [{**THREE[0], "deviceAssignmentId": "p1"}])
    mixed = saved(
        raw, "b-bbbbbbbbbbbb", [{**THREE[1], "deviceAssignmentId": "p1"}, {**THREE[2], "deviceAssignmentId": "p2"}]
    )
    mixed = dataclasses.replace(mixed, label="b.json")
    with pytest.raises(InputError) as err:
        normalize.normalize_store([good, mixed], out, out / "index.json", logging.getLogger("t"))
    assert str(err.value).startswith("b.json: holds the events of 2 pump assignments (deviceAssignmentId)")
    assert str(mixed.raw) not in str(err.value)  # relabelled: the user's name, not the raw copy's
    with pytest.raises(InputError) as err:
        normalize.normalize_file(mixed.raw, SERIAL, tmp_path / "x.parquet")
    assert str(err.value).startswith(f"{mixed.raw}: holds the events of 2 pump assignments")


def test_two_windows_of_one_raw_file_both_get_its_events(tmp_path, caplog):
    # Files are read together by name: a file listed twice is kept out of a run that holds it.
    spec = saved(tmp_path / "raw", "2025-01-01_2025-01-28", THREE)
    twin = dataclasses.replace(spec, window="2025-01-29_2025-02-25", label="twin")
    out = tmp_path / "normalized" / "store"
    stats = normalize.normalize_store([spec, twin], out, out / "index.json", logging.getLogger("t"))
    assert [s.events for s in stats] == [3, 3]
    assert [pq.read_table(p).num_rows for p in normalize.read_index(out / "index.json")] == [3, 3]


def test_the_window_tables_do_not_depend_on_the_number_of_threads(tmp_path, caplog):
    # Three answers and one file of 26-byte records, with one, two and three threads: the same bytes.
    raw = tmp_path / "raw"
    specs = [saved(raw, f"mine-{c * 12}", [basal(i, f"2025-01-0{i}T08:00:00", 700 + 10 * i) for i in range(1, 4 + n)])
             for n, c in enumerate("abc")]  # fmt: skip
    records = raw / "2025-02-01_2025-02-28.bin"
    records.write_bytes(b"".join(struct.pack(">HII", 279, 536_000_000 + 300 * i, 50 + i) + bytes(16) for i in range(5)))
    specs.append(normalize.WindowSpec("2025-02-01_2025-02-28", records, SERIAL, "pump"))
    seen = []
    for threads in (1, 2, 3):
        out = tmp_path / f"t{threads}" / "files"
        normalize.normalize_store(specs, out, out / "index.json", logging.getLogger("t"), threads=threads)
        seen.append({p.name: p.read_bytes() for p in sorted(out.glob("*.parquet"))})
    assert len(seen[0]) == 4
    assert seen[0] == seen[1] == seen[2]
