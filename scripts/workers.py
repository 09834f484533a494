"""Where the chain's tasks ran: the run summary's executor fields and the ``scale_out`` bench figures.

Read from the REST API: each task instance's ``hostname`` (a Celery worker's name in the Celery
profile, scripts/supervisor.py's ``hostname_callable``; the machine's name under LocalExecutor)
and ``queue``.
"""

from __future__ import annotations

from collections.abc import Iterable

TRAINING_WORKER = "worker-training"


def tasks_by_worker_and_queue(stack, dag_ids: Iterable[str]) -> dict[str, dict[str, int]]:
    """{hostname: {queue: successful task instances}} over every run of ``dag_ids``."""
    counts: dict[str, dict[str, int]] = {}
    for dag_id in dag_ids:
        for run in stack.dag_runs(dag_id):
            for ti in stack.task_instances(dag_id, run["dag_run_id"]):
                if ti["state"] == "success":
                    per_queue = counts.setdefault(ti.get("hostname") or "?", {})
                    per_queue[ti["queue"]] = per_queue.get(ti["queue"], 0) + 1
    return {h: dict(sorted(q.items())) for h, q in sorted(counts.items())}


def training_share(by_worker: dict[str, dict[str, int]], queue: str, worker: str = TRAINING_WORKER) -> float | None:
    """Share of the ``queue`` tasks that ran on ``worker``; None when no task had that queue."""
    total = sum(q.get(queue, 0) for q in by_worker.values())
    return round(by_worker.get(worker, {}).get(queue, 0) / total, 3) if total else None


def executor_section(stack, dag_ids: Iterable[str]) -> dict:
    """``airflow.executor`` and the per-worker task counts for reports/run_summary.json."""
    import os

    by_worker = tasks_by_worker_and_queue(stack, dag_ids)
    queue = stack.env.get("MLOPS_TRAINING_QUEUE") or os.environ.get("MLOPS_TRAINING_QUEUE") or "default"
    return {
        "executor": stack.env.get("AIRFLOW__CORE__EXECUTOR", "LocalExecutor"),
        "tasks_by_worker": {h: sum(q.values()) for h, q in by_worker.items()},
        "tasks_by_worker_and_queue": by_worker,
        "training_queue": queue,
        "training_tasks_on_training_worker_share": training_share(by_worker, queue) if queue != "default" else None,
    }
