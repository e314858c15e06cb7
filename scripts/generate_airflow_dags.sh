#!/usr/bin/env bash
# Regenerate the Airflow DAGs in airflow/ from the Kedro pipelines (kedro-airflow):
#   monitoring daily, retraining weekly; tasks of `gpu`-tagged nodes in the Airflow pool `gpu`.
# Usage: bash scripts/generate_airflow_dags.sh [target_dir]   (default: airflow/)
# Run it after changing the monitoring or retraining pipelines or their parameters, and commit
# the result; tests/airflow/test_dag.py fails while the committed DAGs are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${1:-airflow}"
KEDRO="${KEDRO:-.venv/bin/kedro}"
export KEDRO_DISABLE_TELEMETRY=true HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
"$KEDRO" airflow create --pipelines monitoring,retraining --target-dir "$TARGET" \
  --jinja-file airflow/dag_template.j2 --params "gpu_pool=gpu"
