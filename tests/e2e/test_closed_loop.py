"""The closed loop through a real Airflow: api-server, scheduler, dag-processor, triggerer.

This is `make run` in miniature, with the test session's own AIRFLOW_HOME, metadata database,
warehouse database and port: the simulated source drifts from a configured day, the ETL is
backfilled through the scheduler, features, scoring and drift follow through asset events,
the drift asset event triggers training, and a new champion trained on recent data beats the
old one out of sample: on drifted days delivered after its training window, which neither model
saw. The source files come from the ``source_simulator`` DAG (nothing is written from outside
Airflow). No DAG is called directly, and no consumer has to be re-triggered by the driver.
"""

from __future__ import annotations

import os
from datetime import date, timedelta

import pytest

from scripts.stack_env import free_port, small_stack_env

# budget: ~6 minutes on an idle 2-core machine; the limit is generous for shared, loaded machines
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

# Three phases: days 1-9 (no drift), 10-13 (drift flagged, retraining), 14-18 (out of sample).
DAYS = int(os.environ.get("MLOPS_E2E_DAYS", "18"))
DRIFT_DAY = int(os.environ.get("MLOPS_E2E_DRIFT_DAY", "10"))  # 1-based
DRIFT_PHASE_DAYS = int(os.environ.get("MLOPS_E2E_DRIFT_PHASE_DAYS", "4"))


def chain_env(port: int) -> dict[str, str]:
    """The stack's settings for a short chain on ``port`` (tests/e2e/test_closed_loop_celery.py reuses them)."""
    return {
        **small_stack_env(port),
        "MLOPS_RETRY_DELAY_S": "5",
        # the yesterday-run of the etl sensor waits through the earlier phases: a short reschedule interval
        # races the executor on a loaded scheduler ("state changed externally")
        "MLOPS_FILE_POKE_INTERVAL_S": "30",
        "MLOPS_RUN_DAYS": str(DAYS),
        "MLOPS_RUN_DRIFT_DAY": str(DRIFT_DAY),
        "MLOPS_RUN_DRIFT_PHASE_DAYS": str(DRIFT_PHASE_DAYS),
    }


@pytest.fixture
def chain(fresh_warehouse, tmp_storage, monkeypatch):
    from scripts.run_chain import prepare, run_chain, run_days, source_env

    for key, value in chain_env(free_port()).items():
        monkeypatch.setenv(key, value)
    # The scheduler, on unpausing `etl` (catchup off), runs the latest complete day: the
    # simulated days end yesterday so that its file exists, as in `make run`.
    start, end, drift_start = run_days()
    for key, value in source_env(drift_start).items():
        monkeypatch.setenv(key, value)
    stack = prepare(os.environ.copy())
    try:
        summary = run_chain(stack, start, end, drift_start, timeout=1200, backfill_parallelism=2)
        yield stack, summary, start, end, drift_start
    finally:
        stack.stop()


def _day(value: str) -> date:
    return date.fromisoformat(str(value)[:10])


def test_drift_triggers_retraining_and_a_better_champion(chain):
    check_closed_loop(*chain)


def check_closed_loop(stack, summary, start, end, drift_start, out_of_sample: bool = True) -> None:
    """What the closed loop must have done, whatever the executor (``out_of_sample``: the time line
    has this module's third phase, days after the new champion's training window)."""

    # every DAG run of the chain finished, none failed, no work left; the driver had to re-trigger
    # no consumer (asset events alone drove the chain)
    from scripts.run_chain import verdict

    assert verdict(summary) == [], summary["airflow"]
    for dag_id, states in summary["airflow"]["runs"].items():
        assert states.get("failed", 0) == 0, (dag_id, states)
    days = (end - start).days
    assert summary["airflow"]["runs"]["source_simulator"].get("success", 0) >= days
    assert summary["airflow"]["consumer_retriggers"] == {}, summary["airflow"]["consumer_retriggers"]
    assert summary["etl"]["days_loaded"] == days
    assert summary["features"]["intervals_built"] >= days

    # drift events: none for windows before the drift start; the first within 2 days after it
    events = [e for e in stack.asset_events() if e["name"] == "drift_signal"]
    assert events, "drift was never signalled"
    flagged = sorted(_day(d) for e in events for d in e["extra"]["windows"])
    assert flagged, events
    assert min(flagged) >= drift_start, f"drift flagged on {min(flagged)}, before it started on {drift_start}"
    assert min(flagged) <= drift_start + timedelta(days=1), f"drift from {drift_start} flagged only on {min(flagged)}"
    assert summary["drift"]["drift_detected"] is True
    assert _day(summary["drift"]["first_drift_day"]) == min(flagged)

    # a training run whose trigger is the drift asset event, which trained and promoted
    created = [r for e in events for r in e["created_dagruns"] if r["dag_id"] == "training"]
    assert created, "no training run was created by a drift event"
    assert all(r["state"] == "success" for r in created), created

    # ... and one of them promoted its best candidate (the branch took `promote`)
    def promoted_in(run_id: str) -> bool:
        tis = stack.task_instances("training", run_id)
        return any(t["task_id"] == "promote" and t["state"] == "success" for t in tis)

    promoted = [r["run_id"] for r in created if promoted_in(r["run_id"])]
    assert promoted, f"no drift-triggered training run promoted a champion: {created}"
    assert summary["drift"]["retraining_runs_triggered_by_drift"] >= 1

    # the champion after retraining is better on the drifted days than the one before it
    before = summary["drift"]["champion_before_error_on_drifted_days"]
    after = summary["drift"]["champion_after_error_on_drifted_days"]
    assert before is not None and after is not None, summary["drift"]
    assert after < before, summary["drift"]
    assert summary["training"]["champion_version"] is not None

    if not out_of_sample:
        return
    # ... and out of sample: the champion the drift-triggered retraining promoted and the one before it,
    # scored on the same drifted days after the new one's training window (delivered in the last phase)
    d = summary["drift"]
    assert d["out_of_sample_champion_after"] not in (None, d["champion_before"]), d
    oos_from = date.fromisoformat(d["out_of_sample_from"])
    assert drift_start < oos_from <= start + timedelta(days=DRIFT_DAY - 1 + DRIFT_PHASE_DAYS), d
    assert d["out_of_sample_days"] >= DAYS - (DRIFT_DAY - 1 + DRIFT_PHASE_DAYS) - 1, d
    print(
        f"out of sample ({d['out_of_sample_days']} days from {oos_from}): before "
        f"{d['champion_before_error_out_of_sample']}, after {d['champion_after_error_out_of_sample']}"
    )
    assert d["champion_after_error_out_of_sample"] < d["champion_before_error_out_of_sample"], d
