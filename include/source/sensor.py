"""The ``source_simulator`` DAG's one task: a sensor that delivers its interval's file once the
source's clock (Airflow Variable ``source_simulator_release_until``) lets it.

A sensor, in ``reschedule`` mode, so that a day the clock still holds back frees its worker slot
between pokes. Its XCom is what ``include.source.simulator.deliver_day`` returns.
"""

from __future__ import annotations

from datetime import timezone

from airflow.sdk import BaseSensorOperator, PokeReturnValue


class DeliverySensor(BaseSensorOperator):
    """Delivers the data interval's file into the landing zone when the clock allows it."""

    ui_color = "#fdf2d0"

    def __init__(self, **kwargs):
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)

    def poke(self, context) -> PokeReturnValue:
        from include.source.simulator import deliver_scheduled  # pandas/pyarrow: task time only

        start = context.get("data_interval_start")
        if start is None:
            raise ValueError("source_simulator delivers a data interval: trigger it with a logical date or backfill it")
        day = start.astimezone(timezone.utc).date()
        result = deliver_scheduled(day, context["params"])
        if result is None:
            self.log.info("the source's clock holds %s back", day)
        else:
            self.log.info("%s: %s (%s)", day, result["status"], result["uri"])
        return PokeReturnValue(is_done=result is not None, xcom_value=result)
