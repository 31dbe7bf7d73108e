# Shared helpers: configuration checks, the accounts, the raw-store plan, wildcard constraints,
# target lists. Every path of an account's own files carries the prefix {acct}: empty for the
# single-account setup (data/tables/..., exports/...), "<id>/" for an accounts-sheet row
# (data/<id>/tables/..., exports/<id>/...).
import atexit
import gc
import re
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from tandem_export import config as cfg  # noqa: E402
from tandem_export import ids  # noqa: E402

RUN_STARTED = time.time()
# Python's last garbage collection at exit walks every object Snakemake and its ~1500 modules made:
# 0.3-0.5 s after the last line of every run. Nothing needs collecting then; freezing skips it.
atexit.register(gc.freeze)


def params_without_pandas():
    """Let Snakemake record rule parameters without importing pandas when nothing imported it.

    Snakemake (9.x) serialises every job's params with a function that first imports pandas, to
    hash a DataFrame param if there is one: 0.25-0.4 s of every invocation, a third of a rerun with
    nothing to do. No value can be a pandas object unless pandas is imported, so until then the
    builtin serialiser gives exactly the same text; once it is (an accounts sheet), Snakemake's own
    serialiser is used. Left as Snakemake made it if its internals differ from what this expects.
    """
    try:
        from snakemake.persistence import PersistenceBase as base
    except ImportError:
        return
    if not all(
        hasattr(base, name)
        for name in (
            "_serialize_param",
            "_serialize_param_builtin",
            "_serialize_param_pandas",
        )
    ):
        return

    def serialize_param(self):
        if "pandas" in sys.modules:
            return self._serialize_param_pandas
        return self._serialize_param_builtin

    base._serialize_param = property(serialize_param)


params_without_pandas()
# The schema first, then the checks written in config.py; one line and exit 1 on any problem.
# SETTINGS: what every account shares; ACCOUNTS: {prefix: Settings} of each account.
SETTINGS, ACCOUNTS = cfg.load_or_exit(config, workflow.basedir)
SHEET = any(ACCOUNTS)  # True with an accounts sheet
TABLES = cfg.TABLES
FORMATS = cfg.FORMATS
RAW = (
    SETTINGS.raw_files
)  # {(store, window): RawFile}; demo and file sources (single account)


wildcard_constraints:
    acct="(?:" + "|".join(re.escape(p) for p in ACCOUNTS) + ")",
    window=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    table="|".join(TABLES),
    derived="|".join(cfg.DERIVED_TABLES),
    fmt="|".join(FORMATS),
    start=ids.DATE.pattern,
    end=ids.DATE.pattern,


def account(wildcards):
    """The Settings of the account a job works for."""
    return ACCOUNTS[wildcards.acct]


def offline_plan():
    """With fetch_latest: false, the Tandem Source accounts whose manifest is not yet what their raw
    store holds (a failed fetch removed it, say, or nothing was fetched yet): their fetch rule lists
    the store without the network (scripts/fetch_stored.py), or fails with the one line saying why.
    Every other account runs nothing before its tables: its manifest is an input as it stands, so a
    switch from true to false with nothing new is "Nothing to be done". Their line saying what the
    exports hold is printed here, once per account (the jobs of the others print their own).
    """
    from tandem_export import stored

    due = []
    for prefix, settings in ACCOUNTS.items():
        if settings.source != "tandem":
            continue
        line = stored.offline_state(
            Path(f"data/{prefix}fetch"),
            f"data/{prefix}raw",
            settings.pump_serial,
            settings.timezone,
        )
        if line is None:
            due.append(prefix)
        elif workflow.is_main_process:
            who = f"account {settings.account}: " if settings.account else ""
            print(f"Notice: {who}{line}", file=sys.stderr)
    return due


#: fetch_latest: false: the accounts whose offline fetch job is due (see offline_plan).
OFFLINE_DUE = [] if SETTINGS.fetch_latest else offline_plan()


def lineage(wildcards):
    """Digest of the settings and code an account's tables are built from (cfg.Settings.lineage): a
    parameter of every rule from the events build on, so that a failed or interrupted run after a
    change of them is never followed by "Nothing to be done"."""
    return account(wildcards).lineage


#: The same for the combined exports: every account's digest.
ALL_LINEAGES = [s.lineage for s in ACCOUNTS.values()]


def fetch_manifest(prefix):
    """The fetch manifest of the account with path prefix ``prefix`` (source tandem), else None."""
    if ACCOUNTS[prefix].source == "tandem":
        return f"data/{prefix}fetch/manifest.json"
    return None


def fetched_manifests(wildcards):
    """An input of every job after the fetch: the account's manifest (none for other sources).

    The fetch is a checkpoint that runs on every invocation while the range is open; Snakemake
    reruns a job whose input changed since its outputs were made, comparing checksums of small
    files, so each job reruns when, and only when, the windows it was built from changed. Every
    job lists it itself: after a checkpoint Snakemake re-evaluates the jobs that read its output
    directly, not those further on.
    """
    return [m for m in [fetch_manifest(wildcards.acct)] if m]


