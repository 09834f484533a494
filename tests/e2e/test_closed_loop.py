"""The closed loop through a real Airflow: api-server, scheduler, dag-processor, triggerer.

This is `make run` in miniature, with the test session's own AIRFLOW_HOME, metadata database,
warehouse database and port: the simulated source drifts from a configured day, the ETL is
backfilled through the scheduler, features, scoring and drift follow through asset events,
the drift asset event triggers training, and a new champion trained on recent data beats the
old one on the drifted days. No DAG is called directly.
"""

from __future__ import annotations

import os
import socket
from datetime import date, timedelta

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]  # the issue: under 10 minutes on 2 cores

DAYS = int(os.environ.get("MLOPS_E2E_DAYS", "13"))
DRIFT_DAY = int(os.environ.get("MLOPS_E2E_DRIFT_DAY", "10"))  # 1-based


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chain_env(port: int) -> dict[str, str]:
    """The stack's settings for a short chain on ``port`` (tests/e2e/test_closed_loop_celery.py reuses them)."""
    return {
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "MLOPS_RETRY_DELAY_S": "5",
        "MLOPS_FILE_POKE_INTERVAL_S": "5",
        "MLOPS_RUN_DAYS": str(DAYS),
        "MLOPS_RUN_DRIFT_DAY": str(DRIFT_DAY),
    }


@pytest.fixture
def chain(fresh_warehouse, tmp_storage, monkeypatch):
    from scripts.run_chain import prepare, run_chain, run_days

    for key, value in chain_env(_free_port()).items():
        monkeypatch.setenv(key, value)
    # The scheduler, on unpausing `etl` (catchup off), runs the latest complete day: the
    # simulated days end yesterday so that its file exists, as in `make run`.
    start, end, drift_start = run_days()
    stack = prepare(os.environ.copy())
    try:
        summary = run_chain(stack, start, end, drift_start, timeout=600, backfill_parallelism=2)
        yield stack, summary, start, end, drift_start
    finally:
        stack.stop()


def _day(value: str) -> date:
    return date.fromisoformat(str(value)[:10])


def test_drift_triggers_retraining_and_a_better_champion(chain):
    check_closed_loop(*chain)


def check_closed_loop(stack, summary, start, end, drift_start) -> None:
    """What the closed loop must have done, whatever the executor."""

    # every DAG run of the chain finished, none failed
    for dag_id, states in summary["airflow"]["runs"].items():
        assert states.get("failed", 0) == 0, (dag_id, states)
    assert summary["etl"]["days_loaded"] == (end - start).days
    assert summary["features"]["intervals_built"] >= (end - start).days

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
