"""Drift monitoring: score new features with the champion, compare with its training reference,
and signal drift so that retraining starts with no human step.

Scheduled on the ``features_demand`` asset (the feature DAG publishes it after building days)
or the ``model_registry`` asset (the training DAG publishes it on a promotion: a new champion
scores the days it has not scored yet without waiting for the next day of features).
The asset events only trigger the run; what to do comes from the data, because Airflow 3.3.2
can leave queued asset events unconsumed (apache/airflow#56050, #56749):

- ``score`` (warehouse pool) scores every interval that has features but no predictions from
  the current champion, or whose features were rebuilt since (``ml.scoring_ledger``), with one
  vectorised ``predict`` per batch of contiguous days, and replaces the batch's rows of
  ``ml.predictions`` (keyed by station, hour and model version) in one transaction with ``COPY``.
  A new champion re-scores the history next to the old champion's predictions.
- ``evaluate`` (warehouse pool) compares each new window (the ``MLOPS_DRIFT_WINDOW_DAYS`` days
  ending with each newly scored day after the champion's training window) with the champion's
  training reference: per-feature PSI and two-sample KS (SciPy), prediction drift, and the MAE
  where the truth has arrived against the training-time MAE. Thresholds: ``DriftSettings`` in
  include/settings.py (``MLOPS_DRIFT_*``), rule in include/monitoring/drift.py. It writes one
  ``ml.drift_runs`` row per window, one ``ml.drift_report`` row per feature and window, and an
  HTML report with reference-vs-current plots under ``reports/drift/``.
- ``branch`` makes the two paths visible:
  drift -> ``alert_drift`` (notifier: the drifted features and their scores) -> ``signal_drift``
  (updates the ``drift_signal`` asset, scores in the event's extra; the training DAG is scheduled
  on it); no drift -> ``no_drift``, and ``signal_drift`` is skipped, so no event is written.

Re-running a run is safe: predictions and report rows are replaced, never duplicated; a run that
finds no new day re-evaluates the latest window for its report but never alerts again.
XCom carries counts, the report path and scores only.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from include.assets import DRIFT_SIGNAL, FEATURES_DEMAND, MODEL_REGISTRY
from include.dag_defaults import START_DATE, WAREHOUSE_POOL, default_args


@dag(
    dag_id="drift_monitoring",
    schedule=(FEATURES_DEMAND | MODEL_REGISTRY),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["ml", "monitoring", "drift"],
    doc_md=__doc__,
)
def drift_monitoring():
    @task(pool=WAREHOUSE_POOL, multiple_outputs=False)
    def score(*, run_id=None, triggering_asset_events=None) -> dict:
        """Score every interval with features but no (or stale) predictions from the champion."""
        from include.monitoring import steps

        return steps.score(run_id, triggering_asset_events)

    @task(pool=WAREHOUSE_POOL, multiple_outputs=False)
    def evaluate(scored: dict, *, run_id=None) -> dict:
        """Compare each new window with the champion's training reference; store and render the report."""
        from include.monitoring import steps

        return steps.evaluate(run_id, scored)

    @task.branch
    def branch(result: dict) -> str:
        """Drift -> alert and signal; no drift -> no_drift."""
        return "alert_drift" if result["drift"] else "no_drift"

    @task(multiple_outputs=False)
    def alert_drift(result: dict, *, ti=None) -> dict:
        """Alert through the notifier: the drifted features and their scores."""
        from include.monitoring import steps

        return steps.alert_drift(result, ti=ti)

    @task(outlets=[DRIFT_SIGNAL], multiple_outputs=False)
    def signal_drift(result: dict, *, outlet_events=None) -> dict:
        """Update the drift_signal asset (the training DAG is scheduled on it), scores as extra."""
        from include.monitoring import steps

        extra = steps.drift_signal_extra(result)
        outlet_events[DRIFT_SIGNAL].extra = extra
        return extra

    @task(multiple_outputs=False)
    def no_drift(result: dict) -> dict:
        """Record the windows evaluated and the report of a run without drift."""
        from include.monitoring import steps

        return steps.no_drift(result)

    result = evaluate(score())
    choice = branch(result)
    alerted = alert_drift(result)
    choice >> [alerted, no_drift(result)]
    alerted >> signal_drift(result)


drift_monitoring()
