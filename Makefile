# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED ?= ../shared
STAMP := $(VENV)/.fastadapt-installed
AIRFLOW_VENV ?= .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.airflow-installed

export KEDRO_DISABLE_TELEMETRY := true
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup data run test viz lock airflow-venv browser

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP) data

# Airflow 3 in its own venv (it downgrades FastAPI, which `mlflow models serve` needs): the DagBag test.
$(AIRFLOW_STAMP): requirements-airflow.lock
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/pip install --quiet -r requirements-airflow.lock
	touch $(AIRFLOW_STAMP)

airflow-venv: $(AIRFLOW_STAMP)

browser:  ## Debian's chromium for the report's browser test (installed when missing and root, as on CI)
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium is missing: apt-get install -y chromium (the browser test is skipped without it)"

data:
	bash scripts/link_data.sh $(SHARED)

run: setup  ## the quick default pipeline: raw data to data/08_reporting/summary.md
	$(BIN)/kedro run

test: setup airflow-venv browser  ## the whole test suite, real-data end-to-end tests included
	$(BIN)/python -m pytest

viz: setup  ## a static Kedro-Viz site of every pipeline in build/
	$(BIN)/kedro viz build

lock:  ## re-pin requirements.lock from the current venv (torch without the local +cpu label)
	$(BIN)/pip freeze --exclude-editable | grep -v '^fastadapt' | sed 's/^torch==\(.*\)+cpu$$/torch==\1/' > requirements.lock
