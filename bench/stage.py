"""One benchmark stage in its own process: prints JSON with seconds, events and peak RSS.

Run by bench/run_bench.py; each stage is a fresh process so that its peak RSS (the operating
system's accounting, ``ru_maxrss``) is its own.
"""

from __future__ import annotations

import json
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from tandem_export import config, export, normalize, tables  # noqa: E402

log = logging.getLogger("bench")
log.addHandler(logging.NullHandler())
log.propagate = False


def own_peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM): unlike ru_maxrss it is not inherited across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    stage, args = sys.argv[1], sys.argv[2:]
    events = 0
    t0 = time.perf_counter()
    if stage == "normalize":
        out_dir = Path(args[0])
        out_dir.mkdir(parents=True, exist_ok=True)
        # One store (one pump): every given raw file is one window, normalised in this one process.
        specs = [normalize.WindowSpec(Path(raw).stem, Path(raw), "12345678", raw) for raw in args[1:]]
        stats = normalize.normalize_store(specs, out_dir, out_dir / "index.json", log, threads=2)
        events = sum(s.events for s in stats)
    elif stage == "place":
        out_dir = Path(args[0])
        outputs = {k: str(out_dir / f"{k}.parquet") for k in ("decoded", "clock_changes")}
        tables.place_events(sorted(args[1:]), outputs, "America/Chicago", "recorded_changes", log)
    elif stage == "events":
        # events and raw_events from the placement table the stage "place" wrote, one writer (the
        # rule's default threads).
        out_dir = Path(args[0])
        outputs = {k: str(out_dir / f"{k}.parquet") for k in ("events", "raw_events")}
        tables.build_event_tables(sorted(args[1:]), str(out_dir / "decoded.parquet"), outputs, writers=1)
    elif stage == "table":
        # table NAME DECODED OUT: one derived table; table all DECODED OUT_DIR [WINDOW...]: every
        # derived table in one process (as the derived_tables rule runs them), from the windows
        # given or else those the placement table (DECODED) records.
        if args[0] == "all":
            windows = args[3:] or tables.placement_windows(args[1])
            outputs = {name: str(Path(args[2]) / f"{name}.parquet") for name in config.DERIVED_TABLES}
            tables.build_tables(windows, args[1], outputs, log, writers=1)  # the rule's default threads
        else:
            tables.build_table(args[0], args[1], args[2], log)
    elif stage == "export":
        export.export_table(args[0], args[1], None, None, "benchmark", log)
    elif stage == "snakemake":
        exe = Path(sys.executable).with_name("snakemake")
        proc = subprocess.run([str(exe) if exe.exists() else "snakemake", *args], capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(proc.stderr[-3000:])
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        nothing = "Nothing to be done" in proc.stdout + proc.stderr
        print(
            json.dumps(
                {
                    "seconds": time.perf_counter() - t0,
                    "events": 0,
                    "peak_rss_mb": children / 1024,
                    "nothing_to_be_done": nothing,
                }
            )
        )
        return
    else:
        sys.exit(f"unknown stage {stage}")
    seconds = time.perf_counter() - t0
    rss = own_peak_rss_mb()
    print(json.dumps({"seconds": seconds, "events": events, "peak_rss_mb": rss}))


if __name__ == "__main__":
    main()
