"""One real Airflow stack shared by the HITL, deadline and browser tests (tests/e2e/test_hitl.py,
tests/e2e/test_ui.py), with its own AIRFLOW_HOME, metadata database, warehouse and port.

The warehouse is filled by the project's own code, as the ETL and feature DAGs would: the
simulated source writes eight days of files (one of them with a fifth of its rows malformed; three
more days for the UI test), ``load_day`` and the Soda gate load and check each day (that day fails its gate), and
``build_pending`` builds the features. The training, drift and RAG runs then go through the
stack's scheduler. Short settings keep it quick: a review times out after 15 s, a training run
has a 25 s deadline, an ETL run 5 s after its interval ends (or after it was created).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from pathlib import Path

import pytest

from scripts.stack_env import databases_env, drop_databases, free_port, recreate_databases, small_stack_env, storage_env
from tests.conftest import _ADMIN_URI, _RUN, _TMP, _db_uri

DAYS = 8
FAILING_DAY = 3  # 0-based: this day's file is a fifth malformed, its gate fails
REVIEW_TIMEOUT_S = 15
TRAINING_DEADLINE_S = 25
ETL_DEADLINE_S = 5
ROWS_PER_DAY = 480  # 20 stations
EXTRA_DAYS = 3  # after the champion's window (drift from the second): what drift monitoring evaluates


def populate(start: date, first: int = 0, last: int = DAYS) -> dict:
    """Deliver, load, gate and build features for days ``first`` .. ``last - 1`` after ``start``
    (project code). The last EXTRA_DAYS drift; the UI test adds them after the training runs."""
    from include.etl.loading import load_day
    from include.features.build import build_pending
    from include.quality.gate import run_gate
    from include.settings import get_settings
    from include.source.simulator import SourceConfig, write_range

    s = get_settings()
    landing = s.storage.path(s.storage.landing_uri)
    landing.mkdir(parents=True, exist_ok=True)
    cfg = SourceConfig(rows_per_day=ROWS_PER_DAY, seed=7, drift_start=start + timedelta(days=DAYS + 1))
    bad = start + timedelta(days=FAILING_DAY)
    write_range(start, bad, landing, cfg)
    write_range(bad, bad + timedelta(days=1), landing, SourceConfig(**{**cfg.__dict__, "malformed_share": 0.2}))
    write_range(bad + timedelta(days=1), start + timedelta(days=DAYS + EXTRA_DAYS), landing, cfg)
    gates = {}
    for i in range(first, last):
        day = start + timedelta(days=i)
        load_day(day)
        t0 = datetime.combine(day, dtime(0), tzinfo=timezone.utc)
        try:
            gates[day] = run_gate(t0, t0 + timedelta(days=1)).summary()["status"]
        except Exception as exc:  # the failing day: recorded in the ledger, raised to stop the DAG
            gates[day] = f"failed: {type(exc).__name__}"
    build_pending()
    return gates


@pytest.fixture(scope="package")
def hitl_stack():
    """(stack, info): the running stack; DAGs paused except ``training`` and ``etl``."""
    from scripts.load_settings import load as load_settings
    from scripts.stack import AirflowStack

    airflow_db, warehouse_db = f"{_RUN}_hitl_airflow", f"{_RUN}_hitl_wh"
    recreate_databases(_ADMIN_URI, (airflow_db, warehouse_db))
    root = Path(_TMP) / "hitl"
    env = {
        "AIRFLOW_HOME": str(root / "airflow"),
        **databases_env(_db_uri(airflow_db), _db_uri(warehouse_db)),
        **storage_env(root),
        **small_stack_env(free_port()),
        "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "3",
        "MLOPS_RETRY_DELAY_S": "5",
        "MLOPS_FILE_POKE_INTERVAL_S": "5",
        "MLOPS_FILE_WAIT_TIMEOUT_S": "600",
        "MLOPS_TRAIN_WINDOW_DAYS": "7",
        "MLOPS_TRAIN_VALID_DAYS": "2",
        "MLOPS_TRAIN_MIN_DAYS": "3",
        "MLOPS_PROMOTION_APPROVAL": "auto",
        "MLOPS_PROMOTION_APPROVAL_TIMEOUT_S": str(REVIEW_TIMEOUT_S),
        "MLOPS_TRAINING_DEADLINE_S": str(TRAINING_DEADLINE_S),
        "MLOPS_ETL_DEADLINE_S": str(ETL_DEADLINE_S),
    }
    mp = pytest.MonkeyPatch()
    for key, value in env.items():
        mp.setenv(key, value)
    stack = None
    try:
        from include.warehouse import db

        db.ensure_schema()
        t0 = time.monotonic()
        # the extra days end the day before yesterday: yesterday's file never comes (the ETL deadline test)
        start = datetime.now(timezone.utc).date() - timedelta(days=DAYS + EXTRA_DAYS + 1)
        gates = populate(start)
        populate_s = time.monotonic() - t0
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True,
            env=os.environ.copy(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        stack = AirflowStack(os.environ.copy())
        stack.start()
        load_settings(stack)  # pools (warehouse, embeddings), connections, variables
        stack.wait_dags(["training", "etl", "drift_monitoring", "rag_ingestion"])
        stack.set_paused("training", False)
        info = {"start": start, "gates": gates, "populate_s": populate_s, "reports": root / "reports", "env": env}
        yield stack, info
    finally:
        if stack is not None:
            stack.stop()
        mp.undo()
        if not os.environ.get("MLOPS_KEEP_TEST_DB"):
            drop_databases(_ADMIN_URI, (airflow_db, warehouse_db), ignore_errors=True)


def read_alerts(reports: Path) -> list[dict]:
    """The stack's alerts, oldest first: one JSON object per alert under ``<reports>/alerts/``
    (include/notify.py; the stack's reports URI is this local folder)."""
    import json

    folder = reports / "alerts"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []
