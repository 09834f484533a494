"""``airflow`` for the supervised services of the Celery profile, with one compatibility fix.

apache-airflow-providers-celery 3.26 imports ``retry`` from ``celery.backends.database``, which
Celery 5.7 removed (its database backend now retries by itself: ``result_backend_always_retry``).
Without the name, the CeleryExecutor cannot be loaded: the scheduler and ``airflow celery worker``
exit at start. This puts a pass-through ``retry`` back before Airflow starts. Drop it (and run
``airflow`` directly, scripts/supervisor.py) once the provider no longer imports the name.

    python -m scripts.airflow_cli <airflow arguments>
"""

from __future__ import annotations

import sys


def patch_celery() -> None:
    try:
        import celery.backends.database as database_backend
    except ImportError:  # Celery not installed: nothing to patch
        return
    if not hasattr(database_backend, "retry"):
        database_backend.retry = lambda fun: fun


if __name__ == "__main__":
    patch_celery()
    from airflow.__main__ import main

    sys.argv[0] = "airflow"
    main()
