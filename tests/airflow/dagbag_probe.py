"""Run with Airflow's own interpreter (.venv-airflow): load a DAG folder with `DagBag`, print JSON.

Prints the import errors, the DAG warnings (a task in a pool other than `default_pool` and `gpu`
is one) and, per DAG: its schedule, and per task its pool, operator, upstream task ids and the
shell command its `@task.bash` callable returns. Usage: python dagbag_probe.py DAG_FOLDER
"""

import json
import sys

from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1], known_pools={"default_pool", "gpu"})
dags = {}
for dag_id, dag in bag.dags.items():
    dags[dag_id] = {
        "schedule": str(dag.schedule),
        "tasks": {t.task_id: {"pool": t.pool, "upstream": sorted(t.upstream_task_ids),
                              "operator": type(t).__name__, "command": t.python_callable()}
                  for t in dag.tasks},
    }
print(json.dumps({"import_errors": {k: str(v) for k, v in bag.import_errors.items()},
                  "warnings": sorted(w.message for w in bag.dag_warnings), "dags": dags}))
