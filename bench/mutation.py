"""Mutation testing of the time model, the decoder and the table building: how many plausible bugs
the fast tier of value tests catches.

    python3 bench/mutation.py                      # every target; writes bench/MUTATION.md
    python3 bench/mutation.py times sql            # some targets (the report keeps the others' rows)
    python3 bench/mutation.py --jobs 2 normalize
    python3 bench/mutation.py --again times        # after new tests: rerun only the survivors
    python3 bench/mutation.py --sample 300 tables  # 300 mutants drawn at random: an estimate, faster

Python modules are mutated by mutmut (PyPI; ``pip install -r bench/requirements-mutation.txt``):
operators, constants, conditions, arguments, each mutant one plausible bug.  mutmut runs the tests
that cover the mutated function; it needs the package in a ``src/`` folder, so the run works on a
copy of the package and the tests in ``.mutation/`` (git-ignored), never on the project itself.

The SQL of the derived tables (``scripts/tandem_export/sql/*.sql``) is mutated by the small mutator
below: comparison operators, numeric constants, dropped ``AND`` terms, members of ``IN`` lists and
``USING`` keys, min/max and least/greatest swapped, ``IS [NOT] NULL`` flipped and window orders
reversed.  The fast tests are run once, recording which tests read which SQL file; each SQL mutant
then runs those tests, in a forked copy of a process that has imported everything once.

Every mutant that survives is listed in the report with its change; a survivor that is
*equivalent* (no input can tell it from the original) or harmless is described in
``bench/mutation_equivalent.yaml`` (target, function or SQL file, the changed line before and after,
and why), and counted apart.  The score is killed / (all - equivalent).  Not run in CI: the fast
tier is what CI runs (``make test-fast``); this is the measure of it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
REPORT = ROOT / "bench" / "MUTATION.md"
EQUIVALENT = ROOT / "bench" / "mutation_equivalent.yaml"
PY_TARGETS = {
    "times": "tandem_export/times.py",
    "decode": "tandem_export/decode.py",
    "normalize": "tandem_export/normalize.py",
    "tables": "tandem_export/tables.py",
}
TARGETS = (*PY_TARGETS, "sql")
#: Outcomes that count as killed: a test failed, the tests ran past the timeout (a mutant that
#: makes a loop endless is caught, as PIT and Stryker count it), or the test process died of a signal
#: (mutmut's "segfault": SIGSEGV or SIGKILL; the tests did not pass, as PIT counts a crashed run).
DETECTED = ("killed", "timeout", "segfault")


@dataclass
class Mutant:
    """One mutant: its target, where (function or SQL file), the change and its outcome."""

    target: str
    where: str
    before: str
    after: str
    status: str  # killed, survived, no tests, timeout, ...
    name: str = ""
    reason: str | None = None  # for an equivalent or harmless survivor (bench/mutation_equivalent.yaml)


@dataclass
class Result:
    target: str
    mutants: list[Mutant] = field(default_factory=list)
    seconds: float = 0.0
    code: str = "?"  # the commit of the mutated code (see _code_commit)
    tests: str = "?"  # the commit of the tests that ran
    drawn_from: int | None = None  # with --sample: how many mutants the sample was drawn from

    def counts(self) -> dict[str, int]:
        survived = [m for m in self.mutants if m.status not in DETECTED]
        equivalent = [m for m in survived if m.reason]
        killed = len(self.mutants) - len(survived)
        scored = len(self.mutants) - len(equivalent)
        out = {
            "mutants": len(self.mutants),
            "killed": killed,
            "survived": len(survived) - len(equivalent),
            "equivalent": len(equivalent),
            "score": round(100 * killed / scored, 1) if scored else 100.0,
        }
        if self.drawn_from is not None:
            out["drawn_from"] = self.drawn_from
            out["interval"] = [round(100 * x, 1) for x in wilson_interval(killed, scored)]
        return out


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion (Wilson, J. Am. Stat. Assoc. 22 (1927) 209):
    what the whole target's score is, given a random sample's ``successes`` of ``n``."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5
    return max(0.0, centre - half), min(1.0, centre + half)


# --- the copy the mutants live in ------------------------------------------------------------------


def fast_tests() -> list[str]:
    """The test files with tests of the fast tier (``pytest.mark.fast`` on the file or a test), relative
    to the project; ``-m fast`` runs only those tests."""
    out = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        if re.search(r"\bmark\.fast\b", path.read_text(encoding="utf-8")):  # the file or some of its tests
            out.append(f"tests/{path.name}")
    return out


def prepare(work: Path) -> None:
    """A fresh copy: ``src/tandem_export`` (the package), ``tests`` and a pyproject for pytest."""
    shutil.rmtree(work, ignore_errors=True)
    (work / "src").mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "scripts" / "tandem_export", work / "src" / "tandem_export", ignore=ignore)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore)
    (work / "code-commit.txt").write_text(_commit("scripts"), encoding="utf-8")
    (work / "tests-commit.txt").write_text(_commit("tests"), encoding="utf-8")


def _commit(*paths: str) -> str:
    """The project's commit, with "+changes" when ``paths`` (all of it by default) differ from it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=ROOT, capture_output=True, text=True)
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def _code_commit(work: Path, what: str = "code") -> str:
    """The commit the mutated copy in ``work`` was taken from (``--again`` keeps an older copy), or
    with ``what="tests"`` that of its tests (``--again`` refreshes them)."""
    path = work / f"{what}-commit.txt"
    return path.read_text(encoding="utf-8").strip() if path.exists() else "?"


