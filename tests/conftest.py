"""Shared fixtures: run the workflow in a fresh copy of the project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent


def examples(n: int) -> int:
    """Hypothesis examples of a fast-tier test: ``n``, a quarter of them under bench/mutation.py (which
    runs the fast tier once per mutant and sets TANDEM_EXPORT_MUTATION)."""
    return max(5, n // 4) if os.environ.get("TANDEM_EXPORT_MUTATION") else n


WORKFLOW_PARTS = ("Snakefile", "config.yaml", "rules", "scripts", "schemas", "envs", "profiles")


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow (not data/, exports/ or .snakemake/) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        src = PROJECT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / part)
    return dest


def snakemake(workdir: Path, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``snakemake`` (from this interpreter's environment) in ``workdir``; ``env`` adds variables."""
    exe = Path(sys.executable).with_name("snakemake")
    cmd = [str(exe) if exe.exists() else "snakemake", *args]
    env = {**os.environ, "TZ": "UTC", **(env or {})}
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """A workflow copy on which ``snakemake -c2 all`` has run with the default (demo) config."""
    workdir = copy_workflow(tmp_path_factory.mktemp("demo") / "wf")
    proc = snakemake(workdir, "-c2", "all")
    (workdir / "first_run.log").write_text(proc.stdout + proc.stderr)
    return workdir
