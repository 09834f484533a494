"""Faults the local stack survives, on real processes: PostgreSQL away for 30 s, the scheduler
SIGKILLed, a task process SIGKILLed, each while the chain runs (a backfill of a few days and
the training run it triggers), with no human step.

One PostgreSQL cluster of this module's own (started here on a free port: stopping it does not
touch the rest of the suite) holds two pairs of databases. The same chain runs twice through
``scripts.run_chain`` on its own supervised stack: once undisturbed (the reference), once with
the three faults injected by a second thread while the driver waits. The warehouse contents
(ETL, features, registry, predictions) of both runs must be equal, checksum for checksum.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from scripts.stack_env import databases_env, free_port, recreate_databases, small_stack_env, storage_env
from tests.conftest import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

ROOT = Path(__file__).resolve().parents[2]
OUTAGE_S = 30
DAYS = 3

# what the chain writes, without the columns that name the run or the time it ran at
CONTENT_TABLES = {
    "warehouse.demand_hourly": "station_id, ts",
    "warehouse.quarantine": "interval_start, row_number",
    "warehouse.load_ledger": "interval_start",
    "features.demand_features": "feature_set_version, ts, station_id",
    "features.feature_ledger": "interval_start, feature_set_version",
    "ml.model_registry": "candidate_name, train_start",
    "ml.predictions": "ts, station_id",
    "ml.scoring_ledger": "interval_start",
}
VOLATILE = {
    "source_file",
    "loaded_at",
    "quarantined_at",
    "quality_checked_at",
    "quality_report",
    "built_at",
    "source_loaded_at",
    "run_id",
    "scored_at",
    "features_built_at",
    "created_at",
    "updated_at",
    "promoted_at",
    "retired_at",
    "reviewed_at",  # when the promotion review decided (include/training/review.py)
    "artifact_uri",
    "reference_uri",
    "version",
    "model_version",
    "metrics",  # holds fit_seconds; the metric itself is metric_value
    "decision_reason",
}


def _password() -> str:
    return subprocess.run(
        [ROOT / "scripts" / "secrets.sh", "postgres"], check=True, capture_output=True, text=True
    ).stdout.strip()


class Cluster:
    """A PostgreSQL cluster of this module's own, through scripts/db.sh."""

    def __init__(self, base: Path):
        self.port = free_port()
        self.env = {**os.environ, "MLOPS_PGDATA": str(base / "pgdata"), "MLOPS_PG_PORT": str(self.port)}
        self.env.pop("MLOPS_PG_URI", None)
        self.uri = f"postgresql://postgres:{_password()}@127.0.0.1:{self.port}"

    def db(self, *args: str) -> str:
        out = subprocess.run([ROOT / "scripts" / "db.sh", *args], env=self.env, capture_output=True, text=True)
        assert out.returncode == 0 or args[0] == "status", out.stderr
        return out.stdout

    def running(self) -> bool:
        return subprocess.run([ROOT / "scripts" / "db.sh", "status"], env=self.env).returncode == 0

    def create(self, name: str) -> str:
        recreate_databases(self.uri + "/postgres", [name])
        return f"{self.uri}/{name}"


def _run_env(base: Path, cluster: Cluster, name: str) -> dict[str, str]:
    """The environment of one chain run: its databases, folders, home and port."""
    home = base / name
    for sub in ("landing", "archive", "artifacts", "reports"):
        (home / sub).mkdir(parents=True)
    warehouse = cluster.create(f"{name}_wh")
    airflow = cluster.create(f"{name}_airflow")
    return {
        "AIRFLOW_HOME": str(home / "airflow"),
        **databases_env(airflow, warehouse),
        **storage_env(home),
        **small_stack_env(free_port()),
        "MLOPS_EXECUTOR": "local",
        "MLOPS_FILE_POKE_INTERVAL_S": "5",
        "MLOPS_RUN_DAYS": str(DAYS),
        "MLOPS_RUN_DRIFT_DAY": "0",
        "MLOPS_SOURCE_ROWS_PER_DAY": "480",
        # training needs all DAYS days (DAYS - 1 training + 1 validation): one champion, whatever the
        # order the days arrive in, so both runs train the same model on the same window
        "MLOPS_TRAIN_MIN_DAYS": str(DAYS - 1),
        "MLOPS_TRAIN_VALID_DAYS": "1",
        # the three faults of one run can hit the same task: one retry more than the default 2
        "MLOPS_TASK_RETRIES": "3",
        # retries after 10, 20, 40 s: a task that failed on the outage retries after it
        "MLOPS_RETRY_DELAY_S": "10",
    }


