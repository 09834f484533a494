"""``default_args`` shared by every DAG: owner, retries with exponential backoff, timeouts, alerts.

Retries suit tasks that talk to the source, the database or an API (transient failures);
failures that a retry cannot fix (a failed quality gate, a sensor timeout) raise
``AirflowFailException`` and are not retried.
"""

from __future__ import annotations

import os
from datetime import timedelta

from include.notify import ProjectNotifier

OWNER = "mlops"
#: Pools (created from airflow_settings.yaml): cap concurrent warehouse connections and embedding calls.
WAREHOUSE_POOL = "warehouse"
EMBEDDING_POOL = "embeddings"
#: Training candidates: slots x MLOPS_TRAIN_THREADS <= the training worker's cores (README "Training cost").
TRAINING_POOL = "training"
#: Worker queue for heavy training work (Astro worker queues; ignored by LocalExecutor).
TRAINING_QUEUE = os.environ.get("MLOPS_TRAINING_QUEUE", "default")


def default_args(**overrides) -> dict:
    args = {
        "owner": OWNER,
        "retries": int(os.environ.get("MLOPS_TASK_RETRIES", "2")),
        "retry_delay": timedelta(seconds=float(os.environ.get("MLOPS_RETRY_DELAY_S", "20"))),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        "execution_timeout": timedelta(minutes=int(os.environ.get("MLOPS_TASK_TIMEOUT_MIN", "30"))),
        "on_failure_callback": ProjectNotifier("{{ ti.dag_id }}.{{ ti.task_id }} failed"),
    }
    args.update(overrides)
    return args
