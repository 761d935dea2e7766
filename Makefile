# llcpkg: `make reproduce` runs every notebook (cpu profile) into results/;
# `make test` runs the unit tests and the notebooks in the smoke profile.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= cpu
SEEDS ?=  # empty: the profile's seeds (cpu: 0 1 2); SEEDS=0 for the one-seed quick run
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

# Local copies of the data where this machine has them; elsewhere the loaders download
# (LLC_DOWNLOAD=1 for reproduce only; tests never download).
SHARED_OMNIGLOT := $(abspath ../shared/data/omniglot)
export LLC_OMNIGLOT_ROOT ?= $(if $(wildcard $(SHARED_OMNIGLOT)/*.zip),$(SHARED_OMNIGLOT),)
export LLC_ROOT := $(CURDIR)
export PYTHONHASHSEED := 0

.PHONY: help venv reproduce nb report test unit test-slow nbtest reporttest clean-cache clean-smoke
help:
	@echo "make reproduce            run every notebook (PROFILE=$(PROFILE)) over the profile's seeds into results/"
	@echo "make reproduce SEEDS=0    the one-seed quick look (SEEDS='0 1' any list)"
	@echo "make nb NB=01_classification PARAMS='-p bits 16'   rerun one notebook (custom parameters -> results/runs/<name>,"
	@echo "                          INTO_RESULTS=1 writes into results/; a list: PARAMS=\"-p datasets \\\"['omniglot']\\\"\")"
	@echo "make report               build results/report/ (HTML) from the executed notebooks"
	@echo "make test                 unit tests + notebooks in the smoke profile"
	@echo "make test-slow            the slow tests (multi-process torchrun runs on CPU)"

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

venv: $(VENV)/.installed

reproduce: venv
	export LLC_PROFILE=$(PROFILE) LLC_DOWNLOAD=1 TQDM_DISABLE=1 LLC_SEEDS="$(strip $(SEEDS))"
	$(PY) -m llcpkg.reproduce $(NOTEBOOKS)
	$(PY) -m llcpkg.report

nb: venv
	@[ -n "$(NB)" ] || { echo "usage: make nb NB=01_classification [PARAMS='-p bits 16']"; exit 2; }
	export LLC_PROFILE=$(PROFILE) LLC_DOWNLOAD=1 TQDM_DISABLE=1 LLC_SEEDS="$(strip $(SEEDS))"
	$(PY) -m llcpkg.reproduce notebooks/$(NB).ipynb --papermill-args "$${PARAMS-}" $(if $(INTO_RESULTS),--into-results)

# the HTML report of $(PROFILE)'s results folder (results/ for cpu, .cache/smoke-results for smoke)
report: venv
	LLC_PROFILE=$(PROFILE) $(PY) -m llcpkg.report

test: unit nbtest reporttest

unit: venv
	$(PY) -m pytest tests

test-slow: venv
	OMP_NUM_THREADS=1 $(PY) -m pytest -m slow tests

# TQDM_DISABLE=1: nbval reads a cell's messages only after the cell ends, and zmq drops what does not fit
# its queue (1000 messages); a long cell's widget progress bars fill it, the final "idle" is lost and nbval
# fails with "Timeout of 5 seconds exceeded waiting for output" (CI at 1b25d23, notebooks 03 and 08).
# --durations: the slowest cells, for the CI time budget.
nbtest: venv
	LLC_PROFILE=smoke TQDM_DISABLE=1 $(PY) -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider \
		--durations=15 $(NOTEBOOKS)

# the report built from a smoke reproduce, checked in chromium. Two notebooks go through papermill
# (a training one, from nbtest's cached checkpoints, and the summary, from the tables nbtest wrote):
# nbtest has just executed all of them, and the unit tests check the report of every committed one.
REPORT_NOTEBOOKS := notebooks/01_classification.ipynb notebooks/99_summary.ipynb
reporttest: venv
	export LLC_PROFILE=smoke TQDM_DISABLE=1
	$(PY) -m llcpkg.reproduce $(REPORT_NOTEBOOKS)
	$(PY) -m llcpkg.report
	LLC_REPORT_DIR=.cache/smoke-results/report $(PY) -m pytest tests/test_report_browser.py

clean-smoke:
	rm -rf .cache/smoke-results

clean-cache:
	rm -rf .cache