def checksums(uri: str) -> dict[str, tuple[int, str]]:
    """(rows, md5 of the rows in key order) per content table; floats compared to 9 digits."""
    import psycopg

    out = {}
    with psycopg.connect(uri) as conn:
        for table, key in CONTENT_TABLES.items():
            schema, name = table.split(".")
            cols = conn.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = %s and table_name = %s order by ordinal_position",
                (schema, name),
            ).fetchall()
            exprs = [
                f"round({c}::numeric, 9)" if t in ("double precision", "real") else c
                for c, t in cols
                if c not in VOLATILE
            ]
            rows, digest = conn.execute(
                f"select count(*), md5(coalesce(string_agg(r, E'\\n' order by k), '')) from "
                f"(select row({', '.join(exprs)})::text as r, row({key})::text as k from {table}) t"
            ).fetchone()
            out[table] = (rows, digest)
    return out


def _chain(env: dict[str, str], inject=None) -> dict:
    """One run of the chain (without the RAG DAG) on a stack of its own; ``inject(stack)`` runs in
    a second thread meanwhile. Returns the summary, the stack's restarts and what was injected."""
    import scripts.run_chain as rc

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    all_dags = rc.chain_dags
    chain_dags = [d for d in all_dags() if d != "rag_ingestion"]
    rc.chain_dags = lambda: chain_dags
    stack = None
    try:
        start, end, drift_start = rc.run_days()
        stack = rc.prepare({**os.environ, **rc.source_env(drift_start)})
        since = datetime.now(timezone.utc)
        injected: dict = {}
        errors: list[BaseException] = []
        worker = None
        if inject:

            def target():
                try:
                    inject(rc.AirflowStack(stack.env), injected)
                except BaseException as exc:  # reported by the test
                    errors.append(exc)

            worker = threading.Thread(target=target, daemon=True)
            worker.start()
        t0 = time.monotonic()
        summary = rc.run_chain(stack, start, end, drift_start, timeout=1800, backfill_parallelism=2)
        if worker:
            worker.join(timeout=600)
        if errors:
            raise errors[0]
        return {
            "summary": summary,
            "wall_s": round(time.monotonic() - t0, 1),
            "restarts": stack.restarts(since=since),
            "exits": stack.supervisor.exits(since=since),
            "info": stack.info(),
            "stack": stack,
            "injected": injected,
            "checksums": checksums(env["MLOPS_WAREHOUSE_URI"]),
        }
    finally:
        rc.chain_dags = all_dags
        if stack is not None:
            stack.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _running_tis(stack, dag_id: str) -> list[dict]:
    return stack.api("GET", f"/dags/{dag_id}/dagRuns/~/taskInstances", params={"state": "running", "limit": 100})[
        "task_instances"
    ]


def _whole(stack) -> dict[str, str]:
    info = stack.info()
    return {name: info.get(name, {}).get("state") for name in stack.services}


def _faults(cluster: Cluster):
    def inject(stack, injected: dict) -> None:
        # (a) PostgreSQL away for 30 s while the ETL backfill runs
        wait_for(lambda: _running_tis(stack, "etl"), 600.0, "a running ETL task", every=0.5)
        t0 = time.monotonic()
        cluster.db("down")
        time.sleep(OUTAGE_S)
        cluster.db("up")
        injected["outage_s"] = round(time.monotonic() - t0, 1)
        stack.wait_healthy(600)
        injected["after_outage"] = {"recovered_s": round(time.monotonic() - t0, 1), "services": _whole(stack)}

        # (c) a task process SIGKILLed mid-task: a training candidate being fitted
        def running_candidate():
            tis = [t for t in _running_tis(stack, "training") if t["task_id"] == "candidate.train_candidate"]
            return next((t for t in tis if t.get("pid")), None)

        ti = wait_for(running_candidate, 900, "a training candidate running", every=0.5)
        os.kill(ti["pid"], signal.SIGKILL)
        injected["task_killed"] = {k: ti[k] for k in ("dag_run_id", "task_id", "map_index", "try_number", "pid")}

        # (b) the scheduler SIGKILLed while that run is still going
        time.sleep(3)
        killed = injected["scheduler_killed_pid"] = stack.kill("scheduler", signal.SIGKILL)
        t1 = time.monotonic()
        # until supervisord has seen the death and started another scheduler, the old one looks healthy
        wait_for(lambda: stack.status()["scheduler"] not in (None, killed), 600.0, "a new scheduler", every=0.5)
        stack.wait_healthy(600)
        injected["after_scheduler_kill"] = {"recovered_s": round(time.monotonic() - t1, 1), "services": _whole(stack)}

    return inject


