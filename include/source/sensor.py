"""The ``source_simulator`` DAG's one task: deliver its interval's file once the source's clock
(Airflow Variable ``source_simulator_release_until``) lets it.

While the clock holds the day back, the task *defers* (a ``TimeDeltaTrigger`` in the triggerer,
no worker slot and no task process between checks) and checks again when the trigger fires. A
deferral rather than a ``reschedule`` sensor: a day may wait through whole phases of ``make
run``, and on a loaded scheduler a reschedule sensor with a short interval can be failed as
"changed externally" when the executor's report of one poke arrives after the next poke was queued.
Its XCom is what ``include.source.simulator.deliver_day`` returns.
"""

from __future__ import annotations

import time
from datetime import timedelta, timezone

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException


class DeliverySensor(BaseOperator):
    """Delivers the data interval's file into the landing zone when the clock allows it, checking
    every ``poke_interval`` seconds for at most ``timeout`` seconds."""

    ui_color = "#fdf2d0"

    def __init__(self, *, poke_interval: float = 60.0, timeout: float = 3600.0, **kwargs):
        super().__init__(**kwargs)
        self.poke_interval = poke_interval
        self.timeout = timeout

    def execute(self, context, waited_s: float = 0.0):
        from include.source.simulator import deliver_scheduled  # pandas/pyarrow: task time only

        start = context.get("data_interval_start")
        if start is None:
            raise AirflowFailException("source_simulator delivers a data interval: backfill it or give a logical date")
        day = start.astimezone(timezone.utc).date()
        result = deliver_scheduled(day, context["params"])
        if result is not None:
            self.log.info("%s: %s (%s)", day, result["status"], result["uri"])
            return result
        if waited_s >= self.timeout:
            raise AirflowFailException(f"the clock held {day} back for {waited_s:.0f}s (limit {self.timeout}s)")
        self.log.info("the source's clock holds %s back; checking again in %ss", day, self.poke_interval)
        from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger

        self.defer(
            trigger=TimeDeltaTrigger(timedelta(seconds=self.poke_interval)),
            method_name="resume",
            kwargs={"waited_s": waited_s, "deferred_at": time.time()},
        )

    def resume(self, context, event=None, waited_s: float = 0.0, deferred_at: float | None = None):
        """Back from the trigger: check the clock again (counting the real time waited)."""
        if deferred_at is not None:
            waited_s += time.time() - deferred_at
        return self.execute(context, waited_s=waited_s)
