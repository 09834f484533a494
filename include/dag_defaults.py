"""What every DAG shares: ``default_args`` (owner, retries with exponential backoff, timeouts,
alerts), the start date, the pools and the daily timetable.

Retries suit tasks that talk to the source, the database or an API (transient failures);
failures that a retry cannot fix (a failed quality gate, a sensor timeout) raise
``AirflowFailException`` and are not retried.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import CronDataIntervalTimetable

from include.notify import ProjectNotifier
from include.settings import get_settings

OWNER = "mlops"
#: Every DAG's start date: static (never ``now()``), before the first simulated day.
START_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)
#: One run per UTC day, its data interval the day [00:00, 24:00): an explicit data-interval
#: timetable, whatever the deployment's ``create_cron_data_intervals`` (dags/etl.py says why).
DAILY_UTC = CronDataIntervalTimetable("0 0 * * *", timezone="UTC")
#: Pools (created from airflow_settings.yaml): cap concurrent warehouse connections and embedding calls.
WAREHOUSE_POOL = "warehouse"
EMBEDDING_POOL = "embeddings"
#: Training candidates: slots x MLOPS_TRAIN_THREADS <= the training worker's cores (README "Training cost").
TRAINING_POOL = "training"
#: Worker queue for heavy training work (Astro worker queues; ignored by LocalExecutor).
TRAINING_QUEUE = get_settings().tasks.training_queue


def default_args(**overrides) -> dict:
    tasks = get_settings().tasks
    args = {
        "owner": OWNER,
        "retries": tasks.retries,
        "retry_delay": timedelta(seconds=tasks.retry_delay_s),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        "execution_timeout": timedelta(minutes=tasks.timeout_min),
        "on_failure_callback": ProjectNotifier("{{ ti.dag_id }}.{{ ti.task_id }} failed"),
    }
    args.update(overrides)
    return args
