"""A throwaway stack's own databases, folders and port, one helper each.

The test session (tests/conftest.py), the end-to-end stacks (tests/e2e), the fault drills
(tests/faults) and the benchmarks (scripts/bench.py) each run the project against databases and
folders of their own; they build them, and the environment that points Airflow and the project
at them, from these.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_uri(admin_uri: str, name: str, driver: str = "postgresql") -> str:
    """Database ``name`` on the server (and with the credentials) of ``admin_uri``."""
    return urlunsplit((driver, urlsplit(admin_uri).netloc, "/" + name, "", ""))


def recreate_databases(admin_uri: str, names: Iterable[str]) -> None:
    """Each database of ``names`` empty: dropped (its connections closed) and created again."""
    import psycopg

    with psycopg.connect(admin_uri, autocommit=True) as conn:
        for name in names:
            conn.execute(f"drop database if exists {name} with (force)")
            conn.execute(f"create database {name}")


def drop_databases(admin_uri: str, names: Iterable[str], ignore_errors: bool = False) -> None:
    """Drop each database of ``names`` (closing its connections); ``ignore_errors``: a cleanup
    that must not hide the outcome it follows."""
    import psycopg

    for name in names:
        try:
            with psycopg.connect(admin_uri, autocommit=True) as conn:
                conn.execute(f"drop database if exists {name} with (force)")
        except Exception:
            if not ignore_errors:
                raise


def databases_env(airflow_uri: str, warehouse_uri: str) -> dict[str, str]:
    """Airflow's metadata database (through psycopg 3) and the project's warehouse (its URI and
    the ``warehouse`` connection)."""
    return {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_uri.replace("postgresql://", "postgresql+psycopg://", 1),
        "MLOPS_WAREHOUSE_URI": warehouse_uri,
        "AIRFLOW_CONN_WAREHOUSE": warehouse_uri,
    }


def storage_env(root: Path) -> dict[str, str]:
    """The landing zone, archive, artifacts and reports, as folders below ``root``."""
    return {
        "MLOPS_LANDING_URI": "file://" + str(root / "landing"),
        "MLOPS_ARCHIVE_URI": "file://" + str(root / "archive"),
        "MLOPS_ARTIFACTS_URI": "file://" + str(root / "artifacts"),
        "MLOPS_REPORTS_DIR": str(root / "reports"),
    }


def api_env(port: int | str) -> dict[str, str]:
    """The API server on ``port`` of 127.0.0.1, and the task processes' way to it."""
    return {
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
    }


def small_stack_env(port: int) -> dict[str, str]:
    """A test stack on ``port``: listening on 127.0.0.1 only, four task slots, DAGs paused until a
    test unpauses them, the DAG folder read every 5 s, INFO logs."""
    return {
        **api_env(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }


@contextlib.contextmanager
def environ_restored(keys: Iterable[str]) -> Iterator[None]:
    """On exit, the variables ``keys`` of ``os.environ`` as they were on entry (set or unset):
    a benchmark section changes them for its own run only."""
    saved = {k: os.environ.get(k) for k in keys}
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