@pytest.fixture(scope="module")
def runs():
    base = Path(tempfile.mkdtemp(prefix="mlops-faults-"))
    base.chmod(0o755)  # the PostgreSQL server user reaches its data dir through it
    cluster = Cluster(base)
    cluster.db("up")
    try:
        t0 = time.monotonic()
        reference = _chain(_run_env(base, cluster, "ref"))
        t1 = time.monotonic()
        faulted = _chain(_run_env(base, cluster, "fault"), inject=_faults(cluster))
        t2 = time.monotonic()
        print(
            f"\nfault tests: reference chain {t1 - t0:.0f} s, faulted chain {t2 - t1:.0f} s; "
            f"injected {faulted['injected']}; restarts {faulted['restarts']}"
        )
        yield {"reference": reference, "faulted": faulted, "cluster": cluster}
    finally:
        cluster.db("down")
        shutil.rmtree(base, ignore_errors=True)


def _completed(run: dict) -> None:
    for dag_id, states in run["summary"]["airflow"]["runs"].items():
        assert set(states) <= {"success"}, (dag_id, states)
    assert run["summary"]["etl"]["days_loaded"] == DAYS, run["summary"]["etl"]


def test_reference_run_trained_a_champion(runs):
    ref = runs["reference"]
    _completed(ref)
    assert ref["restarts"] == {}, f"the undisturbed run had restarts: {ref['exits']}"
    assert ref["checksums"]["ml.model_registry"][0] >= 1
    assert ref["checksums"]["ml.predictions"][0] > 0


def test_postgres_outage_chain_completes_with_the_same_contents(runs):
    ref, run = runs["reference"], runs["faulted"]
    assert run["injected"]["outage_s"] >= OUTAGE_S
    _completed(run)
    assert run["summary"]["airflow"].get("consumer_retriggers", {}) == {}, "the driver had to re-trigger a consumer"
    assert run["checksums"] == ref["checksums"]
    # the services that died with the database were restarted; the stack is whole again
    assert set(run["injected"]["after_outage"]["services"].values()) == {"RUNNING"}, run["injected"]
    assert set(run["info"][n]["state"] for n in run["stack"].services) == {"RUNNING"}


def test_scheduler_sigkill_is_restarted_and_the_run_completes(runs):
    run = runs["faulted"]
    exits = [why for _, why in run["exits"].get("scheduler", [])]
    assert "terminated by SIGKILL" in exits, run["exits"]
    assert set(run["injected"]["after_scheduler_kill"]["services"].values()) == {"RUNNING"}, run["injected"]
    _completed(run)


def test_killed_task_is_retried_and_nothing_is_duplicated(runs):
    ref, run = runs["reference"], runs["faulted"]
    killed = run["injected"]["task_killed"]
    stack = run["stack"]
    # the stack is stopped: read the task's final state from the metadata database
    import psycopg

    uri = stack.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(uri) as conn:
        state, tries = conn.execute(
            "select state, try_number from task_instance where dag_id = 'training' and run_id = %s "
            "and task_id = %s and map_index = %s",
            (killed["dag_run_id"], killed["task_id"], killed["map_index"]),
        ).fetchone()
    assert state == "success" and tries > killed["try_number"], (state, tries, killed)
    # the same rows as the undisturbed run: nothing written twice, nothing missing
    assert run["checksums"]["ml.model_registry"] == ref["checksums"]["ml.model_registry"]
    assert run["checksums"]["ml.predictions"] == ref["checksums"]["ml.predictions"]
