"""Test session setup: a real PostgreSQL (with pgvector) and an isolated Airflow.

Each pytest session gets its own pair of databases in the project's local cluster
(``scripts/db.sh up`` is run if it is not up), its own AIRFLOW_HOME, landing zone, artifact
store and reports folder, so several sessions can run side by side and nothing touches the
developer's ``make run`` state. ``airflow db migrate`` runs once per session (about 3 s).

The local cluster is the one on ``MLOPS_PG_PORT`` with the generated password (scripts/env.sh
builds ``MLOPS_TEST_PG_URI`` for it). Set ``MLOPS_TEST_PG_URI`` (an admin URI such as
postgresql://postgres:<password>@host:5432/postgres) to use another PostgreSQL with pgvector.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
_RUN = f"t{os.getpid()}"
_TMP = Path(tempfile.mkdtemp(prefix=f"mlops-{_RUN}-"))
_PG_PORT = os.environ.get("MLOPS_PG_PORT", "55432")


def _local_admin_uri() -> str:
    """The project's local cluster (scripts/db.sh): its port and its generated password."""
    password = subprocess.run(
        [str(ROOT / "scripts" / "secrets.sh"), "postgres"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return f"postgresql://postgres:{password}@127.0.0.1:{_PG_PORT}/postgres"


_ADMIN_URI = os.environ.get("MLOPS_TEST_PG_URI") or _local_admin_uri()
_LOCAL_PG = not os.environ.get("MLOPS_PG_URI") and urlsplit(_ADMIN_URI).netloc.endswith(f"@127.0.0.1:{_PG_PORT}")


def _db_uri(name: str, driver: str = "postgresql") -> str:
    parts = urlsplit(_ADMIN_URI)
    return urlunsplit((driver, parts.netloc, "/" + name, "", ""))


AIRFLOW_DB = f"{_RUN}_airflow"
WAREHOUSE_DB = f"{_RUN}_wh"

# --- environment, set before anything imports Airflow -------------------------------------
_ENV = {
    "AIRFLOW_HOME": str(_TMP / "airflow"),
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _db_uri(AIRFLOW_DB, "postgresql+psycopg"),
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    "MLOPS_WAREHOUSE_URI": _db_uri(WAREHOUSE_DB),
    "AIRFLOW_CONN_WAREHOUSE": _db_uri(WAREHOUSE_DB),
    "MLOPS_LANDING_URI": "file://" + str(_TMP / "landing"),
    "MLOPS_ARCHIVE_URI": "file://" + str(_TMP / "archive"),
    "MLOPS_ARTIFACTS_URI": "file://" + str(_TMP / "artifacts"),
    "MLOPS_REPORTS_DIR": str(_TMP / "reports"),
    "MLOPS_TEST_TMP": str(_TMP),
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "SODA_CORE_TELEMETRY_ENABLED": "false",
    "TOKENIZERS_PARALLELISM": "false",
    # dag.test() cannot run DAGs with deadline alerts in Airflow 3.3.2 (include/deadlines.py);
    # tests/e2e/test_hitl.py turns them on for its real scheduler
    "MLOPS_ETL_DEADLINE_S": "0",
    "MLOPS_TRAINING_DEADLINE_S": "0",
}
os.environ.update(_ENV)
os.environ["PYTHONPATH"] = str(ROOT) + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _admin_exec(sql: str) -> None:
    import psycopg

    with psycopg.connect(_ADMIN_URI, autocommit=True) as conn:
        conn.execute(sql)


def pytest_sessionstart(session):
    if _LOCAL_PG:
        subprocess.run([str(ROOT / "scripts" / "db.sh"), "up"], check=True, stdout=subprocess.DEVNULL)
    for name in (AIRFLOW_DB, WAREHOUSE_DB):
        _admin_exec(f"drop database if exists {name} with (force)")
        _admin_exec(f"create database {name}")
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    from include.warehouse import db

    db.ensure_schema()


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("MLOPS_KEEP_TEST_DB"):
        return
    try:
        from airflow.settings import dispose_orm

        dispose_orm()
    except Exception:
        pass
    for name in (AIRFLOW_DB, WAREHOUSE_DB):
        try:
            _admin_exec(f"drop database if exists {name} with (force)")
        except Exception:
            pass


@pytest.fixture
def fresh_warehouse():
    """An empty warehouse: every project schema dropped and re-created from the DDL."""
    from include.warehouse import db

    with db.transaction() as conn:
        for schema in ("warehouse", "features", "ml", "rag"):
            conn.execute(f"drop schema if exists {schema} cascade")
    db.ensure_schema()
    yield db


@pytest.fixture
def tmp_storage(tmp_path, monkeypatch):
    """Fresh landing/archive/artifact/report locations for one test (file:// URIs)."""
    paths = {}
    for key, env in (
        ("landing", "MLOPS_LANDING_URI"),
        ("archive", "MLOPS_ARCHIVE_URI"),
        ("artifacts", "MLOPS_ARTIFACTS_URI"),
    ):
        p = tmp_path / key
        p.mkdir()
        monkeypatch.setenv(env, "file://" + str(p))
        paths[key] = p
    reports = tmp_path / "reports"
    reports.mkdir()
    monkeypatch.setenv("MLOPS_REPORTS_DIR", str(reports))
    paths["reports"] = reports
    return paths


# OpenLineage stays off in the suite (scripts/env.sh turns it on for `make run`): no lineage events
# from test runs in the project's reports/lineage/. tests/integration/test_lineage.py runs its DAGs
# in a subprocess with the file transport on.
os.environ["AIRFLOW__OPENLINEAGE__DISABLED"] = "true"
