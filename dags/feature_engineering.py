"""Feature engineering: build time-dimensioned features in PostgreSQL for every loaded interval.

Scheduled on the ``warehouse_demand`` asset the ETL updates. One run may be triggered by several
asset events at once (a backfill queues many), and Airflow 3.3.2 can leave queued events
unconsumed until a later one arrives (apache/airflow#56050, #56749). So the events only
*trigger* a run; the data says what to build (``include/features/build.py``): every interval of
``warehouse.ready_intervals`` (loaded, quality gate passed) that has no features for the feature
set version yet, or whose load -- or the load or quality verdict of any day its lags and windows
read -- is newer than its features. Lags and windows read only days that passed the gate.
After a 14-day backfill every day has features, whatever the events did.

Tasks (``include/features`` holds the logic, this file only wires it):

- ``find_work`` lists the pending intervals and groups contiguous ones into batches of at most
  ``MLOPS_FEATURE_BATCH_DAYS`` days.
- ``build_batch`` (mapped, one per batch, warehouse pool) runs the feature-set version's SQL
  (``include/features/sql/demand_features_vN.sql``: same-hour lags of 1 and 7 days, rolling means
  over the previous day / week / four weeks as moving RANGE frames, calendar features,
  per-station aggregates) and replaces the batch's rows of ``features.demand_features`` and its
  ``features.feature_ledger`` rows in one transaction. Re-runs replace, never duplicate.
- ``publish`` updates the ``features_demand`` asset with ``intervals_built``,
  ``feature_set_version`` and ``rows_built`` as extra. With nothing to build it is skipped
  (a mapped task over an empty list is skipped, and so is its downstream): no event, so the
  training and drift DAGs are not triggered for nothing.

New feature-set version, or a repair (documented backfill): both versions coexist in the table
(key ``feature_set_version, ts, station_id``). Rebuild the history of a version with a
parameterised run over a date range, e.g.::

    airflow dags trigger feature_engineering \\
        --conf '{"start_date": "2026-01-01", "end_date": "2026-03-01", "feature_set_version": "v2"}'

``rebuild: true`` rebuilds intervals that are up to date too. A backfill of the ETL
(``airflow backfill create --dag-id etl ...``) reloads days and so, through the ledger, rebuilds
their features as well. ``max_active_runs=1``: runs never build the same interval concurrently.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from include.assets import FEATURES_DEMAND, WAREHOUSE_DEMAND
from include.dag_defaults import START_DATE, WAREHOUSE_POOL, default_args
from include.features.definitions import CURRENT_FEATURE_SET_VERSION, FEATURE_SETS


@dag(
    dag_id="feature_engineering",
    schedule=WAREHOUSE_DEMAND,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["features", "warehouse", "ml"],
    doc_md=__doc__,
    params={
        "start_date": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Only intervals starting on/after this day (ISO date).",
        ),
        "end_date": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Only intervals starting before this day (ISO date).",
        ),
        "feature_set_version": Param(
            CURRENT_FEATURE_SET_VERSION,
            type="string",
            enum=sorted(FEATURE_SETS),
            description="Feature-set version to build.",
        ),
        "rebuild": Param(False, type="boolean", description="Rebuild intervals that are up to date too."),
    },
)
def feature_engineering():
    @task(pool=WAREHOUSE_POOL)
    def find_work(*, params=None, triggering_asset_events=None) -> list[list[list[str]]]:
        """Batches of contiguous pending intervals, each interval as [start, end] ISO strings."""
        from include.features.work import find_work

        return find_work(params, triggering_asset_events)

    @task(pool=WAREHOUSE_POOL, multiple_outputs=False, map_index_template="{{ batch_label }}")
    def build_batch(batch: list[list[str]], *, params=None, run_id=None) -> dict:
        """Replace the batch's features and ledger rows in one transaction (the version's SQL)."""
        from airflow.sdk import get_current_context

        from include.features import work
        from include.features.build import build_batch as _build
        from include.lineage import report_lineage, table

        # map_index_template reads the task's own context: the one place a task writes to it
        get_current_context()["batch_label"] = work.batch_label(batch)
        report_lineage(  # OpenLineage: the tables the feature SQL reads and writes
            inputs=[table("warehouse", "demand_hourly"), table("warehouse", "load_ledger")],
            outputs=[table("features", "demand_features"), table("features", "feature_ledger")],
        )
        return _build(work.batch_intervals(batch), (params or {}).get("feature_set_version"), run_id)

    @task(outlets=[FEATURES_DEMAND], multiple_outputs=False)
    def publish(results: list[dict], *, outlet_events=None) -> dict:
        """Update the features_demand asset with what was built; skipped when nothing was."""
        from airflow.sdk.exceptions import AirflowSkipException

        from include.features.work import asset_extra

        extra = asset_extra(results)
        if extra is None:
            raise AirflowSkipException("nothing was built: no asset event")
        outlet_events[FEATURES_DEMAND].extra = extra
        return extra

    publish(build_batch.expand(batch=find_work()))


feature_engineering()
