"""The closed loop on the Celery profile: Redis, two Celery workers, an S3-protocol object store.

The same chain as tests/e2e/test_closed_loop.py (its assertions are reused), on
``MLOPS_EXECUTOR=celery``: worker ``worker-default`` serves the ``default`` queue,
``worker-training`` serves ``default`` and ``training``; every hand-off between tasks goes
through ``s3://`` objects on a moto server (scripts/s3.py) or the database. During the run one
worker is SIGKILLed (its whole process group, as when its machine dies) while it runs an ETL
load; Airflow fails the silent task instance after the heartbeat timeout, the retry runs on a
worker, and the warehouse ends up exactly as loading the same files without any Airflow does.

One chain run serves both tests (the budget: one chain, not two). Own metadata and warehouse
databases, own AIRFLOW_HOME, ports and S3 state: nothing is shared with the other e2e test.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from scripts.s3 import S3Server
from scripts.stack_env import databases_env, drop_databases, free_port, recreate_databases
from tests.conftest import _ADMIN_URI, _db_uri
from tests.e2e.test_closed_loop import chain_env, check_closed_loop

# about 6 minutes on an idle 2-core machine; the bound is generous for a busy one
TIMEOUT_S = int(os.environ.get("MLOPS_E2E_CELERY_TIMEOUT_S", "1800"))
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(TIMEOUT_S)]

DAYS = int(os.environ.get("MLOPS_E2E_CELERY_DAYS", os.environ.get("MLOPS_E2E_DAYS", "13")))
DRIFT_DAY = int(os.environ.get("MLOPS_E2E_CELERY_DRIFT_DAY", os.environ.get("MLOPS_E2E_DRIFT_DAY", "10")))
WORKERS = ("worker-default", "worker-training")
TRAINING_QUEUE = "training"
AIRFLOW_DB = f"t{os.getpid()}_cel_airflow"
WAREHOUSE_DB = f"t{os.getpid()}_cel_wh"
REFERENCE_DB = f"t{os.getpid()}_cel_ref"


def warehouse_checksum() -> dict[str, str]:
    """md5 of each table the ETL and the feature build write, over content columns, in key order
    (load times and other clocks left out)."""
    from include.warehouse import db

    queries = {
        # the file name, not its URI: a day loaded again after cold storage comes from the archive
        "demand_hourly": """select md5(string_agg(concat_ws(',', station_id, ts, temperature_c, precipitation_mm,
                                   humidity_pct, is_holiday, demand, regexp_replace(source_file, '^.*/', '')), '|'
                                   order by station_id, ts)) from warehouse.demand_hourly""",
        "quarantine": """select md5(string_agg(concat_ws(',', interval_start, row_number, reason, raw::text), '|'
                                order by interval_start, row_number)) from warehouse.quarantine""",
        "load_ledger": """select md5(string_agg(concat_ws(',', interval_start, interval_end, rows_loaded,
                                 rows_quarantined, source_checksum), '|' order by interval_start))
                            from warehouse.load_ledger""",
        "rows": "select count(*)::text from warehouse.demand_hourly",
    }
    return {name: db.fetch_one(sql)[0] for name, sql in queries.items()}


class WorkerKiller(threading.Thread):
    """Waits for an ETL ``load`` running on ``worker-default``, then SIGKILLs that worker's process
    group (the worker and its task processes); supervisord starts the worker again."""

    def __init__(self, stack, worker: str = "worker-default", timeout: float = 600.0):
        super().__init__(daemon=True)
        self.stack, self.worker, self.timeout = stack, worker, timeout
        self.killed: dict | None = None
        self.stop_event = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            try:
                running = self.stack.api(
                    "GET", "/dags/etl/dagRuns/~/taskInstances", params={"state": "running", "limit": 100}
                )["task_instances"]
            except Exception:  # the API is busy: try again
                time.sleep(0.5)
                continue
            for ti in running:
                if ti["task_id"] == "load" and ti.get("hostname") == self.worker:
                    pid = self.stack.status()[self.worker]
                    os.killpg(pid, signal.SIGKILL)
                    self.killed = {**ti, "worker_pid": pid, "killed_at": time.time()}
                    return
            time.sleep(0.3)


def all_task_instances(stack, dag_ids) -> list[dict]:
    out = []
    for dag_id in dag_ids:
        for run in stack.dag_runs(dag_id):
            out += stack.task_instances(dag_id, run["dag_run_id"])
    return out


@pytest.fixture(scope="module")
def celery_databases():
    """Own metadata, warehouse and reference databases, dropped afterwards whatever happened."""
    names = (AIRFLOW_DB, WAREHOUSE_DB, REFERENCE_DB)
    recreate_databases(_ADMIN_URI, names)
    yield names
    drop_databases(_ADMIN_URI, names)


@pytest.fixture(scope="module")
def celery_chain(tmp_path_factory, celery_databases):
    from scripts.run_chain import chain_dags, prepare, run_chain, run_days, source_env
    from scripts.stack import AirflowStack

    base = tmp_path_factory.mktemp("celery")
    s3 = S3Server(state_dir=base / "s3", port=free_port())
    env = {
        **chain_env(free_port()),
        "MLOPS_EXECUTOR": "celery",
        "MLOPS_TRAINING_QUEUE": TRAINING_QUEUE,
        "MLOPS_REDIS_PORT": str(free_port()),
        "MLOPS_S3_DIR": str(s3.dir),
        "MLOPS_S3_PORT": str(s3.port),
        "AIRFLOW_HOME": str(base / "airflow"),
        **databases_env(_db_uri(AIRFLOW_DB), _db_uri(WAREHOUSE_DB)),
        "MLOPS_REPORTS_DIR": str(base / "reports"),
        "MLOPS_RUN_DAYS": str(DAYS),
        "MLOPS_RUN_DRIFT_DAY": str(DRIFT_DAY),
        # lineage on, as one object per event in the reports bucket: it names every dataset read
        "AIRFLOW__OPENLINEAGE__DISABLED": "false",
    }
    env.update(s3.env())  # s3:// URIs, the AWS connection, the lineage transport
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        s3 = S3Server(env=os.environ.copy())
        s3.start()
        start, end, drift_start = run_days()
        for key, value in source_env(drift_start).items():
            mp.setenv(key, value)
        stack = AirflowStack(os.environ.copy())
        killer = WorkerKiller(stack)
        try:
            stack = prepare(os.environ.copy())
            killer.stack = stack
            killer.start()
            t0 = time.monotonic()
            summary = run_chain(stack, start, end, drift_start, timeout=TIMEOUT_S - 120, backfill_parallelism=2)
            wall = time.monotonic() - t0
            killer.stop_event.set()
            tis = all_task_instances(stack, chain_dags())
            yield {
                "stack": stack,
                "summary": summary,
                "days": (start, end, drift_start),
                "tis": tis,
                "killed": killer.killed,
                "checksum": warehouse_checksum(),
                "env": dict(os.environ),
                "wall_s": wall,
                "s3": s3,
                "run_dir": stack.run_dir,
            }
        finally:
            killer.stop_event.set()
            stack.stop()
            s3.stop()


def test_closed_loop_on_celery_workers_and_object_storage(celery_chain):
    stack, summary, tis = celery_chain["stack"], celery_chain["summary"], celery_chain["tis"]
    start, end, drift_start = celery_chain["days"]

    # everything the LocalExecutor e2e asserts
    check_closed_loop(stack, summary, start, end, drift_start, out_of_sample=False)

    # ... on Celery: every task ran on one of the two workers
    done = [t for t in tis if t["state"] == "success"]
    assert done and {t["hostname"] for t in done} <= set(WORKERS), {t["hostname"] for t in done}
    # every task of the training queue ran on the worker that serves it (and there were some)
    training = [t for t in done if t["queue"] == TRAINING_QUEUE]
    assert training, "no task ran on the training queue"
    assert {t["hostname"] for t in training} == {"worker-training"}, training
    assert {t["task_id"] for t in training} >= {"candidate.train_candidate"}
    # the tasks of one run were spread over both workers
    by_run: dict[tuple, set] = {}
    for t in done:
        by_run.setdefault((t["dag_id"], t["dag_run_id"]), set()).add(t["hostname"])
    assert any(hosts == set(WORKERS) for hosts in by_run.values()), by_run

    # the registry's artifacts are s3:// objects, and they exist
    from airflow.sdk import ObjectStoragePath

    from include.training.registry import get_champion

    champion = get_champion()
    for uri in (champion["artifact_uri"], champion["reference_uri"]):
        assert uri.startswith("s3://"), uri
        assert ObjectStoragePath(uri).exists(), uri
    assert summary["cold_storage"]["manifest"].startswith("s3://")

    # what tasks read and wrote (OpenLineage, one object per event in the reports bucket): the
    # warehouse and s3:// objects, never a local file (the RAG documents ship with the code)
    lineage = summary["lineage"]
    assert lineage["file"].startswith("s3://") and lineage["events"] > 0, lineage
    docs = os.environ.get("MLOPS_DOCS_URI") or str(Path(__file__).resolve().parents[2] / "include" / "rag" / "docs")
    for name in lineage["datasets_written"]:
        assert name.startswith(("postgres://", "s3://")), name
    for name in lineage["datasets_read"]:
        assert name.startswith(("postgres://", "s3://")) or docs.removeprefix("file://") in name, name

    # neither worker's directory holds a file the other read: the only files there are its own
    # runtime files, none of them named by any task's input or output
    touched = {n.rsplit("/", 1)[-1] for n in lineage["datasets_read"] + lineage["datasets_written"]}
    for worker in WORKERS:
        files = [p for p in (celery_chain["run_dir"] / worker).rglob("*") if p.is_file()]
        data = [p for p in files if p.suffix in (".parquet", ".joblib", ".json", ".jsonl", ".html", ".csv")]
        assert not data, f"{worker} holds data files: {data}"
        assert not {p.name for p in files} & touched, (worker, files)


def test_lineage_names_the_landing_files_read(celery_chain):
    lineage = celery_chain["summary"]["lineage"]
    assert any(n.startswith("s3://mlops-landing") for n in lineage["datasets_read"]), lineage["datasets_read"]
    # a dataset is named by its bucket, never by the connection ObjectStoragePath spells as userinfo
    names = lineage["datasets_read"] + lineage["datasets_written"]
    assert not [n for n in names if "@" in n.split("://", 1)[-1].split("/", 1)[0]], names


def test_killed_worker_task_is_retried_and_the_warehouse_is_as_undisturbed(celery_chain):
    from include.etl.loading import load_day
    from include.settings import get_settings
    from include.storage.archive import archive_path, file_name
    from include.warehouse import db

    killed = celery_chain["killed"]
    assert killed is not None, "no ETL load ran on worker-default while the chain ran"
    attempts = [
        t
        for t in celery_chain["tis"]
        if (t["dag_id"], t["dag_run_id"], t["task_id"]) == (killed["dag_id"], killed["dag_run_id"], killed["task_id"])
    ]
    (final,) = attempts
    # the task instance SIGKILLed with its worker was retried and succeeded
    assert final["state"] == "success" and final["try_number"] > killed["try_number"], (killed, final)
    assert final["hostname"] in WORKERS
    assert celery_chain["stack"].restarts().get("worker-default", 0) >= 1  # supervisord restarted it

    # the same files loaded without Airflow, into an empty warehouse, give the same contents
    start, end, _ = celery_chain["days"]
    with pytest.MonkeyPatch.context() as mp:
        for key, value in celery_chain["env"].items():
            mp.setenv(key, value)
        mp.setenv("MLOPS_WAREHOUSE_URI", _db_uri(REFERENCE_DB))
        mp.setenv("AIRFLOW_CONN_WAREHOUSE", _db_uri(REFERENCE_DB))
        db.ensure_schema()
        storage = get_settings().storage
        for n in range((end - start).days):
            day = start + timedelta(days=n)
            landing = storage.path(storage.landing_uri) / file_name(day)
            load_day(day, source=landing if landing.exists() else archive_path(day))
        reference = warehouse_checksum()
    assert celery_chain["checksum"] == reference
