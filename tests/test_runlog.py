"""How rule scripts end (tandem_export.runlog.run): every failure is one line, with advice that fits it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from tandem_export import runlog


def run_body(tmp_path, body, rule="import_files"):
    """runlog.run of ``body``: (exit code, the rule log's text)."""
    with pytest.raises(SystemExit) as stop:
        runlog.run(SimpleNamespace(log=[str(tmp_path / "rule.log")]), rule, body)
    return stop.value.code, (tmp_path / "rule.log").read_text()


def too_long(tmp_path):
    (tmp_path / ("a" * 300 + ".raw")).write_bytes(b"")


def a_folder_in_the_way(tmp_path):
    (tmp_path / "x.raw").mkdir()
    (tmp_path / "x.raw").write_bytes(b"")


def a_file_in_the_way(tmp_path):
    (tmp_path / "x.raw").write_bytes(b"")
    (tmp_path / "x.raw" / "y.raw").write_bytes(b"")


@pytest.mark.parametrize(
    ("make", "words", "advice"),
    [
        (too_long, "File name too long", "the name is too long for the file system; shorten it"),
        (a_folder_in_the_way, "Is a directory", "a folder is where a file is expected; remove or rename that folder"),
        (a_file_in_the_way, "Not a directory", "a part of the path is a file where a folder is expected"),
    ],
    ids=["ENAMETOOLONG", "EISDIR", "ENOTDIR"],
)
def test_a_name_or_path_problem_is_not_called_a_disk_problem(tmp_path, capsys, make, words, advice):
    code, log = run_body(tmp_path, lambda log: make(tmp_path))
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"[import_files] ERROR: could not read or write {tmp_path}/")
    assert f": {words}; {advice}" in lines[0] and lines[0].endswith(", then run again")
    assert "free space" not in lines[0] and "permissions" not in lines[0]
    assert log.strip() == lines[0]


def test_a_full_disk_still_says_free_space(tmp_path, capsys):
    def body(log):
        raise OSError(28, "No space left on device", str(tmp_path / "t.csv"))

    code, _ = run_body(tmp_path, body)
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        f"[import_files] ERROR: could not read or write {tmp_path}/t.csv: No space left on device; free space or fix "
        "permissions, then run again"
    )


@pytest.mark.parametrize(
    ("script_line", "expected"),
    [
        ({}, "interrupted; run again to resume"),
        (
            {"interrupted": "interrupted; run again to resume: windows saved so far are kept"},  # fetch_tandem.py's
            "interrupted; run again to resume: windows saved so far are kept",
        ),
    ],
    ids=["any rule", "fetch"],
)
def test_ctrl_c_is_one_line_and_exit_130_without_a_traceback(tmp_path, capsys, script_line, expected):
    def body(log):
        log.info("fetching")
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as stop:
        runlog.run(SimpleNamespace(log=[str(tmp_path / "rule.log")]), "fetch", body, **script_line)
    assert stop.value.code == 130
    err = capsys.readouterr().err
    assert err.splitlines() == ["[fetch] INFO: fetching", f"[fetch] ERROR: {expected}"]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert (tmp_path / "rule.log").read_text().splitlines()[-1] == f"[fetch] ERROR: {expected}"
