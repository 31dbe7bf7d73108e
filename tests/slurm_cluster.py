"""A one-node SLURM cluster on this machine, for tests/test_slurm.py.

``SlurmCluster(folder)`` writes a slurm.conf for one node (this host, two CPUs, its memory) and one
default partition, generates a munge key, and starts munged, slurmctld and slurmd in the foreground
as child processes, every file (config, key, sockets, state, spool, logs) inside ``folder``.  It has
no accounting database (no slurmdbd): the executor plugin reads job states with ``squeue``, which
sees finished jobs for ``MinJobAge`` seconds.  The clients find the config through a one-line
/etc/slurm/slurm.conf that includes it (see ``point_default_conf_here``).  ``stop()`` cancels the
jobs still queued or running, ends every daemon it started by its PID and removes that line's file,
whatever happened before.

``ensure_installed()`` says why the cluster cannot run here, or installs Debian's ``slurm-wlm`` and
``munge`` where that is allowed (root, apt-get, and CI=true or TANDEM_EXPORT_INSTALL_SLURM=1).
``install_plugins(folder)`` installs the executor plugins of profiles/slurm/requirements.txt into
``folder`` (not into the environment: there every local run would load them), for PYTHONPATH.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol", "scancel")
OPT_IN = "TANDEM_EXPORT_INSTALL_SLURM"
DEFAULT_CONF = Path("/etc/slurm/slurm.conf")
MARK = "# written by tests/slurm_cluster.py of tandem-export, removed when its test ends"


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")


def missing_programs() -> list[str]:
    return [name for name in (*DAEMONS, *CLIENTS) if not _which(name)]


def ensure_installed() -> str | None:
    """None when the programs are there (installing them first where allowed); else why not, one line."""
    missing = missing_programs()
    if not missing:
        return None
    allowed = os.environ.get("CI") == "true" or os.environ.get(OPT_IN) == "1"
    if not allowed:
        return f"SLURM is not installed ({', '.join(missing)} missing); set {OPT_IN}=1 (or CI=true) to let the test apt-get install slurm-wlm munge"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return f"SLURM is not installed ({', '.join(missing)} missing) and installing it needs root and apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "slurm-wlm", "munge"]
    proc = subprocess.run(install, capture_output=True, text=True, env=env)
    if proc.returncode != 0:  # an old or empty package list: update it once and try again
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, text=True, env=env)
        proc = subprocess.run(install, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"apt-get install slurm-wlm munge failed: {last}"
    # The packages start their own munged and slurm services where an init system runs; this
    # cluster uses its own daemons, key and ports, so those are left alone.
    missing = missing_programs()
    return f"after apt-get install, still missing: {', '.join(missing)}" if missing else None


PLUGINS = Path(__file__).resolve().parent.parent / "profiles" / "slurm" / "requirements.txt"


def install_plugins(folder: Path) -> str | None:
    """Install the pinned SLURM executor plugins into ``folder``; None when done, else why not, one line.

    ``pip install --target`` with ``--no-deps``: their dependencies are those of requirements.txt,
    already in this environment, and a second copy of snakemake or pandas on PYTHONPATH would
    shadow the pinned ones.  The import is then checked from a fresh interpreter with that path.
    """
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
    proc = subprocess.run([*pip, "--target", str(folder), "-r", str(PLUGINS)], capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"pip install -r profiles/slurm/requirements.txt failed: {last}"
    check = "import snakemake_executor_plugin_slurm, snakemake_executor_plugin_slurm_jobstep"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(folder), os.environ.get("PYTHONPATH"))))}
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"the SLURM executor plugins do not import: {last}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


class SlurmCluster:
    PARTITION = "tandemtest"
    CPUS = 2

    def __init__(self, folder: Path):
        self.folder = folder
        self.procs: list[subprocess.Popen] = []
        self.node = socket.gethostname().split(".")[0]
        self.memory_mb = _memory_mb()
        self.conf = folder / "slurm.conf"
        self.env: dict[str, str] = {}
        self.wrote_default_conf = False

    # -- set-up --
    def write_config(self) -> None:
        f = self.folder
        for sub in ("munge", "state", "spool", "log"):
            (f / sub).mkdir(parents=True, exist_ok=True)
        (f / "munge").chmod(0o700)
        self.munge_socket = f / "munge" / "munge.socket"
        lines = {
            "ClusterName": "tandemtest",
            "SlurmctldHost": self.node,
            "SlurmctldPort": _free_port(),
            "SlurmdPort": _free_port(),
            "SlurmUser": "root",
            "SlurmdUser": "root",
            "AuthType": "auth/munge",
            "CredType": "cred/munge",
            "AuthInfo": f"socket={self.munge_socket}",
            "StateSaveLocation": f / "state",
            "SlurmdSpoolDir": f / "spool",
            "SlurmctldPidFile": f / "slurmctld.pid",
            "SlurmdPidFile": f / "slurmd.pid",
            "SlurmctldLogFile": f / "log" / "slurmctld.log",
            "SlurmdLogFile": f / "log" / "slurmd.log",
            "SlurmctldDebug": "info",
            "SlurmdDebug": "info",
            # No cgroups: processes are tracked through /proc, tasks are not confined.
            "ProctrackType": "proctrack/linuxproc",
            "TaskPlugin": "task/none",
            "JobAcctGatherType": "jobacct_gather/none",
            "AccountingStorageType": "accounting_storage/none",
            "JobCompType": "jobcomp/none",
            "SelectType": "select/cons_tres",
            "SelectTypeParameters": "CR_Core_Memory",
            "MpiDefault": "none",
            "SwitchType": "switch/none",
            "ReturnToService": 2,
            # Finished jobs stay visible to squeue for 10 minutes (the plugin needs at least 120 s).
            "MinJobAge": 600,
            "SchedulerParameters": "defer_batch",
            "SchedulerType": "sched/backfill",
            "SlurmctldTimeout": 30,
            "SlurmdTimeout": 30,
            "PlugStackConfig": f / "plugstack.conf",
        }
        text = "".join(f"{k}={v}\n" for k, v in lines.items())
        text += f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.CPUS} RealMemory={self.memory_mb} State=UNKNOWN\n"
        text += f"PartitionName={self.PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP\n"
        (f / "plugstack.conf").write_text("")
        self.conf.write_text(text)

    def _start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.folder / "log" / f"{name}.out", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [_which(name), *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def _wait(self, what: str, ready, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{Path(proc.args[0]).name} exited ({proc.returncode}): {self.log_tail()}")
            if ready():
                return
            time.sleep(0.3)
        raise RuntimeError(f"{what} not ready after {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        out = []
        for path in sorted((self.folder / "log").glob("*")):
            tail = path.read_text(errors="replace").strip().splitlines()[-lines:]
            if tail:
                out.append(f"[{path.name}] " + " | ".join(tail))
        return "; ".join(out)

    def run(self, *cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **self.env}, timeout=30)

    def point_default_conf_here(self) -> None:
        """Make /etc/slurm/slurm.conf one line that includes this cluster's config.

        The clients find the config at its default place, as on most sites.  SLURM_CONF alone is
        not enough: the executor's job step plugin (snakemake-executor-plugin-slurm-jobstep 0.6.1)
        removes every SLURM_* variable but the job's ids before it calls srun inside the job, so
        srun would find no config there.
        """
        if DEFAULT_CONF.exists() or DEFAULT_CONF.is_symlink():
            old = DEFAULT_CONF.read_text(errors="replace") if DEFAULT_CONF.is_file() else ""
            leftover = old.startswith(MARK) and not Path(old.splitlines()[-1].removeprefix("Include ")).exists()
            if not leftover:  # a run killed before its clean-up leaves one whose config is gone
                raise RuntimeError(
                    f"{DEFAULT_CONF} exists (a SLURM of this machine's own); the test does not replace it"
                )
        DEFAULT_CONF.parent.mkdir(parents=True, exist_ok=True)
        DEFAULT_CONF.write_text(self._default_conf_text())
        self.wrote_default_conf = True

    def _default_conf_text(self) -> str:
        return f"{MARK}\nInclude {self.conf}\n"

    def start(self) -> SlurmCluster:
        self.write_config()
        self.point_default_conf_here()
        key = self.folder / "munge" / "munge.key"
        subprocess.run([_which("mungekey"), "--create", f"--keyfile={key}"], check=True, capture_output=True)
        key.chmod(0o400)
        self._start(
            "munged",
            "--foreground",
            "--force",
            f"--socket={self.munge_socket}",
            f"--key-file={key}",
            f"--pid-file={self.folder / 'munge' / 'munged.pid'}",
            f"--seed-file={self.folder / 'munge' / 'munged.seed'}",
            f"--log-file={self.folder / 'log' / 'munged.log'}",
        )
        self._wait("munged", self.munge_socket.exists)
        self._start("slurmctld", "-D", "-i", "-f", str(self.conf))
        self._wait("slurmctld", lambda: self.run("scontrol", "ping").stdout.count("UP") > 0)
        self._start("slurmd", "-D", "-f", str(self.conf), "-N", self.node)
        self._wait("the node", lambda: self.run("sinfo", "-h", "-o", "%t").stdout.split() == ["idle"], timeout=60)
        return self

    # -- tear-down --
    def stop(self) -> None:
        """Cancel what is left of the jobs, then end every daemon started here, by PID: SIGTERM, then
        SIGKILL after 10 s."""
        if self.procs and all(proc.poll() is None for proc in self.procs[1:3]):
            try:
                self.run("scancel", "--partition", self.PARTITION)
                deadline = time.monotonic() + 15
                while self.run("squeue", "-h", "-t", "PD,R,CG").stdout.strip() and time.monotonic() < deadline:
                    time.sleep(0.5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self.wrote_default_conf and DEFAULT_CONF.read_text() == self._default_conf_text():
            DEFAULT_CONF.unlink()
            self.wrote_default_conf = False

    def __enter__(self) -> SlurmCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
