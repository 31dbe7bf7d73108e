# Shortcuts for developers; the README's quick start does not need make.
PYTHON ?= python3

.PHONY: test test-fast mutation

# The whole test suite, as CI runs it (.ci/run).
test:
	$(PYTHON) -m pytest

# The fast tier: in-process value tests (about a minute and a half).
test-fast:
	$(PYTHON) -m pytest -m fast -q

# Mutation testing of the fast tier (hours; not in CI): bench/MUTATION.md.
mutation:
	$(PYTHON) -m pip install --quiet -r bench/requirements-mutation.txt
	$(PYTHON) bench/mutation.py
