#!/bin/sh
# A stand-in for sbatch, for the cluster-generic executor in tests/test_accounts.py: run the job
# script Snakemake gives as the last argument as its own background process, detached from the
# Snakemake process, and print a job id. Job output goes to .cluster/<id>.out in the workdir.
jobscript="$1"
mkdir -p .cluster
sh "$jobscript" </dev/null >".cluster/job.$$.out" 2>&1 &
echo "local-$!"
