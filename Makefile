# Shortcuts for developers; the README's quick start does not need make.
PYTHON ?= python3

.PHONY: test test-fast test-slurm mutation

# The whole test suite, as CI runs it (.ci/run).
test:
	$(PYTHON) -m pytest

# The fast tier: in-process value tests (about a minute and a half).
test-fast:
	$(PYTHON) -m pytest -m fast -q

# The cluster profile on a one-node SLURM cluster the test starts (about 2.5 minutes; root, and
# slurm-wlm installed or CI=true / TANDEM_EXPORT_INSTALL_SLURM=1 to install it): tests/test_slurm.py.
test-slurm:
	$(PYTHON) -m pytest -m slurm

# Mutation testing of the fast tier (hours; not in CI): bench/MUTATION.md.
mutation:
	$(PYTHON) -m pip install --quiet -r bench/requirements-mutation.txt
	$(PYTHON) bench/mutation.py