#: The same for the combined exports: every account's manifest.
ALL_FETCHED = [m for m in map(fetch_manifest, ACCOUNTS) if m]


def normalize_inputs(wildcards):
    """What one account's normalise job reads: the fetch manifest, or the raw-store files."""
    if account(wildcards).source == "tandem":
        return [f"data/{wildcards.acct}fetch/manifest.json"]
    if account(wildcards).source == "file":
        return ["data/imported/files.json"]
    # In the order the config lists them (the demo: window order): the first listed wins when two
    # hold the same event with other contents.
    return [RAW[key].path for key in RAW]


def raw_windows(wildcards):
    """(store, window, raw path, pump serial, label) of every raw file of the demo or file source."""
    if account(wildcards).source == "tandem":
        return []
    return [
        (
            store,
            window,
            RAW[(store, window)].path,
            RAW[(store, window)].pump_serial,
            RAW[(store, window)].origin,
        )
        for store, window in RAW  # in the order listed (see normalize_inputs)
    ]


def account_exports(prefix):
    """exports/{prefix}{table}.{fmt} for every table and format, and the account's DuckDB database."""
    tables = expand(
        "exports/{prefix}{table}.{fmt}", prefix=prefix, table=TABLES, fmt=FORMATS
    )
    return tables + [f"exports/{prefix}{cfg.DATABASE}"]


def all_exports():
    """Every account's exports, and with a sheet and combined_exports the combined ones (rule all)."""
    out = [path for prefix in ACCOUNTS for path in account_exports(prefix)]
    if SHEET and config.get("combined_exports", True):
        out += expand(
            "exports/{combined}/{table}.{fmt}",
            combined=cfg.COMBINED,
            table=TABLES,
            fmt=FORMATS,
        )
    return out


def failed_accounts():
    """Lines naming each sheet account whose job logs of this run hold an error, with the first error."""
    lines = []
    for prefix, settings in ACCOUNTS.items():
        folder = Path("logs") / prefix
        if not prefix or not folder.is_dir():
            continue
        for log in sorted(folder.rglob("*.log")):
            if log.stat().st_mtime < RUN_STARTED:
                continue
            errors = [
                line
                for line in log.read_text(errors="replace").splitlines()
                if "ERROR:" in line
            ]
            if errors:
                lines.append(f"  {settings.account}: {errors[0].strip()} (log: {log})")
                break
    return lines


def current_settings():
    """{folder under exports/: settings digest} of every current account ('' for the single
    account's files, the id for a sheet account's, 'combined' for the combined exports).
    """
    current = {prefix.rstrip("/"): s.lineage for prefix, s in ACCOUNTS.items()}
    if SHEET:
        from tandem_export import export_manifest

        current[cfg.COMBINED] = export_manifest.combined_settings(ALL_LINEAGES)
    return current


def write_manifest(complete):
    """Write exports/MANIFEST.json (tandem_export.export_manifest) after a run that completed or
    failed (``complete``); return the names of the exports built from other settings than the
    current ones (exports/...).  A manifest that cannot be written is a warning line.
    """
    from tandem_export import export_manifest as em
    from tandem_export import stored

    current = current_settings()
    entries = em.describe()
    # Each Tandem Source account: whether this run fetched, and what its last fetch reached.
    fetch = {
        prefix.rstrip("/"): stored.fetch_entry(
            Path(f"data/{prefix}fetch"), f"data/{prefix}raw", s.fetch_latest
        )
        for prefix, s in ACCOUNTS.items()
        if s.source == "tandem"
    }
    try:
        em.write_manifest(current, complete, entries=entries, fetch=fetch)
    except OSError as exc:
        print(
            f"Warning: could not write exports/{em.MANIFEST}: {exc}; free space or fix permissions, then run again",
            file=sys.stderr,
        )

    def is_export(name):
        return em.is_export_name(name, TABLES, FORMATS, cfg.DATABASE)

    return em.stale_exports(entries, current, is_export)


def print_stale_exports_last(stale):
    """After a failed run, name the exports older than the current settings (``stale``) as the very
    last console line: printed when the process exits, after Snakemake's own closing lines (the log
    path, the elapsed time and the WorkflowError it prints after onerror).  Nothing when none.
    """
    from tandem_export import export_manifest

    line = export_manifest.stale_line(stale)
    if line is None:
        return

    def last_line():
        sys.stdout.flush()
        print(line, file=sys.stderr, flush=True)

    atexit.register(last_line)


def release_exit():
    """Cancel Snakemake's job-rate timers so the finished run exits at once.

    Snakemake (9.x) starts a non-daemon threading.Timer of --max-jobs-per-timespan's timespan (1 s by
    default) at every scheduling step to re-check its job rate limit; Python waits for the last one
    before the process can exit, which added up to a second to every run that ran a job. Once the
    workflow has ended nothing is scheduled any more, so they are cancelled from onsuccess/onerror.
    """
    for thread in threading.enumerate():
        name = getattr(getattr(thread, "function", None), "__qualname__", "")
        if isinstance(thread, threading.Timer) and "_schedule_reevalutation" in name:
            thread.cancel()
