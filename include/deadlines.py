"""Deadline Alerts (Airflow 3.1+): when a DAG run must be finished, and the alert when it is not.

* ``etl_deadline()``: a day's ETL run must finish within ``MLOPS_ETL_DEADLINE_S`` (default 3 h)
  after its data interval ends -- or after the run was created, when that is later: a backfill
  of last month, or a run the scheduler creates after a pause, gets the same allowance from the
  moment it exists instead of alerting at once (``IntervalEndOrCreation``);
* ``training_deadline()``: a training run must finish within ``MLOPS_TRAINING_DEADLINE_S``
  (default 2 h) after it was queued. With ``MLOPS_PROMOTION_APPROVAL=required`` the wait for the
  reviewer counts: a review still open at the deadline alerts (a reminder, the run goes on).

The scheduler evaluates the deadline when the run is created (``IntervalEndOrCreation``, which
the ``mlops_view`` plugin registers with ``deadline_references``) or queued, and, once it has
passed with the run unfinished, the triggerer calls ``deadline_missed`` which alerts through the
project's notifier (include/notify.py). A run that finishes in time removes its deadline.
``0`` turns a deadline off: the test suite does so for ``dag.test()``, which in Airflow 3.3.2
cannot run a DAG that has deadline alerts (it looks the alert objects up as database ids); the
deadline tests run a real scheduler.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import AsyncCallback, BaseDeadlineReference, DeadlineAlert, DeadlineReference

from include.notify import send_alert
from include.settings import get_settings


class IntervalEndOrCreation(BaseDeadlineReference):
    """The later of a DAG run's data interval end and the moment the run is created."""

    required_kwargs = {"dag_id", "run_id"}

    def _evaluate_with(self, *, session, dag_id: str, run_id: str, **kwargs) -> datetime | None:
        from airflow.models import DagRun  # core model: only the scheduler evaluates references
        from sqlalchemy import select

        end = session.scalar(select(DagRun.data_interval_end).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        now = datetime.now(timezone.utc)
        return max(end, now) if end is not None else now


async def deadline_missed(*, deadline: str, allowed_s: int, context: dict[str, Any] | None = None) -> None:
    """Triggerer callback of a missed deadline: one alert through the project's notifier."""
    run = (context or {}).get("dag_run") or {}
    details = {
        "dag_id": run.get("dag_id"),
        "run_id": run.get("dag_run_id") or run.get("run_id"),
        "state": run.get("state"),
        "data_interval_start": run.get("data_interval_start"),
        "data_interval_end": run.get("data_interval_end"),
        "queued_at": run.get("queued_at"),
        "deadline_time": str(((context or {}).get("deadline") or {}).get("deadline_time")),
        "allowed_s": allowed_s,
    }
    subject = f"Deadline missed: {details['dag_id']} run {details['run_id']} not finished ({deadline})"
    await asyncio.to_thread(send_alert, subject, details, "error")


def _alert(name: str, reference, seconds: int, what: str) -> DeadlineAlert:
    return DeadlineAlert(
        reference=reference,
        interval=timedelta(seconds=seconds),
        callback=AsyncCallback(deadline_missed, kwargs={"deadline": what, "allowed_s": seconds}),
        name=name,
    )


def etl_deadline() -> DeadlineAlert | None:
    """The ETL DAG's deadline; None (no deadline) when MLOPS_ETL_DEADLINE_S is 0."""
    s = get_settings().etl.deadline_s
    return _alert("etl_day_finished", IntervalEndOrCreation(), s, f"{s} s after the day's interval ends") if s else None


def training_deadline() -> DeadlineAlert | None:
    """The training DAG's deadline; None (no deadline) when MLOPS_TRAINING_DEADLINE_S is 0."""
    s = get_settings().training.deadline_s
    if not s:
        return None
    return _alert("training_finished", DeadlineReference.DAGRUN_QUEUED_AT, s, f"{s} s after the run was queued")
