"""The cluster profile on a real SLURM cluster: ``--profile profiles/slurm`` with the executor plugin.

A one-node cluster (munged, slurmctld, slurmd; tests/slurm_cluster.py) is started on this machine,
and the accounts sheet of tests/test_accounts.py (two good accounts, one with a wrong password) is
run against the stand-in server, once locally and once through SLURM.  Asserted: every account's
exports are byte-identical to the local run's; the failing account is named and the others
complete; ``tandem_api`` holds (read from the server's request log); every job has its SLURM log
under ``.snakemake/slurm_logs/rule_<rule>/<wildcards>/`` and its rule log under ``logs/``, as the
README's cluster section says.

Where SLURM is not installed the test installs Debian's slurm-wlm and munge itself, but only as root
with apt-get and with CI=true or TANDEM_EXPORT_INSTALL_SLURM=1; otherwise it is skipped, one line
saying why.  The executor plugins (profiles/slurm/requirements.txt) are installed into a temporary
folder put on PYTHONPATH for the SLURM run only (jobs inherit it), as installing them into the
environment would make every local run load them; under CI a failed install fails the test.  Run alone: ``python3 -m pytest -m slurm``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from conftest import snakemake
from slurm_cluster import SlurmCluster, ensure_installed, install_plugins
from standin import StandIn
from test_accounts import ACCOUNTS, max_concurrent_accounts
from test_accounts import setup as setup_workdir

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = ensure_installed()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("slurm")
    c = SlurmCluster(folder)
    try:
        c.start()
    except (RuntimeError, OSError) as e:
        c.stop()
        pytest.skip(f"the one-node SLURM cluster did not start here: {str(e).splitlines()[0][:300]}")
    try:
        yield c
    finally:
        c.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def plugins(tmp_path_factory) -> dict[str, str]:
    """The environment that makes the pinned SLURM executor plugins importable (PYTHONPATH)."""
    folder = tmp_path_factory.mktemp("slurm-plugins")
    reason = install_plugins(folder)
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return {"PYTHONPATH": os.pathsep.join(filter(None, (str(folder), os.environ.get("PYTHONPATH"))))}


def test_a_local_run_does_not_load_the_slurm_plugin():
    """The plugin imports pandas when loaded and Snakemake loads every installed executor plugin,
    so it must not be in the environment of requirements.txt (test_workflow checks the import)."""
    assert importlib.util.find_spec("snakemake_executor_plugin_slurm") is None
    assert (
        "snakemake-executor-plugin-slurm" not in Path(__file__).parent.parent.joinpath("requirements.txt").read_text()
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with StandIn(tmp_path_factory.mktemp("server"), ACCOUNTS, retired_days=4, current_days=8) as s:
        yield s
        assert not s.errors


@pytest.fixture(scope="module")
def local_dir(tmp_path_factory, server) -> Path:
    workdir = tmp_path_factory.mktemp("local") / "wf"
    env = setup_workdir(workdir, server)
    proc = snakemake(workdir, "-c2", "all", "--configfile", "accounts.yaml", check=False, env=env)
    assert "1 of 3 accounts did not complete:" in proc.stderr, proc.stderr[-3000:]
    return workdir


def test_the_slurm_profile_runs_the_accounts_sheet_on_slurm(tmp_path, cluster, plugins, server, local_dir):
    workdir = tmp_path / "wf"
    env = {**setup_workdir(workdir, server), **cluster.env, **plugins}
    server.clear_requests()
    started = time.monotonic()
    proc = snakemake(
        workdir,
        "all",
        "--profile",
        "profiles/slurm",
        # This cluster has no accounting database (no slurmdbd), so job states come from squeue
        # (finished jobs stay in it for MinJobAge = 600 s); a site with sacct keeps the default.
        "--slurm-status-command",
        "squeue",
        # Quicker first status check than the plugin's 40 s, for the test's time only.
        "--slurm-init-seconds-before-status-checks",
        "2",
        # A limit of one makes any overlap of two accounts' fetches visible.
        "--resources",
        "tandem_api=1",
        "--configfile",
        "accounts.yaml",
        check=False,
        env=env,
    )
    took = time.monotonic() - started
    out = proc.stdout + proc.stderr
    (tmp_path / "snakemake.log").write_text(out)
    where = f"(took {took:.0f} s; {cluster.log_tail()})\n{out[-4000:]}"
    assert proc.returncode != 0, where
    assert "1 of 3 accounts did not complete:" in proc.stderr, where
    summary = proc.stderr[proc.stderr.index("1 of 3 accounts did not complete:") :].splitlines()[1]
    assert summary.strip().startswith("carol:") and "rejected" in summary.lower(), summary

    # Every job went through sbatch (the plugin prints each SLURM job id it submitted).
    submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+)", out)
    assert len(submitted) >= 2 * 8 + 1, where

    for acct in ("alice", "bob"):
        reference = sorted(p for p in (local_dir / "exports" / acct).iterdir() if p.suffix in (".parquet", ".csv"))
        assert len(reference) == 28
        for path in reference:
            assert (workdir / "exports" / acct / path.name).read_bytes() == path.read_bytes(), path
    assert not (workdir / "exports" / "carol").exists()
    assert not (workdir / "exports" / "combined").exists()

    assert max_concurrent_accounts(server.requests) == 1

    # Logs: every rule log the local run wrote, the SLURM run wrote too, in the same place...
    local_logs = sorted(p.relative_to(local_dir) for p in (local_dir / "logs").rglob("*.log"))
    slurm_logs_of_rules = sorted(p.relative_to(workdir) for p in (workdir / "logs").rglob("*.log"))
    assert slurm_logs_of_rules == local_logs
    # ...and every SLURM job has its own log, kept also when the job succeeded.
    job_logs = list((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert len(job_logs) == len(submitted), (len(job_logs), len(submitted))
    carol = [p for p in job_logs if "carol" in str(p.relative_to(workdir))]
    assert any("rejected" in p.read_text() for p in carol), carol
    for path in [*job_logs, *(workdir / "logs").rglob("*.log")]:
        text = path.read_text()
        for password in ACCOUNTS.values():
            assert password not in text, path
