# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED ?= ../shared
STAMP := $(VENV)/.fastadapt-installed

export KEDRO_DISABLE_TELEMETRY := true
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup data run test viz lock

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP) data

data:
	bash scripts/link_data.sh $(SHARED)

run: setup  ## the quick default pipeline: raw data to data/08_reporting/summary.md
	$(BIN)/kedro run

test: setup  ## the whole test suite, real-data end-to-end tests included
	$(BIN)/python -m pytest

viz: setup  ## a static Kedro-Viz site of every pipeline in build/
	$(BIN)/kedro viz build

lock:  ## re-pin requirements.lock from the current venv (torch without the local +cpu label)
	$(BIN)/pip freeze --exclude-editable | grep -v '^fastadapt' | sed 's/^torch==\(.*\)+cpu$$/torch==\1/' > requirements.lock
