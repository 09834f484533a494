"""Sensor that waits for the data interval's source file (landing zone, then archive zone).

Runs in ``reschedule`` mode: between pokes it frees its worker slot. When the file has not
arrived within ``timeout`` it fails with a message naming the day and every place it looked;
a sensor timeout is not retried (Airflow treats ``AirflowSensorTimeout`` as final).
Its XCom is the URI of the file found.
"""

from __future__ import annotations

from datetime import date, datetime

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

from include.intervals import utc_day
from include.source.landing import day_file_candidates, find_day_file


def run_day(data_interval_start: datetime | None) -> date:
    """The UTC day of the run's data interval start (the day this run processes)."""
    if data_interval_start is None:
        raise AirflowFailException(
            "this DAG processes a data interval: trigger it with a logical date, or use "
            "`airflow backfill create --dag-id etl --from-date ... --to-date ...`"
        )
    return utc_day(data_interval_start)


def interval_day(context) -> date:
    """``run_day`` of an operator's context."""
    return run_day(context.get("data_interval_start"))


class DayFileSensor(BaseSensorOperator):
    """Waits until ``find_day_file(day)`` finds the day's file."""

    ui_color = "#d9f0e3"

    def __init__(self, **kwargs):
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)

    def poke(self, context) -> PokeReturnValue:
        day = interval_day(context)
        found = find_day_file(day)
        if found is None:
            self.log.info("no source file for %s yet", day)
            return PokeReturnValue(is_done=False)
        self.log.info("source file for %s: %s", day, found)
        return PokeReturnValue(is_done=True, xcom_value=str(found))

    def execute(self, context):
        try:
            return super().execute(context)
        except AirflowSensorTimeout as exc:
            day = interval_day(context)
            places = ", ".join(str(p) for p in day_file_candidates(day))
            raise AirflowSensorTimeout(
                f"source file for {day} never arrived: waited {self.timeout:.0f}s for it in {places}. "
                "Deliver the file and clear this task, or mark the day as skipped."
            ) from exc
