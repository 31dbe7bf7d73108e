"""Benchmark: time every stage of the pipeline on generated histories of growing size.

Usage (from the project root, in the project's environment)::

    python3 bench/run_bench.py                       # 10k, 100k and 1M events, 3 runs each
    python3 bench/run_bench.py --sizes 10000,5000000 --repeats 1 --out bench/RESULTS.md

For each size it generates a history with the demo generator (seeded; both record forms: pump-logs
JSON windows of 28 days and the same events as 26-byte records, the latter only where the history
starts after 2008, which records cannot precede), then times, each in a fresh process
(bench/stage.py): normalising the store (each form; then again with every window cached), placing
the events in time, writing events and raw_events, all derived tables (one process, as the
workflow runs them), the exports of the largest tables (Parquet and CSV), the whole
``snakemake -c2 all`` from nothing, a rerun after appending one new day, a rerun with nothing
new, and a rerun after a change of zone that moves every instant (every cell built again).  It prints a Markdown table (median of the runs): events, seconds per stage,
events per second, output sizes and peak RSS per process; ``--out`` also writes it with a
description of the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from tandem_export import config, demo, encode  # noqa: E402

RECORDS_FROM = dt.date(2008, 1, 2)
EVENTS_PER_DAY = 606  # what the demo pump logs per day (5-minute CGM and basal, boluses, ...)
WORKFLOW_PARTS = ("Snakefile", "config.yaml", "rules", "scripts", "schemas", "envs", "profiles")


#: The stage row of a rerun that finds nothing to do: no events are processed, so no rate is shown.
NOTHING_NEW = "rerun with nothing new (Nothing to be done)"


def generate(events: int, where: Path) -> tuple[list[Path], list[Path], Path, Path]:
    """History of about ``events`` events: JSON windows, binary windows, and one extra day (both)."""
    days = max(2, round(events / EVENTS_PER_DAY))
    end = dt.date(2025, 6, 30)
    history = demo.demo_events(7, end, days + 1)
    last_day = history[-1].pump_time.date()
    body, extra = (
        [e for e in history if e.pump_time.date() < last_day],
        [e for e in history if e.pump_time.date() == last_day],
    )
    body = body[:events]
    json_dir, bin_dir = where / "json", where / "bin"
    json_dir.mkdir(parents=True)
    bin_dir.mkdir(parents=True)
    spans = demo.windows(body[-1].pump_time.date(), (body[-1].pump_time.date() - body[0].pump_time.date()).days + 1)
    json_files, bin_files = [], []
    for first, last in spans:
        chunk = [e for e in body if first <= e.pump_time.date() <= last]
        name = f"{first}_{last}"
        p = json_dir / f"{name}.json"
        p.write_text(
            json.dumps(
                {"events": [encode.to_pumplogs(e, "a", 1) for e in chunk], "clockChanges": []}, separators=(",", ":")
            )
        )
        json_files.append(p)
        if first >= RECORDS_FROM:  # 26-byte records count time from 2008-01-01
            b = bin_dir / f"{name}.bin"
            b.write_bytes(b"".join(encode.to_record(e) for e in chunk))
            bin_files.append(b)
    extra_json = where / "extra-day.json"
    extra_json.write_text(json.dumps({"events": [encode.to_pumplogs(e, "a", 1) for e in extra], "clockChanges": []}))
    return json_files, bin_files, extra_json, where


def stage(*args: str) -> dict:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "stage.py"), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"stage {args[0]} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "nothing_to_be_done"}


def workflow_copy(dest: Path, files: list[Path]) -> Path:
    dest.mkdir(parents=True)
    for part in WORKFLOW_PARTS:
        src = ROOT / part
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / part)
    (dest / "bench.yaml").write_text(
        json.dumps(
            {
                "source": "file",
                "files": [str(f) for f in files],
                "file_pump_serial": "12345678",
                "timezone": "America/Chicago",
            }
        )
    )
    return dest


def bench_size(n: int, repeats: int, tmp: Path) -> list[tuple[str, dict, str]]:
    json_files, bin_files, extra, where = generate(n, tmp / f"gen-{n}")
    rows: list[tuple[str, dict, str]] = []
    size = lambda paths: sum(p.stat().st_size for p in paths)  # noqa: E731
    for form, files in (("json", json_files), ("binary", bin_files)):
        if len(files) < len(json_files):
            continue  # the history starts before 2008, which 26-byte records cannot hold
        runs = [stage("normalize", str(tmp / f"norm-{form}-{n}-{i}"), *map(str, files)) for i in range(repeats)]
        windows = f"{len(files)} window{'s' * (len(files) != 1)}"
        rows.append((f"normalize ({form}, {windows})", median(runs), f"{size(files) / 1e6:.1f} MB in"))
        again = [stage("normalize", str(tmp / f"norm-{form}-{n}-0"), *map(str, files)) for _ in range(repeats)]
        rows.append((f"normalize again, all cached ({form})", median(again), ""))
    index = json.loads((tmp / f"norm-json-{n}-0" / "index.json").read_text())
    norm = [w["parquet"] for w in index["windows"]]
    out = tmp / f"tables-{n}"
    out.mkdir()
    runs = [stage("place", str(out), *norm) for _ in range(repeats)]
    rows.append(("place events (dedup, times)", median(runs), ""))
    runs = [stage("events", str(out), *norm) for _ in range(repeats)]
    rows.append(
        (
            "events and raw_events (one writer)",
            median(runs),
            f"{(out / 'events.parquet').stat().st_size / 1e6:.1f} MB events",
        )
    )
    runs = [stage("table", "all", str(out / "decoded.parquet"), str(out), *norm) for _ in range(repeats)]
    rows.append((f"all {len(config.DERIVED_TABLES)} derived tables (one process)", median(runs), ""))
    for table in ("events", "cgm_readings"):
        for fmt in ("parquet", "csv"):
            target = out / "exports" / f"{table}.{fmt}"
            runs = [stage("export", str(out / f"{table}.parquet"), str(target)) for _ in range(repeats)]
            rows.append((f"export {table}.{fmt}", median(runs), f"{target.stat().st_size / 1e6:.1f} MB"))
    full, rerun, nothing, moved = [], [], [], []  # (runs that do work also report nothing_to_be_done: dropped)
    for i in range(repeats):
        wf = workflow_copy(tmp / f"wf-{n}-{i}", json_files)
        full.append(stage("snakemake", "-c2", "all", "--directory", str(wf), "--configfile", str(wf / "bench.yaml")))
        (wf / "bench.yaml").write_text(
            json.dumps({**json.loads((wf / "bench.yaml").read_text()), "files": [*map(str, json_files), str(extra)]})
        )
        rerun.append(stage("snakemake", "-c2", "all", "--directory", str(wf), "--configfile", str(wf / "bench.yaml")))
        nothing.append(stage("snakemake", "-c2", "all", "--directory", str(wf), "--configfile", str(wf / "bench.yaml")))
        if not nothing[-1].pop("nothing_to_be_done"):
            raise SystemExit(f"the third run in {wf} did work: a rerun with nothing new must say Nothing to be done")
        # Another zone moves every instant (as a clock change found in the new day would): every
        # cell is built again, from windows already normalised.
        (wf / "bench.yaml").write_text(
            json.dumps({**json.loads((wf / "bench.yaml").read_text()), "timezone": "America/Denver"})
        )
        moved.append(stage("snakemake", "-c2", "all", "--directory", str(wf), "--configfile", str(wf / "bench.yaml")))
    exports = sum(p.stat().st_size for p in (tmp / f"wf-{n}-0" / "exports").iterdir())
    rows.append(("snakemake -c2 all, from nothing", {**median(full), "events": n}, f"{exports / 1e6:.1f} MB exports"))
    rows.append(("rerun after appending one day", {**median(rerun), "events": EVENTS_PER_DAY}, ""))
    rows.append((NOTHING_NEW, median(nothing), ""))
    rows.append(("rerun after every instant moved (another zone)", {**median(moved), "events": n}, ""))
    shutil.rmtree(where)
    return rows


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    mem = next(
        (int(line.split()[1]) // 1024 // 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0
    )
    import duckdb

    return (
        f"{os.cpu_count()} cores ({cpu}), {mem} GiB memory, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, DuckDB {duckdb.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated event counts")
    parser.add_argument("--repeats", type=int, default=3, help="runs per stage (the median is reported)")
    parser.add_argument("--out", help="also write the table to this Markdown file")
    args = parser.parse_args()
    lines = [
        "| events | stage | seconds | events/s | peak RSS MB | output |",
        "|---:|---|---:|---:|---:|---|",
    ]
    print("\n".join(lines), flush=True)  # each row as it is measured, then the whole table again
    with tempfile.TemporaryDirectory(prefix="tandem-bench-") as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            for name, r, note in bench_size(n, args.repeats, Path(tmp)):
                events = r.get("events") or n
                rate = f"{events / r['seconds']:,.0f}" if r["seconds"] > 0 and name != NOTHING_NEW else ""
                lines.append(f"| {n:,} | {name} | {r['seconds']:.2f} | {rate} | {r['peak_rss_mb']:.0f} | {note} |")
                print(lines[-1], flush=True)
    text = "\n".join(lines)
    print()
    print(text)
    if args.out:
        Path(args.out).write_text(f"# Benchmark results\n\nMachine: {machine()}\n\n{text}\n")


if __name__ == "__main__":
    main()
