"""Source simulator (demo): the source system delivering each day's file to the landing zone.

A stand-in for the system a fork replaces with its own source: each run delivers its data
interval's ``demand_YYYY-MM-DD.parquet`` into the landing zone through Airflow's
``ObjectStoragePath`` (``MLOPS_LANDING_URI``: a local folder, or ``s3://...`` with
``MLOPS_STORAGE_CONN_ID``), written whole then renamed (the landing contract,
``include/source/landing.py``), where the ``etl`` DAG's sensor waits for it. Nothing is written
from outside Airflow, so the chain runs the same under ``make run``, ``astro dev start`` and on
a multi-worker deployment.

Configuration (``include/settings.py``, ``MLOPS_SOURCE_*``): rows per day, share of malformed
rows, the day the data starts to drift, days that are never delivered, the seed. The params
``drift_start`` (``YYYY-MM-DD``) and ``missing_days`` (list of days) override them per run, e.g.:

    airflow backfill create --dag-id source_simulator --from-date 2026-01-01 --to-date 2026-01-21 \\
        --dag-run-conf '{"drift_start": "2026-01-10"}'

Same schedule and data intervals as ``etl`` (one UTC day, explicit cron timetable); ``catchup``
off, past days come from a backfill. Re-running a day never changes a delivered file.

The source's clock (Airflow Variable ``source_simulator_release_until``, a date; unset: no
limit) holds back the days from that date on: a run of a later day waits (deferred to the
triggerer: no worker slot, no task process; it looks again every MLOPS_SOURCE_RELEASE_CHECK_S,
30 s) until the clock passes it. ``make run`` moves the clock phase by phase, so
the run the scheduler creates for yesterday when the DAG is unpaused delivers only in the last
phase, as a real source delivers day after day.

Tasks:

- ``deliver`` writes the interval's file when the clock allows it (deferring while it does not,
  for at most ``MLOPS_FILE_WAIT_TIMEOUT_S``); a day configured as
  missing is never written (the run succeeds and says so, the ``etl`` sensor times out on it).
"""

from __future__ import annotations

from airflow.sdk import Param, dag

from include.dag_defaults import DAILY_UTC, START_DATE, default_args
from include.settings import get_settings
from include.source.sensor import DeliverySensor

_settings = get_settings()


@dag(
    dag_id="source_simulator",
    schedule=DAILY_UTC,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=8,
    default_args=default_args(),
    params={
        "drift_start": Param(None, type=["null", "string"], format="date", description="first drifted day"),
        "missing_days": Param([], type="array", description="days whose file is never delivered"),
    },
    tags=["demo", "source"],
    doc_md=__doc__,
)
def source_simulator():
    DeliverySensor(  # delivers the interval's file once the source's clock allows it
        task_id="deliver",
        poke_interval=_settings.source.release_check_s,
        timeout=_settings.etl.file_wait_timeout_s,
    )


source_simulator()
