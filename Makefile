# The two quick-start commands: `make demo` and `make test`. Each sets itself up and can be re-run.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
MELTANO_VENV := .venv-meltano
MELTANO := $(CURDIR)/$(MELTANO_VENV)/bin/meltano
# The s3 extra: Meltano's state in object storage (docs/object-storage.md).
MELTANO_SPEC := meltano[s3]>=4.4,<5
# Named after what it installed, so a checkout set up before the extra (or the bytecode)
# installs it.
MELTANO_STAMP := $(MELTANO_VENV)/.installed-s3-bytecode
# Modules compiled to bytecode once, at setup: uv (Meltano's installer) writes none, nor does
# pip where PYTHONDONTWRITEBYTECODE is set, and then no run writes any either: every `meltano
# run` would compile Meltano's, the tap's and the target's modules again (about 1 CPU s for
# the target alone at each start).
COMPILE := -m compileall -q -j 0

export MELTANO_SEND_ANONYMOUS_USAGE_STATS := false
export TAP_SPAAZA_USERS_TEST_MELTANO := $(MELTANO)

.PHONY: help setup demo test test-fast lint typecheck pytest clean

help:
	@echo "make demo   sync the local Spaaza sandbox into DuckDB twice and print a summary"
	@echo "make test   everything CI runs: ruff, ruff format --check, mypy, pytest (about 11 min)"
	@echo "make test-fast  the same without Meltano, PostgreSQL, DuckDB and slow tests"
	@echo "make clean  remove the virtual environments, Meltano's plugins and the demo output"

# The project's own environment: the tap with its sandbox, and the dev dependency groups.
$(VENV)/.installed: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	$(VENV)/bin/python -m pip install --quiet -e ".[sandbox]" --group dev
	touch $@

# Meltano in a virtual environment of its own, so its dependencies never fight the tap's.
$(MELTANO_STAMP):
	test -x $(MELTANO_VENV)/bin/python || $(PYTHON) -m venv $(MELTANO_VENV)
	$(MELTANO_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MELTANO_VENV)/bin/python -m pip install --quiet "$(MELTANO_SPEC)"
	$(MELTANO_VENV)/bin/python $(COMPILE) $(MELTANO_VENV)/lib > /dev/null
	touch $@

# Every plugin declared in meltano.yml, each in its own virtual environment under .meltano/;
# the project's loader wrappers (loaders/) are installed copies that Meltano does not see
# change, so a change to one reinstalls the plugins from scratch (--clean).
LOADER_SOURCES := $(shell find loaders -type f \( -name '*.py' -o -name '*.toml' \) -not -path '*/build/*')
.meltano/.installed: meltano.yml pyproject.toml $(LOADER_SOURCES) $(MELTANO_STAMP)
	$(MELTANO) install $(if $(filter loaders/%,$?),--clean)
	for venv in .meltano/*/*/venv; do $$venv/bin/python $(COMPILE) $$venv/lib > /dev/null; done
	$(MELTANO_VENV)/bin/python $(COMPILE) tap_spaaza_users > /dev/null
	touch $@

# Meltano linked into the project's environment: after `source .venv/bin/activate`, the tap,
# the sandbox and meltano are all on PATH (Meltano still runs from its own environment).
$(VENV)/bin/meltano: $(VENV)/.installed $(MELTANO_STAMP)
	ln -sf ../../$(MELTANO_VENV)/bin/meltano $@

setup: $(VENV)/.installed .meltano/.installed $(VENV)/bin/meltano

demo: setup
	bash scripts/demo.sh

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy --explicit-package-bases tap_spaaza_users tests scripts benchmarks

# PostgreSQL for the integration tests: .ci/run starts it; as root, so does `make test`, which
# then stops the server again if it started it (scripts/with-postgres.sh).
# Test files run in PYTEST_WORKERS processes (pytest-xdist), two by default for CI's two CPUs:
# much of the suite waits on Meltano, the tap, the targets and the sandbox, so two at once take
# far less time. Each file runs whole, in order, in one worker, as it would alone (module-level
# sandboxes and fixtures stay as they are); every test keeps its resources to itself (temp
# dirs, Meltano system dirs, PostgreSQL schemas, DuckDB files, sandboxes on ephemeral ports),
# so two files may overlap. `make pytest PYTEST_WORKERS=0` runs them in this one process.
PYTEST_WORKERS ?= 2
PYTEST_ARGS := -n $(PYTEST_WORKERS) --dist loadfile
pytest: setup
	@if [ -z "$$TAP_SPAAZA_USERS_TEST_POSTGRES_HOST" ] && [ "$$(id -u)" = 0 ]; then \
		bash scripts/with-postgres.sh $(VENV)/bin/pytest $(PYTEST_ARGS); \
	else \
		$(VENV)/bin/pytest $(PYTEST_ARGS); \
	fi

test: lint typecheck pytest

# A quick check: no Meltano, no warehouse (tests/integration holds every test that drives the
# meltano CLI, PostgreSQL or DuckDB), no slow benchmark or 100k-user tests.
FAST_TESTS := --ignore=tests/integration -m "not slow"
test-fast: lint typecheck
	$(VENV)/bin/pytest $(PYTEST_ARGS) $(FAST_TESTS)

clean:
	rm -rf $(VENV) $(MELTANO_VENV) .meltano output .demo
