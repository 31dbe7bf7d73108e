"""CSV exports never hold a text cell that a spreadsheet would run as a formula (OWASP, CSV injection)."""

from __future__ import annotations

import csv
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from tandem_export import export, storage  # noqa: E402

LOG = logging.getLogger("test")

#: (text as stored, the cell the CSV must hold)
CELLS = [
    ("=1+1", "'=1+1"),
    ("+SUM(A1)", "'+SUM(A1)"),
    ("-2", "'-2"),
    ("@x", "'@x"),
    ("\tx", "'\tx"),
    ("\rx", "'\rx"),
    ("normal text", "normal text"),
    ("a=b, -c", "a=b, -c"),  # only the first character counts
    ("'quoted", "'quoted"),
    ("", ""),
]


def _table(path: Path) -> None:
    """A small table with a VARCHAR, a JSON, a list and a number column (DuckDB writes the JSON type)."""
    con = storage.connect()
    values = ", ".join(
        f"(TIMESTAMPTZ '2025-05-01 00:00:00+00' + INTERVAL ({i}) MINUTE, {storage.sql_str(text)}, {i})"
        for i, (text, _) in enumerate(CELLS)
    )
    con.sql(
        f"""COPY (
            SELECT ts AS timestamp, CAST(ts AS TIMESTAMP) AS pump_time, '90512345' AS pump_serial, i AS seq_num,
                   note, CAST(CASE i WHEN 0 THEN '-3' WHEN 1 THEN '{{"a": "=1"}}' ELSE to_json(note) END AS JSON)
                       AS data,
                   [note] AS notes, -i AS delta
            FROM (VALUES {values}) v(ts, note, i) ORDER BY i
        ) TO {storage.sql_str(str(path))} (FORMAT parquet)"""
    )
    con.close()


def test_text_starting_as_a_formula_gets_a_leading_quote(tmp_path):
    table = tmp_path / "notes.parquet"
    _table(table)
    out = tmp_path / "notes.csv"
    export.export_table(str(table), str(out), None, None, "test", LOG)
    with open(out, newline="", encoding="utf-8") as fh:
        records = list(csv.DictReader(fh))
    assert [r["note"] for r in records] == [want for _, want in CELLS]
    # JSON text: a bare number starting with '-' is quoted too; objects and strings start with { or "
    assert records[0]["data"] == "'-3"
    assert records[1]["data"] == '{"a": "=1"}'
    assert records[2]["data"] == '"-2"'
    # the JSON of a list starts with '[', numbers are not text: both as before
    assert records[0]["notes"] == '["=1+1"]'
    assert [r["delta"] for r in records[:3]] == ["0", "-1", "-2"]
    assert records[0]["seq_num"] == "0" and records[0]["timestamp"] == "2025-05-01T00:00:00Z"
    # the Parquet export keeps the text as stored
    out_parquet = tmp_path / "notes.parquet.out.parquet"
    export.export_table(str(table), str(out_parquet), None, None, "test", LOG)
    con = storage.connect()
    stored = [r[0] for r in con.sql(f"SELECT note FROM read_parquet({storage.sql_str(str(out_parquet))})").fetchall()]
    assert stored == [text for text, _ in CELLS]


def test_the_account_column_of_combined_exports_is_text_too(tmp_path):
    table = tmp_path / "notes.parquet"
    _table(table)
    out = tmp_path / "combined.csv"
    export.export_table({"alice": str(table)}, str(out), None, None, "test", LOG)
    with open(out, newline="", encoding="utf-8") as fh:
        records = list(csv.DictReader(fh))
    assert {r["account"] for r in records} == {"alice"}
    assert sorted(r["note"] for r in records) == sorted(want for _, want in CELLS)
