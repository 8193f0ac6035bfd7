# Two commands do all set-up on a fresh machine with python3 (3.11+) and make:
#   make book   create .venv, install requirements.txt, build the HTML book into _build/html
#   make test   the same set-up, then every test (unit tests, nbval over chapters/, the book build)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The stamp records that requirements.txt and pyproject.toml were installed; the
# install re-runs only when one of them changes.
STAMP  := $(VENV)/.installed

.PHONY: install book test bench timings clean help

help:
	@echo "make book   build the HTML book into _build/html (executes every chapter)"
	@echo "make test   run every test: gmm_utils unit tests, nbval on chapters/, book build"
	@echo "make bench  time every formulation and chain method, side by side with PyMC (not part of make test)"
	@echo "make timings  execute every chapter from an empty cache and print each one's time"
	@echo "make clean  remove _build (keeps .venv and .venv-bench)"

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

# -W turns every Sphinx warning (a failed notebook, stderr output, a broken reference) into
# an error; --keep-going reports all of them before failing; -n makes Sphinx nitpicky about
# references. tests/conftest.py reads these flags from here.
JB_BUILD_FLAGS := --warningiserror --nitpick --keep-going

book: $(STAMP)
	$(BIN)/jupyter-book build . $(JB_BUILD_FLAGS)

test: $(STAMP)
	$(BIN)/python -m pytest

# PyMC is not a dependency of the book: the benchmark installs it into its own environment,
# pinned by bench/requirements-pymc.txt, and runs bench/pymc_gmm.py there.
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
BENCH_JSON  := _build/bench/benchmark.json

$(BENCH_STAMP): bench/requirements-pymc.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -r bench/requirements-pymc.txt
	touch $(BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP)
	$(BIN)/python bench/run.py --pymc-python $(BENCH_VENV)/bin/python --json $(BENCH_JSON)

# Each chapter executed in a fresh kernel from one new, empty JAX cache (no jupyter-cache):
# what a newcomer's first `make book` costs. `TIMINGS_FLAGS=--isolated` gives every chapter
# its own empty cache.
timings: $(STAMP)
	$(BIN)/python bench/timings.py $(TIMINGS_FLAGS)

clean:
	rm -rf _build
