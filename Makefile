# redhat.cluster: the two commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest

.PHONY: setup demo demo-db test test-fast test-unit test-sim soak test-lab test-molecule bench screenshots lab-down clean

setup:
	@scripts/setup.sh

# The inner loop: pure unit tests and a short simulator run (under a minute).
test-fast: setup
	$(PYTEST) -q tests/unit tests/sim -m "not slow"

test-unit: setup
	$(PYTEST) -q tests/unit

test-sim: setup
	$(PYTEST) -q tests/sim

# More random whole-cluster schedules than make test runs: new seeds for MINUTES minutes on
# every core; failures print their seed, invariant and shrunk trace (exit 1).
MINUTES ?= 10
soak: setup
	$(PY) tests/sim/volume.py $(MINUTES)

test-lab: setup
	$(PYTEST) -q tests/lab_tests

# Molecule scenarios on the lab (molecule finds molecule/<scenario>/ from the repo root and
# runs ansible from PATH, hence the venv first on PATH). Each scenario's output is also kept
# in var/molecule/; on a failure, the failed tasks are printed last (CI shows the tail).
MOLECULE_SCENARIOS := default failover upgrade database lifecycle twonode
test-molecule: setup
	@mkdir -p var/molecule; for s in $(MOLECULE_SCENARIOS); do \
	    PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/molecule test -s $$s 2>&1 \
	        | tee var/molecule/$$s.log; \
	    if [ $${PIPESTATUS[0]} -ne 0 ]; then \
	        $(PY) scripts/failure_digest.py var/molecule/$$s.log; exit 1; fi; \
	done

# Everything: unit, simulator (incl. the long random-schedule run), daemons on loopback,
# collection gates, and the lab (one shared lab for all lab tests), then molecule.
test: setup
	$(PYTEST) -q tests/unit tests/sim tests/integration_local tests/collection tests/playbooks tests/lab_tests
	$(MAKE) --no-print-directory test-molecule

demo: setup
	$(PY) -m clusterlab.demo

# The second demo: MariaDB on the lab's shared disk, its node powered off, 0 writes lost.
demo-db: setup
	$(PY) -m clusterlab.demo_db

bench: setup
	$(PY) tests/bench/run.py

# The web status page's screenshots in docs/images/web-*.png, taken by its browser test (a
# lab of its own, prefix rhcg; the test also runs in make test, its screenshots then go to a
# temporary directory).
screenshots: setup
	RHC_WEB_SCREENSHOTS=$(CURDIR)/docs/images $(PYTEST) -q tests/lab_tests/test_web_lab.py

lab-down: setup
	$(VENV)/bin/cluster-lab down

clean: lab-down
	rm -rf $(VENV) var
