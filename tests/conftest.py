"""Test session setup: a real PostgreSQL (with pgvector) and an isolated Airflow.

Each pytest session gets its own pair of databases in the project's local cluster
(``scripts/db.sh up`` is run if it is not up), its own AIRFLOW_HOME, landing zone, artifact
store and reports folder, so several sessions can run side by side and nothing touches the
developer's ``make run`` state. ``airflow db migrate`` runs once per session (about 3 s).

The local cluster is the one on ``MLOPS_PG_PORT`` with the generated password (scripts/env.sh
builds ``MLOPS_TEST_PG_URI`` for it). Set ``MLOPS_TEST_PG_URI`` (an admin URI such as
postgresql://postgres:<password>@host:5432/postgres) to use another PostgreSQL with pgvector.

Without a reachable PostgreSQL (``astro dev pytest`` in the image: no .venv, no local cluster,
``MLOPS_TEST_PG_URI`` unset) the tests that need one (markers ``integration``, ``e2e``, ``pg``,
the ``fresh_warehouse`` fixture) are skipped, each with the reason; the others run.
``MLOPS_REQUIRE_PG=1`` (``make test`` sets it) turns that into an error: there a missing
PostgreSQL is a failure, never a skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from scripts.stack_env import database_uri, databases_env, drop_databases, recreate_databases, storage_env

ROOT = Path(__file__).resolve().parents[1]
_RUN = f"t{os.getpid()}"
_TMP = Path(tempfile.mkdtemp(prefix=f"mlops-{_RUN}-"))
_PG_PORT = os.environ.get("MLOPS_PG_PORT", "55432")


def _local_admin_uri() -> str:
    """The project's local cluster (scripts/db.sh): its port and its generated password (none where
    the secret cannot be made, e.g. a read-only image: the cluster is then unreachable, see below)."""
    proc = subprocess.run([str(ROOT / "scripts" / "secrets.sh"), "postgres"], capture_output=True, text=True)
    password = proc.stdout.strip() if proc.returncode == 0 else ""
    return f"postgresql://postgres:{password}@127.0.0.1:{_PG_PORT}/postgres"


_ADMIN_URI = os.environ.get("MLOPS_TEST_PG_URI") or _local_admin_uri()
_LOCAL_PG = not os.environ.get("MLOPS_PG_URI") and urlsplit(_ADMIN_URI).netloc.endswith(f"@127.0.0.1:{_PG_PORT}")


def _db_uri(name: str, driver: str = "postgresql") -> str:
    return database_uri(_ADMIN_URI, name, driver)


AIRFLOW_DB = f"{_RUN}_airflow"
WAREHOUSE_DB = f"{_RUN}_wh"

# --- environment, set before anything imports Airflow -------------------------------------
_ENV = {
    "AIRFLOW_HOME": str(_TMP / "airflow"),
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    **databases_env(_db_uri(AIRFLOW_DB), _db_uri(WAREHOUSE_DB)),
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    **storage_env(_TMP),
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


PG_MARKERS = ("integration", "e2e", "pg")
PG_FIXTURES = ("fresh_warehouse",)
_PG_DOWN: str | None = None  # why no PostgreSQL is reachable, when none is


def _pg_unavailable() -> str | None:
    """None when the admin URI answers (after starting the local cluster if needed), else why not."""
    if _LOCAL_PG:
        if not (ROOT / ".venv").exists():
            return "no PostgreSQL: MLOPS_TEST_PG_URI is unset and there is no .venv for the local cluster (make db-up)"
        proc = subprocess.run(
            [str(ROOT / "scripts" / "db.sh"), "up"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        if proc.returncode:
            return f"no PostgreSQL: scripts/db.sh up failed: {proc.stderr.decode(errors='replace')[-300:]}"
    try:
        _admin_exec("select 1")
    except Exception as exc:  # psycopg.OperationalError, a missing driver, ...
        return f"no PostgreSQL reachable at MLOPS_TEST_PG_URI / the local cluster: {type(exc).__name__}: {exc}"[:400]
    return None


def pytest_configure(config):
    config.addinivalue_line("markers", "pg: needs the test PostgreSQL (skipped without one, unless MLOPS_REQUIRE_PG=1)")
    # registered here too so that --strict-markers accepts it where pytest-timeout is not installed (the image)
    config.addinivalue_line("markers", "timeout(seconds): per-test time limit (pytest-timeout; ignored without it)")


def pytest_collection_modifyitems(config, items):
    if _PG_DOWN is None:
        return
    skip = pytest.mark.skip(reason=_PG_DOWN)
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if any(item.get_closest_marker(m) for m in PG_MARKERS) or any(f in fixtures for f in PG_FIXTURES):
            item.add_marker(skip)


def pytest_sessionstart(session):
    global _PG_DOWN
    _PG_DOWN = _pg_unavailable()
    if _PG_DOWN is not None:
        if os.environ.get("MLOPS_REQUIRE_PG") == "1":
            raise pytest.UsageError(f"MLOPS_REQUIRE_PG=1 and {_PG_DOWN}")
        return
    recreate_databases(_ADMIN_URI, (AIRFLOW_DB, WAREHOUSE_DB))
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
    if os.environ.get("MLOPS_KEEP_TEST_DB") or _PG_DOWN is not None:
        return
    try:
        from airflow.settings import dispose_orm

        dispose_orm()
    except Exception:
        pass
    drop_databases(_ADMIN_URI, (AIRFLOW_DB, WAREHOUSE_DB), ignore_errors=True)


def wait_for(predicate, timeout: float, what: str, every: float = 1.0):
    """Poll ``predicate`` until it returns something truthy; that value, or fail with ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


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
