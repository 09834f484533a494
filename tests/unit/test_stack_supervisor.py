"""scripts/supervisor.py without processes: the Celery profile's settings, the generated
configuration, and the restart count read from supervisord's log."""

from __future__ import annotations

from datetime import datetime

from scripts.supervisor import AIRFLOW_SERVICES, Supervisor, profile_env

BASE = {
    "AIRFLOW_HOME": "/tmp/h",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg://postgres@127.0.0.1:5/airflow",
    "MLOPS_REDIS_PASSWORD": "redispw",
}


def test_local_profile_has_the_fault_settings_only():
    env = profile_env({**BASE, "MLOPS_EXECUTOR": "local", "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "99"})
    assert env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"] == "60"
    assert env["AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT"] == "99"  # the caller's value wins
    assert "AIRFLOW__CELERY__BROKER_URL" not in env
    assert Supervisor("/tmp/h/run", env).programs == AIRFLOW_SERVICES


def test_celery_profile_follows_the_stack_not_the_shell():
    """A test stack on its own Redis port gets its own broker URL, whatever the shell exported."""
    shell = {
        **BASE,
        "MLOPS_EXECUTOR": "celery",
        "MLOPS_REDIS_PORT": "40001",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CELERY__BROKER_URL": "redis://:redispw@127.0.0.1:56379/0",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "3",
    }
    env = profile_env(shell)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://:redispw@127.0.0.1:40001/0"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "redis://:redispw@127.0.0.1:40001/1"
    assert env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "3"
    assert env["AIRFLOW__CELERY__TASK_ACKS_LATE"] == "True"
    assert env["MLOPS_TRAINING_QUEUE"] == "training"
    sv = Supervisor("/tmp/h/run", env)
    assert sv.programs == ("redis", *AIRFLOW_SERVICES, "worker-default", "worker-training")
    conf = sv.render()
    assert "--queues default " in conf and "--queues default,training " in conf
    assert 'TMPDIR="/tmp/h/run/worker-training/tmp"' in conf
    assert "--celery-hostname worker-training@%%h" in conf


def test_restarts_are_the_unexpected_exits_since_supervisord_started(tmp_path):
    log = tmp_path / "supervisord.log"
    log.write_text(
        "2026-12-01 10:00:00,000 INFO supervisord started with pid 1\n"
        "2026-12-01 10:01:00,000 WARN exited: scheduler (terminated by SIGKILL; not expected)\n"
        "2026-12-01 10:02:00,000 INFO supervisord started with pid 2\n"
        "2026-12-01 10:03:00,000 INFO exited: dag-processor (exit status 1; not expected)\n"
        "2026-12-01 10:03:30,000 INFO exited: dag-processor (exit status 1; not expected)\n"
        "2026-12-01 10:04:00,000 INFO stopped: scheduler (exit status 0)\n"
        "2026-12-01 10:05:00,000 WARN exited: scheduler (terminated by SIGKILL; not expected)\n"
    )
    sv = Supervisor(tmp_path, BASE)
    assert sv.restarts() == {"dag-processor": 2, "scheduler": 1}
    since = datetime(2026, 12, 1, 10, 3, 15).astimezone()
    assert sv.restarts(since=since) == {"dag-processor": 1, "scheduler": 1}
    assert sv.exits()["scheduler"][-1][1] == "terminated by SIGKILL"
