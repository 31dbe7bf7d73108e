"""exports/tandem.duckdb updated in place: what a failed update, a tampered database, a file that is
not a database and a database open elsewhere do.

Two builds of a pump history's tables (test_cells' helpers): ``before`` without its last day,
``after`` with it.  A database made from ``before`` and then brought to ``after`` must hold what a
database made from ``after`` holds (compared table by table, rows in ``SELECT *`` order).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import duckdb
import pytest
from tandem_export import database
from tandem_export.config import TABLES
from test_cells import _build, _daily, _database_dump, _grid_cuts, _windows

pytestmark = pytest.mark.fast


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("database")
    h = _daily(60, "2025-04-02 08:00", "2025-04-02 12:00")
    raw = tmp / "raw"
    raw.mkdir()
    _build(_windows(raw, h, _grid_cuts(h, len(h.records) - 6)), tmp / "before")
    _build(_windows(raw, h, _grid_cuts(h)), tmp / "after")
    return tmp


def _tables(folder) -> dict[str, str]:
    return {name: str(folder / f"{name}.cells.json") for name in TABLES}


LOG = logging.getLogger("test-database")


@pytest.fixture
def export(caplog):
    """export(folder, out): bring the database ``out`` to the tables of ``folder``; its log lines."""
    caplog.set_level(logging.INFO, logger=LOG.name)

    def run(folder, out) -> list[str]:
        caplog.clear()
        database.export_database(_tables(folder), str(out), "demo", LOG)
        return [r.getMessage() for r in caplog.records if r.name == LOG.name]

    return run


def test_an_update_equals_the_database_made_from_nothing(builds, export, tmp_path):
    out = tmp_path / "tandem.duckdb"
    export(builds / "before", out)
    lines = export(builds / "after", out)
    assert lines[-1] == f"{len(TABLES)} tables updated in place -> {out}", lines
    assert "events: 1 of 3 cell(s) written again" in lines
    assert _database_dump(out) == _database_dump(builds / "after" / "tandem.duckdb")
    # ... and back (a day removed: its cell's rows deleted and the shorter cell inserted).
    export(builds / "before", out)
    assert _database_dump(out) == _database_dump(builds / "before" / "tandem.duckdb")
    # Nothing new: nothing is written, not even the bookkeeping (the file keeps its bytes).
    data = out.read_bytes()
    lines = export(builds / "before", out)
    assert lines == [f"{len(TABLES)} tables already up to date in {out}"], lines
    assert out.read_bytes() == data


def test_a_failed_update_leaves_the_previous_database(builds, export, tmp_path, monkeypatch):
    out = tmp_path / "tandem.duckdb"
    export(builds / "before", out)
    previous = _database_dump(out)

    def fail(*args, **kwargs):  # after every table's rows were deleted and inserted
        raise OSError("No space left on device")

    monkeypatch.setattr(database, "_write_bookkeeping", fail)
    with pytest.raises(OSError, match="No space left"):
        export(builds / "after", out)
    monkeypatch.undo()
    assert _database_dump(out) == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tandem.duckdb"]  # no WAL or temporary left
    export(builds / "after", out)  # the next run brings it up to date
    assert _database_dump(out) == _database_dump(builds / "after" / "tandem.duckdb")


TAMPERED = [
    (
        "UPDATE export_tables SET table_name = 'events\"; DROP TABLE cgm_readings; --' WHERE table_name = 'events'",
        "table list",
    ),
    ("UPDATE export_cells SET digest = 'xyz' WHERE position = 0", "cell list"),
    ("UPDATE export_cells SET cell_start = '2025-01-01' WHERE position = 0", "cell list"),
    ("UPDATE export_cells SET cell = cell + 1000000000 WHERE position = 0", "cell list"),
    ("UPDATE export_cells SET rows = rows + 1 WHERE table_name = 'events' AND position = 0", "do not add up"),
    ("DELETE FROM events WHERE rowid < 3", "does not hold the rows"),
    ("UPDATE export_info SET value = 'tandem' WHERE key = 'source'", "another format"),
    ("UPDATE export_info SET value = 'tandem_export.database/1' WHERE key = 'format'", "another format"),
    ("DROP TABLE export_cells", "no bookkeeping"),
    ("ALTER TABLE export_cells DROP COLUMN digest", "cannot be read"),
    ("UPDATE export_tables SET rows = -1 WHERE table_name = 'events'", "table list"),
]


@pytest.mark.parametrize(("change", "why"), TAMPERED)
def test_a_tampered_database_is_built_again_from_nothing(builds, export, tmp_path, change, why):
    out = tmp_path / "tandem.duckdb"
    export(builds / "before", out)
    con = duckdb.connect(str(out))
    con.execute(change)
    con.close()
    lines = export(builds / "after", out)
    assert any(why in line and "built again from nothing" in line for line in lines), lines
    assert _database_dump(out) == _database_dump(builds / "after" / "tandem.duckdb")


def test_a_file_that_is_not_a_database_is_replaced(builds, export, tmp_path):
    out = tmp_path / "tandem.duckdb"
    out.write_bytes(b"not a database\n" * 500)
    lines = export(builds / "after", out)
    assert any("not a DuckDB database" in line for line in lines), lines
    assert _database_dump(out) == _database_dump(builds / "after" / "tandem.duckdb")


def test_a_database_open_in_another_program_is_one_line_and_left_alone(builds, export, tmp_path):
    out = tmp_path / "tandem.duckdb"
    export(builds / "before", out)
    previous = _database_dump(out)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import duckdb, sys, time
                con = duckdb.connect({str(out)!r})
                print("open", flush=True)
                sys.stdin.read()
            """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(ValueError, match=r"is open in another program; close it there and run again$"):
            export(builds / "after", out)
    finally:
        holder.communicate("")
    assert _database_dump(out) == previous