def write_pyproject(work: Path, module: str | None, tests: list[str]) -> None:
    lines = [
        "[tool.pytest.ini_options]",
        'pythonpath = ["src"]',
        'testpaths = ["tests"]',
        'markers = ["fast: the fast tier of value tests (make test-fast)"]',
        "",
    ]
    if module:
        lines += [
            "[tool.mutmut]",
            'source_paths = ["src"]',
            f'only_mutate = ["src/{module}"]',
            f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
            'pytest_add_cli_args = ["-p", "no:cacheprovider", "-m", "fast"]',
            # mutmut's CPU limit is 2 x multiplier x (the tests' time + constant). Its test times leave
            # out the set-up of session fixtures (the reference histories: tens of seconds), so the
            # constant covers them: with 5 s, every mutant of a function that only fixture-heavy tests
            # cover ran out of time and was counted as killed without a test failing.
            "timeout_multiplier = 1.0",
            f"timeout_constant = {TIMEOUT_CONSTANT}",
        ]
    (work / "pyproject.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


#: Seconds added to each mutant's test time before mutmut's CPU limit (see write_pyproject). A run
#: records it (``limit.txt``); ``--again`` reruns time-outs only of runs with another (or no) record.
TIMEOUT_CONSTANT = 60.0


def _limit_changed(work: Path) -> bool:
    limit = work / "limit.txt"
    return not limit.exists() or limit.read_text(encoding="utf-8").strip() != str(TIMEOUT_CONSTANT)


# --- Python modules: mutmut ------------------------------------------------------------------------


def run_mutmut(target: str, jobs: int, again: bool = False, sample: int | None = None) -> Result:
    """mutmut on ``target``; with ``again``, the copy of the last run is kept (its tests refreshed)
    and only the mutants that were not killed (survivors; time-outs too when that run had another CPU
    limit, :data:`TIMEOUT_CONSTANT`), or not yet run, are run (of its sample, if it had one).

    With ``sample``, only that many mutants, drawn at random (seed :data:`SAMPLE_SEED`) from all of
    the target's, are run: the score of a uniform sample estimates the whole target's (the report
    gives its 95 % interval), at a fraction of the cost (random mutant selection: Zhang et al.,
    "Operator-based and random mutant selection: better together", ASE 2013)."""
    from mutmut.stats import status_by_exit_code  # the tool's own reading of its exit codes

    module = PY_TARGETS[target]
    work = WORK / target
    meta = work / "mutants" / "src" / f"{module}.meta"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "TANDEM_EXPORT_MUTATION": "1"}
    names: list[str] = []
    drawn = work / "sample.json"
    if again and meta.exists():
        codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        if drawn.exists():
            codes = {n: codes[n] for n in json.loads(drawn.read_text(encoding="utf-8"))}
        # Survivors, and time-outs too when they were reached under another CPU limit.
        rerun = ("killed", "segfault") if _limit_changed(work) else DETECTED
        names = [n for n, c in codes.items() if c is None or status_by_exit_code[c] not in rerun]
        # Survivors already described as equivalent are not run again (no test can kill them).
        entries = [e for e in load_equivalent() if e["target"] == target]
        names = [n for n in names if codes[n] is None or not _described(entries, n, *_mutmut_change(work, n))]
        write_pyproject(work, module, fast_tests())
        for tests in (work / "tests", work / "mutants" / "tests"):
            shutil.rmtree(tests, ignore_errors=True)
            shutil.copytree(ROOT / "tests", tests, ignore=shutil.ignore_patterns("__pycache__"))
        (work / "tests-commit.txt").write_text(_commit("tests"), encoding="utf-8")
    else:
        prepare(work)
        write_pyproject(work, module, fast_tests())
        if sample is not None:
            names = _draw(work, meta, env, sample)
            drawn.write_text(json.dumps(names), encoding="utf-8")
    began = time.monotonic()
    if not again or names:
        proc = subprocess.run(
            [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *names],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not meta.exists():
            tail = (proc.stdout + proc.stderr)[-3000:]
            raise SystemExit(f"mutmut failed for {target} (exit {proc.returncode}):\n{tail}")
        (work / "limit.txt").write_text(str(TIMEOUT_CONSTANT), encoding="utf-8")
    result = Result(
        target, seconds=time.monotonic() - began, code=_code_commit(work), tests=_code_commit(work, "tests")
    )
    codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    if drawn.exists():
        result.drawn_from = len(codes)
        codes = {n: codes[n] for n in json.loads(drawn.read_text(encoding="utf-8"))}
    for name, code in sorted(codes.items(), key=lambda kv: _natural(kv[0])):
        status = status_by_exit_code[code]
        where = _function_of(name)
        before = after = ""
        if status not in DETECTED:
            before, after = _mutmut_change(work, name)
        result.mutants.append(Mutant(target, where, before, after, status, name))
    return result


#: The seed of ``--sample``: the same code gives the same sample, so runs can be compared.
SAMPLE_SEED = 22


def _draw(work: Path, meta: Path, env: dict, count: int) -> list[str]:
    """``count`` mutant names drawn from all of the copy's: mutmut makes the mutants (and records
    which tests cover what) in a run that matches no mutant, which then stops."""
    subprocess.run(
        [sys.executable, "-m", "mutmut", "run", "tandem_export.no-such-mutant"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    if not meta.exists():
        raise SystemExit(f"mutmut made no mutants in {work}")
    every = sorted(json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"], key=_natural)
    return sorted(random.Random(SAMPLE_SEED).sample(every, min(count, len(every))), key=_natural)


def _natural(name: str) -> tuple:
    head, _, number = name.rpartition("__mutmut_")
    return head, int(number) if number.isdigit() else 0


def _function_of(name: str) -> str:
    """``tandem_export.times.x_pump_times__mutmut_54`` -> ``pump_times`` (methods: ``Class.method``)."""
    short = name.rsplit(".", 1)[-1].rpartition("__mutmut_")[0]
    short = short.removeprefix("x_").removeprefix("x")
    return ".".join(part for part in short.split("ǁ") if part)


def _mutmut_change(work: Path, name: str) -> tuple[str, str]:
    """The changed lines of a mutant (before, after), from ``mutmut show``."""
    proc = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=work, capture_output=True, text=True)
    minus = [
        line[1:].strip() for line in proc.stdout.splitlines() if line.startswith("-") and not line.startswith("---")
    ]
    plus = [
        line[1:].strip() for line in proc.stdout.splitlines() if line.startswith("+") and not line.startswith("+++")
    ]
    return " / ".join(minus), " / ".join(plus)


# --- SQL: a mutator of its own ---------------------------------------------------------------------

_COMPARISONS = {"<=": "<", ">=": ">", "<>": "=", "<": "<=", ">": ">=", "=": "<>"}
_SWAPS = {
    "min": "max",
    "max": "min",
    "arg_min": "arg_max",
    "arg_max": "arg_min",
    "least": "greatest",
    "greatest": "least",
}


def _code_spans(sql: str) -> list[tuple[int, int]]:
    """(start, end) of the parts of ``sql`` that are code: not comments, not string literals."""
    spans, i, start = [], 0, 0
    while i < len(sql):
        if sql.startswith("--", i):
            spans.append((start, i))
            i = sql.find("\n", i)
            i = len(sql) if i < 0 else i
            start = i
        elif sql[i] == "'":
            spans.append((start, i))
            j = i + 1
            while j < len(sql):
                if sql[j] == "'" and sql[j : j + 2] != "''":
                    break
                j += 2 if sql[j : j + 2] == "''" else 1
            i = j + 1
            start = i
        else:
            i += 1
    spans.append((start, len(sql)))
    return [(a, b) for a, b in spans if b > a]


def sql_mutants(sql: str) -> list[tuple[int, int, str, str]]:
    """Every mutant of ``sql``: (start, end, replacement, description), one change each."""
    out: list[tuple[int, int, str, str]] = []
    for a, b in _code_spans(sql):
        code = sql[a:b]
        for m in re.finditer(r"(?<![<>!:=])(<=|>=|<>|<|>|=)(?![>=])", code):
            out.append((a + m.start(), a + m.end(), _COMPARISONS[m[1]], f"{m[1]} -> {_COMPARISONS[m[1]]}"))
        for m in re.finditer(r"(?<![\w.])(\d+)(\.\d+)?(?![\w.])", code):
            value = m[0]
            new = str(float(value) + 1) if m[2] else str(int(value) + 1)
            out.append((a + m.start(), a + m.end(), new, f"{value} -> {new}"))
        for m in re.finditer(r"\b(min|max|arg_min|arg_max|least|greatest)(?=\s*\()", code, re.IGNORECASE):
            new = _SWAPS[m[1].lower()]
            out.append((a + m.start(), a + m.end(), new, f"{m[1]} -> {new}"))
        for m in re.finditer(r"\bIS\s+NOT\s+NULL\b|\bIS\s+NULL\b", code, re.IGNORECASE):
            new = "IS NULL" if "NOT" in m[0].upper() else "IS NOT NULL"
            out.append((a + m.start(), a + m.end(), new, f"{m[0]} -> {new}"))
        for m in re.finditer(r"\s+AND\s+.*?(?=\s+AND\s|\s+OR\s|\s+THEN\b|\)|\n|$)", code, re.IGNORECASE):
            out.append((a + m.start(), a + m.end(), "", f"drop '{m[0].strip()}'"))
        for m in re.finditer(r"\b(IN|USING)\s*\(([^()]*)\)", code, re.IGNORECASE):
            items = [x.strip() for x in m[2].split(",")]
            if len(items) < 2:
                continue
            inner = a + m.start(2)
            for k in range(len(items)):
                rest = ", ".join(items[:k] + items[k + 1 :])
                out.append((inner, inner + len(m[2]), rest, f"{m[1]} ({m[2]}) without {items[k]}"))
        for m in re.finditer(r"OVER\s*\((?:[^()]|\([^()]*\))*?ORDER BY\s+([\w.]+)", code, re.IGNORECASE):
            at = a + m.end(1)
            out.append((at, at, " DESC", f"window ORDER BY {m[1]} -> {m[1]} DESC"))
    return out


def _line_of(sql: str, start: int) -> str:
    a = sql.rfind("\n", 0, start) + 1
    b = sql.find("\n", start)
    return sql[a : b if b >= 0 else len(sql)].strip()


def run_sql(jobs: int) -> Result:
    """Every SQL mutant against the fast tests that read its file."""
    work = WORK / "sql"
    prepare(work)
    write_pyproject(work, None, [])
    began = time.monotonic()
    readers = _sql_readers(work)
    os.environ["TANDEM_EXPORT_MUTATION"] = "1"
    _warm(work)
    sql_dir = work / "src" / "tandem_export" / "sql"
    result = Result("sql", code=_code_commit(work), tests=_code_commit(work, "tests"))
    for path in sorted(sql_dir.glob("*.sql")):
        original = path.read_text(encoding="utf-8")
        tests = sorted(readers.get(path.stem, []))
        for start, end, new, what in sql_mutants(original):
            mutated = original[:start] + new + original[end:]
            before = _line_of(original, start)
            after = _line_of(mutated, start)
            if not tests:
                status = "no tests"
            else:
                path.write_text(mutated, encoding="utf-8")
                try:
                    status = _run_tests(work, tests)
                finally:
                    path.write_text(original, encoding="utf-8")
            result.mutants.append(Mutant("sql", path.name, before, after, status, what))
    result.seconds = time.monotonic() - began
    return result


_RECORDER = """
import json, os
import pytest
from tandem_export import tables

seen = {}
_real = tables.table_sql

def table_sql(name):
    seen.setdefault(name, set()).add(os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0])
    return _real(name)

tables.table_sql = table_sql

def pytest_sessionfinish(session):
    with open("sql-readers.json", "w") as fh:
        json.dump({k: sorted(v) for k, v in seen.items()}, fh)
"""


def _sql_readers(work: Path) -> dict[str, list[str]]:
    """Which fast tests read which table's SQL (one run of the fast tier with table_sql recorded)."""
    (work / "tests" / "mutation_recorder.py").write_text(_RECORDER, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "mutation_recorder", "-m", "fast",
         *fast_tests()],
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(work / "tests")},
        capture_output=True,
        text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"the fast tests fail before any mutation:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return json.loads((work / "sql-readers.json").read_text(encoding="utf-8"))


def _run_tests(work: Path, tests: list[str], timeout: float = 600) -> str:
    """Run ``tests`` (stop at the first failure) in a fork of this process, which has imported pytest,
    the package copy and its libraries once: a mutant costs its tests, not a Python start-up."""
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.chdir(work)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            import pytest

            code = pytest.main(["-x", "-q", "-p", "no:cacheprovider", *tests])
        except BaseException:  # noqa: BLE001 - any failure of the child is a failed run
            code = 3
        os._exit(int(code))
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return "timeout"
        time.sleep(0.05)
    code = os.waitstatus_to_exitcode(status)
    return {0: "survived", 1: "killed"}.get(code, "killed" if code in (2, 3) else "suspicious")


def _warm(work: Path) -> None:
    """Import what the tests import, from the copy, before forking (threads are started by none)."""
    sys.path[:0] = [str(work / "src"), str(work / "tests")]
    import duckdb  # noqa: F401
    import numpy  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import pytest  # noqa: F401
    import tandem_export.normalize  # noqa: F401
    import tandem_export.tables  # noqa: F401


# --- equivalent mutants and the report -------------------------------------------------------------


def load_equivalent() -> list[dict]:
    import yaml

    if not EQUIVALENT.exists():
        return []
    return yaml.safe_load(EQUIVALENT.read_text(encoding="utf-8")) or []


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def _described(entries: list[dict], name: str, before: str, after: str) -> bool:
    where = _function_of(name)
    return any(e["where"] == where and _same(e["before"], before) and _same(e["after"], after) for e in entries)


def mark_equivalent(result: Result, entries: list[dict]) -> None:
    for m in result.mutants:
        if m.status in DETECTED:
            continue
        for e in entries:
            if e["target"] == m.target and e["where"] == m.where and _same(e["before"], m.before):
                if _same(e["after"], m.after):
                    m.reason = e["reason"]
                    break


def write_report(results: dict[str, Result]) -> None:
    old = _read_rows()
    today = time.strftime("%Y-%m-%d")
    rows = {
        **old,
        **{
            t: r.counts() | {"seconds": round(r.seconds), "code": r.code, "tests": r.tests, "date": today}
            for t, r in results.items()
        },
    }
    lines = [
        "# Mutation score of the fast tier",
        "",
        "Written by `python3 bench/mutation.py` (see its docstring; not run in CI). Each mutant is one",
        "plausible bug; killed = a fast-tier test fails with it. Equivalent or harmless survivors are",
        "described in `bench/mutation_equivalent.yaml` and not scored: score = killed / (mutants - equivalent).",
        "",
        "Code at: the commit the mutants were made from; tests at: the commit of the tests that ran",
        "(`--again` keeps the mutants of an earlier run and runs the survivors against newer tests).",
        "",
        "| target | mutants | killed | survived | equivalent | score % | seconds | code at | tests at | date |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for target in TARGETS:
        if target in rows:
            c = rows[target]
            mutants, score = str(c["mutants"]), str(c["score"])
            if "drawn_from" in c:  # a random sample (--sample)
                mutants += f" of {c['drawn_from']} (sample)"
                score += f" (95 %: {c['interval'][0]}-{c['interval'][1]})"
            lines.append(
                f"| {target} | {mutants} | {c['killed']} | {c['survived']} | {c['equivalent']} | "
                f"{score} | {c['seconds']} | {c.get('code', '?')} | {c.get('tests', '?')} | {c.get('date', '?')} |"
            )
    lines += ["", "<!-- rows: " + json.dumps(rows, sort_keys=True) + " -->", ""]
    kept = _read_sections()  # the survivors of the targets not run this time stay as they were
    lines += kept.get("notes", [])  # hand-written, kept as it is
    for target in TARGETS:
        if target not in results:
            lines += kept.get(target, [])
            continue
        r = results[target]
        lines += [f"## {target}: survivors", ""]
        survivors = [m for m in r.mutants if m.status not in DETECTED]
        if not survivors:
            lines += ["None.", ""]
        for m in survivors:
            why = f" — equivalent: {m.reason}" if m.reason else ""
            lines.append(
                f"* `{m.where}` ({m.status}{', ' + m.name if m.name else ''}): `{m.before}` → `{m.after}`{why}"
            )
        lines.append("")
    REPORT.write_text("\n".join(lines), encoding="utf-8")


def _read_sections() -> dict[str, list[str]]:
    """target -> the lines of its "survivors" section in the report as it is (heading included), and
    "notes" -> the hand-written "## Notes" section."""
    if not REPORT.exists():
        return {}
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in REPORT.read_text(encoding="utf-8").splitlines():
        heading = re.fullmatch(r"## (\w+): survivors|## (Notes)", line)
        if heading:
            current = sections.setdefault(heading[1] or "notes", [])
        if current is not None:
            current.append(line)
    return sections


def _read_rows() -> dict:
    if not REPORT.exists():
        return {}
    found = re.search(r"<!-- rows: (.*) -->", REPORT.read_text(encoding="utf-8"))
    return json.loads(found[1]) if found else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help=f"some of {', '.join(TARGETS)} (default: every one)")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) - 1), help="parallel mutants")
    parser.add_argument(
        "--again",
        action="store_true",
        help="Python targets: keep the last run's mutants, refresh the tests, run only those not killed",
    )
    parser.add_argument(
        "--sample",
        type=int,
        metavar="N",
        help="Python targets: run N mutants drawn at random (a fixed seed) instead of every one",
    )
    args = parser.parse_args()
    targets = args.targets or list(TARGETS)
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; use {', '.join(TARGETS)}")
    entries = load_equivalent()
    results = {}
    for target in targets:
        print(f"{target}: mutating ...", flush=True)
        result = run_sql(args.jobs) if target == "sql" else run_mutmut(target, args.jobs, args.again, args.sample)
        mark_equivalent(result, entries)
        results[target] = result
        c = result.counts()
        print(
            f"{target}: {c['mutants']} mutants, {c['killed']} killed, {c['survived']} survived, "
            f"{c['equivalent']} equivalent: {c['score']} % ({result.seconds:.0f} s)",
            flush=True,
        )
    write_report(results)
    print(f"-> {REPORT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
