"""ETL: load each day's demand file into the warehouse, gate it with Soda, publish the asset.

One run processes exactly one day: its data interval, [00:00, 24:00) UTC. The schedule,
``DAILY_UTC`` (include/dag_defaults.py), is an explicit ``CronDataIntervalTimetable``: in
Airflow 3 both ``"@daily"`` and ``timedelta(days=1)`` become *trigger* timetables with
zero-length intervals unless ``[scheduler] create_cron_data_intervals`` /
``create_delta_data_intervals`` are set, and this DAG must not
depend on a deployment setting. ``catchup=False``; past days are loaded with a backfill:

    airflow backfill create --dag-id etl --from-date 2026-01-01 --to-date 2026-01-14

Tasks (``include/etl`` and ``include/quality`` hold the logic, this file only wires it):

- ``wait_for_file`` waits (``reschedule`` mode, no worker slot held) for
  ``demand_YYYY-MM-DD.parquet`` in the landing zone or, for old days moved by cold storage, the
  archive zone. After ``MLOPS_FILE_WAIT_TIMEOUT_S`` it fails, naming the day and the places it
  looked (a timeout is not retried).
- ``load`` (warehouse pool) streams the Parquet file in chunks of ``MLOPS_ETL_CHUNK_ROWS`` rows,
  validates them with array expressions (types, required columns, ranges, ts in the day and on
  the hour, duplicate keys), COPYs the good rows into a new table, quarantines the bad ones with
  their reason, row number and raw values, and swaps the table in as the day's partition of
  ``warehouse.demand_hourly`` -- in one transaction with the quarantine rows and the day's
  ``warehouse.load_ledger`` row (``quality_passed`` null). Re-running a day replaces it.
- ``quality_gate`` (warehouse pool) verifies the Soda contract
  ``include/quality/contracts/demand_hourly.yml`` on the day: row count, required columns,
  value ranges, key uniqueness, share quarantined under ``MLOPS_MAX_QUARANTINE_SHARE``. A failed
  critical check sets ``quality_passed = false``, alerts and fails the run (no retry); warnings
  alert only; a scan that errors fails the task too (and is never taken as a pass).
- ``publish`` updates the ``warehouse_demand`` asset with the interval and counts as extra; it
  only runs when the gate passed, so consumers never see a failed day. Consumers find their
  work in the ledger (``warehouse.ready_intervals``), the asset event only triggers them.

Tasks that touch the source or the database retry with exponential backoff (``default_args``).
XCom carries counts and the file URI only.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from include.assets import WAREHOUSE_DEMAND
from include.dag_defaults import DAILY_UTC, START_DATE, WAREHOUSE_POOL, default_args
from include.deadlines import etl_deadline
from include.etl.sensor import DayFileSensor
from include.settings import get_settings

_etl = get_settings().etl


@dag(
    dag_id="etl",
    schedule=DAILY_UTC,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=4,
    default_args=default_args(),
    tags=["etl", "warehouse", "quality", "soda"],
    doc_md=__doc__,
    deadline=etl_deadline(),  # finished within MLOPS_ETL_DEADLINE_S after the interval ends, or alert
)
def etl():
    wait_for_file = DayFileSensor(
        task_id="wait_for_file",
        mode="reschedule",
        poke_interval=_etl.file_poke_interval_s,
        timeout=_etl.file_wait_timeout_s,
    )

    @task(pool=WAREHOUSE_POOL, multiple_outputs=False)
    def load(source_uri: str, *, data_interval_start=None) -> dict:
        """Stream the day's file into its partition of demand_hourly, quarantine and ledger in one transaction."""
        from include.etl import steps

        return steps.load(data_interval_start, source_uri)

    @task(pool=WAREHOUSE_POOL, multiple_outputs=False)
    def quality_gate(loaded: dict, *, data_interval_start=None, data_interval_end=None, ti=None) -> dict:
        """After the load: verify the Soda contract on the data interval; a failed critical check fails the run."""
        from include.lineage import report_lineage, table
        from include.quality.gate import run_gate

        report_lineage(inputs=[table("warehouse", "demand_hourly")], outputs=[table("warehouse", "load_ledger")])
        return run_gate(data_interval_start, data_interval_end, context={"ti": ti}).summary()

    @task(outlets=[WAREHOUSE_DEMAND], multiple_outputs=False)
    def publish(loaded: dict, gate: dict, *, outlet_events=None) -> dict:
        """Update the warehouse_demand asset, the interval and counts as extra (only after a passed gate)."""
        from include.etl import steps

        extra = steps.asset_extra(loaded, gate)
        outlet_events[WAREHOUSE_DEMAND].extra = extra
        return extra

    loaded = load(wait_for_file.output)
    publish(loaded, quality_gate(loaded))


etl()
