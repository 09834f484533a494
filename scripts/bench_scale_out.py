"""Bench section ``scale_out``: the chain on two Celery workers against LocalExecutor, same bench run.

``run(workdir)`` runs exactly what ``make run`` runs (``scripts.run_chain.run_chain``: the same
days, the drift, the asset-driven chain) twice from empty bench databases: first on one
LocalExecutor with ``file://`` storage, then on the Celery profile (Redis, ``worker-default`` on
``default``, ``worker-training`` on ``default,training``, an S3-protocol moto server on
127.0.0.1 holding every hand-off). Same machine, same parallelism (4 task slots each). Figures:

- ``local_chain_wall_s`` / ``celery_chain_wall_s`` and ``celery_vs_local_chain_wall_ratio``
  (> 1: the distributed path costs that much more wall time here; on one 2-core machine two
  workers add no CPU, so this is the price of the broker, the object store and the per-task
  process start, not a speed-up);
- ``tasks_by_worker_and_queue``: successful task instances per worker (its ``hostname``) and queue;
- ``training_tasks_on_training_worker_share``: the share of training-queue tasks that ran on the
  worker serving that queue (must be 1.0);
- ``object_storage``: the scheme of the storage URIs of the Celery run (``s3``), and
  ``registry_artifact_schemes``: what the model registry's artifact URIs really start with.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from scripts.stack_env import free_port

TRAINING_QUEUE = "training"


def _chain(env_overrides: dict[str, str]) -> tuple[dict, dict]:
    """One chain from empty databases with ``env_overrides``; (summary, where its tasks ran)."""
    from include.warehouse import db
    from scripts.bench import fresh_databases
    from scripts.run_chain import chain_dags, prepare, run_chain, run_days
    from scripts.workers import executor_section

    saved = dict(os.environ)
    os.environ.update(env_overrides)
    try:
        fresh_databases()
        start, end, drift_start = run_days()
        stack = prepare(os.environ.copy())
        try:
            summary = run_chain(stack, start, end, drift_start, timeout=1800, backfill_parallelism=2)
            where = executor_section(stack, chain_dags())
            where["artifact_schemes"] = sorted(
                r[0] for r in db.fetch_all("select distinct split_part(artifact_uri, '://', 1) from ml.model_registry")
            )
        finally:
            stack.stop()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    failed = {d: s["failed"] for d, s in summary["airflow"]["runs"].items() if s.get("failed")}
    if failed:
        raise RuntimeError(f"chain runs failed: {failed}")
    return summary, where


def run(workdir: Path) -> dict:
    from scripts.s3 import S3Server

    # LocalExecutor, file:// storage (the bench environment's), from empty folders
    for key in ("MLOPS_LANDING_URI", "MLOPS_ARCHIVE_URI", "MLOPS_ARTIFACTS_URI"):
        shutil.rmtree(os.environ[key].removeprefix("file://"), ignore_errors=True)
    local, local_where = _chain(
        {
            "MLOPS_EXECUTOR": "local",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "MLOPS_REPORTS_URI": "file://" + str(workdir / "reports"),
        }
    )

    # the Celery profile: own AIRFLOW_HOME (its supervisord), Redis port, a fresh S3 server
    s3 = S3Server(state_dir=workdir / "s3", port=free_port())
    env = {
        "MLOPS_EXECUTOR": "celery",
        "MLOPS_TRAINING_QUEUE": TRAINING_QUEUE,
        "MLOPS_REDIS_PORT": str(free_port()),
        "MLOPS_S3_DIR": str(s3.dir),
        "MLOPS_S3_PORT": str(s3.port),
        "AIRFLOW_HOME": str(workdir / "airflow-celery"),
    }
    env.update(s3.env())
    s3 = S3Server(env={**os.environ, **env})
    s3.start()
    try:
        celery, where = _chain(env)
    finally:
        s3.stop()

    from scripts.run_chain import run_days

    start, end, _ = run_days()
    schemes = sorted({v.split("://", 1)[0] for k, v in env.items() if k.endswith("_URI") and "://" in v})
    return {
        "chain_days": (end - start).days,
        "local_chain_wall_s": local["airflow"]["chain_wall_s"],
        "celery_chain_wall_s": celery["airflow"]["chain_wall_s"],
        "celery_vs_local_chain_wall_ratio": round(
            celery["airflow"]["chain_wall_s"] / local["airflow"]["chain_wall_s"], 2
        ),
        "celery_executor": where["executor"],
        "local_executor": local_where["executor"],
        "tasks_by_worker_and_queue": where["tasks_by_worker_and_queue"],
        "local_tasks_by_worker_and_queue": local_where["tasks_by_worker_and_queue"],
        "training_tasks_on_training_worker_share": where["training_tasks_on_training_worker_share"],
        "object_storage": schemes[0] if len(schemes) == 1 else schemes,
        "registry_artifact_schemes": {"local": local_where["artifact_schemes"], "celery": where["artifact_schemes"]},
        "celery_drift_detected": celery["drift"]["drift_detected"],
        "local_drift_detected": local["drift"]["drift_detected"],
    }
